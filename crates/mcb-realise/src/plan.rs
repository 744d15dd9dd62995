//! The plan stage: from the site file, the lock and what sources offer, to a [`Plan`] —
//! the core and every plugin with its chosen version, where it comes from, where it
//! installs and why, the dependencies added on the way, and what changes against the lock.
//!
//! It reads sources only through a [`Catalog`], so it is tested against catalogs held in
//! memory; it reads what choosing needs (`version.php`, `lib/components.json`, subplugin
//! declarations) and stores nothing of its own.

use std::collections::BTreeMap;

use mcb_config::{Lock, LockedMoodle, LockedPlugin, PluginRequest, SiteFile, SourceSpec};
use mcb_moodle::{Build, Component, CoreLayout, CoreVersion, MoodleSpec, PluginVersion};
use mcb_resolve::{
    Chosen, Fit, Offer, Problem, Rule, SelectedPlugin, Warning, check_site, choose, fit,
};

use crate::error::RealiseError;

/// What a source offers, newest first, or why it offers nothing.
pub type Offers<P> = Result<Vec<Offer<P>>, Problem>;

/// A plugin chosen while planning: for what request, and the choice.
struct Picked<P> {
    component: Component,
    request: Option<PluginRequest>,
    chosen: Chosen<P>,
}

/// Where versions and files come from, as the plan stage sees it.
pub trait Catalog {
    /// A chosen source: enough to fetch it later and to read its files now.
    type Pick: Clone + std::fmt::Debug;

    /// The core the site file asks for; the lock's when `locked` still answers it.
    fn core(
        &self,
        site: &SiteFile,
        locked: Option<&LockedMoodle>,
    ) -> Result<Self::Pick, RealiseError>;

    /// What `source` offers for `component`, newest first. `Ok(Err(problem))` when it offers
    /// nothing (an index that does not list the plugin).
    fn offers(
        &self,
        component: &Component,
        source: &SourceSpec,
        core: &CoreVersion,
    ) -> Result<Offers<Self::Pick>, RealiseError>;

    /// A git source's default branch, offered when no tag installs.
    fn default_branch(
        &self,
        component: &Component,
        source: &SourceSpec,
    ) -> Result<Option<Offer<Self::Pick>>, RealiseError>;

    /// The source a lock records for a plugin, when it can still be had.
    fn locked(
        &self,
        component: &Component,
        locked: &LockedPlugin,
        request: &SourceSpec,
    ) -> Result<Self::Pick, RealiseError>;

    /// A file of a chosen source: `Ok(None)` when there is none, `Ok(Err(why))` when it
    /// cannot be read as a regular file (a symlink).
    fn read(
        &self,
        component: &str,
        pick: &Self::Pick,
        path: &str,
    ) -> Result<Result<Option<Vec<u8>>, String>, RealiseError>;

    /// The paths of a chosen source's files that end with `suffix`.
    fn files_ending(&self, pick: &Self::Pick, suffix: &str) -> Result<Vec<String>, RealiseError>;

    /// How a chosen source reads in a plan ("git URL v1.2 (0123abcd)").
    fn describe(&self, pick: &Self::Pick) -> String;
}

/// The core, chosen.
#[derive(Debug, Clone)]
pub struct PlannedCore<P> {
    pub pick: P,
    pub version: CoreVersion,
    /// Moodle 5.1+: the web root is `public/`.
    pub public: bool,
}

/// A plugin, chosen.
#[derive(Debug, Clone)]
pub struct PlannedPlugin<P> {
    pub component: Component,
    /// What the site file asks; `None` for a dependency added automatically.
    pub request: Option<PluginRequest>,
    pub pick: P,
    pub info: PluginVersion,
    /// Relative to the codebase root.
    pub install_path: String,
    /// Why this version, in a sentence.
    pub why: String,
}

impl<P> PlannedPlugin<P> {
    pub fn auto(&self) -> bool {
        self.request.is_none()
    }
}

/// One difference between the lock and the plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    Core {
        from: Option<String>,
        to: String,
        /// The new core build is older: Moodle refuses it against an upgraded database.
        downgrade: bool,
    },
    Added {
        component: String,
        version: String,
        auto: bool,
    },
    Removed {
        component: String,
        version: String,
        auto: bool,
    },
    Upgraded {
        component: String,
        from: String,
        to: String,
    },
    Downgraded {
        component: String,
        from: String,
        to: String,
    },
    Source {
        component: String,
        from: String,
        to: String,
    },
}

