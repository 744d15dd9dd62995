//! Plugins from the plugins directory, served on loopback: selection, downloads checked
//! against md5, caching with ETags, retries, offline use, dependencies and `check`/`info`.

use crate::support::directory::{Published, publish};
use crate::support::http::{Response, Server};
use crate::support::*;

fn site(
    f: &Fixture,
    m: &GitRepo,
    spec: &str,
    directory: &str,
    plugins: &[(&str, Src)],
) -> std::path::PathBuf {
    f.site(
        &Site::new("dir")
            .core(m.url(), spec)
            .plugins(plugins)
            .directory(directory),
    )
}

fn zip_requests(server: &Server) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/download/"))
        .count()
}

#[test]
fn newest_compatible_stable_version_is_chosen() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let s = Server::start();
    let list = publish(
        &s,
        &s,
        &[
            Published::new("mod_att", 2024050100, "2024042200", &["4.4"]),
            Published::new("mod_att", 2024100800, "2024100700", &["4.4", "4.5"]),
            // Needs 4.5.10: excluded on 4.5.1.
            Published::new("mod_att", 2024120100, "2024100710", &["4.5"]),
            // A beta is newer still: stable is preferred.
            Published::new("mod_att", 2024121500, "2024100700", &["4.5"]).maturity(100),
            // Only for the next Moodle.
            Published::new("mod_att", 2025041500, "2025041400", &["5.0"]),
        ],
    );
    let j = f.realise_ok(&site(&f, &m, "4.5.1", &list, &[("mod_att", Src::index())]));
    assert_eq!(j["plugins"]["mod_att"]["version"], "2024100800");
    assert_eq!(j["plugins"]["mod_att"]["install_path"], "mod/att");
    assert!(f.path("site/result/mod/att/lib.php").is_file());
    let lock = std::fs::read_to_string(f.path("site/site.lock")).unwrap();
    assert!(
        lock.contains("Directory(") && lock.contains("md5:") && lock.contains("/download/10001/"),
        "{lock}"
    );

    // On 4.5.10 the newer stable one installs.
    std::fs::remove_file(f.path("site/site.lock")).unwrap();
    let j = f.realise_ok(&site(&f, &m, "4.5", &list, &[("mod_att", Src::index())]));
    assert_eq!(j["plugins"]["mod_att"]["version"], "2024120100");

    // A pin that fits is taken, maturity notwithstanding.
    let j = f.realise_ok(&site(
        &f,
        &m,
        "4.5",
        &list,
        &[("mod_att", Src::index().pin("2024121500"))],
    ));
    assert_eq!(j["plugins"]["mod_att"]["version"], "2024121500");
}

#[test]
fn a_pinned_version_that_does_not_fit_says_why() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let s = Server::start();
    let list = publish(
        &s,
        &s,
        &[
            Published::new("block_b", 2024100800, "2024100700", &["4.5"]),
            Published::new("block_b", 2025041500, "2025041400", &["5.0"]),
            Published::new("block_b", 2024100900, "2024100710", &["4.5"]),
        ],
    );
    let err = f.realise_err(
        &site(
            &f,
            &m,
            "4.5",
            &list,
            &[("block_b", Src::index().pin("2025041500"))],
        ),
        4,
    );
    assert!(
        err.contains("block_b [pinned version]") && err.contains("supports Moodle 5.0, not 4.5"),
        "{err}"
    );
    let err = f.realise_err(
        &site(
            &f,
            &m,
            "4.5.1",
            &list,
            &[("block_b", Src::index().pin("2024100900"))],
        ),
        4,
    );
    assert!(err.contains("requires Moodle build 2024100710"), "{err}");
    let err = f.realise_err(
        &site(
            &f,
            &m,
            "4.5",
            &list,
            &[("block_b", Src::index().pin("2020010100"))],
        ),
        4,
    );
    assert!(
        err.contains("which none of the 3 available versions has")
            && err.contains("mcb info block_b"),
        "{err}"
    );
    let err = f.realise_err(
        &site(&f, &m, "4.5", &list, &[("block_none", Src::index())]),
        4,
    );
    assert!(
        err.contains("block_none is not in the plugins directory"),
        "{err}"
    );
}

