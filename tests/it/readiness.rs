//! Upgrade checks whose target release is not in the site's core source: a separate core
//! source, mcb's table of releases, and the readiness matrix across releases (text, JSON,
//! and an HTML page read back in a headless browser).

use crate::snapshots::settings;
use crate::support::directory::{Published, publish};
use crate::support::http::Server;
use crate::support::*;

/// A core repository holding only Moodle 5.0.0 and 5.0.2.
fn moodle50(f: &Fixture) -> GitRepo {
    let r = GitRepo::init(f.path("moodle50"));
    for (tag, build, release) in [
        ("v5.0.0", "2025041400.00", "5.0 (Build: 20250414)"),
        ("v5.0.2", "2025041402.00", "5.0.2 (Build: 20250616)"),
    ] {
        write_core(&r, "", build, release, "500");
        r.commit(release);
        r.tag(tag);
    }
    r
}

/// A site on Moodle 4.5: mod_att from the directory (4.4 and 4.5 only), mod_y from git
/// (v1 for 4.5 only, v2 requires 5.0.2's build and stops before 5.1), block_g from git (says nothing).
fn site(f: &Fixture, server: &Server) -> std::path::PathBuf {
    let m = moodle_repo(f.path("moodle"));
    let list = publish(
        server,
        server,
        &[Published::new(
            "mod_att",
            2024100800,
            "2024100700",
            &["4.4", "4.5"],
        )],
    );
    let y = plugin_repo(
        f.path("mod_y"),
        &[
            (
                "v1",
                plugin_php(
                    "mod_y",
                    2024100100,
                    "2024100700",
                    "$plugin->incompatible = 500;",
                ),
            ),
            (
                "v2",
                plugin_php(
                    "mod_y",
                    2025060100,
                    "2025041402",
                    "$plugin->incompatible = 501;",
                ),
            ),
        ],
    );
    let g = plugin_repo(
        f.path("block_g"),
        &[("v1.0", plugin_php("block_g", 2024100100, "2024100700", ""))],
    );
    let site = f.site(
        &Site::new("ready")
            .core(m.url(), "4.5")
            .plugin("mod_att", Src::index())
            .plugin("mod_y", Src::git(y.url()))
            .plugin("block_g", Src::git(g.url()))
            .directory(list),
    );
    f.realise_ok(&site);
    site
}

fn check(f: &Fixture, args: &[&str], site: &std::path::Path) -> (i32, serde_json::Value, String) {
    let out = f
        .mcb()
        .args(["check", "--json"])
        .args(args)
        .arg(site)
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.code().unwrap(),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn status<'a>(j: &'a serde_json::Value, component: &str) -> &'a serde_json::Value {
    j["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["component"] == component)
        .unwrap()
}

#[test]
fn a_target_the_core_source_lacks_comes_from_core_source_or_the_release_table() {
    let f = Fixture::new();
    let server = Server::start();
    let site = site(&f, &server);
    // From mcb's table: 5.0 is 5.0.0's build, which mod_y v2 does not reach.
    let (code, j, err) = check(&f, &["--moodle", "5.0"], &site);
    assert_eq!(code, 2, "{err}");
    assert_eq!(j["core_build"], "2025041400");
    assert_eq!(status(&j, "mod_y")["status"], "blocked", "{j}");
    assert_eq!(status(&j, "mod_att")["status"], "blocked");
    assert!(
        j["notes"]
            .to_string()
            .contains("from mcb's table of releases"),
        "{j}"
    );
    // Against the code of 5.0 itself: its newest 5.0.x is 5.0.2, and mod_y v2 installs.
    let core = moodle50(&f);
    let (code, j, err) = check(
        &f,
        &["--moodle", "5.0", "--core-source", &core.url()],
        &site,
    );
    assert_eq!(code, 2, "mod_att still blocks: {err}");
    assert_eq!(j["core_build"], "2025041402");
    assert_eq!(status(&j, "mod_y")["status"], "fits", "{j}");
    assert_eq!(status(&j, "mod_y")["version"], "2025060100");
    // Moodle's own upstream holds it: asked when the site's own source lacks it.
    let out = f
        .mcb()
        .env("MCB_MOODLE_GIT", core.url())
        .args(["check", "--json", "--moodle", "5.0"])
        .arg(&site)
        .output()
        .unwrap();
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["core_build"], "2025041402", "{j}");
    assert!(j["notes"].to_string().contains("is read from"), "{j}");
    // A release mcb does not know and no source holds: supportedmoodles alone.
    let (_, j, _) = check(&f, &["--moodle", "6.1"], &site);
    assert_eq!(j["core_build"], serde_json::Value::Null);
    assert!(
        j["notes"].to_string().contains("`requires` is not checked"),
        "{j}"
    );
}

