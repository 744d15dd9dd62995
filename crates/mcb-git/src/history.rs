//! Reading what the store's repository says about sites: their branches, the trees of
//! their recent commits, the files of a tree, and git's own garbage collection.

use std::path::Path;

use mcb_store::{EntryKind, GitOid};

use crate::{Context, GitError, GitStore, git_oid, oid};

impl GitStore {
    /// Every site branch and the commit it points at.
    pub fn site_branches(&self) -> Result<Vec<(String, GitOid)>, GitError> {
        let repo = self.repo();
        let platform = repo
            .references()
            .context(|| "cannot list branches".to_string())?;
        let mut out = Vec::new();
        for r in platform
            .prefixed("refs/heads/")
            .context(|| "cannot list branches".to_string())?
        {
            let mut r = r.map_err(|e| GitError::new("cannot read a branch", e))?;
            let name = r.name().as_bstr().to_string();
            let name = name.trim_start_matches("refs/heads/").to_string();
            if let Ok(id) = r.peel_to_id() {
                out.push((name, git_oid(id.detach())));
            }
        }
        Ok(out)
    }

    /// Walks `commit`'s first parents, newest first, handing each commit, its tree and
    /// time to `visit` until it returns false or the history ends.
    fn walk_first_parents(
        &self,
        commit: &GitOid,
        mut visit: impl FnMut(GitOid, GitOid, i64) -> bool,
    ) -> Result<(), GitError> {
        let repo = self.repo();
        let mut next = Some(oid(commit));
        while let Some(id) = next {
            let c = repo
                .find_commit(id)
                .context(|| format!("cannot read commit {id}"))?;
            let tree = git_oid(
                c.tree_id()
                    .context(|| format!("cannot read commit {id}"))?
                    .detach(),
            );
            let time = c
                .time()
                .context(|| format!("cannot read commit {id}"))?
                .seconds;
            if !visit(git_oid(id), tree, time) {
                break;
            }
            next = c.parent_ids().next().map(|p| p.detach());
        }
        Ok(())
    }

    /// The newest `n` generations along `commit`'s first parents: each distinct tree with
    /// the newest commit that made it.
    pub fn recent_generations(
        &self,
        commit: &GitOid,
        n: usize,
    ) -> Result<Vec<(GitOid, GitOid)>, GitError> {
        let mut out: Vec<(GitOid, GitOid)> = Vec::new();
        if n == 0 {
            return Ok(out);
        }
        self.walk_first_parents(commit, |c, tree, _| {
            if !out.iter().any(|(_, t)| *t == tree) {
                out.push((c, tree));
            }
            out.len() < n
        })?;
        Ok(out)
    }

    /// Up to `n` commits along `commit`'s first parents, newest first, each with its tree
    /// and time.
    pub fn first_parent_log(
        &self,
        commit: &GitOid,
        n: usize,
    ) -> Result<Vec<(GitOid, GitOid, i64)>, GitError> {
        let mut out = Vec::new();
        if n == 0 {
            return Ok(out);
        }
        self.walk_first_parents(commit, |c, tree, time| {
            out.push((c, tree, time));
            out.len() < n
        })?;
        Ok(out)
    }

    /// The distinct trees of the newest `n` generations along `commit`'s first parents.
    pub fn recent_trees(&self, commit: &GitOid, n: usize) -> Result<Vec<GitOid>, GitError> {
        Ok(self
            .recent_generations(commit, n)?
            .into_iter()
            .map(|(_, t)| t)
            .collect())
    }

    /// The full message of a commit.
    pub fn commit_message(&self, commit: &GitOid) -> Result<String, GitError> {
        let repo = self.repo();
        let c = repo
            .find_commit(oid(commit))
            .context(|| format!("commit {commit} is not in the store's git repository"))?;
        let m = c
            .message_raw()
            .context(|| format!("cannot read commit {commit}"))?;
        Ok(m.to_string())
    }

    /// Every file of `tree`: path, kind and blob id, walked by the same checks as
    /// ingestion and stopped past `max_files`.
    pub fn tree_files(
        &self,
        tree: &GitOid,
        max_files: u64,
    ) -> Result<Vec<(String, EntryKind, GitOid)>, GitError> {
        let repo = self.repo();
        let (files, _) = crate::ingest::walk_tree(&repo, oid(tree), max_files)
            .map_err(|e| GitError::new(format!("cannot walk tree {tree}"), e))?;
        Ok(files
            .into_iter()
            .map(|(path, kind, id)| {
                (
                    String::from_utf8_lossy(&path).into_owned(),
                    kind,
                    git_oid(id),
                )
            })
            .collect())
    }

    /// The git blob id `bytes` would have.
    pub fn blob_id(bytes: &[u8]) -> GitOid {
        git_oid(
            gix::objs::compute_hash(gix::hash::Kind::Sha1, gix::objs::Kind::Blob, bytes)
                .expect("SHA-1 hashing of bytes in memory does not fail"),
        )
    }

