//! What both benchmarks use: deterministic PHP-like content, git repositories streamed
//! through `git fast-import`, and measuring a command's wall time and peak memory.

use std::collections::HashSet;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// `MCB_BENCH_SCALE=smoke`: every fixture tiny and every measure run once, so that the
/// documented benchmark commands can be run end to end in CI; the numbers then mean
/// nothing, and the results go to the fixture's directory, not beside the benchmarks.
pub fn smoke() -> bool {
    std::env::var("MCB_BENCH_SCALE").is_ok_and(|s| s == "smoke")
}

/// `full` for a measurement, `small` at smoke scale.
pub fn scaled(full: usize, small: usize) -> usize {
    if smoke() { small } else { full }
}

pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

pub const WORDS: &[&str] = &[
    "function",
    "return",
    "$this->",
    "array(",
    "global",
    "$DB",
    "$CFG",
    "require_once",
    "if",
    "else",
    "foreach",
    "as",
    "=>",
    "get_string",
    "context_system::instance()",
    "new",
    "moodle_url",
    "echo",
    "html_writer::tag",
    "public",
    "static",
    "private",
    "protected",
    "class",
    "extends",
    "null",
    "true",
    "false",
    "throw",
    "coding_exception",
    "$record",
    "$course",
    "$user",
    "optional_param",
    "PARAM_INT",
];

/// PHP-like text of `size` bytes: compresses like source code does, never identical.
pub fn php_text(rng: &mut Rng, size: usize, salt: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 64);
    out.extend_from_slice(format!("<?php\n// file {salt}\n").as_bytes());
    while out.len() < size {
        let words = 4 + rng.below(10);
        out.extend_from_slice(b"    ");
        for _ in 0..words {
            out.extend_from_slice(WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(format!("${:x};\n", rng.next_u64() & 0xffff).as_bytes());
    }
    out.truncate(size);
    out
}

/// A realistic size spread: most files small, a few large.
pub fn file_size(rng: &mut Rng) -> usize {
    match rng.below(100) {
        0..=59 => 1_000 + rng.below(5_000) as usize,
        60..=89 => 6_000 + rng.below(20_000) as usize,
        90..=98 => 26_000 + rng.below(60_000) as usize,
        _ => 100_000 + rng.below(400_000) as usize,
    }
}

pub fn run(cmd: &mut Command) {
    let out = cmd.output().expect("command runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn git(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.current_dir(dir)
        .env("GIT_AUTHOR_DATE", "2024-10-07T12:00:00Z")
        .env("GIT_COMMITTER_DATE", "2024-10-07T12:00:00Z")
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@localhost")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@localhost");
    c
}

/// The files of one commit: path, content, executable.
pub type Files = Vec<(String, Vec<u8>, bool)>;

/// Streams a repository into `git fast-import`: `commits` is a list of (tag, files), each
/// commit changing only the files it lists.
pub fn fast_import(repo: &Path, commits: Vec<(String, Files)>) {
    run(git(repo).args(["init", "-q", "--bare"]));
    let mut child = git(repo)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut w = std::io::BufWriter::with_capacity(1 << 20, child.stdin.take().unwrap());
    let mut mark = 0u64;
    let mut prev: Option<u64> = None;
    for (i, (tag, files)) in commits.into_iter().enumerate() {
        let mut marks = Vec::with_capacity(files.len());
        for (path, content, exec) in files {
            mark += 1;
            write!(w, "blob\nmark :{mark}\ndata {}\n", content.len()).unwrap();
            w.write_all(&content).unwrap();
            w.write_all(b"\n").unwrap();
            marks.push((path, mark, exec));
        }
        mark += 1;
        let t = 1_728_302_400 + i as i64 * 86_400;
        let msg = format!("release {tag}");
        write!(
            w,
            "commit refs/heads/main\nmark :{mark}\nauthor bench <bench@localhost> {t} +0000\ncommitter bench <bench@localhost> {t} +0000\ndata {}\n{msg}\n",
            msg.len()
        )
        .unwrap();
        if let Some(p) = prev {
            writeln!(w, "from :{p}").unwrap();
        }
        for (path, m, exec) in marks {
            writeln!(
                w,
                "M {} :{m} {path}",
                if exec { "100755" } else { "100644" }
            )
            .unwrap();
        }
        writeln!(w, "\nreset refs/tags/{tag}\nfrom :{mark}\n").unwrap();
        prev = Some(mark);
    }
    drop(w);
    assert!(child.wait().unwrap().success());
    run(git(repo).args(["symbolic-ref", "HEAD", "refs/heads/main"]));
}

pub struct Sample {
    pub wall: Duration,
    pub max_rss_kb: i64,
}

/// Runs a command to completion after a `sync`, returning its wall time and peak resident
/// memory; a failure ends the benchmark.
pub fn measure(cmd: &mut Command) -> Sample {
    // Each command starts with nothing dirty to write back: one that syncs (a realise
    // does) must not pay for the writes of the step before it.
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    let m = crate::measure::run_measured(cmd);
    if m.code != Some(0) {
        panic!("{cmd:?} failed: {}", m.stderr);
    }
    Sample {
        wall: m.wall,
        max_rss_kb: m.max_rss_kb,
    }
}

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The filesystem `dir` is on, by name: what a tree's directories cost depends on it
/// (ext4 gives each a block; XFS and btrfs keep a small one in its inode).
pub fn filesystem(dir: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return "unknown".into();
    };
    // SAFETY: `c` is a valid C string; `st` is written by statfs before it is read.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return "unknown".into();
    }
    match st.f_type as u64 {
        0xEF53 => "ext4".into(),
        0x5846_5342 => "XFS".into(),
        0x9123_683E => "btrfs".into(),
        0x0102_1994 => "tmpfs".into(),
        0x2FC1_2FC1 => "ZFS".into(),
        0x794C_7630 => "overlayfs".into(),
        other => format!("filesystem 0x{other:x}"),
    }
}

