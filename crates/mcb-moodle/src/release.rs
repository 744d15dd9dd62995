//! Moodle releases, branches, build numbers, version specs and tag ordering.
//!
//! Releases compare as (major, minor) integers, never as floats: 3.1 and 3.10 differ.

use std::cmp::Ordering;
use std::fmt;

/// A core or plugin build number such as `2024100700.01`, kept exactly as hundredths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Build(i64);

impl Build {
    /// Above every real build.
    pub const MAX: Build = Build(i64::MAX);

    /// Parses `2024100700`, `2024100700.00` or `2024100700.5`.
    pub fn parse(text: &str) -> Option<Build> {
        let text = text.trim();
        let (int, frac) = match text.split_once('.') {
            Some((i, f)) => (i, f),
            None => (text, ""),
        };
        if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if !frac.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 2 {
            return None;
        }
        let whole: i64 = int.parse().ok()?;
        let hundredths: i64 = match frac.len() {
            0 => 0,
            1 => frac.parse::<i64>().ok()? * 10,
            _ => frac.parse().ok()?,
        };
        whole.checked_mul(100)?.checked_add(hundredths).map(Build)
    }

    pub fn from_int(v: i64) -> Build {
        Build(v * 100)
    }

    /// The integer part, which is what plugin versions and `requires` usually carry.
    pub fn whole(self) -> i64 {
        self.0 / 100
    }
}

impl fmt::Display for Build {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 % 100 == 0 {
            write!(f, "{}", self.0 / 100)
        } else {
            write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
        }
    }
}

/// A Moodle branch number: `major*100+minor` from 4.0 (`405`, `500`), `39`, `310`, `311` before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Branch(pub u32);

impl Branch {
    pub fn release(self) -> Release {
        let b = self.0;
        if b >= 400 {
            Release::new(b / 100, b % 100)
        } else if b >= 310 {
            Release::new(3, b - 300)
        } else {
            Release::new(b / 10, b % 10)
        }
    }
}

impl fmt::Display for Branch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A Moodle major release, `X.Y`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Release {
    pub major: u32,
    pub minor: u32,
}

impl Release {
    pub fn new(major: u32, minor: u32) -> Release {
        Release { major, minor }
    }

    pub fn branch(self) -> Branch {
        // 3.10 and 3.11 are 310 and 311, like every release from 4.0; 3.9 is 39.
        if self.major >= 4 || self.minor >= 10 {
            Branch(self.major * 100 + self.minor)
        } else {
            Branch(self.major * 10 + self.minor)
        }
    }

    /// Reads the leading `X.Y` of a release text such as `4.5.3 (Build: 20250310)` or `4.5+`.
    pub fn parse_leading(text: &str) -> Option<Release> {
        let (major, rest) = leading_number(text.trim())?;
        let rest = rest.strip_prefix('.')?;
        let (minor, _) = leading_number(rest)?;
        Some(Release::new(major, minor))
    }

    /// The name of this release's stable branch, e.g. `MOODLE_405_STABLE`.
    pub fn stable_branch(self) -> String {
        format!("MOODLE_{}_STABLE", self.branch())
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

fn leading_number(s: &str) -> Option<(u32, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    Some((s[..end].parse().ok()?, &s[end..]))
}

/// Which Moodle core the site wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoodleSpec {
    /// `"4.5"`: the newest `v4.5.N` release tag.
    Series(Release),
    /// `"4.5+"`: the head of `MOODLE_405_STABLE`.
    StableHead(Release),
    /// `"4.5.3"`: the tag `v4.5.3`.
    Exact(Release, u32),
    /// `"tag:NAME"`.
    Tag(String),
    /// `"commit:SHA"`.
    Commit(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not a Moodle version spec; write \"4.5\" (newest 4.5.x), \"4.5+\" (MOODLE_405_STABLE head), \"4.5.3\", \"tag:NAME\" or \"commit:SHA\""
)]
pub struct SpecError(pub String);

impl MoodleSpec {
    pub fn parse(text: &str) -> Result<MoodleSpec, SpecError> {
        let bad = || SpecError(text.to_string());
        if let Some(tag) = text.strip_prefix("tag:") {
            if tag.is_empty() || tag.contains(char::is_whitespace) {
                return Err(bad());
            }
            return Ok(MoodleSpec::Tag(tag.to_string()));
        }
        if let Some(sha) = text.strip_prefix("commit:") {
            if !(4..=40).contains(&sha.len()) || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad());
            }
            return Ok(MoodleSpec::Commit(sha.to_ascii_lowercase()));
        }
        let (body, plus) = match text.strip_suffix('+') {
            Some(b) => (b, true),
            None => (text, false),
        };
        let parts: Vec<&str> = body.split('.').collect();
        let nums: Option<Vec<u32>> = parts
            .iter()
            .map(|p| {
                if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
                    p.parse().ok()
                } else {
                    None
                }
            })
            .collect();
        let nums = nums.ok_or_else(bad)?;
        match (nums.as_slice(), plus) {
            ([major, minor], false) => Ok(MoodleSpec::Series(Release::new(*major, *minor))),
            ([major, minor], true) => Ok(MoodleSpec::StableHead(Release::new(*major, *minor))),
            ([major, minor, patch], false) => {
                Ok(MoodleSpec::Exact(Release::new(*major, *minor), *patch))
            }
            _ => Err(bad()),
        }
    }

    /// The major release this spec names, when it names one.
    pub fn release(&self) -> Option<Release> {
        match self {
            MoodleSpec::Series(r) | MoodleSpec::StableHead(r) | MoodleSpec::Exact(r, _) => Some(*r),
            _ => None,
        }
    }
}

