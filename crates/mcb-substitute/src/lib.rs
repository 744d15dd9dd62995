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
pub use record::Record;
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

/// What a push uploaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pushed {
    pub packages: usize,
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
        let refused = |what: String| SubstituteError::Refused {
            cache: cache.shown.clone(),
            what,
        };
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
        let Some(bytes) = cache
            .get(
                &cache.key(&format!("manifests/{hash}.ron")),
                MAX_MANIFEST_BYTES,
            )
            .await?
        else {
            return Err(refused(format!("the manifest of {hash} is missing")));
        };
        let manifest = Manifest::from_bytes(&bytes)
            .ok_or_else(|| refused(format!("the manifest of {hash} cannot be read")))?;
        if &manifest.hash() != hash {
            return Err(refused(format!(
                "the manifest of {hash} does not match its hash"
            )));
        }
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
        let taken: Vec<u64> = futures::stream::iter(fetches.map(|(h, exec, size)| async move {
            let key = cache.key(&format!("objects/{}/{h}", h.fan()));
            let bytes = match cache.get(&key, size).await {
                // Larger than the manifest says: not the object named.
                Err(SubstituteError::Refused { .. }) => {
                    return Err(refused(format!(
                        "object {h} of {hash} does not match its hash (its size differs)"
                    )));
                }
                other => other?,
            }
            .ok_or_else(|| refused(format!("object {h} of {hash} is missing")))?;
            if &ObjectHash::of(&bytes) != h || bytes.len() as u64 != size {
                return Err(refused(format!(
                    "object {h} of {hash} does not match its hash"
                )));
            }
            store.put_object(&bytes, exec)?;
            Ok::<u64, SubstituteError>(size)
        }))
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
}
