//! Composer repositories (Packagist and registries in its format): `packages.json`, its
//! `metadata-url` (Composer 2's `p2/<vendor>/<name>.json`, minified entries expanded) or
//! the packages it holds inline. Every answer is input: names, types, versions, URLs and
//! checksums are checked before use.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::CatalogError;
use crate::http::Http;
use crate::limits::MetadataLimits;

/// Packagist's repository.
pub const PACKAGIST: &str = "https://repo.packagist.org";

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

/// Is `repo` a repository on this machine (a directory), rather than a URL?
fn is_local(repo: &str) -> bool {
    !repo.contains("://")
}

/// Is `url` an `http://` or `https://` URL? Nothing else is fetched from what a repository
/// says: a text without a scheme is not a path.
pub fn is_http_url(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

/// `path` (`/p2/…`, relative or a full URL) of repository `repo`: for a remote repository
/// an http(s) URL joined to it; for a local one a file inside its directory.
fn join(repo: &str, path: &str) -> Result<String, CatalogError> {
    if path.contains("://") {
        if !is_http_url(path) {
            return Err(bad(
                repo,
                format!("names '{}', which is not an http(s) URL", shown(path)),
            ));
        }
        return Ok(path.to_string());
    }
    let base = repo.trim_end_matches('/');
    if is_local(repo) {
        let joined =
            mcb_config::normalize(&std::path::Path::new(base).join(path.trim_start_matches('/')));
        if !joined.starts_with(mcb_config::normalize(std::path::Path::new(base))) {
            return Err(bad(
                repo,
                format!("names '{}', which is outside the repository", shown(path)),
            ));
        }
        return Ok(joined.to_string_lossy().into_owned());
    }
    reqwest::Url::parse(&format!("{base}/"))
        .and_then(|u| u.join(path))
        .map(|u| u.to_string())
        .map_err(|e| bad(repo, format!("cannot join '{}' to it: {e}", shown(path))))
}

/// Text from a repository as messages show it: control characters out, at most 200 chars.
fn shown(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// A JSON document of repository `repo` at `at` (what [`join`] gave): `None` when it is
/// not there (404, or no such file in a local repository). Held to `limits.bytes`.
fn read_json(
    http: &Http,
    repo: &str,
    at: &str,
    limits: &MetadataLimits,
) -> Result<Option<Value>, CatalogError> {
    let bytes = if is_http_url(at) {
        match http.get_document(at, limits.bytes, "metadata-bytes") {
            Ok(b) => b,
            Err(crate::http::HttpError::Status { status: 404, .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    } else {
        let file = match std::fs::File::open(at) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(CatalogError::Io {
                    path: at.into(),
                    source: e,
                });
            }
        };
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(file, limits.bytes + 1), &mut bytes)
            .map_err(|e| CatalogError::Io {
                path: at.into(),
                source: e,
            })?;
        if bytes.len() as u64 > limits.bytes {
            return Err(bad(
                repo,
                format!(
                    "{at} is larger than {} (the metadata-bytes limit)",
                    crate::limits::human_bytes(limits.bytes)
                ),
            ));
        }
        bytes
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        bad(
            repo,
            format!("{} is not JSON: {e}", crate::http::shown_url(at)),
        )
    })
}

fn hex_of(v: Option<&Value>, len: usize) -> Option<String> {
    let s = v?.as_str()?.trim().to_ascii_lowercase();
    (s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())).then_some(s)
}

/// A field that must be a string when present: `Err` names it when it is another type.
fn text_field<'a>(
    v: &'a serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<&'a str>, String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("`{key}` is {}, not a string", kind_of(other))),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One version as the repository describes it: `Ok(None)` for a version that cannot be
