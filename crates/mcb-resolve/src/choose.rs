//! Picking one version of a plugin among what its source offers (git tags, index
//! versions), with one policy whatever the source:
//!
//! 1. a pin keeps only the offers of that exact plugin version;
//! 2. an offer the index lists for other Moodle releases only is set aside (its reason is
//!    kept for the explanation);
//! 3. stable offers come before unstable ones (unless pinned), newest first within each;
//! 4. the first offer that installs and lists the core's branch as supported wins; else the
//!    first stable one that installs at all (Moodle only warns outside `supported`); else
//!    the first unstable one; each fallback with a warning;
//! 5. when nothing installs, the problem lists why the newest offers were refused.
//!
//! An offer's `version.php` is read only when the policy reaches it ([`Offer::info`] may
//! be `None` and the `load` function fetches it): an index's zips are downloaded only for
//! the versions actually considered.

use mcb_moodle::{Build, CoreVersion, Maturity, PluginVersion};

use crate::problem::{Problem, Rule, Warning};

/// One version a source offers.
#[derive(Debug, Clone)]
pub struct Offer<T> {
    /// How the user would name it: a tag, a branch, an index version.
    pub label: String,
    /// The plugin version, when known without reading `version.php` (an index says it).
    pub version: Option<Build>,
    /// The maturity, when the source says it without `version.php`.
    pub maturity: Option<Maturity>,
    /// `Some(reason)` when the index lists this version for other Moodle releases only.
    pub not_listed: Option<String>,
    /// Its `version.php`, when already read.
    pub info: Option<PluginVersion>,
    pub payload: T,
}

impl<T> Offer<T> {
    pub fn new(label: impl Into<String>, payload: T) -> Offer<T> {
        Offer {
            label: label.into(),
            version: None,
            maturity: None,
            not_listed: None,
            info: None,
            payload,
        }
    }

    fn known_version(&self) -> Option<Build> {
        self.version
            .or_else(|| self.info.as_ref().and_then(|i| i.version))
    }

    fn stable(&self) -> bool {
        let m = self
            .maturity
            .or_else(|| self.info.as_ref().and_then(|i| i.maturity));
        m.is_none_or(|m| m == Maturity::Stable)
    }
}

/// The offer chosen, with its `version.php` and what to tell the user.
#[derive(Debug, Clone)]
pub struct Chosen<T> {
    pub offer: Offer<T>,
    pub info: PluginVersion,
    pub warning: Option<Warning>,
    /// Why this version, in a sentence.
    pub why: String,
}

/// How a plugin version fits a core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fit {
    Fits,
    /// Installable, but outside `$plugin->supported`: Moodle only warns.
    OutsideSupported(String),
    Blocked(Rule, String),
}

fn core_name(core: &CoreVersion) -> String {
    format!("{} ({})", core.build, core.release)
}

/// Checks `requires`, `incompatible` and `supported` of one plugin version against `core`.
pub fn fit(core: &CoreVersion, info: &PluginVersion, who: &str) -> Fit {
    if let Some(req) = info.requires
        && req > core.build
    {
        return Fit::Blocked(
            Rule::Requires,
            format!(
                "{who} requires Moodle build {req} or later; the core is {}",
                core_name(core)
            ),
        );
    }
    if info.blocks_branch(core.branch) {
        return Fit::Blocked(
            Rule::Incompatible,
            format!(
                "{who} is incompatible with Moodle branch {} and later; the core is branch {}",
                info.incompatible
                    .expect("blocks_branch implies incompatible"),
                core.branch
            ),
        );
    }
    if !info.supports_branch(core.branch) {
        let (lo, hi) = info.supported.expect("outside supported implies supported");
        return Fit::OutsideSupported(format!(
            "{who} supports Moodle {} to {} (branches {lo}-{hi}); the core is {}; Moodle will warn",
            lo.release(),
            hi.release(),
            core.major_release()
        ));
    }
    Fit::Fits
}

fn describe(component: &str, label: &str, version: Option<Build>) -> String {
    match version {
        Some(v) if label != v.to_string() => format!("{component} {v} ({label})"),
        Some(v) => format!("{component} {v}"),
        None => format!("{component} {label}"),
    }
}

