//! `mcb realise` against real git repositories, zips and directories.

use std::os::unix::fs::MetadataExt;

use crate::support::*;

fn core_site(
    f: &Fixture,
    moodle: &GitRepo,
    spec: &str,
    plugins: &[(&str, Src)],
) -> std::path::PathBuf {
    f.site(&Site::new("s1").core(moodle.url(), spec).plugins(plugins))
}

fn release_of(json: &serde_json::Value) -> String {
    json["moodle"]["release"].as_str().unwrap().to_string()
}

#[test]
fn moodle_version_specs_pick_the_right_commit() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let cases = [
        ("4.5", "4.5.10 (Build: 20251006)"),
        ("4.5+", "4.5.10+ (Build: 20251020)"),
        ("4.5.1", "4.5.1 (Build: 20241209)"),
        ("4.5.0", "4.5 (Build: 20241007)"),
        ("4.4", "4.4 (Build: 20240422)"),
        ("tag:v4.5.1", "4.5.1 (Build: 20241209)"),
    ];
    // Each spec in turn on one site: some go back, which a site without a database may.
    let allow = ["--allow-downgrade"];
    for (spec, release) in cases {
        let site = core_site(&f, &m, spec, &[]);
        let j = f.realise_ok_with(&site, &allow);
        assert_eq!(release_of(&j), release, "spec {spec}");
        let index = std::fs::read_to_string(f.path("site/result/index.php")).unwrap();
        assert!(index.contains(release), "spec {spec}: result shows {index}");
    }
    let v451 = m.git(&["rev-parse", "v4.5.1^{commit}"]);
    let site = core_site(&f, &m, &format!("commit:{}", &v451[..10]), &[]);
    assert_eq!(
        release_of(&f.realise_ok_with(&site, &allow)),
        "4.5.1 (Build: 20241209)"
    );

    let site = core_site(&f, &m, "4.6", &[]);
    let err = f.realise_err(&site, 5);
    assert!(
        err.contains("nothing that matches version \"4.6\""),
        "{err}"
    );
    assert!(
        err.contains("v4.5.10"),
        "the hint lists the newest tags: {err}"
    );
}

#[test]
fn moodle_51_layout_puts_plugins_under_public() {
    let f = Fixture::new();
    let m = moodle51_repo(f.path("moodle"));
    let p = plugin_repo(
        f.path("block_x"),
        &[("v1.0", plugin_php("block_x", 2025100100, "2025100600", ""))],
    );
    let site = core_site(&f, &m, "5.1", &[("block_x", Src::git(p.url()))]);
    let j = f.realise_ok(&site);
    assert_eq!(j["plugins"]["block_x"]["install_path"], "public/blocks/x");
    assert!(f.path("site/result/public/blocks/x/version.php").is_file());
    assert!(f.path("site/result/composer.json").is_file());
    // The web server serves public/, and mcb says so where it says where the code is.
    assert_eq!(
        j["web_root"].as_str().unwrap(),
        f.path("site/result/public").to_str().unwrap()
    );
    let out = f.mcb().arg("realise").arg(&site).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!(
            "serve  {} (the web root)",
            f.path("site/result/public").display()
        )),
        "{said}"
    );
    let www = f.path("www");
    let out = f
        .mcb()
        .args(["deploy", "--json"])
        .arg(f.store())
        .args(["--site", "s1", "--to"])
        .arg(&www)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        d["web_root"].as_str().unwrap(),
        www.join("current/public").to_str().unwrap()
    );
    assert!(www.join("current/public/blocks/x/version.php").is_file());
}

