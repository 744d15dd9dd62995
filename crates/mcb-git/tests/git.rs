use std::path::Path;
use std::process::Command;

use mcb_git::{CommitInfo, GitStore, Graft, SourceContent, SourceFile, SourceFileKind};
use mcb_store::Store;

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn upstream(dir: &Path) {
    std::fs::create_dir_all(dir.join("lib")).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["config", "user.email", "t@t"]);
    git(dir, &["config", "user.name", "t"]);
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
    let refs = g.fetch(&url).unwrap();
    assert_eq!(refs.tags.len(), 2);
    assert!(refs.heads.contains_key("main"));
    assert_eq!(refs.head, refs.heads.get("main").cloned());
    let (_, c1) = refs.resolve(&g, "v1.0").unwrap();
    assert_eq!(g.read_file(&c1, "lib/a.php").unwrap().unwrap(), b"a");
    let (_, c2) = refs.resolve(&g, "v1.10").unwrap();
    assert_eq!(g.read_file(&c2, "lib/a.php").unwrap().unwrap(), b"a2");
    assert_eq!(refs.resolve(&g, &c1[..8]).unwrap().1, c1);
    assert!(refs.resolve(&g, "nope").is_none());
    assert_eq!(g.commit_time(&c1).unwrap(), 1704067200);

    // Offline: the refs are still known.
    assert_eq!(g.refs(&url).unwrap().tags, refs.tags);
    // Fetching from a plain path works too.
    assert_eq!(g.fetch(up.to_str().unwrap()).unwrap().tags.len(), 2);

    let core = g.ingest_commit(&store, &c2, None).unwrap();
    assert_eq!(core.entries.len(), 2);
    // With a related manifest as base, only unknown blobs are read; the result is the same.
    let fresh = g.ingest_commit(&store, &c1, None).unwrap();
    assert_eq!(g.ingest_commit(&store, &c1, Some(&core)).unwrap(), fresh);
    assert_ne!(fresh, core);
    let plugin = g
        .ingest_files(
            &store,
            vec![
                SourceFile {
                    path: "version.php".into(),
                    kind: SourceFileKind::File,
                    content: SourceContent::Bytes(b"<?php".to_vec()),
                },
                SourceFile {
                    path: "db/x.sh".into(),
                    kind: SourceFileKind::Exec,
                    content: SourceContent::Bytes(b"#!".to_vec()),
                },
            ],
        )
        .unwrap();
    let tree = g
        .compose(
            &core.tree,
            &[Graft {
                path: "blocks/x".into(),
                tree: plugin.tree.clone(),
            }],
        )
        .unwrap();
    let info = CommitInfo {
        message: "m\n".into(),
        time: 1_700_000_000,
        parent: None,
    };
    let commit = g.write_commit(&tree, &info).unwrap();
    assert_eq!(commit, g.write_commit(&tree, &info).unwrap());
    g.set_branch("site", &commit, None).unwrap();
    assert_eq!(
        g.branch_head("site").unwrap().as_deref(),
        Some(commit.as_str())
    );
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
        .fetch(&format!("file://{}/nothing-here", tmp.path().display()))
        .unwrap_err();
    assert!(err.to_string().starts_with("cannot fetch file://"), "{err}");
}
