//! Core's `vendor/` as a built package. A core that names its third-party libraries in a
//! `composer.lock` at its root and carries no `vendor/` (Moodle 5.1 and later, from git)
//! gets one from the real `composer` program: each locked package's dist is downloaded and
//! checked here (the lock's `shasum`, and the blake3 mcb's own lock recorded), handed to
//! Composer through a cache of its own, and Composer installs offline in a scratch
//! directory. The `vendor/` it writes is ingested like any source and remembered under the
//! blake3 of (composer.lock, Composer's version, the install options), so the next site on
//! the same core takes it from the store without running Composer.

use std::path::Path;

use mcb_config::{Location, LockedDist, LockedVendor};
use mcb_store::{Blake3, Manifest, ManifestHash};
use serde::Deserialize;

use crate::sources::{SourceError, SourceFailure, Sources, StoredSource};

/// What errors about `vendor/` are said of.
const WHO: &str = "moodle vendor/";

/// Composer's install, as mcb runs it: no development packages, an authoritative class map,
/// no scripts or plugins (code from the packages never runs at build time), platform
/// requirements left to `check` and Moodle's environment check (the build host is not the
/// web server).
pub const INSTALL_ARGS: &[&str] = &[
    "install",
    "--no-dev",
    "--classmap-authoritative",
    "--no-scripts",
    "--no-plugins",
    "--no-interaction",
    "--no-progress",
    "--ignore-platform-reqs",
];

/// Packages one composer.lock may name.
const MAX_PACKAGES: usize = 2_000;

/// A core's `vendor/`, in the store.
#[derive(Debug, Clone)]
pub struct StoredVendor {
    pub manifest: Manifest,
    pub hash: ManifestHash,
    pub locked: LockedVendor,
    /// Composer ran to build it in this run.
    pub built: bool,
}

#[derive(Debug, Deserialize)]
struct ComposerLock {
    #[serde(rename = "content-hash", default)]
    content_hash: String,
    #[serde(default)]
    packages: Vec<LockPackage>,
}

#[derive(Debug, Deserialize)]
struct LockPackage {
    name: String,
    version: String,
    dist: Option<LockDist>,
}

#[derive(Debug, Deserialize)]
struct LockDist {
    #[serde(rename = "type")]
    kind: String,
    url: String,
    #[serde(default)]
    shasum: Option<String>,
}

fn refused(message: String) -> SourceError {
    SourceError::new(WHO, SourceFailure::Refused, message)
}

/// A package name as Composer writes it (`vendor/name`, lowercase letters, digits and
/// `_.-`), so that it is safe as a path in Composer's cache.
fn valid_name(name: &str) -> bool {
    let ok = |part: &str| {
        !part.is_empty()
            && !part.starts_with('.')
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
    };
    matches!(name.split_once('/'), Some((v, n)) if ok(v) && ok(n))
}

/// The packages a core's composer.lock installs, each checked: a zip dist at an http(s)
/// URL (never a path on this machine), a valid name.
fn read_lock(bytes: &[u8]) -> Result<ComposerLock, SourceError> {
    let lock: ComposerLock = serde_json::from_slice(bytes)
        .map_err(|e| refused(format!("composer.lock is not valid: {e}")))?;
    if lock.packages.len() > MAX_PACKAGES {
        return Err(refused(format!(
            "composer.lock names {} packages, more than {MAX_PACKAGES}",
            lock.packages.len()
        )));
    }
    for p in &lock.packages {
        if !valid_name(&p.name) {
            return Err(refused(format!(
                "composer.lock names a package '{}', which is not a Composer package name",
                p.name.escape_debug()
            )));
        }
        let Some(d) = &p.dist else {
            return Err(refused(format!(
                "composer.lock gives {} {} no dist; mcb installs packages only from their dist zips",
                p.name, p.version
            )));
        };
        if d.kind != "zip" {
            return Err(refused(format!(
                "{} {}'s dist is a {} archive; mcb installs only zip dists",
                p.name,
                p.version,
                d.kind.escape_debug()
            )));
        }
        if !crate::composer::is_http_url(&d.url) {
            return Err(refused(format!(
                "{} {}'s dist '{}' is not an http(s) URL; mcb never reads a local file a composer.lock names",
                p.name,
                p.version,
                crate::http::shown_url(&d.url).escape_debug()
            ))
            .hint("the core's composer.lock is wrong; nothing was read"));
        }
    }
    Ok(lock)
}

