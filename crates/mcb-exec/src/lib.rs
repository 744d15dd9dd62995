//! Running the programs mcb uses where users have them (`git`, `php`, PostgreSQL's and
//! MariaDB's programs, `composer`, `clamscan`): arguments passed apart, never through a
//! shell; output captured, never written to the user's terminal; and a child that dies
//! with mcb (`PR_SET_PDEATHSIG`), so a killed run leaves no installer, server or push
//! writing behind it. A program can be run as another user (PostgreSQL refuses to run as
//! root), the switch made in the child before it starts.
//!
//! It knows how to start, watch and stop programs; what to ask of them is its callers'.

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

/// A program that could not be run, or that failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// It could not be started (not installed, not executable).
    #[error("cannot run {program}")]
    Start {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// It ran and failed: its exit and the last lines it wrote on stderr.
    #[error("{program} failed ({status}){}", if .stderr.is_empty() { String::new() } else { format!(": {}", .stderr) })]
    Failed {
        program: String,
        status: String,
        stderr: String,
    },
}

/// What a program printed and how it ended.
#[derive(Debug, Clone)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// stdout then stderr, as one text (Moodle's CLI writes its failures to either).
    pub fn all_text(&self) -> String {
        let mut t = self.stdout_text();
        t.push_str(&self.stderr_text());
        t
    }
}

/// A user to run a program as: its ids, from the passwd database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

impl RunAs {
    /// The user `name`, if the system has it.
    pub fn user(name: &str) -> Option<RunAs> {
        let c = std::ffi::CString::new(name).ok()?;
        // SAFETY: getpwnam takes a NUL-terminated name; the record is read at once, before
        // any other call could reuse its static buffer.
        let pw = unsafe { libc::getpwnam(c.as_ptr()) };
        if pw.is_null() {
            return None;
        }
        // SAFETY: non-null, as checked.
        let pw = unsafe { &*pw };
        Some(RunAs {
            uid: pw.pw_uid,
            gid: pw.pw_gid,
        })
    }
}

/// Is mcb running as root?
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A program to run: a [`Command`] whose child dies with mcb.
pub struct Program {
    name: String,
    cmd: Command,
    run_as: Option<RunAs>,
    prepared: bool,
}

