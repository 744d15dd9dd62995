//! Composer sources: a repository in Composer 2's format on loopback (`packages.json`, a
//! minified `p2` file, dist zips), constraints, the package type, checksums, the lock and
//! reproduce.

use sha1::Digest;

use crate::support::http::{Response, Server};
use crate::support::*;

/// A dist zip of mod_foo at `version` (one top folder, as GitHub's archives have).
fn dist(build: u64) -> Vec<u8> {
    zip_bytes(&[
        (
            "acme-moodle-mod_foo-1a2b3c/version.php",
            &plugin_php("mod_foo", build, "2024100700", ""),
            0o644,
        ),
        ("acme-moodle-mod_foo-1a2b3c/lib.php", "<?php\n", 0o644),
    ])
}

/// Publishes `acme/moodle-mod_foo` 2.2.0, 2.1.3, 2.1.0, 2.0.0 (minified) and
/// `acme/bar` (a library) on `server`; `bad_sum` gives 2.1.3 a wrong sha1.
pub(crate) fn repository(server: &Server, bad_sum: bool) -> String {
    let versions = [
        ("2.2.0", 2024090100u64),
        ("2.1.3", 2024080300),
        ("2.1.0", 2024080100),
        ("2.0.0", 2024070100),
    ];
    let mut entries = Vec::new();
    for (i, (v, build)) in versions.iter().enumerate() {
        let zip = dist(*build);
        let path = format!("/dist/mod_foo-{v}.zip");
        let mut sum = hex::encode(sha1::Sha1::digest(&zip));
        if bad_sum && *v == "2.1.3" {
            sum = "0".repeat(40);
        }
        server.set(&path, Response::ok(zip));
        let mut e = serde_json::json!({
            "version": v,
            "dist": {"type": "zip", "url": server.url(&path), "shasum": sum},
        });
        if i == 0 {
            // The first entry carries what the others inherit (Composer 2's minified form).
            e["name"] = "acme/moodle-mod_foo".into();
            e["type"] = "moodle-mod".into();
            e["extra"] = serde_json::json!({"installer-name": "foo"});
        }
        entries.push(e);
    }
    server.set(
        "/packages.json",
        Response::ok(
            serde_json::to_vec(&serde_json::json!({
                "packages": [], "metadata-url": "/p2/%package%.json",
                "security-advisories": {"metadata": true, "api-url": "/api/security-advisories/"}
            }))
            .unwrap(),
        ),
    );
    server.set(
        "/p2/acme/moodle-mod_foo.json",
        Response::ok(
            serde_json::to_vec(&serde_json::json!({
                "minified": "composer/2.0",
                "packages": {"acme/moodle-mod_foo": entries}
            }))
            .unwrap(),
        ),
    );
    let bar = dist(2024010100);
    server.set("/dist/bar.zip", Response::ok(bar));
    server.set(
        "/p2/acme/bar.json",
        Response::ok(
            serde_json::to_vec(&serde_json::json!({
                "packages": {"acme/bar": [{"name": "acme/bar", "version": "1.0.0", "type": "library",
                    "dist": {"type": "zip", "url": server.url("/dist/bar.zip")}}]}
            }))
            .unwrap(),
        ),
    );
    server.url("")
}

fn site_with(f: &Fixture, m: &GitRepo, repo: &str, entry: &str) -> std::path::PathBuf {
    f.write(
        "site/site.ron",
        format!(
            "Site(\n    name: \"c\",\n    moodle: (version: \"4.5\", git: \"{}\"),\n    plugins: {{\n        {entry}\n    }},\n    composer_repositories: [\"{repo}\"],\n)\n",
            m.url()
        ),
    )
}

#[test]
fn a_composer_package_is_chosen_by_constraint_locked_and_reproduced() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let server = Server::start();
    let repo = repository(&server, false);
    let site = site_with(
        &f,
        &m,
        &repo,
        r#""mod_foo": (composer: "acme/moodle-mod_foo", version: "~2.1.0"),"#,
    );
    let j = f.realise_ok(&site);
    assert_eq!(
        j["plugins"]["mod_foo"]["version"], "2024080300",
        "2.1.3: ~2.1.0 stops below 2.2"
    );
    assert_eq!(j["plugins"]["mod_foo"]["install_path"], "mod/foo");
    assert!(f.path("site/result/mod/foo/lib.php").exists());
    let lock = std::fs::read_to_string(f.path("site/site.lock")).unwrap();
    assert!(lock.contains("Composer("), "{lock}");
    assert!(lock.contains("package: \"acme/moodle-mod_foo\""), "{lock}");
    assert!(lock.contains("version: \"2.1.3\""), "{lock}");
    assert!(lock.contains(&format!("repository: \"{repo}\"")), "{lock}");
    // Only the version read was downloaded.
    assert_eq!(server.requests_to("/dist/mod_foo-2.2.0.zip").len(), 0);
    let out = f
        .mcb()
        .args(["reproduce", "--json"])
        .arg(f.path("site/site.lock"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["same"], true, "{r}");

    // Without a constraint: the newest stable.
    std::fs::remove_file(f.path("site/site.lock")).unwrap();
    site_with(
        &f,
        &m,
        &repo,
        r#""mod_foo": (composer: "acme/moodle-mod_foo"),"#,
    );
    let j = f.realise_ok(&site);
    assert_eq!(j["plugins"]["mod_foo"]["version"], "2024090100");
}

