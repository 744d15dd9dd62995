//! Beyond one machine: `push` sends a site's branch (and its test results) to any git
//! remote; `deploy` lays a generation out on a web server from such a remote, or from a
//! store on that machine, as `DIR/releases/<commit>`, switches `DIR/current` to it in one
//! rename, keeps the newest releases, and rolls back. git carries the codebases; the `git`
//! program is run with its arguments passed apart, never through a shell.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use mcb_store::GitOid;

use crate::error::RealiseError;
use crate::options::Options;
use crate::site_test::TEST_NOTES;

/// Releases kept by default: the current one and those before it.
pub const KEEP_RELEASES: usize = 5;

fn fail(message: impl Into<String>, hint: impl Into<String>) -> RealiseError {
    RealiseError::Environment {
        message: message.into(),
        hint: Some(hint.into()),
    }
}

fn fs_error(what: String, e: std::io::Error) -> RealiseError {
    RealiseError::Filesystem {
        message: what,
        source: e,
    }
}

/// A remote as the user gave it, refused when git would read it as an option.
fn check_remote(remote: &str) -> Result<(), RealiseError> {
    if remote.is_empty() || remote.starts_with('-') || remote.chars().any(char::is_control) {
        return Err(fail(
            format!("'{}' is not a git remote", remote.escape_debug()),
            "give a URL (ssh://, https://, git://, file://) or the path of a repository",
        ));
    }
    Ok(())
}

fn git(git_dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.arg("--git-dir")
        .arg(git_dir)
        .env("GIT_TERMINAL_PROMPT", "0");
    c
}

