//! Choosing a version of every plugin at once, with PubGrub: the site file depends on each
//! plugin it lists, each plugin version on what its `version.php` declares, and a plugin
//! that core ships is there in the one version core has. When the best version of a plugin
//! needs something no source can give, the solver goes back and tries the next one.
//!
//! Candidates are ranked by [`Candidates`] and read lazily: the solver asks for a version
//! of a component within a range, and only the offers it reaches are read. The lock's
//! choice is tried before the source is even listed.
//!
//! When nothing fits, the solver's derivation is told as one [`Problem`]: which versions
//! require what, and why nothing meets it.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::ops::Bound;

use mcb_moodle::{Build, Component, CoreVersion, PluginVersion};
use pubgrub::{
    Dependencies, DependencyProvider, DerivationTree, External, PackageResolutionStatistics,
    PubGrubError, Ranges,
};

use crate::candidates::{Candidates, Offer, Policy, Slot, Standing, Tier, describe};
use crate::problem::{Problem, Rule};

/// What the solver chooses for: the site file, or one component.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Package {
    Site,
    Component(String),
}

impl fmt::Display for Package {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Package::Site => f.write_str("the site file"),
            Package::Component(c) => f.write_str(c),
        }
    }
}

type Range = Ranges<Build>;

/// The site's version of the site file package.
const SITE: Build = Build::MAX;

/// Where the solver's facts come from: the site file, the lock, the sources and the core.
pub trait Universe {
    type Payload: Clone;
    type Error: std::error::Error + 'static;

    fn core(&self) -> &CoreVersion;

    /// The components the site file lists.
    fn requested(&self) -> Vec<String>;

    /// The lock's choice for `component`, while it still answers the site file.
    fn locked(&self, component: &str) -> Result<Option<Offer<Self::Payload>>, Self::Error>;

    /// The policy `component` is chosen by (pin, maturity, age, as it is): the same for the
    /// lock's choice as for a new one, so a kept choice is judged as it was made.
    fn policy(&self, component: &str) -> Policy;

    /// What `component`'s source offers; `Ok(Err(problem))` when it offers nothing (a
    /// plugin the index does not list).
    #[allow(clippy::type_complexity)]
    fn offers(
        &self,
        component: &str,
    ) -> Result<Result<Vec<Offer<Self::Payload>>, Problem>, Self::Error>;

    /// An offer's `version.php`: `Ok(Err(why))` when it cannot be read.
    fn load(
        &self,
        component: &str,
        offer: &Offer<Self::Payload>,
    ) -> Result<Result<PluginVersion, String>, Self::Error>;

    /// `Some(version)` when core ships `component`; `Some(None)` when it does without a
    /// readable version.
    fn ships(&self, component: &str) -> Option<Option<Build>>;
}

/// A plugin, chosen.
#[derive(Debug, Clone)]
pub struct Solved<T> {
    pub component: String,
    /// Added as a dependency, not listed by the site file.
    pub auto: bool,
    pub offer: Offer<T>,
    pub info: PluginVersion,
    pub tier: Tier,
    pub warning: Option<String>,
    /// Why this version, in a sentence.
    pub why: String,
    /// The versions ranked before it, each with why it was not taken.
    pub passed_over: Vec<String>,
}

/// A source could not be read while choosing.
#[derive(Debug)]
pub struct SourceFailure<E> {
    pub component: String,
    /// The plugin version that needs it, when the site file does not list it.
    pub needed_by: Option<String>,
    /// The plugin of the site file whose dependencies led to it (itself when listed).
    pub wanted_by: Option<String>,
    pub error: E,
}

/// Every plugin's version, sorted by component; or why no set of versions fits.
pub type Solution<T> = Result<Vec<Solved<T>>, Vec<Problem>>;

struct Entry<T> {
    candidates: Candidates<T>,
    /// Why the source offers nothing, when it does not.
    problem: Option<Problem>,
}

