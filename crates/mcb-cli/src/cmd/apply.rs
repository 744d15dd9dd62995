//! `mcb apply`: one site, or several in waves.

use std::path::PathBuf;

use mcb_apply::{Applied, ApplyRequest, ApplyWatch, StepDone};

use crate::cli::{ApplyArgs, GlobalArgs, local_options};
use crate::error::{CliError, Exit};
use crate::term::{err_line, out_json, say};

/// Says each step as it ends: `  site: step  detail (1.2 s)`.
struct Said {
    quiet: bool,
    /// Several sites at once: each line names its site.
    named: bool,
}

impl ApplyWatch for Said {
    fn finished(&self, site: &str, step: &StepDone) {
        if self.quiet {
            return;
        }
        let who = if self.named {
            format!("{site}: ")
        } else {
            String::new()
        };
        // The step names stay in one column; a failure is marked where its detail begins.
        let mark = if step.passed { "" } else { "FAILED: " };
        say!(
            "  {who}{:<19} {mark}{} ({:.1} s)",
            step.step,
            step.detail,
            step.seconds
        );
    }
}

/// Every site of the store whose site file has a target on this machine.
fn every_site_here(g: &GlobalArgs) -> Result<Vec<PathBuf>, CliError> {
    let sites = mcb_realise::sites(&g.store(), 0)?;
    Ok(sites
        .into_iter()
        .filter_map(|s| s.site_file)
        .filter(|f| {
            mcb_config::SiteFile::load(f)
                .ok()
                .and_then(|s| s.target)
                .is_some_and(|t| t.deploy.join("current").exists())
        })
        .collect())
}

/// `gen-N (abcdef123456)`.
fn generation(a: &Applied) -> String {
    let short = &a.generation.as_str()[..12];
    match a.number {
        Some(n) => format!("gen-{n} ({short})"),
        None => short.to_string(),
    }
}

pub fn run(g: &GlobalArgs, a: &ApplyArgs) -> Result<Exit, CliError> {
    let sites = if a.all {
        every_site_here(g)?
    } else if a.sites.is_empty() {
        vec![crate::site_file::locate(None)?]
    } else {
        a.sites
            .iter()
            .map(|s| crate::site_file::locate(Some(s)))
            .collect::<Result<_, _>>()?
    };
    if sites.is_empty() {
        return Err(CliError::usage_text(
            "no site of the store has a target on this machine".into(),
        ));
    }
    if a.to.is_some() && sites.len() > 1 {
        return Err(CliError::usage_text(
            "--to names a generation of one site; give one site file with it".into(),
        ));
    }
    let waves = match &a.wave {
        Some(w) => w.split(sites.len()),
        None => (0..sites.len()).map(|i| i..i + 1).collect(),
    };
    let opts = local_options(g);
    let watch = Said {
        quiet: g.quiet || g.json,
        named: sites.len() > 1,
    };
    let mut exit = Exit::Success;
    let mut applied_sites = 0;
    for (number, wave) in waves.iter().enumerate() {
        let outcomes: Vec<(PathBuf, Result<Applied, CliError>)> = std::thread::scope(|s| {
            let running: Vec<_> = sites[wave.clone()]
                .iter()
                .map(|site| {
                    let request = ApplyRequest {
                        site_path: site.clone(),
                        to: a.to.clone(),
                        untested: a.untested,
                    };
                    let (opts, watch) = (&opts, &watch);
                    s.spawn(move || {
                        mcb_apply::apply(&request, opts, &mcb_realise::Silent, watch)
                            .map_err(CliError::from)
                    })
                })
                .collect();
            sites[wave.clone()]
                .iter()
                .cloned()
                .zip(running.into_iter().map(|h| h.join().expect("an apply ran")))
                .collect()
        });
        let mut failed = false;
        for (site, outcome) in outcomes {
            match outcome {
                Ok(done) => {
                    applied_sites += 1;
                    show(g, &done);
                }
                Err(e) => {
                    failed = true;
                    if exit == Exit::Success {
                        exit = e.exit;
                    }
                    if g.json {
                        out_json(&crate::json::apply_failed(&site, &e.json()));
                    }
                    e.show(false);
                }
            }
        }
        if failed {
            let left: Vec<String> = sites[wave.end..]
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            if !left.is_empty() {
                err_line(&format!(
                    "the rollout stopped after wave {} of {}: {} not applied: {}",
                    number + 1,
                    waves.len(),
                    super::plural(left.len(), "site"),
                    left.join(", ")
                ));
            }
            break;
        }
    }
    if sites.len() > 1 && !g.quiet && !g.json {
        say!("{applied_sites} of {} sites applied", sites.len());
    }
    Ok(exit)
}

/// One site's outcome.
fn show(g: &GlobalArgs, a: &Applied) {
    if g.json {
        out_json(&crate::json::applied(a));
        return;
    }
    if let Some(r) = &a.recovered {
        err_line(&format!("warning: {}: {r}", a.site));
    }
    if g.quiet {
        return;
    }
    if a.unchanged {
        say!("{}: already runs {}; nothing to do", a.site, generation(a));
        return;
    }
    let seconds: f64 = a.steps.iter().map(|s| s.seconds).sum();
    say!(
        "{}: applied {} in {seconds:.1} s ({} kept)",
        a.site,
        generation(a),
        super::plural(a.backups_kept, "backup")
    );
}
