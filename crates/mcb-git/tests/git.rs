use std::path::Path;
use std::process::Command;

use mcb_fixtures::GitRepo;
use mcb_git::{CommitInfo, FetchLimits, GitStore, Graft, SourceContent, SourceFile};
use mcb_store::{EntryKind, SourceLimits, Store};

fn counter() -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
    std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0))
}

/// Fetches the repository at `dir` over `file://`, with the default limits.
fn fetch_dir(g: &GitStore, dir: &Path) -> mcb_git::RemoteRefs {
    g.fetch(
        &format!("file://{}", dir.display()),
        FetchLimits::default(),
        &counter(),
    )
    .unwrap()
}

fn stored(store: &Store, path: &str, kind: EntryKind, bytes: &[u8]) -> SourceFile {
    let (object, size) = store
        .put_object_from(&mut &bytes[..], kind == EntryKind::Exec)
        .unwrap();
    SourceFile {
        path: path.into(),
        kind,
        content: SourceContent::Stored { object, size },
    }
}

/// `git ARGS` in `dir`, with the fixtures' fixed dates and identity.
fn git(dir: &Path, args: &[&str]) {
    GitRepo {
        path: dir.to_path_buf(),
    }
    .git(args);
}

fn upstream(dir: &Path) {
    std::fs::create_dir_all(dir.join("lib")).unwrap();
    GitRepo::init(dir.to_path_buf());
    std::fs::write(dir.join("version.php"), "<?php $version = 1;").unwrap();
    std::fs::write(dir.join("lib/a.php"), "a").unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", "one"]);
    git(dir, &["tag", "-a", "v1.0", "-m", "v1.0"]);
    std::fs::write(dir.join("lib/a.php"), "a2").unwrap();
    git(dir, &["commit", "-qam", "two"]);
    git(dir, &["tag", "v1.10"]);
}

#[test]
fn fetch_resolve_ingest_compose_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let up = tmp.path().join("up");
    upstream(&up);
    let store = Store::open(tmp.path().join("store")).unwrap();
    let g = GitStore::open(&store.git_dir()).unwrap();
    let url = format!("file://{}", up.display());
    let refs = g.fetch(&url, FetchLimits::default(), &counter()).unwrap();
    assert_eq!(refs.tags.len(), 2);
    assert!(refs.heads.contains_key("main"));
    assert_eq!(refs.head, refs.heads.get("main").cloned());
    let (_, c1) = refs.resolve(&g, "v1.0").unwrap().unwrap();
    assert_eq!(g.read_file(&c1, "lib/a.php").unwrap().unwrap(), b"a");
    let (_, c2) = refs.resolve(&g, "v1.10").unwrap().unwrap();
    assert_eq!(g.read_file(&c2, "lib/a.php").unwrap().unwrap(), b"a2");
    assert_eq!(refs.resolve(&g, &c1.as_str()[..8]).unwrap().unwrap().1, c1);
    assert!(refs.resolve(&g, "nope").unwrap().is_none());
    // The fixtures' commit date, 2024-10-07T12:00:00Z.
    assert_eq!(g.commit_time(&c1).unwrap(), 1728302400);

    // Offline: the refs are still known.
    assert_eq!(g.refs(&url).unwrap().tags, refs.tags);
    // Fetching from a plain path works too.
    assert_eq!(
        g.fetch(up.to_str().unwrap(), FetchLimits::default(), &counter())
            .unwrap()
            .tags
            .len(),
        2
    );

    let limits = SourceLimits::default();
    let core = g
        .ingest_commit(&store, &c2, None, &limits)
        .unwrap()
        .manifest;
    assert_eq!(core.entries.len(), 2);
    // With a related manifest as base, only unknown blobs are read; the result is the same.
    let fresh = g
        .ingest_commit(&store, &c1, None, &limits)
        .unwrap()
        .manifest;
    assert_eq!(
        g.ingest_commit(&store, &c1, Some(&core), &limits)
            .unwrap()
            .manifest,
        fresh
    );
    assert_ne!(fresh, core);
    let plugin = g
        .ingest_files(
            &store,
            vec![
                stored(&store, "version.php", EntryKind::File, b"<?php"),
                stored(&store, "db/x.sh", EntryKind::Exec, b"#!"),
            ],
        )
        .unwrap();
    // The site's own link: kept as written, though it points outside the codebase.
    let links = g
        .link_package(
            &store,
            &[("config.php".into(), "/etc/moodle/prod/config.php".into())],
        )
        .unwrap();
    assert!(
        g.link_package(&store, &[("../config.php".into(), "/etc/x".into())])
            .is_err()
    );
    let tree = g
        .compose(
            &core.tree,
            &[Graft {
                path: "blocks/x".into(),
                tree: plugin.tree.clone(),
            }],
            &links.entries,
        )
        .unwrap();
    let linked: Vec<(String, EntryKind)> = g
        .tree_files(&tree, 100)
        .unwrap()
        .into_iter()
        .filter(|f| f.0 == "config.php")
        .map(|f| (f.0, f.1))
        .collect();
    assert_eq!(linked, [("config.php".to_string(), EntryKind::Symlink)]);
    let info = CommitInfo {
        message: "m\n".into(),
        time: 1_700_000_000,
        parent: None,
    };
    let commit = g.write_commit(&tree, &info).unwrap();
    assert_eq!(commit, g.write_commit(&tree, &info).unwrap());
    g.set_branch("site", &commit, None).unwrap();
    assert_eq!(g.branch_head("site").unwrap().as_ref(), Some(&commit));
    let next = g
        .write_commit(
            &core.tree,
            &CommitInfo {
                parent: Some(commit.clone()),
                ..info.clone()
            },
        )
        .unwrap();
    assert!(
        g.set_branch("site", &next, None).is_err(),
        "branch moved without its expected head"
    );
    assert!(g.set_branch("site", &next, Some(&c1)).is_err());
    g.set_branch("site", &next, Some(&commit)).unwrap();
    g.set_branch("site", &commit, Some(&next)).unwrap();

    // `git clone <store>/git -b site` gives the codebase.
    let clone = tmp.path().join("clone");
    let out = Command::new("git")
        .args(["clone", "-q", "-b", "site"])
        .arg(store.git_dir())
        .arg(&clone)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(clone.join("blocks/x/db/x.sh")).unwrap(),
        b"#!"
    );
    assert_eq!(std::fs::read(clone.join("lib/a.php")).unwrap(), b"a2");
}