struct Provider<'u, U: Universe> {
    u: &'u U,
    requested: Vec<String>,
    entries: RefCell<HashMap<String, Entry<U::Payload>>>,
    /// The first plugin (component, "component version") that asked for a component the
    /// site file does not list.
    needed_by: RefCell<HashMap<String, (String, String)>>,
}

/// Chooses every plugin's version. Each plugin the site file lists that has no version
/// installing at all is a problem of its own; past those, a conflict is one problem.
pub fn solve<U: Universe>(u: &U) -> Result<Solution<U::Payload>, Box<SourceFailure<U::Error>>> {
    let p = Provider {
        u,
        requested: u.requested(),
        entries: RefCell::new(HashMap::new()),
        needed_by: RefCell::new(HashMap::new()),
    };
    let fail = |component: &str, error| {
        Box::new(SourceFailure {
            component: component.to_string(),
            needed_by: None,
            wanted_by: Some(component.to_string()),
            error,
        })
    };
    let mut problems = Vec::new();
    for c in &p.requested {
        if p.shipped(c).is_some() {
            continue;
        }
        if p.pick(c, &Range::full()).map_err(|e| fail(c, e))?.is_none() {
            problems.push(p.problem_of(c));
        }
    }
    if !problems.is_empty() {
        return Ok(Err(problems));
    }
    match pubgrub::resolve(&p, Package::Site, SITE) {
        Ok(selection) => Ok(Ok(p.solution(selection.into_iter().collect()))),
        Err(PubGrubError::NoSolution(tree)) => Ok(Err(vec![p.explain(&tree)])),
        Err(PubGrubError::ErrorChoosingVersion { package, source })
        | Err(PubGrubError::ErrorRetrievingDependencies {
            package, source, ..
        }) => {
            let component = package.to_string();
            let needs = p.needed_by.borrow();
            let needed_by = needs.get(&component).map(|(_, who)| who.clone());
            // Up the chain of dependants to the plugin the site file lists.
            let mut wanted_by = Some(component.clone());
            let mut hops = 0;
            while let Some(c) = wanted_by.clone()
                && !p.requested.contains(&c)
                && hops <= needs.len()
            {
                wanted_by = needs.get(&c).map(|(by, _)| by.clone());
                hops += 1;
            }
            Err(Box::new(SourceFailure {
                component,
                needed_by,
                wanted_by: wanted_by.filter(|c| p.requested.contains(c)),
                error: source,
            }))
        }
        Err(PubGrubError::ErrorInShouldCancel(e)) => Err(fail("", e)),
    }
}

