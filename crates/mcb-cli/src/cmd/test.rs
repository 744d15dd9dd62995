//! `mcb test`.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::cli::{GlobalArgs, TestArgs};
use crate::error::{CliError, Exit};
use crate::progress::Progress;
use crate::term::{out_json, say};

pub fn run(g: &GlobalArgs, a: &TestArgs) -> Result<Exit, CliError> {
    // SIGINT and SIGTERM end the test after the running step, with everything cleaned up.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| CliError::failure(format!("cannot watch for signal {signal}"), e))?;
    }
    let plan = mcb_sitetest::TestPlan {
        lint: a.lint,
        install: a.install,
        upgrade_from: a.upgrade_from.clone(),
        schema: a.schema,
        all_files: a.all,
        db: a.db.clone(),
        keep: a.keep,
        served_by: None,
        stop: Some(stop),
        generation: None,
        unrecorded: false,
    };
    let progress = Progress::new(g);
    let result = mcb_sitetest::test_site(
        &crate::site_file::locate(a.site.as_deref())?,
        &plan,
        &crate::cli::local_options(g),
        &progress,
    );
    progress.finish();
    let r = result?;
    if !g.quiet {
        for n in &r.notes {
            crate::term::err_line(&format!("warning: {n}"));
        }
    }
    let exit = if r.passed {
        Exit::Success
    } else {
        Exit::TestFailed
    };
    if let Some(step) = r.steps.iter().find(|s| !s.passed) {
        crate::term::failed(&format!(
            "{}: the test of {} failed at {}{}",
            r.site,
            &r.commit.as_str()[..12],
            step.step,
            step.failures
                .first()
                .map(|f| format!(": {f}"))
                .unwrap_or_default()
        ));
    }
    if g.json {
        out_json(&crate::json::test(&r));
        return Ok(exit);
    }
    if !g.quiet {
        say!(
            "{} {}: tested {} (php {}, {} {})",
            if r.passed { "passed" } else { "FAILED" },
            r.site,
            &r.commit.as_str()[..12],
            r.php,
            r.database.0,
            r.database.1
        );
        for s in &r.steps {
            say!(
                "  {:<20} {:<6} {:>6.1} s  {}",
                s.step,
                if s.passed { "ok" } else { "FAILED" },
                s.seconds,
                s.detail
            );
            for f in &s.failures {
                say!("    {f}");
            }
        }
        for k in &r.kept {
            say!("kept {}", k.display());
        }
    }
    Ok(exit)
}
