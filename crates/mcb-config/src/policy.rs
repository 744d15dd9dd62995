//! An organisation's plugin policy: one file every site of a store can include
//! (`policy: "../policy.ron"` in the site file), saying which plugins no site may take and,
//! when it lists them, the only ones a site may take.
//!
//! ```ron
//! Policy(
//!     deny: {"local_adminer": "a database console on the web server"},
//!     allow: ["block_xp", "mod_*", "local_navbarplus"],
//! )
//! ```
//!
//! A rule names a component (`block_xp`) or a plugin type (`mod_*`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::ConfigError;

/// A policy file larger than this is not one.
const MAX_POLICY_BYTES: u64 = 1 << 20;

/// A parsed and validated policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The file, absolute: every refusal names it.
    pub path: PathBuf,
    /// Rule → why no site may take what it names.
    pub deny: BTreeMap<String, String>,
    /// When given, the only plugins a site may take.
    pub allow: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename = "Policy")]
struct RawPolicy {
    #[serde(default)]
    deny: BTreeMap<String, String>,
    #[serde(default)]
    allow: Option<Vec<String>>,
}

/// Why the policy refuses a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A `deny` rule names it, with its reason.
    Denied { rule: String, reason: String },
    /// The policy has an `allow` list and no rule in it names the component.
    NotAllowed,
}

impl Policy {
    /// Reads the policy file at `path`.
    pub fn load(path: &Path) -> Result<Policy, ConfigError> {
        let text = crate::site::read_bounded(path, MAX_POLICY_BYTES).map_err(|e| {
            ConfigError::new(path, format!("cannot read the policy file: {e}"))
                .hint("the site file's `policy` is a path relative to the site file")
        })?;
        Policy::parse(path, &text)
    }

    /// Parses and validates policy-file `text`; `path` is used for messages.
    pub fn parse(path: &Path, text: &str) -> Result<Policy, ConfigError> {
        let raw: RawPolicy = ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
            .from_str(text)
            .map_err(|e| {
                ConfigError::new(path, e.code.to_string())
                    .at(Some((e.span.start.line, e.span.start.col)))
                    .hint("Policy(deny: {\"local_x\": \"why\"}, allow: [\"block_xp\", \"mod_*\"])")
            })?;
        let rules = raw
            .deny
            .keys()
            .map(|r| (r, "deny"))
            .chain(raw.allow.iter().flatten().map(|r| (r, "allow")));
        for (rule, field) in rules {
            if !valid_rule(rule) {
                return Err(ConfigError::new(
                    path,
                    format!(
                        "'{}' in `{field}` names neither a component nor a plugin type",
                        rule.escape_debug()
                    ),
                )
                .at(quoted_position(text, rule))
                .hint("a rule is a component (block_xp) or a plugin type followed by _* (mod_*)"));
            }
        }
        Ok(Policy {
            path: path.to_path_buf(),
            deny: raw.deny,
            allow: raw.allow,
        })
    }

    /// Why the policy refuses `component`, if it does.
    pub fn refuses(&self, component: &str) -> Option<Refusal> {
        if let Some((rule, reason)) = self
            .deny
            .iter()
            .find(|(rule, _)| rule_matches(rule, component))
        {
            return Some(Refusal::Denied {
                rule: rule.clone(),
                reason: reason.clone(),
            });
        }
        match &self.allow {
            Some(allow) if !allow.iter().any(|r| rule_matches(r, component)) => {
                Some(Refusal::NotAllowed)
            }
            _ => None,
        }
    }

    /// What [`Policy::refuses`] found, in a sentence that names this file.
    pub fn refusal_text(&self, component: &str, refusal: &Refusal) -> String {
        match refusal {
            Refusal::Denied { rule, reason } if rule == component => format!(
                "{component} is denied by the policy {}: {reason}",
                self.path.display()
            ),
            Refusal::Denied { rule, reason } => format!(
                "{component} is denied by the policy {} ({rule}): {reason}",
                self.path.display()
            ),
            Refusal::NotAllowed => format!(
                "{component} is not in the allow list of the policy {}",
                self.path.display()
            ),
        }
    }
}

/// A component (`block_xp`) or a plugin type with `_*` (`mod_*`): lower-case letters,
/// digits and underscores.
fn valid_rule(rule: &str) -> bool {
    let name = rule.strip_suffix("_*").unwrap_or(rule);
    !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && (rule.ends_with("_*") || name.contains('_'))
}

/// 1-based (line, column) of the first `"text"` outside a comment.
fn quoted_position(text: &str, quoted: &str) -> Option<(usize, usize)> {
    let q = format!("\"{quoted}\"");
    text.lines().enumerate().find_map(|(n, line)| {
        let code = line.split("//").next().unwrap_or("");
        code.find(&q)
            .map(|i| (n + 1, code[..i].chars().count() + 1))
    })
}

fn rule_matches(rule: &str, component: &str) -> bool {
    match rule.strip_suffix('*') {
        Some(prefix) => component.starts_with(prefix),
        None => rule == component,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(text: &str) -> Result<Policy, ConfigError> {
        Policy::parse(Path::new("/etc/mcb/policy.ron"), text)
    }

    #[test]
    fn deny_wins_over_allow_and_a_type_rule_names_every_plugin_of_the_type() {
        let p = policy(
            "Policy(deny: {\"mod_hvp\": \"unmaintained\"}, allow: [\"mod_*\", \"block_xp\"])",
        )
        .unwrap();
        assert_eq!(p.refuses("mod_forumng"), None);
        assert_eq!(p.refuses("block_xp"), None);
        assert_eq!(
            p.refuses("mod_hvp"),
            Some(Refusal::Denied {
                rule: "mod_hvp".into(),
                reason: "unmaintained".into()
            })
        );
        assert_eq!(p.refuses("local_x"), Some(Refusal::NotAllowed));
        assert_eq!(
            p.refusal_text("local_x", &Refusal::NotAllowed),
            "local_x is not in the allow list of the policy /etc/mcb/policy.ron"
        );
    }

    #[test]
    fn without_an_allow_list_only_deny_refuses() {
        let p = policy("Policy(deny: {\"local_*\": \"no local plugins\"})").unwrap();
        assert_eq!(p.refuses("block_xp"), None);
        let r = p.refuses("local_adminer").unwrap();
        assert_eq!(
            p.refusal_text("local_adminer", &r),
            "local_adminer is denied by the policy /etc/mcb/policy.ron (local_*): no local plugins"
        );
    }

    #[test]
    fn a_bad_rule_or_field_is_refused_with_its_line() {
        let e = policy("Policy(\n  allow: [\"block_xp\", \"../etc\"],\n)").unwrap_err();
        assert!(e.message.contains("'../etc' in `allow`"), "{e}");
        assert_eq!(e.position.map(|p| p.0), Some(2));
        let e = policy("Policy(\n  deny: {},\n  alow: [],\n)").unwrap_err();
        assert_eq!(e.position.map(|p| p.0), Some(3), "{e}");
        assert!(policy("Policy(deny: {\"*\": \"x\"})").is_err());
        assert!(policy("Policy(deny: {\"block\": \"x\"})").is_err());
    }
}
