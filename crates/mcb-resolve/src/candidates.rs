//! The versions of one component, ranked by one policy whatever the source:
//!
//! 1. offers are ordered by plugin version (`$plugin->version`, or the index's), newest
//!    first; the tag name only breaks ties, a pre-release tag before its release;
//! 2. a pin keeps only the offers it names: a build number (`2024101500`) or a release
//!    name (`3.1.6`, matched against `$plugin->release` and the index's release); a
//!    release name that names several versions is refused, listing them;
//! 3. an offer the index lists for other Moodle releases only, or whose `version.php`
//!    cannot be read or blocks this core (`requires`, `incompatible`), is refused with its
//!    reason;
//! 4. the rest fall in tiers, taken in order: the lock's choice; versions at or above the
//!    site's maturity (stable unless it opts in); those below it; the default branch of a
//!    git source. `supported` never ranks a version: Moodle only warns when this core is
//!    outside it (and installs), so the newest version that installs wins and warns; an
//!    older version that lists this core never wins over it. Every tier after the first
//!    two warns.
//!
//! An offer's `version.php` is read only when the ranking reaches it: an index's zips are
//! downloaded only for the versions actually considered, and each is read once.

use mcb_moodle::{Build, CoreVersion, Maturity, PluginVersion, tag_cmp};

use crate::problem::{Problem, Rule};

/// One version a source offers.
#[derive(Debug, Clone)]
pub struct Offer<T> {
    /// How the user would name it: a tag, a branch, an index version.
    pub label: String,
    /// The plugin version, when known without reading `version.php` (an index says it).
    pub version: Option<Build>,
    /// The maturity, when the source says it without `version.php`.
    pub maturity: Option<Maturity>,
    /// The release name, when the source says it without `version.php`.
    pub release: Option<String>,
    /// `Some(reason)` when the index lists this version for other Moodle releases only.
    pub not_listed: Option<String>,
    /// `Some(reason)` when a security advisory or a malware flag affects this version and
    /// the site has not acknowledged it: refused even where the lock holds it.
    pub blocked: Option<String>,
    /// A git source's default branch: taken only when no tag installs.
    pub last_resort: bool,
    /// When it was released (seconds since the epoch), when the source says.
    pub published: Option<i64>,
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
            release: None,
            not_listed: None,
            blocked: None,
            last_resort: false,
            published: None,
            info: None,
            payload,
        }
    }

    fn known_version(&self) -> Option<Build> {
        self.info.as_ref().and_then(|i| i.version).or(self.version)
    }

    fn known_release(&self) -> Option<&str> {
        self.info
            .as_ref()
            .and_then(|i| i.release.as_deref())
            .or(self.release.as_deref())
    }
}

/// What the site file asks of one component's versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// A build number or a release name.
    pub pin: Option<String>,
    /// The least maturity taken without a warning.
    pub maturity: Maturity,
    /// The source names one version (a ref, a zip, a directory): it is taken as it is, and
    /// the checks every site passes say what is wrong with it.
    pub as_is: bool,
    /// A version released less than this long before `now` is not taken (the release
    /// cooldown): (seconds, now).
    pub min_age: Option<(u64, i64)>,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            pin: None,
            maturity: Maturity::Stable,
            as_is: false,
            min_age: None,
        }
    }
}

/// A pin is a build number when it looks like one (`2024101500`, `2024101500.01`);
/// anything else names a release.
pub fn pin_build(pin: &str) -> Option<Build> {
    let int = pin.split('.').next().unwrap_or("");
    (int.len() >= 8 && int.bytes().all(|b| b.is_ascii_digit()))
        .then(|| Build::parse(pin))
        .flatten()
}

/// How good a version that installs is, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    /// The lock's choice, while it still installs.
    Locked,
    /// At or above the site's maturity (outside `supported` or not: that only warns).
    Preferred,
    /// Installs, but below the maturity the site takes.
    BelowMaturity,
    /// The default branch of a git source.
    LastResort,
}

const TIERS: [Tier; 4] = [
    Tier::Locked,
    Tier::Preferred,
    Tier::BelowMaturity,
    Tier::LastResort,
];

/// How a plugin version fits a core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fit {
    Fits,
    /// Installable, but outside `$plugin->supported`: Moodle only warns.
    OutsideSupported(String),
    Blocked(Rule, String),
}