#[test]
fn git_plugin_without_ref_takes_the_newest_compatible_tag_in_numeric_order() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let p = plugin_repo(
        f.path("mod_x"),
        &[
            ("v1.9", plugin_php("mod_x", 2024060100, "2024042200", "")),
            (
                "v1.10",
                plugin_php(
                    "mod_x",
                    2024100800,
                    "2024100700",
                    "$plugin->supported = [404, 405];",
                ),
            ),
            // Needs a newer build than 4.5.1.
            ("v1.11", plugin_php("mod_x", 2024120100, "2024100710", "")),
            // Declares itself incompatible with 4.5.
            (
                "v2.0",
                plugin_php(
                    "mod_x",
                    2025010100,
                    "2024100700",
                    "$plugin->incompatible = 405;",
                ),
            ),
        ],
    );
    let entry = [("mod_x", Src::git(p.url()))];
    let j = f.realise_ok(&core_site(&f, &m, "4.5.1", &entry));
    assert_eq!(
        j["plugins"]["mod_x"]["version"], "2024100800",
        "v1.10 (numeric order, requires fits)"
    );
    assert!(
        j["plugins"]["mod_x"]["source"]
            .as_str()
            .unwrap()
            .contains("v1.10")
    );
    // A lock that still fits is kept; without it the choice follows the core.
    let again = f.realise_ok(&core_site(&f, &m, "4.5.10", &entry));
    assert_eq!(
        again["plugins"]["mod_x"]["version"], "2024100800",
        "the lock still fits: kept"
    );
    std::fs::remove_file(f.path("site/site.lock")).unwrap();
    let j = f.realise_ok(&core_site(&f, &m, "4.5.10", &entry));
    assert_eq!(
        j["plugins"]["mod_x"]["version"], "2024120100",
        "v1.11 once the core build allows it"
    );
    std::fs::remove_file(f.path("site/site.lock")).unwrap();
    // Back to 4.4 is a downgrade of core and plugin: refused, then allowed.
    let site44 = core_site(&f, &m, "4.4", &entry);
    let err = f.realise_err(&site44, 2);
    assert!(err.contains("refusing to downgrade"), "{err}");
    assert!(
        err.contains("mod_x: r2024120100 (2024120100) → r2024060100 (2024060100)"),
        "{err}"
    );
    let j = f.realise_ok_with(&site44, &["--allow-downgrade"]);
    assert_eq!(j["plugins"]["mod_x"]["version"], "2024060100");
}

#[test]
fn git_refs_tags_branches_commits_and_the_default_branch() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let p = plugin_repo(
        f.path("local_y"),
        &[("v1.0", plugin_php("local_y", 2024010100, "2024042200", ""))],
    );
    let first = p.git(&["rev-parse", "HEAD"]);
    p.git(&["checkout", "-q", "-b", "develop"]);
    p.write(
        "version.php",
        &plugin_php("local_y", 2024110100, "2024100700", ""),
    );
    p.commit("develop");
    p.git(&["checkout", "-q", "main"]);
    p.write(
        "version.php",
        &plugin_php("local_y", 2024090100, "2024042200", ""),
    );
    p.commit("main moves on");

    for (reference, version) in [
        ("v1.0", "2024010100"),
        ("develop", "2024110100"),
        (&first[..12], "2024010100"),
    ] {
        // Moving between refs goes back too: this site has no database to protect.
        let entry = [("local_y", Src::git(p.url()).at(reference))];
        let j = f.realise_ok_with(&core_site(&f, &m, "4.5", &entry), &["--allow-downgrade"]);
        assert_eq!(
            j["plugins"]["local_y"]["version"], version,
            "ref {reference}"
        );
    }
    let entry = [("local_y", Src::git(p.url()).at("nope"))];
    let err = f.realise_err(&core_site(&f, &m, "4.5", &entry), 5);
    assert!(
        err.contains("'nope' is not a tag, branch or commit"),
        "{err}"
    );

    // No tag fits 4.4 (v1.0 needs nothing newer, so make one that does): default branch.
    let q = plugin_repo(
        f.path("local_z"),
        &[("v1.0", plugin_php("local_z", 2024110100, "2024100700", ""))],
    );
    q.write(
        "version.php",
        &plugin_php("local_z", 2024050100, "2024042200", ""),
    );
    q.commit("backport on main");
    let entry = [("local_z", Src::git(q.url()))];
    let out = f
        .mcb()
        .args(["realise", "--json", "--allow-downgrade"])
        .arg(core_site(&f, &m, "4.4", &entry))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["plugins"]["local_z"]["version"], "2024050100");
    assert!(String::from_utf8_lossy(&out.stderr).contains("default branch main"));
}