/// The version of the `composer` program, or what to install.
pub fn composer_version() -> Result<String, SourceError> {
    let missing = || {
        SourceError::new(
            WHO,
            SourceFailure::Unavailable,
            "this core's third-party libraries are installed by Composer, and the `composer` program cannot be found",
        )
        .hint("install Composer (Debian: apt-get install composer) and run again")
    };
    if mcb_exec::find_program("composer").is_none() {
        return Err(missing());
    }
    let out = mcb_exec::Program::new("composer")
        .args(["--version", "--no-ansi", "--no-interaction"])
        .env("COMPOSER_ALLOW_SUPERUSER", "1")
        .run()
        .map_err(|e| {
            SourceError::new(WHO, SourceFailure::Unavailable, "cannot run `composer`").because(e)
        })?;
    // "Composer version 2.5.5 2023-03-21 11:50:05"
    let text = out.stdout_text();
    text.split_whitespace()
        .skip_while(|w| *w != "version")
        .nth(1)
        .map(str::to_string)
        .ok_or_else(|| {
            SourceError::new(
                WHO,
                SourceFailure::Unavailable,
                format!(
                    "`composer --version` said '{}', which names no version",
                    text.trim().escape_debug()
                ),
            )
        })
}

/// The paths a root composer.json's `autoload` names (psr-4, psr-0, classmap, files),
/// relative and inside the codebase; `""` for the root itself.
fn root_autoload_paths(json_bytes: &[u8]) -> Vec<String> {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(json_bytes) else {
        return Vec::new();
    };
    let Some(autoload) = json.get("autoload").and_then(|a| a.as_object()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut take = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => {
            out.extend(a.iter().filter_map(|x| x.as_str().map(str::to_string)))
        }
        _ => {}
    };
    for (kind, v) in autoload {
        match (kind.as_str(), v) {
            ("psr-4" | "psr-0", serde_json::Value::Object(m)) => m.values().for_each(&mut take),
            ("classmap" | "files", v) => take(v),
            _ => {}
        }
    }
    out.into_iter()
        .map(|p| p.trim_start_matches("./").trim_end_matches('/').to_string())
        .filter(|p| !p.starts_with('/') && !p.split('/').any(|c| c == ".."))
        .collect()
}

/// The key of a `vendor/` in the store's cache.
fn vendor_key(lock: &[u8], composer: &str) -> Blake3 {
    let mut h = blake3::Hasher::new();
    h.update(b"vendor-v1\0");
    h.update(lock);
    h.update(b"\0");
    h.update(composer.as_bytes());
    h.update(b"\0");
    h.update(INSTALL_ARGS.join(" ").as_bytes());
    Blake3::from_hasher(&h)
}

/// The cache's record of a built `vendor/`: the lock entry it gives, as RON.
fn record_text(v: &LockedVendor) -> String {
    ron::ser::to_string(v).expect("a vendor record serialises")
}

