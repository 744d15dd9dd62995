//! Supply chain: what enters the store passes the site's virus scanner first (a real
//! ClamAV, with a signature database the test writes: these machines cannot download
//! ClamAV's), and a scanner that cannot scan is an error, never a pass.

use crate::support::*;

/// The EICAR anti-virus test file, put together at run time so that no scanner flags this
/// source file itself.
fn eicar() -> String {
    let head = ["X5O!P%@AP[4\\PZX54(P^)7CC)7}$", "EICAR-STANDARD-ANTIVIRUS"];
    format!("{}{}-TEST-FILE!$H+H*", head[0], head[1])
}

/// `clamscan`, which `.ci/run` installs (Debian's `clamav`).
fn clamscan() -> &'static str {
    let ok = std::process::Command::new("clamscan")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "clamscan is needed (Debian's clamav; .ci/run installs it)"
    );
    "clamscan"
}

#[test]
fn a_package_the_scanner_flags_never_enters_the_store() {
    let scanner = clamscan();
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let virus = eicar();
    assert_eq!(virus.len(), 68);
    // ClamAV's hash signature format: md5:size:name.
    let digest = {
        use md5::Digest;
        hex::encode(md5::Md5::digest(virus.as_bytes()))
    };
    let db = f.write(
        "sigs/eicar.hdb",
        format!("{digest}:68:Eicar-Test-Signature\n"),
    );
    let version = plugin_php("local_z", 2024100100, "2024100700", "");
    f.write(
        "z.zip",
        zip_bytes(&[
            ("local_z/version.php", &version, 0o644),
            ("local_z/files/readme.txt", &virus, 0o644),
        ]),
    );
    let scan = format!(
        "scan: [{scanner:?}, \"-d\", {:?}],",
        db.display().to_string()
    );
    let write_site = |scan: &str| {
        let text = Site::new("s1")
            .core(m.url(), "4.5")
            .plugin("local_z", Src::zip("../z.zip"))
            .ron()
            .replace("\n)\n", &format!("\n    {scan}\n)\n"));
        f.write("site/site.ron", text)
    };
    let site = write_site(&scan);
    let out = f.run(&["realise", s(&site)]);
    assert_eq!(code(&out), 5, "{}", said(&out));
    let t = said(&out);
    assert!(t.contains("Eicar-Test-Signature"), "{t}");
    assert!(t.contains("files/readme.txt"), "{t}");
    assert!(!f.path("site/result").exists(), "nothing was built");
    assert!(!f.path("site/site.lock").exists(), "nothing was locked");
    crate::snapshots::settings(&f)
        .bind(|| insta::assert_snapshot!("scan-refused", crate::snapshots::shown(&out)));

    // The same plugin without the file: scanned, passed, built.
    f.write(
        "z.zip",
        zip_bytes(&[("local_z/version.php", &version, 0o644)]),
    );
    f.realise_ok(&site);

    // A scanner that cannot scan (no signature database) stops the run: never a pass. (A
    // new package to scan: the zip changes, and the lock goes so it is read again.)
    std::fs::remove_file(f.path("site/site.lock")).unwrap();
    f.write(
        "z.zip",
        zip_bytes(&[
            ("local_z/version.php", &version, 0o644),
            ("local_z/more.txt", "new content to scan", 0o644),
        ]),
    );
    let site = write_site(&format!(
        "scan: [{scanner:?}, \"-d\", \"/nonexistent/db.hdb\"],"
    ));
    let out = f.run(&["realise", s(&site)]);
    assert_eq!(code(&out), 5, "{}", said(&out));
    assert!(said(&out).contains("could not scan"), "{}", said(&out));
    let site = write_site("scan: [\"no-such-scanner\"],");
    let out = f.run(&["realise", s(&site)]);
    assert_eq!(code(&out), 5, "{}", said(&out));
    assert!(
        said(&out).contains("cannot run the scanner no-such-scanner"),
        "{}",
        said(&out)
    );
}

/// Publishes `advisories` (Packagist's security-advisories format) for
/// `acme/moodle-mod_foo` on the repository of `crate::composer::repository`.
fn advise(server: &crate::support::http::Server, advisories: serde_json::Value) {
    server.set(
        "/api/security-advisories/",
        crate::support::http::Response::ok(
            serde_json::to_vec(
                &serde_json::json!({"advisories": {"acme/moodle-mod_foo": advisories}}),
            )
            .unwrap(),
        ),
    );
}