impl fmt::Display for MoodleSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MoodleSpec::Series(r) => write!(f, "{r}"),
            MoodleSpec::StableHead(r) => write!(f, "{r}+"),
            MoodleSpec::Exact(r, p) => write!(f, "{r}.{p}"),
            MoodleSpec::Tag(t) => write!(f, "tag:{t}"),
            MoodleSpec::Commit(c) => write!(f, "commit:{c}"),
        }
    }
}

/// What mcb knows of a Moodle release without its code: when it came out and until when
/// it is supported, its builds, and what it needs of the host (from its
/// `admin/environment.xml`). Dates are `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleaseFacts {
    pub release: Release,
    /// `$version` of X.Y.0.
    pub build: i64,
    /// The newest X.Y.Z mcb knows, as of [`RELEASE_TABLE_DATE`].
    pub latest_patch: u32,
    pub lts: bool,
    pub released: &'static str,
    /// The end of bug fixes.
    pub general_end: &'static str,
    /// The end of security fixes: after it the release is out of support.
    pub security_end: &'static str,
    /// The least PHP it installs on, and the first PHP it refuses, when it refuses one.
    pub php_min: &'static str,
    pub php_below: Option<&'static str>,
    /// The least PostgreSQL, MariaDB and MySQL versions it installs on.
    pub postgres_min: &'static str,
    pub mariadb_min: &'static str,
    pub mysql_min: &'static str,
}

/// When the table below was last brought up to date.
pub const RELEASE_TABLE_DATE: &str = "2026-12-05";