/// installed from a zip (no dist, or a dist of another type), `Err(why)` for one whose
/// fields are of the wrong types or whose dist URL is not an http(s) URL.
fn package_of(
    name: &str,
    v: &serde_json::Map<String, Value>,
) -> Result<Option<ComposerPackage>, String> {
    let version = text_field(v, "version")?.ok_or("it has no `version`")?;
    let what = |m: String| format!("version {}: {m}", shown(version));
    let dist = match v.get("dist") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(d)) => d,
        Some(other) => return Err(what(format!("`dist` is {}, not an object", kind_of(other)))),
    };
    if text_field(dist, "type")
        .map_err(&what)?
        .is_some_and(|t| t != "zip")
    {
        return Ok(None);
    }
    let dist_url = text_field(dist, "url")
        .map_err(&what)?
        .ok_or_else(|| what("its dist has no `url`".into()))?;
    if !is_http_url(dist_url) {
        return Err(what(format!(
            "its dist URL '{}' is not an http(s) URL; a text without a scheme is never read as a local file",
            shown(dist_url)
        )));
    }
    let extra = match v.get("extra") {
        None | Some(Value::Null) => None,
        Some(Value::Object(e)) => Some(e),
        // Composer tolerates any `extra`; mcb reads only what it knows of it.
        Some(_) => None,
    };
    let package_type = text_field(v, "type").map_err(&what)?.unwrap_or("library");
    Ok(Some(ComposerPackage {
        name: name.to_string(),
        version: version.to_string(),
        package_type: package_type.to_string(),
        dist_url: dist_url.to_string(),
        sha1: hex_of(dist.get("shasum"), 40),
        sha256: hex_of(extra.and_then(|e| e.get("sha256")), 64),
        installer_name: match extra {
            Some(e) => text_field(e, "installer-name")
                .map_err(&what)?
                .map(str::to_string),
            None => None,
        },
        time: text_field(v, "time").map_err(&what)?.and_then(parse_time),
    }))
}

/// The versions of a list, expanded from Composer 2's minified form when `minified` (each
/// entry holds what changed from the one before, and `"__unset"` removes a field). One
/// state is kept and each version read from it in turn: the work is the size of the list,
/// not the size times the number of versions.
fn packages_of(
    name: &str,
    entries: &[Value],
    minified: bool,
) -> Result<Vec<ComposerPackage>, String> {
    let mut out = Vec::new();
    let mut current: serde_json::Map<String, Value> = serde_json::Map::new();
    for (i, e) in entries.iter().enumerate() {
        let Some(obj) = e.as_object() else {
            return Err(format!("entry {} is {}, not an object", i + 1, kind_of(e)));
        };
        let p = if minified {
            for (k, v) in obj {
                if v.as_str() == Some("__unset") {
                    current.remove(k);
                } else {
                    current.insert(k.clone(), v.clone());
                }
            }
            package_of(name, &current)
        } else {
            package_of(name, obj)
        };
        if let Some(p) = p? {
            out.push(p);
        }
    }
    Ok(out)
}

/// A security advisory a Composer repository publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advisory {
    /// The repository's id for it (`advisoryId`, else the `remoteId` or CVE it mirrors):
    /// what a site file acknowledges in `ignore_advisories`.
    pub id: String,
    pub package: String,
    pub title: String,
    pub cve: Option<String>,
    pub link: Option<String>,
    /// The versions it affects, as a Composer constraint.
    pub affected: String,
    /// What it is: an advisory a site may acknowledge, or a malware flag or revocation,
    /// which none may.
    pub flag: AdvisoryFlag,
}

/// What an advisory says of the versions it affects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdvisoryFlag {
    /// A vulnerability: the site file may acknowledge it (`ignore_advisories`).
    Vulnerable,
    /// The repository flags the versions as malware (`"malware": true`, or a severity of
    /// `malware`).
    Malware,
    /// The registry withdrew the release (CAMP's revocation).
    Revoked,
}

