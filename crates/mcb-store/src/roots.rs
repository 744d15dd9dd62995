//! Roots: what `gc` must keep. A `result` link beside a site file is registered here when
//! it is made, as a symlink `roots/results/<hash of the link's path>` pointing at the link.
//! A root whose link is gone, or no longer points into the store, is dead.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::{IoContext, Result, Store};

impl Store {
    fn results_roots_dir(&self) -> PathBuf {
        self.root.join("roots").join("results")
    }

    /// Registers `link` (an absolute path to a symlink into this store) as a root.
    pub fn add_result_root(&self, link: &Path) -> Result<()> {
        let dir = self.results_roots_dir();
        fs::create_dir_all(&dir).at(&dir)?;
        let name = blake3::hash(link.as_os_str().as_encoded_bytes()).to_hex()[..32].to_string();
        let root = dir.join(name);
        if fs::read_link(&root).ok().as_deref() == Some(link) {
            return Ok(());
        }
        let staging = self.root.join("tmp").join(format!(
            "root-{}-{}",
            std::process::id(),
            blake3::hash(link.as_os_str().as_encoded_bytes()).to_hex()
        ));
        let _ = fs::remove_file(&staging);
        std::os::unix::fs::symlink(link, &staging).at(&staging)?;
        fs::rename(&staging, &root).at(&root)
    }

    /// Drops the root of `link`, whatever it points at.
    pub fn remove_result_root(&self, link: &Path) -> Result<()> {
        let name = blake3::hash(link.as_os_str().as_encoded_bytes()).to_hex()[..32].to_string();
        let root = self.results_roots_dir().join(name);
        match fs::remove_file(&root) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e).at(&root),
            _ => Ok(()),
        }
    }

    /// Drops the roots of `result` links that are gone or no longer point into this
    /// store; returns the links whose roots were (or, dry, would be) dropped.
    pub fn prune_result_roots(&self, dry_run: bool) -> Result<Vec<PathBuf>> {
        let dir = self.results_roots_dir();
        let live: Vec<PathBuf> = self
            .live_result_targets()?
            .into_iter()
            .map(|(l, _)| l)
            .collect();
        let mut dead = Vec::new();
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(dead),
            Err(e) => return Err(e).at(&dir),
        };
        for ent in rd {
            let ent = ent.at(&dir)?;
            let link = fs::read_link(ent.path()).unwrap_or_default();
            if !live.contains(&link) {
                if !dry_run {
                    let _ = fs::remove_file(ent.path());
                }
                dead.push(link);
            }
        }
        Ok(dead)
    }

    /// The generation directories that live `result` links point at.
    pub fn live_result_targets(&self) -> Result<Vec<(PathBuf, PathBuf)>> {
        let dir = self.results_roots_dir();
        let mut out = Vec::new();
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e).at(&dir),
        };
        for ent in rd {
            let ent = ent.at(&dir)?;
            let Ok(link) = fs::read_link(ent.path()) else {
                continue;
            };
            let Ok(target) = fs::read_link(&link) else {
                continue;
            };
            let target = if target.is_absolute() {
                target
            } else {
                link.parent().unwrap_or(Path::new("/")).join(target)
            };
            if target.starts_with(self.generations_dir()) {
                out.push((link, target));
            }
        }
        Ok(out)
    }
}