impl Program {
    /// `program` (a name looked up on the PATH, or a path).
    pub fn new(program: impl AsRef<OsStr>) -> Program {
        let name = Path::new(program.as_ref())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| program.as_ref().to_string_lossy().into_owned());
        let mut cmd = Command::new(program);
        cmd.stdin(Stdio::null());
        Program {
            name,
            cmd,
            run_as: None,
            prepared: false,
        }
    }

    /// Runs the program as `user` (mcb must be root to switch).
    pub fn run_as(&mut self, user: RunAs) -> &mut Program {
        self.run_as = Some(user);
        self
    }

    /// The switch of user (when asked) and the parent-death signal, in the child before it
    /// starts. The signal is set after the switch: changing credentials clears it.
    fn prepare(&mut self) {
        if self.prepared {
            return;
        }
        self.prepared = true;
        let run_as = self.run_as;
        // SAFETY: only async-signal-safe calls (setgroups, setgid, setuid, prctl, getppid,
        // _exit) between fork and exec.
        unsafe {
            self.cmd.pre_exec(move || {
                if let Some(u) = run_as
                    && (libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setgid(u.gid) != 0
                        || libc::setuid(u.uid) != 0)
                {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died between fork and prctl.
                if libc::getppid() == 1 {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
    }

    pub fn arg(&mut self, a: impl AsRef<OsStr>) -> &mut Program {
        self.cmd.arg(a);
        self
    }

    pub fn args<I, S>(&mut self, args: I) -> &mut Program
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn env(&mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> &mut Program {
        self.cmd.env(k, v);
        self
    }

    pub fn env_remove(&mut self, k: impl AsRef<OsStr>) -> &mut Program {
        self.cmd.env_remove(k);
        self
    }

    pub fn current_dir(&mut self, d: impl AsRef<Path>) -> &mut Program {
        self.cmd.current_dir(d);
        self
    }

    /// The program's name, as messages say it.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn start_error(&self, e: std::io::Error) -> ExecError {
        ExecError::Start {
            program: self.name.clone(),
            source: e,
        }
    }

    /// Runs it to the end, its output captured.
    pub fn output(&mut self) -> Result<Output, ExecError> {
        self.prepare();
        self.cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let out = self.cmd.output().map_err(|e| self.start_error(e))?;
        Ok(Output {
            status: out.status,
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    /// Runs it to the end with `input` on its stdin, its output captured.
    pub fn output_with_input(&mut self, input: &[u8]) -> Result<Output, ExecError> {
        self.prepare();
        self.cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.cmd.spawn().map_err(|e| self.start_error(e))?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let input = input.to_vec();
        // Written from a thread of its own: a child that fills its stdout before reading
        // all its input would otherwise wait on mcb forever.
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().map_err(|e| self.start_error(e))?;
        let _ = writer.join();
        Ok(Output {
            status: out.status,
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    /// Runs it to the end; `Ok` only when it succeeds, else its stderr in the error.
    pub fn run(&mut self) -> Result<Output, ExecError> {
        let out = self.output()?;
        if !out.success() {
            return Err(self.failed(&out));
        }
        Ok(out)
    }

    /// The error for a run that ended badly.
    pub fn failed(&self, out: &Output) -> ExecError {
        ExecError::Failed {
            program: self.name.clone(),
            status: describe(out.status),
            stderr: last_lines(&out.stderr_text(), 10),
        }
    }

    /// Starts it in the background (a server), its stdout and stderr going to `log`.
    pub fn spawn_logged(&mut self, log: &Path) -> Result<Child, ExecError> {
        self.prepare();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| self.start_error(e))?;
        let err = file.try_clone().map_err(|e| self.start_error(e))?;
        self.cmd.stdout(file).stderr(err);
        self.cmd.spawn().map_err(|e| self.start_error(e))
    }
}

/// How a program ended, in words.
pub fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "ended".into(),
    }
}

/// The last `n` non-empty lines of `text`, joined by "; ".
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join("; ")
}

/// Where `name` is on the PATH.
pub fn find_program(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_captured_and_a_failure_quotes_stderr() {
        let out = Program::new("sh")
            .args(["-c", "echo out; echo err >&2"])
            .run()
            .unwrap();
        assert_eq!(out.stdout_text(), "out\n");
        assert_eq!(out.stderr_text(), "err\n");
        let e = Program::new("sh")
            .args(["-c", "echo first >&2; echo why >&2; exit 3"])
            .run()
            .unwrap_err();
        assert_eq!(e.to_string(), "sh failed (exit 3): first; why");
        let e = Program::new("/nonexistent/prog").run().unwrap_err();
        assert!(matches!(e, ExecError::Start { .. }), "{e}");
    }

    #[test]
    fn input_reaches_the_child() {
        let out = Program::new("cat").output_with_input(b"hello").unwrap();
        assert_eq!(out.stdout, b"hello");
    }

    /// A child started by a process that is killed dies with it.
    #[test]
    fn a_child_dies_with_its_parent() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        // A parent (this test binary's own helper: sh) that starts a long sleep through
        // Program and is then killed: the sleep must go with it. The helper is a second
        // copy of this test run as a subprocess.
        let me = std::env::current_exe().unwrap();
        let mut parent = std::process::Command::new(me)
            .args([
                "--exact",
                "tests::helper_starts_a_sleep",
                "--nocapture",
                "--ignored",
            ])
            .env("MCB_EXEC_PID_FILE", &pid_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut pid = None;
        for _ in 0..200 {
            if let Some(p) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|t| t.trim().parse::<i32>().ok())
            {
                pid = Some(p);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        let pid = pid.expect("the helper started its child");
        parent.kill().unwrap();
        parent.wait().unwrap();
        let mut gone = false;
        for _ in 0..200 {
            // SAFETY: kill with signal 0 only checks the process exists.
            let alive = unsafe { libc::kill(pid, 0) } == 0
                && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z "));
            if !alive {
                gone = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        assert!(gone, "the child outlived its parent");
    }

    #[test]
    #[ignore = "run by a_child_dies_with_its_parent as its parent process"]
    fn helper_starts_a_sleep() {
        let Some(pid_file) = std::env::var_os("MCB_EXEC_PID_FILE") else {
            return;
        };
        let log = Path::new(&pid_file).with_extension("log");
        let mut child = Program::new("sleep").arg("60").spawn_logged(&log).unwrap();
        std::fs::write(&pid_file, child.id().to_string()).unwrap();
        let _ = child.wait();
    }
}
