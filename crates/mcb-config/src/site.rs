//! The site file: `Site(name: …, moodle: (…), plugins: {…}, directory: …)`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use mcb_moodle::{Component, Maturity, MoodleSpec};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::ConfigError;

/// Far above any real site file.
const MAX_SITE_BYTES: u64 = 1 << 20;

/// Where Moodle core comes from when the site file names no source.
pub const DEFAULT_MOODLE_GIT: &str = "https://github.com/moodle/moodle.git";

/// Where a plugin (or core) comes from, exactly as the site file says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceSpec {
    /// The plugins directory.
    Directory,
    Git {
        url: String,
        #[serde(rename = "ref", default)]
        reference: Option<String>,
    },
    Zip {
        location: String,
        #[serde(default)]
        hash: Option<String>,
    },
    Path {
        dir: String,
    },
    /// A package of the site's Composer repositories.
    Composer {
        package: String,
        /// The Composer version constraint (the entry's `version`).
        #[serde(default)]
        constraint: Option<String>,
    },
    /// The site's CAMP registry (`camp:` at the top of the site file), its signed
    /// metadata verified.
    Camp,
}

impl SourceSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            SourceSpec::Directory => "directory",
            SourceSpec::Git { .. } => "git",
            SourceSpec::Zip { .. } => "zip",
            SourceSpec::Path { .. } => "path",
            SourceSpec::Composer { .. } => "composer",
            SourceSpec::Camp => "camp",
        }
    }
}

/// A location from the site file: a URL, or a path made absolute against the site file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Url(String),
    Path(PathBuf),
}

impl Location {
    /// A location as written in a site file at `base`: a URL as it is, a path made absolute
    /// against `base`.
    pub fn of(base: &Path, written: &str) -> Location {
        if written.contains("://") {
            return Location::Url(written.to_string());
        }
        let p = Path::new(written);
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        };
        Location::Path(normalize(&p))
    }

    /// The string git is given for it: the URL, or the path.
    pub fn for_git(&self) -> String {
        match self {
            Location::Url(u) => u.clone(),
            Location::Path(p) => p.to_string_lossy().into_owned(),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Url(u) => f.write_str(u),
            Location::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

/// One plugin the site wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRequest {
    pub component: Component,
    /// The version the site pins: a build number (`2024101500`) or a release name
    /// (`3.1.6`, as `$plugin->release` and the plugins directory say it).
    pub version: Option<String>,
    /// The least maturity taken without a warning (the site's, else stable).
    pub maturity: Option<Maturity>,
    /// A version younger than this many seconds is not taken (the site's, else none).
    pub min_age: Option<u64>,
    pub source: SourceSpec,
    /// The plugin index (its location) a directory plugin is bound to: its versions come
    /// from there only.
    pub index: Option<String>,
    /// The least CAMP tier taken (the site's `camp.min_tier`, else 1).
    pub min_tier: Option<u8>,
    /// Line of the entry in the site file, for messages.
    pub line: usize,
}

/// The CAMP registry a site takes `camp: true` plugins from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampConfig {
    /// Its base URL (or directory): `metadata/` and `targets/` are below it.
    pub url: String,
    /// The root metadata the site pins (`root.json`), as read from the site's file.
    pub root: String,
    /// The least tier taken for every plugin that does not say (1 when unsaid).
    pub min_tier: u8,
}

/// The Moodle core the site wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoodleRequest {
    pub spec: Option<MoodleSpec>,
    pub source: SourceSpec,
}

/// A parsed and validated site file.
#[derive(Debug, Clone)]
pub struct SiteFile {
    /// The site file's path, absolute.
    pub path: PathBuf,
    pub name: String,
    pub moodle: MoodleRequest,
    /// Sorted by component.
    pub plugins: Vec<PluginRequest>,
    /// The plugin indexes, in the order they are asked (`directory:` first, then
    /// `directories:`); empty: the public plugins directory.
    pub directories: Vec<String>,
    /// The Composer repositories (base URLs) `composer:` entries come from, in order;
    /// empty: Packagist's.
    pub composer_repositories: Vec<String>,
    /// The least maturity taken without a warning, for every plugin that does not say.
    pub maturity: Option<Maturity>,
    /// The release cooldown in seconds, for every plugin that does not say.
    pub min_age: Option<u64>,
    /// Symlinks added to the codebase: path in the codebase → absolute target outside it
    /// (the site's own `config.php`).
    pub links: BTreeMap<String, String>,
    /// Where the live site runs, when the site file says.
    pub target: Option<crate::target::Target>,
    /// The virus scanner's command line, when the site names one.
    pub scan: Option<Vec<String>>,
    /// Advisory ids the site acknowledges: versions they affect may be taken (and every
    /// plan says so).
    pub ignore_advisories: Vec<String>,
    /// The organisation's plugin policy the site includes.
    pub policy: Option<crate::policy::Policy>,
    /// The CAMP registry, when the site names one.
    pub camp: Option<CampConfig>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default, rename = "Source")]
