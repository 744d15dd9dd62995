//! `mcb verify`.

use crate::cli::{GlobalArgs, VerifyArgs};
use crate::cmd::plural;
use crate::error::{CliError, Exit};
use crate::progress::Progress;
use crate::term::{out_json, say};

/// The counts that are not zero, each with its noun and what was done: "1 object restored
/// from git, 2 generations rebuilt".
fn counted(parts: &[(usize, &str, &str)]) -> String {
    parts
        .iter()
        .filter(|(n, _, _)| *n > 0)
        .map(|(n, noun, done)| format!("{}{done}", plural(*n, noun)))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn run(g: &GlobalArgs, a: &VerifyArgs) -> Result<Exit, CliError> {
    match &a.tree {
        Some(dir) => tree(g, a, dir),
        None => store(g, a.repair),
    }
}

/// `verify --tree DIR`.
fn tree(g: &GlobalArgs, a: &VerifyArgs, dir: &std::path::Path) -> Result<Exit, CliError> {
    let of = if a.site.is_some() || a.commit.is_some() {
        mcb_realise::TreeOf::Named {
            site: a.site.clone(),
            commit: a.commit.clone(),
        }
    } else {
        mcb_realise::TreeOf::Found
    };
    let d = mcb_realise::verify_tree(&g.store(), dir, &of)?;
    let code = if d.is_clean() {
        Exit::Success
    } else {
        Exit::Integrity
    };
    let generation = match (&d.site, d.number) {
        (Some(site), Some(n)) => format!("{} ({site}/gen-{n})", d.generation),
        _ => d.generation.clone(),
    };
    let found = match d.found_by.as_str() {
        "files" => " (found by its files)",
        "release" => " (the release's commit)",
        _ => "",
    };
    if !d.is_clean() {
        crate::term::failed(&format!(
            "{} has drifted from generation {generation}{found}: {} modified, {} added, {} removed",
            dir.display(),
            d.modified.len(),
            d.added.len(),
            d.removed.len()
        ));
    }
    if g.json {
        out_json(&crate::json::tree_drift(&d));
        return Ok(code);
    }
    if g.quiet {
        return Ok(code);
    }
    for p in &d.modified {
        say!("modified {p}");
    }
    for p in &d.added {
        say!("added    {p}");
    }
    for p in &d.removed {
        say!("removed  {p}");
    }
    if d.is_clean() {
        say!("{} matches generation {generation}{found}", dir.display());
    }
    Ok(code)
}

/// `verify [--repair]`: the whole store.
fn store(g: &GlobalArgs, repair: bool) -> Result<Exit, CliError> {
    let progress = Progress::new(g);
    let result = mcb_realise::verify(&g.store(), repair);
    progress.finish();
    let v = result?;
    let rep = &v.report;
    let code = if v.is_clean() {
        Exit::Success
    } else {
        Exit::Integrity
    };
    if !v.is_clean() {
        crate::term::failed(&format!(
            "store is damaged: {}",
            counted(&[
                (rep.corrupt.len(), "corrupt object", ""),
                (rep.missing.len(), "missing object", ""),
                (
                    rep.bad_manifests.len() + rep.mispaired.len(),
                    "damaged manifest",
                    ""
                ),
                (v.generations.len(), "changed generation", ""),
                (v.git_objects.len(), "damaged git object", ""),
                (v.cache.len(), "damaged cache entry", ""),
            ])
        ));
        if !repair {
            crate::term::hint(
                "`mcb verify --repair` restores every object from git (which holds each file), rebuilds changed generations, writes damaged git objects again from sound objects and removes damaged cache entries",
            );
        }
    }
    if g.json {
        out_json(&crate::json::verify(&v));
        return Ok(code);
    }
    if !g.quiet {
        say_store(&v, repair);
    }
    Ok(code)
}

/// What verify found in the store (and, with `--repair`, did), as text.
fn say_store(v: &mcb_realise::VerifyOutcome, repair: bool) {
    let rep = &v.report;
    let sites = |key: &mcb_store::GitOid| {
        let s = v.sites_of(key);
        if s.is_empty() {
            "no site".to_string()
        } else {
            s.join(", ")
        }
    };
    if repair {
        let done = counted(&[
            (v.repaired_objects, "object", " restored from git"),
            (v.rebuilt_generations.len(), "generation", " rebuilt"),
            (v.repaired_git_objects, "git object", " written again"),
            (v.removed_cache_entries, "cache entry", " removed"),
        ]);
        say!(
            "repaired: {}",
            if done.is_empty() {
                "nothing".into()
            } else {
                done
            }
        );
        for u in &v.unrepaired {
            say!("not repaired: {u}");
        }
    }
    for (object, paths) in &v.object_paths {
        say!("corrupt object {object}");
        for p in paths {
            say!(
                "  in {} {} ({})",
                p.generation,
                p.path,
                sites(&p.generation)
            );
        }
    }
    for (key, paths) in &v.generations {
        say!("generation {key} was changed in place ({}):", sites(key));
        for p in paths.iter().take(20) {
            say!("  {p}");
        }
        if paths.len() > 20 {
            say!("  … and {} more", paths.len() - 20);
        }
    }
    for (m, o) in &rep.missing {
        say!("manifest {m} names missing object {o}");
    }
    for (m, e) in &rep.bad_manifests {
        say!("manifest {m} is damaged: {e}");
    }
    for (m, path, problem) in &rep.mispaired {
        say!("manifest {m} does not match its files at {path}: {problem}");
    }
    for b in &v.git_objects {
        say!(
            "git object {} ({} in generation {}) {}",
            b.id,
            if b.path.is_empty() {
                "the tree"
            } else {
                &b.path
            },
            &b.generation.as_str()[..12],
            b.problem
        );
    }
    for c in &v.cache {
        say!(
            "cache entry {} is not what it names: {}",
            c.entry.display(),
            c.problem
        );
    }
    if v.is_clean() {
        say!(
            "store is sound: {} objects, {} manifests",
            rep.objects,
            rep.manifests
        );
    }
}
