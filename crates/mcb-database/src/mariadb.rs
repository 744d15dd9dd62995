//! MariaDB (and MySQL, which Moodle reaches the same way): a throwaway instance
//! (`mariadb-install-db` in a directory of the system's temporary directory that this run
//! holds, 127.0.0.1 on a free port, its server a child of mcb that dies with it) or a
//! server the user names, and the few things done with it — create a database, dump and
//! restore one. Every program is run through `mcb-exec`: arguments apart, never a shell.
//!
//! A dump is code: it is fed to the `mariadb` client with `--sandbox` (its `system` and
//! file commands refused), and in a throwaway instance Moodle and every restore connect as
//! a user whose rights end at the test's database (no FILE, no SUPER).

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use mcb_exec::Program;

use crate::error::{DbError, db_error};
use crate::throwaway::{RemoveOnDrop, free_port, give_to, run_as_owner};
use crate::url::DbUrl;

/// What a throwaway instance's directory is called, in the system's temporary directory.
pub const INSTANCE_PREFIX: &str = "mcb-test-mariadb-";

/// The user Moodle and restores connect as in a throwaway instance.
const TEST_USER: &str = "mcb";

/// How long a new server has to accept connections.
const START_WITHIN: Duration = Duration::from_secs(60);

/// Where MariaDB's programs are: on the PATH, or in /usr/sbin (the server).
fn bin(name: &str) -> Option<PathBuf> {
    mcb_exec::find_program(name).or_else(|| {
        let p = Path::new("/usr/sbin").join(name);
        p.is_file().then_some(p)
    })
}

fn program(name: &str) -> Program {
    Program::new(bin(name).unwrap_or_else(|| name.into()))
}

/// The programs a throwaway instance (or a server of the user's) needs, or what to install.
pub fn check_programs(own_instance: bool) -> Result<(), DbError> {
    let mut needed = vec!["mariadb", "mariadb-dump"];
    if own_instance {
        needed.extend(["mariadb-install-db", "mariadbd"]);
    }
    let missing: Vec<&str> = needed.into_iter().filter(|p| bin(p).is_none()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(DbError {
        message: format!("MariaDB's {} cannot be found", missing.join(", ")),
        hint: Some(if own_instance {
            "install MariaDB (Debian: apt-get install mariadb-server), or name a server with --db mariadb://USER:PASS@HOST:PORT".into()
        } else {
            "install MariaDB's client programs (Debian: apt-get install mariadb-client)".into()
        }),
    })
}

/// What `--db mariadb://USER[:PASS]@HOST[:PORT]` (or `mysql://`) names.
fn parse_url(text: &str) -> Result<DbUrl, DbError> {
    DbUrl::parse_as(text, &["mariadb", "mysql"], 3306)
}

/// A MariaDB server and how Moodle reaches it.
pub struct Server {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    /// "10.11.19".
    pub version: String,
    instance: Option<Instance>,
}

/// A throwaway instance: its directory (held while this run lives) and its server.
struct Instance {
    dir: mcb_store::HeldDir,
    server: Child,
    keep: bool,
}

impl Instance {
    fn socket(&self) -> PathBuf {
        self.dir.path.join("mysqld.sock")
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // SIGKILL: the instance is thrown away; nothing in it needs to be flushed.
        let _ = self.server.kill();
        let _ = self.server.wait();
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir.path);
        }
    }
}

