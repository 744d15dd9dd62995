//! `mcb status`.

use crate::cli::{GlobalArgs, StatusArgs, local_options};
use crate::error::{CliError, Exit};
use crate::progress::Progress;
use crate::term::{out_json, say};

fn generation(commit: &str, number: Option<usize>) -> String {
    let short = &commit[..12.min(commit.len())];
    match number {
        Some(n) => format!("gen-{n} ({short})"),
        None => format!("{short} (not a generation of this site)"),
    }
}

pub fn run(g: &GlobalArgs, a: &StatusArgs) -> Result<Exit, CliError> {
    let progress = Progress::new(g);
    let result = mcb_apply::status(
        &crate::site_file::locate(a.site.as_deref())?,
        &local_options(g),
        &progress,
    );
    progress.finish();
    let s = result?;
    let exit = if s.in_sync() {
        Exit::Success
    } else {
        Exit::Pending
    };
    if g.json {
        out_json(&crate::json::status(&s));
        return Ok(exit);
    }
    if g.quiet {
        return Ok(exit);
    }
    say!(
        "{}: {} serves {}",
        s.site,
        s.current.display(),
        generation(&s.serves, s.serves_number)
    );
    match &s.newest {
        Some(n) if *n != s.serves => say!(
            "  NOT NEWEST: the newest generation is {}",
            generation(n, s.newest_number)
        ),
        _ => {}
    }
    if s.changed_files.is_empty() {
        say!("  files: as built");
    } else {
        say!("  FILES CHANGED: {}", s.changed_files.len());
        for f in s.changed_files.iter().take(20) {
            say!("    {f}");
        }
    }
    say!(
        "  database: {}; Moodle {} (code {})",
        s.database,
        s.core_db.as_deref().unwrap_or("not installed"),
        s.core_code.as_deref().unwrap_or("?")
    );
    if s.upgrade_pending || !s.to_upgrade.is_empty() {
        say!(
            "  UPGRADE PENDING (Moodle's upgrade.php --is-pending: {})",
            if s.upgrade_pending { "yes" } else { "no" }
        );
        for (c, v) in &s.to_upgrade {
            say!(
                "    {c} {} → {}",
                v.db.as_deref().unwrap_or("(not installed)"),
                v.disk.as_deref().unwrap_or("?")
            );
        }
    }
    for (c, v) in &s.database_ahead {
        say!(
            "  DATABASE AHEAD: {c} {} in the database, {} in the code; Moodle cannot downgrade",
            v.db.as_deref().unwrap_or("?"),
            v.disk.as_deref().unwrap_or("?")
        );
    }
    for (c, v) in &s.orphaned {
        say!(
            "  ORPHANED: {c} {} in the database and no code: removed without being uninstalled",
            v.db.as_deref().unwrap_or("?")
        );
    }
    if s.maintenance {
        say!("  MAINTENANCE MODE IS ON");
    }
    if let Some((generation, step)) = &s.unfinished_apply {
        say!(
            "  AN APPLY WAS CUT OFF: {} at {step}; `mcb apply` puts the site back first",
            &generation[..12.min(generation.len())]
        );
    }
    if s.in_sync() {
        say!("  in sync with its newest generation");
    }
    Ok(exit)
}