#[test]
fn an_md5_mismatch_stores_nothing() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let s = Server::start();
    let list = publish(
        &s,
        &s,
        &[Published::new(
            "local_m",
            2024100800,
            "2024100700",
            &["4.5"],
        )],
    );
    // The server now sends other bytes than the list's md5 describes.
    s.set(
        "/download/10000/local_m_2024100800.zip",
        Response::ok(Published::new("local_m", 2024100899, "2024100700", &["4.5"]).zip()),
    );
    let err = f.realise_err(&site(&f, &m, "4.5", &list, &[("local_m", Src::index())]), 6);
    assert!(
        err.contains("local_m") && err.contains("md5") && err.contains("nothing entered the store"),
        "{err}"
    );
    let objects: Vec<String> = walkdir::WalkDir::new(f.store().join("objects"))
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into_owned())
        .collect();
    assert!(
        !objects.iter().any(|o| o.contains("local_m")),
        "a plugin file entered the store"
    );
}

#[test]
fn list_errors_are_clear() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let s = Server::start();
    let err = f.realise_err(
        &site(
            &f,
            &m,
            "4.5",
            &s.url("/missing.php"),
            &[("mod_x", Src::index())],
        ),
        5,
    );
    assert!(err.contains("mod_x") && err.contains("HTTP 404"), "{err}");
    s.set("/broken.php", Response::ok("<html>maintenance</html>"));
    let err = f.realise_err(
        &site(
            &f,
            &m,
            "4.5",
            &s.url("/broken.php"),
            &[("mod_x", Src::index())],
        ),
        5,
    );
    assert!(err.contains("not a plugin list"), "{err}");
    s.set("/down.php", Response::status(503));
    let err = f.realise_err(
        &site(
            &f,
            &m,
            "4.5",
            &s.url("/down.php"),
            &[("mod_x", Src::index())],
        ),
        5,
    );
    assert!(err.contains("HTTP 503 (after 4 attempts)"), "{err}");
}

#[test]
fn too_many_requests_is_retried() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let s = Server::start();
    let list = publish(
        &s,
        &s,
        &[Published::new("mod_r", 2024100800, "2024100700", &["4.5"])],
    );
    let body = s.body("/api/1.3/pluglist.php");
    s.script(
        "/api/1.3/pluglist.php",
        vec![
            Response::status(429).header("Retry-After", "1"),
            Response::ok(body),
        ],
    );
    let started = std::time::Instant::now();
    let j = f.realise_ok(&site(&f, &m, "4.5", &list, &[("mod_r", Src::index())]));
    assert_eq!(j["plugins"]["mod_r"]["version"], "2024100800");
    assert_eq!(s.requests_to("/api/1.3/pluglist.php").len(), 2);
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "Retry-After was honoured"
    );
}

#[test]
fn the_list_is_cached_with_its_etag_and_zips_are_not_downloaded_twice() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let s = Server::start();
    let list = publish(
        &s,
        &s,
        &[Published::new("mod_e", 2024100800, "2024100700", &["4.5"])],
    );
    let site = site(&f, &m, "4.5", &list, &[("mod_e", Src::index())]);
    f.realise_ok(&site);
    assert_eq!(s.requests_to("/api/1.3/pluglist.php").len(), 1);
    assert_eq!(zip_requests(&s), 1);

    // Fresh cache: no request at all.
    std::fs::remove_file(f.path("site/site.lock")).unwrap();
    f.realise_ok(&site);
    assert_eq!(
        s.requests_to("/api/1.3/pluglist.php").len(),
        1,
        "a recent list is reused"
    );
    assert_eq!(
        zip_requests(&s),
        1,
        "a zip already in the store is not downloaded again"
    );

    // --refresh asks conditionally; the server answers 304; nothing is downloaded.
    std::fs::remove_file(f.path("site/site.lock")).unwrap();
    let out = f
        .mcb()
        .args(["realise", "--refresh"])
        .arg(&site)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let asks = s.requests_to("/api/1.3/pluglist.php");
    assert_eq!(asks.len(), 2);
    assert!(
        asks[1].headers.contains_key("if-none-match"),
        "conditional request"
    );
    assert_eq!(zip_requests(&s), 1);

    // Offline with the cache works; offline without it fails clearly.
    let out = f
        .mcb()
        .args(["info", "--offline", "mod_e", "--site"])
        .arg(&site)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("2024100800"));
    let g = Fixture::new();
    let out = g
        .mcb()
        .args(["info", "--offline", "mod_e", "--site"])
        .arg(&site)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("offline, and it is not in the store"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        s.requests_to("/api/1.3/pluglist.php").len(),
        2,
        "offline never asks"
    );
}

