//! The `git` program, for what users' git setups do better than a library (pushing over
//! ssh with their keys and config, fetching a remote into a deploy's cache, writing notes,
//! collecting garbage). Every run goes through here: arguments apart, output captured
//! (nothing reaches the user's terminal), the child dying with mcb, no prompt, and only
//! the transports a remote may name (`file`, `git`, `http(s)`, `ssh`: never a remote
//! helper such as `fd::` or `ext::`, which would read from mcb's descriptors or run a
//! command).

use std::path::Path;

use mcb_exec::{Output, Program};

use crate::GitError;

/// The transports git may use for a remote mcb is given.
const ALLOWED_PROTOCOLS: &str = "file:git:http:https:ssh";

/// `git --git-dir DIR`, as every run of the program here starts.
/// How long a note's writer waits for another to release the notes ref, in milliseconds.
const NOTE_LOCK_WAIT_MS: u64 = 5000;

pub(crate) fn git(git_dir: &Path) -> Program {
    let mut p = Program::new("git");
    p.arg("--git-dir")
        .arg(git_dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ALLOW_PROTOCOL", ALLOWED_PROTOCOLS)
        .env("GIT_AUTHOR_NAME", "mcb")
        .env("GIT_AUTHOR_EMAIL", "mcb@localhost")
        .env("GIT_COMMITTER_NAME", "mcb")
        .env("GIT_COMMITTER_EMAIL", "mcb@localhost");
    p
}

/// A git checkout a user made (an add-on in an installation): its HEAD commit, the tree
/// that commit holds, and its `origin` remote when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    pub commit: String,
    pub tree: String,
    pub origin: Option<String>,
    /// The tags that point at HEAD.
    pub tags: Vec<String>,
}

/// What `git -C dir ARGS` prints, trimmed; `None` when it fails or prints nothing.
fn ask_checkout(dir: &Path, args: &[&str]) -> Option<String> {
    let mut p = Program::new("git");
    // An installation is often owned by the web server's user: reading it is safe.
    let mut safe = std::ffi::OsString::from("safe.directory=");
    safe.push(dir.as_os_str());
    p.arg("-c")
        .arg(safe)
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ALLOW_PROTOCOL", ALLOWED_PROTOCOLS);
    let out = p.run().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// The checkout at `dir` (whose `.git` is in it), when git reads one there.
pub fn checkout_at(dir: &Path) -> Option<Checkout> {
    if !dir.join(".git").exists() {
        return None;
    }
    let ask = |args: &[&str]| ask_checkout(dir, args);
    Some(Checkout {
        commit: ask(&["rev-parse", "--verify", "HEAD^{commit}"])?,
        tree: ask(&["rev-parse", "--verify", "HEAD^{tree}"])?,
        origin: ask(&["config", "--get", "remote.origin.url"]),
        tags: ask(&["tag", "--points-at", "HEAD"])
            .map(|t| t.lines().map(str::to_string).collect())
            .unwrap_or_default(),
    })
}

/// Which of `paths` (directories relative to the checkout at `dir`) hold files HEAD
/// tracks: the plugins a fork of Moodle carries in its own tree.
pub fn tracked_dirs(dir: &Path, paths: &[String]) -> Vec<String> {
    if paths.is_empty() || !dir.join(".git").exists() {
        return Vec::new();
    }
    // Every directory HEAD holds (overlapping pathspecs make `ls-tree` list children
    // instead of the entries named).
    let listed =
        ask_checkout(dir, &["ls-tree", "-r", "-d", "--name-only", "HEAD"]).unwrap_or_default();
    let listed: std::collections::BTreeSet<&str> = listed.lines().collect();
    paths
        .iter()
        .filter(|p| listed.contains(p.as_str()))
        .cloned()
        .collect()
}

/// Runs `program`; `Err` says `what` failed, with git's words.
pub(crate) fn run(program: &mut Program, what: &str) -> Result<Output, GitError> {
    program.run().map_err(|e| GitError::new(what, e))
}

/// Why a remote as the user wrote it is not one mcb gives git.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{remote}' is not a git remote mcb uses: {why}")]
pub struct RemoteRefused {
    pub remote: String,
    pub why: String,
}

/// A remote as the user gave it: a URL (`ssh://`, `https://`, `http://`, `git://`,
/// `file://`), an scp-like `host:path`, or a path. Refused: what git would read as an
/// option, control characters, and a remote helper (`fd::3`, `ext::sh -c …`).
pub fn check_remote(remote: &str) -> Result<(), RemoteRefused> {
    let refuse = |why: &str| RemoteRefused {
        remote: remote.escape_debug().to_string(),
        why: why.to_string(),
    };
    if remote.is_empty() {
        return Err(refuse("it is empty"));
    }
    if remote.starts_with('-') {
        return Err(refuse("git would read it as an option"));
    }
    if remote.chars().any(char::is_control) {
        return Err(refuse("it holds control characters"));
    }
    if let Some((transport, _)) = remote.split_once("::")
        && !transport.contains(['/', ':'])
    {
        return Err(refuse(&format!("'{transport}::' names a remote helper")));
    }
    if let Some((scheme, _)) = remote.split_once("://")
        && !matches!(
            scheme.to_ascii_lowercase().as_str(),
            "ssh" | "git+ssh" | "ssh+git" | "https" | "http" | "git" | "file"
        )
    {
        return Err(refuse(&format!(
            "the transport '{scheme}' is not one of ssh, https, http, git, file"
        )));
    }
    Ok(())
}

/// One ref a push reported (`git push --porcelain`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedRef {
    /// ` ` fast-forward, `+` forced, `-` deleted, `*` new, `!` rejected, `=` up to date.
    pub flag: char,
    /// `src:dst`.
    pub refspec: String,
    pub summary: String,
}

