//! `mcb update`: the lock moved to the newest versions the site file allows, then realised.

use mcb_realise::Update;

use crate::cli::{GlobalArgs, UpdateArgs};
use crate::error::{CliError, Exit};
use crate::progress::Progress;

pub fn run(g: &GlobalArgs, a: &UpdateArgs) -> Result<Exit, CliError> {
    let mut opts = a.net.options(g);
    opts.out = a.out.clone();
    opts.allow_downgrade = a.allow_downgrade;
    opts.lock_only = a.lock_only;
    // An update asks upstream even when the cached answer is young.
    opts.refresh = !opts.offline;
    opts.update = if a.components.is_empty() && !a.core {
        Update::All
    } else {
        Update::Only {
            components: a.components.clone(),
            core: a.core,
        }
    };
    let progress = Progress::new(g);
    let result = mcb_realise::realise(&a.site, &opts, &progress);
    progress.finish();
    super::realise::show(g, &result?);
    Ok(Exit::Success)
}
