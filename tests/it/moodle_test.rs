//! `mcb test` against the Moodle-shaped PHP fixture (`tests/fixtures/moodle-shaped`): real
//! PHP, a real throwaway PostgreSQL cluster, real install and upgrade scripts.

use std::path::{Path, PathBuf};

use crate::support::*;

/// A core repository: the synthetic core plus the fixture's command-line scripts.
pub(crate) fn core(f: &Fixture) -> GitRepo {
    let r = GitRepo::init(f.path("moodle"));
    write_core(&r, "", "2024100700.00", "4.5 (Build: 20241007)", "405");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/moodle-shaped");
    for rel in [
        "lib/setup.php",
        "admin/cli/install_database.php",
        "admin/cli/upgrade.php",
        "admin/cli/check_database_schema.php",
        "admin/cli/maintenance.php",
        "admin/cli/cfg.php",
        "admin/cli/purge_caches.php",
        "admin/cli/uninstall_plugins.php",
        "login/index.php",
    ] {
        r.write(rel, &std::fs::read_to_string(fixture.join(rel)).unwrap());
    }
    r.commit("Moodle 4.5");
    r.tag("v4.5.0");
    r
}

pub(crate) fn install_xml(table: &str, fields: &[&str]) -> String {
    let f: String = fields
        .iter()
        .map(|n| {
            let t = if *n == "id" { "int" } else { "char" };
            format!("        <FIELD NAME=\"{n}\" TYPE=\"{t}\"/>\n")
        })
        .collect();
    format!(
        "<?xml version=\"1.0\"?>\n<XMLDB>\n  <TABLES>\n    <TABLE NAME=\"{table}\">\n      <FIELDS>\n{f}      </FIELDS>\n    </TABLE>\n  </TABLES>\n</XMLDB>\n"
    )
}

/// One release of a plugin: its tag, version and the files it adds or changes.
pub(crate) type Release<'a> = (&'a str, u64, &'a [(&'a str, String)]);

