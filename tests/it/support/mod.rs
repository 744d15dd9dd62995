//! Fixtures for the integration tests: real git repositories built with `git`, real zip
//! files, site files, and the `mcb` binary run against them. Nothing reaches the network.

pub mod directory;
pub mod http;
pub mod site;

pub use site::{Site, Src};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command as Std;

pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn store(&self) -> PathBuf {
        self.path("store")
    }

    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        p
    }

    /// Writes `site/site.ron` and returns its path.
    pub fn site(&self, site: &Site) -> PathBuf {
        site.write(self, "site/site.ron")
    }

    /// `mcb --store <fixture store>` with a clean environment.
    pub fn mcb(&self) -> Mcb {
        self.mcb_with_store(&self.store())
    }

    pub fn mcb_with_store(&self, store: &Path) -> Mcb {
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

    /// Runs `mcb realise --json SITE`, asserts success and returns the JSON.
    pub fn realise_ok(&self, site: &Path) -> serde_json::Value {
        self.realise_ok_with(site, &[])
    }

    /// `realise_ok` with more arguments (`--allow-downgrade`).
    pub fn realise_ok_with(&self, site: &Path, args: &[&str]) -> serde_json::Value {
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

    /// Runs `mcb realise SITE`, asserts it fails with `code`, returns stderr.
    pub fn realise_err(&self, site: &Path, code: i32) -> String {
        self.realise_err_with(site, &[], code)
    }

    /// `realise_err` with more arguments.
    pub fn realise_err_with(&self, site: &Path, args: &[&str], code: i32) -> String {
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

/// A git repository built with the `git` command, with fixed dates so ids are stable.
pub struct GitRepo {
    pub path: PathBuf,
}

impl GitRepo {
    pub fn init(path: PathBuf) -> GitRepo {
        std::fs::create_dir_all(&path).unwrap();
        let r = GitRepo { path };
        r.git(&["init", "-q", "-b", "main"]);
        r.git(&["config", "user.email", "dev@example.org"]);
        r.git(&["config", "user.name", "Dev"]);
        r.git(&["config", "commit.gpgsign", "false"]);
        r
    }

    pub fn git(&self, args: &[&str]) -> String {
        let out = Std::new("git")
            .args(args)
            .current_dir(&self.path)
            .env("GIT_AUTHOR_DATE", "2024-10-07T12:00:00Z")
            .env("GIT_COMMITTER_DATE", "2024-10-07T12:00:00Z")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.path.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    pub fn commit(&self, msg: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", msg]);
        self.git(&["rev-parse", "HEAD"])
    }

    /// Commits a tree built from raw entries `(mode, path bytes, content)` with git's
    /// plumbing, so that names `git add` refuses (`.git`, invalid UTF-8) can be made, as a
    /// hostile upstream would. Returns the commit id; the branch is not moved.
    pub fn commit_raw(&self, entries: &[(&str, &[u8], &[u8])], msg: &str) -> String {
        let tree = self.raw_tree(entries);
        self.git(&["commit-tree", &tree, "-m", msg])
    }

    /// Writes a tree object byte for byte, `(mode, name, object id)` per entry, bypassing
    /// every check git makes (a name holding `/`, say).
    pub fn tree_literally(&self, entries: &[(&str, &[u8], &str)]) -> String {
        let mut bytes = Vec::new();
        for (mode, name, oid) in entries {
            bytes.extend_from_slice(mode.as_bytes());
            bytes.push(b' ');
            bytes.extend_from_slice(name);
            bytes.push(0);
            bytes.extend_from_slice(&hex::decode(oid).unwrap());
        }
        self.run_stdin(
            &["hash-object", "-t", "tree", "-w", "--literally", "--stdin"],
            &bytes,
        )
    }

    /// Writes a blob and returns its id.
    pub fn blob(&self, content: &[u8]) -> String {
        self.run_stdin(&["hash-object", "-w", "--stdin"], content)
    }

    fn run_stdin(&self, args: &[&str], input: &[u8]) -> String {
        use std::io::Write as _;
        let mut child = Std::new("git")
            .args(args)
            .current_dir(&self.path)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "git {args:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn raw_tree(&self, entries: &[(&str, &[u8], &[u8])]) -> String {
        let mut here: Vec<(String, Vec<u8>, String)> = Vec::new();
        type Children<'a> = Vec<(&'a str, Vec<u8>, &'a [u8])>;
        let mut subdirs: std::collections::BTreeMap<Vec<u8>, Children> = Default::default();
        for (mode, path, content) in entries {
            match path.iter().position(|b| *b == b'/') {
                Some(i) => subdirs.entry(path[..i].to_vec()).or_default().push((
                    mode,
                    path[i + 1..].to_vec(),
                    content,
                )),
                None => {
                    let blob = self.run_stdin(&["hash-object", "-w", "--stdin"], content);
                    let kind = if *mode == "160000" { "commit" } else { "blob" };
                    let oid = if *mode == "160000" {
                        String::from_utf8_lossy(content).into_owned()
                    } else {
                        blob
                    };
                    here.push((format!("{mode} {kind} {oid}"), path.to_vec(), String::new()));
                }
            }
        }
        for (name, children) in subdirs {
            let owned: Vec<(&str, &[u8], &[u8])> = children
                .iter()
                .map(|(m, p, c)| (*m, p.as_slice(), *c))
                .collect();
            let tree = self.raw_tree(&owned);
            here.push((format!("040000 tree {tree}"), name, String::new()));
        }
        let mut input = Vec::new();
        for (meta, name, _) in &here {
            input.extend_from_slice(meta.as_bytes());
            input.push(b'\t');
            input.extend_from_slice(name);
            input.push(0);
        }
        self.run_stdin(&["mktree", "-z", "--missing"], &input)
    }

    pub fn tag(&self, name: &str) {
        self.git(&["tag", "-a", name, "-m", name]);
    }

    pub fn url(&self) -> String {
        format!("file://{}", self.path.display())
    }
}

pub const COMPONENTS_JSON: &str = r#"{
    "plugintypes": {
        "mod": "mod", "block": "blocks", "local": "local", "tool": "admin\/tool",
        "format": "course\/format", "theme": "theme", "filter": "filter", "report": "report"
    },
    "subsystems": {"course": "course"}
}"#;

pub const PLUGINS_JSON: &str =
    r#"{"standard": {"block": ["html"], "mod": ["quiz"], "quizaccess": ["seb"]}}"#;

pub fn core_version_php(build: &str, release: &str, branch: &str) -> String {
    format!(
        "<?php\ndefined('MOODLE_INTERNAL') || die();\n$version  = {build};\n$release  = '{release}';\n$branch   = '{branch}';\n$maturity = MATURITY_STABLE;\n"
    )
}

/// Writes the files of a synthetic Moodle core into `repo` under `prefix` ('' or 'public/').
pub fn write_core(repo: &GitRepo, prefix: &str, build: &str, release: &str, branch: &str) {
    repo.write(
        &format!("{prefix}version.php"),
        &core_version_php(build, release, branch),
    );
    repo.write(&format!("{prefix}lib/components.json"), COMPONENTS_JSON);
    repo.write(&format!("{prefix}lib/plugins.json"), PLUGINS_JSON);
    repo.write(
        &format!("{prefix}index.php"),
        &format!("<?php // Moodle {release}\n"),
    );
    repo.write(
        &format!("{prefix}mod/quiz/version.php"),
        &format!(
            "<?php\n$plugin->component = 'mod_quiz';\n$plugin->version = {};\n",
            build.split('.').next().unwrap()
        ),
    );
    repo.write(
        &format!("{prefix}mod/quiz/db/subplugins.json"),
        r#"{"plugintypes": {"quizaccess": "mod\/quiz\/accessrule"}, "subplugintypes": {"quizaccess": "accessrule"}}"#,
    );
    repo.write(
        &format!("{prefix}blocks/html/version.php"),
        "<?php\n$plugin->component = 'block_html';\n$plugin->version = 2024100700;\n",
    );
}

/// A Moodle repository: tags v4.4.0, v4.5.0, v4.5.1, v4.5.10, branch MOODLE_405_STABLE
/// (4.5.10+), and main (5.0dev).
pub fn moodle_repo(path: PathBuf) -> GitRepo {
    let r = GitRepo::init(path);
    for (tag, build, release, branch) in [
        ("v4.4.0", "2024042200.00", "4.4 (Build: 20240422)", "404"),
        ("v4.5.0", "2024100700.00", "4.5 (Build: 20241007)", "405"),
        ("v4.5.1", "2024100701.00", "4.5.1 (Build: 20241209)", "405"),
        (
            "v4.5.10",
            "2024100710.00",
            "4.5.10 (Build: 20251006)",
            "405",
        ),
    ] {
        write_core(&r, "", build, release, branch);
        r.commit(&format!("Moodle {release}"));
        r.tag(tag);
    }
    r.git(&["checkout", "-q", "-b", "MOODLE_405_STABLE"]);
    write_core(&r, "", "2024100710.03", "4.5.10+ (Build: 20251020)", "405");
    r.commit("weekly 4.5.10+");
    r.git(&["checkout", "-q", "main"]);
    write_core(&r, "", "2025041400.00", "5.0dev (Build: 20250414)", "500");
    r.commit("5.0dev");
    r
}

/// A Moodle 5.1 repository as Moodle lays it out: the web root under public/, and
/// lib/components.json and lib/plugins.json at the codebase root, their paths relative to
/// it (`public/mod`).
pub fn moodle51_repo(path: PathBuf) -> GitRepo {
    let r = GitRepo::init(path);
    write_core(
        &r,
        "public/",
        "2025100600.00",
        "5.1 (Build: 20251006)",
        "501",
    );
    std::fs::remove_file(r.path.join("public/lib/components.json")).unwrap();
    std::fs::remove_file(r.path.join("public/lib/plugins.json")).unwrap();
    let mut components: serde_json::Value = serde_json::from_str(COMPONENTS_JSON).unwrap();
    for dir in components["plugintypes"]
        .as_object_mut()
        .unwrap()
        .values_mut()
    {
        *dir = format!("public/{}", dir.as_str().unwrap()).into();
    }
    r.write("lib/components.json", &components.to_string());
    r.write("lib/plugins.json", PLUGINS_JSON);
    r.write("composer.json", "{}\n");
    r.commit("Moodle 5.1");
    r.tag("v5.1.0");
    r
}

/// A plugin's version.php. `extra` is appended verbatim (supported, incompatible, ...).
pub fn plugin_php(component: &str, version: u64, requires: &str, extra: &str) -> String {
    format!(
        "<?php\ndefined('MOODLE_INTERNAL') || die();\n$plugin->component = '{component}';\n$plugin->version = {version};\n$plugin->requires = {requires};\n$plugin->release = 'r{version}';\n$plugin->maturity = MATURITY_STABLE;\n{extra}\n"
    )
}

/// A plugin repository with one commit and tag per `(tag, version.php)`; main stays at the
/// last one unless `head` adds another commit.
pub fn plugin_repo(path: PathBuf, tags: &[(&str, String)]) -> GitRepo {
    let r = GitRepo::init(path);
    for (tag, php) in tags {
        r.write("version.php", php);
        r.write("lib.php", &format!("<?php // {tag}\n"));
        r.commit(tag);
        r.tag(tag);
    }
    r
}

/// A zip of `(path, content, unix mode)`; mode 0o120777 makes a symlink to `content`.
pub fn zip_bytes(entries: &[(&str, &str, u32)]) -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let dt = zip::DateTime::from_date_and_time(2024, 9, 1, 8, 0, 0).unwrap();
    for (name, content, mode) in entries {
        let o = SimpleFileOptions::default()
            .unix_permissions(*mode)
            .last_modified_time(dt);
        if *mode == 0o120777 {
            w.add_symlink(*name, *content, o).unwrap();
        } else {
            w.start_file(*name, o).unwrap();
            w.write_all(content.as_bytes()).unwrap();
        }
    }
    w.finish().unwrap().into_inner()
}

/// The `hash:` a site file pins `bytes` with.
pub fn blake3_pin(bytes: &[u8]) -> String {
    format!("blake3:{}", blake3::hash(bytes).to_hex())
}

/// Every file under `dir` (a `result` link is followed) with the hash of its content, for
/// comparing trees and detecting change.
pub fn snapshot(dir: &Path) -> Vec<(String, String)> {
    let dir = &std::fs::canonicalize(dir).unwrap();
    let mut out: Vec<(String, String)> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_type().is_dir())
        .map(|e| {
            let rel = e
                .path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let content = if e.file_type().is_symlink() {
                std::fs::read_link(e.path())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
                    .into_bytes()
            } else {
                std::fs::read(e.path()).unwrap()
            };
            (rel, blake3::hash(&content).to_hex().to_string())
        })
        .collect();
    out.sort();
    out
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

/// The git blob ids of the files at `paths`, from one `git hash-object` process.
pub fn git_hash_paths<'a>(paths: impl Iterator<Item = &'a Path>) -> Vec<String> {
    use std::io::Write as _;
    let mut input = Vec::new();
    for p in paths {
        input.extend_from_slice(p.as_os_str().as_encoded_bytes());
        input.push(b'\n');
    }
    if input.is_empty() {
        return Vec::new();
    }
    let mut child = Std::new("git")
        .args(["hash-object", "--no-filters", "--stdin-paths"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The git blob id of `bytes`.
pub fn git_blob_id(bytes: &[u8]) -> String {
    use std::io::Write as _;
    let mut child = Std::new("git")
        .args(["hash-object", "--stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
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
