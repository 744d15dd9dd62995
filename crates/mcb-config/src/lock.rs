//! The lock, `site.lock`: the exact resolved state of a site, enough to rebuild the same
//! tree anywhere. It records what each entry asked for, so that a later run can tell
//! whether the lock still satisfies the site file.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::site::{PluginRequest, SiteFile, SourceSpec};

pub const LOCK_FORMAT: u32 = 1;

/// Where a locked source came from, pinned exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockedSource {
    Git {
        url: String,
        /// The tag or branch chosen, or the commit when a commit was asked for.
        #[serde(rename = "ref")]
        reference: String,
        commit: String,
    },
    Zip {
        location: String,
        /// blake3 of the zip file.
        blake3: String,
    },
    Path {
        dir: String,
    },
    Directory {
        /// The directory's id for this version.
        id: u64,
        url: String,
        md5: String,
        /// blake3 of the zip file.
        blake3: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedMoodle {
    /// The version spec as the site file wrote it.
    pub spec: Option<String>,
    pub request: SourceSpec,
    pub source: LockedSource,
    pub build: String,
    pub release: String,
    pub branch: u32,
    pub manifest: String,
    /// Seconds since the epoch: the source's own date (commit time, newest zip entry).
    pub date: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedPlugin {
    pub component: String,
    /// What the site file asked for; `None` for a dependency added automatically.
    pub request: Option<SourceSpec>,
    /// The version the site file pinned, if any.
    #[serde(default)]
    pub pin: Option<String>,
    /// Added because another plugin depends on it, not listed in the site file.
    #[serde(default)]
    pub auto: bool,
    pub version: String,
    #[serde(default)]
    pub release: Option<String>,
    pub source: LockedSource,
    pub install_path: String,
    pub manifest: String,
    pub date: i64,
}

/// A site's resolved state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub format: u32,
    pub site: String,
    pub moodle: LockedMoodle,
    /// Sorted by component.
    pub plugins: Vec<LockedPlugin>,
    /// The git tree id of the codebase.
    pub tree: String,
    /// The commit that recorded it on the site's branch.
    pub commit: String,
    /// The commit date: the newest date among the sources.
    pub date: i64,
}

impl Lock {
    pub fn load(path: &Path) -> Result<Option<Lock>, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ConfigError::new(path, format!("cannot read the lock: {e}"))),
        };
        let lock: Lock = ron::from_str(&text).map_err(|e| {
            ConfigError::new(path, format!("the lock is not valid: {}", e.code))
                .at(Some((e.span.start.line, e.span.start.col)))
                .hint("restore it from git, or delete it to resolve the site afresh")
        })?;
        if lock.format != LOCK_FORMAT {
            return Err(ConfigError::new(
                path,
                format!(
                    "the lock has format {}, this mcb writes format {LOCK_FORMAT}",
                    lock.format
                ),
            ));
        }
        Ok(Some(lock))
    }

    /// The lock as it is written to disk: pretty RON, stable field order.
    pub fn to_text(&self) -> String {
        let config = ron::ser::PrettyConfig::new()
            .depth_limit(4)
            .indentor("  ".to_string());
        let mut s = String::from("// Written by mcb. Keep it in git beside the site file.\n");
        s.push_str(&ron::ser::to_string_pretty(self, config).expect("a lock always serialises"));
        s.push('\n');
        s
    }

    /// The site file this lock answers, rebuilt from what each entry asked for, as if it
    /// were at `path` (relative sources resolve against its directory).
    pub fn site_file(&self, path: &Path) -> Result<SiteFile, ConfigError> {
        let spec = match &self.moodle.spec {
            Some(s) => Some(
                mcb_moodle::MoodleSpec::parse(s)
                    .map_err(|e| ConfigError::new(path, e.to_string()))?,
            ),
            None => None,
        };
        let mut plugins = Vec::new();
        for p in self.plugins.iter().filter(|p| !p.auto) {
            let component = mcb_moodle::Component::parse(&p.component)
                .map_err(|e| ConfigError::new(path, e.to_string()).component(&p.component))?;
            plugins.push(PluginRequest {
                component,
                version: p.pin.clone(),
                source: p.request.clone().unwrap_or(SourceSpec::Directory),
                line: 0,
            });
        }
        Ok(SiteFile {
            path: path.to_path_buf(),
            name: self.site.clone(),
            moodle: crate::site::MoodleRequest {
                spec,
                source: self.moodle.request.clone(),
            },
            plugins,
            directory: None,
        })
    }

    /// Reads a lock from text (a lock file's or a site commit's).
    pub fn parse(path: &Path, text: &str) -> Result<Lock, ConfigError> {
        ron::from_str(text).map_err(|e| {
            ConfigError::new(path, format!("the lock is not valid: {}", e.code))
                .at(Some((e.span.start.line, e.span.start.col)))
        })
    }

    pub fn plugin(&self, component: &str) -> Option<&LockedPlugin> {
        self.plugins.iter().find(|p| p.component == component)
    }

    /// Does the locked core still answer what the site file asks of core?
    pub fn moodle_fits(&self, site: &SiteFile) -> bool {
        self.moodle.request == site.moodle.source
            && self.moodle.spec == site.moodle.spec.as_ref().map(|s| s.to_string())
    }

    /// Does this locked plugin still answer what `request` asks?
    pub fn plugin_fits(locked: &LockedPlugin, request: &PluginRequest) -> bool {
        locked.request.as_ref() == Some(&request.source) && locked.pin == request.version
    }
}
