//! `info` and `check`: what the plugins directory offers for a plugin, and whether a site
//! can move to another Moodle release: for each plugin, the version it would get there, or
//! why none fits.

use std::path::Path;

use std::collections::BTreeMap;

use mcb_catalog::{LazyIndex, PluginRecord};
use mcb_config::{Lock, PluginRequest, SiteFile, SourceSpec};
use mcb_moodle::{CoreLayout, CoreVersion, Host, MoodleSpec, Release, Requirements};
use mcb_resolve::{Fit, fit};
use mcb_store::Store;

use crate::context::RunContext;
use crate::error::RealiseError;
use crate::options::RunOptions;
use crate::stage::catalog::{SiteCatalog, SourcePick, pick_core_ref};
use crate::stage::plan::{PlannedCore, choose_versions, core_of};

/// Stands for a core whose build is unknown: no `requires` blocks it.
const UNKNOWN_BUILD: mcb_moodle::Build = mcb_moodle::Build::MAX;

/// Each index's record of `component`, in the order the site asks them (those that do not
/// list it left out); an error when none does.
pub fn plugin_info(
    opts: &RunOptions,
    site: Option<&Path>,
    component: &str,
) -> Result<Vec<(String, PluginRecord)>, RealiseError> {
    let site = match site {
        Some(p) => Some(SiteFile::load(p)?),
        None => None,
    };
    let locations = opts.directories_for(site.as_ref());
    // The store is only a cache here: none, or a read-only one, still answers.
    let store = Store::open_existing(&opts.store).ok();
    let http = opts.http(&locations);
    let indexes = LazyIndex::many(
        locations.clone(),
        &http,
        store.as_ref(),
        opts.cache_policy(),
    );
    let mut found = Vec::new();
    let mut first_error = None;
    for answer in indexes.answers(component) {
        match answer.record {
            Ok(Some(r)) => found.push((answer.location.to_string(), r.clone())),
            Ok(None) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if !found.is_empty() {
        return Ok(found);
    }
    match first_error {
        Some(e) if locations.len() == 1 => Err(e.into()),
        _ => Err(RealiseError::source(
            component,
            format!(
                "{component} is not in the plugins directory ({})",
                locations.join(", ")
            ),
        )),
    }
}

/// How one plugin stands on the target release.
#[derive(Debug, Clone)]
pub enum Readiness {
    /// This version installs.
    Fits {
        version: String,
        release: Option<String>,
        warning: Option<String>,
    },
    /// Nothing installs; `reasons` say why.
    Blocked {
        reasons: Vec<String>,
        last_supported: Option<String>,
    },
    /// The target core ships this component: drop the plugin.
    InCore,
    /// Its source (or a dependency's) could not be read: nobody knows.
    Unknown { reason: String },
    /// A dependency added automatically that nothing needs on this release.
    NotNeeded,
}

#[derive(Debug, Clone)]
pub struct PluginReadiness {
    pub component: String,
    /// The version in the lock today.
    pub locked: Option<String>,
    pub source: &'static str,
    pub auto: bool,
    pub readiness: Readiness,
}

#[derive(Debug, Clone)]
pub struct UpgradeCheck {
    pub site: String,
    pub target: String,
    /// The target core, when the site's core source can name it (git).
    pub core_release: Option<String>,
    pub core_build: Option<String>,
    pub plugins: Vec<PluginReadiness>,
    /// Something blocks the upgrade.
    pub blocked: bool,
    /// Some plugin could not be evaluated.
    pub unknown: bool,
    pub notes: Vec<String>,
    /// The target core was read from its code (a core source, Moodle's upstream); false:
    /// taken from mcb's table of releases, or unknown.
    pub core_read: bool,
    /// What the host lacks that the target release needs (rule `environment`): blocks.
    pub environment: Vec<String>,
    /// What the target release needs, when known.
    pub requirements: Option<Requirements>,
}

/// The target core, from the first of: `core_source` (a git upstream or a directory
/// holding X.Y), the site's own git core source if it has an X.Y release, Moodle's own
/// upstream (`moodle_git`, when online), mcb's table of
/// release builds (X.Y.0's build, with the site's own core's layout), or nothing (the
/// indexes' `supportedmoodles` alone, `requires` unchecked). `notes` says which.
fn target_core(
    catalog: &SiteCatalog,
    site: &SiteFile,
    lock: Option<&Lock>,
    target: Release,
    core_source: Option<&str>,
    moodle_git: &str,
    notes: &mut Vec<String>,
) -> Result<(PlannedCore<SourcePick>, CoreLayout, bool), RealiseError> {
    let sources = catalog.sources;
    let spec = MoodleSpec::Series(target);
    let from_git = |url: &str| -> Result<_, RealiseError> {
        let refs = sources.git_refs("moodle", url)?;
        let (tag, commit) = pick_core_ref(sources, &refs, &spec, url)?;
        let pick = SourcePick::Git {
            url: url.to_string(),
            reference: tag,
            commit,
        };
        core_of(catalog, Some(&spec), pick).map(|(c, l)| (c, l, true))
    };
    if let Some(given) = core_source {
        let dir = sources.locate(given);
        let is_dir = matches!(&dir, mcb_config::Location::Path(p) if p.join("version.php").is_file() || p.join("public/version.php").is_file());
        if is_dir {
            let stored = sources.path("moodle", given)?;
            let (core, layout) =
                core_of(catalog, Some(&spec), SourcePick::Stored(Box::new(stored)))?;
            return Ok((core, layout, true));
        }
        return from_git(given);
    }
    let own = match &site.moodle.source {
        SourceSpec::Git { url, .. } => Some(url.as_str()),
        _ => None,
    };
    if let Some(url) = own {
        match from_git(url) {
            Ok(found) => return Ok(found),
            Err(e) => notes.push(format!(
                "the site's core source has no Moodle {target} ({}); name a core source that holds it (a git upstream or a directory) to check against its code",
                crate::error::chain(&e)
            )),
        }
    }
    // Moodle's own upstream holds every release: asked when online and not asked above.
    let upstream = sources.locate(moodle_git).for_git();
    if !catalog.sources.offline && own.is_none_or(|u| sources.locate(u).for_git() != upstream) {
        match from_git(&upstream) {
            Ok(found) => {
                notes.push(format!("Moodle {target} is read from {upstream}"));
                return Ok(found);
            }
            Err(e) => notes.push(format!(
                "Moodle {target} could not be read from {upstream}: {}",
                crate::error::chain(&e)
            )),
        }
    }
    let (mut core, layout) = crate::stage::plan::plan_core(catalog, site, lock)?;
    match mcb_moodle::release_build(target) {
        Some(build) => {
            notes.push(format!(
                "Moodle {target} is taken as {target}.0 (build {build}, from mcb's table of releases) with the site's own core layout; a plugin that requires a later {target}.x shows as blocked"
            ));
            core.version = CoreVersion {
                build,
                release: format!("{target}"),
                branch: target.branch(),
                maturity: None,
            };
        }
        None => {
            notes.push(format!(
                "mcb knows no build of Moodle {target} and no core source holds it: plugins are checked against the releases the indexes say they support; `requires` is not checked"
            ));
            core.version = CoreVersion {
                build: UNKNOWN_BUILD,
                release: format!("{target}"),
                branch: target.branch(),
                maturity: None,
            };
        }
    }
    Ok((core, layout, false))
}

/// Checks whether `site` can move to Moodle `target` (X.Y): the same resolution as
/// realise, on the target core. A plugin that blocks is set aside and the rest resolved
/// again, so every plugin gets its own answer; one whose source cannot be read is unknown.
pub fn check_upgrade(
    site_path: &Path,
    target: Release,
    core_source: Option<&str>,
    host: &Host,
    opts: &RunOptions,
    reporter: &dyn crate::report::Reporter,
) -> Result<UpgradeCheck, RealiseError> {
    let site = SiteFile::load(site_path)?;
    let lock = Lock::load(&site.lock_path())?;
    let ctx = RunContext::open(opts, Some(&site), reporter)?;
    let sources = ctx.sources(site.dir(), reporter);
    let index = ctx.index();
    let catalog = SiteCatalog::new(&sources, &index)
        .with_composer(&site.composer_repositories)
        .with_bindings(&site, lock.as_ref())
        .with_acknowledged(&site.ignore_advisories)
        .with_camp(&site);
    let mut notes = Vec::new();
    catalog.prefetch(&site, None, reporter);
    reporter.stage(crate::report::Stage::Plan, &format!("Moodle {target}"));
    let (core, layout, core_read) = target_core(
        &catalog,
        &site,
        lock.as_ref(),
        target,
        core_source,
        &opts.moodle_git,
        &mut notes,
    )?;
    let requires_unknown = core.version.build == UNKNOWN_BUILD;
    let requirements = requirements_of(&catalog, &core, core_read, target, &mut notes)?;
    let environment = requirements
        .as_ref()
        .map(|r| r.unmet(host))
        .unwrap_or_default();
    let settled = settle(&catalog, &index, &site, &core, &layout)?;
    let plugins = readiness_of(settled, &site, lock.as_ref(), &core);
    let blocked = !environment.is_empty()
        || plugins
            .iter()
            .any(|p| matches!(p.readiness, Readiness::Blocked { .. } | Readiness::InCore));
    let unknown = plugins
        .iter()
        .any(|p| matches!(p.readiness, Readiness::Unknown { .. }));
    Ok(UpgradeCheck {
        site: site.name.clone(),
        target: target.to_string(),
        core_release: (!requires_unknown).then(|| core.version.release.clone()),
        core_build: (!requires_unknown).then(|| core.version.build.to_string()),
        plugins,
        blocked,
        unknown,
        notes,
        core_read,
        environment,
        requirements,
    })
}

/// What the target release needs of the host: its own `admin/environment.xml` when its
/// code was read, else mcb's table; `None` for a release neither knows.
fn requirements_of(
    catalog: &SiteCatalog,
    core: &PlannedCore<SourcePick>,
    core_read: bool,
    target: Release,
    notes: &mut Vec<String>,
) -> Result<Option<Requirements>, RealiseError> {
    if core_read {
        let path = if core.public {
            "public/admin/environment.xml"
        } else {
            "admin/environment.xml"
        };
        match crate::stage::plan::read_text(catalog, "moodle", &core.pick, path)? {
            Some(xml) => match Requirements::from_environment_xml(&xml, target) {
                Ok(r) => return Ok(Some(r)),
                Err(e) => notes.push(format!("the target core's {e}; mcb's table is used")),
            },
            None => notes.push(format!(
                "the target core has no {path}; mcb's table is used"
            )),
        }
    }
    Ok(mcb_moodle::release_facts(target).map(Requirements::from_table))
}

/// Every plugin's answer on the target core, before it is told: the versions chosen for
/// the plugins that fit together, and each plugin set aside with why.
struct Settled {
    solved: Vec<mcb_resolve::Solved<SourcePick>>,
    /// Plugins set aside: blocked, unknown, or shipped with core.
    aside: BTreeMap<String, Readiness>,
    /// The site file without them.
    remaining: SiteFile,
}

/// Resolves the site on the target core; a plugin that blocks is set aside and the rest
/// resolved again, until what is left fits.
fn settle(
    catalog: &SiteCatalog,
    index: &LazyIndex,
    site: &SiteFile,
    core: &PlannedCore<SourcePick>,
    layout: &CoreLayout,
) -> Result<Settled, RealiseError> {
    let mut settled: BTreeMap<String, Readiness> = BTreeMap::new();
    let mut remaining = site.clone();
    remaining.plugins.retain(|p| {
        if layout.is_standard(p.component.as_str()) {
            settled.insert(p.component.to_string(), Readiness::InCore);
            false
        } else {
            true
        }
    });
    let mut solved = Vec::new();
    // Each round sets aside at least one plugin, so this ends.
    for _ in 0..=site.plugins.len() {
        let outcome = choose_versions(catalog, &remaining, None, core, layout);
        let mut set_aside: Vec<(String, Readiness)> = Vec::new();
        match outcome {
            Ok(Ok(s)) => {
                solved = s;
                break;
            }
            Ok(Err(problems)) => {
                for p in problems {
                    let readiness = Readiness::Blocked {
                        last_supported: remaining
                            .plugin(&p.component)
                            .and_then(|r| last_supported(index, r)),
                        reasons: p.facts,
                    };
                    set_aside.push((p.component, readiness));
                }
            }
            Err(f) => {
                let reason = match &f.needed_by {
                    Some(by) => format!(
                        "{by} requires {}, which cannot be read: {}",
                        f.component,
                        crate::error::chain(&f.error)
                    ),
                    None => crate::error::chain(&f.error),
                };
                match f.wanted_by {
                    Some(c) => set_aside.push((c, Readiness::Unknown { reason })),
                    None => return Err(f.error),
                }
            }
        }
        let before = remaining.plugins.len();
        for (c, readiness) in set_aside {
            remaining.plugins.retain(|p| p.component.as_str() != c);
            settled.insert(c, readiness);
        }
        if remaining.plugins.len() == before {
            // A problem that names no plugin of the site file: every plugin left shares it.
            for p in remaining.plugins.drain(..) {
                settled.insert(
                    p.component.to_string(),
                    Readiness::Blocked {
                        reasons: vec!["no set of plugin versions fits together".into()],
                        last_supported: None,
                    },
                );
            }
        }
    }
    Ok(Settled {
        solved,
        aside: settled,
        remaining,
    })
}

/// Each plugin's readiness, as told: dependencies after the site file's own, by name.
fn readiness_of(
    settled: Settled,
    site: &SiteFile,
    lock: Option<&Lock>,
    core: &PlannedCore<SourcePick>,
) -> Vec<PluginReadiness> {
    let Settled {
        solved,
        aside: settled,
        remaining,
    } = settled;
    let locked = |c: &str| lock.and_then(|l| l.plugin(c)).map(|p| p.version.clone());
    let mut plugins: Vec<PluginReadiness> = Vec::new();
    for s in solved {
        // Older than the site's database has run: Moodle refuses it.
        let downgrade = locked(&s.component)
            .and_then(|v| mcb_moodle::Build::parse(&v))
            .zip(s.info.version)
            .filter(|(was, new)| new < was);
        let readiness = match (
            remaining.plugin(&s.component),
            fit(&core.version, &s.info, &s.component),
        ) {
            // A source that names one version is taken as it is: say if it blocks.
            (Some(_), Fit::Blocked(_, why)) => Readiness::Blocked {
                reasons: vec![why],
                last_supported: None,
            },
            (_, f) => match downgrade {
                Some((was, new)) => Readiness::Blocked {
                    reasons: vec![format!(
                        "downgrade: the newest version that installs on Moodle {} is {new}, older than the site's {was}; Moodle refuses it: \"Cannot downgrade {} from {was} to {new}.\" (cannotdowngrade)",
                        core.version.release, s.component
                    )],
                    last_supported: None,
                },
                None => Readiness::Fits {
                    version: s.info.version.map(|v| v.to_string()).unwrap_or_default(),
                    release: s.info.release.clone(),
                    warning: match f {
                        Fit::OutsideSupported(w) => Some(w),
                        _ => s.warning.clone(),
                    },
                },
            },
        };
        plugins.push(PluginReadiness {
            locked: locked(&s.component),
            source: site
                .plugin(&s.component)
                .map(|r| r.source.kind())
                .unwrap_or("directory"),
            auto: s.auto,
            component: s.component,
            readiness,
        });
    }
    for (c, readiness) in settled {
        plugins.push(PluginReadiness {
            locked: locked(&c),
            source: site
                .plugin(&c)
                .map(|r| r.source.kind())
                .unwrap_or("directory"),
            auto: site.plugin(&c).is_none(),
            component: c,
            readiness,
        });
    }
    plugins.sort_by(|a, b| (a.auto, &a.component).cmp(&(b.auto, &b.component)));
    plugins
}

/// The newest Moodle release any directory version of the plugin supports.
fn last_supported(directory: &LazyIndex, req: &PluginRequest) -> Option<String> {
    if req.source != SourceSpec::Directory {
        return None;
    }
    let index = directory.get(req.component.as_str()).ok()?;
    let record = index.lookup(req.component.as_str())?;
    record
        .versions
        .iter()
        .flat_map(|v| v.supportedmoodles.iter().map(|s| s.release.clone()))
        .max_by(|a, b| mcb_moodle::natural_cmp(a, b))
}

/// One plugin on one release, in the readiness matrix.
#[derive(Debug, Clone)]
pub struct MatrixCell {
    pub release: String,
    pub readiness: Readiness,
}

/// One plugin across releases.
#[derive(Debug, Clone)]
pub struct MatrixRow {
    pub component: String,
    pub auto: bool,
    /// The build the lock holds.
    pub locked: Option<String>,
    /// Its release, as administrators name it, when the version says one.
    pub locked_release: Option<String>,
    pub cells: Vec<MatrixCell>,
}

/// Which plugins have a version for which Moodle release: the upgrade-readiness matrix.
#[derive(Debug, Clone)]
pub struct ReadinessMatrix {
    pub site: String,
    /// The day the matrix was made (YYYY-MM-DD).
    pub date: String,
    /// The Moodle release the site runs now, as the lock says it.
    pub core_now: Option<String>,
    pub releases: Vec<String>,
    pub plugins: Vec<MatrixRow>,
    /// Per release, what the check could not know.
    pub notes: BTreeMap<String, Vec<String>>,
    /// The long-term support releases among `releases`.
    pub lts: Vec<String>,
    /// Releases out of security support today, each with the day it ended.
    pub out_of_support: Vec<(String, String)>,
}

/// Whether the site can go to a release: every plugin has a version for it, or these
/// block it (or could not be checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseReadiness {
    pub release: String,
    pub ready: bool,
    pub blocking: Vec<String>,
    pub unknown: Vec<String>,
}

impl ReadinessMatrix {
    /// Per release, oldest first: ready, or what blocks it.
    pub fn summary(&self) -> Vec<ReleaseReadiness> {
        self.releases
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let of = |want: fn(&Readiness) -> bool| -> Vec<String> {
                    self.plugins
                        .iter()
                        .filter(|row| row.cells.get(i).is_some_and(|c| want(&c.readiness)))
                        .map(|row| row.component.clone())
                        .collect()
                };
                let blocking = of(|r| matches!(r, Readiness::Blocked { .. }));
                let unknown = of(|r| matches!(r, Readiness::Unknown { .. }));
                ReleaseReadiness {
                    release: r.clone(),
                    ready: blocking.is_empty() && unknown.is_empty(),
                    blocking,
                    unknown,
                }
            })
            .collect()
    }

    /// The first release after the site's own that still has security support: the
    /// upgrade a site should be ready for.
    pub fn next_supported(&self) -> Option<&str> {
        let own = self.core_now.as_deref().and_then(Release::parse_leading);
        self.releases
            .iter()
            .filter(|r| {
                let r = Release::parse_leading(r);
                own.is_none_or(|o| r.is_some_and(|r| r > o))
            })
            .find(|r| !self.out_of_support.iter().any(|(o, _)| o == *r))
            .map(String::as_str)
    }
}

