//! Right answers on real upstream patterns: tags ordered by the plugin version they hold,
//! stable before release candidates, release-name pins, a solver that goes back to an
//! older version when the newest needs what this Moodle cannot have, downgrades refused,
//! `check` that sees dependencies and keeps going past a source it cannot read.

use crate::support::directory::{Published, publish};
use crate::support::http::Server;
use crate::support::*;

/// A plugin's version.php with its own release name and maturity.
fn php(component: &str, version: u64, release: &str, maturity: &str) -> String {
    plugin_php(
        component,
        version,
        "2024042200",
        &format!("$plugin->release = '{release}';\n$plugin->maturity = {maturity};"),
    )
}

/// The real pattern of a plugin's tags: a release candidate tagged before its release, a
/// later tag without the `v` prefix, and `v1.9`, which sorts after `v1.10` as text.
fn mixed_tags(f: &Fixture) -> GitRepo {
    plugin_repo(
        f.path("mod_m"),
        &[
            ("v1.9", php("mod_m", 2023050100, "1.9", "MATURITY_STABLE")),
            ("v1.10", php("mod_m", 2023090100, "1.10", "MATURITY_STABLE")),
            (
                "v2.0-rc1",
                php("mod_m", 2024052000, "2.0-rc1", "MATURITY_RC"),
            ),
            ("v2.0", php("mod_m", 2024060100, "2.0", "MATURITY_STABLE")),
            ("2.1", php("mod_m", 2024090100, "2.1", "MATURITY_STABLE")),
            (
                "v2.2-rc1",
                php("mod_m", 2024120100, "2.2-rc1", "MATURITY_RC"),
            ),
        ],
    )
}

#[test]
fn tags_are_ordered_by_the_version_they_hold_and_stable_comes_first() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let p = mixed_tags(&f);
    let site = f.site(
        &Site::new("s")
            .core(m.url(), "4.5")
            .plugin("mod_m", Src::git(p.url())),
    );
    let out = f
        .mcb()
        .args(["realise", "-v", "--json"])
        .arg(&site)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // 2.1 holds the newest stable version, though `v2.2-rc1` is newer and `v2.0` sorts
    // after `2.1` as text.
    assert_eq!(j["plugins"]["mod_m"]["version"], "2024090100");
    assert!(
        j["plugins"]["mod_m"]["source"]
            .as_str()
            .unwrap()
            .contains(" 2.1 ")
    );
    assert!(
        err.contains("mod_m 2024090100 (2.1): the newest version that installs on Moodle"),
        "{err}"
    );
    assert!(
        err.contains("not mod_m 2024120100 (v2.2-rc1): MATURITY_RC, below the maturity the site takes (stable); maturity: \"rc\" takes it"),
        "-v says which tags were passed over and why: {err}"
    );

    // Opting in takes the release candidate.
    std::fs::remove_file(f.path("site/site.lock")).unwrap();
    let site = f.site(
        &Site::new("s")
            .core(m.url(), "4.5")
            .plugin("mod_m", Src::git(p.url()).with("maturity", "rc")),
    );
    assert_eq!(
        f.realise_ok(&site)["plugins"]["mod_m"]["version"],
        "2024120100"
    );

    // A release name pins the version administrators see.
    let site = f.site(
        &Site::new("s")
            .core(m.url(), "4.5")
            .plugin("mod_m", Src::git(p.url()).pin("2.0")),
    );
    let j = f.realise_ok_with(&site, &["--allow-downgrade"]);
    assert_eq!(j["plugins"]["mod_m"]["version"], "2024060100");
    assert_eq!(j["plugins"]["mod_m"]["release"], "2.0");
}

