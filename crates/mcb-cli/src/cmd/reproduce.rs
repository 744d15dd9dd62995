//! `mcb reproduce`.

use crate::cli::{GlobalArgs, ReproduceArgs};
use crate::error::{CliError, Exit};
use crate::progress::Progress;
use crate::term::{out_json, say};

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
        out_json(&crate::json::reproduce(&r));
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