#[test]
fn unreachable_url_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path().join("store")).unwrap();
    let g = GitStore::open(&store.git_dir()).unwrap();
    let err = g
        .fetch(
            &format!("file://{}/nothing-here", tmp.path().display()),
            FetchLimits::default(),
            &counter(),
        )
        .unwrap_err();
    assert!(err.to_string().starts_with("cannot fetch file://"), "{err}");
}

#[test]
fn a_commit_resolves_only_within_its_own_upstream() {
    let tmp = tempfile::tempdir().unwrap();
    let up = tmp.path().join("up");
    upstream(&up);
    let fork = tmp.path().join("fork");
    upstream(&fork);
    std::fs::write(fork.join("lib/evil.php"), "<?php // fork").unwrap();
    git(&fork, &["add", "-A"]);
    git(&fork, &["commit", "-qm", "fork only"]);
    let store = Store::open(tmp.path().join("store")).unwrap();
    let g = GitStore::open(&store.git_dir()).unwrap();
    let fork_refs = fetch_dir(&g, &fork);
    let fork_head = fork_refs.head.clone().unwrap();
    let refs = fetch_dir(&g, &up);
    assert!(
        g.has_commit(&fork_head),
        "the store holds the fork's commit"
    );
    assert!(refs.resolve(&g, fork_head.as_str()).unwrap().is_none());
    assert!(
        refs.resolve(&g, &fork_head.as_str()[..10])
            .unwrap()
            .is_none()
    );
    assert!(!g.is_reachable(&refs, &fork_head).unwrap());
    let (_, v1) = refs.resolve(&g, "v1.0").unwrap().unwrap();
    assert!(g.is_reachable(&refs, &v1).unwrap());
}

#[test]
fn hostile_trees_are_refused_before_anything_is_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let up = tmp.path().join("up");
    std::fs::create_dir_all(&up).unwrap();
    GitRepo::init(up.to_path_buf());
    std::fs::write(up.join("version.php"), "<?php").unwrap();
    std::os::unix::fs::symlink("../../config.php", up.join("escape")).unwrap();
    git(&up, &["add", "-A"]);
    git(&up, &["commit", "-qm", "escape"]);
    let store = Store::open(tmp.path().join("store")).unwrap();
    let g = GitStore::open(&store.git_dir()).unwrap();
    let refs = fetch_dir(&g, &up);
    let head = refs.head.clone().unwrap();
    let e = g
        .ingest_commit(&store, &head, None, &SourceLimits::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("'escape'") && e.contains("../../config.php"),
        "{e}"
    );
    let objects = walk_files(&store.root().join("objects"));
    assert_eq!(objects, 0, "nothing stored");
    let small = SourceLimits {
        file_bytes: 2,
        ..SourceLimits::default()
    };
    std::fs::remove_file(up.join("escape")).unwrap();
    git(&up, &["add", "-A"]);
    git(&up, &["commit", "-qm", "fine"]);
    let refs = fetch_dir(&g, &up);
    let e = g
        .ingest_commit(&store, refs.head.as_ref().unwrap(), None, &small)
        .unwrap_err()
        .to_string();
    assert!(e.contains("version.php") && e.contains("limit"), "{e}");
}