struct RawSource {
    version: Option<String>,
    git: Option<String>,
    #[serde(rename = "ref")]
    reference: Option<String>,
    zip: Option<String>,
    hash: Option<String>,
    path: Option<String>,
    composer: Option<String>,
    maturity: Option<String>,
    min_age: Option<String>,
    /// The plugin index a directory plugin comes from: a name of `indexes`, or one of the
    /// site's `directories`.
    index: Option<String>,
    /// The plugin comes from the site's CAMP registry.
    camp: Option<bool>,
    /// The least CAMP tier taken for this plugin.
    min_tier: Option<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename = "Camp")]
struct RawCamp {
    url: String,
    /// The pinned root metadata, a path relative to the site file.
    root: String,
    #[serde(default)]
    min_tier: Option<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename = "Site")]
struct RawSite {
    name: String,
    moodle: RawSource,
    #[serde(default)]
    plugins: PluginMap,
    #[serde(default)]
    directory: Option<String>,
    #[serde(default)]
    directories: Vec<String>,
    /// Plugin indexes by name (`"mirror": "https://…/pluglist.json"`), asked after
    /// `directories`, for plugins to be bound to by `index: "mirror"`.
    #[serde(default)]
    indexes: BTreeMap<String, String>,
    #[serde(default)]
    composer_repositories: Vec<String>,
    #[serde(default)]
    maturity: Option<String>,
    #[serde(default)]
    min_age: Option<String>,
    #[serde(default)]
    links: BTreeMap<String, String>,
    #[serde(default)]
    target: Option<crate::target::RawTarget>,
    /// A virus scanner every new source package passes before it is recorded: its
    /// command line (`["clamscan", "-d", "/var/lib/clamav"]`).
    #[serde(default)]
    scan: Option<Vec<String>>,
    /// Security advisories (by id) judged and accepted for this site.
    #[serde(default)]
    ignore_advisories: Vec<String>,
    /// A policy file (relative to the site file) with the organisation's allow and deny
    /// lists of plugins.
    #[serde(default)]
    policy: Option<String>,
    /// A CAMP registry: its URL, the root metadata the site pins, the least tier taken.
    #[serde(default)]
    camp: Option<RawCamp>,
}

/// The plugins map in file order, duplicates kept so they can be reported.
#[derive(Default)]
struct PluginMap(Vec<(String, RawSource)>);

impl<'de> Deserialize<'de> for PluginMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PluginMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of component names to plugin entries")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PluginMap, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, RawSource>()? {
                    out.push((k, v));
                }
                Ok(PluginMap(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// 1-based (line, column) of the `nth` occurrence of `"key"` used as a map key in `text`.
fn key_position(text: &str, key: &str, nth: usize) -> Option<(usize, usize)> {
    let quoted = format!("\"{key}\"");
    let mut seen = 0;
    let mut from = 0;
    while let Some(i) = text[from..].find(&quoted) {
        let at = from + i;
        let after = text[at + quoted.len()..].trim_start();
        let line_start = text[..at].rfind('\n').map(|n| n + 1).unwrap_or(0);
        let in_comment = text[line_start..at].contains("//");
        if after.starts_with(':') && !in_comment {
            if seen == nth {
                let line = text[..at].matches('\n').count() + 1;
                let col = text[line_start..at].chars().count() + 1;
                return Some((line, col));
            }
            seen += 1;
        }
        from = at + quoted.len();
    }
    None
}

/// 1-based position of `field:` in `text`, for errors about top-level fields.
fn field_position(text: &str, field: &str) -> Option<(usize, usize)> {
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        if let Some(i) = code.find(field) {
            let rest = code[i + field.len()..].trim_start();
            let before_ok = i == 0
                || !code[..i]
                    .chars()
                    .last()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '"');
            if rest.starts_with(':') && before_ok {
                return Some((n + 1, code[..i].chars().count() + 1));
            }
        }
    }
    None
}

/// A text file the user names, refused when it is a directory or larger than `max` bytes.
pub(crate) fn read_bounded(path: &Path, max: u64) -> std::io::Result<String> {
    let m = std::fs::metadata(path)?;
    if m.is_dir() {
        Err(std::io::Error::other("it is a directory"))
    } else if m.len() > max {
        Err(std::io::Error::other(format!(
            "it is larger than {max} bytes"
        )))
    } else {
        std::fs::read_to_string(path)
    }
}

fn valid_site_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && name.as_bytes()[0].is_ascii_alphanumeric()
}

