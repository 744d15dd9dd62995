//! Composer repositories (Packagist and registries in its format): `packages.json`, its
//! `metadata-url` (Composer 2's `p2/<vendor>/<name>.json`, minified entries expanded) or
//! the packages it holds inline. Every answer is input: names, types, versions, URLs and
//! checksums are checked before use.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::CatalogError;
use crate::http::Http;

/// Packagist's repository.
pub const PACKAGIST: &str = "https://repo.packagist.org";

/// The most versions of one package read from a repository.
const MAX_VERSIONS: usize = 5_000;

/// One version of a package, as its repository describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposerPackage {
    pub name: String,
    pub version: String,
    /// `moodle-mod`, `moodle-local`, …
    pub package_type: String,
    pub dist_url: String,
    /// sha1 of the dist zip (`dist.shasum`), lowercase hex, when given.
    pub sha1: Option<String>,
    /// sha256 of the dist zip (`extra.sha256`), lowercase hex, when given.
    pub sha256: Option<String>,
    /// `extra.installer-name`: the plugin's folder.
    pub installer_name: Option<String>,
    /// When it was released (`time`), seconds since the epoch.
    pub time: Option<i64>,
}

impl ComposerPackage {
    /// The version a lock recorded: its name, version and dist URL (the lock's blake3
    /// stands for the repository's checksums).
    pub fn from_lock(name: &str, version: &str, dist_url: &str) -> ComposerPackage {
        ComposerPackage {
            name: name.to_string(),
            version: version.to_string(),
            package_type: String::new(),
            dist_url: dist_url.to_string(),
            sha1: None,
            sha256: None,
            installer_name: None,
            time: None,
        }
    }
}

/// `2024-05-01T12:00:00+00:00` (or with `Z`, or a space for `T`) as seconds since the
/// epoch; an offset is applied.
pub fn parse_time(text: &str) -> Option<i64> {
    let t = text.trim();
    let num = |s: &str| -> Option<i64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
    };
    let (date, rest) = (t.get(..10)?, t.get(11..)?);
    let mut d = date.split('-');
    let (y, m, day) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    let (clock, zone) = rest.split_at(rest.find(['Z', '+', '-']).unwrap_or(rest.len()));
    let mut c = clock.split('.').next()?.split(':');
    let (h, mi, s) = (
        num(c.next()?)?,
        num(c.next()?)?,
        num(c.next().unwrap_or("0"))?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let offset = match zone.chars().next() {
        None | Some('Z') => 0,
        Some(sign) => {
            let z = zone[1..].replace(':', "");
            let (zh, zm) = (num(z.get(..2)?)?, num(z.get(2..4).unwrap_or("00"))?);
            let o = zh * 3600 + zm * 60;
            if sign == '-' { -o } else { o }
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + s - offset)
}

fn bad(repo: &str, message: String) -> CatalogError {
    CatalogError::Index {
        location: repo.to_string(),
        message,
    }
}

/// `repo` joined with `path` (`/p2/…` or a full URL).
fn join(repo: &str, path: &str) -> String {
    if path.contains("://") {
        return path.to_string();
    }
    let base = repo.trim_end_matches('/');
    match reqwest::Url::parse(&format!("{base}/")) {
        Ok(u) => u
            .join(path)
            .map(|u| u.to_string())
            .unwrap_or_else(|_| format!("{base}{path}")),
        Err(_) => format!("{base}/{}", path.trim_start_matches('/')),
    }
}

fn read_json(http: &Http, repo: &str, url: &str) -> Result<Option<Value>, CatalogError> {
    let bytes = if url.contains("://") {
        match http.get_bytes(url) {
            Ok(b) => b,
            Err(crate::http::HttpError::Status { status: 404, .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    } else {
        match std::fs::read(url) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(CatalogError::Io {
                    path: url.into(),
                    source: e,
                });
            }
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| bad(repo, format!("{url} is not JSON: {e}")))
}

fn hex_of(v: Option<&Value>, len: usize) -> Option<String> {
    let s = v?.as_str()?.trim().to_ascii_lowercase();
    (s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())).then_some(s)
}

fn package_of(name: &str, v: &Value) -> Option<ComposerPackage> {
    let version = v.get("version")?.as_str()?.to_string();
    let dist = v.get("dist")?;
    let dist_url = dist.get("url")?.as_str()?.to_string();
    if dist
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t != "zip")
    {
        return None;
    }
    let extra = v.get("extra");
    Some(ComposerPackage {
        name: name.to_string(),
        version,
        package_type: v
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("library")
            .to_string(),
        dist_url,
        sha1: hex_of(dist.get("shasum"), 40),
        sha256: hex_of(extra.and_then(|e| e.get("sha256")), 64),
        installer_name: extra
            .and_then(|e| e.get("installer-name"))
            .and_then(Value::as_str)
            .map(str::to_string),
        time: v.get("time").and_then(Value::as_str).and_then(parse_time),
    })
}

/// Composer 2's minified list: each entry holds what changed from the one before, and
/// `"__unset"` removes a field.
fn expand(entries: &[Value]) -> Vec<Value> {
    let mut out = Vec::with_capacity(entries.len());
    let mut current: serde_json::Map<String, Value> = serde_json::Map::new();
    for e in entries {
        let Some(obj) = e.as_object() else { continue };
        for (k, v) in obj {
            if v.as_str() == Some("__unset") {
                current.remove(k);
            } else {
                current.insert(k.clone(), v.clone());
            }
        }
        out.push(Value::Object(current.clone()));
    }
    out
}

/// A security advisory a Composer repository publishes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Advisory {
    pub package: String,
    pub title: String,
    pub cve: Option<String>,
    pub link: Option<String>,
    /// The versions it affects, as a Composer constraint.
    pub affected: String,
}

