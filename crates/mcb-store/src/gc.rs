//! Garbage collection and verification. The caller says which generations are live (its
//! roots); the store works out what they reach (manifests, objects) and removes the rest,
//! sparing anything younger than a grace period. Run it under the exclusive store lock.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rayon::prelude::*;

use crate::id::{GitOid, ManifestHash, ObjectHash};
use crate::materialise::remove_tree;
use crate::{IoContext, Result, Store};

/// What a collection removed (or, dry, would remove).
#[derive(Debug, Clone, Default)]
pub struct GcReport {
    pub dry_run: bool,
    pub generations: Vec<GitOid>,
    /// Kept generations without a readable record of what they use: every manifest and
    /// object was kept for their sake.
    pub unknown_use: Vec<GitOid>,
    pub manifests: usize,
    pub objects: usize,
    /// Staging leftovers of interrupted runs and stale memos.
    pub leftovers: usize,
    /// Files removed, all kinds together.
    pub files: u64,
    /// Bytes of disk freed.
    pub bytes: u64,
    pub kept_generations: usize,
    pub kept_objects: usize,
    /// What only the grace period kept (younger than it, used by nothing kept): generations,
    /// manifests, objects, and the disk they hold.
    pub spared_generations: usize,
    pub spared_manifests: usize,
    pub spared_objects: usize,
    pub spared_bytes: u64,
}

/// What `verify` found.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    pub objects: usize,
    /// Objects whose content no longer hashes to their name.
    pub corrupt: Vec<(ObjectHash, bool)>,
    pub manifests: usize,
    /// (manifest, object) pairs where the manifest names an object that is not there.
    pub missing: Vec<(ManifestHash, ObjectHash)>,
    /// Manifests that cannot be read or do not match their name.
    pub bad_manifests: Vec<(ManifestHash, String)>,
    /// Manifests that name a corrupt object.
    pub affected_manifests: BTreeSet<ManifestHash>,
    /// (manifest, path, problem) where a manifest pairs an object with a git blob id that
    /// is not the id of the object's content: a manifest that was not made from its files.
    pub mispaired: Vec<(ManifestHash, String, String)>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.corrupt.is_empty()
            && self.missing.is_empty()
            && self.bad_manifests.is_empty()
            && self.mispaired.is_empty()
    }
}

/// What a manifest says of one of its entries: (manifest, path, git blob id).
type Claim = (ManifestHash, String, GitOid);

