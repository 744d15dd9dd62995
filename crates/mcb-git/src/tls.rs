//! The process's one TLS crypto provider. reqwest (for plugin indexes and zips) and gix's
//! HTTP transport (for git over https) both take rustls's process default; mcb builds
//! them without one and installs ring here, before the first client is made.

/// Makes ring the process's rustls crypto provider. Calling it again, or after another
/// provider was installed, changes nothing.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
