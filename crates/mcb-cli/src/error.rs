//! Failures as the user reads them: one exit code per kind, the error and each of its
//! causes on a line (`error:` / `caused by:`), then what to try (`hint:`); with `--json`,
//! the same facts as one object. One `From` per library error.

use std::error::Error;
use std::path::PathBuf;

use mcb_config::ConfigError;
use mcb_deploy::{Absent, DeployError};
use mcb_realise::{EditError, ErrorKind, Named, RealiseError};
use mcb_reconcile::ReconcileError;
use mcb_resolve::Problem;
use mcb_sitetest::TestError;
use mcb_store::StoreError;
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

    /// The error's causes, outermost first, one line each.
    fn causes(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut cur = self.error.source();
        while let Some(c) = cur {
            out.push(c.to_string().replace('\n', "; "));
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

impl From<ErrorKind> for Exit {
    fn from(k: ErrorKind) -> Exit {
        match k {
            ErrorKind::Failure => Exit::Failure,
            ErrorKind::Pending => Exit::Pending,
            ErrorKind::Config => Exit::Config,
            ErrorKind::Unsatisfiable => Exit::Unsatisfiable,
            ErrorKind::Source => Exit::Source,
            ErrorKind::Integrity => Exit::Integrity,
            ErrorKind::TestFailed => Exit::TestFailed,
            ErrorKind::Usage => Exit::Usage,
        }
    }
}

/// What to try, in the command line's words, for a store error.
fn store_hint(e: &StoreError) -> Option<&'static str> {
    match e {
        StoreError::NoStore { .. } => {
            Some("check --store (or MCB_STORE); mcb makes a store on the first realise")
        }
        StoreError::NoReflink { .. } => {
            Some("reflinks need btrfs or XFS; use --link hardlink, --link clone or --link copy")
        }
        _ => None,
    }
}

/// What to try for an error of an operation: the library's own hint, else one that names
/// the command line's flags and commands.
fn realise_hint(e: &RealiseError) -> Option<String> {
    if let Some(h) = e.hint() {
        return Some(h.to_string());
    }
    if let RealiseError::Advisories(open) = e {
        let mut components: Vec<&str> = open.iter().map(|(c, _)| c.as_str()).collect();
        components.dedup();
        let ids: Vec<String> = open
            .iter()
            .filter(|(_, f)| f.advisory.flag == mcb_catalog::AdvisoryFlag::Vulnerable)
            .map(|(_, f)| format!("{:?}", f.advisory.id))
            .collect();
        let mut h = format!(
            "run `mcb update {}` to move to versions they do not affect",
            components.join(" ")
        );
        if !ids.is_empty() {
            h.push_str(&format!(
                ", or, once judged, acknowledge them in the site file: ignore_advisories: [{}]",
                ids.join(", ")
            ));
        }
        return Some(h);
    }
    let h = match e {
        RealiseError::Downgrade(_) => {
            "if the site's database has never run the newer code (or was restored from before it), pass --allow-downgrade"
        }
        RealiseError::SourceChange(_) => {
            "look at it with `mcb plan`; if the site file means it, pass --allow-source-change"
        }
        RealiseError::LockWouldChange(_) => {
            "run `mcb update` (or `mcb realise` without --locked) and commit site.lock with the site file"
        }
        RealiseError::Owner { .. } => {
            "give this site file another `name`, or pass --force to move the site to this file"
        }
        RealiseError::Live { .. } => {
            "remove the result link (or point it elsewhere) first, or pass --force"
        }
        RealiseError::Usage { about, .. } => match about {
            Named::Site => "`mcb sites` lists the sites in the store",
            Named::Generation => "`mcb history` lists the site's generations",
            Named::Existing => return None,
            Named::Tree => {
                "name its generation: --site SITE (its current one) or --commit COMMIT|gen-N"
            }
        },
        RealiseError::Store(s) => return store_hint(s).map(str::to_string),
        _ => return None,
    };
    Some(h.to_string())
}

/// An error a flag made one: said as "--flag, but …".
#[derive(Debug)]
struct FlagRefused {
    flag: &'static str,
    error: RealiseError,
}

impl std::fmt::Display for FlagRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}, but {}", self.flag, self.error)
    }
}

impl Error for FlagRefused {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.error.source()
    }
}

impl From<RealiseError> for CliError {
    fn from(e: RealiseError) -> CliError {
        let e = match e {
            RealiseError::Config(c) => return CliError::from(c),
            e => e,
        };
        let problems = match &e {
            RealiseError::Downgrade(d) => d
                .iter()
                .map(|d| {
                    Problem::new(
                        &d.component,
                        mcb_resolve::Rule::Downgrade,
                        format!("{} → {}", d.from, d.to),
                    )
                })
                .collect(),
            RealiseError::Unsatisfiable(p) => p.clone(),
            _ => Vec::new(),
        };
        let exit = e.kind().into();
        let hints = realise_hint(&e).into_iter().collect();
        let place = Box::new(Place {
            component: e.component().map(str::to_string),
            ..Place::default()
        });
        let error: Box<dyn Error + Send + Sync> = match e {
            // Only `--locked` forbids the lock to change.
            e @ RealiseError::LockWouldChange(_) => Box::new(FlagRefused {
                flag: "--locked",
                error: e,
            }),
            e => Box::new(e),
        };
        CliError {
            exit,
            error,
            hints,
            place,
            problems,
        }
    }
}

