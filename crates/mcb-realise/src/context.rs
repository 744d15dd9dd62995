//! What every stage of a run works in: the store (under its shared lock), the site's own
//! lock, the store's git repository and the HTTP client. Sources and the plugin index
//! borrow from it.

use mcb_catalog::{Http, LazyIndex, Sources};
use mcb_config::SiteFile;
use mcb_git::GitStore;
use mcb_store::{LockMode, Store, StoreLock};

use crate::error::RealiseError;
use crate::options::RunOptions;
use crate::report::Reporter;

pub struct RunContext {
    pub store: Store,
    pub git: GitStore,
    pub http: Http,
    /// The site's plugin indexes, in the order they are asked.
    pub directories: Vec<String>,
    pub run: RunOptions,
    /// The binary caches locked packages are taken from before upstream.
    pub substitutes: Option<mcb_substitute::Substitutes>,
    _store_lock: StoreLock,
    _site_lock: Option<StoreLock>,
}

impl RunContext {
    /// Opens the store for writing under its shared lock and, when `site` is given, takes
    /// that site's exclusive lock: one run per site at a time, a second waits.
    pub fn open(
        opts: &RunOptions,
        site: Option<&SiteFile>,
        reporter: &dyn Reporter,
    ) -> Result<RunContext, RealiseError> {
        let directories = opts.directories_for(site);
        Self::open_named(opts, site.map(|s| s.name.as_str()), directories, reporter)
    }

    /// As [`RunContext::open`], for a site known by its name only.
    pub fn open_named(
        opts: &RunOptions,
        site: Option<&str>,
        directories: Vec<String>,
        reporter: &dyn Reporter,
    ) -> Result<RunContext, RealiseError> {
        let store = Store::open(&opts.store)?;
        let store_lock = store.lock(LockMode::Shared, || {
            reporter.warn("waiting for the store lock: `mcb gc` is running on this store")
        })?;
        let site_lock = match site {
            Some(s) => Some(
                store.lock_named(&format!("site-{s}"), LockMode::Exclusive, || {
                    reporter.warn(&format!("waiting: another mcb is realising site {s}"))
                })?,
            ),
            None => None,
        };
        let git = mcb_catalog::sources::open_git(&store)?;
        if let Some(s) = site {
            // Under the site lock, a ref lock file on the site's branch is a killed run's.
            git.clear_stale_ref_locks(&format!("heads/{s}"));
            git.clear_stale_packed_refs_lock(std::time::Duration::from_secs(10));
        }
        let http = opts.http(&directories);
        let substitutes = opts.substitutes(store.root())?;
        Ok(RunContext {
            store,
            git,
            http,
            directories,
            run: opts.clone(),
            substitutes,
            _store_lock: store_lock,
            _site_lock: site_lock,
        })
    }

    /// The sources of a site whose file is in `site_dir`; `reporter` watches transfers.
    pub fn sources<'a>(
        &'a self,
        site_dir: &std::path::Path,
        reporter: &'a dyn Reporter,
    ) -> Sources<'a> {
        let sources = Sources::new(
            &self.store,
            &self.git,
            &self.http,
            site_dir,
            self.run.limits,
            self.run.cache_policy(),
            reporter,
        )
        .with_substitutes(self.substitutes.as_ref());
        if self.run.token.is_some() {
            let api = self.run.marketplace_api.clone();
            let mut hosts = vec![crate::options::MARKETPLACE_HOST.to_string()];
            hosts.push(mcb_catalog::http::host_of(&api));
            sources.with_marketplace(api, hosts)
        } else {
            sources
        }
    }

    /// The site's plugin index, loaded on first use.
    pub fn index(&self) -> LazyIndex<'_> {
        LazyIndex::many(
            self.directories.clone(),
            &self.http,
            Some(&self.store),
            self.run.cache_policy(),
        )
    }
}
