//! CAMP, a plugin registry whose metadata is signed with TUF (The Update Framework,
//! specification 1.0): the client workflow of its section 5, for ed25519 keys.
//!
//! From a pinned root, each newer root (`N.root.json`) must be signed by a threshold of the
//! old root's keys and of its own; then the timestamp, snapshot and targets roles, each
//! signed by a threshold of the keys the root names for it, none expired (a frozen mirror
//! is refused), none older than the versions trusted before (a rolled-back mirror is
//! refused), the snapshot and targets being the versions the role above names. A target
//! is taken only with the length and sha256 the signed targets give it; its `custom`
//! says the component, version, release, tier and revocation.
//!
//! `tough`, the maintained TUF client crate, is async over tokio and builds aws-lc-rs;
//! mcb's network code is blocking and its one crypto provider is ring, which verifies
//! ed25519 here.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use sha2::Digest;

use crate::http::Http;

/// Why a CAMP repository's metadata is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TufError {
    #[error("cannot read {file}: {message}")]
    Unavailable { file: String, message: String },
    #[error("{file} is malformed: {message}")]
    Malformed { file: String, message: String },
    #[error(
        "{file} is signed by {valid} trusted {} of the {role} role, and needs {threshold}",
        if *valid == 1 { "key" } else { "keys" }
    )]
    Threshold {
        file: String,
        role: String,
        valid: usize,
        threshold: usize,
    },
    #[error("{file} expired at {expires}: the repository (or the mirror serving it) is frozen")]
    Expired { file: String, expires: String },
    #[error(
        "{file} is version {got}, older than version {trusted} trusted before: the repository was rolled back"
    )]
    Rollback {
        file: String,
        trusted: u64,
        got: u64,
    },
    #[error("{file} is version {got}, but {by} names version {want}")]
    Mismatch {
        file: String,
        by: String,
        got: u64,
        want: u64,
    },
    #[error("target {target} has {what}, but the signed targets say {want}; nothing was stored")]
    Target {
        target: String,
        what: String,
        want: String,
    },
}

/// The versions a client trusted last time (rollback protection) and the root it trusts
/// now: kept by the caller between runs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrustedState {
    /// The newest root trusted, as served.
    pub root: String,
    pub timestamp: u64,
    pub snapshot: u64,
    pub targets: u64,
}

/// A file the signed targets list, with what its `custom` says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampTarget {
    /// Its path under `targets/`.
    pub name: String,
    pub length: u64,
    /// Lowercase hex.
    pub sha256: String,
    pub component: String,
    /// The plugin version (`$plugin->version`).
    pub version: String,
    pub release: Option<String>,
    /// 1: published; 2: built deterministically from a tag; 3: reviewed by two.
    pub tier: u8,
    /// Why the registry revoked it, when it did.
    pub revoked: Option<String>,
    /// When it was published (seconds since the epoch), when `custom` says.
    pub published: Option<i64>,
}

/// An advisory CAMP signs (its `advisories.json` target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampAdvisory {
    pub id: String,
    pub component: String,
    /// The plugin versions it affects.
    pub versions: Vec<String>,
    pub title: String,
    pub link: Option<String>,
    pub malware: bool,
}

/// A CAMP repository read and verified.
#[derive(Debug, Clone)]
pub struct CampRepository {
    pub url: String,
    pub targets: Vec<CampTarget>,
    /// Its signed advisories, when it publishes them.
    pub advisories: Vec<CampAdvisory>,
    /// What to trust next time.
    pub state: TrustedState,
}

impl CampRepository {
    /// Where a target is downloaded from.
    pub fn target_url(&self, t: &CampTarget) -> String {
        format!("{}/targets/{}", self.url.trim_end_matches('/'), t.name)
    }
}

/// Most roots a client walks through in one run (the specification's bound).
const MAX_ROOT_ROTATIONS: u64 = 32;
/// The most bytes a metadata file may have.
const MAX_METADATA_BYTES: u64 = 16 << 20;

