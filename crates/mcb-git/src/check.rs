//! Checking the store's git objects: every tree and blob a set of generation trees reaches
//! is read back and hashed again, as `git fsck` would, so a loose object whose content is
//! not its name (written from a file edited through a hardlink, damaged on disk) is found;
//! and a damaged loose object is replaced by its true content.

use std::collections::HashSet;

use mcb_store::GitOid;

use crate::{Context, GitError, GitStore, git_oid, oid};

/// An object of the repository that is not what its id says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadObject {
    pub id: GitOid,
    /// A generation tree that reaches it.
    pub generation: GitOid,
    /// Where in that generation (empty for the tree itself).
    pub path: String,
    pub problem: String,
}

impl GitStore {
    /// Reads and re-hashes every object the trees `roots` reach (each object once).
    pub fn check_trees(&self, roots: &[GitOid]) -> Result<Vec<BadObject>, GitError> {
        let repo = self.repo();
        let mut seen: HashSet<gix::ObjectId> = HashSet::new();
        let mut bad = Vec::new();
        for root in roots {
            let mut todo: Vec<(gix::ObjectId, String, bool)> =
                vec![(oid(root), String::new(), true)];
            while let Some((id, path, is_tree)) = todo.pop() {
                if !seen.insert(id) {
                    continue;
                }
                let problem = |problem: String| BadObject {
                    id: git_oid(id),
                    generation: root.clone(),
                    path: path.clone(),
                    problem,
                };
                let obj = match repo.find_object(id) {
                    Ok(o) => o,
                    Err(e) => {
                        bad.push(problem(format!("cannot be read: {e}")));
                        continue;
                    }
                };
                let kind = obj.kind;
                let data = obj.data.clone();
                drop(obj);
                let actual = gix::objs::compute_hash(gix::hash::Kind::Sha1, kind, &data)
                    .context(|| format!("cannot hash {id}"))?;
                if actual != id {
                    bad.push(problem(format!("its content hashes to {actual}")));
                    continue;
                }
                if !is_tree {
                    continue;
                }
                let tree = match gix::objs::TreeRefIter::from_bytes(&data, gix::hash::Kind::Sha1)
                    .entries()
                {
                    Ok(entries) => entries,
                    Err(e) => {
                        bad.push(problem(format!("is not a tree: {e}")));
                        continue;
                    }
                };
                for e in tree {
                    let child = if path.is_empty() {
                        e.filename.to_string()
                    } else {
                        format!("{path}/{}", e.filename)
                    };
                    match e.mode.kind() {
                        gix::objs::tree::EntryKind::Tree => {
                            todo.push((e.oid.to_owned(), child, true))
                        }
                        gix::objs::tree::EntryKind::Commit => {}
                        _ => todo.push((e.oid.to_owned(), child, false)),
                    }
                }
            }
        }
        Ok(bad)
    }

    /// Where the loose file of object `id` is.
    fn loose_path(&self, id: &GitOid) -> std::path::PathBuf {
        let hex = id.as_str();
        self.path.join("objects").join(&hex[..2]).join(&hex[2..])
    }

    /// Replaces a damaged loose blob `id` by `bytes`, which must hash to it: the damaged
    /// file is removed and the blob written again. `Ok(false)` when the bytes are not its
    /// content.
    pub fn replace_blob(&self, id: &GitOid, bytes: &[u8]) -> Result<bool, GitError> {
        if &Self::blob_id(bytes) != id {
            return Ok(false);
        }
        let loose = self.loose_path(id);
        match std::fs::remove_file(&loose) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(GitError::new(
                    format!("cannot remove the damaged object {}", loose.display()),
                    e,
                ));
            }
        }
        let written = self
            .repo()
            .write_blob(bytes)
            .context(|| format!("cannot write blob {id}"))?
            .detach();
        Ok(git_oid(written) == *id)
    }
}
