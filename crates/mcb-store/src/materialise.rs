//! Generations: a codebase laid out as hardlinks to store objects, in a fresh directory
//! under `generations/`, made read-only once complete. A generation is never edited: a new
//! codebase is a new directory.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rayon::prelude::*;

use crate::manifest::{Entry, EntryKind, ManifestHash};
use crate::object::ObjectHash;
use crate::{IoContext, Result, Store, StoreError};

/// What [`Store::materialise`] did.
#[derive(Debug, Clone)]
pub struct Materialised {
    pub path: PathBuf,
    /// `false` when the generation already existed and was reused as it is.
    pub created: bool,
    /// Files copied instead of linked (another filesystem, or the link limit reached).
    pub copied: usize,
    /// The whole tree was copied because store and target are on different filesystems.
    pub cross_device: bool,
    pub files: usize,
}

impl Store {
    pub fn generations_dir(&self) -> PathBuf {
        self.root.join("generations")
    }

    /// The directory of the generation named `key` (a git tree id).
    pub fn generation_path(&self, key: &str) -> PathBuf {
        self.generations_dir().join(key)
    }

    /// The manifests generation `key` was made from, as recorded when it was made.
    pub fn generation_uses(&self, key: &str) -> Option<Vec<ManifestHash>> {
        let text = fs::read_to_string(self.generations_dir().join(format!("{key}.uses"))).ok()?;
        Some(
            text.lines()
                .filter(|l| !l.is_empty())
                .map(|l| ManifestHash(l.to_string()))
                .collect(),
        )
    }