/// Chooses among `offers` (best first as the source ranks them: newest first) by the
/// policy of this module. `load` reads an offer's `version.php` when it is not known yet:
/// `Ok(Err(why))` when it cannot be read. Errors of `load` stop the choice.
pub fn choose<T, E>(
    component: &str,
    core: &CoreVersion,
    offers: Vec<Offer<T>>,
    pin: Option<&str>,
    mut load: impl FnMut(&Offer<T>) -> Result<Result<PluginVersion, String>, E>,
) -> Result<Result<Chosen<T>, Problem>, E> {
    let total = offers.len();
    let mut offers = offers;
    if let Some(p) = pin {
        let want = Build::parse(p);
        // Unknown versions are read first: a pin compares against version.php.
        for o in offers.iter_mut().filter(|o| o.known_version().is_none()) {
            if let Ok(info) = load(o)? {
                o.info = Some(info);
            }
        }
        offers.retain(|o| want.is_some() && o.known_version() == want);
        if offers.is_empty() {
            return Ok(Err(Problem::new(
                component,
                Rule::Pin,
                format!("the site file pins version {p}, which none of the {total} available versions has"),
            )
            .hint(format!("run `mcb info {component}` to see the versions there are"))));
        }
    }
    if offers.is_empty() {
        return Ok(Err(Problem::new(
            component,
            Rule::NoCompatibleVersion,
            "the source offers no version at all",
        )));
    }
    let mut refusals: Vec<String> = Vec::new();
    let (listed, unlisted): (Vec<Offer<T>>, Vec<Offer<T>>) =
        offers.into_iter().partition(|o| o.not_listed.is_none());
    if listed.is_empty() {
        let mut p = Problem::new(
            component,
            unmet(pin),
            format!(
                "no version of {component} that its source offers supports Moodle {}",
                core.major_release()
            ),
        );
        if let Some(newest) = unlisted.first().and_then(|o| o.not_listed.clone()) {
            p = p.fact(newest);
        }
        return Ok(Err(p.hint(
            "run `mcb check --moodle X.Y` to see which Moodle this site can move to",
        )));
    }
    let mut ordered = listed;
    if pin.is_none() {
        // Stable first; the sort is stable, so newest first within each group.
        ordered.sort_by_key(|o| !o.stable());
    }
    let considered = ordered.len();
    // (index, info, warning) of the fallbacks: a stable version outside `supported`, an
    // unstable one that installs.
    let mut fallback_stable: Option<(usize, PluginVersion, String)> = None;
    let mut fallback_unstable: Option<(usize, PluginVersion, String)> = None;
    let mut chosen: Option<(usize, PluginVersion, Option<String>)> = None;
    for (i, o) in ordered.iter_mut().enumerate() {
        let info = match &o.info {
            Some(info) => info.clone(),
            None => match load(o)? {
                Ok(info) => {
                    o.info = Some(info.clone());
                    info
                }
                Err(why) => {
                    refusals.push(format!(
                        "{}: {why}",
                        describe(component, &o.label, o.version)
                    ));
                    continue;
                }
            },
        };
        let who = describe(component, &o.label, info.version.or(o.version));
        let stable = pin.is_some() || o.stable();
        match fit(core, &info, &who) {
            Fit::Fits if stable => {
                chosen = Some((i, info, None));
                break;
            }
            Fit::Fits | Fit::OutsideSupported(_) if !stable => {
                if fallback_unstable.is_none() {
                    fallback_unstable = Some((
                        i,
                        info,
                        format!(
                            "no stable version installs; taking {who}, which is not marked stable"
                        ),
                    ));
                }
            }
            Fit::OutsideSupported(w) => {
                if fallback_stable.is_none() {
                    fallback_stable = Some((
                        i,
                        info,
                        format!(
                            "no version lists this Moodle as supported; taking the newest that installs: {w}"
                        ),
                    ));
                }
            }
            Fit::Fits => unreachable!("stable fits are chosen above"),
            Fit::Blocked(_, why) => refusals.push(why),
        }
    }
    let pick = chosen.or_else(|| {
        fallback_stable
            .or(fallback_unstable)
            .map(|(i, info, w)| (i, info, Some(w)))
    });
    if let Some((i, info, warning)) = pick {
        let offer = ordered.into_iter().nth(i).expect("index in range");
        let who = describe(component, &offer.label, info.version.or(offer.version));
        let why = match (&warning, pin) {
            (_, Some(p)) => format!("{who}: the version the site file pins ({p})"),
            (None, None) => format!(
                "{who}: the newest version that installs on Moodle {}",
                core.release
            ),
            (Some(_), None) => format!(
                "{who}: the best that installs on Moodle {}, with a warning",
                core.release
            ),
        };
        return Ok(Ok(Chosen {
            offer,
            info,
            warning: warning.map(|message| Warning {
                component: component.to_string(),
                message,
            }),
            why,
        }));
    }
    let mut p = Problem::new(
        component,
        unmet(pin),
        format!(
            "none of the {considered} candidate versions installs on Moodle {}",
            core_name(core)
        ),
    );
    for r in refusals.iter().take(3) {
        p = p.fact(r.clone());
    }
    if refusals.len() > 3 {
        p = p.fact(format!(
            "… and {} older versions for the same reasons",
            refusals.len() - 3
        ));
    }
    Ok(Err(p.hint(
        "choose a Moodle version these plugin versions support, or another source for the plugin",
    )))
}

