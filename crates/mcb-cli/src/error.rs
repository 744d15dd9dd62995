//! Failures as the user reads them: one exit code per kind, the error and each of its
//! causes on a line (`error:` / `caused by:`), then what to try (`hint:`); with `--json`,
//! the same facts as one object. One `From` per library error.

use std::error::Error;
use std::path::PathBuf;

use mcb_catalog::SourceFailure;
use mcb_config::ConfigError;
use mcb_realise::RealiseError;
use mcb_resolve::Problem;
use serde::Serialize;

use crate::term;

/// Every exit code, as `mcb --help` and the README show them.
pub const EXIT_CODES: &str = "\
Exit codes:
   0  success
   1  mcb's own failure: the store, git or the filesystem
   2  changes pending (plan, outdated), an upgrade blocked (check), a downgrade refused
      (realise, update, rollback), the lock would change (realise --locked)
   3  the site file or lock is invalid, or the site's name belongs to another site file
   4  no set of versions satisfies the site file and Moodle's rules
   5  a source could not be fetched or read, or was refused; check: a plugin unknown
   6  content does not match its hash: verify found damage or drift, reproduce differs,
      import cannot reproduce the installation exactly
   7  a test failed: Moodle's installer, upgrade or schema check, or lint, found a problem
  64  the command line is not valid";

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    Failure = 1,
    Pending = 2,
    Config = 3,
    Unsatisfiable = 4,
    Source = 5,
    Integrity = 6,
    TestFailed = 7,
    Usage = 64,
}

impl Exit {
    pub fn kind(self) -> &'static str {
        match self {
            Exit::Success => "success",
            Exit::Failure => "failure",
            Exit::Pending => "pending",
            Exit::Config => "config",
            Exit::Unsatisfiable => "unsatisfiable",
            Exit::Source => "source",
            Exit::Integrity => "integrity",
            Exit::TestFailed => "test failed",
            Exit::Usage => "usage",
        }
    }
}

/// Where in a file the problem is.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Place {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
}

/// A failure of a command, ready to be shown.
#[derive(Debug)]
pub struct CliError {
    pub exit: Exit,
    pub error: Box<dyn Error + Send + Sync + 'static>,
    pub hints: Vec<String>,
    pub place: Box<Place>,
    pub problems: Vec<Problem>,
}

