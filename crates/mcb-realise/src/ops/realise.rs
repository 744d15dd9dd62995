//! `realise`: the stages in order — plan, fetch, compose, commit, materialise, publish —
//! with the no-op case first. Nothing the user sees (branch, lock, `result`) changes
//! before the publish stage, so a failed run is harmless. [`resolve_lock`] stops after
//! compose and writes the lock alone; [`realise_unserved`] commits and lays out a
//! generation without pointing `result` at it (it is served once it passes a test).

use std::path::{Path, PathBuf};

use mcb_config::{Lock, SiteFile, SourceSpec};
use mcb_store::{GitOid, LinkMode};

use crate::changes::{Change, Snapshot};
use crate::context::RunContext;
use crate::error::RealiseError;
use crate::options::RunOptions;
use crate::report::{Reporter, Stage};
use crate::stage::catalog::{AdvisoryFinding, SiteCatalog, SourcePick};
use crate::stage::commit::{Title, commit, lock_in_commit, lock_of};
use crate::stage::compose::{check_links, codebase_files, compose};
use crate::stage::fetch::{Fetched, fetch};
use crate::stage::materialise::materialise;
use crate::stage::plan::{Catalog, Plan, Update, kept_choices, plan_with};
use crate::stage::publish::{check_owner, publish, relink, write_file_atomic};

/// What a realise makes and how it serves it.
#[derive(Debug, Clone)]
pub struct RealiseOptions {
    /// Where the `result` link goes (default: `result` beside the site file).
    pub out: Option<PathBuf>,
    /// How the generation's files are laid out.
    pub link: LinkMode,
    /// Take over a site name another site file owns.
    pub force: bool,
    /// Realise even when a version goes down against the site's last generation.
    pub allow_downgrade: bool,
    /// Fail when the lock would change (CI).
    pub locked: bool,
    /// Which locked choices to set aside for the newest versions the site file allows.
    pub update: Update,
    /// Let a plugin move to another source (git → directory, one plugin index → another).
    /// A run the user starts may; an automatic one (reconcile) may not unless told.
    pub allow_source_change: bool,
}

