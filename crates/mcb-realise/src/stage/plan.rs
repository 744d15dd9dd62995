//! The plan stage: from the site file, the lock and what sources offer, to a [`Plan`] —
//! the core and every plugin with its chosen version, where it comes from, where it
//! installs and why, and the dependencies added on the way.
//!
//! It reads sources only through a [`Catalog`], so it is tested against catalogs held in
//! memory; it reads what choosing needs (`version.php`, `lib/components.json`, subplugin
//! declarations) and stores nothing of its own.

use std::cell::RefCell;
use std::collections::HashMap;

use mcb_config::{
    Lock, LockedMoodle, LockedPlugin, LockedSource, PluginRequest, SiteFile, SourceSpec,
};
use mcb_moodle::{Build, Component, CoreLayout, CoreVersion, Maturity, MoodleSpec, PluginVersion};
use mcb_resolve::{
    Offer, Policy, Problem, Rule, SelectedPlugin, Solution, Solved, SourceFailure, Universe,
    check_site, solve,
};

use crate::changes::Snapshot;
use crate::error::RealiseError;

/// What a source offers, newest first, or why it offers nothing.
pub type Offers<P> = Result<Vec<Offer<P>>, Problem>;

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

    /// Why `pick` may not be taken, when an advisory or malware flag the site has not
    /// acknowledged affects it.
    fn blocked(&self, _component: &str, _pick: &Self::Pick) -> Option<String> {
        None
    }

    /// Was `pick` taken without its upstream (a git package from a binary cache)? Then
    /// the upstream is not asked about it either.
    fn without_upstream(&self, _pick: &Self::Pick) -> bool {
        false
    }
}

/// Which of the lock's choices a run sets aside, to take the newest versions the site
/// file allows instead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Update {
    /// Keep every choice of the lock that still answers the site file.
    #[default]
    Nothing,
    /// Choose everything afresh.
    All,
    /// Choose these plugins (and core, when `core`) afresh; keep the rest.
    Only { components: Vec<String>, core: bool },
}

/// The lock's choices a run keeps, and whether it keeps the lock's core.
#[derive(Debug, Clone)]
pub struct Kept {
    /// The lock, less the choices the update sets aside.
    pub lock: Option<Lock>,
    /// The lock's core is kept.
    pub core: bool,
}

/// The lock's choices a run keeps: all of them, or all but those `update` names. A named
/// component the site has never heard of is a mistake in the command, said as such.
pub fn kept_choices(
    site: &SiteFile,
    lock: Option<&Lock>,
    update: &Update,
) -> Result<Kept, RealiseError> {
    match update {
        Update::Nothing => Ok(Kept {
            lock: lock.cloned(),
            core: true,
        }),
        Update::All => Ok(Kept {
            lock: None,
            core: false,
        }),
        Update::Only { components, core } => {
            for c in components {
                let known = site.plugin(c).is_some() || lock.is_some_and(|l| l.plugin(c).is_some());
                if !known {
                    return Err(mcb_config::ConfigError::new(
                        &site.path,
                        format!("{c} is neither in the site file nor in its lock"),
                    )
                    .component(c)
                    .into());
                }
            }
            let kept = lock.map(|l| {
                let mut l = l.clone();
                l.plugins.retain(|p| !components.contains(&p.component));
                l
            });
            Ok(Kept {
                lock: kept,
                core: !core,
            })
        }
    }
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
    /// The versions ranked before it, each with why it was not taken.
    pub passed_over: Vec<String>,
}

impl<P> PlannedPlugin<P> {
    pub fn auto(&self) -> bool {
        self.request.is_none()
    }
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
}

