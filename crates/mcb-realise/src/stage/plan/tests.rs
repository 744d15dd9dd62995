//! The plan stage against catalogs held in memory: no git, no HTTP, no store.

use std::collections::BTreeMap;
use std::path::Path;

use mcb_config::{Lock, LockedMoodle, LockedPlugin, LockedSource, SiteFile, SourceSpec};
use mcb_moodle::{Build, Component, CoreVersion};
use mcb_resolve::{Offer, Problem, Rule};
use mcb_store::{GitOid, ManifestHash};

use super::{Catalog, Offers, plan};
use crate::changes::{Change, Snapshot};
use crate::error::RealiseError;

/// (component or "moodle", label) names a version; its files are held as text.
type Pick = (String, String);

/// Path → text.
type Files = BTreeMap<String, String>;

#[derive(Default)]
struct Memory {
    core: Files,
    /// component → versions newest first: (label, files).
    plugins: BTreeMap<String, Vec<(String, Files)>>,
}

const COMPONENTS: &str = r#"{"plugintypes": {"mod": "mod", "local": "local", "block": "blocks", "filter": "filter", "report": "report"}}"#;

fn core_php(build: &str, release: &str) -> String {
    format!("<?php\n$version = {build};\n$release = '{release}';\n$branch = '405';\n")
}

fn plugin_php(component: &str, version: u64, requires: &str, extra: &str) -> String {
    format!(
        "<?php\n$plugin->component = '{component}';\n$plugin->version = {version};\n$plugin->requires = {requires};\n{extra}\n"
    )
}

impl Memory {
    fn new() -> Memory {
        let mut m = Memory::default();
        m.core
            .insert("version.php".into(), core_php("2024100705.00", "4.5.5"));
        m.core
            .insert("lib/components.json".into(), COMPONENTS.into());
        m.core.insert(
            "lib/plugins.json".into(),
            r#"{"standard": {"mod": ["quiz"]}}"#.into(),
        );
        m.core.insert(
            "mod/quiz/version.php".into(),
            "<?php $plugin->version = 2024100700;".into(),
        );
        m
    }

    fn version(self, component: &str, label: &str, version_php: String) -> Memory {
        self.with_files(component, label, &[("version.php", version_php)])
    }

    fn with_files(mut self, component: &str, label: &str, files: &[(&str, String)]) -> Memory {
        let files = files
            .iter()
            .map(|(p, t)| (p.to_string(), t.clone()))
            .collect();
        self.plugins
            .entry(component.to_string())
            .or_default()
            .push((label.to_string(), files));
        self
    }
}

impl Catalog for Memory {
    type Pick = Pick;

    fn core(&self, _site: &SiteFile, _locked: Option<&LockedMoodle>) -> Result<Pick, RealiseError> {
        Ok(("moodle".into(), "4.5.5".into()))
    }

    fn offers(
        &self,
        component: &Component,
        _source: &SourceSpec,
        _core: &CoreVersion,
    ) -> Result<Offers<Pick>, RealiseError> {
        let Some(versions) = self.plugins.get(component.as_str()) else {
            return Ok(Err(Problem::new(
                component.as_str(),
                Rule::NoCompatibleVersion,
                format!("{component} is not in the catalog"),
            )));
        };
        Ok(Ok(versions
            .iter()
            .map(|(label, _)| Offer::new(label.clone(), (component.to_string(), label.clone())))
            .collect()))
    }

    fn default_branch(
        &self,
        _component: &Component,
        _source: &SourceSpec,
    ) -> Result<Option<Offer<Pick>>, RealiseError> {
        Ok(None)
    }

    fn locked(
        &self,
        component: &Component,
        locked: &LockedPlugin,
        _request: &SourceSpec,
    ) -> Result<Pick, RealiseError> {
        Ok((component.to_string(), format!("v{}", locked.version)))
    }

    fn read(
        &self,
        _component: &str,
        pick: &Pick,
        path: &str,
    ) -> Result<Result<Option<Vec<u8>>, String>, RealiseError> {
        let files = if pick.0 == "moodle" {
            Some(&self.core)
        } else {
            self.plugins
                .get(&pick.0)
                .and_then(|v| v.iter().find(|(l, _)| *l == pick.1))
                .map(|(_, f)| f)
        };
        Ok(Ok(files
            .and_then(|f| f.get(path))
            .map(|t| t.clone().into_bytes())))
    }

    fn files_ending(&self, pick: &Pick, suffix: &str) -> Result<Vec<String>, RealiseError> {
        let files = if pick.0 == "moodle" {
            &self.core
        } else {
            return Ok(Vec::new());
        };
        Ok(files
            .keys()
            .filter(|k| k.ends_with(suffix))
            .cloned()
            .collect())
    }

