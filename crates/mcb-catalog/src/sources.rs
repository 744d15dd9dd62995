//! Getting each source into the store: git (refs fetched at most once per run and URL, and
//! not again while young; a commit taken only when the named upstream reaches it), zips
//! (local or downloaded, verified before anything is stored) and local directories.
//! Sources already in the store are read from it: nothing is downloaded twice. Every kind
//! passes the same source rule and limits on its way in.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use mcb_config::{Location, LockedSource};
use mcb_git::{FetchLimits, GitStore, IngestError, RemoteRefs};
use mcb_store::{ArchiveMemo, Blake3, EntryKind, GitOid, Manifest, ManifestHash, Md5, Store};

use crate::directory::{CachePolicy, DirectoryVersion};
use crate::http::Http;
use crate::limits::Limits;
use crate::stage::{Staged, stage_archive};

type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What kind of failure a [`SourceError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFailure {
    /// The source could not be fetched or read (network, missing file, unknown ref).
    Unavailable,
    /// Its content breaks the source rule or a limit: refused whole.
    Refused,
    /// Its content is not what a hash says it must be.
    Integrity,
    /// The store or its git repository failed.
    Store,
}

/// A source that could not be had, with its component, its causes and what to try.
#[derive(Debug, thiserror::Error)]
#[error("{component}: {message}")]
pub struct SourceError {
    pub component: String,
    pub failure: SourceFailure,
    pub message: String,
    #[source]
    pub cause: Option<Cause>,
    pub hint: Option<String>,
}

impl SourceError {
    pub fn new(component: &str, failure: SourceFailure, message: impl Into<String>) -> Self {
        SourceError {
            component: component.to_string(),
            failure,
            message: message.into(),
            cause: None,
            hint: None,
        }
    }

    pub fn because(mut self, cause: impl Into<Cause>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    fn store(component: &str, e: impl Into<Cause>) -> Self {
        SourceError::new(component, SourceFailure::Store, "the store failed").because(e)
    }
}

/// A memo to write once a source's manifest is recorded, so it is never ingested twice.
#[derive(Debug, Clone)]
pub enum Memo {
    /// This commit gave this manifest.
    GitManifest(GitOid),
    /// This upstream's latest manifest: the base for its next release.
    UpstreamLatest(String),
    /// The plugins directory's zip with this md5 is the archive with this blake3.
    Archive { md5: Md5, blake3: Blake3 },
}

/// A source whose files are in the object store.
#[derive(Debug, Clone)]
pub struct StoredSource {
    pub manifest: Manifest,
    pub hash: ManifestHash,
    pub locked: LockedSource,
    /// The source's own date, seconds since the epoch (0 when it has none).
    pub date: i64,
    /// The manifest is not recorded yet: it is, after the batch's objects are synced.
    pub pending: bool,
    pub memos: Vec<Memo>,
}

impl StoredSource {
    /// A locked package whose manifest the store holds, as the lock records it.
    fn of_lock(manifest: Manifest, hash: &ManifestHash, locked: &LockedSource, date: i64) -> Self {
        StoredSource {
            manifest,
            hash: hash.clone(),
            locked: locked.clone(),
            date,
            pending: false,
            memos: Vec::new(),
        }
    }
}

/// The site file's own symlinks, as a package in the store.
#[derive(Debug, Clone)]
pub struct StoredLinks {
    pub manifest: Manifest,
    pub hash: ManifestHash,
}

pub struct Sources<'a> {
    pub store: &'a Store,
    watch: &'a dyn crate::TransferWatch,
    pub git: &'a GitStore,
    pub http: &'a Http,
    /// Relative locations in the site file are relative to this directory.
    base: PathBuf,
    pub offline: bool,
    pub limits: Limits,
    /// How old fetched refs may be before they are fetched again.
    pub policy: CachePolicy,
    /// Refs per URL, fetched at most once per run.
    refs: Mutex<HashMap<String, RemoteRefs>>,
    /// Things worth saying that happened while fetching (submodules left out, objects
    /// restored from git), for the run's warnings.
    notes: Mutex<Vec<String>>,
    /// The Marketplace API's base URL and the Marketplace's hosts, when a token is set: a
    /// directory zip the list places on the Marketplace is downloaded through the API.
    marketplace: Option<(String, Vec<String>)>,
    /// Composer package versions by repository and name, read once per run.
    composer: Mutex<HashMap<String, Vec<crate::ComposerPackage>>>,
    /// The virus scanner each new package passes before it is recorded, when the site
    /// names one.
    scanner: Option<crate::Scanner>,
    /// Binary caches a locked package the store lacks is taken from before upstream.
    substitutes: Option<&'a mcb_substitute::Substitutes>,
}

/// Where the filesystem takes `path`: its deepest existing ancestor with every symlink
/// resolved, then the rest as written.
fn resolved(path: &Path) -> PathBuf {
    let mut existing = path;
    let mut rest: Vec<&std::ffi::OsStr> = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            let mut out = real;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name);
                existing = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// The store's git repository, created under a lock the first time so that two runs on a
/// new store do not both initialise it.
pub fn open_git(store: &Store) -> Result<GitStore, mcb_git::GitError> {
    let path = store.git_dir();
    if path.join("HEAD").exists() {
        return GitStore::open(&path);
    }
    let _creating = store
        .lock_named("git-init", mcb_store::LockMode::Exclusive, || {})
        .map_err(|e| mcb_git::GitError::new("cannot lock the store", e))?;
    GitStore::open(&path)
}

/// A staged download must be the bytes the lock recorded, when it recorded them.
fn check_locked(
    component: &str,
    shown: &str,
    locked: Option<&Blake3>,
    staged: &Staged,
) -> Result<(), SourceError> {
    match locked {
        Some(l) if *l != staged.blake3 => Err(SourceError::new(
            component,
            SourceFailure::Integrity,
            format!(
                "{shown} changed since the lock was written (blake3 {l}, now {}); nothing entered the store",
                staged.blake3
            ),
        )),
        _ => Ok(()),
    }
}

/// A 401 or 402 from a download, said as what it means on the Marketplace.
fn marketplace_refusal(
    e: SourceError,
    component: &str,
    v: &DirectoryVersion,
    url: &str,
) -> SourceError {
    let status = e.cause.as_ref().and_then(|c| {
        let mut cur: Option<&(dyn std::error::Error + 'static)> =
            Some(c.as_ref() as &(dyn std::error::Error + 'static));
        while let Some(err) = cur {
            let http =
                err.downcast_ref::<crate::http::HttpError>()
                    .or_else(|| match err.downcast_ref::<crate::CatalogError>() {
                        Some(crate::CatalogError::Http(h)) => Some(h),
                        _ => None,
                    });
            if let Some(crate::http::HttpError::Status {
                status, problem, ..
            }) = http
            {
                return Some((*status, problem.clone()));
            }
            cur = err.source();
        }
        None
    });
    let shown = crate::http::shown_url(url);
    let said = |problem: &Option<String>| {
        problem
            .as_deref()
            .map(|p| format!(" (the Marketplace says: {p})"))
            .unwrap_or_default()
    };
    match status {
        Some((401, problem)) => SourceError::new(
            component,
            SourceFailure::Refused,
            format!(
                "the Marketplace needs a token for {component} {}: {shown} answered 401{}",
                v.version,
                said(&problem)
            ),
        )
        .hint("set MCB_MARKETPLACE_TOKEN to a Marketplace subscriber's token; it is sent only to the hosts in MCB_MARKETPLACE_HOSTS (default: marketplace.moodle.com and the directory list's host)"),
        Some((402, problem)) => SourceError::new(
            component,
            SourceFailure::Refused,
            format!(
                "{component} {} must be purchased on the Marketplace: {shown} answered 402{}",
                v.version,
                said(&problem)
            ),
        )
        .hint("buy it on the Marketplace for the account whose token is MCB_MARKETPLACE_TOKEN, or pin another version"),
        _ => e,
    }
}

fn ingest_error(component: &str, what: &str, e: IngestError) -> SourceError {
    match e {
        IngestError::Git(g) => SourceError::store(component, g),
        other => SourceError::new(
            component,
            SourceFailure::Refused,
            format!("{what}: {other}"),
        )
        .hint("the source is refused whole; nothing of it entered the store"),
    }
}

impl<'a> Sources<'a> {
    pub fn new(
        store: &'a Store,
        git: &'a GitStore,
        http: &'a Http,
        base: &Path,
        limits: Limits,
        policy: CachePolicy,
        watch: &'a dyn crate::TransferWatch,
    ) -> Self {
        Sources {
            store,
            watch,
            git,
            http,
            base: base.to_path_buf(),
            offline: http.is_offline(),
            limits,
            policy,
            refs: Mutex::new(HashMap::new()),
            notes: Mutex::new(Vec::new()),
            marketplace: None,
            composer: Mutex::new(HashMap::new()),
            scanner: None,
            substitutes: None,
        }
    }

    /// Downloads the directory zips whose URL is on one of `hosts` (the Marketplace's)
    /// through the Marketplace API at `api` (`…/plugins/{component}/versions/{version}
    /// /download`), which takes the token.
    pub fn with_marketplace(mut self, api: String, hosts: Vec<String>) -> Self {
        self.marketplace = Some((api, hosts));
        self
    }

    /// Takes locked packages the store lacks from these binary caches first.
    pub fn with_substitutes(
        mut self,
        substitutes: Option<&'a mcb_substitute::Substitutes>,
    ) -> Self {
        self.substitutes = substitutes.filter(|s| !s.is_empty());
        self
    }

    /// A locked package from the store or a binary cache, without its upstream: `None`
    /// when neither has it (or the store has it and its upstream is to be asked as usual).
    /// A cache's package is taken only as [`mcb_substitute`] checks it; a cache that had it
    /// and was refused is said, and upstream is asked instead.
    pub fn substituted(
        &self,
        component: &str,
        locked: &LockedSource,
        manifest: &ManifestHash,
        date: i64,
    ) -> Option<StoredSource> {
        if matches!(locked, LockedSource::Path { .. }) {
            return None;
        }
        let stored = |m: Manifest| StoredSource::of_lock(m, manifest, locked, date);
        if let Ok(m) = self.store.read_manifest(manifest) {
            // A git package whose commit this store never fetched came from a cache: its
            // files are here, checked when they were taken.
            return match locked {
                LockedSource::Git { commit, .. } if !self.git.has_commit(commit) => Some(stored(m)),
                _ => None,
            };
        }
        self.substituted_manifest(component, manifest).map(stored)
    }

    /// Package `manifest` from the binary caches, when one gives it soundly (each refusal
    /// said as it happens).
    pub(crate) fn substituted_manifest(
        &self,
        component: &str,
        manifest: &ManifestHash,
    ) -> Option<Manifest> {
        let subs = self.substitutes?;
        let (got, refused) = subs.substitute(self.store, self.git, manifest);
        for e in refused {
            self.watch.substitute_refused(component, &e.to_string());
        }
        got.map(|(m, taken)| {
            self.watch
                .substituted(component, &taken.cache, taken.objects, taken.bytes);
            m
        })
    }

    /// Where a location written in the site file is.
    pub fn locate(&self, written: &str) -> Location {
        Location::of(&self.base, written)
    }

    /// Keeps `text` to be said with the run's warnings.
    pub fn note(&self, text: String) {
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
    pub fn git_refs(&self, component: &str, written: &str) -> Result<RemoteRefs, SourceError> {
        self.git_refs_fresh(component, written, false)
    }

    /// Like [`Sources::git_refs`]; `again` fetches even when the refs are young (a commit
    /// the lock names is not among them yet).
    fn git_refs_fresh(
        &self,
        component: &str,
        written: &str,
        again: bool,
    ) -> Result<RemoteRefs, SourceError> {
        let url = self.locate(written).for_git();
        if !again && let Some(r) = self.refs.lock().expect("not poisoned").get(&url) {
            return Ok(r.clone());
        }
        let cache = self.store.cache();
        let fresh = || {
            cache
                .upstream_fetched(&url)
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age < self.policy.max_age)
        };
        // One fetch of an upstream at a time; whoever waited finds it freshly fetched.
        let fetched_before = fresh();
        let _fetch_lock = if self.offline {
            None
        } else {
            Some(
                self.store
                    .lock_named(
                        &format!("fetch-{}", mcb_store::url_key(&url)),
                        mcb_store::LockMode::Exclusive,
                        || {},
                    )
                    .map_err(|e| SourceError::store(component, e))?,
            )
        };
        let young = (!self.policy.refresh && fetched_before) || (!fetched_before && fresh());
        let stored = || {
            self.git
                .refs(&url)
                .map_err(|e| SourceError::store(component, e))
        };
        let refs = if young && !again {
            // Fetched recently: the refs in the store are as good as the network's.
            stored()?
        } else if self.offline {
            let r = stored()?;
            if r.heads.is_empty() && r.tags.is_empty() {
                return Err(SourceError::new(
                    component,
                    SourceFailure::Unavailable,
                    format!("{written} has never been fetched into this store, and offline nothing is fetched"),
                )
                .hint("run once with the network"));
            }
            r
        } else {
            // Under the fetch lock, ref lock files of this upstream are a killed run's.
            self.git
                .clear_stale_ref_locks(&format!("mcb/src/{}", mcb_store::url_key(&url)));
            let received = Arc::new(AtomicUsize::new(0));
            self.watch
                .transfer(&format!("{component} {url}"), received.clone());
            let refs = self.git.fetch(&url, self.fetch_limits(), &received).map_err(|e| {
                // --offline helps only when this store fetched the upstream before.
                let had = cache.upstream_fetched(&url).is_some();
                let mut err = SourceError::new(component, SourceFailure::Unavailable, e.context);
                err.cause = e.source;
                err
                    .hint(if had {
                        "check the URL and that the repository is reachable; offline, mcb uses what the store already has of it"
                    } else {
                        "check the URL and that the repository is reachable"
                    })
            })?;
            cache
                .mark_upstream_fetched(&url)
                .map_err(|e| SourceError::store(component, e))?;
            refs
        };
        self.refs
            .lock()
            .expect("not poisoned")
            .insert(url, refs.clone());
        Ok(refs)
    }

    /// A plugins-directory zip: from the store when this md5 was ingested before, else
    /// downloaded and checked against the directory's md5 (and the lock's blake3) before
    /// anything enters the store.
    pub fn directory_zip(
        &self,
        component: &str,
        v: &DirectoryVersion,
        locked_blake3: Option<&Blake3>,
        index: Option<&str>,
    ) -> Result<StoredSource, SourceError> {
        let md5 = Md5::parse(&v.downloadmd5.trim().to_ascii_lowercase()).map_err(|e| {
            SourceError::new(
                component,
                SourceFailure::Unavailable,
                format!(
                    "the plugins directory lists version {} with a malformed checksum",
                    v.version
                ),
            )
            .because(e)
        })?;
        // The lock names the directory's own URL: a token-less machine reads the same lock.
        let locked = |blake3: Blake3| LockedSource::Directory {
            id: v.id,
            url: v.downloadurl.clone(),
            md5: md5.clone(),
            blake3,
            index: index.map(str::to_string),
        };
        // Downloaded before: the zip kept in the cache, read again and checked as any
        // download is (its md5 against the directory's, its blake3 against its name and
        // the lock's). A memo that names anything else is no memo.
        let cache = self.store.cache();
        if let Some(memo) = cache.archive_by_md5(&md5)
            && locked_blake3.is_none_or(|l| *l == memo.blake3)
            && let Ok(staged) =
                self.stage(component, &Location::Path(cache.archive_path(&memo.blake3)))
            && staged.blake3 == memo.blake3
            && staged.md5 == md5.as_str()
        {
            cache.touch_archive(&memo.blake3);
            return self.unpack(component, &v.downloadurl, &staged, locked(memo.blake3));
        }
        let on_marketplace = |hosts: &[String]| {
            let h = crate::http::host_of(&v.downloadurl);
            let bare = h.rsplit_once(':').map_or(h.as_str(), |(b, _)| b);
            hosts.iter().any(|m| m == &h || m == bare)
        };
        let url = match &self.marketplace {
            Some((api, hosts)) if on_marketplace(hosts) && !v.version.is_empty() => format!(
                "{}/plugins/{component}/versions/{}/download",
                api.trim_end_matches('/'),
                v.version
            ),
            _ => v.downloadurl.clone(),
        };
        let staged = self
            .stage(component, &Location::Url(url.clone()))
            .map_err(|e| marketplace_refusal(e, component, v, &url))?;
        if staged.md5 != md5.as_str() {
            return Err(SourceError::new(
                component,
                SourceFailure::Integrity,
                format!(
                    "{} has md5 {}, but the directory says {md5}; nothing entered the store",
                    v.downloadurl, staged.md5
                ),
            ));
        }
        check_locked(component, &v.downloadurl, locked_blake3, &staged)?;
        let blake3 = staged.blake3.clone();
        let mut s = self.unpack(component, &v.downloadurl, &staged, locked(blake3.clone()))?;
        s.memos = vec![Memo::Archive { md5, blake3 }];
        Ok(s)
    }

    /// Downloads (or reads) the archive at `location` to a staging file, hashing it as it
    /// passes; only http(s) URLs are fetched.
    pub fn stage(&self, component: &str, location: &Location) -> Result<Staged, SourceError> {
        if let Location::Url(u) = location
            && !crate::composer::is_http_url(u)
        {
            return Err(SourceError::new(
                component,
                SourceFailure::Refused,
                format!(
                    "'{}' is not an http(s) URL; nothing was read",
                    crate::http::shown_url(u).escape_debug()
                ),
            ));
        }
        let received = Arc::new(AtomicUsize::new(0));
        self.watch
            .transfer(&format!("{component} {location}"), received.clone());
        stage_archive(self.http, self.store, location, &received).map_err(|e| {
            let shown = match location {
                Location::Url(u) => crate::http::shown_url(u),
                other => other.to_string(),
            };
            SourceError::new(
                component,
                SourceFailure::Unavailable,
                format!("cannot get {shown}"),
            )
            .because(e)
        })
    }

    /// Makes sure `commit` is one the upstream at `written_url` reaches (fetching its refs
    /// when they are stale or do not reach it yet), and refuses it otherwise: a commit of
    /// another upstream (a fork another site fetched into this store) is not this one's.
    pub fn ensure_commit(
        &self,
        component: &str,
        written_url: &str,
        commit: &GitOid,
    ) -> Result<(), SourceError> {
        if self.reachable(component, written_url, commit)? {
            return Ok(());
        }
        let url = self.locate(written_url).for_git();
        Err(SourceError::new(
            component,
            SourceFailure::Unavailable,
            format!("commit {commit} is not in {url}: none of its branches or tags reach it"),
        )
        .hint("a commit must belong to the repository the site file names, not to a fork"))
    }

    /// Fetches the refs of `written_url` again when `commit` is not among the commits they
    /// reach: the upstream may have moved on since the store last asked.
    fn reachable(
        &self,
        component: &str,
        written_url: &str,
        commit: &GitOid,
    ) -> Result<bool, SourceError> {
        let check = |refs: &RemoteRefs| {
            Ok::<bool, SourceError>(
                self.git.has_commit(commit)
                    && self
                        .git
                        .is_reachable(refs, commit)
                        .map_err(|e| SourceError::store(component, e))?,
            )
        };
        if check(&self.git_refs(component, written_url)?)? {
            return Ok(true);
        }
        if self.offline {
            return Ok(false);
        }
        check(&self.git_refs_fresh(component, written_url, true)?)
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
    ) -> Result<StoredSource, SourceError> {
        let url = self.locate(written_url).for_git();
        self.ensure_commit(component, written_url, commit)?;
        let date = self
            .git
            .commit_time(commit)
            .map_err(|e| SourceError::store(component, e))?;
        let locked = LockedSource::Git {
            url: written_url.to_string(),
            reference: reference.to_string(),
            commit: commit.clone(),
        };
        let cache = self.store.cache();
        // A memo is believed only when the manifest it names is of this commit's tree.
        if let Some(hash) = cache.git_manifest(commit)
            && let Ok(manifest) = self.store.read_manifest(&hash)
            && self
                .git
                .commit_tree_id(commit)
                .is_ok_and(|t| t == manifest.tree)
        {
            return Ok(StoredSource {
                manifest,
                hash,
                locked,
                date,
                pending: false,
                memos: Vec::new(),
            });
        }
        // The manifest this upstream gave last time is the base: only new blobs are read.
        let base = cache
            .upstream_latest(&url)
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
        Ok(StoredSource {
            hash: manifest.hash(),
            manifest,
            locked,
            date,
            pending: true,
            memos: vec![Memo::GitManifest(commit.clone()), Memo::UpstreamLatest(url)],
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
    ) -> Result<StoredSource, SourceError> {
        let staged = self.stage(component, &self.locate(written))?;
        let blake = &staged.blake3;
        if let Some(p) = pinned {
            let want = p.trim_start_matches("blake3:");
            if want != blake.as_str() {
                return Err(SourceError::new(
                    component,
                    SourceFailure::Integrity,
                    format!(
                        "{written} has hash blake3:{blake}, but the site file pins {p}; nothing was stored"
                    ),
                ));
            }
        }
        if let Some(l) = locked
            && l != blake
        {
            return Err(SourceError::new(
                component,
                SourceFailure::Integrity,
                format!(
                    "{written} changed since the lock was written (blake3 {l}, now {blake}); nothing was stored"
                ),
            ));
        }
        let locked = LockedSource::Zip {
            location: written.to_string(),
            blake3: blake.clone(),
        };
        // The bytes are in hand: what they hold is read from them, never from a memo.
        self.unpack(component, written, &staged, locked)
    }

    /// Unpacks a staged archive already verified into the store.
    fn unpack(
        &self,
        component: &str,
        label: &str,
        staged: &Staged,
        locked: LockedSource,
    ) -> Result<StoredSource, SourceError> {
        let refused = |e: crate::CatalogError| {
            SourceError::new(
                component,
                SourceFailure::Refused,
                format!("zip {label} is refused"),
            )
            .because(e)
            .hint("the archive is refused whole; nothing of it entered the store")
        };
        let reader = staged.reader().map_err(refused)?;
        let zip =
            crate::unpack_zip(reader, label, self.store, &self.limits.source).map_err(refused)?;
        let manifest = self
            .git
            .ingest_files(self.store, zip.files)
            .map_err(|e| ingest_error(component, &format!("zip {label}"), e))?;
        // Kept as downloaded: the next site asking for it (a directory zip by its md5)
        // reads it from here, and `mcb archive` gives auditors the very bytes.
        self.store
            .cache()
            .keep_archive(&staged.blake3, staged.file.path())
            .map_err(|e| SourceError::store(component, e))?;
        Ok(StoredSource {
            hash: manifest.hash(),
            manifest,
            locked,
            date: zip.date.unwrap_or(0),
            pending: true,
            memos: Vec::new(),
        })
    }

    /// A local directory: read afresh every run, since it is where development happens.
    pub fn path(&self, component: &str, written: &str) -> Result<StoredSource, SourceError> {
        let dir = match self.locate(written) {
            Location::Path(p) => p,
            Location::Url(u) => {
                return Err(SourceError::new(
                    component,
                    SourceFailure::Unavailable,
                    format!("path source '{u}' is a URL; use git: or zip: for remote sources"),
                ));
            }
        };
        let files = crate::unpack_dir(&dir, self.store, &self.limits.source).map_err(|e| {
            SourceError::new(
                component,
                SourceFailure::Refused,
                format!("directory {} is refused", dir.display()),
            )
            .because(e)
            .hint("the directory is refused whole; nothing of it entered the store")
        })?;
        let manifest = self
            .git
            .ingest_files(self.store, files)
            .map_err(|e| ingest_error(component, &dir.display().to_string(), e))?;
        let hash = manifest.hash();
        let pending = !self.store.has_manifest(&hash);
        Ok(StoredSource {
            hash,
            manifest,
            locked: LockedSource::Path {
                dir: written.to_string(),
            },
            date: 0,
            pending,
            memos: Vec::new(),
        })
    }

    /// A locked source whose manifest is already in the store, without any network (a
    /// locked git commit must still be one its upstream's stored refs reach).
    pub fn stored(
        &self,
        component: &str,
        locked: &LockedSource,
        manifest: &ManifestHash,
        date: i64,
    ) -> Result<Option<StoredSource>, SourceError> {
        if matches!(locked, LockedSource::Path { .. }) {
            return Ok(None);
        }
        let Ok(m) = self.store.read_manifest(manifest) else {
            return Ok(None);
        };
        if let LockedSource::Git { url, commit, .. } = locked {
            let refs = self
                .git
                .refs(&self.locate(url).for_git())
                .map_err(|e| SourceError::store(component, e))?;
            let reached = self.git.has_commit(commit)
                && self
                    .git
                    .is_reachable(&refs, commit)
                    .map_err(|e| SourceError::store(component, e))?;
            if !reached {
                return Ok(None);
            }
        }
        Ok(Some(StoredSource::of_lock(m, manifest, locked, date)))
    }

    /// Fetches a locked source again (into an empty store, say), checking it is unchanged.
    /// `pinned` is the site file's `hash` of a zip.
    pub fn refetch(
        &self,
        component: &str,
        locked: &LockedSource,
        pinned: Option<&str>,
    ) -> Result<StoredSource, SourceError> {
        match locked {
            LockedSource::Git {
                url,
                reference,
                commit,
            } => self.git_commit(component, url, reference, commit),
            LockedSource::Zip { location, blake3 } => {
                self.zip(component, location, pinned, Some(blake3))
            }
            LockedSource::Path { dir } => self.path(component, dir),
            LockedSource::Directory {
                id,
                url,
                md5,
                blake3,
                index,
            } => self.directory_zip(
                component,
                &DirectoryVersion::from_lock(*id, url, md5),
                Some(blake3),
                index.as_deref(),
            ),
            LockedSource::Composer {
                repository,
                package,
                version,
                url,
                blake3,
            } => self.composer_zip(
                component,
                repository,
                &crate::ComposerPackage::from_lock(package, version, url),
                Some(blake3),
            ),
        }
    }

    /// Every version of Composer package `package` in the first of `repositories` that
    /// has it (each repository asked once per run), with that repository.
    pub fn composer_versions(
        &self,
        component: &str,
        repositories: &[String],
        package: &str,
    ) -> Result<Option<(String, Vec<crate::ComposerPackage>)>, SourceError> {
        for repo in repositories {
            let key = format!("{repo}\n{package}");
            let cached = self
                .composer
                .lock()
                .expect("not poisoned")
                .get(&key)
                .cloned();
            let versions = match cached {
                Some(v) => v,
                None => {
                    let location = self.locate(repo).for_git();
                    let v = crate::composer::package_versions(
                        self.http,
                        &location,
                        package,
                        &self.limits.metadata,
                    )
                    .map_err(|e| {
                        SourceError::new(
                            component,
                            SourceFailure::Unavailable,
                            format!("cannot read the Composer repository {repo}"),
                        )
                        .because(e)
                    })?;
                    self.composer
                        .lock()
                        .expect("not poisoned")
                        .insert(key, v.clone());
                    v
                }
            };
            if !versions.is_empty() {
                return Ok(Some((repo.clone(), versions)));
            }
        }
        Ok(None)
    }

    /// A Composer package's dist zip: downloaded, checked against the repository's
    /// checksum (sha1 or sha256, when it gives one) and the lock's blake3 before anything
    /// enters the store.
    pub fn composer_zip(
        &self,
        component: &str,
        repository: &str,
        p: &crate::ComposerPackage,
        locked_blake3: Option<&Blake3>,
    ) -> Result<StoredSource, SourceError> {
        let shown = crate::http::shown_url(&p.dist_url);
        // A repository's (or a lock's) dist is a URL, never a path on this machine.
        if !crate::composer::is_http_url(&p.dist_url) {
            return Err(SourceError::new(
                component,
                SourceFailure::Refused,
                format!(
                    "{} {}'s dist '{shown}' is not an http(s) URL; mcb never reads a local file a repository or a lock names",
                    p.name, p.version
                ),
            )
            .hint("the repository (or the lock) is wrong; nothing was read"));
        }
        let plain_http = p
            .dist_url
            .get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("http://"));
        if plain_http && p.sha1.is_none() && p.sha256.is_none() && locked_blake3.is_none() {
            return Err(SourceError::new(
                component,
                SourceFailure::Refused,
                format!(
                    "{} {} downloads over plain http:// ({shown}) and its repository gives no checksum: anyone on the way could change it",
                    p.name, p.version
                ),
            )
            .hint("use an https:// repository, or one that gives dist.shasum"));
        }
        let staged = self.stage(component, &Location::Url(p.dist_url.clone()))?;
        let integrity = |what: &str, want: &str, got: &str| {
            SourceError::new(
                component,
                SourceFailure::Integrity,
                format!(
                    "{shown} has {what} {got}, but the repository says {want}; nothing entered the store"
                ),
            )
        };
        if p.sha1.is_some() || p.sha256.is_some() {
            use sha1::Digest;
            let bytes = std::fs::read(staged.file.path()).map_err(|e| {
                SourceError::new(component, SourceFailure::Store, "cannot read a staged file")
                    .because(e)
            })?;
            if let Some(want) = &p.sha256 {
                let got = hex::encode(sha2::Sha256::digest(&bytes));
                if &got != want {
                    return Err(integrity("sha256", want, &got));
                }
            }
            if let Some(want) = &p.sha1 {
                let got = hex::encode(sha1::Sha1::digest(&bytes));
                if &got != want {
                    return Err(integrity("sha1", want, &got));
                }
            }
        }
        check_locked(component, &shown, locked_blake3, &staged)?;
        let locked = LockedSource::Composer {
            repository: repository.to_string(),
            package: p.name.clone(),
            version: p.version.clone(),
            url: p.dist_url.clone(),
            blake3: staged.blake3.clone(),
        };
        self.unpack(component, &p.dist_url, &staged, locked)
    }

    /// The content of a file of a source, from the object store. A symlink is refused (its
    /// target is not the file's content); an object missing from the store is restored
    /// from git, which holds every blob.
    pub fn read(
        &self,
        component: &str,
        source: &StoredSource,
        path: &str,
    ) -> Result<Option<Vec<u8>>, SourceError> {
        let Some(e) = source.manifest.get(path) else {
            return Ok(None);
        };
        if e.kind == EntryKind::Symlink {
            return Err(SourceError::new(
                component,
                SourceFailure::Refused,
                format!("{path} is a symlink; mcb reads it only as a regular file"),
            ));
        }
        // Checked against its name: an object edited through a hardlinked tree is read
        // from git instead, and put back.
        match self.store.read_object_verified(e.object(), e.executable()) {
            Ok(b) => Ok(Some(b)),
            Err(_) => {
                let bytes = self
                    .git
                    .read_blob(&e.oid)
                    .map_err(|err| SourceError::store(component, err))?;
                self.store
                    .repair_object(e.object(), e.executable(), &bytes)
                    .map_err(|err| {
                        SourceError::new(
                            component,
                            SourceFailure::Store,
                            format!("store object {} of {path} is missing and git's copy does not match it", e.object()),
                        )
                        .because(err)
                        .hint("run `mcb verify` to see the damage")
                    })?;
                self.note(format!(
                    "store object {} ({component} {path}) was missing or edited in place; restored from git",
                    e.object()
                ));
                Ok(Some(bytes))
            }
        }
    }

    /// The site file's links as a package in the store (none when it has none). A target
    /// inside the store is refused: a codebase must not reach into the store.
    pub fn links(
        &self,
        links: &BTreeMap<String, String>,
    ) -> Result<Option<StoredLinks>, SourceError> {
        if links.is_empty() {
            return Ok(None);
        }
        let root = self.store.root();
        let roots: Vec<PathBuf> = [
            Some(mcb_config::normalize(root)),
            std::fs::canonicalize(root).ok(),
        ]
        .into_iter()
        .flatten()
        .collect();
        for (at, target) in links {
            let t = mcb_config::normalize(Path::new(target));
            // Its text, and where the filesystem takes it (a symlink on the way into the
            // store is the store).
            if roots
                .iter()
                .any(|r| t.starts_with(r) || resolved(&t).starts_with(r))
            {
                return Err(SourceError::new(
                    "links",
                    SourceFailure::Refused,
                    format!("link {at} points into the store ({target})"),
                )
                .hint("point it at the site's own file outside the store, such as /etc/moodle/SITE/config.php"));
            }
        }
        let list: Vec<(String, String)> =
            links.iter().map(|(a, t)| (a.clone(), t.clone())).collect();
        let manifest = self
            .git
            .link_package(self.store, &list)
            .map_err(|e| ingest_error("links", "the site file's links", e))?;
        let hash = manifest.hash();
        if !self.store.has_manifest(&hash) {
            let stored = self
                .store
                .sync()
                .and_then(|_| self.store.put_manifest(&manifest));
            stored.map_err(|e| SourceError::store("links", e))?;
        }
        Ok(Some(StoredLinks { manifest, hash }))
    }

    /// Scans each new package of this batch (`(component, source)`) with the site's
    /// scanner, when it names one: a package the scanner finds something in is refused,
    /// with the scanner's verdict, and nothing of the batch is recorded.
    pub fn scan_new(&self, batch: &[(&str, &StoredSource)]) -> Result<(), SourceError> {
        let Some(scanner) = &self.scanner else {
            return Ok(());
        };
        for (component, s) in batch.iter().filter(|(_, s)| s.pending) {
            let found = scanner.scan(self.store, component, s)?;
            if let Some((path, verdict)) = found.first() {
                return Err(SourceError::new(
                    component,
                    SourceFailure::Refused,
                    format!(
                        "{} is refused: the scanner found {verdict} in {path}{}",
                        s.locked.label(),
                        if found.len() > 1 {
                            format!(" (and {} more)", found.len() - 1)
                        } else {
                            String::new()
                        }
                    ),
                )
                .hint("nothing of it was recorded; take another version or source"));
            }
        }
        Ok(())
    }

    /// Has each new package scanned by `scanner` before it is recorded.
    pub fn with_scanner(mut self, scanner: Option<crate::Scanner>) -> Self {
        self.scanner = scanner;
        self
    }

    /// Records the manifests of this batch: one sync for all objects first, so that no
    /// manifest ever names an object that is not on disk; then the memos that let the next
    /// run skip their ingestion.
    pub fn record(&self, batch: &[&StoredSource]) -> Result<(), mcb_store::StoreError> {
        if !batch.iter().any(|s| s.pending) {
            return Ok(());
        }
        self.store.sync()?;
        let cache = self.store.cache();
        for s in batch.iter().filter(|s| s.pending) {
            self.store.put_manifest(&s.manifest)?;
            for memo in &s.memos {
                match memo {
                    Memo::GitManifest(commit) => cache.set_git_manifest(commit, &s.hash)?,
                    Memo::UpstreamLatest(url) => cache.set_upstream_latest(url, &s.hash)?,
                    Memo::Archive { md5, blake3 } => cache.set_archive_by_md5(
                        md5,
                        &ArchiveMemo {
                            blake3: blake3.clone(),
                            date: s.date,
                        },
                    )?,
                }
            }
        }
        Ok(())
    }
}