/// What a site's codebase will be.
#[derive(Debug, Clone)]
pub struct Plan<P> {
    pub site: String,
    pub core: PlannedCore<P>,
    /// Sorted by component.
    pub plugins: Vec<PlannedPlugin<P>>,
    /// Dependencies before their dependants.
    pub order: Vec<String>,
    pub warnings: Vec<String>,
    pub changes: Vec<Change>,
}

fn read_text<C: Catalog>(
    catalog: &C,
    component: &str,
    pick: &C::Pick,
    path: &str,
) -> Result<Option<String>, RealiseError> {
    match catalog.read(component, pick, path)? {
        Ok(bytes) => Ok(bytes.map(|b| String::from_utf8_lossy(&b).into_owned())),
        Err(why) => Err(RealiseError::source(component, why)),
    }
}

/// A plugin's `version.php`: `Ok(Err(why))` when it is missing or unreadable.
pub(crate) fn read_version_php<C: Catalog>(
    catalog: &C,
    component: &str,
    pick: &C::Pick,
) -> Result<Result<PluginVersion, String>, RealiseError> {
    Ok(match catalog.read(component, pick, "version.php")? {
        Err(why) => Err(why),
        Ok(None) => Err("the source has no version.php at its root (a plugin source must hold the plugin's own directory)".into()),
        Ok(Some(bytes)) => {
            PluginVersion::parse(&String::from_utf8_lossy(&bytes)).map_err(|e| e.to_string())
        }
    })
}

fn version_php_problem(component: &str, why: String) -> Problem {
    Problem::new(component, Rule::VersionPhp, why)
}

/// The core a plan starts from: its version, checked against the spec, and its layout.
fn plan_core<C: Catalog>(
    catalog: &C,
    site: &SiteFile,
    lock: Option<&Lock>,
) -> Result<(PlannedCore<C::Pick>, CoreLayout), RealiseError> {
    let locked = lock.filter(|l| l.moodle_fits(site)).map(|l| &l.moodle);
    let pick = catalog.core(site, locked)?;
    let (php, public) = match read_text(catalog, "moodle", &pick, "version.php")? {
        Some(t) => (t, false),
        None => match read_text(catalog, "moodle", &pick, "public/version.php")? {
            Some(t) => (t, true),
            None => {
                return Err(RealiseError::source(
                    "moodle",
                    "the source has no version.php: it is not a Moodle codebase",
                ));
            }
        },
    };
    let version = CoreVersion::parse(&php)
        .map_err(|e| RealiseError::source("moodle", format!("core {e}")))?;
    if let Some(spec) = &site.moodle.spec {
        check_core_spec(spec, &version)?;
    }
    let rel = |p: &str| mcb_moodle::layout::web_root_path(public, p);
    let components =
        read_text(catalog, "moodle", &pick, &rel("lib/components.json"))?.ok_or_else(|| {
            RealiseError::source(
                "moodle",
                format!("the core has no {}", rel("lib/components.json")),
            )
        })?;
    let plugins = read_text(catalog, "moodle", &pick, &rel("lib/plugins.json"))?;
    let mut layout = CoreLayout::new(&components, plugins.as_deref(), public)
        .map_err(|e| RealiseError::source("moodle", e.to_string()))?;
    let web_prefix = if public { "public/" } else { "" };
    for path in catalog.files_ending(&pick, "/db/subplugins.json")? {
        let Some(web_dir) = path
            .strip_suffix("/db/subplugins.json")
            .and_then(|d| d.strip_prefix(web_prefix))
        else {
            continue;
        };
        let json = read_text(catalog, "moodle", &pick, &path)?.unwrap_or_default();
        layout
            .add_subplugins(web_dir, &path, &json)
            .map_err(|e| RealiseError::source("moodle", e.to_string()))?;
    }
    Ok((
        PlannedCore {
            pick,
            version,
            public,
        },
        layout,
    ))
}

/// A core source must hold the release the site file asks for.
fn check_core_spec(spec: &MoodleSpec, core: &CoreVersion) -> Result<(), RealiseError> {
    let Some(want) = spec.release() else {
        return Ok(());
    };
    let mismatch = || {
        RealiseError::source(
            "moodle",
            format!(
                "the site file asks for Moodle {spec}, but the source holds {}",
                core.release
            ),
        )
    };
    if core.major_release() != want {
        return Err(mismatch());
    }
    if let MoodleSpec::Exact(r, patch) = spec {
        let text = core.release.split([' ', '+']).next().unwrap_or("");
        let ok = text == format!("{r}.{patch}") || (*patch == 0 && text == r.to_string());
        if !ok {
            return Err(mismatch());
        }
    }
    Ok(())
}