impl PushedRef {
    pub fn rejected(&self) -> bool {
        self.flag == '!'
    }

    pub fn up_to_date(&self) -> bool {
        self.flag == '='
    }

    /// The remote's ref.
    pub fn remote_ref(&self) -> &str {
        self.refspec.rsplit(':').next().unwrap_or(&self.refspec)
    }
}

/// What `git push` did: each ref's line, and whether git said it failed (with its words).
#[derive(Debug, Clone)]
pub struct Pushed {
    pub refs: Vec<PushedRef>,
    pub failed: Option<String>,
}

impl crate::GitStore {
    /// Pushes `refspecs` to `remote` with the `git` program (the user's ssh keys and git
    /// config apply).
    pub fn push(&self, remote: &str, refspecs: &[String]) -> Result<Pushed, GitError> {
        check_remote(remote).map_err(|e| GitError::new("cannot push", e))?;
        let out = git(&self.path)
            .args(["push", "--porcelain", "--"])
            .arg(remote)
            .args(refspecs)
            .output()
            .map_err(|e| GitError::new("cannot run git", e))?;
        let text = out.stdout_text();
        let refs = text
            .lines()
            .filter(|l| l.len() > 2 && l.contains('\t'))
            .filter_map(|l| {
                let flag = l.chars().next()?;
                if !matches!(flag, ' ' | '+' | '-' | '*' | '!' | '=') {
                    return None;
                }
                let mut parts = l[1..].trim_start_matches('\t').splitn(2, '\t');
                let refspec = parts.next()?.to_string();
                let summary = parts.next().unwrap_or("").trim().to_string();
                Some(PushedRef {
                    flag,
                    refspec,
                    summary,
                })
            })
            .collect();
        Ok(Pushed {
            refs,
            failed: (!out.success()).then(|| mcb_exec::last_lines(&out.stderr_text(), 5)),
        })
    }

    /// Fetches `refspec` from `remote` into this repository (a deploy's cache of a remote).
    pub fn fetch_refspec(&self, remote: &str, refspec: &str) -> Result<(), GitError> {
        check_remote(remote).map_err(|e| GitError::new("cannot fetch", e))?;
        run(
            git(&self.path)
                .args(["fetch", "-q", "--no-tags", "--"])
                .arg(remote)
                .arg(refspec),
            &format!("cannot fetch from {remote}"),
        )?;
        Ok(())
    }

    /// Creates a bare repository at `path` with the `git` program when none is there.
    pub fn init_bare_with_git(path: &Path) -> Result<(), GitError> {
        if path.join("HEAD").exists() {
            return Ok(());
        }
        run(
            Program::new("git").args(["init", "-q", "--bare"]).arg(path),
            &format!("cannot make the repository {}", path.display()),
        )?;
        Ok(())
    }