#[test]
fn the_token_goes_to_the_directory_host_only() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let api = Server::start();
    let files = Server::start();
    let list = publish(
        &api,
        &files,
        &[Published::new("mod_t", 2024100800, "2024100700", &["4.5"])],
    );
    let out = f
        .mcb()
        .env("MCB_MARKETPLACE_TOKEN", "s3cret")
        .arg("realise")
        .arg(site(&f, &m, "4.5", &list, &[("mod_t", Src::index())]))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        api.requests()[0]
            .headers
            .get("authorization")
            .map(String::as_str),
        Some("Bearer s3cret")
    );
    let downloads = files.requests();
    assert_eq!(downloads.len(), 1);
    assert!(
        !downloads[0].headers.contains_key("authorization"),
        "token leaked to the download host"
    );
}

#[test]
fn mcb_directory_overrides_the_site_file() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let s = Server::start();
    let list = publish(
        &s,
        &s,
        &[Published::new("mod_o", 2024100800, "2024100700", &["4.5"])],
    );
    let site = site(
        &f,
        &m,
        "4.5",
        "http://127.0.0.1:1/nothing-listens-here",
        &[("mod_o", Src::index())],
    );
    let out = f
        .mcb()
        .env("MCB_DIRECTORY", &list)
        .arg("realise")
        .arg(&site)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A local mirror file in the same format serves as an index too.
    let mirror = f.write("mirror/pluglist.json", s.body("/api/1.3/pluglist.php"));
    std::fs::remove_file(f.path("site/site.lock")).unwrap();
    let out = f
        .mcb()
        .env("MCB_DIRECTORY", &mirror)
        .args(["realise", "--json"])
        .arg(&site)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["plugins"]["mod_o"]["version"], "2024100800");
}

#[test]
fn dependencies_are_added_automatically() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let s = Server::start();
    let list = publish(
        &s,
        &s,
        &[
            Published::new("mod_main", 2024100800, "2024100700", &["4.5"]).extra(
                "$plugin->dependencies = ['local_lib' => 2024090100, 'mod_quiz' => ANY_VERSION];",
            ),
            Published::new("local_lib", 2024080100, "2024042200", &["4.4", "4.5"]),
            Published::new("local_lib", 2024090500, "2024042200", &["4.4", "4.5"])
                .extra("$plugin->dependencies = ['filter_deep' => ANY_VERSION];"),
            Published::new(
                "filter_deep",
                2024010100,
                "2023100900",
                &["4.3", "4.4", "4.5"],
            ),
        ],
    );
    let j = f.realise_ok(&site(&f, &m, "4.5", &list, &[("mod_main", Src::index())]));
    assert_eq!(j["plugins"]["local_lib"]["auto"], true);
    assert_eq!(j["plugins"]["local_lib"]["version"], "2024090500");
    assert_eq!(j["plugins"]["filter_deep"]["auto"], true, "transitive");
    assert_eq!(j["plugins"]["mod_main"]["auto"], false);
    assert!(
        j["plugins"].get("mod_quiz").is_none(),
        "core ships mod_quiz"
    );
    assert!(f.path("site/result/filter/deep/version.php").is_file());
    let lock = std::fs::read_to_string(f.path("site/site.lock")).unwrap();
    assert!(lock.contains("auto: true"), "{lock}");
    // The lock with its automatic entries is reused as it is.
    let again = f.realise_ok(&site(&f, &m, "4.5", &list, &[("mod_main", Src::index())]));
    assert_eq!(again["changed"], false);
}

