//! `mcb check`.

use mcb_realise::Readiness;

use crate::cli::{CheckArgs, GlobalArgs};
use crate::error::{CliError, Exit};
use crate::progress::Progress;
use crate::term::{out_json, say};

pub fn run(g: &GlobalArgs, a: &CheckArgs) -> Result<Exit, CliError> {
    let progress = Progress::new(g);
    let result = mcb_realise::check_upgrade(&a.site, a.moodle, &a.net.options(g), &progress);
    progress.finish();
    let c = result?;
    let code = if c.blocked {
        Exit::Pending
    } else if c.unknown {
        Exit::Source
    } else {
        Exit::Success
    };
    if g.json {
        out_json(&c);
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
    Ok(code)
}
