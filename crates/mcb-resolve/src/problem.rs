use std::fmt;

/// The Moodle rule a problem breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// `$plugin->requires` is above the core build.
    Requires,
    /// `$plugin->incompatible` blocks the core branch.
    Incompatible,
    /// A dependency is not part of the site.
    MissingDependency,
    /// A dependency is older than required.
    DependencyTooOld,
    /// Dependencies form a cycle.
    DependencyCycle,
    /// `$plugin->component` differs from the site file's key.
    ComponentMismatch,
    /// Two plugins want one install path.
    PathClash,
    /// The component ships with core.
    ShipsWithCore,
    /// The plugin type is unknown.
    UnknownType,
    /// No version of the source fits.
    NoCompatibleVersion,
    /// The pinned version does not exist or does not fit.
    Pin,
    /// `version.php` is missing or unreadable.
    VersionPhp,
    /// A version lower than the one the site's database has run.
    Downgrade,
    /// Released more recently than the site's `min_age` allows.
    Cooldown,
    /// A security advisory or a malware flag affects the version.
    Advisory,
    /// The organisation's policy file does not allow the plugin.
    Policy,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::Requires => "requires",
            Rule::Incompatible => "incompatible",
            Rule::MissingDependency => "missing dependency",
            Rule::DependencyTooOld => "dependency too old",
            Rule::DependencyCycle => "dependency cycle",
            Rule::ComponentMismatch => "component name",
            Rule::PathClash => "install path",
            Rule::ShipsWithCore => "ships with core",
            Rule::UnknownType => "plugin type",
            Rule::NoCompatibleVersion => "no compatible version",
            Rule::Pin => "pinned version",
            Rule::VersionPhp => "version.php",
            Rule::Downgrade => "downgrade",
            Rule::Cooldown => "release cooldown",
            Rule::Advisory => "security advisory",
            Rule::Policy => "policy",
        }
    }
}

/// Something that stops a site from being built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub component: String,
    pub rule: Rule,
    /// The chain of facts, one per line, most direct first.
    pub facts: Vec<String>,
    pub hint: Option<String>,
}

impl Problem {
    pub fn new(component: impl Into<String>, rule: Rule, fact: impl Into<String>) -> Problem {
        Problem {
            component: component.into(),
            rule,
            facts: vec![fact.into()],
            hint: None,
        }
    }

    pub fn fact(mut self, fact: impl Into<String>) -> Problem {
        self.facts.push(fact.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Problem {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]: ", self.component, self.rule.name())?;
        for (i, fact) in self.facts.iter().enumerate() {
            if i == 0 {
                write!(f, "{fact}")?;
            } else {
                write!(f, "\n  {fact}")?;
            }
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

/// Something worth saying that does not stop the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub component: String,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.component, self.message)
    }
}
