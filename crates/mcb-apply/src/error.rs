//! Why the live site could not be read.

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
}

impl ApplyError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ApplyError::Run(e) => e.kind(),
            ApplyError::NoTarget { .. } => ErrorKind::Config,
            ApplyError::NotDeployed { .. } | ApplyError::Moodle { .. } => ErrorKind::Failure,
        }
    }

    /// What to try, when there is something to say that names nothing of a command line.
    pub fn hint(&self) -> Option<&str> {
        match self {
            ApplyError::Run(e) => e.hint(),
            ApplyError::NoTarget { .. } => Some(
                "add target: (deploy: \"/srv/www/SITE\", config: \"/etc/moodle/SITE/config.php\") to the site file",
            ),
            ApplyError::Moodle { hint, .. } => hint.as_deref(),
            ApplyError::NotDeployed { .. } => None,
        }
    }
}
