//! The `mcb` binary as the integration tests run it, and what they check around a run
//! (a failed run changes nothing). The upstreams they build come from `mcb-fixtures`.

pub use mcb_fixtures::*;

use std::path::{Path, PathBuf};
use std::process::Command as Std;

/// Runs the `mcb` binary on a fixture.
pub trait RunMcb {
    /// `mcb --store <fixture store>` with a clean environment.
    fn mcb(&self) -> Mcb;
    fn mcb_with_store(&self, store: &Path) -> Mcb;
    /// `mcb ARGS`, run.
    fn run(&self, args: &[&str]) -> std::process::Output {
        self.mcb().args(args).output().unwrap()
    }
    /// Runs `mcb realise --json SITE`, asserts success and returns the JSON.
    fn realise_ok(&self, site: &Path) -> serde_json::Value {
        self.realise_ok_with(site, &[])
    }
    /// `realise_ok` with more arguments (`--allow-downgrade`).
    fn realise_ok_with(&self, site: &Path, args: &[&str]) -> serde_json::Value;
    /// Runs `mcb realise SITE`, asserts exit `code` and returns stderr.
    fn realise_err(&self, site: &Path, code: i32) -> String {
        self.realise_err_with(site, &[], code)
    }
    fn realise_err_with(&self, site: &Path, args: &[&str], code: i32) -> String;
}

impl RunMcb for Fixture {
    fn mcb(&self) -> Mcb {
        self.mcb_with_store(&self.store())
    }

    fn mcb_with_store(&self, store: &Path) -> Mcb {
        let mut c = Std::new(assert_cmd::cargo::cargo_bin!("mcb"));
        c.env_remove("MCB_STORE")
            .env_remove("MCB_DIRECTORY")
            .env_remove("MCB_MARKETPLACE_TOKEN")
            // Moodle's own upstream is never reached from a test: a repository that is not.
            .env("MCB_MOODLE_GIT", "/nonexistent/moodle.git")
            .env("MCB_HTTP_BACKOFF_MS", "10")
            .arg("--store")
            .arg(store);
        Mcb(c)
    }

    fn realise_ok_with(&self, site: &Path, args: &[&str]) -> serde_json::Value {
        let out = self
            .mcb()
            .args(["realise", "--json"])
            .args(args)
            .arg(site)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "realise failed ({:?}):\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_committed_tree_is_materialised(
            &self.store(),
            j["commit"].as_str().unwrap(),
            std::path::Path::new(j["path"].as_str().unwrap()),
        );
        j
    }

    fn realise_err_with(&self, site: &Path, args: &[&str], code: i32) -> String {
        let out = self
            .mcb()
            .arg("realise")
            .args(args)
            .arg(site)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "stderr:\n{stderr}");
        stderr
    }
}

/// The `mcb` binary as a test runs it. Every run is held to what a user is promised: a
/// failure always says why on stderr (no exit other than 0 without a message; an exit 2,
/// "pending", says what is pending on stdout or stderr).
pub struct Mcb(Std);

