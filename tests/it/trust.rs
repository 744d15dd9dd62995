//! The store and what leaves it stay trustworthy under real use: a hotfix edited into a
//! served tree, a damaged git object, copies of generations checked on web servers,
//! releases that drifted, a deploy directory with a symlink in it, remotes that would run
//! things, and cache entries pointed elsewhere.

use std::path::{Path, PathBuf};

use crate::support::*;

/// A site (core + a plugin from a zip + a plugin from a directory) realised: site file.
fn realised_site(f: &Fixture) -> PathBuf {
    let m = moodle_repo(f.path("moodle"));
    let zip = zip_bytes(&[
        (
            "greet/version.php",
            &plugin_php("local_greet", 2024092000, "2024100700", ""),
            0o644,
        ),
        ("greet/lib.php", "<?php\n// greet\n", 0o644),
    ]);
    let at = f.write("up/local_greet.zip", &zip);
    std::fs::create_dir_all(f.path("up/block_hello")).unwrap();
    f.write(
        "up/block_hello/version.php",
        plugin_php("block_hello", 2024111800, "2024100700", ""),
    );
    f.write("up/block_hello/block_hello.php", "<?php\n// hello\n");
    let list = f.write("empty-pluglist.json", "{\"timestamp\": 0, \"plugins\": []}");
    let site = f.site(
        &Site::new("web")
            .core(m.url(), "4.5")
            .plugin("local_greet", Src::zip(s(&at)))
            .plugin("block_hello", Src::path(s(&f.path("up/block_hello"))))
            .directory(list.display().to_string()),
    );
    f.realise_ok(&site);
    site
}

fn git_fsck(store: &Path) -> (bool, String) {
    let out = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(store.join("git"))
        .args(["fsck", "--full", "--no-dangling"])
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Writes to a read-only file as root would (or as its owner after chmod).
fn edit_in_place(path: &Path, content: &str) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).unwrap().permissions().mode();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The hotfix an administrator edits into `current` on a web server: with a release of
/// its own (the default), the store never sees it; with `--link hardlink` (asked for), the
/// store's copy is edited too, and the next realise repairs it without writing a single
/// wrong git object.
#[test]
fn a_hotfix_on_a_web_server_never_corrupts_the_store() {
    let f = Fixture::new();
    let site = realised_site(&f);
    let before = snapshot(&f.path("site/result"));
    let commit = branch_head(&f.store(), "web");
    for (link, reaches_store) in [("clone", false), ("hardlink", true)] {
        let www = f.path(&format!("www-{link}"));
        let out = f.run(&[
            "deploy",
            s(&f.store()),
            "--site",
            "web",
            "--to",
            s(&www),
            "--link",
            link,
        ]);
        let (_, err) = text(&out);
        assert!(out.status.success(), "{err}");
        assert_eq!(
            err.contains("edits the store's copy"),
            reaches_store,
            "{err}"
        );
        for file in [
            "version.php",
            "local/greet/version.php",
            "blocks/hello/block_hello.php",
        ] {
            edit_in_place(
                &www.join("current").join(file),
                "<?php\n// a hotfix, longer than the file was before it\n",
            );
        }
        let j = f.realise_ok(&site);
        assert_eq!(
            j["commit"],
            commit.as_str(),
            "the codebase is what it was: {j}"
        );
        // Edits through links are repaired and said; edits to a release of its own are
        // not the store's business.
        let warned = j["warnings"].as_array().unwrap().iter().any(|w| {
            w.as_str()
                .unwrap()
                .contains("edited through a hardlinked tree")
        });
        assert_eq!(warned, reaches_store, "{j}");
        let (sound, said) = git_fsck(&f.store());
        assert!(sound, "git fsck: {said}");
        assert_eq!(
            snapshot(&f.path("site/result")),
            before,
            "the served tree is the true one"
        );
        let out = f.run(&["verify"]);
        let (stdout, err) = text(&out);
        assert!(out.status.success(), "{stdout}{err}");
        assert!(stdout.contains("store is sound"), "{stdout}");
        // The web server's edit is there, and verify --tree names it.
        let out = f.run(&["verify", "--tree", s(&www.join("current"))]);
        let (stdout, err) = text(&out);
        assert_eq!(out.status.code(), Some(6), "{stdout}");
        assert!(stdout.contains("modified version.php"), "{stdout}");
        assert!(err.contains("(web/gen-1)"), "{err}");
    }
}

