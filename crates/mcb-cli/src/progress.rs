//! Progress on a terminal, silence when piped: an indicatif line on stderr driven by the
//! run's reports, its spinner ticking on a timer, its label naming the work under way, a
//! bar only while files are laid out, and the total time at the end of a long command.
//! Warnings always reach stderr (unless --quiet).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mcb_realise::{Reporter, Stage};

use crate::cli::GlobalArgs;
use crate::term;

/// A transfer under way: what, its byte counter, since when.
type Transfer = (String, Arc<AtomicUsize>, Instant);

pub(crate) struct Progress {
    bar: ProgressBar,
    quiet: bool,
    verbose: bool,
    visible: bool,
    started: Instant,
    transfer: Arc<Mutex<Option<Transfer>>>,
    stopped: Arc<AtomicBool>,
}

/// `12.3 MB`.
fn megabytes(n: usize) -> String {
    format!("{:.1} MB", n as f64 / 1e6)
}

/// What a transfer shows: its label, the bytes so far and the rate.
fn transfer_line(t: &Transfer) -> String {
    let (label, bytes, since) = t;
    let n = bytes.load(Ordering::Relaxed);
    let secs = since.elapsed().as_secs_f64().max(0.001);
    format!(
        "{label}  {}  {}/s",
        megabytes(n),
        megabytes((n as f64 / secs) as usize)
    )
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {prefix:>11} {wide_msg} {elapsed}")
        .expect("static template")
}

impl Progress {
    pub fn new(g: &GlobalArgs) -> Progress {
        let visible = !g.quiet && std::io::stderr().is_terminal();
        let bar = ProgressBar::with_draw_target(
            None,
            if visible {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        bar.set_style(spinner_style());
        let transfer: Arc<Mutex<Option<Transfer>>> = Arc::new(Mutex::new(None));
        let stopped = Arc::new(AtomicBool::new(false));
        if visible {
            bar.enable_steady_tick(Duration::from_millis(100));
            // The label of a transfer moves with its bytes.
            let (bar, transfer, stopped) = (bar.clone(), transfer.clone(), stopped.clone());
            std::thread::spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    if let Some(t) = transfer.lock().expect("not poisoned").as_ref() {
                        bar.set_message(transfer_line(t));
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
        }
        Progress {
            bar,
            quiet: g.quiet,
            verbose: g.verbose,
            visible,
            started: Instant::now(),
            transfer,
            stopped,
        }
    }

    /// Clears the line; a long command ends with its total time.
    pub fn finish(&self) {
        if self.stopped.swap(true, Ordering::Relaxed) {
            return;
        }
        self.bar.finish_and_clear();
        let took = self.started.elapsed();
        if self.visible && took >= Duration::from_secs(1) {
            term::err_line(&format!("done in {:.1} s", took.as_secs_f64()));
        }
    }
}

impl mcb_catalog::TransferWatch for Progress {
    fn transfer(&self, label: &str, bytes: Arc<AtomicUsize>) {
        self.bar.set_style(spinner_style());
        self.bar.set_prefix("fetch");
        self.bar.set_message(label.to_string());
        *self.transfer.lock().expect("not poisoned") =
            Some((label.to_string(), bytes, Instant::now()));
    }

    fn substitute_refused(&self, component: &str, why: &str) {
        // Said as it happens: a run that then fails upstream must still say why the cache
        // was passed over.
        self.warn(&format!(
            "{component}: {why}; taken from its upstream instead"
        ));
    }

    fn substituted(&self, component: &str, cache: &str, objects: usize, bytes: u64) {
        if !self.quiet {
            self.bar.suspend(|| {
                term::err_line(&format!(
                    "{component} from the cache {cache} ({objects} files downloaded, {})",
                    megabytes(bytes as usize)
                ))
            });
        }
    }
}

impl Reporter for Progress {
    fn stage(&self, stage: Stage, detail: &str) {
        *self.transfer.lock().expect("not poisoned") = None;
        // A new stage ends any bar: back to the spinner.
        self.bar.set_style(spinner_style());
        self.bar.set_length(0);
        self.bar.set_prefix(stage.name());
        self.bar.set_message(detail.to_string());
        if self.verbose {
            let t = self.started.elapsed().as_secs_f64();
            self.bar
                .suspend(|| term::err_line(&format!("{t:>8.3}s {:>11} {detail}", stage.name())));
        }
    }

    fn total(&self, n: u64) {
        self.bar.set_length(n);
        self.bar.set_position(0);
        self.bar.set_style(
            ProgressStyle::with_template("{prefix:>11} [{bar:30}] {pos}/{len} files {elapsed}")
                .expect("static template")
                .progress_chars("=> "),
        );
    }

    fn advance(&self) {
        self.bar.inc(1);
    }

    fn detail(&self, message: &str) {
        if self.verbose && !self.quiet {
            self.bar
                .suspend(|| term::err_line(&format!("{:>21} {message}", "")));
        }
    }

    fn warn(&self, message: &str) {
        if !self.quiet {
            self.bar
                .suspend(|| term::err_line(&format!("warning: {}", message.replace('\n', "\n  "))));
        }
    }
}

impl Drop for Progress {
    /// A reporter dropped without `finish` (a round of a watch) leaves no line behind.
    fn drop(&mut self) {
        self.finish();
    }
}