/// A site taking mod_foo `^2.1` from Composer repository `repo`, with `extra` lines.
fn composer_site(f: &Fixture, m: &GitRepo, repo: &str, extra: &str) -> std::path::PathBuf {
    f.write(
        "site/site.ron",
        format!(
            "Site(\n    name: \"c\",\n    moodle: (version: \"4.5\", git: \"{}\"),\n    plugins: {{\n        \"mod_foo\": (composer: \"acme/moodle-mod_foo\", version: \"^2.1\"),\n    }},\n    composer_repositories: [\"{repo}\"],\n{extra})\n",
            m.url()
        ),
    )
}

#[test]
fn an_open_advisory_keeps_its_version_out_and_fails_realise_locked() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let server = crate::support::http::Server::start();
    let repo = crate::composer::repository(&server, false);
    // 2.2.0, the newest, is affected: a new resolution takes 2.1.3.
    advise(
        &server,
        serde_json::json!([{
            "advisoryId": "PKSA-2", "packageName": "acme/moodle-mod_foo",
            "title": "SQL injection in the foo report", "cve": "CVE-2026-0002",
            "link": "https://example.org/advisory/2", "affectedVersions": ">=2.2.0,<2.2.1"
        }]),
    );
    let site = composer_site(&f, &m, &repo, "");
    let out = f.run(&["realise", "-v", s(&site)]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let lock = std::fs::read_to_string(f.path("site/site.lock")).unwrap();
    assert!(lock.contains("version: \"2.1.3\""), "{lock}");
    assert!(
        said(&out).contains("advisory PKSA-2: SQL injection in the foo report"),
        "-v says why 2.2.0 was passed over: {}",
        said(&out)
    );

    // Then 2.1.x is found affected, and 2.2.0 fixed: the lock holds an affected version.
    advise(
        &server,
        serde_json::json!([{
            "advisoryId": "PKSA-1", "packageName": "acme/moodle-mod_foo",
            "title": "XSS in the foo activity", "cve": "CVE-2026-0001",
            "link": "https://example.org/advisory/1", "affectedVersions": ">=2.1.0,<2.1.4"
        }]),
    );
    let lock = std::fs::read_to_string(f.path("site/site.lock")).unwrap();
    let out = f.run(&["realise", "--locked", s(&site)]);
    assert_eq!(code(&out), 5, "{}", said(&out));
    assert!(said(&out).contains("PKSA-1"), "{}", said(&out));
    assert!(
        said(&out).contains("https://example.org/advisory/1"),
        "{}",
        said(&out)
    );
    assert_eq!(
        std::fs::read_to_string(f.path("site/site.lock")).unwrap(),
        lock
    );
    crate::snapshots::settings(&f)
        .bind(|| insta::assert_snapshot!("advisory-locked", crate::snapshots::shown(&out)));

    // The plan says it, and moves past it.
    let out = f.run(&["plan", s(&site)]);
    let text = said(&out);
    assert!(
        text.contains("ADVISORY PKSA-1: mod_foo 2.1.3 (acme/moodle-mod_foo): XSS in the foo activity [CVE-2026-0001] https://example.org/advisory/1; this plan moves past it"),
        "{text}"
    );

    // Acknowledged by the site file: kept, and said at every run.
    let site = composer_site(&f, &m, &repo, "    ignore_advisories: [\"PKSA-1\"],\n");
    let out = f.run(&["realise", "--locked", s(&site)]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert!(
        said(&out).contains("the site file acknowledges it (ignore_advisories)"),
        "{}",
        said(&out)
    );
    let out = f.run(&["plan", "--json", s(&site)]);
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["advisories"][0]["id"], "PKSA-1", "{j}");
    assert_eq!(j["advisories"][0]["acknowledged"], true, "{j}");
    assert_eq!(j["advisories"][0]["fixed_by_plan"], false, "{j}");

    // Without the acknowledgement a plain realise chooses mod_foo again: 2.2.0.
    let site = composer_site(&f, &m, &repo, "");
    let out = f
        .mcb()
        .args(["realise", "--json"])
        .arg(&site)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", said(&out));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["plugins"]["mod_foo"]["version"], "2024090100", "2.2.0");
    assert!(
        said(&out).contains("the lock holds mod_foo 2.1.3"),
        "{}",
        said(&out)
    );

    // A malware flag is never acknowledged away.
    advise(
        &server,
        serde_json::json!([{
            "advisoryId": "MAL-7", "packageName": "acme/moodle-mod_foo",
            "title": "credential stealer in the dist zip", "malware": true,
            "affectedVersions": "2.2.0"
        }]),
    );
    let site = composer_site(&f, &m, &repo, "    ignore_advisories: [\"MAL-7\"],\n");
    let out = f.run(&["realise", "--locked", s(&site)]);
    assert_eq!(code(&out), 5, "{}", said(&out));
    assert!(
        said(&out).contains("mod_foo 2.2.0 (acme/moodle-mod_foo): flagged as malware (MAL-7)"),
        "{}",
        said(&out)
    );
    // And every version the constraint allows is affected: the plan says which rule.
    advise(
        &server,
        serde_json::json!([{
            "advisoryId": "PKSA-9", "packageName": "acme/moodle-mod_foo",
            "title": "remote code execution", "affectedVersions": "<3.0"
        }]),
    );
    // `check` reads them too: no version is ready for this Moodle.
    let out = f.run(&["check", s(&site), "--moodle", "4.5", "--json"]);
    assert_eq!(code(&out), 2, "{}", said(&out));
    let j = json_of(&out);
    assert_eq!(j["plugins"][0]["status"], "blocked", "{j}");
    assert!(
        j["plugins"][0]["reasons"]
            .to_string()
            .contains("advisory PKSA-9"),
        "{j}"
    );
    std::fs::remove_file(f.path("site/site.lock")).unwrap();
    let err = f.realise_err(&site, 4);
    assert!(err.contains("[security advisory]"), "{err}");
    assert!(
        err.contains(
            "every version of mod_foo the site file allows is affected by an open security advisory"
        ),
        "{err}"
    );
}

