//! Hostile upstreams, careless administrators and broken servers: every input is refused
//! with a message naming the source and the problem, and a refused run leaves the store,
//! the previous `result`, the lock and the branch as they were.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::http::Server;
use crate::support::*;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A git plugin repository at `dir` whose only commit is built from raw entries, tagged v1.
fn raw_plugin(f: &Fixture, dir: &str, component: &str, extra: &[(&str, &[u8], &[u8])]) -> GitRepo {
    let r = GitRepo::init(f.path(dir));
    let php = plugin_php(component, 2024100100, "2024100700", "");
    let mut entries: Vec<(&str, &[u8], &[u8])> = vec![("100644", b"version.php", php.as_bytes())];
    entries.extend_from_slice(extra);
    let commit = r.commit_raw(&entries, "hostile");
    r.git(&["update-ref", "refs/heads/main", &commit]);
    r.git(&["tag", "v1", &commit]);
    r
}

fn git_entry(component: &'static str, repo: &GitRepo) -> (&'static str, Src) {
    (component, Src::git(repo.url()).at("v1"))
}

#[test]
fn symlinks_leaving_their_plugin_are_refused_for_every_source() {
    let (f, m, before) = realised();
    // git: an absolute target, and one that climbs out of the plugin.
    for (name, target) in [("passwd", "/etc/passwd"), ("cfg", "../../config.php")] {
        let repo = raw_plugin(
            &f,
            &format!("git-{name}"),
            "local_s",
            &[("120000", name.as_bytes(), target.as_bytes())],
        );
        let err = f.realise_err(&good_site(&f, &m, &[git_entry("local_s", &repo)]), 5);
        assert!(
            err.contains("local_s") && err.contains(&format!("'{name}'")) && err.contains(target),
            "{err}"
        );
        before.assert_intact(&f);
    }
    // zip: `top/m -> ../` is inside the archive but outside the plugin once top/ is gone.
    f.write(
        "up.zip",
        zip_bytes(&[
            (
                "local_s/version.php",
                &plugin_php("local_s", 2024100100, "2024100700", ""),
                0o644,
            ),
            ("local_s/m", "../", 0o120777),
        ]),
    );
    let err = f.realise_err(&good_site(&f, &m, &[("local_s", Src::zip("../up.zip"))]), 5);
    assert!(
        err.contains("'m'") && err.contains("outside its own plugin"),
        "{err}"
    );
    before.assert_intact(&f);
    // Links inside the plugin are fine, and land as links.
    let fine = raw_plugin(
        &f,
        "git-fine",
        "local_s",
        &[
            ("100644", b"lang/en/local_s.php", b"<?php"),
            ("120000", b"alias.php", b"lang/en/local_s.php"),
        ],
    );
    let j = f.realise_ok(&good_site(&f, &m, &[git_entry("local_s", &fine)]));
    assert_eq!(j["plugins"]["local_s"]["install_path"], "local/s");
    assert_eq!(
        std::fs::read_link(f.path("site/result/local/s/alias.php")).unwrap(),
        Path::new("lang/en/local_s.php")
    );
}

