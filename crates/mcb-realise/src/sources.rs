//! Getting each source into the store: git (fetched once per run and URL, a commit taken
//! only when the named upstream reaches it), zip (local or downloaded, verified before
//! anything is stored) and local directories. Sources already in the store are read from
//! it; nothing is downloaded twice. Every kind passes the same source rule and limits.

use std::collections::HashMap;
use std::sync::Mutex;

use mcb_catalog::{Http, Limits};
use mcb_config::{Location, LockedSource, SiteFile};
use mcb_git::{FetchLimits, GitStore, IngestError, RemoteRefs};
use mcb_store::{Blake3, EntryKind, GitOid, Manifest, ManifestHash, Md5, Store};

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

pub(crate) struct Sources<'a> {
    pub store: &'a Store,
    pub git: &'a GitStore,
    pub http: &'a Http,
    pub site: &'a SiteFile,
    pub offline: bool,
    pub limits: Limits,
    /// How old fetched refs may be before they are fetched again.
    pub policy: mcb_catalog::CachePolicy,
    /// Refs per URL, fetched at most once per run.
    refs: Mutex<HashMap<String, RemoteRefs>>,
    /// Things worth saying that happened while fetching (submodules left out, objects
    /// restored from git), for the run's warnings.
    notes: Mutex<Vec<String>>,
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

fn ingest_error(component: &str, what: &str, e: IngestError) -> RealiseError {
    match e {
        IngestError::Git(g) => RealiseError::Git(g),
        other => RealiseError::source(component, format!("{what}: {other}"))
            .with_hint("the source is refused whole; nothing of it entered the store"),
    }
}

impl<'a> Sources<'a> {
    pub fn new(
        store: &'a Store,
        git: &'a GitStore,
        http: &'a Http,
        site: &'a SiteFile,
        offline: bool,
        limits: Limits,
        policy: mcb_catalog::CachePolicy,
    ) -> Self {
        Sources {
            store,
            git,
            http,
            site,
            offline,
            limits,
            policy,
            refs: Mutex::new(HashMap::new()),
            notes: Mutex::new(Vec::new()),
        }
    }

    fn note(&self, text: String) {
        self.notes.lock().expect("not poisoned").push(text);
    }

    /// What happened worth saying, since the last call.
    pub fn take_notes(&self) -> Vec<String> {
        std::mem::take(&mut *self.notes.lock().expect("not poisoned"))
    }

    fn fetch_limits(&self) -> FetchLimits {
        FetchLimits {
            connect: self.limits.http.connect,
            idle: self.limits.http.idle,
        }
    }

    /// The refs of a git source: fetched once per run, or from the store when offline.
    pub fn git_refs(&self, component: &str, written: &str) -> Result<RemoteRefs, RealiseError> {
        self.git_refs_fresh(component, written, false)
    }

