//! The plugins directory: which versions of a plugin exist, for which Moodle releases, and
//! where their zips are. The resolver sees only [`PluginIndex`], so another index (the
//! Marketplace API, a community index, a mirror) can be added beside [`Pluglist`] without
//! touching it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
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

/// The `pluglist.php` list (or a local file in its format). The list is checked whole
/// once per content, and where each plugin's record lies is kept in the store's cache
/// under the list's blake3; a run then parses only the records it asks for, so a list of
/// thousands of plugins costs a read and a hash, not a parse.
pub struct Pluglist {
    source: String,
    bytes: Vec<u8>,
    records: HashMap<String, RecordSlot>,
    /// Every record parsed, for when a kept offset does not give the record it names.
    whole: OnceLock<HashMap<String, PluginRecord>>,
}

/// Where one record is in the list's bytes, and the record once parsed.
struct RecordSlot {
    start: usize,
    end: usize,
    parsed: OnceLock<Option<PluginRecord>>,
}

/// The list's records as slices of it, each checked to be a plugin record.
#[derive(Deserialize)]
struct RawPluglist<'a> {
    #[serde(borrow)]
    plugins: Vec<&'a serde_json::value::RawValue>,
}

/// The first line of a kept offsets file.
const OFFSETS_HEADER: &str = "mcb list offsets 1";

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
            return Pluglist::parse_cached(location, bytes, cache);
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
        let mut cached = store.cache().index_list(location, limit);
        if let Some(c) = &cached {
            let fresh = now().saturating_sub(c.checked) < policy.max_age.as_secs();
            if http.is_offline() || (fresh && !policy.refresh) {
                let body = cached.take().map(|c| c.body).unwrap_or_default();
                return Pluglist::parse_cached(location, body, cache);
            }
        } else if http.is_offline() {
            return Err(CatalogError::Directory {
                url: location.to_string(),
                message: "offline, and this store has no cached copy of the list".into(),
            });
        }
        let etag = cached.as_ref().and_then(|c| c.etag.clone());
        // The cache is best effort: a store that cannot be written is only read.
        match http.get_conditional(location, etag.as_deref())? {
            Fetched::NotModified => match cached {
                Some(c) => {
                    let list = Pluglist::parse_cached(location, c.body, cache)?;
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
                let list = Pluglist::parse_cached(location, bytes, cache)?;
                let _ = store.cache().set_index_list(location, &list.bytes, etag);
                Ok(list)
            }
        }
    }

    /// Parses the list in `bytes`, checking every record; `cache` (a store) keeps where
    /// each record is, and a list seen before is not parsed again.
    pub fn parse_cached(
        source: &str,
        bytes: Vec<u8>,
        cache: Option<&Store>,
    ) -> Result<Pluglist, CatalogError> {
        let key = cache.map(|_| mcb_store::Blake3::of(&bytes));
        if let (Some(store), Some(key)) = (cache, &key)
            && let Some(text) = store.cache().list_offsets(key)
            && let Some(records) = read_offsets(&text, bytes.len())
        {
            return Ok(Pluglist {
                source: source.to_string(),
                bytes,
                records,
                whole: OnceLock::new(),
            });
        }
        let records = index_records(source, &bytes)?;
        if let (Some(store), Some(key)) = (cache, &key) {
            // Best effort: a store that cannot be written parses again next time.
            let _ = store
                .cache()
                .set_list_offsets(key, &write_offsets(&records));
        }
        Ok(Pluglist {
            source: source.to_string(),
            bytes,
            records,
            whole: OnceLock::new(),
        })
    }

    pub fn parse(source: &str, bytes: &[u8]) -> Result<Pluglist, CatalogError> {
        Pluglist::parse_cached(source, bytes.to_vec(), None)
    }

    /// Every record, parsed whole (only when a kept offset proved wrong).
    fn whole(&self) -> &HashMap<String, PluginRecord> {
        self.whole.get_or_init(|| {
            serde_json::from_slice::<PluglistJson>(&self.bytes)
                .map(|l| {
                    l.plugins
                        .into_iter()
                        .map(|r| (r.component.clone(), r))
                        .collect()
                })
                .unwrap_or_default()
        })
    }
}

fn not_a_list(source: &str, e: impl std::fmt::Display) -> CatalogError {
    CatalogError::Directory {
        url: source.to_string(),
        message: format!("the answer is not a plugin list: {e}"),
    }
}

/// Checks every record of the list in `bytes` and says where each is.
fn index_records(source: &str, bytes: &[u8]) -> Result<HashMap<String, RecordSlot>, CatalogError> {
    let list: RawPluglist = serde_json::from_slice(bytes).map_err(|e| not_a_list(source, e))?;
    let base = bytes.as_ptr() as usize;
    let mut records = HashMap::with_capacity(list.plugins.len());
    for raw in list.plugins {
        let record: PluginRecord =
            serde_json::from_str(raw.get()).map_err(|e| not_a_list(source, e))?;
        let start = raw.get().as_ptr() as usize - base;
        records.insert(
            record.component,
            RecordSlot {
                start,
                end: start + raw.get().len(),
                parsed: OnceLock::new(),
            },
        );
    }
    Ok(records)
}