#[test]
fn git_names_and_bad_names_are_refused_for_every_source() {
    let (f, m, before) = realised();
    let cases: [(&str, &[u8]); 4] = [
        ("dotgit", b".git/config"),
        ("upper", b"sub/.GiT/hooks/post-checkout"),
        ("dots", b"a/../b.php"),
        ("utf8", b"lang/\xffname.php"),
    ];
    for (dir, path) in cases {
        let repo = raw_plugin(&f, dir, "local_s", &[("100644", path, b"x")]);
        let err = f.realise_err(&good_site(&f, &m, &[git_entry("local_s", &repo)]), 5);
        assert!(
            err.contains("local_s") && err.contains("entry '"),
            "{dir}: {err}"
        );
        before.assert_intact(&f);
    }
    // Two names that differ only in bytes that are not UTF-8 used to merge into one.
    let repo = raw_plugin(
        &f,
        "merge",
        "local_s",
        &[
            ("100644", b"a\xfe.php", b"1"),
            ("100644", b"a\xff.php", b"2"),
        ],
    );
    let err = f.realise_err(&good_site(&f, &m, &[git_entry("local_s", &repo)]), 5);
    assert!(err.contains("not valid UTF-8"), "{err}");
    // A name holding `/` inside one tree entry cannot pass for a path.
    let r = GitRepo::init(f.path("slash"));
    let php = r.blob(plugin_php("local_s", 2024100100, "2024100700", "").as_bytes());
    let evil = r.blob(b"<?php");
    let tree = r.tree_literally(&[
        ("100644", b"lib/evil.php", &evil),
        ("100644", b"version.php", &php),
    ]);
    let commit = r.git(&["commit-tree", &tree, "-m", "slash"]);
    r.git(&["tag", "v1", &commit]);
    let err = f.realise_err(&good_site(&f, &m, &[git_entry("local_s", &r)]), 5);
    assert!(
        err.contains("'lib/evil.php'") && err.contains("'/'"),
        "{err}"
    );
    before.assert_intact(&f);
    // A tree that names one subtree over and over stops at the file limit, not in memory.
    let bomb = GitRepo::init(f.path("treebomb"));
    let leaf = bomb.blob(b"x");
    let mut level = bomb.tree_literally(&[("100644", b"f", &leaf)]);
    for _ in 0..8 {
        let names: Vec<String> = (0..10).map(|i| format!("d{i}")).collect();
        let entries: Vec<(&str, &[u8], &str)> = names
            .iter()
            .map(|n| ("40000", n.as_bytes(), level.as_str()))
            .collect();
        level = bomb.tree_literally(&entries);
    }
    let php = bomb.blob(plugin_php("local_s", 2024100100, "2024100700", "").as_bytes());
    let mut top: Vec<(&str, &[u8], &str)> = vec![("100644", b"version.php", &php)];
    top.push(("40000", b"z", &level));
    let tree = bomb.tree_literally(&top);
    let commit = bomb.git(&["commit-tree", &tree, "-m", "bomb"]);
    bomb.git(&["tag", "v1", &commit]);
    let started = Instant::now();
    let err = f.realise_err(&good_site(&f, &m, &[git_entry("local_s", &bomb)]), 5);
    assert!(err.contains("more than 200000 files"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(60));
    before.assert_intact(&f);
    // A zip and a directory with a .git inside are refused the same way.
    f.write(
        "g.zip",
        zip_bytes(&[
            (
                "local_s/version.php",
                &plugin_php("local_s", 2024100100, "2024100700", ""),
                0o644,
            ),
            ("local_s/vendor/.git/config", "[core]", 0o644),
        ]),
    );
    let err = f.realise_err(&good_site(&f, &m, &[("local_s", Src::zip("../g.zip"))]), 5);
    assert!(
        err.contains("'vendor/.git/config'") && err.contains(".git entry"),
        "{err}"
    );
    f.write(
        "d/local_s/version.php",
        plugin_php("local_s", 2024100100, "2024100700", ""),
    );
    f.write("d/local_s/lib/.Git/HEAD", "ref: x");
    let err = f.realise_err(
        &good_site(&f, &m, &[("local_s", Src::path("../d/local_s"))]),
        5,
    );
    assert!(
        err.contains("lib/.Git/HEAD") && err.contains(".git entry"),
        "{err}"
    );
    before.assert_intact(&f);
    // The store's git repository still clones.
    let clone = f.path("clone");
    let out = std::process::Command::new("git")
        .args(["clone", "-q", "-b", "s1"])
        .arg(f.store().join("git"))
        .arg(&clone)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ids_in_a_lock_are_checked_and_its_tree_is_not_trusted() {
    let (f, m, before) = realised();
    let lock_path = f.path("site/site.lock");
    let lock = std::fs::read_to_string(&lock_path).unwrap();
    let tree = before
        .link
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    // An edited tree that is a path.
    std::fs::write(&lock_path, lock.replace(&tree, "../../../../etc")).unwrap();
    let err = f.realise_err(&f.path("site/site.ron"), 3);
    assert!(
        err.contains("site.lock:") && err.contains("is not a git object id"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_link(f.path("site/result")).unwrap(),
        before.link
    );
    // A short manifest id: an error, not a panic.
    let manifest = lock
        .lines()
        .find_map(|l| l.trim().strip_prefix("manifest: \""))
        .unwrap()
        .trim_end_matches("\",")
        .to_string();
    std::fs::write(&lock_path, lock.replace(&manifest, "ab")).unwrap();
    let err = f.realise_err(&f.path("site/site.ron"), 3);
    assert!(
        err.contains("is not a blake3 manifest hash") && !err.contains("panicked"),
        "{err}"
    );

    // Another site's tree, a valid id: the branch says which tree the commit holds.
    let other = Site::new("other")
        .core(m.url(), "4.4")
        .write(&f, "other/site.ron");
    let o = f.realise_ok(&other);
    let other_tree = o["tree"].as_str().unwrap();
    std::fs::write(&lock_path, lock.replace(&tree, other_tree)).unwrap();
    let j = f.realise_ok(&f.path("site/site.ron"));
    assert_eq!(
        j["tree"],
        tree.as_str(),
        "the true tree, not the lock's claim"
    );
    assert_eq!(
        std::fs::read_link(f.path("site/result")).unwrap(),
        before.link
    );
    f.mcb()
        .args(["verify", "--tree"])
        .arg(f.path("site/result"))
        .assert()
        .success();
    assert_eq!(std::fs::read_to_string(&lock_path).unwrap(), lock);
}

#[test]
fn a_subplugin_whose_name_sorts_before_its_parent_is_committed_whole() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    f.write(
        "src/mod_cert/version.php",
        plugin_php("mod_cert", 2024100100, "2024100700", ""),
    );
    f.write(
        "src/mod_cert/db/subplugins.json",
        r#"{"subplugintypes": {"certelement": "element"}}"#,
    );
    f.write("src/mod_cert/lib.php", "<?php // cert\n");
    f.write(
        "src/certelement_text/version.php",
        plugin_php("certelement_text", 2024100100, "2024100700", ""),
    );
    let site = f.site(
        &Site::new("c")
            .core(m.url(), "4.5")
            .plugin("mod_cert", Src::path("../src/mod_cert"))
            .plugin("certelement_text", Src::path("../src/certelement_text")),
    );
    // realise_ok checks the commit against the generation file by file.
    let j = f.realise_ok(&site);
    assert_eq!(
        j["plugins"]["certelement_text"]["install_path"],
        "mod/cert/element/text"
    );
    assert!(f.path("site/result/mod/cert/lib.php").is_file());
    f.mcb()
        .args(["verify", "--tree"])
        .arg(f.path("site/result"))
        .assert()
        .success();
}

#[test]
fn a_commit_of_another_upstream_is_not_a_ref_of_this_one() {
    let (f, m, before) = realised();
    let up = plugin_repo(
        f.path("up"),
        &[("v1.0", plugin_php("local_u", 2024100100, "2024100700", ""))],
    );
    let fork = GitRepo::init(f.path("fork"));
    fork.git(&["pull", "-q", &up.url(), "main"]);
    fork.write("evil.php", "<?php // fork only\n");
    let fork_commit = fork.commit("fork");
    // Another site brings the fork's commit into the store.
    let other = Site::new("other")
        .core(m.url(), "4.5")
        .plugin("local_u", Src::git(fork.url()).at("main"))
        .write(&f, "other/site.ron");
    f.realise_ok(&other);
    for reference in [fork_commit.as_str(), &fork_commit[..10]] {
        let err = f.realise_err(
            &good_site(&f, &m, &[("local_u", Src::git(up.url()).at(reference))]),
            5,
        );
        assert!(
            err.contains("local_u") && err.contains("is not a tag, branch or commit"),
            "{err}"
        );
        before.assert_intact(&f);
    }
}

#[test]
fn a_plugin_cannot_redefine_a_plugin_type() {
    let (f, m, before) = realised();
    f.write(
        "src/local_evil/version.php",
        plugin_php("local_evil", 2024100100, "2024100700", ""),
    );
    f.write(
        "src/local_evil/db/subplugins.json",
        r#"{"plugintypes": {"local": "mod"}}"#,
    );
    f.write(
        "src/local_other/version.php",
        plugin_php("local_other", 2024100100, "2024100700", ""),
    );
    let err = f.realise_err(
        &good_site(
            &f,
            &m,
            &[
                ("local_evil", Src::path("../src/local_evil")),
                ("local_other", Src::path("../src/local_other")),
            ],
        ),
        4,
    );
    assert!(
        err.contains("local_evil") && err.contains("subplugin type 'local'"),
        "{err}"
    );
    before.assert_intact(&f);
}

/// Appends to a file through a `result` link, as an administrator's hotfix would.
fn hotfix(path: &Path) {
    let real = std::fs::canonicalize(path).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&real)
        .unwrap();
    std::io::Write::write_all(&mut f, b"// hotfix\n").unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o444)).unwrap();
}

