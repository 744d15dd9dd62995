//! Composition: the codebase tree is core's tree with each plugin's tree grafted at its
//! install path, built by editing trees from known ids; nothing is checked out or added.
//! Commits are deterministic: author, committer, date and message come from the caller
//! (the lock), never from the clock or the environment.

use gix::objs::tree::EntryKind;
use mcb_store::{Entry, GitOid};

use crate::{Context, GitError, GitStore, git_oid, oid};

/// A plugin tree to place at `path` (relative to the codebase root).
#[derive(Debug, Clone)]
pub struct Graft {
    pub path: String,
    pub tree: GitOid,
}

/// What a commit says, all of it chosen by the caller.
#[derive(Debug, Clone)]
pub struct CommitInfo {
    pub message: String,
    /// Seconds since the epoch, UTC.
    pub time: i64,
    pub parent: Option<GitOid>,
}

const AUTHOR_NAME: &str = "mcb";
const AUTHOR_EMAIL: &str = "mcb@localhost";

impl GitStore {
    /// Core's tree with every graft in place. Grafts are placed in path order, so a
    /// plugin's tree goes in before its subplugins' trees go into it (`mod/cert` before
    /// `mod/cert/element/text`), whatever order the caller gives.
    ///
    /// `files` are single entries placed last (the site's own symlinks).
    pub fn compose(
        &self,
        core_tree: &GitOid,
        grafts: &[Graft],
        files: &[Entry],
    ) -> Result<GitOid, GitError> {
        let repo = self.repo();
        let mut editor = repo
            .edit_tree(oid(core_tree))
            .context(|| format!("cannot read core tree {core_tree}"))?;
        let mut ordered: Vec<&Graft> = grafts.iter().collect();
        ordered.sort_by(|a, b| a.path.cmp(&b.path));
        for g in ordered {
            editor
                .upsert(g.path.as_str(), EntryKind::Tree, oid(&g.tree))
                .context(|| format!("cannot place a tree at {}", g.path))?;
        }
        for f in files {
            editor
                .upsert(
                    f.path.as_str(),
                    crate::ingest::tree_kind(f.kind),
                    oid(&f.oid),
                )
                .context(|| format!("cannot place {} in the tree", f.path))?;
        }
        Ok(git_oid(
            editor
                .write()
                .context(|| "cannot write the codebase tree".to_string())?
                .detach(),
        ))
    }

    /// The commit a site branch points at.
    pub fn branch_head(&self, branch: &str) -> Result<Option<GitOid>, GitError> {
        self.ref_target(&format!("refs/heads/{branch}"))
    }

    /// What the ref `name` (`refs/…`) points at, peeled; `None` when there is no such ref.
    pub fn ref_target(&self, name: &str) -> Result<Option<GitOid>, GitError> {
        let repo = self.repo();
        let r = repo
            .try_find_reference(name)
            .context(|| format!("cannot read {name}"))?;
        match r {
            Some(mut r) => Ok(Some(git_oid(
                r.peel_to_id()
                    .context(|| format!("cannot read {name}"))?
                    .detach(),
            ))),
            None => Ok(None),
        }
    }

    /// Writes the files of `tree` under the existing, empty directory `dest`, from their
    /// blobs: regular files read-only (0444, 0555 when executable), symlinks as symlinks.
    /// Returns the number of files. For a machine with no store (a deploy from a remote).
    pub fn write_tree(&self, tree: &GitOid, dest: &std::path::Path) -> Result<usize, GitError> {
        use rayon::prelude::*;
        use std::os::unix::fs::PermissionsExt;
        let files = self.tree_files(tree, 2_000_000)?;
        let dirs = mcb_store::parent_dirs(files.iter().map(|(p, _, _)| p.as_str()));
        for d in &dirs {
            let full = dest.join(d);
            std::fs::create_dir(&full)
                .map_err(|e| GitError::new(format!("cannot make {}", full.display()), e))?;
        }
        files.par_iter().try_for_each_init(
            || self.repo(),
            |repo, (path, kind, id)| -> Result<(), GitError> {
                let target = dest.join(path);
                let blob = repo
                    .find_object(oid(id))
                    .context(|| format!("cannot read {path}"))?;
                let wrote = match kind {
                    mcb_store::EntryKind::Symlink => std::os::unix::fs::symlink(
                        String::from_utf8_lossy(&blob.data).as_ref(),
                        &target,
                    ),
                    _ => std::fs::write(&target, &blob.data).and_then(|()| {
                        let mode = if *kind == mcb_store::EntryKind::Exec {
                            0o555
                        } else {
                            0o444
                        };
                        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
                    }),
                };
                wrote.map_err(|e| GitError::new(format!("cannot write {}", target.display()), e))
            },
        )?;
        Ok(files.len())
    }

