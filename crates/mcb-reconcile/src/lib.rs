//! The loop that closes the gap between a site file and what serves it: each round
//! re-reads the site file, asks upstream, updates and realises; with a test, a new
//! generation is served only once Moodle's own installer or upgrade passes on it. A round
//! that changes nothing makes no commit. [`watch`] repeats rounds until told to stop,
//! waiting longer after each failed round.
//!
//! It composes the operations of `mcb-realise`, the test runner and `mcb-apply`; it prints
//! nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mcb_realise::{ErrorKind, RealiseOptions, Realised, Reporter, RunOptions, Update};
use mcb_sitetest::{TestError, TestPlan, TestReport};

/// The longest a failing watch waits between rounds, as a multiple of its interval.
pub const MAX_BACKOFF: u32 = 32;

/// How each round runs.
#[derive(Debug, Clone, Default)]
pub struct ReconcileOptions {
    /// How a generation is made and where `result` goes (its `update` is always all:
    /// a round takes the newest versions the site file allows).
    pub realise: RealiseOptions,
    /// Serve a new generation only once its test passes.
    pub test: bool,
    /// Then apply it to the live site (`mcb apply`); implies `test`.
    pub apply: bool,
    /// After each round, publish what the site's generations use to the first binary cache,
    /// signed with this key (`mcb cache push`): the cache keeps up with the site.
    pub push_cache: Option<std::sync::Arc<mcb_substitute::SigningKey>>,
}

/// What a round did.
#[derive(Debug)]
pub struct Reconciled {
    pub realised: Realised,
    /// The live site brought to the newest generation (with `apply`).
    pub applied: Option<mcb_apply::Applied>,
    /// Why the newest generation was not applied (a gate it failed before).
    pub held: Option<String>,
    /// What was published to the binary cache (with `push_cache`).
    pub pushed: Option<mcb_realise::CachePushed>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Run(#[from] mcb_realise::RealiseError),
    #[error(transparent)]
    Test(#[from] TestError),
    #[error(transparent)]
    Apply(Box<mcb_apply::ApplyError>),
    /// The new generation failed its test: `result` still serves the one before.
    #[error("generation {} failed its test; result still serves the previous one{}", &report.commit.as_str()[..12], failures(report))]
    TestFailed { report: Box<TestReport> },
}

fn failures(report: &TestReport) -> String {
    let mut out = String::new();
    for s in report.steps.iter().filter(|s| !s.passed) {
        for f in &s.failures {
            out.push_str(&format!("\n{}: {f}", s.step));
        }
    }
    out
}

impl From<mcb_apply::ApplyError> for ReconcileError {
    fn from(e: mcb_apply::ApplyError) -> ReconcileError {
        ReconcileError::Apply(Box::new(e))
    }
}

impl ReconcileError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ReconcileError::Run(e) => e.kind(),
            ReconcileError::Test(e) => e.kind(),
            ReconcileError::Apply(e) => e.kind(),
            ReconcileError::TestFailed { .. } => ErrorKind::TestFailed,
        }
    }
}

/// One round: update and realise the site file at `site`; with a test, the new generation
/// is committed and laid out but served only once its test passes; with apply, the live site
/// is then brought to it, unless a gate refused it before.
pub fn round(
    site: &std::path::Path,
    run: &RunOptions,
    opts: &ReconcileOptions,
    reporter: &dyn Reporter,
) -> Result<Reconciled, ReconcileError> {
    let realised = realise_round(site, run, opts, reporter)?;
    // Every round pushes, changed or not: a push a failed round missed is made up, and what
    // the cache has already is not sent again.
    let pushed = match &opts.push_cache {
        Some(key) => Some(mcb_realise::cache_push(
            run,
            std::slice::from_ref(&realised.site),
            3,
            None,
            key,
        )?),
        None => None,
    };
    if !opts.apply {
        return Ok(Reconciled {
            realised,
            applied: None,
            held: None,
            pushed,
        });
    }
    if let Some(why) = mcb_apply::held_back(site, run)? {
        return Ok(Reconciled {
            realised,
            applied: None,
            held: Some(why),
            pushed,
        });
    }
    let request = mcb_apply::ApplyRequest {
        site_path: site.to_path_buf(),
        to: None,
        untested: false,
    };
    let applied = mcb_apply::apply(&request, run, reporter, &mcb_apply::Unwatched)?;
    Ok(Reconciled {
        realised,
        applied: Some(applied),
        held: None,
        pushed,
    })
}

fn realise_round(
    site: &std::path::Path,
    run: &RunOptions,
    opts: &ReconcileOptions,
    reporter: &dyn Reporter,
) -> Result<Realised, ReconcileError> {
    let mut run = run.clone();
    run.refresh = !run.offline;
    let realise = RealiseOptions {
        update: Update::All,
        ..opts.realise.clone()
    };
    if !opts.test && !opts.apply {
        return Ok(mcb_realise::realise(site, &run, &realise, reporter)?);
    }
    let realised = mcb_realise::realise_unserved(site, &run, &realise, reporter)?;
    if !realised.changed {
        // Nothing new: `result` serves what it served (a generation that failed its test
        // stays unserved until something changes).
        return Ok(realised);
    }
    let plan = TestPlan {
        served_by: opts.realise.out.clone(),
        ..TestPlan::default()
    };
    let report = mcb_sitetest::test_site(site, &plan, &run, reporter)?;
    if !report.passed {
        return Err(ReconcileError::TestFailed {
            report: Box::new(report),
        });
    }
    // Served: the generation is made; a realise from the store points `result` at it.
    let mut serve_run = run.clone();
    serve_run.offline = true;
    let serve = RealiseOptions {
        update: Update::Nothing,
        ..opts.realise.clone()
    };
    mcb_realise::realise(site, &serve_run, &serve, reporter)?;
    Ok(realised)
}

/// One round of a watch, as it ended.
#[derive(Debug)]
pub struct RoundReport {
    /// 1 for the first round.
    pub number: u64,
    pub outcome: Result<Reconciled, ReconcileError>,
    /// How long until the next round.
    pub next_in: Duration,
}

/// Rounds every `every` until `stop` is set (a running round finishes first); a failed
/// round is retried after a doubling wait, up to [`MAX_BACKOFF`] × `every`. `reporter`
/// gives each round its reporter; `on_round` hears how each ended. Returns the number of
/// rounds.
pub fn watch<R: Reporter>(
    site: &std::path::Path,
    run: &RunOptions,
    opts: &ReconcileOptions,
    every: Duration,
    stop: &AtomicBool,
    mut reporter: impl FnMut() -> R,
    mut on_round: impl FnMut(RoundReport),
) -> u64 {
    let every = every.max(Duration::from_secs(1));
    let mut failures: u32 = 0;
    let mut n: u64 = 0;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let outcome = round(site, run, opts, &reporter());
        let next_in = match &outcome {
            Ok(_) => {
                failures = 0;
                every
            }
            Err(_) => {
                failures = failures.saturating_add(1);
                every * (1u32 << failures.min(5)).min(MAX_BACKOFF)
            }
        };
        on_round(RoundReport {
            number: n,
            outcome,
            next_in,
        });
        let until = Instant::now() + next_in;
        while !stop.load(Ordering::SeqCst) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    n
}