const fn facts(
    (major, minor): (u32, u32),
    build: i64,
    latest_patch: u32,
    lts: bool,
    (released, general_end, security_end): (&'static str, &'static str, &'static str),
    (php_min, php_below): (&'static str, Option<&'static str>),
    (postgres_min, mariadb_min, mysql_min): (&'static str, &'static str, &'static str),
) -> ReleaseFacts {
    ReleaseFacts {
        release: Release { major, minor },
        build,
        latest_patch,
        lts,
        released,
        general_end,
        security_end,
        php_min,
        php_below,
        postgres_min,
        mariadb_min,
        mysql_min,
    }
}

/// Every release mcb knows, oldest first: builds from Moodle's tags, dates from its
/// release calendar, requirements from each release's `admin/environment.xml`. A core
/// that is reachable is read instead (its tags, `version.php`, `environment.xml`).
pub const RELEASES: &[ReleaseFacts] = &[
    facts(
        (3, 9),
        2020061500,
        28,
        true,
        ("2020-06-15", "2021-05-10", "2023-11-13"),
        ("7.2.0", Some("8.1")),
        ("9.6", "10.2.29", "5.6"),
    ),
    facts(
        (3, 10),
        2020110900,
        11,
        false,
        ("2020-11-09", "2021-11-08", "2022-05-09"),
        ("7.2.0", Some("8.0")),
        ("9.6", "10.2.29", "5.7"),
    ),
    facts(
        (3, 11),
        2021051700,
        18,
        false,
        ("2021-05-17", "2022-11-14", "2023-11-13"),
        ("7.3.0", Some("8.1")),
        ("9.6", "10.2.29", "5.7"),
    ),
    facts(
        (4, 0),
        2022041900,
        12,
        false,
        ("2022-04-19", "2023-05-08", "2023-11-13"),
        ("7.3.0", Some("8.1")),
        ("10", "10.2.29", "5.7"),
    ),
    facts(
        (4, 1),
        2022112800,
        22,
        true,
        ("2022-11-28", "2023-12-11", "2025-12-08"),
        ("7.4.0", Some("8.2")),
        ("12", "10.4", "5.7"),
    ),
    facts(
        (4, 2),
        2023042400,
        11,
        false,
        ("2023-04-24", "2024-04-22", "2024-10-07"),
        ("8.0.0", Some("8.3")),
        ("13", "10.6.7", "8.0"),
    ),
    facts(
        (4, 3),
        2023100900,
        11,
        false,
        ("2023-10-09", "2024-10-07", "2025-04-21"),
        ("8.0.0", Some("8.3")),
        ("13", "10.6.7", "8.0"),
    ),
    facts(
        (4, 4),
        2024042200,
        11,
        false,
        ("2024-04-22", "2025-04-21", "2025-10-06"),
        ("8.1.0", Some("8.4")),
        ("13", "10.6.7", "8.0"),
    ),
    facts(
        (4, 5),
        2024100700,
        14,
        true,
        ("2024-10-07", "2025-10-06", "2027-10-04"),
        ("8.1.0", Some("8.4")),
        ("13", "10.6.7", "8.0"),
    ),
    facts(
        (5, 0),
        2025041400,
        8,
        false,
        ("2025-04-14", "2026-04-20", "2026-10-05"),
        ("8.2.0", Some("8.5")),
        ("14", "10.11.0", "8.4"),
    ),
    facts(
        (5, 1),
        2025100600,
        7,
        false,
        ("2025-10-06", "2026-10-05", "2027-04-19"),
        ("8.2.0", Some("8.5")),
        ("15", "10.11.0", "8.4"),
    ),
    facts(
        (5, 2),
        2026042000,
        3,
        false,
        ("2026-04-20", "2027-04-19", "2027-10-04"),
        ("8.3.0", None),
        ("16", "10.11.0", "8.4"),
    ),
    facts(
        (5, 3),
        2026100500,
        0,
        true,
        ("2026-10-05", "2027-10-04", "2029-10-01"),
        ("8.3.0", None),
        ("16", "10.11.0", "8.4"),
    ),
];

/// What mcb knows of release `r`.
pub fn release_facts(r: Release) -> Option<&'static ReleaseFacts> {
    RELEASES.iter().find(|f| f.release == r)
}

/// The build of release `r`'s X.Y.0, when mcb knows it.
pub fn release_build(r: Release) -> Option<Build> {
    release_facts(r).map(|f| Build::from_int(f.build))
}

/// Every release mcb knows the build of, oldest first.
pub fn known_releases() -> Vec<Release> {
    RELEASES.iter().map(|f| f.release).collect()
}

impl ReleaseFacts {
    /// Still given security fixes on `today` (`YYYY-MM-DD`).
    pub fn supported_on(&self, today: &str) -> bool {
        today <= self.security_end
    }
}

/// Today's date in UTC, `YYYY-MM-DD`.
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    civil_date(secs)
}

