//! One server of either engine, as a test uses it: started throwaway or named by a URL,
//! and what Moodle's config.php needs to reach it.

use std::path::Path;

use crate::error::DbError;
use crate::url::DbUrl;
use crate::{mariadb, postgres};

/// A database engine Moodle runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Postgres,
    MariaDb,
}

impl Engine {
    /// As people name it: "postgresql", "mariadb".
    pub fn name(self) -> &'static str {
        match self {
            Engine::Postgres => "postgresql",
            Engine::MariaDb => "mariadb",
        }
    }

    /// `$CFG->dbtype`.
    pub fn moodle_dbtype(self) -> &'static str {
        match self {
            Engine::Postgres => "pgsql",
            Engine::MariaDb => "mariadb",
        }
    }

    /// The engine of a site whose config.php says `$CFG->dbtype = dbtype`; `None` for one
    /// mcb does not back up (sqlsrv, oci).
    pub fn of_moodle_dbtype(dbtype: &str) -> Option<Engine> {
        match dbtype {
            "pgsql" => Some(Engine::Postgres),
            "mariadb" | "mysqli" | "auroramysql" => Some(Engine::MariaDb),
            _ => None,
        }
    }

    /// The vendor Moodle's `admin/environment.xml` names.
    pub fn environment_vendor(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::MariaDb => "mariadb",
        }
    }
}

/// Where a test's database is: a throwaway server of an engine, or a server's URL
/// (`postgresql://…`, `mariadb://…`, `mysql://…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbTarget {
    Throwaway(Engine),
    Url(String),
}

impl DbTarget {
    /// `postgres` / `postgresql`, `mariadb` / `mysql`, or a URL.
    pub fn parse(text: &str) -> Result<DbTarget, DbError> {
        match text {
            "postgres" | "postgresql" | "pgsql" => Ok(DbTarget::Throwaway(Engine::Postgres)),
            "mariadb" | "mysql" => Ok(DbTarget::Throwaway(Engine::MariaDb)),
            _ if text.contains("://") => Ok(DbTarget::Url(text.to_string())),
            _ => Err(DbError {
                message: "not a database: give postgres or mariadb (a throwaway server), or a postgresql:// or mariadb:// URL".into(),
                hint: None,
            }),
        }
    }

    /// The engine it is of.
    pub fn engine(&self) -> Engine {
        match self {
            DbTarget::Throwaway(e) => *e,
            DbTarget::Url(u) if u.starts_with("mariadb://") || u.starts_with("mysql://") => {
                Engine::MariaDb
            }
            DbTarget::Url(_) => Engine::Postgres,
        }
    }
}

/// A server of either engine.
pub enum DbServer {
    Postgres(postgres::Server),
    MariaDb(mariadb::Server),
}

impl DbServer {
    /// The programs `target` needs, or what to install.
    pub fn check_programs(target: &DbTarget) -> Result<(), DbError> {
        let own = matches!(target, DbTarget::Throwaway(_));
        match target.engine() {
            Engine::Postgres => postgres::check_programs(own),
            Engine::MariaDb => mariadb::check_programs(own),
        }
    }

    /// Starts a throwaway server, or connects to the one the URL names.
    pub fn open(target: &DbTarget, keep: bool) -> Result<DbServer, DbError> {
        Ok(match (target, target.engine()) {
            (DbTarget::Throwaway(_), Engine::Postgres) => {
                DbServer::Postgres(postgres::Server::start(keep)?)
            }
            (DbTarget::Throwaway(_), Engine::MariaDb) => {
                DbServer::MariaDb(mariadb::Server::start(keep)?)
            }
            (DbTarget::Url(u), Engine::Postgres) => {
                DbServer::Postgres(postgres::Server::connect(u)?)
            }
            (DbTarget::Url(u), Engine::MariaDb) => DbServer::MariaDb(mariadb::Server::connect(u)?),
        })
    }

    /// A server the user runs, of `engine`, reached as `login` says (a live site's, from
    /// its config.php).
    pub fn reach(engine: Engine, login: DbUrl) -> Result<DbServer, DbError> {
        Ok(match engine {
            Engine::Postgres => DbServer::Postgres(postgres::Server::reach(login)?),
            Engine::MariaDb => DbServer::MariaDb(mariadb::Server::reach(login)?),
        })
    }