/// The table rows of the page as the browser sees them: cell texts per row.
fn rows_in_browser(page: &std::path::Path) -> Vec<Vec<String>> {
    let browser = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            std::process::Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("a headless Chromium (the Debian package `chromium`; .ci/run installs it)");
    let out = std::process::Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    let table = dom
        .split("<table id=\"readiness\">")
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .expect("the page has the readiness table");
    let cell = regex::Regex::new(r"<t[hd][^>]*>(.*?)</t[hd]>").unwrap();
    table
        .split("<tr>")
        .skip(1)
        .map(|row| {
            cell.captures_iter(row)
                .map(|c| c[1].replace("&amp;", "&"))
                .collect()
        })
        .collect()
}

#[test]
fn the_readiness_matrix_reads_the_same_as_text_json_and_in_a_browser() {
    let f = Fixture::new();
    let server = Server::start();
    let site = site(&f, &server);
    let page = f.path("readiness.html");
    let out = f
        .mcb()
        .args(["check", "--all-branches", "--html"])
        .arg(&page)
        .arg(&site)
        .output()
        .unwrap();
    // The next supported release (5.1: 5.0's support ended) is blocked: exit 2, as
    // `check --moodle 5.1` says.
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let att = text.lines().find(|l| l.starts_with("mod_att")).unwrap();
    let cells: Vec<&str> = att.split_whitespace().collect();
    assert_eq!(
        cells,
        [
            "mod_att",
            "r2024100800",
            "r2024100800",
            "BLOCKS",
            "BLOCKS",
            "BLOCKS",
            "BLOCKS"
        ],
        "{text}"
    );
    // Every branch from the site's own to the newest, the LTS ones said, and the one
    // whose support ended said so.
    assert!(
        text.contains("long-term support: Moodle 4.5, 5.3"),
        "{text}"
    );
    // The reasons are printed, once per plugin and reason; a summary per release.
    let ready = text.lines().find(|l| l.starts_with("ready?")).unwrap();
    assert_eq!(
        ready.split_whitespace().collect::<Vec<_>>(),
        ["ready?", "yes", "no", "no", "no", "no"],
        "{text}"
    );
    assert!(
        text.contains("mod_att on Moodle 5.0, 5.1, 5.2 and 5.3 (in 5.0's words): BLOCKS: "),
        "{text}"
    );
    assert!(
        text.contains("the next supported release, Moodle 5.1, is blocked"),
        "{text}"
    );
    settings(&f).bind(|| insta::assert_snapshot!("readiness-text", text.to_string()));
    assert!(
        text.contains("Moodle 5.0 is out of support: its security fixes ended on 2026-10-05"),
        "{text}"
    );

    let (_, j, _) = check(&f, &["--all-branches"], &site);
    assert_eq!(
        j["releases"],
        serde_json::json!(["4.5", "5.0", "5.1", "5.2", "5.3"])
    );
    assert_eq!(j["lts"], serde_json::json!(["4.5", "5.3"]));
    assert_eq!(j["out_of_support"][0]["release"], "5.0", "{j}");
    let y = j["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["component"] == "mod_y")
        .unwrap();
    assert_eq!(y["cells"][0]["status"], "fits");
    assert_eq!(y["cells"][2]["status"], "blocked", "mod_y stops before 5.1");

    let rows = rows_in_browser(&page);
    assert_eq!(
        rows[0],
        [
            "plugin",
            "now",
            "Moodle 4.5 LTS",
            "Moodle 5.0",
            "Moodle 5.1",
            "Moodle 5.2",
            "Moodle 5.3 LTS"
        ]
    );
    let att = rows
        .iter()
        .find(|r| r[0] == "mod_att")
        .expect("a mod_att row");
    assert_eq!(
        att[1..],
        [
            "r2024100800",
            "r2024100800",
            "BLOCKS",
            "BLOCKS",
            "BLOCKS",
            "BLOCKS"
        ]
    );
    let g = rows.iter().find(|r| r[0] == "block_g").unwrap();
    assert_eq!(g[2..], ["r2024100100"; 5]);
    let summary = rows.iter().find(|r| r[0] == "ready?").unwrap();
    assert_eq!(summary[2..], ["yes", "no", "no", "no", "no"]);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("title="), "nothing hidden in a tooltip");
    assert!(html.contains("<h2>Legend</h2>") && html.contains("<ul id=\"reasons\">"));
    assert!(html.contains("@media print"));
    assert!(
        !html.contains("http://") && !html.contains("https://") && !html.contains("src="),
        "no external assets"
    );
}

