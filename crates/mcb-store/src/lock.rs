//! The store lock: writers (realise, fetch) share it; `gc` takes it exclusively so that it
//! computes reachability while nobody adds anything.

use std::fs::{self, File, TryLockError};
use std::path::PathBuf;

use crate::{IoContext, Result, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    Shared,
    Exclusive,
}

/// Held for as long as it lives; dropped, the lock is released.
#[derive(Debug)]
pub struct StoreLock {
    _file: Option<File>,
    pub mode: LockMode,
}

impl Store {
    fn lock_path(&self) -> PathBuf {
        self.root.join("lock")
    }

    /// Takes the lock. When someone holds it in a conflicting mode, `on_wait` is called
    /// once before blocking, so the caller can say why it waits.
    pub fn lock(&self, mode: LockMode, on_wait: impl FnOnce()) -> Result<StoreLock> {
        self.lock_at(self.lock_path(), mode, on_wait)
    }

    /// The lock taken exclusively when nobody holds it; `None` when somebody does (work
    /// that may wait for a later run, such as retiring generations, is then left).
    pub fn try_lock_exclusive(&self) -> Result<Option<StoreLock>> {
        let path = self.lock_path();
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .at(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(StoreLock {
                _file: Some(file),
                mode: LockMode::Exclusive,
            })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(e).at(&path),
        }
    }

    /// A lock of the caller's own, by name (`site-univ-prod`, `fetch-<key>`), for work that
    /// must not run twice at once.
    pub fn lock_named(
        &self,
        name: &str,
        mode: LockMode,
        on_wait: impl FnOnce(),
    ) -> Result<StoreLock> {
        let dir = self.root.join("locks");
        fs::create_dir_all(&dir).at(&dir)?;
        self.lock_at(dir.join(format!("{name}.lock")), mode, on_wait)
    }

    fn lock_at(&self, path: PathBuf, mode: LockMode, on_wait: impl FnOnce()) -> Result<StoreLock> {
        let opened = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path);
        let file = match opened {
            Ok(f) => f,
            // A read-only store: an existing lock file still locks; with none, nobody can
            // write to this store, so there is nobody to wait for.
            Err(e) if mode == LockMode::Shared && is_read_only(&e) => match fs::File::open(&path) {
                Ok(f) => f,
                Err(_) => {
                    return Ok(StoreLock { _file: None, mode });
                }
            },
            Err(e) => return Err(e).at(&path),
        };
        let attempt = match mode {
            LockMode::Shared => file.try_lock_shared(),
            LockMode::Exclusive => file.try_lock(),
        };
        match attempt {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                on_wait();
                match mode {
                    LockMode::Shared => file.lock_shared(),
                    LockMode::Exclusive => file.lock(),
                }
                .at(&path)?;
            }
            Err(TryLockError::Error(e)) => return Err(e).at(&path),
        }
        Ok(StoreLock {
            _file: Some(file),
            mode,
        })
    }
}

fn is_read_only(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::PermissionDenied
        || e.raw_os_error() == Some(libc::EROFS)
        || e.kind() == std::io::ErrorKind::NotFound
}

/// The file that marks a directory as in use: locked for as long as the process that made
/// the directory lives.
pub const HELD_MARK: &str = "held.lock";

/// A directory that a running process holds: `gc` (for the store's staging) and its owner's
/// next run leave it alone while the process lives, whatever its age, and may remove it
/// once the process is gone. It is not removed when dropped: its owner decides (`--keep`).
#[derive(Debug)]
pub struct HeldDir {
    pub path: PathBuf,
    _mark: File,
}

impl HeldDir {
    /// A new directory `<parent>/<prefix>…`, held by this process.
    pub fn create_in(parent: &std::path::Path, prefix: &str) -> std::io::Result<HeldDir> {
        let path = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(parent)?
            .keep();
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path.join(HELD_MARK))?;
        file.lock()?;
        Ok(HeldDir { path, _mark: file })
    }
}

/// Is the directory `dir` held by a live process?
pub fn dir_held(dir: &std::path::Path) -> bool {
    let Ok(f) = fs::OpenOptions::new().write(true).open(dir.join(HELD_MARK)) else {
        return false;
    };
    match f.try_lock() {
        Ok(()) => false,
        Err(TryLockError::WouldBlock) => true,
        Err(TryLockError::Error(_)) => false,
    }
}

/// The directories in `parent` whose name starts with `prefix` and that no live process
/// holds: what killed runs of their owner left.
pub fn abandoned_dirs(parent: &std::path::Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .filter(|p| !dir_held(p))
        .collect();
    out.sort();
    out
}

impl Store {
    /// A new staging directory `tmp/<prefix>…`, held by this process (see [`HeldDir`]).
    pub fn held_staging(&self, prefix: &str) -> Result<HeldDir> {
        let tmp = self.root.join("tmp");
        HeldDir::create_in(&tmp, prefix).at(&tmp)
    }

    /// The staging directories `tmp/<prefix>…` that no live process holds.
    pub fn abandoned_staging(&self, prefix: &str) -> Vec<PathBuf> {
        abandoned_dirs(&self.root.join("tmp"), prefix)
    }
}