#[test]
fn an_unsatisfiable_dependency_is_explained() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let s = Server::start();
    let list = publish(
        &s,
        &s,
        &[
            Published::new("report_embedquestion", 2025061000, "2024100700", &["4.5"])
                .extra("$plugin->dependencies = ['filter_embedquestion' => 2025050100];"),
            Published::new("filter_embedquestion", 2024100700, "2024100700", &["4.5"]),
            Published::new("filter_embedquestion", 2025050100, "2025041400", &["5.0"]),
        ],
    );
    let err = f.realise_err(
        &site(
            &f,
            &m,
            "4.5",
            &list,
            &[("report_embedquestion", Src::index())],
        ),
        4,
    );
    assert!(
        err.contains("report_embedquestion 2025061000 requires filter_embedquestion ≥ 2025050100"),
        "{err}"
    );
    assert!(
        err.contains("the newest filter_embedquestion for Moodle 4.5 is 2024100700"),
        "{err}"
    );
}

#[test]
fn a_dependency_cycle_through_the_directory_is_reported() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let s = Server::start();
    let list = publish(
        &s,
        &s,
        &[
            Published::new("local_a", 2024100800, "2024100700", &["4.5"])
                .extra("$plugin->dependencies = ['local_b' => ANY_VERSION];"),
            Published::new("local_b", 2024100800, "2024100700", &["4.5"])
                .extra("$plugin->dependencies = ['local_a' => ANY_VERSION];"),
        ],
    );
    let err = f.realise_err(&site(&f, &m, "4.5", &list, &[("local_a", Src::index())]), 4);
    assert!(
        err.contains("[dependency cycle]") && err.contains("local_a → local_b → local_a"),
        "{err}"
    );
}

#[test]
fn a_site_mixing_directory_git_and_zip_plugins() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let s = Server::start();
    let list = publish(
        &s,
        &s,
        &[Published::new("mod_d", 2024100800, "2024100700", &["4.5"])],
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
    let plugins = [
        ("mod_d", Src::index()),
        ("block_g", Src::git(g.url())),
        ("local_z", Src::zip("../z.zip")),
    ];
    let j = f.realise_ok(&site(&f, &m, "4.5", &list, &plugins));
    for c in ["mod_d", "block_g", "local_z"] {
        assert!(j["plugins"][c]["version"].is_string(), "{c}");
    }
}

#[test]
fn info_lists_versions_newest_first() {
    let f = Fixture::new();
    let s = Server::start();
    let list = publish(
        &s,
        &s,
        &[
            Published::new("tool_i", 2024050100, "2024042200", &["4.4"]),
            Published::new("tool_i", 2025041500, "2025041400", &["5.0"]).maturity(100),
            Published::new("tool_i", 2024100800, "2024100700", &["4.4", "4.5"]),
        ],
    );
    let out = f
        .mcb()
        .env("MCB_DIRECTORY", &list)
        .args(["info", "tool_i"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let pos = |s: &str| text.find(s).unwrap_or_else(|| panic!("{s} in {text}"));
    assert!(
        pos("2025041500") < pos("2024100800") && pos("2024100800") < pos("2024050100"),
        "{text}"
    );
    assert!(text.contains("beta") && text.contains("4.4, 4.5"), "{text}");
    let out = f
        .mcb()
        .env("MCB_DIRECTORY", &list)
        .args(["info", "tool_i", "--json"])
        .output()
        .unwrap();
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["versions"][0]["version"], "2025041500");
    assert_eq!(j["versions"][0]["maturity"], "beta");
    assert_eq!(
        j["versions"][1]["supported_moodles"],
        serde_json::json!(["4.4", "4.5"])
    );
    let out = f
        .mcb()
        .env("MCB_DIRECTORY", &list)
        .args(["info", "tool_nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
}

#[test]
fn check_names_the_plugin_that_blocks_an_upgrade() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    // A 5.0 release for the check to target.
    m.git(&["checkout", "-q", "main"]);
    write_core(&m, "", "2025041400.00", "5.0 (Build: 20250414)", "500");
    m.write(
        "lib/plugins.json",
        r#"{"standard": {"block": ["html"], "mod": ["quiz"], "tool": ["merged"]}}"#,
    );
    m.commit("Moodle 5.0");
    m.tag("v5.0.0");
    let s = Server::start();
    let list = publish(
        &s,
        &s,
        &[
            Published::new("mod_ok", 2024100800, "2024100700", &["4.5"]),
            Published::new("mod_ok", 2025041600, "2025041400", &["5.0"]),
            Published::new("block_old", 2024100800, "2024100700", &["4.4", "4.5"]),
            Published::new("tool_merged", 2024100800, "2024100700", &["4.5"]),
        ],
    );
    let site = site(
        &f,
        &m,
        "4.5",
        &list,
        &[
            ("mod_ok", Src::index()),
            ("block_old", Src::index()),
            ("tool_merged", Src::index()),
        ],
    );
    f.realise_ok(&site);
    let out = f
        .mcb()
        .args(["check", "--moodle", "5.0"])
        .arg(&site)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    println!("$ mcb check --moodle 5.0 site.ron\n{text}");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("mod_ok") && text.contains("2024100800 -> 2025041600"),
        "{text}"
    );
    assert!(text.contains("BLOCKS   block_old"), "{text}");
    assert!(
        text.contains("no version of block_old that its source offers supports Moodle 5.0"),
        "{text}"
    );
    assert!(
        text.contains("last supported release: Moodle 4.5"),
        "{text}"
    );
    assert!(text.contains("IN CORE  tool_merged"), "{text}");
    let out = f
        .mcb()
        .args(["check", "--json", "--moodle", "5.0"])
        .arg(&site)
        .output()
        .unwrap();
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["blocked"], true);
    assert_eq!(j["core_release"], "5.0 (Build: 20250414)");
    let status: Vec<(&str, &str)> = j["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["component"].as_str().unwrap(),
                p["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        status.contains(&("block_old", "blocked"))
            && status.contains(&("mod_ok", "fits"))
            && status.contains(&("tool_merged", "in_core"))
    );

    // Without the blockers, 5.0 is reachable: exit 0.
    let ok_site = Site::new("ok")
        .core(m.url(), "4.5")
        .plugin("mod_ok", Src::index())
        .directory(list)
        .write(&f, "ok/site.ron");
    let out = f
        .mcb()
        .args(["check", "--moodle", "5.0"])
        .arg(&ok_site)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("every plugin has a version for Moodle 5.0")
    );
}

