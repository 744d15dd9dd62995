//! One binary cache: an object store reached by URL, and the keys mcb keeps in it.
//!
//! Keys (under the URL's path): `mcb-cache-v1/objects/<first two hex digits>/<blake3>` (a file's bytes),
//! `mcb-cache-v1/manifests/<blake3>.ron` (a package's manifest, as the store writes it),
//! `mcb-cache-v1/records/<blake3>.json` (the signed record of that manifest),
//! `mcb-cache-v1/locks/<blake3>.json` (the signed record of a site's lock: its generation
//! and packages, and when it was published). A key is
//! written once and never rewritten: the record last, so a record names a complete package.

use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::error::SubstituteError;

pub const PREFIX: &str = "mcb-cache-v1";

/// How long one request to a cache may take, and how often a failed one is tried again:
/// a slow or failing cache gives way to upstream quickly.
#[derive(Debug, Clone, Copy)]
pub struct CacheLimits {
    pub timeout: Duration,
    pub retries: usize,
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            timeout: Duration::from_secs(30),
            retries: 1,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Substituter {
    /// The URL without credentials or query: what mcb shows.
    pub shown: String,
    store: Arc<dyn ObjectStore>,
    base: String,
    /// Writes through `put` with `PutMode::Create` (a directory, S3); else a temporary key
    /// and a copy that does not overwrite (WebDAV).
    create_mode: bool,
    pub local: bool,
}

/// The URL as shown: scheme, host, port and path; never a user, password or query.
pub fn shown_url(url: &url::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

impl Substituter {
    /// A cache by URL: `file:///dir`, `http(s)://host/path` (WebDAV: GET, PUT, COPY),
    /// `s3://bucket/path` (credentials, region and endpoint from the environment, as the
    /// AWS tools read them). A URL without a scheme is refused, never taken for a path.
    pub fn open(text: &str, limits: CacheLimits) -> Result<Substituter, SubstituteError> {
        let bad = |why: &str| SubstituteError::BadUrl {
            url: text.split('@').next_back().unwrap_or("").to_string(),
            why: why.to_string(),
        };
        mcb_git::tls::install_crypto_provider();
        let url = url::Url::parse(text)
            .map_err(|_| bad("it is not a URL (file://, http(s):// or s3://)"))?;
        let shown = shown_url(&url);
        let retry = object_store::RetryConfig {
            max_retries: limits.retries,
            retry_timeout: limits.timeout,
            ..Default::default()
        };
        let client = object_store::ClientOptions::new()
            .with_timeout(limits.timeout)
            .with_connect_timeout(limits.timeout.min(Duration::from_secs(10)));
        let base = url.path().trim_matches('/').to_string();
        let (store, create_mode, local, base): (Arc<dyn ObjectStore>, bool, bool, String) =
            match url.scheme() {
                "file" => {
                    let dir = url
                        .to_file_path()
                        .map_err(|_| bad("a file:// URL names an absolute directory"))?;
                    std::fs::create_dir_all(&dir).map_err(|e| bad(&e.to_string()))?;
                    let fs = object_store::local::LocalFileSystem::new_with_prefix(&dir)
                        .map_err(|e| bad(&e.to_string()))?;
                    (Arc::new(fs), true, true, String::new())
                }
                "http" | "https" => {
                    let mut root = url.clone();
                    root.set_path("/");
                    root.set_query(None);
                    let _ = root.set_username("");
                    let _ = root.set_password(None);
                    // A user and password in the URL go in a header of every request, so
                    // no URL the client builds (and no error that quotes one) holds them.
                    let mut client = client.with_allow_http(url.scheme() == "http");
                    if !url.username().is_empty() || url.password().is_some() {
                        use base64::Engine;
                        let decode = |s: &str| {
                            percent_encoding::percent_decode_str(s)
                                .decode_utf8_lossy()
                                .into_owned()
                        };
                        let pair = format!(
                            "{}:{}",
                            decode(url.username()),
                            decode(url.password().unwrap_or(""))
                        );
                        let token = base64::engine::general_purpose::STANDARD.encode(pair);
                        let mut value =
                            object_store::HeaderValue::from_str(&format!("Basic {token}"))
                                .map_err(|_| bad("its user or password cannot be sent"))?;
                        value.set_sensitive(true);
                        let mut headers = object_store::HeaderMap::new();
                        headers.insert("authorization", value);
                        client = client.with_default_headers(headers);
                    }
                    let http = object_store::http::HttpBuilder::new()
                        .with_url(root.as_str().trim_end_matches('/'))
                        .with_retry(retry)
                        .with_client_options(client)
                        .build()
                        .map_err(|e| bad(&e.to_string()))?;
                    (Arc::new(http), false, false, base)
                }
                "s3" => {
                    if !url.username().is_empty() || url.password().is_some() {
                        return Err(bad(
                            "an s3:// URL holds no credentials: they come from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or the provider's files",
                        ));
                    }
                    let bucket = url.host_str().ok_or_else(|| bad("s3:// names a bucket"))?;
                    // An S3-compatible server on plain http (a MinIO in the same rack) is
                    // reached as its endpoint says.
                    let plain = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
                        .iter()
                        .filter_map(|v| std::env::var(v).ok())
                        .any(|e| e.starts_with("http://"));
                    let s3 = object_store::aws::AmazonS3Builder::from_env()
                        .with_url(format!("s3://{bucket}"))
                        .with_retry(retry)
                        .with_client_options(client.with_allow_http(plain))
                        .build()
                        .map_err(|e| bad(&e.to_string()))?;
                    (Arc::new(s3), true, false, base)
                }
                other => {
                    return Err(bad(&format!(
                        "mcb reads caches over file://, http(s):// and s3://, not {other}://"
                    )));
                }
            };
        Ok(Substituter {
            shown,
            store,
            base,
            create_mode,
            local,
        })
    }

    pub fn key(&self, rest: &str) -> Key {
        if self.base.is_empty() {
            Key::from(format!("{PREFIX}/{rest}"))
        } else {
            Key::from(format!("{}/{PREFIX}/{rest}", self.base))
        }
    }

    /// This cache's answer refused: `what` was wrong with it.
    pub fn refused(&self, what: String) -> SubstituteError {
        SubstituteError::Refused {
            cache: self.shown.clone(),
            what,
        }
    }

    fn remote(&self, what: String, source: object_store::Error) -> SubstituteError {
        SubstituteError::Remote {
            cache: self.shown.clone(),
            what,
            source: Box::new(source),
        }
    }

    /// The bytes at `key`, at most `max`; `None` when the cache does not have it.
    pub async fn get(&self, key: &Key, max: u64) -> Result<Option<Vec<u8>>, SubstituteError> {
        match self.store.get(key).await {
            Ok(r) => {
                if r.meta.size > max {
                    return Err(SubstituteError::Refused {
                        cache: self.shown.clone(),
                        what: format!("{key} is {} bytes, over {max}", r.meta.size),
                    });
                }
                let bytes = r
                    .bytes()
                    .await
                    .map_err(|e| self.remote(format!("cannot read {key}"), e))?;
                if bytes.len() as u64 > max {
                    return Err(SubstituteError::Refused {
                        cache: self.shown.clone(),
                        what: format!("{key} is over {max} bytes"),
                    });
                }
                Ok(Some(bytes.to_vec()))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.remote(format!("cannot read {key}"), e)),
        }
    }

    pub async fn has(&self, key: &Key) -> Result<bool, SubstituteError> {
        match self.store.head(key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.remote(format!("cannot ask for {key}"), e)),
        }
    }

    /// Writes `bytes` at `key` unless the key exists; another host writing the same key at
    /// the same time is no error (the bytes are the same: keys are content hashes, or a
    /// record of one). Nothing half-written is ever visible at `key`.
    pub async fn create(&self, key: &Key, bytes: Vec<u8>) -> Result<(), SubstituteError> {
        if self.create_mode {
            let opts = PutOptions {
                mode: PutMode::Create,
                ..Default::default()
            };
            return match self
                .store
                .put_opts(key, PutPayload::from(bytes), opts)
                .await
            {
                Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
                Err(e) => Err(self.remote(format!("cannot write {key}"), e)),
            };
        }
        // WebDAV: the whole upload goes to a key of its own beside the final one (a PUT
        // makes the directories it needs; a COPY may not), then the server copies it into
        // place without overwriting.
        let nonce = {
            let mut b = [0u8; 12];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
                .map_err(|_| SubstituteError::Key("no randomness for a temporary key".into()))?;
            hex::encode(b)
        };
        let tmp = Key::from(format!("{key}.tmp-{nonce}"));
        self.store
            .put(&tmp, PutPayload::from(bytes))
            .await
            .map_err(|e| self.remote(format!("cannot write {tmp}"), e))?;
        let copied = self.store.copy_if_not_exists(&tmp, key).await;
        let _ = self.store.delete(&tmp).await;
        match copied {
            Ok(()) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(self.remote(format!("cannot write {key}"), e)),
        }
    }

    /// Every key under `rest` with its size and when it was written (`cache gc`). A cache
    /// that cannot list (a WebDAV server without PROPFIND) says so as an error.
    pub async fn list(
        &self,
        rest: &str,
    ) -> Result<Vec<(Key, u64, std::time::SystemTime)>, SubstituteError> {
        use futures::TryStreamExt;
        let prefix = self.key(rest);
        self.store
            .list(Some(&prefix))
            .map_ok(|m| (m.location, m.size, m.last_modified.into()))
            .try_collect()
            .await
            .map_err(|e| self.remote(format!("cannot list {prefix}"), e))
    }

    pub async fn delete(&self, key: &Key) -> Result<(), SubstituteError> {
        match self.store.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.remote(format!("cannot delete {key}"), e)),
        }
    }
}
