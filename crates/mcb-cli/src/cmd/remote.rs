//! `mcb push`, `mcb deploy`, `mcb completions`, `mcb man`.

use mcb_realise::{DeploySource, SiteRef};

use crate::cli::{CompletionsArgs, DeployArgs, GlobalArgs, PushArgs, local_options};
use crate::error::{CliError, Exit};
use crate::term::{out_json, say};

pub fn push(g: &GlobalArgs, a: &PushArgs) -> Result<Exit, CliError> {
    let (site, remote) = match a.args.as_slice() {
        [remote] => ("site.ron".to_string(), remote.clone()),
        [site, remote] => (site.clone(), remote.clone()),
        _ => unreachable!("clap takes one or two"),
    };
    let opts = local_options(g);
    let site = SiteRef::parse(&site, &opts.store)?;
    let p = mcb_realise::push(&opts, &site.name, &remote, a.force)?;
    if g.json {
        out_json(&p);
    } else if !g.quiet {
        if p.updated {
            say!(
                "pushed {} ({}, gen-{}) to {}",
                p.site,
                &p.commit.as_str()[..12],
                p.tags,
                p.remote
            );
        } else {
            say!(
                "{} already has {} at {} (gen-{})",
                p.remote,
                p.site,
                &p.commit.as_str()[..12],
                p.tags
            );
        }
    }
    Ok(Exit::Success)
}

pub fn deploy(g: &GlobalArgs, a: &DeployArgs) -> Result<Exit, CliError> {
    let d = if a.rollback {
        mcb_realise::rollback_deploy(&a.to)?
    } else {
        let from = a.from.as_deref().expect("clap requires it");
        let site = a.site.as_deref().expect("clap requires it");
        mcb_realise::deploy(&mcb_realise::DeployRequest {
            source: DeploySource::parse(from),
            site: site.to_string(),
            commit: a.commit.clone(),
            dir: a.to.clone(),
            keep: a.keep,
            link: mcb_store::LinkMode::parse(&a.link).expect("clap allows only known modes"),
        })?
    };
    if !g.quiet {
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
        out_json(&d);
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
        if let Some(p) = &d.previous {
            say!("  was {}", p.display());
        }
        for r in &d.removed {
            say!("  removed {}", r.display());
        }
    }
    Ok(Exit::Success)
}

pub fn completions(a: &CompletionsArgs) -> Result<Exit, CliError> {
    use clap::CommandFactory;
    let mut cmd = crate::cli::Cli::command();
    clap_complete::generate(a.shell, &mut cmd, "mcb", &mut std::io::stdout());
    Ok(Exit::Success)
}

pub fn man() -> Result<Exit, CliError> {
    use clap::CommandFactory;
    let cmd = crate::cli::Cli::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .map_err(|e| CliError::failure("cannot render the manual page".into(), e))?;
    use std::io::Write;
    std::io::stdout()
        .write_all(&out)
        .map_err(|e| CliError::failure("cannot write the manual page".into(), e))?;
    Ok(Exit::Success)
}
