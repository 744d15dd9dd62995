//! Presenting gc, verify and reproduce.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use crate::Global;
use crate::output::{EXIT_INTEGRITY, fail};
use crate::progress::Progress;

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
        println!(
            "{}",
            json!({
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
            })
        );
        return 0;
    }
    if g.quiet {
        return 0;
    }
    let verb = if dry_run { "would delete" } else { "deleted" };
    for link in &r.dead_links {
        println!("root dropped: {} is gone", link.display());
    }
    for key in &s.generations {
        println!("{verb} generation {key}");
    }
    for (site, trees) in &r.kept {
        println!(
            "kept for {site}: {}",
            trees
                .iter()
                .map(|t| &t[..12.min(t.len())])
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!(
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

pub(crate) fn verify(g: &Global, tree: Option<PathBuf>) -> u8 {
    let opts = g.options();
    if let Some(dir) = tree {
        let d = match mcb_realise::verify_tree(&opts, &dir) {
            Ok(d) => d,
            Err(e) => return fail(g, &e),
        };
        let code = if d.is_clean() { 0 } else { EXIT_INTEGRITY };
        if g.json {
            println!("{}", serde_json::to_value(&d).expect("plain data"));
            return code;
        }
        for p in &d.modified {
            println!("modified {p}");
        }
        for p in &d.added {
            println!("added    {p}");
        }
        for p in &d.removed {
            println!("removed  {p}");
        }
        if d.is_clean() {
            println!("{} matches generation {}", dir.display(), d.generation);
        } else {
            println!(
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
    let r = mcb_realise::verify(&opts);
    progress.finish();
    let v = match r {
        Ok(v) => v,
        Err(e) => return fail(g, &e),
    };
    let rep = &v.report;
    let code = if rep.is_clean() { 0 } else { EXIT_INTEGRITY };
    if g.json {
        println!(
            "{}",
            json!({
                "objects": rep.objects,
                "manifests": rep.manifests,
                "corrupt": v.affected.iter().map(|(o, sites)| json!({"object": o, "sites": sites})).collect::<Vec<_>>(),
                "missing": rep.missing.iter().map(|(m, o)| json!({"manifest": m.0, "object": o.0})).collect::<Vec<_>>(),
                "bad_manifests": rep.bad_manifests.iter().map(|(m, e)| json!({"manifest": m.0, "error": e})).collect::<Vec<_>>(),
                "clean": rep.is_clean(),
            })
        );
        return code;
    }
    for (object, sites) in &v.affected {
        let who = if sites.is_empty() {
            "no site".to_string()
        } else {
            sites.iter().cloned().collect::<Vec<_>>().join(", ")
        };
        println!("corrupt object {object}: affects {who}");
    }
    for (m, o) in &rep.missing {
        println!("manifest {m} names missing object {o}");
    }
    for (m, e) in &rep.bad_manifests {
        println!("manifest {m} is damaged: {e}");
    }
    if rep.is_clean() {
        println!(
            "store is sound: {} objects, {} manifests",
            rep.objects, rep.manifests
        );
    } else {
        println!(
            "store is damaged: {} corrupt object{}, {} missing, {} damaged manifest{}",
            rep.corrupt.len(),
            if rep.corrupt.len() == 1 { "" } else { "s" },
            rep.missing.len(),
            rep.bad_manifests.len(),
            if rep.bad_manifests.len() == 1 {
                ""
            } else {
                "s"
            }
        );
        println!(
            "hint: `mcb verify --tree <result>` shows which files of an affected codebase differ; git keeps its own copy of every file"
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
        println!(
            "{}",
            json!({
                "site": r.site,
                "expected_tree": r.expected_tree,
                "tree": r.tree,
                "same": r.same(),
                "differing": r.differing.iter().map(|(c, a, b)| json!({"component": c, "locked": a, "rebuilt": b})).collect::<Vec<_>>(),
            })
        );
        return code;
    }
    if r.expected_tree == r.tree {
        println!("reproduced {}: tree {} matches the lock", r.site, r.tree);
    } else {
        println!(
            "{} does not reproduce: the lock says tree {}, the rebuild gives {}",
            r.site, r.expected_tree, r.tree
        );
    }
    if check || !r.same() {
        for (c, a, b) in &r.differing {
            println!("  {c}: locked manifest {a}, rebuilt {b}");
        }
        if check && r.differing.is_empty() {
            println!("  every source has the manifest the lock records");
        }
    }
    code
}
