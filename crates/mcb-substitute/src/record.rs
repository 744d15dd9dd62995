//! The signed record a host publishes beside each package it uploads: which manifest, of
//! which git tree, signed by which key. A reader takes a package only through a record
//! signed by a key it trusts, and then checks every byte against the record's hashes.

use serde::{Deserialize, Serialize};

use crate::error::SubstituteError;
use crate::key::{SigningKey, TrustedKey};

/// The largest record a reader reads.
pub const MAX_RECORD_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub format: u32,
    /// The manifest's blake3 (its name in the store).
    pub manifest: String,
    /// The git tree the manifest describes.
    pub tree: String,
    pub files: u64,
    pub bytes: u64,
    /// The signing key's name.
    pub key: String,
    /// ed25519 over [`Record::message`], hex.
    pub signature: String,
}

impl Record {
    /// What is signed: the format, the manifest and its tree.
    fn message(manifest: &str, tree: &str) -> Vec<u8> {
        format!("mcb-cache-v1\nmanifest {manifest}\ntree {tree}\n").into_bytes()
    }

    pub fn signed(key: &SigningKey, manifest: &str, tree: &str, files: u64, bytes: u64) -> Record {
        Record {
            format: 1,
            manifest: manifest.to_string(),
            tree: tree.to_string(),
            files,
            bytes,
            key: key.name.clone(),
            signature: hex::encode(key.sign(&Self::message(manifest, tree))),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a record is plain data")
    }

    /// Reads and checks a record for `manifest`: format, name, and a signature by one of
    /// `trusted`. `cache` names the cache in the error.
    pub fn verified(
        bytes: &[u8],
        manifest: &str,
        trusted: &[TrustedKey],
        cache: &str,
    ) -> Result<Record, SubstituteError> {
        let refused = |what: String| SubstituteError::Refused {
            cache: cache.to_string(),
            what,
        };
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(refused(format!(
                "the record of {manifest} is over {MAX_RECORD_BYTES} bytes"
            )));
        }
        let r: Record = serde_json::from_slice(bytes)
            .map_err(|e| refused(format!("the record of {manifest} is not a record: {e}")))?;
        if r.format != 1 || r.manifest != manifest {
            return Err(refused(format!(
                "the record of {manifest} is of another package or format"
            )));
        }
        let message = Self::message(&r.manifest, &r.tree);
        check_signature(&r.key, &r.signature, &message, trusted)
            .map_err(|why| refused(format!("the record of {manifest} {why}")))?;
        Ok(r)
    }
}

/// Whether `signature` (hex) is `key`'s, one of `trusted`, over `message`; what is wrong
/// otherwise, to follow "the record of …".
fn check_signature(
    key: &str,
    signature: &str,
    message: &[u8],
    trusted: &[TrustedKey],
) -> Result<(), String> {
    let Some(trusted_key) = trusted.iter().find(|k| k.name == key) else {
        return Err(format!(
            "is signed by '{}', a key this store does not trust",
            key.escape_debug()
        ));
    };
    let sig = hex::decode(signature).unwrap_or_default();
    if !trusted_key.verify(message, &sig) {
        return Err(format!(
            "does not carry a valid signature of '{}'",
            key.escape_debug()
        ));
    }
    Ok(())
}

/// The signed record of a whole generation: what one site's lock resolved to (its tree and
/// the packages it is made of) and when it was published. A store realising that lock
/// takes every package it lacks at once through it; `mcb cache gc` keeps what recent
/// records name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockRecord {
    pub format: u32,
    /// The blake3 of the lock's text (its name in the cache).
    pub lock: String,
    pub site: String,
    /// The generation's git tree.
    pub tree: String,
    /// The manifests of its packages, sorted.
    pub packages: Vec<String>,
    /// When it was published (seconds since 1970).
    pub published: u64,
    pub key: String,
    pub signature: String,
}

/// The largest lock record a reader reads (a site of some hundred packages).
pub const MAX_LOCK_RECORD_BYTES: usize = 256 * 1024;

impl LockRecord {
    fn message(lock: &str, site: &str, tree: &str, packages: &[String], published: u64) -> Vec<u8> {
        let mut m = format!(
            "mcb-cache-v1 lock\nlock {lock}\nsite {site}\ntree {tree}\npublished {published}\n"
        );
        for p in packages {
            m.push_str(&format!("package {p}\n"));
        }
        m.into_bytes()
    }

