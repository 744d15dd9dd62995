//! Fixtures for mcb's tests and benchmarks: real git repositories built with `git`,
//! Moodle cores and plugins, zips, site files, a loopback HTTP server and a plugins
//! directory on it, the filters that make a snapshot of what mcb prints independent of
//! paths, ids and ports, the property tests' time budget, and the benchmarks' generators
//! and measures. Nothing here reaches the network.

pub mod bench;
pub mod directory;
pub mod http;
pub mod measure;
pub mod site;
pub mod snapshot;

pub use site::{Site, Src};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command as Std;
use std::time::Duration;

/// A test's own directory, removed when the test ends.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Default for Fixture {
    fn default() -> Fixture {
        Fixture::new()
    }
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
}

/// How long a property test runs each of its targets: `MCB_FUZZ_SECS` seconds (default 4).
pub fn fuzz_budget() -> Duration {
    let secs: u64 = std::env::var("MCB_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    Duration::from_secs(secs)
}

/// A run's exit code (-1 when a signal ended it).
pub fn code(out: &std::process::Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// A run's stdout and stderr, as text.
pub fn text(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// All a run said, stdout then stderr.
pub fn said(out: &std::process::Output) -> String {
    let (stdout, stderr) = text(out);
    stdout + &stderr
}

/// The JSON document a run printed on stdout (a failure to parse shows what it said).
pub fn json_of(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", said(out)))
}

/// A path as a command-line argument.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
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
