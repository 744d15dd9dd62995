//! Binary caches: one store pushes what its sites use, signed; another store with an empty
//! disk and no upstream realises the same locked site from the cache. Served by nginx's
//! WebDAV module on loopback, and from a directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use crate::support::*;

/// nginx on 127.0.0.1: `/` a WebDAV share of `root`, and a second port that answers 500.
struct Nginx {
    child: Child,
    port: u16,
    failing_port: u16,
    root: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Nginx {
    fn start(dir: &Path) -> Nginx {
        let root = dir.join("share");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let (port, failing_port) = (free_port(), free_port());
        let conf = dir.join("nginx.conf");
        let user = if unsafe { libc::geteuid() } == 0 {
            "user root root;"
        } else {
            ""
        };
        let d = dir.display();
        std::fs::write(
            &conf,
            format!(
                "{user}\ndaemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/tmp;\n  proxy_temp_path {d}/tmp;\n  fastcgi_temp_path {d}/tmp;\n  uwsgi_temp_path {d}/tmp;\n  scgi_temp_path {d}/tmp;\n  server {{\n    listen 127.0.0.1:{port};\n    root {root};\n    client_max_body_size 0;\n    location / {{\n      dav_methods PUT DELETE MKCOL COPY MOVE;\n      create_full_put_path on;\n      dav_access user:rw group:r all:r;\n    }}\n  }}\n  server {{\n    listen 127.0.0.1:{failing_port};\n    location / {{ return 500; }}\n  }}\n}}\n",
                root = root.display()
            ),
        )
        .unwrap();
        let bin = if Path::new("/usr/sbin/nginx").exists() {
            "/usr/sbin/nginx"
        } else {
            "nginx"
        };
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nginx (Debian's nginx-light) is installed");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Nginx {
            child,
            port,
            failing_port,
            root,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect()
}

struct Setup {
    f: Fixture,
    site: PathBuf,
    built: serde_json::Value,
}

/// [`git_and_zip_site`], realised in the fixture's store.
fn setup() -> Setup {
    let f = Fixture::new();
    let site = git_and_zip_site(&f, "cached");
    let built = f.realise_ok(&site);
    Setup { f, site, built }
}

impl Setup {
    fn key(&self, name: &str) -> (PathBuf, String) {
        let file = self.f.path(&format!("{name}.key"));
        let out = self
            .f
            .mcb()
            .args(["cache", "key", name, "-o"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        (
            file,
            String::from_utf8(out.stdout).unwrap().trim().to_string(),
        )
    }

    fn push(&self, store: &Path, to: &str, key: &Path) -> Output {
        self.f
            .mcb_with_store(store)
            .args(["cache", "push", "--json", "--to", to, "--key"])
            .arg(key)
            .output()
            .unwrap()
    }

    /// `realise --locked --json` in an empty store `name`, reading `caches` and trusting
    /// `keys`.
    fn realise_from(&self, name: &str, caches: &str, keys: &str, limits: &str) -> Output {
        let _ = std::fs::remove_file(self.f.path("site/result"));
        self.f
            .mcb_with_store(&self.f.path(name))
            .env("MCB_SUBSTITUTERS", caches)
            .env("MCB_TRUSTED_KEYS", keys)
            .env("MCB_LIMITS", limits)
            .args(["realise", "--locked", "--json"])
            .arg(&self.site)
            .output()
            .unwrap()
    }

    fn upstreams(&self, reachable: bool) {
        for name in ["moodle", "block_x", "z.zip"] {
            let (from, to) = (self.f.path(name), self.f.path(&format!("{name}.gone")));
            if reachable && to.exists() {
                std::fs::rename(&to, &from).unwrap();
            } else if !reachable && from.exists() {
                std::fs::rename(&from, &to).unwrap();
            }
        }
    }

    fn same_codebase(&self, out: &Output) {
        assert!(out.status.success(), "{}", text(out));
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            (&j["commit"], &j["tree"]),
            (&self.built["commit"], &self.built["tree"]),
            "{}\nbuilt: {}",
            text(out),
            self.built
        );
    }
}

#[test]
fn a_signed_cache_gives_an_empty_store_the_locked_site_and_anything_unsound_is_refused() {
    let s = setup();
    let f = &s.f;
    let nginx = Nginx::start(&f.path("nginx"));
    let (key, public) = s.key("host-a");
    let (_, stranger) = s.key("host-b");
    // A user and password in the URL are sent, never shown or kept.
    let cache = format!("http://ci:Pa55-s3cret@127.0.0.1:{}/mcb/", nginx.port);

    // Host A publishes: every package once, objects first, the signed record last.
    let out = s.push(&f.store(), &cache, &key);
    assert!(out.status.success(), "{}", text(&out));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&j["packages"], &j["present"]),
        (&3.into(), &0.into()),
        "{j}"
    );
    assert_eq!(j["key"], "host-a");
    assert_eq!(j["cache"], nginx.url("mcb/"));
    let records = nginx.root.join("mcb/mcb-cache-v1/records");
    assert_eq!(std::fs::read_dir(&records).unwrap().count(), 3);
    // Again: everything is there, nothing is sent.
    let out = s.push(&f.store(), &cache, &key);
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((&j["present"], &j["files"]), (&3.into(), &0.into()), "{j}");

    // Host B: an empty store, no upstream reachable. The same commit and tree.
    s.upstreams(false);
    let out = s.realise_from("store-b", &cache, &public, "");
    s.same_codebase(&out);
    assert!(
        text(&out).contains("block_x from the cache"),
        "{}",
        text(&out)
    );
    let verify = f
        .mcb_with_store(&f.path("store-b"))
        .arg("verify")
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", text(&verify));
    // A second run needs nothing more: no cache, no upstream.
    let out = f
        .mcb_with_store(&f.path("store-b"))
        .args(["realise", "--locked", "--json"])
        .arg(&s.site)
        .output()
        .unwrap();
    s.same_codebase(&out);

    // A record signed by a key this store does not trust is refused, and with no
    // upstream the run fails saying why.
    let out = s.realise_from("store-c", &cache, &stranger, "");
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains("signed by 'host-a', a key this store does not trust"),
        "{}",
        text(&out)
    );
    // An unsigned record (its signature stripped) is refused too.
    let record = std::fs::read_dir(&records)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    let signature = r["signature"].take();
    r["signature"] = "".into();
    std::fs::write(&record, serde_json::to_vec(&r).unwrap()).unwrap();
    let out = s.realise_from("store-d", &cache, &public, "");
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("does not carry a valid signature"),
        "{}",
        text(&out)
    );
    r["signature"] = signature;
    std::fs::write(&record, serde_json::to_vec(&r).unwrap()).unwrap();

