//! `reproduce`: a lock (or the lock a site commit carries) rebuilt from its origins in an
//! empty store — plan, fetch, compose — and compared: the tree id, and each source's
//! manifest. Nothing is published, and nothing is materialised: the tree id decides.

use std::path::Path;

use mcb_config::{Lock, SiteFile};
use mcb_store::{GitOid, ManifestHash, Store};

use crate::context::RunContext;
use crate::error::RealiseError;
use crate::options::RunOptions;
use crate::report::{Reporter, Stage};
use crate::stage::catalog::SiteCatalog;
use crate::stage::commit::lock_in_commit;
use crate::stage::compose::compose;
use crate::stage::fetch::fetch;
use crate::stage::plan::plan;

/// What rebuilding a lock in an empty store gave.
#[derive(Debug, Clone)]
pub struct Reproduction {
    pub site: String,
    pub expected_tree: GitOid,
    pub tree: GitOid,
    /// Sources whose content differs from the lock: (component, locked, rebuilt manifest).
    pub differing: Vec<(String, ManifestHash, Option<ManifestHash>)>,
}

impl Reproduction {
    pub fn same(&self) -> bool {
        self.expected_tree == self.tree && self.differing.is_empty()
    }
}

/// The lock and site file `target` names: a lock file, or a commit of a site branch.
fn target_lock(opts: &RunOptions, target: &str) -> Result<(Lock, SiteFile), RealiseError> {
    let as_path = Path::new(target);
    if as_path.is_file() {
        let lock = Lock::load(as_path)?.expect("the file exists");
        let site_path = std::path::absolute(as_path.with_extension("ron"))
            .unwrap_or_else(|_| as_path.with_extension("ron"));
        let site = lock.site_file(&site_path)?;
        return Ok((lock, site));
    }
    let store = Store::open_existing(&opts.store)?;
    let git = mcb_catalog::sources::open_git(&store)?;
    let heads: Vec<GitOid> = git.site_branches()?.into_iter().map(|(_, c)| c).collect();
    let prefix = target.to_ascii_lowercase();
    let found = if (4..=40).contains(&prefix.len()) && prefix.bytes().all(|b| b.is_ascii_hexdigit())
    {
        git.find_from(&heads, &prefix)?
    } else {
        None
    };
    let commit = found.ok_or_else(|| {
        RealiseError::source(
            "reproduce",
            format!(
                "'{target}' is neither a lock file nor a commit of a site branch of this store"
            ),
        )
    })?;
    let lock = lock_in_commit(&git, &commit)?.ok_or_else(|| {
        RealiseError::source(
            "reproduce",
            format!("commit {commit} is not a site commit made by mcb"),
        )
    })?;
    let cwd = std::env::current_dir().unwrap_or_default();
    let site = lock.site_file(&cwd.join("site.ron"))?;
    Ok((lock, site))
}

/// Rebuilds `target` from its origins in an empty temporary store and compares.
pub fn reproduce(
    opts: &RunOptions,
    target: &str,
    reporter: &dyn Reporter,
) -> Result<Reproduction, RealiseError> {
    let (lock, site) = target_lock(opts, target)?;
    // The empty store goes inside the real one when there is one (its filesystem, and its
    // removal does not hold up the answer); else in the system's temporary directory.
    let home = Store::open_existing(&opts.store).ok();
    let staged = home.as_ref().and_then(|s| s.staging("reproduce-").ok());
    let temp = match staged {
        Some(t) => t,
        None => tempfile::tempdir().map_err(|e| RealiseError::Filesystem {
            message: "cannot make a temporary store".into(),
            source: e,
        })?,
    };
    let mut o = opts.clone();
    o.store = temp.path().join("store");
    o.offline = false;
    let result = rebuild(&o, &lock, &site, reporter);
    match &home {
        Some(store) if temp.path().starts_with(store.root()) => store.discard(temp),
        _ => drop(temp),
    }
    result
}

/// Plan, fetch and compose `lock` in the empty store of `o`, and compare.
fn rebuild(
    o: &RunOptions,
    lock: &Lock,
    site: &SiteFile,
    reporter: &dyn Reporter,
) -> Result<Reproduction, RealiseError> {
    let ctx = RunContext::open(o, Some(site), reporter)?;
    let sources = ctx.sources(site.dir(), reporter);
    let index = ctx.index();
    let catalog = SiteCatalog::new(&sources, &index).with_composer(&site.composer_repositories);
    catalog.prefetch(site, Some(lock), reporter);
    reporter.stage(Stage::Plan, &site.name);
    let plan = plan(&catalog, site, Some(lock))?;
    let fetched = fetch(&catalog, &plan, lock.vendor.as_ref(), reporter)?;
    reporter.stage(Stage::Compose, &site.name);
    let links = sources.links(&site.links)?;
    let tree = compose(&ctx.git, &plan, &fetched, links.as_ref())?;
    let mut differing = Vec::new();
    if fetched.core.hash != lock.moodle.manifest {
        differing.push((
            "moodle".into(),
            lock.moodle.manifest.clone(),
            Some(fetched.core.hash.clone()),
        ));
    }
    let vendor = fetched.vendor.as_ref().map(|v| v.hash.clone());
    // A vendor/ the lock does not have shows in the tree.
    if let Some(v) = &lock.vendor
        && vendor.as_ref() != Some(&v.manifest)
    {
        differing.push(("vendor/".into(), v.manifest.clone(), vendor));
    }
    for p in &lock.plugins {
        let rebuilt = plan
            .plugins
            .iter()
            .zip(&fetched.plugins)
            .find(|(planned, _)| planned.component.as_str() == p.component)
            .map(|(_, s)| s.hash.clone());
        if rebuilt.as_ref() != Some(&p.manifest) {
            differing.push((p.component.clone(), p.manifest.clone(), rebuilt));
        }
    }
    Ok(Reproduction {
        site: lock.site.clone(),
        expected_tree: lock.tree.clone(),
        tree,
        differing,
    })
}
