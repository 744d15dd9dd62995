use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use mcb_store::{Entry, EntryKind, Manifest, ObjectHash, Store};

fn entry(store: &Store, path: &str, bytes: &[u8], kind: EntryKind) -> Entry {
    let h = store.put_object(bytes, kind == EntryKind::Exec).unwrap();
    Entry {
        path: path.into(),
        kind,
        size: bytes.len() as u64,
        blake3: h.0,
        oid: "0".repeat(40),
    }
}

#[test]
fn objects_are_read_only_and_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("s")).unwrap();
    let a = store.put_object(b"hello", false).unwrap();
    let b = store.put_object(b"hello", false).unwrap();
    assert_eq!(a, b);
    assert_eq!(a, ObjectHash::of(b"hello"));
    let p = store.object_path(&a, false);
    assert_eq!(
        fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o444
    );
    let x = store.put_object(b"#!/bin/sh\n", true).unwrap();
    assert_eq!(
        fs::metadata(store.object_path(&x, true))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o555
    );
    let objects: usize = walkdir::WalkDir::new(dir.path().join("s/objects"))
        .into_iter()
        .filter(|e| e.as_ref().unwrap().file_type().is_file())
        .count();
    assert_eq!(objects, 2);
    assert!(
        fs::read_dir(dir.path().join("s/tmp"))
            .unwrap()
            .next()
            .is_none()
    );
}

#[test]
fn manifests_round_trip_and_refuse_missing_objects() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let m = Manifest::new(
        "t".into(),
        vec![
            entry(&store, "b.php", b"b", EntryKind::File),
            entry(&store, "a/x.sh", b"x", EntryKind::Exec),
        ],
    );
    assert_eq!(m.entries[0].path, "a/x.sh");
    let h = store.put_manifest(&m).unwrap();
    assert_eq!(store.read_manifest(&h).unwrap(), m);
    let mut bad = m.clone();
    bad.entries[0].blake3 = ObjectHash::of(b"never stored").0;
    assert!(store.put_manifest(&bad).is_err());
}

#[test]
fn materialise_links_objects_and_copies_empty_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let files = [
        entry(&store, "index.php", b"<?php\n", EntryKind::File),
        entry(&store, "lib/a/b.php", b"<?php // b\n", EntryKind::File),
        entry(&store, "lib/empty.txt", b"", EntryKind::File),
        entry(&store, "bin/run", b"#!/bin/sh\n", EntryKind::Exec),
        entry(&store, "lib/link", b"a/b.php", EntryKind::Symlink),
    ];
    let list: Vec<(String, &Entry)> = files.iter().map(|e| (e.path.clone(), e)).collect();
    let m = store.materialise("tree1", &list, &[], &|| {}).unwrap();
    assert!(m.created);
    let idx = m.path.join("index.php");
    assert_eq!(fs::read(&idx).unwrap(), b"<?php\n");
    let obj = store.object_path(&files[0].object(), false);
    assert_eq!(
        fs::metadata(&idx).unwrap().ino(),
        fs::metadata(&obj).unwrap().ino()
    );
    let empty = m.path.join("lib/empty.txt");
    assert_eq!(fs::metadata(&empty).unwrap().nlink(), 1);
    assert_eq!(
        fs::read_link(m.path.join("lib/link")).unwrap().to_str(),
        Some("a/b.php")
    );
    assert_eq!(fs::read(m.path.join("lib/link")).unwrap(), b"<?php // b\n");
    assert_eq!(
        fs::metadata(m.path.join("bin/run"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o555
    );
    assert_eq!(
        fs::metadata(m.path.join("lib"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o555
    );
    let again = store.materialise("tree1", &list, &[], &|| {}).unwrap();
    assert!(!again.created);
    store.remove_generation("tree1").unwrap();
    assert!(!m.path.exists());
}