#[test]
fn zip_and_path_sources_and_subplugins() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    f.write(
        "zips/tool_z.zip",
        zip_bytes(&[
            (
                "tool_z/version.php",
                &plugin_php("tool_z", 2024100100, "2024100700", ""),
                0o644,
            ),
            ("tool_z/cli/run.php", "#!/usr/bin/env php\n<?php\n", 0o755),
            (
                "tool_z/lang/en/tool_z.php",
                "<?php $string['pluginname'] = 'Z';\n",
                0o644,
            ),
            ("tool_z/empty.txt", "", 0o644),
        ]),
    );
    // A plugin that declares a subplugin type, and a plugin of that type.
    f.write(
        "src/mod_parent/version.php",
        plugin_php("mod_parent", 2024100100, "2024100700", ""),
    );
    f.write(
        "src/mod_parent/db/subplugins.json",
        r#"{"plugintypes": {"parentsub": "mod\/parent\/sub"}}"#,
    );
    f.write(
        "src/parentsub_child/version.php",
        plugin_php("parentsub_child", 2024100100, "2024100700", ""),
    );
    // 5.0-style relative subplugin types.
    f.write(
        "src/mod_other/version.php",
        plugin_php("mod_other", 2024100100, "2024100700", ""),
    );
    f.write(
        "src/mod_other/db/subplugins.json",
        r#"{"subplugintypes": {"othersub": "parts"}}"#,
    );
    f.write(
        "src/othersub_a/version.php",
        plugin_php("othersub_a", 2024100100, "2024100700", ""),
    );
    f.write(
        "src/quizaccess_timer/version.php",
        plugin_php("quizaccess_timer", 2024100100, "2024100700", ""),
    );
    let site = core_site(
        &f,
        &m,
        "4.5",
        &[
            ("tool_z", Src::zip("../zips/tool_z.zip")),
            ("mod_parent", Src::path("../src/mod_parent")),
            ("parentsub_child", Src::path("../src/parentsub_child")),
            ("mod_other", Src::path("../src/mod_other")),
            ("othersub_a", Src::path("../src/othersub_a")),
            ("quizaccess_timer", Src::path("../src/quizaccess_timer")),
        ],
    );
    let j = f.realise_ok(&site);
    let path = |c: &str| {
        j["plugins"][c]["install_path"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(path("tool_z"), "admin/tool/z");
    assert_eq!(path("parentsub_child"), "mod/parent/sub/child");
    assert_eq!(path("othersub_a"), "mod/other/parts/a");
    assert_eq!(path("quizaccess_timer"), "mod/quiz/accessrule/timer");
    let result = f.path("site/result");
    assert!(
        result.join("admin/tool/z/version.php").is_file(),
        "top folder stripped"
    );
    let run = std::fs::metadata(result.join("admin/tool/z/cli/run.php")).unwrap();
    assert_eq!(run.mode() & 0o777, 0o555, "executable bit kept, read-only");
    assert!(result.join("mod/parent/sub/child/version.php").is_file());
    let empty = std::fs::metadata(result.join("admin/tool/z/empty.txt")).unwrap();
    assert_eq!(
        (empty.len(), empty.nlink()),
        (0, 1),
        "empty files are not hardlinked"
    );

    // Editing a path source gives a new codebase on the next realise.
    f.write("src/othersub_a/lib.php", "<?php // new\n");
    let j2 = f.realise_ok(&site);
    assert_ne!(j2["tree"], j["tree"]);
    assert!(f.path("site/result/mod/other/parts/a/lib.php").is_file());
}

#[test]
fn the_codebase_is_hardlinked_read_only_and_equals_the_site_branch() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let p = plugin_repo(
        f.path("block_x"),
        &[("v1.0", plugin_php("block_x", 2024100100, "2024100700", ""))],
    );
    let site = core_site(&f, &m, "4.5", &[("block_x", Src::git(p.url()))]);
    let j = f.realise_ok(&site);
    for key in ["site", "commit", "tree", "path"] {
        assert!(j[key].is_string(), "{key} in {j}");
    }
    assert_eq!(j["site"], "s1");
    assert_eq!(j["moodle"]["build"], "2024100710");
    assert_eq!(j["plugins"]["block_x"]["version"], "2024100100");
    assert_eq!(j["plugins"]["block_x"]["install_path"], "blocks/x");

    let result = f.path("site/result");
    let target = std::fs::read_link(&result).unwrap();
    assert_eq!(target.to_str(), j["path"].as_str());
    assert!(target.starts_with(std::fs::canonicalize(f.store()).unwrap()));
    let index = std::fs::metadata(result.join("index.php")).unwrap();
    assert!(index.nlink() >= 2, "hardlinked to the store object");
    assert_eq!(index.mode() & 0o222, 0, "read-only");
    assert_eq!(
        std::fs::metadata(result.join("blocks")).unwrap().mode() & 0o222,
        0
    );

    // `git clone <store>/git -b <name>` gives the same codebase.
    let clone = f.path("clone");
    let ok = std::process::Command::new("git")
        .args(["clone", "-q", "-b", "s1"])
        .arg(f.store().join("git"))
        .arg(&clone)
        .status()
        .unwrap();
    assert!(ok.success());
    std::fs::remove_dir_all(clone.join(".git")).unwrap();
    assert_eq!(snapshot(&clone), snapshot(&result));

    // The lock records core and plugin exactly.
    let lock = std::fs::read_to_string(f.path("site/site.lock")).unwrap();
    let v4510 = m.git(&["rev-parse", "v4.5.10^{commit}"]);
    assert!(lock.contains(&v4510), "{lock}");
    assert!(lock.contains("v4.5.10"));
    assert!(lock.contains(j["tree"].as_str().unwrap()));
    assert!(lock.contains("install_path: \"blocks/x\""));

    // --out puts the link elsewhere.
    let other = f.path("elsewhere/codebase");
    f.mcb()
        .args(["realise", "-q", "--out"])
        .arg(&other)
        .arg(&site)
        .assert()
        .success();
    assert_eq!(std::fs::read_link(&other).unwrap(), target);
}