#[test]
fn an_edited_generation_is_never_reused_as_it_is() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let site_a = Site::new("a").core(m.url(), "4.5").write(&f, "a/site.ron");
    let site_b = Site::new("b").core(m.url(), "4.5").write(&f, "b/site.ron");
    f.realise_ok(&site_a);
    let original = std::fs::read(f.path("a/result/index.php")).unwrap();
    hotfix(&f.path("a/result/index.php"));

    // A second site with the same tree gets the true file back, and is told.
    let out = f.mcb().arg("realise").arg(&site_b).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("restored from git"), "{stderr}");
    assert!(stderr.contains("changed in place (index.php)"), "{stderr}");
    assert_eq!(
        std::fs::read(f.path("b/result/index.php")).unwrap(),
        original
    );
    // One generation for both: the rebuild reached site a's result too.
    assert_eq!(
        std::fs::read(f.path("a/result/index.php")).unwrap(),
        original
    );

    // A no-op realise checks the generation too.
    hotfix(&f.path("a/result/index.php"));
    let out = f.mcb().arg("realise").arg(&site_a).output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("changed in place"), "{stderr}");
    assert_eq!(
        std::fs::read(f.path("a/result/index.php")).unwrap(),
        original
    );
    f.mcb().arg("verify").assert().success();
}

