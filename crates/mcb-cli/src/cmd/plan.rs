//! `mcb plan` and `mcb outdated`: what a realise would change, and what an update would
//! move in the lock; nothing is built or written.

use mcb_realise::{Pending, Update};

use crate::cli::{GlobalArgs, OutdatedArgs, PlanArgs};
use crate::error::{CliError, Exit};
use crate::progress::Progress;
use crate::term::{out_json, say};

pub fn run(g: &GlobalArgs, a: &PlanArgs) -> Result<Exit, CliError> {
    let progress = Progress::new(g);
    let site = crate::site_file::locate(a.site.as_deref())?;
    let result = mcb_realise::pending(&site, &a.net.options(g), &Update::Nothing, &progress);
    progress.finish();
    let p = result?;
    if let Some(file) = &a.save {
        crate::saved_plan::SavedPlan::of(&site, &p)?.write(file)?;
    }
    show(g, &p);
    if let Some(file) = &a.save
        && !g.quiet
        && !g.json
    {
        say!(
            "plan saved to {}: `mcb realise --plan {}` builds it, and only it",
            file.display(),
            file.display()
        );
    }
    Ok(if p.is_pending() {
        Exit::Pending
    } else {
        Exit::Success
    })
}

/// What a plan would change, as text or as its JSON document.
pub(crate) fn show(g: &GlobalArgs, p: &Pending) {
    if g.json {
        out_json(&crate::json::plan(p));
        return;
    }
    if g.quiet {
        return;
    }
    match (&p.generation, p.changes.is_empty()) {
        (Some(c), true) => say!(
            "{}: nothing to change (Moodle {}, generation {})",
            p.site,
            p.moodle_release,
            &c.as_str()[..12]
        ),
        (Some(c), false) => say!(
            "{}: realise would change {} against generation {}:",
            p.site,
            super::plural(p.changes.len(), "thing"),
            &c.as_str()[..12]
        ),
        (None, _) => say!("{}: no generation yet; realise would build:", p.site),
    }
    for c in &p.changes {
        say!("  {c}");
    }
    if p.is_dangerous() {
        say!(
            "DANGER: this plan downgrades. Moodle refuses to run older code against a database that has run the newer one; realise refuses it unless --allow-downgrade"
        );
    }
    if g.verbose {
        say!("why:");
        for c in &p.plugins {
            say!("  {}", c.why);
            for skipped in &c.passed_over {
                say!("    not {skipped}");
            }
        }
    }
    for a in &p.advisories {
        let what = match a.advisory.flag {
            mcb_catalog::AdvisoryFlag::Vulnerable => a.advisory.id.clone(),
            mcb_catalog::AdvisoryFlag::Malware => format!("flagged as malware ({})", a.advisory.id),
            mcb_catalog::AdvisoryFlag::Revoked => "revoked by its registry".to_string(),
        };
        say!(
            "ADVISORY {what}: {} {} ({}): {}{}{}{}",
            a.component,
            a.version,
            a.advisory.package,
            a.advisory.title,
            a.advisory
                .cve
                .as_deref()
                .filter(|c| *c != a.advisory.id)
                .map(|c| format!(" [{c}]"))
                .unwrap_or_default(),
            a.advisory
                .link
                .as_deref()
                .map(|l| format!(" {l}"))
                .unwrap_or_default(),
            if a.fixed_by_plan {
                "; this plan moves past it"
            } else if a.acknowledged {
                "; kept: the site file acknowledges it (ignore_advisories)"
            } else {
                "; this plan keeps it: update or pin a fixed version"
            }
        );
    }
    for w in &p.warnings {
        say!("warning: {w}");
    }
}

pub fn outdated(g: &GlobalArgs, a: &OutdatedArgs) -> Result<Exit, CliError> {
    let mut opts = a.net.options(g);
    // What an update would do: it asks upstream even when the cached answer is young.
    opts.refresh = !opts.offline;
    let progress = Progress::new(g);
    let result = mcb_realise::pending(
        &crate::site_file::locate(a.site.as_deref())?,
        &opts,
        &Update::All,
        &progress,
    );
    progress.finish();
    let p = result?;
    let exit = if p.lock_changes.is_empty() {
        Exit::Success
    } else {
        Exit::Pending
    };
    if g.json {
        out_json(&crate::json::outdated(&p));
        return Ok(exit);
    }
    if g.quiet {
        return Ok(exit);
    }
    if p.lock_changes.is_empty() {
        say!(
            "{}: every version is the newest the site file allows",
            p.site
        );
    } else {
        say!("{}: update would move:", p.site);
        for c in &p.lock_changes {
            say!("  {c}");
        }
    }
    Ok(exit)
}
