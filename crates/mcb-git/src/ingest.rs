//! Putting a source's files into both places mcb needs them: the object store (for
//! hardlinked trees) and the git repository (for composed commits). The result is the
//! source's manifest, whose `tree` is the git tree of the source root.
//!
//! Every source passes [`mcb_store::check_listing`] before any of its content is stored: a
//! git tree here, a zip or a directory in the catalog, under one rule.

use std::collections::HashMap;

use gix::objs::tree::EntryKind as TreeKind;
use mcb_store::{
    Entry, EntryKind, EntryRefused, GitOid, ListedEntry, Manifest, ObjectHash, SourceLimits, Store,
    check_listing,
};
use rayon::prelude::*;

use crate::pack::{PackWriter, PackedBlob, deflater};
use crate::{Context, GitError, GitStore, git_oid, oid};

/// One file of a source that is not in git yet (from a zip or a directory), whose content
/// the reader already put in the object store.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// `/`-separated, relative to the source root.
    pub path: String,
    pub kind: EntryKind,
    pub content: SourceContent,
}

#[derive(Debug, Clone)]
pub enum SourceContent {
    /// A store object, by hash and size.
    Stored { object: ObjectHash, size: u64 },
    /// A symlink's target.
    LinkTarget(String),
}

/// Why a source could not be ingested.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// An entry breaks the rule every source obeys.
    #[error(transparent)]
    Refused(#[from] EntryRefused),
    /// The source is larger than a limit allows.
    #[error("{what}, over the limit of {limit}")]
    OverLimit { what: String, limit: u64 },
    #[error(transparent)]
    Git(#[from] GitError),
}

/// A git source in the store: its manifest, and what of it was left out.
#[derive(Debug, Clone)]
pub struct IngestedCommit {
    pub manifest: Manifest,
    /// Paths of submodules: git records only a commit id there, and mcb fetches no
    /// submodule, so they are absent from the codebase.
    pub submodules: Vec<String>,
    /// How many blobs were read from git (the rest came from the base's objects).
    pub blobs_read: usize,
}

/// What a tree entry is as a file; `None` for directories and submodules.
pub(crate) fn file_kind(k: TreeKind) -> Option<EntryKind> {
    match k {
        TreeKind::Blob => Some(EntryKind::File),
        TreeKind::BlobExecutable => Some(EntryKind::Exec),
        TreeKind::Link => Some(EntryKind::Symlink),
        TreeKind::Tree | TreeKind::Commit => None,
    }
}

pub(crate) fn tree_kind(k: EntryKind) -> TreeKind {
    match k {
        EntryKind::File => TreeKind::Blob,
        EntryKind::Exec => TreeKind::BlobExecutable,
        EntryKind::Symlink => TreeKind::Link,
    }
}

fn store_err(e: mcb_store::StoreError) -> GitError {
    GitError::new("cannot write to the store", e)
}

impl GitStore {
    /// Ingests every file of `commit` into the object store, after checking the whole
    /// tree against the source rule and every blob against `max_file_bytes`. Objects
    /// already present are not written again.
    ///
    /// `known` is a manifest of a related source (the previous release of the same
    /// upstream): a blob it lists with the same git id has the same content, whatever the
    /// entry's mode (the mode is a property of the tree entry, not of the content), so only
    /// blobs it does not know are read — a point release reads only what changed.
    pub fn ingest_commit(
        &self,
        store: &Store,
        commit: &GitOid,
        known: Option<&Manifest>,
        limits: &SourceLimits,
    ) -> Result<IngestedCommit, IngestError> {
        let known: HashMap<&GitOid, &Entry> = known
            .map(|m| m.entries.iter().map(|e| (&e.oid, e)).collect())
            .unwrap_or_default();
        let repo = self.repo();
        let tree_id = self.commit_tree_id(commit)?;
        let (files, submodules) = walk_tree(&repo, oid(&tree_id), limits.files)?;
        // Symlink targets are the content of their blobs: small, read for the rule.
        let mut targets: HashMap<usize, Vec<u8>> = HashMap::new();
        for (i, (path, kind, id)) in files.iter().enumerate() {
            if *kind == EntryKind::Symlink {
                let size = blob_size(&repo, *id, path)?;
                if size > mcb_store::listing::MAX_PATH_BYTES as u64 {
                    return Err(EntryRefused {
                        path: mcb_store::listing::printable_bytes(path),
                        problem: mcb_store::EntryProblem::BadLinkTarget(format!("<{size} bytes>")),
                    }
                    .into());
                }
                let blob = repo
                    .find_object(*id)
                    .context(|| format!("cannot read {}", String::from_utf8_lossy(path)))?;
                targets.insert(i, blob.data.clone());
            }
        }
        let listing: Vec<ListedEntry<'_>> = files
            .iter()
            .enumerate()
            .map(|(i, (path, kind, _))| ListedEntry {
                path,
                kind: *kind,
                link_target: targets.get(&i).map(Vec::as_slice),
            })
            .collect();
        check_listing(&listing)?;
        let total = std::sync::atomic::AtomicU64::new(0);
        let read = std::sync::atomic::AtomicUsize::new(0);

        let entries: Result<Vec<Entry>, IngestError> = files
            .par_iter()
            .map_init(
                || self.repo(),
                |repo, (raw_path, kind, id)| {
                    let path = String::from_utf8(raw_path.clone())
                        .expect("the listing check refused names that are not UTF-8");
                    let oid_hex = git_oid(*id);
                    // A blob the base knows has the same content whatever its mode now:
                    // the object is reused, or copied to the other mode.
                    if let Some(k) = known.get(&oid_hex)
                        && (k.kind == EntryKind::Symlink) == (*kind == EntryKind::Symlink)
                        && store
                            .put_object_variant(k.object(), *kind == EntryKind::Exec)
                            .map_err(store_err)?
                    {
                        return Ok(Entry {
                            path,
                            kind: *kind,
                            size: k.size,
                            blake3: k.blake3.clone(),
                            oid: oid_hex,
                        });
                    }
                    let size = blob_size(repo, *id, raw_path)?;
                    if size > limits.file_bytes {
                        return Err(IngestError::OverLimit {
                            what: format!("file '{path}' is {size} bytes"),
                            limit: limits.file_bytes,
                        });
                    }
                    let sum = total.fetch_add(size, std::sync::atomic::Ordering::Relaxed) + size;
                    if sum > limits.total_bytes {
                        return Err(IngestError::OverLimit {
                            what: format!(
                                "the files of {commit} hold more than {} bytes",
                                limits.total_bytes
                            ),
                            limit: limits.total_bytes,
                        });
                    }
                    read.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let blob = repo
                        .find_object(*id)
                        .context(|| format!("cannot read {path} of {commit}"))?;
                    let hash = store
                        .put_object(&blob.data, *kind == EntryKind::Exec)
                        .map_err(store_err)?;
                    Ok(Entry {
                        path,
                        kind: *kind,
                        size: blob.data.len() as u64,
                        blake3: hash,
                        oid: oid_hex,
                    })
                },
            )
            .collect();
        Ok(IngestedCommit {
            manifest: Manifest::new(tree_id, entries?),
            submodules,
            blobs_read: read.into_inner(),
        })
    }

    /// Ingests files from a zip or a directory, whose contents the reader already put in
    /// the object store: each becomes a git blob, and together a git tree. The listing is
    /// checked again here, so no caller can skip the rule.
    pub fn ingest_files(
        &self,
        store: &Store,
        files: Vec<SourceFile>,
    ) -> Result<Manifest, IngestError> {
        let listing: Vec<ListedEntry<'_>> = files
            .iter()
            .map(|f| ListedEntry {
                path: f.path.as_bytes(),
                kind: f.kind,
                link_target: match &f.content {
                    SourceContent::LinkTarget(t) => Some(t.as_bytes()),
                    SourceContent::Stored { .. } => None,
                },
            })
            .collect();
        check_listing(&listing)?;
        self.write_package(store, files)
    }

    /// The site's own symlinks (`links:` of the site file) as a package: each path is
    /// checked as a clean path, and each target is kept as written, pointing outside the
    /// codebase by design; mcb never follows it.
    pub fn link_package(
        &self,
        store: &Store,
        links: &[(String, String)],
    ) -> Result<Manifest, IngestError> {
        for (path, _) in links {
            mcb_store::listing::check_path(path.as_bytes())?;
        }
        let files = links
            .iter()
            .map(|(path, target)| SourceFile {
                path: path.clone(),
                kind: EntryKind::Symlink,
                content: SourceContent::LinkTarget(target.clone()),
            })
            .collect();
        self.write_package(store, files)
    }

    /// Files whose listing is checked: each a git blob, together a git tree. A package of
    /// [`PACKED_FILES`] files or more goes into git as one pack, a smaller one as loose
    /// objects.
    fn write_package(
        &self,
        store: &Store,
        files: Vec<SourceFile>,
    ) -> Result<Manifest, IngestError> {
        let entries = if files.len() >= PACKED_FILES {
            self.write_packed(store, files)?
        } else {
            files
                .into_par_iter()
                .map_init(
                    || self.repo(),
                    |repo, f| {
                        let (path, kind, object, bytes) = blob_of(store, f)?;
                        let id = repo
                            .write_blob(&bytes)
                            .context(|| format!("cannot write {path} to git"))?
                            .detach();
                        Ok(Entry {
                            path,
                            kind,
                            size: bytes.len() as u64,
                            blake3: object,
                            oid: git_oid(id),
                        })
                    },
                )
                .collect::<Result<Vec<Entry>, IngestError>>()?
        };
        let repo = self.repo();
        let mut editor = repo
            .edit_tree(gix::ObjectId::empty_tree(gix::hash::Kind::Sha1))
            .context(|| "cannot start a tree".to_string())?;
        for e in &entries {
            editor
                .upsert(e.path.as_str(), tree_kind(e.kind), oid(&e.oid))
                .context(|| format!("cannot add {} to a tree", e.path))?;
        }
        let tree = editor
            .write()
            .context(|| "cannot write a tree".to_string())?
            .detach();
        Ok(Manifest::new(git_oid(tree), entries))
    }
}

/// The number of files from which a package's blobs go into git as one pack.
pub const PACKED_FILES: usize = 1000;

/// Blobs compressed at once (in parallel) before they are appended to a pack in order.
const PACK_CHUNK: usize = 512;

impl GitStore {
    /// The blobs of `files` as one pack (those git lacks), each compressed on the thread
    /// pool and appended in the files' order.
    fn write_packed(
        &self,
        store: &Store,
        files: Vec<SourceFile>,
    ) -> Result<Vec<Entry>, IngestError> {
        let pack_error = |e: std::io::Error| GitError::new("cannot write a pack".to_string(), e);
        let mut pack = PackWriter::new(&self.path.join("objects")).map_err(pack_error)?;
        let mut entries = Vec::with_capacity(files.len());
        let mut files = files.into_iter().peekable();
        while files.peek().is_some() {
            let chunk: Vec<SourceFile> = files.by_ref().take(PACK_CHUNK).collect();
            let done = chunk
                .into_par_iter()
                .map_init(
                    || (self.repo(), deflater()),
                    |(repo, deflate), f| -> Result<(Entry, Option<PackedBlob>), IngestError> {
                        let (path, kind, object, bytes) = blob_of(store, f)?;
                        let id = gix::objs::compute_hash(
                            gix::hash::Kind::Sha1,
                            gix::objs::Kind::Blob,
                            &bytes,
                        )
                        .context(|| format!("cannot hash {path}"))?;
                        let packed =
                            if repo.has_object(id) {
                                None
                            } else {
                                Some(PackedBlob::of(&bytes, deflate).map_err(|e| {
                                    GitError::new(format!("cannot compress {path}"), e)
                                })?)
                            };
                        let entry = Entry {
                            path,
                            kind,
                            size: bytes.len() as u64,
                            blake3: object,
                            oid: git_oid(id),
                        };
                        Ok((entry, packed))
                    },
                )
                .collect::<Result<Vec<_>, IngestError>>()?;
            for (entry, packed) in done {
                if let Some(blob) = packed {
                    let id = oid(&entry.oid);
                    if !pack.contains(&id) {
                        pack.add(id, &blob).map_err(pack_error)?;
                    }
                }
                entries.push(entry);
            }
        }
        pack.finish().map_err(pack_error)?;
        Ok(entries)
    }
}

/// A file's path, kind, store object and bytes. What goes into git is what hashes to the
/// object's name: an object edited through a hardlinked tree is refused here, never copied
/// into a git object. A link target is put in the store here.
fn blob_of(
    store: &Store,
    f: SourceFile,
) -> Result<(String, EntryKind, ObjectHash, Vec<u8>), IngestError> {
    match f.content {
        SourceContent::Stored { object, size } => {
            let bytes = store
                .read_object_verified(&object, f.kind == EntryKind::Exec)
                .map_err(|e| GitError::new(format!("cannot read {} from the store", f.path), e))?;
            if bytes.len() as u64 != size {
                return Err(GitError::new(
                    format!("cannot read {} from the store", f.path),
                    std::io::Error::other(format!(
                        "object {object} holds {} bytes, not {size}",
                        bytes.len()
                    )),
                )
                .into());
            }
            Ok((f.path, f.kind, object, bytes))
        }
        SourceContent::LinkTarget(t) => {
            let bytes = t.into_bytes();
            let object = store.put_object(&bytes, false).map_err(store_err)?;
            Ok((f.path, f.kind, object, bytes))
        }
    }
}

/// Every file of a tree (raw path, kind, blob id) and the paths of its submodules. Each
/// name is checked on its own as git stores it, so a name holding `/` cannot pass as a
/// path, nor an empty name vanish into one.
#[allow(clippy::type_complexity)]
pub(crate) fn walk_tree(
    repo: &gix::Repository,
    root: gix::ObjectId,
    max_files: u64,
) -> Result<(Vec<(Vec<u8>, EntryKind, gix::ObjectId)>, Vec<String>), IngestError> {
    let mut files = Vec::new();
    let mut submodules = Vec::new();
    let mut todo: Vec<(gix::ObjectId, Vec<u8>, usize)> = vec![(root, Vec::new(), 0)];
    while let Some((id, prefix, depth)) = todo.pop() {
        let tree = repo
            .find_tree(id)
            .context(|| format!("cannot read tree {id}"))?;
        let decoded = tree.decode().context(|| format!("cannot read tree {id}"))?;
        for e in &decoded.entries {
            let name: &[u8] = e.filename.as_ref();
            let mut path = prefix.clone();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(name);
            let bad = if name.is_empty() {
                Some(mcb_store::EntryProblem::EmptyName)
            } else {
                name.iter()
                    .find(|b| **b == b'/' || **b == 0)
                    .map(|b| mcb_store::EntryProblem::BadCharacter(*b as char))
            };
            if let Some(problem) = bad {
                return Err(EntryRefused {
                    path: mcb_store::listing::printable_bytes(&path),
                    problem,
                }
                .into());
            }
            match e.mode.kind() {
                TreeKind::Tree => {
                    if depth + 1 > mcb_store::listing::MAX_DEPTH {
                        return Err(EntryRefused {
                            path: mcb_store::listing::printable_bytes(&path),
                            problem: mcb_store::EntryProblem::TooDeep,
                        }
                        .into());
                    }
                    todo.push((e.oid.to_owned(), path, depth + 1));
                }
                TreeKind::Commit => submodules.push(String::from_utf8_lossy(&path).into_owned()),
                kind => {
                    let kind = file_kind(kind).expect("blobs and links are files");
                    files.push((path, kind, e.oid.to_owned()));
                    // Checked while walking: a tree can name one subtree many times over.
                    if files.len() as u64 > max_files {
                        return Err(IngestError::OverLimit {
                            what: format!("tree {root} holds more than {max_files} files"),
                            limit: max_files,
                        });
                    }
                }
            }
        }
    }
    submodules.sort();
    Ok((files, submodules))
}

fn blob_size(repo: &gix::Repository, id: gix::ObjectId, path: &[u8]) -> Result<u64, GitError> {
    let header = repo
        .find_header(id)
        .context(|| format!("cannot read {}", String::from_utf8_lossy(path)))?;
    Ok(header.size())
}