pub(crate) fn read_text<C: Catalog>(
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

/// The core a plan starts from: its version, checked against the spec, and its layout.
pub(crate) fn plan_core<C: Catalog>(
    catalog: &C,
    site: &SiteFile,
    lock: Option<&Lock>,
) -> Result<(PlannedCore<C::Pick>, CoreLayout), RealiseError> {
    let locked = lock.filter(|l| l.moodle_fits(site)).map(|l| &l.moodle);
    let pick = catalog.core(site, locked)?;
    core_of(catalog, site.moodle.spec.as_ref(), pick)
}

/// A core source read: its version, checked against `spec`, and its layout.
pub(crate) fn core_of<C: Catalog>(
    catalog: &C,
    spec: Option<&MoodleSpec>,
    pick: C::Pick,
) -> Result<(PlannedCore<C::Pick>, CoreLayout), RealiseError> {
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
    if let Some(spec) = spec {
        check_core_spec(spec, &version)?;
    }
    // Moodle 5.1 keeps lib/components.json and lib/plugins.json at the codebase root, not
    // under public/; an older layout has them in its web root, which is the root.
    let lib_file = |name: &str| -> Result<Option<String>, RealiseError> {
        let at_root = read_text(catalog, "moodle", &pick, &format!("lib/{name}"))?;
        match at_root {
            Some(t) => Ok(Some(t)),
            None if public => read_text(catalog, "moodle", &pick, &format!("public/lib/{name}")),
            None => Ok(None),
        }
    };
    let components = lib_file("components.json")?
        .ok_or_else(|| RealiseError::source("moodle", "the core has no lib/components.json"))?;
    // Before 4.4 the standard plugins are only in core's plugin manager.
    let plugins = match lib_file("plugins.json")? {
        Some(p) => Some(p),
        None => read_text(catalog, "moodle", &pick, "lib/classes/plugin_manager.php")?
            .and_then(|php| mcb_moodle::plugins_json_from_plugin_manager(&php)),
    };
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

/// The solver's view of one site: what the site file asks, what the lock chose, what the
/// sources offer and what core ships.
struct SiteUniverse<'a, C: Catalog> {
    catalog: &'a C,
    site: &'a SiteFile,
    lock: Option<&'a Lock>,
    core: &'a PlannedCore<C::Pick>,
    layout: &'a CoreLayout,
    /// Core's own plugin versions, read once each.
    shipped: RefCell<HashMap<String, Option<Build>>>,
}

impl<C: Catalog> SiteUniverse<'_, C> {
    /// The source a component comes from and the policy it is chosen by.
    /// The organisation's policy refusing `component`, as a problem: it is taken neither
    /// as asked nor as a dependency.
    fn refused_by_policy(&self, component: &str) -> Option<Problem> {
        let policy = self.site.policy.as_ref()?;
        let refusal = policy.refuses(component)?;
        let asked = self.site.plugin(component).is_some();
        Some(
            Problem::new(component, Rule::Policy, policy.refusal_text(component, &refusal)).hint(
                if asked {
                    "remove it from the site file, or ask whoever keeps the policy"
                } else {
                    "a plugin the site asks for needs it: remove that plugin, or ask whoever keeps the policy"
                },
            ),
        )
    }

    fn request(&self, component: &str) -> (SourceSpec, Option<&PluginRequest>) {
        match self.site.plugin(component) {
            Some(req) => (req.source.clone(), Some(req)),
            None => (SourceSpec::Directory, None),
        }
    }
}

/// How a lock names the version it chose, as the source's own offer names it (so a
/// choice kept from the lock reads, and warns, as when it was made): a git tag or branch,
/// an index's version, a Composer version, a zip's location, a directory.
fn locked_label(l: &LockedPlugin) -> String {
    match &l.source {
        LockedSource::Git { reference, .. } => reference.clone(),
        LockedSource::Directory { .. } => l.version.clone(),
        LockedSource::Composer { version, .. } => version.clone(),
        LockedSource::Zip { location, .. } => location.clone(),
        LockedSource::Path { dir } => dir.clone(),
    }
}

