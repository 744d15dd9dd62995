//! Binary caches of the store's content on object storage (Nix's substituters): a host
//! publishes the packages its sites use, each with a record signed by its key; another
//! store takes a package it lacks from a cache before it asks upstream, only through a
//! record signed by a key it trusts, and checks every byte it takes against the record's
//! hashes before anything enters the store. A cache is input like any upstream: a package
//! it cannot give soundly is refused, said, and fetched from upstream instead.
//!
//! Plumbing: nothing here prints. The store stays the one owner of its paths; this crate
//! adds objects and manifests through the store's own calls and git trees through the
//! store's git.

pub mod error;
pub mod key;
pub mod record;
pub mod remote;

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use mcb_git::{GitStore, SourceContent, SourceFile};
use mcb_store::{EntryKind, Manifest, ManifestHash, ObjectHash, Store};

pub use error::SubstituteError;
pub use key::{SigningKey, TrustedKey};
pub use record::{LockRecord, Record};
pub use remote::{CacheLimits, Substituter};

/// The largest manifest a reader takes from a cache.
const MAX_MANIFEST_BYTES: u64 = 256 * 1024 * 1024;
/// Requests in flight at once per cache.
const PARALLEL: usize = 16;

/// The caches a store reads from (in order) and the keys it trusts.
pub struct Substitutes {
    caches: Vec<Substituter>,
    trusted: Vec<TrustedKey>,
    runtime: tokio::runtime::Runtime,
    /// The largest object taken.
    max_object: u64,
}

/// What one package's substitution fetched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Taken {
    pub cache: String,
    pub objects: usize,
    pub bytes: u64,
}

/// What a whole generation's record brought at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prefetched {
    pub cache: String,
    /// The generation's tree, as its record names it.
    pub tree: String,
    pub packages: usize,
    pub objects: usize,
    pub bytes: u64,
}

/// What `cache gc` removed and kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheGc {
    pub cache: String,
    /// Lock records kept: recent, or a site's newest.
    pub kept_records: usize,
    pub records: usize,
    pub manifests: usize,
    pub objects: usize,
    pub bytes: u64,
    /// Unnamed keys spared because they are younger than the grace period (a push in
    /// progress writes its objects before its records).
    pub spared: usize,
    pub dry_run: bool,
}

/// What a push uploaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pushed {
    pub packages: usize,
    /// Lock records written (one per generation pushed that the cache lacked).
    pub locks: usize,
    /// Packages the cache had already.
    pub present: usize,
    pub objects: usize,
    pub bytes: u64,
}

impl Substitutes {
    /// The caches at `urls`, trusting `trusted`; `max_object` bounds one file.
    pub fn new(
        urls: &[String],
        trusted: Vec<TrustedKey>,
        limits: CacheLimits,
        max_object: u64,
    ) -> Result<Substitutes, SubstituteError> {
        let caches = urls
            .iter()
            .map(|u| Substituter::open(u, limits))
            .collect::<Result<Vec<_>, _>>()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(SubstituteError::Runtime)?;
        Ok(Substitutes {
            caches,
            trusted,
            runtime,
            max_object,
        })
    }

    /// Only the caches on this machine (`--offline`).
    pub fn local_only(mut self) -> Substitutes {
        self.caches.retain(|c| c.local);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.caches.is_empty()
    }

    pub fn caches(&self) -> impl Iterator<Item = &str> {
        self.caches.iter().map(|c| c.shown.as_str())
    }

    /// Brings package `manifest` into `store` (its objects, its git tree, then its
    /// manifest) from the first cache that has it soundly. `Ok(None)` with the reasons the
    /// caches that had it were refused (each to be said), when none gave it.
    pub fn substitute(
        &self,
        store: &Store,
        git: &GitStore,
        manifest: &ManifestHash,
    ) -> (Option<(Manifest, Taken)>, Vec<SubstituteError>) {
        let mut refused = Vec::new();
        for cache in &self.caches {
            match self
                .runtime
                .block_on(self.take(cache, store, git, manifest))
            {
                Ok(Some(got)) => return (Some(got), refused),
                Ok(None) => {}
                Err(e) => refused.push(e),
            }
        }
        (None, refused)
    }

