use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use mcb_store::{Entry, EntryKind, GitOid, LinkMode, Manifest, ObjectHash, Store, StoreError};

fn entry(store: &Store, path: &str, bytes: &[u8], kind: EntryKind) -> Entry {
    let h = store.put_object(bytes, kind == EntryKind::Exec).unwrap();
    Entry {
        path: path.into(),
        kind,
        size: bytes.len() as u64,
        blake3: h,
        oid: GitOid::parse(&"0".repeat(40)).unwrap(),
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
        key("1"),
        vec![
            entry(&store, "b.php", b"b", EntryKind::File),
            entry(&store, "a/x.sh", b"x", EntryKind::Exec),
        ],
    );
    assert_eq!(m.entries[0].path, "a/x.sh");
    let h = store.put_manifest(&m).unwrap();
    assert_eq!(store.read_manifest(&h).unwrap(), m);
    let mut bad = m.clone();
    bad.entries[0].blake3 = ObjectHash::of(b"never stored");
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
    let tree1 = key("1");
    let m = store
        .materialise(&tree1, &list, Some(&[]), LinkMode::Hardlink, &|| {})
        .unwrap();
    assert!(m.created);
    let idx = m.path.join("index.php");
    assert_eq!(fs::read(&idx).unwrap(), b"<?php\n");
    let obj = store.object_path(files[0].object(), false);
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
    let again = store
        .materialise(&tree1, &list, Some(&[]), LinkMode::Hardlink, &|| {})
        .unwrap();
    assert!(!again.created);
    assert_eq!(store.check_generation(&tree1).unwrap(), Some(vec![]));
    store.remove_generation(&tree1).unwrap();
    assert!(!m.path.exists());
}

fn key(n: &str) -> GitOid {
    GitOid::parse(&n.repeat(40)).unwrap()
}

/// Makes a read-only file writable, as root or a careless owner can, and appends to it.
fn edit_in_place(path: &std::path::Path) {
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
    let mut f = fs::OpenOptions::new().append(true).open(path).unwrap();
    std::io::Write::write_all(&mut f, b"// hotfix\n").unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o444)).unwrap();
}

#[test]
fn an_edited_generation_is_found_and_rebuilt_after_its_objects_are_restored() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let files = [
        entry(&store, "index.php", b"<?php\n", EntryKind::File),
        entry(&store, "lib/a.php", b"<?php // a\n", EntryKind::File),
    ];
    let list: Vec<(String, &Entry)> = files.iter().map(|e| (e.path.clone(), e)).collect();
    let t = key("2");
    let m = store
        .materialise(&t, &list, Some(&[]), LinkMode::Hardlink, &|| {})
        .unwrap();
    edit_in_place(&m.path.join("lib/a.php"));
    assert_eq!(
        store.check_generation(&t).unwrap(),
        Some(vec!["lib/a.php".to_string()])
    );
    // The object shares the inode: it is refused until restored.
    let err = store
        .materialise(&t, &list, Some(&[]), LinkMode::Hardlink, &|| {})
        .unwrap_err();
    let StoreError::DamagedObjects { tampered, missing } = err else {
        panic!("{err}")
    };
    assert_eq!(tampered, vec![(files[1].object().clone(), false)]);
    assert!(missing.is_empty());
    store
        .repair_object(files[1].object(), false, b"<?php // a\n")
        .unwrap();
    let again = store
        .materialise(&t, &list, Some(&[]), LinkMode::Hardlink, &|| {})
        .unwrap();
    assert_eq!(again.repaired, vec!["lib/a.php".to_string()]);
    assert_eq!(fs::read(m.path.join("lib/a.php")).unwrap(), b"<?php // a\n");
    assert_eq!(store.check_generation(&t).unwrap(), Some(vec![]));

    // A file added (or removed) changes its directory.
    fs::set_permissions(m.path.join("lib"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(m.path.join("lib/extra.php"), "x").unwrap();
    let damaged = store.check_generation(&t).unwrap().unwrap();
    assert!(damaged.contains(&"lib/".to_string()), "{damaged:?}");
    assert!(
        damaged.contains(&"lib/extra.php".to_string()),
        "{damaged:?}"
    );
    let fixed = store
        .materialise(&t, &list, Some(&[]), LinkMode::Hardlink, &|| {})
        .unwrap();
    assert!(!fixed.repaired.is_empty());
    assert!(!m.path.join("lib/extra.php").exists());
    // A missing object is refused too.
    fs::remove_file(store.object_path(files[0].object(), false)).unwrap();
    let t2 = key("3");
    let err = store
        .materialise(&t2, &list, Some(&[]), LinkMode::Hardlink, &|| {})
        .unwrap_err();
    assert!(
        matches!(err, StoreError::DamagedObjects { ref missing, .. } if missing.len() == 1),
        "{err}"
    );
}

#[test]
fn copies_are_files_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let files = [entry(&store, "a.php", b"<?php // a\n", EntryKind::File)];
    let list: Vec<(String, &Entry)> = files.iter().map(|e| (e.path.clone(), e)).collect();
    let m = store
        .materialise(&key("4"), &list, Some(&[]), LinkMode::Copy, &|| {})
        .unwrap();
    assert_eq!(fs::metadata(m.path.join("a.php")).unwrap().nlink(), 1);
    edit_in_place(&m.path.join("a.php"));
    assert!(!store.object_tampered(files[0].object(), false));
    // Reflinks on a filesystem without them: an error of its own, with the cause.
    let err = store.materialise(&key("5"), &list, Some(&[]), LinkMode::Reflink, &|| {});
    if let Err(e) = err {
        assert!(matches!(e, mcb_store::StoreError::NoReflink { .. }), "{e}");
        assert!(e.to_string().contains("copy-on-write clone"), "{e}");
        assert!(std::error::Error::source(&e).is_some(), "{e}");
    }
}