pub(crate) fn core_name(core: &CoreVersion) -> String {
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

/// "mod_x 2024010100 (v1.2)": a version as the user knows it.
pub fn describe(component: &str, label: &str, version: Option<Build>) -> String {
    match version {
        Some(v) if label != v.to_string() => format!("{component} {v} ({label})"),
        Some(v) => format!("{component} {v}"),
        None => format!("{component} {label}"),
    }
}

/// An offer as the user knows it; a default branch says so.
fn name_of<T>(component: &str, offer: &Offer<T>, version: Option<Build>) -> String {
    if offer.last_resort {
        describe(component, &format!("branch {}", offer.label), version)
    } else {
        describe(component, &offer.label, version)
    }
}

fn maturity_name(m: Maturity) -> &'static str {
    match m {
        Maturity::Alpha => "MATURITY_ALPHA",
        Maturity::Beta => "MATURITY_BETA",
        Maturity::Rc => "MATURITY_RC",
        Maturity::Stable => "MATURITY_STABLE",
    }
}

fn maturity_word(m: Maturity) -> &'static str {
    match m {
        Maturity::Alpha => "alpha",
        Maturity::Beta => "beta",
        Maturity::Rc => "rc",
        Maturity::Stable => "stable",
    }
}

/// What the ranking knows of one offer.
#[derive(Debug, Clone)]
pub enum Standing {
    /// Not read yet.
    Unread,
    Installs {
        tier: Tier,
        version: Build,
        info: PluginVersion,
        warning: Option<String>,
    },
    /// It cannot be taken: the rule it breaks and how.
    Refused(Rule, String),
}

/// An offer and what the ranking knows of it.
#[derive(Debug, Clone)]
pub struct Slot<T> {
    pub offer: Offer<T>,
    pub standing: Standing,
    /// The lock's choice.
    pub locked: bool,
}

impl<T> Slot<T> {
    fn new(offer: Offer<T>, locked: bool) -> Slot<T> {
        Slot {
            offer,
            standing: Standing::Unread,
            locked,
        }
    }

    /// Its version: the one it installs as, else the one its source says.
    pub fn version(&self) -> Option<Build> {
        match &self.standing {
            Standing::Installs { version, .. } => Some(*version),
            _ => self.offer.known_version(),
        }
    }

    /// "mod_x 2024010100 (v1.2)", "mod_x 2024010100 (branch main)".
    pub fn who(&self, component: &str) -> String {
        name_of(component, &self.offer, self.version())
    }

    /// Its tier, when it installs.
    pub fn tier(&self) -> Option<Tier> {
        match &self.standing {
            Standing::Installs { tier, .. } => Some(*tier),
            _ => None,
        }
    }
}

/// The versions of one component, ranked.
#[derive(Debug, Clone)]
pub struct Candidates<T> {
    pub component: String,
    core: CoreVersion,
    pub policy: Policy,
    /// The lock's choice first (when there is one), then the source's offers in rank order.
    pub slots: Vec<Slot<T>>,
    /// The source's offers are in, not only the lock's choice.
    pub listed: bool,
}

/// Which versions a choice may take: those a dependant's requirement allows.
pub type InRange<'a> = &'a dyn Fn(Build) -> bool;

/// Reads an offer's `version.php`: `Ok(Err(why))` when it cannot be read.
pub type Load<'a, T, E> = &'a mut dyn FnMut(&Offer<T>) -> Result<Result<PluginVersion, String>, E>;

impl<T: Clone> Candidates<T> {
    /// The lock's choice alone, judged by `policy`; the source's offers come with
    /// [`Candidates::list`], when the lock's choice is not enough.
    pub fn new(
        component: &str,
        core: &CoreVersion,
        locked: Option<Offer<T>>,
        policy: Policy,
    ) -> Candidates<T> {
        Candidates {
            component: component.to_string(),
            core: core.clone(),
            policy,
            slots: locked.into_iter().map(|o| Slot::new(o, true)).collect(),
            listed: false,
        }
    }

