//! The plugins directory: which versions of a plugin exist, for which Moodle releases, and
//! where their zips are. The resolver sees only [`PluginIndex`], so another index (the
//! Marketplace API, a community index, a mirror) can be added beside [`Pluglist`] without
//! touching it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mcb_store::Store;
use serde::{Deserialize, Serialize};

use crate::CatalogError;
use crate::http::{Fetched, Http};

/// The public plugins directory list.
pub const DEFAULT_DIRECTORY: &str = "https://download.moodle.org/api/1.3/pluglist.php";

/// One Moodle release a directory version declares support for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupportedMoodle {
    pub version: i64,
    /// `"4.5"`.
    pub release: String,
}

/// One version of a plugin as the directory lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryVersion {
    pub id: u64,
    /// The plugin's `$plugin->version`, as a string.
    pub version: String,
    #[serde(default)]
    pub release: Option<String>,
    #[serde(default)]
    pub maturity: Option<i64>,
    pub downloadurl: String,
    pub downloadmd5: String,
    #[serde(default)]
    pub vcsrepositoryurl: Option<String>,
    #[serde(default)]
    pub vcstag: Option<String>,
    #[serde(default)]
    pub supportedmoodles: Vec<SupportedMoodle>,
    #[serde(default)]
    pub timecreated: Option<i64>,
}

impl DirectoryVersion {
    /// A version known only from a lock (its id, URL and md5): enough to download it again.
    pub fn from_lock(id: u64, url: &str, md5: &mcb_store::Md5) -> DirectoryVersion {
        DirectoryVersion {
            id,
            version: String::new(),
            release: None,
            maturity: None,
            downloadurl: url.to_string(),
            downloadmd5: md5.to_string(),
            vcsrepositoryurl: None,
            vcstag: None,
            supportedmoodles: Vec::new(),
            timecreated: None,
        }
    }

    pub fn supports(&self, release: &str) -> bool {
        self.supportedmoodles.iter().any(|s| s.release == release)
    }

    /// The supported releases, oldest first, as `4.1, 4.2`.
    pub fn supported_list(&self) -> String {
        let mut r: Vec<&str> = self
            .supportedmoodles
            .iter()
            .map(|s| s.release.as_str())
            .collect();
        r.sort_by(|a, b| mcb_moodle::natural_cmp(a, b));
        r.join(", ")
    }
}

/// A plugin as the directory lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginRecord {
    #[serde(default)]
    pub id: Option<u64>,
    #[serde(default)]
    pub name: Option<String>,
    pub component: String,
    #[serde(default)]
    pub versions: Vec<DirectoryVersion>,
}

impl PluginRecord {
    /// Versions newest first (by plugin version number).
    pub fn newest_first(&self) -> Vec<&DirectoryVersion> {
        let mut v: Vec<&DirectoryVersion> = self.versions.iter().collect();
        v.sort_by(|a, b| {
            let key = |d: &DirectoryVersion| mcb_moodle::Build::parse(&d.version);
            key(b).cmp(&key(a)).then(b.id.cmp(&a.id))
        });
        v
    }
}

/// Where the versions of plugins come from.
pub trait PluginIndex: Sync {
    /// Names the index in messages (its URL or path).
    fn describe(&self) -> String;
    /// The plugin's record, or `None` when the index does not list it.
    fn lookup(&self, component: &str) -> Option<&PluginRecord>;
}

#[derive(Deserialize)]
struct PluglistJson {
    plugins: Vec<PluginRecord>,
}

/// How cached directory lists are used.
#[derive(Debug, Clone, Copy)]
pub struct CachePolicy {
    /// A cached list younger than this is used without asking the server.
    pub max_age: Duration,
    /// Ask the server (conditionally) whatever the cache's age.
    pub refresh: bool,
}

impl Default for CachePolicy {
    fn default() -> Self {
        CachePolicy {
            max_age: Duration::from_secs(3600),
            refresh: false,
        }
    }
}

