//! Source manifests: the sorted file list of one source package, keyed by the blake3 of
//! its canonical bytes. No mtimes, no owners: the same source always gives the same key.

use std::fs;
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::id::{GitOid, ManifestHash, ObjectHash};
use crate::{IoContext, Result, Store, StoreError};

pub use crate::kind::EntryKind;

/// One file of a source package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// `/`-separated, relative to the package root.
    pub path: String,
    pub kind: EntryKind,
    pub size: u64,
    /// blake3 of the content.
    pub blake3: ObjectHash,
    /// The git blob id of the content.
    pub oid: GitOid,
}

impl Entry {
    pub fn object(&self) -> &ObjectHash {
        &self.blake3
    }

    /// Objects are stored per executable bit, because hardlinks share their mode.
    pub fn executable(&self) -> bool {
        self.kind == EntryKind::Exec
    }
}

/// A source package's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The git tree id of the package root, so composition can graft it whole.
    pub tree: GitOid,
    /// Sorted by path.
    pub entries: Vec<Entry>,
}

impl Manifest {
    pub fn new(tree: GitOid, mut entries: Vec<Entry>) -> Manifest {
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Manifest { tree, entries }
    }

    /// The bytes a manifest is stored and named by: its hash is their blake3.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        ron::to_string(self)
            .expect("a manifest is plain data and always serialises")
            .into_bytes()
    }

    /// Reads a manifest from bytes that came from elsewhere (a binary cache); `None` when
    /// they are not one. The caller checks the bytes against the name it asked for.
    pub fn from_bytes(bytes: &[u8]) -> Option<Manifest> {
        let text = std::str::from_utf8(bytes).ok()?;
        parse_canonical(text).or_else(|| ron::from_str(text).ok())
    }

    pub fn hash(&self) -> ManifestHash {
        ManifestHash::of(&self.canonical_bytes())
    }

    pub fn total_size(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }

    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries
            .binary_search_by(|e| e.path.as_str().cmp(path))
            .ok()
            .map(|i| &self.entries[i])
    }
}

/// Reads the canonical bytes mcb writes (`(tree:"…",entries:[(path:"…",kind:File,…),…])`,
/// no spaces, strings without escapes) about ten times faster than a general RON parser;
/// `None` for anything else, which is then read by `ron`. Ids are checked as ids either way.
fn parse_canonical(text: &str) -> Option<Manifest> {
    struct Cursor<'a> {
        rest: &'a str,
    }
    impl<'a> Cursor<'a> {
        fn eat(&mut self, token: &str) -> Option<()> {
            self.rest = self.rest.strip_prefix(token)?;
            Some(())
        }
        fn string(&mut self) -> Option<&'a str> {
            self.eat("\"")?;
            let end = self.rest.find(['"', '\\'])?;
            if self.rest.as_bytes()[end] != b'"' {
                return None;
            }
            let s = &self.rest[..end];
            self.rest = &self.rest[end + 1..];
            Some(s)
        }
        fn number(&mut self) -> Option<u64> {
            let end = self
                .rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(self.rest.len());
            let n = self.rest[..end].parse().ok()?;
            self.rest = &self.rest[end..];
            Some(n)
        }
    }
    let mut c = Cursor { rest: text };
    c.eat("(tree:")?;
    let tree = GitOid::parse(c.string()?).ok()?;
    c.eat(",entries:[")?;
    let mut entries = Vec::with_capacity(text.len() / 190);
    while !c.rest.starts_with(']') {
        if !entries.is_empty() {
            c.eat(",")?;
        }
        c.eat("(path:")?;
        let path = c.string()?.to_string();
        c.eat(",kind:")?;
        let kind = if c.eat("File").is_some() {
            EntryKind::File
        } else if c.eat("Exec").is_some() {
            EntryKind::Exec
        } else {
            c.eat("Symlink")?;
            EntryKind::Symlink
        };
        c.eat(",size:")?;
        let size = c.number()?;
        c.eat(",blake3:")?;
        let blake3 = ObjectHash::parse(c.string()?).ok()?;
        c.eat(",oid:")?;
        let oid = GitOid::parse(c.string()?).ok()?;
        c.eat(")")?;
        entries.push(Entry {
            path,
            kind,
            size,
            blake3,
            oid,
        });
    }
    c.eat("])")?;
    c.rest.is_empty().then_some(Manifest { tree, entries })
}

impl Store {
    pub(crate) fn manifest_path_of(&self, hash: &ManifestHash) -> PathBuf {
        self.manifest_path(hash)
    }

    fn manifest_path(&self, hash: &ManifestHash) -> PathBuf {
        self.root
            .join("pkgs")
            .join(hash.fan())
            .join(format!("{hash}.ron"))
    }

    pub fn has_manifest(&self, hash: &ManifestHash) -> bool {
        self.manifest_path(hash).exists()
    }

    /// Records a manifest. Every object it names must already be in the store (callers
    /// `sync` the object batch first), so no manifest ever names a missing object.
    pub fn put_manifest(&self, manifest: &Manifest) -> Result<ManifestHash> {
        let hash = manifest.hash();
        let path = self.manifest_path(&hash);
        if path.exists() {
            return Ok(hash);
        }
        for e in &manifest.entries {
            if !self.has_object(e.object(), e.executable()) {
                return Err(StoreError::MissingObject(e.object().clone()));
            }
        }
        self.write_atomic(&path, &manifest.canonical_bytes())?;
        Ok(hash)
    }

