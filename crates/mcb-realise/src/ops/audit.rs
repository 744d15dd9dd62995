//! `archive`: every source that went into a site's generations, with the locks that chose
//! them, as one gzipped tarball an auditor checks without mcb (`sha256sum -c`, `git
//! clone`, `md5sum`, `unzip`): zips as they were downloaded, git bundles of the commits
//! used, and, for a directory source (or a zip no longer to be had), its files as stored.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use mcb_config::{Lock, LockedSource};
use mcb_store::{Blake3, ManifestHash};
use sha2::Digest;

use crate::context::RunContext;
use crate::error::RealiseError;
use crate::ops::generations::{Generation, history};
use crate::options::RunOptions;
use crate::report::Reporter;
use crate::stage::commit::lock_in_commit;

/// What to put in an archive.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Only generations made (or, made before mcb recorded it, dated) on or after this day,
    /// `YYYY-MM-DD`.
    pub since: Option<String>,
    /// The tarball to write; it must not exist.
    pub out: PathBuf,
}

/// How a source is in the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Held {
    /// The zip, byte for byte as it was downloaded (its blake3 is the lock's).
    Zip,
    /// A git bundle of the commit and its history.
    GitBundle,
    /// The files as the store holds them (a directory source, or a zip neither kept nor
    /// to be downloaded again).
    Files,
}

/// One source in the archive.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ArchivedSource {
    /// The component (`moodle` for core).
    pub component: String,
    pub version: String,
    /// How the lock names where it came from.
    pub locked: String,
    pub held: Held,
    /// Its path in the archive.
    pub file: String,
    /// The generations that used it.
    pub generations: Vec<usize>,
}

/// What [`archive`] wrote.
#[derive(Debug, Clone)]
pub struct Audited {
    pub site: String,
    pub out: PathBuf,
    /// The generations archived, newest first.
    pub generations: Vec<usize>,
    pub sources: Vec<ArchivedSource>,
    /// Size of the tarball in bytes.
    pub bytes: u64,
    /// Sources that could be had only as their files.
    pub warnings: Vec<String>,
}

/// A source as the locks name it, once for every generation that used it.
struct Wanted {
    component: String,
    version: String,
    source: LockedSource,
    manifest: ManifestHash,
    generations: Vec<usize>,
}

/// A file of the archive: its path inside and its bytes' place on disk or in memory.
enum Body {
    Bytes(Vec<u8>),
    File(PathBuf),
}