/// Reads the CAMP repository at `url` (an http(s) URL or a directory, its `metadata/` and
/// `targets/` below it), trusting `pinned_root` (the root the site pins) or, when newer,
/// `previous.root`; `now` in seconds since the epoch.
pub fn load(
    http: &Http,
    url: &str,
    pinned_root: &str,
    previous: Option<&TrustedState>,
    now: i64,
) -> Result<CampRepository, TufError> {
    let base = url.trim_end_matches('/');
    let fetch = |name: &str| -> Result<Option<Vec<u8>>, TufError> {
        let at = format!("{base}/metadata/{name}");
        let unavailable = |message: String| TufError::Unavailable {
            file: name.to_string(),
            message,
        };
        if crate::composer::is_http_url(base) {
            match http.get_document(&at, MAX_METADATA_BYTES, "metadata-bytes") {
                Ok(b) => Ok(Some(b)),
                Err(crate::http::HttpError::Status { status: 404, .. }) => Ok(None),
                Err(e) => Err(unavailable(e.to_string())),
            }
        } else {
            match std::fs::read(&at) {
                Ok(b) if b.len() as u64 > MAX_METADATA_BYTES => {
                    Err(unavailable("it is too large".into()))
                }
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(unavailable(e.to_string())),
            }
        }
    };
    let need = |name: &str| {
        fetch(name)?.ok_or_else(|| TufError::Unavailable {
            file: name.to_string(),
            message: "the repository has no such file".into(),
        })
    };

    // 1. The root: the pinned one, or the newer one trusted before; then every rotation.
    let pinned = Metadata::parse("root.json (pinned)", pinned_root.as_bytes(), "root")?;
    let (mut root, mut root_text) = match previous {
        Some(p) => {
            let before = Metadata::parse("root.json (trusted before)", p.root.as_bytes(), "root")?;
            if before.version > pinned.version {
                (before, p.root.clone())
            } else {
                (pinned, pinned_root.to_string())
            }
        }
        None => (pinned, pinned_root.to_string()),
    };
    root.verify_by(&Keys::of_root(&root)?, "root")?;
    for _ in 0..MAX_ROOT_ROTATIONS {
        let name = format!("{}.root.json", root.version + 1);
        let Some(bytes) = fetch(&name)? else {
            break;
        };
        let next = Metadata::parse(&name, &bytes, "root")?;
        next.verify_by(&Keys::of_root(&root)?, "root")?;
        next.verify_by(&Keys::of_root(&next)?, "root")?;
        if next.version != root.version + 1 {
            return Err(TufError::Mismatch {
                file: name,
                by: "its name".into(),
                got: next.version,
                want: root.version + 1,
            });
        }
        root = next;
        root_text = String::from_utf8_lossy(&bytes).into_owned();
    }
    root.check_expiry(now)?;
    let keys = Keys::of_root(&root)?;

    // 2. The timestamp.
    let bytes = need("timestamp.json")?;
    let timestamp = Metadata::parse("timestamp.json", &bytes, "timestamp")?;
    timestamp.verify_by(&keys, "timestamp")?;
    timestamp.check_rollback(previous.map(|p| p.timestamp))?;
    timestamp.check_expiry(now)?;
    let snapshot_version = timestamp.meta_version("snapshot.json")?;

    // 3. The snapshot the timestamp names.
    let consistent = root
        .signed
        .get("consistent_snapshot")
        .and_then(Value::as_bool)
        == Some(true);
    let name = |role: &str, version: u64| {
        if consistent {
            format!("{version}.{role}.json")
        } else {
            format!("{role}.json")
        }
    };
    let snapshot_file = name("snapshot", snapshot_version);
    let bytes = need(&snapshot_file)?;
    let snapshot = Metadata::parse(&snapshot_file, &bytes, "snapshot")?;
    snapshot.verify_by(&keys, "snapshot")?;
    snapshot.check_names(snapshot_version, "timestamp.json")?;
    snapshot.check_rollback(previous.map(|p| p.snapshot))?;
    snapshot.check_expiry(now)?;
    let targets_version = snapshot.meta_version("targets.json")?;

    // 4. The targets the snapshot names.
    let targets_file = name("targets", targets_version);
    let bytes = need(&targets_file)?;
    let targets = Metadata::parse(&targets_file, &bytes, "targets")?;
    targets.verify_by(&keys, "targets")?;
    targets.check_names(targets_version, &snapshot_file)?;
    targets.check_rollback(previous.map(|p| p.targets))?;
    targets.check_expiry(now)?;

    let mut out = Vec::new();
    let malformed = |message: String| TufError::Malformed {
        file: targets_file.clone(),
        message,
    };
    let listed = targets
        .signed
        .get("targets")
        .and_then(Value::as_object)
        .ok_or_else(|| malformed("it has no `targets` object".into()))?;
    for (name, t) in listed {
        if !valid_target_name(name) {
            return Err(malformed(format!(
                "target name '{}' is not a relative path",
                name.escape_debug()
            )));
        }
        let length = t.get("length").and_then(Value::as_u64);
        let sha256 = t
            .get("hashes")
            .and_then(|h| h.get("sha256"))
            .and_then(Value::as_str)
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        let (Some(length), Some(sha256)) = (length, sha256) else {
            return Err(malformed(format!("target {name} has no length or sha256")));
        };
        let custom = t.get("custom");
        let text = |k: &str| {
            custom
                .and_then(|c| c.get(k))
                .and_then(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .map(|s| {
                    s.chars()
                        .filter(|c| !c.is_control())
                        .take(200)
                        .collect::<String>()
                })
        };
        // A file that is not a plugin's release (an advisory list, say) is not offered.
        let (Some(component), Some(version)) = (text("component"), text("version")) else {
            continue;
        };
        out.push(CampTarget {
            name: name.clone(),
            length,
            sha256: sha256.to_ascii_lowercase(),
            component,
            version,
            release: text("release"),
            tier: custom
                .and_then(|c| c.get("tier"))
                .and_then(Value::as_u64)
                .map_or(1, |t| t.min(9) as u8),
            revoked: custom.and_then(|c| c.get("revoked")).and_then(|r| match r {
                Value::Bool(true) => Some("revoked".to_string()),
                Value::String(s) if !s.is_empty() => {
                    Some(s.chars().filter(|c| !c.is_control()).take(300).collect())
                }
                _ => None,
            }),
            published: custom
                .and_then(|c| c.get("published"))
                .and_then(Value::as_i64),
        });
    }
    let advisories = match listed.get(ADVISORIES) {
        Some(t) => read_advisories(http, base, t)?,
        None => Vec::new(),
    };
    Ok(CampRepository {
        url: base.to_string(),
        targets: out,
        advisories,
        state: TrustedState {
            root: root_text,
            timestamp: timestamp.version,
            snapshot: snapshot.version,
            targets: targets.version,
        },
    })
}

/// The target CAMP signs its advisories in.
const ADVISORIES: &str = "advisories.json";

/// The advisories target, downloaded and checked against its signed length and sha256.
fn read_advisories(http: &Http, base: &str, signed: &Value) -> Result<Vec<CampAdvisory>, TufError> {
    let file = format!("targets/{ADVISORIES}");
    let at = format!("{base}/{file}");
    let bytes = if crate::composer::is_http_url(base) {
        http.get_document(&at, MAX_METADATA_BYTES, "metadata-bytes")
            .map_err(|e| e.to_string())
    } else {
        std::fs::read(&at).map_err(|e| e.to_string())
    }
    .map_err(|message| TufError::Unavailable {
        file: file.clone(),
        message,
    })?;
    let length = signed
        .get("length")
        .and_then(Value::as_u64)
        .unwrap_or(u64::MAX);
    let sha256 = signed
        .get("hashes")
        .and_then(|h| h.get("sha256"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let target = CampTarget {
        name: ADVISORIES.into(),
        length,
        sha256: sha256.to_string(),
        component: String::new(),
        version: String::new(),
        release: None,
        tier: 0,
        revoked: None,
        published: None,
    };
    check_target(
        &target,
        bytes.len() as u64,
        &hex::encode(sha2::Sha256::digest(&bytes)),
    )?;
    let malformed = |message: String| TufError::Malformed {
        file: file.clone(),
        message,
    };
    let doc: Value =
        serde_json::from_slice(&bytes).map_err(|e| malformed(format!("not JSON: {e}")))?;
    let text = |v: &Value, k: &str| {
        v.get(k).and_then(Value::as_str).map(|s| {
            s.chars()
                .filter(|c| !c.is_control())
                .take(300)
                .collect::<String>()
        })
    };
    let mut out = Vec::new();
    for a in doc
        .get("advisories")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(id), Some(component)) = (text(a, "id"), text(a, "component")) else {
            return Err(malformed("an advisory has no id or component".into()));
        };
        out.push(CampAdvisory {
            id,
            component,
            versions: a
                .get("versions")
                .and_then(Value::as_array)
                .map(|v| {
                    v.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            title: text(a, "title").unwrap_or_else(|| "(no title)".into()),
            link: text(a, "link"),
            malware: a.get("malware").and_then(Value::as_bool) == Some(true),
        });
    }
    Ok(out)
}

/// Checks a downloaded target against what the signed targets say of it.
pub fn check_target(t: &CampTarget, length: u64, sha256: &str) -> Result<(), TufError> {
    if length != t.length {
        return Err(TufError::Target {
            target: t.name.clone(),
            what: format!("{length} bytes"),
            want: format!("{} bytes", t.length),
        });
    }
    if !sha256.eq_ignore_ascii_case(&t.sha256) {
        return Err(TufError::Target {
            target: t.name.clone(),
            what: format!("sha256 {sha256}"),
            want: t.sha256.clone(),
        });
    }
    Ok(())
}

fn valid_target_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('/')
        && name
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | '+'))
}

