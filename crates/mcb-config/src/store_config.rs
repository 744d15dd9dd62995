//! A store's own settings, shared by every site built in it: `STORE/config.ron`.
//!
//! ```ron
//! StoreConfig(
//!     // Binary caches, asked in order for a locked package the store lacks.
//!     substituters: ["https://cache.example.org/mcb", "file:///srv/mcb-cache"],
//!     // The public keys whose signed records a cache's packages must carry.
//!     trusted_keys: ["ci-1:3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29"],
//!     // The key `mcb cache push` signs with (a file only its owner reads).
//!     signing_key: "/etc/mcb/cache.key",
//! )
//! ```
//!
//! No credential belongs here: a cache's credentials come from the environment or the
//! provider's usual files.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::ConfigError;

const MAX_STORE_CONFIG_BYTES: u64 = 1 << 20;

/// The file's name in the store.
pub const STORE_CONFIG_FILE: &str = "config.ron";

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename = "StoreConfig")]
pub struct StoreConfig {
    #[serde(default)]
    pub substituters: Vec<String>,
    #[serde(default)]
    pub trusted_keys: Vec<String>,
    #[serde(default)]
    pub signing_key: Option<PathBuf>,
}

impl StoreConfig {
    /// The settings of the store at `root`; the defaults when it has no config file.
    pub fn load(root: &Path) -> Result<StoreConfig, ConfigError> {
        let path = root.join(STORE_CONFIG_FILE);
        if !path.exists() {
            return Ok(StoreConfig::default());
        }
        let text = crate::site::read_bounded(&path, MAX_STORE_CONFIG_BYTES).map_err(|e| {
            ConfigError::new(&path, format!("cannot read the store's settings: {e}"))
        })?;
        let c: StoreConfig = ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
            .from_str(&text)
            .map_err(|e| {
                ConfigError::new(&path, e.code.to_string())
                    .at(Some((e.span.start.line, e.span.start.col)))
                    .hint("StoreConfig(substituters: [\"https://…\"], trusted_keys: [\"NAME:HEX\"], signing_key: \"/path\")")
            })?;
        if let Some(k) = &c.signing_key
            && !k.is_absolute()
        {
            return Err(ConfigError::new(
                &path,
                "signing_key is an absolute path".to_string(),
            ));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_without_settings_has_none_and_bad_settings_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            StoreConfig::load(dir.path()).unwrap(),
            StoreConfig::default()
        );
        let write = |t: &str| std::fs::write(dir.path().join(STORE_CONFIG_FILE), t).unwrap();
        write(
            "StoreConfig(substituters: [\"file:///c\"], trusted_keys: [\"a:00\"], signing_key: \"/k\")",
        );
        let c = StoreConfig::load(dir.path()).unwrap();
        assert_eq!(c.substituters, ["file:///c"]);
        assert_eq!(c.signing_key.as_deref(), Some(Path::new("/k")));
        for bad in [
            "StoreConfig(signing_key: \"k\")",
            "StoreConfig(password: \"x\")",
            "StoreConfig(substituters: \"file:///c\")",
        ] {
            write(bad);
            assert!(StoreConfig::load(dir.path()).is_err(), "{bad}");
        }
    }
}