    pub fn signed(
        key: &SigningKey,
        lock: &str,
        site: &str,
        tree: &str,
        mut packages: Vec<String>,
        published: u64,
    ) -> LockRecord {
        packages.sort();
        packages.dedup();
        let signature =
            hex::encode(key.sign(&Self::message(lock, site, tree, &packages, published)));
        LockRecord {
            format: 1,
            lock: lock.to_string(),
            site: site.to_string(),
            tree: tree.to_string(),
            packages,
            published,
            key: key.name.clone(),
            signature,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a record is plain data")
    }

    /// Reads a lock record without checking who signed it: what `mcb cache gc` keeps is
    /// decided by every record it can read, trusted or not (keeping too much is harmless).
    pub fn parse(bytes: &[u8]) -> Option<LockRecord> {
        if bytes.len() > MAX_LOCK_RECORD_BYTES {
            return None;
        }
        serde_json::from_slice::<LockRecord>(bytes)
            .ok()
            .filter(|r| r.format == 1)
    }

    /// Reads and checks the record of lock `lock`: format, name, and a signature by one
    /// of `trusted`.
    pub fn verified(
        bytes: &[u8],
        lock: &str,
        trusted: &[TrustedKey],
        cache: &str,
    ) -> Result<LockRecord, SubstituteError> {
        let refused = |what: String| SubstituteError::Refused {
            cache: cache.to_string(),
            what,
        };
        let r = Self::parse(bytes)
            .ok_or_else(|| refused(format!("the record of lock {lock} is not a record")))?;
        if r.lock != lock {
            return Err(refused(format!(
                "the record of lock {lock} is of another lock"
            )));
        }
        let message = Self::message(&r.lock, &r.site, &r.tree, &r.packages, r.published);
        check_signature(&r.key, &r.signature, &message, trusted)
            .map_err(|why| refused(format!("the record of lock {lock} {why}")))?;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_trusted_signature_over_the_same_package_is_taken() {
        let k = SigningKey::generate("a").unwrap();
        let trusted = [k.public()];
        let r = Record::signed(&k, "m1", "t1", 2, 10);
        assert!(Record::verified(&r.to_bytes(), "m1", &trusted, "c").is_ok());
        // Another package's record, a changed tree, a stranger's key, no signature.
        assert!(Record::verified(&r.to_bytes(), "m2", &trusted, "c").is_err());
        let mut t = r.clone();
        t.tree = "t2".into();
        assert!(Record::verified(&t.to_bytes(), "m1", &trusted, "c").is_err());
        let stranger = SigningKey::generate("a").unwrap();
        let s = Record::signed(&stranger, "m1", "t1", 2, 10);
        assert!(Record::verified(&s.to_bytes(), "m1", &trusted, "c").is_err());
        let mut u = r.clone();
        u.signature.clear();
        assert!(Record::verified(&u.to_bytes(), "m1", &trusted, "c").is_err());
        assert!(Record::verified(b"{}", "m1", &trusted, "c").is_err());
        assert!(Record::verified(&vec![b' '; MAX_RECORD_BYTES + 1], "m1", &trusted, "c").is_err());
    }

    #[test]
    fn a_lock_record_holds_only_with_its_packages_and_a_trusted_signature() {
        let k = SigningKey::generate("a").unwrap();
        let trusted = [k.public()];
        let r = LockRecord::signed(&k, "l1", "s", "t", vec!["m2".into(), "m1".into()], 7);
        assert_eq!(r.packages, ["m1", "m2"]);
        assert!(LockRecord::verified(&r.to_bytes(), "l1", &trusted, "c").is_ok());
        assert!(LockRecord::verified(&r.to_bytes(), "l2", &trusted, "c").is_err());
        let mut more = r.clone();
        more.packages.push("m3".into());
        assert!(LockRecord::verified(&more.to_bytes(), "l1", &trusted, "c").is_err());
        let mut older = r.clone();
        older.published = 1;
        assert!(LockRecord::verified(&older.to_bytes(), "l1", &trusted, "c").is_err());
        let stranger = SigningKey::generate("a").unwrap();
        assert!(LockRecord::verified(&r.to_bytes(), "l1", &[stranger.public()], "c").is_err());
        // gc reads any record, trusted or not.
        assert_eq!(
            LockRecord::parse(&more.to_bytes()).unwrap().packages.len(),
            3
        );
    }
}
