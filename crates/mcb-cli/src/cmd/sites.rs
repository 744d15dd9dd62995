//! `mcb sites` and `mcb forget`.

use crate::cli::{ForgetArgs, GlobalArgs, SitesArgs, local_options};
use crate::error::{CliError, Exit};
use crate::progress::Progress;
use crate::term::{out_json, say};

/// Bytes as people read them.
pub(crate) fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GB", b as f64 / f64::from(1u32 << 30)),
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / f64::from(1u32 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

pub fn run(g: &GlobalArgs, a: &SitesArgs) -> Result<Exit, CliError> {
    let sites = mcb_realise::sites(&g.store(), a.keep)?;
    if g.json {
        out_json(&crate::json::sites(&sites));
        return Ok(Exit::Success);
    }
    if g.quiet {
        return Ok(Exit::Success);
    }
    if sites.is_empty() {
        say!("no sites in the store");
    }
    for s in &sites {
        say!(
            "{:<20} Moodle {:<14} commit {} tree {} only its own: {}",
            s.name,
            s.moodle_release
                .as_deref()
                .map(|r| r.split(" (").next().unwrap_or(r))
                .unwrap_or("?"),
            &s.commit.as_str()[..12],
            &s.tree.as_str()[..12],
            size(s.unique_bytes)
        );
        if let Some(f) = &s.site_file {
            say!("    site file {}", f.display());
        }
        for r in &s.results {
            say!("    served by {}", r.display());
        }
    }
    Ok(Exit::Success)
}

pub fn forget(g: &GlobalArgs, a: &ForgetArgs) -> Result<Exit, CliError> {
    let opts = local_options(g);
    let site = crate::site_file::site_ref(Some(&a.site), &opts.store)?;
    let progress = Progress::new(g);
    let result = mcb_realise::forget(&opts, &site.name, a.force, &progress);
    progress.finish();
    let f = result?;
    if g.json {
        out_json(&crate::json::forgotten(&f));
        return Ok(Exit::Success);
    }
    if !g.quiet {
        say!(
            "forgot site {} (it was at {}); `mcb gc` frees what only it used",
            f.site,
            &f.commit.as_str()[..12]
        );
        for l in &f.dropped_results {
            say!("  {} is no longer a root", l.display());
        }
    }
    Ok(Exit::Success)
}
