//! Generations: a codebase laid out in a fresh directory under `generations/` (named by
//! its git tree id), made read-only once complete, every file and directory carrying the
//! store's fixed mtime. A generation is never edited: a new codebase is a new directory.
//!
//! Files are hardlinks to store objects by default. A hardlink shares its inode, so a file
//! edited in place through any tree is edited everywhere it is linked: the fixed mtime
//! tells such an edit, so a generation is checked before it is reused and rebuilt (swapped
//! in atomically) when it was touched. With reflinks (copy-on-write clones, on btrfs and
//! XFS) or plain copies, every generation holds files of its own.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rayon::prelude::*;

use crate::id::{GitOid, ManifestHash, ObjectHash};
use crate::manifest::{Entry, EntryKind};
use crate::object::OBJECT_MTIME;
use crate::{IoContext, Result, Store, StoreError};

/// How a generation's files relate to the store's objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkMode {
    /// Hardlinks: no extra space; an edit through one tree reaches every tree holding the
    /// file (mcb detects and repairs it).
    Hardlink,
    /// Copy-on-write clones (btrfs, XFS): no extra space until a file is changed, and an
    /// edit stays in the tree it was made in.
    Reflink,
    /// Plain copies: space for every file of every generation.
    Copy,
    /// Copy-on-write clones where the filesystem makes them, plain copies elsewhere: files
    /// of their own at the least cost the filesystem allows.
    Clone,
}

impl LinkMode {
    pub fn name(self) -> &'static str {
        match self {
            LinkMode::Hardlink => "hardlink",
            LinkMode::Reflink => "reflink",
            LinkMode::Copy => "copy",
            LinkMode::Clone => "clone",
        }
    }

    pub fn parse(text: &str) -> Option<LinkMode> {
        match text {
            "hardlink" => Some(LinkMode::Hardlink),
            "reflink" => Some(LinkMode::Reflink),
            "copy" => Some(LinkMode::Copy),
            "clone" => Some(LinkMode::Clone),
            _ => None,
        }
    }

    /// Do files laid out this way share their inode with the store's objects?
    pub fn shares_objects(self) -> bool {
        self == LinkMode::Hardlink
    }
}

/// What [`Store::lay_out`] did.
#[derive(Debug, Clone, Copy, Default)]
pub struct LaidOut {
    /// Files copied rather than linked or cloned (another filesystem, the link limit, a
    /// filesystem that does not clone).
    pub copied: usize,
    /// The destination is on another filesystem than the store.
    pub cross_device: bool,
}

/// What [`Store::materialise`] did.
#[derive(Debug, Clone)]
pub struct Materialised {
    pub path: PathBuf,
    /// `false` when the generation already existed, sound, and was reused as it is.
    pub created: bool,
    /// Paths of an existing generation found changed (an edit through a `result` link,
    /// say); the generation was rebuilt and swapped in.
    pub repaired: Vec<String>,
    /// Files copied instead of linked (another filesystem, or the link limit reached).
    pub copied: usize,
    /// The whole tree was copied because store and target are on different filesystems.
    pub cross_device: bool,
    pub files: usize,
    pub mode: LinkMode,
}

/// What a generation's record says: the manifests it was made from (`None`: unknown, so
/// `gc` keeps everything for it) and how its files are laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerationRecord {
    pub uses: Option<Vec<ManifestHash>>,
    pub mode: LinkMode,
}

const UNKNOWN_USE: &str = "uses unknown";

impl GenerationRecord {
    fn to_text(&self) -> String {
        let mut s = format!("link {}\n", self.mode.name());
        match &self.uses {
            Some(uses) => {
                for h in uses {
                    s.push_str(h.as_str());
                    s.push('\n');
                }
            }
            None => {
                s.push_str(UNKNOWN_USE);
                s.push('\n');
            }
        }
        s
    }

    /// `None` for a damaged record.
    fn parse(text: &str) -> Option<GenerationRecord> {
        let mut mode = LinkMode::Hardlink;
        let mut uses = Some(Vec::new());
        for line in text.lines().filter(|l| !l.is_empty()) {
            if line == UNKNOWN_USE {
                uses = None;
            } else if let Some(m) = line.strip_prefix("link ") {
                mode = LinkMode::parse(m)?;
            } else if let Some(u) = &mut uses {
                u.push(ManifestHash::parse(line).ok()?);
            }
        }
        Some(GenerationRecord { uses, mode })
    }
}

