//! `mcb init`, `mcb add` and `mcb remove`: the site file edited (comments and layout
//! kept), then planned; an edit whose plan fails is undone.

use mcb_config::edit::NewSource;
use mcb_realise::SiteEdit;

use crate::cli::{AddArgs, GlobalArgs, InitArgs, NetArgs, RemoveArgs};
use crate::error::{CliError, Exit};
use crate::progress::Progress;
use crate::term::say;

pub fn init(g: &GlobalArgs, a: &InitArgs) -> Result<Exit, CliError> {
    // A release Moodle never made (4.6) is a typo; one newer than mcb's table may be new.
    let known = mcb_moodle::known_releases();
    if !known.contains(&a.moodle) && known.last().is_some_and(|newest| a.moodle < *newest) {
        let names: Vec<String> = known.iter().map(ToString::to_string).collect();
        let mut e = CliError::usage_text(format!("Moodle {} does not exist", a.moodle));
        e.hints.push(format!(
            "Moodle's releases are {}",
            names
                .iter()
                .rev()
                .take(8)
                .rev()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
        return Err(e);
    }
    let name = match &a.name {
        Some(n) => n.clone(),
        None => {
            let file = std::path::absolute(&a.site).unwrap_or_else(|_| a.site.clone());
            super::site_name_from(file.parent())
        }
    };
    let config = a.config_php.as_ref().map(|file| mcb_realise::NewConfigPhp {
        file: file.clone(),
        codebase: a.codebase.clone(),
    });
    mcb_realise::init(&a.site, &name, a.moodle, config.as_ref())?;
    if g.json {
        crate::term::out_json(&serde_json::json!({
            "site_file": a.site,
            "name": name,
            "moodle": a.moodle.to_string(),
            "config_php": a.config_php,
        }));
    } else if !g.quiet {
        say!(
            "wrote {} (site {name}, Moodle {})",
            a.site.display(),
            a.moodle
        );
        if let Some(c) = &a.config_php {
            say!(
                "wrote {}: a config.php template the site links; fill in its database and wwwroot",
                c.display()
            );
        }
    }
    Ok(Exit::Success)
}

fn edit(
    g: &GlobalArgs,
    site: &std::path::Path,
    edit: &SiteEdit,
    net: &NetArgs,
    said: String,
) -> Result<Exit, CliError> {
    let progress = Progress::new(g);
    let result = mcb_realise::edit(site, edit, &net.options(g), &progress);
    progress.finish();
    let pending = result?;
    if !g.quiet && !g.json {
        say!("{said}");
    }
    super::plan::show(g, &pending);
    Ok(Exit::Success)
}

pub fn add(g: &GlobalArgs, a: &AddArgs) -> Result<Exit, CliError> {
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
        _ => return add_entry(g, a, None),
    };
    add_entry(g, a, Some(source))
}

fn add_entry(g: &GlobalArgs, a: &AddArgs, source: Option<NewSource>) -> Result<Exit, CliError> {
    let change = SiteEdit::Add {
        component: a.component.clone(),
        source,
        version: a.version.clone(),
    };
    let site = crate::site_file::locate(a.site.as_deref())?;
    let there = mcb_config::SiteFile::load(&site)
        .map(|s| {
            s.plugins
                .iter()
                .any(|p| p.component.as_str() == a.component)
        })
        .unwrap_or(false);
    let said = if there {
        format!("changed {} in {}", a.component, site.display())
    } else {
        format!("added {} to {}", a.component, site.display())
    };
    edit(g, &site, &change, &a.net, said)
}

pub fn remove(g: &GlobalArgs, a: &RemoveArgs) -> Result<Exit, CliError> {
    let change = SiteEdit::Remove {
        component: a.component.clone(),
    };
    let site = crate::site_file::locate(a.site.as_deref())?;
    let said = format!("removed {} from {}", a.component, site.display());
    edit(g, &site, &change, &a.net, said)
}
