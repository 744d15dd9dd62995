//! `mcb history` and `mcb rollback`.

use mcb_realise::RollbackOptions;

use crate::cli::{GlobalArgs, HistoryArgs, RollbackArgs, local_options};
use crate::error::{CliError, Exit};
use crate::progress::Progress;
use crate::term::{out_json, say};

/// `YYYY-MM-DD HH:MM` in UTC.
pub(crate) fn date(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60
    )
}

pub fn run(g: &GlobalArgs, a: &HistoryArgs) -> Result<Exit, CliError> {
    let store = g.store();
    let site = crate::site_file::site_ref(a.site.as_deref(), &store)?;
    let generations = mcb_realise::history(&store, &site.name, a.limit)?;
    if g.json {
        out_json(&crate::json::history(&site.name, &generations));
        return Ok(Exit::Success);
    }
    if g.quiet {
        return Ok(Exit::Success);
    }
    for gen_ in &generations {
        // When the store made it; the sources' date only when that was never recorded.
        let when = match gen_.made {
            Some(t) => format!("made {}", date(t)),
            None => format!("sources {}", date(gen_.date)),
        };
        say!(
            "gen-{} {} {when} {}{}{}{}",
            gen_.number,
            &gen_.commit.as_str()[..12],
            gen_.title,
            if gen_.current { "  [current]" } else { "" },
            gen_.test
                .as_deref()
                .map(|t| format!("  [test {t}]"))
                .unwrap_or_default(),
            if gen_.kept {
                ""
            } else {
                "  [not laid out: rollback lays it out again]"
            }
        );
        let mut facts = Vec::new();
        if gen_.made.is_some() {
            facts.push(format!("sources dated {}", date(gen_.date)));
        }
        match gen_.served.as_slice() {
            [] => {}
            [one] => facts.push(format!("served {}", date(*one))),
            [.., last] => facts.push(format!(
                "served {} times, last {}",
                gen_.served.len(),
                date(*last)
            )),
        }
        if !facts.is_empty() {
            say!("    {}", facts.join("; "));
        }
        for c in &gen_.changes {
            say!("    {c}");
        }
    }
    Ok(Exit::Success)
}

pub fn rollback(g: &GlobalArgs, a: &RollbackArgs) -> Result<Exit, CliError> {
    let mut run = local_options(g);
    run.offline = true;
    let opts = RollbackOptions {
        out: a.out.clone(),
        allow_downgrade: a.allow_downgrade,
        ..RollbackOptions::default()
    };
    let site = crate::site_file::site_ref(a.site.as_deref(), &run.store)?;
    let Some(file) = site.file else {
        return Err(CliError::usage_text(format!(
            "the store knows no site file of site {}: name the site file",
            site.name
        )));
    };
    let progress = Progress::new(g);
    let result = mcb_realise::rollback(&file, a.to.as_deref(), &run, &opts, &progress);
    progress.finish();
    let r = result?;
    let pinned = if a.pin {
        mcb_realise::pin_to_lock(&file)?
    } else {
        Vec::new()
    };
    // What the site file still asks for: a rollback it disagrees with is undone by the
    // next realise, and that is said now rather than found out then.
    let next = mcb_realise::pending(
        &file,
        &run,
        &mcb_realise::Update::Nothing,
        &mcb_realise::Silent,
    );
    let undone: Vec<String> = match &next {
        Ok(p) => p.changes.iter().map(ToString::to_string).collect(),
        Err(e) => vec![format!("(cannot plan it offline: {e})")],
    };
    if g.json {
        let mut j = crate::json::rolled_back(&r);
        j.pinned = pinned;
        j.next_realise = undone;
        out_json(&j);
        return Ok(Exit::Success);
    }
    if g.quiet {
        return Ok(Exit::Success);
    }
    say!(
        "rolled back {} to {} (Moodle {}){}",
        r.site,
        &r.to.as_str()[..12],
        r.moodle_release,
        if r.from_git {
            "; its files were gone from the store and were laid out again from git"
        } else {
            ""
        }
    );
    for c in &r.changes {
        say!("  {c}");
    }
    if !r.downgrades.is_empty() {
        say!(
            "{} went down: Moodle refuses older code against a database that has run the newer one; restore the database from before the upgrade too",
            super::plural(r.downgrades.len(), "component")
        );
    }
    say!("commit {}", r.commit);
    say!("tree   {}", r.path.display());
    say!("result {}", r.link.display());
    if r.lock_written {
        say!("site.lock restored");
    }
    if !pinned.is_empty() {
        say!("pinned in {}: {}", file.display(), pinned.join(", "));
    }
    if !undone.is_empty() {
        crate::term::err_line(&format!(
            "warning: {} asks for another codebase than the one restored; the next realise would change:",
            file.display()
        ));
        for c in &undone {
            crate::term::err_line(&format!("  {c}"));
        }
        crate::term::hint(
            "pass --pin to write the restored versions into the site file, or change it to what it should ask for",
        );
    }
    Ok(Exit::Success)
}