impl<U: Universe> Provider<'_, U> {
    /// Core's version of a component the site file does not list itself.
    fn shipped(&self, c: &str) -> Option<Option<Build>> {
        if self.requested.iter().any(|r| r == c) {
            return None;
        }
        self.u.ships(c)
    }

    fn with_entry<R>(
        &self,
        c: &str,
        f: impl FnOnce(&mut Entry<U::Payload>) -> Result<R, U::Error>,
    ) -> Result<R, U::Error> {
        if !self.entries.borrow().contains_key(c) {
            let locked = self.u.locked(c)?;
            let entry = Entry {
                candidates: Candidates::new(c, self.u.core(), locked, self.u.policy(c)),
                problem: None,
            };
            self.entries.borrow_mut().insert(c.to_string(), entry);
        }
        let mut entries = self.entries.borrow_mut();
        f(entries.get_mut(c).expect("inserted above"))
    }

    /// The best version of `c` within `range`: the lock's choice, else the source's.
    fn pick(&self, c: &str, range: &Range) -> Result<Option<Build>, U::Error> {
        let u = self.u;
        let in_range = |v: Build| range.contains(&v);
        let mut load = |o: &Offer<U::Payload>| u.load(c, o);
        let listed = self.with_entry(c, |e| {
            if let Some(i) = e.candidates.pick(&in_range, &mut load)? {
                return Ok(Some(e.candidates.slots[i].version()));
            }
            Ok(e.candidates.listed.then_some(None))
        })?;
        if let Some(found) = listed {
            return Ok(found);
        }
        let offers = u.offers(c)?;
        self.with_entry(c, |e| {
            match offers {
                Ok(offers) => {
                    if let Err(problem) = e.candidates.list(offers) {
                        e.problem = Some(problem);
                        return Ok(None);
                    }
                }
                Err(problem) => {
                    e.candidates.listed = true;
                    e.problem = Some(problem);
                    return Ok(None);
                }
            }
            Ok(e.candidates
                .pick(&in_range, &mut load)?
                .and_then(|i| e.candidates.slots[i].version()))
        })
    }

    /// Why `c` has no version at all.
    fn problem_of(&self, c: &str) -> Problem {
        let entries = self.entries.borrow();
        let e = &entries[c];
        e.problem.clone().unwrap_or_else(|| e.candidates.problem())
    }

    fn solution(&self, selection: Vec<(Package, Build)>) -> Vec<Solved<U::Payload>> {
        let chosen: HashMap<String, Build> = selection
            .iter()
            .filter_map(|(p, v)| match p {
                Package::Component(c) if self.shipped(c).is_none() => Some((c.clone(), *v)),
                _ => None,
            })
            .collect();
        let entries = self.entries.borrow();
        let mut out: Vec<Solved<U::Payload>> = Vec::new();
        for (c, v) in &chosen {
            let cands = &entries[c].candidates;
            let i = cands
                .slot_of(*v)
                .expect("the solver chose a version that installs");
            let slot = &cands.slots[i];
            let Standing::Installs {
                tier,
                info,
                warning,
                ..
            } = &slot.standing
            else {
                unreachable!("slot_of returns installing slots")
            };
            // Versions that install but were passed over for the other plugins' sake.
            let conflicted = std::cell::Cell::new(false);
            let conflict = |s: &Slot<U::Payload>| {
                conflicted.set(true);
                self.conflict(c, s, &chosen, &entries)
            };
            let passed_over = cands.passed_over(i, &conflict);
            let who = slot.who(c);
            let release = &self.u.core().release;
            let why = match tier {
                Tier::Locked => format!("{who}: kept from the lock"),
                _ if cands.policy.as_is => format!("{who}: what the site file's source holds"),
                _ => match &cands.policy.pin {
                    Some(pin) => format!("{who}: the version the site file pins ({pin})"),
                    None => match tier {
                        Tier::LastResort => format!("{who}: no tag installs"),
                        Tier::Preferred if !conflicted.get() => {
                            format!("{who}: the newest version that installs on Moodle {release}")
                        }
                        Tier::Preferred => format!(
                            "{who}: the newest version that fits with the site's other plugins"
                        ),
                        _ => format!(
                            "{who}: the best that installs on Moodle {release}, with a warning"
                        ),
                    },
                },
            };
            let warning = match (warning, self.missing_for_newer(c, cands, i, &chosen)) {
                (Some(w), Some(f)) => Some(format!("{w}; {f}")),
                (w, f) => f.or_else(|| w.clone()),
            };
            out.push(Solved {
                component: c.clone(),
                auto: !self.requested.contains(c),
                offer: slot.offer.clone(),
                info: info.clone(),
                tier: *tier,
                warning,
                why,
                passed_over,
            });
        }
        out.sort_by(|a, b| a.component.cmp(&b.component));
        out
    }

    /// When a newer version of `c` that installs was passed over because plugins it needs
    /// are nowhere (not on the site, not shipped, no source gives them): the fallback, said
    /// as a warning naming them all.
    fn missing_for_newer(
        &self,
        c: &str,
        cands: &Candidates<U::Payload>,
        chosen_slot: usize,
        chosen: &HashMap<String, Build>,
    ) -> Option<String> {
        let taken = &cands.slots[chosen_slot];
        let newer = cands
            .slots
            .iter()
            .take(chosen_slot)
            .find(|s| s.tier() == Some(Tier::Preferred) && s.version() > taken.version())?;
        let Standing::Installs { info, .. } = &newer.standing else {
            return None;
        };
        let missing: Vec<&str> = info
            .dependencies
            .keys()
            .map(String::as_str)
            .filter(|d| !chosen.contains_key(*d) && self.shipped(d).is_none())
            .collect();
        if missing.is_empty() {
            return None;
        }
        Some(format!(
            "{} is taken, not the newer {}: that one requires {}, which the site does not have; add {} to the site file to have it",
            taken.who(c),
            newer.who(c),
            missing.join(" and "),
            if missing.len() == 1 { "it" } else { "them" }
        ))
    }

    /// Why a version of `c` that installs was not taken: what it needs that the chosen
    /// set does not give, or what the chosen set needs that it is not.
    fn conflict(
        &self,
        c: &str,
        s: &Slot<U::Payload>,
        chosen: &HashMap<String, Build>,
        entries: &HashMap<String, Entry<U::Payload>>,
    ) -> String {
        if let Standing::Installs { info, .. } = &s.standing {
            for (dep, min) in &info.dependencies {
                let have = chosen
                    .get(dep)
                    .copied()
                    .or_else(|| self.shipped(dep).flatten());
                match (min, have) {
                    (Some(m), Some(h)) if h < *m => {
                        return format!("requires {dep} ≥ {m}, and the site can have {dep} {h}");
                    }
                    (_, None) if self.shipped(dep).is_none() => {
                        return format!("requires {dep}, which no source gives for this Moodle");
                    }
                    _ => {}
                }
            }
        }
        let v = s.version();
        for (other, ov) in chosen {
            let Some(e) = entries.get(other) else {
                continue;
            };
            let Some(i) = e.candidates.slot_of(*ov) else {
                continue;
            };
            if let Standing::Installs { info, .. } = &e.candidates.slots[i].standing
                && let Some(Some(m)) = info.dependencies.get(c)
                && v.is_some_and(|v| v < *m)
            {
                return format!("{} requires {c} ≥ {m}", e.candidates.slots[i].who(other));
            }
        }
        "does not fit with the site's other plugins".into()
    }

    /// "report_x 2025010100 (v1.8)", "report_x 2024… (v1.7) and 2023… (v1.6)": the
    /// installing versions of `c` in `range`.
    fn versions_in(&self, c: &str, range: &Range) -> (String, usize) {
        let entries = self.entries.borrow();
        let Some(e) = entries.get(c) else {
            return (format!("{c} {}", show_range(range)), 1);
        };
        let mut seen = BTreeSet::new();
        let slots: Vec<&Slot<U::Payload>> = e
            .candidates
            .installing()
            .filter(|s| s.version().is_some_and(|v| range.contains(&v)))
            .filter(|s| seen.insert(s.version()))
            .collect();
        let total = e.candidates.installing().count();
        match slots.as_slice() {
            [] => (format!("{c} {}", show_range(range)), 1),
            [one] => (one.who(c), 1),
            many if many.len() == total => (format!("every version of {c} that installs"), 2),
            many => {
                let names: Vec<String> = many
                    .iter()
                    .take(3)
                    .map(|s| describe("", &s.offer.label, s.version()).trim().to_string())
                    .collect();
                let more = if many.len() > 3 {
                    format!(" and {} more", many.len() - 3)
                } else {
                    String::new()
                };
                (format!("{c} {}{more}", names.join(", ")), many.len())
            }
        }
    }

    /// The plugins the newest version of `c` that installs needs and no source gives:
    /// (name, "c VERSION requires name RANGE").
    fn missing_dependencies(&self, c: &str) -> Vec<(String, String)> {
        let deps: Vec<(String, String)> = {
            let entries = self.entries.borrow();
            let Some(e) = entries.get(c) else {
                return Vec::new();
            };
            let newest_version = e.candidates.installing().filter_map(|s| s.version()).max();
            let Some(newest) = e
                .candidates
                .installing()
                .find(|s| s.version() == newest_version)
            else {
                return Vec::new();
            };
            let Standing::Installs { info, .. } = &newest.standing else {
                return Vec::new();
            };
            let who = newest.who(c);
            info.dependencies
                .iter()
                .map(|(d, min)| {
                    let range = min.map_or_else(Range::full, Range::higher_than);
                    (
                        d.clone(),
                        format!("{who} requires {d} {}", show_range(&range)),
                    )
                })
                .collect()
        };
        deps.into_iter()
            .filter(|(d, _)| {
                self.shipped(d).is_none() && !matches!(self.pick(d, &Range::full()), Ok(Some(_)))
            })
            .collect()
    }

    /// The facts behind "no version of `c` in `range`", and the rule they break.
    fn none_in(&self, c: &str, range: &Range) -> (Vec<String>, Rule, Option<String>) {
        let xy = self.u.core().major_release();
        if let Some(Some(v)) = self.shipped(c) {
            return (
                vec![format!("Moodle {} ships {c} {v}", self.u.core().release)],
                Rule::DependencyTooOld,
                Some("choose a Moodle version whose core has it".into()),
            );
        }
        let requested = self.requested.iter().any(|r| r == c);
        // The newest version that installs at all, for the message, even if the solver
        // never needed to read it; a source that fails here says nothing more.
        let _ = self.pick(c, &Range::full());
        let entries = self.entries.borrow();
        let Some(e) = entries.get(c) else {
            return (Vec::new(), Rule::NoCompatibleVersion, None);
        };
        if let Some(p) = &e.problem {
            // A refusal that holds whoever asks (the organisation's policy) is said as itself.
            let own = requested || p.rule == Rule::Policy;
            let rule = if own { p.rule } else { Rule::MissingDependency };
            let hint = if own {
                p.hint.clone()
            } else {
                Some(format!(
                    "add \"{c}\" to the site file with a source that fits"
                ))
            };
            return (p.facts.clone(), rule, hint);
        }
        let newest = e.candidates.installing().filter_map(|s| s.version()).max();
        // A dependency's requirement is a minimum; any other range is the solver's "the
        // versions not tried yet".
        let minimum = matches!(
            segments(range).as_slice(),
            [(Bound::Included(_), Bound::Unbounded)]
        );
        match newest {
            None if requested => {
                let p = e.candidates.problem();
                (p.facts, p.rule, p.hint)
            }
            None if e.candidates.problem().rule == Rule::Advisory => {
                let p = e.candidates.problem();
                (p.facts, p.rule, p.hint)
            }
            None => {
                let p = e.candidates.problem();
                let mut facts = vec![format!("no version of {c} installs on Moodle {xy}")];
                facts.extend(p.facts);
                (
                    facts,
                    Rule::MissingDependency,
                    Some(format!(
                        "add \"{c}\" to the site file with a source that fits"
                    )),
                )
            }
            Some(v) if minimum && !range.contains(&v) => (
                vec![if requested && e.candidates.policy.as_is {
                    format!("the site has {c} {v}")
                } else {
                    format!("the newest {c} for Moodle {xy} is {v}")
                }],
                Rule::DependencyTooOld,
                Some(format!(
                    "give {c} a source that has {} for Moodle {xy}, or choose another Moodle version",
                    show_range(range)
                )),
            ),
            Some(_) => {
                let refused = e
                    .candidates
                    .slots
                    .iter()
                    .filter(|s| {
                        matches!(s.standing, Standing::Refused(..))
                            && s.version().is_some_and(|v| range.contains(&v))
                    })
                    .count();
                let fact = if refused > 0 {
                    vec![format!(
                        "the other {refused} versions of {c} do not install on Moodle {xy}"
                    )]
                } else {
                    Vec::new()
                };
                (fact, Rule::NoCompatibleVersion, None)
            }
        }
    }

    /// The solver's derivation as one problem: the dependency edges, then why nothing
    /// meets them.
    fn explain(&self, tree: &DerivationTree<Package, Range, String>) -> Problem {
        let mut externals = Vec::new();
        collect(tree, &mut externals);
        let comp = |p: &Package| match p {
            Package::Component(c) => Some(c.clone()),
            Package::Site => None,
        };
        let roots: Vec<String> = externals
            .iter()
            .filter_map(|e| match e {
                External::FromDependencyOf(Package::Site, _, p, _) => comp(p),
                _ => None,
            })
            .collect();
        let dependants: BTreeSet<String> = externals
            .iter()
            .filter_map(|e| match e {
                External::FromDependencyOf(p @ Package::Component(_), ..) => comp(p),
                _ => None,
            })
            .collect();
        let primary = roots
            .iter()
            .find(|r| dependants.contains(*r))
            .or(roots.first())
            .cloned()
            .or_else(|| dependants.iter().next().cloned())
            .unwrap_or_else(|| "site".into());

        let mut edges: Vec<(bool, String)> = Vec::new();
        let mut ends: Vec<String> = Vec::new();
        let mut rule = Rule::NoCompatibleVersion;
        let mut hint = None;
        for e in &externals {
            match e {
                External::FromDependencyOf(
                    Package::Component(a),
                    ra,
                    Package::Component(b),
                    rb,
                ) => {
                    let (who, n) = self.versions_in(a, ra);
                    let verb = if n == 1 { "requires" } else { "require" };
                    edges.push((
                        *a == primary,
                        format!("{who} {verb} {b} {}", show_range(rb)),
                    ));
                    if rule == Rule::NoCompatibleVersion {
                        rule = Rule::DependencyTooOld;
                    }
                }
                External::NoVersions(Package::Component(c), r) => {
                    let (facts, r, h) = self.none_in(c, r);
                    ends.extend(facts);
                    if r == Rule::MissingDependency || rule == Rule::NoCompatibleVersion {
                        rule = r;
                    }
                    hint = hint.or(h);
                }
                External::Custom(Package::Component(a), ra, why) => {
                    let (who, _) = self.versions_in(a, ra);
                    ends.push(format!("{who}: {why}"));
                }
                _ => {}
            }
        }
        if rule == Rule::MissingDependency {
            // Every plugin the primary's newest version needs that no source gives, not
            // only the one the derivation met first.
            let missing = self.missing_dependencies(&primary);
            for (dep, edge) in &missing {
                if !edges
                    .iter()
                    .any(|(_, e)| e.contains(&format!(" requires {dep} ")))
                {
                    edges.push((true, edge.clone()));
                    let (facts, _, _) = self.none_in(dep, &Range::full());
                    ends.extend(facts);
                }
            }
            if missing.len() > 1 {
                let names: Vec<&str> = missing.iter().map(|(d, _)| d.as_str()).collect();
                hint = Some(format!(
                    "add {} to the site file, each with a source that has it (git, zip, path, or a plugins directory that lists it)",
                    names.join(" and ")
                ));
            }
        }
        // The primary plugin's own requirements first.
        edges.sort_by_key(|(own, _)| !own);
        let mut facts: Vec<String> = Vec::new();
        for f in edges.into_iter().map(|(_, f)| f).chain(ends) {
            if !facts.contains(&f) {
                facts.push(f);
            }
        }
        if facts.is_empty() {
            facts.push("no set of plugin versions fits together".into());
        }
        Problem {
            component: primary,
            rule,
            facts,
            hint: hint.or(Some(
                "run with -v to see the versions considered, or pin another version".into(),
            )),
        }
    }
}