#[test]
fn an_unreachable_directory_names_the_plugin_that_needs_it() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    f.write(
        "src/mod_a/version.php",
        plugin_php(
            "mod_a",
            2024100100,
            "2024042200",
            "$plugin->dependencies = ['local_dep' => ANY_VERSION];",
        ),
    );
    let plugins = [("mod_a", Src::path("../src/mod_a"))];
    let s = Server::start();
    let list = publish(
        &s,
        &s,
        &[Published::new(
            "local_dep",
            2024100100,
            "2024042200",
            &["4.5"],
        )],
    );
    let dead = format!(
        "http://{}/api/1.3/pluglist.php",
        crate::support::http::closed_port()
    );

    let err = f.realise_err(&site(&f, &m, "4.5", &dead, &plugins), 5);
    assert!(
        err.contains(
            "mod_a 2024100100 (../src/mod_a) requires local_dep, which the site file does not list"
        ),
        "names the plugin that needs the directory: {err}"
    );
    assert!(err.contains("cannot read the plugin index"), "{err}");
    assert!(
        !err.contains("offline"),
        "no cached list, so working offline cannot help: {err}"
    );

    // Once the list is cached, the hint offers it.
    f.realise_ok(&site(&f, &m, "4.5", &list, &plugins));
    drop(s);
    std::fs::remove_file(f.path("site/site.lock")).unwrap();
    let err = f.realise_err_with(&site(&f, &m, "4.5", &list, &plugins), &["--refresh"], 5);
    assert!(err.contains("work offline with the copy"), "{err}");
    let out = f
        .mcb()
        .args(["realise", "--offline", "--json"])
        .arg(f.path("site/site.ron"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn several_indexes_are_asked_in_order_and_the_lock_says_which_served() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let (mirror, public) = (Server::start(), Server::start());
    publish(
        &mirror,
        &mirror,
        &[Published::new("mod_a", 2024010100, "2024100700", &["4.5"])],
    );
    // The mirror is a local copy of its list; it carries only mod_a.
    let mirror_file = f.write("mirror.json", mirror.body("/api/1.3/pluglist.php"));
    let public_list = publish(
        &public,
        &public,
        &[
            Published::new("mod_a", 2024020100, "2024100700", &["4.5"]),
            Published::new("mod_b", 2024020100, "2024100700", &["4.5"]),
        ],
    );
    let mirror_at = mirror_file.display().to_string();
    let site = f.site(
        &Site::new("many")
            .core(m.url(), "4.5")
            .plugin("mod_a", Src::index())
            .plugin("mod_b", Src::index())
            .directories(&[&mirror_at, &public_list]),
    );
    let j = f.realise_ok(&site);
    assert_eq!(
        j["plugins"]["mod_a"]["version"], "2024010100",
        "the mirror first"
    );
    assert_eq!(
        j["plugins"]["mod_b"]["version"], "2024020100",
        "then the public list"
    );
    let lock = std::fs::read_to_string(f.path("site/site.lock")).unwrap();
    assert!(lock.contains(&format!("index: \"{mirror_at}\"")), "{lock}");
    assert!(
        lock.contains(&format!("index: \"{public_list}\"")),
        "{lock}"
    );

    // mcb info shows what each index has.
    let out = f
        .mcb()
        .args(["info", "--json", "--site"])
        .arg(&site)
        .arg("mod_a")
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["indexes"].as_array().unwrap().len(), 2, "{info}");
    assert_eq!(info["indexes"][1]["versions"][0]["version"], "2024020100");

    // A first index that cannot be read is passed over, and said.
    let gone = format!(
        "http://{}/api/1.3/pluglist.php",
        crate::support::http::closed_port()
    );
    f.site(
        &Site::new("many")
            .core(m.url(), "4.5")
            .plugin("mod_a", Src::index())
            .directories(&[&gone, &public_list]),
    );
    std::fs::remove_file(f.path("site/site.lock")).unwrap();
    let out = f
        .mcb()
        .args(["realise", "--json", "--allow-downgrade"])
        .arg(&site)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["plugins"]["mod_a"]["version"], "2024020100");
    assert!(err.contains("cannot read the plugin index"), "{err}");
    assert!(
        err.contains("looked up in the other plugin indexes"),
        "{err}"
    );
}

