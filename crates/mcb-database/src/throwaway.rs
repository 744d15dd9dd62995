//! What every throwaway server shares: a directory of the system's temporary directory that
//! the run holds, a free port on 127.0.0.1, and the reaping of what a killed run left.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{DbError, db_error};

/// Removes a directory when dropped, unless disarmed.
pub(crate) struct RemoveOnDrop(pub(crate) Option<PathBuf>);

impl RemoveOnDrop {
    pub(crate) fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

/// As root, the user a server runs as (`user`, which the distribution's package creates),
/// given `dir`; else nobody (the server runs as mcb does). `engine` names it in messages.
pub(crate) fn run_as_owner(
    dir: &Path,
    user: &str,
    engine: &str,
) -> Result<Option<mcb_exec::RunAs>, DbError> {
    if !mcb_exec::is_root() {
        return Ok(None);
    }
    let u = mcb_exec::RunAs::user(user).ok_or_else(|| DbError {
        message: format!("mcb runs as root and the system has no `{user}` user to run {engine} as"),
        hint: Some(format!(
            "install {engine} from the distribution (it creates the user), or run mcb as another user"
        )),
    })?;
    give_to(dir, u)?;
    Ok(Some(u))
}

/// Makes `path` owned by `u`.
pub(crate) fn give_to(path: &Path, u: mcb_exec::RunAs) -> Result<(), DbError> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("paths hold no NUL");
    // SAFETY: a valid path; ids from the passwd database.
    if unsafe { libc::chown(c.as_ptr(), u.uid, u.gid) } != 0 {
        return Err(db_error(format!(
            "cannot give {} to its server's user: {}",
            path.display(),
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// A free TCP port on 127.0.0.1 (bound, then let go for the server to take).
pub(crate) fn free_port() -> Result<u16, DbError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| db_error(format!("cannot find a free port: {e}")))?;
    Ok(l.local_addr().map_err(|e| db_error(e.to_string()))?.port())
}

/// Stops and removes the throwaway servers killed runs left: every process working in
/// such a directory (a server and its backends; a backend outlives a killed postmaster for
/// a moment and may still write there), then the directory. Returns how many.
pub fn reap_abandoned_servers() -> usize {
    [
        crate::postgres::CLUSTER_PREFIX,
        crate::mariadb::INSTANCE_PREFIX,
    ]
    .iter()
    .map(|prefix| reap(prefix))
    .sum()
}

fn reap(prefix: &str) -> usize {
    let dirs = mcb_store::abandoned_dirs(&std::env::temp_dir(), prefix);
    for dir in &dirs {
        for pid in processes_working_in(dir) {
            // SAFETY: a signal to a process whose working directory is this abandoned one.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !processes_working_in(dir).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        for _ in 0..5 {
            if std::fs::remove_dir_all(dir).is_ok() || !dir.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    dirs.len()
}

/// The live processes whose working directory is `dir` or inside it.
fn processes_working_in(dir: &Path) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(dir))
        })
        .filter(|pid| {
            // A zombie is gone but for its parent's wait.
            !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
            })
        })
        .collect()
}
