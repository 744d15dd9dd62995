//! Presenting gc, verify and reproduce.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use crate::Global;
use crate::output::{EXIT_INTEGRITY, fail};
use crate::progress::Progress;
use crate::term::{out_json, say};

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

pub(crate) fn gc(g: &Global, keep: usize, dry_run: bool, grace: u64) -> u8 {
    let progress = Progress::new(g.quiet, g.verbose);
    let r = mcb_realise::gc(
        &g.options(),
        keep,
        Duration::from_secs(grace),
        dry_run,
        &progress,
    );
    progress.finish();
    let r = match r {
        Ok(r) => r,
        Err(e) => return fail(g, &e),
    };
    let s = &r.store;
    if g.json {
        out_json(&json!({
            "dry_run": dry_run,
            "generations": s.generations,
            "manifests": s.manifests,
            "objects": s.objects,
            "leftovers": s.leftovers,
            "files": s.files,
            "bytes": s.bytes,
            "git_bytes": r.git_bytes,
            "dead_links": r.dead_links,
            "kept": r.kept,
            "kept_generations": s.kept_generations,
            "recovered_records": r.recovered,
            "unknown_use": s.unknown_use,
        }));
        return 0;
    }
    if g.quiet {
        return 0;
    }
    let verb = if dry_run { "would delete" } else { "deleted" };
    for link in &r.dead_links {
        say!("root dropped: {} is gone", link.display());
    }
    for key in &s.generations {
        say!("{verb} generation {key}");
    }
    for (site, trees) in &r.kept {
        say!(
            "kept for {site}: {}",
            trees
                .iter()
                .map(|t| &t.as_str()[..12])
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for key in &r.recovered {
        say!(
            "generation {key} had lost its record of the sources it uses; rebuilt it from its commit"
        );
    }
    for key in &s.unknown_use {
        say!(
            "generation {key} has no record of the sources it uses: every source was kept for it (`mcb verify --repair` rebuilds the record)"
        );
    }
    say!(
        "{verb} {} generation{}, {} manifest{}, {} object{}, {} leftover{}: {} files, {}{}",
        s.generations.len(),
        if s.generations.len() == 1 { "" } else { "s" },
        s.manifests,
        if s.manifests == 1 { "" } else { "s" },
        s.objects,
        if s.objects == 1 { "" } else { "s" },
        s.leftovers,
        if s.leftovers == 1 { "" } else { "s" },
        s.files,
        mb(s.bytes),
        if dry_run {
            String::new()
        } else {
            format!(" (+ {} from git)", mb(r.git_bytes))
        }
    );
    0
}

pub(crate) fn verify(g: &Global, tree: Option<PathBuf>, repair: bool) -> u8 {
    let opts = g.options();
    if let Some(dir) = tree {
        let d = match mcb_realise::verify_tree(&opts, &dir) {
            Ok(d) => d,
            Err(e) => return fail(g, &e),
        };
        let code = if d.is_clean() { 0 } else { EXIT_INTEGRITY };
        if g.json {
            out_json(&serde_json::to_value(&d).expect("plain data"));
            return code;
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
            say!("{} matches generation {}", dir.display(), d.generation);
        } else {
            say!(
                "{} has drifted from generation {}: {} modified, {} added, {} removed",
                dir.display(),
                d.generation,
                d.modified.len(),
                d.added.len(),
                d.removed.len()
            );
        }
        return code;
    }
    let progress = Progress::new(g.quiet, g.verbose);
    let r = mcb_realise::verify(&opts, repair);
    progress.finish();
    let v = match r {
        Ok(v) => v,
        Err(e) => return fail(g, &e),
    };
    let rep = &v.report;
    let code = if v.is_clean() { 0 } else { EXIT_INTEGRITY };
    let sites = |key: &mcb_store::GitOid| {
        let s = v.sites_of(key);
        if s.is_empty() {
            "no site".to_string()
        } else {
            s.join(", ")
        }
    };
    if g.json {
        out_json(&json!({
            "objects": rep.objects,
            "manifests": rep.manifests,
            "corrupt": v.object_paths.iter().map(|(o, paths)| json!({
                "object": o,
                "paths": paths.iter().map(|p| json!({"generation": p.generation, "path": p.path, "sites": v.sites_of(&p.generation)})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "changed_generations": v.generations.iter().map(|(k, paths)| json!({
                "generation": k, "paths": paths, "sites": v.sites_of(k),
            })).collect::<Vec<_>>(),
            "missing": rep.missing.iter().map(|(m, o)| json!({"manifest": m, "object": o})).collect::<Vec<_>>(),
            "bad_manifests": rep.bad_manifests.iter().map(|(m, e)| json!({"manifest": m, "error": e})).collect::<Vec<_>>(),
            "repaired_objects": v.repaired_objects,
            "rebuilt_generations": v.rebuilt_generations,
            "unrepaired": v.unrepaired,
            "clean": v.is_clean(),
        }));
        return code;
    }
    if repair {
        say!(
            "repaired: {} object{} restored from git, {} generation{} rebuilt",
            v.repaired_objects,
            if v.repaired_objects == 1 { "" } else { "s" },
            v.rebuilt_generations.len(),
            if v.rebuilt_generations.len() == 1 {
                ""
            } else {
                "s"
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
    if v.is_clean() {
        say!(
            "store is sound: {} objects, {} manifests",
            rep.objects,
            rep.manifests
        );
    } else {
        say!(
            "store is damaged: {} corrupt object{}, {} missing, {} damaged manifest{}, {} changed generation{}",
            rep.corrupt.len(),
            if rep.corrupt.len() == 1 { "" } else { "s" },
            rep.missing.len(),
            rep.bad_manifests.len(),
            if rep.bad_manifests.len() == 1 {
                ""
            } else {
                "s"
            },
            v.generations.len(),
            if v.generations.len() == 1 { "" } else { "s" }
        );
        say!(
            "hint: `mcb verify --repair` restores every object from git (which holds each file) and rebuilds changed generations"
        );
    }
    code
}

pub(crate) fn reproduce(g: &Global, target: &str, check: bool) -> u8 {
    let progress = Progress::new(g.quiet, g.verbose);
    let r = mcb_realise::reproduce(&g.options(), target, &progress);
    progress.finish();
    let r = match r {
        Ok(r) => r,
        Err(e) => return fail(g, &e),
    };
    let code = if r.same() { 0 } else { EXIT_INTEGRITY };
    if g.json {
        out_json(&json!({
            "site": r.site,
            "expected_tree": r.expected_tree,
            "tree": r.tree,
            "same": r.same(),
            "differing": r.differing.iter().map(|(c, a, b)| json!({"component": c, "locked": a, "rebuilt": b})).collect::<Vec<_>>(),
        }));
        return code;
    }
    if r.expected_tree == r.tree {
        say!("reproduced {}: tree {} matches the lock", r.site, r.tree);
    } else {
        say!(
            "{} does not reproduce: the lock says tree {}, the rebuild gives {}",
            r.site,
            r.expected_tree,
            r.tree
        );
    }
    if check || !r.same() {
        for (c, a, b) in &r.differing {
            match b {
                Some(b) => say!("  {c}: locked manifest {a}, rebuilt {b}"),
                None => say!("  {c}: locked manifest {a}, not in the rebuild"),
            }
        }
        if check && r.differing.is_empty() {
            say!("  every source has the manifest the lock records");
        }
    }
    code
}
