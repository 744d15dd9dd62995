//! The live database before an apply changes it: a dump by the engine's own program
//! (`pg_dump -Fc`, `mariadb-dump`) or the site's own backup command, written owner-only into
//! the site's backups directory under a new name and renamed into place once whole; the
//! newest N kept. The same dump is what the rehearsal restores and what a failed apply puts
//! back.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mcb_config::Backups;
use mcb_database::{DbServer, DbUrl, Engine};

use crate::error::ApplyError;
use crate::moodle::SiteDatabase;

/// A backup's file name: `SITE-<unix seconds>-<pid>.dump`.
fn backup_name(site: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{site}-{now:012}-{:08}.dump", std::process::id())
}

/// The engine of the site's database, or why mcb cannot back it up itself.
pub(crate) fn engine_of(db: &SiteDatabase) -> Result<Engine, ApplyError> {
    Engine::of_moodle_dbtype(&db.dbtype).ok_or_else(|| ApplyError::Moodle {
        message: format!(
            "the site's database is {}, which mcb does not back up or rehearse on",
            db.dbtype
        ),
        hint: Some("mcb applies to sites on PostgreSQL, MariaDB or MySQL".into()),
    })
}

/// The live database's server, reached as the site's config.php says.
pub(crate) fn live_server(db: &SiteDatabase) -> Result<DbServer, ApplyError> {
    let engine = engine_of(db)?;
    let default_port = match engine {
        Engine::Postgres => 5432,
        Engine::MariaDb => 3306,
    };
    let port = if db.port.trim().is_empty() {
        default_port
    } else {
        db.port.trim().parse().map_err(|_| ApplyError::Moodle {
            message: format!(
                "the site's dbport '{}' is not a port",
                db.port.escape_debug()
            ),
            hint: None,
        })?
    };
    let login = DbUrl {
        user: db.user.clone(),
        password: db.password().to_string(),
        host: if db.host.is_empty() {
            "localhost".into()
        } else {
            db.host.clone()
        },
        port,
    };
    Ok(DbServer::reach(engine, login)?)
}

/// Where the site's backups go: the site file's `backups.dir`, else `backups/` in the
/// deploy directory.
pub(crate) fn backups_path(settings: &Backups, deploy: &Path) -> PathBuf {
    settings
        .dir
        .clone()
        .unwrap_or_else(|| deploy.join("backups"))
}

/// The site's backups directory, made owner-only.
pub(crate) fn backups_dir(settings: &Backups, deploy: &Path) -> Result<PathBuf, ApplyError> {
    let dir = backups_path(settings, deploy);
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)))
        .map_err(|e| ApplyError::Filesystem {
            message: "cannot make the site's backups directory".into(),
            source: e,
        })?;
    Ok(dir)
}

/// Writes a backup of the live database into `dir`; returns its path and size.
pub(crate) fn back_up(
    site: &str,
    db: &SiteDatabase,
    server: &DbServer,
    settings: &Backups,
    dir: &Path,
) -> Result<(PathBuf, u64), ApplyError> {
    let name = backup_name(site);
    let partial = dir.join(format!(".{name}.partial"));
    let done = dir.join(&name);
    let result = match &settings.command {
        Some(argv) => run_backup_command(argv, &partial),
        None => server.dump(&db.name, &partial).map_err(ApplyError::from),
    };
    let size = result.and_then(|()| {
        let m = std::fs::metadata(&partial).map_err(|e| ApplyError::Filesystem {
            message: "the backup program wrote no file".into(),
            source: e,
        })?;
        if m.len() == 0 {
            return Err(ApplyError::Moodle {
                message: "the backup program wrote an empty file".into(),
                hint: None,
            });
        }
        std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o600))
            .and_then(|()| std::fs::rename(&partial, &done))
            .map_err(|e| ApplyError::Filesystem {
                message: "cannot keep the backup".into(),
                source: e,
            })?;
        Ok(m.len())
    });
    match size {
        Ok(n) => Ok((done, n)),
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// The site's own backup program, `{file}` replaced by where it writes.
fn run_backup_command(argv: &[String], file: &Path) -> Result<(), ApplyError> {
    let file = file.to_string_lossy();
    let mut p = mcb_exec::Program::new(&argv[0]);
    for a in &argv[1..] {
        p.arg(a.replace("{file}", &file));
    }
    let out = p.output().map_err(|e| ApplyError::Moodle {
        message: format!("cannot run the site's backup command {}: {e}", argv[0]),
        hint: None,
    })?;
    if !out.success() {
        return Err(ApplyError::Moodle {
            message: format!(
                "the site's backup command {} failed ({})",
                argv[0],
                mcb_exec::describe(out.status)
            ),
            hint: None,
        });
    }
    Ok(())
}

/// Removes all but the newest `keep` backups of `site` in `dir` (and what killed runs left
/// half-written); returns how many are kept.
pub(crate) fn prune(site: &str, dir: &Path, keep: u32) -> usize {
    let prefix = format!("{site}-");
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    for n in found
        .iter()
        .filter(|n| n.starts_with(&format!(".{prefix}")))
    {
        if n.ends_with(".partial") {
            let _ = std::fs::remove_file(dir.join(n));
        }
    }
    // `SITE-<12 digits>-<8 digits>.dump`: another site's name that starts with this one's
    // is not matched.
    found.retain(|n| {
        n.strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".dump"))
            .is_some_and(|stamp| {
                stamp.len() == 21
                    && stamp.bytes().enumerate().all(|(i, b)| {
                        if i == 12 {
                            b == b'-'
                        } else {
                            b.is_ascii_digit()
                        }
                    })
            })
    });
    // Names sort by time: the seconds are zero-padded.
    found.sort();
    let extra = found.len().saturating_sub(keep as usize);
    for old in &found[..extra] {
        let _ = std::fs::remove_file(dir.join(old));
    }
    found.len() - extra
}
