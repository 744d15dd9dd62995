//! The command line as users of cargo, Composer, git and Terraform expect it: the site
//! file found from any directory below it (or with `-C`), components named alone, one
//! spelling of a generation that every command takes.

use std::path::Path;

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
