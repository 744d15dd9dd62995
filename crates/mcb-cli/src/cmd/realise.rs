//! `mcb realise`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::cli::{GlobalArgs, RealiseArgs};
use crate::error::{CliError, Exit};
use crate::progress::Progress;
use crate::term::say;

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
    commit: Option<&'a mcb_store::GitOid>,
    tree: &'a mcb_store::GitOid,
    path: Option<&'a std::path::Path>,
    link: &'a std::path::Path,
    moodle: Moodle<'a>,
    plugins: BTreeMap<&'a str, Plugin<'a>>,
    warnings: &'a [String],
    changes: &'a [mcb_realise::Change],
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
    opts.locked = a.locked;
    let progress = Progress::new(g);
    let result = mcb_realise::realise(&a.site, &opts, &progress);
    progress.finish();
    let r = result?;
    show(g, &r);
    Ok(Exit::Success)
}

/// `realise --json`: the document.
pub(crate) fn json(r: &mcb_realise::Realised) -> serde_json::Value {
    serde_json::to_value(Output {
        site: &r.site,
        commit: r.commit.as_ref(),
        tree: &r.tree,
        path: r.path.as_deref(),
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
        changes: &r.changes,
        changed: r.changed,
        lock_written: r.lock_written,
        copied_files: r.copied_files,
        link_mode: r.link_mode,
    })
    .expect("outputs are plain data")
}

/// What a realise (or update) made, as text or as its JSON document.
pub(crate) fn show(g: &GlobalArgs, r: &mcb_realise::Realised) {
    if g.json {
        crate::term::out_json_doc(&json(r));
        return;
    }
    if g.quiet {
        return;
    }
    let what = match (&r.commit, r.changed) {
        (None, _) => "locked",
        (Some(_), true) => "realised",
        (Some(_), false) => "up to date",
    };
    say!(
        "{what} {}: Moodle {} with {}",
        r.site,
        r.moodle_release,
        super::plural(r.plugins.len(), "plugin")
    );
    super::say_changes(&r.changes);
    for p in &r.plugins {
        say!(
            "  {:<28} {:<12} {}{}",
            p.component,
            p.version,
            p.install_path,
            if p.auto { " (dependency)" } else { "" }
        );
    }
    if let Some(c) = &r.commit {
        say!("commit {c}");
    }
    if let Some(p) = &r.path {
        say!("tree   {}", p.display());
        say!("result {}", r.link.display());
    }
    if r.lock_written {
        say!("site.lock updated");
    }
}