/// An XFS filesystem in a file, mounted for the length of a test.
struct Xfs {
    dir: PathBuf,
}

impl Xfs {
    fn mount(f: &Fixture) -> Option<Xfs> {
        if !is_root() {
            return None;
        }
        let img = f.path("xfs.img");
        let dir = f.path("xfs");
        std::fs::create_dir_all(&dir).unwrap();
        let ok = std::process::Command::new("truncate")
            .args(["-s", "320M"])
            .arg(&img)
            .status()
            .ok()?
            .success()
            && std::process::Command::new("mkfs.xfs")
                .args(["-q", "-f"])
                .arg(&img)
                .status()
                .ok()?
                .success()
            && std::process::Command::new("mount")
                .args(["-o", "loop"])
                .arg(&img)
                .arg(&dir)
                .status()
                .ok()?
                .success();
        ok.then_some(Xfs { dir })
    }
}

impl Drop for Xfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.dir).status();
    }
}

#[test]
fn reflinks_keep_an_edit_in_its_own_tree() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let site = |name: &str, plugin: &str| {
        f.write(
            &format!("{name}/local_p/version.php"),
            plugin_php("local_p", 2024100100, "2024100700", ""),
        );
        f.write(&format!("{name}/local_p/lib.php"), plugin);
        Site::new(name)
            .core(m.url(), "4.5")
            .plugin("local_p", Src::path("local_p"))
            .write(&f, &format!("{name}/site.ron"))
    };
    let a = site("a", "<?php // a\n");
    let b = site("b", "<?php // b\n");
    // On ext4 and the like, reflinks are a clear error.
    let xfs = Xfs::mount(&f);
    let Some(xfs) = xfs else {
        let out = f
            .mcb()
            .args(["realise", "--link", "reflink"])
            .arg(&a)
            .output()
            .unwrap();
        if !out.status.success() {
            let e = String::from_utf8_lossy(&out.stderr);
            assert!(e.contains("reflinks need btrfs or XFS"), "{e}");
        }
        eprintln!("no XFS here (needs root and mkfs.xfs): checked the refusal only");
        return;
    };
    let store = xfs.dir.join("store");
    let run = |site: &Path| {
        let out = f
            .mcb_with_store(&store)
            .args(["realise", "--json", "--link", "reflink"])
            .arg(site)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let ja = run(&a);
    assert_eq!(ja["link_mode"], "reflink");
    run(&b);
    let index_a = f.path("a/result/index.php");
    assert_eq!(
        std::fs::metadata(&index_a).unwrap().nlink(),
        1,
        "a file of its own"
    );
    let original = std::fs::read(f.path("b/result/index.php")).unwrap();
    hotfix(&index_a);
    // The edit stays in a's tree: b's file and the store's object are untouched.
    assert_eq!(
        std::fs::read(f.path("b/result/index.php")).unwrap(),
        original
    );
    let v = f.mcb_with_store(&store).arg("verify").output().unwrap();
    let text = String::from_utf8_lossy(&v.stdout);
    assert!(
        !text.lines().any(|l| l.starts_with("corrupt object")),
        "{text}"
    );
    assert!(!text.contains("corrupt object"), "{text}");
    assert!(text.contains("changed in place (a, "), "{text}");
}

