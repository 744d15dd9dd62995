//! The lock, `site.lock`: the exact resolved state of a site, enough to rebuild the same
//! tree anywhere. It records what each entry asked for, so that a later run can tell
//! whether the lock still satisfies the site file. It holds only what resolution decided
//! (and the tree id, which follows from it): no commit id and no date of the run, so one
//! site file gives one lock on every machine. Commits live on the site branch.

use std::collections::BTreeMap;
use std::path::Path;

use mcb_store::{Blake3, GitOid, ManifestHash, Md5};
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::site::{PluginRequest, SiteFile, SourceSpec};

pub const LOCK_FORMAT: u32 = 1;

/// Far above any real lock (a site of 200 plugins writes about 100 KB).
const MAX_LOCK_BYTES: usize = 16 << 20;

/// The 1-based (line, column) where `needle` first appears in `text`.
fn find_line(text: &str, needle: &str) -> Option<(usize, usize)> {
    let at = text.find(needle)?;
    let line_start = text[..at].rfind('\n').map(|n| n + 1).unwrap_or(0);
    Some((
        text[..at].matches('\n').count() + 1,
        text[line_start..at].chars().count() + 1,
    ))
}

/// Where a locked source came from, pinned exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockedSource {
    Git {
        url: String,
        /// The tag or branch chosen, or the commit when a commit was asked for.
        #[serde(rename = "ref")]
        reference: String,
        commit: GitOid,
    },
    Zip {
        location: String,
        /// blake3 of the zip file.
        blake3: Blake3,
    },
    Path {
        dir: String,
    },
    Directory {
        /// The directory's id for this version.
        id: u64,
        url: String,
        md5: Md5,
        /// blake3 of the zip file.
        blake3: Blake3,
        /// The index that listed it, when the site asks more than one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        index: Option<String>,
    },
    /// A Composer package's dist zip.
    Composer {
        /// The repository that served it.
        repository: String,
        package: String,
        version: String,
        url: String,
        /// blake3 of the zip file.
        blake3: Blake3,
    },
}

impl LockedSource {
    /// How a locked source reads in messages, plans and commit messages:
    /// `git URL REF (0123456789ab)`, `zip LOCATION (blake3 …)`, `directory version ID`.
    pub fn label(&self) -> String {
        match self {
            LockedSource::Git {
                url,
                reference,
                commit,
            } => format!("git {url} {reference} ({})", &commit.as_str()[..12]),
            LockedSource::Zip { location, blake3 } => {
                format!("zip {location} (blake3 {})", &blake3.as_str()[..12])
            }
            LockedSource::Path { dir } => format!("path {dir}"),
            LockedSource::Directory { id, .. } => format!("directory version {id}"),
            LockedSource::Composer {
                package, version, ..
            } => format!("composer {package} {version}"),
        }
    }
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
    pub manifest: ManifestHash,
    /// Seconds since the epoch: the source's own date (commit time, newest zip entry).
    pub date: i64,
}

/// The `vendor/` of a core that names its third-party libraries in a `composer.lock`
/// (Moodle 5.1 and later): built by the `composer` program from the dists below, offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedVendor {
    /// blake3 of the core's `composer.lock`.
    pub composer_lock: Blake3,
    /// The version of Composer that built it.
    pub composer: String,
    pub manifest: ManifestHash,
    /// Each package installed, as its dist was had.
    pub packages: Vec<LockedDist>,
}

/// One package of a `vendor/`: its dist zip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedDist {
    pub name: String,
    pub version: String,
    pub url: String,
    /// blake3 of the zip file.
    pub blake3: Blake3,
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
    pub manifest: ManifestHash,
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
    /// Symlinks the site file adds to the codebase: path → absolute target.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub links: BTreeMap<String, String>,
    /// What the run that chose these versions warned about, said again when it is reused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Core's `vendor/`, when core builds one (Moodle 5.1+ from git).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<LockedVendor>,
    /// The git tree id of the codebase: a pure function of what is above.
    pub tree: GitOid,
}