fn write_offsets(records: &HashMap<String, RecordSlot>) -> String {
    let mut lines: Vec<String> = records
        .iter()
        .map(|(c, r)| format!("{c} {} {}", r.start, r.end))
        .collect();
    lines.sort();
    let mut text = format!("{OFFSETS_HEADER}\n");
    for l in lines {
        text.push_str(&l);
        text.push('\n');
    }
    text
}

/// Kept offsets, read as input: each inside the list, or none of them.
fn read_offsets(text: &str, len: usize) -> Option<HashMap<String, RecordSlot>> {
    let mut lines = text.lines();
    if lines.next()? != OFFSETS_HEADER {
        return None;
    }
    let mut records = HashMap::new();
    for l in lines {
        let mut it = l.split(' ');
        let (c, start, end) = (
            it.next()?,
            it.next()?.parse().ok()?,
            it.next()?.parse().ok()?,
        );
        if it.next().is_some() || start >= end || end > len || c.is_empty() {
            return None;
        }
        records.insert(
            c.to_string(),
            RecordSlot {
                start,
                end,
                parsed: OnceLock::new(),
            },
        );
    }
    Some(records)
}

impl PluginIndex for Pluglist {
    fn describe(&self) -> String {
        self.source.clone()
    }

    fn lookup(&self, component: &str) -> Option<&PluginRecord> {
        let Some(slot) = self.records.get(component) else {
            // Kept offsets that leave a plugin out are not believed either: the list is
            // asked whether it names it at all.
            let quoted = format!("\"{component}\"");
            return memchr::memmem::find(&self.bytes, quoted.as_bytes())
                .and_then(|_| self.whole().get(component));
        };
        let parsed = slot.parsed.get_or_init(|| {
            self.bytes
                .get(slot.start..slot.end)
                .and_then(|b| serde_json::from_slice::<PluginRecord>(b).ok())
                .filter(|r| r.component == component)
        });
        // A kept offset that does not give the record it names is not believed.
        parsed.as_ref().or_else(|| self.whole().get(component))
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

    fn two_plugins() -> Vec<u8> {
        let record = include_str!("../tests/data/pluglist-record-tool_opcache.json");
        format!(
            "{{\"timestamp\": 1, \"plugins\": [{record}, {{\"component\": \"mod_b\", \"versions\": []}}]}}"
        )
        .into_bytes()
    }

    #[test]
    fn a_list_seen_before_is_read_through_its_kept_offsets() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path().join("s")).unwrap();
        let bytes = two_plugins();
        let key = mcb_store::Blake3::of(&bytes);
        let first = Pluglist::parse_cached("t", bytes.clone(), Some(&store)).unwrap();
        let kept = store.cache().list_offsets(&key).expect("offsets kept");
        assert_eq!(kept.lines().count(), 3, "{kept}");
        let second = Pluglist::parse_cached("t", bytes.clone(), Some(&store)).unwrap();
        for p in [&first, &second] {
            assert_eq!(p.lookup("tool_opcache").unwrap().versions.len(), 31);
            assert_eq!(p.lookup("mod_b").unwrap().component, "mod_b");
            assert!(p.lookup("mod_c").is_none());
        }
        // Offsets that point elsewhere are not believed: the record comes from the list.
        let swapped = kept
            .replace("mod_b ", "mod_x ")
            .replace("tool_opcache ", "mod_b ");
        store.cache().set_list_offsets(&key, &swapped).unwrap();
        let third = Pluglist::parse_cached("t", bytes.clone(), Some(&store)).unwrap();
        assert_eq!(third.lookup("mod_b").unwrap().component, "mod_b");
        assert!(third.lookup("mod_b").unwrap().versions.is_empty());
        assert_eq!(
            third.lookup("tool_opcache").unwrap().versions.len(),
            31,
            "a plugin the offsets leave out is still found"
        );
        assert!(third.lookup("mod_c").is_none());
        // Offsets outside the list are no offsets at all.
        store
            .cache()
            .set_list_offsets(&key, &format!("{OFFSETS_HEADER}\nmod_b 5 999999999\n"))
            .unwrap();
        let fourth = Pluglist::parse_cached("t", bytes, Some(&store)).unwrap();
        assert_eq!(fourth.lookup("tool_opcache").unwrap().versions.len(), 31);
    }

    #[test]
    fn a_malformed_record_refuses_the_list() {
        let bad = br#"{"plugins": [{"component": "mod_a", "versions": [{"id": "x"}]}]}"#;
        assert!(Pluglist::parse("x", bad).is_err());
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
