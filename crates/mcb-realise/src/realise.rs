//! `realise`: the stages in order — plan, fetch, compose, commit, materialise, publish —
//! with the no-op case first. Nothing the user sees (branch, lock, `result`) changes
//! before the publish stage, so a failed run is harmless.

use std::path::{Path, PathBuf};

use mcb_config::{Lock, SiteFile, SourceSpec};
use mcb_store::{GitOid, LinkMode};

use crate::catalog::SiteCatalog;
use crate::changes::{Change, Snapshot};
use crate::commit::{Title, commit, lock_of, source_label};
use crate::compose::{check_links, codebase_files, compose};
use crate::context::RunContext;
use crate::error::RealiseError;
use crate::fetch::fetch;
use crate::materialise::materialise;
use crate::options::{Options, Update};
use crate::plan::{Catalog, plan_with};
use crate::publish::{check_owner, publish, relink};
use crate::report::{Reporter, Stage};

#[derive(Debug, Clone, serde::Serialize)]
pub struct RealisedPlugin {
    pub component: String,
    pub version: String,
    pub release: Option<String>,
    pub install_path: String,
    pub source: String,
    pub auto: bool,
}

/// What a realise produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Realised {
    pub site: String,
    /// The commit on the site branch (none when only the lock was written).
    pub commit: Option<GitOid>,
    pub tree: GitOid,
    /// The generation directory in the store (none when only the lock was written).
    pub path: Option<PathBuf>,
    /// The `result` link that now points at it.
    pub link: PathBuf,
    pub moodle_release: String,
    pub moodle_build: String,
    pub plugins: Vec<RealisedPlugin>,
    pub warnings: Vec<String>,
    /// What moved since the site's last generation (or, with none, its lock).
    pub changes: Vec<Change>,
    /// A new commit or generation was made (false: the site was already realised).
    pub changed: bool,
    /// The lock file was written.
    pub lock_written: bool,
    /// Files copied rather than hardlinked.
    pub copied_files: usize,
    /// How the generation's files are laid out.
    pub link_mode: LinkMode,
}

fn realised_plugins(lock: &Lock) -> Vec<RealisedPlugin> {
    lock.plugins
        .iter()
        .map(|p| RealisedPlugin {
            component: p.component.clone(),
            version: p.version.clone(),
            release: p.release.clone(),
            install_path: p.install_path.clone(),
            source: source_label(&p.source),
            auto: p.auto,
        })
        .collect()
}

/// Where a site's `result` link goes.
fn link_path(site: &SiteFile, opts: &Options) -> PathBuf {
    match &opts.out {
        Some(p) => std::path::absolute(p).unwrap_or_else(|_| p.clone()),
        None => site.dir().join("result"),
    }
}

