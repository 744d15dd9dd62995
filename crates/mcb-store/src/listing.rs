//! The one rule every source obeys before any of its content is stored, whatever it came
//! from (git tree, zip, local directory): each path is a clean relative path of valid
//! names, and each symlink resolves inside the source's own root. A source root is the
//! plugin's directory (or, for core, the codebase), so a source can never reach outside
//! its place once it is laid out.
//!
//! Names refused: empty, `.`, `..`, `.git` in any case (and the spellings some filesystems
//! fold onto it: trailing dots or spaces), names holding `/`, `\`, NUL or another control
//! character, names that are not UTF-8, and names or paths longer than filesystems allow.

use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::kind::EntryKind;

/// The longest path and name accepted, in bytes (Linux's PATH_MAX and NAME_MAX).
pub const MAX_PATH_BYTES: usize = 4096;
pub const MAX_NAME_BYTES: usize = 255;
/// The deepest path accepted, in components.
pub const MAX_DEPTH: usize = 128;
/// Symlinks followed while resolving one target, as the kernel's limit.
const MAX_HOPS: usize = 40;

/// How big one source may be: bounds on what any reader (git, zip, directory) accepts
/// before it stores anything, so a hostile archive cannot fill memory or disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceLimits {
    /// Files (and symlinks) in one source.
    pub files: u64,
    /// Bytes of one file.
    pub file_bytes: u64,
    /// Bytes of all files of one source together.
    pub total_bytes: u64,
}

impl Default for SourceLimits {
    fn default() -> Self {
        SourceLimits {
            files: 200_000,
            file_bytes: 256 << 20,
            total_bytes: 2 << 30,
        }
    }
}

/// One entry of a source, as its reader found it: raw path bytes (`/`-separated, relative
/// to the source root) and, for a symlink, its raw target.
#[derive(Debug, Clone, Copy)]
pub struct ListedEntry<'a> {
    pub path: &'a [u8],
    pub kind: EntryKind,
    pub link_target: Option<&'a [u8]>,
}

/// What is wrong with an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryProblem {
    NotUtf8,
    Absolute,
    EmptyName,
    DotName,
    GitName,
    BadCharacter(char),
    TooLong,
    TooDeep,
    Duplicate,
    /// The path is a file and also a directory of other entries.
    FileAndDirectory,
    /// The symlink target is absolute.
    AbsoluteLink(String),
    /// The symlink target resolves outside the source root.
    LinkEscapes(String),
    /// The symlink target is empty, not UTF-8 or holds control characters.
    BadLinkTarget(String),
    /// Following the symlink loops or goes too deep.
    LinkLoop(String),
}

/// An entry that the rule refuses: the whole source is refused with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry '{path}' {problem}")]
pub struct EntryRefused {
    /// The path, printable (control characters and invalid bytes escaped).
    pub path: String,
    pub problem: EntryProblem,
}

impl fmt::Display for EntryProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntryProblem::NotUtf8 => f.write_str("has a name that is not valid UTF-8"),
            EntryProblem::Absolute => f.write_str("has an absolute path"),
            EntryProblem::EmptyName => f.write_str("has an empty name in its path"),
            EntryProblem::DotName => f.write_str("has '.' or '..' in its path"),
            EntryProblem::GitName => f.write_str(
                "is a .git entry, which would become a live git repository inside the codebase",
            ),
            EntryProblem::BadCharacter(c) => {
                write!(f, "has the character '{}' in a name", c.escape_debug())
            }
            EntryProblem::TooLong => write!(
                f,
                "is longer than {MAX_PATH_BYTES} bytes or has a name longer than {MAX_NAME_BYTES}"
            ),
            EntryProblem::TooDeep => write!(f, "is more than {MAX_DEPTH} directories deep"),
            EntryProblem::Duplicate => f.write_str("appears twice in the source"),
            EntryProblem::FileAndDirectory => {
                f.write_str("is a file and also a directory of other entries")
            }
            EntryProblem::AbsoluteLink(t) => {
                write!(f, "is a symlink to the absolute path '{t}'")
            }
            EntryProblem::LinkEscapes(t) => write!(
                f,
                "is a symlink to '{t}', which resolves outside its own plugin or codebase"
            ),
            EntryProblem::BadLinkTarget(t) => {
                write!(f, "is a symlink with an unusable target '{t}'")
            }
            EntryProblem::LinkLoop(t) => write!(
                f,
                "is a symlink to '{t}', which loops or follows more than {MAX_HOPS} links"
            ),
        }
    }
}

