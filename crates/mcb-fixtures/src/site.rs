//! Site files for the tests, built field by field and written in the site file's RON, so a
//! test says what its site is rather than how to spell it.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::Fixture;

/// Where a plugin (or core) comes from.
#[derive(Debug, Clone, Default)]
pub struct Src {
    fields: Vec<(&'static str, String)>,
}

impl Src {
    /// The plugins directory.
    pub fn index() -> Src {
        Src::default()
    }

    pub fn git(url: impl AsRef<str>) -> Src {
        Src::index().with("git", url.as_ref())
    }

    pub fn zip(location: impl AsRef<str>) -> Src {
        Src::index().with("zip", location.as_ref())
    }

    pub fn path(dir: impl AsRef<str>) -> Src {
        Src::index().with("path", dir.as_ref())
    }

    /// A `ref` of a git source.
    pub fn at(self, reference: &str) -> Src {
        self.with("ref", reference)
    }

    /// A pinned version.
    pub fn pin(self, version: &str) -> Src {
        self.with("version", version)
    }

    /// A pinned content hash of a zip.
    pub fn hash(self, hash: &str) -> Src {
        self.with("hash", hash)
    }

    /// Any other field, as a string.
    pub fn with(mut self, field: &'static str, value: &str) -> Src {
        self.fields.push((field, value.to_string()));
        self
    }

    fn ron(&self) -> String {
        let fields: Vec<String> = self
            .fields
            .iter()
            .map(|(k, v)| format!("{k}: {}", quote(v)))
            .collect();
        format!("({})", fields.join(", "))
    }
}

fn quote(s: &str) -> String {
    format!("{s:?}")
}

/// A site file.
#[derive(Debug, Clone)]
pub struct Site {
    name: String,
    moodle: Src,
    plugins: Vec<(String, Src)>,
    directory: Option<String>,
    directories: Vec<String>,
    links: Vec<(String, String)>,
}

impl Site {
    pub fn new(name: &str) -> Site {
        Site {
            name: name.to_string(),
            moodle: Src::index(),
            plugins: Vec::new(),
            directory: None,
            directories: Vec::new(),
            links: Vec::new(),
        }
    }

    /// Core from a git repository at a version spec.
    pub fn core(self, url: impl AsRef<str>, spec: &str) -> Site {
        self.core_from(Src::git(url).pin(spec))
    }

    /// Core from any source (a `version` spec is pinned with [`Src::pin`]).
    pub fn core_from(mut self, src: Src) -> Site {
        self.moodle = src;
        self
    }

    pub fn plugin(mut self, component: &str, src: Src) -> Site {
        self.plugins.push((component.to_string(), src));
        self
    }

    pub fn plugins<'a>(mut self, plugins: impl IntoIterator<Item = &'a (&'a str, Src)>) -> Site {
        for (c, s) in plugins {
            self.plugins.push((c.to_string(), s.clone()));
        }
        self
    }

    pub fn directory(mut self, url: impl AsRef<str>) -> Site {
        self.directory = Some(url.as_ref().to_string());
        self
    }

    /// Plugin indexes asked in order.
    pub fn directories(mut self, urls: &[&str]) -> Site {
        self.directories = urls.iter().map(|u| u.to_string()).collect();
        self
    }

    /// A symlink the site adds to its codebase.
    pub fn link(mut self, at: &str, target: &str) -> Site {
        self.links.push((at.to_string(), target.to_string()));
        self
    }

    /// The site file's text.
    pub fn ron(&self) -> String {
        let mut s = format!(
            "Site(\n    name: {},\n    moodle: {},\n    plugins: {{\n",
            quote(&self.name),
            self.moodle.ron()
        );
        for (c, src) in &self.plugins {
            let _ = writeln!(s, "        {}: {},", quote(c), src.ron());
        }
        s.push_str("    },\n");
        if let Some(d) = &self.directory {
            let _ = writeln!(s, "    directory: {},", quote(d));
        }
        if !self.directories.is_empty() {
            let d: Vec<String> = self.directories.iter().map(|u| quote(u)).collect();
            let _ = writeln!(s, "    directories: [{}],", d.join(", "));
        }
        if !self.links.is_empty() {
            let links: Vec<String> = self
                .links
                .iter()
                .map(|(a, t)| format!("{}: {}", quote(a), quote(t)))
                .collect();
            let _ = writeln!(s, "    links: {{{}}},", links.join(", "));
        }
        s.push_str(")\n");
        s
    }

    /// Writes the site file at `rel` in the fixture and returns its path.
    pub fn write(&self, f: &Fixture, rel: &str) -> PathBuf {
        f.write(rel, self.ron())
    }
}
