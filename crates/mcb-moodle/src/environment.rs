//! What a Moodle release needs of the machine it runs on — PHP (the least version, and the
//! first one it refuses), each database's least version, the PHP extensions it requires —
//! read from its `admin/environment.xml` (or, without its code, mcb's table of releases),
//! and compared with a host's facts as Moodle's own environment check would.

use std::collections::BTreeSet;

use crate::release::{Release, ReleaseFacts};

/// The most of `environment.xml` mcb reads (Moodle's is about 200 KB).
const MAX_XML_BYTES: usize = 4 << 20;

/// What a release needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirements {
    pub release: Release,
    pub php_min: String,
    /// The first PHP release it refuses (`restrict_php_version_85`: 8.5).
    pub php_below: Option<String>,
    /// (vendor as Moodle names it: `postgres`, `mariadb`, `mysql`, …; least version).
    pub databases: Vec<(String, String)>,
    /// Required PHP extensions (none when read from the table).
    pub extensions: Vec<String>,
    /// Where these facts come from: `environment.xml`, or mcb's table.
    pub from: &'static str,
}

/// The machine a release would run on: each fact when known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Host {
    pub php: Option<String>,
    /// The PHP extensions loaded (`php -m`), when asked.
    pub extensions: Option<BTreeSet<String>>,
    /// (vendor, version): `("postgres", "15.18")`.
    pub database: Option<(String, String)>,
}

/// Why an `environment.xml` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvironmentError {
    #[error("admin/environment.xml is larger than {} bytes", MAX_XML_BYTES)]
    TooLarge,
    #[error("admin/environment.xml is not XML: {0}")]
    NotXml(String),
    #[error("admin/environment.xml says nothing of Moodle {0}")]
    NoRelease(Release),
}

impl Requirements {
    /// Reads release `release`'s requirements from the text of its `environment.xml`.
    pub fn from_environment_xml(
        xml: &str,
        release: Release,
    ) -> Result<Requirements, EnvironmentError> {
        if xml.len() > MAX_XML_BYTES {
            return Err(EnvironmentError::TooLarge);
        }
        let doc =
            roxmltree::Document::parse(xml).map_err(|e| EnvironmentError::NotXml(e.to_string()))?;
        let wanted = release.to_string();
        let moodle = doc
            .descendants()
            .find(|n| n.has_tag_name("MOODLE") && n.attribute("version") == Some(wanted.as_str()))
            .ok_or(EnvironmentError::NoRelease(release))?;
        let mut r = Requirements {
            release,
            php_min: String::new(),
            php_below: None,
            databases: Vec::new(),
            extensions: Vec::new(),
            from: "environment.xml",
        };
        for n in moodle.children().filter(|n| n.is_element()) {
            match n.tag_name().name() {
                "PHP" => {
                    r.php_min = n.attribute("version").unwrap_or_default().to_string();
                    // `restrict_php_version_85` refuses PHP 8.5 and later.
                    r.php_below = n
                        .children()
                        .filter(|c| c.has_tag_name("RESTRICT"))
                        .filter_map(|c| {
                            c.attribute("function")?
                                .strip_prefix("restrict_php_version_")
                        })
                        .filter_map(restricted_php)
                        .min_by(|a, b| version_cmp(a, b));
                }
                "DATABASE" if n.attribute("level") == Some("required") => {
                    r.databases = n
                        .children()
                        .filter(|c| c.has_tag_name("VENDOR"))
                        .filter_map(|c| {
                            Some((
                                c.attribute("name")?.to_string(),
                                c.attribute("version")?.to_string(),
                            ))
                        })
                        .collect();
                }
                "PHP_EXTENSIONS" => {
                    r.extensions = n
                        .children()
                        .filter(|c| {
                            c.has_tag_name("PHP_EXTENSION")
                                && c.attribute("level") == Some("required")
                        })
                        .filter_map(|c| c.attribute("name").map(str::to_string))
                        .collect();
                }
                _ => {}
            }
        }
        Ok(r)
    }

    /// The requirements mcb's table holds for a release (no extensions).
    pub fn from_table(f: &ReleaseFacts) -> Requirements {
        Requirements {
            release: f.release,
            php_min: f.php_min.to_string(),
            php_below: f.php_below.map(str::to_string),
            databases: vec![
                ("postgres".into(), f.postgres_min.into()),
                ("mariadb".into(), f.mariadb_min.into()),
                ("mysql".into(), f.mysql_min.into()),
            ],
            extensions: Vec::new(),
            from: "mcb's table of releases",
        }
    }

