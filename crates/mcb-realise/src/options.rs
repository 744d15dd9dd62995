//! How a run reaches its store and the world: the store, the network's policy and limits,
//! the Marketplace token and the hosts it may go to. What an operation does besides is in
//! its own options.

use std::path::PathBuf;

use mcb_catalog::{CachePolicy, Http, Limits};
use mcb_config::SiteFile;

/// The Moodle Marketplace's host.
pub const MARKETPLACE_HOST: &str = "marketplace.moodle.com";

/// The Marketplace API.
pub const DEFAULT_MARKETPLACE_API: &str = "https://marketplace.moodle.com/api";

/// How a run reaches its store and the world: the same for every operation.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub store: PathBuf,
    /// Use only the store and cached metadata.
    pub offline: bool,
    /// The plugins directory to use whatever the site file says (`MCB_DIRECTORY`).
    pub directory: Option<String>,
    /// Revalidate cached metadata (the directory list, upstream refs) whatever its age.
    pub refresh: bool,
    /// A bearer token for the Marketplace (`MCB_MARKETPLACE_TOKEN`).
    pub token: Option<String>,
    /// The hosts the token goes to (`MCB_MARKETPLACE_HOSTS`); default: the Marketplace's
    /// and the directory list's.
    pub token_hosts: Option<Vec<String>>,
    /// The Marketplace API's base URL (`MCB_MARKETPLACE_API`).
    pub marketplace_api: String,
    /// Moodle's own git upstream, asked for a release no site source holds
    /// (`MCB_MOODLE_GIT`).
    pub moodle_git: String,
    /// Bounds on sizes and network time (`MCB_LIMITS`).
    pub limits: Limits,
    /// Binary caches (`MCB_SUBSTITUTERS`); when empty, the store's `config.ron` says.
    pub substituters: Vec<String>,
    /// Keys a cache's records must be signed by (`MCB_TRUSTED_KEYS`); when empty, the
    /// store's `config.ron` says.
    pub trusted_keys: Vec<String>,
}

impl RunOptions {
    pub fn new(store: PathBuf) -> RunOptions {
        RunOptions {
            store,
            offline: false,
            directory: None,
            refresh: false,
            token: None,
            token_hosts: None,
            marketplace_api: DEFAULT_MARKETPLACE_API.to_string(),
            moodle_git: mcb_config::DEFAULT_MOODLE_GIT.to_string(),
            limits: Limits::default(),
            substituters: Vec::new(),
            trusted_keys: Vec::new(),
        }
    }

    /// The binary caches a run reads from, with the keys it trusts: these options over the
    /// store's `config.ron`; `None` when there is none. Offline, only caches on this
    /// machine are read.
    pub fn substitutes(
        &self,
        store: &std::path::Path,
    ) -> Result<Option<mcb_substitute::Substitutes>, crate::RealiseError> {
        let config = mcb_config::StoreConfig::load(store)?;
        let urls = if self.substituters.is_empty() {
            config.substituters
        } else {
            self.substituters.clone()
        };
        if urls.is_empty() {
            return Ok(None);
        }
        let keys = if self.trusted_keys.is_empty() {
            config.trusted_keys
        } else {
            self.trusted_keys.clone()
        };
        let trusted = keys
            .iter()
            .map(|k| mcb_substitute::TrustedKey::parse(k))
            .collect::<Result<Vec<_>, _>>()?;
        let limits = mcb_substitute::CacheLimits {
            timeout: self.limits.http.idle,
            ..Default::default()
        };
        let subs = mcb_substitute::Substitutes::new(
            &urls,
            trusted,
            limits,
            self.limits.source.file_bytes,
        )?;
        Ok(Some(if self.offline {
            subs.local_only()
        } else {
            subs
        }))
    }

    /// The plugin indexes a site uses, in order: the override, else the site file's, else
    /// the public directory.
    pub fn directories_for(&self, site: Option<&SiteFile>) -> Vec<String> {
        if let Some(d) = &self.directory {
            return vec![d.clone()];
        }
        match site {
            Some(s) if !s.directories.is_empty() => s.directories.clone(),
            _ => vec![mcb_catalog::DEFAULT_DIRECTORY.to_string()],
        }
    }

    /// The hosts the token goes to: those named, else the Marketplace's (site and API)
    /// and the directory list's.
    pub fn token_hosts(&self, directories: &[String]) -> Vec<String> {
        if let Some(h) = &self.token_hosts {
            return h.clone();
        }
        let mut hosts = vec![MARKETPLACE_HOST.to_string()];
        for url in directories
            .iter()
            .map(String::as_str)
            .chain([self.marketplace_api.as_str()])
        {
            let h = mcb_catalog::http::host_of(url);
            if !h.is_empty() && !hosts.contains(&h) {
                hosts.push(h);
            }
        }
        hosts
    }

    /// The HTTP client of a run, its token scoped to the token's hosts.
    pub(crate) fn http(&self, directories: &[String]) -> Http {
        let http = Http::new(self.offline, self.limits.http);
        match &self.token {
            Some(t) => http.with_token(self.token_hosts(directories), t.clone()),
            None => http,
        }
    }

    pub(crate) fn cache_policy(&self) -> CachePolicy {
        CachePolicy {
            refresh: self.refresh,
            ..Default::default()
        }
    }
}