/// The advisories `repo` publishes for `packages` (its `security-advisories.api-url`);
/// none when it publishes none.
pub fn advisories(
    http: &Http,
    repo: &str,
    packages: &[String],
) -> Result<Vec<Advisory>, CatalogError> {
    let Some(root) = read_json(http, repo, &join(repo, "packages.json"))? else {
        return Ok(Vec::new());
    };
    let Some(api) = root
        .get("security-advisories")
        .and_then(|s| s.get("api-url"))
        .and_then(Value::as_str)
    else {
        return Ok(Vec::new());
    };
    let mut url = join(repo, api);
    for (i, p) in packages.iter().enumerate() {
        url.push(if i == 0 && !url.contains('?') {
            '?'
        } else {
            '&'
        });
        url.push_str(&format!("packages[]={p}"));
    }
    let Some(doc) = read_json(http, repo, &url)? else {
        return Ok(Vec::new());
    };
    let text = |v: &Value, k: &str| {
        v.get(k).and_then(Value::as_str).map(|s| {
            s.chars()
                .filter(|c| !c.is_control())
                .take(500)
                .collect::<String>()
        })
    };
    let mut out = Vec::new();
    if let Some(by) = doc.get("advisories").and_then(Value::as_object) {
        for (package, list) in by {
            for a in list.as_array().into_iter().flatten() {
                let Some(affected) = text(a, "affectedVersions") else {
                    continue;
                };
                out.push(Advisory {
                    package: package.clone(),
                    title: text(a, "title").unwrap_or_else(|| "(no title)".into()),
                    cve: text(a, "cve").filter(|c| !c.is_empty()),
                    link: text(a, "link").filter(|l| !l.is_empty()),
                    affected,
                });
            }
        }
    }
    Ok(out)
}

/// Every version of `name` that `repo` offers, in the repository's order.
pub fn package_versions(
    http: &Http,
    repo: &str,
    name: &str,
) -> Result<Vec<ComposerPackage>, CatalogError> {
    let root = read_json(http, repo, &join(repo, "packages.json"))?
        .ok_or_else(|| bad(repo, "has no packages.json".into()))?;
    let mut raw: Vec<Value> = Vec::new();
    if let Some(meta) = root.get("metadata-url").and_then(Value::as_str) {
        let url = join(repo, &meta.replace("%package%", name));
        if let Some(doc) = read_json(http, repo, &url)? {
            let list = doc
                .get("packages")
                .and_then(|p| p.get(name))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let minified = doc.get("minified").and_then(Value::as_str) == Some("composer/2.0");
            raw = if minified { expand(&list) } else { list };
        }
    } else if let Some(versions) = root
        .get("packages")
        .and_then(|p| p.get(name))
        .and_then(Value::as_object)
    {
        // Composer 1: version → package, inline.
        raw = versions.values().cloned().collect();
    }
    if raw.len() > MAX_VERSIONS {
        return Err(bad(
            repo,
            format!("lists more than {MAX_VERSIONS} versions of {name}"),
        ));
    }
    let mut seen: BTreeMap<String, ()> = BTreeMap::new();
    Ok(raw
        .iter()
        .filter_map(|v| package_of(name, v))
        .filter(|p| seen.insert(p.version.clone(), ()).is_none())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minified_entries_inherit_and_unset() {
        let list = serde_json::json!([
            {"version": "2.1.0", "type": "moodle-mod", "dist": {"url": "a", "type": "zip", "shasum": ""}, "extra": {"installer-name": "foo"}},
            {"version": "2.0.0", "dist": {"url": "b", "type": "zip"}},
            {"version": "1.0.0", "extra": "__unset"}
        ]);
        let out = expand(list.as_array().unwrap());
        let p: Vec<ComposerPackage> = out.iter().filter_map(|v| package_of("a/b", v)).collect();
        assert_eq!(p.len(), 3);
        assert_eq!(p[1].package_type, "moodle-mod");
        assert_eq!(p[1].dist_url, "b");
        assert_eq!(p[1].installer_name.as_deref(), Some("foo"));
        assert_eq!(p[2].installer_name, None);
        assert_eq!(p[0].sha1, None, "an empty shasum is no checksum");
    }

    #[test]
    fn release_times_read_as_seconds() {
        assert_eq!(parse_time("1970-01-01T00:00:00+00:00"), Some(0));
        assert_eq!(parse_time("2024-05-01T12:00:00Z"), Some(1_714_564_800));
        assert_eq!(parse_time("2024-05-01T14:00:00+02:00"), Some(1_714_564_800));
        assert_eq!(parse_time("2024-05-01 12:00:00"), Some(1_714_564_800));
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn paths_join_the_repository() {
        assert_eq!(
            join("https://r.example/", "/p2/a/b.json"),
            "https://r.example/p2/a/b.json"
        );
        assert_eq!(
            join("https://r.example/sub", "packages.json"),
            "https://r.example/sub/packages.json"
        );
    }
}
