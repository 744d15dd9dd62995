//! A site's past and its end: `history` (the generations on its branch, newest first),
//! `rollback` (an earlier generation made current again, as a new commit), `sites` (every
//! site in the store) and `forget` (a site retired, so that `gc` frees what only it used).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use mcb_config::{Lock, SiteFile};
use mcb_store::{GitOid, LinkMode, ObjectHash, Store};

use crate::changes::{Change, Downgrade, Snapshot};
use crate::context::RunContext;
use crate::error::RealiseError;
use crate::options::RunOptions;
use crate::report::{Reporter, Stage};
use crate::stage::commit::{Title, commit, lock_in_commit};
use crate::stage::publish::{check_owner, publish};

/// The most commits `history` and `rollback` walk on a branch.
const MAX_HISTORY: usize = 100_000;

/// A site named on the command line: its site file, or its name in the store.
#[derive(Debug, Clone)]
pub struct SiteRef {
    pub name: String,
    /// The site file, when one was given or the store records one.
    pub file: Option<PathBuf>,
}

impl SiteRef {
    /// `arg` is a site file when one exists at that path, else a site's name.
    pub fn parse(arg: &str, store: &Path) -> Result<SiteRef, RealiseError> {
        let path = Path::new(arg);
        if path.is_file() {
            let site = SiteFile::load(path)?;
            return Ok(SiteRef {
                name: site.name.clone(),
                file: Some(path.to_path_buf()),
            });
        }
        let owner = Store::open_existing(store)
            .ok()
            .and_then(|s| s.site_owner(arg))
            .filter(|p| p.is_file());
        Ok(SiteRef {
            name: arg.to_string(),
            file: owner,
        })
    }
}

/// One generation of a site: a commit on its branch.
#[derive(Debug, Clone)]
pub struct Generation {
    /// Its place in the site's history, 1 for the first commit: `mcb push` tags it
    /// `SITE/gen-N`, `mcb deploy --commit gen-N` takes it.
    pub number: usize,
    pub commit: GitOid,
    pub tree: GitOid,
    /// The commit's date: its newest source's, seconds since the epoch.
    pub date: i64,
    /// The commit's first line.
    pub title: String,
    pub moodle_release: Option<String>,
    /// What moved against the generation before it.
    pub changes: Vec<Change>,
    /// The store still holds the generation's files (gc has not removed them).
    pub kept: bool,
    /// It is the site's current generation.
    pub current: bool,
    /// What `mcb test` found for it ("passed", "FAILED"), when it was tested.
    pub test: Option<String>,
    /// When this store made it (seconds since the epoch); none when it was made before
    /// mcb recorded it, or by another store.
    pub made: Option<i64>,
    /// When a `result` link was switched to it, oldest first.
    pub served: Vec<i64>,
}

fn no_site(name: &str) -> RealiseError {
    RealiseError::Usage {
        message: format!("the store has no site named {name}"),
        about: crate::error::Named::Site,
    }
}

/// The generations on site `name`'s branch, newest first (at most `limit`).
pub fn history(store: &Path, name: &str, limit: usize) -> Result<Vec<Generation>, RealiseError> {
    let store = Store::open_existing(store)?;
    let git = mcb_catalog::sources::open_git(&store)?;
    let head = git.branch_head(name)?.ok_or_else(|| no_site(name))?;
    // One more than shown: the oldest shown needs its parent's lock for its changes.
    let log = git.first_parent_log(&head, limit.saturating_add(1))?;
    let total = if log.len() <= limit {
        log.len()
    } else {
        git.first_parent_log(&head, usize::MAX)?.len()
    };
    let outcomes = crate::test_note::outcomes(&git)?;
    let mut times = crate::served_note::read(&git)?;
    let locks: Vec<Option<Lock>> = log
        .iter()
        .map(|(c, _, _)| lock_in_commit(&git, c).ok().flatten())
        .collect();
    let mut out = Vec::new();
    for (i, (commit, tree, time)) in log.iter().enumerate().take(limit) {
        let lock = locks[i].as_ref();
        let parent = locks.get(i + 1).and_then(Option::as_ref);
        let changes = match lock {
            Some(l) => Snapshot::of_lock(l).changes_from(parent.map(Snapshot::of_lock).as_ref()),
            None => Vec::new(),
        };
        let message = git.commit_message(commit)?;
        out.push(Generation {
            number: total - i,
            commit: commit.clone(),
            tree: tree.clone(),
            date: *time,
            title: message.lines().next().unwrap_or("").to_string(),
            moodle_release: lock.map(|l| l.moodle.release.clone()),
            changes,
            kept: store.generation_path(tree).is_dir(),
            current: i == 0,
            test: outcomes.get(commit).map(|o| o.word().to_string()),
            made: times.get(commit).and_then(|t| t.made),
            served: times.remove(commit).map(|t| t.served).unwrap_or_default(),
        });
    }
    Ok(out)
}

