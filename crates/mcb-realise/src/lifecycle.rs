//! Keeping a store trustworthy over years: `gc` (roots are each site's newest generations
//! and every live `result` link), `verify` (objects re-hashed, manifests checked, damage
//! traced to the sites it touches), `verify --tree` (drift in a materialised tree) and
//! `reproduce` (a lock rebuilt in an empty store must give the same tree).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use mcb_config::{Lock, SiteFile};
use mcb_git::{GitStore, SourceFileKind};
use mcb_store::{GcReport, LockMode, Store, VerifyReport};
use rayon::prelude::*;

use crate::error::RealiseError;
use crate::pipeline::{LOCK_MARKER, Options, realise_site};
use crate::report::Reporter;

/// What `gc` did.
#[derive(Debug, Clone)]
pub struct GcOutcome {
    pub store: GcReport,
    /// Bytes git's own collection freed.
    pub git_bytes: u64,
    /// `result` links that are gone, whose roots were dropped.
    pub dead_links: Vec<PathBuf>,
    /// Site → the generations kept for it.
    pub kept: BTreeMap<String, Vec<String>>,
}

/// Collects everything no root reaches. Waits for running realises (it takes the store
/// lock exclusively), so it never removes what a realise is using.
pub fn gc(
    opts: &Options,
    keep: usize,
    grace: Duration,
    dry_run: bool,
    reporter: &dyn Reporter,
) -> Result<GcOutcome, RealiseError> {
    let store = Store::open(&opts.store)?;
    let _lock = store.lock(LockMode::Exclusive, || {
        reporter.warn("waiting for running realises to finish before collecting")
    })?;
    let git = crate::sources::open_git(&store)?;
    let dead_links = store.prune_result_roots(dry_run)?;
    let mut roots = BTreeSet::new();
    let mut kept: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (site, commit) in git.site_branches()? {
        let trees = git.recent_trees(&commit, keep)?;
        roots.extend(trees.iter().cloned());
        kept.insert(site, trees);
    }
    for (link, target) in store.live_result_targets()? {
        if let Some(key) = target.file_name().map(|k| k.to_string_lossy().into_owned()) {
            roots.insert(key.clone());
            kept.entry(format!("result {}", link.display()))
                .or_default()
                .push(key);
        }
    }
    let report = store.collect_garbage(&roots, grace, dry_run)?;
    let git_bytes = git.collect_garbage(grace.as_secs(), dry_run)?;
    Ok(GcOutcome {
        store: report,
        git_bytes,
        dead_links,
        kept,
    })
}

/// What `verify` found, with the sites each damaged object touches.
#[derive(Debug, Clone)]
pub struct VerifyOutcome {
    pub report: VerifyReport,
    /// Damaged object → the sites (and result links) whose codebases contain it.
    pub affected: BTreeMap<String, BTreeSet<String>>,
}

pub fn verify(opts: &Options) -> Result<VerifyOutcome, RealiseError> {
    let store = Store::open(&opts.store)?;
    let _lock = store.lock(LockMode::Shared, || {})?;
    let git = crate::sources::open_git(&store)?;
    let report = store.verify()?;
    let mut affected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    if !report.corrupt.is_empty() {
        // Which sites hold each generation.
        let mut holders: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (site, commit) in git.site_branches()? {
            for tree in git.recent_trees(&commit, usize::MAX)? {
                holders.entry(tree).or_default().insert(site.clone());
            }
        }
        for (link, target) in store.live_result_targets()? {
            if let Some(k) = target.file_name() {
                holders
                    .entry(k.to_string_lossy().into_owned())
                    .or_default()
                    .insert(format!("result {}", link.display()));
            }
        }
        let corrupt: BTreeSet<(String, bool)> = report
            .corrupt
            .iter()
            .map(|(h, x)| (h.0.clone(), *x))
            .collect();
        for key in store.generation_keys()? {
            let Some(uses) = store.generation_uses(&key) else {
                continue;
            };
            for m in uses
                .iter()
                .filter(|m| report.affected_manifests.contains(*m))
            {
                let Ok(manifest) = store.read_manifest(m) else {
                    continue;
                };
                for e in manifest.entries {
                    if corrupt.contains(&(e.blake3.clone(), e.executable())) {
                        let sites = holders.get(&key).cloned().unwrap_or_default();
                        affected.entry(e.blake3.clone()).or_default().extend(sites);
                    }
                }
            }
        }
        for (h, _) in &report.corrupt {
            affected.entry(h.0.clone()).or_default();
        }
    }
    Ok(VerifyOutcome { report, affected })
}

/// How a materialised tree differs from the generation it was made as.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TreeDrift {
    pub generation: String,
    pub modified: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

impl TreeDrift {
    pub fn is_clean(&self) -> bool {
        self.modified.is_empty() && self.added.is_empty() && self.removed.is_empty()
    }
}

