//! Local directory sources (`path:` entries, for development): every file under the
//! directory except VCS metadata. A symlink pointing outside the directory is refused.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use mcb_git::{SourceContent, SourceFile, SourceFileKind};

use crate::{CatalogError, link_stays_inside};

const SKIPPED: &[&str] = &[".git", ".hg", ".svn"];

pub fn read_dir(root: &Path) -> Result<Vec<SourceFile>, CatalogError> {
    let err = |path: &Path, message: String| CatalogError::Dir {
        path: path.to_path_buf(),
        message,
    };
    if !root.is_dir() {
        return Err(err(root, "is not a directory".into()));
    }
    let mut files = Vec::new();
    let walker = walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            !(e.file_type().is_dir()
                && e.depth() > 0
                && SKIPPED.contains(&e.file_name().to_string_lossy().as_ref()))
        });
    for entry in walker {
        let entry = entry.map_err(|e| err(root, e.to_string()))?;
        if entry.file_type().is_dir() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(root)
            .expect("walkdir stays under its root")
            .to_str()
            .ok_or_else(|| err(entry.path(), "has a name that is not UTF-8".into()))?
            .to_string();
        if entry.file_type().is_symlink() {
            let target =
                std::fs::read_link(entry.path()).map_err(|e| err(entry.path(), e.to_string()))?;
            let target = target.to_string_lossy().into_owned();
            if !link_stays_inside(&rel, &target) {
                return Err(err(
                    entry.path(),
                    format!("is a symlink to '{target}', outside the source directory"),
                ));
            }
            files.push(SourceFile {
                path: rel,
                kind: SourceFileKind::Symlink,
                content: SourceContent::LinkTarget(target),
            });
            continue;
        }
        let meta = entry
            .metadata()
            .map_err(|e| err(entry.path(), e.to_string()))?;
        let kind = if meta.permissions().mode() & 0o111 != 0 {
            SourceFileKind::Exec
        } else {
            SourceFileKind::File
        };
        files.push(SourceFile {
            path: rel,
            kind,
            content: SourceContent::File(entry.path().to_path_buf()),
        });
    }
    if files.is_empty() {
        return Err(err(root, "holds no files".into()));
    }
    Ok(files)
}