impl SiteFile {
    /// Reads and validates a site file.
    pub fn load(path: &Path) -> Result<SiteFile, ConfigError> {
        if path.extension().is_some_and(|e| e == "lock") {
            return Err(ConfigError::new(
                path,
                "this is a lock file, which mcb writes; commands take the site file",
            )
            .hint(format!(
                "pass the site file beside it, {}",
                path.with_extension("ron").display()
            )));
        }
        let text = read_bounded(path, MAX_SITE_BYTES).map_err(|e| {
            ConfigError::new(path, format!("cannot read the site file: {e}"))
                .hint("pass the path of a site.ron, or run mcb in the directory that holds one")
        })?;
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        SiteFile::parse(&abs, &text)
    }

    /// Parses and validates site-file `text`; `path` is used for messages and relative paths.
    pub fn parse(path: &Path, text: &str) -> Result<SiteFile, ConfigError> {
        let options = ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
        let raw: RawSite = options.from_str(text).map_err(|e| {
            ConfigError::new(path, e.code.to_string())
                .at(Some((e.span.start.line, e.span.start.col)))
        })?;

        if !valid_site_name(&raw.name) {
            return Err(ConfigError::new(
                path,
                format!(
                    "site name '{}' is not allowed: it names a git branch and a link, so it must be [a-z0-9_-]+ and start with a letter or digit",
                    raw.name
                ),
            )
            .at(field_position(text, "name")));
        }

        let moodle_pos = field_position(text, "moodle");
        let moodle = moodle_request(path, raw.moodle, moodle_pos)?;

        let mut plugins: Vec<PluginRequest> = Vec::new();
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for (key, entry) in raw.plugins.0 {
            let nth = *seen.get(&key).unwrap_or(&0);
            let pos = key_position(text, &key, nth);
            if nth > 0 {
                return Err(ConfigError::new(path, "this component is listed twice")
                    .at(pos)
                    .component(&key)
                    .hint("keep one entry per component"));
            }
            seen.insert(key.clone(), 1);
            let component = Component::parse(&key).map_err(|e| {
                ConfigError::new(path, e.to_string())
                    .at(pos)
                    .component(&key)
            })?;
            let source = plugin_source(path, &key, &entry, pos)?;
            let maturity = match &entry.maturity {
                Some(m) => Some(parse_maturity(path, m, pos).map_err(|e| e.component(&key))?),
                None => None,
            };
            let min_age = match &entry.min_age {
                Some(a) => Some(parse_age(path, a, pos).map_err(|e| e.component(&key))?),
                None => None,
            };
            plugins.push(PluginRequest {
                component,
                min_age,
                // A Composer entry's `version` is its constraint, kept with its source.
                version: if matches!(source, SourceSpec::Composer { .. }) {
                    None
                } else {
                    entry.version
                },
                maturity,
                source,
                index: entry.index.clone(),
                min_tier: entry.min_tier,
                line: pos.map(|p| p.0).unwrap_or(0),
            });
        }
        plugins.sort_by(|a, b| a.component.cmp(&b.component));
        let maturity = match &raw.maturity {
            Some(m) => Some(parse_maturity(path, m, field_position(text, "maturity"))?),
            None => None,
        };
        let links_pos = field_position(text, "links");
        for (at, target) in &raw.links {
            check_link(at, target).map_err(|why| {
                ConfigError::new(path, format!("link \"{}\": {why}", at.escape_debug()))
                    .at(links_pos)
                    .hint("links: {\"config.php\": \"/etc/moodle/SITE/config.php\"}: a path in the codebase and an absolute target outside the store")
            })?;
        }
        check_links_apart(&raw.links).map_err(|why| {
            ConfigError::new(path, why)
                .at(links_pos)
                .hint("a link is a file of the codebase: no link can be inside another")
        })?;
        let mut directories: Vec<String> = raw.directory.into_iter().collect();
        for d in raw.directories {
            if d.trim().is_empty() {
                return Err(ConfigError::new(path, "an empty entry in `directories`")
                    .at(field_position(text, "directories"))
                    .hint("each entry is a pluglist URL or a local file in its format"));
            }
            if !directories.contains(&d) {
                directories.push(d);
            }
        }
        let indexes_pos = field_position(text, "indexes");
        for (name, location) in &raw.indexes {
            if name.trim().is_empty() || location.trim().is_empty() {
                return Err(
                    ConfigError::new(path, "an index needs a name and a location")
                        .at(indexes_pos)
                        .hint(
                            "indexes: {\"mirror\": \"https://mirror.example.org/pluglist.json\"}",
                        ),
                );
            }
            if !directories.contains(location) {
                directories.push(location.clone());
            }
        }
        // A plugin bound to an index: by its name, or by a location the site asks.
        for p in &mut plugins {
            let Some(written) = p.index.take() else {
                continue;
            };
            let pos = key_position(text, p.component.as_str(), 0);
            if !matches!(p.source, SourceSpec::Directory) {
                return Err(ConfigError::new(
                    path,
                    "`index` binds a plugin of the plugins directory; this entry names its own source",
                )
                .at(pos)
                .component(p.component.as_str()));
            }
            let location = match raw.indexes.get(&written) {
                Some(l) => l.clone(),
                None if directories.contains(&written) => written,
                None => {
                    return Err(ConfigError::new(
                        path,
                        format!(
                            "index '{}' is neither a name in `indexes` nor one of the site's `directories`",
                            written.escape_debug()
                        ),
                    )
                    .at(pos)
                    .component(p.component.as_str())
                    .hint("name it in indexes: {\"mirror\": \"URL\"}, or give the URL the site asks"));
                }
            };
            p.index = Some(location);
        }
        for r in &raw.composer_repositories {
            if !(r.starts_with("https://") || r.starts_with("http://") || r.starts_with('/')) {
                return Err(ConfigError::new(
                    path,
                    format!("composer repository '{}' is not a URL", r.escape_debug()),
                )
                .at(field_position(text, "composer_repositories"))
                .hint("give the repository's base URL, e.g. https://repo.packagist.org"));
            }
        }
        let min_age = match &raw.min_age {
            Some(a) => Some(parse_age(path, a, field_position(text, "min_age"))?),
            None => None,
        };
        let scan = match raw.scan {
            Some(argv) => {
                let bad = argv.first().is_none_or(|p| p.trim().is_empty())
                    || argv.iter().any(|a| a.chars().any(char::is_control));
                if bad {
                    return Err(ConfigError::new(path, "`scan` is not a command line")
                        .at(field_position(text, "scan"))
                        .hint("scan: [\"clamscan\", \"-d\", \"/var/lib/clamav\"]: the program, then its options"));
                }
                Some(argv)
            }
            None => None,
        };
        for id in &raw.ignore_advisories {
            if id.is_empty()
                || id.len() > 100
                || id.contains(|c: char| c.is_whitespace() || c.is_control() || c == '"')
            {
                return Err(ConfigError::new(
                    path,
                    format!("'{}' in `ignore_advisories` is not an advisory id", id.escape_debug()),
                )
                .at(field_position(text, "ignore_advisories"))
                .hint("give the id `mcb plan` shows, e.g. ignore_advisories: [\"PKSA-2xkq-5x3n-qpgq\"]"));
            }
        }
        let policy = match &raw.policy {
            Some(p) if p.trim().is_empty() || p.contains("://") => {
                return Err(ConfigError::new(
                    path,
                    format!("policy '{}' is not a file path", p.escape_debug()),
                )
                .at(field_position(text, "policy"))
                .hint("policy: \"../policy.ron\": a path relative to the site file"));
            }
            Some(p) => {
                let dir = path.parent().unwrap_or(Path::new("."));
                Some(crate::policy::Policy::load(&normalize(&dir.join(p)))?)
            }
            None => None,
        };
        let camp_pos = field_position(text, "camp");
        let camp = match raw.camp {
            Some(c) => {
                let ok_url = c.url.starts_with("https://")
                    || c.url.starts_with("http://")
                    || c.url.starts_with('/');
                if !ok_url {
                    return Err(ConfigError::new(
                        path,
                        format!(
                            "camp url '{}' is neither an http(s) URL nor an absolute directory",
                            c.url.escape_debug()
                        ),
                    )
                    .at(camp_pos)
                    .hint("camp: (url: \"https://camp.example.org\", root: \"camp-root.json\")"));
                }
                let dir = path.parent().unwrap_or(Path::new("."));
                let at = normalize(&dir.join(&c.root));
                let root = read_bounded(&at, 1 << 20)
                    .map_err(|e| {
                        ConfigError::new(path, format!("cannot read the pinned CAMP root {}: {e}", at.display()))
                            .at(camp_pos)
                            .hint("`root` is the registry's root.json, obtained out of band and kept beside the site file")
                    })?;
                Some(CampConfig {
                    url: c.url,
                    root,
                    min_tier: c.min_tier.unwrap_or(1),
                })
            }
            None => None,
        };
        if camp.is_none()
            && let Some(p) = plugins.iter().find(|p| p.source == SourceSpec::Camp)
        {
            return Err(ConfigError::new(path, "`camp: true`, but the site names no CAMP registry")
                .at(key_position(text, p.component.as_str(), 0))
                .component(p.component.as_str())
                .hint("add camp: (url: \"https://camp.example.org\", root: \"camp-root.json\") to the site file"));
        }
        let target = match raw.target {
            Some(t) => Some(crate::target::target(
                path,
                t,
                field_position(text, "target"),
            )?),
            None => None,
        };
        Ok(SiteFile {
            path: path.to_path_buf(),
            name: raw.name,
            moodle,
            plugins,
            min_age,
            directories,
            composer_repositories: raw.composer_repositories,
            maturity,
            links: raw.links,
            target,
            scan,
            ignore_advisories: raw.ignore_advisories,
            policy,
            camp,
        })
    }

