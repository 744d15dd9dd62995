//! The store's git repository, through gix: fetching upstream sources into it, listing and
//! resolving their refs, reading files at a commit, putting source files into git and the
//! object store together, composing codebase trees from known ids and writing
//! deterministic commits on site branches, and checking the objects it holds. It is also
//! the one place that runs the `git` program (`program`): push, fetch into a deploy's
//! cache, notes, gc, reading a user's checkout.
//!
//! It follows instructions; it does not choose versions (that is `mcb-resolve`) nor decide
//! what a site contains.

mod check;
mod compose;
mod error;
mod fetch;
mod generation;
mod history;
mod ingest;
mod pack;
pub mod program;
mod progress;
pub mod tls;

use std::path::{Path, PathBuf};

use mcb_store::{EntryKind, GitOid};

pub use check::BadObject;
pub use compose::{CommitInfo, Graft};
pub use error::GitError;
pub use fetch::{FetchLimits, RemoteRefs};
pub use generation::GenerationName;
pub use ingest::{IngestError, IngestedCommit, PACKED_FILES, SourceContent, SourceFile};

pub(crate) use error::Context;

/// Per thread; two threads stay well inside mcb's memory budget.
const DELTA_BASE_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// The store's bare repository.
pub struct GitStore {
    path: PathBuf,
    repo: gix::ThreadSafeRepository,
}