#[test]
fn a_destination_that_cannot_be_written_moves_nothing() {
    let (f, m, before) = realised();
    let changed = good_site(&f, &m, &[]).to_path_buf();
    // Change the site so the next run has something to publish (an older point release,
    // allowed: the site has no database yet).
    let text = std::fs::read_to_string(&changed)
        .unwrap()
        .replace("version: \"4.5\"", "version: \"4.5.1\"");
    std::fs::write(&changed, text).unwrap();
    let allow = ["--allow-downgrade"];

    // `result` is a regular file: refused before the branch moves.
    std::fs::rename(f.path("site/result"), f.path("site/result.keep")).unwrap();
    f.write("site/result", "not a link");
    let err = f.realise_err_with(&changed, &allow, 1);
    assert!(
        err.contains("result") && err.contains("not a symlink"),
        "{err}"
    );
    assert_eq!(branch_head(&f.store(), "s1"), before.branch, "branch moved");
    assert_eq!(
        std::fs::read_to_string(f.path("site/site.lock")).unwrap(),
        before.lock
    );
    std::fs::remove_file(f.path("site/result")).unwrap();
    std::fs::rename(f.path("site/result.keep"), f.path("site/result")).unwrap();

    // The lock's directory cannot be written.
    if is_root() {
        let dir = f.path("site");
        let imm = |on: bool| {
            let flag = if on { "+i" } else { "-i" };
            std::process::Command::new("chattr")
                .arg(flag)
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success())
        };
        if imm(true) {
            let out = f
                .mcb()
                .arg("realise")
                .args(allow)
                .arg(&changed)
                .output()
                .unwrap();
            imm(false);
            assert_eq!(
                out.status.code(),
                Some(1),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("error: cannot write ") && err.contains("site.lock"),
                "{err}"
            );
            assert_eq!(branch_head(&f.store(), "s1"), before.branch, "branch moved");
            assert_eq!(
                std::fs::read_link(f.path("site/result")).unwrap(),
                before.link
            );
            assert_eq!(
                std::fs::read_to_string(f.path("site/site.lock")).unwrap(),
                before.lock
            );
        }
    }
    // With the destinations writable again, the run completes.
    let j = f.realise_ok_with(&changed, &allow);
    assert_eq!(j["moodle"]["release"], "4.5.1 (Build: 20241209)");
}

#[test]
fn gc_keeps_what_a_generation_without_its_record_uses() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let site = Site::new("a")
        .core(m.url(), "4.5")
        .plugin("local_p", Src::path("local_p"))
        .write(&f, "a/site.ron");
    f.write(
        "a/local_p/version.php",
        plugin_php("local_p", 2024100100, "2024100700", ""),
    );
    let j = f.realise_ok(&site);
    let tree = j["tree"].as_str().unwrap().to_string();
    let record = f.store().join(format!("generations/{tree}.uses"));
    std::fs::remove_file(&record).unwrap();
    let before = store_state(&f.store());
    let out = f
        .mcb()
        .args(["gc", "--grace", "0", "--keep", "1"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("lost its record"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(record.is_file(), "rebuilt from the commit's lock");
    assert_eq!(
        store_state(&f.store()),
        before,
        "nothing it uses was deleted"
    );
    f.mcb().arg("verify").assert().success();

    // With no commit to say (the branch is gone, only the result link keeps it), unknown
    // use means keep everything.
    std::fs::remove_file(&record).unwrap();
    let g = GitRepo {
        path: f.store().join("git"),
    };
    g.git(&["update-ref", "-d", "refs/heads/a"]);
    let out = f.mcb().args(["gc", "--grace", "0"]).output().unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("every source was kept"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(store_state(&f.store()), before);
    f.mcb()
        .args(["verify", "--tree"])
        .arg(f.path("a/result"))
        .assert()
        .success();
}

#[test]
fn two_site_files_cannot_share_a_name() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let body = Site::new("prod").core(m.url(), "4.5");
    let one = body.write(&f, "one/site.ron");
    let two = Site::new("prod")
        .core(m.url(), "4.5")
        .write(&f, "two/site.ron");
    f.realise_ok(&one);
    let branch = branch_head(&f.store(), "prod");
    let out = f.mcb().arg("realise").arg(&two).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("site name 'prod' belongs to")
            && err.contains("one/site.ron")
            && err.contains("--force"),
        "{err}"
    );
    assert_eq!(branch_head(&f.store(), "prod"), branch);
    assert!(!f.path("two/result").exists());
    // --force moves the site to the second file.
    f.mcb()
        .args(["realise", "--force"])
        .arg(&two)
        .assert()
        .success();
    let out = f.mcb().arg("realise").arg(&one).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "now the first is the second owner"
    );
    // A deleted owner is taken over with a word.
    std::fs::remove_dir_all(f.path("two")).unwrap();
    let out = f.mcb().arg("realise").arg(&one).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("which is gone"));
}

