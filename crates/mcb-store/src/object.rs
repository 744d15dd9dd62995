//! File objects: `objects/ab/<blake3>` (0444) and `objects/ab/<blake3>-x` (0555).

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::id::ObjectHash;
use crate::{IoContext, Result, Store, StoreError};

/// A writer that hashes what passes through it.
struct HashingWriter<'a, W: Write> {
    inner: &'a mut W,
    hasher: blake3::Hasher,
}

impl<W: Write> Write for HashingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Every object's modification time. Writing to a file through a hardlinked tree changes
/// it, so an object whose mtime differs has been edited in place and must not be linked
/// into another tree before it is repaired.
pub const OBJECT_MTIME: std::time::Duration = std::time::Duration::from_secs(1_000_000_000);

impl Store {
    /// Where the object with this hash and executable bit lives.
    pub fn object_path(&self, hash: &ObjectHash, executable: bool) -> PathBuf {
        let name = if executable {
            format!("{hash}-x")
        } else {
            hash.to_string()
        };
        self.root.join("objects").join(hash.fan()).join(name)
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

    /// Adds `bytes` only when they hash to `expected` (one pass: hashed here, written as
    /// that object); `false`, and nothing written, when they do not.
    pub fn put_expected_object(
        &self,
        expected: &ObjectHash,
        bytes: &[u8],
        executable: bool,
    ) -> Result<bool> {
        if &ObjectHash::of(bytes) != expected {
            return Ok(false);
        }
        self.put_object_with_hash(expected, bytes, executable)?;
        Ok(true)
    }

    /// Adds `bytes` whose hash the caller already computed.
    pub(crate) fn put_object_with_hash(
        &self,
        hash: &ObjectHash,
        bytes: &[u8],
        executable: bool,
    ) -> Result<()> {
        let path = self.object_path(hash, executable);
        if self.object_sound(hash, executable) {
            return Ok(());
        }
        self.ensure_fan(&path)?;
        // Absent, or edited in place through a hardlinked tree: these bytes hash to the
        // name, so they replace it (a new inode; trees holding the edit keep it). A
        // concurrent writer may have put the same object first: identical bytes, so
        // replacing it is harmless.
        self.write_object_file(&path, bytes, executable)
    }

    /// Is the object there and untouched since it was stored? An object edited through a
    /// hardlink carries another mtime; one that is not there is not sound either. One
    /// `stat`: laying out a tree asks this of each of its thousands of files.
    fn object_sound(&self, hash: &ObjectHash, executable: bool) -> bool {
        use std::os::unix::fs::MetadataExt;
        match fs::symlink_metadata(self.object_path(hash, executable)) {
            Ok(m) => m.mtime() == OBJECT_MTIME.as_secs() as i64 && m.mtime_nsec() == 0,
            Err(_) => false,
        }
    }

    /// Makes the other-mode copy of an object already stored (same content, executable
    /// or not), without reading the content from its source again: a point release that
    /// only changes modes costs a copy per file. `false` when neither mode is there, or the
    /// one there was edited through a hardlink (it is not trusted as a source).
    pub fn put_object_variant(&self, hash: &ObjectHash, executable: bool) -> Result<bool> {
        let path = self.object_path(hash, executable);
        if self.object_sound(hash, executable) {
            return Ok(true);
        }
        let other = self.object_path(hash, !executable);
        if !other.exists() || self.object_tampered(hash, !executable) {
            return Ok(false);
        }
        let tmp = self.root.join("tmp");
        let mut f = tempfile::NamedTempFile::new_in(&tmp).at(&tmp)?;
        let mut src = fs::File::open(&other).at(&other)?;
        // Hashed on the way: a copy carries the object's true bytes or is not made.
        let mut hashing = HashingWriter {
            inner: f.as_file_mut(),
            hasher: blake3::Hasher::new(),
        };
        std::io::copy(&mut src, &mut hashing).at(&other)?;
        if &ObjectHash::from_hasher(&hashing.hasher) != hash {
            return Ok(false);
        }
        self.finish_object_file(f, &path, executable)?;
        Ok(true)
    }

    /// Adds an object from a stream, never holding more than a buffer of it in memory, and
    /// returns its hash and size. The content is staged in tmp/ while it is hashed; a
    /// reader that fails (a size limit, a broken archive) leaves nothing behind.
    pub fn put_object_from(
        &self,
        reader: &mut dyn Read,
        executable: bool,
    ) -> Result<(ObjectHash, u64)> {
        let tmp = self.root.join("tmp");
        let mut f = tempfile::NamedTempFile::new_in(&tmp).at(&tmp)?;
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut size = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).at(f.path()),
            };
            hasher.update(&buf[..n]);
            f.write_all(&buf[..n]).at(f.path())?;
            size += n as u64;
        }
        let hash = ObjectHash::from_hasher(&hasher);
        let path = self.object_path(&hash, executable);
        if self.object_sound(&hash, executable) {
            return Ok((hash, size));
        }
        self.ensure_fan(&path)?;
        self.finish_object_file(f, &path, executable)?;
        Ok((hash, size))
    }

    fn ensure_fan(&self, path: &Path) -> Result<()> {
        let dir = path.parent().expect("objects live in a fan-out directory");
        match fs::create_dir(dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e).at(dir),
        }
    }

    /// Writes an object's file: staged in tmp/, read-only, with the fixed mtime, renamed
    /// into place (a new inode, whatever was there before).
    fn write_object_file(&self, path: &Path, bytes: &[u8], executable: bool) -> Result<()> {
        let tmp = self.root.join("tmp");
        let mut f = tempfile::NamedTempFile::new_in(&tmp).at(&tmp)?;
        f.write_all(bytes).at(f.path())?;
        self.finish_object_file(f, path, executable)
    }

    fn finish_object_file(
        &self,
        f: tempfile::NamedTempFile,
        path: &Path,
        executable: bool,
    ) -> Result<()> {
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

    /// Reads an object back and checks that its bytes still hash to its name: for any
    /// copy of an object into another place (git, a release), where an edit made through a
    /// hardlinked tree must not travel. [`StoreError::DamagedObjects`] when it does not.
    pub fn read_object_verified(&self, hash: &ObjectHash, executable: bool) -> Result<Vec<u8>> {
        let bytes = self.read_object(hash, executable)?;
        if &ObjectHash::of(&bytes) != hash {
            return Err(StoreError::DamagedObjects {
                tampered: vec![(hash.clone(), executable)],
                missing: Vec::new(),
            });
        }
        Ok(bytes)
    }

    /// Re-hashes an object; `Ok(false)` when its content no longer matches its name.
    pub fn check_object(&self, path: &Path, hash: &ObjectHash) -> Result<bool> {
        let mut hasher = blake3::Hasher::new();
        let mut f = fs::File::open(path).at(path)?;
        io::copy(&mut f, &mut hasher).at(path)?;
        Ok(&ObjectHash::from_hasher(&hasher) == hash)
    }
}