#[test]
fn a_wrong_checksum_and_a_wrong_type_are_refused() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let server = Server::start();
    let repo = repository(&server, true);
    let site = site_with(
        &f,
        &m,
        &repo,
        r#""mod_foo": (composer: "acme/moodle-mod_foo", version: "~2.1.0"),"#,
    );
    let err = f.realise_err(&site, 6);
    assert!(err.contains("has sha1"), "{err}");
    assert!(err.contains("nothing entered the store"), "{err}");

    site_with(&f, &m, &repo, r#""local_bar": (composer: "acme/bar"),"#);
    let err = f.realise_err(&site, 4);
    assert!(
        err.contains("acme/bar 1.0.0 is of type library, not moodle-local"),
        "{err}"
    );

    // A constraint that is not Composer's is the site file's mistake.
    site_with(
        &f,
        &m,
        &repo,
        r#""mod_foo": (composer: "acme/moodle-mod_foo", version: "newest"),"#,
    );
    let err = f.realise_err(&site, 3);
    assert!(
        err.contains("is not a Composer version constraint"),
        "{err}"
    );
}

/// A repository that answers `p2/acme/moodle-mod_foo.json` with `doc`.
fn repository_answering(server: &Server, doc: serde_json::Value) -> String {
    server.set(
        "/packages.json",
        Response::ok(
            serde_json::to_vec(&serde_json::json!({
                "packages": [], "metadata-url": "/p2/%package%.json"
            }))
            .unwrap(),
        ),
    );
    server.set(
        "/p2/acme/moodle-mod_foo.json",
        Response::ok(serde_json::to_vec(&doc).unwrap()),
    );
    server.url("")
}

fn one_version(dist: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"packages": {"acme/moodle-mod_foo": [{
        "name": "acme/moodle-mod_foo", "version": "2.0.0", "type": "moodle-mod",
        "extra": {"installer-name": "foo"}, "dist": dist
    }]}})
}

/// A repository (or a lock) that names a file on this machine as a dist gets nothing read:
/// a text without a scheme is not a path, whatever it names.
#[test]
fn a_dist_that_names_a_local_file_is_refused_and_nothing_of_it_is_read() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    // A real plugin zip on this machine, holding a secret the repository wants to read.
    let secret = zip_bytes(&[
        (
            "foo/version.php",
            &plugin_php("mod_foo", 2024010100, "2024100700", ""),
            0o644,
        ),
        ("foo/secret.txt", "dbpass=hunter2\n", 0o644),
    ]);
    let at = f.write("private/secret.zip", &secret);
    let server = Server::start();
    for named in [
        at.display().to_string(),
        "../private/secret.zip".to_string(),
    ] {
        let repo = repository_answering(
            &server,
            one_version(serde_json::json!({"type": "zip", "url": named})),
        );
        let site = site_with(
            &f,
            &m,
            &repo,
            r#""mod_foo": (composer: "acme/moodle-mod_foo"),"#,
        );
        let err = f.realise_err(&site, 5);
        assert!(err.contains("is not an http(s) URL"), "{err}");
        assert!(err.contains("malformed"), "{err}");
        assert!(!f.path("site/result").exists());
        assert!(!f.path("site/site.lock").exists());
    }
    let stored = walkdir::WalkDir::new(f.store())
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .any(|e| std::fs::read(e.path()).is_ok_and(|b| b.windows(7).any(|w| w == b"hunter2")));
    assert!(!stored, "the secret reached the store");

    // The same through a hand-edited lock: a good dist first, then its `url:` pointed home.
    let zip = dist(2024080300);
    server.set("/dist/foo.zip", Response::ok(zip.clone()));
    let sum = hex::encode(sha1::Sha1::digest(&zip));
    let repo = repository_answering(
        &server,
        one_version(
            serde_json::json!({"type": "zip", "url": server.url("/dist/foo.zip"), "shasum": sum}),
        ),
    );
    let site = site_with(
        &f,
        &m,
        &repo,
        r#""mod_foo": (composer: "acme/moodle-mod_foo"),"#,
    );
    f.realise_ok(&site);
    let lock_path = f.path("site/site.lock");
    let lock = std::fs::read_to_string(&lock_path).unwrap();
    let edited = lock.replace(&server.url("/dist/foo.zip"), &at.display().to_string());
    assert_ne!(lock, edited);
    std::fs::write(&lock_path, &edited).unwrap();
    let err = f.realise_err(&site, 3);
    assert!(err.contains("is not an http(s) URL"), "{err}");
    assert!(err.contains("site.lock"), "{err}");
}

