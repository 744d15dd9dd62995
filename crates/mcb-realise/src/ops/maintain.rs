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
    Entry, EntryKind, GcReport, GitOid, LinkMode, LockMode, ManifestHash, ObjectHash, Store,
    VerifyReport,
};
use rayon::prelude::*;

use crate::error::{Named, RealiseError};
use crate::report::Reporter;
use crate::stage::commit::lock_in_commit;

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
    /// Kept generations no longer laid out (kept as commits; laid out again on demand).
    pub retired: Vec<GitOid>,
}

/// The manifests a locked codebase is made of.
pub(crate) fn lock_manifests(lock: &Lock) -> Vec<ManifestHash> {
    let mut v: Vec<ManifestHash> = std::iter::once(lock.moodle.manifest.clone())
        .chain(lock.plugins.iter().map(|p| p.manifest.clone()))
        .chain(lock.vendor.iter().map(|v| v.manifest.clone()))
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

/// Generations kept laid out: what a `result` link serves, and each site's newest two (the
/// one served or about to be, and the one before it, so rolling back is instant).
fn laid_out_generations(store: &Store, git: &GitStore) -> Result<BTreeSet<GitOid>, RealiseError> {
    let mut wanted = BTreeSet::new();
    for (_, head) in git.site_branches()? {
        for (_, tree) in git.recent_generations(&head, LAID_OUT_PER_SITE)? {
            wanted.insert(tree);
        }
    }
    for (_, target) in store.live_result_targets()? {
        if let Some(key) = target
            .file_name()
            .and_then(|k| GitOid::parse(&k.to_string_lossy()).ok())
        {
            wanted.insert(key);
        }
    }
    Ok(wanted)
}

/// Each site's generations laid out: its newest and the one before.
const LAID_OUT_PER_SITE: usize = 2;

/// How far back along a site's branch a realise looks for generations to retire.
const RETIRE_LOOKBACK: usize = 8;

/// Removes the laid-out trees of `candidates` that nothing serves and that are not among
/// a site's newest two. Their commits, records and objects stay, so a rollback, `test` or
/// `deploy` lays them out again from the store. A tree is directory blocks that hardlinks
/// cannot share: a fleet's store is mostly these.
fn retire(
    store: &Store,
    git: &GitStore,
    candidates: impl IntoIterator<Item = GitOid>,
    dry_run: bool,
) -> Result<Vec<GitOid>, RealiseError> {
    // Only trees that are laid out and could be laid out again (their record is there)
    // are candidates; the fleet's branches are read only when there is one.
    let laid_out: Vec<GitOid> = candidates
        .into_iter()
        .filter(|k| store.generation_path(k).is_dir() && store.generation_uses(k).is_some())
        .collect();
    if laid_out.is_empty() {
        return Ok(Vec::new());
    }
    let wanted = laid_out_generations(store, git)?;
    let mut retired = Vec::new();
    for key in laid_out {
        if wanted.contains(&key) {
            continue;
        }
        if !dry_run {
            store.remove_generation(&key)?;
        }
        retired.push(key);
    }
    Ok(retired)
}

/// After a realise made a new generation of `site`: the site's older generations are no
/// longer laid out (see [`retire`]). Done only when no other run holds the store (a later
/// realise or `gc` does it otherwise); anything in the way is left as it is.
pub(crate) fn retire_after_realise(store: &Path, site: &str) -> Result<Vec<GitOid>, RealiseError> {
    let store = Store::open_existing(store)?;
    let Some(_lock) = store.try_lock_exclusive()? else {
        return Ok(Vec::new());
    };
    let git = mcb_catalog::sources::open_git(&store)?;
    let Some(head) = git.branch_head(site)? else {
        return Ok(Vec::new());
    };
    let older = git
        .recent_generations(&head, RETIRE_LOOKBACK)?
        .into_iter()
        .skip(LAID_OUT_PER_SITE)
        .map(|(_, tree)| tree);
    retire(&store, &git, older, false)
}

/// What `gc` keeps and whether it deletes.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Generations kept per site, newest first.
    pub keep: usize,
    /// Content younger than this is spared, whatever reaches it.
    pub grace: Duration,
    /// Say what would go; delete nothing.
    pub dry_run: bool,
}