/// One role's metadata file: its signed part and signatures.
struct Metadata {
    file: String,
    signed: Value,
    /// The canonical JSON of `signed`: what the signatures are over.
    canonical: Vec<u8>,
    signatures: Vec<(String, Vec<u8>)>,
    version: u64,
    expires: String,
}

impl Metadata {
    fn parse(file: &str, bytes: &[u8], kind: &str) -> Result<Metadata, TufError> {
        let malformed = |message: String| TufError::Malformed {
            file: file.to_string(),
            message,
        };
        let doc: Value =
            serde_json::from_slice(bytes).map_err(|e| malformed(format!("not JSON: {e}")))?;
        let signed = doc
            .get("signed")
            .cloned()
            .ok_or_else(|| malformed("it has no `signed` object".into()))?;
        let typ = signed.get("_type").and_then(Value::as_str).unwrap_or("");
        if typ != kind {
            return Err(malformed(format!("it is of type '{typ}', not {kind}")));
        }
        let version = signed
            .get("version")
            .and_then(Value::as_u64)
            .filter(|v| *v >= 1)
            .ok_or_else(|| malformed("it has no version".into()))?;
        let expires = signed
            .get("expires")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("it has no expiry".into()))?
            .to_string();
        let mut signatures = Vec::new();
        for s in doc
            .get("signatures")
            .and_then(Value::as_array)
            .ok_or_else(|| malformed("it has no signatures".into()))?
        {
            let (Some(keyid), Some(sig)) = (
                s.get("keyid").and_then(Value::as_str),
                s.get("sig")
                    .and_then(Value::as_str)
                    .and_then(|h| hex::decode(h).ok()),
            ) else {
                return Err(malformed("a signature has no keyid or hex sig".into()));
            };
            signatures.push((keyid.to_string(), sig));
        }
        let mut canonical = Vec::new();
        canonical_json(&signed, &mut canonical).map_err(malformed)?;
        Ok(Metadata {
            file: file.to_string(),
            signed,
            canonical,
            signatures,
            version,
            expires,
        })
    }

    /// Refuses the file unless a threshold of `role`'s distinct keys signed it.
    fn verify_by(&self, keys: &Keys, role: &str) -> Result<(), TufError> {
        let (ids, threshold) = keys.role(role).ok_or_else(|| TufError::Malformed {
            file: self.file.clone(),
            message: format!("the root names no {role} role"),
        })?;
        let mut valid = BTreeSet::new();
        for (keyid, sig) in &self.signatures {
            if !ids.contains(keyid) {
                continue;
            }
            let Some(public) = keys.keys.get(keyid) else {
                continue;
            };
            let key = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public);
            if key.verify(&self.canonical, sig).is_ok() {
                valid.insert(keyid.clone());
            }
        }
        if valid.len() < threshold {
            return Err(TufError::Threshold {
                file: self.file.clone(),
                role: role.to_string(),
                valid: valid.len(),
                threshold,
            });
        }
        Ok(())
    }

    fn check_expiry(&self, now: i64) -> Result<(), TufError> {
        match parse_utc(&self.expires) {
            Some(at) if at > now => Ok(()),
            Some(_) => Err(TufError::Expired {
                file: self.file.clone(),
                expires: self.expires.clone(),
            }),
            None => Err(TufError::Malformed {
                file: self.file.clone(),
                message: format!(
                    "expiry '{}' is not YYYY-MM-DDTHH:MM:SSZ",
                    self.expires.escape_debug()
                ),
            }),
        }
    }

    fn check_rollback(&self, trusted: Option<u64>) -> Result<(), TufError> {
        match trusted {
            Some(t) if self.version < t => Err(TufError::Rollback {
                file: self.file.clone(),
                trusted: t,
                got: self.version,
            }),
            _ => Ok(()),
        }
    }

    fn check_names(&self, want: u64, by: &str) -> Result<(), TufError> {
        if self.version != want {
            return Err(TufError::Mismatch {
                file: self.file.clone(),
                by: by.to_string(),
                got: self.version,
                want,
            });
        }
        Ok(())
    }

    /// The version `meta` gives `file`.
    fn meta_version(&self, file: &str) -> Result<u64, TufError> {
        self.signed
            .get("meta")
            .and_then(|m| m.get(file))
            .and_then(|m| m.get("version"))
            .and_then(Value::as_u64)
            .ok_or_else(|| TufError::Malformed {
                file: self.file.clone(),
                message: format!("it names no version of {file}"),
            })
    }
}