fn run_git(c: &mut Command, what: &str) -> Result<String, RealiseError> {
    let out = c
        .output()
        .map_err(|e| fail(format!("cannot run git: {e}"), "install git"))?;
    if !out.status.success() {
        return Err(fail(
            format!("{what}: {}", String::from_utf8_lossy(&out.stderr).trim()),
            "check the remote's URL, that it is reachable, and your access to it",
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What `push` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pushed {
    pub site: String,
    pub remote: String,
    pub commit: GitOid,
    /// The remote's branch or tags moved (false: all was there already).
    pub updated: bool,
    /// The generation tags pushed (`SITE/gen-N`, one per commit of the branch), those the
    /// remote had included.
    pub tags: usize,
}

/// Pushes site `name`'s branch and its test results to `remote`. A remote whose branch
/// has commits this one lacks is refused unless `force`.
pub fn push(opts: &Options, name: &str, remote: &str, force: bool) -> Result<Pushed, RealiseError> {
    check_remote(remote)?;
    let store = mcb_store::Store::open_existing(&opts.store)?;
    let gs = mcb_catalog::sources::open_git(&store)?;
    let head = gs.branch_head(name)?.ok_or_else(|| {
        fail(
            format!("the store has no site named {name}"),
            "`mcb sites` lists the sites in the store",
        )
    })?;
    // Tagging writes refs of the site: one writer at a time, as for realise, and a tag lock
    // a killed push left is cleared under that lock.
    let _site_lock = store.lock_named(
        &format!("site-{name}"),
        mcb_store::LockMode::Exclusive,
        || {},
    )?;
    gs.clear_stale_ref_locks(&format!("tags/{name}"));
    let tags = gs.tag_generations(name)?;
    let branch = format!("refs/heads/{name}:refs/heads/{name}");
    let tag_spec = format!("refs/tags/{name}/gen-*:refs/tags/{name}/gen-*");
    let mut c = git(gs.path());
    c.args(["push", "--porcelain"]);
    c.arg(remote);
    if force {
        c.arg(format!("+{branch}")).arg(format!("+{tag_spec}"));
    } else {
        c.arg(branch).arg(tag_spec);
    }
    let has_notes = git(gs.path())
        .args(["rev-parse", "--verify", "-q", TEST_NOTES])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if has_notes {
        c.arg(format!("+{TEST_NOTES}:{TEST_NOTES}"));
    }
    let out = c
        .output()
        .map_err(|e| fail(format!("cannot run git: {e}"), "install git"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let ours = format!("refs/heads/{name}:refs/heads/{name}");
    let line = text.lines().find(|l| l.contains(&ours)).unwrap_or("");
    if line.starts_with('!') {
        return Err(RealiseError::Owner {
            message: format!(
                "{remote} has commits on branch {name} that this store does not: it has diverged ({})",
                line.rsplit('\t').next().unwrap_or("").trim()
            ),
            hint: "look at both histories; --force makes the remote's branch this store's".into(),
        });
    }
    let tag_prefix = format!("refs/tags/{name}/gen-");
    let ref_lines = || {
        text.lines()
            .filter(|l| l.starts_with(['!', '=', ' ', '+', '*', '-']) && l.contains('\t'))
    };
    if let Some(bad) = ref_lines().find(|l| l.starts_with('!') && l.contains(&tag_prefix)) {
        let tag = bad.split('\t').nth(1).unwrap_or("").split(':').next_back();
        return Err(RealiseError::Owner {
            message: format!(
                "{remote} has tag {} on another commit: its history of site {name} is not this store's",
                tag.unwrap_or("").trim_start_matches("refs/tags/")
            ),
            hint: "look at both histories; --force makes the remote's branch and tags this store's"
                .into(),
        });
    }
    if !out.status.success() {
        return Err(fail(
            format!(
                "cannot push to {remote}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            "check the remote's URL, that it is reachable, and your access to it",
        ));
    }
    Ok(Pushed {
        site: name.to_string(),
        remote: remote.to_string(),
        commit: head,
        updated: ref_lines().any(|l| !l.starts_with('=')),
        tags: tags.len(),
    })
}

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

/// What `deploy` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Deployed {
    pub site: String,
    pub commit: GitOid,
    pub release: PathBuf,
    /// `DIR/current` now points at `release`.
    pub current: PathBuf,
    /// The release it pointed at before.
    pub previous: Option<PathBuf>,
    /// Hardlinked from a store on this machine (else plain files).
    pub hardlinked: bool,
    /// Old releases removed.
    pub removed: Vec<PathBuf>,
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
fn switch_current(dir: &Path, release: &Path) -> Result<(), RealiseError> {
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

/// The releases in `DIR/releases`, oldest first (by the order they were deployed).
fn releases(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir.join("releases"))
        .map(|rd| {
            rd.flatten()
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
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
        if remove_release(&old).is_ok() {
            removed.push(old);
        }
    }
    removed
}

/// A release's files are read-only when hardlinked from a store: make its directories
/// writable again before removing them.
fn remove_release(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for e in walkdir::WalkDir::new(path).into_iter().flatten() {
        if e.file_type().is_dir() {
            let _ = std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o755));
        }
    }
    std::fs::remove_dir_all(path)
}

/// Holds `DIR/.mcb-deploy.lock`: one deploy or rollback at a time in a deploy directory.
fn lock_deploy_dir(dir: &Path) -> Result<std::fs::File, RealiseError> {
    let path = dir.join(".mcb-deploy.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| fs_error(format!("cannot open {}", path.display()), e))?;
    f.lock()
        .map_err(|e| fs_error(format!("cannot lock {}", path.display()), e))?;
    Ok(f)
}

/// Deploys site `name` (its newest generation, or `commit`) from `source` into `dir`.
pub fn deploy(
    source: &DeploySource,
    name: &str,
    commit: Option<&str>,
    dir: &Path,
    keep: usize,
) -> Result<Deployed, RealiseError> {
    std::fs::create_dir_all(dir.join("releases"))
        .map_err(|e| fs_error(format!("cannot make {}/releases", dir.display()), e))?;
    let _lock = lock_deploy_dir(dir)?;
    let previous = current_release(dir);
    // The repository the generation is read from: the store's, or a cache of the remote.
    let (git_dir, store) = match source {
        DeploySource::Store(s) => (s.join("git"), Some(mcb_store::Store::open_existing(s)?)),
        DeploySource::Remote(r) => {
            check_remote(r)?;
            let cache = dir.join(".mcb-git");
            if !cache.join("HEAD").exists() {
                run_git(
                    Command::new("git")
                        .args(["init", "-q", "--bare"])
                        .arg(&cache),
                    "cannot make the deploy's git cache",
                )?;
            }
            run_git(
                git(&cache)
                    .args(["fetch", "-q", "--no-tags"])
                    .arg(r)
                    .arg(format!("+refs/heads/{name}:refs/remotes/mcb/{name}")),
                &format!("cannot fetch site {name} from {r}"),
            )?;
            (cache, None)
        }
    };
    let tip_ref = match source {
        DeploySource::Store(_) => format!("refs/heads/{name}"),
        DeploySource::Remote(_) => format!("refs/remotes/mcb/{name}"),
    };
    let tip = run_git(
        git(&git_dir)
            .args(["rev-parse", "--verify", "-q"])
            .arg(format!("{tip_ref}^{{commit}}")),
        &format!("site {name} is not there"),
    )?;
    let generation = commit.and_then(|c| {
        c.strip_prefix(&format!("{name}/"))
            .unwrap_or(c)
            .strip_prefix("gen-")
            .and_then(|n| n.parse::<usize>().ok())
    });
    let wanted = match (commit, generation) {
        // `gen-N` (or the tag `SITE/gen-N` push makes): the Nth commit of the branch.
        (Some(c), Some(n)) => {
            let log = run_git(
                git(&git_dir)
                    .args(["rev-list", "--first-parent", "--reverse"])
                    .arg(tip.trim()),
                &format!("cannot read the history of site {name}"),
            )?;
            log.lines()
                .nth(n.wrapping_sub(1))
                .map(str::to_string)
                .ok_or_else(|| {
                    fail(
                        format!("site {name} has no generation {c}"),
                        "`mcb history` lists the generations; gen-1 is the first",
                    )
                })?
        }
        (Some(c), None) => {
            if !c.bytes().all(|b| b.is_ascii_hexdigit()) || c.len() < 7 {
                return Err(fail(
                    format!("--commit {c} is not a commit id"),
                    "give at least 7 hex digits of a commit on the site's branch, or gen-N",
                ));
            }
            let full = run_git(
                git(&git_dir)
                    .args(["rev-parse", "--verify", "-q"])
                    .arg(format!("{c}^{{commit}}")),
                &format!("commit {c} is not there"),
            )?;
            // Only a generation of this site: a commit its branch reaches.
            let reached = git(&git_dir)
                .args(["merge-base", "--is-ancestor", full.trim(), tip.trim()])
                .status()
                .is_ok_and(|s| s.success());
            if !reached {
                return Err(fail(
                    format!("commit {c} is not a generation of site {name}"),
                    "`mcb history` lists the generations",
                ));
            }
            full
        }
        (None, _) => tip,
    };
    let commit = GitOid::parse(wanted.trim()).map_err(|e| {
        fail(
            format!("git gave a commit id that is not one: {e}"),
            "check the remote",
        )
    })?;
    let release = dir.join("releases").join(commit.as_str());
    let mut hardlinked = false;
    if !release.is_dir() {
        let staging = dir
            .join("releases")
            .join(format!(".staging-{}", std::process::id()));
        let _ = remove_release(&staging);
        std::fs::create_dir_all(&staging)
            .map_err(|e| fs_error("cannot make a release directory".into(), e))?;
        let laid = (|| -> Result<bool, RealiseError> {
            let tree = run_git(
                git(&git_dir)
                    .args(["rev-parse"])
                    .arg(format!("{}^{{tree}}", commit.as_str())),
                "cannot read the generation's tree",
            )?;
            if let Some(store) = &store
                && let Ok(t) = GitOid::parse(tree.trim())
                && matches!(store.check_generation(&t), Ok(Some(d)) if d.is_empty())
            {
                crate::site_test::link_tree(&store.generation_path(&t), &staging.join("x"))?;
                return Ok(true);
            }
            // Plain files from git: `git archive` into tar, symlinks as symlinks.
            let mut archive = git(&git_dir)
                .args(["archive", "--format=tar", commit.as_str()])
                .stdout(Stdio::piped())
                .spawn()
                .map_err(|e| fail(format!("cannot run git: {e}"), "install git"))?;
            let out_dir = staging.join("x");
            std::fs::create_dir_all(&out_dir)
                .map_err(|e| fs_error("cannot make a release directory".into(), e))?;
            let tar = Command::new("tar")
                .args(["-x", "-f", "-", "-C"])
                .arg(&out_dir)
                .stdin(archive.stdout.take().expect("piped"))
                .status()
                .map_err(|e| fail(format!("cannot run tar: {e}"), "install tar"))?;
            let archived = archive.wait().is_ok_and(|s| s.success());
            if !tar.success() || !archived {
                return Err(fail(
                    "cannot lay the generation out from git",
                    "check the repository",
                ));
            }
            Ok(false)
        })();
        match laid {
            Ok(h) => hardlinked = h,
            Err(e) => {
                let _ = remove_release(&staging);
                return Err(e);
            }
        }
        std::fs::rename(staging.join("x"), &release)
            .map_err(|e| fs_error("cannot place the release".into(), e))?;
        let _ = std::fs::remove_dir_all(&staging);
    } else {
        // Deployed again: it is the newest release now.
        let _ = Command::new("touch").arg(&release).status();
    }
    switch_current(dir, &release)?;
    let removed = prune(dir, keep);
    Ok(Deployed {
        site: name.to_string(),
        commit,
        current: dir.join("current"),
        release,
        previous,
        hardlinked,
        removed,
    })
}

/// Switches `DIR/current` back to the release deployed before it.
pub fn rollback_deploy(dir: &Path) -> Result<Deployed, RealiseError> {
    let _lock = match dir.is_dir() {
        true => Some(lock_deploy_dir(dir)?),
        false => None,
    };
    let current = current_release(dir).ok_or_else(|| {
        fail(
            format!("{}/current is not a deployed release", dir.display()),
            "deploy first",
        )
    })?;
    let all = releases(dir);
    let at = all.iter().position(|r| *r == current);
    let before = at
        .and_then(|i| i.checked_sub(1))
        .and_then(|i| all.get(i).cloned())
        .ok_or_else(|| {
            fail(
                "there is no release before the current one",
                "deploy the generation you want with --commit",
            )
        })?;
    switch_current(dir, &before)?;
    // The one rolled back from is the newest no more.
    let _ = Command::new("touch").arg(&before).status();
    let commit = before
        .file_name()
        .and_then(|n| GitOid::parse(&n.to_string_lossy()).ok())
        .ok_or_else(|| {
            fail(
                "the release directory is not named by its commit",
                "deploy again",
            )
        })?;
    Ok(Deployed {
        site: String::new(),
        commit,
        current: dir.join("current"),
        release: before,
        previous: Some(current),
        hardlinked: false,
        removed: Vec::new(),
    })
}
