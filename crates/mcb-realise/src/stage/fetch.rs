//! The fetch stage: every source of a plan in the store, their manifests recorded after
//! one sync. Git commits are ingested here, two at a time.

use mcb_catalog::{StoredSource, StoredVendor};
use mcb_config::LockedVendor;

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
    /// Core's `vendor/`, when core has Composer build it.
    pub vendor: Option<StoredVendor>,
}

impl Fetched {
    /// Every source, core first.
    pub fn all(&self) -> impl Iterator<Item = &StoredSource> {
        std::iter::once(&self.core).chain(&self.plugins)
    }

    /// The manifest of every package in the codebase: the sources and core's `vendor/`.
    pub fn manifests(&self) -> impl Iterator<Item = &mcb_store::ManifestHash> {
        self.all()
            .map(|s| &s.hash)
            .chain(self.vendor.iter().map(|v| &v.hash))
    }
}

/// Brings every source of `plan` into the store and records their manifests, then core's
/// `vendor/` (`locked` is the site lock's, reused when it fits).
pub fn fetch(
    catalog: &SiteCatalog,
    plan: &Plan<SourcePick>,
    locked: Option<&LockedVendor>,
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
    let mut fetched = Fetched {
        core,
        plugins: plugins.into_iter().collect::<Result<_, _>>()?,
        vendor: None,
    };
    // New packages pass the site's scanner (when it names one) before any is recorded.
    let named: Vec<(&str, &StoredSource)> = std::iter::once(("moodle", &fetched.core))
        .chain(
            plan.plugins
                .iter()
                .map(|p| p.component.as_str())
                .zip(&fetched.plugins),
        )
        .collect();
    catalog.sources.scan_new(&named)?;
    let batch: Vec<&StoredSource> = fetched.all().collect();
    catalog.sources.record(&batch)?;
    for (p, s) in plan.plugins.iter().zip(&fetched.plugins) {
        check_libraries(catalog, p.component.as_str(), s)?;
    }
    fetched.vendor = catalog.sources.vendor(&fetched.core, locked)?;
    if let Some(v) = fetched.vendor.as_ref().filter(|v| v.built) {
        reporter.stage(
            Stage::Fetch,
            &format!(
                "moodle vendor/: {} package{} installed by Composer {}",
                v.locked.packages.len(),
                if v.locked.packages.len() == 1 {
                    ""
                } else {
                    "s"
                },
                v.locked.composer
            ),
        );
    }
    Ok(fetched)
}

/// A plugin whose composer.json requires third-party libraries it does not ship is
/// refused: core's `vendor/` is built from core's composer.lock alone, and without them the
/// plugin fails when Moodle loads it.
fn check_libraries(
    catalog: &SiteCatalog,
    component: &str,
    source: &StoredSource,
) -> Result<(), RealiseError> {
    let Some(json) = catalog.sources.read(component, source, "composer.json")? else {
        return Ok(());
    };
    let unmet = mcb_catalog::vendor::unmet_plugin_requirements(
        &json,
        source.manifest.entries.iter().map(|e| e.path.as_str()),
    );
    if unmet.is_empty() {
        return Ok(());
    }
    Err(mcb_catalog::SourceError::new(
        component,
        mcb_catalog::SourceFailure::Refused,
        format!(
            "its composer.json requires third-party {} {} and it ships no vendor/ of its own; mcb builds core's vendor/ from core's composer.lock alone, so nothing would install {}",
            if unmet.len() == 1 { "package" } else { "packages" },
            unmet.join(", "),
            if unmet.len() == 1 { "it" } else { "them" }
        ),
    )
    .hint("take a release of the plugin that bundles its libraries (as the plugins directory's zips do), or a fork that does")
    .into())
}