#[test]
fn a_fitting_lock_is_reused_without_network_and_offline_works() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let p = plugin_repo(
        f.path("block_x"),
        &[("v1.0", plugin_php("block_x", 2024100100, "2024100700", ""))],
    );
    f.write(
        "plug.zip",
        zip_bytes(&[(
            "local_q/version.php",
            &plugin_php("local_q", 2024100100, "2024100700", ""),
            0o644,
        )]),
    );
    let site = core_site(
        &f,
        &m,
        "4.5",
        &[
            ("block_x", Src::git(p.url())),
            ("local_q", Src::zip("../plug.zip")),
        ],
    );
    let first = f.realise_ok(&site);
    let lock = std::fs::read_to_string(f.path("site/site.lock")).unwrap();

    // Upstreams gone: the lock and the store are enough.
    std::fs::rename(f.path("moodle"), f.path("moodle.gone")).unwrap();
    std::fs::rename(f.path("block_x"), f.path("block_x.gone")).unwrap();
    std::fs::rename(f.path("plug.zip"), f.path("plug.zip.gone")).unwrap();
    let again = f.realise_ok(&site);
    assert_eq!(again["commit"], first["commit"]);
    assert_eq!(again["changed"], false);
    assert_eq!(
        std::fs::read_to_string(f.path("site/site.lock")).unwrap(),
        lock
    );

    // A removed result link is made again from the store, still without upstreams.
    std::fs::remove_file(f.path("site/result")).unwrap();
    let out = f
        .mcb()
        .args(["realise", "--offline", "--json"])
        .arg(&site)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(f.path("site/result/index.php").is_file());

    // Offline with nothing in the store fails clearly.
    let g = Fixture::new();
    std::fs::rename(f.path("moodle.gone"), f.path("moodle")).unwrap();
    let site2 = g.site(&Site::new("s2").core(m.url(), "4.5"));
    let out = g
        .mcb()
        .args(["realise", "--offline"])
        .arg(&site2)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("offline"));
}

