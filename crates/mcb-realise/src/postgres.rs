//! PostgreSQL for `mcb test`: a throwaway cluster (`initdb` in a temporary directory,
//! 127.0.0.1 on a free port, started and stopped here) or a server the user names, and the
//! few things a test does with it — create a database, dump and restore one. Every command
//! is run with its arguments passed apart, never through a shell.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Why PostgreSQL could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct PgError {
    pub message: String,
    pub hint: Option<String>,
}

fn pg_error(message: impl Into<String>) -> PgError {
    PgError {
        message: message.into(),
        hint: None,
    }
}

/// Where PostgreSQL's server programs are: on the PATH, or Debian's versioned directory.
fn server_bin(name: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
    {
        return Some(p);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin").join(name))
        .filter(|p| p.is_file())
        .collect();
    versions.sort();
    versions.pop()
}

fn run(cmd: &mut Command, what: &str) -> Result<Output, PgError> {
    let out = cmd
        .output()
        .map_err(|e| pg_error(format!("cannot run {what}: {e}")))?;
    if !out.status.success() {
        return Err(pg_error(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A database server and how to reach it.
pub struct Server {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    /// The cluster this run started, stopped when dropped.
    cluster: Option<Cluster>,
    pub version: String,
}

struct Cluster {
    dir: PathBuf,
    pg_ctl: PathBuf,
    as_postgres: bool,
    keep: bool,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let mut c = self.command(&self.pg_ctl);
        c.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"]);
        let _ = c.output();
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Cluster {
    /// A command run as the `postgres` user when mcb runs as root (PostgreSQL refuses to).
    fn command(&self, program: &Path) -> Command {
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound, then let go for the server to take).
fn free_port() -> Result<u16, PgError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| pg_error(format!("cannot find a free port: {e}")))?;
    Ok(l.local_addr().map_err(|e| pg_error(e.to_string()))?.port())
}

/// The programs a throwaway cluster needs, or what to install.
pub fn check_programs(own_cluster: bool) -> Result<(), PgError> {
    let mut missing: Vec<&str> = ["psql", "pg_dump", "pg_restore"]
        .into_iter()
        .filter(|p| server_bin(p).is_none())
        .collect();
    if own_cluster {
        missing.extend(
            ["initdb", "pg_ctl"]
                .into_iter()
                .filter(|p| server_bin(p).is_none()),
        );
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(PgError {
        message: format!("PostgreSQL's {} cannot be found", missing.join(", ")),
        hint: Some(if own_cluster {
            "install PostgreSQL (Debian: apt-get install postgresql), or name a server with --db postgresql://USER:PASS@HOST:PORT".into()
        } else {
            "install PostgreSQL's client programs (Debian: apt-get install postgresql-client)"
                .into()
        }),
    })
}

impl Server {
    /// Starts a cluster in a new directory under `parent`: trust authentication, 127.0.0.1
    /// only, no fsync (it is thrown away).
    pub fn start(parent: &Path, keep: bool) -> Result<Server, PgError> {
        check_programs(true)?;
        let initdb = server_bin("initdb").expect("checked");
        let pg_ctl = server_bin("pg_ctl").expect("checked");
        let dir = tempfile::Builder::new()
            .prefix("mcb-test-pg-")
            .tempdir_in(parent)
            .map_err(|e| pg_error(format!("cannot make a directory for PostgreSQL: {e}")))?
            .keep();
        let as_postgres = is_root();
        if as_postgres {
            run(
                Command::new("chown").arg("postgres").arg(&dir),
                "chown postgres",
            )?;
        }
        let cluster = Cluster {
            dir: dir.clone(),
            pg_ctl: pg_ctl.clone(),
            as_postgres,
            keep,
        };
        let data = dir.join("data");
        run(
            cluster.command(&initdb).arg("-D").arg(&data).args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]),
            "initdb",
        )?;
        let port = free_port()?;
        run(
            cluster
                .command(&pg_ctl)
                .arg("-D")
                .arg(&data)
                .arg("-o")
                .arg(format!(
                    "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
                    dir.display()
                ))
                .arg("-l")
                .arg(dir.join("server.log"))
                .args(["-w", "start"]),
            "pg_ctl start",
        )?;
        let mut s = Server {
            host: "127.0.0.1".into(),
            port,
            user: "postgres".into(),
            password: String::new(),
            cluster: Some(cluster),
            version: String::new(),
        };
        s.version = s.query("postgres", "SHOW server_version")?;
        Ok(s)
    }

    /// A server the user runs, named as `postgresql://USER[:PASS]@HOST[:PORT]`.
    pub fn connect(url: &str) -> Result<Server, PgError> {
        check_programs(false)?;
        let bad = || PgError {
            message: format!("--db {url}: not a postgresql://USER[:PASS]@HOST[:PORT] URL"),
            hint: None,
        };
        let u = reqwest::Url::parse(url).map_err(|_| bad())?;
        if !matches!(u.scheme(), "postgresql" | "postgres") || u.username().is_empty() {
            return Err(bad());
        }
        let mut s = Server {
            host: u.host_str().ok_or_else(bad)?.to_string(),
            port: u.port().unwrap_or(5432),
            user: u.username().to_string(),
            password: u.password().unwrap_or("").to_string(),
            cluster: None,
            version: String::new(),
        };
        s.version = s.query("postgres", "SHOW server_version")?;
        Ok(s)
    }

    /// Where the throwaway cluster lives, when this run started one.
    pub fn cluster_dir(&self) -> Option<&Path> {
        self.cluster.as_ref().map(|c| c.dir.as_path())
    }

    fn client(&self, program: &str) -> Command {
        let mut c = Command::new(server_bin(program).unwrap_or_else(|| program.into()));
        c.arg("-h")
            .arg(&self.host)
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-U")
            .arg(&self.user)
            .env("PGPASSWORD", &self.password)
            .env("PGCONNECT_TIMEOUT", "10");
        c
    }

    /// One value from `sql` in database `db`.
    pub fn query(&self, db: &str, sql: &str) -> Result<String, PgError> {
        let out = run(
            self.client("psql").args([
                "-X",
                "-q",
                "-t",
                "-A",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                db,
                "-c",
                sql,
            ]),
            "psql",
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// A new empty database `name` (dropped first if it exists).
    pub fn fresh_database(&self, name: &str) -> Result<(), PgError> {
        self.query("postgres", &format!("DROP DATABASE IF EXISTS \"{name}\""))?;
        self.query(
            "postgres",
            &format!("CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"),
        )?;
        Ok(())
    }

    /// Drops database `name`.
    pub fn drop_database(&self, name: &str) {
        let _ = self.query("postgres", &format!("DROP DATABASE IF EXISTS \"{name}\""));
    }

    /// Writes database `db` to `file` (pg_dump's custom format).
    pub fn dump(&self, db: &str, file: &Path) -> Result<(), PgError> {
        run(
            self.client("pg_dump")
                .args(["-Fc", "-d", db, "-f"])
                .arg(file),
            "pg_dump",
        )?;
        Ok(())
    }

    /// Restores `file` (a pg_dump in custom or plain format) into database `db`.
    pub fn restore(&self, db: &str, file: &Path) -> Result<(), PgError> {
        let custom = std::fs::read(file)
            .map(|b| b.starts_with(b"PGDMP"))
            .unwrap_or(false);
        if custom {
            run(
                self.client("pg_restore")
                    .args(["--no-owner", "--exit-on-error", "-d", db])
                    .arg(file),
                "pg_restore",
            )?;
        } else {
            run(
                self.client("psql")
                    .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-f"])
                    .arg(file),
                "psql (restoring a dump)",
            )?;
        }
        Ok(())
    }
}
