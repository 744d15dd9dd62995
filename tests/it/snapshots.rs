//! What users read, under review: the stdout, stderr and exit code of every command on its
//! main success and failure cases, as text and as `--json`. Temporary paths, ids, hashes
//! and ports are replaced by placeholders, so a snapshot changes only when the output does.
//! `cargo insta review` shows a change; CI fails on any unreviewed one.

use std::path::Path;

use crate::support::directory::{Published, publish};
use crate::support::http::Server;
use crate::support::*;

pub(crate) use mcb_fixtures::snapshot::shown;

/// Snapshot settings for a fixture: its directory and every id become placeholders.
pub(crate) fn settings(f: &Fixture) -> insta::Settings {
    mcb_fixtures::snapshot::settings(f.dir.path())
}

fn run(f: &Fixture, args: &[&str], at: Option<&Path>) -> String {
    let mut c = f.mcb();
    c.args(args);
    if let Some(p) = at {
        c.arg(p);
    }
    shown(&c.output().unwrap())
}

/// A site with a git core, a plugin from the directory (with an automatic dependency), a
/// git plugin and a zip.
pub(crate) fn sample(f: &Fixture) -> (std::path::PathBuf, Server, GitRepo) {
    let m = moodle_repo(f.path("moodle"));
    let server = Server::start();
    let list = publish(
        &server,
        &server,
        &[
            Published::new("mod_att", 2024100800, "2024100700", &["4.4", "4.5"])
                .extra("$plugin->dependencies = ['local_helper' => 2024010100];"),
            Published::new("local_helper", 2024050100, "2024042200", &["4.4", "4.5"]),
            Published::new("block_old", 2024100800, "2024100700", &["4.5"]),
        ],
    );
    let g = plugin_repo(
        f.path("block_g"),
        &[("v1.0", plugin_php("block_g", 2024100100, "2024100700", ""))],
    );
    f.write(
        "z.zip",
        zip_bytes(&[(
            "local_z/version.php",
            &plugin_php("local_z", 2024100100, "2024100700", ""),
            0o644,
        )]),
    );
    let site = f.site(
        &Site::new("prod")
            .core(m.url(), "4.5")
            .plugin("mod_att", Src::index())
            .plugin("block_g", Src::git(g.url()))
            .plugin("local_z", Src::zip("../z.zip"))
            .directory(list),
    );
    (site, server, m)
}

#[test]
fn realise() {
    let f = Fixture::new();
    let (site, _server, _m) = sample(&f);
    settings(&f).bind(|| {
        insta::assert_snapshot!("realise", run(&f, &["realise"], Some(&site)));
        insta::assert_snapshot!(
            "realise-noop-json",
            run(&f, &["realise", "--json"], Some(&site))
        );
        insta::assert_snapshot!("realise-quiet", run(&f, &["realise", "-q"], Some(&site)));
    });
}

#[test]
fn realise_failures() {
    let (f, m, _before) = realised();
    settings(&f).bind(|| {
        // A site file with a RON error: file, line and column.
        let broken = f.write(
            "site/site.ron",
            format!(
                "Site(\n    name: \"s1\",\n    moodle: (version: \"4.5\", git: \"{}\")\n    plugins: {{}},\n)\n",
                m.url()
            ),
        );
        insta::assert_snapshot!("realise-config-error", run(&f, &["realise"], Some(&broken)));
        insta::assert_snapshot!(
            "realise-config-error-json",
            run(&f, &["realise", "--json"], Some(&broken))
        );
        // Nothing installs: a chain of facts.
        f.write(
            "src/local_new/version.php",
            plugin_php("local_new", 2025050100, "2025041400", ""),
        );
        let site = good_site(&f, &m, &[("local_new", Src::path("../src/local_new"))]);
        insta::assert_snapshot!("realise-unsatisfiable", run(&f, &["realise"], Some(&site)));
        insta::assert_snapshot!(
            "realise-unsatisfiable-json",
            run(&f, &["realise", "--json"], Some(&site))
        );
        // A source that cannot be reached: its cause and a hint.
        let site = good_site(
            &f,
            &m,
            &[("local_gone", Src::git(format!("file://{}/nowhere", f.dir.path().display())))],
        );
        insta::assert_snapshot!("realise-source-error", run(&f, &["realise"], Some(&site)));
        insta::assert_snapshot!(
            "realise-source-error-json",
            run(&f, &["realise", "--json"], Some(&site))
        );
        // A dependency that needs a newer version than this Moodle can have.
        f.write(
            "src/mod_needs/version.php",
            plugin_php(
                "mod_needs",
                2024100100,
                "2024042200",
                "$plugin->dependencies = ['local_old' => 2025010100];",
            ),
        );
        f.write(
            "src/local_old/version.php",
            plugin_php("local_old", 2024010100, "2024042200", ""),
        );
        let site = good_site(
            &f,
            &m,
            &[
                ("mod_needs", Src::path("../src/mod_needs")),
                ("local_old", Src::path("../src/local_old")),
            ],
        );
        insta::assert_snapshot!("realise-conflict", run(&f, &["realise"], Some(&site)));
        // Back to an older core than the site's last generation.
        let older = f.write(
            "site/site.ron",
            std::fs::read_to_string(good_site(&f, &m, &[]))
                .unwrap()
                .replace("version: \"4.5\"", "version: \"4.5.1\""),
        );
        insta::assert_snapshot!("realise-downgrade", run(&f, &["realise"], Some(&older)));
        insta::assert_snapshot!(
            "realise-downgrade-json",
            run(&f, &["realise", "--json"], Some(&older))
        );
    });
}