/// The keys a root trusts, and each role's key ids and threshold.
struct Keys {
    keys: BTreeMap<String, Vec<u8>>,
    roles: BTreeMap<String, (BTreeSet<String>, usize)>,
}

impl Keys {
    fn of_root(root: &Metadata) -> Result<Keys, TufError> {
        let malformed = |message: String| TufError::Malformed {
            file: root.file.clone(),
            message,
        };
        let mut keys = BTreeMap::new();
        for (id, k) in root
            .signed
            .get("keys")
            .and_then(Value::as_object)
            .ok_or_else(|| malformed("it has no keys".into()))?
        {
            let ed25519 = k.get("keytype").and_then(Value::as_str) == Some("ed25519")
                && k.get("scheme").and_then(Value::as_str) == Some("ed25519");
            let public = k
                .get("keyval")
                .and_then(|v| v.get("public"))
                .and_then(Value::as_str)
                .and_then(|h| hex::decode(h).ok())
                .filter(|p| p.len() == 32);
            let Some(public) = public.filter(|_| ed25519) else {
                // A key of another scheme can never make a signature count here.
                continue;
            };
            // A key id is the sha256 of the key's canonical JSON: one key cannot be
            // counted twice under two ids.
            let mut canonical = Vec::new();
            canonical_json(k, &mut canonical).map_err(malformed)?;
            let computed = hex::encode(sha2::Sha256::digest(&canonical));
            if computed != *id {
                return Err(malformed(format!(
                    "key id {id} is not its key's sha256 ({computed})"
                )));
            }
            keys.insert(id.clone(), public);
        }
        let mut roles = BTreeMap::new();
        for (name, r) in root
            .signed
            .get("roles")
            .and_then(Value::as_object)
            .ok_or_else(|| malformed("it has no roles".into()))?
        {
            let ids: BTreeSet<String> = r
                .get("keyids")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let threshold = r
                .get("threshold")
                .and_then(Value::as_u64)
                .filter(|t| *t >= 1)
                .ok_or_else(|| malformed(format!("role {name} has no threshold of 1 or more")))?;
            roles.insert(name.clone(), (ids, threshold as usize));
        }
        Ok(Keys { keys, roles })
    }

