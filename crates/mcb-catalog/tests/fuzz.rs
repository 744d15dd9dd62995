//! Hostile inputs for every reader of untrusted bytes: the `version.php` reader, the site
//! file and lock parsers, and the zip reader. Each target runs arbitrary bytes and
//! structured hostile inputs (deep nesting, huge declared sizes, odd names) for a time
//! budget of `MCB_FUZZ_SECS` seconds per target (default 4; CI runs 20), half for each kind
//! of input, and must answer every input with a value or an error: no panic, no abort,
//! bounded memory.

use std::io::{Cursor, Write};
use std::path::Path;
use std::time::Instant;

use mcb_config::{Lock, SiteFile};
use mcb_moodle::{CoreVersion, PluginVersion};
use mcb_store::{SourceLimits, Store};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Runs `property` on inputs from `strategy` until the budget is spent; returns the
/// number of cases run.
fn fuzz<S: Strategy>(name: &str, strategy: S, property: impl Fn(S::Value)) -> u64
where
    S::Value: std::fmt::Debug,
{
    let started = Instant::now();
    let cases = std::cell::Cell::new(0u64);
    // Each target runs half the budget per kind of input.
    while started.elapsed() < mcb_fixtures::fuzz_budget() / 2 {
        // A runner stops after its number of cases: a fresh one (fresh seed) per batch.
        let mut runner = TestRunner::new(Config {
            cases: 256,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&strategy, |v| {
                property(v);
                cases.set(cases.get() + 1);
                Ok(())
            })
            .unwrap();
    }
    let cases = cases.get();
    eprintln!("{name}: {cases} cases in {:?}, no panic", started.elapsed());
    cases
}

/// Text made of the pieces a parser reacts to, in any order and depth.
fn soup(pieces: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            8 => prop::sample::select(pieces).prop_map(str::to_string),
            1 => "[ -~]{0,8}",
            1 => any::<char>().prop_map(|c| c.to_string()),
            1 => (1usize..5000).prop_map(|n| "[".repeat(n)),
            1 => (1usize..3000).prop_map(|n| "(".repeat(n)),
        ],
        0..200,
    )
    .prop_map(|v| v.concat())
}

const PHP: &[&str] = &[
    "<?php",
    "<?PHP\n",
    "?>",
    "$plugin->",
    "$module->",
    "version",
    "requires",
    "component",
    "supported",
    "incompatible",
    "dependencies",
    "release",
    "maturity",
    " = ",
    "=>",
    ";",
    ",",
    "[",
    "]",
    "array(",
    "ARRAY(",
    ")",
    "'mod_x'",
    "\"a\\\"b\"",
    "'",
    "\"",
    "2024100700",
    "2024100700.01",
    "-1",
    "99999999999999999999999",
    "ANY_VERSION",
    "MATURITY_STABLE",
    "// c\n",
    "# c\n",
    "/* c */",
    "/*",
    "\n",
    " ",
    "\\",
    "$version",
    "$release",
    "$branch",
];

#[test]
fn version_php_reader() {
    let n = fuzz("version.php bytes", any::<Vec<u8>>(), |b| {
        let s = String::from_utf8_lossy(&b);
        let _ = PluginVersion::parse(&s);
        let _ = CoreVersion::parse(&s);
    });
    let m = fuzz("version.php soup", soup(PHP), |s| {
        let _ = PluginVersion::parse(&s);
        let _ = CoreVersion::parse(&s);
    });
    assert!(n > 0 && m > 0);
}

const RON: &[&str] = &[
    "Site(",
    ")",
    "name:",
    "moodle:",
    "plugins:",
    "directory:",
    "version:",
    "git:",
    "ref:",
    "zip:",
    "hash:",
    "path:",
    "\"univ-prod\"",
    "\"4.5\"",
    "\"mod_x\"",
    "\"blake3:",
    "{",
    "}",
    "(",
    ",",
    ":",
    "Some(",
    "None",
    "[",
    "]",
    "// c\n",
    "/* c */",
    "\"",
    "\\",
    "r#\"",
    "\"#",
    "1e999",
    "-",
    "\n",
    "true",
];