    /// The directory holding the site file; relative paths in it are relative to this.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// `site.lock` beside the site file.
    pub fn lock_path(&self) -> PathBuf {
        self.path.with_extension("lock")
    }

    /// Resolves a git URL, zip location or directory written in the site file.
    pub fn locate(&self, written: &str) -> Location {
        Location::of(self.dir(), written)
    }

    pub fn plugin(&self, component: &str) -> Option<&PluginRequest> {
        self.plugins
            .iter()
            .find(|p| p.component.as_str() == component)
    }
}

/// Removes `.` and `..` components by text alone, without touching the filesystem (a path
/// in a site file, a link's target that is never followed).
pub fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// `blake3:<hex>` with the hex in lowercase, whatever case it was written in.
fn normalise_hash(h: &str) -> Option<String> {
    let (prefix, hex) = h.trim().split_at_checked(7)?;
    if !prefix.eq_ignore_ascii_case("blake3:") {
        return None;
    }
    let hex = hex.to_ascii_lowercase();
    mcb_store::Blake3::parse(&hex).ok()?;
    Some(format!("blake3:{hex}"))
}

fn one_source(
    path: &Path,
    what: &str,
    raw: &RawSource,
    pos: Option<(usize, usize)>,
) -> Result<Option<SourceSpec>, ConfigError> {
    let given: Vec<&str> = [
        ("git", raw.git.is_some()),
        ("zip", raw.zip.is_some()),
        ("path", raw.path.is_some()),
        ("composer", raw.composer.is_some()),
    ]
    .iter()
    .filter(|(_, set)| *set)
    .map(|(n, _)| *n)
    .collect();
    if given.len() > 1 {
        return Err(ConfigError::new(
            path,
            format!(
                "{what} has {} sources ({}); an entry takes at most one of git, zip, path, composer",
                given.len(),
                given.join(", ")
            ),
        )
        .at(pos)
        .hint("keep one source; with none, the plugin comes from the plugins directory"));
    }
    if raw.reference.is_some() && raw.git.is_none() {
        return Err(
            ConfigError::new(path, format!("{what} has `ref` but no `git` source"))
                .at(pos)
                .hint("`ref` names a tag, branch or commit of the `git` URL"),
        );
    }
    if raw.hash.is_some() && raw.zip.is_none() {
        return Err(
            ConfigError::new(path, format!("{what} has `hash` but no `zip` source"))
                .at(pos)
                .hint("`hash` pins the content of the `zip` download"),
        );
    }
    let hash = match &raw.hash {
        Some(h) => Some(normalise_hash(h).ok_or_else(|| {
            ConfigError::new(
                path,
                format!(
                    "{what} has hash '{}', which is not blake3:<64 hex digits>",
                    h.escape_debug()
                ),
            )
            .at(pos)
        })?),
        None => None,
    };
    if let (Some(z), None) = (&raw.zip, &hash)
        && z.trim_start()
            .get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
    {
        return Err(ConfigError::new(
            path,
            format!("{what} downloads a zip over plain http:// without a `hash`: anyone on the way could change it"),
        )
        .at(pos)
        .hint("use https://, or pin the content with hash: \"blake3:…\" (mcb prints the hash when it fetches it)"));
    }
    for (field, value) in [
        ("git", &raw.git),
        ("zip", &raw.zip),
        ("path", &raw.path),
        ("composer", &raw.composer),
    ] {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return Err(ConfigError::new(path, format!("{what} has an empty `{field}`")).at(pos));
        }
    }
    Ok(if let Some(url) = &raw.git {
        Some(SourceSpec::Git {
            url: url.clone(),
            reference: raw.reference.clone(),
        })
    } else if let Some(z) = &raw.zip {
        Some(SourceSpec::Zip {
            location: z.clone(),
            hash,
        })
    } else {
        raw.path
            .as_ref()
            .map(|p| SourceSpec::Path { dir: p.clone() })
    })
}

