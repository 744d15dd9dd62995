//! The commit stage: the lock the run arrived at, and the deterministic commit that records
//! it on the site's branch. Everything in the commit comes from the lock and its parent
//! (author, date, message with what moved), so the same lock on the same parent always
//! gives the same commit. The branch
//! itself moves only when the run publishes.

use mcb_config::{LOCK_FORMAT, Lock, LockedMoodle, LockedPlugin, SiteFile};
use mcb_git::{CommitInfo, GitStore};
use mcb_store::GitOid;

use crate::changes::{Change, Snapshot};
use crate::error::RealiseError;
use crate::stage::fetch::Fetched;
use crate::stage::plan::Plan;

/// Where the lock starts in a site commit's message.
pub const LOCK_MARKER: &str = "\n--- site.lock ---\n";

/// A commit made, or the branch's head when it already holds the tree.
#[derive(Debug, Clone)]
pub struct Committed {
    pub lock: Lock,
    pub commit: GitOid,
    /// The branch's head before this run.
    pub head: Option<GitOid>,
    /// A new commit was written (the branch does not hold this tree yet).
    pub new_commit: bool,
    /// What moved since the head's lock.
    pub changes: Vec<Change>,
}

/// The lock of a plan whose sources are fetched and whose tree is `tree`; `warnings` are
/// what choosing them warned about (the same on every machine, unlike what a store found).
pub fn lock_of<P>(
    site: &SiteFile,
    plan: &Plan<P>,
    fetched: &Fetched,
    tree: &GitOid,
    warnings: &[String],
) -> Lock {
    let core = &plan.core.version;
    Lock {
        format: LOCK_FORMAT,
        site: site.name.clone(),
        moodle: LockedMoodle {
            spec: site.moodle.spec.as_ref().map(|s| s.to_string()),
            request: site.moodle.source.clone(),
            source: fetched.core.locked.clone(),
            build: core.build.to_string(),
            release: core.release.clone(),
            branch: core.branch.0,
            manifest: fetched.core.hash.clone(),
            date: fetched.core.date,
        },
        plugins: plan
            .plugins
            .iter()
            .zip(&fetched.plugins)
            .map(|(p, s)| LockedPlugin {
                component: p.component.to_string(),
                request: p.request.as_ref().map(|r| r.source.clone()),
                pin: p.request.as_ref().and_then(|r| r.version.clone()),
                auto: p.auto(),
                version: p.info.version.map(|v| v.to_string()).unwrap_or_default(),
                release: p.info.release.clone(),
                source: s.locked.clone(),
                install_path: p.install_path.clone(),
                manifest: s.hash.clone(),
                date: s.date,
            })
            .collect(),
        links: site.links.clone(),
        warnings: warnings.to_vec(),
        vendor: fetched.vendor.as_ref().map(|v| v.locked.clone()),
        tree: tree.clone(),
    }
}

/// What a new commit on a site branch says first: a realise, or a rollback.
#[derive(Debug, Clone)]
pub enum Title {
    Realise,
    Rollback { to: GitOid },
}

/// Writes the commit of `lock` on top of the site branch's head (none when the head
/// already holds the tree and `title` is a realise). Its message lists what moved since
/// the head's lock. The branch does not move.
pub fn commit(
    git: &GitStore,
    branch: &str,
    lock: Lock,
    title: Title,
) -> Result<Committed, RealiseError> {
    let head = git.branch_head(branch)?;
    let head_tree = match &head {
        Some(h) => Some(git.commit_tree_id(h)?),
        None => None,
    };
    let parent_lock = match &head {
        Some(h) => lock_in_commit(git, h)?,
        None => None,
    };
    let changes =
        Snapshot::of_lock(&lock).changes_from(parent_lock.as_ref().map(Snapshot::of_lock).as_ref());
    let (commit, new_commit) = match &head {
        Some(h) if head_tree.as_ref() == Some(&lock.tree) && matches!(title, Title::Realise) => {
            (h.clone(), false)
        }
        _ => {
            // Never older than the parent: history reads in order, and stays a function of
            // the lock and the parent.
            let parent_time = match &head {
                Some(h) => git.commit_time(h)?,
                None => 0,
            };
            let info = CommitInfo {
                message: commit_message(&lock, &title, &changes),
                time: lock.source_date().max(parent_time),
                parent: head.clone(),
            };
            (git.write_commit(&lock.tree, &info)?, true)
        }
    };
    Ok(Committed {
        lock,
        commit,
        head,
        new_commit,
        changes,
    })
}

/// Everything in the message comes from the lock, the title and the parent's lock, so the
/// same lock on the same parent always gives the same commit.
fn commit_message(lock: &Lock, title: &Title, changes: &[Change]) -> String {
    let mut m = match title {
        Title::Realise => format!(
            "{}: Moodle {} with {} plugin{}\n",
            lock.site,
            lock.moodle.release,
            lock.plugins.len(),
            if lock.plugins.len() == 1 { "" } else { "s" },
        ),
        Title::Rollback { to } => format!(
            "{}: roll back to {} (Moodle {})\n",
            lock.site,
            &to.as_str()[..12],
            lock.moodle.release
        ),
    };
    if !changes.is_empty() {
        m.push('\n');
        for c in changes {
            m.push_str(&format!("{c}\n"));
        }
    }
    m.push_str(&format!(
        "\nmoodle {} {}\n",
        lock.moodle.build,
        lock.moodle.source.label()
    ));
    for p in &lock.plugins {
        m.push_str(&format!(
            "{} {} {}{} {}\n",
            p.component,
            p.version,
            p.install_path,
            if p.auto { " (auto)" } else { "" },
            p.source.label()
        ));
    }
    // The whole lock, so `mcb reproduce COMMIT` and `mcb rollback` can rebuild it.
    m.push_str(LOCK_MARKER);
    m.push_str(&lock.to_text());
    m
}

/// The lock a site commit carries in its message.
pub fn lock_in_commit(git: &GitStore, commit: &GitOid) -> Result<Option<Lock>, RealiseError> {
    let message = git.commit_message(commit)?;
    let Some((_, text)) = message.split_once(LOCK_MARKER) else {
        return Ok(None);
    };
    let label = std::path::PathBuf::from(format!("commit {commit}"));
    Ok(Some(Lock::parse(&label, text)?))
}
