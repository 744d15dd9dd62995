//! Making a new codebase visible: the site branch, the lock beside the site file and the
//! `result` link move together or not at all.
//!
//! Every destination is prepared before the first visible change: the new lock is written
//! to a temporary file in the lock's own directory and the new link is made under a
//! temporary name beside the old one, so a read-only directory, a `result` that is not a
//! symlink or a full disk fails the run while nothing has moved. Then three renames-sized
//! steps follow, in this order: the branch, the lock, the link. A run killed between two
//! of them leaves the branch ahead of the lock or the link; the next run finds the branch
//! at the codebase the site file asks for and finishes the other two.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mcb_config::{Lock, SiteFile};

use crate::context::RunContext;
use crate::error::RealiseError;
use crate::report::{Reporter, Stage};
use crate::stage::commit::Committed;

/// What publishing did.
#[derive(Debug, Clone, Copy)]
pub struct Published {
    pub lock_written: bool,
}

/// The publish stage: prepares the lock (when it changed) and the link, makes everything
/// they name durable, then moves the branch, the lock and the link, and records the roots
/// and the site's owner.
#[allow(clippy::too_many_arguments)]
pub fn publish(
    ctx: &RunContext,
    site: &SiteFile,
    old_lock: Option<&Lock>,
    committed: &Committed,
    generation: &Path,
    link: &Path,
    serve: bool,
    reporter: &dyn Reporter,
) -> Result<Published, RealiseError> {
    reporter.stage(Stage::Publish, &site.name);
    let lock_text = (old_lock != Some(&committed.lock)).then(|| committed.lock.to_text());
    let lock_path = site.lock_path();
    let mut prepared = prepare(
        lock_text.as_deref().map(|t| (lock_path.as_path(), t)),
        link,
        generation,
    )?;
    ctx.store.sync()?;
    if committed.new_commit {
        ctx.git
            .set_branch(&site.name, &committed.commit, committed.head.as_ref())?;
    }
    let lock_written = prepared.writes_lock();
    // Served anew only when the link pointed elsewhere: a realise with nothing to do is
    // not a serve.
    let served_anew = serve && fs::read_link(link).ok().as_deref() != Some(generation);
    prepared.switch_lock()?;
    if !serve {
        // The codebase is committed but not served yet (a tested round serves it once
        // its test passes).
        if let Some((staging, _)) = prepared.link.take() {
            let _ = fs::remove_file(staging);
        }
    } else {
        prepared.switch_link()?;
        ctx.store.add_result_root(link)?;
    }
    record_owner(ctx, site)?;
    // A record for `history`, not part of the generation: the generation stands without it.
    if let Err(e) = crate::served_note::record(
        &ctx.git,
        &committed.commit,
        committed.new_commit,
        served_anew,
    ) {
        reporter.warn(&format!("cannot record when the generation was made: {e}"));
    }
    Ok(Published { lock_written })
}

/// Points `link` at an existing generation (the no-op case): the lock and branch are as
/// they should be.
pub fn relink(
    ctx: &RunContext,
    site: &SiteFile,
    generation: &Path,
    link: &Path,
) -> Result<(), RealiseError> {
    let mut prepared = prepare(None, link, generation)?;
    prepared.switch_link()?;
    ctx.store.add_result_root(link)?;
    record_owner(ctx, site)
}

/// Refuses to let a second site file use a name another site file owns: both would move
/// one branch and overwrite each other's codebase forever.
pub fn check_owner(
    ctx: &RunContext,
    site: &SiteFile,
    force: bool,
    reporter: &dyn Reporter,
) -> Result<(), RealiseError> {
    let me = canonical(&site.path);
    let Some(owner) = ctx.store.site_owner(&site.name) else {
        return Ok(());
    };
    if owner == me {
        return Ok(());
    }
    if force {
        reporter.warn(&format!(
            "site {} now belongs to {} (it belonged to {})",
            site.name,
            me.display(),
            owner.display()
        ));
        return Ok(());
    }
    if !owner.exists() {
        reporter.warn(&format!(
            "site {} belonged to {}, which is gone; {} takes it over",
            site.name,
            owner.display(),
            me.display()
        ));
        return Ok(());
    }
    Err(RealiseError::Owner {
        site: site.name.clone(),
        owner,
        claimant: me,
    })
}

