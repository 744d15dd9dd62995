//! `mcb reproduce`.

use serde::Serialize;

use crate::cli::{GlobalArgs, ReproduceArgs};
use crate::error::{CliError, Exit};
use crate::progress::Progress;
use crate::term::{out_json, say};

#[derive(Serialize)]
struct Differing<'a> {
    component: &'a str,
    locked: &'a mcb_store::ManifestHash,
    rebuilt: Option<&'a mcb_store::ManifestHash>,
}

/// `reproduce --json`.
#[derive(Serialize)]
struct Output<'a> {
    site: &'a str,
    expected_tree: &'a mcb_store::GitOid,
    tree: &'a mcb_store::GitOid,
    same: bool,
    differing: Vec<Differing<'a>>,
}

pub fn run(g: &GlobalArgs, a: &ReproduceArgs) -> Result<Exit, CliError> {
    let progress = Progress::new(g);
    let result = mcb_realise::reproduce(&a.net.options(g), &a.target, &progress);
    progress.finish();
    let r = result?;
    let code = if r.same() {
        Exit::Success
    } else {
        Exit::Integrity
    };
    if !r.same() {
        crate::term::failed(&if r.expected_tree == r.tree {
            format!(
                "{}: the tree is the lock's, but {} of its sources rebuilt to other manifests",
                r.site,
                r.differing.len()
            )
        } else {
            format!(
                "{} does not reproduce: the lock says tree {}, the rebuild gives {}",
                r.site, r.expected_tree, r.tree
            )
        });
    }
    if g.json {
        out_json(&Output {
            site: &r.site,
            expected_tree: &r.expected_tree,
            tree: &r.tree,
            same: r.same(),
            differing: r
                .differing
                .iter()
                .map(|(c, l, b)| Differing {
                    component: c,
                    locked: l,
                    rebuilt: b.as_ref(),
                })
                .collect(),
        });
        return Ok(code);
    }
    if g.quiet {
        return Ok(code);
    }
    if r.expected_tree == r.tree {
        say!("reproduced {}: tree {} matches the lock", r.site, r.tree);
    }
    if a.check || !r.same() {
        for (c, l, b) in &r.differing {
            match b {
                Some(b) => say!("  {c}: locked manifest {l}, rebuilt {b}"),
                None => say!("  {c}: locked manifest {l}, not in the rebuild"),
            }
        }
        if a.check && r.differing.is_empty() {
            say!("  every source has the manifest the lock records");
        }
    }
    Ok(code)
}