impl Sources<'_> {
    /// Core's `vendor/`, when core needs one built: it has a `composer.lock` naming packages
    /// and no `vendor/` of its own. `locked` is the site lock's, reused when it is for this
    /// composer.lock and its files are in the store.
    pub fn vendor(
        &self,
        core: &StoredSource,
        locked: Option<&LockedVendor>,
    ) -> Result<Option<StoredVendor>, SourceError> {
        if core
            .manifest
            .entries
            .iter()
            .any(|e| e.path.starts_with("vendor/"))
        {
            return Ok(None);
        }
        let Some(lock_bytes) = self.read(WHO, core, "composer.lock")? else {
            return Ok(None);
        };
        let Some(json_bytes) = self.read(WHO, core, "composer.json")? else {
            return Ok(None);
        };
        let lock = read_lock(&lock_bytes)?;
        if lock.packages.is_empty() {
            return Ok(None);
        }
        let lock_hash = Blake3::of(&lock_bytes);
        let reuse = |v: &LockedVendor| -> Option<StoredVendor> {
            if v.composer_lock != lock_hash {
                return None;
            }
            // Built here before, or by a host that published it to a binary cache.
            let manifest = self
                .store
                .read_manifest(&v.manifest)
                .ok()
                .or_else(|| self.substituted_manifest(WHO, &v.manifest))?;
            Some(StoredVendor {
                hash: manifest.hash(),
                manifest,
                locked: v.clone(),
                built: false,
            })
        };
        if let Some(v) = locked.and_then(reuse) {
            return Ok(Some(v));
        }
        let composer = composer_version()?;
        let key = vendor_key(&lock_bytes, &composer);
        let cache = self.store.cache();
        let recorded = cache
            .vendor_record(&key)
            .and_then(|t| ron::from_str::<LockedVendor>(&t).ok());
        if let Some(v) = recorded.as_ref().and_then(reuse) {
            return Ok(Some(v));
        }
        let built = self.build_vendor(core, &lock, &lock_bytes, &json_bytes, locked)?;
        let locked = LockedVendor {
            composer_lock: lock_hash,
            composer,
            manifest: built.manifest.hash(),
            packages: built.dists,
        };
        self.store
            .sync()
            .and_then(|_| self.store.put_manifest(&built.manifest))
            .and_then(|_| cache.set_vendor_record(&key, &record_text(&locked)))
            .map_err(|e| {
                SourceError::new(WHO, SourceFailure::Store, "the store failed").because(e)
            })?;
        Ok(Some(StoredVendor {
            hash: locked.manifest.clone(),
            manifest: built.manifest,
            locked,
            built: true,
        }))
    }

    /// Downloads and checks every dist, then runs Composer offline on them in a scratch
    /// directory of the store and ingests the `vendor/` it writes.
    fn build_vendor(
        &self,
        core: &StoredSource,
        lock: &ComposerLock,
        lock_bytes: &[u8],
        json_bytes: &[u8],
        locked: Option<&LockedVendor>,
    ) -> Result<Built, SourceError> {
        let store_error = |e: std::io::Error| {
            SourceError::new(WHO, SourceFailure::Store, "the store failed").because(e)
        };
        let scratch = self.store.held_staging("vendor-").map_err(|e| {
            SourceError::new(WHO, SourceFailure::Store, "the store failed").because(e)
        })?;
        let result = self.build_in(core, &scratch.path, lock, lock_bytes, json_bytes, locked);
        let _ = mcb_store::remove_tree(&scratch.path);
        drop(scratch);
        result.map_err(|e| match e {
            BuildError::Source(s) => s,
            BuildError::Io(io) => store_error(io),
        })
    }

    fn build_in(
        &self,
        core: &StoredSource,
        scratch: &Path,
        lock: &ComposerLock,
        lock_bytes: &[u8],
        json_bytes: &[u8],
        locked: Option<&LockedVendor>,
    ) -> Result<Built, BuildError> {
        let cache_dir = scratch.join("cache");
        let home = scratch.join("home");
        let project = scratch.join("project");
        for d in [&cache_dir, &home, &project] {
            std::fs::create_dir_all(d)?;
        }
        // In parallel; the first failure stops what has not started.
        let dists: Vec<LockedDist> = {
            use rayon::prelude::*;
            lock.packages
                .par_iter()
                .map(|p| self.dist(p, locked, &cache_dir))
                .collect::<Result<Vec<_>, SourceError>>()?
        };
        std::fs::write(project.join("composer.json"), json_bytes)?;
        std::fs::write(project.join("composer.lock"), lock_bytes)?;
        self.place_root_autoload(core, &project, json_bytes)?;
        // The autoloader's class names carry a suffix Composer would otherwise draw at
        // random: the lock's content-hash makes it the same on every machine.
        let config = serde_json::json!({"config": {"autoloader-suffix": lock.content_hash}});
        std::fs::write(home.join("config.json"), config.to_string())?;
        let mut composer = mcb_exec::Program::new("composer");
        composer
            .args(INSTALL_ARGS)
            .arg("--no-ansi")
            .current_dir(&project)
            .env("COMPOSER_HOME", &home)
            .env("COMPOSER_CACHE_DIR", &cache_dir)
            .env("COMPOSER_DISABLE_NETWORK", "1")
            .env("COMPOSER_ROOT_VERSION", "1.0.0")
            .env("COMPOSER_ALLOW_SUPERUSER", "1")
            .env("COMPOSER_NO_AUDIT", "1");
        for var in [
            "COMPOSER",
            "COMPOSER_AUTH",
            "COMPOSER_VENDOR_DIR",
            "COMPOSER_BIN_DIR",
            "COMPOSER_MIRROR_PATH_REPOS",
        ] {
            composer.env_remove(var);
        }
        composer.run().map_err(|e| {
            SourceError::new(WHO, SourceFailure::Refused, "Composer could not install the core's composer.lock offline from the dists mcb checked")
                .because(e)
                .hint("the core's composer.lock and its dists must install with `composer install --no-dev`")
        })?;
        let vendor = project.join("vendor");
        let files = crate::unpack_dir(&vendor, self.store, &self.limits.source).map_err(|e| {
            SourceError::new(
                WHO,
                SourceFailure::Refused,
                "the vendor/ Composer wrote is refused",
            )
            .because(e)
        })?;
        let manifest = self.git.ingest_files(self.store, files).map_err(|e| {
            SourceError::new(
                WHO,
                SourceFailure::Store,
                "cannot store the vendor/ Composer wrote",
            )
            .because(e)
        })?;
        Ok(Built { manifest, dists })
    }

    /// Copies beside composer.json the core files its own `autoload` names, so that the
    /// class map Composer writes holds core's classes as `composer install` in a checkout
    /// would (copies: Composer never writes into the store's objects).
    fn place_root_autoload(
        &self,
        core: &StoredSource,
        project: &Path,
        json_bytes: &[u8],
    ) -> Result<(), BuildError> {
        let paths = root_autoload_paths(json_bytes);
        if paths.is_empty() {
            return Ok(());
        }
        let named = |file: &str| {
            paths.iter().any(|p| {
                p.is_empty()
                    || file == p
                    || file
                        .strip_prefix(p.as_str())
                        .is_some_and(|r| r.starts_with('/'))
            })
        };
        for e in core.manifest.entries.iter().filter(|e| named(&e.path)) {
            if e.kind == mcb_store::EntryKind::Symlink {
                continue;
            }
            let Some(bytes) = self.read(WHO, core, &e.path)? else {
                continue;
            };
            let to = project.join(&e.path);
            if let Some(dir) = to.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&to, bytes)?;
        }
        Ok(())
    }

    /// One package's dist: downloaded, checked against the composer.lock's shasum and the
    /// blake3 the site's lock recorded, and put where Composer's cache looks for it.
    fn dist(
        &self,
        p: &LockPackage,
        locked: Option<&LockedVendor>,
        cache_dir: &Path,
    ) -> Result<LockedDist, SourceError> {
        let d = p.dist.as_ref().expect("read_lock checked every dist");
        let shown = crate::http::shown_url(&d.url);
        let staged = self.stage(WHO, &Location::Url(d.url.clone()))?;
        if let Some(want) = d.shasum.as_deref().filter(|s| !s.is_empty()) {
            use sha1::Digest;
            let bytes = std::fs::read(staged.file.path()).map_err(|e| {
                SourceError::new(WHO, SourceFailure::Store, "cannot read a staged file").because(e)
            })?;
            let got = hex::encode(sha1::Sha1::digest(&bytes));
            if !got.eq_ignore_ascii_case(want) {
                return Err(SourceError::new(
                    WHO,
                    SourceFailure::Integrity,
                    format!(
                        "{} {}: {shown} has sha1 {got}, but composer.lock says {want}; nothing entered the store",
                        p.name, p.version
                    ),
                ));
            }
        }
        let was = locked.and_then(|l| {
            l.packages
                .iter()
                .find(|x| x.name == p.name && x.version == p.version && x.url == d.url)
        });
        if let Some(was) = was
            && was.blake3 != staged.blake3
        {
            return Err(SourceError::new(
                WHO,
                SourceFailure::Integrity,
                format!(
                    "{} {}: {shown} changed since the lock was written (blake3 {}, now {}); nothing entered the store",
                    p.name, p.version, was.blake3, staged.blake3
                ),
            ));
        }
        // Where Composer's cache keeps a dist: the package's name, then the sha1 of the URL.
        use sha1::Digest;
        let key = hex::encode(sha1::Sha1::digest(d.url.as_bytes()));
        let at = cache_dir
            .join("files")
            .join(&p.name)
            .join(format!("{key}.zip"));
        let placed = std::fs::create_dir_all(at.parent().expect("has a parent"))
            .and_then(|_| std::fs::copy(staged.file.path(), &at));
        placed.map_err(|e| {
            SourceError::new(
                WHO,
                SourceFailure::Store,
                "cannot place a dist for Composer",
            )
            .because(e)
        })?;
        Ok(LockedDist {
            name: p.name.clone(),
            version: p.version.clone(),
            url: d.url.clone(),
            blake3: staged.blake3.clone(),
        })
    }
}