    /// Writes the commit object for `tree` (without moving any branch).
    pub fn write_commit(&self, tree: &GitOid, info: &CommitInfo) -> Result<GitOid, GitError> {
        let repo = self.repo();
        let sig = gix::actor::Signature {
            name: AUTHOR_NAME.into(),
            email: AUTHOR_EMAIL.into(),
            time: gix::date::Time::new(info.time, 0),
        };
        let parents: Vec<gix::ObjectId> = info.parent.iter().map(oid).collect();
        let commit = gix::objs::Commit {
            tree: oid(tree),
            parents: parents.into(),
            author: sig.clone(),
            committer: sig,
            encoding: None,
            message: info.message.clone().into(),
            extra_headers: Vec::new(),
        };
        Ok(git_oid(
            repo.write_object(&commit)
                .context(|| "cannot write the commit".to_string())?
                .detach(),
        ))
    }

    /// Points `branch` at `commit`, provided it still points at `expected` (`None`: the
    /// branch must not exist), so two runs on one site cannot lose each other's commit.
    pub fn set_branch(
        &self,
        branch: &str,
        commit: &GitOid,
        expected: Option<&GitOid>,
    ) -> Result<(), GitError> {
        use gix::refs::transaction::PreviousValue;
        let repo = self.repo();
        let constraint = match expected {
            Some(e) => PreviousValue::MustExistAndMatch(gix::refs::Target::Object(oid(e))),
            None => PreviousValue::MustNotExist,
        };
        repo.reference(
            format!("refs/heads/{branch}").as_str(),
            oid(commit),
            constraint,
            "mcb realise",
        )
        .context(|| format!("cannot move branch {branch} to {commit}"))?;
        Ok(())
    }

    /// Deletes `branch`, provided it still points at `expected`.
    pub fn delete_branch(&self, branch: &str, expected: &GitOid) -> Result<(), GitError> {
        use gix::refs::transaction::{Change, PreviousValue, RefEdit, RefLog};
        let repo = self.repo();
        let name: gix::refs::FullName = format!("refs/heads/{branch}")
            .try_into()
            .map_err(|e| GitError::new(format!("cannot delete branch {branch}"), e))?;
        repo.edit_reference(RefEdit {
            change: Change::Delete {
                expected: PreviousValue::MustExistAndMatch(gix::refs::Target::Object(oid(
                    expected,
                ))),
                log: RefLog::AndReference,
            },
            name,
            deref: false,
        })
        .context(|| format!("cannot delete branch {branch}"))?;
        Ok(())
    }
}

impl GitStore {
    /// Tags every commit on `branch`'s first parents `refs/tags/<branch>/gen-<N>`, N
    /// counting from its first commit, and returns the tag names, oldest first. A site's
    /// history only grows (rollback is a new commit), so a number names one commit for
    /// good; a tag already there is left as it is.
    pub fn tag_generations(&self, branch: &str) -> Result<Vec<String>, GitError> {
        use gix::refs::transaction::PreviousValue;
        let Some(head) = self.branch_head(branch)? else {
            return Ok(Vec::new());
        };
        let mut log = self.first_parent_log(&head, usize::MAX)?;
        log.reverse();
        let repo = self.repo();
        let mut names = Vec::with_capacity(log.len());
        for (n, (commit, _, _)) in log.iter().enumerate() {
            let name = format!("refs/tags/{branch}/gen-{}", n + 1);
            let exists = repo
                .try_find_reference(name.as_str())
                .context(|| format!("cannot read tag {name}"))?
                .is_some();
            if !exists {
                repo.reference(
                    name.as_str(),
                    oid(commit),
                    PreviousValue::MustNotExist,
                    "mcb push",
                )
                .context(|| format!("cannot tag {commit} as {name}"))?;
            }
            names.push(name);
        }
        Ok(names)
    }

    /// Deletes the generation tags of `branch` (a site forgotten; a new site of that name
    /// numbers its own).
    pub fn delete_generation_tags(&self, branch: &str) -> Result<(), GitError> {
        use gix::refs::transaction::{Change, PreviousValue, RefEdit, RefLog};
        let repo = self.repo();
        let prefix = format!("refs/tags/{branch}/gen-");
        let platform = repo
            .references()
            .context(|| "cannot list tags".to_string())?;
        let mut edits = Vec::new();
        for r in platform
            .prefixed(prefix.as_str())
            .context(|| "cannot list tags".to_string())?
        {
            let r = r.map_err(|e| GitError::new("cannot read a tag", e))?;
            edits.push(RefEdit {
                change: Change::Delete {
                    expected: PreviousValue::Any,
                    log: RefLog::AndReference,
                },
                name: r.name().to_owned(),
                deref: false,
            });
        }
        if !edits.is_empty() {
            repo.edit_references(edits)
                .context(|| format!("cannot delete the tags of {branch}"))?;
        }
        Ok(())
    }
}
