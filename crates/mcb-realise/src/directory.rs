//! Choosing a plugin version from the plugins directory, the way an administrator would by
//! hand: the newest version that lists the core's X.Y among its supported Moodles, stable
//! before alpha/beta/rc, whose own `version.php` installs on the exact core build.

use std::sync::OnceLock;

use mcb_catalog::{CachePolicy, DirectoryVersion, Http, PluginIndex, Pluglist};
use mcb_moodle::{Build, CoreVersion, Maturity};
use mcb_resolve::{Fit, Problem, Rule, Warning, fit};
use mcb_store::Store;

use crate::error::RealiseError;
use crate::sources::{Fetched, Sources};

/// The plugins directory, loaded on first use (a site with no directory plugins never
/// asks for it).
pub(crate) struct Directory<'a> {
    pub location: String,
    http: &'a Http,
    store: Option<&'a Store>,
    policy: CachePolicy,
    list: OnceLock<Result<Pluglist, String>>,
}

impl<'a> Directory<'a> {
    pub fn new(
        location: String,
        http: &'a Http,
        store: Option<&'a Store>,
        policy: CachePolicy,
    ) -> Self {
        Directory {
            location,
            http,
            store,
            policy,
            list: OnceLock::new(),
        }
    }

    pub fn index(&self, component: &str) -> Result<&dyn PluginIndex, RealiseError> {
        let loaded = self.list.get_or_init(|| {
            Pluglist::load(self.http, self.store, &self.location, self.policy)
                .map_err(|e| e.to_string())
        });
        match loaded {
            Ok(l) => Ok(l),
            Err(e) => Err(RealiseError::source(component, e.clone())
                .with_hint("check the directory URL (site file `directory:` or MCB_DIRECTORY)")),
        }
    }
}

fn stable(v: &DirectoryVersion) -> bool {
    v.maturity
        .is_none_or(|m| Maturity::from_code(m) == Some(Maturity::Stable))
}

pub(crate) type Outcome = Result<(Fetched, mcb_moodle::PluginVersion, Option<Warning>), Problem>;

/// Chooses and fetches a version of `component` for `core`. `pin` asks for one exact
/// version. A problem explains why nothing fits.
pub(crate) fn resolve(
    sources: &Sources,
    directory: &Directory,
    core: &CoreVersion,
    component: &str,
    pin: Option<&str>,
) -> Result<Outcome, RealiseError> {
    let index = directory.index(component)?;
    let xy = core.major_release().to_string();
    let Some(record) = index.lookup(component) else {
        return Ok(Err(Problem::new(
            component,
            Rule::NoCompatibleVersion,
            format!(
                "{component} is not in the plugins directory ({})",
                index.describe()
            ),
        )
        .hint("check the component name, or give a git, zip or path source")));
    };
    let all = record.newest_first();
    let mut candidates: Vec<&DirectoryVersion> = match pin {
        Some(p) => {
            let want = Build::parse(p);
            let Some(v) = all
                .iter()
                .find(|v| want.is_some() && Build::parse(&v.version) == want)
            else {
                let newest = all.first().map(|v| v.version.as_str()).unwrap_or("none");
                return Ok(Err(Problem::new(
                    component,
                    Rule::Pin,
                    format!("the site file pins version {p}, which the plugins directory does not list (its newest is {newest})"),
                )
                .hint(format!("run `mcb info {component}` to see the versions there are"))));
            };
            if !v.supports(&xy) {
                return Ok(Err(Problem::new(
                    component,
                    Rule::Pin,
                    format!(
                        "the site file pins {component} {p}, which supports Moodle {}, not {xy}",
                        v.supported_list()
                    ),
                )));
            }
            vec![v]
        }
        None => all.iter().copied().filter(|v| v.supports(&xy)).collect(),
    };
    if candidates.is_empty() {
        let mut p = Problem::new(
            component,
            Rule::NoCompatibleVersion,
            format!("no version of {component} in the plugins directory supports Moodle {xy}"),
        );
        if let Some(newest) = all.first() {
            p = p.fact(format!(
                "its newest, {} ({}), supports Moodle {}",
                newest.version,
                newest.release.as_deref().unwrap_or("no release name"),
                newest.supported_list()
            ));
        }
        return Ok(Err(p.hint(
            "run `mcb check --moodle X.Y` to see which Moodle this site can move to",
        )));
    }
    if pin.is_none() {
        // Stable first, newest first within each group.
        candidates.sort_by_key(|v| !stable(v));
    }
    let mut refusals = Vec::new();
    for v in &candidates {
        let fetched = sources.directory_zip(component, v, None)?;
        let info = match crate::pipeline::read_plugin_version(sources, component, &fetched)? {
            Ok(i) => i,
            Err(p) => {
                refusals.push(format!("{component} {}: {}", v.version, p.facts.join("; ")));
                continue;
            }
        };
        let who = format!("{component} {}", v.version);
        match fit(core, &info, &who) {
            Fit::Blocked(_, why) => refusals.push(why),
            other => {
                let warning = match other {
                    Fit::OutsideSupported(w) => Some(w),
                    _ if !stable(v) && pin.is_none() => Some(format!(
                        "no stable version fits; using {} ({}), maturity {}",
                        v.version,
                        v.release.as_deref().unwrap_or("?"),
                        v.maturity.unwrap_or(0)
                    )),
                    _ => None,
                };
                let warning = warning.map(|message| Warning {
                    component: component.to_string(),
                    message,
                });
                return Ok(Ok((fetched, info, warning)));
            }
        }
    }
    let rule = if pin.is_some() {
        Rule::Pin
    } else {
        Rule::NoCompatibleVersion
    };
    let mut p = Problem::new(
        component,
        rule,
        format!(
            "none of the {} versions listed for Moodle {xy} installs on the core {} ({})",
            candidates.len(),
            core.build,
            core.release
        ),
    );
    for r in refusals.into_iter().take(3) {
        p = p.fact(r);
    }
    Ok(Err(p))
}

/// A locked directory version, found again in the index (or from its URL alone).
pub(crate) fn locked_version(id: u64, url: &str, md5: &mcb_store::Md5) -> DirectoryVersion {
    DirectoryVersion {
        id,
        version: String::new(),
        release: None,
        maturity: None,
        downloadurl: url.to_string(),
        downloadmd5: md5.to_string(),
        vcsrepositoryurl: None,
        vcstag: None,
        supportedmoodles: Vec::new(),
        timecreated: None,
    }
}