    /// Adds the source's offers: ranked, narrowed to a pin. A pin that names no version,
    /// or a release name that names several, is a problem.
    pub fn list(&mut self, offers: Vec<Offer<T>>) -> Result<(), Problem> {
        self.listed = true;
        let (mut ranked, last): (Vec<Offer<T>>, Vec<Offer<T>>) =
            offers.into_iter().partition(|o| !o.last_resort);
        ranked.sort_by(|a, b| {
            b.known_version()
                .cmp(&a.known_version())
                .then_with(|| tag_cmp(&b.label, &a.label))
        });
        ranked.extend(last);
        if let Some(pin) = self.policy.pin.clone() {
            let mut versions: Vec<Option<Build>> =
                ranked.iter().map(|o| o.known_version()).collect();
            versions.dedup_by(|b, a| b.is_some() && a == b);
            let total = versions.len();
            ranked.retain(|o| self.pin_matches(&pin, o) != Some(false));
            if ranked.is_empty() {
                return Err(Problem::new(
                    &self.component,
                    Rule::Pin,
                    format!(
                        "the site file pins version {pin}, which none of the {total} available versions has"
                    ),
                )
                .hint(format!(
                    "run `mcb info {}` to see the versions there are",
                    self.component
                )));
            }
            // The distinct versions the pin names, each under its best tag.
            let mut named: Vec<(Build, String)> = ranked
                .iter()
                .filter(|o| self.pin_matches(&pin, o) == Some(true))
                .filter_map(|o| {
                    let v = o.known_version()?;
                    Some((v, describe(&self.component, &o.label, Some(v))))
                })
                .collect();
            named.dedup_by_key(|(v, _)| *v);
            if pin_build(&pin).is_none() && named.len() > 1 {
                let mut p = Problem::new(
                    &self.component,
                    Rule::Pin,
                    format!(
                        "the site file pins release \"{pin}\", which names {} versions",
                        named.len()
                    ),
                );
                for (_, n) in named {
                    p = p.fact(n);
                }
                return Err(p.hint("pin the build number of the one you want"));
            }
        }
        // One version tagged twice (`v3.1.4` and `v3.1.5` both hold 2024062801) is one
        // candidate, under its best tag; after the pin, which may name either's release.
        ranked.dedup_by(|b, a| {
            !b.last_resort && b.known_version().is_some() && b.known_version() == a.known_version()
        });
        self.slots
            .extend(ranked.into_iter().map(|o| Slot::new(o, false)));
        Ok(())
    }

    /// Does `offer` carry the pinned version? `None` when its version is not known yet.
    fn pin_matches(&self, pin: &str, offer: &Offer<T>) -> Option<bool> {
        match pin_build(pin) {
            Some(b) => offer.known_version().map(|v| v == b),
            None => offer.known_release().map(|r| r.trim() == pin.trim()),
        }
    }

    /// Reads and judges slot `i`, once.
    fn classify<E>(&mut self, i: usize, load: Load<'_, T, E>) -> Result<(), E> {
        if !matches!(self.slots[i].standing, Standing::Unread) {
            return Ok(());
        }
        let slot = &self.slots[i];
        let young = match (self.policy.min_age, slot.offer.published) {
            (Some((age, now)), Some(at)) if !slot.locked && now - at < age as i64 => {
                let days = |s: i64| (s as f64 / 86_400.0 * 10.0).round() / 10.0;
                Some(format!(
                    "{} {} was released {} days ago; the site waits {} days (min_age)",
                    self.component,
                    slot.offer.label,
                    days(now - at),
                    days(age as i64)
                ))
            }
            _ => None,
        };
        let standing = match (&slot.offer.not_listed, young) {
            _ if slot.offer.blocked.is_some() => Standing::Refused(
                Rule::Advisory,
                slot.offer.blocked.clone().unwrap_or_default(),
            ),
            (_, Some(why)) => Standing::Refused(Rule::Cooldown, why),
            (Some(why), _) if !slot.locked => {
                Standing::Refused(Rule::NoCompatibleVersion, why.clone())
            }
            _ => {
                let info = match &slot.offer.info {
                    Some(info) => Ok(info.clone()),
                    None => load(&slot.offer)?,
                };
                match info {
                    Ok(info) => self.judge(&self.slots[i], info),
                    Err(why) => Standing::Refused(Rule::VersionPhp, why),
                }
            }
        };
        self.slots[i].standing = standing;
        Ok(())
    }

