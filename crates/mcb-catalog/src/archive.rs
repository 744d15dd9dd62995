//! Zip archives: the plugins directory's format (one top folder named after the plugin) and
//! any zip a site file names. An archive with an entry that leaves the root (absolute path,
//! `..`, or a symlink pointing outside) is refused whole.

use std::io::{Cursor, Read};

use mcb_git::{SourceContent, SourceFile, SourceFileKind};

use crate::{CatalogError, inside_root, link_stays_inside};

/// The files of a zip, its single top folder stripped.
#[derive(Debug)]
pub struct ZipSource {
    pub files: Vec<SourceFile>,
    /// The top folder that was stripped, if there was one.
    pub top_folder: Option<String>,
    /// The newest entry time, seconds since the epoch: the source's date.
    pub date: Option<i64>,
}

const S_IFMT: u32 = 0o170000;
const S_IFLNK: u32 = 0o120000;

/// Reads a zip held in memory. `label` names it in errors.
pub fn read_zip(bytes: &[u8], label: &str) -> Result<ZipSource, CatalogError> {
    let err = |message: String| CatalogError::Zip {
        label: label.to_string(),
        message,
    };
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| err(format!("not a readable zip archive: {e}")))?;
    let mut raw: Vec<(String, SourceFileKind, Vec<u8>)> = Vec::new();
    let mut dirs: Vec<String> = Vec::new();
    let mut date: Option<i64> = None;
    for i in 0..archive.len() {
        let mut f = archive
            .by_index(i)
            .map_err(|e| err(format!("entry {i} cannot be read: {e}")))?;
        let name = f
            .name()
            .map_err(|e| err(format!("entry {i} has an unreadable name: {e}")))?
            .to_string();
        if name.starts_with('/')
            || name.contains('\\')
            || name.contains(':') && name.len() > 1 && name.as_bytes()[1] == b':'
        {
            return Err(err(format!(
                "entry '{name}' has an absolute path; refusing the archive"
            )));
        }
        if name.split('/').any(|c| c == "..") {
            return Err(err(format!(
                "entry '{name}' leaves the archive root (zip-slip); refusing the archive"
            )));
        }
        let Some(clean) = inside_root(&name) else {
            return Err(err(format!(
                "entry '{name}' leaves the archive root; refusing the archive"
            )));
        };
        if let Some(t) = f.last_modified() {
            let s = epoch_seconds(
                t.year() as i64,
                t.month() as i64,
                t.day() as i64,
                t.hour() as i64,
                t.minute() as i64,
                t.second() as i64,
            );
            date = Some(date.map_or(s, |d: i64| d.max(s)));
        }
        if f.is_dir() {
            dirs.push(clean);
            continue;
        }
        if clean.is_empty() {
            continue;
        }
        let mode = f.unix_mode().unwrap_or(0o644);
        let mut content = Vec::with_capacity(f.size() as usize);
        f.read_to_end(&mut content)
            .map_err(|e| err(format!("entry '{name}' cannot be decompressed: {e}")))?;
        let kind = if mode & S_IFMT == S_IFLNK {
            let target = String::from_utf8_lossy(&content).into_owned();
            if !link_stays_inside(&clean, &target) {
                return Err(err(format!(
                    "symlink '{name}' points at '{target}', outside the archive; refusing the archive"
                )));
            }
            SourceFileKind::Symlink
        } else if mode & 0o111 != 0 {
            SourceFileKind::Exec
        } else {
            SourceFileKind::File
        };
        raw.push((clean, kind, content));
    }
    if raw.is_empty() {
        return Err(err("the archive holds no files".into()));
    }

    // One top folder holding everything is the plugin's folder: strip it.
    let first_top = |p: &str| p.split('/').next().unwrap_or("").to_string();
    let top = first_top(&raw[0].0);
    let single_top = raw
        .iter()
        .all(|(p, _, _)| p.contains('/') && first_top(p) == top)
        && dirs.iter().all(|d| first_top(d) == top);
    let strip = if single_top { Some(top) } else { None };
    let files = raw
        .into_iter()
        .map(|(p, kind, content)| {
            let path = match &strip {
                Some(t) => p[t.len() + 1..].to_string(),
                None => p,
            };
            let content = match kind {
                SourceFileKind::Symlink => {
                    SourceContent::LinkTarget(String::from_utf8_lossy(&content).into_owned())
                }
                _ => SourceContent::Bytes(content),
            };
            SourceFile {
                path,
                kind,
                content,
            }
        })
        .collect();
    Ok(ZipSource {
        files,
        top_folder: strip,
        date,
    })
}

/// Seconds since the epoch of a UTC civil date and time.
fn epoch_seconds(y: i64, m: i64, d: i64, hh: i64, mm: i64, ss: i64) -> i64 {
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    days * 86400 + hh * 3600 + mm * 60 + ss
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    fn zip_of(entries: &[(&str, &[u8], u32)]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let dt = zip::DateTime::from_date_and_time(2024, 3, 1, 12, 0, 0).unwrap();
        for (name, content, mode) in entries {
            let o = SimpleFileOptions::default()
                .unix_permissions(*mode)
                .last_modified_time(dt);
            if name.ends_with('/') {
                w.add_directory(*name, o).unwrap();
            } else if *mode == 0o120777 {
                w.add_symlink(*name, std::str::from_utf8(content).unwrap(), o)
                    .unwrap();
            } else {
                w.start_file(*name, o).unwrap();
                w.write_all(content).unwrap();
            }
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn strips_the_single_top_folder() {
        let z = zip_of(&[
            ("block_x/", b"", 0o755),
            ("block_x/version.php", b"<?php", 0o644),
            ("block_x/cli/run.sh", b"#!", 0o755),
            ("block_x/lang/link.php", b"../version.php", 0o120777),
        ]);
        let s = read_zip(&z, "t.zip").unwrap();
        assert_eq!(s.top_folder.as_deref(), Some("block_x"));
        let paths: Vec<_> = s.files.iter().map(|f| (f.path.as_str(), f.kind)).collect();
        assert!(paths.contains(&("version.php", SourceFileKind::File)));
        assert!(paths.contains(&("cli/run.sh", SourceFileKind::Exec)));
        assert!(paths.contains(&("lang/link.php", SourceFileKind::Symlink)));
        assert_eq!(s.date, Some(1709294400));
    }

    #[test]
    fn keeps_files_when_there_is_no_single_top_folder() {
        let z = zip_of(&[("version.php", b"<?php", 0o644), ("lib.php", b"", 0o644)]);
        let s = read_zip(&z, "t.zip").unwrap();
        assert_eq!(s.top_folder, None);
        assert_eq!(s.files.len(), 2);
    }

    #[test]
    fn refuses_escapes() {
        let z = zip_of(&[
            ("x/version.php", b"<?php", 0o644),
            ("x/../../evil.php", b"", 0o644),
        ]);
        let e = read_zip(&z, "slip.zip").unwrap_err().to_string();
        assert!(e.contains("zip-slip"), "{e}");
        let z = zip_of(&[
            ("x/version.php", b"<?php", 0o644),
            ("x/l", b"../../etc/passwd", 0o120777),
        ]);
        let e = read_zip(&z, "link.zip").unwrap_err().to_string();
        assert!(e.contains("outside the archive"), "{e}");
        let z = zip_of(&[("x/l", b"/etc/passwd", 0o120777)]);
        assert!(read_zip(&z, "abs.zip").is_err());
        assert!(read_zip(b"not a zip", "bad.zip").is_err());
    }
}
