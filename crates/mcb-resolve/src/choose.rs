//! Picking one version of a plugin among candidates (git tags, directory versions).

use mcb_moodle::{Build, CoreVersion, PluginVersion};

use crate::problem::{Problem, Rule, Warning};

/// One version a source offers.
#[derive(Debug, Clone)]
pub struct Candidate<T> {
    /// How the user would name it: a tag, a branch, a directory version.
    pub label: String,
    pub info: PluginVersion,
    pub payload: T,
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

fn describe(component: &str, c: &Candidate<impl Sized>) -> String {
    match c.info.version {
        Some(v) if c.label != v.to_string() => format!("{component} {v} ({})", c.label),
        Some(v) => format!("{component} {v}"),
        None => format!("{component} {}", c.label),
    }
}

/// Chooses among `candidates`, newest first: the newest that fits inside its supported
/// range, else the newest that fits at all (with a warning). `pin` keeps only candidates
/// of that exact plugin version. When nothing fits, the problem lists why the newest
/// candidates were refused.
pub fn choose<T>(
    component: &str,
    core: &CoreVersion,
    candidates: Vec<Candidate<T>>,
    pin: Option<&str>,
) -> Result<(Candidate<T>, Option<Warning>), Problem> {
    let total = candidates.len();
    let candidates: Vec<Candidate<T>> = match pin {
        Some(p) => {
            let want = Build::parse(p);
            let kept: Vec<_> = candidates
                .into_iter()
                .filter(|c| want.is_some() && c.info.version == want)
                .collect();
            if kept.is_empty() {
                return Err(Problem::new(
                    component,
                    Rule::Pin,
                    format!("the site file pins version {p}, which none of the {total} available versions has"),
                )
                .hint(format!("run `mcb info {component}` to see the versions there are")));
            }
            kept
        }
        None => candidates,
    };
    if candidates.is_empty() {
        return Err(Problem::new(
            component,
            Rule::NoCompatibleVersion,
            "the source offers no version at all",
        ));
    }
    let mut fallback: Option<(usize, String)> = None;
    let mut refusals: Vec<String> = Vec::new();
    for (i, c) in candidates.iter().enumerate() {
        match fit(core, &c.info, &describe(component, c)) {
            Fit::Fits => {
                let chosen = candidates.into_iter().nth(i).expect("index in range");
                return Ok((chosen, None));
            }
            Fit::OutsideSupported(w) => {
                if fallback.is_none() {
                    fallback = Some((i, w));
                }
            }
            Fit::Blocked(_, why) => refusals.push(why),
        }
    }
    if let Some((i, w)) = fallback {
        let chosen = candidates.into_iter().nth(i).expect("index in range");
        return Ok((
            chosen,
            Some(Warning {
                component: component.to_string(),
                message: format!(
                    "no version lists this Moodle as supported; taking the newest that installs: {w}"
                ),
            }),
        ));
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
            "none of the {} candidate versions installs on Moodle {}",
            candidates.len(),
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
    Err(p.hint(
        "choose a Moodle version these plugin versions support, or another source for the plugin",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcb_moodle::Branch;

    fn core45() -> CoreVersion {
        CoreVersion {
            build: Build::parse("2024100701.00").unwrap(),
            release: "4.5.1 (Build: 20241209)".into(),
            branch: Branch(405),
            maturity: None,
        }
    }

    fn cand(
        label: &str,
        version: i64,
        requires: i64,
        supported: Option<(u32, u32)>,
        incompatible: Option<u32>,
    ) -> Candidate<()> {
        Candidate {
            label: label.into(),
            info: PluginVersion {
                version: Some(Build::from_int(version)),
                requires: Some(Build::from_int(requires)),
                supported: supported.map(|(a, b)| (Branch(a), Branch(b))),
                incompatible: incompatible.map(Branch),
                ..Default::default()
            },
            payload: (),
        }
    }

    #[test]
    fn newest_fitting_wins() {
        let c = vec![
            cand("v3", 2025040100, 2025040700, None, None),
            cand("v2", 2024110100, 2024100700, Some((405, 405)), None),
            cand("v1", 2024010100, 2023100900, None, None),
        ];
        let (chosen, warn) = choose("mod_x", &core45(), c, None).unwrap();
        assert_eq!(chosen.label, "v2");
        assert!(warn.is_none());
    }

    #[test]
    fn in_range_preferred_then_warning() {
        let c = vec![
            cand("v2", 2024110100, 2024100700, Some((500, 500)), None),
            cand("v1", 2024010100, 2023100900, Some((403, 405)), None),
        ];
        assert_eq!(choose("mod_x", &core45(), c, None).unwrap().0.label, "v1");
        let c = vec![cand("v2", 2024110100, 2024100700, Some((401, 404)), None)];
        let (chosen, warn) = choose("mod_x", &core45(), c, None).unwrap();
        assert_eq!(chosen.label, "v2");
        assert!(warn.unwrap().message.contains("Moodle will warn"));
    }

    #[test]
    fn nothing_fits_explains() {
        let c = vec![
            cand("v2", 2025040100, 2025040700, None, None),
            cand("v1", 2024010100, 2023100900, None, Some(405)),
        ];
        let p = choose("mod_x", &core45(), c, None).unwrap_err();
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
            cand("v2", 2024110100, 2024100700, None, None),
            cand("v1", 2024010100, 2023100900, None, None),
        ];
        assert_eq!(
            choose("mod_x", &core45(), c.clone(), Some("2024010100"))
                .unwrap()
                .0
                .label,
            "v1"
        );
        let p = choose("mod_x", &core45(), c, Some("2020010100")).unwrap_err();
        assert_eq!(p.rule, Rule::Pin);
        let c = vec![cand("v3", 2025040100, 2025040700, None, None)];
        let p = choose("mod_x", &core45(), c, Some("2025040100")).unwrap_err();
        assert_eq!(p.rule, Rule::Pin);
        assert!(p.to_string().contains("requires Moodle build"));
    }
}
