//! The ids mcb reads back from files it does not control (manifests, locks, memos, commit
//! messages): each is checked as an id — exact length, hex digits, lowercase — when it is
//! parsed, so a value such as `../../etc` or a short string can never reach a path.

use std::fmt;

/// Why a text is not an id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{}' is not {what}: expected {len} lowercase hex digits", printable(.text))]
pub struct IdError {
    pub text: String,
    pub what: &'static str,
    pub len: usize,
}

/// `text` with control characters escaped and long values cut, for messages.
fn printable(text: &str) -> String {
    let cut: String = text.chars().take(80).collect();
    let mut out = cut.escape_debug().to_string();
    if text.chars().count() > 80 {
        out.push('…');
    }
    out
}

fn check_hex(text: &str, len: usize, what: &'static str) -> Result<(), IdError> {
    if text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(IdError {
            text: text.to_string(),
            what,
            len,
        })
    }
}

macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $len:expr, $what:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The number of hex digits of this id.
            pub const LEN: usize = $len;

            /// Checks `text` as an id of this kind. Uppercase hex is refused here: ids are
            /// written lowercase, and a caller that accepts user input lowercases it first.
            pub fn parse(text: &str) -> Result<$name, IdError> {
                check_hex(text, $len, $what)?;
                Ok($name(text.to_string()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The first two digits: the fan-out directory of a path named by this id.
            pub fn fan(&self) -> &str {
                &self.0[..2]
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(text: String) -> Result<$name, IdError> {
                check_hex(&text, $len, $what)?;
                Ok($name(text))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(text: &str) -> Result<$name, IdError> {
                $name::parse(text)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

hex_id!(
    /// The blake3 hash of a file's content: the name of a store object.
    ObjectHash,
    64,
    "a blake3 object hash"
);
hex_id!(
    /// The blake3 hash of a manifest's canonical bytes: the name of a source manifest.
    ManifestHash,
    64,
    "a blake3 manifest hash"
);
hex_id!(
    /// The blake3 hash of a downloaded file (a zip), as locks record it.
    Blake3,
    64,
    "a blake3 hash"
);
hex_id!(
    /// A git object id (SHA-1): a blob, tree or commit. The store records them as data and
    /// never interprets them.
    GitOid,
    40,
    "a git object id"
);

hex_id!(
    /// An MD5 digest, as the plugins directory publishes them for its zips.
    Md5,
    32,
    "an md5 digest"
);

impl ObjectHash {
    pub fn of(bytes: &[u8]) -> ObjectHash {
        ObjectHash(blake3::hash(bytes).to_hex().to_string())
    }

    pub(crate) fn from_hasher(hasher: &blake3::Hasher) -> ObjectHash {
        ObjectHash(hasher.finalize().to_hex().to_string())
    }
}

impl ManifestHash {
    pub(crate) fn of(bytes: &[u8]) -> ManifestHash {
        ManifestHash(blake3::hash(bytes).to_hex().to_string())
    }
}

impl Blake3 {
    pub fn of(bytes: &[u8]) -> Blake3 {
        Blake3(blake3::hash(bytes).to_hex().to_string())
    }

    pub fn from_hasher(hasher: &blake3::Hasher) -> Blake3 {
        Blake3(hasher.finalize().to_hex().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_exact_lowercase_hex() {
        let h = "ab".repeat(32);
        assert!(ObjectHash::parse(&h).is_ok());
        assert!(ObjectHash::parse(&h[..62]).is_err());
        assert!(ObjectHash::parse(&h.to_uppercase()).is_err());
        assert!(ManifestHash::parse("../../../../etc").is_err());
        assert!(GitOid::parse(&"0".repeat(40)).is_ok());
        assert!(GitOid::parse(&"0".repeat(64)).is_err());
        assert!(GitOid::parse("").is_err());
        let e = GitOid::parse("x\u{1b}[2J").unwrap_err().to_string();
        assert!(!e.contains('\u{1b}'), "{e}");
    }

    #[test]
    fn serde_checks_ids() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct T {
            m: ManifestHash,
        }
        assert!(ron::from_str::<T>("(m: \"ab\")").is_err());
        let ok: T = ron::from_str(&format!("(m: \"{}\")", "c".repeat(64))).unwrap();
        assert_eq!(ok.m.fan(), "cc");
    }
}