    /// Like [`Sources::git_refs`]; `again` fetches even when the refs are young (a commit
    /// the lock names is not among them yet).
    fn git_refs_fresh(
        &self,
        component: &str,
        written: &str,
        again: bool,
    ) -> Result<RemoteRefs, RealiseError> {
        let url = git_url(&self.site.locate(written));
        if !again && let Some(r) = self.refs.lock().expect("not poisoned").get(&url) {
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
        let young = (!self.policy.refresh && fetched_before) || (!fetched_before && fresh());
        let refs = if young && !again {
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
            let refs = self.git.fetch(&url, self.fetch_limits()).map_err(|e| {
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

    fn memo_path(&self, commit: &GitOid) -> std::path::PathBuf {
        self.store
            .cache_dir()
            .join("git-manifests")
            .join(commit.as_str())
    }

    fn md5_memo_path(&self, md5: &Md5) -> std::path::PathBuf {
        self.store
            .cache_dir()
            .join("directory-manifests")
            .join(md5.as_str())
    }

    /// A plugins-directory zip: from the store when this md5 was ingested before, else
    /// downloaded and checked against the directory's md5 (and the lock's blake3) before
    /// anything enters the store.
    pub fn directory_zip(
        &self,
        component: &str,
        v: &mcb_catalog::DirectoryVersion,
        locked_blake3: Option<&Blake3>,
    ) -> Result<Fetched, RealiseError> {
        let md5 = Md5::parse(&v.downloadmd5.trim().to_ascii_lowercase()).map_err(|e| {
            RealiseError::source(
                component,
                format!(
                    "the plugins directory lists version {} with a malformed checksum: {e}",
                    v.version
                ),
            )
        })?;
        let memo_path = self.md5_memo_path(&md5);
        if let Ok(text) = std::fs::read_to_string(&memo_path) {
            let mut it = text.split_whitespace();
            if let (Some(Ok(hash)), Some(Ok(b)), Some(d)) = (
                it.next().map(ManifestHash::parse),
                it.next().map(Blake3::parse),
                it.next(),
            ) && locked_blake3.is_none_or(|l| *l == b)
                && let Ok(manifest) = self.store.read_manifest(&hash)
            {
                return Ok(Fetched {
                    manifest,
                    hash,
                    locked: LockedSource::Directory {
                        id: v.id,
                        url: v.downloadurl.clone(),
                        md5,
                        blake3: b,
                    },
                    date: d.parse().unwrap_or(0),
                    pending: false,
                    memo: Vec::new(),
                });
            }
        }
        let staged = mcb_catalog::stage_archive(
            self.http,
            self.store,
            &Location::Url(v.downloadurl.clone()),
        )
        .map_err(|e| RealiseError::source(component, e.to_string()))?;
        if staged.md5 != md5.as_str() {
            return Err(RealiseError::Integrity {
                component: component.to_string(),
                message: format!(
                    "{} has md5 {}, but the directory says {md5}; nothing entered the store",
                    v.downloadurl, staged.md5
                ),
            });
        }
        if let Some(l) = locked_blake3
            && *l != staged.blake3
        {
            return Err(RealiseError::Integrity {
                component: component.to_string(),
                message: format!(
                    "{} changed since the lock was written (blake3 {l}, now {}); nothing entered the store",
                    v.downloadurl, staged.blake3
                ),
            });
        }
        let blake = staged.blake3.clone();
        let mut f = self.unpack(
            component,
            &v.downloadurl,
            &staged,
            LockedSource::Directory {
                id: v.id,
                url: v.downloadurl.clone(),
                md5,
                blake3: blake.clone(),
            },
        )?;
        f.memo = vec![(memo_path, format!("{} {blake} {}\n", f.hash, f.date))];
        Ok(f)
    }

    /// Fetches the refs of `written_url` again when `commit` is not among the commits they
    /// reach: the upstream may have moved on since the store last asked.
    fn reachable(
        &self,
        component: &str,
        written_url: &str,
        commit: &GitOid,
    ) -> Result<bool, RealiseError> {
        let refs = self.git_refs(component, written_url)?;
        if self.git.has_commit(commit) && self.git.is_reachable(&refs, commit)? {
            return Ok(true);
        }
        if self.offline {
            return Ok(false);
        }
        let refs = self.git_refs_fresh(component, written_url, true)?;
        Ok(self.git.has_commit(commit) && self.git.is_reachable(&refs, commit)?)
    }

    /// The files of `commit` of a git source, ingested once per store. The commit must be
    /// one the upstream's own refs reach: another upstream's commit (a fork another site
    /// fetched into this store) is refused.
    pub fn git_commit(
        &self,
        component: &str,
        written_url: &str,
        reference: &str,
        commit: &GitOid,
    ) -> Result<Fetched, RealiseError> {
        let url = git_url(&self.site.locate(written_url));
        if !self.reachable(component, written_url, commit)? {
            return Err(RealiseError::source(
                component,
                format!("commit {commit} is not in {url}: none of its branches or tags reach it"),
            )
            .with_hint(
                "a commit must belong to the repository the site file names, not to a fork",
            ));
        }
        let date = self.git.commit_time(commit)?;
        let locked = LockedSource::Git {
            url: written_url.to_string(),
            reference: reference.to_string(),
            commit: commit.clone(),
        };
        if let Ok(h) = std::fs::read_to_string(self.memo_path(commit))
            && let Ok(hash) = ManifestHash::parse(h.trim())
            && let Ok(manifest) = self.store.read_manifest(&hash)
        {
            return Ok(Fetched {
                manifest,
                hash,
                locked,
                date,
                pending: false,
                memo: Vec::new(),
            });
        }
        // The manifest this upstream gave last time is the base: only new blobs are read.
        let latest = self
            .store
            .cache_dir()
            .join("git-latest")
            .join(mcb_git::source_key(&url));
        let base = std::fs::read_to_string(&latest)
            .ok()
            .and_then(|h| ManifestHash::parse(h.trim()).ok())
            .and_then(|h| self.store.read_manifest(&h).ok());
        let ingested = self
            .git
            .ingest_commit(self.store, commit, base.as_ref(), &self.limits.source)
            .map_err(|e| ingest_error(component, &format!("{url} at {reference}"), e))?;
        if !ingested.submodules.is_empty() {
            self.note(format!(
                "{component}: {url} at {reference} has submodule{} {}; mcb fetches no submodule, so {} not in the codebase",
                if ingested.submodules.len() == 1 { "" } else { "s" },
                ingested.submodules.join(", "),
                if ingested.submodules.len() == 1 { "it is" } else { "they are" }
            ));
        }
        let manifest = ingested.manifest;
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
        locked: Option<&Blake3>,
    ) -> Result<Fetched, RealiseError> {
        let location = self.site.locate(written);
        let staged = mcb_catalog::stage_archive(self.http, self.store, &location)
            .map_err(|e| RealiseError::source(component, e.to_string()))?;
        let blake = &staged.blake3;
        if let Some(p) = pinned {
            let want = p.trim_start_matches("blake3:");
            if want != blake.as_str() {
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
        self.unpack(
            component,
            written,
            &staged,
            LockedSource::Zip {
                location: written.to_string(),
                blake3: blake.clone(),
            },
        )
    }

    /// Unpacks a staged archive already verified into the store.
    fn unpack(
        &self,
        component: &str,
        label: &str,
        staged: &mcb_catalog::Staged,
        locked: LockedSource,
    ) -> Result<Fetched, RealiseError> {
        let reader = staged
            .reader()
            .map_err(|e| RealiseError::source(component, e.to_string()))?;
        let zip = mcb_catalog::unpack_zip(reader, label, self.store, &self.limits.source).map_err(
            |e| {
                RealiseError::source(component, e.to_string())
                    .with_hint("the archive is refused whole; nothing of it entered the store")
            },
        )?;
        let manifest = self
            .git
            .ingest_files(self.store, zip.files)
            .map_err(|e| ingest_error(component, &format!("zip {label}"), e))?;
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
        let files =
            mcb_catalog::unpack_dir(&dir, self.store, &self.limits.source).map_err(|e| {
                RealiseError::source(component, e.to_string())
                    .with_hint("the directory is refused whole; nothing of it entered the store")
            })?;
        let manifest = self
            .git
            .ingest_files(self.store, files)
            .map_err(|e| ingest_error(component, &dir.display().to_string(), e))?;
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

    /// A locked source whose manifest is already in the store, without any network (a
    /// locked git commit must still be one its upstream's stored refs reach).
    pub fn stored(
        &self,
        locked: &LockedSource,
        manifest: &ManifestHash,
        date: i64,
    ) -> Result<Option<Fetched>, RealiseError> {
        if matches!(locked, LockedSource::Path { .. }) {
            return Ok(None);
        }
        let Ok(m) = self.store.read_manifest(manifest) else {
            return Ok(None);
        };
        if let LockedSource::Git { url, commit, .. } = locked {
            let refs = self.git.refs(&git_url(&self.site.locate(url)))?;
            if !self.git.has_commit(commit) || !self.git.is_reachable(&refs, commit)? {
                return Ok(None);
            }
        }
        Ok(Some(Fetched {
            manifest: m,
            hash: manifest.clone(),
            locked: locked.clone(),
            date,
            pending: false,
            memo: Vec::new(),
        }))
    }

    /// The content of a file of a source, from the object store. A symlink is refused (its
    /// target is not the file's content); an object missing from the store is restored
    /// from git, which holds every blob.
    pub fn read(
        &self,
        component: &str,
        fetched: &Fetched,
        path: &str,
    ) -> Result<Option<Vec<u8>>, RealiseError> {
        let Some(e) = fetched.manifest.get(path) else {
            return Ok(None);
        };
        if e.kind == EntryKind::Symlink {
            return Err(RealiseError::source(
                component,
                format!("{path} is a symlink; mcb reads it only as a regular file"),
            ));
        }
        match self.store.read_object(e.object(), e.executable()) {
            Ok(b) => Ok(Some(b)),
            Err(_) => {
                let bytes = self.git.read_blob(&e.oid)?;
                self.store
                    .repair_object(e.object(), e.executable(), &bytes)
                    .map_err(|err| {
                        RealiseError::source(
                            component,
                            format!("store object {} of {path} is missing and git's copy does not match it: {err}", e.object()),
                        )
                        .with_hint("run `mcb verify` to see the damage")
                    })?;
                self.note(format!(
                    "store object {} ({component} {path}) was missing; restored from git",
                    e.object()
                ));
                Ok(Some(bytes))
            }
        }
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
