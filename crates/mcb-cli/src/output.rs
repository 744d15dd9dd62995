//! Running a command and presenting its outcome: human text, or one JSON object.

use std::path::{Path, PathBuf};

use mcb_realise::{Readiness, RealiseError, realise as run_realise};
use serde_json::{Value, json};

use crate::Global;
use crate::progress::Progress;
use crate::term::{say, tell};

pub(crate) const EXIT_FAILURE: u8 = 1;
pub(crate) const EXIT_CONFIG: u8 = 3;
pub(crate) const EXIT_UNSATISFIABLE: u8 = 4;
pub(crate) const EXIT_SOURCE: u8 = 5;
pub(crate) const EXIT_INTEGRITY: u8 = 6;

fn exit_code(e: &RealiseError) -> (u8, &'static str) {
    match e {
        RealiseError::Config(_) => (EXIT_CONFIG, "config"),
        RealiseError::Owner { .. } => (EXIT_CONFIG, "owner"),
        RealiseError::Unsatisfiable(_) => (EXIT_UNSATISFIABLE, "unsatisfiable"),
        RealiseError::Source { .. } => (EXIT_SOURCE, "source"),
        RealiseError::Integrity { .. } => (EXIT_INTEGRITY, "integrity"),
        RealiseError::Filesystem { .. } => (EXIT_FAILURE, "filesystem"),
        RealiseError::Store(_) | RealiseError::Git(_) => (EXIT_FAILURE, "store"),
    }
}

/// Prints an error the way every command does, and returns its exit code.
pub(crate) fn fail(g: &Global, e: &RealiseError) -> u8 {
    let (code, kind) = exit_code(e);
    let mut text = e.to_string();
    if let Some(h) = e.hint() {
        text.push_str(&format!("\n  hint: {h}"));
    }
    tell!("error: {text}");
    if g.json {
        let mut err = json!({ "kind": kind, "message": e.to_string(), "exit_code": code });
        if let RealiseError::Unsatisfiable(problems) = e {
            err["problems"] = problems
                .iter()
                .map(|p| {
                    json!({
                        "component": p.component,
                        "rule": p.rule.name(),
                        "facts": p.facts,
                        "hint": p.hint,
                    })
                })
                .collect();
        }
        crate::term::out_json(&json!({ "error": err }));
    }
    code
}

pub(crate) fn realise(
    g: &Global,
    site: &Path,
    out: Option<PathBuf>,
    link: &str,
    force: bool,
) -> u8 {
    let progress = Progress::new(g.quiet, g.verbose);
    let mut opts = g.options();
    opts.out = out;
    opts.link = mcb_store::LinkMode::parse(link).expect("clap allows only known modes");
    opts.force = force;
    let result = run_realise(site, &opts, &progress);
    progress.finish();
    let r = match result {
        Ok(r) => r,
        Err(e) => return fail(g, &e),
    };
    if g.json {
        let plugins: serde_json::Map<String, Value> = r
            .plugins
            .iter()
            .map(|p| {
                (
                    p.component.clone(),
                    json!({
                        "version": p.version,
                        "release": p.release,
                        "install_path": p.install_path,
                        "source": p.source,
                        "auto": p.auto,
                    }),
                )
            })
            .collect();
        crate::term::out_json(&json!({
            "site": r.site,
            "commit": r.commit,
            "tree": r.tree,
            "path": r.path,
            "link": r.link,
            "moodle": { "release": r.moodle_release, "build": r.moodle_build },
            "plugins": plugins,
            "warnings": r.warnings,
            "changed": r.changed,
            "lock_written": r.lock_written,
            "copied_files": r.copied_files,
            "link_mode": r.link_mode,
        }));
        return 0;
    }
    if !g.quiet {
        let what = if r.changed { "realised" } else { "up to date" };
        say!(
            "{what} {}: Moodle {} with {} plugin{}",
            r.site,
            r.moodle_release,
            r.plugins.len(),
            if r.plugins.len() == 1 { "" } else { "s" }
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
    } else {
        say!("{}", r.commit);
    }
    0
}

pub(crate) const EXIT_PENDING: u8 = 2;

pub(crate) fn info(g: &Global, component: &str, site: Option<PathBuf>) -> u8 {
    let site = site.or_else(|| {
        Path::new("site.ron")
            .is_file()
            .then(|| PathBuf::from("site.ron"))
    });
    let (source, record) = match mcb_realise::plugin_info(&g.options(), site.as_deref(), component)
    {
        Ok(r) => r,
        Err(e) => return fail(g, &e),
    };
    let versions = record.newest_first();
    if g.json {
        let list: Vec<Value> = versions
            .iter()
            .map(|v| {
                json!({
                    "version": v.version,
                    "release": v.release,
                    "maturity": maturity_name(v.maturity),
                    "supported_moodles": v.supportedmoodles.iter().map(|s| s.release.clone()).collect::<Vec<_>>(),
                    "download_url": v.downloadurl,
                    "id": v.id,
                })
            })
            .collect();
        crate::term::out_json(
            &json!({ "component": record.component, "name": record.name, "directory": source, "versions": list }),
        );
        return 0;
    }
    say!(
        "{}{} — {} version{} in {source}",
        record.component,
        record
            .name
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default(),
        versions.len(),
        if versions.len() == 1 { "" } else { "s" }
    );
    say!(
        "  {:<12} {:<20} {:<8} moodle",
        "version",
        "release",
        "maturity"
    );
    for v in versions {
        say!(
            "  {:<12} {:<20} {:<8} {}",
            v.version,
            v.release.as_deref().unwrap_or("-"),
            maturity_name(v.maturity),
            v.supported_list()
        );
    }
    0
}

fn maturity_name(code: Option<i64>) -> &'static str {
    match code {
        Some(50) => "alpha",
        Some(100) => "beta",
        Some(150) => "rc",
        Some(200) | None => "stable",
        Some(_) => "unknown",
    }
}

