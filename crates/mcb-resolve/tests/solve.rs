//! The solver against a universe held in memory: version order, maturity, pins, tiers,
//! backtracking, lazy reading and the explanation when nothing fits.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::LazyLock;

use mcb_moodle::{Branch, Build, CoreVersion, Maturity, PluginVersion};
use mcb_resolve::{Offer, Policy, Problem, Rule, Solved, Tier, Universe, solve};

fn core45() -> CoreVersion {
    CoreVersion {
        build: Build::parse("2024100701.00").unwrap(),
        release: "4.5.1 (Build: 20241209)".into(),
        branch: Branch(405),
        maturity: None,
    }
}

/// One version of a plugin: its label (a tag) and its `version.php`.
#[derive(Clone)]
struct V {
    label: String,
    info: PluginVersion,
    /// Known without reading (an index's version), so reading can be counted.
    listed_version: bool,
    not_listed: Option<String>,
    last_resort: bool,
}

fn v(label: &str, version: i64, requires: i64) -> V {
    V {
        label: label.into(),
        info: PluginVersion {
            version: Some(Build::from_int(version)),
            requires: Some(Build::from_int(requires)),
            ..Default::default()
        },
        listed_version: false,
        not_listed: None,
        last_resort: false,
    }
}

impl V {
    fn dep(mut self, c: &str, min: Option<i64>) -> V {
        self.info
            .dependencies
            .insert(c.into(), min.map(Build::from_int));
        self
    }
    fn maturity(mut self, m: Maturity) -> V {
        self.info.maturity = Some(m);
        self
    }
    fn release(mut self, r: &str) -> V {
        self.info.release = Some(r.into());
        self
    }
    fn supported(mut self, lo: u32, hi: u32) -> V {
        self.info.supported = Some((Branch(lo), Branch(hi)));
        self
    }
    fn incompatible(mut self, b: u32) -> V {
        self.info.incompatible = Some(Branch(b));
        self
    }
    fn lazy(mut self) -> V {
        self.listed_version = true;
        self
    }
    fn branch(mut self) -> V {
        self.last_resort = true;
        self
    }
}

#[derive(Default)]
struct Memory {
    requested: Vec<String>,
    /// component → versions, in the order the source lists them.
    plugins: BTreeMap<String, Vec<V>>,
    policies: BTreeMap<String, Policy>,
    locked: BTreeMap<String, V>,
    ships: BTreeMap<String, i64>,
    /// (component, label) of every version.php read.
    reads: RefCell<Vec<(String, String)>>,
    /// Components whose source was listed.
    listings: RefCell<Vec<String>>,
}

impl Memory {
    fn want(mut self, c: &str) -> Memory {
        self.requested.push(c.into());
        self
    }
    fn offers(mut self, c: &str, versions: Vec<V>) -> Memory {
        self.plugins.insert(c.into(), versions);
        self
    }
    fn policy(mut self, c: &str, p: Policy) -> Memory {
        self.policies.insert(c.into(), p);
        self
    }
    fn lock(mut self, c: &str, v: V) -> Memory {
        self.locked.insert(c.into(), v);
        self
    }
    fn ship(mut self, c: &str, version: i64) -> Memory {
        self.ships.insert(c.into(), version);
        self
    }
    fn run(&self) -> Result<Vec<Solved<String>>, Vec<Problem>> {
        solve(self).unwrap()
    }
    fn chosen(&self) -> Vec<(String, String)> {
        self.run()
            .unwrap()
            .into_iter()
            .map(|s| (s.component, s.offer.label))
            .collect()
    }
}

fn offer(v: &V) -> Offer<String> {
    Offer {
        version: v.listed_version.then_some(v.info.version).flatten(),
        not_listed: v.not_listed.clone(),
        last_resort: v.last_resort,
        info: (!v.listed_version).then(|| v.info.clone()),
        ..Offer::new(v.label.clone(), v.label.clone())
    }
}

impl Universe for Memory {
    type Payload = String;
    type Error = Infallible;

    fn core(&self) -> &CoreVersion {
        static CORE: LazyLock<CoreVersion> = LazyLock::new(core45);
        &CORE
    }

    fn requested(&self) -> Vec<String> {
        self.requested.clone()
    }