/// A zip whose one entry claims `claimed` uncompressed bytes (a zip64 size field).
fn zip_claiming(claimed: u64) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let o = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    w.start_file("local_s/version.php", o).unwrap();
    w.write_all(plugin_php("local_s", 2024100100, "2024100700", "").as_bytes())
        .unwrap();
    let mut bytes = w.finish().unwrap().into_inner();
    // Every zip64 extra field (id 0x0001): its first 8 bytes are the uncompressed size.
    let mut i = 0;
    while i + 12 < bytes.len() {
        if bytes[i..i + 2] == [1, 0] && matches!(bytes[i + 2], 16 | 24 | 28) && bytes[i + 3] == 0 {
            bytes[i + 4..i + 12].copy_from_slice(&claimed.to_le_bytes());
            i += 12;
        } else {
            i += 1;
        }
    }
    bytes
}

#[test]
fn hostile_sizes_and_nesting_are_errors_not_crashes() {
    let (f, m, _) = realised();
    // Declared sizes are never trusted: the entry is read for what it holds (and may then
    // install), or refused; never an abort.
    for claimed in [1u64 << 50, u64::MAX] {
        f.write("huge.zip", zip_claiming(claimed));
        let out = f
            .mcb()
            .arg("realise")
            .arg(good_site(&f, &m, &[("local_s", Src::zip("../huge.zip"))]))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.code() == Some(5) || out.status.success(),
            "{:?}: {err}",
            out.status
        );
        assert!(
            !err.contains("panicked") && !err.contains("memory allocation"),
            "{err}"
        );
    }
    let before = Before::take(&f);
    // version.php nested 10,000 deep.
    let deep = format!(
        "<?php\n$plugin->component = 'local_d';\n$plugin->version = 2024100100;\n$plugin->dependencies = {};\n",
        "[".repeat(10_000)
    );
    f.write("src/local_d/version.php", deep);
    let err = f.realise_err(
        &good_site(&f, &m, &[("local_d", Src::path("../src/local_d"))]),
        4,
    );
    assert!(
        err.contains("local_d [version.php]") && err.contains("nest"),
        "{err}"
    );
    before.assert_intact(&f);
}

/// The largest resident set of any child this test process has waited for, in bytes.
#[test]
fn zip_bombs_and_endless_bodies_stop_at_the_limits() {
    let (f, m, before) = realised();
    // 1 GiB of zeros in a zip of about 1 MB.
    let bomb = {
        use std::io::Write;
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let o = zip::write::SimpleFileOptions::default().large_file(true);
        w.start_file("local_b/version.php", o).unwrap();
        w.write_all(plugin_php("local_b", 2024100100, "2024100700", "").as_bytes())
            .unwrap();
        w.start_file("local_b/zeros.bin", o).unwrap();
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..1024 {
            w.write_all(&chunk).unwrap();
        }
        w.finish().unwrap().into_inner()
    };
    assert!(bomb.len() < 4 << 20);
    f.write("bomb.zip", &bomb);
    let site = good_site(&f, &m, &[("local_b", Src::zip("../bomb.zip"))]);
    let mut cmd = f.mcb();
    cmd.env("MCB_LIMITS", "file-bytes=64M")
        .arg("realise")
        .arg(&site);
    let run = mcb_fixtures::measure::run_measured(&mut cmd.into_command());
    let (err, peak) = (run.stderr, run.max_rss_kb << 10);
    assert_eq!(run.code, Some(5), "{err}");
    assert!(
        err.contains("zeros.bin") && err.contains("file-bytes"),
        "{err}"
    );
    assert!(peak < 400 << 20, "memory stayed bounded: {peak} bytes");
    before.assert_intact(&f);
    let out = f
        .mcb()
        .env("MCB_LIMITS", "source-bytes=100M")
        .arg("realise")
        .arg(&site)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("source-bytes"));
    before.assert_intact(&f);

    // A plugins directory whose list never ends.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut c in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = std::io::Read::read(&mut c, &mut buf);
                let _ = std::io::Write::write_all(
                    &mut c,
                    b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"plugins\": [",
                );
                let chunk = vec![b' '; 1 << 16];
                while std::io::Write::write_all(&mut c, &chunk).is_ok() {}
            });
        }
    });
    let site = f.site(
        &Site::new("s1")
            .core(m.url(), "4.5")
            .plugin("mod_x", Src::index())
            .directory(format!("http://{addr}/pluglist.php")),
    );
    let out = f
        .mcb()
        .env("MCB_LIMITS", "http-bytes=4M")
        .arg("realise")
        .arg(&site)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&addr.to_string()) && err.contains("http-bytes"),
        "{err}"
    );
    before.assert_intact(&f);
}

