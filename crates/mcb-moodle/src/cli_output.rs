//! What Moodle's own command-line scripts say when they fail (`admin/cli/install_database.php`,
//! `upgrade.php`, `check_database_schema.php`): the component Moodle was working on, its
//! message and its error code, read from the text the scripts print. Text in, facts out.

/// What Moodle said when it failed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MoodleFailure {
    /// The component Moodle was installing or upgrading (`moodle` for core).
    pub component: Option<String>,
    /// Moodle's own message (`!!! … !!!`), or the schema difference.
    pub message: String,
    /// Moodle's error code (`cannotdowngrade`, `ddlexception`).
    pub code: Option<String>,
}

impl std::fmt::Display for MoodleFailure {
    /// `component: message [code]`, as far as each is known.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(c) = &self.component {
            write!(f, "{c}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(code) = &self.code {
            write!(f, " [{code}]")?;
        }
        Ok(())
    }
}

/// Moodle's failure in its command-line output: the component of the last `-->X` line
/// before the first `!!!` line, the message between `!!!`s and the error code.
pub fn moodle_failure(output: &str) -> Option<MoodleFailure> {
    let lines: Vec<&str> = output.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim_start().starts_with("!!!"))?;
    let component = lines[..at]
        .iter()
        .rev()
        .find_map(|l| l.trim().strip_prefix("-->"))
        .map(|c| {
            let c = c.trim();
            if c.eq_ignore_ascii_case("system") {
                "moodle".to_string()
            } else {
                c.to_string()
            }
        });
    let message = lines[at]
        .trim()
        .trim_start_matches('!')
        .trim_end_matches('!')
        .trim()
        .to_string();
    // "Cannot downgrade mod_x from …" names its component before any `-->` line does.
    let component = component.or_else(|| {
        message
            .strip_prefix("Cannot downgrade ")
            .and_then(|r| r.split_whitespace().next())
            .map(str::to_string)
    });
    // `!! Error code: X !!`, or (as Moodle prints it) `!! ` then `Error code: X !!`.
    let code = lines[at..].iter().find_map(|l| {
        l.trim()
            .trim_start_matches('!')
            .trim()
            .strip_prefix("Error code:")
            .map(|c| c.trim_end_matches('!').trim().to_string())
    });
    Some(MoodleFailure {
        component,
        message,
        code,
    })
}

/// The files of the stack trace Moodle prints with its debugging on (`* line 17 of
/// /local/x/lib.php: call to …`), relative to the web root, innermost first, each once.
/// The first one inside a plugin names the plugin that failed when no `-->X` line does
/// (a plugin whose code breaks Moodle's installer before it reaches the plugin).
pub fn stack_files(output: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in output.lines() {
        let Some(at) = l.find("* line ") else {
            continue;
        };
        let rest = &l[at + "* line ".len()..];
        let Some((_, after)) = rest.split_once(" of ") else {
            continue;
        };
        let file = after.split(": ").next().unwrap_or("").trim();
        // Only a path inside the codebase, as Moodle writes it: `/dir/file.php`.
        let sound = file.starts_with('/')
            && file.ends_with(".php")
            && !file.split('/').any(|part| part == "..");
        if sound && !out.iter().any(|f| f == file) {
            out.push(file.to_string());
        }
    }
    out
}

/// The differences `check_database_schema.php` reports: a table line, then ` * …` lines.
pub fn schema_failures(output: &str) -> Vec<MoodleFailure> {
    let mut out = Vec::new();
    let mut table: Option<&str> = None;
    for l in output.lines() {
        if let Some(what) = l.trim_start().strip_prefix("* ") {
            out.push(MoodleFailure {
                component: table.map(str::to_string),
                message: format!("{}: {what}", table.unwrap_or("?")),
                code: Some("schema".into()),
            });
        } else if !l.trim().is_empty() {
            table = Some(l.trim());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moodle_failures_name_the_component_and_quote_the_message() {
        let out = "-->System\n++ Success ++\n-->local_broken\n!!! Exception - broken on purpose !!!\n!! Error code: generalexceptionmessage !!\n";
        let f = moodle_failure(out).unwrap();
        assert_eq!(f.component.as_deref(), Some("local_broken"));
        assert_eq!(f.message, "Exception - broken on purpose");
        assert_eq!(f.code.as_deref(), Some("generalexceptionmessage"));
        let f = moodle_failure(
            "!!! Cannot downgrade mod_x from 2 to 1. !!!\n!! Error code: cannotdowngrade !!",
        )
        .unwrap();
        assert_eq!(f.component.as_deref(), Some("mod_x"));
        assert_eq!(f.code.as_deref(), Some("cannotdowngrade"));
        assert!(moodle_failure("all good").is_none());
        // As Moodle 5.1's upgrade.php prints it.
        let real = "\n!!! Cannot downgrade local_mailtest from 2025042700 to 2024072200. !!!\n!! \nError code: cannotdowngrade !!\n!! Stack trace: * line 787 of /lib/upgradelib.php: downgrade_exception thrown\n";
        let f = moodle_failure(real).unwrap();
        assert_eq!(f.component.as_deref(), Some("local_mailtest"));
        assert_eq!(f.code.as_deref(), Some("cannotdowngrade"));
    }

    #[test]
    fn a_stack_trace_gives_its_files_innermost_first() {
        // As Moodle 5.0's install_database.php prints it with debugging on, for a plugin
        // whose language file reads the configuration before there is a database.
        let real = "Default exception handler: Table \"config\" does not exist Debug: \nError code: ddltablenotexist\n* line 677 of /lib/dml/moodle_database.php: dml_exception thrown\n* line 1049 of /lib/moodlelib.php: call to moodle_database->get_field()\n* line 17 of /local/qrcurp/lang/en/local_qrcurp.php: call to get_config()\n* line 177 of /lib/classes/string_manager_standard.php: call to include()\n\n!!! Table \"config\" does not exist !!!\n!! \nError code: ddltablenotexist !!\n!! Stack trace: * line 677 of /lib/dml/moodle_database.php: dml_exception thrown\n* line 17 of /local/qrcurp/lang/en/local_qrcurp.php: call to get_config()\n";
        assert_eq!(
            stack_files(real),
            [
                "/lib/dml/moodle_database.php",
                "/lib/moodlelib.php",
                "/local/qrcurp/lang/en/local_qrcurp.php",
                "/lib/classes/string_manager_standard.php"
            ]
        );
        let f = moodle_failure(real).unwrap();
        assert_eq!(f.message, "Table \"config\" does not exist");
        assert_eq!(f.code.as_deref(), Some("ddltablenotexist"));
        assert!(
            stack_files("* line 3 of /../../etc/passwd.php: x\n* line 1 of lib.php: y").is_empty()
        );
    }

    #[test]
    fn schema_differences_name_table_and_column() {
        let f =
            schema_failures("mdl_local_x\n * column 'note' is expected, but not found in table\n");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].component.as_deref(), Some("mdl_local_x"));
        assert!(f[0].message.contains("column 'note'"));
    }
}