/// What a rollback did.
#[derive(Debug, Clone)]
pub struct RolledBack {
    pub site: String,
    /// The generation rolled back to.
    pub to: GitOid,
    /// The new commit that records the rollback.
    pub commit: GitOid,
    pub tree: GitOid,
    pub path: PathBuf,
    pub link: PathBuf,
    pub moodle_release: String,
    /// Everything that moves, and among it what goes down.
    pub changes: Vec<Change>,
    pub downgrades: Vec<Downgrade>,
    /// The generation was gone from the store and was laid out again from git.
    pub from_git: bool,
    pub lock_written: bool,
}

/// How a rollback lays out and serves the generation it goes back to.
#[derive(Debug, Clone)]
pub struct RollbackOptions {
    /// Where the `result` link goes (default: `result` beside the site file).
    pub out: Option<PathBuf>,
    /// How the generation's files are laid out when it must be laid out again.
    pub link: LinkMode,
    /// Move a version down (the site's database never ran the newer code).
    pub allow_downgrade: bool,
    /// Take over a site name another site file owns.
    pub force: bool,
}

impl Default for RollbackOptions {
    fn default() -> Self {
        RollbackOptions {
            out: None,
            link: LinkMode::Hardlink,
            allow_downgrade: false,
            force: false,
        }
    }
}

/// Makes an earlier generation of the site current again, without the network: its files
/// (from the store, or from git when gc removed them), its lock, and a new commit on the
/// branch that says so. Refuses to move any component down unless the options allow it.
pub fn rollback(
    site_file: &Path,
    target: Option<&str>,
    run: &RunOptions,
    opts: &RollbackOptions,
    reporter: &dyn Reporter,
) -> Result<RolledBack, RealiseError> {
    let rolled = roll_back(site_file, target, run, opts, reporter)?;
    if let Err(e) = crate::ops::maintain::retire_after_realise(&run.store, &rolled.site) {
        reporter.warn(&format!(
            "older generations of {} were left laid out: {e}",
            rolled.site
        ));
    }
    Ok(rolled)
}

fn roll_back(
    site_file: &Path,
    target: Option<&str>,
    run: &RunOptions,
    opts: &RollbackOptions,
    reporter: &dyn Reporter,
) -> Result<RolledBack, RealiseError> {
    let site = SiteFile::load(site_file)?;
    let old_lock = Lock::load(&site.lock_path())?;
    let ctx = RunContext::open(run, Some(&site), reporter)?;
    check_owner(&ctx, &site, opts.force, reporter)?;
    let head = ctx
        .git
        .branch_head(&site.name)?
        .ok_or_else(|| no_site(&site.name))?;
    let log = ctx.git.first_parent_log(&head, MAX_HISTORY)?;
    let name = mcb_git::GenerationName::parse(target.unwrap_or("-1"), &site.name)
        .map_err(rollback_error)?;
    let (to, tree, _) = log[name.position(&log, &site.name).map_err(rollback_error)?].clone();
    let head_tree = ctx.git.commit_tree_id(&head)?;
    if tree == head_tree {
        return Err(rollback_error(format!(
            "site {} is already at the codebase of {}",
            site.name,
            &to.as_str()[..12]
        )));
    }
    let lock = lock_in_commit(&ctx.git, &to)?.ok_or_else(|| {
        rollback_error(format!(
            "commit {to} carries no lock: it is not a generation mcb made"
        ))
    })?;
    let current = lock_in_commit(&ctx.git, &head)?;
    let target_snapshot = Snapshot::of_lock(&lock);
    let before = current.as_ref().map(Snapshot::of_lock);
    let downgrades = before
        .as_ref()
        .map(|b| target_snapshot.downgrades_from(b))
        .unwrap_or_default();
    if !downgrades.is_empty() && !opts.allow_downgrade {
        return Err(RealiseError::Downgrade(downgrades));
    }
    let changes = target_snapshot.changes_from(before.as_ref());

    reporter.stage(Stage::Materialise, tree.as_str());
    let (path, from_git) = match ctx.store.check_generation(&tree)? {
        Some(damaged) if damaged.is_empty() => (ctx.store.generation_path(&tree), false),
        _ => (
            crate::stage::materialise::materialise_tree(
                &ctx.store, &ctx.git, &tree, opts.link, reporter,
            )?,
            true,
        ),
    };
    reporter.stage(Stage::Commit, &site.name);
    let committed = commit(
        &ctx.git,
        &site.name,
        lock,
        Title::Rollback { to: to.clone() },
    )?;
    let link = crate::ops::realise::link_path(&site, opts.out.as_deref());
    let published = publish(
        &ctx,
        &site,
        old_lock.as_ref(),
        &committed,
        &path,
        &link,
        true,
        reporter,
    )?;
    Ok(RolledBack {
        site: site.name.clone(),
        to,
        commit: committed.commit,
        tree,
        path,
        link,
        moodle_release: committed.lock.moodle.release.clone(),
        changes,
        downgrades,
        from_git,
        lock_written: published.lock_written,
    })
}

fn rollback_error(message: String) -> RealiseError {
    RealiseError::Usage {
        message,
        about: crate::error::Named::Generation,
    }
}