pub(crate) type PluginChoice<P> = Result<Chosen<P>, Problem>;

/// Chooses a version of one plugin the site file asks for (or a dependency, with the
/// index as its source), keeping the lock's choice while it still answers the request.
pub(crate) fn plan_plugin<C: Catalog>(
    catalog: &C,
    core: &CoreVersion,
    component: &Component,
    source: &SourceSpec,
    pin: Option<&str>,
    locked: Option<&LockedPlugin>,
) -> Result<PluginChoice<C::Pick>, RealiseError> {
    let name = component.as_str();
    if let Some(l) = locked {
        let pick = catalog.locked(component, l, source)?;
        let info = match read_version_php(catalog, name, &pick)? {
            Ok(info) => info,
            Err(why) => return Ok(Err(version_php_problem(name, why))),
        };
        return Ok(Ok(Chosen {
            why: format!("{name} {}: kept from the lock", l.version),
            offer: Offer::new(l.version.clone(), pick),
            info,
            warning: None,
        }));
    }
    let mut offers = match catalog.offers(component, source, core)? {
        Ok(o) => o,
        Err(p) => return Ok(Err(p)),
    };
    let chooses = matches!(
        source,
        SourceSpec::Directory
            | SourceSpec::Git {
                reference: None,
                ..
            }
    );
    if !chooses && offers.len() == 1 {
        // A source that names one version (a ref, a zip, a directory) is taken as it is:
        // the checks every site passes say what is wrong with it.
        let offer = offers.remove(0);
        let info = match read_version_php(catalog, name, &offer.payload)? {
            Ok(info) => info,
            Err(why) => return Ok(Err(version_php_problem(name, why))),
        };
        if let Some(p) = pin
            && (info.version.is_none() || info.version != Build::parse(p))
        {
            return Ok(Err(Problem::new(
                name,
                Rule::Pin,
                format!(
                    "the site file pins version {p}, but the source holds {}",
                    info.version
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "no version".into())
                ),
            )));
        }
        let why = match info.version {
            Some(v) => format!("{name} {v}: what the site file's source holds"),
            None => format!("{name}: what the site file's source holds"),
        };
        return Ok(Ok(Chosen {
            offer,
            info,
            warning: None,
            why,
        }));
    }
    let chosen = choose(name, core, offers, pin, |o| {
        read_version_php(catalog, name, &o.payload)
    })?;
    let problem = match chosen {
        Ok(c) => return Ok(Ok(c)),
        Err(p) if pin.is_some() => return Ok(Err(p)),
        Err(p) => p,
    };
    // No tag installs: the default branch, if it does.
    let Some(branch) = catalog.default_branch(component, source)? else {
        return Ok(Err(problem));
    };
    match read_version_php(catalog, name, &branch.payload)? {
        Ok(info) => match fit(core, &info, &format!("{name} on branch {}", branch.label)) {
            Fit::Blocked(_, why) => Ok(Err(problem.fact(why))),
            _ => Ok(Ok(Chosen {
                why: format!("{name} on branch {}: no tag installs", branch.label),
                warning: Some(Warning {
                    component: name.to_string(),
                    message: format!(
                        "no tag fits this Moodle; using the default branch {}",
                        branch.label
                    ),
                }),
                offer: branch,
                info,
            })),
        },
        Err(why) => Ok(Err(problem.fact(why))),
    }
}