#[test]
fn site_file_parser() {
    let path = Path::new("/fuzz/site.ron");
    let n = fuzz("site file bytes", any::<Vec<u8>>(), |b| {
        let _ = SiteFile::parse(path, &String::from_utf8_lossy(&b));
    });
    let m = fuzz("site file soup", soup(RON), |s| {
        let _ = SiteFile::parse(path, &s);
    });
    assert!(n > 0 && m > 0);
}

const LOCK: &str = r#"(
  format: 1,
  site: "s",
  moodle: (
    spec: "4.5",
    request: Git(url: "file:///m", ref: None),
    source: Git(url: "file:///m", ref: "v4.5.0", commit: "0123456789012345678901234567890123456789"),
    build: "2024100700",
    release: "4.5",
    branch: 405,
    manifest: "0000000000000000000000000000000000000000000000000000000000000000",
    date: 1,
  ),
  plugins: [(
    component: "mod_x",
    request: Directory,
    version: "1",
    source: Directory(id: 1, url: "https://x/y.zip", md5: "00000000000000000000000000000000", blake3: "1111111111111111111111111111111111111111111111111111111111111111"),
    install_path: "mod/x",
    manifest: "2222222222222222222222222222222222222222222222222222222222222222",
    date: 2,
  )],
  tree: "3333333333333333333333333333333333333333",
  date: 2,
)"#;

#[test]
fn lock_parser() {
    let path = Path::new("/fuzz/site.lock");
    assert!(Lock::parse(path, LOCK).is_ok(), "the seed is a valid lock");
    let n = fuzz("lock bytes", any::<Vec<u8>>(), |b| {
        let _ = Lock::parse(path, &String::from_utf8_lossy(&b));
    });
    // The valid lock with spans replaced by hostile text.
    let edits = prop::collection::vec((0..LOCK.len(), 0usize..40, soup(RON)), 1..6);
    let m = fuzz("lock edits", edits, |edits| {
        let mut text = LOCK.to_string();
        for (at, len, with) in edits {
            let at = text.floor_char_boundary(at.min(text.len()));
            let end = text.floor_char_boundary((at + len).min(text.len()));
            text.replace_range(at..end, &with);
        }
        let _ = Lock::parse(path, &text);
    });
    assert!(n > 0 && m > 0);
}

fn seed_zip(names: &[String]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (i, name) in names.iter().enumerate() {
        let o = zip::write::SimpleFileOptions::default()
            .large_file(i % 2 == 0)
            .unix_permissions(if i % 3 == 0 { 0o755 } else { 0o644 });
        if i % 5 == 4 {
            let _ = w.add_symlink(name.as_str(), "../x", o);
        } else if w.start_file(name.as_str(), o).is_ok() {
            let _ = w.write_all(&vec![b'a' + (i % 26) as u8; 64 * (i + 1)]);
        }
    }
    w.finish().map(|c| c.into_inner()).unwrap_or_default()
}

#[test]
fn zip_reader() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let limits = SourceLimits {
        files: 1000,
        file_bytes: 1 << 20,
        total_bytes: 4 << 20,
    };
    let n = fuzz("zip bytes", any::<Vec<u8>>(), |b| {
        let _ = mcb_catalog::unpack_zip(Cursor::new(b), "fuzz.zip", &store, &limits);
    });
    // Real zips with odd names, then bytes overwritten: sizes, offsets, counts, names.
    let names = prop::collection::vec(
        prop_oneof![
            "[a-z]{1,8}/[a-z./]{0,12}",
            Just("top/.git/config".to_string()),
            Just("../x".to_string()),
            Just("/abs".to_string()),
            "\\PC{1,12}",
        ],
        1..8,
    );
    let patches = prop::collection::vec(
        (
            any::<usize>(),
            prop_oneof![
                Just(vec![0xff; 8]),
                Just(u32::MAX.to_le_bytes().to_vec()),
                Just((1u64 << 50).to_le_bytes().to_vec()),
                prop::collection::vec(any::<u8>(), 1..8),
            ],
        ),
        0..6,
    );
    let m = fuzz("zip mutations", (names, patches), |(names, patches)| {
        let mut z = seed_zip(&names);
        if z.is_empty() {
            return;
        }
        for (at, bytes) in patches {
            let at = at % z.len();
            let end = (at + bytes.len()).min(z.len());
            z[at..end].copy_from_slice(&bytes[..end - at]);
        }
        let _ = mcb_catalog::unpack_zip(Cursor::new(z), "fuzz.zip", &store, &limits);
    });
    assert!(n > 0 && m > 0);
}

