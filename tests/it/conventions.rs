//! The command line as users of cargo, Composer, git and Terraform expect it: the site
//! file found from any directory below it (or with `-C`), components named alone, one
//! spelling of a generation that every command takes.

use std::path::Path;

use crate::deploy::git_at;
use crate::gitops::{add_tag, plugin};
use crate::support::*;

/// `mcb ARGS` run in `dir`.
fn run_in(f: &Fixture, dir: &Path, args: &[&str]) -> std::process::Output {
    f.mcb().current_dir(dir).args(args).output().unwrap()
}

#[test]
fn the_site_file_is_found_as_cargo_finds_its_manifest() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let a = plugin(&f, "mod_a", &[("v1", 2024010100, "")]);
    let b = plugin(&f, "mod_b", &[("v1", 2024010100, "")]);
    let site = good_site(
        &f,
        &m,
        &[("mod_a", Src::git(a.url())), ("mod_b", Src::git(b.url()))],
    );
    let dir = site.parent().unwrap().to_path_buf();
    let deep = dir.join("docs/notes");
    std::fs::create_dir_all(&deep).unwrap();

    // From a directory below the site file, with no argument.
    let out = run_in(&f, &deep, &["realise", "--json"]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert!(
        dir.join("result").exists(),
        "the result link sits beside the site file"
    );

    // A directory argument means the site.ron in it; -C moves first.
    add_tag(&a, "mod_a", "v2", 2024020100, "");
    add_tag(&b, "mod_b", "v2", 2024020100, "");
    let out = run_in(&f, &f.path(""), &["outdated", s(&dir)]);
    assert_eq!(code(&out), 2, "{}", said(&out));
    let out = run_in(&f, &f.path(""), &["-C", s(&deep), "outdated"]);
    assert_eq!(code(&out), 2, "{}", said(&out));
    assert!(
        said(&out).contains("mod_a r2024010100 → r2024020100"),
        "{}",
        said(&out)
    );

    // `update COMPONENT` names the component alone, as `composer update vendor/pkg` does.
    let out = run_in(&f, &deep, &["update", "--json", "mod_a"]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let j = json_of(&out);
    assert_eq!(j["plugins"]["mod_a"]["version"], "2024020100");
    assert_eq!(j["plugins"]["mod_b"]["version"], "2024010100");

    // A directory without a site file says so, and where none is found, that too.
    let empty = f.path("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = run_in(&f, &f.path(""), &["plan", s(&empty)]);
    assert_eq!(code(&out), 3, "{}", said(&out));
    assert!(
        said(&out).contains("is a directory without a site.ron"),
        "{}",
        said(&out)
    );
    let out = run_in(&f, &f.path(""), &["-C", "/nonexistent-dir", "plan"]);
    assert_eq!(code(&out), 64, "{}", said(&out));
}

#[test]
fn a_generation_has_one_name_everywhere() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let x = plugin(&f, "mod_x", &[("v1.0", 2024050100, "")]);
    let site = good_site(&f, &m, &[("mod_x", Src::git(x.url()))]);
    let first = f.realise_ok(&site);
    let first_commit = first["commit"].as_str().unwrap().to_string();
    add_tag(&x, "mod_x", "v1.1", 2024060100, "");
    assert_eq!(code(&f.run(&["update", s(&site)])), 0);
    let dir = site.parent().unwrap();

    // The name history prints, the tag's name, -N and a commit prefix all name gen-1;
    // the site is named by its name as well as by its file.
    for to in ["-1", "gen-1", "s1/gen-1", &first_commit[..9]] {
        let out = run_in(
            &f,
            dir,
            &["rollback", "--json", "--allow-downgrade", "--to", to, "s1"],
        );
        assert_eq!(code(&out), 0, "--to {to}: {}", said(&out));
        assert_eq!(json_of(&out)["to"], first_commit.as_str(), "--to {to}");
        // Forward again, to the newest generation's code, for the next spelling.
        let out = run_in(&f, dir, &["rollback", "--json", "--to", "gen-2"]);
        assert_eq!(code(&out), 0, "{}", said(&out));
    }

    // A site is named by its name as well as by its file, by every command.
    for cmd in ["plan", "status", "tree"] {
        let out = run_in(&f, &f.path(""), &[cmd, "s1"]);
        assert!(said(&out).contains("s1"), "{cmd} s1: {}", said(&out));
        assert!(
            !said(&out).contains("cannot read the site file"),
            "{cmd}: {}",
            said(&out)
        );
    }

    // What names nothing says what would.
    let out = f.run(&["rollback", "--to", "gen-99", "s1"]);
    assert_eq!(code(&out), 64, "{}", said(&out));
    assert!(
        said(&out).contains("site s1 has no gen-99"),
        "{}",
        said(&out)
    );
    let out = f.run(&["rollback", "--to", "other/gen-1", "s1"]);
    assert!(
        said(&out).contains("names a generation of site other"),
        "{}",
        said(&out)
    );
    // verify --tree and deploy take the same names.
    let out = f.run(&[
        "verify",
        "--tree",
        s(&dir.join("result")),
        "--site",
        "s1",
        "--commit",
        "s1/gen-2",
    ]);
    assert_eq!(code(&out), 0, "result serves gen-2's code: {}", said(&out));
}

#[test]
fn why_and_tree_show_what_pulled_a_plugin_in() {
    let f = Fixture::new();
    let (site, _server, _m) = crate::snapshots::sample(&f);
    f.realise_ok(&site);
    let dir = site.parent().unwrap();
    let why = run_in(&f, dir, &["why", "local_helper"]);
    assert_eq!(code(&why), 0, "{}", said(&why));
    let tree = run_in(&f, dir, &["tree"]);
    assert_eq!(code(&tree), 0, "{}", said(&tree));
    let dot = run_in(&f, dir, &["tree", "--dot"]);
    assert!(String::from_utf8_lossy(&dot.stdout).starts_with("digraph {"));
    let j = json_of(&run_in(&f, dir, &["why", "--json", "local_helper"]));
    assert_eq!(j["in_site_file"], false);
    assert_eq!(
        j["chains"],
        serde_json::json!([["mod_att", "local_helper"]])
    );
    let j = json_of(&run_in(&f, dir, &["tree", "--json"]));
    let att = j["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["component"] == "mod_att")
        .unwrap()
        .clone();
    assert_eq!(att["requires"]["local_helper"], "2024010100");
    let typo = run_in(&f, dir, &["why", "local_helpr"]);
    assert_eq!(code(&typo), 3);
    crate::snapshots::settings(&f).bind(|| {
        insta::assert_snapshot!("why", crate::snapshots::shown(&why));
        insta::assert_snapshot!("tree", crate::snapshots::shown(&tree));
        insta::assert_snapshot!("why-typo", crate::snapshots::shown(&typo));
    });
}

#[test]
fn add_changes_an_entry_and_remove_takes_its_comment() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let x = plugin(
        &f,
        "mod_x",
        &[("v1.0", 2024050100, ""), ("v1.1", 2024060100, "")],
    );
    let site = good_site(&f, &m, &[]);
    let text = std::fs::read_to_string(&site).unwrap();
    let text = text.replacen(
        "plugins: {",
        &format!(
            "plugins: {{\n        // X, for the course team.\n        \"mod_x\": (git: \"{}\", ref: \"v1.1\"),",
            x.url()
        ),
        1,
    );
    std::fs::write(&site, text).unwrap();
    f.realise_ok(&site);
    let dir = site.parent().unwrap();

    // add of a component already there changes its entry, as `composer require` does.
    let out = run_in(
        &f,
        dir,
        &["add", "mod_x", "--git", &x.url(), "--ref", "v1.0"],
    );
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert!(said(&out).contains("changed mod_x in"), "{}", said(&out));
    let text = std::fs::read_to_string(&site).unwrap();
    assert!(text.contains("// X, for the course team.\n"), "{text}");
    assert!(text.contains("ref: \"v1.0\")"), "{text}");
    assert_eq!(text.matches("\"mod_x\":").count(), 1, "{text}");

    // A typo is answered with the name meant; the entry's own comment goes with it.
    let out = run_in(&f, dir, &["remove", "mod_xx"]);
    assert_eq!(code(&out), 3);
    assert!(
        said(&out).contains("hint: did you mean mod_x?"),
        "{}",
        said(&out)
    );
    let out = run_in(&f, dir, &["remove", "mod_x"]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let text = std::fs::read_to_string(&site).unwrap();
    assert!(!text.contains("course team"), "{text}");
}

#[test]
fn a_rollback_says_when_the_site_file_would_undo_it_and_pin_makes_it_hold() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let x = plugin(&f, "mod_x", &[("v1.0", 2024050100, "")]);
    let y = plugin(&f, "mod_y", &[("v1.0", 2024050100, "")]);
    let site = good_site(&f, &m, &[("mod_x", Src::git(x.url()))]);
    f.realise_ok(&site);
    let dir = site.parent().unwrap();
    // The site file gains a plugin; realise; then roll back.
    let out = run_in(&f, dir, &["add", "mod_y", "--git", &y.url()]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    f.realise_ok(&site);
    let out = run_in(&f, dir, &["rollback"]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let t = said(&out);
    assert!(
        t.contains("asks for another codebase than the one restored"),
        "{t}"
    );
    assert!(t.contains("+ mod_y"), "{t}");
    assert!(t.contains("hint: pass --pin"), "{t}");
    crate::snapshots::settings(&f)
        .bind(|| insta::assert_snapshot!("rollback-undone", crate::snapshots::shown(&out)));

    // Pinned, the rollback holds: plan has nothing to do, realise --locked builds it.
    let out = run_in(&f, dir, &["rollback", "--to", "gen-2"]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let text = std::fs::read_to_string(&site).unwrap();
    let text = text.replace(&format!("\"mod_y\": (git: \"{}\"),", y.url()), "");
    std::fs::write(&site, &text).unwrap();
    let out = run_in(&f, dir, &["rollback", "--json", "--to", "gen-1", "--pin"]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let j = json_of(&out);
    assert_eq!(j["next_realise"], serde_json::json!([]), "{j}");
    assert!(
        j["pinned"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "mod_x 2024050100"),
        "{j}"
    );
    let text = std::fs::read_to_string(&site).unwrap();
    assert!(text.contains("version: \"2024050100\""), "{text}");
    // The lock says what the pinned site file asks: CI's `realise --locked` passes.
    let out = run_in(&f, dir, &["realise", "--locked"]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    add_tag(&x, "mod_x", "v2.0", 2024070100, "");
    let out = run_in(&f, dir, &["update", "--json"]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert_eq!(json_of(&out)["plugins"]["mod_x"]["version"], "2024050100");
    let out = run_in(&f, dir, &["plan"]);
    assert_eq!(code(&out), 0, "{}", said(&out));
}

#[test]
fn a_saved_plan_is_built_only_while_nothing_moved() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let x = plugin(&f, "mod_x", &[("v1.0", 2024050100, "")]);
    let site = good_site(&f, &m, &[("mod_x", Src::git(x.url()))]);
    let dir = site.parent().unwrap();
    let out = run_in(&f, dir, &["plan", "--out", "web.plan"]);
    assert_eq!(code(&out), 2, "{}", said(&out));
    assert!(
        said(&out).contains("plan saved to web.plan"),
        "{}",
        said(&out)
    );
    let out = run_in(&f, dir, &["realise", "--plan", "web.plan"]);
    assert_eq!(code(&out), 0, "{}", said(&out));

    // The next plan, then upstream moves: refused, and nothing is built.
    let out = run_in(&f, dir, &["plan", "--out", "web.plan"]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let head = branch_head(&f.store(), "s1");
    let text = std::fs::read_to_string(&site).unwrap();
    std::fs::write(
        &site,
        text.replace("\"mod_x\"", "// moved\n        \"mod_x\""),
    )
    .unwrap();
    let out = run_in(&f, dir, &["realise", "--plan", "web.plan"]);
    assert_eq!(code(&out), 2, "{}", said(&out));
    assert!(said(&out).contains("no longer holds"), "{}", said(&out));
    crate::snapshots::settings(&f)
        .bind(|| insta::assert_snapshot!("realise-plan-moved", crate::snapshots::shown(&out)));
    assert!(said(&out).contains("site.ron changed"), "{}", said(&out));
    assert_eq!(branch_head(&f.store(), "s1"), head);
    // Not a plan at all.
    std::fs::write(dir.join("bad.plan"), "{}").unwrap();
    let out = run_in(&f, dir, &["realise", "--plan", "bad.plan"]);
    assert_eq!(code(&out), 3, "{}", said(&out));
}

#[test]
fn colour_on_demand_never_in_pipes_and_json_for_usage_errors() {
    let f = Fixture::new();
    let nowhere = f.path("nowhere/site.ron");
    // Piped: no colour, unless asked; NO_COLOR is the user's word for auto.
    let plain = f.run(&["plan", s(&nowhere)]);
    assert!(!said(&plain).contains('\u{1b}'), "{}", said(&plain));
    let out = f.run(&["--color", "always", "plan", s(&nowhere)]);
    assert!(
        said(&out).contains("\u{1b}[1m\u{1b}[31merror:\u{1b}[0m"),
        "{:?}",
        said(&out)
    );
    let out = f
        .mcb()
        .env("NO_COLOR", "1")
        .args(["plan", s(&nowhere)])
        .output()
        .unwrap();
    assert!(!said(&out).contains('\u{1b}'));

    // A command line that does not parse still answers --json with JSON.
    let out = f.run(&["plan", "--json", "--no-such-flag"]);
    assert_eq!(code(&out), 64);
    let j = json_of(&out);
    assert_eq!(j["error"]["kind"], "usage");
    assert_eq!(j["error"]["exit_code"], 64);
}

#[test]
fn help_has_examples_and_the_manual_lists_commands_and_environment() {
    let f = Fixture::new();
    let out = f.run(&["update", "--help"]);
    let t = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(t.contains("Examples:\n  mcb update "), "{t}");
    assert!(t.contains("Global options:"), "{t}");
    let options = t.split("Global options:").next().unwrap();
    assert!(!options.contains("--store"), "{t}");
    let man = String::from_utf8_lossy(&f.run(&["man"]).stdout).to_string();
    assert!(!man.contains("mcb-realise(1)"), "no page of its own exists");
    assert!(man.contains(".SH ENVIRONMENT"));
    assert!(man.contains("MCB_STORE") && man.contains("NO_COLOR"));
    assert!(man.contains("\\fBmcb realise"), "{man}");
}

#[test]
fn deploy_refuses_a_failed_generation_and_says_when_one_was_never_tested() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let x = plugin(&f, "mod_x", &[("v1.0", 2024050100, "")]);
    let site = good_site(&f, &m, &[("mod_x", Src::git(x.url()))]);
    let first = f.realise_ok(&site);
    let commit = first["commit"].as_str().unwrap();
    let www = f.path("www");
    let remote = f.path("remote.git");
    git_at(&f.path(""), &["init", "-q", "--bare", s(&remote)]);

    // Never tested: deployed, and said.
    let out = f.run(&["deploy", s(&f.store()), "--site", "s1", "--to", s(&www)]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert!(said(&out).contains("was never tested"), "{}", said(&out));

    // A failed test on record (as `mcb test` writes it, and push sends it): refused from
    // the store and from a remote, current untouched; --untested deploys it.
    let git = f.store().join("git");
    git_at(
        &git,
        &[
            "notes",
            "--ref",
            "refs/notes/mcb-test",
            "add",
            "-f",
            "-m",
            "mcb test: FAILED",
            commit,
        ],
    );
    let out = f.run(&["push", s(&site), s(&remote)]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let before = std::fs::read_link(www.join("current")).unwrap();
    std::fs::remove_dir_all(www.join("releases").join(commit)).unwrap();
    for from in [f.store(), remote.clone()] {
        let out = f.run(&["deploy", s(&from), "--site", "s1", "--to", s(&www)]);
        assert_eq!(code(&out), 2, "{}", said(&out));
        crate::snapshots::settings(&f)
            .bind(|| insta::assert_snapshot!("deploy-test-failed", crate::snapshots::shown(&out)));
        assert!(
            said(&out).contains("failed its `mcb test`"),
            "{}",
            said(&out)
        );
        assert!(!www.join("releases").join(commit).exists());
    }
    assert_eq!(std::fs::read_link(www.join("current")).unwrap(), before);
    let out = f.run(&[
        "deploy",
        s(&remote),
        "--site",
        "s1",
        "--to",
        s(&www),
        "--untested",
    ]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert!(
        said(&out).contains("deployed as --untested asked"),
        "{}",
        said(&out)
    );
}

#[test]
fn the_lesser_conventions_hold() {
    let f = Fixture::new();
    let dir = f.path("new");
    std::fs::create_dir_all(&dir).unwrap();
    // init: a release Moodle never made is refused; --json answers; no --store.
    let out = run_in(&f, &dir, &["init", "--moodle", "4.6"]);
    assert_eq!(code(&out), 64, "{}", said(&out));
    assert!(
        said(&out).contains("Moodle 4.6 does not exist"),
        "{}",
        said(&out)
    );
    crate::snapshots::settings(&f)
        .bind(|| insta::assert_snapshot!("init-no-such-release", crate::snapshots::shown(&out)));
    assert!(!dir.join("site.ron").exists());
    let out = run_in(&f, &dir, &["init", "--json", "--moodle", "5.1"]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert_eq!(json_of(&out)["moodle"], "5.1");
    assert_eq!(json_of(&out)["name"], "new");
    // Global options where they mean nothing are not in the help.
    let help = String::from_utf8_lossy(&run_in(&f, &dir, &["init", "--help"]).stdout).to_string();
    assert!(
        !help.contains("--store") && help.contains("--json"),
        "{help}"
    );
    let help = String::from_utf8_lossy(&run_in(&f, &dir, &["man", "--help"]).stdout).to_string();
    assert!(
        !help.contains("--store") && !help.contains("--json"),
        "{help}"
    );

    // realise --no-link makes the generation and leaves result as it was; realise and plan
    // name versions alike; info lists a git plugin's tags with what each requires.
    let m = moodle_repo(f.path("moodle"));
    let x = plugin(
        &f,
        "mod_x",
        &[("v1.0", 2024050100, ""), ("v1.1", 2024060100, "")],
    );
    let site = good_site(&f, &m, &[("mod_x", Src::git(x.url()))]);
    let sdir = site.parent().unwrap();
    let out = run_in(&f, sdir, &["realise", "--no-link"]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert!(!sdir.join("result").exists());
    assert!(said(&out).contains("left as it was"), "{}", said(&out));
    let out = run_in(&f, sdir, &["info", "mod_x"]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let t = said(&out);
    assert!(t.contains("mod_x — 3 versions from git"), "{t}");
    assert!(
        t.lines()
            .any(|l| l.trim_start().starts_with("v1.1") && l.contains("2024060100")),
        "{t}"
    );
    crate::snapshots::settings(&f)
        .bind(|| insta::assert_snapshot!("info-own-source", crate::snapshots::shown(&out)));
    let j = json_of(&run_in(&f, sdir, &["info", "--json", "mod_x"]));
    assert_eq!(j["versions"][0]["label"], "v1.1", "{j}");
    assert_eq!(j["versions"][0]["requires"], "2024100700", "{j}");

    // gc says what only its grace period kept: a forgotten site's young content.
    let out = f.run(&["forget", "s1", "--force"]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let out = f.run(&["gc"]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert!(
        said(&out).contains("spared, younger than the grace period (1 h): 1 generation"),
        "{}",
        said(&out)
    );
    crate::snapshots::settings(&f)
        .bind(|| insta::assert_snapshot!("gc-spared", crate::snapshots::shown(&out)));
}