    /// The generations in the store, by key.
    pub fn generation_keys(&self) -> Result<Vec<String>> {
        let dir = self.generations_dir();
        let mut out = Vec::new();
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e).at(&dir),
        };
        for e in rd {
            let e = e.at(&dir)?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') && e.file_type().at(&e.path())?.is_dir() {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Lays out `files` (codebase path → entry) as generation `key`, unless it exists, and
    /// records that it uses the manifests `uses`. `on_file` is called once per file laid
    /// out, for progress. Objects edited in place through another tree are refused
    /// ([`StoreError::Tampered`]) so the edit never reaches a new tree.
    pub fn materialise(
        &self,
        key: &str,
        files: &[(String, &Entry)],
        uses: &[ManifestHash],
        on_file: &(dyn Fn() + Sync),
    ) -> Result<Materialised> {
        let final_path = self.generation_path(key);
        let uses_path = self.generations_dir().join(format!("{key}.uses"));
        let uses_text: String = uses.iter().map(|h| format!("{h}\n")).collect();
        if final_path.is_dir() {
            if !uses_path.exists() {
                self.write_beside(&uses_path, uses_text.as_bytes())?;
            }
            return Ok(Materialised {
                path: final_path,
                created: false,
                copied: 0,
                cross_device: false,
                files: files.len(),
            });
        }
        // Staged beside its final place, so the rename never crosses a filesystem even
        // when `generations/` is mounted elsewhere.
        let gens = self.generations_dir();
        fs::create_dir_all(&gens).at(&gens)?;
        let staging = tempfile::Builder::new()
            .prefix(".staging-")
            .tempdir_in(&gens)
            .at(&gens)?;
        let top = staging.path().to_path_buf();

        // Directories once, parents first (a parent sorts before its children).
        let mut dirs = BTreeSet::new();
        for (path, _) in files {
            let mut p = path.as_str();
            while let Some(i) = p.rfind('/') {
                p = &p[..i];
                if !dirs.insert(p) {
                    break;
                }
            }
        }
        for d in &dirs {
            let full = top.join(d);
            fs::create_dir(&full).at(&full)?;
        }

        let mut tampered: Vec<(ObjectHash, bool)> = files
            .par_iter()
            .filter(|(_, e)| e.kind != EntryKind::Symlink && e.size > 0)
            .filter(|(_, e)| self.object_tampered(&e.object(), e.executable()))
            .map(|(_, e)| (e.object(), e.executable()))
            .collect();
        if !tampered.is_empty() {
            tampered.sort();
            tampered.dedup();
            return Err(StoreError::Tampered(tampered));
        }
        // Recorded before the generation appears, so no generation lacks its record.
        self.write_beside(&uses_path, uses_text.as_bytes())?;

        let objects = self.root.join("objects");
        let cross_device = device(&objects)? != device(&top)?;
        let copied = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        files
            .par_iter()
            .try_for_each(|(path, entry)| -> Result<()> {
                if failed.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let dest = top.join(path);
                let r = self.lay_out(entry, &dest, cross_device, &copied);
                if r.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                on_file();
                r
            })?;

        let kept = staging.keep();
        match fs::rename(&kept, &final_path) {
            Ok(()) => {}
            // Another run made the same generation meanwhile: same tree, same bytes.
            Err(_) if final_path.is_dir() => {
                remove_tree(&kept)?;
            }
            Err(e) => return Err(e).at(&final_path),
        }
        for d in dirs.iter().rev() {
            let full = final_path.join(d);
            fs::set_permissions(&full, fs::Permissions::from_mode(0o555)).at(&full)?;
        }
        fs::set_permissions(&final_path, fs::Permissions::from_mode(0o555)).at(&final_path)?;
        Ok(Materialised {
            path: final_path,
            created: true,
            copied: copied.into_inner(),
            cross_device,
            files: files.len(),
        })
    }

    fn lay_out(
        &self,
        entry: &Entry,
        dest: &Path,
        cross_device: bool,
        copied: &AtomicUsize,
    ) -> Result<()> {
        let exec = entry.executable();
        let object = self.object_path(&entry.object(), exec);
        match entry.kind {
            EntryKind::Symlink => {
                let target = fs::read(&object).at(&object)?;
                let target = String::from_utf8_lossy(&target).into_owned();
                std::os::unix::fs::symlink(&target, dest).at(dest)?;
            }
            EntryKind::File | EntryKind::Exec => {
                // Never hardlink an empty file: every empty file in every tree would share
                // one inode and hit the link limit for nothing.
                if entry.size == 0 || cross_device {
                    copy_file(&object, dest, exec, entry.size == 0)?;
                    if entry.size != 0 {
                        copied.fetch_add(1, Ordering::Relaxed);
                    }
                    return Ok(());
                }
                match fs::hard_link(&object, dest) {
                    Ok(()) => {}
                    Err(e)
                        if e.raw_os_error() == Some(libc::EMLINK)
                            || e.raw_os_error() == Some(libc::EXDEV) =>
                    {
                        copy_file(&object, dest, exec, false)?;
                        copied.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => return Err(e).at(dest),
                }
            }
        }
        Ok(())
    }

    /// Writes a file in `generations/` through a staging file in the same directory, so
    /// the rename stays on one filesystem even when `generations/` is mounted elsewhere.
    fn write_beside(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let dir = path
            .parent()
            .expect("generation records live in generations/");
        fs::create_dir_all(dir).at(dir)?;
        let mut f = tempfile::Builder::new()
            .prefix(".staging-")
            .tempfile_in(dir)
            .at(dir)?;
        io::Write::write_all(&mut f, bytes).at(f.path())?;
        f.persist(path).map_err(|e| e.error).at(path)?;
        Ok(())
    }

    /// Deletes a generation directory (made read-only by [`Store::materialise`]).
    pub fn remove_generation(&self, key: &str) -> Result<()> {
        let path = self.generation_path(key);
        if path.exists() {
            remove_tree(&path)?;
        }
        Ok(())
    }
}

fn copy_file(from: &Path, to: &Path, exec: bool, empty: bool) -> Result<()> {
    if empty {
        fs::File::create(to).at(to)?;
    } else {
        fs::copy(from, to).at(to)?;
    }
    let mode = if exec { 0o555 } else { 0o444 };
    fs::set_permissions(to, fs::Permissions::from_mode(mode)).at(to)
}

fn device(path: &Path) -> Result<u64> {
    Ok(fs::metadata(path).at(path)?.dev())
}

/// Removes a tree whose directories may be read-only.
pub(crate) fn remove_tree(path: &Path) -> Result<()> {
    for entry in walkdir::WalkDir::new(path).into_iter().flatten() {
        if entry.file_type().is_dir() {
            let _ = fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o755));
        }
    }
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).at(path),
    }
}
