//! Running a command and presenting its outcome: human text, or one JSON object.

use std::path::{Path, PathBuf};

use mcb_realise::{Options, RealiseError, realise as run_realise};
use serde_json::{Value, json};

use crate::Global;
use crate::progress::Progress;

pub(crate) const EXIT_FAILURE: u8 = 1;
pub(crate) const EXIT_CONFIG: u8 = 3;
pub(crate) const EXIT_UNSATISFIABLE: u8 = 4;
pub(crate) const EXIT_SOURCE: u8 = 5;
pub(crate) const EXIT_INTEGRITY: u8 = 6;

fn exit_code(e: &RealiseError) -> (u8, &'static str) {
    match e {
        RealiseError::Config(_) => (EXIT_CONFIG, "config"),
        RealiseError::Unsatisfiable(_) => (EXIT_UNSATISFIABLE, "unsatisfiable"),
        RealiseError::Source { .. } => (EXIT_SOURCE, "source"),
        RealiseError::Integrity { .. } => (EXIT_INTEGRITY, "integrity"),
        RealiseError::Store(_) | RealiseError::Git(_) => (EXIT_FAILURE, "store"),
    }
}

/// Prints an error the way every command does, and returns its exit code.
pub(crate) fn fail(g: &Global, e: &RealiseError) -> u8 {
    let (code, kind) = exit_code(e);
    let mut text = e.to_string();
    if let Some(h) = e.hint() {
        text.push_str(&format!("\n  hint: {h}"));
    }
    eprintln!("error: {text}");
    if g.json {
        let mut err = json!({ "kind": kind, "message": e.to_string(), "exit_code": code });
        if let RealiseError::Unsatisfiable(problems) = e {
            err["problems"] = problems
                .iter()
                .map(|p| {
                    json!({
                        "component": p.component,
                        "rule": p.rule.name(),
                        "facts": p.facts,
                        "hint": p.hint,
                    })
                })
                .collect();
        }
        println!("{}", json!({ "error": err }));
    }
    code
}

pub(crate) fn realise(g: &Global, site: &Path, out: Option<PathBuf>) -> u8 {
    let progress = Progress::new(g.quiet, g.verbose);
    let opts = Options {
        store: g.store.clone(),
        offline: g.offline,
        out,
    };
    let result = run_realise(site, &opts, &progress);
    progress.finish();
    let r = match result {
        Ok(r) => r,
        Err(e) => return fail(g, &e),
    };
    if g.json {
        let plugins: serde_json::Map<String, Value> = r
            .plugins
            .iter()
            .map(|p| {
                (
                    p.component.clone(),
                    json!({
                        "version": p.version,
                        "release": p.release,
                        "install_path": p.install_path,
                        "source": p.source,
                        "auto": p.auto,
                    }),
                )
            })
            .collect();
        println!(
            "{}",
            json!({
                "site": r.site,
                "commit": r.commit,
                "tree": r.tree,
                "path": r.path,
                "link": r.link,
                "moodle": { "release": r.moodle_release, "build": r.moodle_build },
                "plugins": plugins,
                "warnings": r.warnings,
                "changed": r.changed,
                "lock_written": r.lock_written,
                "copied_files": r.copied_files,
            })
        );
        return 0;
    }
    if !g.quiet {
        let what = if r.changed { "realised" } else { "up to date" };
        println!(
            "{what} {}: Moodle {} with {} plugin{}",
            r.site,
            r.moodle_release,
            r.plugins.len(),
            if r.plugins.len() == 1 { "" } else { "s" }
        );
        for p in &r.plugins {
            println!(
                "  {:<28} {:<12} {}{}",
                p.component,
                p.version,
                p.install_path,
                if p.auto { " (dependency)" } else { "" }
            );
        }
        println!("commit {}", r.commit);
        println!("tree   {}", r.path.display());
        println!("result {}", r.link.display());
    } else {
        println!("{}", r.commit);
    }
    0
}