/// Writes the archive of site `name`'s generations.
pub fn archive(
    run: &RunOptions,
    name: &str,
    opts: &AuditOptions,
    reporter: &dyn Reporter,
) -> Result<Audited, RealiseError> {
    if opts.out.exists() {
        return Err(RealiseError::Usage {
            message: format!("{} exists already", opts.out.display()),
            about: crate::error::Named::Existing,
        });
    }
    let generations: Vec<Generation> = history(&run.store, name, usize::MAX)?
        .into_iter()
        .filter(|g| match &opts.since {
            Some(day) => mcb_moodle::civil_date(g.made.unwrap_or(g.date)) >= *day,
            None => true,
        })
        .collect();
    if generations.is_empty() {
        return Err(RealiseError::Usage {
            message: format!(
                "site {name} has no generation made since {}",
                opts.since.as_deref().unwrap_or("its first")
            ),
            about: crate::error::Named::Generation,
        });
    }
    let ctx = RunContext::open_named(run, Some(name), Vec::new(), reporter)?;
    let site_dir = ctx
        .store
        .site_owner(name)
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let sources = ctx.sources(&site_dir, reporter);

    let mut files: BTreeMap<String, Body> = BTreeMap::new();
    let mut wanted: Vec<Wanted> = Vec::new();
    let mut gens_json = Vec::new();
    for g in &generations {
        let lock = lock_in_commit(&ctx.git, &g.commit)?.ok_or_else(|| {
            fs_error(
                &opts.out,
                std::io::Error::other(format!(
                    "generation {} ({}) carries no lock",
                    g.number, g.commit
                )),
            )
        })?;
        let lock_file = format!("locks/gen-{}.lock", g.number);
        files.insert(lock_file.clone(), Body::Bytes(lock.to_text().into_bytes()));
        gens_json.push(serde_json::json!({
            "generation": g.number,
            "commit": g.commit.as_str(),
            "tree": g.tree.as_str(),
            "moodle": lock.moodle.release,
            "made": g.made,
            "served": g.served,
            "lock": lock_file,
        }));
        for (component, version, source, manifest) in used(&lock) {
            match wanted.iter_mut().find(|w| w.source == source) {
                Some(w) => w.generations.push(g.number),
                None => wanted.push(Wanted {
                    component,
                    version,
                    source,
                    manifest,
                    generations: vec![g.number],
                }),
            }
        }
    }

    let scratch = ctx.store.staging("archive")?;
    let mut archived = Vec::new();
    let mut warnings = Vec::new();
    for (i, w) in wanted.iter().enumerate() {
        reporter.detail(&format!("{} {}", w.component, w.source.label()));
        let stem = format!("{}-{}", w.component, file_word(&w.version));
        let (held, file) = match &w.source {
            LockedSource::Git {
                commit, reference, ..
            } => {
                let file = format!("sources/git/{stem}-{}.bundle", &commit.as_str()[..12]);
                let out = scratch.path().join(format!("{i}.bundle"));
                let work = scratch.path().join(format!("{i}.git"));
                std::fs::create_dir_all(&work).map_err(|e| fs_error(&work, e))?;
                ctx.git
                    .bundle(commit, &bundle_ref(reference, commit), &out, &work)?;
                files.insert(file.clone(), Body::File(out));
                (Held::GitBundle, file)
            }
            LockedSource::Zip { blake3, .. }
            | LockedSource::Directory { blake3, .. }
            | LockedSource::Composer { blake3, .. } => {
                match zip_as_downloaded(&ctx, &sources, w, blake3) {
                    Ok(path) => {
                        let file = format!("sources/zips/{stem}-{}.zip", &blake3.as_str()[..12]);
                        files.insert(file.clone(), Body::File(path));
                        (Held::Zip, file)
                    }
                    Err(why) => {
                        let text = format!(
                            "{} {}: the zip as downloaded could not be had ({why}); its files as stored are archived instead",
                            w.component,
                            w.source.label()
                        );
                        reporter.warn(&text);
                        warnings.push(text);
                        let dir = format!("sources/files/{stem}-{}", &w.manifest.as_str()[..12]);
                        add_files(&ctx, &w.manifest, &dir, &mut files)?;
                        (Held::Files, dir)
                    }
                }
            }
            LockedSource::Path { .. } => {
                let dir = format!("sources/files/{stem}-{}", &w.manifest.as_str()[..12]);
                add_files(&ctx, &w.manifest, &dir, &mut files)?;
                (Held::Files, dir)
            }
        };
        archived.push(ArchivedSource {
            component: w.component.clone(),
            version: w.version.clone(),
            locked: w.source.label(),
            held,
            file,
            generations: w.generations.clone(),
        });
    }

    let listing: Vec<serde_json::Value> = archived
        .iter()
        .zip(&wanted)
        .map(|(a, w)| {
            let mut v = serde_json::to_value(a).expect("plain data");
            v["source"] = serde_json::to_value(&w.source).expect("plain data");
            v
        })
        .collect();
    let manifest = serde_json::json!({
        "site": name,
        "written_by": format!("mcb {}", env!("CARGO_PKG_VERSION")),
        "since": opts.since,
        "generations": gens_json,
        "sources": listing,
    });
    files.insert(
        "manifest.json".into(),
        Body::Bytes(
            serde_json::to_vec_pretty(&manifest)
                .expect("plain data")
                .into_iter()
                .chain(*b"\n")
                .collect(),
        ),
    );
    files.insert("README.txt".into(), Body::Bytes(readme(name).into_bytes()));
    let mut sums = String::new();
    for (path, body) in &files {
        let digest = match body {
            Body::Bytes(b) => hex(&sha2::Sha256::digest(b)),
            Body::File(f) => sha256_file(f)?,
        };
        sums.push_str(&format!("{digest}  {path}\n"));
    }
    files.insert("SHA256SUMS".into(), Body::Bytes(sums.into_bytes()));

    let top = format!("{name}-sources");
    let bytes = write_tarball(&opts.out, &top, &files)?;
    ctx.store.discard(scratch);
    Ok(Audited {
        site: name.to_string(),
        out: opts.out.clone(),
        generations: generations.iter().map(|g| g.number).collect(),
        sources: archived,
        bytes,
        warnings,
    })
}