fn fixed_mtime(m: &fs::Metadata) -> bool {
    m.mtime() == OBJECT_MTIME.as_secs() as i64 && m.mtime_nsec() == 0
}

impl Store {
    pub fn generations_dir(&self) -> PathBuf {
        self.root.join("generations")
    }

    /// The directory of the generation named `key` (a git tree id).
    pub fn generation_path(&self, key: &GitOid) -> PathBuf {
        self.generations_dir().join(key.as_str())
    }

    fn record_path(&self, key: &GitOid) -> PathBuf {
        self.generations_dir().join(format!("{key}.uses"))
    }

    /// What generation `key` was made from, as recorded when it was made.
    pub fn generation_record(&self, key: &GitOid) -> Option<GenerationRecord> {
        GenerationRecord::parse(&fs::read_to_string(self.record_path(key)).ok()?)
    }

    /// The manifests generation `key` was made from; `None` when unknown.
    pub fn generation_uses(&self, key: &GitOid) -> Option<Vec<ManifestHash>> {
        self.generation_record(key).and_then(|r| r.uses)
    }

    /// Records (again) what generation `key` uses, keeping its link mode.
    pub fn set_generation_uses(&self, key: &GitOid, uses: &[ManifestHash]) -> Result<()> {
        let mode = self
            .generation_record(key)
            .map(|r| r.mode)
            .unwrap_or(LinkMode::Hardlink);
        let record = GenerationRecord {
            uses: Some(uses.to_vec()),
            mode,
        };
        self.write_beside(&self.record_path(key), record.to_text().as_bytes())
    }

    /// The generations in the store, by key.
    pub fn generation_keys(&self) -> Result<Vec<GitOid>> {
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
            if let Ok(key) = GitOid::parse(&name)
                && e.file_type().at(&e.path())?.is_dir()
            {
                out.push(key);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Checks an existing generation without reading its files: every file and directory
    /// must still carry the fixed mtime and a read-only mode. An edit in place changes a
    /// file's mtime; adding, removing or renaming an entry changes its directory's.
    /// Returns the changed paths (empty: sound), or `None` when there is no generation.
    pub fn check_generation(&self, key: &GitOid) -> Result<Option<Vec<String>>> {
        let root = self.generation_path(key);
        match fs::symlink_metadata(&root) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Ok(Some(vec![String::new()])),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).at(&root),
        }
        let mut damaged = Vec::new();
        let mut level = vec![String::new()];
        while !level.is_empty() {
            let results: Vec<Result<(Vec<String>, Vec<String>)>> =
                level.par_iter().map(|rel| check_dir(&root, rel)).collect();
            let mut next = Vec::new();
            for r in results {
                let (dirs, bad) = r?;
                next.extend(dirs);
                damaged.extend(bad);
            }
            level = next;
        }
        damaged.sort();
        Ok(Some(damaged))
    }

    /// Lays out `files` (codebase path → entry) as generation `key` and records that it
    /// uses the manifests `uses` (`None`: unknown, a rebuild from git alone). An existing generation is checked first
    /// ([`Store::check_generation`]) and reused when sound and of the same link mode, else
    /// rebuilt and swapped in. Objects edited in place or missing are refused
    /// ([`StoreError::DamagedObjects`]) so the caller can restore them first: a damaged
    /// object never reaches a new tree. `on_file` is called once per file laid out.
    pub fn materialise(
        &self,
        key: &GitOid,
        files: &[(String, &Entry)],
        uses: Option<&[ManifestHash]>,
        mode: LinkMode,
        on_file: &(dyn Fn() + Sync),
    ) -> Result<Materialised> {
        let final_path = self.generation_path(key);
        let record = GenerationRecord {
            uses: uses.map(<[ManifestHash]>::to_vec),
            mode,
        };
        let existing = self.check_generation(key)?;
        if let Some(damaged) = &existing
            && damaged.is_empty()
            && self.generation_record(key).is_none_or(|r| r.mode == mode)
        {
            if self.generation_record(key).is_none() {
                self.write_beside(&self.record_path(key), record.to_text().as_bytes())?;
            }
            return Ok(Materialised {
                path: final_path,
                created: false,
                repaired: Vec::new(),
                copied: 0,
                cross_device: false,
                files: files.len(),
                mode,
            });
        }
        self.check_objects(files)?;

        // Staged beside its final place, so the rename never crosses a filesystem even
        // when `generations/` is mounted elsewhere.
        let gens = self.generations_dir();
        fs::create_dir_all(&gens).at(&gens)?;
        let staging = tempfile::Builder::new()
            .prefix(".staging-")
            .tempdir_in(&gens)
            .at(&gens)?;
        let top = staging.path().to_path_buf();

        let laid = self.lay_out(files, &top, mode, on_file)?;
        // Recorded before the generation appears, so no generation lacks its record.
        self.write_beside(&self.record_path(key), record.to_text().as_bytes())?;

        let kept = staging.keep();
        let repaired = match existing {
            None => {
                match fs::rename(&kept, &final_path) {
                    Ok(()) => {}
                    // Another run made the same generation meanwhile: same tree, same bytes.
                    Err(_) if final_path.is_dir() => remove_tree(&kept)?,
                    Err(e) => return Err(e).at(&final_path),
                }
                Vec::new()
            }
            Some(damaged) => {
                // Swap the sound tree in where every `result` link already points, then
                // delete the damaged one.
                exchange(&kept, &final_path)?;
                remove_tree(&kept)?;
                damaged
            }
        };
        Ok(Materialised {
            path: final_path,
            created: true,
            repaired,
            copied: laid.copied,
            cross_device: laid.cross_device,
            files: files.len(),
            mode,
        })
    }