/// The advisories `repo` publishes for `packages` (its `security-advisories.api-url`);
/// none when it publishes none.
pub fn advisories(
    http: &Http,
    repo: &str,
    packages: &[String],
    limits: &MetadataLimits,
) -> Result<Vec<Advisory>, CatalogError> {
    let Some(root) = read_json(http, repo, &join(repo, "packages.json")?, limits)? else {
        return Ok(Vec::new());
    };
    let Some(api) = root
        .get("security-advisories")
        .and_then(|s| s.get("api-url"))
        .and_then(Value::as_str)
    else {
        return Ok(Vec::new());
    };
    let mut url = join(repo, api)?;
    for (i, p) in packages.iter().enumerate() {
        url.push(if i == 0 && !url.contains('?') {
            '?'
        } else {
            '&'
        });
        url.push_str(&format!("packages[]={p}"));
    }
    let Some(doc) = read_json(http, repo, &url, limits)? else {
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
                let cve = text(a, "cve").filter(|c| !c.is_empty());
                // An id is one token: what cannot be written in a site file is not one.
                let id = ["advisoryId", "remoteId"]
                    .iter()
                    .filter_map(|k| text(a, k))
                    .chain(cve.clone())
                    .find(|i| {
                        !i.is_empty()
                            && i.len() <= 100
                            && !i.contains(|c: char| c.is_whitespace() || c == '"')
                    });
                // An advisory without one still blocks; it is named by what it says.
                let id = id.unwrap_or_else(|| {
                    let said = format!(
                        "{package}\n{affected}\n{}",
                        text(a, "title").unwrap_or_default()
                    );
                    format!("unnamed-{}", &blake3::hash(said.as_bytes()).to_hex()[..12])
                });
                let malware = a.get("malware").and_then(Value::as_bool) == Some(true)
                    || text(a, "severity").is_some_and(|s| s.eq_ignore_ascii_case("malware"));
                let flag = if malware {
                    AdvisoryFlag::Malware
                } else {
                    AdvisoryFlag::Vulnerable
                };
                out.push(Advisory {
                    id,
                    package: package.clone(),
                    title: text(a, "title").unwrap_or_else(|| "(no title)".into()),
                    cve,
                    link: text(a, "link").filter(|l| !l.is_empty()),
                    affected,
                    flag,
                });
            }
        }
    }
    Ok(out)
}

