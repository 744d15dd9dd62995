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
    /// The site file acknowledges it (`ignore_advisories`): the plan may keep it.
    pub acknowledged: bool,
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
        .with_bindings(&site, old_lock.as_ref())
        .with_acknowledged(&site.ignore_advisories)
        .with_camp(&site);
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
    let advisories = advisory_hits(&catalog, old_lock.as_ref(), &plan);
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

/// The advisories that affect the versions the lock holds, and those the site file
/// acknowledges on the versions the plan takes. A repository that cannot be asked is said
/// in the run's notes.
fn advisory_hits(
    catalog: &SiteCatalog,
    lock: Option<&Lock>,
    plan: &crate::stage::plan::Plan<crate::stage::catalog::SourcePick>,
) -> Vec<AdvisoryHit> {
    let mut hits: Vec<AdvisoryHit> = Vec::new();
    let planned = |component: &str| {
        plan.plugins
            .iter()
            .find(|p| p.component.as_str() == component)
            .map(|p| catalog.advisories_of(&p.pick))
    };
    for (component, f) in lock.map(|l| catalog.advisories_in(l)).unwrap_or_default() {
        let still = planned(&component)
            .is_some_and(|now| now.iter().any(|n| n.advisory.id == f.advisory.id));
        hits.push(AdvisoryHit {
            component,
            version: f.version,
            acknowledged: f.acknowledged,
            fixed_by_plan: !still,
            advisory: f.advisory,
        });
    }
    for p in &plan.plugins {
        for f in catalog.advisories_of(&p.pick) {
            let known = hits.iter().any(|h| {
                h.component == p.component.as_str()
                    && h.advisory.id == f.advisory.id
                    && h.version == f.version
            });
            if !known {
                hits.push(AdvisoryHit {
                    component: p.component.to_string(),
                    version: f.version,
                    acknowledged: f.acknowledged,
                    fixed_by_plan: false,
                    advisory: f.advisory,
                });
            }
        }
    }
    hits
}
