//! `mcb check`.

use mcb_realise::Readiness;

use crate::cli::{CheckArgs, GlobalArgs};
use crate::error::{CliError, Exit};
use crate::progress::Progress;
use crate::term::{out_json, say};

pub fn run(g: &GlobalArgs, a: &CheckArgs) -> Result<Exit, CliError> {
    let Some(target) = a.moodle else {
        return matrix(g, a);
    };
    // The host given on the command line, else this machine.
    let host = if a.php.is_some() || a.db.is_some() {
        mcb_moodle::Host {
            php: a.php.clone(),
            extensions: None,
            database: a.db.clone(),
        }
    } else {
        mcb_realise::host::probe()
    };
    let progress = Progress::new(g);
    let result = mcb_realise::check_upgrade(
        &crate::site_file::locate(a.site.as_deref())?,
        target,
        a.core_source.as_deref(),
        &host,
        &a.net.options(g),
        &progress,
    );
    progress.finish();
    let c = result?;
    let code = if c.blocked {
        Exit::Pending
    } else if c.unknown {
        Exit::Source
    } else {
        Exit::Success
    };
    if code == Exit::Source {
        crate::term::failed(&format!(
            "{}: some plugins could not be checked for Moodle {} (their sources could not be read)",
            c.site, c.target
        ));
    }
    if g.json {
        out_json(&crate::json::check(&c));
        return Ok(code);
    }
    if g.quiet {
        return Ok(code);
    }
    let core = match (&c.core_release, &c.core_build) {
        (Some(r), Some(b)) => format!(" ({r}, build {b})"),
        _ => String::new(),
    };
    say!("{} on Moodle {}{core}:", c.site, c.target);
    for p in &c.plugins {
        say_plugin(p, &c.target);
    }
    for e in &c.environment {
        say!("  ENVIRONMENT {e}");
    }
    for n in &c.notes {
        say!("note: {n}");
    }
    if !c.core_read {
        say!(
            "hint: --core-source URL|PATH checks against the code of a Moodle {} you name",
            c.target
        );
    }
    say_summary(&c);
    Ok(code)
}

/// One plugin's readiness, as lines.
fn say_plugin(p: &mcb_realise::PluginReadiness, target: &str) {
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
        Readiness::Unknown { reason } => {
            say!("  UNKNOWN  {:<26} {now}{dep}", p.component);
            say!("           {reason}");
        }
        Readiness::NotNeeded => {}
        Readiness::InCore => {
            say!("  IN CORE  {:<26} {now}{dep}", p.component);
            say!(
                "           Moodle {} ships {}: remove it from the site file",
                target,
                p.component
            );
        }
    }
}

/// How many plugins block, could not be checked, and what the host lacks.
fn say_summary(c: &mcb_realise::UpgradeCheck) {
    let blocking = c
        .plugins
        .iter()
        .filter(|p| matches!(p.readiness, Readiness::Blocked { .. } | Readiness::InCore))
        .count();
    let unknown = c
        .plugins
        .iter()
        .filter(|p| matches!(p.readiness, Readiness::Unknown { .. }))
        .count();
    if unknown > 0 {
        say!(
            "{} could not be checked: their sources could not be read",
            super::plural(unknown, "plugin")
        );
    }
    if blocking == 0 && unknown == 0 {
        say!("every plugin has a version for Moodle {}", c.target);
    } else if blocking == 0 {
        say!("no plugin that could be checked blocks Moodle {}", c.target);
    } else {
        say!(
            "{} block{} the upgrade to Moodle {}",
            super::plural(blocking, "plugin"),
            if blocking == 1 { "s" } else { "" },
            c.target
        );
    }
    if !c.environment.is_empty() {
        say!(
            "the host does not meet Moodle {}'s requirements ({})",
            c.target,
            c.requirements.as_ref().map_or("", |r| r.from)
        );
    }
}

