//! The materialise stage: the codebase laid out as a generation in the store. Objects found
//! edited in place or missing are restored from git first (it holds every blob), and an
//! existing generation found changed is rebuilt; both are said.

use mcb_git::GitStore;
use mcb_store::{
    Entry, GitOid, LinkMode, ManifestHash, Materialised, ObjectHash, Store, StoreError,
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