#[test]
fn check_and_info() {
    let f = Fixture::new();
    let (site, _server, _m) = sample(&f);
    f.realise_ok(&site);
    // The host is named, so what the release needs is judged the same on every machine.
    let host = ["--php", "8.2.36", "--db", "postgres:15"];
    let check = |args: &[&str]| {
        let mut all = vec!["check"];
        all.extend_from_slice(args);
        all.extend_from_slice(&host);
        run(&f, &all, Some(&site))
    };
    settings(&f).bind(|| {
        insta::assert_snapshot!("check-blocked", check(&["--moodle", "4.4"]));
        insta::assert_snapshot!("check-blocked-json", check(&["--json", "--moodle", "4.4"]));
        insta::assert_snapshot!("check-ok", check(&["--moodle", "4.5"]));
        insta::assert_snapshot!("check-no-target", check(&["--moodle", "5.0"]));
        // 5.3 needs PHP 8.3 and PostgreSQL 16: the host blocks it whatever the plugins.
        insta::assert_snapshot!("check-environment", check(&["--moodle", "5.3"]));
        insta::assert_snapshot!("check-usage-error", check(&["--moodle", "five"]));
        let info = |args: &[&str]| {
            let mut all = vec!["info"];
            all.extend_from_slice(args);
            all.push("--site");
            run(&f, &all, Some(&site))
        };
        insta::assert_snapshot!("info", info(&["mod_att"]));
        insta::assert_snapshot!("info-json", info(&["mod_att", "--json"]));
        insta::assert_snapshot!("info-missing", info(&["mod_nothing"]));
    });
}

#[test]
fn gc_verify_and_reproduce() {
    let f = Fixture::new();
    let (site, _server, _m) = sample(&f);
    f.realise_ok(&site);
    settings(&f).bind(|| {
        insta::assert_snapshot!("gc-dry-run", run(&f, &["gc", "--dry-run"], None));
        insta::assert_snapshot!("gc-json", run(&f, &["gc", "--json", "--grace", "0"], None));
        insta::assert_snapshot!("verify", run(&f, &["verify"], None));
        insta::assert_snapshot!("verify-json", run(&f, &["verify", "--json"], None));
        let result = f.path("site/result");
        insta::assert_snapshot!("verify-tree", run(&f, &["verify", "--tree"], Some(&result)));
        insta::assert_snapshot!(
            "reproduce",
            run(
                &f,
                &["reproduce", "--check"],
                Some(&f.path("site/site.lock"))
            )
        );
        insta::assert_snapshot!(
            "reproduce-json",
            run(
                &f,
                &["reproduce", "--json"],
                Some(&f.path("site/site.lock"))
            )
        );
        // Damage: an edit through the result link.
        let index = std::fs::canonicalize(result.join("index.php")).unwrap();
        std::fs::set_permissions(&index, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        std::fs::write(&index, "<?php // hacked\n").unwrap();
        insta::assert_snapshot!("verify-damaged", run(&f, &["verify"], None));
        insta::assert_snapshot!(
            "verify-tree-drift",
            run(&f, &["verify", "--tree"], Some(&result))
        );
        insta::assert_snapshot!("verify-repair", run(&f, &["verify", "--repair"], None));
        // A store that is not there.
        let out = f
            .mcb_with_store(&f.path("no-store"))
            .args(["verify", "--json"])
            .output()
            .unwrap();
        insta::assert_snapshot!("verify-no-store-json", shown(&out));
    });
}

#[test]
fn the_command_line() {
    let f = Fixture::new();
    settings(&f).bind(|| {
        insta::assert_snapshot!("help", run(&f, &["--help"], None));
        insta::assert_snapshot!("usage-error", run(&f, &["realise", "--frobnicate"], None));
    });
}

#[test]
fn the_readme_shows_the_exit_codes_help_shows() {
    let f = Fixture::new();
    let out = f.mcb().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    let table = help.split("Exit codes:\n").nth(1).unwrap().trim_end();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    assert!(
        readme.contains(table),
        "README lacks the table of `mcb --help`:\n{table}"
    );
}
