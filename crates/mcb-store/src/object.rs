//! File objects: `objects/ab/<blake3>` (0444) and `objects/ab/<blake3>-x` (0555).

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::{IoContext, Result, Store, StoreError};

/// Every object's modification time. Writing to a file through a hardlinked tree changes
/// it, so an object whose mtime differs has been edited in place and must not be linked
/// into another tree before it is repaired.
pub const OBJECT_MTIME: std::time::Duration = std::time::Duration::from_secs(1_000_000_000);

/// The blake3 hash of a file's content, as lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectHash(pub String);

impl ObjectHash {
    pub fn of(bytes: &[u8]) -> ObjectHash {
        ObjectHash(blake3::hash(bytes).to_hex().to_string())
    }
}

impl fmt::Display for ObjectHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Store {
    /// Where the object with this hash and executable bit lives.
    pub fn object_path(&self, hash: &ObjectHash, executable: bool) -> PathBuf {
        let h = &hash.0;
        let name = if executable {
            format!("{h}-x")
        } else {
            h.clone()
        };
        self.root.join("objects").join(&h[..2]).join(name)
    }

    pub fn has_object(&self, hash: &ObjectHash, executable: bool) -> bool {
        self.object_path(hash, executable).exists()
    }

    /// Adds `bytes` as an object unless it is there already, and returns its hash.
    /// Safe to call from many threads: each writer stages its own file and renames it.
    pub fn put_object(&self, bytes: &[u8], executable: bool) -> Result<ObjectHash> {
        let hash = ObjectHash::of(bytes);
        self.put_object_with_hash(&hash, bytes, executable)?;
        Ok(hash)
    }

    /// Adds `bytes` whose hash the caller already computed.
    pub(crate) fn put_object_with_hash(
        &self,
        hash: &ObjectHash,
        bytes: &[u8],
        executable: bool,
    ) -> Result<()> {
        let path = self.object_path(hash, executable);
        if path.exists() {
            return Ok(());
        }
        let dir = path.parent().expect("objects live in a fan-out directory");
        match fs::create_dir(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).at(dir),
        }
        // A concurrent writer may have put the same object first: identical bytes, so
        // replacing it is harmless.
        self.write_object_file(&path, bytes, executable)
    }

    /// Writes an object's file: staged in tmp/, read-only, with the fixed mtime, renamed
    /// into place (a new inode, whatever was there before).
    fn write_object_file(&self, path: &Path, bytes: &[u8], executable: bool) -> Result<()> {
        let tmp = self.root.join("tmp");
        let mut f = tempfile::NamedTempFile::new_in(&tmp).at(&tmp)?;
        f.write_all(bytes).at(f.path())?;
        f.as_file()
            .set_modified(std::time::UNIX_EPOCH + OBJECT_MTIME)
            .at(f.path())?;
        let mode = if executable { 0o555 } else { 0o444 };
        fs::set_permissions(f.path(), fs::Permissions::from_mode(mode)).at(f.path())?;
        f.persist(path).map_err(|e| e.error).at(path)?;
        Ok(())
    }

    /// Has this object been written to since it was stored (through a hardlink)?
    pub fn object_tampered(&self, hash: &ObjectHash, executable: bool) -> bool {
        use std::os::unix::fs::MetadataExt;
        match fs::symlink_metadata(self.object_path(hash, executable)) {
            Ok(m) => m.mtime() != OBJECT_MTIME.as_secs() as i64 || m.mtime_nsec() != 0,
            Err(_) => false,
        }
    }

    /// Replaces a damaged object with `bytes`, which must hash to its name. The new
    /// content gets a new inode, so trees that hold the edited file keep their edit and
    /// every new tree gets the true content.
    pub fn repair_object(&self, hash: &ObjectHash, executable: bool, bytes: &[u8]) -> Result<()> {
        if &ObjectHash::of(bytes) != hash {
            return Err(StoreError::MissingObject(hash.clone()));
        }
        self.write_object_file(&self.object_path(hash, executable), bytes, executable)
    }

    /// Reads an object back.
    pub fn read_object(&self, hash: &ObjectHash, executable: bool) -> Result<Vec<u8>> {
        let path = self.object_path(hash, executable);
        fs::read(&path).at(&path)
    }

    /// Re-hashes an object; `Ok(false)` when its content no longer matches its name.
    pub fn check_object(&self, path: &Path, hash: &ObjectHash) -> Result<bool> {
        let mut hasher = blake3::Hasher::new();
        let mut f = fs::File::open(path).at(path)?;
        io::copy(&mut f, &mut hasher).at(path)?;
        Ok(hasher.finalize().to_hex().as_str() == hash.0)
    }
}
