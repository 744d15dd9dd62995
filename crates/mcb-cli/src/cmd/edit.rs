//! `mcb init`, `mcb add` and `mcb remove`: the site file edited as text (comments and
//! layout kept), then planned. An edit whose plan fails is undone.

use std::path::Path;

use mcb_config::edit::{NewSource, add_plugin, remove_plugin, starter};

use crate::cli::{AddArgs, GlobalArgs, InitArgs, NetArgs, PlanArgs, RemoveArgs};
use crate::error::{CliError, Exit};
use crate::term::say;

fn io_error(what: String, e: std::io::Error) -> CliError {
    CliError::failure(what, e)
}

/// Replaces `path` with `text` in one rename.
fn write(path: &Path, text: &str) -> Result<(), CliError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.mcb-{}", std::process::id()));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io_error(format!("cannot write {}", path.display()), e)
        })
}

fn read(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path)
        .map_err(|e| io_error(format!("cannot read {}", path.display()), e))
}

pub fn init(g: &GlobalArgs, a: &InitArgs) -> Result<Exit, CliError> {
    if a.site.exists() {
        return Err(CliError::usage_text(format!(
            "{} exists already; mcb init writes a new site file only",
            a.site.display()
        )));
    }
    let name = match &a.name {
        Some(n) => n.clone(),
        None => {
            let file = std::path::absolute(&a.site).unwrap_or_else(|_| a.site.clone());
            super::site_name_from(file.parent())
        }
    };
    let text = starter(&name, &a.moodle.to_string());
    mcb_config::SiteFile::parse(&a.site, &text)?;
    // A new site's directory is made with its file.
    if let Some(dir) = a.site.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| io_error(format!("cannot make {}", dir.display()), e))?;
    }
    write(&a.site, &text)?;
    if !g.quiet && !g.json {
        say!(
            "wrote {} (site {name}, Moodle {})",
            a.site.display(),
            a.moodle
        );
    }
    Ok(Exit::Success)
}

/// Writes `new` over the site file, plans, and puts `old` back when the plan fails.
fn edit_then_plan(
    g: &GlobalArgs,
    site: &Path,
    old: &str,
    new: &str,
    net: &NetArgs,
    said: String,
) -> Result<Exit, CliError> {
    write(site, new)?;
    if !g.quiet && !g.json {
        say!("{said}");
    }
    let plan = PlanArgs {
        site: site.to_path_buf(),
        net: net.clone(),
    };
    match super::plan::run(g, &plan) {
        Ok(_) => Ok(Exit::Success),
        Err(mut e) => {
            write(site, old)?;
            e.hints.push(format!(
                "the edit is undone: {} is as it was",
                site.display()
            ));
            Err(e)
        }
    }
}

pub fn add(g: &GlobalArgs, a: &AddArgs) -> Result<Exit, CliError> {
    let old = read(&a.site)?;
    let source = match (&a.git, &a.zip, &a.path) {
        _ if a.composer.is_some() => NewSource::Composer {
            package: a.composer.clone().unwrap_or_default(),
        },
        (Some(url), _, _) => NewSource::Git {
            url: url.clone(),
            reference: a.reference.clone(),
        },
        (_, Some(z), _) => NewSource::Zip {
            location: z.clone(),
        },
        (_, _, Some(p)) => NewSource::Path { dir: p.clone() },
        _ => NewSource::Directory,
    };
    let new = add_plugin(&a.site, &old, &a.component, &source, a.version.as_deref())?;
    edit_then_plan(
        g,
        &a.site,
        &old,
        &new,
        &a.net,
        format!("added {} to {}", a.component, a.site.display()),
    )
}

pub fn remove(g: &GlobalArgs, a: &RemoveArgs) -> Result<Exit, CliError> {
    let old = read(&a.site)?;
    let new = remove_plugin(&a.site, &old, &a.component)?;
    edit_then_plan(
        g,
        &a.site,
        &old,
        &new,
        &a.net,
        format!("removed {} from {}", a.component, a.site.display()),
    )
}
