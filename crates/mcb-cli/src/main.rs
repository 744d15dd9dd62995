//! The `mcb` command line: parses flags, dispatches to one module per command, and turns
//! what the command returns into output and an exit code. Everything else lives in the
//! library crates.

mod cli;
mod cmd;
mod complete;
mod error;
mod examples;
mod json;
mod progress;
mod saved_plan;
mod site_file;
mod term;

use std::process::ExitCode;

use clap::FromArgMatches;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    // A shell asking for completions (`COMPLETE=bash mcb …`) is answered and nothing runs.
    clap_complete::CompleteEnv::with_factory(examples::command).complete();
    let matches = match examples::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => return ExitCode::from(error::usage(e) as u8),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => return ExitCode::from(error::usage(e) as u8),
    };
    let g = &cli.global;
    term::set_color(g.color);
    site_file::use_store(g.store());
    if let Some(dir) = &g.chdir
        && let Err(e) = std::env::set_current_dir(dir)
    {
        let e = error::CliError::usage_text(format!("-C {}: {e}", dir.display()));
        e.show(g.json);
        return ExitCode::from(e.exit as u8);
    }
    let result = match &cli.command {
        Command::Realise(a) => cmd::realise::run(g, a),
        Command::Check(a) => cmd::check::run(g, a),
        Command::Gc(a) => cmd::gc::run(g, a),
        Command::Verify(a) => cmd::verify::run(g, a),
        Command::Reproduce(a) => cmd::reproduce::run(g, a),
        Command::Info(a) => cmd::info::run(g, a),
        Command::Plan(a) => cmd::plan::run(g, a),
        Command::Update(a) => cmd::update::run(g, a),
        Command::Outdated(a) => cmd::plan::outdated(g, a),
        Command::Reconcile(a) => cmd::reconcile::run(g, a),
        Command::History(a) => cmd::history::run(g, a),
        Command::Rollback(a) => cmd::history::rollback(g, a),
        Command::Sites(a) => cmd::sites::run(g, a),
        Command::Forget(a) => cmd::sites::forget(g, a),
        Command::Archive(a) => cmd::audit::run(g, a),
        Command::Cache(c) => cmd::cache::run(g, c),
        Command::Init(a) => cmd::edit::init(g, a),
        Command::Add(a) => cmd::edit::add(g, a),
        Command::Remove(a) => cmd::edit::remove(g, a),
        Command::Import(a) => cmd::import::run(g, a),
        Command::Test(a) => cmd::test::run(g, a),
        Command::Push(a) => cmd::push::run(g, a),
        Command::Deploy(a) => cmd::deploy::run(g, a),
        Command::Status(a) => cmd::status::run(g, a),
        Command::Apply(a) => cmd::apply::run(g, a),
        Command::Why(a) => cmd::graph::why(g, a),
        Command::Tree(a) => cmd::graph::tree(g, a),
        Command::Completions(a) => cmd::manual::completions(a),
        Command::Man => cmd::manual::man(),
    };
    let exit = match result {
        Ok(exit) => exit,
        Err(e) => {
            e.show(g.json);
            e.exit
        }
    };
    ExitCode::from(exit as u8)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }

    #[test]
    fn exits_are_the_documented_codes() {
        use crate::error::Exit;
        for (exit, code) in [
            (Exit::Success, 0),
            (Exit::Failure, 1),
            (Exit::Pending, 2),
            (Exit::Config, 3),
            (Exit::Unsatisfiable, 4),
            (Exit::Source, 5),
            (Exit::Integrity, 6),
            (Exit::TestFailed, 7),
            (Exit::Usage, 64),
        ] {
            assert_eq!(exit as u8, code);
            assert!(crate::error::EXIT_CODES.contains(&format!("{code:>4}  ")));
        }
    }
}
