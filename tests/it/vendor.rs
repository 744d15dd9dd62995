//! Core's `vendor/` built by the real `composer` program: a 5.1-shaped core whose
//! composer.json and composer.lock name two small packages served as dist zips on loopback.

use sha1::Digest;

use crate::support::http::{Response, Server};
use crate::support::*;

pub(crate) const COMPOSER_JSON: &str = r#"{
    "name": "moodle/moodle",
    "type": "project",
    "require": {
        "acme/greet": "^1.0",
        "acme/shout": "^2.1"
    },
    "require-dev": {
        "acme/devtool": "^1.0"
    },
    "autoload": {
        "psr-4": {
            "Core\\Site\\": "public/lib/site/"
        }
    }
}
"#;

/// acme/greet 1.0.0 (PSR-4, its sha1 in the lock) and acme/shout 2.1.0 (a class map, no
/// sha1, as GitHub's archives are locked). `hello` is what the greeter says.
pub(crate) fn dists(hello: &str) -> [(&'static str, Vec<u8>); 2] {
    [
        (
            "/dists/greet-1.0.0.zip",
            zip_bytes(&[
                (
                    "acme-greet-1a2b3c/composer.json",
                    r#"{"name":"acme/greet","autoload":{"psr-4":{"Acme\\Greet\\":"src/"}}}"#,
                    0o644,
                ),
                (
                    "acme-greet-1a2b3c/src/Greeter.php",
                    &format!(
                        "<?php\nnamespace Acme\\Greet;\nclass Greeter {{ public function hi(): string {{ return '{hello}'; }} }}\n"
                    ),
                    0o644,
                ),
            ]),
        ),
        (
            "/dists/shout-2.1.0.zip",
            zip_bytes(&[
                (
                    "acme-shout-4d5e6f/composer.json",
                    r#"{"name":"acme/shout","autoload":{"classmap":["lib/"]}}"#,
                    0o644,
                ),
                (
                    "acme-shout-4d5e6f/lib/Shout.php",
                    "<?php\nclass Shout { public static function it(string $s): string { return strtoupper($s); } }\n",
                    0o644,
                ),
            ]),
        ),
    ]
}

/// The composer.lock of COMPOSER_JSON with its dists on `server`.
pub(crate) fn composer_lock(server: &Server, greet_zip: &[u8]) -> String {
    let lock = serde_json::json!({
        "_readme": ["This file locks the dependencies of your project to a known state"],
        "content-hash": "5f3c8a1e2b7d4c6f9a0b1c2d3e4f5a6b",
        "packages": [
            {
                "name": "acme/greet",
                "version": "1.0.0",
                "dist": {
                    "type": "zip",
                    "url": server.url("/dists/greet-1.0.0.zip"),
                    "reference": "1a2b3c",
                    "shasum": hex::encode(sha1::Sha1::digest(greet_zip))
                },
                "type": "library",
                "autoload": {"psr-4": {"Acme\\Greet\\": "src/"}},
                "time": "2025-01-01T00:00:00+00:00"
            },
            {
                "name": "acme/shout",
                "version": "2.1.0",
                "dist": {
                    "type": "zip",
                    "url": server.url("/dists/shout-2.1.0.zip"),
                    "reference": "4d5e6f",
                    "shasum": ""
                },
                "type": "library",
                "autoload": {"classmap": ["lib/"]},
                "time": "2025-02-01T00:00:00+00:00"
            }
        ],
        "packages-dev": [
            {
                "name": "acme/devtool",
                "version": "1.0.0",
                "dist": {"type": "zip", "url": server.url("/dists/devtool.zip"), "reference": "x", "shasum": ""},
                "type": "library"
            }
        ],
        "aliases": [],
        "minimum-stability": "stable",
        "stability-flags": [],
        "prefer-stable": false,
        "prefer-lowest": false,
        "platform": [],
        "platform-dev": [],
        "plugin-api-version": "2.3.0"
    });
    serde_json::to_string_pretty(&lock).unwrap()
}

/// A 5.1 core whose v5.1.0 carries composer.json and composer.lock, its dists served.
fn core_with_composer(f: &Fixture, server: &Server) -> GitRepo {
    let m = moodle51_repo(f.path("moodle"));
    let dists = dists("hello");
    for (path, zip) in &dists {
        server.set(path, Response::ok(zip.clone()));
    }
    m.write("composer.json", COMPOSER_JSON);
    m.write("composer.lock", &composer_lock(server, &dists[0].1));
    // Core's own classes, which its composer.json autoloads.
    m.write(
        "public/lib/site/Hello.php",
        "<?php\nnamespace Core\\Site;\nclass Hello { const WORD = 'core'; }\n",
    );
    m.commit("Third-party libraries through Composer");
    m.git(&["tag", "-f", "v5.1.0"]);
    m
}

fn site(f: &Fixture, m: &GitRepo, name: &str) -> std::path::PathBuf {
    let list = f.write("empty-pluglist.json", "{\"timestamp\": 0, \"plugins\": []}");
    Site::new(name)
        .core(m.url(), "5.1")
        .directory(list.display().to_string())
        .write(f, &format!("{name}/site.ron"))
}

/// A `composer` on the PATH that logs its arguments to `log`, then runs the real one.
fn logging_composer(f: &Fixture) -> (std::path::PathBuf, std::path::PathBuf) {
    let real = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v composer"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let real = real.trim();
    assert!(
        !real.is_empty(),
        "composer is installed (.ci/run installs it)"
    );
    let bin = f.path("bin");
    let log = f.path("composer.log");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("composer");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec '{real}' \"$@\"\n",
            log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    (std::path::PathBuf::from(path), log)
}

fn installs_logged(log: &std::path::Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("install"))
        .count()
}

