//! The store's cache: what can always be fetched or computed again, kept so that it is not.
//! Each bucket is a directory of `cache/` whose name carries its format version
//! (`git-manifests-v1`): a change of format is a new bucket, and `gc` removes buckets this
//! mcb does not know. Every memo is read back as input: an entry that does not parse is
//! no entry, and no entry decides what a codebase holds without being checked against a
//! content hash where it is used (`mcb verify` checks them all).
//!
//! | bucket | key | holds | checked by |
//! |---|---|---|---|
//! | `git-manifests-v1` | commit id | the manifest that commit's tree gave | the manifest's tree is the commit's |
//! | `upstream-latest-v1` | URL key | the manifest an upstream gave last: the base for its next release | a base only: what it says of a blob is its git id's content, which verify checks |
//! | `upstream-fetched-v1` | URL key | when the upstream's refs were last fetched (mtime), its URL | (a time, no content) |
//! | `archives-v1` | blake3 | a downloaded zip, as it came | its bytes' blake3, each time it is read |
//! | `archive-md5-v2` | md5 | the blake3 and date of the zip the plugins directory gave with that md5 | the zip's bytes' md5 and blake3 |
//! | `index-lists-v1` | URL key | a plugin index's list (`.json`) and its ETag and last check (`.meta`) | (the list is read as input) |
//! | `list-offsets-v1` | blake3 of a list | where each plugin's record is in that list, so a run parses only the records it asks for | each record read back |
//! | `test-snapshots-v2` | tree id (`.mariadb` after it for MariaDB's) | a tested codebase's database dump and dataroot | the blake3 of both, recorded last |
//! | `vendor-v1` | blake3 of (composer.lock, composer version, options) | the record of the `vendor/` Composer built from them: its manifest and each dist's blake3 | the record names the composer.lock it came from; the manifest must be in the store |
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
const ARCHIVES: &str = "archives-v1";
const ARCHIVE_MD5: &str = "archive-md5-v2";
/// Archives not used for this long are removed by gc.
const ARCHIVES_MAX_AGE: u64 = 30 * 86_400;
const INDEX_LISTS: &str = "index-lists-v1";
const TEST_SNAPSHOTS: &str = "test-snapshots-v2";
const LIST_OFFSETS: &str = "list-offsets-v1";
const VENDORS: &str = "vendor-v1";
/// The TUF state trusted per CAMP registry: its rollback protection, never collected.
const CAMP_TRUST: &str = "camp-trust-v1";
/// Offsets of lists not used for this long are removed by gc.
const LIST_OFFSETS_MAX_AGE: u64 = 30 * 86_400;

/// Every bucket this mcb writes.
pub(crate) const BUCKETS: &[&str] = &[
    GIT_MANIFESTS,
    UPSTREAM_LATEST,
    UPSTREAM_FETCHED,
    ARCHIVES,
    ARCHIVE_MD5,
    INDEX_LISTS,
    TEST_SNAPSHOTS,
    LIST_OFFSETS,
    VENDORS,
    CAMP_TRUST,
];

/// The key of a URL in the cache (and of its namespace in the store's git repository).
pub fn url_key(url: &str) -> String {
    blake3::hash(url.trim_end_matches('/').as_bytes()).to_hex()[..16].to_string()
}

/// What the archive memo of an md5 says: the zip with that md5 is the archive with this
/// blake3, dated so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveMemo {
    pub blake3: Blake3,
    /// The zip's own date, seconds since the epoch.
    pub date: i64,
}

/// Damage `verify` found in the cache: an entry that is not what its key says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheDamage {
    pub entry: PathBuf,
    pub problem: String,
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

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Was `path` last modified more than `secs` ago?
fn older_than(path: &std::path::Path, secs: u64) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age.as_secs() > secs)
}