#[test]
fn the_same_site_in_two_empty_stores_gives_the_same_tree_and_commit() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let p = plugin_repo(
        f.path("block_x"),
        &[("v1.0", plugin_php("block_x", 2024100100, "2024100700", ""))],
    );
    f.write(
        "plug.zip",
        zip_bytes(&[(
            "local_q/version.php",
            &plugin_php("local_q", 2024100100, "2024100700", ""),
            0o644,
        )]),
    );
    let body = Site::new("prod")
        .core(m.url(), "4.5")
        .plugin("block_x", Src::git(p.url()))
        .plugin(
            "local_q",
            Src::zip(f.path("plug.zip").display().to_string()),
        );
    let a = body.write(&f, "a/site.ron");
    let b = body.write(&f, "b/site.ron");
    let ja = f
        .mcb_with_store(&f.path("store-a"))
        .args(["realise", "--json"])
        .arg(&a)
        .output()
        .unwrap();
    let jb = f
        .mcb_with_store(&f.path("store-b"))
        .args(["realise", "--json"])
        .arg(&b)
        .output()
        .unwrap();
    assert!(ja.status.success() && jb.status.success());
    let ja: serde_json::Value = serde_json::from_slice(&ja.stdout).unwrap();
    let jb: serde_json::Value = serde_json::from_slice(&jb.stdout).unwrap();
    assert_eq!(ja["tree"], jb["tree"]);
    assert_eq!(ja["commit"], jb["commit"]);
    assert_eq!(
        std::fs::read_to_string(f.path("a/site.lock")).unwrap(),
        std::fs::read_to_string(f.path("b/site.lock")).unwrap()
    );
    assert_eq!(snapshot(&f.path("a/result")), snapshot(&f.path("b/result")));
}

#[test]
fn sources_enter_the_store_once() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let one = f.site(&Site::new("one").core(m.url(), "4.5"));
    f.realise_ok(&one);
    let count = || {
        walkdir::WalkDir::new(f.store().join("objects"))
            .into_iter()
            .filter(|e| e.as_ref().unwrap().file_type().is_file())
            .count()
    };
    let before = count();
    let two = Site::new("two")
        .core(m.url(), "4.5")
        .write(&f, "two/site.ron");
    let j = f.realise_ok(&two);
    assert_eq!(
        count(),
        before,
        "a second site on the same core adds no object"
    );
    assert!(f.path("two/result/index.php").is_file());
    assert_eq!(j["site"], "two");
}

#[test]
fn a_generation_on_another_filesystem_is_copied_and_says_so() {
    let shm = std::path::Path::new("/dev/shm");
    let f = Fixture::new();
    if !shm.is_dir()
        || std::fs::metadata(shm).unwrap().dev() == std::fs::metadata(f.dir.path()).unwrap().dev()
    {
        eprintln!("no second filesystem here; skipping");
        return;
    }
    let m = moodle_repo(f.path("moodle"));
    let elsewhere = tempfile::tempdir_in(shm).unwrap();
    std::fs::create_dir_all(f.store()).unwrap();
    // Open the store once so its layout exists, then move generations/ away.
    let site = f.site(&Site::new("s").core(m.url(), "4.4"));
    f.realise_ok(&site);
    let gens = f.store().join("generations");
    for e in std::fs::read_dir(&gens).unwrap() {
        let p = e.unwrap().path();
        let _ = std::process::Command::new("chmod")
            .arg("-R")
            .arg("u+w")
            .arg(&p)
            .status();
        if p.is_dir() {
            std::fs::remove_dir_all(p).unwrap();
        } else {
            std::fs::remove_file(p).unwrap();
        }
    }
    std::fs::remove_dir(&gens).unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), &gens).unwrap();
    let site = f.site(&Site::new("s").core(m.url(), "4.5"));
    let out = f.mcb().arg("realise").arg(&site).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("different filesystems"));
    assert!(f.path("site/result/index.php").is_file());
    assert_eq!(
        std::fs::metadata(f.path("site/result/index.php"))
            .unwrap()
            .nlink(),
        1
    );
}

