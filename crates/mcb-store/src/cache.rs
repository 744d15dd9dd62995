//! The store's cache: what can always be fetched or computed again, kept so that it is not.
//! Each bucket is a directory of `cache/` whose name carries its format version
//! (`git-manifests-v1`): a change of format is a new bucket, and `gc` removes buckets this
//! mcb does not know. Every memo is read back as input: an entry that does not parse is
//! no entry.
//!
//! | bucket | key | holds |
//! |---|---|---|
//! | `git-manifests-v1` | commit id | the manifest that commit's tree gave |
//! | `upstream-latest-v1` | URL key | the manifest an upstream gave last: the base for its next release |
//! | `upstream-fetched-v1` | URL key | when the upstream's refs were last fetched (mtime), its URL |
//! | `archive-manifests-v1` | md5 | the manifest, blake3 and date of a downloaded zip |
//! | `index-lists-v1` | URL key | a plugin index's list (`.json`) and its ETag and last check (`.meta`) |
//! | `list-offsets-v1` | blake3 of a list | where each plugin's record is in that list, so a run parses only the records it asks for |
//!
//! A URL key is the first 16 hex digits of the blake3 of the URL.

use std::fs;
use std::io;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::id::{Blake3, GitOid, ManifestHash, Md5};
use crate::{IoContext, Result, Store};

const GIT_MANIFESTS: &str = "git-manifests-v1";
const UPSTREAM_LATEST: &str = "upstream-latest-v1";
const UPSTREAM_FETCHED: &str = "upstream-fetched-v1";
const ARCHIVE_MANIFESTS: &str = "archive-manifests-v1";
const INDEX_LISTS: &str = "index-lists-v1";
const TEST_SNAPSHOTS: &str = "test-snapshots-v2";
const LIST_OFFSETS: &str = "list-offsets-v1";
/// Offsets of lists not used for this long are removed by gc.
const LIST_OFFSETS_MAX_AGE: u64 = 30 * 86_400;

/// Every bucket this mcb writes.
pub(crate) const BUCKETS: &[&str] = &[
    GIT_MANIFESTS,
    UPSTREAM_LATEST,
    UPSTREAM_FETCHED,
    ARCHIVE_MANIFESTS,
    INDEX_LISTS,
    TEST_SNAPSHOTS,
    LIST_OFFSETS,
];

/// The key of a URL in the cache (and of its namespace in the store's git repository).
pub fn url_key(url: &str) -> String {
    blake3::hash(url.trim_end_matches('/').as_bytes()).to_hex()[..16].to_string()
}

/// What a downloaded zip gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveMemo {
    pub manifest: ManifestHash,
    pub blake3: Blake3,
    /// The zip's own date, seconds since the epoch.
    pub date: i64,
}

/// A plugin index's list as last fetched.
#[derive(Debug, Clone)]
pub struct CachedList {
    pub body: Vec<u8>,
    pub etag: Option<String>,
    /// When the server last answered for it, seconds since the epoch.
    pub checked: u64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ListMeta {
    url: String,
    etag: Option<String>,
    checked: u64,
}

/// The cache of one store.
pub struct Cache<'a> {
    store: &'a Store,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Store {
    pub fn cache(&self) -> Cache<'_> {
        Cache { store: self }
    }
}