    /// Makes git keep exactly these trees beyond the site branches: a ref
    /// `refs/mcb/generations/<tree>` for each tree the repository holds, and none for
    /// others, so git's own collection never drops the tree of a kept generation.
    pub fn keep_trees(&self, trees: &std::collections::BTreeSet<GitOid>) -> Result<(), GitError> {
        use gix::refs::transaction::PreviousValue;
        let repo = self.repo();
        let prefix = "refs/mcb/generations/";
        let mut existing = std::collections::BTreeSet::new();
        let platform = repo
            .references()
            .context(|| "cannot list the store's refs".to_string())?;
        for r in platform
            .prefixed(prefix)
            .context(|| "cannot list the store's refs".to_string())?
        {
            let r = r.map_err(|e| GitError::new("cannot read a ref", e))?;
            existing.insert(r.name().as_bstr().to_string());
        }
        for tree in trees {
            let name = format!("{prefix}{tree}");
            if existing.remove(&name) || !self.has_tree(tree) {
                continue;
            }
            repo.reference(name.as_str(), oid(tree), PreviousValue::Any, "mcb gc: keep")
                .context(|| format!("cannot keep tree {tree}"))?;
        }
        for name in existing {
            let path = self.path.join(&name);
            let _ = std::fs::remove_file(path);
        }
        Ok(())
    }

    /// Removes ref lock files a killed run left behind under `refs/<prefix>`. Only call it
    /// while holding the lock that serialises writers of those refs.
    pub fn clear_stale_ref_locks(&self, prefix: &str) {
        let path = self.path.join("refs").join(prefix);
        // A ref (a site's branch) has its lock beside it; a namespace has them inside.
        if let Some(name) = path.file_name() {
            let mut lock = name.to_os_string();
            lock.push(".lock");
            let _ = std::fs::remove_file(path.with_file_name(lock));
        }
        for e in walkdir_locks(&path) {
            let _ = std::fs::remove_file(e);
        }
    }

    /// Removes `packed-refs.lock` when it is older than `max_age`: a real holder keeps it
    /// for milliseconds, so an old one was left by a killed run.
    pub fn clear_stale_packed_refs_lock(&self, max_age: std::time::Duration) {
        let lock = self.path.join("packed-refs.lock");
        let stale = std::fs::metadata(&lock)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > max_age);
        if stale {
            let _ = std::fs::remove_file(lock);
        }
    }

    /// Git's own collection: objects no ref reaches and older than `grace_secs` go.
    /// Returns the bytes freed.
    pub fn collect_garbage(&self, grace_secs: u64, dry_run: bool) -> Result<u64, GitError> {
        let before = du(&self.path);
        if dry_run {
            return Ok(0);
        }
        crate::program::run(
            crate::program::git(&self.path)
                // Refs stay loose: updating a packed ref takes packed-refs.lock, which a run
                // killed at that moment would leave behind for every later run.
                .args([
                    "-c",
                    "gc.auto=0",
                    "-c",
                    "gc.packRefs=false",
                    "-c",
                    "core.logAllRefUpdates=false",
                    "gc",
                    "--quiet",
                ])
                .arg(format!("--prune={grace_secs}.seconds.ago")),
            "git gc failed",
        )?;
        Ok(before.saturating_sub(du(&self.path)))
    }
}

fn walkdir_locks(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "lock") {
                out.push(p);
            }
        }
    }
    out
}

fn du(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                stack.push(e.path());
            }
            total += m.blocks() * 512;
        }
    }
    total
}

impl GitStore {
    /// Writes a git bundle of `commit` and its history to `out`, under the one branch
    /// `name` (`refs/heads/v1.2`), its HEAD: a file `git clone` checks out without mcb. The bundle is made in a
    /// scratch repository under `scratch` that borrows the store's objects, so the store's
    /// own refs never change.
    pub fn bundle(
        &self,
        commit: &GitOid,
        name: &str,
        out: &Path,
        scratch: &Path,
    ) -> Result<(), GitError> {
        let repo = scratch.join("bundle.git");
        let what = format!("cannot bundle {commit}");
        crate::program::run(
            mcb_exec::Program::new("git")
                .args(["init", "--quiet", "--bare"])
                .arg(&repo),
            &what,
        )?;
        let alternates = repo.join("objects/info/alternates");
        let objects =
            std::path::absolute(self.path.join("objects")).map_err(|e| GitError::new(&what, e))?;
        std::fs::write(&alternates, format!("{}\n", objects.display()))
            .map_err(|e| GitError::new(&what, e))?;
        crate::program::run(
            crate::program::git(&repo)
                .args(["update-ref", name])
                .arg(commit.as_str()),
            &what,
        )?;
        crate::program::run(
            crate::program::git(&repo).args(["symbolic-ref", "HEAD", name]),
            &what,
        )?;
        crate::program::run(
            crate::program::git(&repo)
                .args(["bundle", "create", "--quiet"])
                .arg(out)
                .args(["HEAD", name]),
            &what,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_runs_ref_locks_are_cleared_beside_a_branch_and_inside_a_namespace() {
        let d = tempfile::tempdir().unwrap();
        let g = GitStore::open(&d.path().join("git")).unwrap();
        let heads = d.path().join("git/refs/heads");
        std::fs::create_dir_all(heads.join("ns")).unwrap();
        std::fs::write(heads.join("site"), "x").unwrap();
        std::fs::write(heads.join("site.lock"), "").unwrap();
        std::fs::write(heads.join("ns/tag.lock"), "").unwrap();
        std::fs::write(heads.join("other.lock"), "").unwrap();
        g.clear_stale_ref_locks("heads/site");
        g.clear_stale_ref_locks("heads/ns");
        assert!(!heads.join("site.lock").exists());
        assert!(!heads.join("ns/tag.lock").exists());
        assert!(heads.join("site").exists());
        assert!(
            heads.join("other.lock").exists(),
            "another site's lock is its own"
        );
    }
}