    // Tampered objects are refused before anything enters the store; upstream gives them.
    s.upstreams(true);
    for obj in files_under(&nginx.root.join("mcb/mcb-cache-v1/objects")) {
        let mut bytes = std::fs::read(&obj).unwrap();
        bytes.push(b'!');
        std::fs::write(&obj, bytes).unwrap();
    }
    let out = s.realise_from("store-e", &cache, &public, "");
    s.same_codebase(&out);
    assert!(
        text(&out).contains("does not match its hash"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("taken from its upstream instead"),
        "{}",
        text(&out)
    );
    let verify = f
        .mcb_with_store(&f.path("store-e"))
        .arg("verify")
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", text(&verify));

    // A cache that answers 500, and one that never answers: upstream instead, said.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://127.0.0.1:{}/", silent.local_addr().unwrap().port());
    let failing = format!("http://127.0.0.1:{}/", nginx.failing_port);
    let started = Instant::now();
    let out = s.realise_from(
        "store-f",
        &format!("{failing},{silent_url}"),
        &public,
        "idle-timeout=2s",
    );
    s.same_codebase(&out);
    assert!(text(&out).contains("500"), "{}", text(&out));
    assert!(text(&out).contains(&silent_url), "{}", text(&out));
    assert!(started.elapsed() < Duration::from_secs(120));
    drop(silent);

    // The password is in no output and no file of any store.
    let every_output = [&text(&out)]
        .iter()
        .map(|t| t.to_string())
        .collect::<String>();
    assert!(!every_output.contains("Pa55-s3cret"));
    for store in [
        "store", "store-b", "store-c", "store-d", "store-e", "store-f",
    ] {
        for file in files_under(&f.path(store)) {
            let bytes = std::fs::read(&file).unwrap_or_default();
            assert!(
                !bytes.windows(11).any(|w| w == b"Pa55-s3cret"),
                "the password is in {}",
                file.display()
            );
        }
    }
}

#[test]
fn two_stores_push_one_site_at_once_and_a_directory_cache_serves_it() {
    let s = setup();
    let f = &s.f;
    // A second host built the same site on its own.
    let other = f.path("store-2");
    let out = f
        .mcb_with_store(&other)
        .args(["realise", "--locked", "--json"])
        .arg(&s.site)
        .output()
        .unwrap();
    s.same_codebase(&out);
    let (key, public) = s.key("hosts");

    // A reconcile round keeps a cache current.
    let kept = f.path("reconciled-cache");
    let out = f
        .mcb()
        .env("MCB_SUBSTITUTERS", format!("file://{}", kept.display()))
        .env("MCB_SIGNING_KEY", &key)
        .args(["reconcile", "--push-cache"])
        .arg(&s.site)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("pushed 3 packages and 1 generation record of 1 site to file://"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_dir(kept.join("mcb-cache-v1/records"))
            .unwrap()
            .count(),
        3
    );

    let dir = f.path("shared-cache");
    let cache = format!("file://{}", dir.display());
    let pushes: Vec<std::thread::JoinHandle<Output>> = [f.store(), other]
        .into_iter()
        .map(|store| {
            let (mcb, key, cache) = (f.mcb_with_store(&store), key.clone(), cache.clone());
            std::thread::spawn(move || {
                let mut mcb = mcb;
                mcb.args(["cache", "push", "--json", "--to", &cache, "--key"])
                    .arg(&key)
                    .output()
                    .unwrap()
            })
        })
        .collect();
    for p in pushes {
        let out = p.join().unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    // No temporary key is left.
    assert!(
        files_under(&dir)
            .iter()
            .all(|p| !p.to_string_lossy().contains(".tmp-")),
        "a temporary key was left"
    );
    s.upstreams(false);
    let out = s.realise_from("store-3", &cache, &public, "");
    s.same_codebase(&out);
    // Offline still reads a cache on this machine.
    let _ = std::fs::remove_file(f.path("site/result"));
    let out = f
        .mcb_with_store(&f.path("store-4"))
        .env("MCB_SUBSTITUTERS", &cache)
        .env("MCB_TRUSTED_KEYS", &public)
        .args(["realise", "--locked", "--offline", "--json"])
        .arg(&s.site)
        .output()
        .unwrap();
    s.same_codebase(&out);
}

/// The lock records a directory cache holds.
fn lock_records(cache: &Path) -> Vec<PathBuf> {
    files_under(&cache.join("mcb-cache-v1/locks"))
}

#[test]
fn a_generation_record_brings_a_locked_site_at_once_and_cache_gc_keeps_what_recent_locks_use() {
    let s = setup();
    let f = &s.f;
    let (key, public) = s.key("builder");
    let dir = f.path("gen-cache");
    let cache = format!("file://{}", dir.display());
    let out = s.push(&f.store(), &cache, &key);
    assert!(out.status.success(), "{}", text(&out));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&j["packages"], &j["generations"]),
        (&3.into(), &1.into()),
        "{j}"
    );
    assert_eq!(lock_records(&dir).len(), 1);