#[test]
fn min_age_keeps_a_fresh_release_out_until_it_has_aged() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let s = Server::start();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let list = publish(
        &s,
        &s,
        &[
            Published::new("mod_c", 2024100800, "2024100700", &["4.5"]),
            Published::new("mod_c", 2024110100, "2024100700", &["4.5"]).created(now - 2 * 86_400),
        ],
    );
    let write = |site_age: &str, plugin_age: &str| {
        f.write(
            "site/site.ron",
            format!(
                "Site(\n    name: \"cool\",\n    moodle: (version: \"4.5\", git: \"{}\"),\n    {site_age}\n    plugins: {{\n        \"mod_c\": ({plugin_age}),\n    }},\n    directory: \"{list}\",\n)\n",
                m.url()
            ),
        )
    };
    let site = write("min_age: \"7d\",", "");
    let out = f
        .mcb()
        .args(["realise", "--json", "-v"])
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
        j["plugins"]["mod_c"]["version"], "2024100800",
        "the 2-day-old release waits"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("was released 2 days ago; the site waits 7 days (min_age)"),
        "{err}"
    );
    // update keeps it out too; a plugin may say otherwise, and then update takes it.
    let update = || {
        let out = f
            .mcb()
            .args(["update", "--json"])
            .arg(&site)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    assert_eq!(update()["plugins"]["mod_c"]["version"], "2024100800");
    write("min_age: \"7d\",", "min_age: \"1d\"");
    assert_eq!(update()["plugins"]["mod_c"]["version"], "2024110100");
    // A bad duration is the site file's mistake.
    write("min_age: \"soon\",", "");
    let err = f.realise_err(&site, 3);
    assert!(err.contains("is not a duration"), "{err}");
}

