//! `mcb import`.

use crate::cli::{GlobalArgs, ImportArgs};
use crate::error::{CliError, Exit};

pub fn run(_g: &GlobalArgs, _a: &ImportArgs) -> Result<Exit, CliError> {
    Ok(Exit::Success)
}