    fn locked(&self, c: &str) -> Result<Option<Offer<String>>, Infallible> {
        Ok(self.locked.get(c).map(|v| Offer {
            version: v.info.version,
            ..Offer::new(v.label.clone(), v.label.clone())
        }))
    }

    fn policy(&self, c: &str) -> Policy {
        self.policies.get(c).cloned().unwrap_or_default()
    }

    fn offers(&self, c: &str) -> Result<Result<Vec<Offer<String>>, Problem>, Infallible> {
        self.listings.borrow_mut().push(c.into());
        Ok(match self.plugins.get(c) {
            Some(vs) => Ok(vs.iter().map(offer).collect()),
            None => Err(Problem::new(
                c,
                Rule::NoCompatibleVersion,
                format!("{c} is not in the plugins directory"),
            )),
        })
    }

    fn load(
        &self,
        c: &str,
        o: &Offer<String>,
    ) -> Result<Result<PluginVersion, String>, Infallible> {
        self.reads.borrow_mut().push((c.into(), o.label.clone()));
        let all = self.plugins.get(c).into_iter().flatten();
        let found = all
            .chain(self.locked.get(c))
            .find(|v| v.label == o.payload)
            .map(|v| v.info.clone());
        Ok(found.ok_or_else(|| "its version.php cannot be read".to_string()))
    }

    fn ships(&self, c: &str) -> Option<Option<Build>> {
        self.ships.get(c).map(|v| Some(Build::from_int(*v)))
    }
}

#[test]
fn versions_order_by_plugin_version_not_tag_name() {
    // The real pattern: a release candidate tagged before its release, a tag without the
    // `v` prefix, and an old `v1.9` that sorts after `v1.10` as text.
    let m = Memory::new_site().offers(
        "mod_x",
        vec![
            v("v1.9", 2023050100, 2022112800),
            v("v2.0", 2024060100, 2024042200),
            v("2.1", 2024090100, 2024042200),
            v("v2.0-rc1", 2024052000, 2024042200).maturity(Maturity::Rc),
            v("v1.10", 2023090100, 2022112800),
        ],
    );
    assert_eq!(m.chosen(), [("mod_x".into(), "2.1".into())]);
    let solved = m.run().unwrap();
    assert!(
        solved[0].why.contains("newest version that installs"),
        "{}",
        solved[0].why
    );
}

#[test]
fn a_release_candidate_is_never_taken_over_a_stable_release() {
    // v3.0-rc1 is the newest by version; the site takes stable versions.
    let vs = vec![
        v("v3.0-rc1", 2025010100, 2024042200).maturity(Maturity::Rc),
        v("v2.0", 2024060100, 2024042200).maturity(Maturity::Stable),
    ];
    let m = Memory::new_site().offers("mod_x", vs.clone());
    let solved = m.run().unwrap();
    assert_eq!(solved[0].offer.label, "v2.0");
    assert!(solved[0].warning.is_none());
    assert_eq!(solved[0].passed_over.len(), 1);
    assert!(
        solved[0].passed_over[0]
            .contains("MATURITY_RC, below the maturity the site takes (stable)"),
        "{:?}",
        solved[0].passed_over
    );

    // Opting in takes it.
    let m = Memory::new_site().offers("mod_x", vs.clone()).policy(
        "mod_x",
        Policy {
            maturity: Maturity::Rc,
            ..Policy::default()
        },
    );
    assert_eq!(m.chosen()[0].1, "v3.0-rc1");

    // With no stable version that installs, the release candidate is taken with a warning.
    let m = Memory::new_site().offers(
        "mod_x",
        vec![
            v("v3.0-rc1", 2025010100, 2024042200).maturity(Maturity::Rc),
            v("v2.0", 2024060100, 2025041400),
        ],
    );
    let solved = m.run().unwrap();
    assert_eq!(solved[0].offer.label, "v3.0-rc1");
    assert_eq!(solved[0].tier, Tier::BelowMaturity);
    assert!(solved[0].warning.as_ref().unwrap().contains("MATURITY_RC"));
}