    fn describe(&self, pick: &Pick) -> String {
        format!("{} {}", pick.0, pick.1)
    }
}

fn site(plugins: &str) -> SiteFile {
    SiteFile::parse(
        Path::new("/sites/s/site.ron"),
        &format!(
            "Site(name: \"s\", moodle: (version: \"4.5\", git: \"file:///m\"), plugins: {{ {plugins} }})"
        ),
    )
    .unwrap()
}

fn versions(p: &super::Plan<Pick>) -> Vec<(String, String, bool)> {
    p.plugins
        .iter()
        .map(|p| {
            (
                p.component.to_string(),
                p.info.version.unwrap().to_string(),
                p.auto(),
            )
        })
        .collect()
}

#[test]
fn the_newest_version_that_installs_is_chosen() {
    let m = Memory::new()
        .version(
            "local_a",
            "v3",
            plugin_php("local_a", 2025010100, "2025041400", ""),
        )
        .version(
            "local_a",
            "v2",
            plugin_php("local_a", 2024110100, "2024100700", ""),
        )
        .version(
            "local_a",
            "v1",
            plugin_php("local_a", 2024010100, "2023100900", ""),
        );
    let p = plan(&m, &site("\"local_a\": (),"), None).unwrap();
    assert_eq!(
        versions(&p),
        [("local_a".into(), "2024110100".into(), false)]
    );
    assert_eq!(p.plugins[0].install_path, "local/a");
    assert!(
        p.plugins[0].why.contains("newest version that installs"),
        "{}",
        p.plugins[0].why
    );
    assert_eq!(
        moves(&p, "\"local_a\": (),", None),
        [
            Change::Core {
                from: None,
                to: "4.5.5".into(),
                downgrade: false
            },
            Change::Added {
                component: "local_a".into(),
                version: "2024110100".into(),
                auto: false
            }
        ]
    );
}

#[test]
fn dependencies_come_from_the_index_and_are_marked_auto() {
    let m = Memory::new()
        .version(
            "report_q",
            "1",
            plugin_php(
                "report_q",
                2024120100,
                "2024100700",
                "$plugin->dependencies = ['filter_q' => 2024110000, 'mod_quiz' => ANY_VERSION];",
            ),
        )
        .version(
            "filter_q",
            "2",
            plugin_php("filter_q", 2024110500, "2024100700", ""),
        );
    let p = plan(&m, &site("\"report_q\": (),"), None).unwrap();
    assert_eq!(
        versions(&p),
        [
            ("filter_q".into(), "2024110500".into(), true),
            ("report_q".into(), "2024120100".into(), false)
        ]
    );
    assert_eq!(p.order, ["filter_q", "report_q"]);
}

#[test]
fn a_dependency_too_old_is_explained_as_a_chain_of_facts() {
    let m = Memory::new()
        .version(
            "report_q",
            "1",
            plugin_php(
                "report_q",
                2024120100,
                "2024100700",
                "$plugin->dependencies = ['filter_q' => 2025050100];",
            ),
        )
        .version(
            "filter_q",
            "2",
            plugin_php("filter_q", 2024110500, "2024100700", ""),
        );
    let RealiseError::Unsatisfiable(problems) =
        plan(&m, &site("\"report_q\": (),"), None).unwrap_err()
    else {
        panic!("not unsatisfiable")
    };
    let text = problems[0].to_string();
    assert!(text.contains("report_q [dependency too old]"), "{text}");
    assert!(text.contains("requires filter_q ≥ 2025050100"), "{text}");
    assert!(
        text.contains("the newest filter_q for Moodle 4.5 is 2024110500"),
        "{text}"
    );
}

#[test]
fn subplugins_install_inside_their_parent() {
    let m = Memory::new()
        .with_files(
            "mod_cert",
            "1",
            &[
                (
                    "version.php",
                    plugin_php("mod_cert", 2024100100, "2024100700", ""),
                ),
                (
                    "db/subplugins.json",
                    r#"{"subplugintypes": {"certelement": "element"}}"#.into(),
                ),
            ],
        )
        .version(
            "certelement_text",
            "1",
            plugin_php("certelement_text", 2024100100, "2024100700", ""),
        );
    let p = plan(
        &m,
        &site("\"mod_cert\": (), \"certelement_text\": (),"),
        None,
    )
    .unwrap();
    let paths: Vec<(&str, &str)> = p
        .plugins
        .iter()
        .map(|p| (p.component.as_str(), p.install_path.as_str()))
        .collect();
    assert_eq!(
        paths,
        [
            ("certelement_text", "mod/cert/element/text"),
            ("mod_cert", "mod/cert")
        ]
    );
}

