//! `deploy`: a generation laid out on a web server, from a git remote or from a store on
//! the same machine, as `DIR/releases/<commit>`; `DIR/current` switched to it in one
//! rename; the newest releases kept; and rollback to the release before.
//!
//! A release is files of its own: copy-on-write clones where the filesystem makes them,
//! else copies checked against the store as they are made; hardlinks to the store only
//! when asked (`--link hardlink`), since an edit on the server then edits the store's copy.
//! `releases`, `current` and the deploy lock are entries of `DIR` itself: a symlink in their
//! place is refused, never followed. A release deployed again is checked against its
//! generation first and laid out again when it drifted.

use std::path::{Path, PathBuf};

use mcb_git::GitStore;
use mcb_store::{GitOid, LinkMode, Store};

use crate::error::{Absent, DeployError, fs_error};

/// Releases kept by default: the current one and those before it.
pub const KEEP_RELEASES: usize = 5;

/// Where a deploy takes its generation from.
#[derive(Debug, Clone)]
pub enum DeploySource {
    /// A git remote (or a repository's path) holding the site's branch.
    Remote(String),
    /// An mcb store on this machine.
    Store(PathBuf),
}

impl DeploySource {
    /// A directory with `git/` and `generations/` is a store; anything else a remote.
    pub fn parse(text: &str) -> DeploySource {
        let p = Path::new(text);
        if p.join("git").is_dir() && p.join("generations").is_dir() {
            DeploySource::Store(p.to_path_buf())
        } else {
            DeploySource::Remote(text.to_string())
        }
    }
}

/// What to deploy, and how.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    pub source: DeploySource,
    pub site: String,
    /// A commit (prefix) or `gen-N` (`SITE/gen-N`); the newest generation when none.
    pub commit: Option<String>,
    pub dir: PathBuf,
    pub keep: usize,
    /// How a release's files relate to the store's (a store source only): clones by
    /// default; hardlinks only when asked.
    pub link: LinkMode,
    /// Deploy a generation whose recorded `mcb test` failed.
    pub untested: bool,
}

/// What `deploy` did.
#[derive(Debug, Clone)]
pub struct Deployed {
    pub site: String,
    pub commit: GitOid,
    pub release: PathBuf,
    /// `DIR/current` now points at `release`.
    pub current: PathBuf,
    /// What the web server serves: `current`, or `current/public` from Moodle 5.1.
    pub web_root: PathBuf,
    /// The release it pointed at before.
    pub previous: Option<PathBuf>,
    /// How the release's files were laid out (`copy` for a release from a remote).
    pub link: LinkMode,
    /// Files copied where clones or links were asked (another filesystem, no clones).
    pub copied: usize,
    /// The release existed and had drifted from its generation (these paths changed): it
    /// was laid out again.
    pub drifted: Vec<String>,
    /// Old releases removed.
    pub removed: Vec<PathBuf>,
    /// What `mcb test` recorded on the generation; none when it was never tested (or its
    /// results were not pushed with it).
    pub test: Option<mcb_realise::TestOutcome>,
}

/// An entry of the deploy directory that must be what mcb made: refused when something
/// else (a symlink leading out of it, a file) stands there.
fn check_entry(path: &Path, want_dir: bool) -> Result<(), DeployError> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(fs_error(format!("cannot read {}", path.display()), e)),
        Ok(m) => {
            let ok = if want_dir {
                m.file_type().is_dir()
            } else {
                m.file_type().is_symlink()
            };
            if ok {
                Ok(())
            } else {
                Err(DeployError::NotOurs {
                    path: path.to_path_buf(),
                    found: if m.file_type().is_symlink() {
                        "a symlink"
                    } else if m.is_dir() {
                        "a directory"
                    } else {
                        "a file"
                    },
                    wanted: if want_dir { "a directory" } else { "a symlink" },
                })
            }
        }
    }
}

fn current_release(dir: &Path) -> Option<PathBuf> {
    let target = std::fs::read_link(dir.join("current")).ok()?;
    Some(if target.is_absolute() {
        target
    } else {
        dir.join(target)
    })
}