/// A site in the store.
#[derive(Debug, Clone)]
pub struct SiteSummary {
    pub name: String,
    pub commit: GitOid,
    pub tree: GitOid,
    pub moodle_release: Option<String>,
    /// The site file that owns it, as recorded.
    pub site_file: Option<PathBuf>,
    /// Live `result` links pointing at its current generation.
    pub results: Vec<PathBuf>,
    /// Bytes of objects that only this site's kept generations use.
    pub unique_bytes: u64,
}

/// Every site in the store, with what only it costs (over its newest `keep` generations,
/// as gc counts them).
pub fn sites(store: &Path, keep: usize) -> Result<Vec<SiteSummary>, RealiseError> {
    let store = Store::open_existing(store)?;
    let git = mcb_catalog::sources::open_git(&store)?;
    let live = store.live_result_targets()?;
    let mut out = Vec::new();
    // Object → the sites that use it.
    let mut users: HashMap<(ObjectHash, bool), (HashSet<usize>, u64)> = HashMap::new();
    let mut manifests_read: HashMap<mcb_store::ManifestHash, Vec<(ObjectHash, bool, u64)>> =
        HashMap::new();
    for (i, (name, head)) in git.site_branches()?.into_iter().enumerate() {
        let tree = git.commit_tree_id(&head)?;
        let lock = lock_in_commit(&git, &head).ok().flatten();
        for t in git.recent_trees(&head, keep)? {
            for m in store.generation_uses(&t).unwrap_or_default() {
                let objects = manifests_read.entry(m.clone()).or_insert_with(|| {
                    store
                        .read_manifest(&m)
                        .map(|m| {
                            m.entries
                                .iter()
                                .map(|e| (e.blake3.clone(), e.executable(), e.size))
                                .collect()
                        })
                        .unwrap_or_default()
                });
                for (h, exec, size) in objects.iter() {
                    let u = users
                        .entry((h.clone(), *exec))
                        .or_insert_with(|| (HashSet::new(), *size));
                    u.0.insert(i);
                }
            }
        }
        let generation = store.generation_path(&tree);
        out.push(SiteSummary {
            results: live
                .iter()
                .filter(|(_, target)| *target == generation)
                .map(|(l, _)| l.clone())
                .collect(),
            site_file: store.site_owner(&name),
            moodle_release: lock.map(|l| l.moodle.release),
            name,
            commit: head,
            tree,
            unique_bytes: 0,
        });
    }
    let mut unique: BTreeMap<usize, u64> = BTreeMap::new();
    for (sites, size) in users.values() {
        if sites.len() == 1 {
            *unique
                .entry(*sites.iter().next().expect("one"))
                .or_default() += size;
        }
    }
    for (i, s) in out.iter_mut().enumerate() {
        s.unique_bytes = unique.get(&i).copied().unwrap_or(0);
    }
    Ok(out)
}

/// What `forget` did.
#[derive(Debug, Clone)]
pub struct Forgotten {
    pub site: String,
    pub commit: GitOid,
    /// `result` links whose roots were dropped (with `force`).
    pub dropped_results: Vec<PathBuf>,
}

/// Retires site `name`: deletes its branch, its owner record and the roots of `result`
/// links pointing at its generations, so the next `gc` frees what only it used. Refuses
/// while a live `result` link points at its current generation, unless `force`.
pub fn forget(
    opts: &RunOptions,
    name: &str,
    force: bool,
    reporter: &dyn Reporter,
) -> Result<Forgotten, RealiseError> {
    let ctx = RunContext::open_named(opts, Some(name), Vec::new(), reporter)?;
    let head = ctx.git.branch_head(name)?.ok_or_else(|| no_site(name))?;
    // A codebase another site also made stays theirs: its links and roots are left alone.
    let mut others: HashSet<PathBuf> = HashSet::new();
    for (other, other_head) in ctx.git.site_branches()? {
        if other != name {
            for (_, t, _) in ctx.git.first_parent_log(&other_head, MAX_HISTORY)? {
                others.insert(ctx.store.generation_path(&t));
            }
        }
    }
    let trees: HashSet<PathBuf> = ctx
        .git
        .first_parent_log(&head, MAX_HISTORY)?
        .into_iter()
        .map(|(_, t, _)| ctx.store.generation_path(&t))
        .filter(|p| !others.contains(p))
        .collect();
    let current = ctx.store.generation_path(&ctx.git.commit_tree_id(&head)?);
    let live = ctx.store.live_result_targets()?;
    let serving: Vec<&PathBuf> = live
        .iter()
        .filter(|(_, t)| *t == current && trees.contains(t))
        .map(|(l, _)| l)
        .collect();
    if !serving.is_empty() && !force {
        return Err(RealiseError::Live {
            site: name.to_string(),
            links: serving.into_iter().cloned().collect(),
        });
    }
    let mut dropped = Vec::new();
    for (link, target) in &live {
        if trees.contains(target) {
            ctx.store.remove_result_root(link)?;
            dropped.push(link.clone());
        }
    }
    ctx.git.delete_branch(name, &head)?;
    ctx.git.delete_generation_tags(name)?;
    ctx.store.remove_site_owner(name)?;
    Ok(Forgotten {
        site: name.to_string(),
        commit: head,
        dropped_results: dropped,
    })
}
