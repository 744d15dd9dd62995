//! Moodle facts, as mcb needs them: reading `version.php` (core and plugins) without running
//! PHP, component names and plugin types, install paths from `lib/components.json` and
//! `db/subplugins.json`, the standard-plugin list, Moodle version specs, branches and tag
//! ordering, and what Moodle's own command-line scripts say when they fail.
//!
//! This crate works on bytes and strings it is given. It never reads files, touches the
//! network or the store: callers hand it the contents.

pub mod cli_output;
pub mod component;
pub mod config_php;
pub mod environment;
pub mod layout;
pub mod release;
pub mod version_php;

pub use cli_output::{MoodleFailure, moodle_failure, schema_failures, stack_files};
pub use component::{Component, ComponentError};
pub use config_php::config_template;
pub use environment::{Host, Requirements};
pub use layout::{CoreLayout, LayoutError, plugins_json_from_plugin_manager};
pub use release::{
    Branch, Build, MoodleSpec, RELEASE_TABLE_DATE, RELEASES, Release, ReleaseFacts, SpecError,
    civil_date, known_releases, natural_cmp, release_build, release_facts, tag_cmp, today,
};
pub use version_php::{CoreVersion, Maturity, PluginVersion, VersionPhpError};
