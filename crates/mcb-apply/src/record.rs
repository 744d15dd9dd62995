//! What `apply` did with a generation on a site, recorded on the generation's commit: a git
//! note under [`APPLY_NOTES`] (JSON, versioned), written after each apply and read by the
//! next (a generation whose apply failed is not retried by `reconcile --apply` until
//! something changes). It holds steps, times and Moodle's messages; never a password or
//! a backup's path.

use std::collections::HashMap;

use mcb_git::GitStore;
use mcb_store::GitOid;
use serde::{Deserialize, Serialize};

use crate::error::ApplyError;

/// The notes ref apply results are recorded under.
pub const APPLY_NOTES: &str = "refs/notes/mcb-apply";

/// The format this mcb writes.
pub const APPLY_NOTE_FORMAT: u32 = 1;

/// How an apply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApplyOutcome {
    /// The site runs the generation and its health check passed.
    Applied,
    /// The rehearsal failed: the live site was not touched.
    RehearsalFailed,
    /// A step on the live site failed: code and database were put back.
    RolledBack,
    /// A step failed and putting the site back failed too: it needs a person.
    RollbackFailed,
}

impl ApplyOutcome {
    pub fn word(self) -> &'static str {
        match self {
            ApplyOutcome::Applied => "applied",
            ApplyOutcome::RehearsalFailed => "rehearsal failed",
            ApplyOutcome::RolledBack => "rolled back",
            ApplyOutcome::RollbackFailed => "ROLLBACK FAILED",
        }
    }
}

/// One step as it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepDone {
    pub step: String,
    pub passed: bool,
    pub seconds: f64,
    /// What it did, or Moodle's message when it failed.
    pub detail: String,
}

/// The record of an apply on a generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplyNote {
    pub format: u32,
    pub site: String,
    pub outcome: ApplyOutcome,
    pub steps: Vec<StepDone>,
}

/// Records `note` on `commit`, replacing an earlier one.
pub fn record(git: &GitStore, commit: &GitOid, note: &ApplyNote) -> Result<(), ApplyError> {
    let text = serde_json::to_string_pretty(note).expect("an apply note serialises");
    git.set_note(APPLY_NOTES, commit, &text)
        .map_err(|e| ApplyError::Run(e.into()))
}

/// Every recorded apply, by commit (notes that are not mcb's are left out).
pub fn recorded(git: &GitStore) -> Result<HashMap<GitOid, ApplyNote>, ApplyError> {
    Ok(git
        .notes(APPLY_NOTES)
        .map_err(|e| ApplyError::Run(e.into()))?
        .into_iter()
        .filter_map(|(c, text)| {
            let n: ApplyNote = serde_json::from_str(&text).ok()?;
            (n.format == APPLY_NOTE_FORMAT).then_some((c, n))
        })
        .collect())
}