    pub fn read_manifest(&self, hash: &ManifestHash) -> Result<Manifest> {
        let path = self.manifest_path(hash);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::MissingManifest(hash.clone()));
            }
            Err(e) => return Err(e).at(&path),
        };
        // The name is the blake3 of these bytes, as written: checking them is checking the
        // manifest, without serialising it again.
        if &ManifestHash::of(text.as_bytes()) != hash {
            return Err(StoreError::BadManifest {
                hash: hash.clone(),
                message: "its content does not match its name".into(),
            });
        }
        let m = match parse_canonical(&text) {
            Some(m) => m,
            None => ron::from_str(&text).map_err(|e| StoreError::BadManifest {
                hash: hash.clone(),
                message: e.to_string(),
            })?,
        };
        // Read back, a manifest is input like any other: its paths must be clean before
        // anything is laid out from it.
        for e in &m.entries {
            crate::listing::check_path(e.path.as_bytes()).map_err(|err| {
                StoreError::BadManifest {
                    hash: hash.clone(),
                    message: err.to_string(),
                }
            })?;
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, n: u64, kind: EntryKind) -> Entry {
        Entry {
            path: path.to_string(),
            kind,
            size: n,
            blake3: ObjectHash::parse(&format!("{n:064x}")).unwrap(),
            oid: GitOid::parse(&format!("{:040x}", n * 7)).unwrap(),
        }
    }

    fn core_like(files: u64) -> Manifest {
        let entries = (0..files)
            .map(|i| {
                let kind = match i % 50 {
                    0 => EntryKind::Exec,
                    1 => EntryKind::Symlink,
                    _ => EntryKind::File,
                };
                entry(
                    &format!("c{:02}/d{:03}/f{i}.php", i % 60, i % 3000),
                    i,
                    kind,
                )
            })
            .collect();
        Manifest::new(GitOid::parse(&"ab".repeat(20)).unwrap(), entries)
    }

    #[test]
    fn the_canonical_reader_reads_what_ron_reads() {
        let m = core_like(500);
        let text = String::from_utf8(m.canonical_bytes()).unwrap();
        assert_eq!(parse_canonical(&text), Some(m.clone()));
        assert_eq!(ron::from_str::<Manifest>(&text).unwrap(), m);
        // Paths ron escapes, or writes in other ways, go to ron.
        for odd in ["a\"b.php", "a\\b.php", "é/ü.php", "tab\there", "new\nline"] {
            let m = Manifest::new(m.tree.clone(), vec![entry(odd, 3, EntryKind::File)]);
            let text = String::from_utf8(m.canonical_bytes()).unwrap();
            match parse_canonical(&text) {
                Some(read) => assert_eq!(read, m, "{text}"),
                None => assert_eq!(ron::from_str::<Manifest>(&text).unwrap(), m),
            }
        }
        // Anything but the canonical shape is not taken by it.
        for bad in [
            "",
            "(tree:\"x\",entries:[])",
            &text.replace(",kind:", ", kind:"),
            &format!("{text} "),
            &text.replace("size:3", "size:-3"),
        ] {
            assert!(parse_canonical(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_manifest_is_read_by_its_bytes_and_checked_by_its_name() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path().join("s")).unwrap();
        let m = Manifest::new(GitOid::parse(&"ab".repeat(20)).unwrap(), Vec::new());
        let h = s.put_manifest(&m).unwrap();
        assert_eq!(s.read_manifest(&h).unwrap(), m);
        let path = s.manifest_path(&h);
        let mut p = fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o644);
        fs::set_permissions(&path, p).unwrap();
        fs::write(
            &path,
            b"(tree:\"abababababababababababababababababababab\",entries:[] )",
        )
        .unwrap();
        assert!(matches!(
            s.read_manifest(&h),
            Err(StoreError::BadManifest { .. })
        ));
    }

    /// `cargo test --release -p mcb-store manifest_formats -- --ignored --nocapture`:
    /// reading a core-sized manifest through ron and through the canonical reader.
    #[test]
    #[ignore]
    fn manifest_formats() {
        let m = core_like(34_425);
        let bytes = m.canonical_bytes();
        let text = std::str::from_utf8(&bytes).unwrap();
        let time = |f: &dyn Fn()| {
            let t = std::time::Instant::now();
            for _ in 0..5 {
                f();
            }
            t.elapsed().as_secs_f64() / 5.0 * 1000.0
        };
        let ron_read = time(&|| {
            ron::from_str::<Manifest>(text).unwrap();
        });
        let fast_read = time(&|| {
            parse_canonical(text).unwrap();
        });
        let serialise = time(&|| {
            m.canonical_bytes();
        });
        let hash = time(&|| {
            ManifestHash::of(&bytes);
        });
        println!(
            "{} entries, {:.1} MB: ron read {ron_read:.1} ms, canonical read {fast_read:.1} ms, ron write {serialise:.1} ms, blake3 of the bytes {hash:.2} ms",
            m.entries.len(),
            bytes.len() as f64 / 1e6
        );
    }
}