/// A plugin repository `local_<name>` with one tag per release.
pub(crate) fn plugin(f: &Fixture, name: &str, tags: &[Release<'_>]) -> GitRepo {
    let r = GitRepo::init(f.path(&format!("up/{name}")));
    for (tag, version, files) in tags {
        r.write(
            "version.php",
            &plugin_php(&format!("local_{name}"), *version, "2024100700", ""),
        );
        for (p, c) in files.iter() {
            r.write(p, c);
        }
        r.commit(tag);
        r.tag(tag);
    }
    r
}

fn good(f: &Fixture) -> GitRepo {
    plugin(
        f,
        "good",
        &[
            ("v1", 2024010100, &[("db/install.xml", install_xml("local_good", &["id", "name"]))]),
            (
                "v2",
                2024020100,
                &[
                    ("db/install.xml", install_xml("local_good", &["id", "name", "note"])),
                    (
                        "db/upgrade.php",
                        "<?php\nfunction xmldb_local_good_upgrade($oldversion) {\n    global $CFG;\n    if ($oldversion < 2024020100) {\n        fx_sql(\"ALTER TABLE {$CFG->prefix}local_good ADD COLUMN note VARCHAR(255)\");\n    }\n    return true;\n}\n".to_string(),
                    ),
                ],
            ),
        ],
    )
}

/// A temporary directory PostgreSQL (run as `postgres` when the tests run as root) can
/// enter, used as TMPDIR so the test sees what mcb leaves behind.
pub(crate) struct OpenTmp(pub(crate) PathBuf);

impl OpenTmp {
    pub(crate) fn new() -> OpenTmp {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::Builder::new()
            .prefix("mcb-it-tmp-")
            .tempdir_in("/tmp")
            .unwrap()
            .keep();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        OpenTmp(d)
    }

    fn is_empty(&self) -> bool {
        std::fs::read_dir(&self.0).unwrap().next().is_none()
    }
}

impl Drop for OpenTmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn test(
    f: &Fixture,
    tmp: &OpenTmp,
    site: &Path,
    args: &[&str],
) -> (i32, serde_json::Value, String) {
    let out = f
        .mcb()
        .env("TMPDIR", &tmp.0)
        .args(["test", "--json"])
        .args(args)
        .arg(site)
        .output()
        .unwrap();
    let j = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.code().unwrap_or(-1),
        j,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn step<'a>(j: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    j["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no step {name}: {j}"))
}

fn no_scratch_left(f: &Fixture) -> bool {
    std::fs::read_dir(f.store().join("tmp"))
        .map(|rd| {
            rd.flatten()
                .all(|e| !e.file_name().to_string_lossy().starts_with("mcb-test-"))
        })
        .unwrap_or(true)
}

#[test]
fn install_upgrade_from_a_snapshot_and_a_refused_downgrade() {
    let f = Fixture::new();
    let tmp = OpenTmp::new();
    let m = core(&f);
    let g = good(&f);
    let site = good_site(&f, &m, &[("local_good", Src::git(g.url()).at("v1"))]);
    f.realise_ok(&site);
    let mut documents = Vec::new();
    let (code, j, err) = test(&f, &tmp, &site, &[]);
    documents.push(j.clone());
    assert_eq!(code, 0, "{err}\n{j}");
    assert_eq!(j["passed"], true);
    assert_eq!(step(&j, "install")["passed"], true);
    assert_eq!(step(&j, "schema")["passed"], true);
    assert!(
        step(&j, "lint")["detail"]
            .as_str()
            .unwrap()
            .contains("PHP file")
    );
    assert_eq!(j["snapshot_used"], false);
    assert!(
        tmp.is_empty() && no_scratch_left(&f),
        "cleaned up after success"
    );

    // v2: the upgrade starts from v1's snapshot, not from a new install.
    good_site(&f, &m, &[("local_good", Src::git(g.url()).at("v2"))]);
    f.realise_ok(&site);
    let (code, j, err) = test(&f, &tmp, &site, &[]);
    documents.push(j.clone());
    assert_eq!(code, 0, "{err}\n{j}");
    assert_eq!(j["snapshot_used"], true, "{j}");
    assert_eq!(step(&j, "upgrade")["passed"], true);
    assert_eq!(step(&j, "schema")["passed"], true);
    assert_eq!(
        step(&j, "lint")["detail"],
        "2 PHP files",
        "only what changed (version.php, db/upgrade.php): {j}"
    );

    // Back to v1 against v2's database: Moodle refuses, and mcb says who and why.
    good_site(&f, &m, &[("local_good", Src::git(g.url()).at("v1"))]);
    f.realise_ok_with(&site, &["--allow-downgrade"]);
    let (code, j, err) = test(&f, &tmp, &site, &[]);
    documents.push(j.clone());
    assert_eq!(code, 7, "{err}\n{j}");
    let up = step(&j, "upgrade");
    assert_eq!(up["failures"][0]["component"], "local_good");
    assert_eq!(up["failures"][0]["code"], "cannotdowngrade");
    assert!(
        up["failures"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Cannot downgrade local_good from 2024020100 to 2024010100")
    );
    assert!(
        tmp.is_empty() && no_scratch_left(&f),
        "cleaned up after failure"
    );

    // history shows the results.
    let out = f
        .mcb()
        .args(["history", "--json"])
        .arg(&site)
        .output()
        .unwrap();
    let h: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(h["generations"][0]["test"], "FAILED");
    assert_eq!(h["generations"][1]["test"], "passed");
    // The shape of `test --json`, passed and failed.
    crate::snapshots::settings(&f).bind(|| {
        insta::assert_snapshot!(
            "json-schema-test",
            serde_json::to_string_pretty(&crate::json_schemas::schema_of(&documents)).unwrap()
        );
    });
}

#[test]
fn a_broken_install_a_schema_difference_and_a_syntax_error_are_named() {
    let f = Fixture::new();
    let tmp = OpenTmp::new();
    let m = core(&f);
    let broken = plugin(
        &f,
        "broken",
        &[(
            "v1",
            2024010100,
            &[(
                "db/install.php",
                "<?php\nfunction xmldb_local_broken_install() {\n    throw new Exception('broken on purpose');\n}\n".to_string(),
            )],
        )],
    );
    let site = good_site(&f, &m, &[("local_broken", Src::git(broken.url()))]);
    f.realise_ok(&site);
    let (code, j, err) = test(&f, &tmp, &site, &["--install"]);
    assert_eq!(code, 7, "{err}\n{j}");
    let fail = &step(&j, "install")["failures"][0];
    assert_eq!(fail["component"], "local_broken");
    assert_eq!(fail["message"], "Exception - broken on purpose");

    // A plugin whose language file reads the database breaks the installer before it
    // reaches that plugin (a real Moodle 5.0 fork's local_qrcurp does): Moodle names no
    // component, its stack trace does.
    let strings = plugin(
        &f,
        "strings",
        &[(
            "v1",
            2024010100,
            &[(
                "lang/en/local_strings.php",
                "<?php
function local_strings_title() {
    throw new Exception('Table \"config\" does not exist');
}
$string['pluginname'] = local_strings_title();
"
                .to_string(),
            )],
        )],
    );
    let site_strings = good_site(&f, &m, &[("local_strings", Src::git(strings.url()))]);
    f.realise_ok(&site_strings);
    let (code, j, err) = test(&f, &tmp, &site_strings, &["--install"]);
    assert_eq!(code, 7, "{err}\n{j}");
    let fail = &step(&j, "install")["failures"][0];
    assert_eq!(fail["component"], "local_strings", "{j}");
    assert_eq!(fail["message"], "Table \"config\" does not exist", "{j}");
    let site = good_site(&f, &m, &[("local_broken", Src::git(broken.url()))]);
    f.realise_ok(&site);
    // --keep leaves the scratch tree and the cluster, and says where.
    let (code, j, _) = test(&f, &tmp, &site, &["--install", "--keep"]);
    assert_eq!(code, 7);
    let kept: Vec<PathBuf> = j["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| PathBuf::from(k.as_str().unwrap()))
        .collect();
    assert_eq!(kept.len(), 2, "{j}");
    assert!(kept[0].join("code/config.php").is_file());
    assert!(kept[1].join("data/PG_VERSION").is_file());
    for k in &kept {
        std::fs::remove_dir_all(k).unwrap();
    }

    // An upgrade that forgets a column the install file declares.
    let forgetful = plugin(
        &f,
        "forgetful",
        &[
            (
                "v1",
                2024010100,
                &[(
                    "db/install.xml",
                    install_xml("local_forgetful", &["id", "name"]),
                )],
            ),
            (
                "v2",
                2024020100,
                &[(
                    "db/install.xml",
                    install_xml("local_forgetful", &["id", "name", "extra"]),
                )],
            ),
        ],
    );
    let site = good_site(
        &f,
        &m,
        &[("local_forgetful", Src::git(forgetful.url()).at("v1"))],
    );
    f.realise_ok(&site);
    good_site(
        &f,
        &m,
        &[("local_forgetful", Src::git(forgetful.url()).at("v2"))],
    );
    f.realise_ok(&site);
    let (code, j, err) = test(&f, &tmp, &site, &[]);
    assert_eq!(code, 7, "{err}\n{j}");
    let fail = &step(&j, "schema")["failures"][0];
    assert_eq!(fail["component"], "mdl_local_forgetful");
    assert!(
        fail["message"].as_str().unwrap().contains("column 'extra'"),
        "{j}"
    );

    // A syntax error: file and line.
    let bad = plugin(
        &f,
        "bad",
        &[(
            "v1",
            2024010100,
            &[("lib.php", "<?php\nfunction x( {\n".to_string())],
        )],
    );
    let site = good_site(&f, &m, &[("local_bad", Src::git(bad.url()))]);
    f.realise_ok(&site);
    let (code, j, err) = test(&f, &tmp, &site, &["--lint", "--all"]);
    assert_eq!(code, 7, "{err}\n{j}");
    let fail = &step(&j, "lint")["failures"][0];
    assert!(
        fail["message"]
            .as_str()
            .unwrap()
            .starts_with("local/bad/lib.php:2:"),
        "{j}"
    );
    assert!(tmp.is_empty() && no_scratch_left(&f));
}

#[test]
fn missing_php_is_said_with_what_to_install() {
    let f = Fixture::new();
    let tmp = OpenTmp::new();
    let m = core(&f);
    let site = good_site(&f, &m, &[]);
    f.realise_ok(&site);
    let empty = f.path("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let out = f
        .mcb()
        .env("PATH", &empty)
        .env("TMPDIR", &tmp.0)
        .arg("test")
        .arg(&site)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("php cannot be found"), "{err}");
    assert!(err.contains("apt-get install php-cli"), "{err}");
}

#[test]
fn sigint_stops_after_the_running_step_and_cleans_up() {
    let f = Fixture::new();
    let tmp = OpenTmp::new();
    let m = core(&f);
    let slow = plugin(
        &f,
        "slow",
        &[(
            "v1",
            2024010100,
            &[(
                "db/install.php",
                "<?php\nfunction xmldb_local_slow_install() {\n    sleep(3);\n}\n".to_string(),
            )],
        )],
    );
    let site = good_site(&f, &m, &[("local_slow", Src::git(slow.url()))]);
    f.realise_ok(&site);
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("mcb"))
        .env_remove("MCB_STORE")
        .env("TMPDIR", &tmp.0)
        .arg("--store")
        .arg(f.store())
        .args(["test", "--install", "--schema"])
        .arg(&site)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the install runs (the cluster is up), then interrupt.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !std::fs::read_dir(&tmp.0).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("mcb-test-pg-")
    }) {
        assert!(
            std::time::Instant::now() < deadline,
            "the test never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(tmp.is_empty(), "the cluster is gone");
    assert!(no_scratch_left(&f), "the scratch tree is gone");
}

#[test]
fn reconcile_with_test_serves_a_generation_only_once_it_passes() {
    let f = Fixture::new();
    let tmp = OpenTmp::new();
    let m = core(&f);
    let flaky = plugin(&f, "flaky", &[("v1", 2024010100, &[])]);
    let site = good_site(&f, &m, &[("local_flaky", Src::git(flaky.url()))]);
    let first = f.realise_ok(&site);
    let served = || std::fs::read_link(f.path("site/result")).unwrap();
    assert_eq!(served(), PathBuf::from(first["path"].as_str().unwrap()));
    // A release whose upgrade step breaks.
    let r = GitRepo {
        path: flaky.path.clone(),
    };
    r.write(
        "version.php",
        &plugin_php("local_flaky", 2024020100, "2024100700", ""),
    );
    r.write(
        "db/upgrade.php",
        "<?php\nfunction xmldb_local_flaky_upgrade($old) {\n    throw new Exception('upgrade step broken');\n}\n",
    );
    r.commit("v2");
    r.tag("v2");
    let out = f
        .mcb()
        .env("TMPDIR", &tmp.0)
        .args(["reconcile", "--test"])
        .arg(&site)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{err}");
    assert!(
        err.contains("result still serves the previous one"),
        "{err}"
    );
    assert!(
        err.contains("local_flaky: Exception - upgrade step broken"),
        "{err}"
    );
    assert_eq!(
        served(),
        PathBuf::from(first["path"].as_str().unwrap()),
        "not switched"
    );
    // The fix: served once it passes.
    r.write(
        "db/upgrade.php",
        "<?php\nfunction xmldb_local_flaky_upgrade($old) {\n    return true;\n}\n",
    );
    r.write(
        "version.php",
        &plugin_php("local_flaky", 2024030100, "2024100700", ""),
    );
    r.commit("v3");
    r.tag("v3");
    let out = f
        .mcb()
        .env("TMPDIR", &tmp.0)
        .args(["reconcile", "--test", "--json"])
        .arg(&site)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        served(),
        PathBuf::from(j["path"].as_str().unwrap()),
        "switched"
    );
    assert_eq!(j["plugins"]["local_flaky"]["version"], "2024030100");
    // The upgrade was tested from the generation that passed (the one served), not from
    // the failed one in between.
    let note = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(f.store().join("git"))
        .args(["notes", "--ref", "refs/notes/mcb-test", "show"])
        .arg(j["commit"].as_str().unwrap())
        .output()
        .unwrap();
    let note = String::from_utf8_lossy(&note.stdout);
    let from = &first["commit"].as_str().unwrap()[..12];
    let recorded: mcb_realise::TestNote = ron::from_str(&note).unwrap();
    let upgrade = recorded.steps.iter().find(|s| s.step == "upgrade").unwrap();
    assert!(
        upgrade.passed && upgrade.detail.starts_with(&format!("{from} →")),
        "{note}"
    );
}

/// A plain-SQL dump's meta-commands run nothing (`\!` would run a shell command as mcb's
/// user): the restore fails at its step, quoting psql, and nothing ran.
#[test]
fn a_dump_with_shell_meta_commands_runs_nothing() {
    let f = Fixture::new();
    let tmp = OpenTmp::new();
    let m = core(&f);
    let site = good_site(&f, &m, &[]);
    f.realise_ok(&site);
    let marker = f.path("ran-from-the-dump");
    let dump = f.write(
        "evil.sql",
        format!("CREATE TABLE t (i int);\n\\! touch {}\n", marker.display()),
    );
    let (code, j, err) = test(&f, &tmp, &site, &["--upgrade-from", dump.to_str().unwrap()]);
    assert_eq!(code, 7, "{err}\n{j}");
    let restore = step(&j, "restore");
    assert_eq!(restore["passed"], false, "{j}");
    assert_eq!(restore["failures"][0]["code"], "restore");
    assert!(
        restore["failures"][0]["message"]
            .as_str()
            .unwrap()
            .contains("psql could not restore"),
        "{j}"
    );
    assert!(!marker.exists(), "the dump ran a shell command");
    assert!(tmp.is_empty() && no_scratch_left(&f));
}

/// A snapshot that is not as mcb wrote it (a plain-SQL dump planted where the snapshot
/// of a codebase is kept, even with a record that hashes it) is never restored: the
/// codebase is installed again and the snapshot replaced.
#[test]
fn a_planted_snapshot_is_never_restored() {
    let f = Fixture::new();
    let tmp = OpenTmp::new();
    let m = core(&f);
    let site = good_site(&f, &m, &[]);
    let tree = f.realise_ok(&site)["tree"].as_str().unwrap().to_string();
    let marker = f.path("ran-from-the-snapshot");
    let snap = f.store().join("cache/test-snapshots-v2").join(&tree);
    std::fs::create_dir_all(snap.join("dataroot")).unwrap();
    let dump = format!("\\! touch {}\n", marker.display());
    std::fs::write(snap.join("db.dump"), &dump).unwrap();
    std::fs::write(
        snap.join("SNAPSHOT"),
        format!(
            "mcb test snapshot 2\ndump {}\ndataroot {}\n",
            blake3::hash(dump.as_bytes()).to_hex(),
            blake3::hash(b"d \0").to_hex()
        ),
    )
    .unwrap();
    let (code, j, err) = test(&f, &tmp, &site, &["--install"]);
    assert_eq!(code, 0, "{err}\n{j}");
    assert_eq!(j["snapshot_used"], false, "{j}");
    assert!(
        step(&j, "install")["detail"]
            .as_str()
            .unwrap()
            .contains("with Moodle's installer")
    );
    assert!(err.contains("was not as mcb wrote it"), "{err}");
    assert!(!marker.exists(), "the planted dump ran");
    // The snapshot is mcb's own now, and restored next time.
    assert!(
        std::fs::read(snap.join("db.dump"))
            .unwrap()
            .starts_with(b"PGDMP")
    );
    let (code, j, err) = test(&f, &tmp, &site, &["--install"]);
    assert_eq!(code, 0, "{err}\n{j}");
    assert_eq!(j["snapshot_used"], true, "{j}");
}

/// The processes a test runs, found by what their command line names.
fn processes_naming(needle: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z "));
            !zombie && String::from_utf8_lossy(&cmd).contains(needle)
        })
        .collect()
}

