//! Putting a source's files into both places mcb needs them: the object store (for
//! hardlinked trees) and the git repository (for composed commits). The result is the
//! source's manifest, whose `tree` is the git tree of the source root.

use std::path::PathBuf;

use gix::objs::tree::EntryKind;
use mcb_store::{Entry, EntryKind as StoreKind, Manifest, Store};
use rayon::prelude::*;

use crate::{Context, GitError, GitStore, parse_id};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFileKind {
    File,
    Exec,
    Symlink,
}

/// One file of a source that is not in git yet (from a zip or a directory).
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// `/`-separated, relative to the source root.
    pub path: String,
    pub kind: SourceFileKind,
    pub content: SourceContent,
}

#[derive(Debug, Clone)]
pub enum SourceContent {
    Bytes(Vec<u8>),
    /// Read when ingested, so a large directory is never all in memory.
    File(PathBuf),
    /// A symlink's target.
    LinkTarget(String),
}

fn store_kind(k: SourceFileKind) -> StoreKind {
    match k {
        SourceFileKind::File => StoreKind::File,
        SourceFileKind::Exec => StoreKind::Exec,
        SourceFileKind::Symlink => StoreKind::Symlink,
    }
}

/// What a tree entry is as a file; `None` for directories and submodules.
pub(crate) fn file_kind(k: EntryKind) -> Option<SourceFileKind> {
    match k {
        EntryKind::Blob => Some(SourceFileKind::File),
        EntryKind::BlobExecutable => Some(SourceFileKind::Exec),
        EntryKind::Link => Some(SourceFileKind::Symlink),
        EntryKind::Tree | EntryKind::Commit => None,
    }
}

fn git_kind(k: SourceFileKind) -> EntryKind {
    match k {
        SourceFileKind::File => EntryKind::Blob,
        SourceFileKind::Exec => EntryKind::BlobExecutable,
        SourceFileKind::Symlink => EntryKind::Link,
    }
}

fn store_err(e: mcb_store::StoreError) -> GitError {
    GitError::new("cannot write to the store", e)
}

impl GitStore {
    /// Ingests every file of `commit` into the object store. Objects already present are
    /// not written again. Submodules are left out: they have no content of their own here.
    ///
    /// `known` is a manifest of a related source (the previous release of the same
    /// upstream): a blob it lists with the same git id has the same content, so only blobs
    /// it does not know are read — a point release reads only what changed.
    pub fn ingest_commit(
        &self,
        store: &Store,
        commit: &str,
        known: Option<&Manifest>,
    ) -> Result<Manifest, GitError> {
        let known: std::collections::HashMap<&str, &Entry> = known
            .map(|m| m.entries.iter().map(|e| (e.oid.as_str(), e)).collect())
            .unwrap_or_default();
        let repo = self.repo();
        let tree_id = self.commit_tree_id(commit)?;
        let tree = repo
            .find_tree(parse_id(&tree_id)?)
            .context(|| format!("cannot read tree {tree_id}"))?;
        let records = tree
            .traverse()
            .breadthfirst
            .files()
            .context(|| format!("cannot walk the tree of {commit}"))?;
        let files: Vec<_> = records
            .into_iter()
            .filter_map(|r| Some((r.filepath.to_string(), file_kind(r.mode.kind())?, r.oid)))
            .collect();
        let entries: Result<Vec<Entry>, GitError> = files
            .par_iter()
            .map_init(
                || self.repo(),
                |repo, (path, kind, oid)| {
                    let hex = oid.to_string();
                    if let Some(k) = known.get(hex.as_str())
                        && store_kind(*kind) == k.kind
                        && store.has_object(&k.object(), k.executable())
                    {
                        return Ok(Entry {
                            path: path.clone(),
                            ..(*k).clone()
                        });
                    }
                    let blob = repo
                        .find_object(*oid)
                        .context(|| format!("cannot read {path} of {commit}"))?;
                    let hash = store
                        .put_object(&blob.data, *kind == SourceFileKind::Exec)
                        .map_err(store_err)?;
                    Ok(Entry {
                        path: path.clone(),
                        kind: store_kind(*kind),
                        size: blob.data.len() as u64,
                        blake3: hash.0,
                        oid: oid.to_string(),
                    })
                },
            )
            .collect();
        Ok(Manifest::new(tree_id, entries?))
    }

    /// Ingests files from a zip or a directory: each becomes a store object and a git blob,
    /// and together a git tree.
    pub fn ingest_files(
        &self,
        store: &Store,
        files: Vec<SourceFile>,
    ) -> Result<Manifest, GitError> {
        let entries: Result<Vec<(Entry, SourceFileKind)>, GitError> = files
            .into_par_iter()
            .map_init(
                || self.repo(),
                |repo, f| {
                    let bytes = match f.content {
                        SourceContent::Bytes(b) => b,
                        SourceContent::File(p) => std::fs::read(&p).map_err(|e| {
                            GitError::new(format!("cannot read {}", p.display()), e)
                        })?,
                        SourceContent::LinkTarget(t) => t.into_bytes(),
                    };
                    let hash = store
                        .put_object(&bytes, f.kind == SourceFileKind::Exec)
                        .map_err(store_err)?;
                    let oid = repo
                        .write_blob(&bytes)
                        .context(|| format!("cannot write {} to git", f.path))?;
                    Ok((
                        Entry {
                            path: f.path,
                            kind: store_kind(f.kind),
                            size: bytes.len() as u64,
                            blake3: hash.0,
                            oid: oid.to_string(),
                        },
                        f.kind,
                    ))
                },
            )
            .collect();
        let entries = entries?;
        let repo = self.repo();
        let mut editor = repo
            .edit_tree(gix::ObjectId::empty_tree(gix::hash::Kind::Sha1))
            .context(|| "cannot start a tree".to_string())?;
        for (e, kind) in &entries {
            editor
                .upsert(e.path.as_str(), git_kind(*kind), parse_id(&e.oid)?)
                .context(|| format!("cannot add {} to a tree", e.path))?;
        }
        let tree = editor
            .write()
            .context(|| "cannot write a tree".to_string())?
            .to_string();
        Ok(Manifest::new(
            tree,
            entries.into_iter().map(|(e, _)| e).collect(),
        ))
    }
}