/// An object edited through a hardlinked tree (as root on a web server would, whatever
/// the read-only bits) is replaced the next time its true bytes come in, and never read
/// back as if it were sound.
#[test]
fn an_object_edited_in_place_is_replaced_by_its_true_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("s")).unwrap();
    let h = store.put_object(b"<?php echo 1;\n", false).unwrap();
    let path = store.object_path(&h, false);
    let linked = dir.path().join("www-index.php");
    fs::hard_link(&path, &linked).unwrap();
    fs::set_permissions(&linked, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&linked, b"<?php echo 'hotfix, longer than before';\n").unwrap();
    assert!(store.object_tampered(&h, false));
    assert!(matches!(
        store.read_object_verified(&h, false),
        Err(StoreError::DamagedObjects { .. })
    ));
    // A reader brings the true bytes again (a zip unpacked, a directory read).
    let (again, size) = store
        .put_object_from(&mut &b"<?php echo 1;\n"[..], false)
        .unwrap();
    assert_eq!((again, size), (h.clone(), 14));
    assert_eq!(
        store.read_object_verified(&h, false).unwrap(),
        b"<?php echo 1;\n"
    );
    assert!(!store.object_tampered(&h, false));
    // The edited tree keeps its edit: it is another inode now.
    assert_eq!(
        fs::read(&linked).unwrap(),
        b"<?php echo 'hotfix, longer than before';\n"
    );
    assert_ne!(
        fs::metadata(&linked).unwrap().ino(),
        fs::metadata(&path).unwrap().ino()
    );
    // The other mode is never copied from an edited object.
    let x = store.put_object(b"#!/bin/sh\necho hi\n", true).unwrap();
    let xp = store.object_path(&x, true);
    fs::set_permissions(&xp, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(&xp, b"#!/bin/sh\nrm -rf /\n").unwrap();
    let t = std::time::UNIX_EPOCH + mcb_store::OBJECT_MTIME;
    fs::File::options()
        .write(true)
        .open(&xp)
        .unwrap()
        .set_modified(t)
        .unwrap();
    assert!(!store.put_object_variant(&x, false).unwrap());
    assert!(!store.has_object(&x, false));
}

/// A directory whose only file is the format's description becomes a store (the
/// repository's own `store/` holds `store/README.md`); one with other files does not.
#[test]
fn a_directory_holding_only_the_format_readme_becomes_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    fs::create_dir(&root).unwrap();
    fs::write(root.join("README.md"), "# The store's format\n").unwrap();
    assert!(matches!(
        Store::open_existing(&root),
        Err(StoreError::NoStore {
            empty_dir: true,
            ..
        })
    ));
    Store::open(&root).unwrap();
    assert_eq!(
        fs::read_to_string(root.join("README.md")).unwrap(),
        "# The store's format\n"
    );
    Store::open_existing(&root).unwrap();
    let other = dir.path().join("other");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("notes.txt"), "mine\n").unwrap();
    assert!(matches!(
        Store::open(&other),
        Err(StoreError::NotAStore { .. })
    ));
}
