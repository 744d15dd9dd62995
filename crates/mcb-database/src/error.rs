//! Why a database could not be used: one error for every engine, said with what to try.

use mcb_exec::ExecError;

/// Why a database server could not be started, reached or used.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DbError {
    pub message: String,
    pub hint: Option<String>,
}

pub(crate) fn db_error(message: impl Into<String>) -> DbError {
    DbError {
        message: message.into(),
        hint: None,
    }
}

impl From<ExecError> for DbError {
    fn from(e: ExecError) -> DbError {
        db_error(e.to_string())
    }
}
