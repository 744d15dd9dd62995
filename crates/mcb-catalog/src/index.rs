//! A plugin index loaded on first use: a site with no plugin from an index never asks for
//! its list, and one run asks at most once.

use std::sync::{Arc, OnceLock};

use mcb_store::Store;

use crate::CatalogError;
use crate::directory::{CachePolicy, PluginIndex, Pluglist};
use crate::http::Http;
use crate::sources::{SourceError, SourceFailure};

pub struct LazyIndex<'a> {
    pub location: String,
    http: &'a Http,
    cache: Option<&'a Store>,
    policy: CachePolicy,
    list: OnceLock<Result<Pluglist, Arc<CatalogError>>>,
}

impl<'a> LazyIndex<'a> {
    /// The index at `location` (a URL or a local file), cached in `cache` when there is one.
    pub fn new(
        location: String,
        http: &'a Http,
        cache: Option<&'a Store>,
        policy: CachePolicy,
    ) -> Self {
        LazyIndex {
            location,
            http,
            cache,
            policy,
            list: OnceLock::new(),
        }
    }

    /// The index, loading it the first time. `component` is what needs it, for messages.
    pub fn get(&self, component: &str) -> Result<&dyn PluginIndex, SourceError> {
        let loaded = self.list.get_or_init(|| {
            Pluglist::load(self.http, self.cache, &self.location, self.policy).map_err(Arc::new)
        });
        match loaded {
            Ok(l) => Ok(l),
            Err(e) => {
                // --offline helps only when this store has a copy of the list.
                let cached = !self.http.is_offline()
                    && self.cache.is_some_and(|s| {
                        s.cache()
                            .index_list(&self.location, self.http.limits().body_bytes)
                            .is_some()
                    });
                let hint = if cached {
                    "check the directory URL (site file `directory:` or MCB_DIRECTORY), or pass --offline to use the copy of the list this store has"
                } else {
                    "check the directory URL (site file `directory:` or MCB_DIRECTORY)"
                };
                Err(SourceError::new(
                    component,
                    SourceFailure::Unavailable,
                    format!("cannot read the plugin index {}", self.location),
                )
                .because(e.clone())
                .hint(hint))
            }
        }
    }
}