    fn role(&self, name: &str) -> Option<(&BTreeSet<String>, usize)> {
        self.roles.get(name).map(|(ids, t)| (ids, *t))
    }
}

/// The canonical JSON TUF signs (OLPC's): keys sorted, no white space, strings escaping
/// only `"` and `\`, integers only.
pub fn canonical_json(v: &Value, out: &mut Vec<u8>) -> Result<(), String> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => {
            if n.is_f64() {
                return Err(format!("{n} is not an integer: canonical JSON has none"));
            }
            out.extend_from_slice(n.to_string().as_bytes());
        }
        Value::String(s) => {
            out.push(b'"');
            for c in s.chars() {
                if c == '"' || c == '\\' {
                    out.push(b'\\');
                }
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            out.push(b'"');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(x, out)?;
            }
            out.push(b']');
        }
        Value::Object(o) => {
            out.push(b'{');
            let sorted: BTreeMap<&String, &Value> = o.iter().collect();
            for (i, (k, x)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(&Value::String(k.clone()), out)?;
                out.push(b':');
                canonical_json(x, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SSZ`.
fn parse_utc(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let n = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_and_escapes_only_quote_and_backslash() {
        let v: Value = serde_json::from_str(r#"{"b": [1, true, null], "a": "x\"y\\z\n"}"#).unwrap();
        let mut out = Vec::new();
        canonical_json(&v, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"a\":\"x\\\"y\\\\z\n\",\"b\":[1,true,null]}"
        );
        assert!(canonical_json(&serde_json::json!(1.5), &mut Vec::new()).is_err());
    }

    #[test]
    fn expiry_dates_are_read_as_utc() {
        assert_eq!(parse_utc("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_utc("2026-12-06T00:00:00Z"), Some(1_796_515_200));
        assert_eq!(parse_utc("2026-12-06 00:00:00"), None);
        assert_eq!(parse_utc("2026-13-06T00:00:00Z"), None);
    }

    #[test]
    fn a_target_name_stays_under_targets() {
        assert!(valid_target_name("block_xp/block_xp-2025100501.zip"));
        assert!(!valid_target_name("../root.json"));
        assert!(!valid_target_name("/etc/passwd"));
        assert!(!valid_target_name("a//b"));
    }
}