impl From<EditError> for CliError {
    fn from(e: EditError) -> CliError {
        match e {
            EditError::Edit(e) => CliError::from(e),
            EditError::Undone { site, error } => {
                let mut c = CliError::from(*error);
                c.hints.push(format!(
                    "the edit is undone: {} is as it was",
                    site.display()
                ));
                c
            }
        }
    }
}

impl From<TestError> for CliError {
    fn from(e: TestError) -> CliError {
        let e = match e {
            TestError::Run(e) => return CliError::from(e),
            e => e,
        };
        let hint = match &e {
            TestError::NoSuchStart { .. } => Some(
                "give -N (generations back), a commit of the site's branch, or a pg_dump file"
                    .to_string(),
            ),
            TestError::NothingToTest { .. } => Some("`mcb realise` the site first".to_string()),
            e => e.hint().map(str::to_string),
        };
        CliError {
            exit: e.kind().into(),
            hints: hint.into_iter().collect(),
            place: Box::default(),
            problems: Vec::new(),
            error: Box::new(e),
        }
    }
}

impl From<DeployError> for CliError {
    fn from(e: DeployError) -> CliError {
        let e = match e {
            DeployError::Run(e) => return CliError::from(e),
            e => e,
        };
        let hint = match &e {
            DeployError::Run(_) => None,
            DeployError::Remote(_) => {
                Some("give a URL (ssh://, https://, git://, file://) or the path of a repository")
            }
            DeployError::Unknown { about, .. } => Some(match about {
                Absent::Site => {
                    "`mcb sites` lists the sites of a store; a remote has the sites pushed to it"
                }
                Absent::Generation => "`mcb history` lists the generations; gen-1 is the first",
                Absent::Release => "deploy first",
                Absent::EarlierRelease => "deploy the generation you want with --commit",
            }),
            DeployError::TestFailed { .. } => Some(
                "`mcb history` shows each generation's test; fix and test a new one, or give --untested to deploy this one anyway",
            ),
            DeployError::Diverged { .. } => {
                Some("look at both histories; --force makes the remote's branch this store's")
            }
            DeployError::TagElsewhere { .. } => Some(
                "look at both histories; --force makes the remote's branch and tags this store's",
            ),
            DeployError::Refused { .. } => {
                Some("another push to that remote may be running; try again")
            }
            DeployError::Transfer { .. } => {
                Some("check the remote's URL, that it is reachable, and your access to it")
            }
            DeployError::NotOurs { .. } => {
                Some("mcb never follows a link out of the deploy directory; move it away")
            }
            DeployError::Filesystem { .. } => None,
        };
        CliError {
            exit: e.kind().into(),
            hints: hint.map(str::to_string).into_iter().collect(),
            place: Box::default(),
            problems: Vec::new(),
            error: Box::new(e),
        }
    }
}

impl From<mcb_apply::ApplyError> for CliError {
    fn from(e: mcb_apply::ApplyError) -> CliError {
        let e = match e {
            mcb_apply::ApplyError::Run(e) => return CliError::from(e),
            e => e,
        };
        CliError {
            exit: e.kind().into(),
            hints: e.hint().map(str::to_string).into_iter().collect(),
            place: Box::default(),
            problems: Vec::new(),
            error: Box::new(e),
        }
    }
}

impl From<ReconcileError> for CliError {
    fn from(e: ReconcileError) -> CliError {
        match e {
            ReconcileError::Run(e) => CliError::from(e),
            ReconcileError::Test(e) => CliError::from(e),
            ReconcileError::Apply(e) => CliError::from(*e),
            e @ ReconcileError::TestFailed { .. } => CliError {
                exit: e.kind().into(),
                hints: vec![
                    "`mcb history` shows the result; fix the site file or pin what broke".into(),
                ],
                place: Box::default(),
                problems: Vec::new(),
                error: Box::new(e),
            },
        }
    }
}

/// A command line clap refused: its message, exit 64.
pub fn usage(e: clap::Error) -> Exit {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp => {
            let help = std::env::args()
                .skip(1)
                .find_map(|a| crate::examples::help_without_unused(&a));
            match help {
                Some(help) => term::out_line(help.trim_end()),
                None => {
                    let _ = e.print();
                }
            }
            Exit::Success
        }
        ErrorKind::DisplayVersion => {
            let _ = e.print();
            Exit::Success
        }
        _ => {
            let _ = e.print();
            // The command line did not parse, so `--json` is looked for by hand: a script
            // that asked for JSON gets its error as JSON too.
            if std::env::args_os().skip(1).any(|a| a == "--json") {
                let message = e
                    .kind()
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| e.to_string());
                let detail = e.render().to_string();
                let first = detail
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches("error: ");
                term::out_json_doc(&serde_json::json!({
                    "error": {
                        "kind": Exit::Usage.kind(),
                        "exit_code": Exit::Usage as u8,
                        "message": if first.is_empty() { message } else { first.to_string() },
                        "causes": [],
                        "hint": null,
                        "problems": [],
                    }
                }));
            }
            Exit::Usage
        }
    }
}