    async fn take(
        &self,
        cache: &Substituter,
        store: &Store,
        git: &GitStore,
        hash: &ManifestHash,
    ) -> Result<Option<(Manifest, Taken)>, SubstituteError> {
        let refused = |what: String| cache.refused(what);
        let Some(record) = cache
            .get(
                &cache.key(&format!("records/{hash}.json")),
                record::MAX_RECORD_BYTES as u64,
            )
            .await?
        else {
            return Ok(None);
        };
        let record = Record::verified(&record, hash.as_str(), &self.trusted, &cache.shown)?;
        let manifest = cached_manifest(cache, hash).await?;
        if manifest.tree.as_str() != record.tree {
            return Err(refused(format!(
                "the manifest of {hash} is not of the tree its record names"
            )));
        }
        // Each object once, in whichever variant the store lacks.
        let mut wanted: BTreeMap<&ObjectHash, (bool, u64)> = BTreeMap::new();
        for e in &manifest.entries {
            if e.kind == EntryKind::Symlink {
                continue;
            }
            if e.size > self.max_object {
                return Err(refused(format!(
                    "{} in {hash} is {} bytes, over the limit of {}",
                    e.path, e.size, self.max_object
                )));
            }
            if !store.has_object(e.object(), e.executable()) {
                wanted.insert(e.object(), (e.executable(), e.size));
            }
        }
        // Symlinks are written from their targets, which the store keeps as objects too.
        let mut targets: BTreeMap<&ObjectHash, u64> = BTreeMap::new();
        for e in &manifest.entries {
            if e.kind == EntryKind::Symlink && !store.has_object(e.object(), false) {
                targets.insert(e.object(), e.size);
            }
        }
        let fetches = wanted
            .iter()
            .map(|(h, (exec, size))| (*h, *exec, *size))
            .chain(targets.iter().map(|(h, size)| (*h, false, *size)));
        let of = format!(" of {hash}");
        let taken: Vec<u64> = futures::stream::iter(
            fetches.map(|(h, exec, size)| take_object(cache, store, h, exec, size, &of, None)),
        )
        .buffer_unordered(PARALLEL)
        .try_collect()
        .await?;
        store.sync()?;
        // The git tree is written again from the objects; it must be the record's.
        let files = manifest
            .entries
            .iter()
            .map(|e| {
                let content = if e.kind == EntryKind::Symlink {
                    let target = store.read_object_verified(e.object(), false)?;
                    SourceContent::LinkTarget(String::from_utf8(target).map_err(|_| {
                        refused(format!("the link {} in {hash} is not text", e.path))
                    })?)
                } else {
                    SourceContent::Stored {
                        object: e.object().clone(),
                        size: e.size,
                    }
                };
                Ok(SourceFile {
                    path: e.path.clone(),
                    kind: e.kind,
                    content,
                })
            })
            .collect::<Result<Vec<_>, SubstituteError>>()?;
        let written = git
            .ingest_files(store, files)
            .map_err(|e| SubstituteError::Git(e.to_string()))?;
        if &written.hash() != hash {
            return Err(refused(format!(
                "the files of {hash} do not give the tree its record names"
            )));
        }
        store.put_manifest(&written)?;
        Ok(Some((
            written,
            Taken {
                cache: cache.shown.clone(),
                objects: taken.len(),
                bytes: taken.iter().sum(),
            },
        )))
    }

    /// Uploads the packages `manifests` of `store` to the first cache, each with a record
    /// signed by `key`: only what the cache lacks (a package whose record is there is
    /// complete), objects first, the record last.
    pub fn push(
        &self,
        store: &Store,
        manifests: &[ManifestHash],
        key: &SigningKey,
    ) -> Result<Pushed, SubstituteError> {
        let cache = self.caches.first().ok_or_else(|| SubstituteError::BadUrl {
            url: String::new(),
            why: "no cache is configured to push to".into(),
        })?;
        self.runtime.block_on(async {
            let mut out = Pushed::default();
            for hash in manifests {
                out.packages += 1;
                let record_key = cache.key(&format!("records/{hash}.json"));
                if cache.has(&record_key).await? {
                    out.present += 1;
                    continue;
                }
                let manifest = store.read_manifest(hash)?;
                let mut objects: BTreeMap<&ObjectHash, (bool, u64)> = BTreeMap::new();
                for e in &manifest.entries {
                    objects
                        .entry(e.object())
                        .or_insert((e.executable(), e.size));
                }
                // Which objects the cache lacks: asked all at once.
                let lacking: Vec<(&ObjectHash, bool, u64)> =
                    futures::stream::iter(objects.iter().map(|(h, (x, s))| async move {
                        let there = cache
                            .has(&cache.key(&format!("objects/{}/{h}", h.fan())))
                            .await?;
                        Ok::<_, SubstituteError>((!there).then_some((*h, *x, *s)))
                    }))
                    .buffer_unordered(PARALLEL)
                    .try_collect::<Vec<_>>()
                    .await?
                    .into_iter()
                    .flatten()
                    .collect();
                let sent: Vec<u64> =
                    futures::stream::iter(lacking.into_iter().map(|(h, x, s)| async move {
                        let bytes = store.read_object_verified(h, x)?;
                        cache
                            .create(&cache.key(&format!("objects/{}/{h}", h.fan())), bytes)
                            .await?;
                        Ok::<u64, SubstituteError>(s)
                    }))
                    .buffer_unordered(PARALLEL)
                    .try_collect()
                    .await?;
                out.objects += sent.len();
                out.bytes += sent.iter().sum::<u64>();
                cache
                    .create(
                        &cache.key(&format!("manifests/{hash}.ron")),
                        manifest.canonical_bytes(),
                    )
                    .await?;
                let record = Record::signed(
                    key,
                    hash.as_str(),
                    manifest.tree.as_str(),
                    manifest.entries.len() as u64,
                    manifest.total_size(),
                );
                cache.create(&record_key, record.to_bytes()).await?;
            }
            Ok(out)
        })
    }