#[test]
fn a_release_name_that_names_two_versions_is_refused() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let p = plugin_repo(
        f.path("mod_m"),
        &[
            ("v2.0", php("mod_m", 2024060100, "2.0", "MATURITY_STABLE")),
            (
                "v2.0-fix",
                php("mod_m", 2024060200, "2.0", "MATURITY_STABLE"),
            ),
        ],
    );
    let site = f.site(
        &Site::new("s")
            .core(m.url(), "4.5")
            .plugin("mod_m", Src::git(p.url()).pin("2.0")),
    );
    let err = f.realise_err(&site, 4);
    assert!(err.contains("mod_m [pinned version]"), "{err}");
    assert!(
        err.contains("the site file pins release \"2.0\", which names 2 versions"),
        "{err}"
    );
    assert!(err.contains("mod_m 2024060200 (v2.0-fix)"), "{err}");
    assert!(err.contains("mod_m 2024060100 (v2.0)"), "{err}");
    assert!(err.contains("pin the build number"), "{err}");
}

/// report_eq on git, whose v1.8 needs a filter_eq the directory has only for Moodle 5.0;
/// v1.7 works with the filter_eq there is for 4.5.
fn embedquestion(f: &Fixture, s: &Server, filters: &[Published]) -> (GitRepo, String) {
    let report = plugin_repo(
        f.path("report_eq"),
        &[
            (
                "v1.7",
                plugin_php(
                    "report_eq",
                    2024060100,
                    "2024042200",
                    "$plugin->dependencies = ['filter_eq' => 2024050100];",
                ),
            ),
            (
                "v1.8",
                plugin_php(
                    "report_eq",
                    2025010100,
                    "2024100700",
                    "$plugin->dependencies = ['filter_eq' => 2025010100];",
                ),
            ),
        ],
    );
    (report, publish(s, s, filters))
}

#[test]
fn the_solver_takes_an_older_version_when_the_newest_needs_what_this_moodle_lacks() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let s = Server::start();
    let (report, list) = embedquestion(
        &f,
        &s,
        &[
            Published::new("filter_eq", 2024060100, "2024042200", &["4.4", "4.5"]),
            Published::new("filter_eq", 2025010100, "2025041400", &["5.0"]),
        ],
    );
    let site = f.site(
        &Site::new("s")
            .core(m.url(), "4.5")
            .plugin("report_eq", Src::git(report.url()))
            .directory(&list),
    );
    let j = f.realise_ok(&site);
    assert_eq!(j["plugins"]["report_eq"]["version"], "2024060100");
    assert_eq!(j["plugins"]["filter_eq"]["version"], "2024060100");
    assert_eq!(j["plugins"]["filter_eq"]["auto"], true);
    // The directory's 5.0-only version was never downloaded: only what the solver visits.
    let zips: Vec<String> = s
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/download/"))
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(zips, ["/download/10000/filter_eq_2024060100.zip"]);
}

#[test]
fn when_no_version_fits_the_chain_of_facts_is_told() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let s = Server::start();
    let (report, list) = embedquestion(
        &f,
        &s,
        &[Published::new(
            "filter_eq",
            2024010100,
            "2023100900",
            &["4.3", "4.4", "4.5"],
        )],
    );
    let site = f.site(
        &Site::new("s")
            .core(m.url(), "4.5")
            .plugin("report_eq", Src::git(report.url()))
            .directory(&list),
    );
    let err = f.realise_err(&site, 4);
    assert!(err.contains("report_eq [dependency too old]"), "{err}");
    assert!(
        err.contains("report_eq 2025010100 (v1.8) requires filter_eq ≥ 2025010100"),
        "{err}"
    );
    assert!(
        err.contains("report_eq 2024060100 (v1.7) requires filter_eq ≥ 2024050100"),
        "{err}"
    );
    assert!(
        err.contains("the newest filter_eq for Moodle 4.5 is 2024010100"),
        "{err}"
    );
}

