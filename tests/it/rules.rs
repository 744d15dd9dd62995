//! Bad input and Moodle's rules: each failure is a clear error naming the file, line and
//! column or the component and rule, and leaves the previous result, lock and store intact.

use crate::support::*;

#[test]
fn malformed_ron_shows_line_and_column() {
    let (f, m, before) = realised();
    // A comma missing after `moodle: (…)`.
    let site = f.write(
        "site/site.ron",
        format!(
            "Site(\n    name: \"s1\",\n    moodle: (version: \"4.5\", git: \"{}\")\n    plugins: {{}},\n)\n",
            m.url()
        ),
    );
    let err = f.realise_err(&site, 3);
    let expected = format!("{}:4:", f.path("site/site.ron").display());
    assert!(err.contains(&expected), "wants {expected} in: {err}");
    before.assert_intact(&f);
}

#[test]
fn unknown_field_two_sources_and_bad_names_are_refused_before_any_fetch() {
    let (f, m, before) = realised();
    let nowhere = || Src::git("file:///nowhere");
    let cases = [
        (
            vec![("mod_x", nowhere().with("colour", "red"))],
            "colour",
            Some(5),
        ),
        (
            vec![("mod_x", nowhere().with("zip", "x.zip"))],
            "at most one of git, zip, path",
            Some(5),
        ),
        (
            vec![("attendance", nowhere())],
            "not a Moodle component name",
            Some(5),
        ),
        (
            vec![("mod_x", Src::path("/a")), ("mod_x", Src::path("/b"))],
            "listed twice",
            Some(6),
        ),
    ];
    for (plugins, says, line) in cases {
        let site = good_site(&f, &m, &plugins);
        let err = f.realise_err(&site, 3);
        assert!(err.contains(says), "{says}: {err}");
        if let Some(l) = line {
            let at = format!("site.ron:{l}:");
            assert!(err.contains(&at), "{at} in {err}");
        }
        assert!(
            !err.contains("cannot fetch"),
            "refused before fetching: {err}"
        );
        before.assert_intact(&f);
    }
}

#[test]
fn zip_slip_and_escaping_symlinks_are_refused() {
    let (f, m, before) = realised();
    f.write(
        "slip.zip",
        zip_bytes(&[
            (
                "local_s/version.php",
                &plugin_php("local_s", 2024100100, "2024100700", ""),
                0o644,
            ),
            (
                "local_s/../../../evil.php",
                "<?php system($_GET['x']);",
                0o644,
            ),
        ]),
    );
    let err = f.realise_err(
        &good_site(&f, &m, &[("local_s", Src::zip("../slip.zip"))]),
        5,
    );
    assert!(
        err.contains("local_s")
            && err.contains("'../../../evil.php'")
            && err.contains("refusing the archive"),
        "{err}"
    );
    before.assert_intact(&f);

    f.write(
        "link.zip",
        zip_bytes(&[
            (
                "local_s/version.php",
                &plugin_php("local_s", 2024100100, "2024100700", ""),
                0o644,
            ),
            ("local_s/config.php", "../../../../config.php", 0o120777),
        ]),
    );
    let err = f.realise_err(
        &good_site(&f, &m, &[("local_s", Src::zip("../link.zip"))]),
        5,
    );
    assert!(
        err.contains("'config.php'") && err.contains("outside its own plugin"),
        "{err}"
    );
    before.assert_intact(&f);

    f.write(
        "dir/local_s/version.php",
        plugin_php("local_s", 2024100100, "2024100700", ""),
    );
    std::os::unix::fs::symlink("/etc/passwd", f.path("dir/local_s/passwd")).unwrap();
    let err = f.realise_err(
        &good_site(&f, &m, &[("local_s", Src::path("../dir/local_s"))]),
        5,
    );
    assert!(
        err.contains("'passwd'") && err.contains("absolute path '/etc/passwd'"),
        "{err}"
    );
    before.assert_intact(&f);
}

#[test]
fn a_pinned_zip_hash_is_checked_before_anything_is_stored() {
    let (f, m, before) = realised();
    f.write(
        "p.zip",
        zip_bytes(&[(
            "local_p/version.php",
            &plugin_php("local_p", 2024100100, "2024100700", ""),
            0o644,
        )]),
    );
    let wrong = format!("blake3:{}", "0".repeat(64));
    let err = f.realise_err(
        &good_site(&f, &m, &[("local_p", Src::zip("../p.zip").hash(&wrong))]),
        6,
    );
    assert!(
        err.contains("local_p") && err.contains("nothing was stored"),
        "{err}"
    );
    before.assert_intact(&f);
    let objects_before = store_state(&f.store()).len();
    assert_eq!(
        objects_before,
        before.store.len(),
        "no object entered the store"
    );
    let right = format!(
        "blake3:{}",
        blake3::hash(&std::fs::read(f.path("p.zip")).unwrap()).to_hex()
    );
    f.realise_ok(&good_site(
        &f,
        &m,
        &[("local_p", Src::zip("../p.zip").hash(&right))],
    ));
}