/// Panics when `out` ended in failure without a word.
pub fn assert_said_why(out: &std::process::Output) {
    let code = out.status.code();
    let quiet_ok = matches!(code, Some(0));
    if quiet_ok {
        return;
    }
    let said = if code == Some(2) {
        !out.stdout.is_empty() || !out.stderr.is_empty()
    } else {
        !String::from_utf8_lossy(&out.stderr).trim().is_empty()
    };
    assert!(
        said,
        "mcb exited {code:?} without a message on stderr\nstdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

impl Mcb {
    pub fn arg(&mut self, a: impl AsRef<std::ffi::OsStr>) -> &mut Mcb {
        self.0.arg(a);
        self
    }

    pub fn args<I, S>(&mut self, args: I) -> &mut Mcb
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.0.args(args);
        self
    }

    pub fn env(
        &mut self,
        k: impl AsRef<std::ffi::OsStr>,
        v: impl AsRef<std::ffi::OsStr>,
    ) -> &mut Mcb {
        self.0.env(k, v);
        self
    }

    pub fn current_dir(&mut self, d: impl AsRef<Path>) -> &mut Mcb {
        self.0.current_dir(d);
        self
    }

    /// Runs it, checking that a failure says why.
    pub fn output(&mut self) -> std::io::Result<std::process::Output> {
        let out = self.0.output()?;
        assert_said_why(&out);
        Ok(out)
    }

    /// The command itself, for a test that runs it its own way.
    pub fn into_command(self) -> Std {
        self.0
    }

    /// Runs it for assertions, checking that a failure says why.
    pub fn assert(&mut self) -> assert_cmd::assert::Assert {
        assert_cmd::assert::Assert::new(self.output().unwrap())
    }
}

/// What a failed run must not change.
pub struct Before {
    pub link: PathBuf,
    pub tree: Vec<(String, String)>,
    pub lock: String,
    pub store: Vec<(String, String)>,
    pub branch: String,
}

pub fn store_state(store: &Path) -> Vec<(String, String)> {
    // Objects, manifests and generations: what a good codebase depends on.
    let mut all = Vec::new();
    for sub in ["objects", "pkgs"] {
        all.extend(
            snapshot(&store.join(sub))
                .into_iter()
                .map(|(p, h)| (format!("{sub}/{p}"), h)),
        );
    }
    all
}

pub fn branch_head(store: &Path, branch: &str) -> String {
    let out = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(store.join("git"))
        .args(["rev-parse", &format!("refs/heads/{branch}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Before {
    pub fn take(f: &Fixture) -> Before {
        let link = f.path("site/result");
        Before {
            tree: snapshot(&link),
            link: std::fs::read_link(&link).unwrap(),
            lock: std::fs::read_to_string(f.path("site/site.lock")).unwrap(),
            store: store_state(&f.store()),
            branch: branch_head(&f.store(), "s1"),
        }
    }

    pub fn assert_intact(&self, f: &Fixture) {
        let link = f.path("site/result");
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            self.link,
            "result link moved"
        );
        assert_eq!(snapshot(&link), self.tree, "result tree changed");
        assert_eq!(
            std::fs::read_to_string(f.path("site/site.lock")).unwrap(),
            self.lock,
            "lock changed"
        );
        let now = store_state(&f.store());
        for entry in &self.store {
            assert!(now.contains(entry), "store lost or changed {}", entry.0);
        }
        assert_eq!(
            branch_head(&f.store(), "s1"),
            self.branch,
            "site branch moved"
        );
    }
}

/// The commit on the site branch and the materialised generation hold the same files with
/// the same content, modes and links: what is committed is what is served.
pub fn assert_committed_tree_is_materialised(store: &Path, commit: &str, generation: &Path) {
    let out = Std::new("git")
        .arg("--git-dir")
        .arg(store.join("git"))
        .args(["ls-tree", "-r", "-z", commit])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut committed: Vec<(String, String, String)> = out
        .stdout
        .split(|b| *b == 0)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let l = String::from_utf8_lossy(l);
            let (meta, path) = l.split_once('\t').unwrap();
            let mut it = meta.split_whitespace();
            let (mode, _, oid) = (it.next().unwrap(), it.next(), it.next().unwrap());
            (path.to_string(), mode.to_string(), oid.to_string())
        })
        .collect();
    committed.sort();
    let entries: Vec<walkdir::DirEntry> = walkdir::WalkDir::new(generation)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_type().is_dir())
        .collect();
    // Regular files hashed by one git process; symlinks by their text.
    let files: Vec<&walkdir::DirEntry> =
        entries.iter().filter(|e| e.file_type().is_file()).collect();
    let mut oids = git_hash_paths(files.iter().map(|e| e.path())).into_iter();
    let mut laid_out: Vec<(String, String, String)> = entries
        .iter()
        .map(|e| {
            use std::os::unix::fs::PermissionsExt;
            let rel = e
                .path()
                .strip_prefix(generation)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if e.file_type().is_symlink() {
                let text = std::fs::read_link(e.path())
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes();
                (rel, "120000".to_string(), git_blob_id(&text))
            } else {
                let m = std::fs::metadata(e.path()).unwrap().permissions().mode();
                let mode = if m & 0o111 != 0 { "100755" } else { "100644" };
                (rel, mode.to_string(), oids.next().unwrap())
            }
        })
        .collect();
    laid_out.sort();
    assert_eq!(committed, laid_out, "the commit and the generation differ");
}

/// A fixture with a Moodle repo and a first good realise of site `s1`.
pub fn realised() -> (Fixture, GitRepo, Before) {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let site = good_site(&f, &m, &[]);
    f.realise_ok(&site);
    let before = Before::take(&f);
    (f, m, before)
}

/// Site `name` with every kind of upstream a fresh store fetches from: a git core
/// (`moodle/`), a git plugin (`block_x/`, tag v1.0) and a local zip (`z.zip`, local_z).
pub fn git_and_zip_site(f: &Fixture, name: &str) -> PathBuf {
    let m = moodle_repo(f.path("moodle"));
    let p = plugin_repo(
        f.path("block_x"),
        &[("v1.0", plugin_php("block_x", 2024100100, "2024100700", ""))],
    );
    f.write(
        "z.zip",
        zip_bytes(&[(
            "local_z/version.php",
            &plugin_php("local_z", 2024100100, "2024100700", ""),
            0o644,
        )]),
    );
    f.site(
        &Site::new(name)
            .core(m.url(), "4.5")
            .plugin("block_x", Src::git(p.url()))
            .plugin("local_z", Src::zip("../z.zip")),
    )
}

/// The site `s1`; its plugins directory is a local, empty list, so dependencies the site
/// lacks are looked up without any network and found missing.
pub fn good_site(f: &Fixture, m: &GitRepo, plugins: &[(&str, Src)]) -> PathBuf {
    let list = f.write("empty-pluglist.json", "{\"timestamp\": 0, \"plugins\": []}");
    f.site(
        &Site::new("s1")
            .core(m.url(), "4.5")
            .plugins(plugins)
            .directory(list.display().to_string()),
    )
}
