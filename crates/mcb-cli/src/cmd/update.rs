//! `mcb update`: the lock moved to the newest versions the site file allows, then realised
//! (or, with `--lock-only`, only written).

use mcb_realise::{RealiseOptions, Update};

use crate::cli::{GlobalArgs, UpdateArgs};
use crate::error::{CliError, Exit};
use crate::progress::Progress;

pub fn run(g: &GlobalArgs, a: &UpdateArgs) -> Result<Exit, CliError> {
    let (site, components) = match a.args.split_first() {
        Some((first, rest)) if crate::site_file::reads_as_site(first) => {
            (Some(std::path::PathBuf::from(first)), rest)
        }
        _ => (None, &a.args[..]),
    };
    let site = crate::site_file::locate(site.as_deref())?;
    let mut run = a.net.options(g);
    // An update asks upstream even when the cached answer is young.
    run.refresh = !run.offline;
    let update = if components.is_empty() && !a.core {
        Update::All
    } else {
        Update::Only {
            components: components.to_vec(),
            core: a.core,
        }
    };
    let progress = Progress::new(g);
    if a.lock_only {
        let result = mcb_realise::resolve_lock(&site, &run, &update, &progress);
        progress.finish();
        let locked = result?;
        let site = mcb_config::SiteFile::load(&site)?;
        let link = mcb_realise::link_path(&site, a.out.as_deref());
        super::realise::show_locked(g, &locked, &link);
        return Ok(Exit::Success);
    }
    let opts = RealiseOptions {
        out: a.out.clone(),
        allow_downgrade: a.allow_downgrade,
        update,
        ..RealiseOptions::default()
    };
    let result = mcb_realise::realise(&site, &run, &opts, &progress);
    progress.finish();
    super::realise::show(g, &result?);
    Ok(Exit::Success)
}
