//! What `mcb test` found for a generation, as recorded on its commit: a git note under
//! [`TEST_NOTES`] in a versioned format (RON), written by the test runner and read by
//! `history`, `deploy` and the test runner itself (which generation last passed). It is
//! written and read here only; notes of the first format (English text whose first line
//! was `mcb test: passed` or `mcb test: FAILED`) are still read.

use std::collections::HashMap;

use mcb_git::GitStore;
use mcb_store::GitOid;
use serde::{Deserialize, Serialize};

use crate::error::RealiseError;

/// The notes ref test results are recorded under (pushed with the site's branch).
pub const TEST_NOTES: &str = "refs/notes/mcb-test";

/// The format this mcb writes; raised when a field is dropped or changes meaning.
pub const TEST_NOTE_FORMAT: u32 = 2;

/// One step of a test, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoteStep {
    pub step: String,
    pub passed: bool,
    pub seconds: f64,
    pub detail: String,
    /// Each failure as `component: message [code]`.
    pub failures: Vec<String>,
}

/// A test's result on a commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestNote {
    pub format: u32,
    pub passed: bool,
    pub php: String,
    /// `postgresql 15.18`.
    pub database: String,
    pub steps: Vec<NoteStep>,
}

/// What a generation's record says of its test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestOutcome {
    Passed,
    Failed,
}

impl TestOutcome {
    /// As `history` shows it.
    pub fn word(self) -> &'static str {
        match self {
            TestOutcome::Passed => "passed",
            TestOutcome::Failed => "FAILED",
        }
    }
}

impl TestNote {
    fn outcome(&self) -> TestOutcome {
        if self.passed {
            TestOutcome::Passed
        } else {
            TestOutcome::Failed
        }
    }
}

/// The outcome a note's text records; `None` for a note that is not mcb's.
fn outcome_of(text: &str) -> Option<TestOutcome> {
    if let Ok(note) = ron::from_str::<TestNote>(text) {
        return Some(note.outcome());
    }
    match text.lines().next()?.trim().strip_prefix("mcb test: ")? {
        "passed" => Some(TestOutcome::Passed),
        "FAILED" => Some(TestOutcome::Failed),
        _ => None,
    }
}

/// Records `note` on `commit`, replacing an earlier one.
pub fn record(git: &GitStore, commit: &GitOid, note: &TestNote) -> Result<(), RealiseError> {
    let text = ron::ser::to_string_pretty(note, ron::ser::PrettyConfig::default())
        .expect("a test note serialises");
    git.set_note(TEST_NOTES, commit, &text)?;
    Ok(())
}

/// The recorded outcome of every tested commit, read in one pass.
pub fn outcomes(git: &GitStore) -> Result<HashMap<GitOid, TestOutcome>, RealiseError> {
    Ok(git
        .notes(TEST_NOTES)?
        .into_iter()
        .filter_map(|(commit, text)| Some((commit, outcome_of(&text)?)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_of_both_formats_read_and_others_do_not() {
        let note = TestNote {
            format: TEST_NOTE_FORMAT,
            passed: false,
            php: "8.3.1".into(),
            database: "postgresql 16.4".into(),
            steps: vec![NoteStep {
                step: "install".into(),
                passed: false,
                seconds: 1.5,
                detail: "with Moodle's installer".into(),
                failures: vec!["local_x: broken [ddlexception]".into()],
            }],
        };
        let text = ron::ser::to_string_pretty(&note, ron::ser::PrettyConfig::default()).unwrap();
        assert_eq!(outcome_of(&text), Some(TestOutcome::Failed));
        assert_eq!(ron::from_str::<TestNote>(&text).unwrap(), note);
        assert_eq!(
            outcome_of("mcb test: passed\nphp 8.2, postgresql 15\n"),
            Some(TestOutcome::Passed)
        );
        assert_eq!(outcome_of("reviewed by Ann"), None);
    }
}
