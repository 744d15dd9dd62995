//! `mcb archive`.

use crate::cli::{ArchiveArgs, GlobalArgs};
use crate::error::{CliError, Exit};
use crate::progress::Progress;
use crate::term::{out_json, say};

pub fn run(g: &GlobalArgs, a: &ArchiveArgs) -> Result<Exit, CliError> {
    let store = g.store();
    let site = crate::site_file::site_ref(a.site.as_deref(), &store)?;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| format!("{}-sources-{}.tar.gz", site.name, mcb_moodle::today()).into());
    let opts = mcb_realise::AuditOptions {
        since: a.since.clone(),
        out,
    };
    let progress = Progress::new(g);
    let result = mcb_realise::archive(&a.net.options(g), &site.name, &opts, &progress);
    progress.finish();
    let r = result?;
    if g.json {
        out_json(&crate::json::archive(&r));
        return Ok(Exit::Success);
    }
    if g.quiet {
        return Ok(Exit::Success);
    }
    let held = |h: mcb_realise::ArchiveHeld| match h {
        mcb_realise::ArchiveHeld::Zip => "zip as downloaded",
        mcb_realise::ArchiveHeld::GitBundle => "git bundle",
        mcb_realise::ArchiveHeld::Files => "files as stored",
    };
    say!(
        "archived {}: {} and {} in {} ({})",
        r.site,
        super::plural(r.generations.len(), "generation"),
        super::plural(r.sources.len(), "source"),
        r.out.display(),
        crate::cmd::sites::size(r.bytes)
    );
    let width = r
        .sources
        .iter()
        .map(|s| s.component.len())
        .max()
        .unwrap_or(0);
    let vwidth = r.sources.iter().map(|s| s.version.len()).max().unwrap_or(0);
    for s in &r.sources {
        let used: Vec<String> = s.generations.iter().map(|n| format!("gen-{n}")).collect();
        say!(
            "  {:width$}  {:vwidth$}  {:17}  {}  ({})",
            s.component,
            s.version,
            held(s.held),
            used.join(","),
            s.locked
        );
    }
    say!(
        "check it: tar xzf {} && sha256sum -c SHA256SUMS (in {}-sources)",
        r.out.display(),
        r.site
    );
    Ok(Exit::Success)
}