/// A cell of the matrix, as text.
fn cell_text(r: &Readiness) -> String {
    match r {
        Readiness::Fits {
            version,
            release,
            warning,
        } => {
            let v = release.clone().unwrap_or_else(|| version.clone());
            if warning.is_some() {
                format!("{v} (!)")
            } else {
                v
            }
        }
        Readiness::Blocked { .. } => "BLOCKS".into(),
        Readiness::InCore => "in core".into(),
        Readiness::Unknown { .. } => "unknown".into(),
        Readiness::NotNeeded => "-".into(),
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The matrix as one HTML page with no external assets.
fn html(m: &mcb_realise::ReadinessMatrix) -> String {
    let mut h =
        String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
    h.push_str(&html_escape(&format!("Upgrade readiness: {}", m.site)));
    h.push_str("</title><style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}th,td{border:1px solid #999;padding:.3em .6em;text-align:left}td.fits{background:#d7f5d7}td.blocked{background:#f8d0d0}td.in_core{background:#e0e0f8}td.unknown{background:#f8f0c8}td.not_needed{color:#888}</style></head><body>\n");
    h.push_str(&format!(
        "<h1>Upgrade readiness: {}</h1>\n<table id=\"readiness\"><thead><tr><th>plugin</th><th>now</th>",
        html_escape(&m.site)
    ));
    for r in &m.releases {
        let lts = if m.lts.contains(r) { " LTS" } else { "" };
        h.push_str(&format!("<th>Moodle {}{lts}</th>", html_escape(r)));
    }
    h.push_str("</tr></thead><tbody>\n");
    for row in &m.plugins {
        h.push_str(&format!(
            "<tr><th>{}{}</th><td>{}</td>",
            html_escape(&row.component),
            if row.auto { " (dependency)" } else { "" },
            html_escape(row.locked.as_deref().unwrap_or("-"))
        ));
        for c in &row.cells {
            let (class, title) = match &c.readiness {
                Readiness::Fits { warning, .. } => ("fits", warning.clone().unwrap_or_default()),
                Readiness::Blocked { reasons, .. } => ("blocked", reasons.join("; ")),
                Readiness::InCore => ("in_core", "Moodle ships it".to_string()),
                Readiness::Unknown { reason } => ("unknown", reason.clone()),
                Readiness::NotNeeded => ("not_needed", String::new()),
            };
            h.push_str(&format!(
                "<td class=\"{class}\" title=\"{}\">{}</td>",
                html_escape(&title),
                html_escape(&cell_text(&c.readiness))
            ));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table>\n");
    for (release, notes) in &m.notes {
        for n in notes {
            h.push_str(&format!(
                "<p class=\"note\">Moodle {}: {}</p>\n",
                html_escape(release),
                html_escape(n)
            ));
        }
    }
    for (release, ended) in &m.out_of_support {
        h.push_str(&format!(
            "<p class=\"note\">Moodle {} is out of support: its security fixes ended on {}</p>\n",
            html_escape(release),
            html_escape(ended)
        ));
    }
    h.push_str("</body></html>\n");
    h
}

/// `check --all-branches`.
fn matrix(g: &GlobalArgs, a: &CheckArgs) -> Result<Exit, CliError> {
    let progress = Progress::new(g);
    let result = mcb_realise::readiness_matrix(
        &crate::site_file::locate(a.site.as_deref())?,
        a.core_source.as_deref(),
        &a.net.options(g),
        &progress,
    );
    progress.finish();
    let m = result?;
    if let Some(path) = &a.html {
        std::fs::write(path, html(&m))
            .map_err(|e| CliError::failure(format!("cannot write {}", path.display()), e))?;
    }
    if g.json {
        out_json(&crate::json::matrix(&m));
        return Ok(Exit::Success);
    }
    if g.quiet {
        return Ok(Exit::Success);
    }
    let mut head = format!("{:<28} {:<12}", "plugin", "now");
    for r in &m.releases {
        head.push_str(&format!(" {:<12}", format!("Moodle {r}")));
    }
    say!("{}", head.trim_end());
    for row in &m.plugins {
        let name = if row.auto {
            format!("{} (dep)", row.component)
        } else {
            row.component.clone()
        };
        let mut line = format!("{:<28} {:<12}", name, row.locked.as_deref().unwrap_or("-"));
        for c in &row.cells {
            line.push_str(&format!(" {:<12}", cell_text(&c.readiness)));
        }
        say!("{}", line.trim_end());
    }
    let warned: Vec<String> = m
        .plugins
        .iter()
        .flat_map(|row| {
            row.cells.iter().filter_map(move |c| match &c.readiness {
                Readiness::Fits {
                    warning: Some(w), ..
                } => Some(format!("(!) Moodle {}: {w}", c.release)),
                _ => None,
            })
        })
        .collect();
    for w in warned {
        say!("{w}");
    }
    for (release, notes) in &m.notes {
        for n in notes {
            say!("note: Moodle {release}: {n}");
        }
    }
    if !m.lts.is_empty() {
        say!("long-term support: Moodle {}", m.lts.join(", "));
    }
    for (release, ended) in &m.out_of_support {
        say!("Moodle {release} is out of support: its security fixes ended on {ended}");
    }
    Ok(Exit::Success)
}