/// The external facts of a derivation, in the order the derivation uses them.
fn collect(
    tree: &DerivationTree<Package, Range, String>,
    out: &mut Vec<External<Package, Range, String>>,
) {
    match tree {
        DerivationTree::External(e) => out.push(e.clone()),
        DerivationTree::Derived(d) => {
            collect(&d.cause1, out);
            collect(&d.cause2, out);
        }
    }
}

fn segments(r: &Range) -> Vec<(Bound<&Build>, Bound<&Build>)> {
    r.iter()
        .map(|(lo, hi)| (lo.as_ref(), hi.as_ref()))
        .collect()
}

/// "≥ 2024010100", "any version", "2024010100".
fn show_range(r: &Range) -> String {
    if *r == Range::full() {
        return "(any version)".into();
    }
    if let Some(v) = r.as_singleton() {
        return v.to_string();
    }
    let parts: Vec<String> = r
        .iter()
        .map(|(lo, hi)| match (lo, hi) {
            (Bound::Included(a), Bound::Unbounded) => format!("≥ {a}"),
            (Bound::Excluded(a), Bound::Unbounded) => format!("> {a}"),
            (Bound::Unbounded, Bound::Excluded(b)) => format!("< {b}"),
            (Bound::Unbounded, Bound::Included(b)) => format!("≤ {b}"),
            (Bound::Included(a), Bound::Excluded(b)) => format!("{a} to below {b}"),
            (Bound::Included(a), Bound::Included(b)) => format!("{a} to {b}"),
            (Bound::Excluded(a), Bound::Excluded(b)) => format!("above {a} to below {b}"),
            (Bound::Excluded(a), Bound::Included(b)) => format!("above {a} to {b}"),
            (Bound::Unbounded, Bound::Unbounded) => "(any version)".into(),
        })
        .collect();
    parts.join(" or ")
}

