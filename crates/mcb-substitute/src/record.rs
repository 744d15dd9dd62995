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
        let Some(key) = trusted.iter().find(|k| k.name == r.key) else {
            return Err(refused(format!(
                "the record of {manifest} is signed by '{}', a key this store does not trust",
                r.key.escape_debug()
            )));
        };
        let sig = hex::decode(&r.signature).unwrap_or_default();
        if !key.verify(&Self::message(&r.manifest, &r.tree), &sig) {
            return Err(refused(format!(
                "the record of {manifest} does not carry a valid signature of '{}'",
                r.key
            )));
        }
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
}