impl Default for RealiseOptions {
    fn default() -> Self {
        RealiseOptions {
            out: None,
            link: LinkMode::Hardlink,
            force: false,
            allow_downgrade: false,
            locked: false,
            update: Update::Nothing,
            allow_source_change: true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RealisedPlugin {
    pub component: String,
    pub version: String,
    pub release: Option<String>,
    pub install_path: String,
    pub source: String,
    pub auto: bool,
}

/// What the web server serves of a codebase at `link` on Moodle branch `branch`.
pub fn web_root(link: &Path, branch: u32) -> PathBuf {
    match mcb_moodle::layout::web_root_dir(mcb_moodle::Branch(branch).release()) {
        Some(dir) => link.join(dir),
        None => link.to_path_buf(),
    }
}

/// What a realise produced.
#[derive(Debug, Clone)]
pub struct Realised {
    pub site: String,
    /// The commit on the site branch.
    pub commit: GitOid,
    pub tree: GitOid,
    /// The generation directory in the store.
    pub path: PathBuf,
    /// The `result` link that points (or, unserved, will point) at it.
    pub link: PathBuf,
    /// What the web server serves: the link, or its `public` directory from Moodle 5.1.
    pub web_root: PathBuf,
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

impl RealisedPlugin {
    /// The plugins a lock holds.
    pub fn of_lock(lock: &Lock) -> Vec<RealisedPlugin> {
        realised_plugins(lock)
    }
}

fn realised_plugins(lock: &Lock) -> Vec<RealisedPlugin> {
    lock.plugins
        .iter()
        .map(|p| RealisedPlugin {
            component: p.component.clone(),
            version: p.version.clone(),
            release: p.release.clone(),
            install_path: p.install_path.clone(),
            source: p.source.label(),
            auto: p.auto,
        })
        .collect()
}

/// Where a site's `result` link goes: `out`, else `result` beside the site file.
pub fn link_path(site: &SiteFile, out: Option<&Path>) -> PathBuf {
    match out {
        Some(p) => std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()),
        None => site.dir().join("result"),
    }
}

/// Realises the site file at `site_path` and points its `result` link at the generation.
pub fn realise(
    site_path: &Path,
    run: &RunOptions,
    opts: &RealiseOptions,
    reporter: &dyn Reporter,
) -> Result<Realised, RealiseError> {
    realise_as(site_path, run, opts, true, reporter)
}

/// Realises the site file at `site_path` (branch, lock and generation) but leaves its
/// `result` link where it is: the generation is served later (once its test passes), by a
/// realise that finds it made.
pub fn realise_unserved(
    site_path: &Path,
    run: &RunOptions,
    opts: &RealiseOptions,
    reporter: &dyn Reporter,
) -> Result<Realised, RealiseError> {
    realise_as(site_path, run, opts, false, reporter)
}

/// A site's codebase resolved: its plan's sources fetched, its tree composed and its lock.
struct Resolved {
    plan: Plan<SourcePick>,
    fetched: Fetched,
    links: Option<mcb_catalog::StoredLinks>,
    tree: GitOid,
    lock: Lock,
    /// What choosing warned about, then what fetching found (said, not locked).
    warnings: Vec<String>,
    changes: Vec<Change>,
}

/// How a resolution treats what the site already has.
struct Against<'a> {
    old_lock: Option<&'a Lock>,
    update: &'a Update,
    allow_downgrade: bool,
    /// Any change to the lock is refused.
    locked: bool,
    /// A change of source is refused.
    fixed_sources: bool,
}

/// Plans (keeping the lock's choices the update does not set aside), refuses a downgrade
/// against the site's last generation unless allowed, fetches and composes.
fn resolve(
    ctx: &RunContext,
    site: &SiteFile,
    against: Against<'_>,
    reporter: &dyn Reporter,
) -> Result<Resolved, RealiseError> {
    let sources = ctx
        .sources(site.dir(), reporter)
        .with_scanner(site.scan.clone().map(|argv| mcb_catalog::Scanner { argv }));
    let index = ctx.index();
    let catalog = SiteCatalog::new(&sources, &index)
        .with_composer(&site.composer_repositories)
        .with_bindings(site, against.old_lock)
        .with_acknowledged(&site.ignore_advisories)
        .with_camp(site);
    let kept = kept_choices(site, against.old_lock, against.update)?;
    catalog.prefetch(site, kept.lock.as_ref().filter(|_| kept.core), reporter);
    reporter.stage(Stage::Plan, &site.name);
    let plan = plan_with(&catalog, site, kept.lock.as_ref(), kept.core)?;
    for p in &plan.plugins {
        for f in catalog.advisories_of(&p.pick) {
            if f.acknowledged {
                reporter.warn(&acknowledged_text(p.component.as_str(), &f));
            }
        }
        reporter.detail(&p.why);
        for skipped in &p.passed_over {
            reporter.detail(&format!("  not {skipped}"));
        }
    }
    let previous = previous_generation(ctx, site)?;
    let planned = plan.snapshot(site, |p| catalog.describe(p), |p| catalog.index_of(p));
    if !against.allow_downgrade
        && let Some(previous) = &previous
    {
        let downgrades = planned.downgrades_from(&Snapshot::of_lock(previous));
        if !downgrades.is_empty() {
            return Err(RealiseError::Downgrade(downgrades));
        }
    }
    if against.fixed_sources {
        let before = previous
            .as_ref()
            .or(against.old_lock)
            .map(Snapshot::of_lock);
        let moved: Vec<Change> = planned
            .changes_from(before.as_ref())
            .into_iter()
            .filter(|c| matches!(c, Change::Source { .. }))
            .collect();
        if before.is_some() && !moved.is_empty() {
            return Err(RealiseError::SourceChange(moved));
        }
    }
    if against.locked
        && let Some(old) = against.old_lock
    {
        let moved = planned.changes_from(Some(&Snapshot::of_lock(old)));
        if !moved.is_empty() {
            return Err(RealiseError::LockWouldChange(Some(moved)));
        }
    }
    let locked_vendor = against.old_lock.and_then(|l| l.vendor.as_ref());
    let fetched = fetch(&catalog, &plan, locked_vendor, reporter)?;
    // What choosing warns about belongs to these versions: the lock keeps it. What fetching
    // found belongs to this store and this run: it is said, not locked.
    let mut warnings: Vec<String> = plan.warnings.clone();
    let notes = sources.take_notes();
    for w in warnings.iter().chain(&notes) {
        reporter.warn(w);
    }
    reporter.stage(Stage::Compose, &site.name);
    let links = sources.links(&site.links)?;
    if let Some(l) = &links {
        check_links(site, &codebase_files(&plan, &fetched), l)?;
    }
    let tree = compose(&ctx.git, &plan, &fetched, links.as_ref())?;
    let lock = lock_of(site, &plan, &fetched, &tree, &warnings);
    warnings.extend(notes);
    if against.locked && against.old_lock != Some(&lock) {
        return Err(RealiseError::LockWouldChange(Some(Vec::new())));
    }
    let before = previous
        .as_ref()
        .or(against.old_lock)
        .map(Snapshot::of_lock);
    let changes = Snapshot::of_lock(&lock).changes_from(before.as_ref());
    Ok(Resolved {
        plan,
        fetched,
        links,
        tree,
        lock,
        warnings,
        changes,
    })
}

/// An advisory the site file acknowledges, said in every run that takes what it affects.
pub(crate) fn acknowledged_text(component: &str, f: &AdvisoryFinding) -> String {
    format!(
        "{}; taken: the site file acknowledges it (ignore_advisories)",
        f.text(component)
    )
}

/// The advisories, malware flags and revocations that affect versions `lock` holds and
/// the site file does not acknowledge, each with its component. A CAMP registry whose
/// signed metadata cannot be trusted now (expired, rolled back, wrongly signed) is an
/// error: what it would say of the locked releases cannot be known.
fn open_advisories(
    ctx: &RunContext,
    site: &SiteFile,
    lock: &Lock,
    reporter: &dyn Reporter,
) -> Result<Vec<(String, AdvisoryFinding)>, RealiseError> {
    if ctx.run.offline
        || !lock
            .plugins
            .iter()
            .any(|p| matches!(p.source, mcb_config::LockedSource::Composer { .. }))
    {
        return Ok(Vec::new());
    }
    let sources = ctx.sources(site.dir(), reporter);
    let index = ctx.index();
    let catalog = SiteCatalog::new(&sources, &index)
        .with_acknowledged(&site.ignore_advisories)
        .with_camp(site);
    let from_camp = lock.plugins.iter().find(|p| {
        matches!(&p.source, mcb_config::LockedSource::Composer { package, .. } if package.starts_with("camp:"))
    });
    if let Some(p) = from_camp
        && site.camp.is_some()
    {
        catalog.camp_check().map_err(|e| {
            RealiseError::Source(mcb_catalog::SourceError::new(
                &p.component,
                mcb_catalog::SourceFailure::Refused,
                e,
            ))
        })?;
    }
    let mut open = Vec::new();
    for (component, f) in catalog.advisories_in(lock) {
        if f.acknowledged {
            reporter.warn(&acknowledged_text(&component, &f));
        } else {
            open.push((component, f));
        }
    }
    for n in sources.take_notes() {
        reporter.warn(&n);
    }
    Ok(open)
}

/// What [`resolve_lock`] wrote.
#[derive(Debug, Clone)]
pub struct LockResolved {
    pub site: String,
    /// The tree the lock builds.
    pub tree: GitOid,
    pub lock: Lock,
    pub warnings: Vec<String>,
    /// What moved against the site's last generation (or, with none, its old lock).
    pub changes: Vec<Change>,
    pub lock_written: bool,
}

/// Resolves the site file at `site_path` and writes its lock (when it changed), building,
/// committing and serving nothing: for `update --lock-only` and `import`.
pub fn resolve_lock(
    site_path: &Path,
    run: &RunOptions,
    update: &Update,
    reporter: &dyn Reporter,
) -> Result<LockResolved, RealiseError> {
    let site = SiteFile::load(site_path)?;
    let old_lock = Lock::load(&site.lock_path())?;
    let ctx = RunContext::open(run, Some(&site), reporter)?;
    check_owner(&ctx, &site, false, reporter)?;
    let against = Against {
        old_lock: old_lock.as_ref(),
        update,
        allow_downgrade: true,
        locked: false,
        fixed_sources: false,
    };
    let r = resolve(&ctx, &site, against, reporter)?;
    let lock_written = write_lock(&site, old_lock.as_ref(), &r.lock)?;
    Ok(LockResolved {
        site: site.name.clone(),
        tree: r.tree,
        lock: r.lock,
        warnings: r.warnings,
        changes: r.changes,
        lock_written,
    })
}

fn realise_as(
    site_path: &Path,
    run: &RunOptions,
    opts: &RealiseOptions,
    serve: bool,
    reporter: &dyn Reporter,
) -> Result<Realised, RealiseError> {
    let realised = realise_site(site_path, run, opts, serve, reporter)?;
    // The run's hold on the store is released: older generations may be retired now.
    if realised.changed
        && let Err(e) = crate::ops::maintain::retire_after_realise(&run.store, &realised.site)
    {
        reporter.warn(&format!(
            "older generations of {} were left laid out: {e}",
            realised.site
        ));
    }
    Ok(realised)
}

fn realise_site(
    site_path: &Path,
    run: &RunOptions,
    opts: &RealiseOptions,
    serve: bool,
    reporter: &dyn Reporter,
) -> Result<Realised, RealiseError> {
    let site = SiteFile::load(site_path)?;
    let old_lock = Lock::load(&site.lock_path())?;
    if opts.locked && old_lock.is_none() {
        return Err(RealiseError::LockWouldChange(None));
    }
    let ctx = RunContext::open(run, Some(&site), reporter)?;
    let link = link_path(&site, opts.out.as_deref());
    check_owner(&ctx, &site, opts.force, reporter)?;
    if let Some(lock) = &old_lock {
        crate::ops::cache::prefetch_generation(&ctx, lock, reporter);
    }
    // What the lock holds answers to today's advisories and the organisation's policy:
    // `--locked` refuses it; otherwise the versions are chosen again.
    let open = match &old_lock {
        Some(lock) => open_advisories(&ctx, &site, lock, reporter)?,
        None => Vec::new(),
    };
    if opts.locked && !open.is_empty() {
        return Err(RealiseError::Advisories(open));
    }
    for (component, f) in &open {
        reporter.warn(&format!(
            "the lock holds {}; choosing {component} again",
            f.text(component)
        ));
    }
    let refused_by_policy = |lock: &Lock| {
        site.policy.as_ref().is_some_and(|p| {
            lock.plugins
                .iter()
                .any(|l| p.refuses(&l.component).is_some())
        })
    };
    if opts.update == Update::Nothing
        && open.is_empty()
        && let Some(lock) = &old_lock
        && !refused_by_policy(lock)
        && let Some(done) = up_to_date(&ctx, &site, lock, &link, opts.link, serve)?
    {
        // Said again: the versions did not change, neither did what is wrong with them.
        for w in &done.warnings {
            reporter.warn(w);
        }
        return Ok(done);
    }
    let against = Against {
        old_lock: old_lock.as_ref(),
        update: &opts.update,
        allow_downgrade: opts.allow_downgrade,
        locked: opts.locked,
        fixed_sources: !opts.allow_source_change,
    };
    let r = resolve(&ctx, &site, against, reporter)?;
    let mut warnings = r.warnings;
    reporter.stage(Stage::Commit, &site.name);
    let committed = commit(&ctx.git, &site.name, r.lock, Title::Realise)?;
    reporter.stage(Stage::Materialise, r.tree.as_str());
    let mut files = codebase_files(&r.plan, &r.fetched);
    let mut uses: Vec<mcb_store::ManifestHash> = r.fetched.manifests().cloned().collect();
    if let Some(l) = &r.links {
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
        &ctx.store, &ctx.git, &r.tree, &files, &uses, opts.link, reporter, &mut warn,
    )?;
    let published = publish(
        &ctx,
        &site,
        old_lock.as_ref(),
        &committed,
        &generation.path,
        &link,
        serve,
        reporter,
    )?;
    Ok(Realised {
        site: site.name.clone(),
        commit: committed.commit,
        tree: r.tree,
        path: generation.path,
        web_root: web_root(&link, committed.lock.moodle.branch),
        link,
        moodle_release: r.plan.core.version.release.clone(),
        moodle_build: r.plan.core.version.build.to_string(),
        plugins: realised_plugins(&committed.lock),
        warnings,
        changes: r.changes,
        changed: committed.new_commit || generation.created,
        lock_written: published.lock_written,
        copied_files: generation.copied,
        link_mode: generation.mode,
    })
}

/// The lock of the site's last generation: the one its branch points at.
pub(crate) fn previous_generation(
    ctx: &RunContext,
    site: &SiteFile,
) -> Result<Option<Lock>, RealiseError> {
    match ctx.git.branch_head(&site.name)? {
        Some(head) => lock_in_commit(&ctx.git, &head),
        None => Ok(None),
    }
}

/// Writes `lock` beside the site file when it differs from `old`; says whether it did.
fn write_lock(site: &SiteFile, old: Option<&Lock>, lock: &Lock) -> Result<bool, RealiseError> {
    if old == Some(lock) {
        return Ok(false);
    }
    write_file_atomic(&site.lock_path(), &lock.to_text())?;
    Ok(true)
}

/// The no-op case: the lock answers the site file, the branch is at the lock's commit,
/// whose tree is the lock's tree, and that generation is in the store, sound and laid out
/// as asked (`mode`). Nothing is read but the lock, two git objects and the generation's
/// entries. `result` is pointed at it when `serve`.
fn up_to_date(
    ctx: &RunContext,
    site: &SiteFile,
    lock: &Lock,
    link: &Path,
    mode: LinkMode,
    serve: bool,
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
    if store
        .generation_record(&lock.tree)
        .is_some_and(|r| r.mode != mode)
    {
        return Ok(None);
    }
    let generation = store.generation_path(&lock.tree);
    if serve {
        relink(ctx, site, &generation, link)?;
    }
    Ok(Some(Realised {
        site: site.name.clone(),
        commit,
        tree: lock.tree.clone(),
        path: generation,
        link: link.to_path_buf(),
        web_root: web_root(link, lock.moodle.branch),
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
