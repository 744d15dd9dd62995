//! `mcb info`.

use std::path::{Path, PathBuf};

use crate::cli::{GlobalArgs, InfoArgs};
use crate::error::{CliError, Exit};
use crate::term::{out_json, say};

pub fn run(g: &GlobalArgs, a: &InfoArgs) -> Result<Exit, CliError> {
    let site = a.site.clone().or_else(|| {
        Path::new("site.ron")
            .is_file()
            .then(|| PathBuf::from("site.ron"))
    });
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