pub fn realise(
    site_path: &Path,
    opts: &Options,
    reporter: &dyn Reporter,
) -> Result<Realised, RealiseError> {
    let site = SiteFile::load(site_path)?;
    let old_lock = Lock::load(&site.lock_path())?;
    if opts.locked && old_lock.is_none() {
        return Err(RealiseError::LockWouldChange(None));
    }
    let ctx = RunContext::open(opts, Some(&site), reporter)?;
    let link = link_path(&site, opts);
    check_owner(&ctx, &site, reporter)?;
    if opts.update == Update::Nothing
        && !opts.lock_only
        && let Some(lock) = &old_lock
        && let Some(done) = up_to_date(&ctx, &site, lock, &link)?
    {
        // Said again: the versions did not change, neither did what is wrong with them.
        for w in &done.warnings {
            reporter.warn(w);
        }
        return Ok(done);
    }

    let sources = ctx.sources(site.dir(), reporter);
    let index = ctx.index();
    let catalog = SiteCatalog::new(&sources, &index).with_composer(&site.composer_repositories);

    let (prefer, keep_core) = preference(&site, old_lock.as_ref(), &opts.update)?;
    catalog.prefetch(&site, prefer.as_ref().filter(|_| keep_core), reporter);
    reporter.stage(Stage::Plan, &site.name);
    let plan = plan_with(&catalog, &site, prefer.as_ref(), keep_core)?;
    for p in &plan.plugins {
        reporter.detail(&p.why);
        for skipped in &p.passed_over {
            reporter.detail(&format!("  not {skipped}"));
        }
    }
    let previous = previous_generation(&ctx, &site)?;
    let planned = Snapshot::of_plan(&plan, &site, |p| catalog.describe(p));
    refuse_downgrades(&ctx, previous.as_ref(), &planned)?;
    if opts.locked
        && let Some(old) = &old_lock
    {
        let moved = planned.changes_from(Some(&Snapshot::of_lock(old)));
        if !moved.is_empty() {
            return Err(RealiseError::LockWouldChange(Some(moved)));
        }
    }
    let fetched = fetch(&catalog, &plan, reporter)?;
    // What choosing warns about belongs to these versions: the lock keeps it. What fetching
    // found belongs to this store and this run: it is said, not locked.
    let mut warnings: Vec<String> = plan.warnings.clone();
    let notes = sources.take_notes();
    for w in warnings.iter().chain(&notes) {
        reporter.warn(w);
    }
    reporter.stage(Stage::Compose, &site.name);
    let mut files = codebase_files(&plan, &fetched);
    let links = sources.links(&site.links)?;
    if let Some(l) = &links {
        check_links(&site, &files, l)?;
    }
    let tree = compose(&ctx.git, &plan, &fetched, links.as_ref())?;
    let lock = lock_of(&site, &plan, &fetched, &tree, &warnings);
    warnings.extend(notes);
    if opts.locked && old_lock.as_ref() != Some(&lock) {
        return Err(RealiseError::LockWouldChange(Some(Vec::new())));
    }
    let before = previous
        .as_ref()
        .or(old_lock.as_ref())
        .map(Snapshot::of_lock);
    let changes = Snapshot::of_lock(&lock).changes_from(before.as_ref());
    if opts.lock_only {
        let lock_written = write_lock(&site, old_lock.as_ref(), &lock)?;
        return Ok(Realised {
            site: site.name.clone(),
            commit: None,
            tree,
            path: None,
            link,
            moodle_release: plan.core.version.release.clone(),
            moodle_build: plan.core.version.build.to_string(),
            plugins: realised_plugins(&lock),
            warnings,
            changes,
            changed: false,
            lock_written,
            copied_files: 0,
            link_mode: opts.link,
        });
    }
    reporter.stage(Stage::Commit, &site.name);
    let committed = commit(&ctx.git, &site.name, lock, Title::Realise)?;
    reporter.stage(Stage::Materialise, tree.as_str());
    let mut uses: Vec<mcb_store::ManifestHash> = fetched.all().map(|s| s.hash.clone()).collect();
    if let Some(l) = &links {
        files.extend(l.manifest.entries.iter().map(|e| (e.path.clone(), e)));
        uses.push(l.hash.clone());
    }
    uses.sort();
    uses.dedup();
    let mut warn = |w: String| {
        reporter.warn(&w);
        warnings.push(w);
    };
    let generation = materialise(
        &ctx.store, &ctx.git, &tree, &files, &uses, opts.link, reporter, &mut warn,
    )?;
    let published = publish(
        &ctx,
        &site,
        old_lock.as_ref(),
        &committed,
        &generation.path,
        &link,
        reporter,
    )?;
    Ok(Realised {
        site: site.name.clone(),
        commit: Some(committed.commit),
        tree,
        path: Some(generation.path),
        link,
        moodle_release: plan.core.version.release.clone(),
        moodle_build: plan.core.version.build.to_string(),
        plugins: realised_plugins(&committed.lock),
        warnings,
        changes,
        changed: committed.new_commit || generation.created,
        lock_written: published.lock_written,
        copied_files: generation.copied,
        link_mode: generation.mode,
    })
}

/// The lock whose choices a run keeps, and whether it keeps the lock's core: all of them,
/// or all but those `update` names. A named component the site has never heard of is a
/// mistake in the command, said as such.
pub(crate) fn preference(
    site: &SiteFile,
    lock: Option<&Lock>,
    update: &Update,
) -> Result<(Option<Lock>, bool), RealiseError> {
    match update {
        Update::Nothing => Ok((lock.cloned(), true)),
        Update::All => Ok((None, false)),
        Update::Only { components, core } => {
            for c in components {
                let known = site.plugin(c).is_some() || lock.is_some_and(|l| l.plugin(c).is_some());
                if !known {
                    return Err(mcb_config::ConfigError::new(
                        &site.path,
                        format!("{c} is neither in the site file nor in its lock"),
                    )
                    .component(c)
                    .hint("name a plugin the site has, or --core for Moodle itself")
                    .into());
                }
            }
            let kept = lock.map(|l| {
                let mut l = l.clone();
                l.plugins.retain(|p| !components.contains(&p.component));
                l
            });
            Ok((kept, !core))
        }
    }
}

