//! Codebases leave the machine that built them: `push` to a bare repository and to a git
//! daemon on 127.0.0.1, `deploy` from the remote alone (and from a store), switching,
//! rolling back, failing without touching `current`, and links kept as links.

use std::path::{Path, PathBuf};

use crate::support::*;

fn ok(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

/// A site with a plugin and a config.php link, realised; returns the site file.
fn site(f: &Fixture, m: &GitRepo, x: &GitRepo, tag: &str) -> PathBuf {
    let list = f.write("empty-pluglist.json", "{\"timestamp\": 0, \"plugins\": []}");
    f.site(
        &Site::new("web")
            .core(m.url(), "4.5")
            .plugin("mod_x", Src::git(x.url()).at(tag))
            .directory(list.display().to_string())
            .link("config.php", "/etc/moodle/web/config.php"),
    )
}

fn bare(f: &Fixture, name: &str) -> PathBuf {
    let p = f.path(name);
    std::process::Command::new("git")
        .args(["init", "-q", "--bare"])
        .arg(&p)
        .status()
        .unwrap();
    p
}

#[test]
fn push_to_a_bare_repository_twice_and_after_divergence() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let x = plugin_repo(
        f.path("mod_x"),
        &[("v1", plugin_php("mod_x", 2024050100, "2024100700", ""))],
    );
    let site = site(&f, &m, &x, "v1");
    f.realise_ok(&site);
    let remote = bare(&f, "remote.git");
    // A push killed while tagging left a tag's lock: the next push clears it.
    let tags = f.store().join("git/refs/tags/web");
    std::fs::create_dir_all(&tags).unwrap();
    std::fs::write(tags.join("gen-1.lock"), "").unwrap();
    let j = ok(&f.run(&["push", "--json", s(&site), s(&remote)]));
    assert_eq!(j["updated"], true);
    assert!(!tags.join("gen-1.lock").exists());
    let j = ok(&f.run(&["push", "--json", s(&site), s(&remote)]));
    assert_eq!(j["updated"], false, "pushing twice changes nothing");
    assert_eq!(
        branch_head(&f.store(), "web"),
        git_at(&remote, &["rev-parse", "web"])
    );
    // Someone else commits on the remote's branch: refused, then --force.
    let tree = git_at(&remote, &["rev-parse", "web^{tree}"]);
    let other = git_at(
        &remote,
        &["commit-tree", &tree, "-p", "web", "-m", "elsewhere"],
    );
    git_at(&remote, &["update-ref", "refs/heads/web", &other]);
    let out = f.run(&["push", s(&site), s(&remote)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("has diverged"), "{err}");
    assert_eq!(git_at(&remote, &["rev-parse", "web"]), other, "untouched");
    ok(&f.run(&["push", "--force", s(&site), s(&remote)]));
    assert_eq!(
        git_at(&remote, &["rev-parse", "web"]),
        branch_head(&f.store(), "web")
    );
    assert_eq!(
        git_at(&remote, &["rev-parse", "web/gen-1^{commit}"]),
        branch_head(&f.store(), "web"),
        "each generation is tagged SITE/gen-N"
    );
    // A remote whose generation tag names another commit has another history.
    git_at(&remote, &["update-ref", "refs/tags/web/gen-1", &other]);
    let out = f.run(&["push", s(&site), s(&remote)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("has tag web/gen-1 on another commit"), "{err}");
    assert_eq!(git_at(&remote, &["rev-parse", "web/gen-1"]), other);
    ok(&f.run(&["push", "--force", s(&site), s(&remote)]));
    assert_eq!(
        git_at(&remote, &["rev-parse", "web/gen-1"]),
        branch_head(&f.store(), "web")
    );
}

pub(crate) fn git_at(repo: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(repo)
        .args(args)
        .env("GIT_AUTHOR_NAME", "x")
        .env("GIT_AUTHOR_EMAIL", "x@x")
        .env("GIT_COMMITTER_NAME", "x")
        .env("GIT_COMMITTER_EMAIL", "x@x")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `git daemon` serving `base` on 127.0.0.1, push allowed; stopped when dropped (the
/// daemon runs as a process of its own: its pid file says which).
struct Daemon {
    wrapper: std::process::Child,
    pid_file: PathBuf,
    port: u16,
}

impl Daemon {
    fn start(base: &Path) -> Daemon {
        let port = crate::support::http::closed_port().port();
        let pid_file = base.with_extension("pid");
        let wrapper = std::process::Command::new("git")
            .args([
                "daemon",
                "--export-all",
                "--enable=receive-pack",
                "--reuseaddr",
            ])
            .arg(format!("--pid-file={}", pid_file.display()))
            .arg(format!("--base-path={}", base.display()))
            .args(["--listen=127.0.0.1", &format!("--port={port}")])
            .arg(base)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "git daemon did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Daemon {
            wrapper,
            pid_file,
            port,
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(pid) = std::fs::read_to_string(&self.pid_file)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
        {
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let _ = self.wrapper.kill();
        let _ = self.wrapper.wait();
    }
}

#[test]
fn deploy_from_a_git_daemon_switches_rolls_back_and_fails_safely() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let x = plugin_repo(
        f.path("mod_x"),
        &[
            ("v1", plugin_php("mod_x", 2024050100, "2024100700", "")),
            ("v2", plugin_php("mod_x", 2024060100, "2024100700", "")),
        ],
    );
    let site_file = site(&f, &m, &x, "v1");
    let first = f.realise_ok(&site_file);
    let served = f.path("served");
    std::fs::create_dir_all(&served).unwrap();
    bare(&f, "served/web.git");
    let daemon = Daemon::start(&served);
    let remote = format!("git://127.0.0.1:{}/web.git", daemon.port);
    ok(&f.run(&["push", s(&site_file), &remote]));
    ok(&f.run(&["push", s(&site_file), &remote]));

    // A web server with nothing but the remote.
    let www = f.path("www");
    let deploy = |commit: Option<&str>| {
        let mut args = vec![
            "deploy",
            "--json",
            &remote,
            "--site",
            "web",
            "--to",
            s(&www),
        ];
        if let Some(c) = commit {
            args.extend(["--commit", c]);
        }
        ok(&f.run(&args))
    };
    let j = deploy(None);
    assert_eq!(j["commit"], first["commit"]);
    assert_eq!(j["link"], "copy", "a release from a remote is copies: {j}");
    let current = www.join("current");
    assert!(current.join("mod/x/version.php").is_file());
    let cfg = current.join("config.php");
    assert!(
        std::fs::symlink_metadata(&cfg)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read_link(&cfg).unwrap(),
        PathBuf::from("/etc/moodle/web/config.php"),
        "the link is kept as a link, never followed"
    );
    let same = |p: &Path, q: &Path| std::fs::read(p).unwrap() == std::fs::read(q).unwrap();
    assert!(same(
        &current.join("mod/x/version.php"),
        &f.path("site/result/mod/x/version.php")
    ));

    // A second generation: deployed, then rolled back.
    site(&f, &m, &x, "v2");
    let second = f.realise_ok(&site_file);
    ok(&f.run(&["push", s(&site_file), &remote]));
    let j = deploy(None);
    assert_eq!(j["commit"], second["commit"]);
    assert!(
        std::fs::read_to_string(current.join("mod/x/version.php"))
            .unwrap()
            .contains("2024060100")
    );
    assert_eq!(
        git_at(&served.join("web.git"), &["rev-parse", "web/gen-2"]),
        second["commit"].as_str().unwrap(),
        "the second push tags the second generation"
    );
    let j = ok(&f.run(&["deploy", "--json", "--rollback", "--to", s(&www)]));
    assert_eq!(j["commit"], first["commit"]);
    // A generation by its number, as `mcb history` and the tags name it.
    assert_eq!(deploy(Some("web/gen-2"))["commit"], second["commit"]);
    assert_eq!(deploy(Some("gen-1"))["commit"], first["commit"]);
    assert!(
        std::fs::read_to_string(current.join("mod/x/version.php"))
            .unwrap()
            .contains("2024050100")
    );

    // Failures leave current as it is.
    let before = std::fs::read_link(&current).unwrap();
    let out = f.run(&[
        "deploy",
        &remote,
        "--site",
        "web",
        "--commit",
        "0123456789abcdef",
        "--to",
        s(&www),
    ]);
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(std::fs::read_link(&current).unwrap(), before);
    let gone = format!("git://{}/web.git", crate::support::http::closed_port());
    let out = f.run(&["deploy", &gone, "--site", "web", "--to", s(&www)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot fetch site web"), "{err}");
    assert_eq!(std::fs::read_link(&current).unwrap(), before);
    drop(daemon);

    // From the store itself: files of its own (clones, or copies on this filesystem),
    // never the store's objects.
    let www2 = f.path("www2");
    let j = ok(&f.run(&[
        "deploy",
        "--json",
        s(&f.store()),
        "--site",
        "web",
        "--to",
        s(&www2),
    ]));
    assert_eq!(j["link"], "clone", "{j}");
    let released = www2.join("current/mod/x/version.php");
    assert!(released.is_file());
    {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(&released).unwrap().nlink(),
            1,
            "not a hardlink"
        );
    }
}

#[test]
fn completions_and_the_manual_page_come_from_the_command_line() {
    let f = Fixture::new();
    // The script has the shell ask mcb itself, which answers from the command line's
    // definition and from what is there: the site file's components, the store's sites.
    let out = f.run(&["completions", "bash"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.contains("COMPLETE=\"bash\"") || text.contains("COMPLETE=bash"),
        "{text}"
    );
    let m = moodle_repo(f.path("moodle"));
    let x = plugin_repo(
        f.path("mod_x"),
        &[("v1", plugin_php("mod_x", 2024050100, "2024100700", ""))],
    );
    let site_file = site(&f, &m, &x, "v1");
    f.realise_ok(&site_file);
    let ask = |words: &[&str]| -> String {
        let out = std::process::Command::new(assert_cmd::cargo::cargo_bin!("mcb"))
            .env("COMPLETE", "fish")
            .env("MCB_STORE", f.store())
            .current_dir(site_file.parent().unwrap())
            .arg("--")
            .args(words)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let update = ask(&["mcb", "update", ""]);
    assert!(update.lines().any(|l| l == "mod_x"), "{update}");
    assert!(
        !update.contains("--marketplace-token"),
        "hidden flags stay hidden: {update}"
    );
    let history = ask(&["mcb", "history", ""]);
    assert!(history.lines().any(|l| l == "web"), "{history}");
    let commands = ask(&["mcb", "ro"]);
    assert!(commands.starts_with("rollback"), "{commands}");
    let out = f.run(&["man"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(".ie") || text.contains(".TH mcb"),
        "{text}"
    );
    assert!(text.contains("realise"));
}

/// Two deploys into one directory run one after the other: the second waits for the lock
/// the first holds, then switches `current` itself.
#[test]
fn a_deploy_waits_for_another_in_the_same_directory() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let x = plugin_repo(
        f.path("mod_x"),
        &[("v1", plugin_php("mod_x", 2024050100, "2024100700", ""))],
    );
    let site_file = site(&f, &m, &x, "v1");
    let first = f.realise_ok(&site_file);
    let remote = bare(&f, "remote.git");
    ok(&f.run(&["push", s(&site_file), s(&remote)]));
    let www = f.path("www");
    std::fs::create_dir_all(&www).unwrap();
    let held = std::fs::File::create(www.join(".mcb-deploy.lock")).unwrap();
    held.lock().unwrap();
    let mut deploy = std::process::Command::new(assert_cmd::cargo::cargo_bin!("mcb"))
        .env_remove("MCB_STORE")
        .args([
            "deploy",
            "--json",
            s(&remote),
            "--site",
            "web",
            "--to",
            s(&www),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    assert!(deploy.try_wait().unwrap().is_none(), "it waits");
    assert!(!www.join("current").exists());
    held.unlock().unwrap();
    let out = deploy.wait_with_output().unwrap();
    let j = ok(&out);
    assert_eq!(j["commit"], first["commit"]);
    assert!(www.join("current/mod/x/version.php").is_file());
}

/// `kill -9` of `mcb push` while the remote is receiving: its `git push` dies with it, and
/// the next push finishes the job (or says what git says), never a false "has diverged".
#[test]
fn a_killed_push_leaves_nothing_running_and_the_next_push_finishes() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let x = plugin_repo(
        f.path("mod_x"),
        &[("v1", plugin_php("mod_x", 2024050100, "2024100700", ""))],
    );
    let site = site(&f, &m, &x, "v1");
    f.realise_ok(&site);
    let remote = bare(&f, "slow.git");
    // The remote takes its time to accept (a hook that waits), and says when it started.
    let started = f.path("hook-started");
    let hook = remote.join("hooks/pre-receive");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\ntouch {}\nsleep 3\nexit 0\n", started.display()),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("mcb"))
        .env_remove("MCB_STORE")
        .arg("--store")
        .arg(f.store())
        .args(["push", s(&site), s(&remote)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !started.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the push never reached the remote"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let store_git = f.store().join("git").display().to_string();
    let pushing = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
            .filter(|pid| {
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let cmd = String::from_utf8_lossy(&cmd);
                cmd.contains("push") && cmd.contains(&store_git)
            })
            .count()
    };
    assert!(pushing() > 0, "git push runs");
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while pushing() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "git push outlived mcb"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The next push, at once: done, or git's own words; never a false divergence.
    let out = f.run(&["push", s(&site), s(&remote)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("has diverged"), "{err}");
    if !out.status.success() {
        // The first receive may still hold the remote's ref: a third push finishes.
        std::thread::sleep(std::time::Duration::from_secs(4));
        let out = f.run(&["push", s(&site), s(&remote)]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