    fn judge(&self, slot: &Slot<T>, info: PluginVersion) -> Standing {
        let offer = &slot.offer;
        let as_is = self.policy.as_is && !slot.locked;
        let Some(version) = info
            .version
            .or(offer.version)
            .or(as_is.then_some(Build::from_int(0)))
        else {
            return Standing::Refused(
                Rule::VersionPhp,
                "its version.php sets no $plugin->version".into(),
            );
        };
        let who = name_of(&self.component, offer, Some(version));
        if let Some(pin) = &self.policy.pin
            && !slot.locked
        {
            let release = info.release.as_deref().or(offer.release.as_deref());
            let named = match pin_build(pin) {
                Some(b) => b == version,
                None => release.is_some_and(|r| r.trim() == pin.trim()),
            };
            if !named {
                return Standing::Refused(
                    Rule::Pin,
                    if self.policy.as_is {
                        format!("the site file pins version {pin}, but the source holds {version}")
                    } else {
                        format!("{who} is not the pinned version {pin}")
                    },
                );
            }
        }
        if as_is {
            return Standing::Installs {
                tier: Tier::Preferred,
                version,
                info,
                warning: None,
            };
        }
        let maturity = info.maturity.or(offer.maturity).unwrap_or(Maturity::Stable);
        let below = self.policy.pin.is_none() && maturity < self.policy.maturity;
        let fit_warning = match fit(&self.core, &info, &who) {
            Fit::Blocked(rule, why) => return Standing::Refused(rule, why),
            Fit::OutsideSupported(w) => Some(w),
            Fit::Fits => None,
        };
        // A choice kept from the lock warns as it did when it was made: the same facts,
        // said the same way, so the lock is the same however it was reached.
        let (tier, warning) = if offer.last_resort {
            (
                Tier::LastResort,
                Some(format!(
                    "no tag installs on this Moodle; using the default branch {}",
                    offer.label
                )),
            )
        } else if below {
            (
                Tier::BelowMaturity,
                Some(format!(
                    "taking {who}, which is {}: no version at or above {} fits",
                    maturity_name(maturity),
                    maturity_name(self.policy.maturity)
                )),
            )
        } else {
            (Tier::Preferred, fit_warning)
        };
        let tier = if slot.locked { Tier::Locked } else { tier };
        Standing::Installs {
            tier,
            version,
            info,
            warning,
        }
    }

    /// The best slot whose version `in_range` allows, reading offers as far as needed;
    /// `None` when none installs.
    pub fn pick<E>(
        &mut self,
        in_range: InRange<'_>,
        load: Load<'_, T, E>,
    ) -> Result<Option<usize>, E> {
        for tier in TIERS {
            for i in 0..self.slots.len() {
                if self.slots[i]
                    .offer
                    .known_version()
                    .is_some_and(|v| !in_range(v))
                {
                    continue;
                }
                // Reading is only worth it for a slot that could still be in this tier.
                if !self.could_be(i, tier) {
                    continue;
                }
                self.classify(i, load)?;
                if let Standing::Installs {
                    tier: t, version, ..
                } = &self.slots[i].standing
                    && *t == tier
                    && in_range(*version)
                {
                    return Ok(Some(i));
                }
            }
        }
        Ok(None)
    }

    /// Can slot `i` still turn out to be in `tier`, from what is known before reading it?
    fn could_be(&self, i: usize, tier: Tier) -> bool {
        let s = &self.slots[i];
        match &s.standing {
            Standing::Refused(..) => false,
            Standing::Installs { tier: t, .. } => *t == tier,
            Standing::Unread => match tier {
                Tier::Locked => s.locked,
                Tier::LastResort => s.offer.last_resort && !s.locked,
                Tier::Preferred => {
                    !s.locked
                        && !s.offer.last_resort
                        && (self.policy.pin.is_some()
                            || s.offer.maturity.is_none_or(|m| m >= self.policy.maturity))
                }
                Tier::BelowMaturity => !s.locked && !s.offer.last_resort,
            },
        }
    }

    /// The slot of version `v` that installs, best first.
    pub fn slot_of(&self, v: Build) -> Option<usize> {
        let mut found: Vec<usize> = (0..self.slots.len())
            .filter(|&i| {
                matches!(self.slots[i].standing, Standing::Installs { version, .. } if version == v)
            })
            .collect();
        found.sort_by_key(|&i| (self.slots[i].tier(), i));
        found.first().copied()
    }

    /// The versions that install, in rank order, as far as they were read.
    pub fn installing(&self) -> impl Iterator<Item = &Slot<T>> {
        self.slots
            .iter()
            .filter(|s| matches!(s.standing, Standing::Installs { .. }))
    }