/// The lock of the site's last generation: the one its branch points at.
pub(crate) fn previous_generation(
    ctx: &RunContext,
    site: &SiteFile,
) -> Result<Option<Lock>, RealiseError> {
    match ctx.git.branch_head(&site.name)? {
        Some(head) => crate::commit::lock_in_commit(&ctx.git, &head),
        None => Ok(None),
    }
}

/// Writes `lock` beside the site file when it differs from `old`; says whether it did.
fn write_lock(site: &SiteFile, old: Option<&Lock>, lock: &Lock) -> Result<bool, RealiseError> {
    if old == Some(lock) {
        return Ok(false);
    }
    crate::publish::write_file_atomic(&site.lock_path(), &lock.to_text())?;
    Ok(true)
}

/// The no-op case: the lock answers the site file, the branch is at the lock's commit,
/// whose tree is the lock's tree, and that generation is in the store, sound and laid out
/// as asked. Nothing is read but the lock, two git objects and the generation's entries.
fn up_to_date(
    ctx: &RunContext,
    site: &SiteFile,
    lock: &Lock,
    link: &Path,
) -> Result<Option<Realised>, RealiseError> {
    let (store, git) = (&ctx.store, &ctx.git);
    if lock.site != site.name || !lock.moodle_fits(site) || lock.links != site.links {
        return Ok(None);
    }
    if matches!(site.moodle.source, SourceSpec::Path { .. }) {
        return Ok(None);
    }
    for req in &site.plugins {
        if matches!(req.source, SourceSpec::Path { .. }) {
            return Ok(None);
        }
        match lock.plugin(req.component.as_str()) {
            Some(l) if Lock::plugin_fits(l, req) => {}
            _ => return Ok(None),
        }
    }
    if lock
        .plugins
        .iter()
        .any(|p| !p.auto && site.plugin(&p.component).is_none())
    {
        return Ok(None);
    }
    let Some(commit) = git.branch_head(&site.name)? else {
        return Ok(None);
    };
    // The lock's `tree` is a claim: the commit on the branch says which tree it is.
    if !git.has_commit(&commit) || git.commit_tree_id(&commit)? != lock.tree {
        return Ok(None);
    }
    match store.check_generation(&lock.tree)? {
        Some(damaged) if damaged.is_empty() => {}
        _ => return Ok(None),
    }
    let mode = ctx.options.link;
    if store
        .generation_record(&lock.tree)
        .is_some_and(|r| r.mode != mode)
    {
        return Ok(None);
    }
    let generation = store.generation_path(&lock.tree);
    relink(ctx, site, &generation, link)?;
    Ok(Some(Realised {
        site: site.name.clone(),
        commit: Some(commit),
        tree: lock.tree.clone(),
        path: Some(generation),
        link: link.to_path_buf(),
        moodle_release: lock.moodle.release.clone(),
        moodle_build: lock.moodle.build.clone(),
        plugins: realised_plugins(lock),
        warnings: lock.warnings.clone(),
        changes: Vec::new(),
        changed: false,
        lock_written: false,
        copied_files: 0,
        link_mode: mode,
    }))
}

/// Refuses a plan that puts older code on the site than its last generation (the commit
/// its branch points at) has, unless the options allow it.
fn refuse_downgrades(
    ctx: &RunContext,
    previous: Option<&Lock>,
    planned: &Snapshot,
) -> Result<(), RealiseError> {
    if ctx.options.allow_downgrade {
        return Ok(());
    }
    let Some(previous) = previous else {
        return Ok(());
    };
    let downgrades = planned.downgrades_from(&Snapshot::of_lock(previous));
    if downgrades.is_empty() {
        Ok(())
    } else {
        Err(RealiseError::Downgrade(downgrades))
    }
}