impl<C: Catalog> Universe for SiteUniverse<'_, C> {
    type Payload = C::Pick;
    type Error = RealiseError;

    fn core(&self) -> &CoreVersion {
        &self.core.version
    }

    fn requested(&self) -> Vec<String> {
        self.site
            .plugins
            .iter()
            .map(|p| p.component.to_string())
            .collect()
    }

    fn locked(&self, component: &str) -> Result<Option<Offer<C::Pick>>, RealiseError> {
        let Some(l) = self.lock.and_then(|l| l.plugin(component)) else {
            return Ok(None);
        };
        let (source, req) = self.request(component);
        let fits = match req {
            Some(req) => {
                Lock::plugin_fits(l, req) && !matches!(req.source, SourceSpec::Path { .. })
            }
            None => l.auto,
        };
        if !fits {
            return Ok(None);
        }
        if self.refused_by_policy(component).is_some() {
            return Ok(None);
        }
        let c = Component::parse(component).expect("locked components are checked");
        let pick = self.catalog.locked(&c, l, &source)?;
        let blocked = self.catalog.blocked(component, &pick);
        // A default branch taken because no tag installed is still that, kept.
        let last_resort = match (&l.source, &source) {
            _ if self.catalog.without_upstream(&pick) => false,
            (
                LockedSource::Git { reference, .. },
                SourceSpec::Git {
                    reference: None, ..
                },
            ) => self
                .catalog
                .default_branch(&c, &source)?
                .is_some_and(|b| b.label == *reference),
            _ => false,
        };
        Ok(Some(Offer {
            version: Build::parse(&l.version),
            release: l.release.clone(),
            last_resort,
            blocked,
            ..Offer::new(locked_label(l), pick)
        }))
    }

    fn policy(&self, component: &str) -> Policy {
        let (source, req) = self.request(component);
        Policy {
            pin: req.and_then(|r| r.version.clone()),
            maturity: req
                .and_then(|r| r.maturity)
                .or(self.site.maturity)
                .unwrap_or(Maturity::Stable),
            as_is: !chooses(&source),
            min_age: req
                .and_then(|r| r.min_age)
                .or(self.site.min_age)
                .map(|a| (a, now())),
        }
    }

    fn offers(
        &self,
        component: &str,
    ) -> Result<Result<Vec<Offer<C::Pick>>, Problem>, RealiseError> {
        let Ok(c) = Component::parse(component) else {
            return Ok(Err(Problem::new(
                component,
                Rule::MissingDependency,
                format!("'{component}' is not a component name"),
            )));
        };
        if let Some(p) = self.refused_by_policy(component) {
            return Ok(Err(p));
        }
        let (source, _) = self.request(component);
        let mut offers = match self.catalog.offers(&c, &source, &self.core.version)? {
            Ok(o) => o,
            Err(p) => return Ok(Err(p)),
        };
        for o in &mut offers {
            o.blocked = self.catalog.blocked(component, &o.payload);
        }
        if chooses(&source)
            && let Some(mut branch) = self.catalog.default_branch(&c, &source)?
        {
            branch.last_resort = true;
            offers.push(branch);
        }
        Ok(Ok(offers))
    }

    fn load(
        &self,
        component: &str,
        offer: &Offer<C::Pick>,
    ) -> Result<Result<PluginVersion, String>, RealiseError> {
        read_version_php(self.catalog, component, &offer.payload)
    }

    fn ships(&self, component: &str) -> Option<Option<Build>> {
        if !self.layout.is_standard(component) {
            return None;
        }
        if let Some(v) = self.shipped.borrow().get(component) {
            return Some(*v);
        }
        let version = shipped_version(self.catalog, &self.core.pick, self.layout, component);
        self.shipped
            .borrow_mut()
            .insert(component.to_string(), version);
        Some(version)
    }
}

/// Does a source offer versions to choose among (the plugins directory, a Composer
/// package, a git repository without a `ref`), rather than one taken as it is?
fn chooses(source: &SourceSpec) -> bool {
    matches!(
        source,
        SourceSpec::Directory
            | SourceSpec::Composer { .. }
            | SourceSpec::Git {
                reference: None,
                ..
            }
    )
}

/// The version of a plugin core ships, from its `version.php` in the core.
fn shipped_version<C: Catalog>(
    catalog: &C,
    core: &C::Pick,
    layout: &CoreLayout,
    component: &str,
) -> Option<Build> {
    let dir = layout
        .install_path(&Component::parse(component).ok()?)
        .ok()?;
    let php = read_text(catalog, "moodle", core, &format!("{dir}/version.php")).ok()??;
    PluginVersion::parse(&php).ok()?.version
}

/// A source that failed while choosing, said with the plugins that needed it.
fn failed_source(f: SourceFailure<RealiseError>) -> RealiseError {
    let Some(by) = f.needed_by else {
        return f.error;
    };
    match f.error {
        RealiseError::Source(mut e) => {
            e.message = format!(
                "{by} requires {}, which the site file does not list, so it comes from the plugins directory: {}",
                f.component, e.message
            );
            RealiseError::Source(e)
        }
        other => other,
    }
}

/// The plan: core, the site's plugins, their dependencies from the index, install paths,
/// and the checks every site passes.
pub fn plan<C: Catalog>(
    catalog: &C,
    site: &SiteFile,
    lock: Option<&Lock>,
) -> Result<Plan<C::Pick>, RealiseError> {
    plan_with(catalog, site, lock, true)
}

/// The plan, keeping the lock's core only when `keep_core` (an update of core sets it
/// aside; its plugins are kept or not by what `lock` holds).
pub(crate) fn plan_with<C: Catalog>(
    catalog: &C,
    site: &SiteFile,
    lock: Option<&Lock>,
    keep_core: bool,
) -> Result<Plan<C::Pick>, RealiseError> {
    let (core, layout) = plan_core(catalog, site, lock.filter(|_| keep_core))?;
    plan_on(catalog, site, lock, core, layout)
}

/// Every plugin's version on `core`, or the problems that leave none; a source that
/// fails is returned with the plugins that needed it.
pub(crate) fn choose_versions<C: Catalog>(
    catalog: &C,
    site: &SiteFile,
    lock: Option<&Lock>,
    core: &PlannedCore<C::Pick>,
    layout: &CoreLayout,
) -> Result<Solution<C::Pick>, Box<SourceFailure<RealiseError>>> {
    let universe = SiteUniverse {
        catalog,
        site,
        lock,
        core,
        layout,
        shipped: RefCell::new(HashMap::new()),
    };
    solve(&universe)
}