/// Points `DIR/current` at `release` in one rename.
fn switch_current(dir: &Path, release: &Path) -> Result<(), DeployError> {
    let rel = release.strip_prefix(dir).unwrap_or(release);
    let staging = dir.join(format!(".current.mcb-{}", std::process::id()));
    let _ = std::fs::remove_file(&staging);
    std::os::unix::fs::symlink(rel, &staging)
        .and_then(|()| std::fs::rename(&staging, dir.join("current")))
        .map_err(|e| {
            let _ = std::fs::remove_file(&staging);
            fs_error(format!("cannot switch {}/current", dir.display()), e)
        })
}

/// The releases in `DIR/releases`, oldest first (by the order they were deployed): real
/// directories named by a commit, nothing else.
fn releases(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir.join("releases"))
        .map(|rd| {
            rd.flatten()
                .filter(|e| GitOid::parse(&e.file_name().to_string_lossy()).is_ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out.into_iter().map(|(_, p)| p).collect()
}

/// Removes all but the newest `keep` releases, never the current one.
fn prune(dir: &Path, keep: usize) -> Vec<PathBuf> {
    let current = current_release(dir);
    let all = releases(dir);
    let mut removed = Vec::new();
    let extra = all.len().saturating_sub(keep.max(1));
    for old in all.into_iter().take(extra) {
        if Some(&old) == current.as_ref() {
            continue;
        }
        if mcb_store::remove_tree(&old).is_ok() {
            removed.push(old);
        }
    }
    removed
}

/// Holds `DIR/.mcb-deploy.lock` (never through a symlink): one deploy or rollback at a
/// time in a deploy directory.
fn lock_deploy_dir(dir: &Path) -> Result<std::fs::File, DeployError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(".mcb-deploy.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| fs_error(format!("cannot open {}", path.display()), e))?;
    f.lock()
        .map_err(|e| fs_error(format!("cannot lock {}", path.display()), e))?;
    Ok(f)
}

/// Marks a release as deployed now (the newest).
fn touch(release: &Path) {
    if let Ok(f) = std::fs::File::open(release) {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
}

/// The commit of site `name` that `wanted` names (`gen-N`, `SITE/gen-N`, `-N`, a commit's
/// prefix; its newest when none), among the generations on the branch `tip` heads.
pub fn pick_commit(
    git: &GitStore,
    name: &str,
    tip: &GitOid,
    wanted: Option<&str>,
) -> Result<GitOid, DeployError> {
    let Some(c) = wanted else {
        return Ok(tip.clone());
    };
    let unknown = |message: String| DeployError::Unknown {
        message,
        about: Absent::Generation,
    };
    let name_ = mcb_git::GenerationName::parse(c, name).map_err(unknown)?;
    let log = git.first_parent_log(tip, usize::MAX)?;
    let at = name_.position(&log, name).map_err(unknown)?;
    Ok(log[at].0.clone())
}

/// Lays generation `tree` out under `top` (an empty directory): from the store's objects
/// when a store is the source, else from git's blobs. Returns (how, files copied).
fn lay_out_release(
    store: Option<&Store>,
    git: &GitStore,
    tree: &GitOid,
    top: &Path,
    link: LinkMode,
) -> Result<(LinkMode, usize), DeployError> {
    match store {
        Some(store) => {
            let done = mcb_realise::stage::materialise::lay_out_tree(
                store,
                git,
                tree,
                top,
                link,
                &mcb_realise::Silent,
            )?;
            Ok((link, done.copied))
        }
        None => {
            git.write_tree(tree, top)?;
            Ok((LinkMode::Copy, 0))
        }
    }
}

/// Deploys site `request.site` (its newest generation, or the one named) into
/// `request.dir`: its release laid out, then `current` switched to it.
pub fn deploy(request: &DeployRequest) -> Result<Deployed, DeployError> {
    let (deployed, _lock) = stage_release(request)?;
    finish_switch(&request.dir, deployed, request.keep)
}

/// Lays out the release of `request` in `request.dir/releases` (checked, laid out again
/// when it drifted) and leaves `current` as it is, so that a caller can switch when the
/// site is ready for it ([`switch_release`]). Returns the release, and the deploy
/// directory's lock, held until the caller drops it.
pub fn stage_release(request: &DeployRequest) -> Result<(Deployed, std::fs::File), DeployError> {
    let dir = &request.dir;
    let name = request.site.as_str();
    std::fs::create_dir_all(dir)
        .map_err(|e| fs_error(format!("cannot make {}", dir.display()), e))?;
    let releases_dir = dir.join("releases");
    check_entry(&releases_dir, true)?;
    check_entry(&dir.join("current"), false)?;
    std::fs::create_dir_all(&releases_dir)
        .map_err(|e| fs_error(format!("cannot make {}", releases_dir.display()), e))?;
    let lock = lock_deploy_dir(dir)?;
    let previous = current_release(dir);
    // The repository the generation is read from: the store's, or a cache of the remote.
    let (git, store, tip) = match &request.source {
        DeploySource::Store(s) => {
            let store = Store::open_existing(s)?;
            let git = mcb_catalog::sources::open_git(&store)?;
            let tip = git.branch_head(name)?;
            (git, Some(store), tip)
        }
        DeploySource::Remote(r) => {
            mcb_git::program::check_remote(r)?;
            let cache = dir.join(".mcb-git");
            check_entry(&cache, true)?;
            GitStore::init_bare_with_git(&cache)?;
            let git = GitStore::open(&cache)?;
            git.fetch_refspec(r, &format!("+refs/heads/{name}:refs/remotes/mcb/{name}"))
                .map_err(|e| DeployError::Transfer {
                    what: format!("cannot fetch site {name} from {r}"),
                    source: e,
                })?;
            // The test results `push` sends with the branch; a remote without them has
            // none to give (the branch came through, so the remote answers).
            let notes = mcb_realise::TEST_NOTES;
            let _ = git.fetch_refspec(r, &format!("+{notes}:{notes}"));
            let tip = git.ref_target(&format!("refs/remotes/mcb/{name}"))?;
            (git, None, tip)
        }
    };
    let tip = tip.ok_or_else(|| DeployError::Unknown {
        message: format!("site {name} is not there"),
        about: Absent::Site,
    })?;
    let commit = pick_commit(&git, name, &tip, request.commit.as_deref())?;
    let test = mcb_realise::test_note::outcomes(&git)?
        .get(&commit)
        .copied();
    if test == Some(mcb_realise::TestOutcome::Failed) && !request.untested {
        return Err(DeployError::TestFailed {
            site: name.to_string(),
            commit: commit.clone(),
        });
    }
    let tree = git.commit_tree_id(&commit)?;
    let link = if store.is_some() {
        request.link
    } else {
        LinkMode::Copy
    };
    let release = releases_dir.join(commit.as_str());
    check_entry(&release, true)?;
    // A release deployed before is checked against its generation: what drifted (a
    // hotfix, a planted file) is never served again.
    let drifted: Vec<String> = if release.is_dir() {
        let seen = mcb_realise::ops::maintain::scan_tree(&release);
        let d = mcb_realise::ops::maintain::drift_from(&git, &tree, &seen)?;
        d.modified
            .into_iter()
            .chain(d.added)
            .chain(d.removed)
            .collect()
    } else {
        Vec::new()
    };
    let mut copied = 0;
    let mut used = link;
    if !release.is_dir() || !drifted.is_empty() {
        let staging = tempfile::Builder::new()
            .prefix(".staging-")
            .tempdir_in(&releases_dir)
            .map_err(|e| fs_error("cannot make a release directory".into(), e))?;
        let top = staging.path().join("x");
        std::fs::create_dir(&top)
            .map_err(|e| fs_error("cannot make a release directory".into(), e))?;
        let laid = lay_out_release(store.as_ref(), &git, &tree, &top, link);
        let (how, n) = match laid {
            Ok(x) => x,
            Err(e) => {
                let _ = mcb_store::remove_tree(staging.path());
                return Err(e);
            }
        };
        used = how;
        copied = n;
        if release.is_dir() {
            // The drifted release leaves in one rename; the sound one takes its place.
            let aside = staging.path().join("drifted");
            std::fs::rename(&release, &aside)
                .map_err(|e| fs_error("cannot move the drifted release aside".into(), e))?;
        }
        std::fs::rename(&top, &release)
            .map_err(|e| fs_error("cannot place the release".into(), e))?;
        let _ = mcb_store::remove_tree(&staging.keep());
    }
    Ok((
        Deployed {
            site: name.to_string(),
            commit,
            current: dir.join("current"),
            web_root: web_root(dir, &release),
            release,
            previous,
            link: used,
            copied,
            drifted,
            removed: Vec::new(),
            test,
        },
        lock,
    ))
}

/// Switches `current` to a release [`stage_release`] laid out, and keeps the newest `keep`.
fn finish_switch(dir: &Path, mut d: Deployed, keep: usize) -> Result<Deployed, DeployError> {
    // Deployed (again): it is the newest release now.
    touch(&d.release);
    switch_current(dir, &d.release)?;
    d.removed = prune(dir, keep);
    Ok(d)
}

/// Points `dir/current` at `release` (a release of `dir/releases`) in one rename: the
/// switch of a staged release, or back to the one before. The caller holds the lock
/// [`stage_release`] returned, or [`lock_deploy`]'s.
pub fn switch_release(dir: &Path, release: &Path) -> Result<(), DeployError> {
    check_entry(&dir.join("current"), false)?;
    touch(release);
    switch_current(dir, release)
}

/// Holds the deploy directory's lock: one deploy, rollback or apply at a time.
pub fn lock_deploy(dir: &Path) -> Result<std::fs::File, DeployError> {
    lock_deploy_dir(dir)
}

/// The release `dir/current` points at.
pub fn served_release(dir: &Path) -> Option<PathBuf> {
    current_release(dir)
}

/// Removes all but the newest `keep` releases (never the current one).
pub fn prune_releases(dir: &Path, keep: usize) -> Vec<PathBuf> {
    prune(dir, keep)
}

/// `DIR/current`, or its `public` when the release keeps its web root there (Moodle 5.1+).
fn web_root(dir: &Path, release: &Path) -> PathBuf {
    let current = dir.join("current");
    if release.join("public/version.php").is_file() {
        current.join("public")
    } else {
        current
    }
}

/// Switches `DIR/current` back to the release deployed before it.
pub fn rollback_deploy(dir: &Path) -> Result<Deployed, DeployError> {
    check_entry(&dir.join("releases"), true)?;
    check_entry(&dir.join("current"), false)?;
    let _lock = match dir.is_dir() {
        true => Some(lock_deploy_dir(dir)?),
        false => None,
    };
    let current = current_release(dir).ok_or_else(|| DeployError::Unknown {
        message: format!("{}/current is not a deployed release", dir.display()),
        about: Absent::Release,
    })?;
    let all = releases(dir);
    let at = all.iter().position(|r| *r == current);
    let before = at
        .and_then(|i| i.checked_sub(1))
        .and_then(|i| all.get(i).cloned())
        .ok_or_else(|| DeployError::Unknown {
            message: "there is no release before the current one".into(),
            about: Absent::EarlierRelease,
        })?;
    switch_current(dir, &before)?;
    // The one rolled back from is the newest no more.
    touch(&before);
    let commit = before
        .file_name()
        .and_then(|n| GitOid::parse(&n.to_string_lossy()).ok())
        .ok_or_else(|| DeployError::Unknown {
            message: format!("{} is not named by a commit", before.display()),
            about: Absent::Release,
        })?;
    Ok(Deployed {
        site: String::new(),
        commit,
        current: dir.join("current"),
        web_root: web_root(dir, &before),
        release: before,
        previous: Some(current),
        link: LinkMode::Copy,
        copied: 0,
        drifted: Vec::new(),
        removed: Vec::new(),
        test: None,
    })
}