impl Cache<'_> {
    fn path(&self, bucket: &str, key: &str) -> PathBuf {
        self.store.cache_dir().join(bucket).join(key)
    }

    fn read(&self, bucket: &str, key: &str) -> Option<String> {
        fs::read_to_string(self.path(bucket, key)).ok()
    }

    fn write(&self, bucket: &str, key: &str, text: &str) -> Result<()> {
        self.store
            .write_atomic(&self.path(bucket, key), text.as_bytes())
    }

    /// Where the database dump and data directory of an installed codebase `tree` are kept
    /// (`mcb test`), so the next test of an upgrade from it restores them instead of
    /// installing again. The directory holds `db.dump`, `dataroot/` and, written last, a
    /// record of both's hashes that is checked before they are used.
    pub fn test_snapshot_dir(&self, tree: &GitOid) -> PathBuf {
        self.path(TEST_SNAPSHOTS, tree.as_str())
    }

    /// The manifest `commit`'s tree gave, when it was ingested before.
    pub fn git_manifest(&self, commit: &GitOid) -> Option<ManifestHash> {
        ManifestHash::parse(self.read(GIT_MANIFESTS, commit.as_str())?.trim()).ok()
    }

    pub fn set_git_manifest(&self, commit: &GitOid, manifest: &ManifestHash) -> Result<()> {
        self.write(GIT_MANIFESTS, commit.as_str(), &format!("{manifest}\n"))
    }

    /// The manifest the upstream at `url` gave last.
    pub fn upstream_latest(&self, url: &str) -> Option<ManifestHash> {
        ManifestHash::parse(self.read(UPSTREAM_LATEST, &url_key(url))?.trim()).ok()
    }

    pub fn set_upstream_latest(&self, url: &str, manifest: &ManifestHash) -> Result<()> {
        self.write(UPSTREAM_LATEST, &url_key(url), &format!("{manifest}\n"))
    }

    /// When the refs of the upstream at `url` were last fetched.
    pub fn upstream_fetched(&self, url: &str) -> Option<SystemTime> {
        fs::metadata(self.path(UPSTREAM_FETCHED, &url_key(url)))
            .and_then(|m| m.modified())
            .ok()
    }

    pub fn mark_upstream_fetched(&self, url: &str) -> Result<()> {
        self.write(UPSTREAM_FETCHED, &url_key(url), &format!("{url}\n"))
    }

    /// What the zip with this md5 gave, when it was downloaded before.
    pub fn archive(&self, md5: &Md5) -> Option<ArchiveMemo> {
        let text = self.read(ARCHIVE_MANIFESTS, md5.as_str())?;
        let mut it = text.split_whitespace();
        Some(ArchiveMemo {
            manifest: ManifestHash::parse(it.next()?).ok()?,
            blake3: Blake3::parse(it.next()?).ok()?,
            date: it.next()?.parse().ok()?,
        })
    }

    pub fn set_archive(&self, md5: &Md5, memo: &ArchiveMemo) -> Result<()> {
        self.write(
            ARCHIVE_MANIFESTS,
            md5.as_str(),
            &format!("{} {} {}\n", memo.manifest, memo.blake3, memo.date),
        )
    }

    /// The list of the index at `url` as last fetched, at most `max_bytes` long.
    pub fn index_list(&self, url: &str, max_bytes: u64) -> Option<CachedList> {
        let key = url_key(url);
        let meta: ListMeta =
            ron::from_str(&self.read(INDEX_LISTS, &format!("{key}.meta"))?).ok()?;
        if meta.url != url {
            return None;
        }
        let body_path = self.path(INDEX_LISTS, &format!("{key}.json"));
        if fs::metadata(&body_path).ok()?.len() > max_bytes {
            return None;
        }
        Some(CachedList {
            body: fs::read(body_path).ok()?,
            etag: meta.etag,
            checked: meta.checked,
        })
    }

    /// Keeps a new list of the index at `url`, answered now.
    pub fn set_index_list(&self, url: &str, body: &[u8], etag: Option<String>) -> Result<()> {
        let key = url_key(url);
        self.store
            .write_atomic(&self.path(INDEX_LISTS, &format!("{key}.json")), body)?;
        self.set_index_checked(url, etag)
    }

    /// Records that the server confirmed the kept list of `url` now (a 304).
    pub fn set_index_checked(&self, url: &str, etag: Option<String>) -> Result<()> {
        let meta = ListMeta {
            url: url.to_string(),
            etag,
            checked: now(),
        };
        let text = ron::to_string(&meta).expect("plain data serialises");
        self.write(INDEX_LISTS, &format!("{}.meta", url_key(url)), &text)
    }

    /// The record offsets kept for the plugin list whose blake3 is `list` (text, as
    /// `set_list_offsets` was given it), marked as used now.
    pub fn list_offsets(&self, list: &Blake3) -> Option<String> {
        let path = self.path(LIST_OFFSETS, list.as_str());
        let text = fs::read_to_string(&path).ok()?;
        // Used: kept from gc's age limit (touched at most once a day).
        let old = fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > 86_400);
        if old && let Ok(f) = fs::File::options().append(true).open(&path) {
            let _ = f.set_modified(SystemTime::now());
        }
        Some(text)
    }

    /// Keeps the record offsets of the plugin list whose blake3 is `list`.
    pub fn set_list_offsets(&self, list: &Blake3, text: &str) -> Result<()> {
        self.write(LIST_OFFSETS, list.as_str(), text)
    }

    /// Removes memos that name a manifest no longer in the store, and buckets of other
    /// formats. Returns the number of files removed (or, dry, that would be).
    pub(crate) fn prune(&self, dry_run: bool) -> Result<usize> {
        let dir = self.store.cache_dir();
        let mut removed = 0;
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e).at(&dir),
        };
        for bucket in rd.flatten() {
            let name = bucket.file_name().to_string_lossy().into_owned();
            if !BUCKETS.contains(&name.as_str()) {
                removed += 1;
                if !dry_run {
                    crate::materialise::remove_tree(&bucket.path())?;
                }
                continue;
            }
            if name == LIST_OFFSETS {
                for e in fs::read_dir(bucket.path()).at(&bucket.path())?.flatten() {
                    let unused = e
                        .metadata()
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age.as_secs() > LIST_OFFSETS_MAX_AGE);
                    if unused {
                        removed += 1;
                        if !dry_run {
                            let _ = fs::remove_file(e.path());
                        }
                    }
                }
                continue;
            }
            let names_manifest =
                name == GIT_MANIFESTS || name == UPSTREAM_LATEST || name == ARCHIVE_MANIFESTS;
            if !names_manifest {
                continue;
            }
            for e in fs::read_dir(bucket.path()).at(&bucket.path())?.flatten() {
                let text = fs::read_to_string(e.path()).unwrap_or_default();
                let live = text
                    .split_whitespace()
                    .next()
                    .and_then(|h| ManifestHash::parse(h).ok())
                    .is_some_and(|h| self.store.has_manifest(&h));
                if !live {
                    removed += 1;
                    if !dry_run {
                        let _ = fs::remove_file(e.path());
                    }
                }
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memos_round_trip_and_damage_reads_as_absent() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path().join("s")).unwrap();
        let c = s.cache();
        let commit = GitOid::parse(&"a".repeat(40)).unwrap();
        let m = ManifestHash::parse(&"b".repeat(64)).unwrap();
        assert_eq!(c.git_manifest(&commit), None);
        c.set_git_manifest(&commit, &m).unwrap();
        assert_eq!(c.git_manifest(&commit), Some(m.clone()));
        let md5 = Md5::parse(&"c".repeat(32)).unwrap();
        let memo = ArchiveMemo {
            manifest: m.clone(),
            blake3: Blake3::parse(&"d".repeat(64)).unwrap(),
            date: 7,
        };
        c.set_archive(&md5, &memo).unwrap();
        assert_eq!(c.archive(&md5), Some(memo));
        std::fs::write(
            s.cache_dir().join(GIT_MANIFESTS).join(commit.as_str()),
            "../../etc\n",
        )
        .unwrap();
        assert_eq!(c.git_manifest(&commit), None);
        c.set_index_list("https://x/list", b"{}", Some("\"e\"".into()))
            .unwrap();
        let l = c.index_list("https://x/list", 10).unwrap();
        assert_eq!(
            (l.body.as_slice(), l.etag.as_deref()),
            (&b"{}"[..], Some("\"e\""))
        );
        assert!(
            c.index_list("https://x/list", 1).is_none(),
            "over the size bound"
        );
        assert!(c.index_list("https://y/list", 10).is_none());
        // gc's pruning: memos naming missing manifests, and foreign buckets, go.
        std::fs::create_dir_all(s.cache_dir().join("git-manifests")).unwrap();
        assert_eq!(c.prune(false).unwrap(), 3);
        assert_eq!(c.archive(&md5), None);
        assert!(!s.cache_dir().join("git-manifests").exists());
    }
}
