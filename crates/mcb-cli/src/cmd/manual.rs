//! `mcb completions` and `mcb man`: the command line's own shape, for shells and `man`.

use crate::cli::CompletionsArgs;
use crate::error::{CliError, Exit};

pub fn completions(a: &CompletionsArgs) -> Result<Exit, CliError> {
    use clap::CommandFactory;
    let mut cmd = crate::cli::Cli::command();
    clap_complete::generate(a.shell, &mut cmd, "mcb", &mut std::io::stdout());
    Ok(Exit::Success)
}

pub fn man() -> Result<Exit, CliError> {
    use clap::CommandFactory;
    let cmd = crate::cli::Cli::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .map_err(|e| CliError::failure("cannot render the manual page".into(), e))?;
    use std::io::Write;
    std::io::stdout()
        .write_all(&out)
        .map_err(|e| CliError::failure("cannot write the manual page".into(), e))?;
    Ok(Exit::Success)
}