/// `supported` is advisory (Moodle warns and installs): the newest version that installs
/// wins, with the warning, over an older one that lists this core; the block_xp case of a
/// 5.2 site, where v19.1 says `[401, 501]` and v3.14.1 (2023) says nothing.
#[test]
fn the_newest_version_that_installs_wins_and_outside_supported_warns() {
    let m = Memory::new_site().offers(
        "mod_x",
        vec![
            v("v2", 2024110100, 2024100700).supported(500, 500),
            v("v1", 2024010100, 2023100900).supported(403, 405),
        ],
    );
    let solved = m.run().unwrap();
    assert_eq!(solved[0].offer.label, "v2");
    assert_eq!(solved[0].tier, Tier::Preferred);
    assert!(
        solved[0]
            .warning
            .as_ref()
            .unwrap()
            .contains("Moodle will warn"),
        "{:?}",
        solved[0].warning
    );
    let m = Memory::new_site().offers(
        "mod_x",
        vec![
            v("v19.1", 2025100501, 2024100700).supported(401, 404),
            v("v3.14.1", 2023042403, 2022112800),
        ],
    );
    assert_eq!(m.chosen()[0].1, "v19.1");
}

#[test]
fn the_default_branch_is_the_last_resort() {
    let m = Memory::new_site().offers(
        "mod_x",
        vec![
            v("v1", 2024010100, 2025041400),
            v("main", 2024120100, 2024100700).branch(),
        ],
    );
    let solved = m.run().unwrap();
    assert_eq!(solved[0].offer.label, "main");
    assert_eq!(
        solved[0].warning.as_deref(),
        Some("no tag installs on this Moodle; using the default branch main")
    );
    let m = Memory::new_site().offers("mod_x", vec![v("main", 2024120100, 2024100700).branch()]);
    assert_eq!(
        m.run().unwrap()[0].warning.as_deref(),
        Some("no tag installs on this Moodle; using the default branch main")
    );
}

#[test]
fn pins_name_a_build_or_a_release() {
    let vs = vec![
        v("v3.1.7", 2024110100, 2024042200).release("3.1.7"),
        v("3.1.6", 2024060100, 2024042200).release("3.1.6"),
        v("v3.1.6", 2024060100, 2024042200).release("3.1.6"),
    ];
    let pinned = |pin: &str| {
        Memory::new_site().offers("mod_x", vs.clone()).policy(
            "mod_x",
            Policy {
                pin: Some(pin.into()),
                ..Policy::default()
            },
        )
    };
    assert_eq!(pinned("3.1.6").chosen()[0].1, "v3.1.6");
    assert_eq!(pinned("2024110100").chosen()[0].1, "v3.1.7");
    let p = pinned("3.1.5").run().unwrap_err();
    assert_eq!(p[0].rule, Rule::Pin);
    assert!(
        p[0].to_string()
            .contains("none of the 2 available versions"),
        "{}",
        p[0]
    );

    // One release name on two different versions is refused, naming both.
    let m = Memory::new_site()
        .offers(
            "mod_x",
            vec![
                v("v2.0", 2024110100, 2024042200).release("2.0"),
                v("v2.0-fix", 2024110200, 2024042200).release("2.0"),
            ],
        )
        .policy(
            "mod_x",
            Policy {
                pin: Some("2.0".into()),
                ..Policy::default()
            },
        );
    let p = m.run().unwrap_err();
    let text = p[0].to_string();
    assert!(
        text.contains("pins release \"2.0\", which names 2 versions"),
        "{text}"
    );
    assert!(text.contains("mod_x 2024110200 (v2.0-fix)"), "{text}");
    assert!(text.contains("mod_x 2024110100 (v2.0)"), "{text}");
}

#[test]
fn release_pins_on_local_mailtest_tags() {
    // The real tags of moodle-local_mailtest: `3.1.2` and `v3.1.2` hold different builds
    // with one release name; `v3.1.4` and `v3.1.5` hold one build.
    let vs = vec![
        v("3.1.2", 2024042801, 2013040500).release("3.1.2"),
        v("v3.1.2", 2024042800, 2013040500).release("3.1.2"),
        v("v3.1.4", 2024062801, 2013040500).release("3.1.4"),
        v("v3.1.5", 2024062801, 2013040500).release("3.1.5"),
        v("v3.1.6", 2024072200, 2013040500).release("3.1.6"),
    ];
    let pinned = |pin: &str| {
        Memory::new_site().offers("mod_x", vs.clone()).policy(
            "mod_x",
            Policy {
                pin: Some(pin.into()),
                ..Policy::default()
            },
        )
    };
    assert_eq!(pinned("3.1.4").chosen()[0].1, "v3.1.4");
    assert_eq!(pinned("2024062801").chosen()[0].1, "v3.1.5");
    let p = pinned("3.1.2").run().unwrap_err();
    let text = p[0].to_string();
    assert!(text.contains("names 2 versions"), "{text}");
    assert!(text.contains("mod_x 2024042801 (3.1.2)"), "{text}");
    assert!(text.contains("mod_x 2024042800 (v3.1.2)"), "{text}");
    // Unpinned, the newest: v3.1.6.
    let m = Memory::new_site().offers("mod_x", vs);
    assert_eq!(m.chosen()[0].1, "v3.1.6");
}