/// Collects everything no root reaches. Waits for running realises (it takes the store
/// lock exclusively), so it never removes what a realise is using.
pub fn gc(
    store: &Path,
    opts: &GcOptions,
    reporter: &dyn Reporter,
) -> Result<GcOutcome, RealiseError> {
    let (keep, grace, dry_run) = (opts.keep, opts.grace, opts.dry_run);
    let store = Store::open_existing(store)?;
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
    // What killed runs left in the store's staging (a test's scratch tree) and their
    // throwaway database clusters: a held directory no live process holds is abandoned.
    let test_leftovers = if dry_run {
        0
    } else {
        let abandoned = store.abandoned_staging("");
        for d in &abandoned {
            let _ = mcb_store::remove_tree(d);
        }
        abandoned.len() + mcb_database::reap_abandoned_servers()
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
    let retired = retire(&store, &git, roots.iter().cloned(), dry_run)?;
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
        retired,
    })
}

/// One place a damaged object or a changed generation shows.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
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
    /// Git objects kept generations reach that are not what their id says.
    pub git_objects: Vec<mcb_git::BadObject>,
    /// Cache entries whose answer is not what they name (a redirected memo, an archive
    /// whose bytes changed).
    pub cache: Vec<mcb_store::CacheDamage>,
    /// With `--repair`: what was restored and rebuilt.
    pub repaired_objects: usize,
    pub rebuilt_generations: Vec<GitOid>,
    /// With `--repair`: damaged git objects written again, cache entries removed.
    pub repaired_git_objects: usize,
    pub removed_cache_entries: usize,
    /// Damage `--repair` could not mend, with why.
    pub unrepaired: Vec<String>,
}

