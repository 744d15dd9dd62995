//! Frankenstyle component names: `type_name`, e.g. `mod_attendance`, `block_xp`.

use std::fmt;

/// A validated frankenstyle component name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Component {
    full: String,
    split: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{name}' is not a Moodle component name: {why} (expected type_name, e.g. mod_attendance)")]
pub struct ComponentError {
    pub name: String,
    pub why: &'static str,
}

impl Component {
    /// Parses `type_name`. The type is letters and digits starting with a letter; the name
    /// is lowercase letters, digits and underscores starting with a letter, as Moodle's
    /// `core_component::is_valid_plugin_name` accepts.
    pub fn parse(name: &str) -> Result<Component, ComponentError> {
        let err = |why| ComponentError {
            name: name.to_string(),
            why,
        };
        let Some(split) = name.find('_') else {
            return Err(err("it has no '_' between plugin type and plugin name"));
        };
        let (ty, rest) = (&name[..split], &name[split + 1..]);
        if ty.is_empty() || !ty.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(err("the plugin type must start with a lowercase letter"));
        }
        if !ty
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        {
            return Err(err(
                "the plugin type may hold only lowercase letters and digits",
            ));
        }
        if rest.is_empty() || !rest.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(err("the plugin name must start with a lowercase letter"));
        }
        if !rest
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(err(
                "the plugin name may hold only lowercase letters, digits and '_'",
            ));
        }
        if rest.ends_with('_') || rest.contains("__") {
            return Err(err("the plugin name may not end with '_' or hold '__'"));
        }
        Ok(Component {
            full: name.to_string(),
            split,
        })
    }

    /// The plugin type, e.g. `mod`.
    pub fn plugin_type(&self) -> &str {
        &self.full[..self.split]
    }

    /// The plugin name within its type, e.g. `attendance`.
    pub fn plugin_name(&self) -> &str {
        &self.full[self.split + 1..]
    }

    pub fn as_str(&self) -> &str {
        &self.full
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_type_and_name() {
        let c = Component::parse("mod_attendance").unwrap();
        assert_eq!(c.plugin_type(), "mod");
        assert_eq!(c.plugin_name(), "attendance");
        let c = Component::parse("local_my_plugin2").unwrap();
        assert_eq!(c.plugin_type(), "local");
        assert_eq!(c.plugin_name(), "my_plugin2");
    }

    #[test]
    fn rejects_bad_names() {
        for bad in [
            "attendance",
            "Mod_x",
            "mod_",
            "_x",
            "mod_X",
            "mod_x-y",
            "mod_1x",
            "mod_a__b",
            "mod_a_",
        ] {
            assert!(Component::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