#[test]
fn the_organisations_policy_refuses_denied_and_unlisted_plugins() {
    let f = Fixture::new();
    let (site, _server, _m) = crate::snapshots::sample(&f);
    // Realised before the policy: the lock holds every plugin.
    f.realise_ok(&site);
    let text = std::fs::read_to_string(&site).unwrap();
    let with_policy = |policy: &str| {
        f.write("org/policy.ron", policy);
        f.write(
            "site/site.ron",
            text.replacen("\n)", "\n    policy: \"../org/policy.ron\",\n)", 1),
        )
    };
    // Denied as a dependency of a plugin the site asks for.
    let site = with_policy(
        "Policy(\n    deny: {\"local_helper\": \"stores grades outside Moodle (ticket SEC-12)\"},\n)\n",
    );
    let out = f.run(&["realise", "--locked", s(&site)]);
    assert_eq!(code(&out), 4, "{}", said(&out));
    let t = said(&out);
    assert!(t.contains("[policy]"), "{t}");
    assert!(t.contains("local_helper is denied by the policy"), "{t}");
    assert!(
        t.contains("policy.ron: stores grades outside Moodle (ticket SEC-12)"),
        "{t}"
    );
    crate::snapshots::settings(&f)
        .bind(|| insta::assert_snapshot!("policy-denied", crate::snapshots::shown(&out)));

    // An allow list: what it does not name is refused, asked for or not.
    let site = with_policy("Policy(allow: [\"mod_*\", \"local_helper\", \"block_g\"])\n");
    let err = f.realise_err(&site, 4);
    assert!(
        err.contains("local_z is not in the allow list of the policy"),
        "{err}"
    );
    // Allowing it builds the site again.
    let site = with_policy("Policy(allow: [\"mod_*\", \"local_*\", \"block_g\"])\n");
    f.realise_ok(&site);
    // A policy file with a mistake is said with its line.
    let site = with_policy("Policy(\n    allow: [\"mod_*\"],\n    deny: [\"local_z\"],\n)\n");
    let err = f.realise_err(&site, 3);
    assert!(err.contains("policy.ron:3:"), "{err}");
}

