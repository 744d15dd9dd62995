//! Why a live site could not be read, or a generation not applied to it.

use std::path::PathBuf;

use mcb_realise::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The site, its store or its generations.
    #[error(transparent)]
    Run(#[from] mcb_realise::RealiseError),
    /// The site file names no target.
    #[error("{site} has no target in its site file: mcb does not know where the live site is")]
    NoTarget { site: String },
    /// The target is not what a deploy makes (no `current`, not a release).
    #[error("{message}")]
    NotDeployed { message: String },
    /// PHP or Moodle's scripts could not read the live site.
    #[error("{message}")]
    Moodle {
        message: String,
        hint: Option<String>,
    },
    /// The live database could not be reached, dumped or restored.
    #[error(transparent)]
    Database(#[from] mcb_database::DbError),
    /// The release could not be laid out or switched.
    #[error(transparent)]
    Deploy(#[from] mcb_deploy::DeployError),
    /// The rehearsal could not run (not: it ran and failed).
    #[error(transparent)]
    Test(#[from] mcb_sitetest::TestError),
    #[error("{message}: {source}")]
    Filesystem {
        message: String,
        source: std::io::Error,
    },
    /// The generation's `mcb test` failed or never ran.
    #[error(
        "{site}: generation {generation} {why}; apply refuses a generation that has not passed its test"
    )]
    Untested {
        site: String,
        generation: String,
        why: &'static str,
    },
    /// A step failed; what the site was left as is in its `outcome`.
    #[error("{}: apply of {} failed at {}: {}{}", .0.site, .0.generation, .0.step, .0.message, outcome_said(&.0.outcome))]
    Failed(Box<ApplyFailure>),
}

/// A failed apply: where, in Moodle's words, and what the site was left as.
#[derive(Debug)]
pub struct ApplyFailure {
    pub site: String,
    pub generation: String,
    pub step: String,
    pub message: String,
    pub outcome: crate::ApplyOutcome,
    pub steps: Vec<crate::StepDone>,
    /// The release served after (the one before, when put back).
    pub serves: Option<PathBuf>,
}

fn outcome_said(o: &crate::ApplyOutcome) -> &'static str {
    match o {
        crate::ApplyOutcome::RehearsalFailed => "\nthe live site was not touched",
        crate::ApplyOutcome::RolledBack => {
            "\nthe site was put back: the release before, the database from the backup, maintenance off"
        }
        crate::ApplyOutcome::RollbackFailed => {
            "\nPUTTING THE SITE BACK FAILED: it may be in maintenance mode; the journal in its deploy directory says where it stopped"
        }
        crate::ApplyOutcome::Applied => "",
    }
}

impl ApplyError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ApplyError::Run(e) => e.kind(),
            ApplyError::Test(e) => e.kind(),
            ApplyError::Deploy(e) => e.kind(),
            ApplyError::NoTarget { .. } => ErrorKind::Config,
            ApplyError::Untested { .. } => ErrorKind::Pending,
            ApplyError::Failed(_) => ErrorKind::TestFailed,
            ApplyError::NotDeployed { .. }
            | ApplyError::Moodle { .. }
            | ApplyError::Database(_)
            | ApplyError::Filesystem { .. } => ErrorKind::Failure,
        }
    }

    /// What to try, when there is something to say that names nothing of a command line.
    pub fn hint(&self) -> Option<&str> {
        match self {
            ApplyError::Run(e) => e.hint(),
            ApplyError::Test(e) => e.hint(),
            ApplyError::NoTarget { .. } => Some(
                "add target: (deploy: \"/srv/www/SITE\", config: \"/etc/moodle/SITE/config.php\") to the site file",
            ),
            ApplyError::Moodle { hint, .. } => hint.as_deref(),
            ApplyError::Database(e) => e.hint.as_deref(),
            ApplyError::Untested { .. } => {
                Some("run `mcb test` on it first, or give --untested to apply it anyway")
            }
            _ => None,
        }
    }
}
