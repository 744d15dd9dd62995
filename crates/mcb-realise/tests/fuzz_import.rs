//! Hostile installations for `import`: plugin types and subplugin types declared with any
//! path, directory and file names of any shape, config files and data directories where
//! plugins would be. Every case must end with a site file or an error, never a panic, and
//! never a `path:` entry, a read or a store write outside the installation. The budget is
//! `MCB_FUZZ_SECS` seconds (default 4; CI runs 30).

use std::path::Path;
use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// A name a directory or a declared path could take.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,6}",
        Just("..".to_string()),
        Just(".".to_string()),
        Just("".to_string()),
        Just("/etc".to_string()),
        Just("../outside".to_string()),
        Just("a/../../b".to_string()),
        Just("moodledata".to_string()),
        Just("config.php".to_string()),
        "\\PC{1,6}",
    ]
}

#[derive(Debug, Clone)]
struct Installation {
    types: Vec<(String, String)>,
    plugins: Vec<(String, String)>,
    subplugins: Vec<(String, String)>,
}

fn installation() -> impl Strategy<Value = Installation> {
    (
        prop::collection::vec(("[a-z]{1,5}", name()), 0..5),
        prop::collection::vec((name(), name()), 0..6),
        prop::collection::vec(("[a-z]{1,5}", name()), 0..3),
    )
        .prop_map(|(types, plugins, subplugins)| Installation {
            types,
            plugins,
            subplugins,
        })
}

fn write(path: &Path, text: &str) {
    if let Some(p) = path.parent() {
        let _ = std::fs::create_dir_all(p);
    }
    let _ = std::fs::write(path, text);
}

#[test]
fn import_of_hostile_installations() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    write(
        &outside.join("x/version.php"),
        "<?php\n$plugin->component = 'evil_x';\n",
    );
    let started = Instant::now();
    let cases = std::cell::Cell::new(0u64);
    let imported = std::cell::Cell::new(0u64);
    while started.elapsed() < mcb_fixtures::fuzz_budget() {
        let mut runner = TestRunner::new(Config {
            cases: 16,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&installation(), |inst| {
                cases.set(cases.get() + 1);
                let case = dir.path().join(format!("case-{}", cases.get()));
                let root = case.join("install");
                write(
                    &root.join("version.php"),
                    "<?php\n$version = 2024100700.00;\n$release = '4.5 (Build: 20241007)';\n$branch = '405';\n",
                );
                let mut types = serde_json::Map::new();
                types.insert("mod".into(), "mod".into());
                for (t, d) in &inst.types {
                    types.insert(t.clone(), d.clone().into());
                }
                write(
                    &root.join("lib/components.json"),
                    &serde_json::json!({"plugintypes": types}).to_string(),
                );
                for (ty, plugin) in &inst.plugins {
                    let p = root.join(ty).join(plugin);
                    write(
                        &p.join("version.php"),
                        &format!("<?php\n$plugin->component = '{ty}_{plugin}';\n$plugin->version = 2024010100;\n"),
                    );
                    let mut sub = serde_json::Map::new();
                    for (t, d) in &inst.subplugins {
                        sub.insert(t.clone(), d.clone().into());
                    }
                    write(
                        &p.join("db/subplugins.json"),
                        &serde_json::json!({"subplugintypes": sub}).to_string(),
                    );
                }
                let mut opts = mcb_realise::RunOptions::new(case.join("store"));
                opts.offline = true;
                opts.directory = Some(case.join("none.json").to_string_lossy().into_owned());
                let out = case.join("out");
                let done = mcb_realise::import(&root, "fuzz", &out, &opts, &mcb_realise::Silent);
                if done.is_ok() {
                    imported.set(imported.get() + 1);
                    let site = std::fs::read_to_string(out.join("site.ron")).unwrap_or_default();
                    let outside_text = outside.to_string_lossy().into_owned();
                    assert!(!site.contains(&outside_text), "{site}");
                    // An add-on taken as it is points at its copy beside the site file,
                    // never into the installation nor anywhere else.
                    for line in site.lines().filter(|l| l.contains("path:")) {
                        assert!(line.contains("(path: \"plugins/"), "{line}");
                        assert!(!line.contains(".."), "{line}");
                        let rel = line.split('"').nth(3).unwrap_or_default();
                        assert!(out.join(rel).join("version.php").is_file(), "{line}");
                    }
                }
                let _ = std::fs::remove_dir_all(&case);
                Ok(())
            })
            .unwrap();
    }
    eprintln!(
        "import: {} cases ({} imported) in {:?}, no panic",
        cases.get(),
        imported.get(),
        started.elapsed()
    );
    assert!(imported.get() > 0, "some installations import");
}