/// The plan: core, the site's plugins, their dependencies from the index, install paths,
/// the checks every site passes, and the changes against `lock`.
pub fn plan<C: Catalog>(
    catalog: &C,
    site: &SiteFile,
    lock: Option<&Lock>,
) -> Result<Plan<C::Pick>, RealiseError> {
    let (core, mut layout) = plan_core(catalog, site, lock)?;
    let mut warnings: Vec<String> = Vec::new();
    let mut problems: Vec<Problem> = Vec::new();
    let mut chosen: Vec<Picked<C::Pick>> = Vec::new();

    for req in &site.plugins {
        let locked = lock
            .and_then(|l| l.plugin(req.component.as_str()))
            .filter(|l| Lock::plugin_fits(l, req))
            .filter(|_| !matches!(req.source, SourceSpec::Path { .. }));
        match plan_plugin(
            catalog,
            &core.version,
            &req.component,
            &req.source,
            req.version.as_deref(),
            locked,
        )? {
            Ok(c) => {
                if let Some(w) = &c.warning {
                    warnings.push(w.to_string());
                }
                chosen.push(Picked {
                    component: req.component.clone(),
                    request: Some(req.clone()),
                    chosen: c,
                });
            }
            Err(p) => problems.push(p),
        }
    }
    if problems.is_empty() {
        add_dependencies(
            catalog,
            &core.version,
            &layout,
            lock,
            &mut chosen,
            &mut problems,
            &mut warnings,
        )?;
    }
    if !problems.is_empty() {
        return Err(RealiseError::Unsatisfiable(problems));
    }
    chosen.sort_by(|a, b| a.component.cmp(&b.component));

    add_plugin_subplugins(catalog, &mut layout, &chosen)?;
    let selected: Vec<SelectedPlugin> = chosen
        .iter()
        .map(|p| SelectedPlugin {
            component: p.component.clone(),
            info: p.chosen.info.clone(),
            auto: p.request.is_none(),
        })
        .collect();
    let core_plugin_version = |component: &str| -> Option<Build> {
        let c = Component::parse(component).ok()?;
        let dir = layout.install_path(&c).ok()?;
        let php =
            read_text(catalog, "moodle", &core.pick, &format!("{dir}/version.php")).ok()??;
        PluginVersion::parse(&php).ok()?.version
    };
    let check = check_site(&core.version, &layout, &selected, &core_plugin_version)
        .map_err(RealiseError::Unsatisfiable)?;
    warnings.extend(check.warnings.iter().map(|w| w.to_string()));

    let plugins: Vec<PlannedPlugin<C::Pick>> = chosen
        .into_iter()
        .map(|p| PlannedPlugin {
            install_path: check.paths[p.component.as_str()].clone(),
            component: p.component,
            request: p.request,
            pick: p.chosen.offer.payload,
            info: p.chosen.info,
            why: p.chosen.why,
        })
        .collect();
    let changes = changes(catalog, lock, &core, &plugins);
    Ok(Plan {
        site: site.name.clone(),
        core,
        plugins,
        order: check.order,
        warnings,
        changes,
    })
}