impl CliError {
    /// mcb's own failure (exit 1): `what` could not be done, because of `cause`.
    pub fn failure(
        what: String,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> CliError {
        #[derive(Debug, thiserror::Error)]
        #[error("{what}")]
        struct Failed {
            what: String,
            #[source]
            cause: Box<dyn std::error::Error + Send + Sync>,
        }
        CliError {
            exit: Exit::Failure,
            error: Box::new(Failed {
                what,
                cause: Box::new(cause),
            }),
            hints: Vec::new(),
            place: Box::default(),
            problems: Vec::new(),
        }
    }

    /// A test that failed (exit 7).
    pub fn test_failed(message: String, hint: &str) -> CliError {
        CliError {
            exit: Exit::TestFailed,
            error: message.into(),
            hints: vec![hint.to_string()],
            place: Box::default(),
            problems: Vec::new(),
        }
    }

    /// A command line that parses but does not make sense (exit 64).
    pub fn usage_text(message: String) -> CliError {
        CliError {
            exit: Exit::Usage,
            error: message.into(),
            hints: Vec::new(),
            place: Box::default(),
            problems: Vec::new(),
        }
    }

    /// The error's causes, outermost first, skipping one whose text its parent already
    /// says (some errors repeat their cause in their own message).
    fn causes(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut said = self.error.to_string();
        let mut cur = self.error.source();
        while let Some(c) = cur {
            // One line per cause, whatever the cause's own text.
            let text = c.to_string().replace('\n', "; ");
            if !said.contains(&text) {
                out.push(text.clone());
            }
            said = text;
            cur = c.source();
        }
        out
    }

    /// Prints the error on stderr (and, with `json`, as an object on stdout).
    pub fn show(&self, json: bool) {
        let mut text = format!("error: {}", self.error);
        for c in self.causes() {
            text.push_str(&format!("\ncaused by: {c}"));
        }
        for h in &self.hints {
            text.push_str(&format!("\nhint: {h}"));
        }
        term::err_line(&text);
        if json {
            term::out_json_doc(&serde_json::json!({ "error": self.json() }));
        }
    }

    /// The error as the object `--json` prints under `error`.
    pub fn json(&self) -> serde_json::Value {
        let problems: Vec<serde_json::Value> = self
            .problems
            .iter()
            .map(|p| {
                serde_json::json!({
                    "component": p.component,
                    "rule": p.rule.name(),
                    "facts": p.facts,
                    "hint": p.hint,
                })
            })
            .collect();
        let mut e = serde_json::json!({
            "kind": self.exit.kind(),
            "exit_code": self.exit as u8,
            "message": self.error.to_string(),
            "causes": self.causes(),
            "hint": self
                .hints
                .first()
                .or_else(|| self.problems.iter().find_map(|p| p.hint.as_ref())),
            "problems": problems,
        });
        if let (Some(obj), Ok(serde_json::Value::Object(place))) =
            (e.as_object_mut(), serde_json::to_value(&self.place))
        {
            obj.extend(place);
        }
        if let Some(rule) = self.problems.first().map(|p| p.rule.name())
            && let Some(obj) = e.as_object_mut()
        {
            obj.insert("rule".into(), rule.into());
        }
        e
    }
}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> CliError {
        let place = Place {
            file: Some(e.file.clone()),
            line: e.position.map(|p| p.0),
            column: e.position.map(|p| p.1),
            component: e.component.clone(),
        };
        let hints = e.hint.clone().into_iter().collect();
        CliError {
            exit: Exit::Config,
            error: Box::new(e),
            hints,
            place: Box::new(place),
            problems: Vec::new(),
        }
    }
}

impl From<RealiseError> for CliError {
    fn from(e: RealiseError) -> CliError {
        let hints: Vec<String> = e.hint().map(str::to_string).into_iter().collect();
        let (exit, place, problems) = match &e {
            RealiseError::Config(c) => {
                return CliError::from(c.clone());
            }
            RealiseError::Owner { .. } => (Exit::Config, Place::default(), Vec::new()),
            RealiseError::Downgrade(d) => (
                Exit::Pending,
                Place::default(),
                d.iter()
                    .map(|d| {
                        Problem::new(
                            &d.component,
                            mcb_resolve::Rule::Downgrade,
                            format!("{} → {}", d.from, d.to),
                        )
                    })
                    .collect(),
            ),
            RealiseError::LockWouldChange(_) => (Exit::Pending, Place::default(), Vec::new()),
            RealiseError::Unsatisfiable(p) => (Exit::Unsatisfiable, Place::default(), p.clone()),
            RealiseError::Source(s) => (
                match s.failure {
                    SourceFailure::Unavailable | SourceFailure::Refused => Exit::Source,
                    SourceFailure::Integrity => Exit::Integrity,
                    SourceFailure::Store => Exit::Failure,
                },
                Place {
                    component: Some(s.component.clone()),
                    ..Place::default()
                },
                Vec::new(),
            ),
            RealiseError::Filesystem { .. }
            | RealiseError::Store(_)
            | RealiseError::Git(_)
            | RealiseError::Environment { .. }
            | RealiseError::Interrupted => (Exit::Failure, Place::default(), Vec::new()),
        };
        let place = Place {
            component: place
                .component
                .or_else(|| problems.first().map(|p: &Problem| p.component.clone())),
            ..place
        };
        CliError {
            exit,
            error: Box::new(e),
            hints,
            place: Box::new(place),
            problems,
        }
    }
}

/// A command line clap refused: its message, exit 64.
pub fn usage(e: clap::Error) -> Exit {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            Exit::Success
        }
        _ => {
            let _ = e.print();
            Exit::Usage
        }
    }
}