/// JSON made of the keys and values a Composer repository's reader reacts to.
fn composer_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let key = prop::sample::select(vec![
        "packages",
        "a/b",
        "minified",
        "version",
        "dist",
        "url",
        "type",
        "shasum",
        "extra",
        "installer-name",
        "sha256",
        "time",
        "name",
        "metadata-url",
        "advisories",
        "affectedVersions",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(vec![
            "composer/2.0",
            "__unset",
            "zip",
            "moodle-mod",
            "https://r.example/a.zip",
            "/etc/passwd",
            "../secret.zip",
            "file:///etc/passwd",
            "1.0.0",
            "2024-05-01T12:00:00Z",
            "",
        ])
        .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 256, 12, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..12).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..10).prop_map(|kv| Value::Object(
                kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

/// A Composer repository on disk whose package document is hostile: the reader answers
/// every one with versions or an error, reads nothing outside the repository and stays
/// within its limits.
#[test]
fn composer_metadata_reader() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(repo.join("p2/a")).unwrap();
    std::fs::write(
        repo.join("packages.json"),
        r#"{"packages": [], "metadata-url": "/p2/%package%.json", "security-advisories": {"api-url": "/p2/a/b.json"}}"#,
    )
    .unwrap();
    let http = mcb_catalog::Http::new(true, mcb_catalog::HttpLimits::default());
    let limits = mcb_catalog::limits::MetadataLimits {
        bytes: 1 << 20,
        versions: 500,
    };
    let doc = repo.join("p2/a/b.json");
    let location = repo.to_string_lossy().into_owned();
    let read = |bytes: &[u8]| {
        std::fs::write(&doc, bytes).unwrap();
        if let Ok(versions) = mcb_catalog::package_versions(&http, &location, "a/b", &limits) {
            assert!(versions.len() as u64 <= limits.versions);
            for v in versions {
                assert!(
                    mcb_catalog::composer::is_http_url(&v.dist_url),
                    "{}",
                    v.dist_url
                );
            }
        }
        let _ = mcb_catalog::advisories(&http, &location, &["a/b".into()], &limits);
    };
    let n = fuzz("composer metadata bytes", any::<Vec<u8>>(), |b| read(&b));
    let m = fuzz("composer metadata documents", composer_json(), |v| {
        read(&serde_json::to_vec(&v).unwrap())
    });
    assert!(n > 0 && m > 0);
}

const PLUGIN_MANAGER: &[&str] = &[
    "<?php\n",
    "class core_plugin_manager {",
    "public static function standard_plugins_list($type) {",
    "function standard_plugins_list",
    "$standard_plugins",
    " = ",
    "=",
    "=>",
    "array(",
    "array",
    "(",
    ")",
    "[",
    "]",
    ",",
    ";",
    "'mod'",
    "'quiz'",
    "'a\\'b'",
    "'\\\\'",
    "'",
    "// c\n",
    "# c\n",
    "/* c */",
    "/*",
    "\n",
    " ",
    "}",
    "é",
];

/// Core's plugin manager, read for an old core's standard plugins: whatever it holds, a
/// list or nothing, and a list is one `CoreLayout` takes.
#[test]
fn plugin_manager_reader() {
    let check = |s: &str| {
        if let Some(json) = mcb_moodle::plugins_json_from_plugin_manager(s) {
            let v: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
            assert!(v["standard"].is_object(), "{json}");
            mcb_moodle::CoreLayout::new(r#"{"plugintypes": {"mod": "mod"}}"#, Some(&json), false)
                .expect("a layout takes what the reader gives");
        }
    };
    let n = fuzz("plugin manager bytes", any::<Vec<u8>>(), |b| {
        check(&String::from_utf8_lossy(&b))
    });
    let m = fuzz("plugin manager soup", soup(PLUGIN_MANAGER), |s| check(&s));
    assert!(n + m > 0);
}