/// The git blob id of a content: what a manifest entry's `oid` must be.
fn blob_id_of(path: &Path) -> Option<String> {
    use sha1::Digest;
    let bytes = fs::read(path).ok()?;
    let mut h = sha1::Sha1::new();
    h.update(format!("blob {}\0", bytes.len()).as_bytes());
    h.update(&bytes);
    Some(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn age(meta: &fs::Metadata) -> Duration {
    // The later of mtime and ctime: linking an object updates its ctime, so anything a
    // recent run touched counts as young.
    let newest = meta.mtime().max(meta.ctime());
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Duration::from_secs(now.saturating_sub(newest).max(0) as u64)
}

fn disk(meta: &fs::Metadata) -> u64 {
    meta.blocks() * 512
}

impl Store {
    /// Every object in the store: (hash, executable, path).
    pub fn objects(&self) -> Result<Vec<(ObjectHash, bool, PathBuf)>> {
        let mut out = Vec::new();
        for fan in crate::read_dir_sorted(&self.root.join("objects"))? {
            for e in crate::read_dir_sorted(&fan.path())? {
                let name = e.file_name().to_string_lossy().into_owned();
                let (hash, exec) = match name.strip_suffix("-x") {
                    Some(h) => (h, true),
                    None => (name.as_str(), false),
                };
                // Anything else in objects/ is not an object (a stray file): not listed.
                if let Ok(hash) = ObjectHash::parse(hash) {
                    out.push((hash, exec, e.path()));
                }
            }
        }
        Ok(out)
    }

    /// Every manifest in the store.
    pub fn manifest_hashes(&self) -> Result<Vec<ManifestHash>> {
        let mut out = Vec::new();
        for fan in crate::read_dir_sorted(&self.root.join("pkgs"))? {
            for e in crate::read_dir_sorted(&fan.path())? {
                if let Some(Ok(h)) = e
                    .file_name()
                    .to_string_lossy()
                    .strip_suffix(".ron")
                    .map(ManifestHash::parse)
                {
                    out.push(h);
                }
            }
        }
        Ok(out)
    }

    /// Removes everything the generations in `keep` do not reach and that is older than
    /// `grace`: other generations, manifests, objects, staging leftovers and stale memos.
    pub fn collect_garbage(
        &self,
        keep: &BTreeSet<GitOid>,
        grace: Duration,
        dry_run: bool,
    ) -> Result<GcReport> {
        let mut report = GcReport {
            dry_run,
            ..Default::default()
        };
        let gens = self.generations_dir();

        // Live manifests: what kept generations used. A kept generation whose record is
        // missing or damaged has unknown use, and unknown use means keep every manifest.
        let mut live_manifests: HashSet<ManifestHash> = HashSet::new();
        for key in keep {
            match self.generation_uses(key) {
                Some(uses) => live_manifests.extend(uses),
                None if self.generation_path(key).is_dir() => report.unknown_use.push(key.clone()),
                None => {}
            }
        }
        let all_manifests = self.manifest_hashes()?;
        let used_manifests = live_manifests.clone();
        for h in &all_manifests {
            // Young manifests are live too (a run may be about to use them).
            let p = self.manifest_path_of(h);
            let young = fs::metadata(&p).map(|m| age(&m) < grace).unwrap_or(true);
            if young || !report.unknown_use.is_empty() {
                live_manifests.insert(h.clone());
            }
            if young && report.unknown_use.is_empty() && !used_manifests.contains(h) {
                report.spared_manifests += 1;
            }
        }
        // Objects only young manifests hold are spared by the grace period too.
        let mut used_objects: HashSet<(ObjectHash, bool)> = HashSet::new();
        for h in &used_manifests {
            if let Ok(m) = self.read_manifest(h) {
                for e in m.entries {
                    let exec = e.executable();
                    used_objects.insert((e.blake3, exec));
                }
            }
        }
        let mut live_objects: HashSet<(ObjectHash, bool)> = HashSet::new();
        for h in &live_manifests {
            if let Ok(m) = self.read_manifest(h) {
                for e in m.entries {
                    let exec = e.executable();
                    live_objects.insert((e.blake3, exec));
                }
            }
        }

        // Generations.
        for key in self.generation_keys()? {
            let path = self.generation_path(&key);
            if keep.contains(&key) {
                report.kept_generations += 1;
                continue;
            }
            let meta = fs::symlink_metadata(&path).at(&path)?;
            if age(&meta) < grace {
                report.kept_generations += 1;
                report.spared_generations += 1;
                report.spared_bytes += generation_cost(&path).1;
                continue;
            }
            let (files, bytes) = generation_cost(&path);
            report.files += files;
            report.bytes += bytes;
            report.generations.push(key.clone());
            if !dry_run {
                self.remove_generation(&key)?;
                let _ = fs::remove_file(gens.join(format!("{key}.uses")));
            }
        }
        // Records of generations that are no longer laid out (a realise retired their
        // trees) and are not kept: the generation goes with its record. Staging
        // directories of interrupted runs.
        for e in crate::read_dir_sorted(&gens)? {
            let name = e.file_name().to_string_lossy().into_owned();
            let unlaid = name
                .strip_suffix(".uses")
                .and_then(|k| GitOid::parse(k).ok())
                .filter(|k| !keep.contains(k) && !gens.join(k.as_str()).is_dir());
            if let Some(key) = unlaid {
                let path = e.path();
                let meta = fs::symlink_metadata(&path).at(&path)?;
                if age(&meta) < grace {
                    report.kept_generations += 1;
                    report.spared_generations += 1;
                    continue;
                }
                report.files += 1;
                report.bytes += disk(&meta);
                report.generations.push(key);
                if !dry_run {
                    fs::remove_file(&path).at(&path)?;
                }
            } else if name.starts_with(".staging-") {
                remove_leftover(&e.path(), grace, dry_run, &mut report)?;
            }
        }

        // Manifests.
        for h in &all_manifests {
            if live_manifests.contains(h) {
                continue;
            }
            let p = self.manifest_path_of(h);
            let Ok(meta) = fs::metadata(&p) else { continue };
            report.manifests += 1;
            report.files += 1;
            report.bytes += disk(&meta);
            if !dry_run {
                fs::remove_file(&p).at(&p)?;
            }
        }

        // Objects.
        for (hash, exec, path) in self.objects()? {
            let used = used_objects.contains(&(hash.clone(), exec));
            if live_objects.contains(&(hash.clone(), exec)) {
                report.kept_objects += 1;
                if !used
                    && report.unknown_use.is_empty()
                    && let Ok(meta) = fs::symlink_metadata(&path)
                {
                    report.spared_objects += 1;
                    report.spared_bytes += disk(&meta);
                }
                continue;
            }
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            if age(&meta) < grace {
                report.kept_objects += 1;
                report.spared_objects += 1;
                report.spared_bytes += disk(&meta);
                continue;
            }
            report.objects += 1;
            report.files += 1;
            report.bytes += disk(&meta);
            if !dry_run {
                fs::remove_file(&path).at(&path)?;
            }
        }

        // Staging files of interrupted runs, and memos naming removed manifests.
        for e in crate::read_dir_sorted(&self.root.join("tmp"))? {
            remove_leftover(&e.path(), grace, dry_run, &mut report)?;
        }
        report.leftovers += self.cache().prune(dry_run)?;
        Ok(report)
    }

    /// Re-hashes every object (in parallel) and checks that every manifest names only
    /// objects that are present.
    pub fn verify(&self) -> Result<VerifyReport> {
        let objects = self.objects()?;
        let corrupt: Vec<(ObjectHash, bool)> = objects
            .par_iter()
            .filter(|(hash, _, path)| !self.check_object(path, hash).unwrap_or(false))
            .map(|(hash, exec, _)| (hash.clone(), *exec))
            .collect();
        let corrupt_set: BTreeSet<(ObjectHash, bool)> = corrupt.iter().cloned().collect();
        let present: HashSet<(ObjectHash, bool)> =
            objects.iter().map(|(h, x, _)| (h.clone(), *x)).collect();
        let manifests = self.manifest_hashes()?;
        let mut report = VerifyReport {
            objects: objects.len(),
            corrupt,
            manifests: manifests.len(),
            ..Default::default()
        };
        let mut missing: BTreeMap<ManifestHash, Vec<ObjectHash>> = BTreeMap::new();
        // (object, its mode) → the blob id each manifest says it is, to check once each.
        let mut claims: BTreeMap<(ObjectHash, bool), Vec<Claim>> = BTreeMap::new();
        for h in manifests {
            match self.read_manifest(&h) {
                Ok(m) => {
                    for e in m.entries {
                        let key = (e.blake3.clone(), e.executable());
                        if !present.contains(&key) {
                            missing
                                .entry(h.clone())
                                .or_default()
                                .push(e.object().clone());
                        } else if !corrupt_set.contains(&key) {
                            claims.entry(key.clone()).or_default().push((
                                h.clone(),
                                e.path.clone(),
                                e.oid.clone(),
                            ));
                        }
                        if corrupt_set.contains(&key) {
                            report.affected_manifests.insert(h.clone());
                        }
                    }
                }
                Err(e) => report.bad_manifests.push((h, e.to_string())),
            }
        }
        let claims: Vec<_> = claims.into_iter().collect();
        report.mispaired = claims
            .par_iter()
            .flat_map_iter(|((object, exec), said)| {
                let actual = blob_id_of(&self.object_path(object, *exec));
                said.iter()
                    .filter(|(_, _, oid)| actual.as_deref() != Some(oid.as_str()))
                    .map(|(m, path, oid)| {
                        (
                            m.clone(),
                            path.clone(),
                            format!(
                                "it says git blob {oid} for object {object}, whose content is blob {}",
                                actual.as_deref().unwrap_or("(unreadable)")
                            ),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        report.missing = missing
            .into_iter()
            .flat_map(|(m, objs)| objs.into_iter().map(move |o| (m.clone(), o)))
            .collect();
        Ok(report)
    }
}

/// Removes what an interrupted run left (a staging file or directory, a stale record)
/// unless it is younger than `grace`, counting it in `report`.
fn remove_leftover(
    path: &Path,
    grace: Duration,
    dry_run: bool,
    report: &mut GcReport,
) -> Result<()> {
    let meta = fs::symlink_metadata(path).at(path)?;
    if age(&meta) < grace || (meta.is_dir() && crate::lock::dir_held(path)) {
        return Ok(());
    }
    report.leftovers += 1;
    report.files += 1;
    report.bytes += disk(&meta);
    if !dry_run {
        if meta.is_dir() {
            remove_tree(path)?;
        } else {
            let _ = fs::remove_file(path);
        }
    }
    Ok(())
}

/// Files and bytes that removing a generation frees: its directories and the files that
/// are not hardlinks to objects (copies, empty files).
fn generation_cost(path: &Path) -> (u64, u64) {
    let mut files = 0;
    let mut bytes = 0;
    for e in walkdir::WalkDir::new(path).into_iter().flatten() {
        let Ok(m) = e.path().symlink_metadata() else {
            continue;
        };
        files += 1;
        if m.is_dir() || m.nlink() == 1 {
            bytes += disk(&m);
        }
    }
    (files, bytes)
}
