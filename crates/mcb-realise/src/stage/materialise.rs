//! The materialise stage: the codebase laid out as a generation in the store. Objects found
//! edited in place or missing are restored from git first (it holds every blob), and an
//! existing generation found changed is rebuilt; both are said.
//!
//! It also holds the one way a generation known only by its git tree becomes files of the
//! store ([`files_of_tree`]): rollback to a generation gc removed, `verify --repair`, the
//! test runner's scratch tree and deploy from a store all lay out what it gives.

use std::collections::HashMap;

use mcb_git::GitStore;
use mcb_store::{
    Entry, EntryKind, GitOid, LinkMode, Manifest, ManifestHash, Materialised, ObjectHash, Store,
    StoreError,
};

use crate::error::RealiseError;
use crate::report::Reporter;

/// Lays out `files` as generation `tree`, which uses the manifests `uses`.
#[allow(clippy::too_many_arguments)]
pub fn materialise(
    store: &Store,
    git: &GitStore,
    tree: &GitOid,
    files: &[(String, &Entry)],
    uses: &[ManifestHash],
    mode: LinkMode,
    reporter: &dyn Reporter,
    warn: &mut dyn FnMut(String),
) -> Result<Materialised, RealiseError> {
    reporter.total(files.len() as u64);
    let generation = match store.materialise(tree, files, Some(uses), mode, &|| reporter.advance())
    {
        Err(StoreError::DamagedObjects { tampered, missing }) => {
            let all: Vec<(ObjectHash, bool)> = tampered.iter().chain(&missing).cloned().collect();
            restore_objects(store, git, files, &all)?;
            let mut said = Vec::new();
            if !tampered.is_empty() {
                said.push(format!(
                    "{} store object{} had been edited through a hardlinked tree",
                    tampered.len(),
                    if tampered.len() == 1 { "" } else { "s" }
                ));
            }
            if !missing.is_empty() {
                said.push(format!(
                    "{} store object{} {} missing",
                    missing.len(),
                    if missing.len() == 1 { "" } else { "s" },
                    if missing.len() == 1 { "was" } else { "were" }
                ));
            }
            warn(format!(
                "{}; restored from git. `mcb verify` names every tree that still holds damage, and `mcb verify --repair` rebuilds them",
                said.join(" and ")
            ));
            reporter.total(files.len() as u64);
            store.materialise(tree, files, Some(uses), mode, &|| reporter.advance())?
        }
        other => other?,
    };
    if !generation.repaired.is_empty() {
        let shown: Vec<&str> = generation
            .repaired
            .iter()
            .take(5)
            .map(String::as_str)
            .collect();
        warn(format!(
            "the codebase {tree} had been changed in place ({}{}); it was rebuilt from the store, and the change is gone",
            shown.join(", "),
            if generation.repaired.len() > 5 {
                format!(" and {} more", generation.repaired.len() - 5)
            } else {
                String::new()
            }
        ));
    }
    if generation.cross_device {
        warn(format!(
            "the store and {} are on different filesystems: files were copied, not hardlinked",
            generation.path.display()
        ));
    }
    Ok(generation)
}

/// Writes back the true content of damaged objects from git.
fn restore_objects(
    store: &Store,
    git: &GitStore,
    files: &[(String, &Entry)],
    objects: &[(ObjectHash, bool)],
) -> Result<(), RealiseError> {
    for (hash, exec) in objects {
        let entry = files
            .iter()
            .map(|(_, e)| *e)
            .find(|e| e.object() == hash && e.executable() == *exec)
            .expect("a damaged object belongs to one of the files laid out");
        let bytes = git.read_blob(&entry.oid)?;
        store.repair_object(hash, *exec, &bytes)?;
    }
    Ok(())
}

/// The most files a generation's tree may hold when it is read back (rollback, gc, verify,
/// repair, deploy). A generation is a core and its plugins, each held to the per-source
/// limit when it came in; this bound stops a damaged tree that names one subtree over and
/// over.
pub const GENERATION_FILES: u64 = 2_000_000;

/// The entries `manifests` name, by git blob id: what the store already knows of a tree's
/// blobs.
pub fn known_entries(store: &Store, manifests: &[ManifestHash]) -> HashMap<GitOid, Entry> {
    let mut out = HashMap::new();
    for h in manifests {
        if let Ok(m) = store.read_manifest(h) {
            for e in m.entries {
                out.entry(e.oid.clone()).or_insert(e);
            }
        }
    }
    out
}

/// The files of generation `tree`, from its git tree, each with an object of the store
/// that is there and sound: an entry `known` gives (by blob id) is used as it is; an
/// object that is missing, edited in place, or unknown is written from its git blob. The
/// second value counts the objects written.
pub fn files_of_tree(
    store: &Store,
    git: &GitStore,
    tree: &GitOid,
    known: &HashMap<GitOid, Entry>,
    reporter: &dyn Reporter,
) -> Result<(Vec<(String, Entry)>, usize), RealiseError> {
    let (out, mut written) = listed_files(store, git, tree, known, reporter)?;
    // Every object checked at once, in parallel; only what is damaged or missing is put
    // back.
    let laid: Vec<(String, &Entry)> = out.iter().map(|(p, e)| (p.clone(), e)).collect();
    match store.check_objects(&laid) {
        Ok(()) => {}
        Err(StoreError::DamagedObjects { tampered, missing }) => {
            let damaged: Vec<_> = tampered.into_iter().chain(missing).collect();
            written += repair(store, git, &laid, &damaged)?;
        }
        Err(e) => return Err(e.into()),
    }
    Ok((out, written))
}

