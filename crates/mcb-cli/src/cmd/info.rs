//! `mcb info`.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cli::{GlobalArgs, InfoArgs};
use crate::error::{CliError, Exit};
use crate::term::{out_json, say};

#[derive(Serialize)]
struct Version<'a> {
    version: &'a str,
    release: Option<&'a str>,
    maturity: &'static str,
    supported_moodles: Vec<&'a str>,
    download_url: &'a str,
    id: u64,
}

/// One index's versions.
#[derive(Serialize)]
struct Listed<'a> {
    directory: &'a str,
    versions: Vec<Version<'a>>,
}

/// `info --json`: the first index that lists the plugin, and every index in `indexes`.
#[derive(Serialize)]
struct Output<'a> {
    component: &'a str,
    name: Option<&'a str>,
    directory: &'a str,
    versions: Vec<Version<'a>>,
    indexes: Vec<Listed<'a>>,
}

fn versions_of(record: &mcb_catalog::PluginRecord) -> Vec<Version<'_>> {
    record
        .newest_first()
        .into_iter()
        .map(|v| Version {
            version: &v.version,
            release: v.release.as_deref(),
            maturity: maturity_name(v.maturity),
            supported_moodles: v
                .supportedmoodles
                .iter()
                .map(|s| s.release.as_str())
                .collect(),
            download_url: &v.downloadurl,
            id: v.id,
        })
        .collect()
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

pub fn run(g: &GlobalArgs, a: &InfoArgs) -> Result<Exit, CliError> {
    let site = a.site.clone().or_else(|| {
        Path::new("site.ron")
            .is_file()
            .then(|| PathBuf::from("site.ron"))
    });
    let found = mcb_realise::plugin_info(&a.net.options(g), site.as_deref(), &a.component)?;
    let (source, record) = &found[0];
    if g.json {
        out_json(&Output {
            component: &record.component,
            name: record.name.as_deref(),
            directory: source,
            versions: versions_of(record),
            indexes: found
                .iter()
                .map(|(d, r)| Listed {
                    directory: d,
                    versions: versions_of(r),
                })
                .collect(),
        });
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
                maturity_name(v.maturity),
                v.supported_list()
            );
        }
    }
    Ok(Exit::Success)
}
