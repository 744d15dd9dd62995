//! Progress on a terminal, silence when piped: an indicatif bar on stderr driven by the
//! pipeline's reports. Warnings always reach stderr (unless --quiet).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mcb_realise::{Reporter, Stage};

pub(crate) struct Progress {
    bar: ProgressBar,
    quiet: bool,
    verbose: bool,
    started: std::time::Instant,
}

impl Progress {
    pub fn new(quiet: bool, verbose: bool) -> Progress {
        let visible = !quiet && std::io::stderr().is_terminal();
        let bar = ProgressBar::with_draw_target(
            None,
            if visible {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix:>11} {wide_msg}")
                .expect("static template"),
        );
        Progress {
            bar,
            quiet,
            verbose,
            started: std::time::Instant::now(),
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Reporter for Progress {
    fn stage(&self, stage: Stage, detail: &str) {
        self.bar.set_prefix(stage.name());
        self.bar.set_message(detail.to_string());
        self.bar.tick();
        if self.verbose {
            let t = self.started.elapsed().as_secs_f64();
            self.bar.suspend(|| {
                crate::term::err_line(&format!("{t:>8.3}s {:>11} {detail}", stage.name()))
            });
        }
    }

    fn total(&self, n: u64) {
        self.bar.set_length(n);
        self.bar.set_position(0);
        self.bar.set_style(
            ProgressStyle::with_template("{prefix:>11} [{bar:30}] {pos}/{len} files")
                .expect("static template")
                .progress_chars("=> "),
        );
    }

    fn advance(&self) {
        self.bar.inc(1);
    }

    fn warn(&self, message: &str) {
        if !self.quiet {
            self.bar.suspend(|| {
                crate::term::err_line(&format!("warning: {}", message.replace('\n', "\n  ")))
            });
        }
    }
}