    /// Lays out `files` (path → entry) under the existing, empty directory `top`: each
    /// directory made once, each file linked, cloned or copied from its object as `mode`
    /// says (a copy is checked against the object's name as it is made), then everything
    /// sealed: read-only, with the fixed mtime. Objects must have passed
    /// [`Store::check_objects`]. The one way a tree of the store is laid out, in
    /// `generations/` or anywhere else (a deployed release).
    pub fn lay_out(
        &self,
        files: &[(String, &Entry)],
        top: &Path,
        mode: LinkMode,
        on_file: &(dyn Fn() + Sync),
    ) -> Result<LaidOut> {
        let dirs = parent_dirs(files.iter().map(|(p, _)| p.as_str()));
        // By depth, each level in parallel: a parent is always made before its children.
        let levels = dirs_by_depth(&dirs);
        for level in &levels {
            level.par_iter().try_for_each(|d| {
                let full = top.join(d);
                fs::create_dir(&full).at(&full)
            })?;
        }
        let objects = self.root.join("objects");
        let cross_device = device(&objects)? != device(top)?;
        let copied = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        files
            .par_iter()
            .try_for_each(|(path, entry)| -> Result<()> {
                if failed.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let dest = top.join(path);
                let r = self.lay_out_file(entry, &dest, mode, cross_device, &copied);
                if r.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                on_file();
                r
            })?;
        // Read-only and the fixed mtime last: creating entries changes a directory's mtime.
        for level in levels.iter().rev() {
            level.par_iter().try_for_each(|d| seal_dir(&top.join(d)))?;
        }
        seal_dir(top)?;
        Ok(LaidOut {
            copied: copied.into_inner(),
            cross_device,
        })
    }

    /// Refuses to lay out objects that were edited in place or are missing.
    pub fn check_objects(&self, files: &[(String, &Entry)]) -> Result<()> {
        let problems: Vec<(ObjectHash, bool, bool)> = files
            .par_iter()
            .filter(|(_, e)| e.kind == EntryKind::Symlink || e.size > 0)
            .filter_map(|(_, e)| {
                let exec = e.executable();
                match fs::symlink_metadata(self.object_path(e.object(), exec)) {
                    Err(_) => Some((e.object().clone(), exec, true)),
                    Ok(m) if e.kind != EntryKind::Symlink && !fixed_mtime(&m) => {
                        Some((e.object().clone(), exec, false))
                    }
                    Ok(_) => None,
                }
            })
            .collect();
        if problems.is_empty() {
            return Ok(());
        }
        let mut tampered = BTreeSet::new();
        let mut missing = BTreeSet::new();
        for (h, x, gone) in problems {
            if gone {
                missing.insert((h, x));
            } else {
                tampered.insert((h, x));
            }
        }
        Err(StoreError::DamagedObjects {
            tampered: tampered.into_iter().collect(),
            missing: missing.into_iter().collect(),
        })
    }