    /// Puts the live database `db` back as `dump` (written by [`DbServer::dump`]) holds it,
    /// tables made since (named with Moodle's `prefix`) dropped. A prefix other than
    /// letters, digits and `_` is refused: it is written into SQL.
    pub fn restore_over(&self, db: &str, dump: &Path, prefix: &str) -> Result<(), DbError> {
        if !prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(DbError {
                message: format!(
                    "the table prefix '{}' is not letters, digits and _",
                    prefix.escape_debug()
                ),
                hint: None,
            });
        }
        match self {
            DbServer::Postgres(s) => s.restore_over(db, dump, prefix),
            DbServer::MariaDb(s) => s.restore_over(db, dump, prefix),
        }
    }

    pub fn engine(&self) -> Engine {
        match self {
            DbServer::Postgres(_) => Engine::Postgres,
            DbServer::MariaDb(_) => Engine::MariaDb,
        }
    }

    pub fn host(&self) -> &str {
        match self {
            DbServer::Postgres(s) => &s.host,
            DbServer::MariaDb(s) => &s.host,
        }
    }

    pub fn port(&self) -> u16 {
        match self {
            DbServer::Postgres(s) => s.port,
            DbServer::MariaDb(s) => s.port,
        }
    }

    pub fn user(&self) -> &str {
        match self {
            DbServer::Postgres(s) => &s.user,
            DbServer::MariaDb(s) => &s.user,
        }
    }

    pub fn password(&self) -> &str {
        match self {
            DbServer::Postgres(s) => &s.password,
            DbServer::MariaDb(s) => &s.password,
        }
    }

    /// The server's version ("15.18", "10.11.19").
    pub fn version(&self) -> &str {
        match self {
            DbServer::Postgres(s) => &s.version,
            DbServer::MariaDb(s) => &s.version,
        }
    }

    /// Where the throwaway server lives, when this run started one.
    pub fn scratch_dir(&self) -> Option<&Path> {
        match self {
            DbServer::Postgres(s) => s.cluster_dir(),
            DbServer::MariaDb(s) => s.instance_dir(),
        }
    }

    pub fn fresh_database(&self, name: &str) -> Result<(), DbError> {
        match self {
            DbServer::Postgres(s) => s.fresh_database(name),
            DbServer::MariaDb(s) => s.fresh_database(name),
        }
    }

    pub fn drop_database(&self, name: &str) {
        match self {
            DbServer::Postgres(s) => s.drop_database(name),
            DbServer::MariaDb(s) => s.drop_database(name),
        }
    }

    /// A dump of `db` mcb itself restores later (a snapshot): PostgreSQL's custom format,
    /// MariaDB's SQL.
    pub fn dump(&self, db: &str, file: &Path) -> Result<(), DbError> {
        match self {
            DbServer::Postgres(s) => s.dump(db, file),
            DbServer::MariaDb(s) => s.dump(db, file),
        }
    }

    /// Restores a dump `dump` wrote.
    pub fn restore_own(&self, db: &str, file: &Path) -> Result<(), DbError> {
        match self {
            DbServer::Postgres(s) => s.restore_custom(db, file),
            DbServer::MariaDb(s) => s.restore(db, file),
        }
    }

    /// Restores a dump a user gives (any format the engine's tools read), as code: nothing
    /// in it runs a program.
    pub fn restore(&self, db: &str, file: &Path) -> Result<(), DbError> {
        match self {
            DbServer::Postgres(s) => s.restore(db, file),
            DbServer::MariaDb(s) => s.restore(db, file),
        }
    }

    /// Does `bytes` look like a dump this engine's `dump` writes?
    pub fn is_own_dump(&self, bytes: &[u8]) -> bool {
        match self {
            DbServer::Postgres(_) => bytes.starts_with(b"PGDMP"),
            // mariadb-dump without comments starts with a versioned comment: the sandbox
            // switch (10.11.8 and later) or its session settings.
            DbServer::MariaDb(_) => bytes.starts_with(b"/*M!") || bytes.starts_with(b"/*!"),
        }
    }
}
