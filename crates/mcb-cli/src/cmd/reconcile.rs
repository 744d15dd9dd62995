//! `mcb reconcile`: the loop that closes the gap between the site file and the codebase.
//! Each round re-reads the site file, asks upstream, updates and realises; a round that
//! changes nothing makes no commit. With `--watch` it repeats until SIGINT or SIGTERM,
//! which end it between rounds (a running round finishes first); a failed round is said
//! and retried after a longer wait each time it fails again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mcb_realise::Update;

use crate::cli::{GlobalArgs, ReconcileArgs};
use crate::error::{CliError, Exit};
use crate::progress::Progress;
use crate::term::{err_line, out_json_doc, say};

/// The longest a failing `--watch` waits between rounds, as a multiple of its interval.
const MAX_BACKOFF: u32 = 32;

fn round(g: &GlobalArgs, a: &ReconcileArgs) -> Result<mcb_realise::Realised, CliError> {
    let mut opts = a.net.options(g);
    opts.out = a.out.clone();
    opts.update = Update::All;
    opts.refresh = !opts.offline;
    opts.hold_link = a.test;
    let progress = Progress::new(g);
    let result = mcb_realise::realise(&a.site, &opts, &progress);
    progress.finish();
    let realised = result?;
    if !a.test || !realised.changed {
        return Ok(realised);
    }
    // The new generation is served only once Moodle installs or upgrades to it.
    let progress = Progress::new(g);
    let tested =
        mcb_realise::test_site(&a.site, &mcb_realise::TestPlan::default(), &opts, &progress);
    progress.finish();
    let report = tested?;
    if !report.passed {
        let mut said = Vec::new();
        for s in report.steps.iter().filter(|s| !s.passed) {
            for f in &s.failures {
                said.push(format!(
                    "{}: {}{}",
                    s.step,
                    f.component
                        .as_deref()
                        .map(|c| format!("{c}: "))
                        .unwrap_or_default(),
                    f.message
                ));
            }
        }
        return Err(CliError::test_failed(
            format!(
                "generation {} failed its test; result still serves the previous one\n{}",
                realised
                    .commit
                    .as_ref()
                    .map(|c| &c.as_str()[..12])
                    .unwrap_or("?"),
                said.join("\n")
            ),
            "`mcb history` shows the result; fix the site file or pin what broke",
        ));
    }
    let mut serve = a.net.options(g);
    serve.out = a.out.clone();
    serve.offline = true;
    let progress = Progress::new(g);
    let served = mcb_realise::realise(&a.site, &serve, &progress);
    progress.finish();
    served?;
    Ok(realised)
}

pub fn run(g: &GlobalArgs, a: &ReconcileArgs) -> Result<Exit, CliError> {
    let Some(every) = a.watch else {
        let r = round(g, a)?;
        super::realise::show(g, &r);
        return Ok(Exit::Success);
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| CliError::failure(format!("cannot watch for signal {signal}"), e))?;
    }
    let every = Duration::from_secs(every.max(1));
    let mut failures: u32 = 0;
    let mut n: u64 = 0;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let outcome = round(g, a);
        let wait = match &outcome {
            Ok(_) => {
                failures = 0;
                every
            }
            Err(_) => {
                failures = failures.saturating_add(1);
                every * (1u32 << failures.min(5)).min(MAX_BACKOFF)
            }
        };
        report(g, n, &outcome, wait);
        let until = Instant::now() + wait;
        while !stop.load(Ordering::SeqCst) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    if !g.quiet && !g.json {
        err_line(&format!(
            "reconcile stopped after {n} round{}",
            if n == 1 { "" } else { "s" }
        ));
    }
    Ok(Exit::Success)
}

/// One round, as text or as one JSON line.
fn report(
    g: &GlobalArgs,
    n: u64,
    outcome: &Result<mcb_realise::Realised, CliError>,
    wait: Duration,
) {
    if g.json {
        let mut doc = serde_json::json!({ "round": n, "next_in_secs": wait.as_secs() });
        let obj = doc.as_object_mut().expect("an object");
        match outcome {
            Ok(r) => {
                obj.insert("ok".into(), true.into());
                obj.insert("realised".into(), super::realise::json(r));
            }
            Err(e) => {
                obj.insert("ok".into(), false.into());
                obj.insert("error".into(), e.json());
            }
        }
        out_json_doc(&doc);
        return;
    }
    match outcome {
        Ok(r) => {
            if !g.quiet {
                say!("round {n}:");
            }
            super::realise::show(g, r);
        }
        Err(e) => {
            e.show(false);
            err_line(&format!(
                "round {n} failed; next round in {} s",
                wait.as_secs()
            ));
        }
    }
}
