//! `push`: a site's branch, its generation tags and its test results to any git remote,
//! with the `git` program (the user's ssh keys and git config apply).

use std::path::Path;

use mcb_realise::TEST_NOTES;
use mcb_store::{GitOid, Store};

use crate::error::{Absent, DeployError};

/// What `push` did.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub site: String,
    pub remote: String,
    pub commit: GitOid,
    /// The remote's branch or tags moved (false: all was there already).
    pub updated: bool,
    /// The generation tags pushed (`SITE/gen-N`, one per commit of the branch), those the
    /// remote had included.
    pub tags: usize,
}

/// Is `summary` (git's words for a rejected ref) git's word for a history the remote has
/// and this store lacks? Any other rejection (a ref the remote could not lock, a hook) is
/// said as git says it.
fn diverged(summary: &str) -> bool {
    [
        "non-fast-forward",
        "fetch first",
        "already exists",
        "stale info",
    ]
    .iter()
    .any(|w| summary.contains(w))
}

/// Pushes site `name`'s branch, its generation tags and its test results from the store
/// at `store` to `remote`. A remote whose branch has commits this one lacks is refused
/// unless `force`.
pub fn push(store: &Path, name: &str, remote: &str, force: bool) -> Result<Pushed, DeployError> {
    mcb_git::program::check_remote(remote)?;
    let store = Store::open_existing(store)?;
    let gs = mcb_catalog::sources::open_git(&store)?;
    let head = gs.branch_head(name)?.ok_or_else(|| DeployError::Unknown {
        message: format!("the store has no site named {name}"),
        about: Absent::Site,
    })?;
    // Tagging writes refs of the site: one writer at a time, as for realise, and a tag lock
    // a killed push left is cleared under that lock.
    let _site_lock = store.lock_named(
        &format!("site-{name}"),
        mcb_store::LockMode::Exclusive,
        || {},
    )?;
    gs.clear_stale_ref_locks(&format!("tags/{name}"));
    let tags = gs.tag_generations(name)?;
    let plus = if force { "+" } else { "" };
    let branch = format!("refs/heads/{name}");
    let mut refspecs = vec![
        format!("{plus}{branch}:{branch}"),
        format!("{plus}refs/tags/{name}/gen-*:refs/tags/{name}/gen-*"),
    ];
    if gs.ref_target(TEST_NOTES)?.is_some() {
        refspecs.push(format!("+{TEST_NOTES}:{TEST_NOTES}"));
    }
    let pushed = gs.push(remote, &refspecs)?;
    if let Some(line) = pushed
        .refs
        .iter()
        .find(|r| r.rejected() && !diverged(&r.summary))
    {
        return Err(DeployError::Refused {
            remote: remote.to_string(),
            reference: line.remote_ref().to_string(),
            summary: line.summary.clone(),
        });
    }
    if let Some(line) = pushed
        .refs
        .iter()
        .find(|r| r.rejected() && r.remote_ref() == branch)
    {
        return Err(DeployError::Diverged {
            remote: remote.to_string(),
            site: name.to_string(),
            summary: line.summary.clone(),
        });
    }
    let tag_prefix = format!("refs/tags/{name}/gen-");
    if let Some(bad) = pushed
        .refs
        .iter()
        .find(|r| r.rejected() && r.remote_ref().starts_with(&tag_prefix))
    {
        return Err(DeployError::TagElsewhere {
            remote: remote.to_string(),
            site: name.to_string(),
            tag: bad
                .remote_ref()
                .trim_start_matches("refs/tags/")
                .to_string(),
        });
    }
    if let Some(why) = pushed.failed {
        return Err(DeployError::Transfer {
            what: format!("cannot push to {remote}"),
            source: mcb_git::GitError::msg(why),
        });
    }
    Ok(Pushed {
        site: name.to_string(),
        remote: remote.to_string(),
        commit: head,
        updated: pushed.refs.iter().any(|r| !r.up_to_date()),
        tags: tags.len(),
    })
}
