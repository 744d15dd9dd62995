//! Getting each source into the store: git (fetched once per run and URL), zip (local or
//! downloaded, verified before anything is stored) and local directories. Sources already
//! in the store are read from it; nothing is downloaded twice.

use std::collections::HashMap;
use std::sync::Mutex;

use mcb_catalog::Http;
use mcb_config::{Location, LockedSource, SiteFile};
use mcb_git::{GitStore, RemoteRefs};
use mcb_store::{Manifest, ManifestHash, Store};

use crate::error::RealiseError;

/// A source whose files are in the object store.
#[derive(Debug, Clone)]
pub(crate) struct Fetched {
    pub manifest: Manifest,
    pub hash: ManifestHash,
    pub locked: LockedSource,
    /// The source's own date, seconds since the epoch (0 when it has none).
    pub date: i64,
    /// The manifest is not recorded yet: it is, after the batch's objects are synced.
    pub pending: bool,
    /// Memos to write once the manifest is recorded (path, content): which manifest a git
    /// commit or a directory download gives, so it is never ingested twice, and the
    /// latest manifest of an upstream, the base for its next release.
    pub memo: Vec<(std::path::PathBuf, String)>,
}

impl Fetched {
    /// The content of a file of this source, from the object store.
    pub fn read(&self, store: &Store, path: &str) -> Result<Option<Vec<u8>>, RealiseError> {
        match self.manifest.get(path) {
            Some(e) => Ok(Some(store.read_object(&e.object(), e.executable())?)),
            None => Ok(None),
        }
    }
}

pub(crate) struct Sources<'a> {
    pub store: &'a Store,
    pub git: &'a GitStore,
    pub http: &'a Http,
    pub site: &'a SiteFile,
    pub offline: bool,
    /// How old fetched refs may be before they are fetched again.
    pub policy: mcb_catalog::CachePolicy,
    /// Refs per URL, fetched at most once per run.
    refs: Mutex<HashMap<String, RemoteRefs>>,
}

/// The store's git repository, created under a lock the first time so that two runs on a
/// new store do not both initialise it.
pub(crate) fn open_git(store: &Store) -> Result<GitStore, RealiseError> {
    let path = store.git_dir();
    if path.join("HEAD").exists() {
        return Ok(GitStore::open(&path)?);
    }
    let _creating = store.lock_named("git-init", mcb_store::LockMode::Exclusive, || {})?;
    Ok(GitStore::open(&path)?)
}

/// The string gix gets for a location: a URL, or a local path.
pub(crate) fn git_url(location: &Location) -> String {
    match location {
        Location::Url(u) => u.clone(),
        Location::Path(p) => p.to_string_lossy().into_owned(),
    }
}

impl<'a> Sources<'a> {
    pub fn new(
        store: &'a Store,
        git: &'a GitStore,
        http: &'a Http,
        site: &'a SiteFile,
        offline: bool,
        policy: mcb_catalog::CachePolicy,
    ) -> Self {
        Sources {
            store,
            git,
            http,
            site,
            offline,
            policy,
            refs: Mutex::new(HashMap::new()),
        }
    }

