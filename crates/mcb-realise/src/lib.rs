//! The pipeline from a site file to a codebase, as explicit stages with typed outputs:
//! plan (site file + lock + catalogs → [`Plan`]) → fetch (sources into the store) →
//! compose (the git tree) → commit (the lock and its commit object) → materialise (the
//! generation) → publish (branch, lock and `result` moved together). `realise` is their
//! composition; `reproduce` composes plan, fetch and compose; `gc`, `verify`, `check` and
//! `info` keep a store and answer questions about sites.
//!
//! It orders the work and keeps its promises (a failed run changes neither the lock, the
//! branch nor the `result` link), and reports progress through [`Reporter`]; it never
//! prints.

mod catalog;
mod changes;
mod commit;
mod compose;
mod context;
mod deploy;
mod error;
mod fetch;
mod generations;
mod import;
mod lifecycle;
mod materialise;
mod options;
mod pending;
mod plan;
mod postgres;
mod publish;
mod realise;
mod report;
mod reproduce;
mod site_test;
mod test_note;
mod upgrade;

pub use catalog::{SiteCatalog, SourcePick};
pub use changes::{Change, Downgrade, Held, Snapshot};
pub use commit::{Committed, LOCK_MARKER, lock_in_commit, source_label};
pub use deploy::{
    DeployRequest, DeploySource, Deployed, KEEP_RELEASES, Pushed, deploy, push, rollback_deploy,
};
pub use error::RealiseError;
pub use fetch::Fetched;
pub use generations::{
    Forgotten, Generation, RollbackTarget, RolledBack, SiteRef, SiteSummary, forget, history,
    rollback, sites,
};
pub use import::{Imported, ImportedPiece, Recognised, import};
pub use lifecycle::{
    DamagedPath, GcOutcome, TreeDrift, TreeOf, VerifyOutcome, gc, verify, verify_tree,
};
pub use options::{Options, Update};
pub use pending::{AdvisoryHit, Pending, PlannedChoice, pending};
pub use plan::{Catalog, Plan, PlannedCore, PlannedPlugin, plan};
pub use realise::{Realised, RealisedPlugin, realise};
pub use report::{Reporter, Silent, Stage};
pub use reproduce::{Reproduction, reproduce};
pub use site_test::{MoodleFailure, StepResult, TestPlan, TestReport, reap_abandoned, test_site};
pub use test_note::{TEST_NOTES, TestNote, TestOutcome};
pub use upgrade::{
    MatrixCell, MatrixRow, PluginReadiness, Readiness, ReadinessMatrix, UpgradeCheck,
    check_upgrade, plugin_info, readiness_matrix,
};