fn realise_json(
    f: &Fixture,
    store: &std::path::Path,
    path: &std::ffi::OsStr,
    site: &std::path::Path,
) -> serde_json::Value {
    let out = f
        .mcb_with_store(store)
        .env("PATH", path)
        .args(["realise", "--json"])
        .arg(site)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Composer builds vendor/ offline from the dists mcb checked; the codebase's PHP loads
/// both packages through it; the lock records it; the second site on the same core takes
/// it from the store without running Composer; another store builds the same bytes; and
/// reproduce rebuilds and compares it.
#[test]
fn a_51_core_gets_its_vendor_built_by_composer_once_and_the_same_everywhere() {
    let f = Fixture::new();
    let server = Server::start();
    let m = core_with_composer(&f, &server);
    let (path, log) = logging_composer(&f);
    let a = site(&f, &m, "a");
    let first = realise_json(&f, &f.store(), path.as_os_str(), &a);
    assert_eq!(installs_logged(&log), 1, "composer install ran once");
    let result = f.path("a/result");
    assert!(result.join("vendor/autoload.php").is_file());
    assert!(result.join("vendor/acme/greet/src/Greeter.php").is_file());
    assert!(
        !result.join("vendor/acme/devtool").exists(),
        "no development package"
    );
    assert!(
        server.requests_to("/dists/devtool.zip").is_empty(),
        "a development package's dist is never downloaded"
    );
    let classmap =
        std::fs::read_to_string(result.join("vendor/composer/autoload_classmap.php")).unwrap();
    assert!(classmap.contains("Acme\\\\Greet\\\\Greeter"), "{classmap}");
    // Core's own classes are in the class map, as `composer install` in a checkout puts them.
    assert!(
        classmap.contains("$baseDir . '/public/lib/site/Hello.php'"),
        "{classmap}"
    );
    // PHP loads both packages from the codebase, as Moodle's lib/setup.php does.
    let php = std::process::Command::new("php")
        .arg("-r")
        .arg("require 'vendor/autoload.php'; echo Shout::it((new Acme\\Greet\\Greeter)->hi()), ' ', Core\\Site\\Hello::WORD;")
        .current_dir(&result)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&php.stdout),
        "HELLO core",
        "{}",
        String::from_utf8_lossy(&php.stderr)
    );
    let lock = std::fs::read_to_string(f.path("a/site.lock")).unwrap();
    assert!(lock.contains("vendor: ("), "{lock}");
    assert!(
        lock.contains("acme/greet") && lock.contains("acme/shout"),
        "{lock}"
    );
    assert!(!lock.contains("acme/devtool"), "{lock}");

    // The second site on the same core: vendor/ from the store, no Composer install.
    let b = site(&f, &m, "b");
    let second = realise_json(&f, &f.store(), path.as_os_str(), &b);
    assert_eq!(
        installs_logged(&log),
        1,
        "the second site ran no composer install"
    );
    assert_eq!(second["tree"], first["tree"]);
    assert_eq!(server.requests_to("/dists/greet-1.0.0.zip").len(), 1);

    // Another, empty store: Composer runs again and writes the same bytes.
    let other = f.path("store2");
    let again = realise_json(&f, &other, path.as_os_str(), &a);
    assert_eq!(installs_logged(&log), 2);
    assert_eq!(again["tree"], first["tree"], "same inputs, same vendor/");

    let out = f
        .mcb()
        .env("PATH", &path)
        .args(["reproduce", "--check", "--json"])
        .arg(f.path("a/site.lock"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert_eq!(installs_logged(&log), 3, "reproduce rebuilt vendor/");

    // A store that reads a binary cache this one published takes vendor/ from it: no
    // Composer install, no dist downloaded.
    let key = f.path("cache.key");
    let out = f
        .mcb()
        .args(["cache", "key", "build", "-o"])
        .arg(&key)
        .output()
        .unwrap();
    let public = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let cache = format!("file://{}", f.path("cache").display());
    let out = f
        .mcb()
        .args(["cache", "push", "--to", &cache, "--key"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dists = server.requests_to("/dists/greet-1.0.0.zip").len();
    let out = f
        .mcb_with_store(&f.path("store3"))
        .env("PATH", &path)
        .env("MCB_SUBSTITUTERS", &cache)
        .env("MCB_TRUSTED_KEYS", &public)
        .args(["realise", "--locked", "--json"])
        .arg(&a)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cached: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cached["tree"], first["tree"]);
    assert_eq!(installs_logged(&log), 3, "vendor/ came from the cache");
    assert_eq!(server.requests_to("/dists/greet-1.0.0.zip").len(), dists);
}

/// A dist that changed is refused before Composer sees it: against the composer.lock's
/// sha1, and against the blake3 the site's lock recorded where composer.lock gives none.
#[test]
fn a_tampered_dist_is_refused_and_nothing_is_installed() {
    let f = Fixture::new();
    let server = Server::start();
    let m = core_with_composer(&f, &server);
    let (path, log) = logging_composer(&f);
    let a = site(&f, &m, "a");
    realise_json(&f, &f.store(), path.as_os_str(), &a);
    let evil = dists("pwned");
    // acme/shout has no sha1 in composer.lock: the site lock's blake3 catches it.
    let shout = zip_bytes(&[(
        "acme-shout-4d5e6f/lib/Shout.php",
        "<?php\nclass Shout { public static function it(string $s): string { return 'x'; } }\n",
        0o644,
    )]);
    server.set("/dists/shout-2.1.0.zip", Response::ok(shout));
    let out = f
        .mcb_with_store(&f.path("store2"))
        .env("PATH", &path)
        .arg("realise")
        .arg(&a)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("acme/shout 2.1.0") && err.contains("changed since the lock was written"),
        "{err}"
    );
    // acme/greet's sha1 is in composer.lock.
    server.set(
        "/dists/shout-2.1.0.zip",
        Response::ok(dists("hello")[1].1.clone()),
    );
    server.set("/dists/greet-1.0.0.zip", Response::ok(evil[0].1.clone()));
    let out = f
        .mcb_with_store(&f.path("store3"))
        .env("PATH", &path)
        .arg("realise")
        .arg(&a)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("acme/greet 1.0.0") && err.contains("but composer.lock says"),
        "{err}"
    );
    assert_eq!(
        installs_logged(&log),
        1,
        "Composer never saw a changed dist"
    );
    assert!(
        std::fs::read_link(f.path("a/result")).is_ok(),
        "the last good result stays"
    );
}

