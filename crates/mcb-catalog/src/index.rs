//! The plugin indexes of a site, each loaded on first use: a site with no plugin from an
//! index never asks for its list, and one run asks each at most once. A site may name
//! several (a local mirror first, the public directory after): they are asked in order,
//! and one that cannot be read is passed over for the next.

use std::sync::{Arc, OnceLock};

use mcb_store::Store;

use crate::CatalogError;
use crate::directory::{CachePolicy, PluginIndex, PluginRecord, Pluglist};
use crate::http::Http;
use crate::sources::{SourceError, SourceFailure};

pub struct LazyIndex<'a> {
    /// The indexes, in the order they are asked.
    pub locations: Vec<String>,
    http: &'a Http,
    cache: Option<&'a Store>,
    policy: CachePolicy,
    lists: Vec<OnceLock<Result<Pluglist, Arc<CatalogError>>>>,
}

/// What one index says of a component.
pub struct IndexAnswer<'i> {
    pub location: &'i str,
    /// The component's record (`None`: the index does not list it), or why the index
    /// could not be read.
    pub record: Result<Option<&'i PluginRecord>, SourceError>,
}

impl<'a> LazyIndex<'a> {
    /// The index at `location` (a URL or a local file), cached in `cache` when there is one.
    pub fn new(
        location: String,
        http: &'a Http,
        cache: Option<&'a Store>,
        policy: CachePolicy,
    ) -> Self {
        Self::many(vec![location], http, cache, policy)
    }

    /// The indexes at `locations`, asked in that order.
    pub fn many(
        locations: Vec<String>,
        http: &'a Http,
        cache: Option<&'a Store>,
        policy: CachePolicy,
    ) -> Self {
        LazyIndex {
            lists: locations.iter().map(|_| OnceLock::new()).collect(),
            locations,
            http,
            cache,
            policy,
        }
    }

    fn load(&self, i: usize, component: &str) -> Result<&Pluglist, SourceError> {
        let location = &self.locations[i];
        let loaded = self.lists[i].get_or_init(|| {
            Pluglist::load(self.http, self.cache, location, self.policy).map_err(Arc::new)
        });
        match loaded {
            Ok(l) => Ok(l),
            Err(e) => {
                // --offline helps only when this store has a copy of the list.
                let cached = !self.http.is_offline()
                    && self.cache.is_some_and(|s| {
                        s.cache()
                            .index_list(location, self.http.limits().body_bytes)
                            .is_some()
                    });
                let hint = if cached {
                    "check the directory URL (site file `directory:` or MCB_DIRECTORY), or work offline with the copy of the list this store has"
                } else {
                    "check the directory URL (site file `directory:` or MCB_DIRECTORY)"
                };
                Err(SourceError::new(
                    component,
                    SourceFailure::Unavailable,
                    format!("cannot read the plugin index {location}"),
                )
                .because(e.clone())
                .hint(hint))
            }
        }
    }

    /// What index `i` says of `component` (loading it if this is the first question).
    pub fn answer(&self, i: usize, component: &str) -> IndexAnswer<'_> {
        IndexAnswer {
            location: &self.locations[i],
            record: self.load(i, component).map(|l| l.lookup(component)),
        }
    }

    /// What every index says of `component`, in order.
    pub fn answers(&self, component: &str) -> Vec<IndexAnswer<'_>> {
        (0..self.locations.len())
            .map(|i| self.answer(i, component))
            .collect()
    }

    /// The first index that lists `component`; else the first that could be read (to
    /// say it does not list it); else why the first could not be read.
    pub fn get(&self, component: &str) -> Result<&dyn PluginIndex, SourceError> {
        let mut first_read: Option<&Pluglist> = None;
        let mut first_error: Option<SourceError> = None;
        for i in 0..self.locations.len() {
            match self.load(i, component) {
                Ok(l) if l.lookup(component).is_some() => return Ok(l),
                Ok(l) => {
                    first_read.get_or_insert(l);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match (first_read, first_error) {
            (Some(l), _) => Ok(l),
            (None, Some(e)) => Err(e),
            (None, None) => Err(SourceError::new(
                component,
                SourceFailure::Unavailable,
                "no plugin index is configured",
            )),
        }
    }
}
