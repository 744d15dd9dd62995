use mcb_config::ConfigError;
use mcb_resolve::Problem;

/// Why a realise failed. Each variant maps to one documented exit code.
#[derive(Debug, thiserror::Error)]
pub enum RealiseError {
    /// The site file or lock is invalid.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// No set of versions satisfies the site file and Moodle's rules.
    #[error("{}", problems_text(.0))]
    Unsatisfiable(Vec<Problem>),
    /// A source could not be fetched or read.
    #[error("{component}: {message}")]
    Source {
        component: String,
        message: String,
        hint: Option<String>,
    },
    /// Downloaded content does not match the hash it must have.
    #[error("{component}: {message}")]
    Integrity { component: String, message: String },
    /// A local file or directory outside the store could not be used (the lock, the
    /// `result` link, a directory given on the command line).
    #[error("{message}: {source}")]
    Filesystem {
        message: String,
        #[source]
        source: std::io::Error,
    },
    /// The site's name already belongs to another site file.
    #[error("{message}")]
    Owner { message: String, hint: String },
    #[error(transparent)]
    Store(#[from] mcb_store::StoreError),
    #[error(transparent)]
    Git(#[from] mcb_git::GitError),
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
    pub(crate) fn source(component: &str, message: impl ToString) -> RealiseError {
        RealiseError::Source {
            component: component.to_string(),
            message: message.to_string(),
            hint: None,
        }
    }

    pub(crate) fn with_hint(self, h: impl Into<String>) -> RealiseError {
        match self {
            RealiseError::Source {
                component, message, ..
            } => RealiseError::Source {
                component,
                message,
                hint: Some(h.into()),
            },
            other => other,
        }
    }

    /// What to try next, when there is something to say.
    pub fn hint(&self) -> Option<&str> {
        match self {
            RealiseError::Source { hint, .. } => hint.as_deref(),
            RealiseError::Owner { hint, .. } => Some(hint),
            _ => None,
        }
    }
}