#[test]
fn servers_that_never_answer_time_out_naming_the_host() {
    let (f, m, before) = realised();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in silent.incoming().flatten() {
            held.push(c);
        }
    });
    let site = f.site(
        &Site::new("s1")
            .core(m.url(), "4.5")
            .plugin("mod_x", Src::index())
            .directory(format!("http://{addr}/pluglist.php")),
    );
    let t = Instant::now();
    let out = f
        .mcb()
        .env("MCB_LIMITS", "idle-timeout=1s")
        .arg("realise")
        .arg(&site)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&addr.to_string()) && err.contains("did not answer in time"),
        "{err}"
    );
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    before.assert_intact(&f);

    // Git over HTTP: a silent server, and a port nobody listens on.
    let git_site = |url: &str| good_site(&f, &m, &[("local_g", Src::git(url))]);
    let out = f
        .mcb()
        .env("MCB_LIMITS", "idle-timeout=1s")
        .arg("realise")
        .arg(git_site(&format!("http://{addr}/repo.git")))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("did not answer in time") && err.contains(&addr.to_string()),
        "{err}"
    );
    let closed = crate::support::http::closed_port();
    let out = f
        .mcb()
        .arg("realise")
        .arg(git_site(&format!("http://{closed}/repo.git")))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused the connection"), "{err}");
    // A name that does not resolve (.invalid never does).
    let out = f
        .mcb()
        .arg("realise")
        .arg(git_site("http://mcb-test.invalid/repo.git"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the host name mcb-test.invalid could not be resolved"),
        "{err}"
    );
    before.assert_intact(&f);
}

#[test]
fn lesser_inputs_get_clear_errors() {
    let (f, m, before) = realised();
    // A FIFO in a path source: refused at once, not read.
    f.write(
        "src/local_f/version.php",
        plugin_php("local_f", 2024100100, "2024100700", ""),
    );
    let fifo = std::ffi::CString::new(f.path("src/local_f/pipe").to_str().unwrap()).unwrap();
    // SAFETY: a valid, NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let err = f.realise_err(
        &good_site(&f, &m, &[("local_f", Src::path("../src/local_f"))]),
        5,
    );
    assert!(err.contains("pipe") && err.contains("is a FIFO"), "{err}");
    before.assert_intact(&f);

    // version.php that is a symlink.
    f.write(
        "src/local_l/real.php",
        plugin_php("local_l", 2024100100, "2024100700", ""),
    );
    std::os::unix::fs::symlink("real.php", f.path("src/local_l/version.php")).unwrap();
    let err = f.realise_err(
        &good_site(&f, &m, &[("local_l", Src::path("../src/local_l"))]),
        4,
    );
    assert!(
        err.contains("local_l [version.php]") && err.contains("symlink"),
        "{err}"
    );
    before.assert_intact(&f);

    // A site file named *.lock.
    let err = f.realise_err(&f.path("site/site.lock"), 3);
    assert!(
        err.contains("this is a lock file") && err.contains("site.ron"),
        "{err}"
    );

    // --store pointing at a file.
    let file = f.write("not-a-store", "x");
    let out = f.mcb_with_store(&file).arg("verify").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not an mcb store"));
    let out = f
        .mcb_with_store(&file)
        .arg("realise")
        .arg(f.path("site/site.ron"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    // A mistyped store: read-only commands do not create one.
    let typo = f.path("stroe");
    for args in [&["verify"][..], &["gc", "--dry-run"]] {
        let out = f.mcb_with_store(&typo).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("there is no store"));
        assert!(!typo.exists(), "{args:?} created a store");
    }
}