    /// Writes `text` as the note of `commit` under `notes_ref` (replacing one there).
    /// Writers of one notes ref (two sites applied at once, a test and a realise) take
    /// turns: git waits for the ref's lock. A lock still there after that wait was left by a
    /// writer that was killed, and is cleared once.
    pub fn set_note(
        &self,
        notes_ref: &str,
        commit: &mcb_store::GitOid,
        text: &str,
    ) -> Result<(), GitError> {
        let write = || {
            run(
                git(&self.path)
                    .args([
                        "-c",
                        &format!("core.filesRefLockTimeout={NOTE_LOCK_WAIT_MS}"),
                    ])
                    .args(["notes", "--ref", notes_ref, "add", "-f", "-m"])
                    .arg(text)
                    .arg(commit.as_str()),
                "cannot record a git note",
            )
        };
        // A lock older than any writer holds it was left by a killed one.
        let clear_stale = || {
            let lock = self.path.join(format!("{notes_ref}.lock"));
            let stale = std::fs::metadata(&lock)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_millis() >= u128::from(NOTE_LOCK_WAIT_MS));
            stale && std::fs::remove_file(&lock).is_ok()
        };
        clear_stale();
        match write() {
            Ok(_) => Ok(()),
            Err(e) if clear_stale() => write().map(|_| ()).map_err(|_| e),
            Err(e) => Err(e),
        }
    }
}

impl crate::GitStore {
    /// Every note under `notes_ref`, read in one pass over its tree: annotated commit →
    /// the note's text. None when there are no notes.
    pub fn notes(
        &self,
        notes_ref: &str,
    ) -> Result<std::collections::HashMap<mcb_store::GitOid, String>, GitError> {
        use crate::Context;
        let repo = self.repo();
        let mut out = std::collections::HashMap::new();
        let Some(mut r) = repo
            .try_find_reference(notes_ref)
            .context(|| format!("cannot read {notes_ref}"))?
        else {
            return Ok(out);
        };
        let commit = r
            .peel_to_commit()
            .context(|| format!("cannot read {notes_ref}"))?;
        let tree = commit
            .tree_id()
            .context(|| format!("cannot read {notes_ref}"))?
            .detach();
        // Notes are named by the annotated object's id, possibly fanned out into
        // directories of two hex digits.
        let mut todo: Vec<(gix::ObjectId, String)> = vec![(tree, String::new())];
        while let Some((id, prefix)) = todo.pop() {
            let t = repo
                .find_tree(id)
                .context(|| format!("cannot read the notes tree {id}"))?;
            let decoded = t
                .decode()
                .context(|| format!("cannot read the notes tree {id}"))?;
            for e in &decoded.entries {
                let name = format!("{prefix}{}", e.filename);
                if e.mode.is_tree() {
                    if name.len() < 40 {
                        todo.push((e.oid.to_owned(), name));
                    }
                    continue;
                }
                let Ok(annotated) = mcb_store::GitOid::parse(&name) else {
                    continue;
                };
                let blob = repo
                    .find_object(e.oid)
                    .context(|| format!("cannot read the note of {annotated}"))?;
                // A note is small; anything else is not mcb's.
                if blob.data.len() <= 1 << 20 {
                    out.insert(annotated, String::from_utf8_lossy(&blob.data).into_owned());
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A notes ref lock a killed writer left does not stop the next note for good.
    #[test]
    fn a_note_is_written_past_a_lock_a_killed_writer_left() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("git");
        crate::GitStore::init_bare_with_git(&repo).unwrap();
        let store = crate::GitStore::open(&repo).unwrap();
        let empty = git(&repo)
            .args(["mktree"])
            .output_with_input(b"")
            .unwrap()
            .stdout_text();
        let tree = mcb_store::GitOid::parse(empty.trim()).unwrap();
        let commit = store
            .write_commit(
                &tree,
                &crate::CommitInfo {
                    message: "x".into(),
                    time: 0,
                    parent: None,
                },
            )
            .unwrap();
        std::fs::create_dir_all(repo.join("refs/notes")).unwrap();
        let lock = repo.join("refs/notes/mcb-test.lock");
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        std::fs::File::create(&lock)
            .unwrap()
            .set_modified(old)
            .unwrap();
        store
            .set_note("refs/notes/mcb-test", &commit, "passed")
            .unwrap();
        assert!(!lock.exists());
        let notes = store.notes("refs/notes/mcb-test").unwrap();
        assert_eq!(notes.get(&commit).map(|t| t.trim()), Some("passed"));
    }

    #[test]
    fn remotes_that_run_or_read_things_are_refused() {
        for ok in [
            "ssh://git@example.org/site.git",
            "https://example.org/site.git",
            "git@example.org:org/site.git",
            "/srv/git/site.git",
            "file:///srv/git/site.git",
            "../site.git",
            "C:/x",
        ] {
            assert_eq!(check_remote(ok), Ok(()), "{ok}");
        }
        for bad in [
            "fd::3",
            "fd::5",
            "ext::sh -c touch% /tmp/x",
            "-uupload-pack=touch /tmp/x",
            "",
            "ftp://example.org/x",
            "a\nb",
        ] {
            assert!(check_remote(bad).is_err(), "{bad:?}");
        }
    }
}