fn plugin_source(
    path: &Path,
    key: &str,
    raw: &RawSource,
    pos: Option<(usize, usize)>,
) -> Result<SourceSpec, ConfigError> {
    let src = one_source(path, "this entry", raw, pos).map_err(|e| e.component(key))?;
    if raw.camp == Some(true) {
        if src.is_some() || raw.composer.is_some() || raw.index.is_some() {
            return Err(ConfigError::new(
                path,
                "`camp: true` takes the plugin from the site's CAMP registry; this entry also names another source",
            )
            .at(pos)
            .component(key));
        }
        return Ok(SourceSpec::Camp);
    }
    if raw.min_tier.is_some() {
        return Err(
            ConfigError::new(path, "`min_tier` is for a plugin from CAMP (`camp: true`)")
                .at(pos)
                .component(key),
        );
    }
    if let Some(package) = &raw.composer {
        crate::composer::check_package_name(package)
            .map_err(|e| ConfigError::new(path, e).at(pos).component(key))?;
        if let Some(v) = &raw.version {
            crate::composer::Constraint::parse(v)
                .map_err(|e| ConfigError::new(path, e).at(pos).component(key))?;
        }
        return Ok(SourceSpec::Composer {
            package: package.clone(),
            constraint: raw.version.clone(),
        });
    }
    if let Some(v) = &raw.version
        && (v.trim().is_empty() || v.len() > 100 || v.chars().any(char::is_control))
    {
        return Err(ConfigError::new(
            path,
            format!(
                "version '{}' is not a plugin version: a build number such as 2024101500 or a release name such as 3.1.6",
                v.escape_debug()
            ),
        )
        .at(pos)
        .component(key));
    }
    Ok(src.unwrap_or(SourceSpec::Directory))
}