    fn lay_out_file(
        &self,
        entry: &Entry,
        dest: &Path,
        mode: LinkMode,
        cross_device: bool,
        copied: &AtomicUsize,
    ) -> Result<()> {
        let exec = entry.executable();
        let object = self.object_path(entry.object(), exec);
        match entry.kind {
            EntryKind::Symlink => {
                let target = fs::read(&object).at(&object)?;
                let target = String::from_utf8_lossy(&target).into_owned();
                std::os::unix::fs::symlink(&target, dest).at(dest)?;
            }
            EntryKind::File | EntryKind::Exec => {
                // Never hardlink an empty file: every empty file in every tree would share
                // one inode and hit the link limit for nothing.
                if entry.size == 0 {
                    return write_file(None, dest, exec);
                }
                match mode {
                    LinkMode::Copy => return copy_checked(&object, entry, dest),
                    LinkMode::Reflink => return reflink(&object, dest, exec),
                    LinkMode::Clone => {
                        return match reflink(&object, dest, exec) {
                            Ok(()) => Ok(()),
                            Err(StoreError::NoReflink { .. }) => {
                                let _ = fs::remove_file(dest);
                                copied.fetch_add(1, Ordering::Relaxed);
                                copy_checked(&object, entry, dest)
                            }
                            Err(e) => Err(e),
                        };
                    }
                    LinkMode::Hardlink if cross_device => {
                        copied.fetch_add(1, Ordering::Relaxed);
                        return write_file(Some(&object), dest, exec);
                    }
                    LinkMode::Hardlink => {}
                }
                match fs::hard_link(&object, dest) {
                    Ok(()) => {}
                    Err(e)
                        if e.raw_os_error() == Some(libc::EMLINK)
                            || e.raw_os_error() == Some(libc::EXDEV) =>
                    {
                        write_file(Some(&object), dest, exec)?;
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

    /// Deletes a generation directory (made read-only by [`Store::materialise`]). It is
    /// first renamed to a staging name, so a run killed while deleting leaves no partial
    /// generation, only a leftover `gc` removes.
    pub fn remove_generation(&self, key: &GitOid) -> Result<()> {
        let path = self.generation_path(key);
        if !path.exists() {
            return Ok(());
        }
        let gone = self
            .generations_dir()
            .join(format!(".staging-removed-{key}-{}", std::process::id()));
        fs::rename(&path, &gone).at(&path)?;
        remove_tree(&gone)
    }
}

/// The directories that hold `paths` (`/`-separated, relative), each once; in sorted order
/// a parent comes before its children, so making them in order needs no `create_dir_all`.
pub fn parent_dirs<'a>(paths: impl Iterator<Item = &'a str>) -> BTreeSet<&'a str> {
    let mut dirs = BTreeSet::new();
    for path in paths {
        let mut p = path;
        while let Some(i) = p.rfind('/') {
            p = &p[..i];
            if !dirs.insert(p) {
                break;
            }
        }
    }
    dirs
}

/// `dirs` grouped by depth, shallowest first.
fn dirs_by_depth<'a>(dirs: &BTreeSet<&'a str>) -> Vec<Vec<&'a str>> {
    let mut levels: Vec<Vec<&str>> = Vec::new();
    for d in dirs {
        let depth = d.matches('/').count();
        if levels.len() <= depth {
            levels.resize_with(depth + 1, Vec::new);
        }
        levels[depth].push(d);
    }
    levels
}

/// Checks one directory of a generation: its own mtime, and each entry's. Returns its
/// subdirectories and the changed paths.
fn check_dir(root: &Path, rel: &str) -> Result<(Vec<String>, Vec<String>)> {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let join = |name: &str| {
        if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        }
    };
    let mut subdirs = Vec::new();
    let mut bad = Vec::new();
    let meta = fs::symlink_metadata(&dir).at(&dir)?;
    if !fixed_mtime(&meta) {
        bad.push(format!("{}/", if rel.is_empty() { "." } else { rel }));
    }
    for e in fs::read_dir(&dir).at(&dir)? {
        let e = e.at(&dir)?;
        let name = e.file_name().to_string_lossy().into_owned();
        // The type from the directory listing; files are stat'ed relative to the open
        // directory (`DirEntry::metadata`, never following a link), not by a path walked
        // from the root again.
        let t = e.file_type().at(&e.path())?;
        if t.is_dir() {
            subdirs.push(join(&name));
        } else if t.is_file() {
            let m = e.metadata().at(&e.path())?;
            let perm = m.permissions().mode() & 0o7777;
            if !fixed_mtime(&m) || (perm != 0o444 && perm != 0o555) {
                bad.push(join(&name));
            }
        } else if !t.is_symlink() {
            bad.push(join(&name));
        }
    }
    Ok((subdirs, bad))
}