#[test]
fn only_the_versions_reached_are_read() {
    let m = Memory::new_site().offers(
        "mod_x",
        vec![
            v("3", 2025010100, 2024100700).lazy(),
            v("2", 2024110100, 2024100700).lazy(),
            v("1", 2024010100, 2024100700).lazy(),
        ],
    );
    assert_eq!(m.chosen()[0].1, "3");
    assert_eq!(*m.reads.borrow(), [("mod_x".to_string(), "3".to_string())]);
}

#[test]
fn the_lock_is_tried_before_the_source_is_listed() {
    let m = Memory::new_site()
        .offers("mod_x", vec![v("v2", 2024110100, 2024100700)])
        .lock("mod_x", v("v1", 2024010100, 2024100700));
    let solved = m.run().unwrap();
    assert_eq!(solved[0].offer.label, "v1");
    assert!(solved[0].why.contains("kept from the lock"));
    assert!(m.listings.borrow().is_empty(), "{:?}", m.listings.borrow());

    // A lock that no longer installs gives way.
    let m = Memory::new_site()
        .offers("mod_x", vec![v("v2", 2024110100, 2024100700)])
        .lock("mod_x", v("v1", 2024010100, 2025041400));
    assert_eq!(m.chosen()[0].1, "v2");
}

#[test]
fn an_older_version_is_taken_when_the_newest_needs_what_cannot_be_had() {
    // report 1.8 needs filter ≥ 2025…, which only exists for a newer Moodle; report 1.7
    // works with the filter there is.
    let m = Memory::default()
        .want("report_eq")
        .offers(
            "report_eq",
            vec![
                v("v1.8", 2025010100, 2024100700).dep("filter_eq", Some(2025010100)),
                v("v1.7", 2024060100, 2024042200).dep("filter_eq", Some(2024050100)),
            ],
        )
        .offers(
            "filter_eq",
            vec![
                v("v1.8", 2025010100, 2025041400),
                v("v1.7", 2024060100, 2024042200),
            ],
        );
    let solved = m.run().unwrap();
    let got: Vec<(&str, &str, bool)> = solved
        .iter()
        .map(|s| (s.component.as_str(), s.offer.label.as_str(), s.auto))
        .collect();
    assert_eq!(
        got,
        [("filter_eq", "v1.7", true), ("report_eq", "v1.7", false)]
    );
    let report = &solved[1];
    assert!(
        report.why.contains("fits with the site's other plugins"),
        "{}",
        report.why
    );
    assert_eq!(
        report.passed_over,
        [
            "report_eq 2025010100 (v1.8): requires filter_eq ≥ 2025010100, and the site can have filter_eq 2024060100"
        ]
    );
}

#[test]
fn when_nothing_fits_the_chain_of_facts_is_told() {
    let m = Memory::default()
        .want("report_eq")
        .offers(
            "report_eq",
            vec![
                v("v1.8", 2025010100, 2024100700).dep("filter_eq", Some(2025010100)),
                v("v1.7", 2024060100, 2024042200).dep("filter_eq", Some(2024050100)),
            ],
        )
        .offers("filter_eq", vec![v("v1.6", 2024010100, 2023100900)]);
    let p = m.run().unwrap_err();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].component, "report_eq");
    assert_eq!(p[0].rule, Rule::DependencyTooOld);
    let text = p[0].to_string();
    assert!(
        text.contains("report_eq 2025010100 (v1.8) requires filter_eq ≥ 2025010100"),
        "{text}"
    );
    assert!(
        text.contains("report_eq 2024060100 (v1.7) requires filter_eq ≥ 2024050100"),
        "{text}"
    );
    assert!(
        text.contains("the newest filter_eq for Moodle 4.5 is 2024010100"),
        "{text}"
    );

    // A dependency no source has at all.
    let m = Memory::default().want("report_eq").offers(
        "report_eq",
        vec![v("v1.8", 2025010100, 2024100700).dep("filter_eq", None)],
    );
    let p = m.run().unwrap_err();
    assert_eq!(p[0].rule, Rule::MissingDependency);
    let text = p[0].to_string();
    assert!(text.contains("requires filter_eq (any version)"), "{text}");
    assert!(
        text.contains("filter_eq is not in the plugins directory"),
        "{text}"
    );
}

