//! Archives staged in the store before they are read: copied (or downloaded) into `tmp/`
//! while hashed, so what is checked is exactly what is unpacked afterwards.

use std::io::Write;

use crate::http::Http;
use crate::{CatalogError, archive, limits};

/// An archive copied into the store's staging area, with the hashes of its bytes.
pub struct Staged {
    pub file: tempfile::NamedTempFile,
    pub blake3: mcb_store::Blake3,
    /// Lowercase hex.
    pub md5: String,
    pub size: u64,
}

/// Writes through to a file while hashing what passes.
struct Hashing<'a> {
    file: &'a mut std::fs::File,
    received: &'a std::sync::atomic::AtomicUsize,
    blake3: blake3::Hasher,
    md5: md5::Md5,
    size: u64,
}

impl Write for Hashing<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use md5::Digest;
        let n = self.file.write(buf)?;
        self.blake3.update(&buf[..n]);
        self.md5.update(&buf[..n]);
        self.size += n as u64;
        self.received
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Copies an archive (a local file or an `http(s)://` URL) into the store's staging area,
/// hashing it on the way: what is checked is exactly what is read afterwards.
pub fn stage_archive(
    http: &Http,
    store: &mcb_store::Store,
    location: &mcb_config::Location,
    received: &std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> Result<Staged, CatalogError> {
    use md5::Digest;
    let mut file = store.staging_file()?;
    let mut sink = Hashing {
        file: file.as_file_mut(),
        received,
        blake3: blake3::Hasher::new(),
        md5: md5::Md5::new(),
        size: 0,
    };
    match location {
        mcb_config::Location::Path(p) => {
            let src = std::fs::File::open(p).map_err(|source| CatalogError::Io {
                path: p.clone(),
                source,
            })?;
            let limit = http.limits().body_bytes;
            let mut capped = archive::Capped::new(src, limit);
            std::io::copy(&mut capped, &mut sink).map_err(|source| {
                if capped.hit {
                    CatalogError::Dir {
                        path: p.clone(),
                        message: format!(
                            "is larger than {} (the http-bytes limit applies to archives)",
                            limits::human_bytes(limit)
                        ),
                    }
                } else {
                    CatalogError::Io {
                        path: p.clone(),
                        source,
                    }
                }
            })?;
        }
        mcb_config::Location::Url(u) => {
            http.download(u, &mut sink)?;
        }
    }
    let staged = Staged {
        blake3: mcb_store::Blake3::from_hasher(&sink.blake3),
        md5: hex::encode(sink.md5.finalize()),
        size: sink.size,
        file,
    };
    Ok(staged)
}

impl Staged {
    /// The staged archive, for reading.
    pub fn reader(&self) -> Result<std::io::BufReader<std::fs::File>, CatalogError> {
        let f = self.file.reopen().map_err(|source| CatalogError::Io {
            path: self.file.path().to_path_buf(),
            source,
        })?;
        Ok(std::io::BufReader::new(f))
    }
}