/// Sets `path`'s mtime to now when it is more than a day old: "used", for gc's age limit.
fn touch_if_old(path: &std::path::Path) {
    if older_than(path, 86_400)
        && let Ok(f) = fs::File::options().append(true).open(path)
    {
        let _ = f.set_modified(SystemTime::now());
    }
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
    /// `engine` is the database's ("postgresql", "mariadb"): a snapshot restores only into
    /// its own engine. PostgreSQL's keep the name they always had.
    pub fn test_snapshot_dir(&self, tree: &GitOid, engine: &str) -> PathBuf {
        match engine {
            "postgresql" => self.path(TEST_SNAPSHOTS, tree.as_str()),
            other => self.path(TEST_SNAPSHOTS, &format!("{tree}.{other}")),
        }
    }

    /// The record of the `vendor/` built for `key` (the caller's text), when there is one.
    pub fn vendor_record(&self, key: &Blake3) -> Option<String> {
        self.read(VENDORS, key.as_str())
    }

    pub fn set_vendor_record(&self, key: &Blake3, text: &str) -> Result<()> {
        self.write(VENDORS, key.as_str(), text)
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

    /// The TUF versions and root this store trusts for the CAMP registry at `url`.
    pub fn camp_state(&self, url: &str) -> Option<String> {
        self.read(CAMP_TRUST, &url_key(url))
    }

    pub fn set_camp_state(&self, url: &str, text: &str) -> Result<()> {
        self.write(CAMP_TRUST, &url_key(url), text)
    }

    /// Where the zip whose bytes hash to `blake3` is kept, once downloaded.
    pub fn archive_path(&self, blake3: &Blake3) -> PathBuf {
        self.path(ARCHIVES, blake3.as_str())
    }

    /// Keeps a downloaded zip (the staged file `file`, whose bytes hash to `blake3`): a
    /// link to it when the filesystem allows, else a copy; read-only.
    pub fn keep_archive(&self, blake3: &Blake3, file: &std::path::Path) -> Result<()> {
        let path = self.archive_path(blake3);
        if path.exists() {
            return Ok(());
        }
        let dir = path.parent().expect("archives are in a bucket");
        fs::create_dir_all(dir).at(dir)?;
        let staging = self.store.staging_file()?;
        let tmp = staging.path().to_path_buf();
        drop(staging);
        if fs::hard_link(file, &tmp).is_err() {
            fs::copy(file, &tmp).at(&tmp)?;
        }
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o444)).at(&tmp)?;
        fs::rename(&tmp, &path).at(&path)
    }

    /// Marks the archive `blake3` as used now (touched at most once a day), so gc keeps it.
    pub fn touch_archive(&self, blake3: &Blake3) {
        touch_if_old(&self.archive_path(blake3));
    }

    /// What the zip with this md5 was, when the plugins directory gave it before.
    pub fn archive_by_md5(&self, md5: &Md5) -> Option<ArchiveMemo> {
        let text = self.read(ARCHIVE_MD5, md5.as_str())?;
        let mut it = text.split_whitespace();
        Some(ArchiveMemo {
            blake3: Blake3::parse(it.next()?).ok()?,
            date: it.next()?.parse().ok()?,
        })
    }

    pub fn set_archive_by_md5(&self, md5: &Md5, memo: &ArchiveMemo) -> Result<()> {
        self.write(
            ARCHIVE_MD5,
            md5.as_str(),
            &format!("{} {}\n", memo.blake3, memo.date),
        )
    }

    /// The commits whose manifest is memoised, with it.
    pub fn git_manifests(&self) -> Vec<(GitOid, ManifestHash)> {
        let dir = self.store.cache_dir().join(GIT_MANIFESTS);
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let (Ok(commit), Some(Ok(m))) = (
                GitOid::parse(&name),
                fs::read_to_string(e.path())
                    .ok()
                    .map(|t| ManifestHash::parse(t.trim())),
            ) {
                out.push((commit, m));
            }
        }
        out.sort();
        out
    }

    /// Removes a memo or an archive `verify` found damaged.
    pub fn remove_entry(&self, entry: &std::path::Path) -> Result<()> {
        if !entry.starts_with(self.store.cache_dir()) {
            return Ok(());
        }
        match fs::remove_file(entry) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e).at(entry),
            _ => Ok(()),
        }
    }

    /// Checks every entry whose answer decides content against what it names: each archive
    /// re-hashed against its name, each md5 memo against its archive's md5 and blake3.
    pub fn verify(&self) -> Result<Vec<CacheDamage>> {
        use md5::Digest;
        let mut out = Vec::new();
        let archives = self.store.cache_dir().join(ARCHIVES);
        for e in crate::read_dir_sorted(&archives)? {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let hash = fs::read(&path)
                .ok()
                .map(|b| blake3::hash(&b).to_hex().to_string());
            if hash.as_deref() != Some(name.as_str()) {
                out.push(CacheDamage {
                    entry: path,
                    problem: "the archive's bytes do not hash to its name".into(),
                });
            }
        }
        let memos = self.store.cache_dir().join(ARCHIVE_MD5);
        for e in crate::read_dir_sorted(&memos)? {
            let path = e.path();
            let key = e.file_name().to_string_lossy().into_owned();
            let problem = match Md5::parse(&key).ok().and_then(|m| self.archive_by_md5(&m)) {
                None => Some("the memo cannot be read".to_string()),
                Some(memo) => match fs::read(self.archive_path(&memo.blake3)) {
                    // A memo whose archive gc removed is no memo: it is not damage.
                    Err(_) => None,
                    Ok(bytes) => {
                        let md5 = hex_lower(&md5::Md5::digest(&bytes));
                        if md5 != key {
                            Some(format!(
                                "it names archive {}, whose md5 is {md5}, not {key}",
                                memo.blake3
                            ))
                        } else {
                            None
                        }
                    }
                },
            };
            if let Some(problem) = problem {
                out.push(CacheDamage {
                    entry: path,
                    problem,
                });
            }
        }
        Ok(out)
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
            if name == ARCHIVES {
                for e in fs::read_dir(bucket.path()).at(&bucket.path())?.flatten() {
                    if older_than(&e.path(), ARCHIVES_MAX_AGE) {
                        removed += 1;
                        if !dry_run {
                            let _ = fs::remove_file(e.path());
                        }
                    }
                }
                continue;
            }
            if name == ARCHIVE_MD5 {
                for e in fs::read_dir(bucket.path()).at(&bucket.path())?.flatten() {
                    let named = fs::read_to_string(e.path())
                        .ok()
                        .and_then(|t| Blake3::parse(t.split_whitespace().next()?).ok());
                    let live = named.is_some_and(|b| {
                        let p = self.archive_path(&b);
                        p.exists() && !older_than(&p, ARCHIVES_MAX_AGE)
                    });
                    if !live {
                        removed += 1;
                        if !dry_run {
                            let _ = fs::remove_file(e.path());
                        }
                    }
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
            let names_manifest = name == GIT_MANIFESTS || name == UPSTREAM_LATEST;
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
        // An archive kept, and the md5 memo that names it.
        let zip = d.path().join("a.zip");
        std::fs::write(&zip, b"PK zip bytes").unwrap();
        let blake = Blake3::parse(&blake3::hash(b"PK zip bytes").to_hex()).unwrap();
        c.keep_archive(&blake, &zip).unwrap();
        let md5 = Md5::parse(&hex_lower(&<md5::Md5 as md5::Digest>::digest(
            b"PK zip bytes",
        )))
        .unwrap();
        let memo = ArchiveMemo {
            blake3: blake.clone(),
            date: 7,
        };
        c.set_archive_by_md5(&md5, &memo).unwrap();
        assert_eq!(c.archive_by_md5(&md5), Some(memo));
        assert_eq!(c.verify().unwrap(), Vec::new());
        // Redirected: a memo whose key is not its archive's md5, an archive edited.
        let other = Md5::parse(&"c".repeat(32)).unwrap();
        c.set_archive_by_md5(
            &other,
            &ArchiveMemo {
                blake3: blake.clone(),
                date: 7,
            },
        )
        .unwrap();
        let damage = c.verify().unwrap();
        assert_eq!(damage.len(), 1, "{damage:?}");
        assert!(damage[0].problem.contains("whose md5 is"), "{damage:?}");
        c.remove_entry(&damage[0].entry).unwrap();
        assert_eq!(c.archive_by_md5(&other), None);
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
        // gc's pruning: memos naming missing manifests or archives, and foreign buckets, go.
        std::fs::create_dir_all(s.cache_dir().join("git-manifests")).unwrap();
        std::fs::remove_file(c.archive_path(&blake)).unwrap();
        assert_eq!(c.prune(false).unwrap(), 3);
        assert_eq!(c.archive_by_md5(&md5), None);
        assert!(!s.cache_dir().join("git-manifests").exists());
    }
}