#[test]
fn a_plugin_core_ships_is_there_in_core_version() {
    let m = Memory::default()
        .want("report_q")
        .ship("mod_quiz", 2024100700)
        .offers(
            "report_q",
            vec![
                v("v2", 2025010100, 2024100700).dep("mod_quiz", Some(2025041400)),
                v("v1", 2024060100, 2024042200).dep("mod_quiz", Some(2024042200)),
            ],
        );
    assert_eq!(m.chosen(), [("report_q".into(), "v1".into())]);

    let m = Memory::default()
        .want("report_q")
        .ship("mod_quiz", 2024100700)
        .offers(
            "report_q",
            vec![v("v2", 2025010100, 2024100700).dep("mod_quiz", Some(2025041400))],
        );
    let text = m.run().unwrap_err()[0].to_string();
    assert!(
        text.contains("Moodle 4.5.1 (Build: 20241209) ships mod_quiz 2024100700"),
        "{text}"
    );
}

#[test]
fn every_plugin_with_nothing_that_installs_is_named() {
    let m = Memory::new_site()
        .offers(
            "mod_x",
            vec![
                v("v2", 2025040100, 2025040700),
                v("v1", 2024010100, 2023100900).incompatible(405),
            ],
        )
        .want("mod_y")
        .offers("mod_y", vec![v("v1", 2025040100, 2025040700)]);
    let p = m.run().unwrap_err();
    assert_eq!(p.len(), 2);
    assert_eq!(p[0].rule, Rule::NoCompatibleVersion);
    let text = p[0].to_string();
    assert!(text.contains("requires Moodle build 2025040700"), "{text}");
    assert!(
        text.contains("incompatible with Moodle branch 405"),
        "{text}"
    );
}

#[test]
fn versions_the_index_lists_for_other_moodles_are_set_aside() {
    let mut unlisted = v("3", 2025010100, 2024100700).lazy();
    unlisted.not_listed = Some("mod_x 3 supports Moodle 5.0, not 4.5".into());
    let m = Memory::new_site().offers("mod_x", vec![unlisted]);
    let p = m.run().unwrap_err();
    assert!(p[0].to_string().contains("supports Moodle 5.0"), "{}", p[0]);
    assert!(m.reads.borrow().is_empty());
}

impl Memory {
    /// A site that lists mod_x.
    fn new_site() -> Memory {
        Memory::default().want("mod_x")
    }
}

/// A newer version passed over because plugins it needs are nowhere: the fallback is a
/// warning naming every missing plugin (the embedquestion v1.8 case: it needs a filter the
/// site has and a quiz report no source gives).
#[test]
fn a_fallback_for_a_missing_dependency_warns_naming_the_missing_plugins() {
    let m = Memory::new_site()
        .want("filter_emb")
        .offers("filter_emb", vec![v("v1", 2024010100, 2024042200)])
        .offers(
            "mod_x",
            vec![
                v("v1.8", 2025010100, 2024042200)
                    .dep("filter_emb", None)
                    .dep("quiz_answersheets", None)
                    .dep("local_helper", None),
                v("v1.7", 2022010100, 2022041900).dep("filter_emb", None),
            ],
        );
    let solved = m.run().unwrap();
    let x = solved.iter().find(|s| s.component == "mod_x").unwrap();
    assert_eq!(x.offer.label, "v1.7");
    let w = x.warning.as_deref().unwrap_or_default();
    assert!(
        w.contains("not the newer mod_x 2025010100 (v1.8)")
            && w.contains("local_helper and quiz_answersheets")
            && !w.contains("filter_emb"),
        "{w}"
    );
}
