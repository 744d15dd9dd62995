//! The apply journal: `DIR/.mcb-apply.json` in the deploy directory, written before the live
//! site is touched and removed once it is as it should be. A killed apply leaves it; the
//! next `apply` reads it and puts the site back (the release served before, the database
//! from the backup, maintenance off) before anything else, and `status` says it is there.
//!
//! It is read as input: a journal that does not parse, names a release outside the deploy
//! directory or a backup that is not a file of the backups directory is refused, never
//! followed.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ApplyError;

/// The journal's file name in the deploy directory.
pub const JOURNAL: &str = ".mcb-apply.json";

/// The format this mcb writes.
const JOURNAL_FORMAT: u32 = 1;

/// How far an apply got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// The backup is being written or the rehearsal runs: the live site is untouched.
    Preparing,
    /// The live site is being changed (uninstall, maintenance, switch, upgrade, health).
    Live,
    /// The live site is being put back.
    RollingBack,
}

/// What a running apply has done, enough to undo it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Journal {
    pub format: u32,
    pub site: String,
    /// The release `current` served before (a directory of `DIR/releases`).
    pub from_release: Option<PathBuf>,
    /// The generation being applied.
    pub to: String,
    /// The database backup taken first.
    pub backup: Option<PathBuf>,
    pub phase: Phase,
    /// The step running when the journal was last written.
    pub step: String,
    pub pid: u32,
}

impl Journal {
    pub fn new(site: &str, from_release: Option<PathBuf>, to: &str) -> Journal {
        Journal {
            format: JOURNAL_FORMAT,
            site: site.to_string(),
            from_release,
            to: to.to_string(),
            backup: None,
            phase: Phase::Preparing,
            step: "backup".into(),
            pid: std::process::id(),
        }
    }

    /// Writes the journal into `dir` (a new file renamed over the old one, synced, owner
    /// only: it names the backup).
    pub fn write(&self, dir: &Path) -> Result<(), ApplyError> {
        let text = serde_json::to_vec_pretty(self).expect("a journal serialises");
        let tmp = dir.join(format!("{JOURNAL}.{}", std::process::id()));
        let fail = |e: std::io::Error| ApplyError::Filesystem {
            message: format!("cannot write the apply journal in {}", dir.display()),
            source: e,
        };
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .map_err(fail)?;
        f.write_all(&text)
            .and_then(|()| f.sync_all())
            .map_err(fail)?;
        std::fs::rename(&tmp, dir.join(JOURNAL)).map_err(fail)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// The journal a killed apply left in `dir`, checked: its release is one of
    /// `dir/releases`, its backup a file in `backups`.
    pub fn read(dir: &Path, backups: &Path) -> Result<Option<Journal>, ApplyError> {
        let path = dir.join(JOURNAL);
        let meta = match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(ApplyError::Filesystem {
                    message: format!("cannot read {}", path.display()),
                    source: e,
                });
            }
            Ok(m) => m,
        };
        let refuse = |why: &str| ApplyError::NotDeployed {
            message: format!(
                "{} is not a journal mcb wrote ({why}); move it away once the site is checked by hand",
                path.display()
            ),
        };
        if !meta.file_type().is_file() || meta.len() > 64 * 1024 {
            return Err(refuse("not a small file"));
        }
        let bytes = std::fs::read(&path).map_err(|e| ApplyError::Filesystem {
            message: format!("cannot read {}", path.display()),
            source: e,
        })?;
        let j: Journal = serde_json::from_slice(&bytes).map_err(|_| refuse("it does not parse"))?;
        if j.format != JOURNAL_FORMAT {
            return Err(refuse("another format"));
        }
        if let Some(r) = &j.from_release {
            let releases = dir.join("releases");
            let ok = r.parent() == Some(releases.as_path())
                && r.file_name()
                    .is_some_and(|n| mcb_store::GitOid::parse(&n.to_string_lossy()).is_ok());
            if !ok {
                return Err(refuse("its release is not one of the deploy directory's"));
            }
        }
        if let Some(b) = &j.backup
            && b.parent() != Some(backups)
        {
            return Err(refuse("its backup is not in the site's backups directory"));
        }
        Ok(Some(j))
    }

    /// Removes the journal: the site is as it should be.
    pub fn remove(dir: &Path) {
        let _ = std::fs::remove_file(dir.join(JOURNAL));
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}