/// Runs a program an auditor has (tar, sha256sum, git) in `dir`; its output.
fn tool(dir: &std::path::Path, program: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn an_archive_holds_every_source_for_an_auditor_to_check_without_mcb() {
    use crate::support::directory::{Published, publish};
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let server = crate::support::http::Server::start();
    let list = publish(
        &server,
        &server,
        &[
            Published::new("mod_att", 2024100800, "2024100700", &["4.5"])
                .extra("$plugin->dependencies = ['local_helper' => 2024010100];"),
            Published::new("local_helper", 2024050100, "2024042200", &["4.5"]),
        ],
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
    f.write(
        "local_p/version.php",
        plugin_php("local_p", 2024100100, "2024100700", ""),
    );
    let site = f.site(
        &Site::new("audited")
            .core(m.url(), "4.5")
            .plugin("mod_att", Src::index())
            .plugin("block_g", Src::git(g.url()))
            .plugin("local_z", Src::zip("../z.zip"))
            .plugin("local_p", Src::path("../local_p"))
            .directory(list),
    );
    f.realise_ok(&site);
    // A second generation: block_g moves to v1.1.
    g.write(
        "version.php",
        &plugin_php("block_g", 2024110100, "2024100700", ""),
    );
    g.commit("v1.1");
    g.tag("v1.1");
    let out = f.run(&["update", s(&site), "block_g"]);
    assert_eq!(code(&out), 0, "{}", said(&out));

    let tarball = f.path("audit.tar.gz");
    let out = f.run(&["archive", s(&site), "-o", s(&tarball), "--json"]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let j = json_of(&out);
    assert_eq!(j["generations"], serde_json::json!([2, 1]), "{j}");
    let held: Vec<(String, String, String)> = j["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["component"].as_str().unwrap().to_string(),
                s["held"].as_str().unwrap().to_string(),
                s["file"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let count = |c: &str, h: &str| held.iter().filter(|x| x.0 == c && x.1 == h).count();
    assert_eq!(count("moodle", "git-bundle"), 1, "{held:?}");
    assert_eq!(count("block_g", "git-bundle"), 2, "v1.0 and v1.1: {held:?}");
    assert_eq!(count("local_z", "zip"), 1, "{held:?}");
    assert_eq!(count("mod_att", "zip"), 1, "{held:?}");
    assert_eq!(count("local_helper", "zip"), 1, "{held:?}");
    assert_eq!(count("local_p", "files"), 1, "{held:?}");
    let text = f.run(&["archive", s(&site), "-o", s(&f.path("again.tar.gz"))]);
    assert_eq!(
        std::fs::read(&tarball).unwrap(),
        std::fs::read(f.path("again.tar.gz")).unwrap(),
        "the same sources give the same bytes"
    );
    crate::snapshots::settings(&f)
        .bind(|| insta::assert_snapshot!("archive", crate::snapshots::shown(&text)));
    // Refused: an archive is never overwritten.
    let out = f.run(&["archive", s(&site), "-o", s(&tarball)]);
    assert_eq!(code(&out), 64, "{}", said(&out));

    // What an auditor does, with tar, sha256sum, md5sum and git only.
    let dir = f.path("audit");
    std::fs::create_dir_all(&dir).unwrap();
    let out = tool(&dir, "tar", &["xzf", s(&tarball)]);
    assert!(out.status.success(), "{}", said(&out));
    let top = dir.join("audited-sources");
    let out = tool(&top, "sha256sum", &["-c", "--quiet", "SHA256SUMS"]);
    assert!(out.status.success(), "{}", said(&out));
    let lock = std::fs::read_to_string(top.join("locks/gen-2.lock")).unwrap();
    assert_eq!(
        lock,
        std::fs::read_to_string(f.path("site/site.lock")).unwrap(),
        "the newest generation's lock is the site's"
    );
    // The bundle clones to the locked commit.
    let v11 = &held
        .iter()
        .find(|x| x.0 == "block_g" && x.2.contains("2024110100"))
        .unwrap_or_else(|| panic!("{held:?}"))
        .2;
    let out = tool(&top, "git", &["clone", "--quiet", v11, "g"]);
    assert!(out.status.success(), "{}", said(&out));
    let head = tool(&top.join("g"), "git", &["rev-parse", "HEAD"]);
    let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
    assert!(lock.contains(&head), "{head} is the locked commit:\n{lock}");
    // The directory's zip is the one it listed: its md5 is the lock's.
    let att = &held.iter().find(|x| x.0 == "mod_att").unwrap().2;
    let md5 = {
        use md5::Digest;
        hex::encode(md5::Md5::digest(std::fs::read(top.join(att)).unwrap()))
    };
    assert!(lock.contains(&md5), "{md5} in\n{lock}");
    // A file changed after the archive was written does not pass.
    std::fs::write(top.join("locks/gen-1.lock"), "changed").unwrap();
    let out = tool(&top, "sha256sum", &["-c", "--quiet", "SHA256SUMS"]);
    assert!(!out.status.success());

    // Only what was made since a day: none tomorrow.
    let out = f.run(&[
        "archive",
        s(&site),
        "--since",
        "2999-01-01",
        "-o",
        s(&f.path("x.tar.gz")),
    ]);
    assert_eq!(code(&out), 64, "{}", said(&out));
    assert!(
        said(&out).contains("no generation made since 2999-01-01"),
        "{}",
        said(&out)
    );
    let out = f.run(&["archive", s(&site), "--since", "yesterday"]);
    assert_eq!(code(&out), 64, "{}", said(&out));

    // Offline, with the store's copy of the directory's zips gone: their files instead,
    // and said.
    for entry in walkdir::WalkDir::new(f.store()).into_iter().flatten() {
        let kept_zip = entry.file_type().is_file()
            && entry
                .path()
                .components()
                .any(|c| c.as_os_str() == "archives-v1");
        if kept_zip {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    let offline = f.path("offline.tar.gz");
    let out = f.run(&[
        "archive",
        "--offline",
        s(&site),
        "-o",
        s(&offline),
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let j = json_of(&out);
    let att = j["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["component"] == "mod_att")
        .unwrap();
    assert_eq!(att["held"], "files", "{j}");
    assert!(
        said(&out).contains("mod_att directory version")
            && said(&out).contains("its files as stored are archived instead"),
        "{}",
        said(&out)
    );
}

/// A CAMP registry the test signs itself: TUF metadata with one ed25519 key per role
/// (threshold 1), served under `/camp` on loopback.
mod camp {
    use ring::signature::KeyPair;
    use serde_json::{Value, json};
    use sha2::Digest;

    use crate::support::http::{Response, Server};

    pub struct Key {
        pub id: String,
        pair: ring::signature::Ed25519KeyPair,
        pub public: Value,
    }

    impl Key {
        pub fn new() -> Key {
            let rng = ring::rand::SystemRandom::new();
            let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
            let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
            let public = json!({
                "keytype": "ed25519", "scheme": "ed25519",
                "keyval": {"public": hex::encode(pair.public_key().as_ref())}
            });
            let id = hex::encode(sha2::Sha256::digest(canonical(&public)));
            Key { id, pair, public }
        }
    }

    /// Canonical JSON as TUF signs it: sorted keys, no white space (the test's data has no
    /// character that needs escaping).
    pub fn canonical(v: &Value) -> Vec<u8> {
        match v {
            Value::Object(o) => {
                let mut keys: Vec<&String> = o.keys().collect();
                keys.sort();
                let mut out = b"{".to_vec();
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend(serde_json::to_vec(k).unwrap());
                    out.push(b':');
                    out.extend(canonical(&o[*k]));
                }
                out.push(b'}');
                out
            }
            Value::Array(a) => {
                let mut out = b"[".to_vec();
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend(canonical(x));
                }
                out.push(b']');
                out
            }
            other => serde_json::to_vec(other).unwrap(),
        }
    }

    pub fn signed(body: Value, by: &[&Key]) -> Vec<u8> {
        let bytes = canonical(&body);
        let signatures: Vec<Value> = by
            .iter()
            .map(|k| json!({"keyid": k.id, "sig": hex::encode(k.pair.sign(&bytes).as_ref())}))
            .collect();
        serde_json::to_vec_pretty(&json!({"signed": body, "signatures": signatures})).unwrap()
    }

    /// The registry's keys and what it serves.
    pub struct Registry {
        pub root: Key,
        pub timestamp: Key,
        pub snapshot: Key,
        pub targets: Key,
        pub server: Server,
    }

    /// A release of a plugin: its zip and what the signed targets say of it.
    pub struct Release {
        pub component: &'static str,
        pub version: u64,
        pub tier: u64,
        pub revoked: Option<&'static str>,
        pub zip: Vec<u8>,
    }

    impl Registry {
        pub fn new(server: Server) -> Registry {
            Registry {
                root: Key::new(),
                timestamp: Key::new(),
                snapshot: Key::new(),
                targets: Key::new(),
                server,
            }
        }

        pub fn url(&self) -> String {
            self.server.url("/camp")
        }

        /// `root.json`, version 1, as a site pins it.
        pub fn root_json(&self) -> Vec<u8> {
            self.root_json_version(1, &[&self.root])
        }

        /// The root naming the registry's keys now, as version `version`, signed by `by`.
        pub fn root_json_version(&self, version: u64, by: &[&Key]) -> Vec<u8> {
            let keys: serde_json::Map<String, Value> =
                [&self.root, &self.timestamp, &self.snapshot, &self.targets]
                    .iter()
                    .map(|k| (k.id.clone(), k.public.clone()))
                    .collect();
            let role = |k: &Key| json!({"keyids": [k.id], "threshold": 1});
            signed(
                json!({
                    "_type": "root", "spec_version": "1.0.31", "version": version,
                    "expires": "2036-01-01T00:00:00Z", "consistent_snapshot": false,
                    "keys": keys,
                    "roles": {
                        "root": role(&self.root), "timestamp": role(&self.timestamp),
                        "snapshot": role(&self.snapshot), "targets": role(&self.targets),
                    }
                }),
                by,
            )
        }

        /// Rotates the root and timestamp keys: serves `2.root.json`, signed by the old root
        /// key and the new one; returns the old timestamp key.
        pub fn rotate(&mut self) -> Key {
            let old_root = std::mem::replace(&mut self.root, Key::new());
            let old_timestamp = std::mem::replace(&mut self.timestamp, Key::new());
            let text = self.root_json_version(2, &[&old_root, &self.root]);
            self.server
                .set("/camp/metadata/2.root.json", Response::ok(text));
            old_timestamp
        }

        /// Serves the releases as version `version` of timestamp, snapshot and targets;
        /// `expires` for the timestamp; `targets_by` signs the targets.
        pub fn publish(&self, version: u64, expires: &str, releases: &[Release], targets_by: &Key) {
            self.publish_signed(version, expires, releases, targets_by, &self.timestamp)
        }

        /// As `publish`, the timestamp signed by `timestamp_by`.
        pub fn publish_signed(
            &self,
            version: u64,
            expires: &str,
            releases: &[Release],
            targets_by: &Key,
            timestamp_by: &Key,
        ) {
            self.publish_with(version, expires, releases, None, targets_by, timestamp_by)
        }

        /// As `publish`, with `advisories` as the signed `advisories.json` target.
        pub fn publish_with(
            &self,
            version: u64,
            expires: &str,
            releases: &[Release],
            advisories: Option<Value>,
            targets_by: &Key,
            timestamp_by: &Key,
        ) {
            self.server
                .set("/camp/metadata/root.json", Response::ok(self.root_json()));
            let mut listed = serde_json::Map::new();
            for r in releases {
                let name = format!("{0}/{0}-{1}.zip", r.component, r.version);
                let mut custom = json!({
                    "component": r.component, "version": r.version.to_string(),
                    "release": format!("{}.0", r.version % 100), "tier": r.tier,
                });
                if let Some(why) = r.revoked {
                    custom["revoked"] = why.into();
                }
                listed.insert(
                    name.clone(),
                    json!({
                        "length": r.zip.len(),
                        "hashes": {"sha256": hex::encode(sha2::Sha256::digest(&r.zip))},
                        "custom": custom,
                    }),
                );
                self.server.set(
                    &format!("/camp/targets/{name}"),
                    Response::ok(r.zip.clone()),
                );
            }
            if let Some(a) = advisories {
                let bytes = serde_json::to_vec(&a).unwrap();
                listed.insert(
                    "advisories.json".into(),
                    json!({"length": bytes.len(),
                        "hashes": {"sha256": hex::encode(sha2::Sha256::digest(&bytes))}}),
                );
                self.server
                    .set("/camp/targets/advisories.json", Response::ok(bytes));
            }
            let in_a_year = "2036-01-01T00:00:00Z";
            self.server.set(
                "/camp/metadata/targets.json",
                Response::ok(signed(
                    json!({"_type": "targets", "spec_version": "1.0.31", "version": version,
                        "expires": in_a_year, "targets": listed}),
                    &[targets_by],
                )),
            );
            self.server.set(
                "/camp/metadata/snapshot.json",
                Response::ok(signed(
                    json!({"_type": "snapshot", "spec_version": "1.0.31", "version": version,
                        "expires": in_a_year, "meta": {"targets.json": {"version": version}}}),
                    &[&self.snapshot],
                )),
            );
            self.server.set(
                "/camp/metadata/timestamp.json",
                Response::ok(signed(
                    json!({"_type": "timestamp", "spec_version": "1.0.31", "version": version,
                        "expires": expires, "meta": {"snapshot.json": {"version": version}}}),
                    &[timestamp_by],
                )),
            );
        }
    }
}

#[test]
fn camp_plugins_come_only_through_verified_tuf_metadata() {
    use camp::{Key, Registry, Release};
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let mut registry = Registry::new(crate::support::http::Server::start());
    let release = |version: u64, tier: u64, revoked: Option<&'static str>| Release {
        component: "block_c",
        version,
        tier,
        revoked,
        zip: zip_bytes(&[(
            "block_c/version.php",
            &plugin_php("block_c", version, "2024100700", ""),
            0o644,
        )]),
    };
    let good = "2036-01-01T00:00:00Z";
    // 1.1 is tier 1 only: the site takes tier 2 and up.
    registry.publish(
        1,
        good,
        &[release(2024100100, 2, None), release(2024110100, 1, None)],
        &registry.targets,
    );
    f.write("site/camp-root.json", registry.root_json());
    let site = f.write(
        "site/site.ron",
        format!(
            "Site(\n    name: \"c\",\n    moodle: (version: \"4.5\", git: \"{}\"),\n    plugins: {{\n        \"block_c\": (camp: true),\n    }},\n    camp: (url: \"{}\", root: \"camp-root.json\", min_tier: 2),\n)\n",
            m.url(),
            registry.url()
        ),
    );
    let j = f.realise_ok(&site);
    assert_eq!(
        j["plugins"]["block_c"]["version"], "2024100100",
        "1.1 is newer, but below the tier the site takes: {j}"
    );
    let lock = std::fs::read_to_string(f.path("site/site.lock")).unwrap();
    assert!(lock.contains("package: \"camp:block_c\""), "{lock}");

    // A frozen registry: the timestamp has expired.
    registry.publish(
        2,
        "2020-01-01T00:00:00Z",
        &[release(2024100100, 2, None)],
        &registry.targets,
    );
    let out = f.run(&["update", s(&site)]);
    assert_eq!(code(&out), 5, "{}", said(&out));
    assert!(
        said(&out).contains("timestamp.json expired at 2020-01-01T00:00:00Z"),
        "{}",
        said(&out)
    );
    crate::snapshots::settings(&f)
        .bind(|| insta::assert_snapshot!("camp-expired", crate::snapshots::shown(&out)));

    // Targets signed by a key the root does not name.
    let stranger = Key::new();
    registry.publish(3, good, &[release(2024100100, 2, None)], &stranger);
    let out = f.run(&["update", s(&site)]);
    assert_eq!(code(&out), 5, "{}", said(&out));
    assert!(
        said(&out)
            .contains("targets.json is signed by 0 trusted keys of the targets role, and needs 1"),
        "{}",
        said(&out)
    );

    // A good version 4, then a mirror serving version 3 again: rolled back.
    registry.publish(4, good, &[release(2024100100, 2, None)], &registry.targets);
    let out = f.run(&["update", s(&site)]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    registry.publish(3, good, &[release(2024100100, 2, None)], &registry.targets);
    let out = f.run(&["update", s(&site)]);
    assert_eq!(code(&out), 5, "{}", said(&out));
    assert!(
        said(&out).contains("timestamp.json is version 3, older than version 4 trusted before"),
        "{}",
        said(&out)
    );

    // A zip that is not the one the signed targets describe never enters the store.
    let mut tampered = release(2024100100, 2, None);
    registry.publish(5, good, &[tampered_copy(&tampered)], &registry.targets);
    tampered.zip.extend_from_slice(b"appended");
    registry.server.set(
        "/camp/targets/block_c/block_c-2024100100.zip",
        crate::support::http::Response::ok(tampered.zip),
    );
    // (The lock aside: a new resolution, into a store that has never held the release.)
    std::fs::rename(f.path("site/site.lock"), f.path("site.lock.kept")).unwrap();
    let fresh = f.path("fresh-store");
    let out = f
        .mcb_with_store(&fresh)
        .args(["realise"])
        .arg(&site)
        .output()
        .unwrap();
    assert_eq!(code(&out), 6, "{}", said(&out));
    assert!(said(&out).contains("sha256"), "{}", said(&out));
    assert!(!f.path("site/site.lock").exists());
    std::fs::rename(f.path("site.lock.kept"), f.path("site/site.lock")).unwrap();

    // A revoked release: never taken, and the tier-1 one is not either.
    registry.publish(
        6,
        good,
        &[
            release(2024100100, 2, Some("backdoor in the 1.0 zip (CAMP-SA-7)")),
            release(2024110100, 1, None),
        ],
        &registry.targets,
    );
    let out = f.run(&["update", s(&site)]);
    assert_eq!(code(&out), 4, "{}", said(&out));
    assert!(
        said(&out).contains("block_c 2024100100 (camp:block_c): revoked by its registry: backdoor in the 1.0 zip (CAMP-SA-7)"),
        "{}",
        said(&out)
    );

    // The lock holds the revoked release: CI's `realise --locked` refuses it, saying why.
    let out = f.run(&["realise", "--locked", s(&site)]);
    assert_eq!(code(&out), 5, "{}", said(&out));
    assert!(
        said(&out).contains("revoked by its registry"),
        "{}",
        said(&out)
    );

    // An advisory CAMP signs (its advisories.json target) blocks as a Composer one does,
    // and the site may acknowledge it.
    registry.publish_with(
        7,
        good,
        &[release(2024100100, 2, None)],
        Some(serde_json::json!({"advisories": [{
            "id": "CAMP-SA-9", "component": "block_c", "versions": ["2024100100"],
            "title": "stored XSS in the block title", "link": "https://camp.example.org/sa/9"
        }]})),
        &registry.targets,
        &registry.timestamp,
    );
    let out = f.run(&["realise", "--locked", s(&site)]);
    assert_eq!(code(&out), 5, "{}", said(&out));
    assert!(
        said(&out).contains("block_c 2024100100 (camp:block_c): advisory CAMP-SA-9: stored XSS in the block title https://camp.example.org/sa/9"),
        "{}",
        said(&out)
    );
    let acknowledged = std::fs::read_to_string(&site).unwrap().replace(
        "    camp: (",
        "    ignore_advisories: [\"CAMP-SA-9\"],\n    camp: (",
    );
    std::fs::write(&site, acknowledged).unwrap();
    let out = f.run(&["realise", "--locked", s(&site)]);
    assert_eq!(code(&out), 0, "{}", said(&out));

    // The registry rotates its root and timestamp keys: 2.root.json, signed by the old
    // root key and the new, is followed from the pinned root; a timestamp the old key
    // signs is no longer trusted, one the new key signs is.
    let old_timestamp = registry.rotate();
    registry.publish_signed(
        8,
        good,
        &[release(2024100100, 2, None)],
        &registry.targets,
        &old_timestamp,
    );
    let out = f.run(&["update", s(&site)]);
    assert_eq!(code(&out), 5, "{}", said(&out));
    assert!(
        said(&out).contains("timestamp.json is signed by 0 trusted keys of the timestamp role"),
        "{}",
        said(&out)
    );
    registry.publish(9, good, &[release(2024100100, 2, None)], &registry.targets);
    let out = f.run(&["update", s(&site)]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    // A 3.root.json a stranger signs is refused: a new root needs the trusted root's keys.
    let stranger = Key::new();
    let forged = registry.root_json_version(3, &[&stranger]);
    registry.server.set(
        "/camp/metadata/3.root.json",
        crate::support::http::Response::ok(forged),
    );
    let out = f.run(&["update", s(&site)]);
    assert_eq!(code(&out), 5, "{}", said(&out));
    assert!(
        said(&out).contains("3.root.json is signed by 0 trusted keys of the root role"),
        "{}",
        said(&out)
    );
}

/// The release as it was first published (its zip unchanged).
fn tampered_copy(r: &camp::Release) -> camp::Release {
    camp::Release {
        component: r.component,
        version: r.version,
        tier: r.tier,
        revoked: r.revoked,
        zip: r.zip.clone(),
    }
}