/// No `composer` on the machine: one error saying what to install, and nothing moves.
#[test]
fn without_composer_the_error_says_what_to_install() {
    let f = Fixture::new();
    let server = Server::start();
    let m = core_with_composer(&f, &server);
    let bin = f.path("gitonly");
    std::fs::create_dir_all(&bin).unwrap();
    let git = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v git"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    std::os::unix::fs::symlink(git.trim(), bin.join("git")).unwrap();
    let a = site(&f, &m, "a");
    let out = f
        .mcb()
        .env("PATH", &bin)
        .arg("realise")
        .arg(&a)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("`composer` program cannot be found"), "{err}");
    assert!(err.contains("apt-get install composer"), "{err}");
    assert!(!f.path("a/site.lock").exists());
    assert!(!f.path("a/result").exists());
}

/// A plugin whose composer.json needs libraries it does not ship is refused naming them;
/// one that ships its vendor/ is taken.
#[test]
fn a_plugin_that_needs_libraries_it_does_not_ship_is_refused_naming_them() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let p = plugin_repo(
        f.path("local_feed"),
        &[(
            "v1.0",
            plugin_php("local_feed", 2024100100, "2024100700", ""),
        )],
    );
    p.write(
        "composer.json",
        r#"{"require": {"php": ">=8.1", "ext-curl": "*", "guzzlehttp/guzzle": "^7", "league/csv": "^9"}}"#,
    );
    p.commit("Libraries through Composer");
    p.git(&["tag", "v1.1"]);
    let site = good_site(&f, &m, &[("local_feed", Src::git(p.url()).at("v1.1"))]);
    let err = f.realise_err(&site, 5);
    assert!(
        err.contains("local_feed: its composer.json requires third-party packages guzzlehttp/guzzle, league/csv and it ships no vendor/ of its own"),
        "{err}"
    );
    assert!(!f.path("site/result").exists());
    p.write("vendor/autoload.php", "<?php\n");
    p.commit("Bundled libraries");
    p.git(&["tag", "v1.2"]);
    let site = good_site(&f, &m, &[("local_feed", Src::git(p.url()).at("v1.2"))]);
    f.realise_ok_with(&site, &["--refresh"]);
}