/// The third-party packages a plugin's composer.json requires that nothing installs: a
/// plugin that ships its own vendor directory (`config.vendor-dir`, else `vendor/`) brings
/// them; core's `vendor/` is built from core's composer.lock alone. Platform requirements
/// (`php`, `ext-*`), Composer's own packages and Moodle's are not third-party libraries.
pub fn unmet_plugin_requirements<'a>(
    composer_json: &[u8],
    plugin_paths: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    #[derive(Deserialize)]
    struct ComposerJson {
        #[serde(default)]
        require: std::collections::BTreeMap<String, serde_json::Value>,
        #[serde(default)]
        config: Option<serde_json::Value>,
    }
    let Ok(c) = serde_json::from_slice::<ComposerJson>(composer_json) else {
        return Vec::new();
    };
    let vendor_dir = c
        .config
        .as_ref()
        .and_then(|c| c.get("vendor-dir"))
        .and_then(|d| d.as_str())
        .map(|d| d.trim_matches('/').to_string())
        .unwrap_or_else(|| "vendor".to_string());
    let prefix = format!("{vendor_dir}/");
    if plugin_paths.into_iter().any(|p| p.starts_with(&prefix)) {
        return Vec::new();
    }
    c.require
        .into_keys()
        .filter(|n| n.contains('/'))
        .filter(|n| !n.starts_with("moodle/") && !n.starts_with("composer/"))
        .collect()
}