    /// The refs of a git source: fetched once per run, or from the store when offline.
    pub fn git_refs(&self, component: &str, written: &str) -> Result<RemoteRefs, RealiseError> {
        let url = git_url(&self.site.locate(written));
        if let Some(r) = self.refs.lock().expect("not poisoned").get(&url) {
            return Ok(r.clone());
        }
        let key = mcb_git::source_key(&url);
        let stamp = self.store.cache_dir().join("git-fetched").join(&key);
        let fresh = || {
            std::fs::metadata(&stamp)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age < self.policy.max_age)
        };
        // One fetch of an upstream at a time; whoever waited finds it freshly fetched.
        let fetched_before = fresh();
        let _fetch_lock = if self.offline {
            None
        } else {
            Some(self.store.lock_named(
                &format!("fetch-{key}"),
                mcb_store::LockMode::Exclusive,
                || {},
            )?)
        };
        let refs = if (!self.policy.refresh && fetched_before) || (!fetched_before && fresh()) {
            // Fetched recently: the refs in the store are as good as the network's.
            self.git.refs(&url)?
        } else if self.offline {
            let r = self.git.refs(&url)?;
            if r.heads.is_empty() && r.tags.is_empty() {
                return Err(RealiseError::source(
                    component,
                    format!("{written} has never been fetched into this store, and --offline forbids fetching it"),
                )
                .with_hint("run once without --offline"));
            }
            r
        } else {
            // Under the fetch lock, ref lock files of this upstream are a killed run's.
            self.git.clear_stale_ref_locks(&format!("mcb/src/{key}"));
            let refs = self.git.fetch(&url).map_err(|e| {
                RealiseError::source(component, e.to_string())
                    .with_hint("check the URL and that the repository is reachable; --offline uses what the store already has")
            })?;
            self.store.write_atomic(&stamp, url.as_bytes())?;
            refs
        };
        self.refs
            .lock()
            .expect("not poisoned")
            .insert(url, refs.clone());
        Ok(refs)
    }

    fn memo_path(&self, commit: &str) -> std::path::PathBuf {
        self.store.cache_dir().join("git-manifests").join(commit)
    }

    fn md5_memo_path(&self, md5: &str) -> std::path::PathBuf {
        self.store
            .cache_dir()
            .join("directory-manifests")
            .join(md5.to_ascii_lowercase())
    }

    /// A plugins-directory zip: from the store when this md5 was ingested before, else
    /// downloaded and checked against the directory's md5 (and the lock's blake3) before
    /// anything enters the store.
    pub fn directory_zip(
        &self,
        component: &str,
        v: &mcb_catalog::DirectoryVersion,
        locked_blake3: Option<&str>,
    ) -> Result<Fetched, RealiseError> {
        let memo_path = self.md5_memo_path(&v.downloadmd5);
        if let Ok(text) = std::fs::read_to_string(&memo_path) {
            let mut it = text.split_whitespace();
            if let (Some(h), Some(b), Some(d)) = (it.next(), it.next(), it.next()) {
                let hash = ManifestHash(h.to_string());
                if locked_blake3.is_none_or(|l| l == b)
                    && let Ok(manifest) = self.store.read_manifest(&hash)
                {
                    return Ok(Fetched {
                        manifest,
                        hash,
                        locked: LockedSource::Directory {
                            id: v.id,
                            url: v.downloadurl.clone(),
                            md5: v.downloadmd5.clone(),
                            blake3: b.to_string(),
                        },
                        date: d.parse().unwrap_or(0),
                        pending: false,
                        memo: Vec::new(),
                    });
                }
            }
        }
        let bytes = self
            .http
            .get_bytes(&v.downloadurl)
            .map_err(|e| RealiseError::source(component, e.to_string()))?;
        mcb_catalog::check_md5(&bytes, &v.downloadmd5).map_err(|why| RealiseError::Integrity {
            component: component.to_string(),
            message: format!("{} has {why}; nothing entered the store", v.downloadurl),
        })?;
        let blake = blake3::hash(&bytes).to_hex().to_string();
        if let Some(l) = locked_blake3
            && l != blake
        {
            return Err(RealiseError::Integrity {
                component: component.to_string(),
                message: format!(
                    "{} changed since the lock was written (blake3 {l}, now {blake}); nothing entered the store",
                    v.downloadurl
                ),
            });
        }
        let mut f = self.zip_bytes(
            component,
            &v.downloadurl,
            &bytes,
            LockedSource::Directory {
                id: v.id,
                url: v.downloadurl.clone(),
                md5: v.downloadmd5.clone(),
                blake3: blake.clone(),
            },
        )?;
        f.memo = vec![(memo_path, format!("{} {blake} {}\n", f.hash, f.date))];
        Ok(f)
    }

    /// The files of `commit` of a git source, ingested once per store.
    pub fn git_commit(
        &self,
        component: &str,
        written_url: &str,
        reference: &str,
        commit: &str,
    ) -> Result<Fetched, RealiseError> {
        let url = git_url(&self.site.locate(written_url));
        if !self.git.has_commit(commit) {
            self.git_refs(component, written_url)?;
            if !self.git.has_commit(commit) {
                return Err(RealiseError::source(
                    component,
                    format!("commit {commit} is not in {url}"),
                ));
            }
        }
        let date = self.git.commit_time(commit)?;
        let locked = LockedSource::Git {
            url: written_url.to_string(),
            reference: reference.to_string(),
            commit: commit.to_string(),
        };
        if let Ok(h) = std::fs::read_to_string(self.memo_path(commit)) {
            let hash = ManifestHash(h.trim().to_string());
            if let Ok(manifest) = self.store.read_manifest(&hash) {
                return Ok(Fetched {
                    manifest,
                    hash,
                    locked,
                    date,
                    pending: false,
                    memo: Vec::new(),
                });
            }
        }
        // The manifest this upstream gave last time is the base: only new blobs are read.
        let latest = self
            .store
            .cache_dir()
            .join("git-latest")
            .join(mcb_git::source_key(&url));
        let base = std::fs::read_to_string(&latest).ok().and_then(|h| {
            self.store
                .read_manifest(&ManifestHash(h.trim().to_string()))
                .ok()
        });
        let manifest = self.git.ingest_commit(self.store, commit, base.as_ref())?;
        let hash = manifest.hash();
        Ok(Fetched {
            memo: vec![
                (self.memo_path(commit), format!("{hash}\n")),
                (latest, format!("{hash}\n")),
            ],
            hash,
            manifest,
            locked,
            date,
            pending: true,
        })
    }

    /// A zip source. `pinned` is the site file's `hash`; `locked` the blake3 the lock
    /// recorded. The archive is checked against both before anything enters the store.
    pub fn zip(
        &self,
        component: &str,
        written: &str,
        pinned: Option<&str>,
        locked: Option<&str>,
    ) -> Result<Fetched, RealiseError> {
        let location = self.site.locate(written);
        let bytes = mcb_catalog::fetch_bytes(self.http, &location)
            .map_err(|e| RealiseError::source(component, e.to_string()))?;
        let blake = blake3::hash(&bytes).to_hex().to_string();
        if let Some(p) = pinned {
            let want = p.trim_start_matches("blake3:");
            if want != blake {
                return Err(RealiseError::Integrity {
                    component: component.to_string(),
                    message: format!(
                        "{written} has hash blake3:{blake}, but the site file pins {p}; nothing was stored"
                    ),
                });
            }
        }
        if let Some(l) = locked
            && l != blake
        {
            return Err(RealiseError::Integrity {
                component: component.to_string(),
                message: format!(
                    "{written} changed since the lock was written (blake3 {l}, now {blake}); nothing was stored"
                ),
            });
        }
        self.zip_bytes(
            component,
            written,
            &bytes,
            LockedSource::Zip {
                location: written.to_string(),
                blake3: blake,
            },
        )
    }

    /// Ingests an archive already verified.
    pub fn zip_bytes(
        &self,
        component: &str,
        label: &str,
        bytes: &[u8],
        locked: LockedSource,
    ) -> Result<Fetched, RealiseError> {
        let zip = mcb_catalog::read_zip(bytes, label)
            .map_err(|e| RealiseError::source(component, e.to_string()))?;
        let manifest = self.git.ingest_files(self.store, zip.files)?;
        Ok(Fetched {
            hash: manifest.hash(),
            manifest,
            locked,
            date: zip.date.unwrap_or(0),
            pending: true,
            memo: Vec::new(),
        })
    }

    /// A local directory: read afresh every run, since it is where development happens.
    pub fn path(&self, component: &str, written: &str) -> Result<Fetched, RealiseError> {
        let dir = match self.site.locate(written) {
            Location::Path(p) => p,
            Location::Url(u) => {
                return Err(RealiseError::source(
                    component,
                    format!("path source '{u}' is a URL; use git: or zip: for remote sources"),
                ));
            }
        };
        let files = mcb_catalog::read_dir(&dir)
            .map_err(|e| RealiseError::source(component, e.to_string()))?;
        let manifest = self.git.ingest_files(self.store, files)?;
        let hash = manifest.hash();
        let pending = !self.store.has_manifest(&hash);
        Ok(Fetched {
            hash,
            manifest,
            locked: LockedSource::Path {
                dir: written.to_string(),
            },
            date: 0,
            pending,
            memo: Vec::new(),
        })
    }

    /// A locked source whose manifest is already in the store, without any network.
    pub fn stored(&self, locked: &LockedSource, manifest: &str, date: i64) -> Option<Fetched> {
        if matches!(locked, LockedSource::Path { .. }) {
            return None;
        }
        let hash = ManifestHash(manifest.to_string());
        let manifest = self.store.read_manifest(&hash).ok()?;
        if let LockedSource::Git { commit, .. } = locked
            && !self.git.has_commit(commit)
        {
            return None;
        }
        Some(Fetched {
            manifest,
            hash,
            locked: locked.clone(),
            date,
            pending: false,
            memo: Vec::new(),
        })
    }

    /// Records the manifests of this batch: one sync for all objects first, so that no
    /// manifest ever names an object that is not on disk.
    pub fn record(&self, batch: &[&Fetched]) -> Result<(), RealiseError> {
        if !batch.iter().any(|f| f.pending) {
            return Ok(());
        }
        self.store.sync()?;
        for f in batch.iter().filter(|f| f.pending) {
            self.store.put_manifest(&f.manifest)?;
            for (path, text) in &f.memo {
                self.store.write_atomic(path, text.as_bytes())?;
            }
        }
        Ok(())
    }
}
