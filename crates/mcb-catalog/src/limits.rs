//! Every bound mcb puts on what it reads, in one place: sizes of sources, files and HTTP
//! bodies, and the time limits of network requests. Defaults suit real Moodle sites (a
//! Moodle core holds about 35,000 files and 400 MB); `MCB_LIMITS` (or `--limits`)
//! changes any of them, e.g. `MCB_LIMITS="file-bytes=64M,idle-timeout=60s"`.

use std::fmt;
use std::time::Duration;

use mcb_store::SourceLimits;

/// Bounds on HTTP requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// To open a connection.
    pub connect: Duration,
    /// Without a byte from the server.
    pub idle: Duration,
    /// For one request from start to end, retries included.
    pub deadline: Duration,
    /// Bytes of one response body.
    pub body_bytes: u64,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            connect: Duration::from_secs(10),
            idle: Duration::from_secs(30),
            deadline: Duration::from_secs(30 * 60),
            body_bytes: 1 << 30,
        }
    }
}

/// Bounds on the metadata a registry answers with (a Composer repository's JSON): it is
/// parsed whole, so it is held far below the bound on bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataLimits {
    /// Bytes of one metadata document.
    pub bytes: u64,
    /// Versions of one package read from it.
    pub versions: u64,
}

impl Default for MetadataLimits {
    fn default() -> Self {
        // Packagist's largest p2 documents hold a few MB and a few thousand versions.
        MetadataLimits {
            bytes: 16 << 20,
            versions: 5_000,
        }
    }
}

/// All limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    pub source: SourceLimits,
    pub http: HttpLimits,
    pub metadata: MetadataLimits,
}

/// The names `MCB_LIMITS` takes, with what each bounds.
pub const LIMIT_NAMES: &[(&str, &str)] = &[
    (
        "source-files",
        "files in one source (git tree, zip, directory)",
    ),
    ("source-bytes", "bytes of all files of one source"),
    ("file-bytes", "bytes of one file"),
    ("http-bytes", "bytes of one HTTP response body"),
    (
        "metadata-bytes",
        "bytes of one metadata document (a Composer repository's JSON)",
    ),
    (
        "metadata-versions",
        "versions of one package read from a metadata document",
    ),
    ("connect-timeout", "seconds to open a connection"),
    ("idle-timeout", "seconds without a byte from a server"),
    (
        "request-deadline",
        "seconds for one HTTP request, retries included",
    ),
];

/// A limit specification that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("limits '{spec}': {message}")]
pub struct LimitsError {
    pub spec: String,
    pub message: String,
}

impl Limits {
    /// Reads `name=value,…` over the defaults. Sizes take `K`, `M`, `G` (powers of 1024),
    /// times `s`, `m`, `h`.
    pub fn parse(spec: &str) -> Result<Limits, LimitsError> {
        let mut l = Limits::default();
        let err = |message: String| LimitsError {
            spec: spec.to_string(),
            message,
        };
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| err(format!("'{part}' is not name=value")))?;
            let (name, value) = (name.trim(), value.trim());
            let size = || {
                parse_size(value)
                    .ok_or_else(|| err(format!("'{value}' is not a size such as 512M")))
            };
            let time = || {
                parse_time(value).ok_or_else(|| err(format!("'{value}' is not a time such as 30s")))
            };
            match name {
                "source-files" => l.source.files = size()?,
                "source-bytes" => l.source.total_bytes = size()?,
                "file-bytes" => l.source.file_bytes = size()?,
                "http-bytes" => l.http.body_bytes = size()?,
                "metadata-bytes" => l.metadata.bytes = size()?,
                "metadata-versions" => l.metadata.versions = size()?,
                "connect-timeout" => l.http.connect = time()?,
                "idle-timeout" => l.http.idle = time()?,
                "request-deadline" => l.http.deadline = time()?,
                other => {
                    let names: Vec<&str> = LIMIT_NAMES.iter().map(|(n, _)| *n).collect();
                    return Err(err(format!(
                        "unknown limit '{other}'; the limits are {}",
                        names.join(", ")
                    )));
                }
            }
        }
        Ok(l)
    }
}

impl fmt::Display for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "source-files={},source-bytes={},file-bytes={},http-bytes={},metadata-bytes={},metadata-versions={},connect-timeout={}s,idle-timeout={}s,request-deadline={}s",
            self.source.files,
            self.source.total_bytes,
            self.source.file_bytes,
            self.http.body_bytes,
            self.metadata.bytes,
            self.metadata.versions,
            self.http.connect.as_secs(),
            self.http.idle.as_secs(),
            self.http.deadline.as_secs()
        )
    }
}

fn parse_size(v: &str) -> Option<u64> {
    let (digits, shift) = match v.chars().last()? {
        'K' | 'k' => (&v[..v.len() - 1], 10),
        'M' | 'm' => (&v[..v.len() - 1], 20),
        'G' | 'g' => (&v[..v.len() - 1], 30),
        _ => (v, 0),
    };
    let n: u64 = digits.parse().ok()?;
    n.checked_mul(1u64 << shift).filter(|n| *n > 0)
}

fn parse_time(v: &str) -> Option<Duration> {
    let (digits, unit) = match v.chars().last()? {
        's' => (&v[..v.len() - 1], 1),
        'm' => (&v[..v.len() - 1], 60),
        'h' => (&v[..v.len() - 1], 3600),
        _ => (v, 1),
    };
    let n: u64 = digits.parse().ok()?;
    n.checked_mul(unit)
        .filter(|n| *n > 0)
        .map(Duration::from_secs)
}

/// Bytes as people read them, for messages.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if n >= size {
            return if n.is_multiple_of(size) {
                format!("{} {unit}", n / size)
            } else {
                format!("{:.1} {unit}", n as f64 / size as f64)
            };
        }
    }
    format!("{n} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_over_the_defaults() {
        let l = Limits::parse("file-bytes=64M, idle-timeout=2s,source-files=10").unwrap();
        assert_eq!(l.source.file_bytes, 64 << 20);
        assert_eq!(l.http.idle, Duration::from_secs(2));
        assert_eq!(l.source.files, 10);
        assert_eq!(l.http.connect, HttpLimits::default().connect);
        assert_eq!(Limits::parse("").unwrap(), Limits::default());
        for bad in [
            "file-bytes",
            "file-bytes=0",
            "nope=1",
            "idle-timeout=x",
            "http-bytes=99999999999G",
        ] {
            assert!(Limits::parse(bad).is_err(), "{bad}");
        }
        assert!(
            Limits::parse("nope=1")
                .unwrap_err()
                .to_string()
                .contains("source-files")
        );
        assert_eq!(human_bytes(256 << 20), "256 MiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }
}
