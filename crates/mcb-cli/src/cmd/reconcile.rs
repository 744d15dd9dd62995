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
    let progress = Progress::new(g);
    let result = mcb_realise::realise(&a.site, &opts, &progress);
    progress.finish();
    Ok(result?)
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
