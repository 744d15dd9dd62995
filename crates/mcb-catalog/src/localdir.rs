//! Local directory sources (`path:` entries, for development): every file under the
//! directory except the version control metadata at its top (`.git`, `.hg`, `.svn`). The
//! listing is checked against the source rule before anything is stored; only regular
//! files, directories and symlinks are accepted (a FIFO, socket or device is refused, never
//! opened), and each file is streamed into the store within the size limits.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use mcb_git::{SourceContent, SourceFile};
use mcb_store::{EntryKind, ListedEntry, SourceLimits, Store, check_listing};
use rayon::prelude::*;

use crate::CatalogError;
use crate::archive::Capped;
use crate::limits::human_bytes;

/// Version control metadata of the checkout itself: not part of the source.
const SKIPPED_AT_TOP: &[&str] = &[".git", ".hg", ".svn"];

struct Listed {
    full: PathBuf,
    rel: Vec<u8>,
    kind: EntryKind,
    link: Option<Vec<u8>>,
}

fn io(path: &Path, source: std::io::Error) -> CatalogError {
    CatalogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn kind_name(t: &fs::FileType) -> &'static str {
    if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// Reads the directory at `root` and puts its files into the store.
pub fn unpack_dir(
    root: &Path,
    store: &Store,
    limits: &SourceLimits,
) -> Result<Vec<SourceFile>, CatalogError> {
    unpack_dir_except(root, store, limits, &[])
}

fn dir_error(path: &Path, message: String) -> CatalogError {
    CatalogError::Dir {
        path: path.to_path_buf(),
        message,
    }
}

/// [`unpack_dir`], leaving out the directories `skipped` (relative to `root`) as well: the
/// version control metadata of checkouts nested in the tree, say.
pub fn unpack_dir_except(
    root: &Path,
    store: &Store,
    limits: &SourceLimits,
    skipped: &[String],
) -> Result<Vec<SourceFile>, CatalogError> {
    let listed = list_dir(root, limits, skipped)?;
    let listing: Vec<ListedEntry<'_>> = listed
        .iter()
        .map(|l| ListedEntry {
            path: &l.rel,
            kind: l.kind,
            link_target: l.link.as_deref(),
        })
        .collect();
    check_listing(&listing).map_err(|e| dir_error(root, e.to_string()))?;
    let total = std::sync::atomic::AtomicU64::new(0);
    listed
        .into_par_iter()
        .map(|l| store_listed(l, root, store, limits, &total))
        .collect()
}

/// Every file and symlink under `root` (never following a link), within the file limit.
fn list_dir(
    root: &Path,
    limits: &SourceLimits,
    skipped: &[String],
) -> Result<Vec<Listed>, CatalogError> {
    match fs::metadata(root) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(dir_error(root, "is not a directory".into())),
        Err(source) => return Err(io(root, source)),
    }
    let mut listed: Vec<Listed> = Vec::new();
    let walker = walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            let vcs = e.depth() == 1
                && SKIPPED_AT_TOP
                    .iter()
                    .any(|s| e.file_name() == OsStr::new(s));
            let asked = !skipped.is_empty()
                && e.path()
                    .strip_prefix(root)
                    .is_ok_and(|rel| skipped.iter().any(|s| rel == Path::new(s)));
            !(vcs || asked)
        });
    for entry in walker {
        let entry = entry.map_err(|e| CatalogError::Io {
            path: e.path().unwrap_or(root).to_path_buf(),
            source: e.into(),
        })?;
        let t = entry.file_type();
        if t.is_dir() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(root)
            .expect("walkdir stays under its root")
            .as_os_str()
            .as_bytes()
            .to_vec();
        let (kind, link) = if t.is_symlink() {
            let target = fs::read_link(entry.path()).map_err(|source| io(entry.path(), source))?;
            (EntryKind::Symlink, Some(target.into_os_string().into_vec()))
        } else if t.is_file() {
            let meta = entry.metadata().map_err(|e| CatalogError::Io {
                path: entry.path().to_path_buf(),
                source: e.into(),
            })?;
            if meta.permissions().mode() & 0o111 != 0 {
                (EntryKind::Exec, None)
            } else {
                (EntryKind::File, None)
            }
        } else {
            return Err(dir_error(
                entry.path(),
                format!(
                    "is {}; a source holds only files, directories and symlinks",
                    kind_name(&t)
                ),
            ));
        };
        listed.push(Listed {
            full: entry.path().to_path_buf(),
            rel,
            kind,
            link,
        });
        if listed.len() as u64 > limits.files {
            return Err(dir_error(
                root,
                format!(
                    "holds more than {} files (the source-files limit)",
                    limits.files
                ),
            ));
        }
    }
    if listed.is_empty() {
        return Err(dir_error(root, "holds no files".into()));
    }
    Ok(listed)
}