/// Core and every plugin of `lock`: (component, version, source, manifest).
fn used(lock: &Lock) -> Vec<(String, String, LockedSource, ManifestHash)> {
    let mut out = vec![(
        "moodle".to_string(),
        lock.moodle.release.clone(),
        lock.moodle.source.clone(),
        lock.moodle.manifest.clone(),
    )];
    for p in &lock.plugins {
        out.push((
            p.component.clone(),
            p.release.clone().unwrap_or_else(|| p.version.clone()),
            p.source.clone(),
            p.manifest.clone(),
        ));
    }
    out
}

/// The ref a bundle carries: the tag or branch the lock names, when git takes it as a
/// ref name, else one named by the commit.
fn bundle_ref(reference: &str, commit: &mcb_store::GitOid) -> String {
    let ok = !reference.is_empty()
        && reference.len() <= 200
        && reference
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'))
        && !reference.starts_with(['.', '-', '/'])
        && !reference.ends_with(['.', '/'])
        && !reference.contains("..")
        && !reference.contains("//")
        && !reference.ends_with(".lock")
        && reference != commit.as_str();
    if ok {
        format!("refs/heads/{reference}")
    } else {
        format!("refs/heads/commit-{}", &commit.as_str()[..12])
    }
}

/// The zip a lock names, byte for byte: the store's kept copy, else the file or URL it
/// came from, each checked against the lock's blake3.
fn zip_as_downloaded(
    ctx: &RunContext,
    sources: &mcb_catalog::Sources,
    w: &Wanted,
    blake3: &Blake3,
) -> Result<PathBuf, String> {
    let kept = ctx.store.cache().archive_path(blake3);
    if kept.is_file() && blake3_file(&kept).as_ref() == Some(blake3) {
        return Ok(kept);
    }
    let location = match &w.source {
        LockedSource::Zip { location, .. } => sources.locate(location),
        LockedSource::Directory { url, .. } | LockedSource::Composer { url, .. } => {
            mcb_config::Location::Url(url.clone())
        }
        _ => return Err("not a zip".into()),
    };
    if ctx.run.offline && matches!(location, mcb_config::Location::Url(_)) {
        return Err("the store keeps no copy and the run is offline".into());
    }
    let staged = sources
        .stage(&w.component, &location)
        .map_err(|e| crate::error::chain(&e))?;
    if staged.blake3 != *blake3 {
        return Err(format!(
            "it is now blake3 {}, not the locked {blake3}",
            staged.blake3
        ));
    }
    ctx.store
        .cache()
        .keep_archive(blake3, staged.file.path())
        .map_err(|e| e.to_string())?;
    Ok(ctx.store.cache().archive_path(blake3))
}