    // An empty store takes the whole generation through its record, upstreams gone.
    s.upstreams(false);
    let out = s.realise_from("store-a", &cache, &public, "");
    s.same_codebase(&out);
    crate::snapshots::settings(f)
        .bind(|| insta::assert_snapshot!("cache-realise", crate::snapshots::shown(&out)));
    let said = text(&out);
    let tree = s.built["tree"].as_str().unwrap();
    assert!(
        said.contains(&format!(
            "generation {} (3 packages) from the cache {cache}",
            &tree[..12]
        )),
        "{said}"
    );

    // A record signed by a key the store does not trust is refused, said, and the packages
    // come one by one through their own records.
    let (stranger, _) = s.key("stranger");
    let other = f.path("other-cache");
    let out = s.push(
        &f.store(),
        &format!("file://{}", other.display()),
        &stranger,
    );
    assert!(out.status.success(), "{}", text(&out));
    let record = &lock_records(&dir)[0];
    std::fs::remove_file(record).unwrap();
    std::fs::copy(&lock_records(&other)[0], record).unwrap();
    let out = s.realise_from("store-b", &cache, &public, "");
    s.same_codebase(&out);
    assert!(
        text(&out).contains("signed by 'stranger', a key this store does not trust"),
        "{}",
        text(&out)
    );

