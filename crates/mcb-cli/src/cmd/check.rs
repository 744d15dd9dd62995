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

/// `a, b and c`.
fn listed(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [head @ .., last] => format!("{} and {last}", head.join(", ")),
    }
}

/// `text` said of `release`, with the release (`5.1`), its branch (`501`) and build
/// numbers taken out: two releases whose texts are the same then share a cause.
fn cause_of(text: &str, release: &str) -> String {
    static BUILD: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"\b\d{10}(\.\d+)?\b").expect("a regex"));
    let branch = release.replace('.', "0");
    let text = text.replace(release, "X.Y").replace(&branch, "XY");
    BUILD.replace_all(&text, "BUILD").into_owned()
}

/// Why each plugin blocks (or is unknown on) a release, one line per plugin and cause:
/// the releases that share a cause are named together, with the first one's words.
fn reasons(m: &mcb_realise::ReadinessMatrix) -> Vec<(String, String, Vec<String>)> {
    let mut out: Vec<(String, String, Vec<String>)> = Vec::new();
    let mut keys: Vec<String> = Vec::new();
    for row in &m.plugins {
        for c in &row.cells {
            let why = match &c.readiness {
                Readiness::Blocked { reasons, .. } => format!("BLOCKS: {}", reasons.join("; ")),
                Readiness::Unknown { reason } => format!("unknown: {reason}"),
                Readiness::Fits {
                    warning: Some(w), ..
                } => format!("installs, but {w}"),
                _ => continue,
            };
            let key = format!("{} {}", row.component, cause_of(&why, &c.release));
            match keys.iter().position(|k| *k == key) {
                Some(i) => out[i].2.push(c.release.clone()),
                None => {
                    keys.push(key);
                    out.push((row.component.clone(), why, vec![c.release.clone()]));
                }
            }
        }
    }
    out
}

/// Each note once per cause, with the releases it was said of (in the first one's words).
fn grouped_notes(m: &mcb_realise::ReadinessMatrix) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut keys: Vec<String> = Vec::new();
    for (release, notes) in &m.notes {
        for n in notes {
            let key = cause_of(n, release);
            match keys.iter().position(|k| *k == key) {
                Some(i) => out[i].1.push(release.clone()),
                None => {
                    keys.push(key);
                    out.push((n.clone(), vec![release.clone()]));
                }
            }
        }
    }
    out
}

/// `Moodle 5.0` or `Moodle 5.0, 5.1 and 5.2 (in 5.0's words)`.
fn releases_said(releases: &[String]) -> String {
    match releases {
        [one] => format!("Moodle {one}"),
        [first, ..] => format!("Moodle {} (in {first}'s words)", listed(releases)),
        [] => String::new(),
    }
}