fn lock_with(component: &str, version: &str) -> Lock {
    let id = |c: char| c.to_string().repeat(40);
    let h = |c: char| ManifestHash::parse(&c.to_string().repeat(64)).unwrap();
    Lock {
        format: mcb_config::LOCK_FORMAT,
        site: "s".into(),
        moodle: LockedMoodle {
            spec: Some("4.5".into()),
            request: SourceSpec::Git {
                url: "file:///m".into(),
                reference: None,
            },
            source: LockedSource::Git {
                url: "file:///m".into(),
                reference: "v4.5.5".into(),
                commit: GitOid::parse(&id('a')).unwrap(),
            },
            build: "2024100705".into(),
            release: "4.5.5".into(),
            branch: 405,
            manifest: h('b'),
            date: 0,
        },
        plugins: vec![LockedPlugin {
            component: component.into(),
            request: Some(SourceSpec::Directory),
            pin: None,
            auto: false,
            version: version.into(),
            release: None,
            source: LockedSource::Directory {
                id: 1,
                url: "https://x/a.zip".into(),
                md5: mcb_store::Md5::parse(&"e".repeat(32)).unwrap(),
                blake3: mcb_store::Blake3::parse(&"f".repeat(64)).unwrap(),
                index: None,
            },
            install_path: "local/a".into(),
            manifest: h('c'),
            date: 0,
        }],
        links: Default::default(),
        warnings: Vec::new(),
        vendor: None,
        tree: GitOid::parse(&id('d')).unwrap(),
    }
}

/// What moves from `lock` to plan `p` of the site file holding `plugins`, by version and
/// kind of source (the memory catalog names no sources).
fn moves(p: &super::Plan<Pick>, plugins: &str, lock: Option<&Lock>) -> Vec<Change> {
    let now = p.snapshot(&site(plugins), |_| String::new(), |_| None);
    let before = lock.map(|l| {
        let mut b = Snapshot::of_lock(l);
        b.core.source.clear();
        b.plugins.values_mut().for_each(|h| h.source.clear());
        b
    });
    now.changes_from(before.as_ref())
}

#[test]
fn a_fitting_lock_is_kept_and_changes_are_named() {
    let m = Memory::new()
        .version(
            "local_a",
            "v2",
            plugin_php("local_a", 2024110100, "2024100700", ""),
        )
        .version(
            "local_a",
            "v2024010100",
            plugin_php("local_a", 2024010100, "2023100900", ""),
        );
    // The lock pins 2024010100: it still answers the site file, so it is kept.
    let lock = lock_with("local_a", "2024010100");
    let p = plan(&m, &site("\"local_a\": (),"), Some(&lock)).unwrap();
    assert_eq!(versions(&p)[0].1, "2024010100");
    assert!(p.plugins[0].why.contains("kept from the lock"));
    let m0 = moves(&p, "\"local_a\": (),", Some(&lock));
    assert!(m0.is_empty(), "{m0:?}");

    // The lock has a newer version than the site now gets (a pin moved back): a downgrade.
    let lock = lock_with("local_a", "2025010100");
    let p = plan(
        &m,
        &site("\"local_a\": (version: \"2024110100\"),"),
        Some(&lock),
    )
    .unwrap();
    assert_eq!(
        moves(&p, "\"local_a\": (version: \"2024110100\"),", Some(&lock)),
        [Change::Downgraded {
            component: "local_a".into(),
            from: "2025010100".into(),
            to: "2024110100".into()
        },]
    );
    // Removed from the site file.
    let p = plan(&m, &site(""), Some(&lock)).unwrap();
    assert_eq!(
        moves(&p, "", Some(&lock)),
        [Change::Removed {
            component: "local_a".into(),
            version: "2025010100".into(),
            auto: false
        }]
    );
}

#[test]
fn nothing_installs_says_why() {
    let m = Memory::new().version(
        "local_a",
        "v3",
        plugin_php("local_a", 2025010100, "2025041400", ""),
    );
    let RealiseError::Unsatisfiable(problems) =
        plan(&m, &site("\"local_a\": (),"), None).unwrap_err()
    else {
        panic!("not unsatisfiable")
    };
    assert_eq!(problems[0].rule, Rule::NoCompatibleVersion);
    assert!(
        problems[0]
            .to_string()
            .contains("requires Moodle build 2025041400")
    );
    assert_eq!(
        Build::parse("2024100705"),
        Some(Build::from_int(2024100705))
    );
}
