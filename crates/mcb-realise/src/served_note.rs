//! When the store made each generation and when it was served: the commit's own date is
//! the newest source's (so the same lock always gives the same commit), so these times are
//! recorded beside it, as a git note under [`SERVED_NOTES`] on the commit (RON, versioned).
//! Written by publish, read by `history`.

use std::collections::HashMap;

use mcb_git::GitStore;
use mcb_store::GitOid;
use serde::{Deserialize, Serialize};

use crate::error::RealiseError;

/// The notes ref the times are recorded under.
pub const SERVED_NOTES: &str = "refs/notes/mcb-served";

/// The most times a generation keeps of when it was served: the newest.
const MAX_SERVED: usize = 20;

/// When a generation was made and served, seconds since the epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenerationTimes {
    pub format: u32,
    /// When this store made the commit.
    pub made: Option<i64>,
    /// Each time a `result` link was switched to it, oldest first.
    pub served: Vec<i64>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Records that `commit` was made (when `made`) and served (when `served`) now.
pub fn record(
    git: &GitStore,
    commit: &GitOid,
    made: bool,
    served: bool,
) -> Result<(), RealiseError> {
    if !made && !served {
        return Ok(());
    }
    let mut times = read(git)?.remove(commit).unwrap_or_default();
    times.format = 1;
    let t = now();
    if made && times.made.is_none() {
        times.made = Some(t);
    }
    if served {
        times.served.push(t);
        let extra = times.served.len().saturating_sub(MAX_SERVED);
        times.served.drain(..extra);
    }
    let text = ron::to_string(&times).expect("plain data");
    git.set_note(SERVED_NOTES, commit, &text)?;
    Ok(())
}

/// The recorded times of every generation, read in one pass; a note that is not one is
/// left out.
pub fn read(git: &GitStore) -> Result<HashMap<GitOid, GenerationTimes>, RealiseError> {
    Ok(git
        .notes(SERVED_NOTES)?
        .into_iter()
        .filter(|(_, text)| text.len() < 64 * 1024)
        .filter_map(|(commit, text)| {
            let t: GenerationTimes = ron::from_str(text.trim()).ok()?;
            (t.format == 1 && t.served.len() <= MAX_SERVED).then_some((commit, t))
        })
        .collect())
}