/// A duration such as `"7d"`, `"36h"`, `"2w"` (s, m, h, d, w), in seconds.
fn parse_age(path: &Path, text: &str, pos: Option<(usize, usize)>) -> Result<u64, ConfigError> {
    let t = text.trim();
    let bad = || {
        ConfigError::new(
            path,
            format!(
                "min_age '{}' is not a duration such as \"7d\", \"36h\" or \"2w\"",
                t.escape_debug()
            ),
        )
        .at(pos)
    };
    let unit = t.chars().last().ok_or_else(bad)?;
    let scale: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => return Err(bad()),
    };
    let n: u64 = t[..t.len() - 1].trim().parse().map_err(|_| bad())?;
    n.checked_mul(scale)
        .filter(|s| *s <= 10 * 365 * 86_400)
        .ok_or_else(bad)
}

/// `"stable"`, `"rc"`, `"beta"`, `"alpha"` (or Moodle's `MATURITY_RC`…).
fn parse_maturity(
    path: &Path,
    text: &str,
    pos: Option<(usize, usize)>,
) -> Result<Maturity, ConfigError> {
    let t = text.trim().to_ascii_lowercase();
    Ok(match t.strip_prefix("maturity_").unwrap_or(&t) {
        "stable" => Maturity::Stable,
        "rc" => Maturity::Rc,
        "beta" => Maturity::Beta,
        "alpha" => Maturity::Alpha,
        _ => {
            return Err(ConfigError::new(
                path,
                format!(
                    "maturity '{}' is not one of stable, rc, beta, alpha",
                    text.escape_debug()
                ),
            )
            .at(pos));
        }
    })
}

/// A link is a clean relative path in the codebase to an absolute path outside it.
/// No link inside another: a link is a file (a symlink), so a path under it names nothing.
pub(crate) fn check_links_apart(links: &BTreeMap<String, String>) -> Result<(), String> {
    // In sorted order a path's descendants follow it; `a/b` sorts after `a` and before
    // `a0`, so checking each against the paths after it that share its prefix is enough.
    let paths: Vec<&String> = links.keys().collect();
    for (i, a) in paths.iter().enumerate() {
        for b in &paths[i + 1..] {
            if !b.starts_with(a.as_str()) {
                break;
            }
            if b.as_bytes().get(a.len()) == Some(&b'/') {
                return Err(format!(
                    "link \"{}\" is inside link \"{}\"",
                    b.escape_debug(),
                    a.escape_debug()
                ));
            }
        }
    }
    Ok(())
}

pub(crate) fn check_link(at: &str, target: &str) -> Result<(), String> {
    let bad_part =
        |p: &str| p.is_empty() || p == "." || p == ".." || p.eq_ignore_ascii_case(".git");
    if at.is_empty() || at.starts_with('/') || at.len() > 1024 || at.split('/').any(bad_part) {
        return Err(
            "the path must be relative to the codebase, with no '.', '..', '.git' or empty part"
                .into(),
        );
    }
    if at.chars().any(char::is_control) || target.chars().any(char::is_control) {
        return Err("control characters are not allowed".into());
    }
    if !target.starts_with('/') || target.len() > 4096 {
        return Err(format!(
            "the target '{}' must be an absolute path (mcb never follows it; the web server does)",
            target.escape_debug()
        ));
    }
    Ok(())
}

