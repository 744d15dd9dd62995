//! The content-addressed store shared by every site: file objects named by their blake3
//! hash, source manifests, materialised generations, roots, the store lock, and the path of
//! the store's git repository.
//!
//! The store is dumb and trustworthy. Everything is written under `tmp/` and renamed into
//! place; objects are read-only; a manifest is written only after the objects it names.
//! It knows nothing of Moodle, sites or git plumbing: callers give it bytes and paths.

mod gc;
mod lock;
mod manifest;
mod materialise;
mod object;
mod roots;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use gc::{GcReport, VerifyReport};
pub use lock::{LockMode, StoreLock};
pub use manifest::{Entry, EntryKind, Manifest, ManifestHash};
pub use materialise::Materialised;
pub use object::{OBJECT_MTIME, ObjectHash};

/// The on-disk format version written to `$MCB_STORE/VERSION`.
pub const FORMAT_VERSION: &str = "1";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("store {path} has format version {found}, this mcb reads version {FORMAT_VERSION}")]
    Version { path: PathBuf, found: String },
    #[error("manifest {0} is not in the store")]
    MissingManifest(ManifestHash),
    #[error("manifest {hash} is damaged: {message}")]
    BadManifest { hash: ManifestHash, message: String },
    #[error("object {0} is not in the store")]
    MissingObject(ObjectHash),
    #[error("{} store object{} changed since stored (a file was edited through a hardlinked tree)", .0.len(), if .0.len() == 1 { "" } else { "s" })]
    Tampered(Vec<(ObjectHash, bool)>),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub(crate) trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// A store rooted at one directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens the store at `root`, creating its layout when it is new.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let root: PathBuf = root.into();
        fs::create_dir_all(&root).at(&root)?;
        let root = root.canonicalize().at(&root)?;
        let store = Store { root };
        let version = store.root.join("VERSION");
        match fs::read_to_string(&version) {
            Ok(v) if v.trim() == FORMAT_VERSION => {}
            Ok(v) => {
                return Err(StoreError::Version {
                    path: store.root.clone(),
                    found: v.trim().to_string(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                for dir in ["objects", "pkgs", "generations", "roots", "tmp", "cache"] {
                    let d = store.root.join(dir);
                    fs::create_dir_all(&d).at(&d)?;
                }
                store.write_atomic(&version, format!("{FORMAT_VERSION}\n").as_bytes())?;
            }
            Err(e) => return Err(e).at(&version),
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The store's bare git repository (upstream objects, one branch per site).
    pub fn git_dir(&self) -> PathBuf {
        self.root.join("git")
    }

    /// A directory for cached metadata that may be refetched (directory lists, tag lists).
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }

    /// A fresh staging directory under `tmp/`, on the store's filesystem, removed on drop.
    pub fn staging(&self, prefix: &str) -> Result<tempfile::TempDir> {
        let tmp = self.root.join("tmp");
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(&tmp)
            .at(&tmp)
    }

    /// Writes `bytes` to `path` through a staging file and a rename.
    pub fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let tmp = self.root.join("tmp");
        let mut f = tempfile::NamedTempFile::new_in(&tmp).at(&tmp)?;
        io::Write::write_all(&mut f, bytes).at(f.path())?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).at(parent)?;
        }
        f.persist(path).map_err(|e| e.error).at(path)?;
        Ok(())
    }

    /// Flushes everything written so far to disk: one `syncfs` per batch rather than an
    /// fsync per file.
    pub fn sync(&self) -> Result<()> {
        let f = fs::File::open(&self.root).at(&self.root)?;
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: syncfs takes any open descriptor on the filesystem; `f` lives past the call.
            let rc = unsafe { libc::syncfs(f.as_raw_fd()) };
            if rc != 0 {
                return Err(io::Error::last_os_error()).at(&self.root);
            }
        }
        #[cfg(not(target_os = "linux"))]
        f.sync_all().at(&self.root)?;
        Ok(())
    }
}