/// Adds, from the plugins directory, every dependency the chosen plugins declare that the
/// site does not list and core does not ship, transitively. Each is marked `auto`.
#[allow(clippy::too_many_arguments)]
fn add_dependencies<C: Catalog>(
    catalog: &C,
    core: &CoreVersion,
    layout: &CoreLayout,
    lock: Option<&Lock>,
    chosen: &mut Vec<Picked<C::Pick>>,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> Result<(), RealiseError> {
    let who = |c: &Component, info: &PluginVersion| match info.version {
        Some(v) => format!("{c} {v}"),
        None => c.to_string(),
    };
    let mut queue: Vec<(String, Option<Build>, Component, String)> = Vec::new();
    for p in chosen.iter() {
        for (dep, min) in &p.chosen.info.dependencies {
            queue.push((
                dep.clone(),
                *min,
                p.component.clone(),
                who(&p.component, &p.chosen.info),
            ));
        }
    }
    let xy = core.major_release();
    while let Some((dep, min, needer, needed_by)) = queue.pop() {
        if chosen.iter().any(|p| p.component.as_str() == dep) || layout.is_standard(&dep) {
            continue;
        }
        let Ok(component) = Component::parse(&dep) else {
            problems.push(Problem::new(
                needer.as_str(),
                Rule::MissingDependency,
                format!("{needed_by} depends on '{dep}', which is not a component name"),
            ));
            continue;
        };
        let need = match min {
            Some(v) => format!("{dep} ≥ {v}"),
            None => dep.clone(),
        };
        let locked = lock
            .and_then(|l| l.plugin(&dep))
            .filter(|l| l.auto)
            .filter(|l| min.is_none_or(|m| Build::parse(&l.version).is_some_and(|v| v >= m)));
        let outcome = plan_plugin(
            catalog,
            core,
            &component,
            &SourceSpec::Directory,
            None,
            locked,
        )?;
        match outcome {
            Ok(c) => {
                if let (Some(m), Some(have)) = (min, c.info.version)
                    && have < m
                {
                    problems.push(
                        Problem::new(
                            needer.as_str(),
                            Rule::DependencyTooOld,
                            format!("{needed_by} requires {need}"),
                        )
                        .fact(format!("the newest {dep} for Moodle {xy} is {have}"))
                        .hint(format!("use an older {needer} or a newer Moodle")),
                    );
                    continue;
                }
                if let Some(w) = &c.warning {
                    warnings.push(w.to_string());
                }
                for (d, m) in &c.info.dependencies {
                    queue.push((d.clone(), *m, component.clone(), who(&component, &c.info)));
                }
                chosen.push(Picked {
                    component,
                    request: None,
                    chosen: c,
                });
            }
            Err(p) => {
                let mut problem = Problem::new(
                    needer.as_str(),
                    Rule::MissingDependency,
                    format!("{needed_by} requires {need}, which the site file does not list"),
                );
                for f in p.facts {
                    problem = problem.fact(f);
                }
                problems.push(problem.hint(format!(
                    "add \"{dep}\" to the site file with a source that fits"
                )));
            }
        }
    }
    Ok(())
}

/// Subplugin types declared by the site's plugins, parents before children.
fn add_plugin_subplugins<C: Catalog>(
    catalog: &C,
    layout: &mut CoreLayout,
    chosen: &[Picked<C::Pick>],
) -> Result<(), RealiseError> {
    let mut waiting: Vec<(&Component, &C::Pick, String)> = Vec::new();
    for p in chosen {
        let pick = &p.chosen.offer.payload;
        if let Some(json) = read_text(catalog, p.component.as_str(), pick, "db/subplugins.json")? {
            waiting.push((&p.component, pick, json));
        }
    }
    loop {
        let before = waiting.len();
        let mut still = Vec::new();
        for (c, pick, json) in waiting {
            match layout.web_path(c) {
                Ok(dir) => {
                    layout
                        .add_plugin_subplugins(&dir, &format!("{c}/db/subplugins.json"), &json)
                        .map_err(|e| {
                            RealiseError::Unsatisfiable(vec![
                                Problem::new(c.as_str(), Rule::UnknownType, e.to_string()).hint(
                                    "a plugin may declare only new subplugin types, inside its own directory",
                                ),
                            ])
                        })?;
                }
                Err(_) => still.push((c, pick, json)),
            }
        }
        waiting = still;
        if waiting.is_empty() || waiting.len() == before {
            return Ok(());
        }
    }
}

/// What the plan changes against the lock.
fn changes<C: Catalog>(
    catalog: &C,
    lock: Option<&Lock>,
    core: &PlannedCore<C::Pick>,
    plugins: &[PlannedPlugin<C::Pick>],
) -> Vec<Change> {
    let mut out = Vec::new();
    let old_core = lock.map(|l| (&l.moodle.release, Build::parse(&l.moodle.build)));
    let new_build = core.version.build;
    if old_core
        .is_none_or(|(release, build)| *release != core.version.release || build != Some(new_build))
    {
        out.push(Change::Core {
            from: old_core.map(|(r, _)| r.clone()),
            to: core.version.release.clone(),
            downgrade: old_core.is_some_and(|(_, b)| b.is_some_and(|b| b > new_build)),
        });
    }
    let old: BTreeMap<&str, &LockedPlugin> = lock
        .map(|l| {
            l.plugins
                .iter()
                .map(|p| (p.component.as_str(), p))
                .collect()
        })
        .unwrap_or_default();
    for p in plugins {
        let version = p.info.version.map(|v| v.to_string()).unwrap_or_default();
        let Some(was) = old.get(p.component.as_str()) else {
            out.push(Change::Added {
                component: p.component.to_string(),
                version,
                auto: p.auto(),
            });
            continue;
        };
        let (from, to) = (Build::parse(&was.version), p.info.version);
        match (from, to) {
            (Some(f), Some(t)) if t > f => out.push(Change::Upgraded {
                component: p.component.to_string(),
                from: was.version.clone(),
                to: version.clone(),
            }),
            (Some(f), Some(t)) if t < f => out.push(Change::Downgraded {
                component: p.component.to_string(),
                from: was.version.clone(),
                to: version.clone(),
            }),
            _ => {}
        }
        let request_changed = p.request.as_ref().map(|r| &r.source) != was.request.as_ref();
        if request_changed {
            out.push(Change::Source {
                component: p.component.to_string(),
                from: was
                    .request
                    .as_ref()
                    .map(|r| r.kind().to_string())
                    .unwrap_or_else(|| "auto".into()),
                to: match &p.request {
                    Some(r) => r.source.kind().to_string(),
                    None => format!("auto: {}", catalog.describe(&p.pick)),
                },
            });
        }
    }
    for (name, was) in old {
        if !plugins.iter().any(|p| p.component.as_str() == name) {
            out.push(Change::Removed {
                component: name.to_string(),
                version: was.version.clone(),
                auto: was.auto,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests;