    // A second generation (block_x moves), pushed a second later.
    s.upstreams(true);
    let repo = mcb_fixtures::GitRepo {
        path: f.path("block_x"),
    };
    crate::gitops::add_tag(&repo, "block_x", "v2.0", 2024110100, "");
    let out = f
        .mcb()
        .args(["update", "--json"])
        .arg(&s.site)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let text_of = |args: &[&str]| crate::snapshots::shown(&f.mcb().args(args).output().unwrap());
    let key_arg = key.display().to_string();
    let pushed = text_of(&["cache", "push", "--to", &cache, "--key", &key_arg]);
    assert!(pushed.starts_with("exit: 0"), "{pushed}");
    assert_eq!(lock_records(&dir).len(), 2);
    let files_before = files_under(&dir).len();

    // A dry run deletes nothing; within the grace period nothing goes.
    let gc = |args: &[&str]| {
        let out = f
            .mcb()
            .args(["cache", "gc", "--json", "--to", &cache])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    // What a user reads: the push, a collection's dry run.
    let said = [
        pushed,
        text_of(&[
            "cache",
            "gc",
            "--to",
            &cache,
            "--keep-days",
            "0",
            "--grace",
            "0",
            "--dry-run",
        ]),
    ]
    .join("");
    crate::snapshots::settings(f).bind(|| insta::assert_snapshot!("cache-push-and-gc", said));
    let j = gc(&["--keep-days", "0", "--grace", "0", "--dry-run"]);
    assert_eq!(
        (&j["records"], &j["kept_records"]),
        (&2.into(), &1.into()),
        "{j}"
    );
    assert_eq!(files_under(&dir).len(), files_before);
    let j = gc(&["--keep-days", "0"]);
    assert_eq!((&j["records"], &j["files"]), (&0.into(), &0.into()), "{j}");
    assert!(j["spared"].as_u64().unwrap() > 0, "{j}");
    // The first generation goes (its lock record, block_x v1.0's package and its files);
    // the site's newest stays whole.
    let j = gc(&["--keep-days", "0", "--grace", "0"]);
    assert_eq!(
        (&j["records"], &j["manifests"], &j["kept_records"]),
        (&2.into(), &1.into(), &1.into()),
        "{j}"
    );
    assert!(j["files"].as_u64().unwrap() >= 1, "{j}");
    assert_eq!(lock_records(&dir).len(), 1);
    let newest = f
        .mcb()
        .args(["realise", "--json"])
        .arg(&s.site)
        .output()
        .unwrap();
    let newest: serde_json::Value = serde_json::from_slice(&newest.stdout).unwrap();
    s.upstreams(false);
    let _ = std::fs::remove_file(f.path("site/result"));
    let out = f
        .mcb_with_store(&f.path("store-c"))
        .env("MCB_SUBSTITUTERS", &cache)
        .env("MCB_TRUSTED_KEYS", &public)
        .args(["realise", "--locked", "--json"])
        .arg(&s.site)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["tree"], newest["tree"], "{}", text(&out));
    assert!(!text(&out).contains("refused"), "{}", text(&out));
    // Again: nothing more to collect.
    let j = gc(&["--keep-days", "0", "--grace", "0"]);
    assert_eq!((&j["records"], &j["files"]), (&0.into(), &0.into()), "{j}");
}