#[test]
fn a_downgrade_is_refused_unless_allowed_and_names_every_component() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let p = mixed_tags(&f);
    let newer = Site::new("s")
        .core(m.url(), "4.5.10")
        .plugin("mod_m", Src::git(p.url()).at("2.1"));
    f.realise_ok(&f.site(&newer));
    let branch = branch_head(&f.store(), "s");
    let lock = std::fs::read_to_string(f.path("site/site.lock")).unwrap();
    let older = Site::new("s")
        .core(m.url(), "4.5.1")
        .plugin("mod_m", Src::git(p.url()).at("v1.10"));
    let site = f.site(&older);
    let err = f.realise_err(&site, 2);
    assert!(err.contains("refusing to downgrade"), "{err}");
    assert!(
        err.contains("- moodle: 4.5.10 (2024100710) → 4.5.1 (2024100701)"),
        "{err}"
    );
    assert!(
        err.contains("- mod_m: 2.1 (2024090100) → 1.10 (2023090100)"),
        "{err}"
    );
    assert!(err.contains("--allow-downgrade"), "{err}");
    // Refused before anything moved (the site file changed, nothing else).
    assert_eq!(branch_head(&f.store(), "s"), branch);
    assert_eq!(
        std::fs::read_to_string(f.path("site/site.lock")).unwrap(),
        lock
    );
    let j = f.realise_ok_with(&site, &["--allow-downgrade"]);
    assert_eq!(j["plugins"]["mod_m"]["version"], "2023090100");
    // The branch's last generation is now the older one: going up again is no downgrade.
    f.realise_ok(&f.site(&newer));
}

#[test]
fn check_sees_dependencies_and_keeps_going_past_a_source_it_cannot_read() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let s = Server::start();
    let list = publish(
        &s,
        &s,
        &[Published::new(
            "block_ok",
            2024100100,
            "2024042200",
            &["4.4", "4.5"],
        )],
    );
    // mod_needy needs two plugins nobody lists.
    f.write(
        "src/mod_needy/version.php",
        plugin_php(
            "mod_needy",
            2024100100,
            "2024042200",
            "$plugin->dependencies = ['local_one' => ANY_VERSION, 'local_two' => 2024010100];",
        ),
    );
    // A zip on a port where nothing listens.
    let dead = format!(
        "http://{}/tool_gone.zip",
        crate::support::http::closed_port()
    );
    let site = f.site(
        &Site::new("s")
            .core(m.url(), "4.5")
            .plugin("mod_needy", Src::path("../src/mod_needy"))
            .plugin(
                "tool_gone",
                Src::zip(&dead).hash(&format!("blake3:{}", "0".repeat(64))),
            )
            .plugin("block_ok", Src::index())
            .directory(&list),
    );
    let out = f
        .mcb()
        .args(["check", "--moodle", "4.4", "--json"])
        .arg(&site)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "blocked: {stderr}");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let plugin = |c: &str| {
        j["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["component"] == c)
            .unwrap_or_else(|| panic!("{c} in {j}"))
            .clone()
    };
    assert_eq!(plugin("block_ok")["status"], "fits");
    let needy = plugin("mod_needy");
    assert_eq!(needy["status"], "blocked", "{needy}");
    let reasons = needy["reasons"].to_string();
    assert!(reasons.contains("local_one"), "{reasons}");
    assert!(
        reasons.contains("not in the plugins directory"),
        "{reasons}"
    );
    let gone = plugin("tool_gone");
    assert_eq!(gone["status"], "unknown", "{gone}");
    assert!(
        gone["reason"].as_str().unwrap().contains("127.0.0.1"),
        "{gone}"
    );
    assert_eq!(j["unknown"], true);

    // Without the blocker, the unknown plugin alone makes the answer unknown: exit 5.
    let site = f.site(
        &Site::new("s")
            .core(m.url(), "4.5")
            .plugin(
                "tool_gone",
                Src::zip(&dead).hash(&format!("blake3:{}", "0".repeat(64))),
            )
            .plugin("block_ok", Src::index())
            .directory(&list),
    );
    let out = f
        .mcb()
        .args(["check", "--moodle", "4.4"])
        .arg(&site)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "{stdout}");
    assert!(stdout.contains("UNKNOWN  tool_gone"), "{stdout}");
    assert!(stdout.contains("1 plugin could not be checked"), "{stdout}");
}