fn core_zip(release: &str, build: &str, branch: &str) -> Vec<u8> {
    // download.moodle.org zips hold one top folder, `moodle/`.
    zip_bytes(&[
        (
            "moodle/version.php",
            &core_version_php(build, release, branch),
            0o644,
        ),
        ("moodle/lib/components.json", COMPONENTS_JSON, 0o644),
        ("moodle/lib/plugins.json", PLUGINS_JSON, 0o644),
        ("moodle/index.php", "<?php // zip core\n", 0o644),
    ])
}

#[test]
fn core_from_a_zip_over_http_and_from_a_directory() {
    let f = Fixture::new();
    let server = crate::support::http::Server::start();
    let core = core_zip("4.5.2 (Build: 20250210)", "2024100702.00", "405");
    let core_hash = blake3_pin(&core);
    server.set(
        "/moodle-4.5.2.zip",
        crate::support::http::Response::ok(core),
    );
    let block = zip_bytes(&[(
        "block_z/version.php",
        &plugin_php("block_z", 2024100100, "2024100700", ""),
        0o644,
    )]);
    let block_hash = blake3_pin(&block);
    server.set("/block_z.zip", crate::support::http::Response::ok(block));
    // Plain http:// is accepted only with a pinned hash.
    let unpinned =
        f.site(&Site::new("z").core_from(Src::zip(server.url("/moodle-4.5.2.zip")).pin("4.5.2")));
    let err = f.realise_err(&unpinned, 3);
    assert!(err.contains("plain http:// without a `hash`"), "{err}");
    let site = f.site(
        &Site::new("z")
            .core_from(
                Src::zip(server.url("/moodle-4.5.2.zip"))
                    .pin("4.5.2")
                    .hash(&core_hash),
            )
            .plugin(
                "block_z",
                Src::zip(server.url("/block_z.zip")).hash(&block_hash),
            ),
    );
    let j = f.realise_ok(&site);
    assert_eq!(j["moodle"]["release"], "4.5.2 (Build: 20250210)");
    assert!(f.path("site/result/blocks/z/version.php").is_file());
    let ua = &server.requests_to("/moodle-4.5.2.zip")[0].headers["user-agent"];
    assert!(ua.starts_with("mcb/"), "{ua}");

    // A zip that holds another release than the site file asks for is refused.
    let wrong = f.site(
        &Site::new("z").core_from(
            Src::zip(server.url("/moodle-4.5.2.zip"))
                .pin("4.4")
                .hash(&core_hash),
        ),
    );
    let err = f.realise_err(&wrong, 5);
    assert!(
        err.contains("asks for Moodle 4.4, but the source holds 4.5.2"),
        "{err}"
    );

    // A missing download is a clear error.
    let missing = f.site(
        &Site::new("z").core_from(
            Src::zip(server.url("/nope.zip"))
                .pin("4.5")
                .hash(&core_hash),
        ),
    );
    let err = f.realise_err(&missing, 5);
    assert!(err.contains("moodle:") && err.contains("HTTP 404"), "{err}");

    // Core from a local directory.
    let m = moodle_repo(f.path("moodle"));
    m.git(&["checkout", "-q", "v4.5.1"]);
    let site = Site::new("d")
        .core_from(Src::path("../moodle").pin("4.5.1"))
        .write(&f, "dir/site.ron");
    let j = f.realise_ok(&site);
    assert_eq!(j["moodle"]["build"], "2024100701");
    assert!(
        !f.path("dir/result/.git").exists(),
        "VCS metadata is not part of the codebase"
    );
}