/// `text` as a file name's word: letters, digits, `.`, `+` and `-`; anything else one `_`
/// ("4.5.5+ (Build: 20250613)" → "4.5.5+_Build_20250613").
fn file_word(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().take(60) {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-') {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches(['_', '.']).to_string()
}

fn blake3_file(path: &Path) -> Option<Blake3> {
    let mut h = blake3::Hasher::new();
    h.update_reader(std::fs::File::open(path).ok()?).ok()?;
    Some(Blake3::from_hasher(&h))
}

/// Every file of manifest `hash`, under `dir`, from the store's objects (each checked).
fn add_files(
    ctx: &RunContext,
    hash: &ManifestHash,
    dir: &str,
    files: &mut BTreeMap<String, Body>,
) -> Result<(), RealiseError> {
    let manifest = ctx.store.read_manifest(hash)?;
    for e in &manifest.entries {
        let bytes = match e.kind {
            mcb_store::EntryKind::Symlink => continue,
            _ => ctx.store.read_object_verified(e.object(), e.executable())?,
        };
        files.insert(format!("{dir}/{}", e.path), Body::Bytes(bytes));
    }
    Ok(())
}

fn sha256_file(path: &Path) -> Result<String, RealiseError> {
    let mut f = std::fs::File::open(path).map_err(|e| fs_error(path, e))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf).map_err(|e| fs_error(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn fs_error(path: &Path, e: std::io::Error) -> RealiseError {
    RealiseError::Filesystem {
        message: format!("cannot write the archive at {}", path.display()),
        source: e,
    }
}

/// Writes `files` under `top/` as a gzipped tarball at `out` (staged beside it, then
/// renamed: a failed run leaves nothing). Entries are sorted and dated 0, owned by root,
/// so the same sources give the same bytes.
fn write_tarball(
    out: &Path,
    top: &str,
    files: &BTreeMap<String, Body>,
) -> Result<u64, RealiseError> {
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let staged = tempfile::NamedTempFile::new_in(dir).map_err(|e| fs_error(out, e))?;
    {
        let gz = flate2::write::GzEncoder::new(
            std::io::BufWriter::new(staged.as_file()),
            flate2::Compression::default(),
        );
        let mut tar = tar::Builder::new(gz);
        tar.mode(tar::HeaderMode::Deterministic);
        let header = |size: u64| {
            let mut h = tar::Header::new_gnu();
            h.set_size(size);
            h.set_mode(0o644);
            h.set_mtime(0);
            h.set_uid(0);
            h.set_gid(0);
            h.set_entry_type(tar::EntryType::Regular);
            h
        };
        for (path, body) in files {
            let name = format!("{top}/{path}");
            match body {
                Body::Bytes(b) => {
                    let mut h = header(b.len() as u64);
                    tar.append_data(&mut h, &name, b.as_slice())
                }
                Body::File(f) => {
                    let file = std::fs::File::open(f).map_err(|e| fs_error(f, e))?;
                    let size = file.metadata().map_err(|e| fs_error(f, e))?.len();
                    let mut h = header(size);
                    tar.append_data(&mut h, &name, file)
                }
            }
            .map_err(|e| fs_error(out, e))?;
        }
        let gz = tar.into_inner().map_err(|e| fs_error(out, e))?;
        let mut w = gz.finish().map_err(|e| fs_error(out, e))?;
        w.flush().map_err(|e| fs_error(out, e))?;
    }
    staged.as_file().sync_all().map_err(|e| fs_error(out, e))?;
    staged
        .persist_noclobber(out)
        .map_err(|e| fs_error(out, e.error))?;
    Ok(std::fs::metadata(out).map(|m| m.len()).unwrap_or(0))
}

fn readme(site: &str) -> String {
    format!(
        "The sources of the generations of Moodle site {site}, as mcb built them.

manifest.json     each generation (its commit, when it was made and served, its lock) and
                  each source: where the lock says it came from, how it is held here, and
                  the generations that used it.
locks/            the lock of each generation: every version and its hashes.
sources/zips/     zips byte for byte as downloaded; the lock's blake3 (b3sum) and, for the
                  plugins directory, md5 (md5sum) are theirs.
sources/git/      git bundles of the commits used, with their history: `git clone
                  FILE.bundle DIR` and `git -C DIR rev-parse HEAD` gives the lock's commit.
sources/files/    the files of directory sources (and of zips no longer to be had), as
                  stored.

Check that nothing changed since it was written: `sha256sum -c SHA256SUMS`.
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_name_becomes_a_plain_file_word() {
        assert_eq!(
            file_word("4.5.5+ (Build: 20250613)"),
            "4.5.5+_Build_20250613"
        );
        assert_eq!(file_word("2.3 for Moodle 4.4+"), "2.3_for_Moodle_4.4+");
        assert_eq!(file_word("../../etc/passwd"), "etc_passwd");
        assert_eq!(file_word("v19.1"), "v19.1");
    }
}