/// One site file gives one lock, however it was reached: a fresh resolution, a realise
/// that keeps every choice, and an update of one plugin all write the same bytes,
/// warnings included; and `plan` says each warning once.
#[test]
fn the_lock_is_the_same_however_it_was_reached_and_plan_warns_once() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let s = Server::start();
    // Both plugins install on 4.5 with a warning: their supported range ends at 4.4.
    let list = publish(
        &s,
        &s,
        &[
            Published::new("block_old", 2024060100, "2024042200", &["4.4", "4.5"])
                .extra("$plugin->supported = [401, 404];\n$plugin->release = '2.0';"),
        ],
    );
    let w = plugin_repo(
        f.path("mod_w"),
        &[
            (
                "v1.0",
                plugin_php(
                    "mod_w",
                    2024060100,
                    "2024042200",
                    "$plugin->supported = [401, 404];",
                ),
            ),
            (
                "v1.1",
                plugin_php(
                    "mod_w",
                    2024070100,
                    "2024042200",
                    "$plugin->supported = [401, 404];",
                ),
            ),
        ],
    );
    let site = f.site(
        &Site::new("s")
            .core(m.url(), "4.5")
            .plugin("block_old", Src::index())
            .plugin("mod_w", Src::git(w.url()))
            .directory(&list),
    );
    let lock_path = f.path("site/site.lock");
    f.realise_ok(&site);
    let fresh = std::fs::read_to_string(&lock_path).unwrap();
    assert_eq!(fresh.matches("Moodle will warn").count(), 2, "{fresh}");
    // Kept choices.
    f.realise_ok(&site);
    assert_eq!(std::fs::read_to_string(&lock_path).unwrap(), fresh);
    // One plugin updated, the other kept.
    for who in ["mod_w", "block_old"] {
        let out = f
            .mcb()
            .args(["update"])
            .arg(&site)
            .arg(who)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            std::fs::read_to_string(&lock_path).unwrap(),
            fresh,
            "after update {who}"
        );
    }
    // plan says each warning once.
    let out = f.mcb().arg("plan").arg(&site).output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for c in ["block_old", "mod_w"] {
        let lines: Vec<&str> = said
            .lines()
            .filter(|l| l.contains("Moodle will warn") && l.contains(c))
            .collect();
        assert_eq!(lines.len(), 1, "{c}: {said}");
    }
}

/// A plugin whose dependencies no source gives: `add` names every one of them and where
/// each was looked for, and leaves the site file as it was.
#[test]
fn add_names_every_missing_dependency() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let site = good_site(&f, &m, &[]);
    let before = std::fs::read_to_string(&site).unwrap();
    let emb = plugin_repo(
        f.path("mod_emb"),
        &[(
            "v1.8",
            plugin_php(
                "mod_emb",
                2025010100,
                "2024100700",
                "$plugin->dependencies = ['filter_emb' => ANY_VERSION, 'quiz_sheets' => 2024010100];",
            ),
        )],
    );
    let out = f
        .mcb()
        .args(["add", "mod_emb", "--git", &emb.url(), "--site"])
        .arg(&site)
        .output()
        .unwrap();
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    for said in [
        "requires filter_emb (any version)",
        "requires quiz_sheets ≥ 2024010100",
        "filter_emb is not in the plugins directory",
        "quiz_sheets is not in the plugins directory",
        "hint: add filter_emb and quiz_sheets to the site file",
    ] {
        assert!(err.contains(said), "{said}: {err}");
    }
    assert_eq!(std::fs::read_to_string(&site).unwrap(), before);
}

/// A newer version passed over for a dependency no source gives is said without -v: the
/// version taken, the one passed over, and the plugins it needs.
#[test]
fn a_fallback_for_a_missing_dependency_is_a_warning() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let emb = plugin_repo(
        f.path("mod_emb"),
        &[
            ("v1.7", plugin_php("mod_emb", 2022010100, "2022041900", "")),
            (
                "v1.8",
                plugin_php(
                    "mod_emb",
                    2025010100,
                    "2024100700",
                    "$plugin->dependencies = ['quiz_sheets' => ANY_VERSION];",
                ),
            ),
        ],
    );
    let site = good_site(&f, &m, &[("mod_emb", Src::git(emb.url()))]);
    let out = f.mcb().arg("realise").arg(&site).output().unwrap();
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("warning: mod_emb: mod_emb 2022010100 (v1.7) is taken, not the newer mod_emb 2025010100 (v1.8): that one requires quiz_sheets, which the site does not have"),
        "{err}"
    );
}
