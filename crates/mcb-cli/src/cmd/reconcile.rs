//! `mcb reconcile`: one round, or with `--watch` a round every SECS seconds until SIGINT or
//! SIGTERM, which end it between rounds (a running round finishes first).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use mcb_realise::RealiseOptions;
use mcb_reconcile::{ReconcileOptions, RoundReport};

use crate::cli::{GlobalArgs, ReconcileArgs};
use crate::error::{CliError, Exit};
use crate::progress::Progress;
use crate::term::{err_line, out_json, say};

fn options(g: &GlobalArgs, a: &ReconcileArgs) -> Result<ReconcileOptions, CliError> {
    let push_cache = if a.push_cache {
        Some(Arc::new(super::cache::signing_key(g, None)?))
    } else {
        None
    };
    Ok(ReconcileOptions {
        realise: RealiseOptions {
            out: a.out.clone(),
            allow_source_change: a.allow_source_change,
            ..RealiseOptions::default()
        },
        test: a.test || a.apply,
        apply: a.apply,
        push_cache,
    })
}

pub fn run(g: &GlobalArgs, a: &ReconcileArgs) -> Result<Exit, CliError> {
    let run = a.net.options(g);
    let opts = options(g, a)?;
    let site = crate::site_file::locate(a.site.as_deref())?;
    let Some(every) = a.watch else {
        let progress = Progress::new(g);
        let result = mcb_reconcile::round(&site, &run, &opts, &progress);
        progress.finish();
        let done = result?;
        if g.json && a.apply {
            out_json(&crate::json::round(1, 0, Ok(&done)));
        } else {
            super::realise::show(g, &done.realised);
            show_apply(g, &done);
        }
        return Ok(Exit::Success);
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| CliError::failure(format!("cannot watch for signal {signal}"), e))?;
    }
    let rounds = mcb_reconcile::watch(
        &site,
        &run,
        &opts,
        Duration::from_secs(every),
        &stop,
        || Progress::new(g),
        |r| report(g, r),
    );
    if !g.quiet && !g.json {
        err_line(&format!(
            "reconcile stopped after {}",
            super::plural(rounds as usize, "round")
        ));
    }
    Ok(Exit::Success)
}

/// One round, as text or as one JSON line.
fn report(g: &GlobalArgs, r: RoundReport) {
    let wait = r.next_in.as_secs();
    if g.json {
        let outcome = match r.outcome {
            Ok(ref done) => Ok(done),
            Err(e) => Err(CliError::from(e).json()),
        };
        out_json(&crate::json::round(r.number, wait, outcome));
        return;
    }
    match r.outcome {
        Ok(done) => {
            if !g.quiet {
                say!("round {}:", r.number);
            }
            super::realise::show(g, &done.realised);
            show_apply(g, &done);
        }
        Err(e) => {
            CliError::from(e).show(false);
            err_line(&format!(
                "round {} failed; next round in {wait} s",
                r.number
            ));
        }
    }
}

/// What the round did with the live site.
fn show_apply(g: &GlobalArgs, done: &mcb_reconcile::Reconciled) {
    if let Some(why) = &done.held {
        err_line(&format!("held: {why}"));
    }
    if g.quiet || g.json {
        return;
    }
    if let Some(p) = &done.pushed {
        say!("{}", super::cache::pushed_line(p));
    }
    if let Some(a) = &done.applied {
        let short = &a.generation.as_str()[..12];
        if a.unchanged {
            say!("{}: the live site already runs {short}", a.site);
        } else {
            say!(
                "{}: applied {short} to the live site ({})",
                a.site,
                a.steps
                    .iter()
                    .map(|s| s.step.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
}