/// The rule a failed choice breaks: the site file's pin when there is one, otherwise the
/// plain lack of a compatible version.
fn unmet(pin: Option<&str>) -> Rule {
    if pin.is_some() {
        Rule::Pin
    } else {
        Rule::NoCompatibleVersion
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcb_moodle::Branch;
    use std::convert::Infallible;

    fn core45() -> CoreVersion {
        CoreVersion {
            build: Build::parse("2024100701.00").unwrap(),
            release: "4.5.1 (Build: 20241209)".into(),
            branch: Branch(405),
            maturity: None,
        }
    }

    fn info(
        version: i64,
        requires: i64,
        supported: Option<(u32, u32)>,
        incompatible: Option<u32>,
    ) -> PluginVersion {
        PluginVersion {
            version: Some(Build::from_int(version)),
            requires: Some(Build::from_int(requires)),
            supported: supported.map(|(a, b)| (Branch(a), Branch(b))),
            incompatible: incompatible.map(Branch),
            ..Default::default()
        }
    }

    fn known(label: &str, i: PluginVersion) -> Offer<()> {
        Offer {
            info: Some(i),
            ..Offer::new(label, ())
        }
    }

    fn run(offers: Vec<Offer<()>>, pin: Option<&str>) -> Result<Chosen<()>, Problem> {
        choose("mod_x", &core45(), offers, pin, |_| {
            Ok::<_, Infallible>(Err("unreadable".to_string()))
        })
        .unwrap()
    }

    #[test]
    fn newest_fitting_wins() {
        let c = vec![
            known("v3", info(2025040100, 2025040700, None, None)),
            known("v2", info(2024110100, 2024100700, Some((405, 405)), None)),
            known("v1", info(2024010100, 2023100900, None, None)),
        ];
        let chosen = run(c, None).unwrap();
        assert_eq!(chosen.offer.label, "v2");
        assert!(chosen.warning.is_none());
        assert!(
            chosen.why.contains("newest version that installs"),
            "{}",
            chosen.why
        );
    }

    #[test]
    fn in_range_preferred_then_warning() {
        let c = vec![
            known("v2", info(2024110100, 2024100700, Some((500, 500)), None)),
            known("v1", info(2024010100, 2023100900, Some((403, 405)), None)),
        ];
        assert_eq!(run(c, None).unwrap().offer.label, "v1");
        let c = vec![known(
            "v2",
            info(2024110100, 2024100700, Some((401, 404)), None),
        )];
        let chosen = run(c, None).unwrap();
        assert_eq!(chosen.offer.label, "v2");
        assert!(chosen.warning.unwrap().message.contains("Moodle will warn"));
    }

    #[test]
    fn stable_before_unstable_and_unstable_as_a_last_resort() {
        let mut rc = known("v3-rc", info(2025010100, 2024100700, None, None));
        rc.maturity = Some(Maturity::Rc);
        let stable = known("v2", info(2024110100, 2024100700, None, None));
        assert_eq!(
            run(vec![rc.clone(), stable], None).unwrap().offer.label,
            "v2"
        );
        let old = known("v1", info(2024010100, 2025040700, None, None));
        let chosen = run(vec![rc, old], None).unwrap();
        assert_eq!(chosen.offer.label, "v3-rc");
        assert!(
            chosen
                .warning
                .unwrap()
                .message
                .contains("not marked stable")
        );
    }

    #[test]
    fn nothing_fits_explains() {
        let c = vec![
            known("v2", info(2025040100, 2025040700, None, None)),
            known("v1", info(2024010100, 2023100900, None, Some(405))),
        ];
        let p = run(c, None).unwrap_err();
        assert_eq!(p.rule, Rule::NoCompatibleVersion);
        let text = p.to_string();
        assert!(text.contains("requires Moodle build 2025040700"), "{text}");
        assert!(
            text.contains("incompatible with Moodle branch 405"),
            "{text}"
        );
    }

    #[test]
    fn pins() {
        let c = vec![
            known("v2", info(2024110100, 2024100700, None, None)),
            known("v1", info(2024010100, 2023100900, None, None)),
        ];
        assert_eq!(
            run(c.clone(), Some("2024010100")).unwrap().offer.label,
            "v1"
        );
        let p = run(c, Some("2020010100")).unwrap_err();
        assert_eq!(p.rule, Rule::Pin);
        let c = vec![known("v3", info(2025040100, 2025040700, None, None))];
        let p = run(c, Some("2025040100")).unwrap_err();
        assert_eq!(p.rule, Rule::Pin);
        assert!(p.to_string().contains("requires Moodle build"));
    }

    #[test]
    fn only_what_is_needed_is_loaded_and_unlisted_offers_explain() {
        let mut loaded = Vec::new();
        let offers: Vec<Offer<i64>> = [2025010100, 2024110100, 2024010100]
            .into_iter()
            .map(|v| Offer {
                version: Some(Build::from_int(v)),
                ..Offer::new(v.to_string(), v)
            })
            .collect();
        let chosen = choose("mod_x", &core45(), offers, None, |o| {
            loaded.push(o.payload);
            Ok::<_, Infallible>(Ok(info(o.payload, 2024100700, None, None)))
        })
        .unwrap()
        .unwrap();
        assert_eq!(chosen.offer.payload, 2025010100);
        assert_eq!(loaded, vec![2025010100], "older zips were not read");

        let unlisted = Offer {
            not_listed: Some("its newest, 3, supports Moodle 5.0".into()),
            ..Offer::new("3", ())
        };
        let p = run(vec![unlisted], None).unwrap_err();
        assert!(p.to_string().contains("supports Moodle 5.0"), "{p}");
    }
}