impl Server {
    /// Starts an instance in a new directory of the system's temporary directory, held by
    /// this run: 127.0.0.1 only, nothing flushed (it is thrown away), its server a child of
    /// this process. As root, it runs as the `mysql` user.
    pub fn start(keep: bool) -> Result<Server, DbError> {
        check_programs(true)?;
        let dir = mcb_store::HeldDir::create_in(&std::env::temp_dir(), INSTANCE_PREFIX)
            .map_err(|e| db_error(format!("cannot make a directory for MariaDB: {e}")))?;
        let remove_on_failure = RemoveOnDrop(Some(dir.path.clone()));
        let run_as = run_as_owner(&dir.path, "mysql", "MariaDB")?;
        let as_user = |mut p: Program| {
            if let Some(u) = run_as {
                p.run_as(u);
            }
            p
        };
        let data = dir.path.join("data");
        let mut datadir = std::ffi::OsString::from("--datadir=");
        datadir.push(data.as_os_str());
        // Its own temporary files stay in the instance's directory, which its user owns.
        let tmp = dir.path.join("tmp");
        std::fs::create_dir(&tmp)
            .map_err(|e| db_error(format!("cannot make a directory for MariaDB: {e}")))?;
        if let Some(u) = run_as {
            give_to(&tmp, u)?;
        }
        let mut tmpdir = std::ffi::OsString::from("--tmpdir=");
        tmpdir.push(tmp.as_os_str());
        as_user(program("mariadb-install-db"))
            .arg("--no-defaults")
            .arg(&datadir)
            .arg(&tmpdir)
            .env("TMPDIR", &tmp)
            .args([
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
            ])
            .run()?;
        let port = free_port()?;
        let log = dir.path.join("server.log");
        let opt = |name: &str, path: &Path| {
            let mut o = std::ffi::OsString::from(format!("--{name}="));
            o.push(path.as_os_str());
            o
        };
        let child = as_user(program("mariadbd"))
            .arg("--no-defaults")
            .arg(&datadir)
            .arg(&tmpdir)
            .env("TMPDIR", &tmp)
            .arg(format!("--port={port}"))
            .arg(opt("socket", &dir.path.join("mysqld.sock")))
            .arg(opt("pid-file", &dir.path.join("mysqld.pid")))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                "--skip-log-bin",
                "--innodb-flush-log-at-trx-commit=0",
                "--innodb-doublewrite=0",
            ])
            .spawn_logged(&log)?;
        let mut s = Server {
            host: "127.0.0.1".into(),
            port,
            user: TEST_USER.into(),
            password: String::new(),
            version: String::new(),
            instance: Some(Instance {
                dir,
                server: child,
                keep,
            }),
        };
        let started = Instant::now();
        loop {
            match s.admin_query("SELECT VERSION()") {
                Ok(v) => {
                    s.version = short_version(&v);
                    break;
                }
                Err(e) => {
                    let instance = s.instance.as_mut().expect("started above");
                    let ended = matches!(instance.server.try_wait(), Ok(Some(_)));
                    if ended || started.elapsed() > START_WITHIN {
                        let said = std::fs::read_to_string(&log).unwrap_or_default();
                        return Err(db_error(format!(
                            "MariaDB did not start: {}",
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
        s.admin_query(&format!("CREATE USER '{TEST_USER}'@'127.0.0.1'"))?;
        remove_on_failure.disarm();
        Ok(s)
    }

    /// A server the user runs, named as `mariadb://USER[:PASS]@HOST[:PORT]`. The password
    /// is never said in a message.
    pub fn connect(url: &str) -> Result<Server, DbError> {
        Server::reach(parse_url(url)?)
    }

    /// A server the user runs, reached as `t` says.
    pub fn reach(t: DbUrl) -> Result<Server, DbError> {
        check_programs(false)?;
        let mut s = Server {
            host: t.host,
            port: t.port,
            user: t.user,
            password: t.password,
            version: String::new(),
            instance: None,
        };
        s.version = short_version(&s.query("", "SELECT VERSION()")?);
        Ok(s)
    }

    /// Where the throwaway instance lives, when this run started one.
    pub fn instance_dir(&self) -> Option<&Path> {
        self.instance.as_ref().map(|i| i.dir.path.as_path())
    }

    /// A client program connecting as Moodle does.
    fn client(&self, name: &str) -> Program {
        let mut c = program(name);
        c.arg("--no-defaults")
            .arg(format!("--host={}", self.host))
            .arg(format!("--port={}", self.port))
            .arg(format!("--user={}", self.user));
        if name == "mariadb" {
            c.arg("--connect-timeout=10");
        }
        // The password by the environment, never on a command line others can read.
        c.env("MYSQL_PWD", &self.password);
        c
    }

    /// A client program with the rights to create databases: root over the throwaway
    /// instance's socket, else the user's own server as the user named.
    fn admin(&self) -> Program {
        match &self.instance {
            Some(i) => {
                let mut c = program("mariadb");
                let mut socket = std::ffi::OsString::from("--socket=");
                socket.push(i.socket().as_os_str());
                c.arg("--no-defaults")
                    .arg(socket)
                    .arg("--user=root")
                    .env_remove("MYSQL_PWD");
                c
            }
            None => self.client("mariadb"),
        }
    }

    fn admin_query(&self, sql: &str) -> Result<String, DbError> {
        let out = self.admin().args(["-N", "-B", "-e", sql]).run()?;
        Ok(out.stdout_text().trim().to_string())
    }

    /// One value from `sql` in database `db` (none when empty), as Moodle's user.
    pub fn query(&self, db: &str, sql: &str) -> Result<String, DbError> {
        let mut c = self.client("mariadb");
        c.args(["-N", "-B", "-e", sql]);
        if !db.is_empty() {
            c.arg(db);
        }
        Ok(c.run()?.stdout_text().trim().to_string())
    }

    /// A new empty database `name` (dropped first if it exists), Moodle's user its owner.
    pub fn fresh_database(&self, name: &str) -> Result<(), DbError> {
        let mut sql = format!(
            "DROP DATABASE IF EXISTS `{name}`; CREATE DATABASE `{name}` DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
        );
        if self.instance.is_some() {
            sql.push_str(&format!(
                " GRANT ALL PRIVILEGES ON `{name}`.* TO '{TEST_USER}'@'127.0.0.1';"
            ));
        }
        self.admin_query(&sql)?;
        Ok(())
    }

    /// Drops database `name`.
    pub fn drop_database(&self, name: &str) {
        let _ = self.admin_query(&format!("DROP DATABASE IF EXISTS `{name}`"));
    }

    /// Writes database `db` to `file` as SQL (`mariadb-dump`), the same bytes for the same
    /// data: no comments, no date.
    pub fn dump(&self, db: &str, file: &Path) -> Result<(), DbError> {
        let mut out = std::ffi::OsString::from("--result-file=");
        out.push(file.as_os_str());
        self.client("mariadb-dump")
            .args([
                "--single-transaction",
                "--skip-comments",
                "--skip-dump-date",
                "--no-tablespaces",
            ])
            .arg(out)
            .arg(db)
            .run()?;
        Ok(())
    }

    /// Restores `file`, an SQL dump, into database `db` with the client in sandbox mode: a
    /// `system` or file command in the dump runs nothing.
    pub fn restore(&self, db: &str, file: &Path) -> Result<(), DbError> {
        let sql = std::fs::read(file)
            .map_err(|e| db_error(format!("cannot read {}: {e}", file.display())))?;
        let out = self
            .client("mariadb")
            .args(["--sandbox", "--batch"])
            .arg(db)
            .output_with_input(&sql)?;
        if !out.success() {
            return Err(db_error(format!(
                "mariadb could not restore {}: {}",
                file.display(),
                mcb_exec::last_lines(&out.stderr_text(), 5)
            )));
        }
        Ok(())
    }
}

impl Server {
    /// Puts database `db` back as the dump `file` holds it: the tables whose names start
    /// with `prefix` (every table when it is empty) are dropped first, so that a table made
    /// after the dump goes too; then the dump is restored (its own `DROP TABLE IF EXISTS`
    /// before each table), in sandbox mode.
    pub fn restore_over(&self, db: &str, file: &Path, prefix: &str) -> Result<(), DbError> {
        let like = prefix.replace('_', "\\_");
        let tables = self.query(
            db,
            &format!(
                "SELECT GROUP_CONCAT(CONCAT('`', table_name, '`')) FROM information_schema.tables \
                 WHERE table_schema = DATABASE() AND table_name LIKE '{like}%'"
            ),
        )?;
        if !tables.is_empty() && tables != "NULL" {
            self.query(
                db,
                &format!("SET FOREIGN_KEY_CHECKS = 0; DROP TABLE IF EXISTS {tables}"),
            )?;
        }
        self.restore(db, file)
    }
}

/// "10.11.19-MariaDB-0+deb12u1" → "10.11.19".
fn short_version(v: &str) -> String {
    v.split('-').next().unwrap_or(v).trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mariadb_url_is_decoded_and_its_password_never_shown() {
        let t = parse_url("mariadb://bob:a%2Fb%40c@db.example:3307").unwrap();
        assert_eq!((t.user.as_str(), t.password.as_str()), ("bob", "a/b@c"));
        assert_eq!((t.host.as_str(), t.port), ("db.example", 3307));
        assert_eq!(parse_url("mysql://al@h").unwrap().port, 3306);
        for bad in ["postgresql://bob:pw1@h", "mariadb://:pw1@h", "nope pw1"] {
            let e = parse_url(bad).expect_err("refused");
            assert!(!e.message.contains("pw1"), "{}", e.message);
        }
        assert_eq!(short_version("10.11.19-MariaDB-0+deb12u1"), "10.11.19");
    }
}
