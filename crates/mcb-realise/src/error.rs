use mcb_catalog::{SourceError, SourceFailure};
use mcb_config::ConfigError;
use mcb_resolve::Problem;

/// Why a realise (or another command of this crate) failed. Each variant is one kind of
/// failure with one exit code; causes are kept as `source()`, hints apart.
#[derive(Debug, thiserror::Error)]
pub enum RealiseError {
    /// The site file or lock is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No set of versions satisfies the site file and Moodle's rules.
    #[error("{}", problems_text(.0))]
    Unsatisfiable(Vec<Problem>),
    /// A source could not be had, was refused, or does not match its hash.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A local file or directory outside the store could not be used (the lock, the
    /// `result` link, a directory given on the command line).
    #[error("{message}")]
    Filesystem {
        message: String,
        #[source]
        source: std::io::Error,
    },
    /// The plan would put older code on the site than its last generation has.
    #[error("{}", downgrade_text(.0))]
    Downgrade(Vec<crate::changes::Downgrade>),
    /// `--locked`, and the lock would change (or there is none).
    #[error("{}", lock_changes_text(.0.as_deref()))]
    LockWouldChange(Option<Vec<crate::changes::Change>>),
    /// What a command needs from the machine is not there (php, PostgreSQL).
    #[error("{message}")]
    Environment {
        message: String,
        hint: Option<String>,
    },
    /// Stopped by SIGINT or SIGTERM; what was temporary is removed.
    #[error("interrupted; everything temporary was removed")]
    Interrupted,
    /// The site's name already belongs to another site file.
    #[error("{message}")]
    Owner { message: String, hint: String },
    #[error(transparent)]
    Store(#[from] mcb_store::StoreError),
    #[error(transparent)]
    Git(#[from] mcb_git::GitError),
}

fn lock_changes_text(changes: Option<&[crate::changes::Change]>) -> String {
    match changes {
        None => "--locked, but the site has no lock".into(),
        Some([]) => "--locked, but the lock would change (its tree or warnings differ)".into(),
        Some(changes) => {
            let mut s = String::from("--locked, but the lock would change:");
            for c in changes {
                s.push_str(&format!("\n{c}"));
            }
            s
        }
    }
}

fn downgrade_text(downgrades: &[crate::changes::Downgrade]) -> String {
    let mut s = String::from(
        "refusing to downgrade: Moodle refuses older code against a database that has run the newer code",
    );
    for d in downgrades {
        s.push_str(&format!("\n- {}: {} → {}", d.component, d.from, d.to));
    }
    s
}

fn problems_text(problems: &[Problem]) -> String {
    let mut s = format!(
        "no codebase can be built: {} problem{}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        s.push_str("\n- ");
        s.push_str(&p.to_string().replace('\n', "\n  "));
    }
    s
}

impl RealiseError {
    /// A source that could not be had: its component and what went wrong.
    pub(crate) fn source(component: &str, message: impl Into<String>) -> RealiseError {
        RealiseError::Source(SourceError::new(
            component,
            SourceFailure::Unavailable,
            message,
        ))
    }

    /// The same error with a hint (for a source error; others carry theirs).
    pub(crate) fn with_hint(self, h: impl Into<String>) -> RealiseError {
        match self {
            RealiseError::Source(e) => RealiseError::Source(e.hint(h)),
            other => other,
        }
    }

    /// What to try next, when there is something to say.
    pub fn hint(&self) -> Option<&str> {
        match self {
            RealiseError::Config(e) => e.hint.as_deref(),
            RealiseError::Source(e) => e.hint.as_deref(),
            RealiseError::Owner { hint, .. } => Some(hint),
            RealiseError::Environment { hint, .. } => hint.as_deref(),
            RealiseError::Downgrade(_) => Some(
                "if the site's database has never run the newer code (or was restored from before it), pass --allow-downgrade",
            ),
            RealiseError::LockWouldChange(_) => Some(
                "run `mcb update` (or `mcb realise` without --locked) and commit site.lock with the site file",
            ),
            RealiseError::Store(mcb_store::StoreError::NoStore { .. }) => {
                Some("check --store (or MCB_STORE); mcb makes a store on the first realise")
            }
            _ => None,
        }
    }
}

/// An error and its causes on one line, each said once: "cannot read X: connection refused".
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}