impl<U: Universe> DependencyProvider for Provider<'_, U> {
    type P = Package;
    type V = Build;
    type VS = Range;
    type M = String;
    type Priority = (u32, Reverse<String>);
    type Err = U::Error;

    fn prioritize(
        &self,
        package: &Package,
        _range: &Range,
        stats: &PackageResolutionStatistics,
    ) -> Self::Priority {
        // Packages in conflicts first; then by name, for the same answer every run.
        (stats.conflict_count(), Reverse(package.to_string()))
    }

    fn choose_version(&self, package: &Package, range: &Range) -> Result<Option<Build>, U::Error> {
        match package {
            Package::Site => Ok(Some(SITE).filter(|v| range.contains(v))),
            Package::Component(c) => match self.shipped(c) {
                Some(v) => Ok(v.filter(|v| range.contains(v))),
                None => self.pick(c, range),
            },
        }
    }

    fn get_dependencies(
        &self,
        package: &Package,
        version: &Build,
    ) -> Result<Dependencies<Package, Range, String>, U::Error> {
        let c = match package {
            Package::Site => {
                return Ok(Dependencies::Available(
                    self.requested
                        .iter()
                        .map(|c| (Package::Component(c.clone()), Range::full()))
                        .collect(),
                ));
            }
            Package::Component(c) => c,
        };
        if self.shipped(c).is_some() {
            return Ok(Dependencies::Available(Vec::new().into_iter().collect()));
        }
        let entries = self.entries.borrow();
        let cands = &entries[c].candidates;
        let i = cands
            .slot_of(*version)
            .expect("the solver asks only for versions it was given");
        let slot = &cands.slots[i];
        let Standing::Installs { info, .. } = &slot.standing else {
            unreachable!("slot_of returns installing slots")
        };
        let who = slot.who(c);
        let mut deps = Vec::new();
        for (dep, min) in &info.dependencies {
            if dep == c {
                continue;
            }
            if Component::parse(dep).is_err() {
                return Ok(Dependencies::Unavailable(format!(
                    "depends on '{dep}', which is not a component name"
                )));
            }
            if self.shipped(dep) == Some(None) {
                // Core has it, with no version to compare: Moodle's own check decides.
                continue;
            }
            if !self.requested.contains(dep) {
                self.needed_by
                    .borrow_mut()
                    .entry(dep.clone())
                    .or_insert_with(|| (c.clone(), who.clone()));
            }
            let range = match min {
                Some(m) => Range::higher_than(*m),
                None => Range::full(),
            };
            deps.push((Package::Component(dep.clone()), range));
        }
        Ok(Dependencies::Available(deps.into_iter().collect()))
    }
}