/// What a build gave.
struct Built {
    manifest: Manifest,
    dists: Vec<LockedDist>,
}

enum BuildError {
    Source(SourceError),
    Io(std::io::Error),
}

impl From<SourceError> for BuildError {
    fn from(e: SourceError) -> Self {
        BuildError::Source(e)
    }
}

impl From<std::io::Error> for BuildError {
    fn from(e: std::io::Error) -> Self {
        BuildError::Io(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_needs_its_libraries_unless_it_ships_them() {
        let json = br#"{"require":{"php":">=8.1","ext-json":"*","composer/installers":"^2","moodle/moodle-cs":"^3","guzzlehttp/guzzle":"^7","league/csv":"^9"},"config":{"vendor-dir":"lib/vendor/"}}"#;
        assert_eq!(
            unmet_plugin_requirements(json, ["version.php", "vendor/autoload.php"]),
            ["guzzlehttp/guzzle", "league/csv"]
        );
        assert!(unmet_plugin_requirements(json, ["lib/vendor/autoload.php"]).is_empty());
        assert!(unmet_plugin_requirements(b"not json", []).is_empty());
    }

    #[test]
    fn a_composer_lock_that_names_a_path_or_a_bad_name_is_refused() {
        let lock = |name: &str, url: &str, kind: &str| {
            format!(
                r#"{{"content-hash":"x","packages":[{{"name":"{name}","version":"1.0.0","dist":{{"type":"{kind}","url":"{url}"}}}}]}}"#
            )
        };
        assert!(read_lock(lock("a/b", "https://h/a.zip", "zip").as_bytes()).is_ok());
        for (name, url, kind) in [
            ("a/b", "/etc/passwd", "zip"),
            ("a/b", "../secret.zip", "zip"),
            ("a/b", "file:///etc/x.zip", "zip"),
            ("../x", "https://h/a.zip", "zip"),
            ("a/../../b", "https://h/a.zip", "zip"),
            ("a/b", "https://h/a.tar", "tar"),
        ] {
            let e = read_lock(lock(name, url, kind).as_bytes()).unwrap_err();
            assert_eq!(e.failure, SourceFailure::Refused, "{name} {url}: {e}");
        }
    }

    /// Any composer.lock is read or refused, never a panic; what is read names only zip
    /// dists at http(s) URLs and package names safe as paths.
    #[test]
    fn a_composer_lock_of_any_shape_is_read_or_refused() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};
        let name = prop_oneof![
            Just("a/b".to_string()),
            Just("../x".to_string()),
            Just("a/../../b".to_string()),
            Just("A/B".to_string()),
            Just(".a/b".to_string()),
            "[a-z./_-]{0,12}",
        ];
        let url = prop_oneof![
            Just("https://h/a.zip".to_string()),
            Just("/etc/passwd".to_string()),
            Just("../secret.zip".to_string()),
            Just("file:///etc/x".to_string()),
            Just("ftp://h/a.zip".to_string()),
            "[ -~]{0,20}",
        ];
        let kind = prop::sample::select(vec!["zip", "tar", "path", "", "ZIP"]);
        let package = (name, url, kind, any::<bool>()).prop_map(|(n, u, k, dist)| {
            if dist {
                serde_json::json!({"name": n, "version": "1.0.0", "dist": {"type": k, "url": u, "shasum": ""}})
            } else {
                serde_json::json!({"name": n, "version": "1.0.0"})
            }
        });
        let lock = prop_oneof![
            prop::collection::vec(package, 0..8)
                .prop_map(|p| serde_json::json!({"content-hash": "x", "packages": p}).to_string()),
            any::<Vec<u8>>().prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        ];
        let started = std::time::Instant::now();
        while started.elapsed() < mcb_fixtures::fuzz_budget() / 2 {
            let mut runner = TestRunner::new(Config {
                cases: 256,
                failure_persistence: None,
                ..Config::default()
            });
            runner
                .run(&lock, |text| {
                    if let Ok(l) = read_lock(text.as_bytes()) {
                        for p in &l.packages {
                            assert!(valid_name(&p.name), "{}", p.name);
                            let d = p.dist.as_ref().expect("a dist");
                            assert_eq!(d.kind, "zip");
                            assert!(crate::composer::is_http_url(&d.url), "{}", d.url);
                        }
                    }
                    Ok(())
                })
                .unwrap();
        }
    }
}
