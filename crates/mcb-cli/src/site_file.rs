//! Which site file a command works on, found as cargo finds its manifest: the one named,
//! `site.ron` in a directory named, a site's name (the site file the store records for
//! it), else `site.ron` here or in the nearest parent directory that has one (`-C DIR`
//! moves "here" first).

use std::path::{Path, PathBuf};

use mcb_config::ConfigError;

use crate::error::CliError;

/// The site file's usual name.
pub(crate) const SITE_FILE: &str = "site.ron";

/// The store of this run, where a site's name is looked up.
static STORE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Sets the store names are looked up in (once, from the global options).
pub(crate) fn use_store(store: PathBuf) {
    let _ = STORE.set(store);
}

/// The site file the store records for site `name`, when `name` is a bare name (no path)
/// that is not a file here.
fn owner_of(name: &Path) -> Option<PathBuf> {
    let text = name.to_str()?;
    if name.exists() || reads_as_site(text) {
        return None;
    }
    mcb_store::Store::open_existing(STORE.get()?)
        .ok()?
        .site_owner(text)
        .filter(|f| f.is_file())
}

/// The site file `arg` names (a file, a directory holding `site.ron`, or a site's name),
/// else the nearest `site.ron` from the working directory up.
pub(crate) fn locate(arg: Option<&Path>) -> Result<PathBuf, CliError> {
    match arg {
        Some(p) if p.is_dir() => {
            let file = p.join(SITE_FILE);
            if file.is_file() {
                Ok(file)
            } else {
                Err(ConfigError::new(
                    &file,
                    format!("{} is a directory without a {SITE_FILE}", p.display()),
                )
                .hint(format!(
                    "name the site file itself, or write one with `mcb init {}`",
                    file.display()
                ))
                .into())
            }
        }
        Some(p) => Ok(owner_of(p).unwrap_or_else(|| p.to_path_buf())),
        None => Ok(nearest().unwrap_or_else(|| PathBuf::from(SITE_FILE))),
    }
}

/// `site.ron` in the working directory or the nearest parent that has one: as written
/// (`site.ron`) when it is here, else its full path.
fn nearest() -> Option<PathBuf> {
    if Path::new(SITE_FILE).is_file() {
        return Some(PathBuf::from(SITE_FILE));
    }
    let here = std::env::current_dir().ok()?;
    here.ancestors()
        .skip(1)
        .map(|d| d.join(SITE_FILE))
        .find(|f| f.is_file())
}

/// A site named by its file (or a directory holding `site.ron`) or by its name in the
/// store; the nearest `site.ron` when `arg` is none.
pub(crate) fn site_ref(arg: Option<&str>, store: &Path) -> Result<mcb_realise::SiteRef, CliError> {
    let file = match arg {
        None => locate(None)?,
        Some(a) if Path::new(a).is_dir() || reads_as_site(a) => locate(Some(Path::new(a)))?,
        Some(name) => return Ok(mcb_realise::SiteRef::parse(name, store)?),
    };
    let name = mcb_config::SiteFile::load(&file)?.name;
    Ok(mcb_realise::SiteRef {
        name,
        file: Some(file),
    })
}

/// The site file when `arg` reads as one rather than as a component: it ends in `.ron`,
/// holds a path separator, or is a directory that is not also shaped like a component.
pub(crate) fn reads_as_site(arg: &str) -> bool {
    arg.ends_with(".ron")
        || arg.contains(std::path::MAIN_SEPARATOR)
        || arg == "."
        || arg == ".."
        || (Path::new(arg).is_dir() && mcb_moodle::Component::parse(arg).is_err())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_and_site_files_are_told_apart() {
        for site in ["site.ron", "sites/web.ron", "./web", ".", ".."] {
            assert!(reads_as_site(site), "{site}");
        }
        for component in ["block_xp", "mod_attendance", "core"] {
            assert!(!reads_as_site(component), "{component}");
        }
    }
}
