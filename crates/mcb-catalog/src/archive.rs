//! Zip archives: the plugins directory's format (one top folder named after the plugin) and
//! any zip a site file names. The archive's listing (names, kinds, symlink targets) is read
//! and checked against the source rule first, with its single top folder stripped; only
//! then is each entry streamed into the store, within the size limits, so neither a
//! hostile name nor a zip bomb gets anything in.

use std::io::{Read, Seek};

use mcb_git::{SourceContent, SourceFile};
use mcb_store::{EntryKind, ListedEntry, SourceLimits, Store, check_listing};

use crate::CatalogError;
use crate::limits::human_bytes;

/// The files of a zip, in the store, its single top folder stripped.
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

/// One entry as the central directory lists it.
struct Listed {
    index: usize,
    path: Vec<u8>,
    kind: EntryKind,
    link: Option<Vec<u8>>,
}

/// A reader that fails once more than `cap` bytes come through, and says so.
pub(crate) struct Capped<R> {
    inner: R,
    left: u64,
    pub hit: bool,
}

impl<R: Read> Capped<R> {
    pub fn new(inner: R, cap: u64) -> Capped<R> {
        Capped {
            inner,
            left: cap,
            hit: false,
        }
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // Read one byte past the cap, to tell "exactly the cap" from "more".
        let want = buf
            .len()
            .min(self.left.saturating_add(1).min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            self.hit = true;
            return Err(std::io::Error::other("over the size limit"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn zip_error(label: &str, message: String) -> CatalogError {
    CatalogError::Zip {
        label: label.to_string(),
        message,
    }
}

/// Reads a zip archive and puts its files into the store. `label` names it in errors.
pub fn unpack_zip<R: Read + Seek>(
    reader: R,
    label: &str,
    store: &Store,
    limits: &SourceLimits,
) -> Result<ZipSource, CatalogError> {
    let err = |message: String| zip_error(label, message);
    let mut archive = zip::ZipArchive::new(reader)
        .map_err(|e| err(format!("not a readable zip archive: {e}")))?;
    if archive.len() as u64 > limits.files {
        return Err(err(format!(
            "it holds {} entries, over the limit of {} (source-files); refusing the archive",
            archive.len(),
            limits.files
        )));
    }
    let (mut listed, dirs, date) = list_zip(&mut archive, label)?;
    // One top folder holding everything is the plugin's folder: strip it.
    let first = |p: &[u8]| -> Vec<u8> { p.split(|b| *b == b'/').next().unwrap_or(&[]).to_vec() };
    let top = first(&listed[0].path);
    let single_top = !top.is_empty()
        && listed
            .iter()
            .all(|l| l.path.contains(&b'/') && first(&l.path) == top)
        && dirs.iter().all(|d| first(d) == top);
    if single_top {
        for l in &mut listed {
            l.path.drain(..top.len() + 1);
        }
    }
    let listing: Vec<ListedEntry<'_>> = listed
        .iter()
        .map(|l| ListedEntry {
            path: &l.path,
            kind: l.kind,
            link_target: l.link.as_deref(),
        })
        .collect();
    check_listing(&listing).map_err(|e| err(format!("{e}; refusing the archive")))?;
    Ok(ZipSource {
        files: store_zip_entries(&mut archive, listed, label, store, limits)?,
        top_folder: single_top.then(|| String::from_utf8_lossy(&top).into_owned()),
        date,
    })
}

/// An archive's entries as listed: its files and symlinks (with their targets), its
/// directories' names, and its newest modification time.
type ZipListing = (Vec<Listed>, Vec<Vec<u8>>, Option<i64>);

fn list_zip<R: Read + Seek>(
    archive: &mut zip::ZipArchive<R>,
    label: &str,
) -> Result<ZipListing, CatalogError> {
    let err = |message: String| zip_error(label, message);
    let mut listed: Vec<Listed> = Vec::new();
    let mut dirs: Vec<Vec<u8>> = Vec::new();
    let mut date: Option<i64> = None;
    for i in 0..archive.len() {
        let mut f = archive
            .by_index(i)
            .map_err(|e| err(format!("entry {i} cannot be read: {e}")))?;
        let name = f.name_raw().to_vec();
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
        if name.ends_with(b"/") || f.is_dir() {
            let mut d = name;
            while d.last() == Some(&b'/') {
                d.pop();
            }
            dirs.push(d);
            continue;
        }
        let mode = f.unix_mode().unwrap_or(0o644);
        let (kind, link) = if mode & S_IFMT == S_IFLNK {
            let mut target = Vec::new();
            (&mut f)
                .take(mcb_store::listing::MAX_PATH_BYTES as u64 + 1)
                .read_to_end(&mut target)
                .map_err(|e| {
                    err(format!(
                        "entry '{}' cannot be decompressed: {e}",
                        mcb_store::listing::printable_bytes(&name)
                    ))
                })?;
            (EntryKind::Symlink, Some(target))
        } else if mode & 0o111 != 0 {
            (EntryKind::Exec, None)
        } else {
            (EntryKind::File, None)
        };
        listed.push(Listed {
            index: i,
            path: name,
            kind,
            link,
        });
    }
    if listed.is_empty() {
        return Err(err("the archive holds no files".into()));
    }
    Ok((listed, dirs, date))
}

/// The listed entries into the store, each within the file-bytes limit and all within
/// the source-bytes limit, whatever sizes the archive declares.
fn store_zip_entries<R: Read + Seek>(
    archive: &mut zip::ZipArchive<R>,
    listed: Vec<Listed>,
    label: &str,
    store: &Store,
    limits: &SourceLimits,
) -> Result<Vec<SourceFile>, CatalogError> {
    let err = |message: String| zip_error(label, message);
    let mut files = Vec::with_capacity(listed.len());
    let mut left = limits.total_bytes;
    for l in listed {
        let path =
            String::from_utf8(l.path).expect("the listing check refused names that are not UTF-8");
        if let Some(target) = l.link {
            files.push(SourceFile {
                path,
                kind: l.kind,
                content: SourceContent::LinkTarget(
                    String::from_utf8(target).expect("the listing check refused such targets"),
                ),
            });
            continue;
        }
        let f = archive
            .by_index(l.index)
            .map_err(|e| err(format!("entry '{path}' cannot be read: {e}")))?;
        let cap = limits.file_bytes.min(left);
        let mut capped = Capped::new(f, cap);
        let stored = store.put_object_from(&mut capped, l.kind == EntryKind::Exec);
        let (object, size) = match stored {
            Ok(ok) => ok,
            Err(_) if capped.hit && cap == limits.file_bytes => {
                return Err(err(format!(
                    "entry '{path}' expands to more than {} (the file-bytes limit); refusing the archive",
                    human_bytes(limits.file_bytes)
                )));
            }
            Err(_) if capped.hit => {
                return Err(err(format!(
                    "its entries expand to more than {} together (the source-bytes limit); refusing the archive",
                    human_bytes(limits.total_bytes)
                )));
            }
            Err(e) => {
                return Err(err(format!("entry '{path}' cannot be decompressed: {e}")));
            }
        };
        left -= size;
        files.push(SourceFile {
            path,
            kind: l.kind,
            content: SourceContent::Stored { object, size },
        });
    }
    Ok(files)
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
    use std::io::{Cursor, Write};
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

    fn store() -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path().join("s")).unwrap();
        (d, s)
    }

    fn unpack(bytes: &[u8], limits: &SourceLimits) -> Result<ZipSource, CatalogError> {
        let (_d, s) = store();
        unpack_zip(Cursor::new(bytes), "t.zip", &s, limits)
    }

    fn objects(s: &Store) -> usize {
        walkdir::WalkDir::new(s.root().join("objects"))
            .into_iter()
            .flatten()
            .filter(|e| e.file_type().is_file())
            .count()
    }

    #[test]
    fn strips_the_single_top_folder() {
        let z = zip_of(&[
            ("block_x/", b"", 0o755),
            ("block_x/version.php", b"<?php", 0o644),
            ("block_x/cli/run.sh", b"#!", 0o755),
            ("block_x/lang/link.php", b"../version.php", 0o120777),
        ]);
        let s = unpack(&z, &SourceLimits::default()).unwrap();
        assert_eq!(s.top_folder.as_deref(), Some("block_x"));
        let paths: Vec<_> = s.files.iter().map(|f| (f.path.as_str(), f.kind)).collect();
        assert!(paths.contains(&("version.php", EntryKind::File)));
        assert!(paths.contains(&("cli/run.sh", EntryKind::Exec)));
        assert!(paths.contains(&("lang/link.php", EntryKind::Symlink)));
        assert_eq!(s.date, Some(1709294400));
    }

    #[test]
    fn keeps_files_when_there_is_no_single_top_folder() {
        let z = zip_of(&[("version.php", b"<?php", 0o644), ("lib.php", b"", 0o644)]);
        let s = unpack(&z, &SourceLimits::default()).unwrap();
        assert_eq!(s.top_folder, None);
        assert_eq!(s.files.len(), 2);
    }

    #[test]
    fn refuses_escapes_before_storing_anything() {
        let cases: &[&[(&str, &[u8], u32)]] = &[
            &[
                ("x/version.php", b"<?php", 0o644),
                ("x/../../evil.php", b"", 0o644),
            ],
            &[
                ("x/version.php", b"<?php", 0o644),
                ("x/l", b"../../etc/passwd", 0o120777),
            ],
            &[("x/l", b"/etc/passwd", 0o120777)],
            // After the top folder is stripped, `m -> ../` leaves the plugin.
            &[
                ("top/version.php", b"<?php", 0o644),
                ("top/m", b"../", 0o120777),
            ],
            &[
                ("top/version.php", b"<?php", 0o644),
                ("top/sub/.GIT/config", b"x", 0o644),
            ],
        ];
        for entries in cases {
            let (_d, s) = store();
            let z = zip_of(entries);
            let e = unpack_zip(Cursor::new(&z), "bad.zip", &s, &SourceLimits::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains("refusing the archive"), "{e}");
            assert_eq!(objects(&s), 0, "nothing stored for {entries:?}");
        }
        assert!(unpack(b"not a zip", &SourceLimits::default()).is_err());
    }

    #[test]
    fn a_zip_bomb_stops_at_the_limits() {
        let big = vec![0u8; 3 << 20];
        let z = zip_of(&[("x/a", &big, 0o644), ("x/b", &big, 0o644)]);
        assert!(z.len() < 100_000, "a bomb: small compressed");
        let l = SourceLimits {
            file_bytes: 1 << 20,
            ..SourceLimits::default()
        };
        let e = unpack(&z, &l).unwrap_err().to_string();
        assert!(e.contains("file-bytes"), "{e}");
        let l = SourceLimits {
            total_bytes: 5 << 20,
            ..SourceLimits::default()
        };
        let e = unpack(&z, &l).unwrap_err().to_string();
        assert!(e.contains("source-bytes"), "{e}");
        let l = SourceLimits {
            files: 1,
            ..SourceLimits::default()
        };
        let e = unpack(&z, &l).unwrap_err().to_string();
        assert!(e.contains("source-files"), "{e}");
    }
}
