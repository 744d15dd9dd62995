//! `mcb realise`.

use mcb_realise::{LockResolved, RealiseOptions, Realised, RealisedPlugin, Update};

use crate::cli::{GlobalArgs, RealiseArgs};
use crate::error::{CliError, Exit};
use crate::progress::Progress;
use crate::term::{out_json, say};

pub fn run(g: &GlobalArgs, a: &RealiseArgs) -> Result<Exit, CliError> {
    let opts = RealiseOptions {
        out: a.out.clone(),
        link: a.link,
        force: a.force,
        allow_downgrade: a.allow_downgrade,
        locked: a.locked,
        update: Update::Nothing,
        allow_source_change: true,
    };
    let site = crate::site_file::locate(a.site.as_deref())?;
    if let Some(file) = &a.plan {
        check_saved_plan(g, a, &site, file)?;
    }
    let progress = Progress::new(g);
    let result = if a.no_link {
        mcb_realise::realise_unserved(&site, &a.net.options(g), &opts, &progress)
    } else {
        mcb_realise::realise(&site, &a.net.options(g), &opts, &progress)
    };
    progress.finish();
    let r = result?;
    show(g, &r);
    Ok(Exit::Success)
}

/// Refuses a saved plan that no longer holds: planned again now, it must choose the same,
/// from the same site file, lock and generation.
fn check_saved_plan(
    g: &GlobalArgs,
    a: &RealiseArgs,
    site: &std::path::Path,
    file: &std::path::Path,
) -> Result<(), CliError> {
    use crate::saved_plan::SavedPlan;
    let saved = SavedPlan::read(file)?;
    let progress = Progress::new(g);
    let result = mcb_realise::pending(site, &a.net.options(g), &Update::Nothing, &progress);
    progress.finish();
    let now = SavedPlan::of(site, &result?)?;
    let moved = saved.moved(site, &now);
    if moved.is_empty() {
        return Ok(());
    }
    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Moved(String);
    let mut e = CliError::usage_text(String::new());
    e.exit = Exit::Pending;
    e.error = Box::new(Moved(format!(
        "the plan in {} no longer holds: {}",
        file.display(),
        moved.join("; ")
    )));
    e.hints.push(format!(
        "make and review the plan again: mcb plan --out {}",
        file.display()
    ));
    Err(e)
}

/// What a realise (or update) made, as text or as its JSON document.
pub(crate) fn show(g: &GlobalArgs, r: &Realised) {
    if g.json {
        out_json(&crate::json::realised(r));
        return;
    }
    if g.quiet {
        return;
    }
    let what = if r.changed { "realised" } else { "up to date" };
    say_built(what, &r.site, &r.moodle_release, &r.plugins, &r.changes);
    say!("commit {}", r.commit);
    say!("tree   {}", r.path.display());
    if std::fs::read_link(&r.link).is_ok_and(|t| t == r.path) {
        say!("result {}", r.link.display());
    } else {
        say!(
            "result {} left as it was (not switched to this generation)",
            r.link.display()
        );
    }
    if r.web_root != r.link {
        say!("serve  {} (the web root)", r.web_root.display());
    }
    if r.lock_written {
        say!("site.lock updated");
    }
}

/// What `update --lock-only` wrote, as text or as the realise document with nothing
/// built.
pub(crate) fn show_locked(g: &GlobalArgs, r: &LockResolved, link: &std::path::Path) {
    if g.json {
        out_json(&crate::json::locked(r, link));
        return;
    }
    if g.quiet {
        return;
    }
    let plugins = RealisedPlugin::of_lock(&r.lock);
    say_built(
        "locked",
        &r.site,
        &r.lock.moodle.release,
        &plugins,
        &r.changes,
    );
    if r.lock_written {
        say!("site.lock updated");
    }
}

fn say_built(
    what: &str,
    site: &str,
    moodle: &str,
    plugins: &[RealisedPlugin],
    changes: &[mcb_realise::Change],
) {
    say!(
        "{what} {site}: Moodle {moodle} with {}",
        super::plural(plugins.len(), "plugin")
    );
    super::say_changes(changes);
    // As plan says it: the release administrators know, then the build.
    let versions: Vec<String> = plugins
        .iter()
        .map(|p| match &p.release {
            Some(r) if *r != p.version => format!("{r} ({})", p.version),
            _ => p.version.clone(),
        })
        .collect();
    let width = versions
        .iter()
        .map(|v| v.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(12, 44);
    for (p, version) in plugins.iter().zip(&versions) {
        say!(
            "  {:<28} {:<width$} {}{}",
            p.component,
            version,
            p.install_path,
            if p.auto { " (dependency)" } else { "" }
        );
    }
}