/// The version the site runs now, by its release name.
fn now_of(row: &mcb_realise::MatrixRow) -> String {
    match (&row.locked_release, &row.locked) {
        (Some(r), _) => r.clone(),
        (None, Some(b)) => b.clone(),
        (None, None) => "-".into(),
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The matrix as one HTML page with no external assets, readable printed or mailed: the
/// reasons are written out under the table, not hidden in tooltips.
fn html(m: &mcb_realise::ReadinessMatrix) -> String {
    let e = html_escape;
    let mut h =
        String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
    h.push_str(&e(&format!("Upgrade readiness: {}", m.site)));
    h.push_str("</title><style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}th,td{border:1px solid #999;padding:.3em .6em;text-align:left}td.fits{background:#d7f5d7}td.blocked{background:#f8d0d0;font-weight:bold}td.in_core{background:#e0e0f8}td.unknown{background:#f8f0c8}td.not_needed{color:#888}tfoot td.yes{background:#d7f5d7}tfoot td.no{background:#f8d0d0;font-weight:bold}@media print{body{margin:0}td,th{-webkit-print-color-adjust:exact;print-color-adjust:exact}}</style></head><body>\n");
    h.push_str(&format!(
        "<h1>Upgrade readiness: {}</h1>\n<p id=\"facts\">Made {} by mcb. The site runs Moodle {} now.</p>\n<table id=\"readiness\"><thead><tr><th>plugin</th><th>now</th>",
        e(&m.site),
        e(&m.date),
        e(m.core_now.as_deref().unwrap_or("(not built yet)"))
    ));
    for r in &m.releases {
        let lts = if m.lts.contains(r) { " LTS" } else { "" };
        h.push_str(&format!("<th>Moodle {}{lts}</th>", e(r)));
    }
    h.push_str("</tr></thead><tbody>\n");
    for row in &m.plugins {
        h.push_str(&format!(
            "<tr><th>{}{}</th><td>{}</td>",
            e(&row.component),
            if row.auto { " (dependency)" } else { "" },
            e(&now_of(row))
        ));
        for c in &row.cells {
            let class = match &c.readiness {
                Readiness::Fits { .. } => "fits",
                Readiness::Blocked { .. } => "blocked",
                Readiness::InCore => "in_core",
                Readiness::Unknown { .. } => "unknown",
                Readiness::NotNeeded => "not_needed",
            };
            h.push_str(&format!(
                "<td class=\"{class}\">{}</td>",
                e(&cell_text(&c.readiness))
            ));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody><tfoot id=\"summary\"><tr><th>ready?</th><td></td>");
    for s in m.summary() {
        let (class, word) = if s.ready {
            ("yes", "yes")
        } else {
            ("no", "no")
        };
        h.push_str(&format!("<td class=\"{class}\">{word}</td>"));
    }
    h.push_str("</tr></tfoot></table>\n<h2>Why</h2>\n<ul id=\"reasons\">\n");
    for (component, why, releases) in reasons(m) {
        h.push_str(&format!(
            "<li><b>{}</b> on {}: {}</li>\n",
            e(&component),
            e(&releases_said(&releases)),
            e(&why)
        ));
    }
    h.push_str("</ul>\n");
    let notes = grouped_notes(m);
    if !notes.is_empty() || !m.out_of_support.is_empty() {
        h.push_str("<h2>Notes</h2>\n");
    }
    for (n, releases) in notes {
        h.push_str(&format!(
            "<p class=\"note\">{}: {}</p>\n",
            e(&releases_said(&releases)),
            e(&n)
        ));
    }
    for (release, ended) in &m.out_of_support {
        h.push_str(&format!(
            "<p class=\"note\">Moodle {} is out of support: its security fixes ended on {}</p>\n",
            e(release),
            e(ended)
        ));
    }
    h.push_str("<h2>Legend</h2>\n<dl id=\"legend\"><dt>a version</dt><dd>the newest version of the plugin that installs on that release</dd><dt>(!)</dt><dd>it installs, with a warning said under Why</dd><dt>BLOCKS</dt><dd>no version installs: the upgrade must wait for the plugin, or go without it</dd><dt>in core</dt><dd>Moodle ships it: the plugin goes</dd><dt>unknown</dt><dd>its source could not be read</dd><dt>-</dt><dd>a dependency nothing needs on that release</dd><dt>LTS</dt><dd>long-term support release</dd></dl>\n");
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
    let summary = m.summary();
    // As `check --moodle` does: exit 2 when the upgrade to the next supported release is
    // blocked.
    let blocked_next = m.next_supported().is_some_and(|next| {
        summary
            .iter()
            .any(|s| s.release == next && !s.blocking.is_empty())
    });
    let exit = if blocked_next {
        Exit::Pending
    } else {
        Exit::Success
    };
    if g.json {
        out_json(&crate::json::matrix(&m));
        return Ok(exit);
    }
    if g.quiet {
        return Ok(exit);
    }
    say!(
        "{}: upgrade readiness on {} (Moodle {} now)",
        m.site,
        m.date,
        m.core_now.as_deref().unwrap_or("not built yet")
    );
    // Columns as wide as their widest cell (release names can be long), within reason.
    let w = m
        .plugins
        .iter()
        .flat_map(|row| {
            std::iter::once(now_of(row)).chain(row.cells.iter().map(|c| cell_text(&c.readiness)))
        })
        .map(|t| t.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(12, 28);
    let mut head = format!("{:<28} {:<w$}", "plugin", "now");
    for r in &m.releases {
        head.push_str(&format!(" {:<w$}", format!("Moodle {r}")));
    }
    say!("{}", head.trim_end());
    for row in &m.plugins {
        let name = if row.auto {
            format!("{} (dep)", row.component)
        } else {
            row.component.clone()
        };
        let mut line = format!("{:<28} {:<w$}", name, now_of(row));
        for c in &row.cells {
            line.push_str(&format!(" {:<w$}", cell_text(&c.readiness)));
        }
        say!("{}", line.trim_end());
    }
    let mut ready = format!("{:<28} {:<w$}", "ready?", "");
    for s in &summary {
        ready.push_str(&format!(" {:<w$}", if s.ready { "yes" } else { "no" }));
    }
    say!("{}", ready.trim_end());
    for (component, why, releases) in reasons(&m) {
        say!("{component} on {}: {why}", releases_said(&releases));
    }
    for (n, releases) in grouped_notes(&m) {
        say!("note: {}: {n}", releases_said(&releases));
    }
    if !m.lts.is_empty() {
        say!("long-term support: Moodle {}", m.lts.join(", "));
    }
    for (release, ended) in &m.out_of_support {
        say!("Moodle {release} is out of support: its security fixes ended on {ended}");
    }
    if let Some(next) = m.next_supported()
        && blocked_next
    {
        say!("the next supported release, Moodle {next}, is blocked");
    }
    Ok(exit)
}
