//! The ed25519 keys a host signs what it publishes with, and the public keys a reader trusts.
//! A public key is written `NAME:HEX` (the name says whose it is; the 32 bytes are the key).

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use crate::error::SubstituteError;

/// A host's signing key: its name and its PKCS#8 document.
pub struct SigningKey {
    pub name: String,
    pair: Ed25519KeyPair,
    pkcs8: Vec<u8>,
}

/// Shows the key's name and public half only: the secret is never printed.
impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.public())
    }
}

/// A key a reader trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    pub name: String,
    pub public: Vec<u8>,
}

/// Names are what `mcb cache key` is given: short, plain, safe in a file and a record.
fn check_name(name: &str) -> Result<(), SubstituteError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(SubstituteError::Key(format!(
            "'{}' is not a key name: letters, digits, '-', '_' and '.', at most 64",
            name.escape_debug()
        )))
    }
}

impl SigningKey {
    /// A new key named `name`.
    pub fn generate(name: &str) -> Result<SigningKey, SubstituteError> {
        check_name(name)?;
        let rng = ring::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| SubstituteError::Key("cannot generate an ed25519 key".into()))?;
        Self::from_pkcs8(name, doc.as_ref())
    }

    fn from_pkcs8(name: &str, pkcs8: &[u8]) -> Result<SigningKey, SubstituteError> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8)
            .map_err(|e| SubstituteError::Key(format!("not an ed25519 key: {e}")))?;
        Ok(SigningKey {
            name: name.to_string(),
            pair,
            pkcs8: pkcs8.to_vec(),
        })
    }

    /// The key file's text: `NAME:HEX-OF-PKCS8`, one line. It is a secret.
    pub fn to_file_text(&self) -> String {
        format!("{}:{}\n", self.name, hex::encode(&self.pkcs8))
    }

    /// Reads a key file's text (never says what it holds).
    pub fn from_file_text(text: &str) -> Result<SigningKey, SubstituteError> {
        let (name, secret) = text
            .trim()
            .split_once(':')
            .ok_or_else(|| SubstituteError::Key("a key file holds NAME:HEX".into()))?;
        check_name(name)?;
        let pkcs8 = hex::decode(secret)
            .map_err(|_| SubstituteError::Key("a key file holds NAME:HEX".into()))?;
        Self::from_pkcs8(name, &pkcs8)
    }

    /// The public half, as readers write it in `trusted_keys`.
    pub fn public(&self) -> TrustedKey {
        TrustedKey {
            name: self.name.clone(),
            public: self.pair.public_key().as_ref().to_vec(),
        }
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }
}

impl TrustedKey {
    /// `NAME:HEX` with 32 bytes of key.
    pub fn parse(text: &str) -> Result<TrustedKey, SubstituteError> {
        let bad = || {
            SubstituteError::Key(format!(
                "'{}' is not a public key: NAME:HEX, as `mcb cache key` prints it",
                text.escape_debug()
            ))
        };
        let (name, key) = text.trim().split_once(':').ok_or_else(bad)?;
        check_name(name)?;
        let public = hex::decode(key).map_err(|_| bad())?;
        if public.len() != 32 {
            return Err(bad());
        }
        Ok(TrustedKey {
            name: name.to_string(),
            public,
        })
    }

    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.public)
            .verify(message, signature)
            .is_ok()
    }
}

impl std::fmt::Display for TrustedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.name, hex::encode(&self.public))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_signs_what_its_public_half_verifies_and_nothing_else() {
        let k = SigningKey::generate("ci-1").unwrap();
        let again = SigningKey::from_file_text(&k.to_file_text()).unwrap();
        let public = TrustedKey::parse(&k.public().to_string()).unwrap();
        let sig = again.sign(b"message");
        assert!(public.verify(b"message", &sig));
        assert!(!public.verify(b"messagE", &sig));
        let other = SigningKey::generate("ci-1").unwrap().public();
        assert!(!other.verify(b"message", &sig));
        for bad in [
            "",
            "x",
            "ci:zz",
            "ci:00",
            "../x:00",
            &format!("a b:{}", "0".repeat(64)),
        ] {
            assert!(TrustedKey::parse(bad).is_err(), "{bad}");
        }
    }
}
