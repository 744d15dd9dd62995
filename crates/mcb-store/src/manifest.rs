//! Source manifests: the sorted file list of one source package, keyed by the blake3 of
//! its canonical bytes. No mtimes, no owners: the same source always gives the same key.

use std::fs;
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::id::{GitOid, ManifestHash, ObjectHash};
use crate::{IoContext, Result, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EntryKind {
    File,
    Exec,
    /// The object holds the link target.
    Symlink,
}

/// One file of a source package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// `/`-separated, relative to the package root.
    pub path: String,
    pub kind: EntryKind,
    pub size: u64,
    /// blake3 of the content.
    pub blake3: ObjectHash,
    /// The git blob id of the content.
    pub oid: GitOid,
}

impl Entry {
    pub fn object(&self) -> &ObjectHash {
        &self.blake3
    }

    /// Objects are stored per executable bit, because hardlinks share their mode.
    pub fn executable(&self) -> bool {
        self.kind == EntryKind::Exec
    }
}

/// A source package's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The git tree id of the package root, so composition can graft it whole.
    pub tree: GitOid,
    /// Sorted by path.
    pub entries: Vec<Entry>,
}

impl Manifest {
    pub fn new(tree: GitOid, mut entries: Vec<Entry>) -> Manifest {
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Manifest { tree, entries }
    }

    fn canonical_bytes(&self) -> Vec<u8> {
        ron::to_string(self)
            .expect("a manifest is plain data and always serialises")
            .into_bytes()
    }

    pub fn hash(&self) -> ManifestHash {
        ManifestHash::of(&self.canonical_bytes())
    }

    pub fn total_size(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }

    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries
            .binary_search_by(|e| e.path.as_str().cmp(path))
            .ok()
            .map(|i| &self.entries[i])
    }
}

impl Store {
    pub(crate) fn manifest_path_of(&self, hash: &ManifestHash) -> PathBuf {
        self.manifest_path(hash)
    }

    fn manifest_path(&self, hash: &ManifestHash) -> PathBuf {
        self.root
            .join("pkgs")
            .join(hash.fan())
            .join(format!("{hash}.ron"))
    }

    pub fn has_manifest(&self, hash: &ManifestHash) -> bool {
        self.manifest_path(hash).exists()
    }

    /// Records a manifest. Every object it names must already be in the store (callers
    /// `sync` the object batch first), so no manifest ever names a missing object.
    pub fn put_manifest(&self, manifest: &Manifest) -> Result<ManifestHash> {
        let hash = manifest.hash();
        let path = self.manifest_path(&hash);
        if path.exists() {
            return Ok(hash);
        }
        for e in &manifest.entries {
            if !self.has_object(e.object(), e.executable()) {
                return Err(StoreError::MissingObject(e.object().clone()));
            }
        }
        self.write_atomic(&path, &manifest.canonical_bytes())?;
        Ok(hash)
    }

    pub fn read_manifest(&self, hash: &ManifestHash) -> Result<Manifest> {
        let path = self.manifest_path(hash);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::MissingManifest(hash.clone()));
            }
            Err(e) => return Err(e).at(&path),
        };
        let m: Manifest = ron::from_str(&text).map_err(|e| StoreError::BadManifest {
            hash: hash.clone(),
            message: e.to_string(),
        })?;
        if &m.hash() != hash {
            return Err(StoreError::BadManifest {
                hash: hash.clone(),
                message: "its content does not match its name".into(),
            });
        }
        // Read back, a manifest is input like any other: its paths must be clean before
        // anything is laid out from it.
        for e in &m.entries {
            crate::listing::check_path(e.path.as_bytes()).map_err(|err| {
                StoreError::BadManifest {
                    hash: hash.clone(),
                    message: err.to_string(),
                }
            })?;
        }
        Ok(m)
    }
}