impl VerifyOutcome {
    pub fn is_clean(&self) -> bool {
        self.report.is_clean()
            && self.generations.is_empty()
            && self.git_objects.is_empty()
            && self.cache.is_empty()
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
pub fn verify(store: &Path, repair: bool) -> Result<VerifyOutcome, RealiseError> {
    let store = Store::open_existing(store)?;
    let _lock = store.lock(LockMode::Shared, || {})?;
    let git = mcb_catalog::sources::open_git(&store)?;
    let mut outcome = examine(&store, &git)?;
    if repair && !outcome.is_clean() {
        let (objects, rebuilt, mut unrepaired) = repair_store(&store, &git, &outcome)?;
        let (git_objects, cache_entries) =
            repair_git_and_cache(&store, &git, &outcome, &mut unrepaired)?;
        let mut again = examine(&store, &git)?;
        again.repaired_objects = objects;
        again.rebuilt_generations = rebuilt;
        again.repaired_git_objects = git_objects;
        again.removed_cache_entries = cache_entries;
        again.unrepaired = unrepaired;
        outcome = again;
    }
    Ok(outcome)
}

/// The trees of every generation a site's history or a live `result` link keeps.
fn kept_trees(store: &Store, git: &GitStore) -> Result<Vec<GitOid>, RealiseError> {
    let mut trees: BTreeSet<GitOid> = site_generations(git, usize::MAX)?.into_keys().collect();
    for (_, target) in store.live_result_targets()? {
        if let Some(k) = target
            .file_name()
            .and_then(|k| GitOid::parse(&k.to_string_lossy()).ok())
        {
            trees.insert(k);
        }
    }
    Ok(trees.into_iter().filter(|t| git.has_tree(t)).collect())
}

/// Memos of the cache that decide content and are not what they name: a commit's
/// manifest memo naming a manifest of another tree, and what [`mcb_store::Cache::verify`]
/// finds.
fn cache_damage(
    store: &Store,
    git: &GitStore,
) -> Result<Vec<mcb_store::CacheDamage>, RealiseError> {
    let cache = store.cache();
    let mut out = cache.verify()?;
    for (commit, manifest) in cache.git_manifests() {
        let Ok(m) = store.read_manifest(&manifest) else {
            continue;
        };
        let tree = git.commit_tree_id(&commit).ok();
        if tree.as_ref() != Some(&m.tree) {
            out.push(mcb_store::CacheDamage {
                entry: store
                    .root()
                    .join("cache/git-manifests-v1")
                    .join(commit.as_str()),
                problem: format!(
                    "it names manifest {manifest} (tree {}) for commit {commit}, whose tree is {}",
                    m.tree,
                    tree.map(|t| t.to_string())
                        .unwrap_or_else(|| "unknown".into())
                ),
            });
        }
    }
    Ok(out)
}

/// Writes damaged git blobs again from the store's objects (checked against their names
/// and the blob id), and removes damaged cache entries. Returns how many of each.
fn repair_git_and_cache(
    store: &Store,
    git: &GitStore,
    found: &VerifyOutcome,
    unrepaired: &mut Vec<String>,
) -> Result<(usize, usize), RealiseError> {
    let mut git_fixed = 0;
    if !found.git_objects.is_empty() {
        let by_oid = entries_by_oid(store)?;
        for bad in &found.git_objects {
            let content = by_oid
                .get(&bad.id)
                .and_then(|e| store.read_object_verified(&e.blake3, e.executable()).ok());
            match content {
                Some(bytes) if git.replace_blob(&bad.id, &bytes)? => git_fixed += 1,
                _ => unrepaired.push(format!(
                    "git object {} ({} in generation {}): no sound copy of its content in the store",
                    bad.id, bad.path, bad.generation
                )),
            }
        }
    }
    let mut removed = 0;
    for d in &found.cache {
        store.cache().remove_entry(&d.entry)?;
        removed += 1;
    }
    Ok((git_fixed, removed))
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
    let git_objects = git.check_trees(&kept_trees(store, git)?)?;
    let cache = cache_damage(store, git)?;
    Ok(VerifyOutcome {
        report,
        object_paths,
        generations,
        holders,
        git_objects,
        cache,
        repaired_objects: 0,
        rebuilt_generations: Vec::new(),
        repaired_git_objects: 0,
        removed_cache_entries: 0,
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
        match rebuild_generation(store, git, key, &by_oid) {
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
) -> Result<usize, RealiseError> {
    let (entries, restored) =
        crate::stage::materialise::files_of_tree(store, git, key, by_oid, &crate::report::Silent)?;
    let files: Vec<(String, &Entry)> = entries.iter().map(|(p, e)| (p.clone(), e)).collect();
    // Unknown stays unknown: an empty record would let gc take what the generation uses.
    let uses = store.generation_uses(key);
    let mode = store
        .generation_record(key)
        .map(|r| r.mode)
        .unwrap_or(LinkMode::Hardlink);
    store.materialise(key, &files, uses.as_deref(), mode, &|| {})?;
    Ok(restored)
}

/// How a tree on disk differs from the generation it was made as.
#[derive(Debug, Clone, Default)]
pub struct TreeDrift {
    /// The generation's tree id.
    pub generation: String,
    /// How the generation was found: `named` (given), `store` (a directory of the store's
    /// generations, or a `result` link to one), `release` (a deploy's `releases/<commit>`),
    /// `tree id` (a copy that kept a generation's name), `files` (matched by its files).
    pub found_by: String,
    /// The site and its generation number, when a site's history holds it.
    pub site: Option<String>,
    pub number: Option<usize>,
    pub modified: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

impl TreeDrift {
    pub fn is_clean(&self) -> bool {
        self.modified.is_empty() && self.added.is_empty() && self.removed.is_empty()
    }
}

/// A file of a tree: its path, kind and git blob id.
pub type TreeFile = (String, EntryKind, GitOid);

/// Every file of the tree at `root` (symlinks as symlinks, never followed): its path,
/// kind and git blob id, hashed on all cores.
pub fn scan_tree(root: &Path) -> Vec<(String, EntryKind, GitOid)> {
    let on_disk: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .into_iter()
        .flatten()
        .filter(|e| !e.file_type().is_dir())
        .map(|e| e.path().to_path_buf())
        .collect();
    on_disk
        .par_iter()
        .filter_map(|p| {
            let rel = p.strip_prefix(root).ok()?.to_string_lossy().into_owned();
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
        .collect()
}

/// What `seen` (a scan of a tree on disk) has that generation `tree` does not, and the
/// reverse.
pub fn drift_from(
    git: &GitStore,
    tree: &GitOid,
    seen: &[(String, EntryKind, GitOid)],
) -> Result<TreeDrift, RealiseError> {
    let expected: BTreeMap<String, (EntryKind, GitOid)> = git
        .tree_files(tree, crate::stage::materialise::GENERATION_FILES)?
        .into_iter()
        .map(|(p, k, oid)| (p, (k, oid)))
        .collect();
    let mut drift = TreeDrift {
        generation: tree.to_string(),
        ..Default::default()
    };
    let mut present = BTreeSet::new();
    for (rel, kind, oid) in seen {
        match expected.get(rel) {
            None => drift.added.push(rel.clone()),
            Some((k, o)) if k != kind || o != oid => drift.modified.push(rel.clone()),
            Some(_) => {}
        }
        present.insert(rel.as_str());
    }
    drift.removed = expected
        .keys()
        .filter(|p| !present.contains(p.as_str()))
        .cloned()
        .collect();
    drift.modified.sort();
    drift.added.sort();
    Ok(drift)
}

/// Which generation a `verify --tree` compares with.
#[derive(Debug, Clone)]
pub enum TreeOf {
    /// Found from the directory itself: its place, its name, or its files.
    Found,
    /// A commit (prefix) or `gen-N` of site `site`, or the site's current generation.
    Named {
        site: Option<String>,
        commit: Option<String>,
    },
}

/// Every generation in the store's history: tree → (site, number), newest first.
fn all_generations(git: &GitStore) -> Result<Vec<(GitOid, String, usize)>, RealiseError> {
    let mut out = Vec::new();
    for (site, head) in git.site_branches()? {
        let log = git.first_parent_log(&head, usize::MAX)?;
        let total = log.len();
        for (i, (_, tree, _)) in log.into_iter().enumerate() {
            out.push((tree, site.clone(), total - i));
        }
    }
    Ok(out)
}

/// Compares the tree at `dir` (a `result` link, a generation of the store, a deployed
/// release, or any copy of one: `cp -a`, rsync) with the generation it was made as.
pub fn verify_tree(store: &Path, dir: &Path, of: &TreeOf) -> Result<TreeDrift, RealiseError> {
    let store = Store::open_existing(store)?;
    let git = mcb_catalog::sources::open_git(&store)?;
    let real = std::fs::canonicalize(dir).map_err(|e| RealiseError::Filesystem {
        message: format!("cannot read {}", dir.display()),
        source: e,
    })?;
    let seen = scan_tree(&real);
    let generations = all_generations(&git)?;
    let of_site = |tree: &GitOid| {
        generations
            .iter()
            .find(|(t, _, _)| t == tree)
            .map(|(_, s, n)| (s.clone(), *n))
    };
    let name = real
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (tree, found_by) = match of {
        TreeOf::Named { site, commit } => (
            named_generation(&git, site.as_deref(), commit.as_deref())?,
            "named",
        ),
        TreeOf::Found => {
            let in_store = real
                .strip_prefix(store.generations_dir())
                .ok()
                .and_then(|rest| rest.components().next())
                .and_then(|c| GitOid::parse(&c.as_os_str().to_string_lossy()).ok());
            let as_release = GitOid::parse(&name)
                .ok()
                .filter(|c| git.has_commit(c))
                .and_then(|c| git.commit_tree_id(&c).ok());
            let as_tree = GitOid::parse(&name).ok().filter(|t| git.has_tree(t));
            if let Some(t) = in_store {
                (t, "store")
            } else if let Some(t) = as_release {
                (t, "release")
            } else if let Some(t) = as_tree {
                (t, "tree id")
            } else {
                (
                    by_files(&git, &generations, &seen).ok_or_else(|| RealiseError::Usage {
                        message: format!(
                            "{} matches no generation of the store {}",
                            dir.display(),
                            store.root().display()
                        ),
                        about: Named::Tree,
                    })?,
                    "files",
                )
            }
        }
    };
    let mut drift = drift_from(&git, &tree, &seen)?;
    drift.found_by = found_by.to_string();
    if let Some((site, n)) = of_site(&tree) {
        drift.site = Some(site);
        drift.number = Some(n);
    }
    Ok(drift)
}

/// The generation `commit` (a commit prefix of at least 7 hex digits, or `gen-N`) of
/// `site` names, or the site's current one.
fn named_generation(
    git: &GitStore,
    site: Option<&str>,
    commit: Option<&str>,
) -> Result<GitOid, RealiseError> {
    let usage = |m: String| RealiseError::Usage {
        message: m,
        about: Named::Generation,
    };
    let log = match site {
        Some(s) => {
            let head = git.branch_head(s)?.ok_or_else(|| RealiseError::Usage {
                message: format!("the store has no site named {s}"),
                about: Named::Site,
            })?;
            Some(git.first_parent_log(&head, usize::MAX)?)
        }
        None => None,
    };
    match (commit, log) {
        (None, Some(log)) => Ok(log[0].1.clone()),
        (Some(c), Some(log)) => {
            let site = site.unwrap_or_default();
            let name = mcb_git::GenerationName::parse(c, site).map_err(usage)?;
            let at = name.position(&log, site).map_err(usage)?;
            Ok(log[at].1.clone())
        }
        (Some(c), None) => {
            if c.starts_with("gen-") || c.starts_with('-') || c.contains('/') {
                return Err(usage(format!(
                    "{c} is a generation number: it names a generation of the site given with it"
                )));
            }
            let p = c.to_ascii_lowercase();
            if p.len() < 7 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(usage(format!("{c} is not a commit id or gen-N")));
            }
            let candidates: Vec<(GitOid, GitOid)> = git
                .site_branches()?
                .into_iter()
                .flat_map(|(_, h)| git.first_parent_log(&h, usize::MAX).unwrap_or_default())
                .map(|(c, t, _)| (c, t))
                .collect();
            let mut found: Vec<&GitOid> = candidates
                .iter()
                .filter(|(commit, _)| commit.as_str().starts_with(&p))
                .map(|(_, t)| t)
                .collect();
            found.dedup();
            match found.as_slice() {
                [t] => Ok((*t).clone()),
                [] => Err(usage(format!("{c} is no generation in the store"))),
                _ => Err(usage(format!(
                    "{c} names more than one generation: give more digits"
                ))),
            }
        }
        (None, None) => Err(usage("name a site or a commit".into())),
    }
}

/// The generation whose files `seen` shares most of, among those with the same core
/// (`version.php` or `public/version.php`, when the tree has one).
fn by_files(
    git: &GitStore,
    generations: &[(GitOid, String, usize)],
    seen: &[(String, EntryKind, GitOid)],
) -> Option<GitOid> {
    let mine: std::collections::HashSet<(&str, &GitOid)> =
        seen.iter().map(|(p, _, o)| (p.as_str(), o)).collect();
    let core = seen
        .iter()
        .find(|(p, _, _)| p == "version.php" || p == "public/version.php")
        .map(|(p, _, o)| (p.clone(), o.clone()));
    let mut trees: Vec<&GitOid> = generations.iter().map(|(t, _, _)| t).collect();
    trees.sort();
    trees.dedup();
    let listed: Vec<(&GitOid, Vec<TreeFile>)> = trees
        .into_iter()
        .filter_map(|t| {
            Some((
                t,
                git.tree_files(t, crate::stage::materialise::GENERATION_FILES)
                    .ok()?,
            ))
        })
        .collect();
    // Those on the same core first; all of them when none is (its version.php was edited).
    let same_core = |files: &[TreeFile]| {
        core.as_ref()
            .is_none_or(|(path, oid)| files.iter().any(|(p, _, o)| p == path && o == oid))
    };
    let any_same_core = listed.iter().any(|(_, f)| same_core(f));
    let mut best: Option<(usize, GitOid)> = None;
    for (tree, files) in &listed {
        if any_same_core && !same_core(files) {
            continue;
        }
        let same = files
            .iter()
            .filter(|(p, _, o)| mine.contains(&(p.as_str(), o)))
            .count();
        if same > 0 && best.as_ref().is_none_or(|(n, _)| same > *n) {
            best = Some((same, (*tree).clone()));
        }
    }
    best.map(|(_, t)| t)
}
