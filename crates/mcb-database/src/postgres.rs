//! PostgreSQL: a throwaway cluster (`initdb` in a directory of the system's temporary
//! directory that this run holds, 127.0.0.1 on a free port, its server a child of mcb that
//! dies with it) or a server the user names, and the few things done with it — create a
//! database, dump and restore one. Every program is run through `mcb-exec`: arguments apart, never a
//! shell, output captured.
//!
//! A dump is code: a plain-SQL dump is fed to psql with its meta-commands disabled
//! (`\restrict`, so `\!` runs nothing), and in a throwaway cluster every restore connects
//! as a role without superuser rights, which cannot run programs (`COPY … TO PROGRAM`).

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use mcb_exec::Program;

use crate::error::{DbError, db_error};
use crate::throwaway::{RemoveOnDrop, free_port, run_as_owner};
use crate::url::DbUrl;

/// The role a throwaway cluster restores dumps as: it owns the database it restores into
/// and may do nothing a superuser alone may.
const RESTORE_ROLE: &str = "mcb_restore";

/// How long a new server has to accept connections.
const START_WITHIN: Duration = Duration::from_secs(60);

/// Where PostgreSQL's programs are: on the PATH, or Debian's versioned directory (the
/// newest).
fn server_bin(name: &str) -> Option<PathBuf> {
    if let Some(p) = mcb_exec::find_program(name) {
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

/// The version of the PostgreSQL server a throwaway cluster would run (`postgres
/// --version`: "15.18"), when one is installed.
pub fn installed_version() -> Option<String> {
    let out = Program::new(server_bin("postgres")?)
        .arg("--version")
        .run()
        .ok()?;
    // "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(2)
        .map(str::to_string)
}

fn program(name: &str) -> Program {
    Program::new(server_bin(name).unwrap_or_else(|| name.into()))
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

/// A throwaway cluster: its directory (held while this run lives) and its server.
struct Cluster {
    dir: mcb_store::HeldDir,
    server: Child,
    keep: bool,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // SIGQUIT: PostgreSQL's immediate shutdown; the cluster is thrown away.
        // SAFETY: signalling our own child, which has not been reaped yet.
        unsafe {
            libc::kill(self.server.id() as libc::pid_t, libc::SIGQUIT);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.server.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.server.kill();
        let _ = self.server.wait();
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir.path);
        }
    }
}

/// The programs a throwaway cluster needs, or what to install.
pub fn check_programs(own_cluster: bool) -> Result<(), DbError> {
    let mut missing: Vec<&str> = ["psql", "pg_dump", "pg_restore"]
        .into_iter()
        .filter(|p| server_bin(p).is_none())
        .collect();
    if own_cluster {
        missing.extend(
            ["initdb", "postgres"]
                .into_iter()
                .filter(|p| server_bin(p).is_none()),
        );
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(DbError {
        message: format!("PostgreSQL's {} cannot be found", missing.join(", ")),
        hint: Some(if own_cluster {
            "install PostgreSQL (Debian: apt-get install postgresql), or name a server with --db postgresql://USER:PASS@HOST:PORT".into()
        } else {
            "install PostgreSQL's client programs (Debian: apt-get install postgresql-client)"
                .into()
        }),
    })
}

/// What a throwaway cluster's directory is called, in the system's temporary directory
/// (where the `postgres` user can reach it, whatever the store's permissions).
pub const CLUSTER_PREFIX: &str = "mcb-test-pg-";

impl Server {
    /// Starts a cluster in a new directory of the system's temporary directory, held by
    /// this run: trust authentication, 127.0.0.1 only, no fsync (it is thrown away), its
    /// server a child of this process.
    pub fn start(keep: bool) -> Result<Server, DbError> {
        check_programs(true)?;
        let dir = mcb_store::HeldDir::create_in(&std::env::temp_dir(), CLUSTER_PREFIX)
            .map_err(|e| db_error(format!("cannot make a directory for PostgreSQL: {e}")))?;
        // Removed again if the cluster does not start.
        let remove_on_failure = RemoveOnDrop(Some(dir.path.clone()));
        // PostgreSQL refuses to run as root: as root, it runs as the `postgres` user.
        let run_as = run_as_owner(&dir.path, "postgres", "PostgreSQL")?;
        let as_user = |mut p: Program| {
            if let Some(u) = run_as {
                p.run_as(u);
            }
            p
        };
        let data = dir.path.join("data");
        as_user(program("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .run()?;
        let port = free_port()?;
        let log = dir.path.join("server.log");
        let child = as_user(program("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(&dir.path)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
            ])
            .spawn_logged(&log)?;
        let mut s = Server {
            host: "127.0.0.1".into(),
            port,
            user: "postgres".into(),
            password: String::new(),
            cluster: Some(Cluster {
                dir,
                server: child,
                keep,
            }),
            version: String::new(),
        };
        let started = Instant::now();
        loop {
            match s.query("postgres", "SHOW server_version") {
                Ok(v) => {
                    s.version = v;
                    break;
                }
                Err(e) => {
                    let cluster = s.cluster.as_mut().expect("started above");
                    let ended = matches!(cluster.server.try_wait(), Ok(Some(_)));
                    if ended || started.elapsed() > START_WITHIN {
                        let said = std::fs::read_to_string(&log).unwrap_or_default();
                        return Err(db_error(format!(
                            "PostgreSQL did not start: {}",
                            if said.trim().is_empty() {
                                e.message
                            } else {
                                mcb_exec::last_lines(&said, 5)
                            }
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        s.query(
            "postgres",
            &format!("CREATE ROLE {RESTORE_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"),
        )?;
        remove_on_failure.disarm();
        Ok(s)
    }

    /// A server the user runs, named as `postgresql://USER[:PASS]@HOST[:PORT]`: user and
    /// password percent-decoded, an IPv6 host without its brackets. The password is never
    /// said in a message.
    pub fn connect(url: &str) -> Result<Server, DbError> {
        Server::reach(DbUrl::parse(url)?)
    }

    /// A server the user runs, reached as `target` says.
    pub fn reach(target: DbUrl) -> Result<Server, DbError> {
        check_programs(false)?;
        let mut s = Server {
            host: target.host,
            port: target.port,
            user: target.user,
            password: target.password,
            cluster: None,
            version: String::new(),
        };
        s.version = s.query("postgres", "SHOW server_version")?;
        Ok(s)
    }

    /// Where the throwaway cluster lives, when this run started one.
    pub fn cluster_dir(&self) -> Option<&Path> {
        self.cluster.as_ref().map(|c| c.dir.path.as_path())
    }

    /// A client program connecting as `user`.
    fn client_as(&self, name: &str, user: &str) -> Program {
        let mut c = program(name);
        c.arg("-h")
            .arg(&self.host)
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-U")
            .arg(user)
            .env("PGPASSWORD", &self.password)
            .env("PGCONNECT_TIMEOUT", "10");
        c
    }

    fn client(&self, name: &str) -> Program {
        self.client_as(name, &self.user)
    }

    /// One value from `sql` in database `db`.
    pub fn query(&self, db: &str, sql: &str) -> Result<String, DbError> {
        let out = self
            .client("psql")
            .args([
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
            ])
            .run()?;
        Ok(out.stdout_text().trim().to_string())
    }

    /// A new empty database `name` (dropped first if it exists).
    pub fn fresh_database(&self, name: &str) -> Result<(), DbError> {
        self.query("postgres", &format!("DROP DATABASE IF EXISTS \"{name}\""))?;
        let owner = if self.cluster.is_some() {
            format!(" OWNER {RESTORE_ROLE}")
        } else {
            String::new()
        };
        self.query(
            "postgres",
            &format!("CREATE DATABASE \"{name}\"{owner} ENCODING 'UTF8' TEMPLATE template0"),
        )?;
        Ok(())
    }

    /// Drops database `name`.
    pub fn drop_database(&self, name: &str) {
        let _ = self.query("postgres", &format!("DROP DATABASE IF EXISTS \"{name}\""));
    }

    /// Writes database `db` to `file` (pg_dump's custom format).
    pub fn dump(&self, db: &str, file: &Path) -> Result<(), DbError> {
        self.client("pg_dump")
            .args(["-Fc", "-d", db, "-f"])
            .arg(file)
            .run()?;
        Ok(())
    }

    /// The user a restore connects as: in a throwaway cluster the role without superuser
    /// rights; on the user's own server, the user it names.
    fn restorer(&self) -> &str {
        if self.cluster.is_some() {
            RESTORE_ROLE
        } else {
            &self.user
        }
    }

    /// Restores a custom-format dump (pg_dump -Fc) into database `db`.
    pub fn restore_custom(&self, db: &str, file: &Path) -> Result<(), DbError> {
        self.client_as("pg_restore", self.restorer())
            .args(["--no-owner", "--no-privileges", "--exit-on-error", "-d", db])
            .arg(file)
            .run()?;
        Ok(())
    }

    /// Puts database `db` back as the custom-format dump `file` holds it: the tables whose
    /// names start with `prefix` (every table when it is empty) are dropped first, so that
    /// a table made after the dump goes too; then the dump is restored in one transaction.
    pub fn restore_over(&self, db: &str, file: &Path, prefix: &str) -> Result<(), DbError> {
        self.query(
            db,
            &format!(
                "DO $$DECLARE r record; BEGIN FOR r IN SELECT tablename FROM pg_tables \
                 WHERE schemaname = current_schema() AND left(tablename, {}) = '{prefix}' LOOP \
                 EXECUTE 'DROP TABLE IF EXISTS ' || quote_ident(r.tablename) || ' CASCADE'; \
                 END LOOP; END$$",
                prefix.len()
            ),
        )?;
        self.client("pg_restore")
            .args([
                "--clean",
                "--if-exists",
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--single-transaction",
                "-d",
                db,
            ])
            .arg(file)
            .run()?;
        Ok(())
    }

    /// Restores `file`, a dump in pg_dump's custom format (by pg_restore) or plain SQL (by
    /// psql, its meta-commands disabled first: a `\!` in the dump runs nothing).
    pub fn restore(&self, db: &str, file: &Path) -> Result<(), DbError> {
        let custom = std::fs::File::open(file)
            .and_then(|mut f| {
                let mut head = [0u8; 5];
                std::io::Read::read_exact(&mut f, &mut head).map(|()| head)
            })
            .is_ok_and(|h| &h == b"PGDMP");
        if custom {
            return self.restore_custom(db, file);
        }
        let sql = std::fs::read(file)
            .map_err(|e| db_error(format!("cannot read {}: {e}", file.display())))?;
        // A key the dump cannot know: only `\unrestrict KEY` lifts the restriction.
        let key = blake3::hash(format!("{}{:?}", std::process::id(), Instant::now()).as_bytes())
            .to_hex()[..32]
            .to_string();
        let mut input = format!("\\restrict {key}\n").into_bytes();
        input.extend_from_slice(&sql);
        let mut psql = self.client("psql");
        psql.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-f", "-"]);
        let out = psql.output_with_input(&input)?;
        if !out.success() {
            let said = mcb_exec::last_lines(&out.stderr_text(), 5);
            if said.contains("invalid command \\restrict") {
                return Err(DbError {
                    message: format!(
                        "{} is a plain-SQL dump, and this psql cannot disable meta-commands",
                        file.display()
                    ),
                    hint: Some("use psql 15.14, 16.10, 17.6 or newer, or give a custom-format dump (pg_dump -Fc)".into()),
                });
            }
            return Err(db_error(format!(
                "psql could not restore {}: {said}",
                file.display()
            )));
        }
        Ok(())
    }
}
