//! `mcb push`.

use crate::cli::{GlobalArgs, PushArgs};
use crate::error::{CliError, Exit};
use crate::term::{out_json, say};

pub fn run(g: &GlobalArgs, a: &PushArgs) -> Result<Exit, CliError> {
    let (site, remote) = match a.args.as_slice() {
        [remote] => (None, remote.clone()),
        [site, remote] => (Some(site.as_str()), remote.clone()),
        _ => unreachable!("clap takes one or two"),
    };
    let store = g.store();
    let site = crate::site_file::site_ref(site, &store)?;
    let p = mcb_deploy::push(&store, &site.name, &remote, a.force)?;
    if g.json {
        out_json(&crate::json::pushed(&p));
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
