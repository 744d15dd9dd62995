use mcb_catalog::{SourceError, SourceFailure};
use mcb_config::ConfigError;
use mcb_resolve::Problem;

/// What kind of failure an error is: it decides the exit code (`mcb --help` lists them).
/// Every library error above the store says which it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// mcb's own failure: the store, git, the filesystem, a program it runs (exit 1).
    Failure,
    /// Something would change and was not allowed to: a downgrade, the lock (exit 2).
    Pending,
    /// The site file or lock is invalid, or the site's name belongs to another (exit 3).
    Config,
    /// No set of versions satisfies the site file and Moodle's rules (exit 4).
    Unsatisfiable,
    /// A source could not be fetched or read, or was refused (exit 5).
    Source,
    /// Content does not match its hash (exit 6).
    Integrity,
    /// A test failed (exit 7).
    TestFailed,
    /// What was asked does not make sense (exit 64).
    Usage,
}

/// What a usage error is about: the CLI says where to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named {
    /// A site the store does not have.
    Site,
    /// A generation the site does not have.
    Generation,
    /// A file that is there already, where a new one was to be written.
    Existing,
    /// A tree whose generation could not be found by its place, name or files.
    Tree,
}

/// Why an operation of this crate failed: the stages' errors, which every operation can
/// meet, and the few of their own. Each variant is one kind of failure; causes are kept as
/// `source()`, never repeated in the message.
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
    /// A plugin would move to another source where that must be allowed first.
    #[error("{}", source_change_text(.0))]
    SourceChange(Vec<crate::changes::Change>),
    /// The lock would change (or there is none) where it must not.
    #[error("{}", lock_changes_text(.0.as_deref()))]
    LockWouldChange(Option<Vec<crate::changes::Change>>),
    /// The lock holds versions an open advisory or malware flag affects (component, what).
    #[error("{}", advisories_text(.0))]
    Advisories(Vec<(String, crate::stage::catalog::AdvisoryFinding)>),
    /// The site's name already belongs to another site file.
    #[error("site name '{site}' belongs to {}, not to {}: two site files with one name would overwrite each other's codebase", owner.display(), claimant.display())]
    Owner {
        site: String,
        owner: std::path::PathBuf,
        claimant: std::path::PathBuf,
    },
    /// The site is served: `result` links point at its current generation.
    #[error("site {site} is live: {} point{} at its current generation", links.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "), if links.len() == 1 { "s" } else { "" })]
    Live {
        site: String,
        links: Vec<std::path::PathBuf>,
    },
    /// What was asked names nothing there is (a generation, a site).
    #[error("{message}")]
    Usage { message: String, about: Named },
    #[error(transparent)]
    Store(#[from] mcb_store::StoreError),
    #[error(transparent)]
    Git(#[from] mcb_git::GitError),
    /// A binary cache is misconfigured (exit 3) or refused an upload (exit 5).
    #[error(transparent)]
    Cache(#[from] mcb_substitute::SubstituteError),
}

fn lock_changes_text(changes: Option<&[crate::changes::Change]>) -> String {
    match changes {
        None => "the site has no lock".into(),
        Some([]) => "the lock would change (its tree or warnings differ)".into(),
        Some(changes) => {
            let mut s = String::from("the lock would change:");
            for c in changes {
                s.push_str(&format!("\n{c}"));
            }
            s
        }
    }
}

fn advisories_text(open: &[(String, crate::stage::catalog::AdvisoryFinding)]) -> String {
    let mut s = String::from("the lock holds versions with open security advisories:");
    for (component, f) in open {
        s.push_str(&format!("\n- {}", f.text(component)));
    }
    s
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

    /// What kind of failure it is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RealiseError::Config(_) | RealiseError::Owner { .. } | RealiseError::Live { .. } => {
                ErrorKind::Config
            }
            RealiseError::Unsatisfiable(_) => ErrorKind::Unsatisfiable,
            // Refused as a source is refused: exit 5, as for a scanner's find.
            RealiseError::Advisories(_) => ErrorKind::Source,
            RealiseError::Source(s) => match s.failure {
                SourceFailure::Unavailable | SourceFailure::Refused => ErrorKind::Source,
                SourceFailure::Integrity => ErrorKind::Integrity,
                SourceFailure::Store => ErrorKind::Failure,
            },
            RealiseError::Downgrade(_)
            | RealiseError::LockWouldChange(_)
            | RealiseError::SourceChange(_) => ErrorKind::Pending,
            RealiseError::Usage { .. } => ErrorKind::Usage,
            RealiseError::Filesystem { .. } | RealiseError::Store(_) | RealiseError::Git(_) => {
                ErrorKind::Failure
            }
            RealiseError::Cache(e) => match e {
                mcb_substitute::SubstituteError::Key(_)
                | mcb_substitute::SubstituteError::BadUrl { .. } => ErrorKind::Config,
                mcb_substitute::SubstituteError::Remote { .. }
                | mcb_substitute::SubstituteError::Refused { .. } => ErrorKind::Source,
                _ => ErrorKind::Failure,
            },
        }
    }

    /// What to try next, when there is something to say that names nothing of a command
    /// line (the CLI adds what does).
    pub fn hint(&self) -> Option<&str> {
        match self {
            RealiseError::Config(e) => e.hint.as_deref(),
            RealiseError::Source(e) => e.hint.as_deref(),
            _ => None,
        }
    }

    /// The component the failure is about, when it is about one.
    pub fn component(&self) -> Option<&str> {
        match self {
            RealiseError::Config(e) => e.component.as_deref(),
            RealiseError::Source(e) => Some(&e.component),
            RealiseError::Unsatisfiable(p) => p.first().map(|p| p.component.as_str()),
            RealiseError::Downgrade(d) => d.first().map(|d| d.component.as_str()),
            RealiseError::Advisories(a) => a.first().map(|(c, _)| c.as_str()),
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

fn source_change_text(changes: &[crate::changes::Change]) -> String {
    let lines: Vec<String> = changes.iter().map(ToString::to_string).collect();
    format!(
        "the plan moves {} to another source: {}",
        if changes.len() == 1 {
            "a plugin"
        } else {
            "plugins"
        },
        lines.join("; ")
    )
}