impl Lock {
    pub fn load(path: &Path) -> Result<Option<Lock>, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ConfigError::new(path, format!("cannot read the lock: {e}"))),
        };
        let lock = Lock::parse(path, &text)
            .map_err(|e| e.hint("restore it from git, or delete it to resolve the site afresh"))?;
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
            .indentor("  ".to_string())
            .extensions(ron::extensions::Extensions::IMPLICIT_SOME);
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
                min_age: None,
                version: p.pin.clone(),
                maturity: None,
                source: p.request.clone().unwrap_or(SourceSpec::Directory),
                index: match &p.source {
                    crate::lock::LockedSource::Directory { index, .. } => index.clone(),
                    _ => None,
                },
                min_tier: None,
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
            directories: Vec::new(),
            composer_repositories: Vec::new(),
            maturity: None,
            min_age: None,
            links: self.links.clone(),
            // Where a site runs is not part of what it is built from.
            target: None,
            scan: None,
            ignore_advisories: Vec::new(),
            policy: None,
            camp: None,
        })
    }

    /// Reads a lock from text (a lock file's or a site commit's). Every id in it is checked
    /// as an id, every component as a component and every install path as a clean
    /// relative path: a lock is input, not truth.
    pub fn parse(path: &Path, text: &str) -> Result<Lock, ConfigError> {
        if text.len() > MAX_LOCK_BYTES {
            return Err(ConfigError::new(
                path,
                format!(
                    "the lock is larger than {MAX_LOCK_BYTES} bytes; it is not a lock mcb wrote"
                ),
            ));
        }
        let lock: Lock = ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
            .from_str(text)
            .map_err(|e| {
                ConfigError::new(path, format!("the lock is not valid: {}", e.code))
                    .at(Some((e.span.start.line, e.span.start.col)))
            })?;
        let bad = |component: &str, message: String| {
            ConfigError::new(path, message)
                .component(component)
                .at(find_line(text, component))
        };
        let sources = std::iter::once(("moodle", &lock.moodle.source)).chain(
            lock.plugins
                .iter()
                .map(|p| (p.component.as_str(), &p.source)),
        );
        for (component, source) in sources {
            // A download the lock names is a URL: a text without a scheme is never read
            // as a local file (a zip location may be a path: the site file wrote it).
            let url = match source {
                LockedSource::Directory { url, .. } | LockedSource::Composer { url, .. } => url,
                _ => continue,
            };
            if !is_http_url(url) {
                return Err(bad(
                    component,
                    format!(
                        "the lock is not valid: url '{}' is not an http(s) URL",
                        url.escape_debug()
                    ),
                ));
            }
        }
        for d in lock.vendor.iter().flat_map(|v| &v.packages) {
            if !is_http_url(&d.url) {
                return Err(bad(
                    "vendor",
                    format!(
                        "the lock is not valid: vendor package {}'s url '{}' is not an http(s) URL",
                        d.name.escape_debug(),
                        d.url.escape_debug()
                    ),
                ));
            }
        }
        for p in &lock.plugins {
            mcb_moodle::Component::parse(&p.component)
                .map_err(|e| bad(&p.component, format!("the lock is not valid: {e}")))?;
            mcb_store::listing::check_path(p.install_path.as_bytes()).map_err(|e| {
                bad(
                    &p.component,
                    format!("the lock is not valid: install path {e}"),
                )
            })?;
        }
        for (at, target) in &lock.links {
            crate::site::check_link(at, target).map_err(|why| {
                ConfigError::new(
                    path,
                    format!(
                        "the lock is not valid: link \"{}\": {why}",
                        at.escape_debug()
                    ),
                )
                .at(find_line(text, "links"))
            })?;
        }
        crate::site::check_links_apart(&lock.links).map_err(|why| {
            ConfigError::new(path, format!("the lock is not valid: {why}"))
                .at(find_line(text, "links"))
        })?;
        let mut names: Vec<&str> = lock.plugins.iter().map(|p| p.component.as_str()).collect();
        names.sort();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(bad(w[0], "the lock lists this component twice".into()));
        }
        Ok(lock)
    }

    /// The newest date among the sources: the date of the commit that records the lock.
    pub fn source_date(&self) -> i64 {
        std::iter::once(self.moodle.date)
            .chain(self.plugins.iter().map(|p| p.date))
            .max()
            .unwrap_or(0)
    }

    pub fn plugin(&self, component: &str) -> Option<&LockedPlugin> {
        self.plugins.iter().find(|p| p.component == component)
    }

    /// Does the locked core still answer what the site file asks of core?
    pub fn moodle_fits(&self, site: &SiteFile) -> bool {
        self.moodle.request == site.moodle.source
            && self.moodle.spec == site.moodle.spec.as_ref().map(|s| s.to_string())
            && source_answers(&self.moodle.source, &site.moodle.source)
    }

    /// Does this locked plugin still answer what `request` asks?
    pub fn plugin_fits(locked: &LockedPlugin, request: &PluginRequest) -> bool {
        // A plugin the site file binds to an index fits only a version from that index.
        let bound_here = match (&request.index, &locked.source) {
            (None, _) => true,
            (Some(want), LockedSource::Directory { index, .. }) => index.as_ref() == Some(want),
            (Some(_), _) => false,
        };
        locked.request.as_ref() == Some(&request.source)
            && locked.pin == request.version
            && bound_here
            && source_answers(&locked.source, &request.source)
    }
}

/// `http://host…` or `https://host…`, the only URLs a lock names downloads by.
fn is_http_url(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return false;
    };
    !rest.is_empty() && !rest.starts_with('/') && !url.chars().any(|c| c.is_control() || c == ' ')
}

/// Is the pinned source one the request can give? An edited lock that pins a zip of
/// another location than the site file names, say, does not fit and is resolved afresh.
fn source_answers(locked: &LockedSource, request: &SourceSpec) -> bool {
    match (locked, request) {
        (LockedSource::Git { url, .. }, SourceSpec::Git { url: wanted, .. }) => url == wanted,
        (
            LockedSource::Zip { location, .. },
            SourceSpec::Zip {
                location: wanted, ..
            },
        ) => location == wanted,
        (LockedSource::Path { dir }, SourceSpec::Path { dir: wanted }) => dir == wanted,
        (LockedSource::Directory { .. }, SourceSpec::Directory) => true,
        (
            LockedSource::Composer { package, .. },
            SourceSpec::Composer {
                package: wanted, ..
            },
        ) => package == wanted,
        // A CAMP target is locked as the dist zip it is, named camp:COMPONENT.
        (LockedSource::Composer { package, .. }, SourceSpec::Camp) => package.starts_with("camp:"),
        _ => false,
    }
}