    /// Publishes what `site`'s lock (`lock`, the blake3 of its text) resolved to: its
    /// generation `tree` and its `packages`, signed by `key`. Written once, after the
    /// packages: a record names only what the cache holds.
    pub fn push_lock(
        &self,
        lock: &str,
        site: &str,
        tree: &str,
        packages: Vec<String>,
        key: &SigningKey,
    ) -> Result<bool, SubstituteError> {
        let cache = self.first()?;
        let at = cache.key(&format!("locks/{lock}.json"));
        self.runtime.block_on(async {
            if cache.has(&at).await? {
                return Ok(false);
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let record = LockRecord::signed(key, lock, site, tree, packages, now);
            cache.create(&at, record.to_bytes()).await?;
            Ok(true)
        })
    }

    fn first(&self) -> Result<&Substituter, SubstituteError> {
        self.caches.first().ok_or_else(|| SubstituteError::BadUrl {
            url: String::new(),
            why: "no cache is configured".into(),
        })
    }

    /// The whole generation of lock `lock` (of git tree `tree`) at once: through its signed
    /// record, which must name that tree, the files of every package in `wanted` (the ones
    /// this store lacks) are taken in one parallel stream and checked against their
    /// manifests. The packages themselves enter the store through
    /// [`Substitutes::substitute`], which then finds their files here. `None` when no
    /// cache has the record, with the refusals to be said; `moved` counts the bytes as they
    /// arrive (a progress bar reads it).
    pub fn prefetch(
        &self,
        store: &Store,
        lock: &str,
        tree: &str,
        wanted: &[ManifestHash],
        moved: &std::sync::atomic::AtomicUsize,
    ) -> (Option<Prefetched>, Vec<SubstituteError>) {
        let mut refused = Vec::new();
        for cache in &self.caches {
            match self
                .runtime
                .block_on(self.prefetch_from(cache, store, lock, tree, wanted, moved))
            {
                Ok(Some(got)) => return (Some(got), refused),
                Ok(None) => {}
                Err(e) => refused.push(e),
            }
        }
        (None, refused)
    }

    async fn prefetch_from(
        &self,
        cache: &Substituter,
        store: &Store,
        lock: &str,
        tree: &str,
        wanted: &[ManifestHash],
        moved: &std::sync::atomic::AtomicUsize,
    ) -> Result<Option<Prefetched>, SubstituteError> {
        let refused = |what: String| cache.refused(what);
        let Some(bytes) = cache
            .get(
                &cache.key(&format!("locks/{lock}.json")),
                record::MAX_LOCK_RECORD_BYTES as u64,
            )
            .await?
        else {
            return Ok(None);
        };
        let record = LockRecord::verified(&bytes, lock, &self.trusted, &cache.shown)?;
        if record.tree != tree {
            return Err(refused(format!(
                "the record of lock {lock} names tree {}, not the lock's {tree}",
                record.tree.escape_debug()
            )));
        }
        if let Some(m) = wanted
            .iter()
            .find(|m| !record.packages.iter().any(|p| p == m.as_str()))
        {
            return Err(refused(format!(
                "the record of lock {lock} does not name package {m} of that lock"
            )));
        }
        // The manifests, each checked against its name.
        let manifests: Vec<Manifest> =
            futures::stream::iter(wanted.iter().map(|h| cached_manifest(cache, h)))
                .buffer_unordered(PARALLEL)
                .try_collect()
                .await?;
        let mut objects: BTreeMap<(&ObjectHash, bool), u64> = BTreeMap::new();
        for m in &manifests {
            for e in &m.entries {
                if e.size > self.max_object {
                    return Err(refused(format!(
                        "{} is {} bytes, over the limit of {}",
                        e.path, e.size, self.max_object
                    )));
                }
                // Symlinks' targets are kept as plain objects.
                let exec = e.kind != EntryKind::Symlink && e.executable();
                if !store.has_object(e.object(), exec) {
                    objects.insert((e.object(), exec), e.size);
                }
            }
        }
        let sizes: Vec<u64> =
            futures::stream::iter(objects.iter().map(|((h, exec), size)| {
                take_object(cache, store, h, *exec, *size, "", Some(moved))
            }))
            .buffer_unordered(PARALLEL * 2)
            .try_collect()
            .await?;
        store.sync()?;
        Ok(Some(Prefetched {
            cache: cache.shown.clone(),
            tree: record.tree,
            packages: manifests.len(),
            objects: sizes.len(),
            bytes: sizes.iter().sum(),
        }))
    }

    /// Removes from the first cache what no recent lock record names: a lock record is
    /// kept when it was published within `keep` or is its site's newest; the packages
    /// kept records name are kept with their files; anything else goes once it is older
    /// than `grace` (so a push in progress, which writes its lock record last, loses
    /// nothing). A reader never sees harm: a package whose file went is refused and
    /// fetched upstream.
    pub fn collect_garbage(
        &self,
        keep: std::time::Duration,
        grace: std::time::Duration,
        dry_run: bool,
    ) -> Result<CacheGc, SubstituteError> {
        let cache = self.first()?;
        let now = std::time::SystemTime::now();
        let older = |t: std::time::SystemTime, d: std::time::Duration| {
            now.duration_since(t).is_ok_and(|age| age > d)
        };
        let name_of =
            |key: &object_store::path::Path| -> String { key.filename().unwrap_or("").to_string() };
        self.runtime.block_on(async {
            let mut out = CacheGc {
                cache: cache.shown.clone(),
                dry_run,
                ..Default::default()
            };
            // Lock records: recent ones, and each site's newest.
            let mut records = Vec::new();
            for (key, size, written) in cache.list("locks").await? {
                let bytes = cache
                    .get(&key, record::MAX_LOCK_RECORD_BYTES as u64)
                    .await
                    .ok()
                    .flatten();
                let parsed = bytes.as_deref().and_then(LockRecord::parse);
                records.push((key, size, written, parsed));
            }
            let mut newest: BTreeMap<&str, u64> = BTreeMap::new();
            for (_, _, _, r) in &records {
                if let Some(r) = r {
                    let n = newest.entry(r.site.as_str()).or_default();
                    *n = (*n).max(r.published);
                }
            }
            let cutoff = now
                .checked_sub(keep)
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let mut live: std::collections::BTreeSet<String> = Default::default();
            // Deleted in this order (records, then manifests, then files), each step done
            // before the next: nothing left names what is about to go.
            let mut gone: [Vec<object_store::path::Path>; 3] = Default::default();
            for (key, size, written, r) in &records {
                match r {
                    Some(r)
                        if r.published >= cutoff
                            || newest.get(r.site.as_str()) == Some(&r.published) =>
                    {
                        out.kept_records += 1;
                        live.extend(r.packages.iter().cloned());
                    }
                    // A record that cannot be read names nothing; it goes after the grace.
                    _ if !older(*written, grace) => out.spared += 1,
                    _ => {
                        out.records += 1;
                        out.bytes += size;
                        gone[0].push(key.clone());
                    }
                }
            }
            // The files of live packages: their manifests say.
            let mut live_objects: std::collections::BTreeSet<String> = Default::default();
            for h in &live {
                let Ok(h) = ManifestHash::parse(h) else {
                    continue;
                };
                // A manifest missing or wrong keeps nothing for its package.
                let m = match cached_manifest(cache, &h).await {
                    Ok(m) => m,
                    Err(SubstituteError::Refused { .. }) => continue,
                    Err(e) => return Err(e),
                };
                live_objects.extend(m.entries.iter().map(|e| e.object().to_string()));
            }
            for (dir, suffix) in [("records", ".json"), ("manifests", ".ron")] {
                for (key, size, written) in cache.list(dir).await? {
                    let name = name_of(&key);
                    let hash = name.strip_suffix(suffix).unwrap_or(&name);
                    if live.contains(hash) {
                        continue;
                    }
                    if !older(written, grace) {
                        out.spared += 1;
                        continue;
                    }
                    if dir == "records" {
                        out.records += 1;
                        gone[0].push(key);
                    } else {
                        out.manifests += 1;
                        gone[1].push(key);
                    }
                    out.bytes += size;
                }
            }
            for (key, size, written) in cache.list("objects").await? {
                if live_objects.contains(&name_of(&key)) {
                    continue;
                }
                if !older(written, grace) {
                    out.spared += 1;
                    continue;
                }
                out.objects += 1;
                out.bytes += size;
                gone[2].push(key);
            }
            if !dry_run {
                for step in &gone {
                    futures::stream::iter(step.iter().map(|k| cache.delete(k)))
                        .buffer_unordered(PARALLEL)
                        .try_collect::<Vec<()>>()
                        .await?;
                }
            }
            Ok(out)
        })
    }
}

/// One file from `cache` into `store`: at most `size` bytes, which must hash to `hash`
/// (`of` names its package in a refusal). Hashed and written on the runtime's blocking
/// threads, so files are checked and stored on every core while others download; `moved`
/// counts the bytes that arrived.
async fn take_object(
    cache: &Substituter,
    store: &Store,
    hash: &ObjectHash,
    exec: bool,
    size: u64,
    of: &str,
    moved: Option<&std::sync::atomic::AtomicUsize>,
) -> Result<u64, SubstituteError> {
    let wrong = || cache.refused(format!("object {hash}{of} does not match its hash"));
    let key = cache.key(&format!("objects/{}/{hash}", hash.fan()));
    let bytes = match cache.get(&key, size).await {
        // Larger than the manifest says: not the object named.
        Err(SubstituteError::Refused { .. }) => return Err(wrong()),
        other => other?,
    }
    .ok_or_else(|| cache.refused(format!("object {hash}{of} is missing")))?;
    if bytes.len() as u64 != size {
        return Err(wrong());
    }
    let (store, expected) = (store.clone(), hash.clone());
    let stored =
        tokio::task::spawn_blocking(move || store.put_expected_object(&expected, &bytes, exec))
            .await
            .map_err(|e| SubstituteError::Runtime(std::io::Error::other(e)))??;
    if !stored {
        return Err(wrong());
    }
    if let Some(m) = moved {
        m.fetch_add(size as usize, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(size)
}

/// A package's manifest as the cache holds it, checked against its name: refused when it
/// is missing, unreadable or another.
async fn cached_manifest(
    cache: &Substituter,
    hash: &ManifestHash,
) -> Result<Manifest, SubstituteError> {
    let refused = |what: String| cache.refused(what);
    let bytes = cache
        .get(
            &cache.key(&format!("manifests/{hash}.ron")),
            MAX_MANIFEST_BYTES,
        )
        .await?
        .ok_or_else(|| refused(format!("the manifest of {hash} is missing")))?;
    Manifest::from_bytes(&bytes)
        .filter(|m| &m.hash() == hash)
        .ok_or_else(|| refused(format!("the manifest of {hash} does not match its hash")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_record_is_taken_only_for_its_own_tree_and_packages() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().join("cache").display());
        let key = SigningKey::generate("builder").unwrap();
        let subs =
            Substitutes::new(&[url], vec![key.public()], CacheLimits::default(), 1 << 20).unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let package = ManifestHash::parse(&"a".repeat(64)).unwrap();
        let wanted = [package.clone()];
        let moved = std::sync::atomic::AtomicUsize::new(0);
        // No record: nothing taken, nothing refused.
        let (got, refused) = subs.prefetch(&store, "lock1", "tree1", &wanted, &moved);
        assert!(got.is_none() && refused.is_empty());
        // A record of another tree, and one that leaves out a package the lock has.
        assert!(
            subs.push_lock("lock1", "s", "tree2", vec![package.to_string()], &key)
                .unwrap()
        );
        let (got, refused) = subs.prefetch(&store, "lock1", "tree1", &wanted, &moved);
        assert!(got.is_none());
        assert!(
            refused[0].to_string().contains("names tree tree2"),
            "{}",
            refused[0]
        );
        assert!(subs.push_lock("lock2", "s", "tree1", vec![], &key).unwrap());
        let (got, refused) = subs.prefetch(&store, "lock2", "tree1", &wanted, &moved);
        assert!(got.is_none());
        assert!(
            refused[0].to_string().contains("does not name package"),
            "{}",
            refused[0]
        );
        // A record is written once.
        assert!(!subs.push_lock("lock2", "s", "tree1", vec![], &key).unwrap());
        assert_eq!(moved.load(std::sync::atomic::Ordering::Relaxed), 0);
    }
}
