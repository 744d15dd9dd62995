//! The compose stage: the codebase's git tree, core's tree with each plugin's tree grafted
//! at its install path, and the same codebase as a list of files for materialising.

use mcb_catalog::StoredLinks;
use mcb_config::{ConfigError, SiteFile};
use mcb_git::{GitStore, Graft};
use mcb_store::{Entry, GitOid};

use crate::error::RealiseError;
use crate::stage::fetch::Fetched;
use crate::stage::plan::Plan;

/// Where core's Composer-built libraries go: beside composer.json, at the codebase's root.
pub const VENDOR_DIR: &str = "vendor";

/// The codebase's tree id: core, the plugins at their install paths, core's `vendor/`, the
/// site's links.
pub fn compose<P>(
    git: &GitStore,
    plan: &Plan<P>,
    fetched: &Fetched,
    links: Option<&StoredLinks>,
) -> Result<GitOid, RealiseError> {
    let vendor = fetched.vendor.iter().map(|v| Graft {
        path: VENDOR_DIR.to_string(),
        tree: v.manifest.tree.clone(),
    });
    let grafts: Vec<Graft> = plan
        .plugins
        .iter()
        .zip(&fetched.plugins)
        .map(|(p, s)| Graft {
            path: p.install_path.clone(),
            tree: s.manifest.tree.clone(),
        })
        .chain(vendor)
        .collect();
    let files = links.map(|l| l.manifest.entries.as_slice()).unwrap_or(&[]);
    Ok(git.compose(&fetched.core.manifest.tree, &grafts, files)?)
}

/// A link adds a file the codebase does not have: one where a file or directory of the
/// codebase is, or inside a file, is refused.
pub fn check_links(
    site: &SiteFile,
    files: &[(String, &Entry)],
    links: &StoredLinks,
) -> Result<(), RealiseError> {
    let under = |dir: &str, path: &str| {
        path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
    };
    for link in &links.manifest.entries {
        let at = link.path.as_str();
        if let Some((taken, _)) = files
            .iter()
            .find(|(p, _)| p == at || under(at, p) || under(p, at))
        {
            return Err(ConfigError::new(
                &site.path,
                format!("link \"{at}\": the codebase already has {taken} there"),
            )
            .hint("links add the site's own files; choose a path the codebase does not use")
            .into());
        }
    }
    Ok(())
}

/// The codebase as files: core, then each plugin at its install path, where a deeper
/// graft replaces whatever the layer around it has at its path (a subplugin inside its
/// parent plugin, any plugin inside core) — exactly as composition edits the git tree,
/// so the materialised tree and the committed tree agree.
pub fn codebase_files<'a, P>(plan: &Plan<P>, fetched: &'a Fetched) -> Vec<(String, &'a Entry)> {
    let grafts: Vec<&str> = plan
        .plugins
        .iter()
        .map(|p| p.install_path.as_str())
        .collect();
    let under = |dir: &str, path: &str| {
        path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
    };
    // Is `file` (a codebase path) inside or on the way to a graft deeper than `base`?
    let replaced = |base: &str, file: &str| {
        grafts.iter().any(|g| {
            (base.is_empty() || under(base, g)) && (file == *g || under(g, file) || under(file, g))
        })
    };
    let mut files: Vec<(String, &Entry)> = fetched
        .core
        .manifest
        .entries
        .iter()
        .filter(|e| !replaced("", &e.path))
        .map(|e| (e.path.clone(), e))
        .collect();
    for (p, s) in plan.plugins.iter().zip(&fetched.plugins) {
        let base = p.install_path.as_str();
        files.extend(
            s.manifest
                .entries
                .iter()
                .map(|e| (format!("{base}/{}", e.path), e))
                .filter(|(path, _)| !replaced(base, path)),
        );
    }
    // Core has no vendor/ when it gets one built, and no plugin installs there.
    if let Some(v) = &fetched.vendor {
        files.extend(
            v.manifest
                .entries
                .iter()
                .map(|e| (format!("{VENDOR_DIR}/{}", e.path), e)),
        );
    }
    files
}