/// Dependency confusion: a plugin the site takes from a private mirror is bound to it. A
/// public index the site asks later starts offering a higher version of a same-named plugin:
/// nothing changes; a new version on the mirror is taken; the site file moves the plugin to
/// another index only by naming it (`index:`), which plan shows.
#[test]
fn a_public_index_never_shadows_a_plugin_bound_to_its_mirror() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let (mirror, public) = (Server::start(), Server::start());
    let mirror_list = |versions: &[u64]| {
        let published: Vec<Published> = versions
            .iter()
            .map(|v| Published::new("local_inhouse", *v, "2024100700", &["4.5"]))
            .collect();
        publish(&mirror, &mirror, &published);
        f.write("mirror.json", mirror.body("/api/1.3/pluglist.php"));
    };
    mirror_list(&[2024010100]);
    let mirror_at = f.path("mirror.json").display().to_string();
    let site = f.site(
        &Site::new("bound")
            .core(m.url(), "4.5")
            .plugin("local_inhouse", Src::index())
            .directories(&[&mirror_at]),
    );
    let j = f.realise_ok(&site);
    assert_eq!(j["plugins"]["local_inhouse"]["version"], "2024010100");

    // The site starts asking a public index too, first, which now lists a same-named plugin
    // with a higher version (and its own zip).
    let public_list = publish(
        &public,
        &public,
        &[Published::new(
            "local_inhouse",
            2099010100,
            "2024100700",
            &["4.5"],
        )],
    );
    let text = std::fs::read_to_string(&site).unwrap();
    let text = text.replace(
        &format!("directories: [{mirror_at:?}]"),
        &format!("directories: [{public_list:?}, {mirror_at:?}]"),
    );
    assert!(text.contains(&public_list), "{text}");
    std::fs::write(&site, &text).unwrap();
    let out = f.run(&["update", "--json", s(&site)]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert_eq!(
        json_of(&out)["plugins"]["local_inhouse"]["version"],
        "2024010100",
        "the public index changes nothing"
    );
    let out = f.run(&["outdated", s(&site)]);
    assert_eq!(code(&out), 0, "{}", said(&out));

    // A new version on the mirror is taken.
    mirror_list(&[2024010100, 2024020100]);
    let out = f.run(&["update", "--json", s(&site)]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert_eq!(
        json_of(&out)["plugins"]["local_inhouse"]["version"],
        "2024020100"
    );
    let lock = std::fs::read_to_string(f.path("site/site.lock")).unwrap();
    assert!(lock.contains(&format!("index: \"{mirror_at}\"")), "{lock}");

    // Only the site file moves it: `index:` by a name of `indexes`.
    let text = std::fs::read_to_string(&site).unwrap();
    let text = text
        .replace(
            &format!("directories: [{public_list:?}, {mirror_at:?}]"),
            &format!("directories: [{mirror_at:?}], indexes: {{\"public\": {public_list:?}}}"),
        )
        .replace(
            "\"local_inhouse\": ()",
            "\"local_inhouse\": (index: \"public\")",
        );
    std::fs::write(&site, &text).unwrap();
    let out = f.run(&["plan", s(&site)]);
    assert_eq!(code(&out), 2, "{}", said(&out));
    let moved = format!("~ local_inhouse source index {mirror_at} → index {public_list}");
    assert!(said(&out).contains(&moved), "{}", said(&out));
    // An automatic round does not move a plugin's source unless told.
    let head = branch_head(&f.store(), "bound");
    let out = f.run(&["reconcile", s(&site)]);
    assert_eq!(code(&out), 2, "{}", said(&out));
    assert!(
        said(&out).contains("--allow-source-change"),
        "{}",
        said(&out)
    );
    assert_eq!(branch_head(&f.store(), "bound"), head);
    crate::snapshots::settings(&f)
        .bind(|| insta::assert_snapshot!("reconcile-source-change", crate::snapshots::shown(&out)));
    let out = f.run(&["reconcile", "--json", "--allow-source-change", s(&site)]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert_eq!(
        json_of(&out)["plugins"]["local_inhouse"]["version"],
        "2099010100"
    );

    // An index that is neither named nor asked is refused, with where.
    std::fs::write(
        &site,
        text.replace("(index: \"public\")", "(index: \"nope\")"),
    )
    .unwrap();
    let out = f.run(&["plan", s(&site)]);
    assert_eq!(code(&out), 3, "{}", said(&out));
    assert!(
        said(&out).contains("index 'nope' is neither a name in `indexes`"),
        "{}",
        said(&out)
    );
}
