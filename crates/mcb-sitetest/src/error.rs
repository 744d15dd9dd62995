//! Why a test could not run (a failed test is a report, not an error).

use mcb_realise::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum TestError {
    /// The site, its store or its generations.
    #[error(transparent)]
    Run(#[from] mcb_realise::RealiseError),
    /// What a test needs from the machine is not there (php, its extensions).
    #[error("{message}")]
    Environment {
        message: String,
        /// What to install.
        hint: Option<String>,
    },
    /// PostgreSQL could not be started or reached.
    #[error(transparent)]
    Database(#[from] mcb_database::DbError),
    /// A file of the test's own could not be written or read.
    #[error("{message}")]
    Filesystem {
        message: String,
        #[source]
        source: std::io::Error,
    },
    /// `--upgrade-from` names no generation of the site and no dump file.
    #[error("{from} is neither a generation on the site's branch nor a dump file")]
    NoSuchStart { from: String },
    /// The site has no generation to test.
    #[error("site {site} has no generation to test")]
    NothingToTest { site: String },
    /// Stopped by SIGINT or SIGTERM; what was temporary is removed.
    #[error("interrupted; everything temporary was removed")]
    Interrupted,
}

impl TestError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            TestError::Run(e) => e.kind(),
            TestError::NoSuchStart { .. } | TestError::NothingToTest { .. } => ErrorKind::Usage,
            TestError::Environment { .. }
            | TestError::Database(_)
            | TestError::Filesystem { .. }
            | TestError::Interrupted => ErrorKind::Failure,
        }
    }

    /// What to try, when there is something to say that names nothing of a command line.
    pub fn hint(&self) -> Option<&str> {
        match self {
            TestError::Run(e) => e.hint(),
            TestError::Environment { hint, .. } => hint.as_deref(),
            TestError::Database(e) => e.hint.as_deref(),
            _ => None,
        }
    }
}

impl From<mcb_store::StoreError> for TestError {
    fn from(e: mcb_store::StoreError) -> TestError {
        TestError::Run(e.into())
    }
}

impl From<mcb_git::GitError> for TestError {
    fn from(e: mcb_git::GitError) -> TestError {
        TestError::Run(e.into())
    }
}

impl From<mcb_config::ConfigError> for TestError {
    fn from(e: mcb_config::ConfigError) -> TestError {
        TestError::Run(e.into())
    }
}