/// s3s-fs, an S3-compatible server, on 127.0.0.1 with one bucket.
struct S3Server {
    child: Child,
    endpoint: String,
}

impl S3Server {
    fn start(dir: &Path, bucket: &str) -> S3Server {
        std::fs::create_dir_all(dir.join(bucket)).unwrap();
        let port = free_port();
        let home_bin = std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".cargo/bin/s3s-fs"))
            .filter(|p| p.exists());
        let bin = home_bin.unwrap_or_else(|| PathBuf::from("s3s-fs"));
        let child = Command::new(bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", S3_KEY_ID, "--secret-key", S3_SECRET])
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("s3s-fs (cargo install s3s-fs --features binary) is installed");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    /// The environment the AWS tools (and mcb) read an S3 endpoint's settings from.
    fn env(&self, mut mcb: Mcb) -> Mcb {
        mcb.env("AWS_ACCESS_KEY_ID", S3_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", S3_SECRET)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_REGION", "us-east-1");
        mcb
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const S3_KEY_ID: &str = "AKIDMCBTEST";
const S3_SECRET: &str = "S3-secret-0f9a";

#[test]
fn an_s3_bucket_serves_as_the_cache_with_credentials_from_the_environment_only() {
    let s = setup();
    let f = &s.f;
    let s3 = S3Server::start(&f.path("s3"), "builds");
    let (key, public) = s.key("host-s3");
    let out = s3
        .env(f.mcb())
        .args([
            "cache",
            "push",
            "--json",
            "--to",
            "s3://builds/mcb",
            "--key",
        ])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let pushed = text(&out);
    s.upstreams(false);
    let _ = std::fs::remove_file(f.path("site/result"));
    let out = s3
        .env(f.mcb_with_store(&f.path("store-s3")))
        .env("MCB_SUBSTITUTERS", "s3://builds/mcb")
        .env("MCB_TRUSTED_KEYS", &public)
        .args(["realise", "--locked", "--json"])
        .arg(&s.site)
        .output()
        .unwrap();
    s.same_codebase(&out);
    assert!(
        text(&out).contains("(3 packages) from the cache s3://builds/mcb"),
        "{}",
        text(&out)
    );
    // The bucket lists its keys: cache gc works on it, and keeps the site's newest.
    let out = s3
        .env(f.mcb())
        .args([
            "cache",
            "gc",
            "--json",
            "--to",
            "s3://builds/mcb",
            "--keep-days",
            "0",
        ])
        .args(["--grace", "0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&j["kept_records"], &j["records"], &j["files"]),
        (&1.into(), &0.into(), &0.into()),
        "{j}"
    );
    let gc_said = text(&out);
    // Credentials in the URL are refused, never used or shown.
    let out = f
        .mcb()
        .args([
            "cache",
            "push",
            "--to",
            "s3://AKID:inline-secret@builds/mcb",
            "--key",
        ])
        .arg(&key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(!text(&out).contains("inline-secret"), "{}", text(&out));
    for said in [pushed, gc_said, text(&out)] {
        assert!(!said.contains(S3_SECRET));
    }
    for store in ["store", "store-s3"] {
        for file in files_under(&f.path(store)) {
            let bytes = std::fs::read(&file).unwrap_or_default();
            assert!(
                !bytes
                    .windows(S3_SECRET.len())
                    .any(|w| w == S3_SECRET.as_bytes()),
                "the secret is in {}",
                file.display()
            );
        }
    }
}