/// Disk usage of a tree, each inode counted once (as `du` does).
pub fn disk_usage(dir: &Path) -> u64 {
    let mut seen = HashSet::new();
    let mut total = 0;
    for e in walkdir::WalkDir::new(dir).into_iter().flatten() {
        if let Ok(m) = std::fs::symlink_metadata(e.path())
            && seen.insert((m.dev(), m.ino()))
        {
            total += m.blocks() * 512;
        }
    }
    total
}

/// The bytes of the files under `dir` (their lengths, not their blocks).
pub fn apparent_size(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// Removes a tree whose directories may be read-only. Only directories are made writable:
/// files may be hardlinks of a store's objects, whose modes must not change.
pub fn remove(path: &Path) {
    if path.exists() {
        run(Command::new("find")
            .arg(path)
            .args(["-type", "d", "-exec", "chmod", "u+w", "{}", "+"]));
        std::fs::remove_dir_all(path).unwrap();
    }
}

pub fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// A plugin's repository at `repo`, tagged `v1.0` and `v1.1` (`version_php` gives each
/// tag's `version.php` from its build number), each with `files` PHP files of up to
/// `max_size` bytes.
pub fn plugin_repo(
    repo: &Path,
    files: usize,
    max_size: u64,
    salt: usize,
    version_php: &dyn Fn(u64) -> Vec<u8>,
    rng: &mut Rng,
) {
    std::fs::create_dir_all(repo).unwrap();
    let mut commits = Vec::new();
    for (t, version) in [("v1.0", 2024100100u64), ("v1.1", 2024110100)] {
        let mut tree = vec![("version.php".to_string(), version_php(version), false)];
        for f in 0..files {
            let size = 500 + rng.below(max_size) as usize;
            tree.push((
                format!("classes/sub{}/c{f}.php", f % 5),
                php_text(rng, size, salt + f),
                false,
            ));
        }
        commits.push((t.to_string(), tree));
    }
    fast_import(repo, commits);
}

pub const COMPONENTS_JSON: &str = r#"{"plugintypes": {"mod": "mod", "block": "blocks", "local": "local", "tool": "admin\/tool", "theme": "theme"}, "subsystems": {}}"#;

/// What a Moodle-shaped core holds beside its code: `version.php`, the plugin types and
/// the standard plugins.
pub fn core_metadata(version_php: Vec<u8>) -> Files {
    vec![
        ("version.php".into(), version_php, false),
        (
            "lib/components.json".into(),
            COMPONENTS_JSON.as_bytes().to_vec(),
            false,
        ),
        (
            "lib/plugins.json".into(),
            br#"{"standard": {"mod": ["quiz"]}}"#.to_vec(),
            false,
        ),
    ]
}
