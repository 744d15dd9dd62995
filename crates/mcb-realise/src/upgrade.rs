//! `info` and `check`: what the plugins directory offers for a plugin, and whether a site
//! can move to another Moodle release: for each plugin, the version it would get there, or
//! why none fits.

use std::path::Path;

use mcb_catalog::{LazyIndex, PluginRecord};
use mcb_config::{Lock, PluginRequest, SiteFile, SourceSpec};
use mcb_moodle::{CoreLayout, CoreVersion, MoodleSpec, Release};
use mcb_resolve::{Fit, fit};
use mcb_store::Store;

use crate::catalog::{SiteCatalog, pick_core_ref};
use crate::context::RunContext;
use crate::error::RealiseError;
use crate::options::Options;
use crate::plan::plan_plugin;

/// Stands for a core whose build is unknown: no `requires` blocks it.
const UNKNOWN_BUILD: mcb_moodle::Build = mcb_moodle::Build::MAX;

/// The directory's record of `component`.
pub fn plugin_info(
    opts: &Options,
    site: Option<&Path>,
    component: &str,
) -> Result<(String, PluginRecord), RealiseError> {
    let site = match site {
        Some(p) => Some(SiteFile::load(p)?),
        None => None,
    };
    let location = opts.directory_for(site.as_ref());
    // The store is only a cache here: none, or a read-only one, still answers.
    let store = Store::open_existing(&opts.store).ok();
    let http = opts.http(&location);
    let directory = LazyIndex::new(location.clone(), &http, store.as_ref(), opts.cache_policy());
    let index = directory.get(component)?;
    match index.lookup(component) {
        Some(r) => Ok((index.describe(), r.clone())),
        None => Err(RealiseError::source(
            component,
            format!(
                "{component} is not in the plugins directory ({})",
                index.describe()
            ),
        )),
    }
}

/// How one plugin stands on the target release.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
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
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PluginReadiness {
    pub component: String,
    /// The version in the lock today.
    pub locked: Option<String>,
    pub source: &'static str,
    pub auto: bool,
    #[serde(flatten)]
    pub readiness: Readiness,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct UpgradeCheck {
    pub site: String,
    pub target: String,
    /// The target core, when the site's core source can name it (git).
    pub core_release: Option<String>,
    pub core_build: Option<String>,
    pub plugins: Vec<PluginReadiness>,
    /// Something blocks the upgrade.
    pub blocked: bool,
    pub notes: Vec<String>,
}

/// Checks whether `site` can move to Moodle `target` (X.Y).
pub fn check_upgrade(
    site_path: &Path,
    target: Release,
    opts: &Options,
    reporter: &dyn crate::report::Reporter,
) -> Result<UpgradeCheck, RealiseError> {
    let site = SiteFile::load(site_path)?;
    let lock = Lock::load(&site.lock_path())?;
    let ctx = RunContext::open(opts, Some(&site), reporter)?;
    let git = &ctx.git;
    let sources = ctx.sources(site.dir(), reporter);
    let index = ctx.index();
    let catalog = SiteCatalog::new(&sources, &index);
    let mut notes = Vec::new();

    // The target core: the newest X.Y release of the site's core source.
    let (core, standard) = match &site.moodle.source {
        SourceSpec::Git { url, .. } => {
            let refs = sources.git_refs("moodle", url)?;
            let (tag, commit) = pick_core_ref(&sources, &refs, &MoodleSpec::Series(target), url)?;
            let php = git
                .read_file(&commit, "version.php")?
                .or(git.read_file(&commit, "public/version.php")?);
            let php = php.ok_or_else(|| {
                RealiseError::source("moodle", format!("{tag} has no version.php"))
            })?;
            let core = CoreVersion::parse(&String::from_utf8_lossy(&php))
                .map_err(|e| RealiseError::source("moodle", format!("{tag}: core {e}")))?;
            let public = git.read_file(&commit, "public/version.php")?.is_some();
            let rel = |p: &str| mcb_moodle::layout::web_root_path(public, p);
            let components = git
                .read_file(&commit, &rel("lib/components.json"))?
                .unwrap_or_else(|| b"{\"plugintypes\":{}}".to_vec());
            let plugins = git.read_file(&commit, &rel("lib/plugins.json"))?;
            let layout = CoreLayout::new(
                &String::from_utf8_lossy(&components),
                plugins.as_deref().map(String::from_utf8_lossy).as_deref(),
                public,
            )
            .ok();
            (core, layout)
        }
        _ => {
            notes.push(format!(
                "the site's core comes from a {} source, so the exact {target} build is unknown: `requires` is not checked",
                site.moodle.source.kind()
            ));
            let core = CoreVersion {
                build: UNKNOWN_BUILD,
                release: format!("{target}"),
                branch: target.branch(),
                maturity: None,
            };
            (core, None)
        }
    };
    let requires_unknown = core.build == UNKNOWN_BUILD;

    let mut requests: Vec<(PluginRequest, bool)> =
        site.plugins.iter().map(|p| (p.clone(), false)).collect();
    if let Some(l) = &lock {
        for p in l.plugins.iter().filter(|p| p.auto) {
            if let Ok(component) = mcb_moodle::Component::parse(&p.component) {
                requests.push((
                    PluginRequest {
                        component,
                        version: None,
                        source: SourceSpec::Directory,
                        line: 0,
                    },
                    true,
                ));
            }
        }
    }

    let mut plugins = Vec::new();
    for (req, auto) in requests {
        let name = req.component.to_string();
        let locked = lock
            .as_ref()
            .and_then(|l| l.plugin(&name))
            .map(|p| p.version.clone());
        let readiness = if standard.as_ref().is_some_and(|l| l.is_standard(&name)) {
            Readiness::InCore
        } else {
            match plan_plugin(&catalog, &core, &req.component, &req.source, None, None)? {
                Ok(chosen) => match fit(&core, &chosen.info, &name) {
                    Fit::Blocked(_, why) => Readiness::Blocked {
                        reasons: vec![why],
                        last_supported: None,
                    },
                    other => Readiness::Fits {
                        version: chosen
                            .info
                            .version
                            .map(|v| v.to_string())
                            .unwrap_or_default(),
                        release: chosen.info.release.clone(),
                        warning: match other {
                            Fit::OutsideSupported(w) => Some(w),
                            _ => chosen.warning.map(|w| w.message),
                        },
                    },
                },
                Err(problem) => Readiness::Blocked {
                    last_supported: last_supported(&index, &req),
                    reasons: problem.facts,
                },
            }
        };
        plugins.push(PluginReadiness {
            component: name,
            locked,
            source: req.source.kind(),
            auto,
            readiness,
        });
    }
    let blocked = plugins
        .iter()
        .any(|p| !matches!(p.readiness, Readiness::Fits { .. }));
    Ok(UpgradeCheck {
        site: site.name.clone(),
        target: target.to_string(),
        core_release: (!requires_unknown).then(|| core.release.clone()),
        core_build: (!requires_unknown).then(|| core.build.to_string()),
        plugins,
        blocked,
        notes,
    })
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