/// `kill -9` of `mcb test` mid-install takes its PostgreSQL server and Moodle's installer
/// with it; what it left on disk is removed by the next `mcb test`, and by `gc`.
#[test]
fn a_killed_test_leaves_no_server_running_and_its_leftovers_are_reaped() {
    let f = Fixture::new();
    let tmp = OpenTmp::new();
    let m = core(&f);
    let slow = plugin(
        &f,
        "slow",
        &[(
            "v1",
            2024010100,
            &[(
                "db/install.php",
                "<?php\nfunction xmldb_local_slow_install() {\n    sleep(20);\n}\n".to_string(),
            )],
        )],
    );
    let site = good_site(&f, &m, &[("local_slow", Src::git(slow.url()))]);
    f.realise_ok(&site);
    for reaper in ["test", "gc"] {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("mcb"))
            .env_remove("MCB_STORE")
            .env("TMPDIR", &tmp.0)
            .arg("--store")
            .arg(f.store())
            .args(["test", "--install"])
            .arg(&site)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Until Moodle's installer runs (it sleeps in the plugin's install): this run's,
        // in this fixture's store, not another test's.
        let installer = f.store().join("tmp").to_string_lossy().into_owned();
        let installing = || {
            processes_naming(&installer)
                .into_iter()
                .any(|pid| processes_naming("install_database.php").contains(&pid))
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !installing() {
            assert!(
                std::time::Instant::now() < deadline,
                "the install never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let cluster = tmp.0.to_string_lossy().into_owned();
        assert!(
            !processes_naming(&cluster).is_empty(),
            "a server serves the cluster"
        );
        child.kill().unwrap();
        child.wait().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !processes_naming(&cluster).is_empty() || installing() {
            assert!(
                std::time::Instant::now() < deadline,
                "a child of the killed run is still running"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(
            !tmp.is_empty(),
            "the killed run left its cluster's directory"
        );
        assert!(!no_scratch_left(&f), "the killed run left its scratch tree");
        match reaper {
            "test" => {
                let (code, j, err) = test(&f, &tmp, &site, &["--lint"]);
                assert_eq!(code, 0, "{err}\n{j}");
                assert!(err.contains("that a killed run left"), "{err}");
            }
            _ => {
                let out = f.mcb().env("TMPDIR", &tmp.0).arg("gc").output().unwrap();
                let said = String::from_utf8_lossy(&out.stdout);
                assert!(out.status.success());
                assert!(said.contains("that killed `mcb test` runs left"), "{said}");
            }
        }
        assert!(tmp.is_empty(), "{reaper} removed the cluster's directory");
        assert!(no_scratch_left(&f), "{reaper} removed the scratch tree");
    }
}

/// A PostgreSQL server of the test's own with a password user, as a site's would be.
pub(crate) struct PasswordServer {
    child: std::process::Child,
    pub(crate) port: u16,
    _dir: PathBuf,
}

impl PasswordServer {
    pub(crate) fn start(tmp: &OpenTmp, user: &str, password: &str) -> PasswordServer {
        let bin = |name: &str| {
            let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
                .map(|rd| {
                    rd.flatten()
                        .map(|e| e.path().join("bin").join(name))
                        .filter(|p| p.is_file())
                        .collect()
                })
                .unwrap_or_default();
            found.sort();
            found.pop().unwrap_or_else(|| PathBuf::from(name))
        };
        let root = unsafe { libc::geteuid() } == 0;
        let as_pg = |program: PathBuf| {
            let mut c = if root {
                let mut c = std::process::Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(program);
                c
            } else {
                std::process::Command::new(program)
            };
            c.current_dir(&tmp.0);
            c
        };
        let dir = tmp.0.join("own-server");
        std::fs::create_dir_all(&dir).unwrap();
        let pwfile = dir.join("pw");
        std::fs::write(&pwfile, password).unwrap();
        if root {
            assert!(
                std::process::Command::new("chown")
                    .args(["-R", "postgres"])
                    .arg(&dir)
                    .status()
                    .unwrap()
                    .success()
            );
        }
        let out = as_pg(bin("initdb"))
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-U", user, "--auth=scram-sha-256", "--pwfile"])
            .arg(&pwfile)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = as_pg(bin("postgres"))
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-p", &port.to_string(), "-k"])
            .arg(&dir)
            .args(["-c", "listen_addresses=127.0.0.1"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the server never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        PasswordServer {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for PasswordServer {
    fn drop(&mut self) {
        // The server itself (runuser, when root, does not pass signals on).
        let pid = std::fs::read_to_string(self._dir.join("data/postmaster.pid"))
            .ok()
            .and_then(|t| t.lines().next()?.trim().parse::<i32>().ok())
            .unwrap_or(self.child.id() as i32);
        unsafe {
            libc::kill(pid, libc::SIGQUIT);
        }
        let _ = self.child.wait();
    }
}

/// `--db` takes a URL as URLs are written: a password with `/` and `@` percent-encoded is
/// decoded, and never said back, not even when the server refuses it.
#[test]
fn a_db_url_with_an_encoded_password_connects_and_is_never_printed() {
    let f = Fixture::new();
    let tmp = OpenTmp::new();
    let m = core(&f);
    let site = good_site(&f, &m, &[]);
    f.realise_ok(&site);
    let server = PasswordServer::start(&tmp, "bob", "a/b@c-9f1e");
    let url = format!("postgresql://bob:a%2Fb%40c-9f1e@127.0.0.1:{}", server.port);
    let (code, j, err) = test(&f, &tmp, &site, &["--install", "--db", &url]);
    assert_eq!(code, 0, "{err}\n{j}");
    assert_eq!(step(&j, "install")["passed"], true);
    let wrong = format!("postgresql://bob:n0t-it-7c2d@127.0.0.1:{}", server.port);
    let out = f
        .mcb()
        .env("TMPDIR", &tmp.0)
        .args(["test", "--install", "--json", "--db", &wrong])
        .arg(&site)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("password authentication failed"),
        "{stderr}"
    );
    assert!(!stderr.contains("message above"), "{stderr}");
    for secret in ["n0t-it-7c2d", "a/b@c-9f1e", "a%2Fb%40c-9f1e"] {
        assert!(
            !stderr.contains(secret) && !stdout.contains(secret),
            "{stderr}{stdout}"
        );
    }
    drop(server);
}

/// A release whose `admin/environment.xml` asks for more than this machine has: the test
/// fails at `environment`, in those words, and installs nothing.
#[test]
fn a_host_the_release_does_not_run_on_fails_at_environment() {
    let f = Fixture::new();
    let tmp = OpenTmp::new();
    let m = core(&f);
    m.write(
        "admin/environment.xml",
        r#"<?xml version="1.0" encoding="UTF-8" ?>
<COMPATIBILITY_MATRIX>
  <MOODLE version="4.5" requires="4.1">
    <DATABASE level="required"><VENDOR name="postgres" version="99" /></DATABASE>
    <PHP version="99.0.0" level="required" />
    <PHP_EXTENSIONS><PHP_EXTENSION name="nosuchextension" level="required" /></PHP_EXTENSIONS>
  </MOODLE>
</COMPATIBILITY_MATRIX>
"#,
    );
    m.commit("environment.xml");
    m.git(&["tag", "-f", "-a", "v4.5.0", "-m", "v4.5.0"]);
    let site = good_site(&f, &m, &[]);
    f.realise_ok(&site);
    let (code, j, err) = test(&f, &tmp, &site, &["--install"]);
    assert_eq!(code, 7, "{err}\n{j}");
    let env = step(&j, "environment");
    assert_eq!(env["passed"], false);
    let said = env["failures"].to_string();
    for need in [
        "needs PHP 99.0.0 or later",
        "needs PostgreSQL 99 or later",
        "nosuchextension",
    ] {
        assert!(said.contains(need), "{need}: {said}");
    }
    assert!(
        j["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["step"] != "install"),
        "nothing installed: {j}"
    );
}

/// A 5.1 codebase from git installs: its web root is public/, config.php is at the top, and
/// Composer's vendor/ is there, so the installer finds core's libraries (a plugin's install
/// code uses one). The same core without a composer.lock gives no vendor/, and Moodle's
/// installer stops with `composernotfound`, as it does on a git checkout nobody built.
#[test]
fn a_51_codebase_from_git_installs_with_its_vendor() {
    let f = Fixture::new();
    let tmp = OpenTmp::new();
    let server = crate::support::http::Server::start();
    let m = moodle51_repo(f.path("moodle"));
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/moodle-shaped");
    for rel in [
        "lib/setup.php",
        "admin/cli/install_database.php",
        "admin/cli/upgrade.php",
        "admin/cli/check_database_schema.php",
    ] {
        m.write(
            &format!("public/{rel}"),
            &std::fs::read_to_string(fixture.join(rel)).unwrap(),
        );
    }
    m.commit("Moodle-shaped 5.1");
    m.git(&["tag", "-f", "v5.1.0"]);
    let p = plugin(
        &f,
        "greet",
        &[(
            "v1",
            2025100100,
            &[(
                "db/install.php",
                "<?php\nfunction xmldb_local_greet_install() {\n    echo 'local_greet says ', (new \\Acme\\Greet\\Greeter)->hi(), \"\\n\";\n}\n".to_string(),
            )],
        )],
    );
    let list = f.write("empty-pluglist.json", "{\"timestamp\": 0, \"plugins\": []}");
    let site = f.site(
        &Site::new("s51")
            .core(m.url(), "5.1")
            .plugin("local_greet", Src::git(p.url()))
            .directory(list.display().to_string()),
    );
    let j = f.realise_ok(&site);
    assert_eq!(
        j["plugins"]["local_greet"]["install_path"],
        "public/local/greet"
    );
    let (code, j, err) = test(&f, &tmp, &site, &["--install"]);
    assert_ne!(code, 0, "{err}\n{j}");
    assert_eq!(step(&j, "install")["passed"], false);
    assert!(
        format!("{j}{err}").contains("composernotfound"),
        "{err}\n{j}"
    );

    let dists = crate::vendor::dists("hello");
    for (path, zip) in &dists {
        server.set(path, crate::support::http::Response::ok(zip.clone()));
    }
    m.write("composer.json", crate::vendor::COMPOSER_JSON);
    m.write(
        "composer.lock",
        &crate::vendor::composer_lock(&server, &dists[0].1),
    );
    m.commit("Third-party libraries through Composer");
    m.git(&["tag", "-f", "v5.1.0"]);
    let out = f
        .mcb()
        .args(["update", "--refresh"])
        .arg(&site)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(f.path("site/result/vendor/autoload.php").is_file());
    let (code, j, err) = test(&f, &tmp, &site, &["--install"]);
    assert_eq!(code, 0, "{err}\n{j}");
    assert_eq!(step(&j, "install")["passed"], true);
    assert!(tmp.is_empty(), "the cluster is gone");
}

/// The same install, upgrade and refused downgrade on a throwaway MariaDB instance: Moodle
/// connects with `$CFG->dbtype = 'mariadb'`, the snapshot of the installed generation is a
/// MariaDB dump restored for the upgrade, and a dump given with `--upgrade-from` that
/// carries a shell command runs nothing.
#[test]
fn install_and_upgrade_on_mariadb() {
    let f = Fixture::new();
    let tmp = OpenTmp::new();
    let m = core(&f);
    let g = good(&f);
    let site = good_site(&f, &m, &[("local_good", Src::git(g.url()).at("v1"))]);
    f.realise_ok(&site);
    let (code, j, err) = test(&f, &tmp, &site, &["--db", "mariadb"]);
    assert_eq!(code, 0, "{err}\n{j}");
    assert_eq!(j["database"]["engine"], "mariadb", "{j}");
    assert_eq!(step(&j, "install")["passed"], true);
    assert_eq!(step(&j, "schema")["passed"], true);
    assert!(tmp.is_empty() && no_scratch_left(&f), "cleaned up");

    good_site(&f, &m, &[("local_good", Src::git(g.url()).at("v2"))]);
    f.realise_ok(&site);
    let (code, j, err) = test(&f, &tmp, &site, &["--db", "mariadb"]);
    assert_eq!(code, 0, "{err}\n{j}");
    assert_eq!(
        j["snapshot_used"], true,
        "v1 restored from its MariaDB dump: {j}"
    );
    assert_eq!(step(&j, "upgrade")["passed"], true);
    assert_eq!(
        step(&j, "schema")["passed"],
        true,
        "the upgrade added the column: {j}"
    );

    // A real site's dump that would run a shell command: the restore refuses it.
    let marker = f.path("pwned");
    let dump = f.write(
        "site-dump.sql",
        format!("CREATE TABLE t (id INT);\n\\! touch {}\n", marker.display()),
    );
    let (code, j, err) = test(
        &f,
        &tmp,
        &site,
        &["--db", "mariadb", "--upgrade-from", dump.to_str().unwrap()],
    );
    assert_eq!(code, 7, "{err}\n{j}");
    assert_eq!(step(&j, "restore")["passed"], false, "{j}");
    assert!(!marker.exists(), "a command in a dump ran");
    assert!(
        tmp.is_empty() && no_scratch_left(&f),
        "cleaned up after failure"
    );
}

/// `mcb status` on a live site (deployed, its database on a password server of the test's
/// own, its config.php outside the codebase): in sync, then an upgrade pending, then the
/// database ahead of the code after a rollback of the files, maintenance left on, a
/// plugin removed without being uninstalled; the password is never said or stored.
#[test]
fn status_reads_what_the_live_site_has_run() {
    let f = Fixture::new();
    let tmp = OpenTmp::new();
    const SECRET: &str = "live-pw-5d2a";
    let server = PasswordServer::start(&tmp, "bob", SECRET);
    let m = core(&f);
    let g = good(&f);
    let www = f.path("www");
    let config = f.path("etc/config.php");
    let dataroot = f.path("moodledata");
    std::fs::create_dir_all(&dataroot).unwrap();
    f.write(
        "etc/config.php",
        format!(
            "<?php\nunset($CFG);\nglobal $CFG;\n$CFG = new stdClass();\n$CFG->dbtype = 'pgsql';\n$CFG->dblibrary = 'native';\n$CFG->dbhost = '127.0.0.1';\n$CFG->dbname = 'postgres';\n$CFG->dbuser = 'bob';\n$CFG->dbpass = '{SECRET}';\n$CFG->prefix = 'mdl_';\n$CFG->dboptions = ['dbport' => {}];\n$CFG->wwwroot = 'http://localhost';\n$CFG->dataroot = '{}';\nrequire_once('{}/current/lib/setup.php');\n",
            server.port,
            dataroot.display(),
            www.display()
        ),
    );
    let list = f.write("empty-pluglist.json", "{\"timestamp\": 0, \"plugins\": []}");
    let site_text = |reference: &str| {
        format!(
            "Site(\n    name: \"live\",\n    moodle: (version: \"4.5\", git: {:?}),\n    plugins: {{ \"local_good\": (git: {:?}, ref: {reference:?}) }},\n    directory: {:?},\n    links: {{\"config.php\": {:?}}},\n    target: (deploy: {:?}, config: {:?}),\n)\n",
            m.url(),
            g.url(),
            list.display().to_string(),
            config.display().to_string(),
            www.display().to_string(),
            config.display().to_string(),
        )
    };
    let site = f.write("site/site.ron", site_text("v1"));
    let mut said = String::new();
    let mut run = |args: &[&str]| {
        let out = f.mcb().args(args).output().unwrap();
        said.push_str(&String::from_utf8_lossy(&out.stdout));
        said.push_str(&String::from_utf8_lossy(&out.stderr));
        out
    };
    let deploy = |run: &mut dyn FnMut(&[&str]) -> std::process::Output| {
        let out = run(&["deploy", s(&f.store()), "--site", "live", "--to", s(&www)]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let php = |script: &str, args: &[&str]| {
        let out = std::process::Command::new("php")
            .arg(www.join("current").join(script))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let status = |run: &mut dyn FnMut(&[&str]) -> std::process::Output| {
        let out = run(&["status", "--json", s(&site)]);
        let j: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code().unwrap(), j)
    };

    let mut documents = Vec::new();
    assert!(run(&["realise", s(&site)]).status.success());
    deploy(&mut run);
    php("admin/cli/install_database.php", &["--agree-license"]);
    let (code, j) = status(&mut run);
    documents.push(j.clone());
    assert_eq!(code, 0, "{j}");
    assert_eq!(j["in_sync"], true, "{j}");
    assert_eq!(j["serves_number"], 1);
    assert_eq!(j["core_db"], "2024100700", "{j}");
    assert_eq!(j["database"]["dbtype"], "pgsql");
    assert_eq!(j["database"]["name"], "postgres");

    // v2 built and deployed, not yet upgraded: Moodle says an upgrade is pending.
    std::fs::write(&site, site_text("v2")).unwrap();
    assert!(run(&["realise", s(&site)]).status.success());
    deploy(&mut run);
    let (code, j) = status(&mut run);
    documents.push(j.clone());
    assert_eq!(code, 2, "{j}");
    assert_eq!(j["upgrade_pending"], true, "{j}");
    assert_eq!(j["to_upgrade"][0]["component"], "local_good", "{j}");
    assert_eq!(j["to_upgrade"][0]["database"], "2024010100");
    assert_eq!(j["to_upgrade"][0]["code"], "2024020100");
    php("admin/cli/upgrade.php", &["--non-interactive"]);
    let (code, j) = status(&mut run);
    documents.push(j.clone());
    assert_eq!((code, &j["in_sync"]), (0, &serde_json::json!(true)), "{j}");

    // The files rolled back under an upgraded database: a rollback Moodle cannot run.
    let out = run(&["deploy", "--rollback", "--to", s(&www)]);
    assert!(out.status.success());
    let (code, j) = status(&mut run);
    documents.push(j.clone());
    assert_eq!(code, 2, "{j}");
    assert_eq!(j["serves_number"], 1, "{j}");
    assert_eq!(j["newest_number"], 2, "{j}");
    assert_eq!(j["database_ahead"][0]["component"], "local_good", "{j}");

    // Maintenance left on, and a plugin the database knows that has no code.
    php("admin/cli/maintenance.php", &["--enable"]);
    let out = std::process::Command::new("php")
        .arg("-r")
        .arg("define('CLI_SCRIPT', true); require($argv[1]); fx_set_version('local_gone', '2023010100');")
        .arg(www.join("current/config.php"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["status", s(&site)]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(2));
    assert!(text.contains("MAINTENANCE MODE IS ON"), "{text}");
    assert!(
        text.contains("ORPHANED: local_gone 2023010100 in the database and no code"),
        "{text}"
    );
    assert!(
        text.contains(
            "DATABASE AHEAD: local_good 2024020100 in the database, 2024010100 in the code"
        ),
        "{text}"
    );

    // The password: never said, never in the store or the lock.
    assert!(!said.contains(SECRET), "{said}");
    let stored = walkdir::WalkDir::new(f.store())
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .any(|e| {
            std::fs::read(e.path())
                .is_ok_and(|b| b.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()))
        });
    assert!(!stored, "the password reached the store");
    assert!(
        !std::fs::read_to_string(f.path("site/site.lock"))
            .unwrap()
            .contains(SECRET)
    );

    // What an administrator reads, and the shape of `status --json`, in sync and not.
    crate::snapshots::settings(&f).bind(|| {
        insta::assert_snapshot!("status-text", text);
        insta::assert_snapshot!(
            "json-schema-status",
            serde_json::to_string_pretty(&crate::json_schemas::schema_of(&documents)).unwrap()
        );
    });

    // A site file without a target: said, with the section to add.
    let plain = good_site(&f, &m, &[]);
    let out = f.mcb().args(["status"]).arg(&plain).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no target in its site file"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(server);
}