#[test]
fn text_from_upstreams_reaches_the_terminal_escaped() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    f.write(
        "src/local_e/version.php",
        plugin_php(
            "local_e",
            2024100100,
            "2024100700",
            "$plugin->supported = [401, 404];",
        )
        .replace("'r2024100100'", "\"\u{1b}[2J\u{1b}]0;owned\u{7}\""),
    );
    let site = f.site(
        &Site::new("e")
            .core(m.url(), "4.5")
            .plugin("local_e", Src::path("../src/local_e")),
    );
    let out = f.mcb().arg("realise").arg(&site).output().unwrap();
    assert!(out.status.success());
    assert!(!out.stdout.contains(&0x1b) && !out.stderr.contains(&0x1b));
    // A closed pipe ends mcb quietly.
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("mcb"))
        .arg("--store")
        .arg(f.store())
        .args(["realise"])
        .arg(&site)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn the_lock_respects_the_umask_and_hashes_any_case() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let z = zip_bytes(&[(
        "local_z/version.php",
        &plugin_php("local_z", 2024100100, "2024100700", ""),
        0o644,
    )]);
    f.write("z.zip", &z);
    let site = f.site(&Site::new("u").core(m.url(), "4.5").plugin(
        "local_z",
        Src::zip("../z.zip").hash(&blake3_pin(&z).to_uppercase().replace("BLAKE3:", "blake3:")),
    ));
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin!("mcb"));
    c.arg("--store").arg(f.store()).arg("realise").arg(&site);
    // SAFETY: umask is async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut c, || {
            libc::umask(0o022);
            Ok(())
        });
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = std::fs::metadata(f.path("site/site.lock"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);
}

#[test]
fn missing_objects_are_named_and_restored_from_git() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let a = Site::new("a").core(m.url(), "4.5").write(&f, "a/site.ron");
    f.realise_ok(&a);
    let index = std::fs::read(f.path("a/result/index.php")).unwrap();
    let h = blake3::hash(&index).to_hex().to_string();
    std::fs::remove_file(f.store().join("objects").join(&h[..2]).join(&h)).unwrap();
    let out = f.mcb().arg("verify").output().unwrap();
    assert_eq!(out.status.code(), Some(6));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("names missing object {h}")),
        "{text}"
    );
    // A new site on the same core restores it from git on the way.
    let b = Site::new("b")
        .core(m.url(), "4.5")
        .plugin("local_p", Src::path("p"))
        .write(&f, "b/site.ron");
    f.write(
        "b/p/version.php",
        plugin_php("local_p", 2024100100, "2024100700", ""),
    );
    let out = f.mcb().arg("realise").arg(&b).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing; restored from git"));
    f.mcb().arg("verify").assert().success();
}

#[test]
fn submodules_are_named_when_left_out() {
    let (f, m, _before) = realised();
    let repo = raw_plugin(
        &f,
        "subm",
        "local_m",
        &[(
            "160000",
            b"vendor/lib",
            b"1111111111111111111111111111111111111111",
        )],
    );
    let out = f
        .mcb()
        .arg("realise")
        .arg(good_site(&f, &m, &[git_entry("local_m", &repo)]))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("submodule vendor/lib") && err.contains("not in the codebase"),
        "{err}"
    );
}

/// A read-only bind mount of a directory, undone on drop.
struct ReadOnly(PathBuf);

impl ReadOnly {
    fn mount(dir: &Path) -> Option<ReadOnly> {
        if !is_root() {
            return None;
        }
        let ok = |args: &[&str]| {
            std::process::Command::new("mount")
                .args(args)
                .arg(dir)
                .arg(dir)
                .status()
                .is_ok_and(|s| s.success())
        };
        if !ok(&["--bind"]) {
            return None;
        }
        let ro = std::process::Command::new("mount")
            .args(["-o", "remount,ro,bind"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        let guard = ReadOnly(dir.to_path_buf());
        ro.then_some(guard)
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn read_only_commands_work_on_a_read_only_store() {
    let f = Fixture::new();
    let server = Server::start();
    let list = crate::support::directory::publish(
        &server,
        &server,
        &[crate::support::directory::Published::new(
            "mod_x",
            2024100100,
            "2024100700",
            &["4.5"],
        )],
    );
    let m = moodle_repo(f.path("moodle"));
    let site = f.site(
        &Site::new("r")
            .core(m.url(), "4.5")
            .plugin("mod_x", Src::index())
            .directory(list),
    );
    f.realise_ok(&site);
    let Some(_ro) = ReadOnly::mount(&f.store()) else {
        eprintln!("no read-only mount here (needs root): skipped");
        return;
    };
    f.mcb().arg("verify").assert().success();
    f.mcb().args(["gc", "--dry-run"]).assert().success();
    let out = f
        .mcb()
        .args(["info", "mod_x", "--site"])
        .arg(&site)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("2024100100"));
}
