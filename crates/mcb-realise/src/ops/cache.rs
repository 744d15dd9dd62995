//! `mcb cache push`: the packages a store's sites use, published to a binary cache with a
//! signed record each, for other stores (CI runners, build hosts) to take instead of
//! fetching from upstream.

use std::collections::BTreeSet;

use mcb_store::{ManifestHash, Store};

use crate::error::RealiseError;
use crate::ops::maintain::lock_manifests;
use crate::options::RunOptions;

/// What was pushed where.
#[derive(Debug, Clone)]
pub struct CachePushed {
    /// The cache, as shown (no credentials).
    pub cache: String,
    pub sites: Vec<String>,
    pub pushed: mcb_substitute::Pushed,
    /// The name of the key the records are signed with.
    pub key: String,
}

/// Pushes what the newest `keep` generations of `sites` (every site of the store when
/// empty) use to `to` (else the first configured cache), signed with `key`.
pub fn cache_push(
    opts: &RunOptions,
    sites: &[String],
    keep: usize,
    to: Option<&str>,
    key: &mcb_substitute::SigningKey,
) -> Result<CachePushed, RealiseError> {
    let store = Store::open_existing(&opts.store)?;
    // gc waits while the packages are read.
    let _lock = store.lock(mcb_store::LockMode::Shared, || {})?;
    let git = mcb_catalog::sources::open_git(&store)?;
    let mut with_to = opts.clone();
    if let Some(url) = to {
        with_to.substituters = vec![url.to_string()];
    }
    // Pushing reaches the cache whatever `--offline` says of upstreams.
    with_to.offline = false;
    let subs = with_to.substitutes(store.root())?.ok_or_else(|| {
        mcb_substitute::SubstituteError::BadUrl {
            url: String::new(),
            why: "no cache to push to: give --to URL, MCB_SUBSTITUTERS, or substituters in the store's config.ron".into(),
        }
    })?;
    let branches = git.site_branches()?;
    let chosen: Vec<(String, mcb_store::GitOid)> = if sites.is_empty() {
        branches
    } else {
        let mut out = Vec::new();
        for s in sites {
            let Some(b) = branches.iter().find(|(name, _)| name == s) else {
                return Err(RealiseError::Usage {
                    message: format!("the store has no site '{}'", s.escape_debug()),
                    about: crate::error::Named::Site,
                });
            };
            out.push(b.clone());
        }
        out
    };
    let mut manifests: BTreeSet<ManifestHash> = BTreeSet::new();
    for (_, head) in &chosen {
        for (commit, _) in git.recent_generations(head, keep)? {
            if let Some(lock) = crate::stage::commit::lock_in_commit(&git, &commit)? {
                manifests.extend(
                    lock_manifests(&lock)
                        .into_iter()
                        .filter(|m| store.has_manifest(m)),
                );
            }
        }
    }
    let manifests: Vec<ManifestHash> = manifests.into_iter().collect();
    let pushed = subs.push(&store, &manifests, key)?;
    Ok(CachePushed {
        cache: subs.caches().next().unwrap_or_default().to_string(),
        sites: chosen.into_iter().map(|(s, _)| s).collect(),
        pushed,
        key: key.name.clone(),
    })
}