#[test]
fn the_chosen_tag_brings_its_own_dependencies() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let p = plugin_repo(
        f.path("mod_d"),
        &[
            ("v1.0", plugin_php("mod_d", 2024060100, "2024042200", "")),
            (
                "v1.1",
                plugin_php(
                    "mod_d",
                    2024110100,
                    "2024100700",
                    "$plugin->dependencies = ['local_dep' => 2024100100];",
                ),
            ),
        ],
    );
    f.write(
        "src/local_dep/version.php",
        plugin_php("local_dep", 2024050100, "2024042200", ""),
    );
    let plugins = [
        ("mod_d", Src::git(p.url())),
        ("local_dep", Src::path("../src/local_dep")),
    ];
    // On 4.4 v1.0 is chosen and needs nothing.
    let site = f.site(&Site::new("s").core(m.url(), "4.4").plugins(&plugins));
    assert_eq!(
        f.realise_ok(&site)["plugins"]["mod_d"]["version"],
        "2024060100"
    );
    // On 4.5 v1.1 is the newest, but its dependency is too old: v1.0, which needs
    // nothing, is taken instead, and -v says why v1.1 was not.
    std::fs::remove_file(f.path("site/site.lock")).unwrap();
    let site = f.site(&Site::new("s").core(m.url(), "4.5").plugins(&plugins));
    let out = f.mcb().args(["realise", "-v"]).arg(&site).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(
            "mod_d 2024060100 (v1.0): the newest version that fits with the site's other plugins"
        ),
        "{err}"
    );
    assert!(
        err.contains("not mod_d 2024110100 (v1.1): requires local_dep ≥ 2024100100, and the site can have local_dep 2024050100"),
        "{err}"
    );
    // With the dependency new enough, v1.1 (the lock's v1.0 no longer what the newest is
    // after `update`; here the lock is removed).
    f.write(
        "src/local_dep/version.php",
        plugin_php("local_dep", 2024100100, "2024042200", ""),
    );
    std::fs::remove_file(f.path("site/site.lock")).unwrap();
    assert_eq!(
        f.realise_ok(&site)["plugins"]["mod_d"]["version"],
        "2024110100"
    );
}

#[test]
fn links_give_each_site_its_own_config_php() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let prod = Site::new("prod")
        .core(m.url(), "4.5")
        .link("config.php", "/etc/moodle/prod/config.php");
    let test = Site::new("test")
        .core(m.url(), "4.5")
        .link("config.php", "/etc/moodle/test/config.php");
    let a = f.realise_ok(&prod.write(&f, "prod/site.ron"));
    let b = f.realise_ok(&test.write(&f, "test/site.ron"));
    // Each site's config is part of its own tree: two generations, not one shared.
    assert_ne!(a["tree"], b["tree"]);
    for (site, target) in [
        ("prod", "/etc/moodle/prod/config.php"),
        ("test", "/etc/moodle/test/config.php"),
    ] {
        let link = f.path(&format!("{site}/result/config.php"));
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            std::path::Path::new(target)
        );
    }
    // The lock records the links; a second run is a no-op, and verify finds nothing wrong
    // (it never follows the link to a file that does not exist here).
    let lock = std::fs::read_to_string(f.path("prod/site.lock")).unwrap();
    assert!(
        lock.contains("\"config.php\": \"/etc/moodle/prod/config.php\""),
        "{lock}"
    );
    let again = f.realise_ok(&prod.write(&f, "prod/site.ron"));
    assert_eq!(again["changed"], false);
    f.mcb().arg("verify").assert().success();
    f.mcb()
        .args(["verify", "--tree"])
        .arg(f.path("prod/result"))
        .assert()
        .success();

    // A link into the store is refused, as is one where the codebase has a file.
    let into = Site::new("into")
        .core(m.url(), "4.5")
        .link("config.php", &format!("{}/objects/x", f.store().display()));
    let err = f.realise_err(&into.write(&f, "into/site.ron"), 5);
    assert!(
        err.contains("link config.php points into the store"),
        "{err}"
    );
    // Also through a symlink on the way there.
    std::os::unix::fs::symlink(f.store(), f.path("looks-elsewhere")).unwrap();
    let through = Site::new("through").core(m.url(), "4.5").link(
        "config.php",
        &format!("{}/objects/x", f.path("looks-elsewhere").display()),
    );
    let err = f.realise_err(&through.write(&f, "through/site.ron"), 5);
    assert!(
        err.contains("link config.php points into the store"),
        "{err}"
    );
    // Two links, one inside the other: the site file's mistake, named.
    let nested = Site::new("nested")
        .core(m.url(), "4.5")
        .link("local/site", "/srv/site")
        .link("local/site/config.php", "/srv/config.php");
    let err = f.realise_err(&nested.write(&f, "nested/site.ron"), 3);
    assert!(
        err.contains("link \"local/site/config.php\" is inside link \"local/site\""),
        "{err}"
    );
    let clash = Site::new("clash")
        .core(m.url(), "4.5")
        .link("version.php", "/etc/moodle/clash/version.php");
    let err = f.realise_err(&clash.write(&f, "clash/site.ron"), 3);
    assert!(
        err.contains("link \"version.php\": the codebase already has version.php there"),
        "{err}"
    );
    assert!(!f.path("clash/result").exists());
}