fn record_owner(ctx: &RunContext, site: &SiteFile) -> Result<(), RealiseError> {
    let me = canonical(&site.path);
    if ctx.store.site_owner(&site.name).as_deref() != Some(me.as_path()) {
        ctx.store.set_site_owner(&site.name, &me)?;
    }
    Ok(())
}

fn canonical(p: &Path) -> PathBuf {
    fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Destinations prepared, waiting to be switched.
struct Prepared {
    lock: Option<(tempfile::NamedTempFile, PathBuf)>,
    link: Option<(PathBuf, PathBuf)>,
}

fn local(what: String, e: io::Error) -> RealiseError {
    RealiseError::Filesystem {
        message: what,
        source: e,
    }
}

/// Prepares the new lock (when it changed) and the new `result` link, touching nothing
/// the user sees.
fn prepare(
    lock: Option<(&Path, &str)>,
    link: &Path,
    target: &Path,
) -> Result<Prepared, RealiseError> {
    let lock = match lock {
        None => None,
        Some((path, text)) => Some(prepare_file(path, text)?),
    };
    let link = if fs::read_link(link).ok().as_deref() == Some(target) {
        None
    } else {
        if let Ok(meta) = fs::symlink_metadata(link)
            && !meta.file_type().is_symlink()
        {
            return Err(local(
                format!("cannot point {} at the new codebase", link.display()),
                io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "it exists and is not a symlink; mcb will not replace it (move it away or choose another path with --out)",
                ),
            ));
        }
        let dir = parent(link);
        fs::create_dir_all(dir)
            .map_err(|e| local(format!("cannot make the directory {}", dir.display()), e))?;
        let name = link
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "result".into());
        let staging = dir.join(format!(".{name}.mcb-{}", std::process::id()));
        let _ = fs::remove_file(&staging);
        std::os::unix::fs::symlink(target, &staging).map_err(|e| {
            local(
                format!("cannot point {} at the new codebase", link.display()),
                e,
            )
        })?;
        Some((staging, link.to_path_buf()))
    };
    Ok(Prepared { lock, link })
}

/// A file written beside `path` under a temporary name and synced, waiting to be renamed
/// over it.
fn prepare_file(
    path: &Path,
    text: &str,
) -> Result<(tempfile::NamedTempFile, PathBuf), RealiseError> {
    let cannot = |e| local(format!("cannot write {}", path.display()), e);
    if path.is_dir() {
        return Err(cannot(io::Error::other("it is a directory")));
    }
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    // 0666 less the umask: as readable as any file the user writes.
    let mut f = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .permissions(fs::Permissions::from_mode(0o666))
        .tempfile_in(parent(path))
        .map_err(cannot)?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.as_file().sync_all())
        .map_err(cannot)?;
    Ok((f, path.to_path_buf()))
}

/// Replaces `path` with `text` in one rename (a lock, a site file).
pub fn write_file_atomic(path: &Path, text: &str) -> Result<(), RealiseError> {
    let (f, path) = prepare_file(path, text)?;
    f.persist(&path)
        .map_err(|e| local(format!("cannot write {}", path.display()), e.error))?;
    Ok(())
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

impl Prepared {
    /// Will the lock be written?
    pub fn writes_lock(&self) -> bool {
        self.lock.is_some()
    }

    /// Renames the new lock into place.
    pub fn switch_lock(&mut self) -> Result<(), RealiseError> {
        if let Some((f, path)) = self.lock.take() {
            f.persist(&path)
                .map_err(|e| local(format!("cannot write {}", path.display()), e.error))?;
        }
        Ok(())
    }

    /// Renames the new link over the old one.
    pub fn switch_link(&mut self) -> Result<(), RealiseError> {
        if let Some((staging, link)) = self.link.take() {
            fs::rename(&staging, &link).map_err(|e| {
                let _ = fs::remove_file(&staging);
                local(
                    format!("cannot point {} at the new codebase", link.display()),
                    e,
                )
            })?;
        }
        Ok(())
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        // What was not switched is removed; the temporary lock removes itself.
        if let Some((staging, _)) = self.link.take() {
            let _ = fs::remove_file(staging);
        }
    }
}
