//! A command's own wall time and peak memory, for the benchmarks and for the tests that
//! hold mcb to a memory bound.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How a measured run ended.
pub struct Measured {
    /// The exit code (`None` when a signal ended it).
    pub code: Option<i32>,
    pub stderr: String,
    pub wall: Duration,
    /// The command's own peak resident memory, in KiB.
    pub max_rss_kb: i64,
}

/// Runs `cmd` (stdout discarded, stderr kept) and measures it.
// The child is reaped by wait4, which also gives its resource usage.
#[allow(clippy::zombie_processes)]
pub fn run_measured(cmd: &mut Command) -> Measured {
    // The kernel's peak of a process spawned from this one starts from this process's own
    // (the child shares its memory until exec), and `RUSAGE_CHILDREN` adds every other
    // child a test process has: `/usr/bin/time`, small, forks the command and reports the
    // command's own peak.
    let rss_file = tempfile::NamedTempFile::new().unwrap();
    let mut timed = Command::new("/usr/bin/time");
    let wrapped = Path::new("/usr/bin/time").exists();
    let cmd = if wrapped {
        timed
            .args(["-f", "%M", "-o"])
            .arg(rss_file.path())
            .arg(cmd.get_program())
            .args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => timed.env(k, v),
                None => timed.env_remove(k),
            };
        }
        if let Some(d) = cmd.get_current_dir() {
            timed.current_dir(d);
        }
        &mut timed
    } else {
        cmd
    };
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stderr = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid out-parameter for wait4.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own unwaited child; both out-pointers are valid.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    assert_eq!(rc, pid, "wait4");
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    let max_rss_kb = if wrapped {
        std::fs::read_to_string(rss_file.path())
            .ok()
            .and_then(|t| t.lines().last()?.trim().parse().ok())
            .unwrap_or(usage.ru_maxrss)
    } else {
        usage.ru_maxrss
    };
    Measured {
        code,
        stderr: reader.join().unwrap_or_default(),
        wall,
        max_rss_kb,
    }
}
