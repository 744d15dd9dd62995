//! `mcb deploy`.

use mcb_deploy::DeploySource;

use crate::cli::{DeployArgs, GlobalArgs};
use crate::error::{CliError, Exit};
use crate::term::{out_json, say};

pub fn run(g: &GlobalArgs, a: &DeployArgs) -> Result<Exit, CliError> {
    let d = if a.rollback {
        mcb_deploy::rollback_deploy(&a.to)?
    } else {
        let from = a.from.as_deref().expect("clap requires it");
        let site = a.site.as_deref().expect("clap requires it");
        mcb_deploy::deploy(&mcb_deploy::DeployRequest {
            source: DeploySource::parse(from),
            site: site.to_string(),
            commit: a.commit.clone(),
            dir: a.to.clone(),
            keep: a.keep,
            link: a.link,
            untested: a.untested,
        })?
    };
    if !g.quiet {
        if !a.rollback && d.test.is_none() {
            crate::term::err_line(&format!(
                "warning: generation {} was never tested (no `mcb test` result recorded on it, or none pushed with it)",
                &d.commit.as_str()[..12]
            ));
        } else if d.test == Some(mcb_realise::TestOutcome::Failed) {
            crate::term::err_line(&format!(
                "warning: generation {} failed its `mcb test`; deployed as --untested asked",
                &d.commit.as_str()[..12]
            ));
        }
        if !d.drifted.is_empty() {
            crate::term::err_line(&format!(
                "warning: {} had drifted from its generation ({}{}); it was laid out again",
                d.release.display(),
                d.drifted
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
                if d.drifted.len() > 5 {
                    format!(" and {} more", d.drifted.len() - 5)
                } else {
                    String::new()
                }
            ));
        }
        if !a.rollback && d.link == mcb_store::LinkMode::Hardlink {
            crate::term::err_line(
                "warning: the release is hardlinked to the store's objects: an edit in it edits the store's copy (mcb finds and repairs it, but until then every generation holding the file sees the edit)",
            );
        }
    }
    if g.json {
        out_json(&crate::json::deployed(&d));
    } else if !g.quiet {
        say!(
            "{} {} → {}{}",
            if a.rollback {
                "rolled back"
            } else {
                "deployed"
            },
            d.current.display(),
            d.release.display(),
            match d.link {
                mcb_store::LinkMode::Hardlink => " (hardlinked from the store)",
                mcb_store::LinkMode::Reflink => " (reflinked from the store)",
                mcb_store::LinkMode::Clone if d.copied == 0 => " (cloned from the store)",
                _ => "",
            }
        );
        if d.web_root != d.current {
            say!("  serve {} (the web root)", d.web_root.display());
        }
        if let Some(p) = &d.previous {
            say!("  was {}", p.display());
        }
        for r in &d.removed {
            say!("  removed {}", r.display());
        }
    }
    Ok(Exit::Success)
}
