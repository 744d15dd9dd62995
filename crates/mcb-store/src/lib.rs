//! The content-addressed store shared by every site, and every path inside it: file objects
//! named by their blake3 hash, source manifests, materialised generations and their
//! records, roots (result links, site owners), the store lock and named locks, the cache's
//! versioned buckets, staging, and the path of the store's git repository. It also holds
//! the rule every source's listing must pass before anything of it is stored, and the ids
//! it reads back (checked as ids).
//!
//! The store is dumb and trustworthy. Everything is written under `tmp/` and renamed into
//! place; objects are read-only with a fixed mtime; a manifest is written only after the
//! objects it names. It knows nothing of Moodle, sites' contents or git plumbing: callers
//! give it bytes, paths and ids.

mod cache;
mod gc;
mod id;
mod kind;
pub mod listing;
mod lock;
mod manifest;
mod materialise;
mod object;
mod roots;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use cache::{ArchiveMemo, Cache, CacheDamage, CachedList, url_key};
pub use gc::{GcReport, VerifyReport};
pub use id::{Blake3, GitOid, IdError, ManifestHash, Md5, ObjectHash};
pub use listing::{EntryProblem, EntryRefused, ListedEntry, SourceLimits, check_listing};
pub use lock::{HELD_MARK, HeldDir, LockMode, StoreLock, abandoned_dirs, dir_held};
pub use manifest::{Entry, EntryKind, Manifest};
pub use materialise::{
    GenerationRecord, LaidOut, LinkMode, Materialised, parent_dirs, remove_tree,
};
pub use object::OBJECT_MTIME;

/// What a store's top directory holds. `README.md` is the description of this format a
/// store may carry beside its content (the repository's `store/` does): documentation,
/// never read.
const STORE_NAMES: &[&str] = &[
    "README.md",
    "VERSION",
    "config.ron",
    "objects",
    "pkgs",
    "generations",
    "roots",
    "tmp",
    "cache",
    "git",
    "lock",
    "locks",
];

