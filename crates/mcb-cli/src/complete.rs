//! Shell completion from the command line's own definition (clap's completion engine, run
//! by the shell through `COMPLETE=SHELL mcb`), with values only mcb knows: the components
//! of the site file and its lock, the sites of the store. Hidden flags are never offered.

use std::ffi::OsStr;

use clap_complete::CompletionCandidate;

/// Names starting with what was typed.
fn starting_with(
    current: &OsStr,
    names: impl IntoIterator<Item = String>,
) -> Vec<CompletionCandidate> {
    let typed = current.to_string_lossy();
    let mut names: Vec<String> = names
        .into_iter()
        .filter(|n| n.starts_with(typed.as_ref()))
        .collect();
    names.sort();
    names.dedup();
    names.into_iter().map(CompletionCandidate::new).collect()
}

/// The components of the nearest site file and of its lock.
pub(crate) fn components(current: &OsStr) -> Vec<CompletionCandidate> {
    let Ok(file) = crate::site_file::locate(None) else {
        return Vec::new();
    };
    let Ok(site) = mcb_config::SiteFile::load(&file) else {
        return Vec::new();
    };
    let mut names: Vec<String> = site
        .plugins
        .iter()
        .map(|p| p.component.as_str().to_string())
        .collect();
    if let Ok(Some(lock)) = mcb_config::Lock::load(&site.lock_path()) {
        names.extend(lock.plugins.into_iter().map(|p| p.component));
    }
    starting_with(current, names)
}

/// The sites of the store (MCB_STORE or the default), and the site files here.
pub(crate) fn sites(current: &OsStr) -> Vec<CompletionCandidate> {
    let global = crate::cli::GlobalArgs {
        store: std::env::var_os("MCB_STORE").map(Into::into),
        quiet: false,
        verbose: false,
        chdir: None,
        json: false,
        color: crate::term::ColorWhen::Never,
    };
    let mut names: Vec<String> = mcb_realise::sites(&global.store(), 0)
        .map(|sites| sites.into_iter().map(|s| s.name).collect())
        .unwrap_or_default();
    if let Ok(dir) = std::fs::read_dir(".") {
        names.extend(
            dir.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".ron")),
        );
    }
    starting_with(current, names)
}

/// `mcb completions SHELL`: the script that has the shell ask mcb (as `COMPLETE=SHELL mcb`).
pub(crate) fn registration(shell: &str) -> Result<String, std::io::Error> {
    let shells = clap_complete::env::Shells::builtins();
    let Some(completer) = shells.completer(shell) else {
        return Err(std::io::Error::other(format!("no completion for {shell}")));
    };
    let mut out = Vec::new();
    completer.write_registration("COMPLETE", "mcb", "mcb", "mcb", &mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}
