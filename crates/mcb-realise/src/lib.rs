//! The pipeline from a site file to a codebase, as stages with typed outputs, and the
//! operations built on them.
//!
//! Stages (`stage`): plan (site file + lock + catalogs → [`Plan`]) → fetch (sources into
//! the store) → compose (the git tree) → commit (the lock and its commit object) →
//! materialise (the generation) → publish (branch, lock and `result` moved together).
//! Operations (`ops`), each a module with its own options where it has any: `realise`
//! (and the lock alone), `preview` (plan, outdated), `reproduce`, `generations` (history,
//! rollback, sites, forget), `maintain` (gc, verify), `readiness` (check, info), `import`,
//! `edit` (a site-file edit, planned, undone when its plan fails). A stage never calls an
//! operation; an operation calls stages and, where one is built on another, operations.
//!
//! It orders the work and keeps its promises (a failed run changes neither the lock, the
//! branch nor the `result` link), reports progress through [`Reporter`], and never
//! prints. The test runner and deploy are crates of their own above it.

mod changes;
mod context;
mod error;
pub mod host;
pub mod ops;
mod options;
mod pool;
mod report;
pub mod served_note;
pub mod stage;
pub mod test_note;

pub use changes::{Change, Downgrade, Held, Snapshot};
pub use context::RunContext;
pub use error::{ErrorKind, Named, RealiseError};
pub use ops::audit::{ArchivedSource, AuditOptions, Audited, Held as ArchiveHeld, archive};
pub use ops::cache::{CachePushed, cache_gc, cache_push};
pub use ops::edit::{EditError, NewConfigPhp, SiteEdit, edit, init, pin_to_lock};
pub use ops::generations::RollbackOptions;
pub use ops::generations::{
    Forgotten, Generation, RolledBack, SiteRef, SiteSummary, forget, history, rollback, sites,
};
pub use ops::graph::{DependencyGraph, GraphNode};
pub use ops::import::{Imported, ImportedPiece, Recognised, import};
pub use ops::maintain::{
    DamagedPath, GcOptions, GcOutcome, TreeDrift, TreeOf, VerifyOutcome, gc, verify, verify_tree,
};
pub use ops::preview::{AdvisoryHit, Pending, PlannedChoice, pending};
pub use ops::readiness::{
    MatrixCell, MatrixRow, PluginReadiness, Readiness, ReadinessMatrix, ReleaseReadiness,
    SourceVersion, UpgradeCheck, check_upgrade, plugin_info, readiness_matrix, source_offers,
};
pub use ops::realise::{
    LockResolved, RealiseOptions, Realised, RealisedPlugin, link_path, realise, realise_unserved,
    resolve_lock,
};
pub use ops::reproduce::{Reproduction, reproduce};
pub use options::RunOptions;
pub use report::{Reporter, Silent, Stage};
pub use stage::catalog::{SiteCatalog, SourcePick};
pub use stage::commit::{Committed, LOCK_MARKER, lock_in_commit};
pub use stage::fetch::Fetched;
pub use stage::plan::{Catalog, Plan, PlannedCore, PlannedPlugin, Update, plan};
pub use test_note::{TEST_NOTES, TestNote, TestOutcome};