/// The on-disk format version written to `$MCB_STORE/VERSION`.
pub const FORMAT_VERSION: &str = "1";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot use {} in the store", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("store {path} has format version {found}, this mcb reads version {FORMAT_VERSION}")]
    Version { path: PathBuf, found: String },
    /// There is no store where one was expected.
    #[error("there is no store at {path}{}", if *.empty_dir { " (the directory is empty)" } else { "" })]
    NoStore { path: PathBuf, empty_dir: bool },
    /// The path is something else than a store.
    #[error("{path} is not an mcb store: {why}")]
    NotAStore { path: PathBuf, why: String },
    #[error("manifest {0} is not in the store")]
    MissingManifest(ManifestHash),
    #[error("manifest {hash} is damaged: {message}")]
    BadManifest { hash: ManifestHash, message: String },
    #[error("object {0} is not in the store")]
    MissingObject(ObjectHash),
    /// Objects a tree needs were edited in place (through a hardlinked tree) or are gone.
    #[error("{} store object{} changed since stored (a file was edited through a hardlinked tree) and {} missing", .tampered.len(), if .tampered.len() == 1 { "" } else { "s" }, .missing.len())]
    DamagedObjects {
        tampered: Vec<(ObjectHash, bool)>,
        missing: Vec<(ObjectHash, bool)>,
    },
    /// The filesystem cannot clone files.
    #[error("cannot make a copy-on-write clone at {}", path.display())]
    NoReflink {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
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

/// The entries of a directory of the store in name order; none when it does not exist
/// (a store grows its directories as it needs them).
pub(crate) fn read_dir_sorted(dir: &Path) -> Result<Vec<fs::DirEntry>> {
    match fs::read_dir(dir) {
        Ok(rd) => {
            let mut v: Vec<fs::DirEntry> = rd.collect::<io::Result<_>>().at(dir)?;
            v.sort_by_key(|e| e.file_name());
            Ok(v)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).at(dir),
    }
}

/// A store rooted at one directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens the store at `root`, creating its layout when it is new. A path that is a
    /// file, or a directory with other content and no store in it, is refused rather than
    /// filled.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let root: PathBuf = root.into();
        match fs::metadata(&root) {
            Ok(m) if !m.is_dir() => {
                return Err(StoreError::NotAStore {
                    path: root,
                    why: "it is a file".into(),
                });
            }
            Ok(_) => {
                let has_version = root.join("VERSION").exists();
                // A store whose creation was interrupted holds only its own names.
                let foreign = fs::read_dir(&root)
                    .at(&root)?
                    .flatten()
                    .any(|e| !STORE_NAMES.iter().any(|n| e.file_name() == *n));
                if !has_version && foreign {
                    return Err(StoreError::NotAStore {
                        path: root,
                        why: "the directory holds other files and no VERSION; mcb makes a store only in a new or empty directory".into(),
                    });
                }
            }
            Err(_) => {}
        }
        fs::create_dir_all(&root).at(&root)?;
        let root = root.canonicalize().at(&root)?;
        let store = Store { root };
        let version = store.root.join("VERSION");
        let fresh = match fs::read_to_string(&version) {
            Ok(v) if v.trim() == FORMAT_VERSION => false,
            Ok(v) => {
                return Err(StoreError::Version {
                    path: store.root.clone(),
                    found: v.trim().to_string(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => true,
            Err(e) => return Err(e).at(&version),
        };
        // Every run makes what is missing: a store restored from a CI cache often carries
        // only its content (objects, pkgs, git, cache), not its scratch and roots.
        for dir in ["objects", "pkgs", "generations", "roots", "tmp", "cache"] {
            let d = store.root.join(dir);
            fs::create_dir_all(&d).at(&d)?;
        }
        if fresh {
            store.write_atomic(&version, format!("{FORMAT_VERSION}\n").as_bytes())?;
        }
        Ok(store)
    }

    /// Opens a store that must already exist, creating nothing: for commands that only
    /// read (`verify`, `gc --dry-run`, `info`), so a mistyped path is an error rather than a
    /// new empty store, and a read-only store works.
    pub fn open_existing(root: impl Into<PathBuf>) -> Result<Store> {
        let root: PathBuf = root.into();
        let meta = match fs::metadata(&root) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NoStore {
                    path: root,
                    empty_dir: false,
                });
            }
            Err(e) => return Err(e).at(&root),
        };
        if !meta.is_dir() {
            return Err(StoreError::NotAStore {
                path: root,
                why: "it is a file".into(),
            });
        }
        let root = root.canonicalize().at(&root)?;
        let version = root.join("VERSION");
        match fs::read_to_string(&version) {
            Ok(v) if v.trim() == FORMAT_VERSION => Ok(Store { root }),
            Ok(v) => Err(StoreError::Version {
                path: root,
                found: v.trim().to_string(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let empty = fs::read_dir(&root)
                    .at(&root)?
                    .flatten()
                    .all(|e| e.file_name() == "README.md");
                if empty {
                    Err(StoreError::NoStore {
                        path: root,
                        empty_dir: true,
                    })
                } else {
                    Err(StoreError::NotAStore {
                        path: root,
                        why: "it has no VERSION file".into(),
                    })
                }
            }
            Err(e) => Err(e).at(&version),
        }
    }

    /// The site file that owns site `name`'s branch, as recorded.
    pub fn site_owner(&self, name: &str) -> Option<PathBuf> {
        let text = fs::read_to_string(self.site_owner_path(name)).ok()?;
        let line = text.lines().next()?.trim();
        (!line.is_empty()).then(|| PathBuf::from(line))
    }

    /// Records `site_file` as the owner of site `name`'s branch.
    pub fn set_site_owner(&self, name: &str, site_file: &Path) -> Result<()> {
        let mut text = site_file.as_os_str().as_encoded_bytes().to_vec();
        text.push(b'\n');
        self.write_atomic(&self.site_owner_path(name), &text)
    }

    /// Forgets who owns site `name`.
    pub fn remove_site_owner(&self, name: &str) -> Result<()> {
        let p = self.site_owner_path(name);
        match fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).at(&p),
            _ => Ok(()),
        }
    }

    fn site_owner_path(&self, name: &str) -> PathBuf {
        // Site names are [a-z0-9_-]+ (checked by the site file); the hash keeps any other
        // text out of the path all the same.
        let safe = name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        let file = if safe && !name.is_empty() {
            format!("{name}.owner")
        } else {
            format!("{}.owner", &blake3::hash(name.as_bytes()).to_hex()[..32])
        };
        self.root.join("roots").join("sites").join(file)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The store's bare git repository (upstream objects, one branch per site).
    pub fn git_dir(&self) -> PathBuf {
        self.root.join("git")
    }

    /// The cache's directory; its buckets are named and read by [`Store::cache`].
    pub(crate) fn cache_dir(&self) -> PathBuf {
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

    /// Lets go of a staging directory without waiting for it to be removed: a process of
    /// its own removes it, and whatever that leaves (a kill, a failed start) is under
    /// `tmp/`, where `gc` removes leftovers.
    pub fn discard(&self, dir: tempfile::TempDir) {
        let path = dir.keep();
        let _ = std::process::Command::new("rm")
            .arg("-rf")
            .arg("--")
            .arg(&path)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }

    /// A fresh staging file under `tmp/`, removed on drop unless persisted.
    pub fn staging_file(&self) -> Result<tempfile::NamedTempFile> {
        let tmp = self.root.join("tmp");
        tempfile::NamedTempFile::new_in(&tmp).at(&tmp)
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