#[test]
fn warnings_are_said_again_by_a_run_that_changes_nothing_and_not_with_q() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    // Outside its supported range: Moodle only warns, and so does mcb.
    let p = plugin_repo(
        f.path("mod_w"),
        &[(
            "v1.0",
            plugin_php(
                "mod_w",
                2024060100,
                "2024042200",
                "$plugin->supported = [401, 404];",
            ),
        )],
    );
    let site = f.site(
        &Site::new("s")
            .core(m.url(), "4.5")
            .plugin("mod_w", Src::git(p.url())),
    );
    let first = f.mcb().arg("realise").arg(&site).output().unwrap();
    let warned = String::from_utf8_lossy(&first.stderr).into_owned();
    assert!(first.status.success(), "{warned}");
    assert!(
        warned.contains("warning: mod_w: mod_w 2024060100"),
        "{warned}"
    );
    assert!(warned.contains("Moodle will warn"), "{warned}");
    let again = f.mcb().arg("realise").arg(&site).output().unwrap();
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(stdout.starts_with("up to date"), "{stdout}");
    assert_eq!(
        String::from_utf8_lossy(&again.stderr),
        warned,
        "the same warning"
    );
    let j = f.realise_ok(&site);
    assert!(
        j["warnings"][0]
            .as_str()
            .unwrap()
            .contains("Moodle will warn")
    );
    // -q prints errors only: nothing here.
    let quiet = f.mcb().args(["-q", "realise"]).arg(&site).output().unwrap();
    assert!(quiet.status.success());
    assert!(quiet.stdout.is_empty() && quiet.stderr.is_empty());
}

/// https upstreams, git and zip alike, go through rustls with the one crypto provider mcb
/// installs: a server that does not speak TLS is a TLS error for each, never a crash.
#[test]
fn https_upstreams_speak_tls_for_git_and_zips() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in listener.incoming().flatten() {
            let mut c = c;
            let _ = std::io::Write::write_all(&mut c, b"HTTP/1.0 200 OK\r\n\r\nnot tls\r\n");
        }
    });
    for (component, src) in [
        (
            "local_x",
            Src::git(format!("https://127.0.0.1:{port}/x.git")),
        ),
        (
            "local_y",
            Src::zip(format!("https://127.0.0.1:{port}/y.zip")),
        ),
    ] {
        let site = f.site(&Site::new("s").core(m.url(), "4.5").plugin(component, src));
        let out = f.mcb().arg("realise").arg(&site).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{err}");
        assert!(err.contains(component), "{err}");
        assert!(
            err.contains("corrupt message"),
            "the TLS layer answered: {err}"
        );
    }
}

/// A site with more upstreams than gix's default table of pack indexes holds (32): every
/// fetch of the run adds a pack to the store's repository, and the run must still read
/// them all.
#[test]
fn one_run_fetches_forty_upstreams() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let mut site = Site::new("many").core(m.url(), "4.5");
    for i in 0..40 {
        let c = format!("local_u{i}");
        let r = plugin_repo(
            f.path(&c),
            &[("v1", plugin_php(&c, 2024050100, "2024100700", ""))],
        );
        site = site.plugin(&c, Src::git(r.url()));
    }
    let j = f.realise_ok(&f.site(&site));
    assert_eq!(j["plugins"].as_object().unwrap().len(), 40);
}