    /// Why nothing installs, as a problem: the reasons of the newest offers refused.
    pub fn problem(&self) -> Problem {
        let c = &self.component;
        let unmet = if self.policy.pin.is_some() {
            Rule::Pin
        } else {
            Rule::NoCompatibleVersion
        };
        if self.slots.is_empty() {
            return Problem::new(c, unmet, "the source offers no version at all");
        }
        if self.policy.as_is
            && let Some(Standing::Refused(rule, why)) = self.slots.last().map(|s| &s.standing)
        {
            // One version, named by the site file: its refusal is the whole story.
            return Problem::new(c, *rule, why.clone());
        }
        let refusals: Vec<(&Slot<T>, &str)> = self
            .slots
            .iter()
            .filter_map(|s| match &s.standing {
                Standing::Refused(_, why) => Some((s, why.as_str())),
                _ => None,
            })
            .collect();
        if refusals.iter().all(|(s, _)| s.offer.not_listed.is_some()) && !refusals.is_empty() {
            let mut p = Problem::new(
                c,
                unmet,
                format!(
                    "no version of {c} that its source offers supports Moodle {}",
                    self.core.major_release()
                ),
            );
            if let Some((_, newest)) = refusals.first() {
                p = p.fact(newest.to_string());
            }
            return p
                .hint("run `mcb check --moodle X.Y` to see which Moodle this site can move to");
        }
        let advised: Vec<&str> = refusals
            .iter()
            .filter(|(s, _)| s.offer.blocked.is_some())
            .map(|(_, why)| *why)
            .collect();
        if !advised.is_empty() && advised.len() == refusals.len() {
            let mut p = Problem::new(
                c,
                Rule::Advisory,
                format!(
                    "every version of {c} the site file allows is affected by an open security advisory"
                ),
            );
            for r in advised.iter().take(3) {
                p = p.fact(r.to_string());
            }
            if advised.len() > 3 {
                p = p.fact(format!("… and {} older versions", advised.len() - 3));
            }
            return p.hint("allow a fixed version (its constraint or pin), or acknowledge the advisory in ignore_advisories: [\"ID\"] once you have judged it");
        }
        let considered = refusals
            .iter()
            .filter(|(s, _)| s.offer.not_listed.is_none())
            .count();
        let mut p = Problem::new(
            c,
            unmet,
            format!(
                "none of the {considered} candidate versions installs on Moodle {}",
                core_name(&self.core)
            ),
        );
        let reasons = |last_resort: bool| -> Vec<&str> {
            refusals
                .iter()
                .filter(|(s, _)| s.offer.not_listed.is_none() && s.offer.last_resort == last_resort)
                .map(|(_, why)| *why)
                .collect()
        };
        let tags = reasons(false);
        for r in tags.iter().take(3) {
            p = p.fact(r.to_string());
        }
        if tags.len() > 3 {
            p = p.fact(format!(
                "… and {} older versions for the same reasons",
                tags.len() - 3
            ));
        }
        for r in reasons(true) {
            p = p.fact(r.to_string());
        }
        p.hint("choose a Moodle version these plugin versions support, or another source for the plugin")
    }

    /// Why each version ranked before `chosen` was not taken, for `-v`; `conflict` says why
    /// one that installs was passed over (the other plugins' requirements).
    pub fn passed_over(&self, chosen: usize, conflict: &dyn Fn(&Slot<T>) -> String) -> Vec<String> {
        let c = &self.component;
        let key = |i: usize| (self.slots[i].tier(), i);
        let mut out = Vec::new();
        for (i, s) in self.slots.iter().enumerate() {
            if i == chosen {
                continue;
            }
            // Ranked before it, or in a better tier (a version that installs).
            let earlier = i < chosen || (s.tier().is_some() && key(i) < key(chosen));
            if !earlier {
                continue;
            }
            let line = match &s.standing {
                Standing::Refused(_, why) => format!("{}: {why}", s.who(c)),
                Standing::Installs {
                    tier,
                    info,
                    warning,
                    ..
                } => {
                    let why = match tier {
                        _ if key(i) < key(chosen) => conflict(s),
                        Tier::BelowMaturity => {
                            let m = info
                                .maturity
                                .or(s.offer.maturity)
                                .unwrap_or(Maturity::Stable);
                            format!(
                                "{}, below the maturity the site takes ({}); maturity: \"{}\" takes it",
                                maturity_name(m),
                                maturity_word(self.policy.maturity),
                                maturity_word(m)
                            )
                        }
                        _ => warning.clone().unwrap_or_else(|| conflict(s)),
                    };
                    format!("{}: {why}", s.who(c))
                }
                Standing::Unread => {
                    format!("{}: outside what the other plugins require", s.who(c))
                }
            };
            out.push(line);
        }
        out
    }
}
