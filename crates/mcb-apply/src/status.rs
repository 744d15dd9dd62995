//! `mcb status`: the observed state of a live site — the generation its target serves, the
//! files changed in it, what its database has run — against the site's newest generation.

use std::path::{Path, PathBuf};

use mcb_config::SiteFile;
use mcb_realise::{RealiseError, RunContext, RunOptions, TreeOf};

use crate::error::ApplyError;
use crate::moodle::{
    ComponentState, SiteDatabase, read_site_database, read_state, upgrade_pending,
};

/// What a live site is, against what mcb built for it.
#[derive(Debug, Clone)]
pub struct SiteStatus {
    pub site: String,
    /// `DIR/current`.
    pub current: PathBuf,
    /// The commit `current` serves, and its generation number on the site's branch.
    pub serves: String,
    pub serves_number: Option<usize>,
    /// The site's newest generation (the branch's head), and its number.
    pub newest: Option<String>,
    pub newest_number: Option<usize>,
    /// Files of `current` that are not as built: `M path`, `A path`, `D path`.
    pub changed_files: Vec<String>,
    /// How the database is reached (the password never).
    pub database: SiteDatabase,
    /// The core version the database has run, and the code's.
    pub core_db: Option<String>,
    pub core_code: Option<String>,
    /// Moodle's `upgrade.php --is-pending`.
    pub upgrade_pending: bool,
    /// Components whose code is newer than their database (or new to it).
    pub to_upgrade: Vec<(String, ComponentState)>,
    /// Components whose database is newer than their code: a rollback Moodle cannot run.
    pub database_ahead: Vec<(String, ComponentState)>,
    /// Components in the database with no code: removed without being uninstalled.
    pub orphaned: Vec<(String, ComponentState)>,
    pub maintenance: bool,
    /// An apply that was cut off (killed): the generation it applied and the step it was
    /// at. The next `mcb apply` puts the site back before anything else.
    pub unfinished_apply: Option<(String, String)>,
}

impl SiteStatus {
    /// The live site is what its newest generation says: served, unchanged, upgraded,
    /// nothing ahead or orphaned, out of maintenance.
    pub fn in_sync(&self) -> bool {
        self.newest.as_deref() == Some(self.serves.as_str())
            && self.changed_files.is_empty()
            && !self.upgrade_pending
            && self.to_upgrade.is_empty()
            && self.database_ahead.is_empty()
            && self.orphaned.is_empty()
            && !self.maintenance
            && self.unfinished_apply.is_none()
    }
}

/// Moodle versions compare as numbers (`2024100700.01`).
fn newer(a: &str, b: &str) -> bool {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x > y,
        _ => false,
    }
}

/// Reads the live site of the site file at `site_path`.
pub fn status(
    site_path: &Path,
    opts: &RunOptions,
    reporter: &dyn mcb_realise::Reporter,
) -> Result<SiteStatus, ApplyError> {
    let site = SiteFile::load(site_path).map_err(RealiseError::from)?;
    let target = site.target.clone().ok_or_else(|| ApplyError::NoTarget {
        site: site.name.clone(),
    })?;
    let current = target.deploy.join("current");
    let backups = crate::backup::backups_path(&target.backups, &target.deploy);
    let unfinished_apply =
        crate::journal::Journal::read(&target.deploy, &backups)?.map(|j| (j.to, j.step));
    let served = std::fs::canonicalize(&current).map_err(|e| ApplyError::NotDeployed {
        message: format!(
            "{} serves nothing mcb deployed ({e}); deploy a generation there first",
            current.display()
        ),
    })?;
    let serves = served
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let drift = mcb_realise::verify_tree(&opts.store, &served, &TreeOf::Found)?;
    let ctx = RunContext::open(opts, None, reporter)?;
    let head = ctx
        .git
        .branch_head(&site.name)
        .map_err(RealiseError::from)?;
    let log = match &head {
        Some(h) => ctx
            .git
            .first_parent_log(h, 100_000)
            .map_err(RealiseError::from)?,
        None => Vec::new(),
    };
    let number_of = |commit: &str| {
        log.iter()
            .position(|(c, _, _)| c.as_str() == commit)
            .map(|i| log.len() - i)
    };
    let served_lock = mcb_store::GitOid::parse(&serves)
        .ok()
        .and_then(|c| mcb_realise::lock_in_commit(&ctx.git, &c).ok().flatten());
    drop(ctx);

    let database = read_site_database(&target.php, &target.config)?;
    let state = read_state(&target.php, &served)?;
    let pending = upgrade_pending(&target.php, &served)?;
    let mut to_upgrade = Vec::new();
    let mut database_ahead = Vec::new();
    let mut orphaned = Vec::new();
    for (component, s) in &state.plugins {
        let entry = (component.clone(), s.clone());
        match (&s.db, &s.disk) {
            (Some(_), None) => orphaned.push(entry),
            (None, Some(_)) => to_upgrade.push(entry),
            (Some(db), Some(disk)) if newer(disk, db) => to_upgrade.push(entry),
            (Some(db), Some(disk)) if newer(db, disk) => database_ahead.push(entry),
            _ => {}
        }
    }
    let core_code = served_lock.map(|l| l.moodle.build);
    if let (Some(db), Some(code)) = (&state.version, &core_code) {
        let entry = (
            "moodle".to_string(),
            ComponentState {
                db: Some(db.clone()),
                disk: Some(code.clone()),
            },
        );
        if newer(code, db) {
            to_upgrade.insert(0, entry);
        } else if newer(db, code) {
            database_ahead.insert(0, entry);
        }
    }
    let mut changed_files: Vec<String> = drift
        .modified
        .iter()
        .map(|p| format!("M {p}"))
        .chain(drift.added.iter().map(|p| format!("A {p}")))
        .chain(drift.removed.iter().map(|p| format!("D {p}")))
        .collect();
    changed_files.sort();
    Ok(SiteStatus {
        site: site.name.clone(),
        current,
        serves_number: number_of(&serves),
        serves,
        newest_number: head.as_ref().and_then(|h| number_of(h.as_str())),
        newest: head.map(|h| h.to_string()),
        changed_files,
        database,
        core_db: state.version,
        core_code,
        upgrade_pending: pending,
        to_upgrade,
        database_ahead,
        orphaned,
        maintenance: state.maintenance,
        unfinished_apply,
    })
}