/// `mcb init --config-php` writes a config.php the site links, naming the codebase by its
/// path; PHP really loads Moodle's `public/lib/setup.php` through the link, where the
/// `__DIR__` of config-dist.php looks beside the linked file and fails.
#[test]
fn a_config_php_from_init_loads_setup_php_through_the_link() {
    let f = Fixture::new();
    let m = moodle51_repo(f.path("moodle"));
    m.write(
        "public/lib/setup.php",
        "<?php\necho 'setup ', __FILE__, ' for ', $CFG->dataroot, \"\\n\";\n",
    );
    m.commit("setup.php");
    m.git(&["tag", "-f", "v5.1.0"]);
    let config = f.path("etc/univ/config.php");
    let site = f.path("site/site.ron");
    let out = f
        .mcb()
        .args(["init", "--moodle", "5.1", "--name", "univ", "--config-php"])
        .arg(&config)
        .arg(&site)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "only its owner and group read a config.php");
    let text = std::fs::read_to_string(&config).unwrap();
    let result = f.path("site/result");
    assert!(
        text.contains(&format!(
            "require_once('{}/public/lib/setup.php');",
            result.display()
        )),
        "{text}"
    );
    let site_text = std::fs::read_to_string(&site).unwrap();
    assert!(
        site_text.contains(&format!(
            "\"config.php\": {:?}",
            config.display().to_string()
        )),
        "{site_text}"
    );
    // A second init leaves an existing config.php alone.
    let again = f
        .mcb()
        .args(["init", "--config-php"])
        .arg(&config)
        .arg(f.path("other/site.ron"))
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(64));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), text);

    // Core from the fixture's repository rather than moodle.git.
    std::fs::write(
        &site,
        site_text.replace(
            "moodle: (version: \"5.1\")",
            &format!("moodle: (version: \"5.1\", git: {:?})", m.url()),
        ),
    )
    .unwrap();
    let out = f.mcb().args(["realise"]).arg(&site).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_link(result.join("config.php")).unwrap(),
        config
    );
    let php = |dir: &std::path::Path| {
        std::process::Command::new("php")
            .arg("config.php")
            .current_dir(dir)
            .output()
            .unwrap()
    };
    let ran = php(&result);
    let said = String::from_utf8_lossy(&ran.stdout);
    assert!(
        ran.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    assert!(
        said.starts_with("setup ")
            && said.contains("/generations/")
            && said.contains("/public/lib/setup.php for /var/lib/moodle/univ"),
        "{said}"
    );
    // Moodle's own ending, through the same link, looks outside the codebase.
    let dir_based = text.replace(
        &format!("'{}/public/lib/setup.php'", result.display()),
        "__DIR__ . '/public/lib/setup.php'",
    );
    std::fs::write(&config, dir_based).unwrap();
    let ran = php(&result);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&ran.stdout),
        String::from_utf8_lossy(&ran.stderr)
    );
    assert!(!ran.status.success(), "{said}");
    assert!(said.contains("Failed opening required"), "{said}");
}