/// The files of generation `tree` by its git tree, each with its store entry: from
/// `known` (by blob id), else written from its git blob (counted). Whether the objects
/// are sound is not checked here.
fn listed_files(
    store: &Store,
    git: &GitStore,
    tree: &GitOid,
    known: &HashMap<GitOid, Entry>,
    reporter: &dyn Reporter,
) -> Result<(Vec<(String, Entry)>, usize), RealiseError> {
    let listed = git.tree_files(tree, GENERATION_FILES)?;
    reporter.total(listed.len() as u64);
    let mut written = 0;
    let mut out = Vec::with_capacity(listed.len());
    for (path, kind, oid) in listed {
        let exec = kind == EntryKind::Exec;
        let entry = match known.get(&oid) {
            Some(e) if (e.kind == EntryKind::Symlink) == (kind == EntryKind::Symlink) => Entry {
                path: path.clone(),
                kind,
                size: e.size,
                blake3: e.blake3.clone(),
                oid: oid.clone(),
            },
            _ => {
                let bytes = git.read_blob(&oid)?;
                let blake3 = store.put_object(&bytes, exec)?;
                written += 1;
                Entry {
                    path: path.clone(),
                    kind,
                    size: bytes.len() as u64,
                    blake3,
                    oid: oid.clone(),
                }
            }
        };
        out.push((path, entry));
        reporter.advance();
    }
    Ok((out, written))
}

/// Puts back `damaged` objects of `files`: from the object's other mode when that is
/// sound, else from its git blob. Returns how many were written from git.
fn repair(
    store: &Store,
    git: &GitStore,
    files: &[(String, &Entry)],
    damaged: &[(ObjectHash, bool)],
) -> Result<usize, RealiseError> {
    let mut written = 0;
    for (hash, exec) in damaged {
        if store.put_object_variant(hash, *exec)? {
            continue;
        }
        restore_objects(store, git, files, &[(hash.clone(), *exec)])?;
        written += 1;
    }
    Ok(written)
}

/// What the store records generation `tree` uses (when it does), and its files, each
/// with its store entry (objects restored from git where they are missing).
type TreeFiles = (Option<Vec<mcb_store::ManifestHash>>, Vec<(String, Entry)>);

fn tree_files(
    store: &Store,
    git: &GitStore,
    tree: &GitOid,
    reporter: &dyn Reporter,
) -> Result<TreeFiles, RealiseError> {
    let uses = store.generation_uses(tree);
    let known = known_entries(store, uses.as_deref().unwrap_or(&[]));
    let (files, _) = files_of_tree(store, git, tree, &known, reporter)?;
    Ok((uses, files))
}

/// Lays out generation `tree` from its git tree, restoring what objects it needs, and
/// records one manifest of the whole tree as what it uses (so gc keeps it) unless the
/// store already records its use. Returns its path.
pub fn materialise_tree(
    store: &Store,
    git: &GitStore,
    tree: &GitOid,
    mode: LinkMode,
    reporter: &dyn Reporter,
) -> Result<std::path::PathBuf, RealiseError> {
    let uses = store.generation_uses(tree);
    let known = known_entries(store, uses.as_deref().unwrap_or(&[]));
    // The store checks every object before it lays one out; what it finds damaged is put
    // back and the laying out tried once more (one check of each object, not two).
    let (files, _) = listed_files(store, git, tree, &known, reporter)?;
    let uses = match uses {
        Some(u) => u,
        None => {
            let manifest =
                Manifest::new(tree.clone(), files.iter().map(|(_, e)| e.clone()).collect());
            vec![store.put_manifest(&manifest)?]
        }
    };
    let laid: Vec<(String, &Entry)> = files.iter().map(|(p, e)| (p.clone(), e)).collect();
    let made = match store.materialise(tree, &laid, Some(&uses), mode, &|| {}) {
        Err(StoreError::DamagedObjects { tampered, missing }) => {
            let damaged: Vec<_> = tampered.into_iter().chain(missing).collect();
            repair(store, git, &laid, &damaged)?;
            store.materialise(tree, &laid, Some(&uses), mode, &|| {})?
        }
        other => other?,
    };
    Ok(made.path)
}

/// Lays out the files of generation `tree` under `dest` (an existing, empty directory) the
/// way the store lays out every tree ([`Store::lay_out`]): objects restored from git where
/// they are missing or edited, then linked, cloned or copied as `mode` says, and sealed.
/// For a tree outside `generations/`: a test's scratch tree, a deployed release.
pub fn lay_out_tree(
    store: &Store,
    git: &GitStore,
    tree: &GitOid,
    dest: &std::path::Path,
    mode: LinkMode,
    reporter: &dyn Reporter,
) -> Result<mcb_store::LaidOut, RealiseError> {
    // `tree_files` has just checked every object and put back what was damaged.
    let (_, files) = tree_files(store, git, tree, reporter)?;
    let laid: Vec<(String, &Entry)> = files.iter().map(|(p, e)| (p.clone(), e)).collect();
    Ok(store.lay_out(&laid, dest, mode, &|| {})?)
}

/// The generation of `tree` in the store, sound: as it is, or laid out again from git
/// (no longer laid out, or changed in place).
pub fn generation(
    store: &Store,
    git: &GitStore,
    tree: &GitOid,
    mode: LinkMode,
    reporter: &dyn Reporter,
) -> Result<std::path::PathBuf, RealiseError> {
    match store.check_generation(tree)? {
        Some(d) if d.is_empty() => Ok(store.generation_path(tree)),
        _ => materialise_tree(store, git, tree, mode, reporter),
    }
}