/// `YYYY-MM-DD` of a UTC time in seconds (Howard Hinnant's civil_from_days).
pub fn civil_date(secs: i64) -> String {
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Parses a Moodle release tag `vX.Y.Z` (no pre-release suffix) into its release and patch.
pub fn parse_release_tag(tag: &str) -> Option<(Release, u32)> {
    let body = tag.strip_prefix('v')?;
    let mut it = body.split('.');
    let mut num = || -> Option<u32> {
        let p = it.next()?;
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse().ok()
    };
    let (major, minor, patch) = (num()?, num()?, num()?);
    if it.next().is_some() {
        return None;
    }
    Some((Release::new(major, minor), patch))
}

/// Orders strings with digit runs compared as numbers: `v3.9` < `v3.10`, `r2` < `r10`.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let la = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let lb = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (da, db) = (trim_zeros(&a[..la]), trim_zeros(&b[..lb]));
                let ord = da.len().cmp(&db.len()).then_with(|| da.cmp(db));
                if ord != Ordering::Equal {
                    return ord;
                }
                a = &a[la..];
                b = &b[lb..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

/// Orders tag names as release names: a leading `v` is ignored (`3.1.2` and `v3.1.2` are
/// one release), digit runs compare as numbers, and a pre-release suffix (`-rc1`, `beta`,
/// `-alpha2`, `dev`) comes before the release it leads to: `v2.0-rc1` < `v2.0` < `v2.0.1`.
/// Used only to break ties between tags of one plugin version.
pub fn tag_cmp(a: &str, b: &str) -> Ordering {
    let (na, sa) = split_tag(a);
    let (nb, sb) = split_tag(b);
    natural_cmp(na, nb)
        .then_with(|| match (pre_release(sa), pre_release(sb)) {
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            _ => natural_cmp(sa, sb),
        })
        .then_with(|| a.cmp(b))
}

/// (numbered part, suffix) of a tag, without a leading `v`: `v2.0-rc1` → (`2.0`, `-rc1`).
fn split_tag(tag: &str) -> (&str, &str) {
    let body = tag
        .strip_prefix(['v', 'V'])
        .filter(|b| b.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or(tag);
    let end = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let numbers = body[..end].trim_end_matches('.');
    (numbers, &body[numbers.len()..])
}

fn pre_release(suffix: &str) -> bool {
    let s = suffix.to_ascii_lowercase();
    ["alpha", "beta", "rc", "pre", "dev"]
        .iter()
        .any(|m| s.trim_start_matches(['-', '.', '_', '+']).starts_with(m))
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let start = d.iter().position(|&c| c != b'0').unwrap_or(d.len());
    &d[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_order_as_releases() {
        let mut tags = vec![
            "v1.9",
            "v2.0",
            "2.1",
            "v2.0-rc1",
            "v1.10",
            "v2.0-beta",
            "v2.0.1",
            "3.1.2",
            "v3.1.1",
        ];
        tags.sort_by(|a, b| tag_cmp(a, b));
        assert_eq!(
            tags,
            [
                "v1.9",
                "v1.10",
                "v2.0-beta",
                "v2.0-rc1",
                "v2.0",
                "v2.0.1",
                "2.1",
                "v3.1.1",
                "3.1.2"
            ]
        );
        // One release tagged twice is ordered, not equal: the order stays total.
        assert_eq!(tag_cmp("3.1.2", "v3.1.2"), std::cmp::Ordering::Less);
        assert_eq!(
            tag_cmp("MOODLE_405_STABLE", "main"),
            std::cmp::Ordering::Less
        );
    }

    #[test]
    fn builds_keep_hundredths() {
        assert_eq!(
            Build::parse("2024100700.01").unwrap().to_string(),
            "2024100700.01"
        );
        assert!(Build::parse("2024100700.01").unwrap() > Build::parse("2024100700").unwrap());
        assert_eq!(Build::parse("2024100700.5"), Build::parse("2024100700.50"));
        assert_eq!(
            Build::parse("2024100700.00"),
            Some(Build::from_int(2024100700))
        );
        assert_eq!(Build::parse("x"), None);
    }

    #[test]
    fn branches_and_releases() {
        assert_eq!(Release::new(4, 5).branch(), Branch(405));
        assert_eq!(Release::new(5, 0).branch(), Branch(500));
        assert_eq!(Release::new(3, 9).branch(), Branch(39));
        assert_eq!(Release::new(3, 10).branch(), Branch(310));
        assert_eq!(Branch(311).release(), Release::new(3, 11));
        assert_eq!(Branch(39).release(), Release::new(3, 9));
        assert_eq!(Branch(501).release(), Release::new(5, 1));
        assert!(Release::new(3, 10) > Release::new(3, 9));
        assert_ne!(Release::new(3, 1), Release::new(3, 10));
        assert_eq!(
            Release::parse_leading("4.5.3+ (Build: 20250310)"),
            Some(Release::new(4, 5))
        );
        assert_eq!(Release::new(4, 5).stable_branch(), "MOODLE_405_STABLE");
        assert_eq!(Release::new(3, 9).stable_branch(), "MOODLE_39_STABLE");
    }

    #[test]
    fn specs() {
        assert_eq!(
            MoodleSpec::parse("4.5").unwrap(),
            MoodleSpec::Series(Release::new(4, 5))
        );
        assert_eq!(
            MoodleSpec::parse("4.5+").unwrap(),
            MoodleSpec::StableHead(Release::new(4, 5))
        );
        assert_eq!(
            MoodleSpec::parse("4.5.10").unwrap(),
            MoodleSpec::Exact(Release::new(4, 5), 10)
        );
        assert_eq!(
            MoodleSpec::parse("tag:v4.5.0").unwrap(),
            MoodleSpec::Tag("v4.5.0".into())
        );
        assert_eq!(
            MoodleSpec::parse("commit:ABCDEF12").unwrap(),
            MoodleSpec::Commit("abcdef12".into())
        );
        for bad in ["4", "4.5.3+", "latest", "commit:xyz", "4..5", "tag:"] {
            assert!(MoodleSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tags_order_numerically() {
        assert_eq!(natural_cmp("v3.10", "v3.9"), Ordering::Greater);
        assert_eq!(natural_cmp("v4.5.10", "v4.5.9"), Ordering::Greater);
        assert_eq!(natural_cmp("v1.02", "v1.2"), Ordering::Equal);
        assert_eq!(natural_cmp("v1.2", "v1.2.1"), Ordering::Less);
        assert_eq!(parse_release_tag("v4.5.10"), Some((Release::new(4, 5), 10)));
        assert_eq!(parse_release_tag("v4.5.0-rc1"), None);
    }
}
