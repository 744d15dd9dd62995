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
    let subs = cache_at(opts, to, "push to")?;
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
    let mut locks = Vec::new();
    for (site, head) in &chosen {
        for (commit, _) in git.recent_generations(head, keep)? {
            if let Some(lock) = crate::stage::commit::lock_in_commit(&git, &commit)? {
                let used = lock_manifests(&lock);
                // A generation whose packages are not all here cannot be published whole.
                if used.iter().all(|m| store.has_manifest(m)) {
                    locks.push((
                        site.clone(),
                        lock_key(&lock),
                        lock.tree.clone(),
                        used.clone(),
                    ));
                }
                manifests.extend(used.into_iter().filter(|m| store.has_manifest(m)));
            }
        }
    }
    let manifests: Vec<ManifestHash> = manifests.into_iter().collect();
    let mut pushed = subs.push(&store, &manifests, key)?;
    // Oldest first, so the newest record of a site is written last.
    for (site, lock, tree, used) in locks.into_iter().rev() {
        let packages = used.iter().map(|m| m.to_string()).collect();
        if subs.push_lock(&lock, &site, tree.as_str(), packages, key)? {
            pushed.locks += 1;
        }
    }
    Ok(CachePushed {
        cache: subs.caches().next().unwrap_or_default().to_string(),
        sites: chosen.into_iter().map(|(s, _)| s).collect(),
        pushed,
        key: key.name.clone(),
    })
}

/// The name of a lock in a binary cache: the blake3 of its text.
pub(crate) fn lock_key(lock: &mcb_config::Lock) -> String {
    blake3::hash(lock.to_text().as_bytes()).to_hex().to_string()
}

/// Removes from `to` (else the first configured cache) what no lock record published
/// within `keep` (or a site's newest) names, once older than `grace`.
pub fn cache_gc(
    opts: &RunOptions,
    to: Option<&str>,
    keep: std::time::Duration,
    grace: std::time::Duration,
    dry_run: bool,
) -> Result<mcb_substitute::CacheGc, RealiseError> {
    let subs = cache_at(opts, to, "collect")?;
    Ok(subs.collect_garbage(keep, grace, dry_run)?)
}

/// The cache a command works on: `to`, else the first configured one. It is reached
/// whatever `--offline` says of upstreams; `doing` says what for, when there is none.
fn cache_at(
    opts: &RunOptions,
    to: Option<&str>,
    doing: &str,
) -> Result<mcb_substitute::Substitutes, RealiseError> {
    let mut with_to = opts.clone();
    if let Some(url) = to {
        with_to.substituters = vec![url.to_string()];
    }
    with_to.offline = false;
    Ok(with_to.substitutes(&opts.store)?.ok_or_else(|| {
        mcb_substitute::SubstituteError::BadUrl {
            url: String::new(),
            why: format!("no cache to {doing}: give --to URL, MCB_SUBSTITUTERS, or substituters in the store's config.ron"),
        }
    })?)
}

/// Before a site with a lock is realised: every package of the lock this store lacks,
/// taken at once through the whole generation's record in a binary cache (the packages
/// then enter the store one by one from these files, with no further download). Said, and
/// a refusal warned of; nothing is lost when no cache has it.
pub(crate) fn prefetch_generation(
    ctx: &crate::context::RunContext,
    lock: &mcb_config::Lock,
    reporter: &dyn crate::report::Reporter,
) {
    let Some(subs) = &ctx.substitutes else {
        return;
    };
    let wanted: Vec<ManifestHash> = lock_manifests(lock)
        .into_iter()
        .filter(|m| !ctx.store.has_manifest(m))
        .collect();
    if wanted.is_empty() {
        return;
    }
    let short = &lock.tree.as_str()[..12];
    let moved = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let label = format!("generation {short} from the binary cache");
    reporter.transfer(&label, moved.clone());
    let (got, refused) = subs.prefetch(
        &ctx.store,
        &lock_key(lock),
        lock.tree.as_str(),
        &wanted,
        &moved,
    );
    for e in refused {
        reporter.warn(&format!(
            "generation {short}: {e}; its packages are asked for one by one"
        ));
    }
    if let Some(p) = got {
        reporter.substituted(
            &format!(
                "generation {short} ({} package{})",
                p.packages,
                if p.packages == 1 { "" } else { "s" }
            ),
            &p.cache,
            p.objects,
            p.bytes,
        );
    }
}
