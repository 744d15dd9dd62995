//! The fetch stage: every source of a plan in the store, their manifests recorded after
//! one sync. Git commits are ingested here, two at a time.

use mcb_catalog::StoredSource;

use crate::error::RealiseError;
use crate::report::{Reporter, Stage};
use crate::stage::catalog::{SiteCatalog, SourcePick};
use crate::stage::plan::{Catalog, Plan};

/// The sources of a plan, in the store.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub core: StoredSource,
    /// In the order of the plan's plugins.
    pub plugins: Vec<StoredSource>,
}

impl Fetched {
    /// Every source, core first.
    pub fn all(&self) -> impl Iterator<Item = &StoredSource> {
        std::iter::once(&self.core).chain(&self.plugins)
    }
}

/// Brings every source of `plan` into the store and records their manifests.
pub fn fetch(
    catalog: &SiteCatalog,
    plan: &Plan<SourcePick>,
    reporter: &dyn Reporter,
) -> Result<Fetched, RealiseError> {
    reporter.stage(
        Stage::Fetch,
        &format!("moodle {}", catalog.describe(&plan.core.pick)),
    );
    let core = catalog.fetch("moodle", &plan.core.pick)?;
    let plugins: Vec<Result<StoredSource, RealiseError>> =
        crate::pool::fetch_pool().install(|| {
            use rayon::prelude::*;
            plan.plugins
                .par_iter()
                .map(|p| {
                    reporter.stage(
                        Stage::Fetch,
                        &format!("{} {}", p.component, catalog.describe(&p.pick)),
                    );
                    catalog.fetch(p.component.as_str(), &p.pick)
                })
                .collect()
        });
    let fetched = Fetched {
        core,
        plugins: plugins.into_iter().collect::<Result<_, _>>()?,
    };
    let batch: Vec<&StoredSource> = fetched.all().collect();
    catalog.sources.record(&batch)?;
    Ok(fetched)
}