#[test]
fn missing_and_too_old_dependencies() {
    let (f, m, before) = realised();
    f.write(
        "src/mod_a/version.php",
        plugin_php(
            "mod_a",
            2024100100,
            "2024100700",
            "$plugin->dependencies = ['local_b' => 2024090100, 'mod_quiz' => ANY_VERSION];",
        ),
    );
    let err = f.realise_err(
        &good_site(&f, &m, &[("mod_a", Src::path("../src/mod_a"))]),
        4,
    );
    assert!(err.contains("mod_a [missing dependency]"), "{err}");
    assert!(
        err.contains("mod_a 2024100100 (../src/mod_a) requires local_b ≥ 2024090100"),
        "{err}"
    );
    assert!(
        err.contains("local_b is not in the plugins directory"),
        "{err}"
    );
    assert!(err.contains("add \"local_b\""), "{err}");
    before.assert_intact(&f);

    f.write(
        "src/local_b/version.php",
        plugin_php("local_b", 2024010100, "2024042200", ""),
    );
    let err = f.realise_err(
        &good_site(
            &f,
            &m,
            &[
                ("mod_a", Src::path("../src/mod_a")),
                ("local_b", Src::path("../src/local_b")),
            ],
        ),
        4,
    );
    assert!(
        err.contains("mod_a [dependency too old]")
            && err.contains("the site has local_b 2024010100"),
        "{err}"
    );
    before.assert_intact(&f);

    f.write(
        "src/local_b/version.php",
        plugin_php("local_b", 2024090100, "2024042200", ""),
    );
    f.realise_ok(&good_site(
        &f,
        &m,
        &[
            ("mod_a", Src::path("../src/mod_a")),
            ("local_b", Src::path("../src/local_b")),
        ],
    ));
}

#[test]
fn requires_incompatible_and_supported() {
    let (f, m, before) = realised();
    f.write(
        "src/local_r/version.php",
        plugin_php("local_r", 2025050100, "2025041400", ""),
    );
    let err = f.realise_err(
        &good_site(&f, &m, &[("local_r", Src::path("../src/local_r"))]),
        4,
    );
    assert!(
        err.contains("local_r [requires]") && err.contains("requires Moodle build 2025041400"),
        "{err}"
    );
    before.assert_intact(&f);

    f.write(
        "src/local_i/version.php",
        plugin_php(
            "local_i",
            2024010100,
            "2023100900",
            "$plugin->incompatible = 405;",
        ),
    );
    let err = f.realise_err(
        &good_site(&f, &m, &[("local_i", Src::path("../src/local_i"))]),
        4,
    );
    assert!(
        err.contains("local_i [incompatible]") && err.contains("branch 405"),
        "{err}"
    );
    before.assert_intact(&f);

    // Outside `supported` Moodle only warns; so does mcb.
    f.write(
        "src/local_w/version.php",
        plugin_php(
            "local_w",
            2024010100,
            "2023100900",
            "$plugin->supported = [401, 404];",
        ),
    );
    let out = f
        .mcb()
        .arg("realise")
        .arg(good_site(
            &f,
            &m,
            &[("local_w", Src::path("../src/local_w"))],
        ))
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: local_w") && stderr.contains("supports Moodle 4.1 to 4.4"),
        "{stderr}"
    );
}

#[test]
fn git_plugin_with_no_compatible_version_explains_why() {
    let (f, m, before) = realised();
    let p = plugin_repo(
        f.path("mod_n"),
        &[
            (
                "v1.0",
                plugin_php(
                    "mod_n",
                    2024010100,
                    "2023100900",
                    "$plugin->incompatible = 405;",
                ),
            ),
            ("v2.0", plugin_php("mod_n", 2025050100, "2025041400", "")),
        ],
    );
    let err = f.realise_err(&good_site(&f, &m, &[("mod_n", Src::git(p.url()))]), 4);
    assert!(err.contains("mod_n [no compatible version]"), "{err}");
    assert!(
        err.contains("mod_n 2025050100 (v2.0) requires Moodle build 2025041400"),
        "{err}"
    );
    assert!(err.contains("incompatible with Moodle branch 405"), "{err}");
    assert!(
        err.contains("(branch main) requires Moodle build"),
        "the default branch was tried too: {err}"
    );
    before.assert_intact(&f);

    // A pin that does not exist.
    let err = f.realise_err(
        &good_site(&f, &m, &[("mod_n", Src::git(p.url()).pin("2020010100"))]),
        4,
    );
    assert!(
        err.contains("mod_n [pinned version]") && err.contains("2020010100"),
        "{err}"
    );
}