/// A dist over plain http:// with no checksum from its repository is refused, as a `zip:`
/// over http:// without a `hash` is.
#[test]
fn a_plain_http_dist_without_a_checksum_is_refused() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let server = Server::start();
    server.set("/dist/foo.zip", Response::ok(dist(2024080300)));
    let repo = repository_answering(
        &server,
        one_version(serde_json::json!({"type": "zip", "url": server.url("/dist/foo.zip")})),
    );
    let site = site_with(
        &f,
        &m,
        &repo,
        r#""mod_foo": (composer: "acme/moodle-mod_foo"),"#,
    );
    let err = f.realise_err(&site, 5);
    assert!(err.contains("plain http://"), "{err}");
    assert!(err.contains("gives no checksum"), "{err}");
    assert_eq!(
        server.requests_to("/dist/foo.zip").len(),
        0,
        "nothing was downloaded"
    );
}

/// Metadata is held to its limits before it is expanded, and metadata of the wrong shape
/// is said to be malformed (not "in no repository").
#[test]
fn composer_metadata_is_bounded_and_malformed_metadata_is_named() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let server = Server::start();
    // 20,000 minified entries, each large: refused by count before any is expanded.
    let big = "x".repeat(2_000);
    let mut entries = vec![serde_json::json!({
        "name": "acme/moodle-mod_foo", "version": "0.0.0", "type": "moodle-mod",
        "description": big, "dist": {"type": "zip", "url": "https://r.example/0.zip"}
    })];
    for i in 1..20_000 {
        entries.push(serde_json::json!({"version": format!("0.0.{i}")}));
    }
    let repo = repository_answering(
        &server,
        serde_json::json!({"minified": "composer/2.0", "packages": {"acme/moodle-mod_foo": entries}}),
    );
    let site = site_with(
        &f,
        &m,
        &repo,
        r#""mod_foo": (composer: "acme/moodle-mod_foo"),"#,
    );
    let started = std::time::Instant::now();
    let err = f.realise_err(&site, 5);
    assert!(
        err.contains("more than 5000 (the metadata-versions limit)"),
        "{err}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));

    // A document over metadata-bytes is not read whole.
    let out = f
        .mcb()
        .args(["realise", "--limits", "metadata-bytes=64K"])
        .arg(&site)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("the metadata-bytes limit"), "{err}");

    for (doc, says) in [
        (
            serde_json::json!({"packages": {"acme/moodle-mod_foo": {"2.0.0": {}}}}),
            "packages.acme/moodle-mod_foo is an object, not an array",
        ),
        (
            serde_json::json!({"packages": ["acme/moodle-mod_foo"]}),
            "`packages` is an array, not an object",
        ),
        (
            one_version(serde_json::json!({"type": "zip", "url": 42})),
            "`url` is a number, not a string",
        ),
    ] {
        let repo = repository_answering(&server, doc);
        site_with(
            &f,
            &m,
            &repo,
            r#""mod_foo": (composer: "acme/moodle-mod_foo"),"#,
        );
        let err = f.realise_err(&site, 5);
        assert!(err.contains("is malformed"), "{err}");
        assert!(err.contains(says), "{err}");
        assert!(!err.contains("is in no Composer repository"), "{err}");
    }
}

/// A Composer package stays with the repository that served it: a public repository the
/// site asks later (first, even) with a higher version of the same package changes nothing.
#[test]
fn a_composer_package_stays_with_its_repository() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let (private, public) = (Server::start(), Server::start());
    let private_repo = repository(&private, false);
    let site = site_with(
        &f,
        &m,
        &private_repo,
        r#""mod_foo": (composer: "acme/moodle-mod_foo"),"#,
    );
    let j = f.realise_ok(&site);
    assert_eq!(j["plugins"]["mod_foo"]["version"], "2024090100");
    // The public repository: the same name, a far higher version.
    let zip = dist(2099010100);
    public.set("/dist/foo-9.zip", Response::ok(zip.clone()));
    public.set(
        "/packages.json",
        Response::ok(br#"{"packages": [], "metadata-url": "/p2/%package%.json"}"#.to_vec()),
    );
    public.set(
        "/p2/acme/moodle-mod_foo.json",
        Response::ok(
            serde_json::to_vec(&serde_json::json!({"packages": {"acme/moodle-mod_foo": [{
                "name": "acme/moodle-mod_foo", "version": "9.0.0", "type": "moodle-mod",
                "extra": {"installer-name": "foo"},
                "dist": {"type": "zip", "url": public.url("/dist/foo-9.zip"),
                         "shasum": hex::encode(sha1::Sha1::digest(&zip))}}]}}))
            .unwrap(),
        ),
    );
    let public_repo = public.url("");
    let text = std::fs::read_to_string(&site).unwrap().replace(
        &format!("composer_repositories: [\"{private_repo}\"]"),
        &format!("composer_repositories: [\"{public_repo}\", \"{private_repo}\"]"),
    );
    std::fs::write(&site, text).unwrap();
    let out = f.run(&["update", "--json", s(&site)]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert_eq!(
        json_of(&out)["plugins"]["mod_foo"]["version"],
        "2024090100",
        "the public repository changes nothing"
    );
    assert!(public.requests_to("/dist/foo-9.zip").is_empty());
}
