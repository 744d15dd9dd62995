//! `mcb info`.

use std::path::Path;

use crate::cli::{GlobalArgs, InfoArgs};
use crate::error::{CliError, Exit};
use crate::term::{out_json, say};

pub fn run(g: &GlobalArgs, a: &InfoArgs) -> Result<Exit, CliError> {
    let site = match &a.site {
        Some(s) => Some(crate::site_file::locate(Some(s))?),
        None => Some(crate::site_file::locate(None)?).filter(|p| p.is_file()),
    };
    // A plugin the site file takes from its own source (git, zip, path, Composer): what
    // that source offers, each version read from its version.php.
    if let Some(file) = &site
        && let Ok(s) = mcb_config::SiteFile::load(file)
        && s.plugins.iter().any(|p| {
            p.component.as_str() == a.component
                && !matches!(p.source, mcb_config::SourceSpec::Directory)
        })
    {
        return own_source(g, a, file);
    }
    let found = mcb_realise::plugin_info(&a.net.options(g), site.as_deref(), &a.component)?;
    if g.json {
        out_json(&crate::json::info(&found));
        return Ok(Exit::Success);
    }
    if g.quiet {
        return Ok(Exit::Success);
    }
    for (source, record) in &found {
        let versions = record.newest_first();
        say!(
            "{}{} — {} in {source}",
            record.component,
            record
                .name
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default(),
            super::plural(versions.len(), "version")
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
                crate::json::maturity_name(v.maturity),
                v.supported_list()
            );
        }
    }
    Ok(Exit::Success)
}

#[derive(serde::Serialize)]
struct OwnSource<'a> {
    component: &'a str,
    source: &'a str,
    versions: Vec<OwnVersion<'a>>,
}

#[derive(serde::Serialize)]
struct OwnVersion<'a> {
    label: &'a str,
    version: Option<&'a str>,
    release: Option<&'a str>,
    maturity: Option<&'static str>,
    requires: Option<&'a str>,
    supported: Option<&'a str>,
    problem: Option<&'a str>,
}

/// `info` of a plugin from the site file's own source for it.
fn own_source(g: &GlobalArgs, a: &InfoArgs, site: &Path) -> Result<Exit, CliError> {
    let (source, versions) = mcb_realise::source_offers(&a.net.options(g), site, &a.component)?;
    if g.json {
        out_json(&OwnSource {
            component: &a.component,
            source: &source,
            versions: versions
                .iter()
                .map(|v| OwnVersion {
                    label: &v.label,
                    version: v.version.as_deref(),
                    release: v.release.as_deref(),
                    maturity: v.maturity.map(maturity_word),
                    requires: v.requires.as_deref(),
                    supported: v.supported.as_deref(),
                    problem: v.problem.as_deref(),
                })
                .collect(),
        });
        return Ok(Exit::Success);
    }
    if g.quiet {
        return Ok(Exit::Success);
    }
    say!(
        "{} — {} from {source} (as {} names it)",
        a.component,
        super::plural(versions.len(), "version"),
        site.display()
    );
    say!(
        "  {:<16} {:<12} {:<20} {:<8} {:<12} moodle",
        "tag",
        "version",
        "release",
        "maturity",
        "requires"
    );
    for v in &versions {
        if let Some(p) = &v.problem {
            say!("  {:<16} {p}", v.label);
            continue;
        }
        say!(
            "  {:<16} {:<12} {:<20} {:<8} {:<12} {}",
            v.label,
            v.version.as_deref().unwrap_or("-"),
            v.release.as_deref().unwrap_or("-"),
            v.maturity.map_or("-", maturity_word),
            v.requires.as_deref().unwrap_or("-"),
            v.supported.as_deref().unwrap_or("-")
        );
    }
    Ok(Exit::Success)
}

fn maturity_word(m: mcb_moodle::Maturity) -> &'static str {
    match m {
        mcb_moodle::Maturity::Alpha => "alpha",
        mcb_moodle::Maturity::Beta => "beta",
        mcb_moodle::Maturity::Rc => "rc",
        mcb_moodle::Maturity::Stable => "stable",
    }
}