fn walk_files(dir: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn parents_are_grafted_before_their_subplugins_whatever_the_order() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path().join("store")).unwrap();
    let g = GitStore::open(&store.git_dir()).unwrap();
    let core = g
        .ingest_files(
            &store,
            vec![stored(&store, "index.php", EntryKind::File, b"<?php")],
        )
        .unwrap();
    let parent = g
        .ingest_files(
            &store,
            vec![stored(
                &store,
                "version.php",
                EntryKind::File,
                b"<?php // cert",
            )],
        )
        .unwrap();
    let child = g
        .ingest_files(
            &store,
            vec![stored(
                &store,
                "version.php",
                EntryKind::File,
                b"<?php // text",
            )],
        )
        .unwrap();
    // The child's component (certelement_text) sorts before the parent's (mod_cert).
    let tree = g
        .compose(
            &core.tree,
            &[
                Graft {
                    path: "mod/cert/element/text".into(),
                    tree: child.tree.clone(),
                },
                Graft {
                    path: "mod/cert".into(),
                    tree: parent.tree.clone(),
                },
            ],
            &[],
        )
        .unwrap();
    let files: Vec<String> = g
        .tree_files(&tree, 1000)
        .unwrap()
        .into_iter()
        .map(|f| f.0)
        .collect();
    assert_eq!(
        files,
        [
            "index.php",
            "mod/cert/version.php",
            "mod/cert/element/text/version.php"
        ]
    );
}

#[test]
fn listing_an_upstream_commit_obeys_the_file_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let up = tmp.path().join("up");
    upstream(&up);
    std::fs::create_dir_all(up.join("mod/x/db")).unwrap();
    std::fs::write(up.join("mod/x/db/subplugins.json"), "{}").unwrap();
    git(&up, &["add", "-A"]);
    git(&up, &["commit", "-qm", "subplugins"]);
    let store = Store::open(tmp.path().join("store")).unwrap();
    let g = GitStore::open(&store.git_dir()).unwrap();
    let head = fetch_dir(&g, &up).head.unwrap();
    assert_eq!(
        g.paths_ending(&head, "/db/subplugins.json", 100).unwrap(),
        vec!["mod/x/db/subplugins.json".to_string()]
    );
    let e = g.paths_ending(&head, "/db/subplugins.json", 2).unwrap_err();
    assert!(
        format!("{e}: {:?}", std::error::Error::source(&e)).contains("more than 2 files"),
        "{e}"
    );
}