/// The plan on a core already chosen.
fn plan_on<C: Catalog>(
    catalog: &C,
    site: &SiteFile,
    lock: Option<&Lock>,
    core: PlannedCore<C::Pick>,
    mut layout: CoreLayout,
) -> Result<Plan<C::Pick>, RealiseError> {
    let solved = match choose_versions(catalog, site, lock, &core, &layout) {
        Ok(Ok(solved)) => solved,
        Ok(Err(problems)) => return Err(RealiseError::Unsatisfiable(problems)),
        Err(failure) => return Err(failed_source(*failure)),
    };
    let mut warnings: Vec<String> = solved
        .iter()
        .filter_map(|s| s.warning.as_ref().map(|w| format!("{}: {w}", s.component)))
        .collect();

    add_plugin_subplugins(catalog, &mut layout, &solved)?;
    let selected: Vec<SelectedPlugin> = solved
        .iter()
        .map(|s| SelectedPlugin {
            component: Component::parse(&s.component).expect("solved components are valid"),
            info: s.info.clone(),
            auto: s.auto,
        })
        .collect();
    let core_plugin_version =
        |component: &str| shipped_version(catalog, &core.pick, &layout, component);
    let check = check_site(&core.version, &layout, &selected, &core_plugin_version)
        .map_err(RealiseError::Unsatisfiable)?;
    // The site check warns of what the choice did not judge (a source taken as it is);
    // a component the choice already warned about is said once.
    let warned: Vec<&str> = solved
        .iter()
        .filter(|s| s.warning.is_some())
        .map(|s| s.component.as_str())
        .collect();
    let site_warnings: Vec<String> = check
        .warnings
        .iter()
        .filter(|w| !warned.contains(&w.component.as_str()))
        .map(|w| w.to_string())
        .collect();
    for w in site_warnings {
        if !warnings.contains(&w) {
            warnings.push(w);
        }
    }

    let plugins: Vec<PlannedPlugin<C::Pick>> = solved
        .into_iter()
        .map(|s| {
            let component = Component::parse(&s.component).expect("solved components are valid");
            PlannedPlugin {
                install_path: check.paths[s.component.as_str()].clone(),
                request: site.plugin(&s.component).cloned(),
                component,
                pick: s.offer.payload,
                info: s.info,
                why: s.why,
                passed_over: s.passed_over,
            }
        })
        .collect();
    Ok(Plan {
        site: site.name.clone(),
        core,
        plugins,
        order: check.order,
        warnings,
    })
}

impl<P> Plan<P> {
    /// The state of the site this plan makes; `describe` says where a chosen source comes
    /// from, in the words [`mcb_config::LockedSource::label`] uses for a locked one.
    pub fn snapshot(
        &self,
        site: &SiteFile,
        describe: impl Fn(&P) -> String,
        index_of: impl Fn(&P) -> Option<String>,
    ) -> Snapshot {
        use crate::changes::{Held, core_release, kind_of};
        Snapshot {
            core: Held {
                version: self.core.version.build.to_string(),
                release: Some(core_release(&self.core.version.release)),
                kind: site.moodle.source.kind().to_string(),
                source: describe(&self.core.pick),
                index: None,
            },
            plugins: self
                .plugins
                .iter()
                .map(|p| {
                    (
                        p.component.to_string(),
                        Held {
                            version: p.info.version.map(|v| v.to_string()).unwrap_or_default(),
                            release: p.info.release.clone(),
                            kind: kind_of(p.request.as_ref().map(|r| &r.source)),
                            source: describe(&p.pick),
                            index: index_of(&p.pick),
                        },
                    )
                })
                .collect(),
            links: site.links.clone(),
        }
    }
}

/// Subplugin types declared by the site's plugins, parents before children.
fn add_plugin_subplugins<C: Catalog>(
    catalog: &C,
    layout: &mut CoreLayout,
    chosen: &[Solved<C::Pick>],
) -> Result<(), RealiseError> {
    let mut waiting: Vec<(Component, &C::Pick, String)> = Vec::new();
    for p in chosen {
        let pick = &p.offer.payload;
        if let Some(json) = read_text(catalog, &p.component, pick, "db/subplugins.json")? {
            let c = Component::parse(&p.component).expect("solved components are valid");
            waiting.push((c, pick, json));
        }
    }
    loop {
        let before = waiting.len();
        let mut still = Vec::new();
        for (c, pick, json) in waiting {
            match layout.web_path(&c) {
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

/// Seconds since the epoch.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
