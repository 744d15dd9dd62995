//! `mcb gc`.

use std::time::Duration;

use mcb_realise::GcOptions;

use crate::cli::{GcArgs, GlobalArgs};
use crate::cmd::plural;
use crate::error::{CliError, Exit};
use crate::progress::Progress;
use crate::term::{out_json, say};

use super::sites::size;

pub fn run(g: &GlobalArgs, a: &GcArgs) -> Result<Exit, CliError> {
    let progress = Progress::new(g);
    let opts = GcOptions {
        keep: a.keep,
        grace: Duration::from_secs(a.grace),
        dry_run: a.dry_run,
    };
    let result = mcb_realise::gc(&g.store(), &opts, &progress);
    progress.finish();
    let r = result?;
    let s = &r.store;
    if g.json {
        out_json(&crate::json::gc(&r, a.dry_run));
        return Ok(Exit::Success);
    }
    if g.quiet {
        return Ok(Exit::Success);
    }
    let verb = if a.dry_run { "would delete" } else { "deleted" };
    for link in &r.dead_links {
        say!("root dropped: {} is gone", link.display());
    }
    for key in &s.generations {
        say!("{verb} generation {key}");
    }
    for (site, trees) in &r.kept {
        let short: Vec<&str> = trees.iter().map(|t| &t.as_str()[..12]).collect();
        say!("kept for {site}: {}", short.join(", "));
    }
    if !r.retired.is_empty() {
        say!(
            "{} {} no longer laid out (kept as commits; a rollback lays one out again)",
            plural(r.retired.len(), "kept generation"),
            match (a.dry_run, r.retired.len()) {
                (true, _) => "would be",
                (false, 1) => "is",
                _ => "are",
            }
        );
    }
    for key in &r.recovered {
        say!(
            "generation {key} had lost its record of the sources it uses; rebuilt it from its commit"
        );
    }
    if r.test_leftovers > 0 {
        say!(
            "removed {} test director{} that killed `mcb test` runs left",
            r.test_leftovers,
            if r.test_leftovers == 1 { "y" } else { "ies" }
        );
    }
    for key in &s.unknown_use {
        say!("generation {key} has no record of the sources it uses: every source was kept for it");
    }
    say!(
        "{verb} {}, {}, {}, {}: {} files, {}{}",
        plural(s.generations.len(), "generation"),
        plural(s.manifests, "manifest"),
        plural(s.objects, "object"),
        plural(s.leftovers, "leftover"),
        s.files,
        size(s.bytes),
        if a.dry_run {
            String::new()
        } else {
            format!(" (+ {} from git)", size(r.git_bytes))
        }
    );
    if s.spared_generations + s.spared_manifests + s.spared_objects > 0 {
        say!(
            "spared, younger than the grace period ({}): {}, {}, {}, {}; `--grace 0` {} them too",
            grace_said(a.grace),
            plural(s.spared_generations, "generation"),
            plural(s.spared_manifests, "manifest"),
            plural(s.spared_objects, "object"),
            size(s.spared_bytes),
            if a.dry_run { "would delete" } else { "deletes" }
        );
    }
    Ok(Exit::Success)
}

/// `1 h`, `90 s`.
fn grace_said(secs: u64) -> String {
    match secs {
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}