#[test]
fn a_release_that_only_changes_modes_reads_no_blob_again() {
    let tmp = tempfile::tempdir().unwrap();
    let up = tmp.path().join("up");
    std::fs::create_dir_all(up.join("lib")).unwrap();
    GitRepo::init(up.to_path_buf());
    for i in 0..20 {
        let f = up.join(format!("lib/f{i}.php"));
        std::fs::write(&f, format!("<?php // {i}")).unwrap();
        std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    std::fs::write(up.join("version.php"), "<?php $version = 1;").unwrap();
    git(&up, &["add", "-A"]);
    git(&up, &["commit", "-qm", "4.5.0"]);
    // The next release only drops the executable bit (as 4.5.0 → 4.5.5 did).
    for i in 0..20 {
        git(
            &up,
            &["update-index", "--chmod=-x", "--", &format!("lib/f{i}.php")],
        );
    }
    git(&up, &["commit", "-qm", "4.5.5"]);
    let store = Store::open(tmp.path().join("store")).unwrap();
    let g = GitStore::open(&store.git_dir()).unwrap();
    let head = fetch_dir(&g, &up).head.unwrap();
    let old = mcb_store::GitOid::parse(
        String::from_utf8(
            Command::new("git")
                .args(["rev-parse", "HEAD~1"])
                .current_dir(&up)
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
        .trim(),
    )
    .unwrap();
    let limits = SourceLimits::default();
    let first = g.ingest_commit(&store, &old, None, &limits).unwrap();
    assert_eq!(first.blobs_read, 21);
    let second = g
        .ingest_commit(&store, &head, Some(&first.manifest), &limits)
        .unwrap();
    assert_eq!(
        second.blobs_read, 0,
        "every blob came from the base's objects"
    );
    for e in &second.manifest.entries {
        assert_eq!(e.kind, EntryKind::File, "{}", e.path);
        let object = store.object_path(&e.blake3, false);
        let bytes = std::fs::read(&object).unwrap();
        assert_eq!(mcb_store::ObjectHash::of(&bytes), e.blake3);
    }
}

/// `git ARGS` in `dir`: its stdout, and whether it succeeded.
fn git_out(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn count(dir: &Path, what: &str) -> u64 {
    let (_, out) = git_out(dir, &["count-objects", "-v"]);
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{what}: ")))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_large_package_goes_into_git_as_one_pack_that_git_reads_and_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path().join("store")).unwrap();
    let g = GitStore::open(&store.git_dir()).unwrap();
    let git_dir = store.git_dir();
    // Over the threshold, with a file twice (one blob), an executable, a symlink, an
    // empty file and one large enough to take several size bytes in its entry header.
    let n = mcb_git::PACKED_FILES + 20;
    let mut files: Vec<(String, EntryKind, Vec<u8>)> = (0..n)
        .map(|i| {
            (
                format!("dir{}/file{i}.php", i % 37),
                EntryKind::File,
                format!("<?php // file {i}\n")
                    .repeat(i % 50 + 1)
                    .into_bytes(),
            )
        })
        .collect();
    files.push(("same/a.txt".into(), EntryKind::File, b"twice".to_vec()));
    files.push(("same/b.txt".into(), EntryKind::File, b"twice".to_vec()));
    files.push((
        "bin/run.sh".into(),
        EntryKind::Exec,
        b"#!/bin/sh\n".to_vec(),
    ));
    files.push(("empty.txt".into(), EntryKind::File, Vec::new()));
    files.push((
        "big.bin".into(),
        EntryKind::File,
        (0..3_000_000u32)
            .flat_map(|i| i.wrapping_mul(7919).to_le_bytes())
            .collect(),
    ));
    let source = |files: &[(String, EntryKind, Vec<u8>)]| -> Vec<SourceFile> {
        let mut out: Vec<SourceFile> = files
            .iter()
            .map(|(p, k, b)| stored(&store, p, *k, b))
            .collect();
        out.push(SourceFile {
            path: "link".into(),
            kind: EntryKind::Symlink,
            content: SourceContent::LinkTarget("dir1/file1.php".into()),
        });
        out
    };
    let manifest = g.ingest_files(&store, source(&files)).unwrap();
    assert_eq!(manifest.entries.len(), files.len() + 1);

    // The same files through git's own index give the same tree.
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    git(&work, &["init", "-q"]);
    for (p, k, b) in &files {
        let path = work.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b).unwrap();
        if *k == EntryKind::Exec {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    std::os::unix::fs::symlink("dir1/file1.php", work.join("link")).unwrap();
    git(&work, &["add", "-A"]);
    let (ok, tree) = git_out(&work, &["write-tree"]);
    assert!(ok);
    assert_eq!(tree.trim(), manifest.tree.as_str());

    let pack_dir_entries = || {
        std::fs::read_dir(git_dir.join("objects/pack"))
            .unwrap()
            .count()
    };
    // One pack that git's own checks accept, holding every blob once; only the trees loose.
    let packs: Vec<_> = std::fs::read_dir(git_dir.join("objects/pack"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    let idx: Vec<_> = packs
        .iter()
        .filter(|p| p.extension().is_some_and(|x| x == "idx"))
        .collect();
    assert_eq!(idx.len(), 1, "{packs:?}");
    assert_eq!(
        packs.len(),
        2,
        "a pack and its index, nothing else: {packs:?}"
    );
    let (ok, out) = git_out(&git_dir, &["verify-pack", "-v", idx[0].to_str().unwrap()]);
    assert!(ok, "{out}");
    let (ok, out) = git_out(&git_dir, &["fsck", "--full", "--no-dangling"]);
    assert!(ok, "{out}");
    let blobs = {
        let mut b: Vec<&Vec<u8>> = files.iter().map(|(_, _, b)| b).collect();
        b.push(&files[1].2); // the link's target is another blob
        b.sort();
        b.dedup();
        b.len() as u64 + 1
    };
    assert_eq!(count(&git_dir, "in-pack"), blobs);
    assert_eq!(
        count(&git_dir, "count"),
        37 + 2 + 1,
        "the trees: 37 dirs, same, bin, root"
    );
    let big = manifest
        .entries
        .iter()
        .find(|e| e.path == "big.bin")
        .unwrap();
    let (ok, out) = git_out(&git_dir, &["cat-file", "-s", big.oid.as_str()]);
    assert!(ok && out.trim() == "12000000", "{out}");
    assert_eq!(g.read_blob(&big.oid).unwrap(), files.last().unwrap().2);

    // The same files again: git has every blob, so no second pack.
    let again = g.ingest_files(&store, source(&files)).unwrap();
    assert_eq!(again, manifest);
    assert_eq!(pack_dir_entries(), 2);

    // A small package stays loose.
    let small = stored(&store, "version.php", EntryKind::File, b"<?php // small");
    let small = g.ingest_files(&store, vec![small]).unwrap();
    assert_eq!(pack_dir_entries(), 2);
    assert!(g.read_blob(&small.entries[0].oid).is_ok());
}
