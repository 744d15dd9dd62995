use std::fmt;

/// A git operation that failed, with what mcb was doing at the time.
#[derive(Debug)]
pub struct GitError {
    pub context: String,
    pub source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl GitError {
    pub fn new(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> GitError {
        GitError {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    pub fn msg(context: impl Into<String>) -> GitError {
        GitError {
            context: context.into(),
            source: None,
        }
    }
}

impl fmt::Display for GitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // What mcb was doing; the cause is `source()`.
        f.write_str(&self.context)
    }
}

impl std::error::Error for GitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

pub(crate) trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, GitError>;
}

impl<T, E> Context<T> for Result<T, E>
where
    E: Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
{
    fn context(self, what: impl FnOnce() -> String) -> Result<T, GitError> {
        self.map_err(|e| GitError::new(what(), e))
    }
}