pub(crate) fn check(g: &Global, site: &Path, moodle: &str) -> u8 {
    let Some(target) = mcb_moodle::Release::parse_leading(moodle).filter(|_| {
        moodle.split('.').count() == 2
            && moodle
                .split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    }) else {
        tell!("error: --moodle takes a release X.Y such as 5.0, not '{moodle}'");
        return EXIT_CONFIG;
    };
    let progress = Progress::new(g.quiet, g.verbose);
    let result = mcb_realise::check_upgrade(site, target, &g.options());
    progress.finish();
    let c = match result {
        Ok(c) => c,
        Err(e) => return fail(g, &e),
    };
    let code = if c.blocked { EXIT_PENDING } else { 0 };
    if g.json {
        crate::term::out_json(&serde_json::to_value(&c).expect("plain data"));
        return code;
    }
    let core = match (&c.core_release, &c.core_build) {
        (Some(r), Some(b)) => format!(" ({r}, build {b})"),
        _ => String::new(),
    };
    say!("{} on Moodle {}{core}:", c.site, c.target);
    for p in &c.plugins {
        let now = p.locked.as_deref().unwrap_or("-");
        let dep = if p.auto { " (dependency)" } else { "" };
        match &p.readiness {
            Readiness::Fits {
                version, warning, ..
            } => {
                let change = if p.locked.as_deref() == Some(version.as_str()) {
                    "same version".to_string()
                } else {
                    format!("{now} -> {version}")
                };
                say!("  ok       {:<26} {change}{dep}", p.component);
                if let Some(w) = warning {
                    say!("           warning: {w}");
                }
            }
            Readiness::Blocked {
                reasons,
                last_supported,
            } => {
                say!("  BLOCKS   {:<26} {now}{dep}", p.component);
                for r in reasons {
                    say!("           {r}");
                }
                if let Some(l) = last_supported {
                    say!("           last supported release: Moodle {l}");
                }
            }
            Readiness::InCore => {
                say!("  IN CORE  {:<26} {now}{dep}", p.component);
                say!(
                    "           Moodle {} ships {}: remove it from the site file",
                    c.target,
                    p.component
                );
            }
        }
    }
    for n in &c.notes {
        say!("note: {n}");
    }
    let blocking = c
        .plugins
        .iter()
        .filter(|p| !matches!(p.readiness, Readiness::Fits { .. }))
        .count();
    if blocking == 0 {
        say!("every plugin has a version for Moodle {}", c.target);
    } else {
        say!(
            "{blocking} plugin{} block{} the upgrade to Moodle {}",
            if blocking == 1 { "" } else { "s" },
            if blocking == 1 { "s" } else { "" },
            c.target
        );
    }
    code
}