/// The X.Y releases whose `vX.Y.0` tag the core upstream has: `core_source` when it is a
/// git upstream, else the site's own git core source, else Moodle's own (when online).
/// Nothing when none can be read: the table of releases stands alone then.
fn upstream_releases(
    site: &SiteFile,
    core_source: Option<&str>,
    opts: &RunOptions,
    reporter: &dyn crate::report::Reporter,
) -> Vec<Release> {
    let Ok(ctx) = RunContext::open(opts, Some(site), reporter) else {
        return Vec::new();
    };
    let sources = ctx.sources(site.dir(), reporter);
    let own = match &site.moodle.source {
        SourceSpec::Git { url, .. } => Some(url.clone()),
        _ => None,
    };
    let given = core_source.filter(|c| {
        !matches!(sources.locate(c), mcb_config::Location::Path(p) if p.is_dir() && !p.join(".git").exists() && !p.join("HEAD").exists())
    });
    let url = match (given, own) {
        (Some(c), _) => c.to_string(),
        (None, Some(u)) => u,
        (None, None) if !opts.offline => opts.moodle_git.clone(),
        _ => return Vec::new(),
    };
    let Ok(refs) = sources.git_refs("moodle", &url) else {
        return Vec::new();
    };
    let mut out: Vec<Release> = refs
        .tags
        .keys()
        .filter_map(|t| mcb_moodle::release::parse_release_tag(t))
        .filter(|(_, patch)| *patch == 0)
        .map(|(r, _)| r)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The readiness of every plugin of `site_path` on each release from the site's own up to
/// the newest mcb knows or the core upstream tags (the four newest when the site has no
/// lock yet).
pub fn readiness_matrix(
    site_path: &Path,
    core_source: Option<&str>,
    opts: &RunOptions,
    reporter: &dyn crate::report::Reporter,
) -> Result<ReadinessMatrix, RealiseError> {
    let site = SiteFile::load(site_path)?;
    let lock = Lock::load(&site.lock_path())?;
    let mut known = mcb_moodle::known_releases();
    // Releases newer than mcb's table, when the core upstream has their X.Y.0 tag.
    let newest = known.last().copied();
    for r in upstream_releases(&site, core_source, opts, reporter) {
        if newest.is_none_or(|n| r > n) && !known.contains(&r) {
            known.push(r);
        }
    }
    known.sort();
    let from = lock
        .as_ref()
        .map(|l| mcb_moodle::Branch(l.moodle.branch).release())
        .and_then(|r| known.iter().position(|k| *k == r))
        .unwrap_or(known.len().saturating_sub(4));
    let releases: Vec<Release> = known[from..].to_vec();
    let mut rows: BTreeMap<String, MatrixRow> = BTreeMap::new();
    let mut notes = BTreeMap::new();
    for r in &releases {
        // The host is not judged here: the matrix is about plugins.
        let check = check_upgrade(site_path, *r, core_source, &Host::default(), opts, reporter)?;
        notes.insert(r.to_string(), check.notes.clone());
        for p in check.plugins {
            let row = rows
                .entry(p.component.clone())
                .or_insert_with(|| MatrixRow {
                    component: p.component.clone(),
                    auto: p.auto,
                    locked: p.locked.clone(),
                    locked_release: lock
                        .as_ref()
                        .and_then(|l| l.plugins.iter().find(|lp| lp.component == p.component))
                        .and_then(|lp| lp.release.clone()),
                    cells: Vec::new(),
                });
            row.cells.push(MatrixCell {
                release: r.to_string(),
                readiness: p.readiness,
            });
        }
    }
    let names: Vec<String> = releases.iter().map(ToString::to_string).collect();
    let mut plugins: Vec<MatrixRow> = rows.into_values().collect();
    // A plugin absent on a release (an automatic dependency nothing needs there) is not
    // part of the site on it.
    for row in &mut plugins {
        let mut cells = Vec::new();
        for name in &names {
            match row.cells.iter().find(|c| &c.release == name) {
                Some(c) => cells.push(c.clone()),
                None => cells.push(MatrixCell {
                    release: name.clone(),
                    readiness: Readiness::NotNeeded,
                }),
            }
        }
        row.cells = cells;
    }
    plugins.sort_by(|a, b| (a.auto, &a.component).cmp(&(b.auto, &b.component)));
    let today = mcb_moodle::today();
    let facts: Vec<&mcb_moodle::ReleaseFacts> = releases
        .iter()
        .filter_map(|r| mcb_moodle::release_facts(*r))
        .collect();
    Ok(ReadinessMatrix {
        site: site.name.clone(),
        date: today.clone(),
        core_now: lock
            .as_ref()
            .map(|l| crate::changes::core_release(&l.moodle.release)),
        releases: names,
        plugins,
        notes,
        lts: facts
            .iter()
            .filter(|f| f.lts)
            .map(|f| f.release.to_string())
            .collect(),
        out_of_support: facts
            .iter()
            .filter(|f| !f.supported_on(&today))
            .map(|f| (f.release.to_string(), f.security_end.to_string()))
            .collect(),
    })
}

/// A version a plugin's own source offers, read from its `version.php`.
#[derive(Debug, Clone)]
pub struct SourceVersion {
    /// The tag, branch or version the source names it by.
    pub label: String,
    pub version: Option<String>,
    pub release: Option<String>,
    pub maturity: Option<mcb_moodle::Maturity>,
    /// `$plugin->requires`, the least Moodle build it installs on.
    pub requires: Option<String>,
    /// `$plugin->supported`, as `4.5 to 5.1`.
    pub supported: Option<String>,
    /// Why it is not taken, when its `version.php` could not be read.
    pub problem: Option<String>,
}

/// What the source the site file names for `component` (git, zip, path, Composer) offers,
/// newest first, each read from its own `version.php`; the source as plan names it.
pub fn source_offers(
    opts: &RunOptions,
    site_path: &Path,
    component: &str,
) -> Result<(String, Vec<SourceVersion>), RealiseError> {
    let site = SiteFile::load(site_path)?;
    let Some(request) = site
        .plugins
        .iter()
        .find(|p| p.component.as_str() == component)
    else {
        return Err(RealiseError::source(
            component,
            format!("{component} is not in {}", site_path.display()),
        ));
    };
    let ctx = RunContext::open(opts, Some(&site), &crate::Silent)?;
    let sources = ctx.sources(site.dir(), &crate::Silent);
    let index = ctx.index();
    let catalog = SiteCatalog::new(&sources, &index)
        .with_composer(&site.composer_repositories)
        .with_camp(&site);
    // Offers are listed against the core the site runs (its lock), else the newest build:
    // the list is of the source, not of what fits.
    let core = match Lock::load(&site.lock_path())? {
        Some(l) => CoreVersion {
            build: mcb_moodle::Build::parse(&l.moodle.build).unwrap_or(UNKNOWN_BUILD),
            release: l.moodle.release.clone(),
            branch: mcb_moodle::Branch(l.moodle.branch),
            maturity: None,
        },
        None => CoreVersion {
            build: UNKNOWN_BUILD,
            release: String::new(),
            branch: mcb_moodle::Branch(u32::MAX),
            maturity: None,
        },
    };
    use crate::stage::plan::Catalog;
    let offers = match catalog.offers(&request.component, &request.source, &core)? {
        Ok(o) => o,
        Err(problem) => {
            return Err(RealiseError::source(component, problem.facts.join("; ")));
        }
    };
    let branch = catalog.default_branch(&request.component, &request.source)?;
    let mut out = Vec::new();
    let tags = offers.len();
    for o in offers.into_iter().chain(branch) {
        let read = match &o.info {
            Some(v) => Ok(v.clone()),
            None => crate::stage::plan::read_version_php(&catalog, component, &o.payload)?,
        };
        out.push(match read {
            Ok(v) => SourceVersion {
                label: o.label.clone(),
                version: v.version.map(|b| b.to_string()),
                release: v.release.clone(),
                maturity: v.maturity,
                requires: v.requires.map(|b| b.to_string()),
                supported: v
                    .supported
                    .map(|(lo, hi)| format!("{} to {}", lo.release(), hi.release())),
                problem: None,
            },
            Err(why) => SourceVersion {
                label: o.label.clone(),
                version: o.version.map(|b| b.to_string()),
                release: o.release.clone(),
                maturity: o.maturity,
                requires: None,
                supported: None,
                problem: Some(why),
            },
        });
    }
    // Newest version first; the default branch (taken only when no tag installs) last.
    let last = out.split_off(tags.min(out.len()));
    out.sort_by(|a, b| {
        let v = |s: &SourceVersion| s.version.as_deref().and_then(mcb_moodle::Build::parse);
        v(b).cmp(&v(a)).then_with(|| b.label.cmp(&a.label))
    });
    out.extend(last);
    let described = match &request.source {
        SourceSpec::Git { url, .. } => format!("git {url}"),
        SourceSpec::Zip { location, .. } => format!("zip {location}"),
        SourceSpec::Path { dir } => format!("path {dir}"),
        SourceSpec::Composer { package, .. } => format!("composer {package}"),
        SourceSpec::Camp => "the CAMP registry".to_string(),
        SourceSpec::Directory => "the plugins directory".to_string(),
    };
    Ok((described, out))
}
