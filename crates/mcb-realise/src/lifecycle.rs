//! Keeping a store trustworthy over years: `gc` (roots are each site's newest generations
//! and every live `result` link), `verify` (objects re-hashed, manifests checked,
//! generations checked for edits in place, damage traced to the paths and sites it
//! touches; `--repair` restores objects from git and rebuilds generations), `verify
//! --tree` (drift in a materialised tree) and `reproduce` (a lock rebuilt in an empty
//! store must give the same tree).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mcb_config::Lock;
use mcb_git::GitStore;
use mcb_store::{
    Entry, EntryKind, GcReport, GitOid, LockMode, ManifestHash, ObjectHash, Store, VerifyReport,
};
use rayon::prelude::*;

use crate::commit::lock_in_commit;
use crate::error::RealiseError;
use crate::options::Options;
use crate::report::Reporter;

/// The most files a generation's tree may hold when it is read back (gc, verify, repair).
/// A generation is a core and its plugins, each held to the per-source limit when it came
/// in; this bound stops a damaged tree that names one subtree over and over.
pub(crate) const GENERATION_FILES: u64 = 2_000_000;

/// What `gc` did.
#[derive(Debug, Clone)]
pub struct GcOutcome {
    pub store: GcReport,
    /// Bytes git's own collection freed.
    pub git_bytes: u64,
    /// `result` links that are gone, whose roots were dropped.
    pub dead_links: Vec<PathBuf>,
    /// Site → the generations kept for it.
    pub kept: BTreeMap<String, Vec<GitOid>>,
    /// Kept generations whose record of what they use was lost and rebuilt from the lock
    /// their commit carries.
    pub recovered: Vec<GitOid>,
    /// Directories of killed `mcb test` runs removed (their clusters stopped).
    pub test_leftovers: usize,
}

/// The manifests a locked codebase is made of.
fn lock_manifests(lock: &Lock) -> Vec<ManifestHash> {
    let mut v: Vec<ManifestHash> = std::iter::once(lock.moodle.manifest.clone())
        .chain(lock.plugins.iter().map(|p| p.manifest.clone()))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Every site generation in the store's history: tree → (site, the newest commit making it).
fn site_generations(
    git: &GitStore,
    keep: usize,
) -> Result<BTreeMap<GitOid, Vec<(String, GitOid)>>, RealiseError> {
    let mut out: BTreeMap<GitOid, Vec<(String, GitOid)>> = BTreeMap::new();
    for (site, head) in git.site_branches()? {
        for (commit, tree) in git.recent_generations(&head, keep)? {
            out.entry(tree).or_default().push((site.clone(), commit));
        }
    }
    Ok(out)
}

/// Rebuilds a lost record of what generation `key` uses from a commit's lock.
fn recover_uses(
    store: &Store,
    git: &GitStore,
    key: &GitOid,
    commits: &[(String, GitOid)],
    dry_run: bool,
) -> Result<bool, RealiseError> {
    for (_, commit) in commits {
        if let Some(lock) = lock_in_commit(git, commit)?
            && lock.tree == *key
        {
            if !dry_run {
                store.set_generation_uses(key, &lock_manifests(&lock))?;
            }
            return Ok(true);
        }
    }
    Ok(false)
}

/// Collects everything no root reaches. Waits for running realises (it takes the store
/// lock exclusively), so it never removes what a realise is using.
pub fn gc(
    opts: &Options,
    keep: usize,
    grace: Duration,
    dry_run: bool,
    reporter: &dyn Reporter,
) -> Result<GcOutcome, RealiseError> {
    let store = Store::open_existing(&opts.store)?;
    // A dry run deletes nothing, so it need not stop writers (and works on a read-only
    // store); what it reports is what a run now would do.
    let mode = if dry_run {
        LockMode::Shared
    } else {
        LockMode::Exclusive
    };
    let _lock = store.lock(mode, || {
        reporter.warn("waiting for running realises to finish before collecting")
    })?;
    let git = mcb_catalog::sources::open_git(&store)?;
    let dead_links = store.prune_result_roots(dry_run)?;
    let test_leftovers = if dry_run {
        0
    } else {
        crate::site_test::reap_abandoned(&store)
    };
    let mut roots = BTreeSet::new();
    let mut kept: BTreeMap<String, Vec<GitOid>> = BTreeMap::new();
    let generations = site_generations(&git, keep)?;
    for (tree, sites) in &generations {
        roots.insert(tree.clone());
        for (site, _) in sites {
            kept.entry(site.clone()).or_default().push(tree.clone());
        }
    }
    for (link, target) in store.live_result_targets()? {
        if let Some(key) = target
            .file_name()
            .and_then(|k| GitOid::parse(&k.to_string_lossy()).ok())
        {
            roots.insert(key.clone());
            kept.entry(format!("result {}", link.display()))
                .or_default()
                .push(key);
        }
    }
    // A root that lost its record of what it uses: its commit's lock says.
    let mut recovered = Vec::new();
    for key in &roots {
        if store.generation_path(key).is_dir()
            && store.generation_uses(key).is_none()
            && let Some(commits) = generations.get(key)
            && recover_uses(&store, &git, key, commits, dry_run)?
        {
            recovered.push(key.clone());
        }
    }
    // Git keeps the tree of every kept generation, whether a branch or only a `result`
    // link reaches it: verify --tree and --repair read it.
    if !dry_run {
        git.keep_trees(&roots)?;
    }
    let report = if dry_run && !recovered.is_empty() {
        // The records are not written in a dry run: say what a real run would keep.
        let mut r = store.collect_garbage(&roots, grace, true)?;
        r.unknown_use.retain(|k| !recovered.contains(k));
        r
    } else {
        store.collect_garbage(&roots, grace, dry_run)?
    };
    let git_bytes = git.collect_garbage(grace.as_secs(), dry_run)?;
    Ok(GcOutcome {
        store: report,
        git_bytes,
        dead_links,
        kept,
        recovered,
        test_leftovers,
    })
}

/// One place a damaged object or a changed generation shows.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct DamagedPath {
    pub generation: GitOid,
    /// Relative to the generation.
    pub path: String,
}