    /// What the host lacks, one sentence each, as Moodle's environment check would refuse
    /// it; a fact the host does not give is not judged.
    pub fn unmet(&self, host: &Host) -> Vec<String> {
        let xy = self.release;
        let mut out = Vec::new();
        if let Some(php) = &host.php {
            if !self.php_min.is_empty() && version_cmp(php, &self.php_min).is_lt() {
                out.push(format!(
                    "Moodle {xy} needs PHP {} or later; the host has {php}",
                    self.php_min
                ));
            }
            if let Some(below) = &self.php_below
                && version_cmp(php, below).is_ge()
            {
                out.push(format!(
                    "Moodle {xy} does not run on PHP {below} or later; the host has {php}"
                ));
            }
        }
        if let Some((vendor, version)) = &host.database {
            match self.databases.iter().find(|(v, _)| v == vendor) {
                Some((_, min)) if version_cmp(version, min).is_lt() => out.push(format!(
                    "Moodle {xy} needs {} {min} or later; the host has {version}",
                    vendor_name(vendor)
                )),
                Some(_) => {}
                None if !self.databases.is_empty() => out.push(format!(
                    "Moodle {xy} does not run on {}",
                    vendor_name(vendor)
                )),
                None => {}
            }
        }
        if let Some(loaded) = &host.extensions {
            let missing: Vec<&str> = self
                .extensions
                .iter()
                .filter(|e| !loaded.contains(e.as_str()))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                out.push(format!(
                    "Moodle {xy} needs the PHP extension{} {}, which the host's PHP lacks",
                    if missing.len() == 1 { "" } else { "s" },
                    missing.join(", ")
                ));
            }
        }
        out
    }
}

/// `85` → `8.5`, `82` → `8.2`.
fn restricted_php(digits: &str) -> Option<String> {
    let (major, minor) = digits.split_at_checked(1)?;
    (digits.bytes().all(|b| b.is_ascii_digit()) && !minor.is_empty())
        .then(|| format!("{major}.{minor}"))
}

/// A database vendor as people name it.
pub fn vendor_name(vendor: &str) -> &str {
    match vendor {
        "postgres" => "PostgreSQL",
        "mariadb" => "MariaDB",
        "mysql" => "MySQL",
        "mssql" => "SQL Server",
        "oracle" => "Oracle",
        other => other,
    }
}

/// Compares dotted versions numerically, a missing part as 0 (`8.3` = `8.3.0` < `8.10`);
/// anything after the digits of a part (`15.18 (Debian …)`, `8.2.36-1`) is ignored.
pub fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |s: &str| -> Vec<u64> {
        s.split('.')
            .map(|p| {
                let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().unwrap_or(0)
            })
            .collect()
    };
    let (a, b) = (parts(a.trim()), parts(b.trim()));
    for i in 0..a.len().max(b.len()) {
        let o = a.get(i).unwrap_or(&0).cmp(b.get(i).unwrap_or(&0));
        if o.is_ne() {
            return o;
        }
    }
    std::cmp::Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Moodle 4.1's block of its own environment.xml, as it ships.
    const XML: &str = r#"<?xml version="1.0" encoding="UTF-8" ?>
<COMPATIBILITY_MATRIX>
  <MOODLE version="4.1" requires="3.9">
    <DATABASE level="required">
      <VENDOR name="mariadb" version="10.4" />
      <VENDOR name="mysql" version="5.7" />
      <VENDOR name="postgres" version="12" />
    </DATABASE>
    <PHP version="7.4.0" level="required">
      <RESTRICT function="restrict_php_version_82" message="unsupportedphpversion82" />
    </PHP>
    <PHP_EXTENSIONS>
      <PHP_EXTENSION name="iconv" level="required" />
      <PHP_EXTENSION name="soap" level="optional" />
      <PHP_EXTENSION name="zip" level="required" />
    </PHP_EXTENSIONS>
  </MOODLE>
</COMPATIBILITY_MATRIX>"#;

    #[test]
    fn reads_a_release_block_and_judges_a_host() {
        let r = Requirements::from_environment_xml(XML, Release::new(4, 1)).unwrap();
        assert_eq!(r.php_min, "7.4.0");
        assert_eq!(r.php_below.as_deref(), Some("8.2"));
        assert_eq!(r.extensions, ["iconv", "zip"]);
        let host = Host {
            php: Some("8.2.36".into()),
            extensions: Some(["iconv".to_string()].into()),
            database: Some(("postgres".into(), "11.9".into())),
        };
        let unmet = r.unmet(&host);
        assert_eq!(unmet.len(), 3, "{unmet:?}");
        assert!(unmet[0].contains("does not run on PHP 8.2 or later; the host has 8.2.36"));
        assert!(unmet[1].contains("PostgreSQL 12 or later; the host has 11.9"));
        assert!(unmet[2].contains("extension zip"));
        let fine = Host {
            php: Some("8.1.2".into()),
            extensions: None,
            database: Some(("postgres".into(), "15.18 (Debian 15.18-0+deb12u1)".into())),
        };
        assert!(r.unmet(&fine).is_empty());
        assert_eq!(
            Requirements::from_environment_xml(XML, Release::new(5, 3)),
            Err(EnvironmentError::NoRelease(Release::new(5, 3)))
        );
        assert!(matches!(
            Requirements::from_environment_xml("<MOODLE", Release::new(4, 1)),
            Err(EnvironmentError::NotXml(_))
        ));
    }

    #[test]
    fn versions_compare_as_numbers() {
        assert!(version_cmp("8.10", "8.3").is_gt());
        assert!(version_cmp("8.3", "8.3.0").is_eq());
        assert!(version_cmp("16", "15.18").is_gt());
    }
}