impl GitStore {
    /// Opens the bare repository at `path`, creating it when it does not exist. A
    /// directory left by a creation that was interrupted (no `HEAD` yet) is created again:
    /// call this while holding the lock that serialises the repository's creation.
    pub fn open(path: &Path) -> Result<GitStore, GitError> {
        if !path.join("HEAD").exists() {
            let made = gix::init_bare(path).map(drop).or_else(|e| {
                if path.is_dir() && !path.join("HEAD").exists() {
                    let _ = std::fs::remove_dir_all(path);
                    gix::init_bare(path).map(drop)
                } else {
                    Err(e)
                }
            });
            // An error with HEAD there: another process created it meanwhile.
            if let Err(e) = made
                && !path.join("HEAD").exists()
            {
                return Err(GitError::new(
                    format!(
                        "cannot create the store's git repository {}",
                        path.display()
                    ),
                    e,
                ));
            }
        }
        // Every fetch of a run adds a pack, and gix sizes its table of pack indexes when
        // the repository is opened: leave room for a fleet's worth of upstreams.
        let options = gix::open::Options::default().object_store_slots(
            gix::odb::store::init::Slots::AsNeededByDiskState {
                multiplier: 2.0,
                minimum: 4096,
            },
        );
        let repo = gix::open_opts(path, options)
            .context(|| format!("cannot open the store's git repository {}", path.display()))?;
        Ok(GitStore {
            path: path.to_path_buf(),
            repo: repo.into_sync(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn repo(&self) -> gix::Repository {
        let mut repo = self.repo.to_thread_local();
        // Reading a whole release walks long delta chains: a byte-capped base cache per
        // thread keeps the bases that many blobs share.
        repo.objects.set_pack_cache(|| {
            Box::new(gix::odb::pack::cache::lru::MemoryCappedHashmap::new(
                DELTA_BASE_CACHE_BYTES,
            ))
        });
        repo
    }

    /// What is at `path` in `commit`: a file's content (up to `max_bytes`), or why not.
    pub fn file_at(&self, commit: &GitOid, path: &str, max_bytes: u64) -> Result<FileAt, GitError> {
        use gix::objs::tree::EntryKind as Kind;
        let repo = self.repo();
        let tree = self.commit_tree_id(commit)?;
        let tree = repo
            .find_tree(oid(&tree))
            .context(|| format!("cannot read tree {tree}"))?;
        let entry = tree
            .lookup_entry_by_path(path)
            .context(|| format!("cannot look up {path} in {commit}"))?;
        let Some(e) = entry else {
            return Ok(FileAt::Missing);
        };
        match e.mode().kind() {
            Kind::Blob | Kind::BlobExecutable => {
                let size = repo
                    .find_header(e.oid())
                    .context(|| format!("cannot read {path} in {commit}"))?
                    .size();
                if size > max_bytes {
                    return Ok(FileAt::TooLarge(size));
                }
                let obj = e
                    .object()
                    .context(|| format!("cannot read {path} in {commit}"))?;
                Ok(FileAt::File(obj.data.clone()))
            }
            Kind::Link => Ok(FileAt::Symlink),
            Kind::Tree | Kind::Commit => Ok(FileAt::NotAFile),
        }
    }

    /// Reads the regular file at `path` in `commit`; `None` when there is none or it is not
    /// a regular file (a symlink's text is not a file's content).
    pub fn read_file(&self, commit: &GitOid, path: &str) -> Result<Option<Vec<u8>>, GitError> {
        Ok(match self.file_at(commit, path, u64::MAX)? {
            FileAt::File(b) => Some(b),
            _ => None,
        })
    }

    /// The paths of the files of `commit` that end with `suffix` (tree objects only are
    /// read), walked by the same checks as ingestion and stopped past `max_files`.
    pub fn paths_ending(
        &self,
        commit: &GitOid,
        suffix: &str,
        max_files: u64,
    ) -> Result<Vec<String>, GitError> {
        let tree = self.commit_tree_id(commit)?;
        Ok(self
            .tree_files(&tree, max_files)?
            .into_iter()
            .filter(|(p, kind, _)| *kind != EntryKind::Symlink && p.ends_with(suffix))
            .map(|(p, _, _)| p)
            .collect())
    }

    /// The content of a blob.
    pub fn read_blob(&self, id: &GitOid) -> Result<Vec<u8>, GitError> {
        let repo = self.repo();
        let obj = repo
            .find_object(oid(id))
            .context(|| format!("blob {id} is not in the store's git repository"))?;
        Ok(obj.data.clone())
    }

    /// Does the repository hold this commit?
    pub fn has_commit(&self, commit: &GitOid) -> bool {
        self.repo()
            .find_object(oid(commit))
            .map(|o| o.kind == gix::object::Kind::Commit)
            .unwrap_or(false)
    }

    /// The tree id of `commit`.
    pub fn commit_tree_id(&self, commit: &GitOid) -> Result<GitOid, GitError> {
        let repo = self.repo();
        let c = repo
            .find_commit(oid(commit))
            .context(|| format!("commit {commit} is not in the store's git repository"))?;
        Ok(git_oid(
            c.tree_id()
                .context(|| format!("cannot read commit {commit}"))?
                .detach(),
        ))
    }

    /// The committer time of `commit`, seconds since the epoch.
    pub fn commit_time(&self, commit: &GitOid) -> Result<i64, GitError> {
        let repo = self.repo();
        let c = repo
            .find_commit(oid(commit))
            .context(|| format!("commit {commit} is not in the store's git repository"))?;
        Ok(c.time()
            .context(|| format!("cannot read commit {commit}"))?
            .seconds)
    }

    /// Does the repository hold this tree?
    pub fn has_tree(&self, tree: &GitOid) -> bool {
        self.repo()
            .find_object(oid(tree))
            .map(|o| o.kind == gix::object::Kind::Tree)
            .unwrap_or(false)
    }
}

/// What [`GitStore::file_at`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileAt {
    Missing,
    File(Vec<u8>),
    Symlink,
    /// A file larger than asked for, of this size.
    TooLarge(u64),
    /// A directory or a submodule.
    NotAFile,
}

/// The gix id of an id mcb holds.
pub(crate) fn oid(id: &GitOid) -> gix::ObjectId {
    gix::ObjectId::from_hex(id.as_str().as_bytes()).expect("a GitOid is 40 hex digits")
}

/// The id mcb holds for a gix id.
pub(crate) fn git_oid(id: impl Into<gix::ObjectId>) -> GitOid {
    GitOid::parse(&id.into().to_string()).expect("gix ids are 40 lowercase hex digits")
}