/// What `verify` found, with the paths and sites each damage touches.
#[derive(Debug, Clone)]
pub struct VerifyOutcome {
    pub report: VerifyReport,
    /// Damaged object → where it is laid out.
    pub object_paths: BTreeMap<ObjectHash, Vec<DamagedPath>>,
    /// Generations changed in place: key → changed paths.
    pub generations: BTreeMap<GitOid, Vec<String>>,
    /// Generation → the sites (and result links) that hold it.
    pub holders: BTreeMap<GitOid, BTreeSet<String>>,
    /// With `--repair`: what was restored and rebuilt.
    pub repaired_objects: usize,
    pub rebuilt_generations: Vec<GitOid>,
    /// Damage `--repair` could not mend, with why.
    pub unrepaired: Vec<String>,
}

impl VerifyOutcome {
    pub fn is_clean(&self) -> bool {
        self.report.is_clean() && self.generations.is_empty()
    }

    /// The sites a generation touches, for messages.
    pub fn sites_of(&self, key: &GitOid) -> Vec<String> {
        self.holders
            .get(key)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

fn holders(
    store: &Store,
    git: &GitStore,
) -> Result<BTreeMap<GitOid, BTreeSet<String>>, RealiseError> {
    let mut holders: BTreeMap<GitOid, BTreeSet<String>> = BTreeMap::new();
    for (tree, sites) in site_generations(git, usize::MAX)? {
        holders
            .entry(tree)
            .or_default()
            .extend(sites.into_iter().map(|(s, _)| s));
    }
    for (link, target) in store.live_result_targets()? {
        if let Some(k) = target
            .file_name()
            .and_then(|k| GitOid::parse(&k.to_string_lossy()).ok())
        {
            holders
                .entry(k)
                .or_default()
                .insert(format!("result {}", link.display()));
        }
    }
    Ok(holders)
}

/// Files of every generation that share an inode with one of `objects`.
fn paths_holding(
    store: &Store,
    objects: &[(ObjectHash, bool)],
) -> Result<BTreeMap<ObjectHash, Vec<DamagedPath>>, RealiseError> {
    let mut inodes: HashMap<(u64, u64), ObjectHash> = HashMap::new();
    for (h, x) in objects {
        if let Ok(m) = std::fs::symlink_metadata(store.object_path(h, *x)) {
            inodes.insert((m.dev(), m.ino()), h.clone());
        }
    }
    let mut out: BTreeMap<ObjectHash, Vec<DamagedPath>> = BTreeMap::new();
    for (h, _) in objects {
        out.entry(h.clone()).or_default();
    }
    if inodes.is_empty() {
        return Ok(out);
    }
    let keys = store.generation_keys()?;
    let found: Vec<(ObjectHash, DamagedPath)> = keys
        .par_iter()
        .flat_map_iter(|key| {
            let root = store.generation_path(key);
            walkdir::WalkDir::new(&root)
                .into_iter()
                .flatten()
                .filter(|e| e.file_type().is_file())
                .filter_map(|e| {
                    let m = e.metadata().ok()?;
                    let h = inodes.get(&(m.dev(), m.ino()))?;
                    Some((
                        h.clone(),
                        DamagedPath {
                            generation: key.clone(),
                            path: e
                                .path()
                                .strip_prefix(&root)
                                .ok()?
                                .to_string_lossy()
                                .into_owned(),
                        },
                    ))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    for (h, p) in found {
        out.entry(h).or_default().push(p);
    }
    for v in out.values_mut() {
        v.sort();
    }
    Ok(out)
}

fn check_all_generations(store: &Store) -> Result<BTreeMap<GitOid, Vec<String>>, RealiseError> {
    let mut out = BTreeMap::new();
    for key in store.generation_keys()? {
        if let Some(damaged) = store.check_generation(&key)?
            && !damaged.is_empty()
        {
            out.insert(key, damaged);
        }
    }
    Ok(out)
}

/// Checks the store: every object re-hashed, every manifest read, every generation checked
/// for changes in place. With `repair`, damaged and missing objects are restored from git
/// and changed generations rebuilt, then the store is checked again.
pub fn verify(opts: &Options, repair: bool) -> Result<VerifyOutcome, RealiseError> {
    let store = Store::open_existing(&opts.store)?;
    let _lock = store.lock(LockMode::Shared, || {})?;
    let git = mcb_catalog::sources::open_git(&store)?;
    let mut outcome = examine(&store, &git)?;
    if repair && !outcome.is_clean() {
        let (objects, rebuilt, unrepaired) = repair_store(&store, &git, &outcome, opts)?;
        let mut again = examine(&store, &git)?;
        again.repaired_objects = objects;
        again.rebuilt_generations = rebuilt;
        again.unrepaired = unrepaired;
        outcome = again;
    }
    Ok(outcome)
}

fn examine(store: &Store, git: &GitStore) -> Result<VerifyOutcome, RealiseError> {
    let report = store.verify()?;
    let generations = check_all_generations(store)?;
    let damaged_objects: Vec<(ObjectHash, bool)> = report.corrupt.clone();
    let object_paths = if damaged_objects.is_empty() {
        BTreeMap::new()
    } else {
        paths_holding(store, &damaged_objects)?
    };
    let holders = if damaged_objects.is_empty() && generations.is_empty() {
        BTreeMap::new()
    } else {
        holders(store, git)?
    };
    Ok(VerifyOutcome {
        report,
        object_paths,
        generations,
        holders,
        repaired_objects: 0,
        rebuilt_generations: Vec::new(),
        unrepaired: Vec::new(),
    })
}

/// The entries every manifest of the store knows, by git blob id.
fn entries_by_oid(store: &Store) -> Result<HashMap<GitOid, Entry>, RealiseError> {
    let mut out = HashMap::new();
    for h in store.manifest_hashes()? {
        if let Ok(m) = store.read_manifest(&h) {
            for e in m.entries {
                out.entry(e.oid.clone()).or_insert(e);
            }
        }
    }
    Ok(out)
}

fn repair_store(
    store: &Store,
    git: &GitStore,
    found: &VerifyOutcome,
    opts: &Options,
) -> Result<(usize, Vec<GitOid>, Vec<String>), RealiseError> {
    let by_oid = entries_by_oid(store)?;
    let by_object: HashMap<&ObjectHash, &Entry> = by_oid.values().map(|e| (&e.blake3, e)).collect();
    let mut unrepaired = Vec::new();
    let mut repaired = 0;
    let mut damaged: Vec<(ObjectHash, bool)> = found.report.corrupt.clone();
    damaged.extend(found.report.missing.iter().map(|(_, o)| (o.clone(), false)));
    // Objects edited in place still hash right when the edit was undone; their changed
    // generations show them. Every object a changed generation links is checked below.
    for (h, x) in damaged {
        let Some(e) = by_object.get(&h) else {
            unrepaired.push(format!(
                "object {h}: no manifest names it, so git's copy is unknown"
            ));
            continue;
        };
        // A missing object may be the executable or the plain one: restore what is gone.
        for exec in [x, !x] {
            let path = store.object_path(&h, exec);
            let wanted = exec == x || path.exists();
            if !wanted {
                continue;
            }
            match git.read_blob(&e.oid) {
                Ok(bytes) => {
                    store.repair_object(&h, exec, &bytes)?;
                    repaired += 1;
                }
                Err(err) => unrepaired.push(format!("object {h}: {err}")),
            }
            break;
        }
    }
    let mut rebuilt = Vec::new();
    for key in found.generations.keys() {
        match rebuild_generation(store, git, key, &by_oid, opts) {
            Ok(n) => {
                repaired += n;
                rebuilt.push(key.clone());
            }
            Err(e) => unrepaired.push(format!("generation {key}: {e}")),
        }
    }
    Ok((repaired, rebuilt, unrepaired))
}

/// Lays generation `key` out again from its git tree, restoring the objects it needs.
/// Returns the number of objects restored.
fn rebuild_generation(
    store: &Store,
    git: &GitStore,
    key: &GitOid,
    by_oid: &HashMap<GitOid, Entry>,
    opts: &Options,
) -> Result<usize, RealiseError> {
    let mut restored = 0;
    let mut entries: Vec<(String, Entry)> = Vec::new();
    for (path, kind, oid) in git.tree_files(key, GENERATION_FILES)? {
        let exec = kind == EntryKind::Exec;
        let entry = match by_oid.get(&oid) {
            Some(e) => Entry {
                path: path.clone(),
                kind,
                size: e.size,
                blake3: e.blake3.clone(),
                oid: oid.clone(),
            },
            None => {
                let bytes = git.read_blob(&oid)?;
                let h = store.put_object(&bytes, exec)?;
                Entry {
                    path: path.clone(),
                    kind,
                    size: bytes.len() as u64,
                    blake3: h,
                    oid: oid.clone(),
                }
            }
        };
        if store.object_tampered(&entry.blake3, exec)
            || (!store.has_object(&entry.blake3, exec)
                && (entry.size > 0 || kind == EntryKind::Symlink))
        {
            let bytes = git.read_blob(&oid)?;
            store.repair_object(&entry.blake3, exec, &bytes)?;
            restored += 1;
        }
        entries.push((path, entry));
    }
    let files: Vec<(String, &Entry)> = entries.iter().map(|(p, e)| (p.clone(), e)).collect();
    // Unknown stays unknown: an empty record would let gc take what the generation uses.
    let uses = store.generation_uses(key);
    let mode = store
        .generation_record(key)
        .map(|r| r.mode)
        .unwrap_or(opts.link);
    store.materialise(key, &files, uses.as_deref(), mode, &|| {})?;
    Ok(restored)
}

/// How a materialised tree differs from the generation it was made as.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TreeDrift {
    pub generation: String,
    pub modified: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

impl TreeDrift {
    pub fn is_clean(&self) -> bool {
        self.modified.is_empty() && self.added.is_empty() && self.removed.is_empty()
    }
}

pub fn verify_tree(opts: &Options, dir: &Path) -> Result<TreeDrift, RealiseError> {
    let store = Store::open_existing(&opts.store)?;
    let git = mcb_catalog::sources::open_git(&store)?;
    let real = std::fs::canonicalize(dir).map_err(|e| RealiseError::Filesystem {
        message: format!("cannot read {}", dir.display()),
        source: e,
    })?;
    let key = real
        .strip_prefix(store.generations_dir())
        .ok()
        .and_then(|rest| rest.components().next())
        .and_then(|c| GitOid::parse(&c.as_os_str().to_string_lossy()).ok())
        .ok_or_else(|| {
            RealiseError::source(
                "verify",
                format!(
                    "{} is not a generation of the store {}",
                    dir.display(),
                    store.root().display()
                ),
            )
            .with_hint("pass a `result` link or a directory under <store>/generations/")
        })?;
    let expected: BTreeMap<String, (EntryKind, GitOid)> = git
        .tree_files(&key, GENERATION_FILES)?
        .into_iter()
        .map(|(p, k, oid)| (p, (k, oid)))
        .collect();
    let root = store.generation_path(&key);
    let on_disk: Vec<PathBuf> = walkdir::WalkDir::new(&root)
        .into_iter()
        .flatten()
        .filter(|e| !e.file_type().is_dir())
        .map(|e| e.path().to_path_buf())
        .collect();
    let seen: Vec<(String, EntryKind, GitOid)> = on_disk
        .par_iter()
        .filter_map(|p| {
            let rel = p.strip_prefix(&root).ok()?.to_string_lossy().into_owned();
            let meta = std::fs::symlink_metadata(p).ok()?;
            let (kind, bytes) = if meta.file_type().is_symlink() {
                (
                    EntryKind::Symlink,
                    std::fs::read_link(p)
                        .ok()?
                        .to_string_lossy()
                        .into_owned()
                        .into_bytes(),
                )
            } else {
                use std::os::unix::fs::PermissionsExt;
                let kind = if meta.permissions().mode() & 0o111 != 0 {
                    EntryKind::Exec
                } else {
                    EntryKind::File
                };
                (kind, std::fs::read(p).ok()?)
            };
            Some((rel, kind, GitStore::blob_id(&bytes)))
        })
        .collect();
    let mut drift = TreeDrift {
        generation: key.to_string(),
        ..Default::default()
    };
    let mut present = BTreeSet::new();
    for (rel, kind, oid) in seen {
        match expected.get(&rel) {
            None => drift.added.push(rel.clone()),
            Some((k, o)) if *k != kind || *o != oid => drift.modified.push(rel.clone()),
            Some(_) => {}
        }
        present.insert(rel);
    }
    drift.removed = expected
        .keys()
        .filter(|p| !present.contains(*p))
        .cloned()
        .collect();
    drift.modified.sort();
    drift.added.sort();
    Ok(drift)
}