/// The `pluglist.php` list (or a local file in its format), loaded whole.
pub struct Pluglist {
    source: String,
    records: HashMap<String, PluginRecord>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Pluglist {
    /// Loads the list at `location`: an `http(s)://` URL (cached in `cache`, a store, with
    /// its ETag; the cache is best effort: a store that cannot be written is only read),
    /// or a local file in the same format (a mirror), read as it is.
    pub fn load(
        http: &Http,
        cache: Option<&Store>,
        location: &str,
        policy: CachePolicy,
    ) -> Result<Pluglist, CatalogError> {
        if let Some(path) = local_path(location) {
            let bytes = read_bounded(&path, http.limits().body_bytes)?;
            return Pluglist::parse(location, &bytes);
        }
        let Some(store) = cache else {
            return match http.get_conditional(location, None)? {
                Fetched::Body { bytes, .. } => Pluglist::parse(location, &bytes),
                Fetched::NotModified => Err(CatalogError::Directory {
                    url: location.to_string(),
                    message: "answered Not Modified to a request without an ETag".into(),
                }),
            };
        };
        let limit = http.limits().body_bytes;
        let cached = store.cache().index_list(location, limit);
        if let Some(c) = &cached {
            let fresh = now().saturating_sub(c.checked) < policy.max_age.as_secs();
            if http.is_offline() || (fresh && !policy.refresh) {
                return Pluglist::parse(location, &c.body);
            }
        } else if http.is_offline() {
            return Err(CatalogError::Directory {
                url: location.to_string(),
                message: "--offline was given and this store has no cached copy of the list".into(),
            });
        }
        let etag = cached.as_ref().and_then(|c| c.etag.clone());
        // The cache is best effort: a store that cannot be written is only read.
        match http.get_conditional(location, etag.as_deref())? {
            Fetched::NotModified => match cached {
                Some(c) => {
                    let list = Pluglist::parse(location, &c.body)?;
                    let _ = store.cache().set_index_checked(location, etag);
                    Ok(list)
                }
                None => Err(CatalogError::Directory {
                    url: location.to_string(),
                    message: "answered Not Modified to a request without an ETag".into(),
                }),
            },
            Fetched::Body { bytes, etag } => {
                // Parse first: a broken answer never replaces a good cached list.
                let list = Pluglist::parse(location, &bytes)?;
                let _ = store.cache().set_index_list(location, &bytes, etag);
                Ok(list)
            }
        }
    }

    pub fn parse(source: &str, bytes: &[u8]) -> Result<Pluglist, CatalogError> {
        let list: PluglistJson =
            serde_json::from_slice(bytes).map_err(|e| CatalogError::Directory {
                url: source.to_string(),
                message: format!("the answer is not a plugin list: {e}"),
            })?;
        Ok(Pluglist {
            source: source.to_string(),
            records: list
                .plugins
                .into_iter()
                .map(|r| (r.component.clone(), r))
                .collect(),
        })
    }
}

impl PluginIndex for Pluglist {
    fn describe(&self) -> String {
        self.source.clone()
    }

    fn lookup(&self, component: &str) -> Option<&PluginRecord> {
        self.records.get(component)
    }
}

fn local_path(location: &str) -> Option<PathBuf> {
    if let Some(p) = location.strip_prefix("file://") {
        return Some(PathBuf::from(p));
    }
    (!location.contains("://")).then(|| PathBuf::from(location))
}

/// Reads a file of at most `limit` bytes.
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, CatalogError> {
    use std::io::Read;
    let io = |source| CatalogError::Io {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    f.take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(CatalogError::Directory {
            url: path.display().to_string(),
            message: format!(
                "the list is larger than {} (the http-bytes limit)",
                crate::limits::human_bytes(limit)
            ),
        });
    }
    Ok(bytes)
}

/// Checks a downloaded zip against the md5 the directory gave, before it enters the store.
pub fn check_md5(bytes: &[u8], expected: &str) -> Result<(), String> {
    use md5::{Digest, Md5};
    let got = hex::encode(Md5::digest(bytes));
    if got.eq_ignore_ascii_case(expected.trim()) {
        Ok(())
    } else {
        Err(format!("md5 {got}, but the directory says {expected}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_real_record_format() {
        let record = include_str!("../tests/data/pluglist-record-tool_opcache.json");
        let list = format!("{{\"timestamp\": 1, \"plugins\": [{record}]}}");
        let p = Pluglist::parse("test", list.as_bytes()).unwrap();
        let r = p.lookup("tool_opcache").unwrap();
        assert_eq!(r.versions.len(), 31);
        let newest = r.newest_first();
        assert!(
            mcb_moodle::Build::parse(&newest[0].version)
                > mcb_moodle::Build::parse(&newest[1].version)
        );
        assert!(r.versions.iter().any(|v| v.supports("4.5")));
        assert!(p.lookup("tool_nothing").is_none());
    }

    #[test]
    fn md5_is_checked() {
        assert!(check_md5(b"abc", "900150983cd24fb0d6963f7d28e17f72").is_ok());
        assert!(check_md5(b"abd", "900150983cd24fb0d6963f7d28e17f72").is_err());
    }

    #[test]
    fn malformed_lists_are_refused() {
        assert!(Pluglist::parse("x", b"<html>").is_err());
        assert!(Pluglist::parse("x", b"{\"plugins\": 3}").is_err());
    }
}