/// A loose git object whose content is not its name is found by verify (naming the
/// generation and path) and written again from the store's sound object by --repair.
#[test]
fn verify_finds_a_damaged_git_object_and_repair_writes_it_again() {
    let f = Fixture::new();
    realised_site(&f);
    // The blob of the zip plugin's lib.php (written loose, as a small package's files are),
    // damaged on disk: a well-formed object whose content is not its name.
    let blob = {
        let out = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(f.store().join("git"))
            .args(["rev-parse", "refs/heads/web:local/greet/lib.php"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let loose = f
        .store()
        .join("git/objects")
        .join(&blob[..2])
        .join(&blob[2..]);
    assert!(loose.is_file(), "a loose object");
    let _ = std::fs::remove_file(&loose);
    std::fs::write(&loose, flate2_like_deflate(b"blob 5\0hack\n")).unwrap();
    let out = f.run(&["verify", "--json"]);
    let (stdout, err) = text(&out);
    assert_eq!(out.status.code(), Some(6), "{stdout}{err}");
    let j: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let bad = &j["git_objects"][0];
    assert_eq!(bad["object"], blob.as_str(), "{j}");
    assert_eq!(bad["path"], "local/greet/lib.php", "{j}");
    let out = f.run(&["verify", "--repair"]);
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{stdout}{err}");
    assert!(stdout.contains("1 git object written again"), "{stdout}");
    let (sound, said) = git_fsck(&f.store());
    assert!(sound, "git fsck: {said}");
}

/// zlib (stored blocks, no compression) of `data`: a loose object git and gix can read.
fn flate2_like_deflate(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let mut chunks = data.chunks(65_535).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(c) = chunks.next() {
        out.push(if chunks.peek().is_none() { 1 } else { 0 });
        let n = c.len() as u16;
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(!n).to_le_bytes());
        out.extend_from_slice(c);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + x as u32) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

/// `verify --tree` on what web servers hold: a `cp -a` copy of a generation, an rsync'ed
/// copy under another name, a deployed release; the generation found by its name or its
/// files, or named.
#[test]
fn verify_tree_checks_copies_and_deployed_releases() {
    let f = Fixture::new();
    realised_site(&f);
    let generation = std::fs::canonicalize(f.path("site/result")).unwrap();
    let tree = generation
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let copy_as = |name: &str| {
        let to = f.path(name);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        assert!(
            std::process::Command::new("cp")
                .arg("-a")
                .arg(&generation)
                .arg(&to)
                .status()
                .unwrap()
                .success()
        );
        to
    };
    // Kept its name: the tree id.
    let same_name = copy_as(&format!("copies/{tree}"));
    let out = f.run(&["verify", "--tree", s(&same_name)]);
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{stdout}{err}");
    assert!(
        stdout.contains(&format!("matches generation {tree} (web/gen-1)")),
        "{stdout}"
    );
    // Another name: found by its files, drift named.
    let renamed = copy_as("copies/moodle-live");
    edit_in_place(&renamed.join("local/greet/lib.php"), "<?php\n// patched\n");
    std::fs::write(renamed.join("planted.php"), "<?php system($_GET['c']);\n").unwrap();
    let out = f.run(&["verify", "--tree", s(&renamed), "--json"]);
    let (stdout, err) = text(&out);
    assert_eq!(out.status.code(), Some(6), "{stdout}{err}");
    let j: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(j["generation"], tree.as_str(), "{j}");
    assert_eq!(j["found_by"], "files", "{j}");
    assert_eq!(j["modified"][0], "local/greet/lib.php");
    assert_eq!(j["added"][0], "planted.php");
    // Named instead.
    for named in [
        vec!["--site", "web"],
        vec!["--site", "web", "--commit", "gen-1"],
    ] {
        let mut args = vec!["verify", "--tree", s(&renamed)];
        args.extend(named.iter().copied());
        let out = f.run(&args);
        assert_eq!(out.status.code(), Some(6));
        assert!(text(&out).0.contains("modified local/greet/lib.php"));
    }
    // A deployed release, by its commit's name.
    let www = f.path("www");
    assert!(
        f.run(&["deploy", s(&f.store()), "--site", "web", "--to", s(&www)])
            .status
            .success()
    );
    let out = f.run(&["verify", "--tree", s(&www.join("current"))]);
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{stdout}{err}");
    assert!(stdout.contains("(the release's commit)"), "{stdout}");
    // Nothing of the store's.
    std::fs::create_dir_all(f.path("elsewhere")).unwrap();
    f.write("elsewhere/a.txt", "nothing\n");
    let out = f.run(&["verify", "--tree", s(&f.path("elsewhere"))]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(err.contains("matches no generation"), "{err}");
    assert!(err.contains("--site"), "{err}");
}

/// A release deployed again is checked first: one with an edited or a planted file is laid
/// out anew, never served as it is.
#[test]
fn a_drifted_release_is_laid_out_again_before_it_is_served() {
    let f = Fixture::new();
    let site = realised_site(&f);
    let www = f.path("www");
    let store = f.store();
    let deploy = |commit: Option<&str>| {
        let mut args = vec![
            "deploy",
            "--json",
            s(&store),
            "--site",
            "web",
            "--to",
            s(&www),
        ];
        if let Some(c) = commit {
            args.extend(["--commit", c]);
        }
        let out = f.run(&args);
        let (stdout, err) = text(&out);
        assert!(out.status.success(), "{err}");
        (
            serde_json::from_str::<serde_json::Value>(&stdout).unwrap(),
            err,
        )
    };
    let (first, _) = deploy(None);
    let release = PathBuf::from(first["release"].as_str().unwrap());
    // A second generation, deployed, then the first again after someone touched it.
    f.write("up/block_hello/extra.php", "<?php\n");
    f.realise_ok(&site);
    deploy(None);
    edit_in_place(
        &release.join("index.php"),
        "<?php\n// edited on the server\n",
    );
    std::fs::write(release.join("shell.php"), "<?php system($_GET['c']);\n").unwrap();
    let (again, err) = deploy(Some("gen-1"));
    assert_eq!(again["release"], first["release"]);
    let drifted: Vec<&str> = again["drifted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(drifted, ["index.php", "shell.php"], "{again}");
    assert!(err.contains("had drifted"), "{err}");
    assert!(!release.join("shell.php").exists());
    let out = f.run(&["verify", "--tree", s(&www.join("current"))]);
    assert!(out.status.success(), "{}", text(&out).0);
}

/// `releases`, `current` and the lock are entries of the deploy directory: a symlink in
/// their place leading elsewhere is refused and nothing there is touched.
#[test]
fn deploy_never_follows_a_symlink_out_of_its_directory() {
    let f = Fixture::new();
    realised_site(&f);
    let elsewhere = f.path("elsewhere");
    // What a prune would remove if it followed the link: directories named like commits.
    for n in 0..7 {
        std::fs::create_dir_all(elsewhere.join(format!("{:040x}", n))).unwrap();
    }
    let www = f.path("www");
    std::fs::create_dir_all(&www).unwrap();
    std::os::unix::fs::symlink(&elsewhere, www.join("releases")).unwrap();
    let out = f.run(&[
        "deploy",
        s(&f.store()),
        "--site",
        "web",
        "--to",
        s(&www),
        "--keep",
        "1",
    ]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("releases is a symlink"), "{err}");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 7);
    assert!(!www.join("current").exists());
    // The lock file as a symlink: refused too.
    std::fs::remove_file(www.join("releases")).unwrap();
    std::os::unix::fs::symlink(elsewhere.join("victim"), www.join(".mcb-deploy.lock")).unwrap();
    let out = f.run(&["deploy", s(&f.store()), "--site", "web", "--to", s(&www)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    assert!(!elsewhere.join("victim").exists());
}

/// Remote helpers (`fd::N`, `ext::…`) read mcb's descriptors or run commands: refused at
/// once, by push and deploy.
#[test]
fn remotes_that_are_remote_helpers_are_refused_at_once() {
    let f = Fixture::new();
    let site = realised_site(&f);
    let marker = f.path("ran");
    let ext = format!("ext::sh -c touch% {}", marker.display());
    for remote in ["fd::3", "fd::5", ext.as_str()] {
        let started = std::time::Instant::now();
        let out = f.run(&["push", s(&site), remote]);
        let (_, err) = text(&out);
        assert_eq!(out.status.code(), Some(64), "{err}");
        assert!(err.contains("names a remote helper"), "{err}");
        let out = f.run(&["deploy", remote, "--site", "web", "--to", s(&f.path("www"))]);
        let (_, err) = text(&out);
        assert_eq!(out.status.code(), Some(64), "{err}");
        assert!(err.contains("names a remote helper"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }
    assert!(!marker.exists());
}

/// A cache entry pointed elsewhere (the md5 memo of a directory zip naming another
/// archive, a commit's manifest memo naming another manifest) is not believed by realise,
/// and verify names it; --repair removes it.
#[test]
fn a_redirected_cache_entry_is_never_believed_and_verify_names_it() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let server = crate::support::http::Server::start();
    use crate::support::directory::{Published, md5_hex, publish};
    let good = Published::new("mod_good", 2024100800, "2024100700", &["4.5"]);
    let other = Published::new("mod_other", 2024100900, "2024100700", &["4.5"]);
    let (good_md5, other_md5) = (md5_hex(&good.zip()), md5_hex(&other.zip()));
    let list = publish(&server, &server, &[good, other]);
    let site_for = |name: &str, plugin: &str| {
        f.write(
            &format!("{name}/site.ron"),
            format!(
                "Site(name: \"{name}\", moodle: (version: \"4.5\", git: \"{}\"), plugins: {{\"{plugin}\": ()}}, directory: \"{list}\")\n",
                m.url()
            ),
        )
    };
    f.realise_ok(&site_for("one", "mod_good"));
    f.realise_ok(&site_for("two", "mod_other"));
    // Point mod_good's md5 memo at mod_other's archive.
    let memos = f.store().join("cache/archive-md5-v2");
    let text_of = |md5: &str| std::fs::read_to_string(memos.join(md5)).unwrap();
    let other_memo = text_of(&other_md5);
    std::fs::write(memos.join(&good_md5), &other_memo).unwrap();
    let out = f.run(&["verify", "--json"]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(6), "{stdout}");
    let j: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(
        j["cache"][0]["problem"]
            .as_str()
            .unwrap()
            .contains("whose md5 is"),
        "{j}"
    );
    // A new site asking for mod_good gets mod_good, not what the memo names.
    let three = f.realise_ok(&site_for("three", "mod_good"));
    let lib = std::fs::read_to_string(f.path("three/result/mod/good/lib.php")).unwrap();
    assert!(lib.contains("mod_good"), "{three}: {lib}");
    let out = f.run(&["verify", "--repair"]);
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{stdout}{err}");
    assert!(stdout.contains("store is sound"), "{stdout}");

    // Core's commit memo pointed at a plugin's manifest: a new site still gets core.
    let commits = f.store().join("cache/git-manifests-v1");
    let core_memo = std::fs::read_dir(&commits)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let lock = std::fs::read_to_string(f.path("one/site.lock")).unwrap();
    let plugin_manifest = lock
        .lines()
        .filter_map(|l| l.trim().strip_prefix("manifest: \""))
        .map(|m| m.trim_end_matches("\","))
        .next_back()
        .unwrap()
        .to_string();
    std::fs::write(&core_memo, format!("{plugin_manifest}\n")).unwrap();
    let out = f.run(&["verify", "--json"]);
    let j: serde_json::Value = serde_json::from_str(&text(&out).0).unwrap();
    assert_eq!(out.status.code(), Some(6));
    assert!(
        j["cache"][0]["entry"]
            .as_str()
            .unwrap()
            .contains("git-manifests-v1"),
        "{j}"
    );
    f.realise_ok(&site_for("four", "mod_good"));
    assert!(f.path("four/result/version.php").is_file());
    assert!(f.path("four/result/lib/components.json").is_file());
}

/// A core whose components.json places a plugin type outside the codebase is refused,
/// naming the file, the type and the directory (not git's words about a path).
#[test]
fn a_plugin_type_outside_the_codebase_is_refused_naming_components_json() {
    for dir in ["../b", "/srv/b"] {
        let f = Fixture::new();
        let m = GitRepo::init(f.path("moodle"));
        write_core(&m, "", "2024100700.00", "4.5 (Build: 20241007)", "405");
        let mut c: serde_json::Value = serde_json::from_str(COMPONENTS_JSON).unwrap();
        c["plugintypes"]["evil"] = dir.into();
        m.write("lib/components.json", &c.to_string());
        m.commit("4.5");
        m.tag("v4.5.0");
        let site = f.site(&Site::new("s").core(m.url(), "4.5"));
        let err = f.realise_err(&site, 5);
        assert!(
            err.contains(&format!(
                "lib/components.json is not valid: plugin type 'evil' has the directory '{dir}'"
            )),
            "{err}"
        );
        assert!(!err.contains("invalid filename"), "{err}");
    }
}

/// Every way a command can fail says why on stderr (the harness checks each run of every
/// test; this one runs a failure of each command and kind on purpose).
#[test]
fn every_failure_says_why() {
    let f = Fixture::new();
    let site = realised_site(&f);
    let bad_site = f.write(
        "bad/site.ron",
        "Site(name: \"x\", moodle: (version: \"4.5\"\n",
    );
    let lock = f.write("bad/site.lock", "(format: 9)");
    let no_store = f.path("no-store");
    let cases: Vec<(Vec<String>, i32)> = vec![
        (
            vec!["realise".into(), s(&f.path("nowhere/site.ron")).into()],
            3,
        ),
        (vec!["realise".into(), s(&bad_site).into()], 3),
        (vec!["plan".into(), s(&bad_site).into()], 3),
        (vec!["history".into(), "no-such-site".into()], 64),
        (
            vec![
                "rollback".into(),
                s(&site).into(),
                "--to".into(),
                "0000000".into(),
            ],
            64,
        ),
        (vec!["forget".into(), "no-such-site".into()], 64),
        (vec!["reproduce".into(), s(&lock).into()], 3),
        (vec!["import".into(), s(&f.path("nowhere")).into()], 1),
        (vec!["push".into(), s(&site).into(), "fd::3".into()], 64),
        (
            vec![
                "deploy".into(),
                "ext::x".into(),
                "--site".into(),
                "web".into(),
                "--to".into(),
                s(&f.path("www")).into(),
            ],
            64,
        ),
        (
            vec![
                "deploy".into(),
                "--rollback".into(),
                "--to".into(),
                s(&f.path("www-none")).into(),
            ],
            64,
        ),
        (
            vec![
                "verify".into(),
                "--tree".into(),
                s(&f.path("nowhere")).into(),
            ],
            1,
        ),
        (
            vec!["info".into(), "--offline".into(), "mod_nothing".into()],
            5,
        ),
        (
            vec![
                "add".into(),
                "notacomponent".into(),
                "--site".into(),
                s(&site).into(),
            ],
            3,
        ),
        (
            vec![
                "remove".into(),
                "mod_nothing".into(),
                "--site".into(),
                s(&site).into(),
            ],
            3,
        ),
        (vec!["init".into(), s(&site).into()], 64),
        (
            vec![
                "check".into(),
                s(&site).into(),
                "--moodle".into(),
                "nine".into(),
            ],
            64,
        ),
        (vec!["realise".into(), "--no-such-flag".into()], 64),
        (
            vec![
                "init".into(),
                "--config-php".into(),
                s(&site).into(),
                s(&f.path("new/site.ron")).into(),
            ],
            64,
        ),
        (
            vec![
                "test".into(),
                "--db".into(),
                "oracle".into(),
                s(&site).into(),
            ],
            64,
        ),
    ];
    // Every message whole, under review: what the error says, its causes and its hint.
    let mut said = String::new();
    for (args, code) in cases {
        let out = f.mcb().args(&args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        said.push_str(&format!(
            "$ mcb {}\n{}\n",
            args.join(" "),
            crate::snapshots::shown(&out)
        ));
    }
    crate::snapshots::settings(&f).bind(|| {
        insta::assert_snapshot!("every-failure", said);
    });
    // With --json too, and against a store that is not there.
    for args in [
        vec!["verify", "--json"],
        vec!["gc", "--json"],
        vec!["sites", "--json"],
    ] {
        let out = f.mcb_with_store(&no_store).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(j["error"]["exit_code"], 1, "{j}");
    }
}

/// A plugin of more than a thousand files enters git as one pack: its blobs are not loose,
/// git reads and checks them, gc's repack keeps them, and a rollback to its first
/// generation (no longer laid out) gives the tree its commit names.
#[test]
fn a_package_of_a_thousand_files_goes_into_git_as_one_pack_that_gc_and_rollback_keep() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let list = f.write("empty-pluglist.json", "{\"timestamp\": 0, \"plugins\": []}");
    let generation = |n: u32| -> PathBuf {
        let files: Vec<(String, String)> = (0..1200)
            .map(|i| {
                (
                    format!("big/lib/d{}/f{i}.php", i % 40),
                    format!(
                        "<?php\n// file {i} of release {}\n",
                        if i == 7 { n } else { 1 }
                    ),
                )
            })
            .chain(std::iter::once((
                "big/version.php".to_string(),
                plugin_php("local_big", 2024092000 + n as u64, "2024100700", ""),
            )))
            .collect();
        let entries: Vec<(&str, &str, u32)> = files
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_str(), 0o644))
            .collect();
        let at = f.write(&format!("up/local_big-{n}.zip"), zip_bytes(&entries));
        f.site(
            &Site::new("big")
                .core(m.url(), "4.5")
                .plugin("local_big", Src::zip(s(&at)))
                .directory(list.display().to_string()),
        )
    };
    let site = generation(1);
    f.realise_ok(&site);
    let git_dir = f.store().join("git");
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(&git_dir)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let first_commit = git(&["rev-parse", "refs/heads/big"]).1.trim().to_string();
    let blob = git(&["rev-parse", "refs/heads/big:local/big/lib/d7/f7.php"]).1;
    let blob = blob.trim();
    assert!(
        !git_dir
            .join("objects")
            .join(&blob[..2])
            .join(&blob[2..])
            .exists(),
        "a blob of a large package is not a loose object"
    );
    assert_eq!(
        git(&["cat-file", "-p", blob]).1,
        "<?php\n// file 7 of release 1\n"
    );
    assert!(f.run(&["verify"]).status.success());
    let (sound, said) = git_fsck(&f.store());
    assert!(sound, "git fsck: {said}");

    // Two more generations: the first is no longer laid out.
    for n in [2, 3] {
        f.realise_ok(&generation(n));
    }
    let out = f.run(&["history", s(&site)]);
    let (stdout, _) = text(&out);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("gen-1 ") && l.contains("not laid out")),
        "{stdout}"
    );
    // git's own gc repacks everything into one pack; nothing is lost.
    let out = f.run(&["gc", "--grace", "0"]);
    assert!(out.status.success(), "{}", text(&out).1);
    let out = f.run(&["verify"]);
    assert!(out.status.success(), "{}{}", text(&out).0, text(&out).1);
    let (sound, said) = git_fsck(&f.store());
    assert!(sound, "git fsck: {said}");

    let out = f.run(&["rollback", "--allow-downgrade", "--to", "gen-1", s(&site)]);
    assert!(out.status.success(), "{}", text(&out).1);
    let served = std::fs::canonicalize(site.with_file_name("result")).unwrap();
    assert_eq!(
        std::fs::read_to_string(served.join("local/big/lib/d7/f7.php")).unwrap(),
        "<?php\n// file 7 of release 1\n"
    );
    assert_committed_tree_is_materialised(&f.store(), &first_commit, &served);
}