/// Makes a finished directory read-only with the fixed mtime.
fn seal_dir(path: &Path) -> Result<()> {
    let f = fs::File::open(path).at(path)?;
    f.set_modified(std::time::UNIX_EPOCH + OBJECT_MTIME)
        .at(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o555)).at(path)
}

/// A file of its own: a copy of `from` (or empty), read-only, with the fixed mtime.
fn write_file(from: Option<&Path>, to: &Path, exec: bool) -> Result<()> {
    match from {
        Some(from) => {
            fs::copy(from, to).at(to)?;
        }
        None => {
            fs::File::create(to).at(to)?;
        }
    }
    finish_file(to, exec)
}

fn finish_file(to: &Path, exec: bool) -> Result<()> {
    // The owner may set times through a read-only descriptor.
    let f = fs::File::open(to).at(to)?;
    f.set_modified(std::time::UNIX_EPOCH + OBJECT_MTIME)
        .at(to)?;
    let mode = if exec { 0o555 } else { 0o444 };
    fs::set_permissions(to, fs::Permissions::from_mode(mode)).at(to)
}

/// A copy of object `from` made while hashing it: the copy is the object's true content,
/// or no copy is made ([`StoreError::DamagedObjects`]).
fn copy_checked(from: &Path, entry: &Entry, to: &Path) -> Result<()> {
    let bytes = fs::read(from).at(from)?;
    if &crate::id::ObjectHash::of(&bytes) != entry.object() {
        return Err(StoreError::DamagedObjects {
            tampered: vec![(entry.object().clone(), entry.executable())],
            missing: Vec::new(),
        });
    }
    fs::write(to, &bytes).at(to)?;
    finish_file(to, entry.executable())
}

/// A copy-on-write clone of `from`: shares its blocks until either is changed.
fn reflink(from: &Path, to: &Path, exec: bool) -> Result<()> {
    let src = fs::File::open(from).at(from)?;
    let dst = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)
        .at(to)?;
    // SAFETY: both descriptors are open for the duration of the call.
    let rc = unsafe { libc::ioctl(dst.as_raw_fd(), libc::FICLONE, src.as_raw_fd()) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(StoreError::NoReflink {
            path: to.to_path_buf(),
            source: e,
        });
    }
    drop(dst);
    finish_file(to, exec)
}

/// Swaps two directories in one step (`renameat2(RENAME_EXCHANGE)`), so the path never
/// names a missing or half-built tree. Where the filesystem cannot, the damaged tree is
/// moved aside first: a moment without the generation, never a wrong one.
fn exchange(new: &Path, current: &Path) -> Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let a = CString::new(new.as_os_str().as_bytes()).expect("paths hold no NUL");
    let b = CString::new(current.as_os_str().as_bytes()).expect("paths hold no NUL");
    // SAFETY: valid NUL-terminated paths, relative to no descriptor.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::EINVAL) && e.raw_os_error() != Some(libc::ENOSYS) {
        return Err(e).at(current);
    }
    let aside = new.with_extension("damaged");
    fs::rename(current, &aside).at(current)?;
    fs::rename(new, current).at(current)?;
    fs::rename(&aside, new).at(new)
}

fn device(path: &Path) -> Result<u64> {
    Ok(fs::metadata(path).at(path)?.dev())
}

/// Removes a tree whose directories may be read-only: in one pass, each directory made
/// writable before its entries go, and subdirectories removed in parallel (a generation
/// is thousands of directories; removing one sits on the path of every realise that
/// retires the generation before).
pub fn remove_tree(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).at(path),
        Ok(m) if !m.is_dir() => match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e).at(path),
            _ => Ok(()),
        },
        Ok(_) => remove_dir_tree(path),
    }
}

fn remove_dir_tree(dir: &Path) -> Result<()> {
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o755));
    let mut subdirs = Vec::new();
    let entries = match fs::read_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        r => r.at(dir)?,
    };
    for entry in entries {
        let entry = entry.at(dir)?;
        let path = entry.path();
        if entry.file_type().at(&path)?.is_dir() {
            subdirs.push(path);
        } else {
            match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e).at(&path),
                _ => {}
            }
        }
    }
    subdirs.par_iter().try_for_each(|d| remove_dir_tree(d))?;
    match fs::remove_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e).at(dir),
        _ => Ok(()),
    }
}
