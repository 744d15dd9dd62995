//! `mcb realise`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::cli::{GlobalArgs, RealiseArgs};
use crate::error::{CliError, Exit};
use crate::progress::Progress;
use crate::term::{out_json, say};

#[derive(Serialize)]
struct Moodle<'a> {
    release: &'a str,
    build: &'a str,
}

#[derive(Serialize)]
struct Plugin<'a> {
    version: &'a str,
    release: Option<&'a str>,
    install_path: &'a str,
    source: &'a str,
    auto: bool,
}

/// `realise --json`.
#[derive(Serialize)]
struct Output<'a> {
    site: &'a str,
    commit: &'a mcb_store::GitOid,
    tree: &'a mcb_store::GitOid,
    path: &'a std::path::Path,
    link: &'a std::path::Path,
    moodle: Moodle<'a>,
    plugins: BTreeMap<&'a str, Plugin<'a>>,
    warnings: &'a [String],
    changed: bool,
    lock_written: bool,
    copied_files: usize,
    link_mode: mcb_store::LinkMode,
}

pub fn run(g: &GlobalArgs, a: &RealiseArgs) -> Result<Exit, CliError> {
    let mut opts = a.net.options(g);
    opts.out = a.out.clone();
    opts.link = mcb_store::LinkMode::parse(&a.link).expect("clap allows only known modes");
    opts.force = a.force;
    opts.allow_downgrade = a.allow_downgrade;
    let progress = Progress::new(g);
    let result = mcb_realise::realise(&a.site, &opts, &progress);
    progress.finish();
    let r = result?;
    if g.json {
        out_json(&Output {
            site: &r.site,
            commit: &r.commit,
            tree: &r.tree,
            path: &r.path,
            link: &r.link,
            moodle: Moodle {
                release: &r.moodle_release,
                build: &r.moodle_build,
            },
            plugins: r
                .plugins
                .iter()
                .map(|p| {
                    (
                        p.component.as_str(),
                        Plugin {
                            version: &p.version,
                            release: p.release.as_deref(),
                            install_path: &p.install_path,
                            source: &p.source,
                            auto: p.auto,
                        },
                    )
                })
                .collect(),
            warnings: &r.warnings,
            changed: r.changed,
            lock_written: r.lock_written,
            copied_files: r.copied_files,
            link_mode: r.link_mode,
        });
        return Ok(Exit::Success);
    }
    if g.quiet {
        return Ok(Exit::Success);
    }
    let what = if r.changed { "realised" } else { "up to date" };
    say!(
        "{what} {}: Moodle {} with {}",
        r.site,
        r.moodle_release,
        super::plural(r.plugins.len(), "plugin")
    );
    for p in &r.plugins {
        say!(
            "  {:<28} {:<12} {}{}",
            p.component,
            p.version,
            p.install_path,
            if p.auto { " (dependency)" } else { "" }
        );
    }
    say!("commit {}", r.commit);
    say!("tree   {}", r.path.display());
    say!("result {}", r.link.display());
    Ok(Exit::Success)
}
