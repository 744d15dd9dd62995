//! The GitOps loop, event by event, against upstreams that move: a new core tag, a weekly
//! build, a new plugin tag or directory version, a plugin added, removed, re-pinned or
//! moved to another source; `plan`, `update`, `outdated`, `reconcile` (once and
//! `--watch`), `history`, `rollback`, `forget`, `sites`, `--locked`, and locks that are the
//! same on every machine.

use std::path::{Path, PathBuf};

use crate::snapshots::{settings, shown};
use crate::support::directory::{Published, publish};
use crate::support::http::Server;
use crate::support::*;

/// The paths that differ between two commits of the store's site repository.
fn changed_paths(store: &Path, a: &str, b: &str) -> Vec<String> {
    let out = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(store.join("git"))
        .args(["diff-tree", "-r", "--name-only", a, b])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The number of commits on a site branch.
fn commits(store: &Path, site: &str) -> usize {
    let out = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(store.join("git"))
        .args(["rev-list", "--count", site])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// A new release on the 4.5 line: tag `tag` on a commit made from v4.5.10.
fn new_core_release(m: &GitRepo, tag: &str, build: &str, release: &str) {
    m.git(&["checkout", "-q", "-b", &format!("rel-{tag}"), "v4.5.10"]);
    write_core(m, "", build, release, "405");
    m.commit(release);
    m.tag(tag);
    m.git(&["checkout", "-q", "main"]);
}

/// A plugin repository for `component` with one tag per (tag, version, extra php).
pub(crate) fn plugin(f: &Fixture, component: &str, tags: &[(&str, u64, &str)]) -> GitRepo {
    let r = GitRepo::init(f.path(&format!("up/{component}")));
    for (tag, version, extra) in tags {
        add_tag(&r, component, tag, *version, extra);
    }
    r
}

pub(crate) fn add_tag(r: &GitRepo, component: &str, tag: &str, version: u64, extra: &str) {
    r.write(
        "version.php",
        &plugin_php(component, version, "2024100700", extra),
    );
    r.write("lib.php", &format!("<?php // {tag}\n"));
    r.commit(tag);
    r.tag(tag);
}

/// The directory the tests publish: `filter_dep` (a dependency) and `block_dir`.
fn directory(server: &Server, block_dir_versions: &[u64]) -> String {
    let mut v = vec![Published::new(
        "filter_dep",
        2024050100,
        "2024042200",
        &["4.4", "4.5"],
    )];
    for b in block_dir_versions {
        v.push(Published::new("block_dir", *b, "2024100700", &["4.5"]));
    }
    publish(server, server, &v)
}

#[test]
fn plan_names_core_plugin_and_dependency_changes_and_changes_nothing() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let server = Server::start();
    let list = directory(&server, &[]);
    let x = plugin(
        &f,
        "mod_x",
        &[
            ("v1.0", 2024050100, ""),
            (
                "v1.1",
                2024060100,
                "$plugin->dependencies = ['filter_dep' => 2024010100];",
            ),
        ],
    );
    let old = Site::new("s")
        .core(m.url(), "4.5.1")
        .plugin("mod_x", Src::git(x.url()).at("v1.0"))
        .directory(&list);
    let site = f.site(&old);
    f.realise_ok(&site);
    let lock_before = std::fs::read(f.path("site/site.lock")).unwrap();
    let head = branch_head(&f.store(), "s");

    let out = f.run(&["plan", s(&site)]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert!(said(&out).contains("nothing to change"), "{}", said(&out));
    let out = f.run(&["plan", "--offline", s(&site)]);
    assert_eq!(code(&out), 0, "from the store alone: {}", said(&out));

    // The administrator moves core and mod_x on; mod_x v1.1 needs filter_dep.
    let new = Site::new("s")
        .core(m.url(), "4.5.10")
        .plugin("mod_x", Src::git(x.url()).at("v1.1"))
        .directory(&list);
    f.site(&new);
    let out = f.run(&["plan", s(&site)]);
    assert_eq!(code(&out), 2, "pending: {}", said(&out));
    settings(&f).bind(|| insta::assert_snapshot!("plan", shown(&out)));
    let out = f.run(&["plan", "--json", s(&site)]);
    assert_eq!(code(&out), 2);
    settings(&f).bind(|| insta::assert_snapshot!("plan-json", shown(&out)));
    // Nothing moved: lock, branch and result are as they were.
    assert_eq!(
        std::fs::read(f.path("site/site.lock")).unwrap(),
        lock_before
    );
    assert_eq!(branch_head(&f.store(), "s"), head);

    // -v says why each version.
    let out = f.run(&["plan", "-v", s(&site)]);
    assert!(
        said(&out).contains("mod_x 2024060100 (v1.1)"),
        "{}",
        said(&out)
    );

    // A pin moved back: plan flags it as dangerous, in text and JSON.
    f.realise_ok(&site);
    f.site(&old);
    let out = f.run(&["plan", s(&site)]);
    assert_eq!(code(&out), 2);
    let t = said(&out);
    assert!(
        t.contains("! mod_x r2024060100 → r2024050100  DOWNGRADE"),
        "{t}"
    );
    assert!(t.contains("DANGER"), "{t}");
    let j = json_of(&f.run(&["plan", "--json", s(&site)]));
    assert_eq!(j["dangerous"], true);
    assert!(
        j["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["change"] == "downgraded" && c["component"] == "mod_x"),
        "{j}"
    );
    assert!(
        j["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["change"] == "removed"
                && c["component"] == "filter_dep"
                && c["auto"] == true),
        "{j}"
    );
}

#[test]
fn reconcile_follows_core_tags_plugin_tags_and_directory_versions_one_commit_each() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let server = Server::start();
    let list = directory(&server, &[2024100800]);
    let x = plugin(&f, "mod_x", &[("v1.0", 2024050100, "")]);
    let site = f.site(
        &Site::new("s")
            .core(m.url(), "4.5")
            .plugin("mod_x", Src::git(x.url()))
            .plugin("block_dir", Src::index())
            .directory(&list),
    );
    let out = f.run(&["reconcile", "--json", s(&site)]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let first = branch_head(&f.store(), "s");
    let n = commits(&f.store(), "s");

    // Nothing new upstream: no commit, no new generation.
    let out = f.run(&["reconcile", "--json", s(&site)]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert_eq!(json_of(&out)["changed"], false);
    assert_eq!(branch_head(&f.store(), "s"), first);

    // A core point release: one commit, only core's files differ.
    new_core_release(&m, "v4.5.11", "2024100711.00", "4.5.11 (Build: 20251110)");
    let out = f.run(&["reconcile", s(&site)]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert!(
        said(&out).contains("moodle 4.5.10 → 4.5.11"),
        "{}",
        said(&out)
    );
    let second = branch_head(&f.store(), "s");
    assert_eq!(commits(&f.store(), "s"), n + 1);
    let paths = changed_paths(&f.store(), &first, &second);
    assert!(!paths.is_empty());
    assert!(
        paths
            .iter()
            .all(|p| !p.starts_with("mod/x/") && !p.starts_with("blocks/dir/")),
        "{paths:?}"
    );
    // The commit says what moved.
    let msg = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(f.store().join("git"))
        .args(["log", "-1", "--format=%B", &second])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&msg.stdout).contains("moodle 4.5.10 → 4.5.11"),
        "{}",
        String::from_utf8_lossy(&msg.stdout)
    );

    // A new plugin tag: only that plugin's subtree differs.
    add_tag(&x, "mod_x", "v1.1", 2024060100, "");
    let out = f.run(&["reconcile", s(&site)]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert!(
        said(&out).contains("mod_x r2024050100 → r2024060100"),
        "{}",
        said(&out)
    );
    let third = branch_head(&f.store(), "s");
    let paths = changed_paths(&f.store(), &second, &third);
    assert!(!paths.is_empty());
    assert!(paths.iter().all(|p| p.starts_with("mod/x/")), "{paths:?}");

    // A new directory version: only that plugin's subtree differs.
    directory(&server, &[2024100800, 2024110100]);
    let out = f.run(&["reconcile", s(&site)]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert!(
        said(&out).contains("block_dir r2024100800 → r2024110100"),
        "{}",
        said(&out)
    );
    let fourth = branch_head(&f.store(), "s");
    let paths = changed_paths(&f.store(), &third, &fourth);
    assert!(!paths.is_empty());
    assert!(
        paths.iter().all(|p| p.starts_with("blocks/dir/")),
        "{paths:?}"
    );

    // And again nothing: no commit.
    let out = f.run(&["reconcile", s(&site)]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert_eq!(branch_head(&f.store(), "s"), fourth);

    // history lists them newest first, with what moved.
    let out = f.run(&["history", s(&site)]);
    settings(&f).bind(|| insta::assert_snapshot!("history", shown(&out)));
    let out = f.run(&["history", "--json", s(&site)]);
    let j = json_of(&out);
    let g = j["generations"].as_array().unwrap();
    assert_eq!(g[0]["commit"], fourth.as_str());
    assert_eq!(g[0]["current"], true);
    assert_eq!(g[1]["commit"], third.as_str());
    assert_eq!(g[2]["commit"], second.as_str());
    assert_eq!(g[2]["changes"][0]["change"], "core");
    // The served generation and the one before are laid out; the older ones are commits.
    let laid_out: Vec<bool> = g.iter().map(|g| g["kept"] == true).collect();
    assert_eq!(laid_out, [true, true, false, false]);
    // Each was made and served now, whatever its sources' date (2024 here).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for g in g {
        let made = g["made"].as_i64().unwrap();
        assert!((now - made).abs() < 3600, "{g}");
        assert!(g["date"].as_i64().unwrap() < made - 86_400 * 30, "{g}");
        assert!(!g["served"].as_array().unwrap().is_empty(), "{g}");
    }
}

#[test]
fn a_weekly_build_moves_a_plus_site() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let site = good_site(&f, &m, &[]);
    let plus = Site::new("s1").core(m.url(), "4.5+");
    let site = {
        let _ = site;
        f.site(&plus)
    };
    let out = f.run(&["reconcile", "--json", s(&site)]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert_eq!(json_of(&out)["moodle"]["build"], "2024100710.03");
    let before = branch_head(&f.store(), "s1");
    m.git(&["checkout", "-q", "MOODLE_405_STABLE"]);
    write_core(&m, "", "2024100710.04", "4.5.10+ (Build: 20251027)", "405");
    m.commit("weekly 4.5.10+");
    m.git(&["checkout", "-q", "main"]);
    let out = f.run(&["reconcile", s(&site)]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert!(
        said(&out).contains("moodle 4.5.10+ (2024100710.03) → 4.5.10+ (2024100710.04)"),
        "{}",
        said(&out)
    );
    assert_eq!(commits(&f.store(), "s1"), 2);
    assert_ne!(branch_head(&f.store(), "s1"), before);
}

#[test]
fn removing_a_plugin_and_changing_its_source_show_in_plan_and_in_the_tree() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let server = Server::start();
    let list = directory(&server, &[2024100800]);
    let x = plugin(&f, "mod_x", &[("v1.0", 2024050100, "")]);
    let d = plugin(&f, "block_dir", &[("v1", 2024100800, "")]);
    let with = Site::new("s")
        .core(m.url(), "4.5.10")
        .plugin("mod_x", Src::git(x.url()))
        .plugin("block_dir", Src::git(d.url()))
        .directory(&list);
    let site = f.site(&with);
    let j = f.realise_ok(&site);
    let generation = PathBuf::from(j["path"].as_str().unwrap());
    assert!(generation.join("mod/x/version.php").exists());

    // git → directory for block_dir, mod_x removed.
    let without = Site::new("s")
        .core(m.url(), "4.5.10")
        .plugin("block_dir", Src::index())
        .directory(&list);
    f.site(&without);
    let out = f.run(&["plan", s(&site)]);
    assert_eq!(code(&out), 2);
    let t = said(&out);
    assert!(t.contains("- mod_x r2024050100"), "{t}");
    assert!(t.contains("~ block_dir source git → directory"), "{t}");
    let j = f.realise_ok(&site);
    let generation = PathBuf::from(j["path"].as_str().unwrap());
    assert!(!generation.join("mod/x").exists());
    assert!(f.path("site/result/blocks/dir/version.php").exists());
    assert!(!f.path("site/result/mod/x").exists());
}

#[test]
fn update_moves_only_what_it_names_and_outdated_says_it_first() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let a = plugin(&f, "mod_a", &[("v1", 2024010100, "")]);
    let b = plugin(&f, "mod_b", &[("v1", 2024010100, "")]);
    let site = good_site(
        &f,
        &m,
        &[("mod_a", Src::git(a.url())), ("mod_b", Src::git(b.url()))],
    );
    f.realise_ok(&site);
    add_tag(&a, "mod_a", "v2", 2024020100, "");
    add_tag(&b, "mod_b", "v2", 2024020100, "");

    // realise keeps the lock; outdated sees both (it asks upstream whatever the cache).
    let j = f.realise_ok(&site);
    assert_eq!(j["plugins"]["mod_a"]["version"], "2024010100");
    let out = f.run(&["outdated", s(&site)]);
    assert_eq!(code(&out), 2, "{}", said(&out));
    let t = said(&out);
    assert!(t.contains("mod_a r2024010100 → r2024020100"), "{t}");
    assert!(t.contains("mod_b r2024010100 → r2024020100"), "{t}");

    let out = f.run(&["update", "--json", s(&site), "mod_a"]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let j = json_of(&out);
    assert_eq!(j["plugins"]["mod_a"]["version"], "2024020100");
    assert_eq!(j["plugins"]["mod_b"]["version"], "2024010100");
    assert_eq!(j["changes"].as_array().unwrap().len(), 1, "{j}");

    // --lock-only writes the lock and builds nothing.
    let head = branch_head(&f.store(), "s1");
    let out = f.run(&["update", "--lock-only", s(&site)]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert!(said(&out).contains("site.lock updated"), "{}", said(&out));
    assert_eq!(branch_head(&f.store(), "s1"), head);
    let lock = std::fs::read_to_string(f.path("site/site.lock")).unwrap();
    assert_eq!(lock.matches("version: \"2024020100\"").count(), 2, "{lock}");

    // An unknown component is a mistake in the command.
    let out = f.run(&["update", s(&site), "mod_zzz"]);
    assert_eq!(code(&out), 3, "{}", said(&out));
    assert!(said(&out).contains("mod_zzz is neither in the site file nor in its lock"));
    let out = f.run(&["outdated", s(&site)]);
    assert_eq!(code(&out), 0, "{}", said(&out));

    // A new tag moments after the refs were read: update asks upstream all the same.
    add_tag(&a, "mod_a", "v3", 2024030100, "");
    let out = f.run(&["update", "--json", s(&site)]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert_eq!(json_of(&out)["plugins"]["mod_a"]["version"], "2024030100");
}

#[test]
fn rollback_restores_tree_and_lock_without_upstreams_and_asks_for_downgrades() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let x = plugin(&f, "mod_x", &[("v1.0", 2024050100, "")]);
    let site = good_site(&f, &m, &[("mod_x", Src::git(x.url()))]);
    let first = f.realise_ok(&site);
    let first_lock = std::fs::read(f.path("site/site.lock")).unwrap();
    add_tag(&x, "mod_x", "v1.1", 2024060100, "");
    let out = f.run(&["update", s(&site)]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let second_head = branch_head(&f.store(), "s1");
    // Upstreams move away.
    std::fs::rename(f.path("moodle"), f.path("moodle-gone")).unwrap();
    std::fs::rename(f.path("up"), f.path("up-gone")).unwrap();

    let out = f.run(&["rollback", s(&site)]);
    assert_eq!(code(&out), 2, "{}", said(&out));
    settings(&f).bind(|| insta::assert_snapshot!("rollback-downgrade", shown(&out)));
    assert_eq!(branch_head(&f.store(), "s1"), second_head);

    let out = f.run(&["rollback", "--allow-downgrade", s(&site)]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let t = said(&out);
    assert!(t.contains("! mod_x r2024060100 → r2024050100"), "{t}");
    let now = std::fs::read_link(f.path("site/result")).unwrap();
    assert_eq!(now, PathBuf::from(first["path"].as_str().unwrap()));
    assert_eq!(std::fs::read(f.path("site/site.lock")).unwrap(), first_lock);
    // The rollback is a commit of its own, on top.
    let head = branch_head(&f.store(), "s1");
    assert_ne!(head, second_head);
    assert_eq!(commits(&f.store(), "s1"), 3);
    let j = json_of(&f.run(&["history", "--json", "s1"]));
    assert!(
        j["generations"][0]["title"]
            .as_str()
            .unwrap()
            .contains("roll back to"),
        "{j}"
    );
    // Realise now: the lock answers the site file, nothing to do, offline.
    let out = f.run(&["realise", "--offline", s(&site)]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert!(said(&out).contains("up to date"), "{}", said(&out));
}

#[test]
fn rollback_rebuilds_a_generation_gc_removed_from_git() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let x = plugin(&f, "mod_x", &[("v1.0", 2024050100, "")]);
    let site = good_site(&f, &m, &[("mod_x", Src::git(x.url()))]);
    let first = f.realise_ok(&site);
    let first_tree = first["tree"].as_str().unwrap().to_string();
    add_tag(&x, "mod_x", "v1.1", 2024060100, "");
    assert_eq!(code(&f.run(&["update", s(&site)])), 0);
    let out = f.run(&["gc", "--keep", "1", "--grace", "0"]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let generation = f.store().join("generations").join(&first_tree);
    assert!(!generation.exists(), "gc removed the first generation");
    let j = json_of(&f.run(&["history", "--json", s(&site)]));
    assert_eq!(j["generations"][1]["kept"], false);

    std::fs::rename(f.path("up"), f.path("up-gone")).unwrap();
    let out = f.run(&[
        "rollback",
        "--json",
        "--allow-downgrade",
        "--to",
        "-1",
        s(&site),
    ]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let j = json_of(&out);
    assert_eq!(j["from_git"], true);
    assert!(generation.join("mod/x/version.php").exists());
    assert_committed_tree_is_materialised(&f.store(), j["commit"].as_str().unwrap(), &generation);
    // The rebuilt generation is whole and kept by the next gc.
    assert_eq!(code(&f.run(&["gc", "--keep", "1", "--grace", "0"])), 0);
    let out = f.run(&["verify"]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert!(generation.join("mod/x/version.php").exists());
}

#[test]
fn only_the_served_generation_and_the_one_before_stay_laid_out_and_rollback_lays_out_the_rest() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let x = plugin(&f, "mod_x", &[("v1.0", 2024050100, "")]);
    let site = good_site(&f, &m, &[("mod_x", Src::git(x.url()))]);
    let mut trees = vec![f.realise_ok(&site)["tree"].as_str().unwrap().to_string()];
    for (tag, version) in [("v1.1", 2024060100), ("v1.2", 2024070100)] {
        add_tag(&x, "mod_x", tag, version, "");
        let out = f.run(&["update", "--json", s(&site)]);
        assert_eq!(code(&out), 0, "{}", said(&out));
        trees.push(json_of(&out)["tree"].as_str().unwrap().to_string());
    }
    let laid_out = |t: &str| f.store().join("generations").join(t).is_dir();
    // The first generation is a commit only; the second is there for an instant rollback.
    assert!(
        !laid_out(&trees[0]),
        "the oldest generation is still laid out"
    );
    assert!(laid_out(&trees[1]) && laid_out(&trees[2]));
    let j = json_of(&f.run(&["history", "--json", s(&site)]));
    assert_eq!(j["generations"][2]["kept"], false, "{j}");
    assert_eq!(j["generations"][1]["kept"], true, "{j}");

    // Rolling back one step takes the tree that is there.
    std::fs::rename(f.path("up"), f.path("up-gone")).unwrap();
    let out = f.run(&["rollback", "--json", "--allow-downgrade", s(&site)]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert_eq!(json_of(&out)["from_git"], false);
    assert_eq!(
        std::fs::read_link(f.path("site/result")).unwrap(),
        f.store().join("generations").join(&trees[1])
    );
    // Rolling back to the first lays it out again, offline, from the store alone.
    let out = f.run(&[
        "rollback",
        "--json",
        "--allow-downgrade",
        "--to",
        "gen-1",
        s(&site),
    ]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let j = json_of(&out);
    assert_eq!(j["from_git"], true);
    let first = f.store().join("generations").join(&trees[0]);
    assert_committed_tree_is_materialised(&f.store(), j["commit"].as_str().unwrap(), &first);
    // Served now: the first and the one before it (the second); the third is retired.
    assert!(laid_out(&trees[0]) && laid_out(&trees[1]));
    assert!(
        !laid_out(&trees[2]),
        "the generation two rollbacks back is still laid out"
    );
    // gc keeps all three as commits and sources; verify finds nothing amiss.
    let out = f.run(&["gc", "--keep", "5", "--grace", "0", "--json"]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let out = f.run(&["realise", "--offline", s(&site)]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let out = f.run(&["verify"]);
    assert_eq!(code(&out), 0, "{}", said(&out));
}

#[test]
fn locks_are_byte_identical_across_stores_with_different_histories() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let x = plugin(
        &f,
        "mod_x",
        &[("v1.0", 2024050100, ""), ("v1.1", 2024060100, "")],
    );
    let lock = f.path("site/site.lock");
    // Store A: an older pin first, then the site file as it is now.
    let older = good_site(&f, &m, &[("mod_x", Src::git(x.url()).at("v1.0"))]);
    f.realise_ok(&older);
    let site = good_site(&f, &m, &[("mod_x", Src::git(x.url()).at("v1.1"))]);
    f.realise_ok(&site);
    let a = std::fs::read(&lock).unwrap();
    // Store B: the same site file, straight away.
    std::fs::remove_file(&lock).unwrap();
    let b_store = f.path("store-b");
    let out = f
        .mcb_with_store(&b_store)
        .args(["realise", s(&site), "--force"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", said(&out));
    let b = std::fs::read(&lock).unwrap();
    assert_eq!(String::from_utf8_lossy(&a), String::from_utf8_lossy(&b));
    assert_ne!(
        branch_head(&f.store(), "s1"),
        branch_head(&b_store, "s1"),
        "the commits differ (their parents do); the locks do not"
    );
    // And store B realising store A's lock rewrites nothing.
    let out = f
        .mcb_with_store(&b_store)
        .args(["realise", "--locked", s(&site)])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert_eq!(std::fs::read(&lock).unwrap(), a);
}

#[test]
fn locked_fails_when_the_lock_would_change() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let x = plugin(
        &f,
        "mod_x",
        &[("v1.0", 2024050100, ""), ("v1.1", 2024060100, "")],
    );
    let site = good_site(&f, &m, &[("mod_x", Src::git(x.url()).at("v1.0"))]);
    let err = f.realise_err_with(&site, &["--locked"], 2);
    assert!(err.contains("--locked, but the site has no lock"), "{err}");
    f.realise_ok(&site);
    let lock = std::fs::read(f.path("site/site.lock")).unwrap();
    let head = branch_head(&f.store(), "s1");
    good_site(&f, &m, &[("mod_x", Src::git(x.url()).at("v1.1"))]);
    let err = f.realise_err_with(&site, &["--locked"], 2);
    assert!(err.contains("--locked, but the lock would change"), "{err}");
    assert!(err.contains("mod_x r2024050100 → r2024060100"), "{err}");
    assert_eq!(std::fs::read(f.path("site/site.lock")).unwrap(), lock);
    assert_eq!(branch_head(&f.store(), "s1"), head);
}

#[test]
fn forget_then_gc_frees_the_site_and_leaves_others_sound() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let x = plugin(&f, "mod_x", &[("v1.0", 2024050100, "")]);
    let keep = f.write(
        "other/site.ron",
        Site::new("other").core(m.url(), "4.5.1").ron(),
    );
    f.realise_ok(&keep);
    let site = good_site(&f, &m, &[("mod_x", Src::git(x.url()))]);
    let j = f.realise_ok(&site);
    let generation = PathBuf::from(j["path"].as_str().unwrap());

    let sites = json_of(&f.run(&["sites", "--json"]));
    let names: Vec<&str> = sites["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["other", "s1"]);
    let s1 = &sites["sites"][1];
    assert!(s1["unique_bytes"].as_u64().unwrap() > 0, "{s1}");
    assert_eq!(s1["results"][0], s(&f.path("site/result")));

    // A push tags each generation in the store's repository; forgetting the site drops the
    // tags with the branch, so a new site of that name numbers its own.
    let remote = f.path("remote.git");
    std::process::Command::new("git")
        .args(["init", "-q", "--bare"])
        .arg(&remote)
        .status()
        .unwrap();
    let out = f.run(&["push", s(&site), s(&remote)]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let tags = |repo: &Path| {
        let out = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(repo)
            .args(["tag", "--list", "s1/*"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(tags(&f.store().join("git")), "s1/gen-1");
    assert_eq!(tags(&remote), "s1/gen-1");

    // Live: refused.
    let out = f.run(&["forget", "s1"]);
    assert_eq!(code(&out), 3, "{}", said(&out));
    assert!(said(&out).contains("is live"), "{}", said(&out));
    std::fs::remove_file(f.path("site/result")).unwrap();
    let out = f.run(&["forget", "s1"]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert_eq!(
        tags(&f.store().join("git")),
        "",
        "the site's tags went with it"
    );
    let out = f.run(&["gc", "--grace", "0"]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert!(
        !generation.exists(),
        "gc freed the forgotten site's generation"
    );
    let sites = json_of(&f.run(&["sites", "--json"]));
    assert_eq!(sites["sites"].as_array().unwrap().len(), 1);
    let out = f.run(&["verify"]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert!(f.path("other/result/version.php").exists());
    let out = f.run(&["realise", "--offline", s(&keep)]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert!(said(&out).contains("up to date"), "{}", said(&out));
}

/// `mcb reconcile --json --watch 1 SITE` running, and the lines it prints.
fn watch(
    f: &Fixture,
    site: &Path,
) -> (
    std::process::Child,
    std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("mcb"))
        .env_remove("MCB_STORE")
        .arg("--store")
        .arg(f.store())
        .args(["reconcile", "--json", "--watch", "1", s(site)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

#[test]
fn watch_picks_up_a_change_and_stops_on_sigterm() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let x = plugin(&f, "mod_x", &[("v1.0", 2024050100, "")]);
    let site = good_site(&f, &m, &[("mod_x", Src::git(x.url()))]);
    let (mut child, mut lines) = watch(&f, &site);
    let mut next =
        || -> serde_json::Value { serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap() };
    let r1 = next();
    assert_eq!(r1["round"], 1);
    assert_eq!(r1["ok"], true, "{r1}");
    add_tag(&x, "mod_x", "v1.1", 2024060100, "");
    let mut seen = false;
    for _ in 0..2 {
        let r = next();
        if r["realised"]["plugins"]["mod_x"]["version"] == "2024060100" {
            assert_eq!(r["realised"]["changed"], true);
            seen = true;
            break;
        }
    }
    assert!(seen, "the new tag is realised within two rounds");
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_failed_round_is_reported_and_the_watch_goes_on() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let site = good_site(&f, &m, &[]);
    f.realise_ok(&site);
    // A broken site file: the round fails, the loop survives it.
    std::fs::write(&site, "Site(").unwrap();
    let (mut child, mut lines) = watch(&f, &site);
    let r1: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(r1["ok"], false, "{r1}");
    assert_eq!(r1["error"]["kind"], "config");
    assert_eq!(r1["next_in_secs"], 2, "backoff doubles the wait");
    good_site(&f, &m, &[]);
    let r2: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(r2["ok"], true, "{r2}");
    assert_eq!(r2["next_in_secs"], 1);
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn init_add_remove_keep_the_file_as_written() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let x = plugin(&f, "mod_x", &[("v1.0", 2024050100, "")]);
    let site = f.path("site/site.ron");
    std::fs::create_dir_all(f.path("site")).unwrap();
    let out = f.run(&["init", "--moodle", "4.5", "--name", "s", s(&site)]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let text0 = std::fs::read_to_string(&site).unwrap();
    assert!(text0.contains("// The site file"));
    // Point core at the local repository, keeping the comments.
    let mut t = text0.replace(
        "moodle: (version: \"4.5\"),",
        &format!(
            "moodle: (version: \"4.5\", git: \"{}\"), // local mirror",
            m.url()
        ),
    );
    t.push_str("// the end\n");
    std::fs::write(&site, &t).unwrap();
    let out = f.run(&["add", "mod_x", "--site", s(&site), "--git", &x.url()]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert!(said(&out).contains("+ mod_x"), "{}", said(&out));
    let added = std::fs::read_to_string(&site).unwrap();
    assert!(added.contains("// local mirror"));
    assert!(added.contains("// the end"));
    assert!(added.contains("//   \"mod_attendance\": (),"));
    assert!(added.contains(&format!("\"mod_x\": (git: \"{}\"),", x.url())));
    // A plugin that cannot be had: the edit is undone.
    let out = f.run(&["add", "mod_y", "--site", s(&site), "--git", "/nowhere"]);
    assert_ne!(code(&out), 0);
    assert!(said(&out).contains("is as it was"), "{}", said(&out));
    assert_eq!(std::fs::read_to_string(&site).unwrap(), added);
    let out = f.run(&["remove", "mod_x", "--site", s(&site)]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert_eq!(std::fs::read_to_string(&site).unwrap(), t);
}

/// A site with core, a git plugin and a directory plugin, realised; returns the site file,
/// the directory list's URL, the plugin repository and the realise's JSON.
fn imported_fixture(f: &Fixture, server: &Server) -> (PathBuf, String, GitRepo, serde_json::Value) {
    let m = moodle_repo(f.path("moodle"));
    let list = directory(server, &[2024100800]);
    let x = plugin(f, "mod_x", &[("v1.0", 2024050100, "")]);
    let site = f.site(
        &Site::new("s")
            .core(m.url(), "4.5")
            .plugin("mod_x", Src::git(x.url()))
            .plugin("block_dir", Src::index())
            .directory(&list),
    );
    let j = f.realise_ok(&site);
    (site, list, x, j)
}

#[test]
fn import_of_a_realised_tree_gives_a_site_file_that_builds_the_same_tree() {
    let f = Fixture::new();
    let server = Server::start();
    let (_, list, _, j) = imported_fixture(&f, &server);
    let out = f.run(&[
        "import",
        "--name",
        "adopted",
        "--directory",
        &list,
        "--out",
        s(&f.path("adopted-text")),
        s(&f.path("site/result")),
    ]);
    settings(&f).bind(|| insta::assert_snapshot!("import", shown(&out)));
    let out = f.run(&[
        "import",
        "--json",
        "--name",
        "adopted",
        "--directory",
        &list,
        "--out",
        s(&f.path("adopted")),
        s(&f.path("site/result")),
    ]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let r = json_of(&out);
    assert_eq!(r["same_files"], true, "{r}");
    assert_eq!(r["core"]["matched"], "store");
    assert_eq!(r["installation_tree"], j["tree"]);
    let site = std::fs::read_to_string(f.path("adopted/site.ron")).unwrap();
    assert!(site.contains("\"mod_x\": (git: "), "{site}");
    assert!(
        site.contains("\"block_dir\": (version: \"2024100800\")"),
        "{site}"
    );
    let again = f.realise_ok(&f.path("adopted/site.ron"));
    assert_eq!(
        again["tree"], j["tree"],
        "the imported site builds the same tree"
    );
}

#[test]
fn import_reports_an_edited_file_and_recognises_checkouts_and_directory_zips() {
    let f = Fixture::new();
    let server = Server::start();
    let (_, list, x, _) = imported_fixture(&f, &server);
    // A plain copy of the codebase, one plugin file edited, mod_x replaced by a checkout.
    let copy = f.path("copy");
    let st = std::process::Command::new("cp")
        .args(["-rL", s(&f.path("site/result")), s(&copy)])
        .status()
        .unwrap();
    assert!(st.success());
    let lib = copy.join("blocks/dir/lib.php");
    let mut perms = std::fs::metadata(&lib).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&lib, perms).unwrap();
    std::fs::write(&lib, "<?php // edited on the server\n").unwrap();
    std::fs::write(copy.join("config.php"), "<?php $CFG = new stdClass();\n").unwrap();

    let out = f.run(&[
        "import",
        "--json",
        "--name",
        "edited",
        "--directory",
        &list,
        "--out",
        s(&f.path("edited")),
        s(&copy),
    ]);
    let r = json_of(&out);
    let dir = r["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["component"] == "block_dir")
        .unwrap();
    assert_eq!(dir["matched"], "path", "{r}");
    assert_eq!(dir["differs"], serde_json::json!(["M lib.php"]), "{r}");
    assert!(
        r["problems"].as_array().unwrap().iter().any(|p| p
            .as_str()
            .unwrap()
            .contains("block_dir matches no known version")),
        "{r}"
    );
    assert_eq!(r["left_out"], serde_json::json!(["config.php"]));
    // The path entry takes the files as they are: the same code, config.php left out.
    assert_eq!(r["same_files"], true, "{r}");
    assert_eq!(code(&out), 0, "{}", said(&out));

    // Another store, which knows nothing: a checkout and a directory zip are still
    // recognised; core is assumed to be its release, and said so.
    std::fs::write(&lib, "<?php // v1\n").unwrap();
    std::fs::remove_dir_all(copy.join("mod/x")).unwrap();
    let st = std::process::Command::new("git")
        .args(["clone", "-q", &x.url(), s(&copy.join("mod/x"))])
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::remove_dir_all(copy.join("blocks/dir")).unwrap();
    let zip = server.body("/download/10001/block_dir_2024100800.zip");
    let zip_path = f.write("block_dir.zip", zip);
    // The zip's top folder is the plugin's; it installs as blocks/dir.
    let unpacked = f.path("unpacked");
    let mut a = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    a.extract(&unpacked).unwrap();
    let top = std::fs::read_dir(&unpacked)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::rename(top, copy.join("blocks/dir")).unwrap();
    let out = f
        .mcb_with_store(&f.path("store-b"))
        .args([
            "import",
            "--json",
            "--name",
            "fresh",
            "--directory",
            &list,
            "--out",
            s(&f.path("fresh")),
            s(&copy),
        ])
        .output()
        .unwrap();
    let r = json_of(&out);
    let by = |c: &str| {
        r["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["component"] == c)
            .unwrap()
            .clone()
    };
    assert_eq!(by("mod_x")["matched"], "checkout", "{r}");
    assert_eq!(by("block_dir")["matched"], "directory", "{r}");
    assert_eq!(r["core"]["matched"], "release", "{r}");
    assert!(
        r["problems"][0]
            .as_str()
            .unwrap()
            .contains("core matches no source"),
        "{r}"
    );
    assert_eq!(r["lock_file"], serde_json::Value::Null);
    assert_eq!(code(&out), 6, "{}", said(&out));
}

/// What an installation holds that is not code never enters the store: config.php (its
/// password), moodledata and any other data directory. A config.php that is a symlink
/// becomes the site file's `links:` entry.
#[test]
fn import_leaves_secrets_and_data_unread_and_keeps_a_config_link() {
    let f = Fixture::new();
    let server = Server::start();
    let (_, list, _, _) = imported_fixture(&f, &server);
    let install = f.path("install");
    let st = std::process::Command::new("cp")
        .args(["-rL", s(&f.path("site/result")), s(&install)])
        .status()
        .unwrap();
    assert!(st.success());
    const SECRET: &str = "dbpass-7e1f3c";
    std::fs::write(
        install.join("config.php"),
        format!("<?php\n$CFG->dbpass = '{SECRET}';\n"),
    )
    .unwrap();
    for (dir, file) in [
        ("moodledata/filedir/ab", "secret.pdf"),
        ("sitedata/filedir", "b"),
        ("sitedata/temp", "c"),
    ] {
        std::fs::create_dir_all(install.join(dir)).unwrap();
        std::fs::write(install.join(dir).join(file), SECRET).unwrap();
    }
    let out = f.run(&[
        "import",
        "--json",
        "--name",
        "adopted",
        "--directory",
        &list,
        "--out",
        s(&f.path("adopted")),
        s(&install),
    ]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let r = json_of(&out);
    assert_eq!(
        r["left_out"],
        serde_json::json!(["config.php", "moodledata", "sitedata"]),
        "{r}"
    );
    assert_eq!(r["same_files"], true, "{r}");
    let found = walkdir::WalkDir::new(f.store())
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .any(|e| {
            std::fs::read(e.path())
                .is_ok_and(|b| b.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()))
        });
    assert!(!found, "a secret reached the store");

    // config.php as a link to the site's own file: a links: entry, not an error.
    std::fs::remove_file(install.join("config.php")).unwrap();
    std::os::unix::fs::symlink("/etc/moodle/adopted/config.php", install.join("config.php"))
        .unwrap();
    let out = f.run(&[
        "import",
        "--json",
        "--name",
        "linked",
        "--directory",
        &list,
        "--out",
        s(&f.path("linked")),
        s(&install),
    ]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let r = json_of(&out);
    assert_eq!(
        r["links"]["config.php"], "/etc/moodle/adopted/config.php",
        "{r}"
    );
    let site = std::fs::read_to_string(f.path("linked/site.ron")).unwrap();
    assert!(
        site.contains("links: {\"config.php\": \"/etc/moodle/adopted/config.php\"}"),
        "{site}"
    );
    assert_eq!(r["same_files"], true, "{r}");

    // A plugin type whose directory leaves the installation: named, nothing listed there.
    let components = install.join("lib/components.json");
    let mut c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&components).unwrap()).unwrap();
    c["plugintypes"]["evil"] = "../outside".into();
    std::fs::create_dir_all(f.path("outside/x")).unwrap();
    f.write("outside/x/version.php", "<?php\n");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&components, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&components, c.to_string()).unwrap();
    let out = f.run(&[
        "import",
        "--name",
        "evil",
        "--out",
        s(&f.path("evil")),
        s(&install),
    ]);
    assert_eq!(code(&out), 5, "{}", said(&out));
    assert!(
        said(&out).contains("lib/components.json is not valid: plugin type 'evil'"),
        "{}",
        said(&out)
    );
    assert!(!f.path("evil/site.ron").exists());
}

/// A fork of Moodle that carries the institution's own plugins in its tree, installed as a
/// git checkout with one more add-on beside them and its config.php: core is recognised as
/// the fork's release tag (its plugins stay in core), the add-on no source holds is copied
/// beside the site file, config.php is said once with what to do, and the lock builds the
/// installation's files, also after the installation is gone.
#[test]
fn import_adopts_a_fork_with_its_own_plugins_in_core() {
    let f = Fixture::new();
    let fork = GitRepo::init(f.path("fork"));
    write_core(&fork, "", "2024100701.00", "4.5.1 (Build: 20241209)", "405");
    fork.write(
        "local/inst/version.php",
        &plugin_php("local_inst", 2024010100, "2024100700", ""),
    );
    fork.write(
        "mod/att/version.php",
        &plugin_php("mod_att", 2024020100, "2024100700", ""),
    );
    fork.write("mod/att/lib.php", "<?php // the institution's\n");
    // A subplugin inside it: both are in core's tree.
    fork.write(
        "mod/att/db/subplugins.json",
        r#"{"plugintypes": {"atttype": "mod/att/type"}}"#,
    );
    fork.write(
        "mod/att/type/x/version.php",
        &plugin_php("atttype_x", 2024020100, "2024100700", ""),
    );
    fork.commit("Moodle 4.5.1 with the institution's plugins");
    fork.tag("v4.5.1");

    let install = f.path("install");
    let st = std::process::Command::new("git")
        .args(["clone", "-q", &fork.url(), s(&install)])
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::create_dir_all(install.join("blocks/mine")).unwrap();
    std::fs::write(
        install.join("blocks/mine/version.php"),
        plugin_php("block_mine", 2024030100, "2024100700", ""),
    )
    .unwrap();
    std::fs::write(install.join("blocks/mine/block_mine.php"), "<?php\n").unwrap();
    std::fs::write(
        install.join("config.php"),
        "<?php\n$CFG->dbpass = 'x';\nrequire_once(__DIR__ . '/lib/setup.php');\n",
    )
    .unwrap();
    let list = f.write("empty-pluglist.json", "{\"timestamp\": 0, \"plugins\": []}");
    let out = f.run(&[
        "import",
        "--json",
        "--name",
        "univ",
        "--directory",
        s(&list),
        "--out",
        s(&f.path("univ")),
        s(&install),
    ]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let r = json_of(&out);
    assert_eq!(r["core"]["matched"], "checkout", "{r}");
    assert_eq!(
        r["in_core"],
        serde_json::json!(["atttype_x", "local_inst", "mod_att"]),
        "{r}"
    );
    let plugins: Vec<&str> = r["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["component"].as_str().unwrap())
        .collect();
    assert_eq!(plugins, ["block_mine"], "{r}");
    assert_eq!(r["same_files"], true, "{r}");
    assert!(f.path("univ/site.lock").is_file());
    assert_eq!(r["copied"][0]["to"], "plugins/block_mine", "{r}");
    let notes = r["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{r}");
    let note = notes[0].as_str().unwrap();
    assert!(
        note.contains("config.php was left out")
            && note.contains("install -D -m 0640")
            && note.contains("links: {\"config.php\": \"/etc/moodle/univ/config.php\"}")
            && note.contains("/univ/result/lib/setup.php"),
        "{note}"
    );
    let site = std::fs::read_to_string(f.path("univ/site.ron")).unwrap();
    assert!(
        site.contains(&format!(
            "moodle: (version: \"4.5.1\", git: \"{}\")",
            fork.url()
        )),
        "the exact tag and the fork it came from: {site}"
    );
    assert!(
        site.contains("\"block_mine\": (path: \"plugins/block_mine\")"),
        "{site}"
    );
    // The installation is gone; the site file still builds its files.
    std::fs::remove_dir_all(&install).unwrap();
    let j = f.realise_ok(&f.path("univ/site.ron"));
    assert_eq!(j["tree"], r["installation_tree"], "{j}");
    assert!(f.path("univ/result/mod/att/lib.php").is_file());
}

/// A core that matches nothing known is taken for the exact release its version.php says
/// (4.5.0, never "4.5", which would move the site), and no lock is kept unless that
/// release gives the installation's files.
#[test]
fn import_takes_core_on_trust_as_its_exact_release() {
    let f = Fixture::new();
    let install = f.path("install");
    let core = GitRepo::init(f.path("core-copy"));
    write_core(&core, "", "2024100700.00", "4.5 (Build: 20241007)", "405");
    let st = std::process::Command::new("cp")
        .args(["-r", s(&core.path), s(&install)])
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::remove_dir_all(install.join(".git")).unwrap();
    for c in ["a", "b"] {
        std::fs::create_dir_all(install.join(format!("local/{c}"))).unwrap();
        std::fs::write(
            install.join(format!("local/{c}/version.php")),
            plugin_php(&format!("local_{c}"), 2024030100, "2024100700", ""),
        )
        .unwrap();
    }
    // A plugins directory that cannot be reached: said once for both add-ons.
    let list = format!(
        "http://{}/pluglist.json",
        crate::support::http::closed_port()
    );
    let out = f.run(&[
        "import",
        "--json",
        "--offline",
        "--name",
        "old",
        "--directory",
        &list,
        "--out",
        s(&f.path("old")),
        s(&install),
    ]);
    let r = json_of(&out);
    assert_eq!(r["core"]["matched"], "release", "{r}");
    let unasked: Vec<&str> = r["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .filter(|p| p.contains("not compared with the plugins directory"))
        .collect();
    assert_eq!(unasked.len(), 1, "{r}");
    assert!(unasked[0].contains("(local_a, local_b)"), "{r}");
    let site = std::fs::read_to_string(f.path("old/site.ron")).unwrap();
    assert!(site.contains("moodle: (version: \"4.5.0\")"), "{site}");
    assert_eq!(r["lock_file"], serde_json::Value::Null, "{r}");
    assert!(!f.path("old/site.lock").exists());
    assert_eq!(code(&out), 6, "{}", said(&out));
}

/// Before 4.4 core has no lib/plugins.json: its standard plugins are read from its plugin
/// manager, so they stay in core and only the add-on is one.
#[test]
fn import_of_a_43_core_knows_its_standard_plugins() {
    let f = Fixture::new();
    let core = GitRepo::init(f.path("core43"));
    write_core(&core, "", "2023100900.00", "4.3 (Build: 20231009)", "403");
    std::fs::remove_file(core.path.join("lib/plugins.json")).unwrap();
    core.write(
        "lib/classes/plugin_manager.php",
        "<?php\nclass core_plugin_manager {\n    public static function standard_plugins_list($type) {\n        $standard_plugins = array(\n            'block' => array(\n                'html', // Text\n            ),\n            'mod' => array(\n                'quiz'\n            ),\n        );\n        return $standard_plugins[$type] ?? false;\n    }\n}\n",
    );
    core.write(
        "local/extra/version.php",
        &plugin_php("local_extra", 2023110100, "2023100900", ""),
    );
    let install = f.path("install");
    let st = std::process::Command::new("cp")
        .args(["-r", s(&core.path), s(&install)])
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::remove_dir_all(install.join(".git")).unwrap();
    let out = f.run(&[
        "import",
        "--json",
        "--offline",
        "--name",
        "old",
        "--out",
        s(&f.path("old")),
        s(&install),
    ]);
    let r = json_of(&out);
    let plugins: Vec<&str> = r["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["component"].as_str().unwrap())
        .collect();
    assert_eq!(plugins, ["local_extra"], "{r}");
}