pub fn verify_tree(opts: &Options, dir: &Path) -> Result<TreeDrift, RealiseError> {
    let store = Store::open(&opts.store)?;
    let git = crate::sources::open_git(&store)?;
    let real = std::fs::canonicalize(dir).map_err(|e| {
        RealiseError::source("verify", format!("cannot read {}: {e}", dir.display()))
    })?;
    let key = real
        .strip_prefix(store.generations_dir())
        .ok()
        .and_then(|rest| rest.components().next())
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .ok_or_else(|| {
            RealiseError::source(
                "verify",
                format!(
                    "{} is not a generation of the store {}",
                    dir.display(),
                    store.root().display()
                ),
            )
            .with_hint("pass a `result` link or a directory under <store>/generations/")
        })?;
    let expected: BTreeMap<String, (SourceFileKind, String)> = git
        .tree_files(&key)?
        .into_iter()
        .map(|(p, k, oid)| (p, (k, oid)))
        .collect();
    let root = store.generation_path(&key);
    let on_disk: Vec<PathBuf> = walkdir::WalkDir::new(&root)
        .into_iter()
        .flatten()
        .filter(|e| !e.file_type().is_dir())
        .map(|e| e.path().to_path_buf())
        .collect();
    let seen: Vec<(String, SourceFileKind, String)> = on_disk
        .par_iter()
        .filter_map(|p| {
            let rel = p.strip_prefix(&root).ok()?.to_string_lossy().into_owned();
            let meta = std::fs::symlink_metadata(p).ok()?;
            let (kind, bytes) = if meta.file_type().is_symlink() {
                (
                    SourceFileKind::Symlink,
                    std::fs::read_link(p)
                        .ok()?
                        .to_string_lossy()
                        .into_owned()
                        .into_bytes(),
                )
            } else {
                use std::os::unix::fs::PermissionsExt;
                let kind = if meta.permissions().mode() & 0o111 != 0 {
                    SourceFileKind::Exec
                } else {
                    SourceFileKind::File
                };
                (kind, std::fs::read(p).ok()?)
            };
            Some((rel, kind, GitStore::blob_id(&bytes)))
        })
        .collect();
    let mut drift = TreeDrift {
        generation: key,
        ..Default::default()
    };
    let mut present = BTreeSet::new();
    for (rel, kind, oid) in seen {
        match expected.get(&rel) {
            None => drift.added.push(rel.clone()),
            Some((k, o)) if *k != kind || *o != oid => drift.modified.push(rel.clone()),
            Some(_) => {}
        }
        present.insert(rel);
    }
    drift.removed = expected
        .keys()
        .filter(|p| !present.contains(*p))
        .cloned()
        .collect();
    drift.modified.sort();
    drift.added.sort();
    Ok(drift)
}

/// What rebuilding a lock in an empty store gave.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Reproduction {
    pub site: String,
    pub expected_tree: String,
    pub tree: String,
    /// Sources whose content differs from the lock: (component, locked, rebuilt manifest).
    pub differing: Vec<(String, String, String)>,
}

impl Reproduction {
    pub fn same(&self) -> bool {
        self.expected_tree == self.tree && self.differing.is_empty()
    }
}

/// Rebuilds `target` (a lock file, or a commit of a site branch) from its origins in an
/// empty temporary store and compares tree ids, and each source's manifest.
pub fn reproduce(
    opts: &Options,
    target: &str,
    reporter: &dyn Reporter,
) -> Result<Reproduction, RealiseError> {
    let as_path = Path::new(target);
    let (lock, site): (Lock, SiteFile) = if as_path.is_file() {
        let lock = Lock::load(as_path)?.expect("the file exists");
        let site_path = std::path::absolute(as_path.with_extension("ron"))
            .unwrap_or_else(|_| as_path.with_extension("ron"));
        let site = lock.site_file(&site_path)?;
        (lock, site)
    } else {
        let store = Store::open(&opts.store)?;
        let git = crate::sources::open_git(&store)?;
        let commit = git.expand_commit(target)?.ok_or_else(|| {
            RealiseError::source(
                "reproduce",
                format!("'{target}' is neither a lock file nor a commit of this store"),
            )
        })?;
        let message = git.commit_message(&commit)?;
        let text = message
            .split_once(LOCK_MARKER)
            .map(|(_, l)| l)
            .ok_or_else(|| {
                RealiseError::source(
                    "reproduce",
                    format!("commit {commit} is not a site commit made by mcb"),
                )
            })?;
        let label = PathBuf::from(format!("commit {commit}"));
        let lock = Lock::parse(&label, text)?;
        let cwd = std::env::current_dir().unwrap_or_default();
        let site = lock.site_file(&cwd.join("site.ron"))?;
        (lock, site)
    };
    let temp = tempfile::tempdir().map_err(|e| {
        RealiseError::source("reproduce", format!("cannot make a temporary store: {e}"))
    })?;
    let mut o = opts.clone();
    o.store = temp.path().join("store");
    o.out = Some(temp.path().join("result"));
    o.offline = false;
    let (realised, rebuilt) = realise_site(&site, Some(lock.clone()), &o, reporter, false)?;
    let mut differing = Vec::new();
    if rebuilt.moodle.manifest != lock.moodle.manifest {
        differing.push((
            "moodle".into(),
            lock.moodle.manifest.clone(),
            rebuilt.moodle.manifest.clone(),
        ));
    }
    for p in &lock.plugins {
        match rebuilt.plugin(&p.component) {
            Some(r) if r.manifest == p.manifest => {}
            Some(r) => {
                differing.push((p.component.clone(), p.manifest.clone(), r.manifest.clone()))
            }
            None => differing.push((p.component.clone(), p.manifest.clone(), String::new())),
        }
    }
    Ok(Reproduction {
        site: lock.site.clone(),
        expected_tree: lock.tree.clone(),
        tree: realised.tree,
        differing,
    })
}