/// On a newer release the newest version that installs is the answer (outside its
/// `supported` only warns, as Moodle does); a plugin whose newest installable version is
/// older than the one the site runs blocks the upgrade, in Moodle's words.
#[test]
fn a_newer_release_gets_the_newest_installable_version_and_a_downgrade_blocks() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let core = moodle50(&f);
    // block_xp as it really is: v3.14.1 (2023) says nothing of `supported`, v19.1 says
    // [401, 405] and requires 4.5.
    let xp = plugin_repo(
        f.path("block_xp"),
        &[
            (
                "v3.14.1",
                plugin_php("block_xp", 2023042403, "2022112800", ""),
            ),
            (
                "v19.1",
                plugin_php(
                    "block_xp",
                    2025100501,
                    "2024100700",
                    "$plugin->supported = [401, 405];",
                ),
            ),
        ],
    );
    // mod_d: the version the site runs refuses 5.0; only an older one installs there.
    let d = plugin_repo(
        f.path("mod_d"),
        &[
            ("v1", plugin_php("mod_d", 2024010100, "2024100700", "")),
            (
                "v2",
                plugin_php(
                    "mod_d",
                    2025010100,
                    "2024100700",
                    "$plugin->incompatible = 500;",
                ),
            ),
        ],
    );
    let site = good_site(
        &f,
        &m,
        &[
            ("block_xp", Src::git(xp.url())),
            ("mod_d", Src::git(d.url())),
        ],
    );
    let j = f.realise_ok(&site);
    assert_eq!(j["plugins"]["block_xp"]["version"], "2025100501");
    assert_eq!(j["plugins"]["mod_d"]["version"], "2025010100");
    let (code, j, err) = check(
        &f,
        &["--moodle", "5.0", "--core-source", &core.url()],
        &site,
    );
    assert_eq!(code, 2, "mod_d blocks: {err}");
    let xp = status(&j, "block_xp");
    assert_eq!(xp["status"], "fits", "{j}");
    assert_eq!(xp["version"], "2025100501", "never the 2023 version: {j}");
    assert!(
        xp["warning"].as_str().unwrap().contains("Moodle will warn"),
        "{j}"
    );
    let d = status(&j, "mod_d");
    assert_eq!(d["status"], "blocked", "{j}");
    let why = d["reasons"][0].as_str().unwrap();
    assert!(
        why.starts_with("downgrade:")
            && why.contains("Cannot downgrade mod_d from 2025010100 to 2024010100.")
            && why.contains("cannotdowngrade"),
        "{why}"
    );
    // A new site on 5.0 plans the newest version that installs, with the warning.
    let fresh = f.site(
        &Site::new("fresh")
            .core(core.url(), "5.0")
            .plugin(
                "block_xp",
                Src::git(f.path("block_xp").display().to_string()),
            )
            .directory(f.path("empty-pluglist.json").display().to_string()),
    );
    let out = f
        .mcb()
        .args(["plan", "--json"])
        .arg(&fresh)
        .output()
        .unwrap();
    let p = json_of(&out);
    let chosen = &p["plugins"][0];
    assert_eq!(chosen["version"], "2025100501", "{p}");
    assert!(
        p["warnings"].to_string().contains("Moodle will warn"),
        "{p}"
    );
}

/// A release newer than mcb's table is a column as soon as the core upstream tags it, its
/// facts read from its own version.php.
#[test]
fn a_release_newer_than_the_table_is_checked_once_upstream_tags_it() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let g = plugin_repo(
        f.path("block_g"),
        &[("v1", plugin_php("block_g", 2024100100, "2024100700", ""))],
    );
    let site = f.site(
        &Site::new("s1")
            .core(m.url(), "4.5")
            .plugin("block_g", Src::git(g.url())),
    );
    f.realise_ok(&site);
    write_core(&m, "", "2027042000.00", "5.4 (Build: 20270420)", "504");
    m.commit("Moodle 5.4");
    m.tag("v5.4.0");
    let (code, j, err) = check(&f, &["--all-branches", "--refresh"], &site);
    assert_eq!(code, 0, "{err}\n{j}");
    assert_eq!(
        j["releases"],
        serde_json::json!(["4.5", "5.0", "5.1", "5.2", "5.3", "5.4"]),
        "{j}"
    );
    let notes = j["notes"]["5.4"].to_string();
    assert!(
        !notes.contains("knows no build") && !notes.contains("is taken as"),
        "5.4 is read from its own code: {notes}"
    );
    assert_eq!(status(&j, "block_g")["cells"][5]["status"], "fits", "{j}");
}