#[test]
fn component_mismatch_core_plugins_unknown_types_and_path_clashes() {
    let (f, m, before) = realised();
    f.write(
        "src/wrong/version.php",
        plugin_php("local_other", 2024100100, "2024100700", ""),
    );
    let err = f.realise_err(
        &good_site(&f, &m, &[("local_mine", Src::path("../src/wrong"))]),
        4,
    );
    assert!(
        err.contains("local_mine [component name]") && err.contains("'local_other'"),
        "{err}"
    );
    before.assert_intact(&f);

    f.write(
        "src/block_html/version.php",
        plugin_php("block_html", 2024100100, "2024100700", ""),
    );
    let err = f.realise_err(
        &good_site(&f, &m, &[("block_html", Src::path("../src/block_html"))]),
        4,
    );
    assert!(err.contains("block_html [ships with core]"), "{err}");
    before.assert_intact(&f);

    f.write(
        "src/foo_bar/version.php",
        plugin_php("foo_bar", 2024100100, "2024100700", ""),
    );
    let err = f.realise_err(
        &good_site(&f, &m, &[("foo_bar", Src::path("../src/foo_bar"))]),
        4,
    );
    assert!(
        err.contains("foo_bar [plugin type]") && err.contains("'foo'"),
        "{err}"
    );
    before.assert_intact(&f);

    // Two subplugin types of one plugin in one directory make pa_y and pb_y collide.
    f.write(
        "src/mod_p/version.php",
        plugin_php("mod_p", 2024100100, "2024100700", ""),
    );
    f.write(
        "src/mod_p/db/subplugins.json",
        r#"{"subplugintypes": {"pa": "sub", "pb": "sub"}}"#,
    );
    f.write(
        "src/pa_y/version.php",
        plugin_php("pa_y", 2024100100, "2024100700", ""),
    );
    f.write(
        "src/pb_y/version.php",
        plugin_php("pb_y", 2024100100, "2024100700", ""),
    );
    let err = f.realise_err(
        &good_site(
            &f,
            &m,
            &[
                ("mod_p", Src::path("../src/mod_p")),
                ("pa_y", Src::path("../src/pa_y")),
                ("pb_y", Src::path("../src/pb_y")),
            ],
        ),
        4,
    );
    assert!(
        err.contains("[install path]") && err.contains("both install to mod/p/sub/y"),
        "{err}"
    );
    before.assert_intact(&f);
}

#[test]
fn unreachable_git_url_names_the_component() {
    let (f, m, before) = realised();
    let url = format!("file://{}", f.path("no-such-repo").display());
    let err = f.realise_err(&good_site(&f, &m, &[("mod_gone", Src::git(&url))]), 5);
    assert!(err.contains("mod_gone: cannot fetch"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    before.assert_intact(&f);

    // --json gives the error as an object too.
    let out = f
        .mcb()
        .args(["realise", "--json"])
        .arg(good_site(&f, &m, &[("mod_gone", Src::git(&url))]))
        .output()
        .unwrap();
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["error"]["kind"], "source");
    assert_eq!(j["error"]["exit_code"], 5);
}

#[test]
fn a_dependency_cycle_is_reported_whole() {
    let (f, m, _) = realised();
    f.write(
        "src/local_a/version.php",
        plugin_php(
            "local_a",
            2024100100,
            "2024100700",
            "$plugin->dependencies = ['local_b' => ANY_VERSION];",
        ),
    );
    f.write(
        "src/local_b/version.php",
        plugin_php(
            "local_b",
            2024100100,
            "2024100700",
            "$plugin->dependencies = array('local_a' => ANY_VERSION);",
        ),
    );
    let out = f
        .mcb()
        .args(["realise", "--json"])
        .arg(good_site(
            &f,
            &m,
            &[
                ("local_a", Src::path("../src/local_a")),
                ("local_b", Src::path("../src/local_b")),
            ],
        ))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems = j["error"]["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0]["rule"], "dependency cycle");
    assert!(
        problems[0]["facts"][0]
            .as_str()
            .unwrap()
            .contains("local_a → local_b → local_a")
    );
}