fn moodle_request(
    path: &Path,
    raw: RawSource,
    pos: Option<(usize, usize)>,
) -> Result<MoodleRequest, ConfigError> {
    if raw.index.is_some() {
        return Err(ConfigError::new(path, "`moodle` takes no `index`").at(pos));
    }
    if raw.maturity.is_some() {
        return Err(ConfigError::new(path, "`moodle` takes no `maturity`")
            .at(pos)
            .hint("name the core with version: \"4.5\", \"4.5+\", \"4.5.3\", \"tag:NAME\" or \"commit:SHA\""));
    }
    if raw.reference.is_some() {
        return Err(ConfigError::new(path, "`moodle` takes no `ref`")
            .at(pos)
            .hint("name the core with version: \"4.5\", \"4.5+\", \"4.5.3\", \"tag:NAME\" or \"commit:SHA\""));
    }
    if raw.composer.is_some() {
        return Err(ConfigError::new(
            path,
            "`moodle` cannot come from a Composer package; give git, zip or path",
        )
        .at(pos));
    }
    let source = one_source(path, "`moodle`", &raw, pos)?;
    let spec = match &raw.version {
        Some(v) => {
            Some(MoodleSpec::parse(v).map_err(|e| ConfigError::new(path, e.to_string()).at(pos))?)
        }
        None => None,
    };
    let source = source.unwrap_or(SourceSpec::Git {
        url: DEFAULT_MOODLE_GIT.to_string(),
        reference: None,
    });
    if matches!(source, SourceSpec::Git { .. }) && spec.is_none() {
        return Err(
            ConfigError::new(path, "`moodle` from git needs a `version`")
                .at(pos)
                .hint("for example moodle: (version: \"4.5\")"),
        );
    }
    Ok(MoodleRequest { spec, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SiteFile, ConfigError> {
        SiteFile::parse(Path::new("/sites/a/site.ron"), text)
    }

    #[test]
    fn the_design_example_parses() {
        let s = parse(
            r#"// site.ron
Site(
    name: "univ-prod",
    moodle: (version: "4.5"),
    plugins: {
        "mod_attendance": (),
        "block_xp": (version: "2024101500"),
        "local_mailtest": (git: "https://github.com/michael-milette/moodle-local_mailtest.git",
                           ref: "v3.1.7"),
        "theme_foo": (zip: "https://example.org/theme_foo.zip",
                      hash: "blake3:9f2c000000000000000000000000000000000000000000000000000000000000"),
        "local_bar": (path: "../local_bar"),
    },
    directory: "https://download.moodle.org/api/1.3/pluglist.php",
)"#,
        )
        .unwrap();
        assert_eq!(s.name, "univ-prod");
        assert_eq!(
            s.moodle.spec,
            Some(MoodleSpec::Series(mcb_moodle::Release::new(4, 5)))
        );
        assert_eq!(s.plugins.len(), 5);
        assert_eq!(s.plugins[0].component.as_str(), "block_xp");
        assert_eq!(
            s.plugin("mod_attendance").unwrap().source,
            SourceSpec::Directory
        );
        assert_eq!(s.plugin("block_xp").unwrap().line, 7);
        assert_eq!(
            s.locate("../local_bar"),
            Location::Path(PathBuf::from("/sites/local_bar"))
        );
        assert!(matches!(
            s.plugin("local_mailtest").unwrap().source,
            SourceSpec::Git { reference: Some(ref r), .. } if r == "v3.1.7"
        ));
        assert_eq!(s.lock_path(), PathBuf::from("/sites/a/site.lock"));
    }

    #[test]
    fn a_link_inside_another_link_is_refused_naming_both() {
        let e = parse(
            "Site(\n  name: \"a\",\n  moodle: (version: \"4.5\"),\n  plugins: {},\n  links: {\"local\": \"/srv/a\", \"local-x\": \"/srv/b\", \"local/x.php\": \"/srv/c\"},\n)",
        )
        .unwrap_err();
        assert_eq!(e.message, "link \"local/x.php\" is inside link \"local\"");
        assert_eq!(e.position.map(|p| p.0), Some(5), "{e}");
        parse("Site(\n  name: \"a\",\n  moodle: (version: \"4.5\"),\n  plugins: {},\n  links: {\"a\": \"/x\", \"a0\": \"/y\", \"ab/c\": \"/z\"},\n)").unwrap();
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        let e = parse("Site(\n  name: \"a\",\n  moodle: (version: \"4.5\"\n  plugins: {},\n)")
            .unwrap_err();
        let (line, _) = e.position.unwrap();
        assert!(line >= 3, "{e}");
        assert!(e.to_string().starts_with("/sites/a/site.ron:"), "{e}");
    }

    #[test]
    fn unknown_fields_are_rejected_with_position() {
        let e = parse("Site(\n  name: \"a\",\n  moodle: (version: \"4.5\"),\n  plugins: {\n    \"mod_x\": (versoin: \"1\"),\n  },\n)").unwrap_err();
        assert_eq!(e.position.unwrap().0, 5, "{e}");
        assert!(e.message.contains("versoin"), "{e}");
        let e =
            parse("Site(name: \"a\", moodle: (version: \"4.5\"), colour: \"red\")").unwrap_err();
        assert!(e.message.contains("colour"), "{e}");
    }

    #[test]
    fn semantic_rules() {
        let two = parse("Site(name: \"a\", moodle: (version: \"4.5\"), plugins: {\n\"mod_x\": (git: \"u\", zip: \"z\"),\n})").unwrap_err();
        assert_eq!(two.component.as_deref(), Some("mod_x"));
        assert_eq!(two.position.unwrap().0, 2);
        assert!(two.message.contains("git, zip"), "{two}");

        let dup = parse("Site(name: \"a\", moodle: (version: \"4.5\"), plugins: {\n\"mod_x\": (),\n\"mod_x\": (),\n})").unwrap_err();
        assert_eq!(dup.position.unwrap().0, 3);
        assert!(dup.message.contains("twice"));

        let bad =
            parse("Site(name: \"a\", moodle: (version: \"4.5\"), plugins: {\"attendance\": ()})")
                .unwrap_err();
        assert_eq!(bad.component.as_deref(), Some("attendance"));

        let name = parse("Site(name: \"Univ Prod\", moodle: (version: \"4.5\"))").unwrap_err();
        assert!(name.message.contains("[a-z0-9_-]+"));

        let spec = parse("Site(name: \"a\", moodle: (version: \"latest\"))").unwrap_err();
        assert!(spec.message.contains("not a Moodle version spec"));

        let noversion = parse("Site(name: \"a\", moodle: ())").unwrap_err();
        assert!(noversion.message.contains("needs a `version`"));

        let r = parse(
            "Site(name: \"a\", moodle: (version: \"4.5\"), plugins: {\"mod_x\": (ref: \"v1\")})",
        )
        .unwrap_err();
        assert!(r.message.contains("no `git`"));

        let h = parse("Site(name: \"a\", moodle: (version: \"4.5\"), plugins: {\"mod_x\": (zip: \"a.zip\", hash: \"md5:1\")})").unwrap_err();
        assert!(h.message.contains("blake3"));

        let core_path = parse("Site(name: \"a\", moodle: (path: \"moodle\"))").unwrap();
        assert_eq!(core_path.moodle.spec, None);

        let m = parse("Site(name: \"a\", moodle: (version: \"4.5\"), plugins: {\"mod_x\": (maturity: \"gold\")})").unwrap_err();
        assert!(
            m.message.contains("not one of stable, rc, beta, alpha"),
            "{m}"
        );
        assert_eq!(m.component.as_deref(), Some("mod_x"));
    }

    #[test]
    fn maturity_release_pins_and_links() {
        let s = parse(
            r#"Site(
    name: "a",
    moodle: (version: "4.5"),
    maturity: "beta",
    plugins: {
        "mod_x": (version: "3.1.6", maturity: "rc"),
        "mod_y": (),
    },
    links: {"config.php": "/etc/moodle/a/config.php"},
)"#,
        )
        .unwrap();
        assert_eq!(s.maturity, Some(Maturity::Beta));
        let x = s.plugin("mod_x").unwrap();
        assert_eq!(x.version.as_deref(), Some("3.1.6"));
        assert_eq!(x.maturity, Some(Maturity::Rc));
        assert_eq!(s.plugin("mod_y").unwrap().maturity, None);
        assert_eq!(s.links["config.php"], "/etc/moodle/a/config.php");

        for (at, target, why) in [
            ("config.php", "config/prod.php", "absolute path"),
            ("../config.php", "/etc/c.php", "relative to the codebase"),
            ("/config.php", "/etc/c.php", "relative to the codebase"),
            (".git/hooks/x", "/etc/c.php", "'.git'"),
        ] {
            let e = parse(&format!(
                "Site(name: \"a\", moodle: (version: \"4.5\"),\n links: {{\"{at}\": \"{target}\"}})"
            ))
            .unwrap_err();
            assert!(e.message.contains(why), "{at}: {e}");
            assert_eq!(e.position.map(|p| p.0), Some(2), "{e}");
        }
        let e =
            parse("Site(name: \"a\", moodle: (version: \"4.5\", maturity: \"rc\"))").unwrap_err();
        assert!(e.message.contains("takes no `maturity`"), "{e}");
    }
}