/// One listed file into the store (a symlink as its target), within the size limits;
/// `total` counts the bytes of the whole directory.
fn store_listed(
    l: Listed,
    root: &Path,
    store: &Store,
    limits: &SourceLimits,
    total: &std::sync::atomic::AtomicU64,
) -> Result<SourceFile, CatalogError> {
    let path =
        String::from_utf8(l.rel).expect("the listing check refused names that are not UTF-8");
    if let Some(target) = l.link {
        return Ok(SourceFile {
            path,
            kind: l.kind,
            content: SourceContent::LinkTarget(
                String::from_utf8(target).expect("the listing check refused such targets"),
            ),
        });
    }
    // Opened without following a link and without blocking, then checked again: the file
    // may have been swapped for a FIFO or a link since it was listed.
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&l.full)
        .map_err(|e| dir_error(&l.full, format!("cannot be read: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| dir_error(&l.full, format!("cannot be read: {e}")))?;
    if !meta.file_type().is_file() {
        return Err(dir_error(
            &l.full,
            format!(
                "is {}; it changed while it was read",
                kind_name(&meta.file_type())
            ),
        ));
    }
    let mut capped = Capped::new(file, limits.file_bytes);
    let (object, size) = match store.put_object_from(&mut capped, l.kind == EntryKind::Exec) {
        Ok(ok) => ok,
        Err(_) if capped.hit => {
            return Err(dir_error(
                &l.full,
                format!(
                    "is larger than {} (the file-bytes limit)",
                    human_bytes(limits.file_bytes)
                ),
            ));
        }
        Err(e) => return Err(dir_error(&l.full, format!("cannot be stored: {e}"))),
    };
    let sum = total.fetch_add(size, std::sync::atomic::Ordering::Relaxed) + size;
    if sum > limits.total_bytes {
        return Err(dir_error(
            root,
            format!(
                "holds more than {} (the source-bytes limit)",
                human_bytes(limits.total_bytes)
            ),
        ));
    }
    Ok(SourceFile {
        path,
        kind: l.kind,
        content: SourceContent::Stored { object, size },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_files_links_and_refuses_specials_and_escapes() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path().join("s")).unwrap();
        let src = d.path().join("src");
        fs::create_dir_all(src.join(".git")).unwrap();
        fs::write(src.join(".git/HEAD"), "ref").unwrap();
        fs::create_dir_all(src.join("lang")).unwrap();
        fs::write(src.join("version.php"), "<?php").unwrap();
        std::os::unix::fs::symlink("../version.php", src.join("lang/v.php")).unwrap();
        let files = unpack_dir(&src, &store, &SourceLimits::default()).unwrap();
        let mut paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        paths.sort();
        assert_eq!(paths, ["lang/v.php", "version.php"]);

        let fifo = src.join("pipe");
        let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid, NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let e = unpack_dir(&src, &store, &SourceLimits::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("is a FIFO"), "{e}");
        fs::remove_file(&fifo).unwrap();

        std::os::unix::fs::symlink("../../etc/passwd", src.join("evil")).unwrap();
        let e = unpack_dir(&src, &store, &SourceLimits::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("outside its own plugin"), "{e}");
        fs::remove_file(src.join("evil")).unwrap();

        fs::create_dir_all(src.join("sub/.git")).unwrap();
        fs::write(src.join("sub/.git/config"), "x").unwrap();
        let e = unpack_dir(&src, &store, &SourceLimits::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains(".git entry"), "{e}");
    }
}