/// Raw bytes shown safely: invalid UTF-8 and control characters escaped.
pub fn printable_bytes(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_debug().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

fn refused(path: &[u8], problem: EntryProblem) -> EntryRefused {
    EntryRefused {
        path: printable_bytes(path),
        problem,
    }
}

/// Is `name` one git (or a filesystem that folds names) would take for `.git`?
fn is_git_name(name: &str) -> bool {
    name.trim_end_matches(['.', ' '])
        .eq_ignore_ascii_case(".git")
}

/// Checks one name (a path component).
fn check_name(name: &str) -> Option<EntryProblem> {
    if name.is_empty() {
        return Some(EntryProblem::EmptyName);
    }
    if name == "." || name == ".." {
        return Some(EntryProblem::DotName);
    }
    if is_git_name(name) {
        return Some(EntryProblem::GitName);
    }
    if name.len() > MAX_NAME_BYTES {
        return Some(EntryProblem::TooLong);
    }
    name.chars()
        .find(|c| c.is_control() || *c == '\\')
        .map(EntryProblem::BadCharacter)
}

/// Checks a path: clean, relative, valid names. Returns the path as text.
pub fn check_path(path: &[u8]) -> Result<&str, EntryRefused> {
    let text = std::str::from_utf8(path).map_err(|_| refused(path, EntryProblem::NotUtf8))?;
    if text.starts_with('/') {
        return Err(refused(path, EntryProblem::Absolute));
    }
    if text.len() > MAX_PATH_BYTES {
        return Err(refused(path, EntryProblem::TooLong));
    }
    let mut depth = 0;
    for name in text.split('/') {
        depth += 1;
        if let Some(p) = check_name(name) {
            return Err(refused(path, p));
        }
    }
    if depth > MAX_DEPTH {
        return Err(refused(path, EntryProblem::TooDeep));
    }
    Ok(text)
}

/// Checks a whole source: every path, no duplicates, no file that is also a directory,
/// and every symlink resolving inside the source root.
pub fn check_listing(entries: &[ListedEntry<'_>]) -> Result<(), EntryRefused> {
    let mut paths: HashSet<&str> = HashSet::with_capacity(entries.len());
    let mut links: HashMap<&str, &str> = HashMap::new();
    for e in entries {
        let path = check_path(e.path)?;
        if !paths.insert(path) {
            return Err(refused(e.path, EntryProblem::Duplicate));
        }
        if e.kind == EntryKind::Symlink {
            let raw = e.link_target.unwrap_or_default();
            let target = std::str::from_utf8(raw).ok().filter(|t| {
                !t.is_empty() && !t.chars().any(|c| c.is_control()) && t.len() <= MAX_PATH_BYTES
            });
            let Some(target) = target else {
                return Err(refused(
                    e.path,
                    EntryProblem::BadLinkTarget(printable_bytes(raw)),
                ));
            };
            links.insert(path, target);
        }
    }
    for path in &paths {
        let mut dir = *path;
        while let Some(i) = dir.rfind('/') {
            dir = &dir[..i];
            if paths.contains(dir) {
                return Err(refused(dir.as_bytes(), EntryProblem::FileAndDirectory));
            }
        }
    }
    for (path, target) in &links {
        resolve_inside(path, target, &links)
            .map_err(|p| refused(path.as_bytes(), p(target.to_string())))?;
    }
    Ok(())
}

type LinkProblem = fn(String) -> EntryProblem;

/// Follows `target` of the symlink at `link` the way the kernel would, through the other
/// symlinks of the source, and fails when any step leaves the root.
fn resolve_inside(
    link: &str,
    target: &str,
    links: &HashMap<&str, &str>,
) -> Result<(), LinkProblem> {
    if target.starts_with('/') {
        return Err(EntryProblem::AbsoluteLink);
    }
    let mut hops = 0;
    let mut stack: Vec<String> = parent_names(link);
    // Work queue of names still to walk, front first.
    let mut todo: Vec<String> = names_reversed(target);
    while let Some(name) = todo.pop() {
        match name.as_str() {
            "" | "." => {}
            ".." => {
                if stack.pop().is_none() {
                    return Err(EntryProblem::LinkEscapes);
                }
            }
            _ => {
                stack.push(name);
                let here = stack.join("/");
                if let Some(next) = links.get(here.as_str()) {
                    hops += 1;
                    if hops > MAX_HOPS {
                        return Err(EntryProblem::LinkLoop);
                    }
                    if next.starts_with('/') {
                        return Err(EntryProblem::LinkEscapes);
                    }
                    stack.pop();
                    todo.extend(names_reversed(next));
                }
            }
        }
        if stack.len() > MAX_DEPTH * 2 {
            return Err(EntryProblem::LinkLoop);
        }
    }
    Ok(())
}

fn parent_names(path: &str) -> Vec<String> {
    let mut names: Vec<String> = path.split('/').map(str::to_string).collect();
    names.pop();
    names
}

fn names_reversed(target: &str) -> Vec<String> {
    target.split('/').rev().map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(p: &str) -> ListedEntry<'_> {
        ListedEntry {
            path: p.as_bytes(),
            kind: EntryKind::File,
            link_target: None,
        }
    }

    fn link<'a>(p: &'a str, t: &'a str) -> ListedEntry<'a> {
        ListedEntry {
            path: p.as_bytes(),
            kind: EntryKind::Symlink,
            link_target: Some(t.as_bytes()),
        }
    }

    fn problem(entries: &[ListedEntry<'_>]) -> Option<EntryProblem> {
        check_listing(entries).err().map(|e| e.problem)
    }

    #[test]
    fn clean_sources_pass() {
        assert_eq!(
            problem(&[
                file("version.php"),
                file("lang/en/x.php"),
                link("lang/alias.php", "en/x.php"),
                link("l2", "lang/../version.php"),
                link("dangling", "nothing/here"),
                link("d/up", ".."),
                file("d/f"),
            ]),
            None
        );
    }

    #[test]
    fn bad_names_are_refused() {
        for (p, want) in [
            ("a//b", EntryProblem::EmptyName),
            ("a/./b", EntryProblem::DotName),
            ("../x", EntryProblem::DotName),
            ("sub/.git/config", EntryProblem::GitName),
            (".GIT/hooks/x", EntryProblem::GitName),
            ("x/.Git./y", EntryProblem::GitName),
            ("x/.git /y", EntryProblem::GitName),
            ("a\\b", EntryProblem::BadCharacter('\\')),
            ("a\u{1b}[2J", EntryProblem::BadCharacter('\u{1b}')),
            ("a\0b", EntryProblem::BadCharacter('\0')),
            ("/abs", EntryProblem::Absolute),
            ("trailing/", EntryProblem::EmptyName),
        ] {
            assert_eq!(problem(&[file(p)]), Some(want), "{p:?}");
        }
        assert!(check_listing(&[file(".gitignore"), file(".github/x"), file("git")]).is_ok());
        let bad = [0xffu8, b'a'];
        let e = check_listing(&[ListedEntry {
            path: &bad,
            kind: EntryKind::File,
            link_target: None,
        }])
        .unwrap_err();
        assert_eq!(e.problem, EntryProblem::NotUtf8);
        assert_eq!(e.path, "\u{fffd}a");
        let long = "a".repeat(256);
        assert_eq!(problem(&[file(&long)]), Some(EntryProblem::TooLong));
        let deep = vec!["d"; MAX_DEPTH + 1].join("/");
        assert_eq!(problem(&[file(&deep)]), Some(EntryProblem::TooDeep));
    }

    #[test]
    fn duplicates_and_file_directory_clashes() {
        assert_eq!(
            problem(&[file("a"), file("a")]),
            Some(EntryProblem::Duplicate)
        );
        assert_eq!(
            problem(&[link("d", "x"), file("d/f")]),
            Some(EntryProblem::FileAndDirectory)
        );
    }

    #[test]
    fn links_must_stay_inside() {
        for (l, t) in [
            ("m", "../"),
            ("a/b", "../../x"),
            ("x", "/etc/passwd"),
            ("y", "../../config.php"),
        ] {
            let p = problem(&[link(l, t)]);
            assert!(
                matches!(
                    p,
                    Some(EntryProblem::LinkEscapes(_) | EntryProblem::AbsoluteLink(_))
                ),
                "{l} -> {t}: {p:?}"
            );
        }
        // Lexically inside, physically outside: d/up is the root, so up/.. leaves it.
        assert!(matches!(
            problem(&[link("d/up", ".."), link("d/x", "up/../..")]),
            Some(EntryProblem::LinkEscapes(_))
        ));
        // Through a link to an absolute path.
        assert!(matches!(
            problem(&[link("a", "/tmp"), link("b", "a/x")]),
            Some(EntryProblem::AbsoluteLink(_) | EntryProblem::LinkEscapes(_))
        ));
        // A loop.
        assert!(matches!(
            problem(&[link("a", "b"), link("b", "a/x")]),
            Some(EntryProblem::LinkLoop(_))
        ));
        assert!(matches!(
            problem(&[link("e", "")]),
            Some(EntryProblem::BadLinkTarget(_))
        ));
    }
}