/// Every version of `name` that `repo` offers, in the repository's order; a document of
/// the wrong shape is said to be malformed, naming what is wrong.
pub fn package_versions(
    http: &Http,
    repo: &str,
    name: &str,
    limits: &MetadataLimits,
) -> Result<Vec<ComposerPackage>, CatalogError> {
    let root = read_json(http, repo, &join(repo, "packages.json")?, limits)?
        .ok_or_else(|| bad(repo, "has no packages.json".into()))?;
    let malformed = |at: &str, why: String| {
        bad(
            repo,
            format!("{} is malformed: {why}", crate::http::shown_url(at)),
        )
    };
    let too_many = |n: usize| {
        bad(
            repo,
            format!(
                "lists {n} versions of {name}, more than {} (the metadata-versions limit)",
                limits.versions
            ),
        )
    };
    let (at, entries, minified) = match root.get("metadata-url") {
        Some(Value::String(meta)) => {
            let at = join(repo, &meta.replace("%package%", name))?;
            let Some(doc) = read_json(http, repo, &at, limits)? else {
                return Ok(Vec::new());
            };
            let list = match doc.get("packages") {
                None => return Ok(Vec::new()),
                Some(Value::Object(p)) => match p.get(name) {
                    None => return Ok(Vec::new()),
                    Some(Value::Array(l)) => l.clone(),
                    Some(other) => {
                        return Err(malformed(
                            &at,
                            format!("packages.{name} is {}, not an array", kind_of(other)),
                        ));
                    }
                },
                Some(other) => {
                    return Err(malformed(
                        &at,
                        format!("`packages` is {}, not an object", kind_of(other)),
                    ));
                }
            };
            let minified = match doc.get("minified") {
                None | Some(Value::Null) => false,
                Some(Value::String(m)) => m == "composer/2.0",
                Some(other) => {
                    return Err(malformed(
                        &at,
                        format!("`minified` is {}, not a string", kind_of(other)),
                    ));
                }
            };
            (at, list, minified)
        }
        Some(other) => {
            return Err(malformed(
                "packages.json",
                format!("`metadata-url` is {}, not a string", kind_of(other)),
            ));
        }
        None => {
            // Composer 1: version → package, inline.
            let list = match root.get("packages") {
                None => return Ok(Vec::new()),
                Some(Value::Object(p)) => match p.get(name) {
                    None => return Ok(Vec::new()),
                    Some(Value::Object(versions)) => versions.values().cloned().collect(),
                    Some(other) => {
                        return Err(malformed(
                            "packages.json",
                            format!("packages.{name} is {}, not an object", kind_of(other)),
                        ));
                    }
                },
                // Composer 2 repositories list no packages inline: `"packages": []`.
                Some(Value::Array(a)) if a.is_empty() => return Ok(Vec::new()),
                Some(other) => {
                    return Err(malformed(
                        "packages.json",
                        format!("`packages` is {}, not an object", kind_of(other)),
                    ));
                }
            };
            ("packages.json".to_string(), list, false)
        }
    };
    // Counted before anything is expanded.
    if entries.len() as u64 > limits.versions {
        return Err(too_many(entries.len()));
    }
    let versions = packages_of(name, &entries, minified)
        .map_err(|why| malformed(&at, format!("{name}: {why}")))?;
    let mut seen: BTreeMap<String, ()> = BTreeMap::new();
    Ok(versions
        .into_iter()
        .filter(|p| seen.insert(p.version.clone(), ()).is_none())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minified_entries_inherit_and_unset() {
        let list = serde_json::json!([
            {"version": "2.1.0", "type": "moodle-mod", "dist": {"url": "https://r.example/a.zip", "type": "zip", "shasum": ""}, "extra": {"installer-name": "foo"}},
            {"version": "2.0.0", "dist": {"url": "https://r.example/b.zip", "type": "zip"}},
            {"version": "1.0.0", "extra": "__unset"}
        ]);
        let p = packages_of("a/b", list.as_array().unwrap(), true).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[1].package_type, "moodle-mod");
        assert_eq!(p[1].dist_url, "https://r.example/b.zip");
        assert_eq!(p[1].installer_name.as_deref(), Some("foo"));
        assert_eq!(p[2].installer_name, None);
        assert_eq!(p[0].sha1, None, "an empty shasum is no checksum");
    }

    #[test]
    fn a_dist_that_is_not_an_http_url_and_fields_of_wrong_types_are_malformed() {
        for (entry, says) in [
            (
                serde_json::json!({"version": "1.0", "dist": {"url": "/srv/secret.zip"}}),
                "is not an http(s) URL",
            ),
            (
                serde_json::json!({"version": "1.0", "dist": {"url": "../private/secret.zip"}}),
                "is not an http(s) URL",
            ),
            (
                serde_json::json!({"version": "1.0", "dist": {"url": "file:///etc/passwd"}}),
                "is not an http(s) URL",
            ),
            (
                serde_json::json!({"version": 1, "dist": {"url": "https://r/a.zip"}}),
                "`version` is a number",
            ),
            (
                serde_json::json!({"version": "1.0", "dist": "https://r/a.zip"}),
                "`dist` is a string",
            ),
            (
                serde_json::json!({"version": "1.0", "dist": {"url": 7}}),
                "`url` is a number",
            ),
            (serde_json::json!("1.0"), "entry 1 is a string"),
        ] {
            let err = packages_of("a/b", &[entry], false).unwrap_err();
            assert!(err.contains(says), "{err}");
        }
        // A version without a dist, or with a dist that is not a zip, is not installable.
        let p = packages_of(
            "a/b",
            &[serde_json::json!({"version": "1.0", "source": {"url": "https://g/x.git"}}),
              serde_json::json!({"version": "0.9", "dist": {"type": "tar", "url": "https://r/a.tar"}})],
            false,
        )
        .unwrap();
        assert!(p.is_empty());
    }

    #[test]
    fn a_local_repository_names_only_files_inside_it() {
        assert_eq!(
            join("/srv/repo", "/p2/a/b.json").unwrap(),
            "/srv/repo/p2/a/b.json"
        );
        assert!(join("/srv/repo", "../../etc/x.json").is_err());
        assert!(join("https://r.example", "file:///etc/passwd").is_err());
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
            join("https://r.example/", "/p2/a/b.json").unwrap(),
            "https://r.example/p2/a/b.json"
        );
        assert_eq!(
            join("https://r.example/sub", "packages.json").unwrap(),
            "https://r.example/sub/packages.json"
        );
    }
}
