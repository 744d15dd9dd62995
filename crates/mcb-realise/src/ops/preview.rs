//! `plan` and `outdated`: the plan stage run and compared, changing nothing. `plan` says
//! what a realise would do against the site's last generation; `outdated` says what an
//! update would move in the lock. Only what choosing needs is read (refs, `version.php`
//! of candidates); nothing is built.

use std::path::Path;

use mcb_config::{Lock, SiteFile};
use mcb_store::GitOid;

use crate::changes::{Change, Snapshot};
use crate::context::RunContext;
use crate::error::RealiseError;
use crate::options::RunOptions;
use crate::report::{Reporter, Stage};
use crate::stage::catalog::SiteCatalog;
use crate::stage::commit::lock_in_commit;
use crate::stage::plan::{Catalog, Update, kept_choices, plan_with};

/// A plugin as the plan chose it.
#[derive(Debug, Clone)]
pub struct PlannedChoice {
    pub component: String,
    pub version: String,
    pub release: Option<String>,
    pub source: String,
    pub auto: bool,
    /// Why this version, in a sentence.
    pub why: String,
    /// The versions ranked above it, each with why it was not taken.
    pub passed_over: Vec<String>,
}

/// What a run would change.
#[derive(Debug, Clone)]
pub struct Pending {
    pub site: String,
    pub moodle_release: String,
    pub moodle_build: String,
    /// The commit of the site's last generation, when it has one.
    pub generation: Option<GitOid>,
    /// What moves against the last generation (everything, when there is none).
    pub changes: Vec<Change>,
    /// What moves against the lock beside the site file (everything, when there is none).
    pub lock_changes: Vec<Change>,
    pub plugins: Vec<PlannedChoice>,
    pub warnings: Vec<String>,
    /// Security advisories that affect versions the lock holds.
    pub advisories: Vec<AdvisoryHit>,
}

/// An advisory that affects a locked version.
#[derive(Debug, Clone)]
pub struct AdvisoryHit {
    pub component: String,
    pub version: String,
    pub advisory: mcb_catalog::Advisory,
    /// The plan moves the component to a version it does not affect.
    pub fixed_by_plan: bool,
}

impl Pending {
    /// Would a realise change the site?
    pub fn is_pending(&self) -> bool {
        self.generation.is_none() || !self.changes.is_empty()
    }

    /// Does any change put older code on the site?
    pub fn is_dangerous(&self) -> bool {
        self.changes.iter().any(Change::is_dangerous)
    }
}

/// The plan of `site_path` under `opts` (its `update` says which locked choices to set
/// aside), compared with the last generation and the lock.
pub fn pending(
    site_path: &Path,
    opts: &RunOptions,
    update: &Update,
    reporter: &dyn Reporter,
) -> Result<Pending, RealiseError> {
    let site = SiteFile::load(site_path)?;
    let old_lock = Lock::load(&site.lock_path())?;
    let ctx = RunContext::open(opts, Some(&site), reporter)?;
    let sources = ctx.sources(site.dir(), reporter);
    let index = ctx.index();
    let catalog = SiteCatalog::new(&sources, &index)
        .with_composer(&site.composer_repositories)
        .with_bindings(&site, old_lock.as_ref());
    let kept = kept_choices(&site, old_lock.as_ref(), update)?;
    catalog.prefetch(&site, kept.lock.as_ref().filter(|_| kept.core), reporter);
    reporter.stage(Stage::Plan, &site.name);
    let plan = plan_with(&catalog, &site, kept.lock.as_ref(), kept.core)?;
    let planned = plan.snapshot(&site, |p| catalog.describe(p), |p| catalog.index_of(p));
    let head = ctx.git.branch_head(&site.name)?;
    let previous = match &head {
        Some(h) => lock_in_commit(&ctx.git, h)?,
        None => None,
    };
    let mut warnings = plan.warnings.clone();
    // Advisories are asked of the repositories; offline there is no one to ask.
    let advisories = match &old_lock {
        Some(lock) if !opts.offline => {
            advisory_hits(&sources, &ctx.http, lock, &plan, &mut warnings)
        }
        _ => Vec::new(),
    };
    warnings.extend(sources.take_notes());
    Ok(Pending {
        site: site.name.clone(),
        moodle_release: plan.core.version.release.clone(),
        moodle_build: plan.core.version.build.to_string(),
        generation: head,
        changes: planned.changes_from(previous.as_ref().map(Snapshot::of_lock).as_ref()),
        lock_changes: planned.changes_from(old_lock.as_ref().map(Snapshot::of_lock).as_ref()),
        plugins: plan
            .plugins
            .iter()
            .map(|p| PlannedChoice {
                component: p.component.to_string(),
                version: p.info.version.map(|v| v.to_string()).unwrap_or_default(),
                release: p.info.release.clone(),
                source: catalog.describe(&p.pick),
                auto: p.auto(),
                why: p.why.clone(),
                passed_over: p.passed_over.clone(),
            })
            .collect(),
        warnings,
        advisories,
    })
}

/// The advisories each Composer repository publishes for the packages the lock holds,
/// kept where they affect the locked version. A repository that cannot be asked is said
/// in `warnings`.
fn advisory_hits(
    sources: &mcb_catalog::Sources,
    http: &mcb_catalog::Http,
    lock: &Lock,
    plan: &crate::stage::plan::Plan<crate::stage::catalog::SourcePick>,
    warnings: &mut Vec<String>,
) -> Vec<AdvisoryHit> {
    let mut by_repo: std::collections::BTreeMap<&str, Vec<(&str, &str, &str)>> = Default::default();
    for p in &lock.plugins {
        if let mcb_config::LockedSource::Composer {
            repository,
            package,
            version,
            ..
        } = &p.source
        {
            by_repo.entry(repository).or_default().push((
                p.component.as_str(),
                package.as_str(),
                version.as_str(),
            ));
        }
    }
    let mut hits = Vec::new();
    for (repo, locked) in by_repo {
        let names: Vec<String> = locked.iter().map(|(_, p, _)| p.to_string()).collect();
        let location = sources.locate(repo).for_git();
        let found = match mcb_catalog::advisories(http, &location, &names, &sources.limits.metadata)
        {
            Ok(a) => a,
            Err(e) => {
                warnings.push(format!(
                    "cannot read the security advisories of {repo}: {e}"
                ));
                continue;
            }
        };
        for a in found {
            let Ok(affected) = mcb_config::composer::Constraint::parse(&a.affected) else {
                continue;
            };
            for (component, package, version) in &locked {
                let Some(v) = mcb_config::composer::ComposerVersion::parse(version) else {
                    continue;
                };
                if *package == a.package && affected.matches(&v) {
                    let planned = plan
                        .plugins
                        .iter()
                        .find(|p| p.component.as_str() == *component)
                        .and_then(|p| match &p.pick {
                            crate::stage::catalog::SourcePick::Composer { package, .. } => {
                                Some(package.version.clone())
                            }
                            _ => None,
                        });
                    hits.push(AdvisoryHit {
                        component: component.to_string(),
                        version: version.to_string(),
                        fixed_by_plan: planned.is_some_and(|r| !affected.matches_text(&r)),
                        advisory: a.clone(),
                    });
                }
            }
        }
    }
    hits
}
