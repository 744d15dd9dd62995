//! `mcb completions` and `mcb man`: the command line's own shape, for shells and `man`.

use crate::cli::CompletionsArgs;
use crate::error::{CliError, Exit};

/// The script a shell sources to complete mcb: it asks mcb itself at each TAB, so the
/// values (sites, components) are those of the moment.
pub fn completions(a: &CompletionsArgs) -> Result<Exit, CliError> {
    let script = crate::complete::registration(&a.shell.to_string())
        .map_err(|e| CliError::failure("cannot write the completion script".into(), e))?;
    use std::io::Write;
    std::io::stdout()
        .write_all(script.as_bytes())
        .map_err(|e| CliError::failure("cannot write the completion script".into(), e))?;
    Ok(Exit::Success)
}

/// Text as roff reads it: backslashes doubled, a leading dot or quote escaped.
fn roff_text(text: &str) -> String {
    let t = text.replace('\\', "\\e").replace('-', "\\-");
    if t.starts_with('.') || t.starts_with('\'') {
        format!("\\&{t}")
    } else {
        t
    }
}

/// One page for the whole command line: every command is a section of it (usage, options,
/// examples), so nothing points to pages that do not exist; then the exit codes and the
/// environment.
pub fn man() -> Result<Exit, CliError> {
    let mut cmd = crate::examples::command();
    cmd.build();
    let page = clap_mangen::Man::new(cmd.clone());
    let mut out = Vec::new();
    let render = |out: &mut Vec<u8>| -> std::io::Result<()> {
        use std::io::Write;
        page.render_title(out)?;
        page.render_name_section(out)?;
        page.render_synopsis_section(out)?;
        page.render_description_section(out)?;
        page.render_options_section(out)?;
        writeln!(out, ".SH COMMANDS")?;
        for sub in cmd.get_subcommands().filter(|c| !c.is_hide_set()) {
            let mut sub = sub.clone();
            let usage = sub.render_usage().to_string();
            let usage = usage.trim_start_matches("Usage: ");
            writeln!(out, ".SS \\fB{}\\fR", roff_text(usage))?;
            if let Some(about) = sub.get_about() {
                writeln!(out, "{}", roff_text(&about.to_string()))?;
            }
            for arg in sub
                .get_arguments()
                .filter(|a| !a.is_hide_set() && !a.is_global_set())
            {
                let name = match (arg.get_short(), arg.get_long()) {
                    (_, Some(l)) => format!("\\-\\-{}", roff_text(l)),
                    (Some(c), None) => format!("\\-{c}"),
                    (None, None) => arg
                        .get_value_names()
                        .map(|v| {
                            v.iter()
                                .map(|v| v.to_string())
                                .collect::<Vec<_>>()
                                .join(" ")
                        })
                        .unwrap_or_else(|| arg.get_id().to_string()),
                };
                if name == "\\-\\-help" {
                    continue;
                }
                writeln!(out, ".TP\n\\fB{name}\\fR")?;
                if let Some(help) = arg.get_help() {
                    writeln!(out, "{}", roff_text(&help.to_string()))?;
                }
            }
            if let Some(examples) = crate::examples::section(sub.get_name()) {
                writeln!(out, ".PP\n.nf")?;
                for line in examples.lines() {
                    writeln!(out, "{}", roff_text(line))?;
                }
                writeln!(out, ".fi")?;
            }
        }
        page.render_extra_section(out)?;
        writeln!(out, ".SH ENVIRONMENT")?;
        for (name, what) in crate::examples::ENVIRONMENT {
            writeln!(out, ".TP\n\\fB{name}\\fR\n{}", roff_text(what))?;
        }
        page.render_version_section(out)?;
        Ok(())
    };
    render(&mut out).map_err(|e| CliError::failure("cannot render the manual page".into(), e))?;
    use std::io::Write;
    std::io::stdout()
        .write_all(&out)
        .map_err(|e| CliError::failure("cannot write the manual page".into(), e))?;
    Ok(Exit::Success)
}
