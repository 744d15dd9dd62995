//! The `result` link beside a site file, switched atomically: a new symlink is made under a
//! temporary name and renamed over the old one, so the link always names a whole codebase.

use std::fs;
use std::io;
use std::path::Path;

pub(crate) fn switch(link: &Path, target: &Path) -> io::Result<()> {
    if let Ok(meta) = fs::symlink_metadata(link)
        && !meta.file_type().is_symlink()
    {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a symlink; mcb will not replace it (move it away or choose another path with --out)",
                link.display()
            ),
        ));
    }
    if fs::read_link(link).ok().as_deref() == Some(target) {
        return Ok(());
    }
    let parent = link.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent)?;
    let name = link
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "result".into());
    let staging = parent.join(format!(".{name}.mcb-{}", std::process::id()));
    let _ = fs::remove_file(&staging);
    std::os::unix::fs::symlink(target, &staging)?;
    fs::rename(&staging, link)
}

/// Writes `text` to `path` through a temporary file in the same directory and a rename.
pub(crate) fn write_beside(path: &Path, text: &str) -> io::Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    let mut f = tempfile::NamedTempFile::new_in(parent)?;
    io::Write::write_all(&mut f, text.as_bytes())?;
    f.as_file().sync_all()?;
    f.persist(path).map_err(|e| e.error)?;
    Ok(())
}
