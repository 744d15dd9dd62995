use std::fmt;
use std::path::PathBuf;

/// A problem with a site file or lock, positioned where possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line and column, when the problem has a place in the file.
    pub position: Option<(usize, usize)>,
    /// The component the problem concerns.
    pub component: Option<String>,
    pub message: String,
    /// What to try next.
    pub hint: Option<String>,
}

impl ConfigError {
    pub fn new(file: impl Into<PathBuf>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: file.into(),
            position: None,
            component: None,
            message: message.into(),
            hint: None,
        }
    }

    pub fn at(mut self, position: Option<(usize, usize)>) -> ConfigError {
        self.position = position;
        self
    }

    pub fn component(mut self, c: impl Into<String>) -> ConfigError {
        self.component = Some(c.into());
        self
    }

    pub fn hint(mut self, h: impl Into<String>) -> ConfigError {
        self.hint = Some(h.into());
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.position {
            write!(f, ":{line}:{col}")?;
        }
        write!(f, ": ")?;
        if let Some(c) = &self.component {
            write!(f, "{c}: ")?;
        }
        // The hint is shown apart, by whoever shows the error.
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for ConfigError {}
