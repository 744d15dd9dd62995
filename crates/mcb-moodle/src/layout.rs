//! Where plugins go: plugin types from core's `lib/components.json`, subplugin types from
//! each plugin's `db/subplugins.json`, the standard plugins from `lib/plugins.json`.
//!
//! Paths inside a layout are relative to Moodle's web root. From Moodle 5.1 that root is
//! the `public/` directory of the codebase; [`CoreLayout::install_path`] adds that prefix.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::component::Component;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("{file} is not valid: {message}")]
    BadFile { file: String, message: String },
    #[error(
        "plugin type '{plugin_type}' is not known to this Moodle (lib/components.json) nor declared as a subplugin type by a plugin of the site"
    )]
    UnknownType { plugin_type: String },
    #[error(
        "{file} declares the subplugin type '{plugin_type}', which already exists (installed in {existing}); Moodle ignores such a declaration and mcb refuses it"
    )]
    TypeClash {
        file: String,
        plugin_type: String,
        existing: String,
    },
    #[error("{file} declares the subplugin type '{plugin_type}' {problem}")]
    BadSubpluginType {
        file: String,
        plugin_type: String,
        problem: String,
    },
}

#[derive(Deserialize)]
struct ComponentsJson {
    plugintypes: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct PluginsJson {
    #[serde(default)]
    standard: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize, Default)]
struct SubpluginsJson {
    #[serde(default)]
    plugintypes: BTreeMap<String, String>,
    #[serde(default)]
    subplugintypes: BTreeMap<String, String>,
}

/// The plugin types and standard plugins of one Moodle core, plus the subplugin types that
/// installed plugins add.
#[derive(Debug, Clone, Default)]
pub struct CoreLayout {
    /// Type → directory relative to the web root.
    types: BTreeMap<String, String>,
    standard: BTreeSet<String>,
    /// `public/` layout (Moodle 5.1+).
    public: bool,
}

/// The directory of the codebase the web server serves: `public` from Moodle 5.1, else
/// the codebase itself (`None`).
pub fn web_root_dir(release: crate::release::Release) -> Option<&'static str> {
    (release.branch().0 >= 501).then_some("public")
}

/// The file a core of this layout keeps `rel` (a web-root path like `lib/components.json`) in.
pub fn web_root_path(public: bool, rel: &str) -> String {
    if public {
        format!("public/{rel}")
    } else {
        rel.to_string()
    }
}

impl CoreLayout {
    /// `components_json` is the content of core's `lib/components.json`; `plugins_json`
    /// that of `lib/plugins.json` when core has one.
    pub fn new(
        components_json: &str,
        plugins_json: Option<&str>,
        public: bool,
    ) -> Result<CoreLayout, LayoutError> {
        let c: ComponentsJson =
            serde_json::from_str(components_json).map_err(|e| LayoutError::BadFile {
                file: web_root_path(public, "lib/components.json"),
                message: e.to_string(),
            })?;
        let mut standard = BTreeSet::new();
        if let Some(p) = plugins_json {
            let p: PluginsJson = serde_json::from_str(p).map_err(|e| LayoutError::BadFile {
                file: web_root_path(public, "lib/plugins.json"),
                message: e.to_string(),
            })?;
            for (ty, names) in p.standard {
                for n in names {
                    standard.insert(format!("{ty}_{n}"));
                }
            }
        }
        let file = web_root_path(public, "lib/components.json");
        let mut types = BTreeMap::new();
        for (k, v) in c.plugintypes {
            let v = v.trim_end_matches('/');
            // Moodle 5.1 keeps components.json at the codebase root, its paths relative to
            // that root (`public/mod`); they are kept relative to the web root here, like
            // those of subplugins.json.
            let v = if public {
                v.strip_prefix("public/").unwrap_or(v)
            } else {
                v
            };
            if !clean_relative(v) {
                return Err(LayoutError::BadFile {
                    file,
                    message: format!(
                        "plugin type '{}' has the directory '{}', which is not a plain relative path inside the codebase",
                        k.escape_debug(),
                        v.escape_debug()
                    ),
                });
            }
            types.insert(k, v.to_string());
        }
        Ok(CoreLayout {
            types,
            standard,
            public,
        })
    }

    pub fn is_public(&self) -> bool {
        self.public
    }

    /// Adds the subplugin types a plugin of core declares. `plugin_dir` is the plugin's
    /// directory relative to the web root; `json` the content of its `db/subplugins.json`.
    /// Returns the types added.
    pub fn add_subplugins(
        &mut self,
        plugin_dir: &str,
        file_label: &str,
        json: &str,
    ) -> Result<Vec<String>, LayoutError> {
        let mut added = Vec::new();
        for d in declared_types(plugin_dir, file_label, json)? {
            self.types.insert(d.plugin_type.clone(), d.dir);
            added.push(d.plugin_type);
        }
        Ok(added)
    }

    /// Adds the subplugin types a site's plugin declares in its `db/subplugins.json`. Unlike
    /// core's own declarations, these are checked: a type that already exists (core's, or
    /// another plugin's) is refused, as are a type name Moodle would not accept and a
    /// directory outside the plugin's own.
    pub fn add_plugin_subplugins(
        &mut self,
        plugin_dir: &str,
        file_label: &str,
        json: &str,
    ) -> Result<Vec<String>, LayoutError> {
        let base = plugin_dir.trim_end_matches('/');
        let bad = |ty: &str, problem: String| LayoutError::BadSubpluginType {
            file: file_label.to_string(),
            plugin_type: ty.to_string(),
            problem,
        };
        let mut added = Vec::new();
        for d in declared_types(plugin_dir, file_label, json)? {
            let ty = d.plugin_type;
            let inside = if d.relative {
                clean_relative(&d.written)
            } else {
                d.dir
                    .strip_prefix(base)
                    .and_then(|r| r.strip_prefix('/'))
                    .is_some_and(clean_relative)
            };
            if !inside {
                return Err(bad(
                    &ty,
                    format!(
                        "with the directory '{}', which is not a plain path inside the plugin's own directory {base}",
                        d.written
                    ),
                ));
            }
            let valid = ty.starts_with(|c: char| c.is_ascii_lowercase())
                && ty
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
            if !valid {
                return Err(bad(
                    &ty,
                    "whose name is not lowercase letters and digits".into(),
                ));
            }
            if let Some(existing) = self.types.get(&ty) {
                return Err(LayoutError::TypeClash {
                    file: file_label.to_string(),
                    plugin_type: ty,
                    existing: existing.clone(),
                });
            }
            self.types.insert(ty.clone(), d.dir);
            added.push(ty);
        }
        Ok(added)
    }

    /// Every plugin type with its directory relative to the web root.
    pub fn types(&self) -> impl Iterator<Item = (&str, &str)> {
        self.types.iter().map(|(t, d)| (t.as_str(), d.as_str()))
    }

    /// Is this plugin type known?
    pub fn has_type(&self, plugin_type: &str) -> bool {
        self.types.contains_key(plugin_type)
    }

    /// The directory of a plugin relative to the web root, e.g. `blocks/xp`.
    pub fn web_path(&self, component: &Component) -> Result<String, LayoutError> {
        let dir =
            self.types
                .get(component.plugin_type())
                .ok_or_else(|| LayoutError::UnknownType {
                    plugin_type: component.plugin_type().to_string(),
                })?;
        Ok(format!("{dir}/{}", component.plugin_name()))
    }

    /// The directory of a plugin relative to the codebase root (`public/…` from 5.1).
    pub fn install_path(&self, component: &Component) -> Result<String, LayoutError> {
        Ok(web_root_path(self.public, &self.web_path(component)?))
    }

    /// Does this component ship with core (`lib/plugins.json`)?
    pub fn is_standard(&self, component: &str) -> bool {
        self.standard.contains(component)
    }
}

/// One subplugin type a `db/subplugins.json` declares.
struct Declared {
    plugin_type: String,
    /// Relative to the web root.
    dir: String,
    /// As the file writes it.
    written: String,
    /// Given relative to the plugin (`subplugintypes`) rather than to the web root.
    relative: bool,
}

/// The types a `db/subplugins.json` declares. From Moodle 5.0 `subplugintypes` (relative to
/// the plugin) is preferred over `plugintypes` (relative to the web root).
fn declared_types(plugin_dir: &str, label: &str, json: &str) -> Result<Vec<Declared>, LayoutError> {
    let s: SubpluginsJson = serde_json::from_str(json).map_err(|e| LayoutError::BadFile {
        file: label.to_string(),
        message: e.to_string(),
    })?;
    let base = plugin_dir.trim_end_matches('/');
    for (ty, dir) in s.subplugintypes.iter().chain(&s.plugintypes) {
        if !clean_relative(dir.trim_end_matches('/')) {
            return Err(LayoutError::BadFile {
                file: label.to_string(),
                message: format!(
                    "subplugin type '{}' has the directory '{}', which is not a plain relative path",
                    ty.escape_debug(),
                    dir.escape_debug()
                ),
            });
        }
    }
    Ok(if !s.subplugintypes.is_empty() {
        s.subplugintypes
            .into_iter()
            .map(|(ty, rel)| {
                let written = rel.trim_end_matches('/').to_string();
                Declared {
                    plugin_type: ty,
                    dir: format!("{base}/{written}"),
                    written,
                    relative: true,
                }
            })
            .collect()
    } else {
        s.plugintypes
            .into_iter()
            .map(|(ty, dir)| {
                let written = dir.trim_end_matches('/').to_string();
                Declared {
                    plugin_type: ty,
                    dir: written.clone(),
                    written,
                    relative: false,
                }
            })
            .collect()
    })
}

/// A relative path of plain names: no `.`, `..` or empty part, no backslash and no
/// control character.
fn clean_relative(p: &str) -> bool {
    !p.is_empty()
        && p.split('/').all(|n| !n.is_empty() && n != "." && n != "..")
        && !p.chars().any(|c| c == '\\' || c.is_control())
}

/// The standard plugins of a core older than 4.4, which has no `lib/plugins.json`: the
/// array `core_plugin_manager::standard_plugins_list()` returns, read from
/// `lib/classes/plugin_manager.php` (never run), as the `lib/plugins.json` text it stands
/// for. `None` when the file holds no such array.
pub fn plugins_json_from_plugin_manager(php: &str) -> Option<String> {
    let start = php.find("function standard_plugins_list")?;
    let body = &php[start..];
    let list = body.find("$standard_plugins")?;
    let eq = body[list..].find('=')? + list + 1;
    let tokens = php_array_tokens(&body[eq..])?;
    let mut standard: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut it = tokens.into_iter().peekable();
    if it.next()? != Tok::Open {
        return None;
    }
    loop {
        match it.next()? {
            Tok::Close => break,
            Tok::Comma => continue,
            Tok::Str(ty) => {
                if it.next()? != Tok::Arrow || it.next()? != Tok::Open {
                    return None;
                }
                let names = standard.entry(ty).or_default();
                loop {
                    match it.next()? {
                        Tok::Close => break,
                        Tok::Comma => {}
                        Tok::Str(n) => names.push(n),
                        _ => return None,
                    }
                }
            }
            _ => return None,
        }
    }
    if standard.is_empty() {
        return None;
    }
    Some(serde_json::json!({ "standard": standard }).to_string())
}

#[derive(Debug, PartialEq, Eq)]
enum Tok {
    Str(String),
    Arrow,
    Open,
    Close,
    Comma,
}

/// The tokens of a PHP array literal of string lists, from its opening `array(` or `[` to
/// its matching close; comments skipped. `None` on anything else.
fn php_array_tokens(text: &str) -> Option<Vec<Tok>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            c if c.is_ascii_whitespace() => i += 1,
            b'/' if b.get(i + 1) == Some(&b'/') => {
                i = text[i..].find('\n').map_or(b.len(), |n| i + n);
            }
            b'#' => i = text[i..].find('\n').map_or(b.len(), |n| i + n),
            b'/' if b.get(i + 1) == Some(&b'*') => i = text[i + 2..].find("*/")? + i + 4,
            b'\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match *b.get(i)? {
                        b'\\' if matches!(b.get(i + 1), Some(b'\'' | b'\\')) => {
                            s.push(b[i + 1] as char);
                            i += 2;
                        }
                        b'\'' => break,
                        _ => {
                            let ch = text[i..].chars().next()?;
                            s.push(ch);
                            i += ch.len_utf8();
                        }
                    }
                }
                i += 1;
                out.push(Tok::Str(s));
            }
            b'=' if b.get(i + 1) == Some(&b'>') => {
                out.push(Tok::Arrow);
                i += 2;
            }
            b',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            b'[' | b'(' => {
                out.push(Tok::Open);
                depth += 1;
                i += 1;
            }
            b']' | b')' => {
                out.push(Tok::Close);
                depth = depth.checked_sub(1)?;
                i += 1;
                if depth == 0 {
                    return Some(out);
                }
            }
            _ if text[i..].starts_with("array") => i += 5,
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPONENTS: &str = r#"{"plugintypes": {"mod": "mod", "block": "blocks", "format": "course\/format", "antivirus": "lib\/antivirus"}, "subsystems": {}}"#;
    const PLUGINS: &str = r#"{"standard": {"mod": ["quiz", "assign"], "block": ["html"]}}"#;

    fn c(s: &str) -> Component {
        Component::parse(s).unwrap()
    }

    #[test]
    fn a_plugin_type_outside_the_codebase_is_refused_naming_components_json() {
        for dir in ["../outside", "/srv/elsewhere", "mod/../../x", "a\\b", ""] {
            let json = serde_json::json!({"plugintypes": {"mod": "mod", "evil": dir}}).to_string();
            let err = CoreLayout::new(&json, None, false).unwrap_err();
            let text = err.to_string();
            assert!(
                text.starts_with("lib/components.json is not valid"),
                "{text}"
            );
            assert!(text.contains("plugin type 'evil'"), "{text}");
        }
        let json = r#"{"plugintypes": {"mod": "public/mod", "evil": "public/../x"}}"#;
        let text = CoreLayout::new(json, None, true).unwrap_err().to_string();
        assert!(text.starts_with("public/lib/components.json"), "{text}");
        let mut l = CoreLayout::new(COMPONENTS, None, false).unwrap();
        let err = l
            .add_subplugins(
                "mod/quiz",
                "mod/quiz/db/subplugins.json",
                r#"{"plugintypes": {"quizaccess": "/etc"}}"#,
            )
            .unwrap_err();
        assert!(
            err.to_string().contains("not a plain relative path"),
            "{err}"
        );
    }

    #[test]
    fn install_paths_from_components_json() {
        let l = CoreLayout::new(COMPONENTS, Some(PLUGINS), false).unwrap();
        assert_eq!(l.install_path(&c("block_xp")).unwrap(), "blocks/xp");
        assert_eq!(
            l.install_path(&c("format_tiles")).unwrap(),
            "course/format/tiles"
        );
        assert_eq!(
            l.install_path(&c("mod_attendance")).unwrap(),
            "mod/attendance"
        );
        assert!(l.is_standard("mod_quiz"));
        assert!(!l.is_standard("mod_attendance"));
        assert_eq!(
            l.install_path(&c("foo_bar")).unwrap_err(),
            LayoutError::UnknownType {
                plugin_type: "foo".into()
            }
        );
    }

    #[test]
    fn public_layout_paths_from_the_codebase_root_are_read_as_web_root_paths() {
        // Moodle 5.1's own lib/components.json, at the codebase root.
        let l = CoreLayout::new(
            r#"{"plugintypes": {"mod": "public/mod", "block": "public/blocks"}}"#,
            None,
            true,
        )
        .unwrap();
        assert_eq!(l.install_path(&c("block_xp")).unwrap(), "public/blocks/xp");
        assert_eq!(l.web_path(&c("mod_x")).unwrap(), "mod/x");
    }

    #[test]
    fn public_layout_prefixes() {
        let l = CoreLayout::new(COMPONENTS, None, true).unwrap();
        assert_eq!(l.install_path(&c("block_xp")).unwrap(), "public/blocks/xp");
        assert_eq!(l.web_path(&c("block_xp")).unwrap(), "blocks/xp");
    }

    #[test]
    fn subplugins_both_forms() {
        let mut l = CoreLayout::new(COMPONENTS, None, false).unwrap();
        l.add_subplugins(
            "mod/quiz",
            "mod/quiz/db/subplugins.json",
            r#"{"plugintypes": {"quizaccess": "mod\/quiz\/accessrule"}}"#,
        )
        .unwrap();
        assert_eq!(
            l.install_path(&c("quizaccess_seb")).unwrap(),
            "mod/quiz/accessrule/seb"
        );
        l.add_subplugins(
            "mod/newmod",
            "mod/newmod/db/subplugins.json",
            r#"{"plugintypes": {"newmodsub": "mod/wrong/sub"}, "subplugintypes": {"newmodsub": "sub"}}"#,
        )
        .unwrap();
        assert_eq!(
            l.install_path(&c("newmodsub_a")).unwrap(),
            "mod/newmod/sub/a"
        );
        assert!(l.add_subplugins("x", "x/db/subplugins.json", "{").is_err());
    }

    #[test]
    fn reads_the_real_45_files() {
        let comps = include_str!("../tests/data/components-4.5.json");
        let plugins = include_str!("../tests/data/standard-plugins-4.5.json");
        let l = CoreLayout::new(comps, Some(plugins), false).unwrap();
        assert_eq!(
            l.install_path(&c("tool_opcache")).unwrap(),
            "admin/tool/opcache"
        );
        assert!(l.is_standard("mod_assign"));
        assert!(l.is_standard("block_html"));
    }

    #[test]
    fn site_plugins_cannot_redefine_or_escape() {
        let mut l = CoreLayout::new(COMPONENTS, None, false).unwrap();
        let e = l
            .add_plugin_subplugins(
                "local/evil",
                "local_evil/db/subplugins.json",
                r#"{"plugintypes": {"mod": "local/evil/mod"}}"#,
            )
            .unwrap_err();
        assert!(matches!(e, LayoutError::TypeClash { .. }), "{e}");
        assert_eq!(
            l.install_path(&c("mod_x")).unwrap(),
            "mod/x",
            "core's type stays"
        );
        for json in [
            r#"{"plugintypes": {"evilsub": "mod"}}"#,
            r#"{"plugintypes": {"evilsub": "local/evil/../../etc"}}"#,
            r#"{"subplugintypes": {"evilsub": "../../x"}}"#,
            r#"{"subplugintypes": {"Evil": "sub"}}"#,
        ] {
            assert!(
                l.add_plugin_subplugins("local/evil", "f", json).is_err(),
                "{json}"
            );
        }
        l.add_plugin_subplugins(
            "mod/cert",
            "f",
            r#"{"subplugintypes": {"certelement": "element"}}"#,
        )
        .unwrap();
        assert_eq!(
            l.install_path(&c("certelement_text")).unwrap(),
            "mod/cert/element/text"
        );
        let e = l
            .add_plugin_subplugins(
                "mod/other",
                "g",
                r#"{"subplugintypes": {"certelement": "el"}}"#,
            )
            .unwrap_err();
        assert!(e.to_string().contains("already exists"), "{e}");
    }

    #[test]
    fn standard_plugins_of_an_old_core_are_read_from_its_plugin_manager() {
        let php = r#"<?php
class core_plugin_manager {
    public static function standard_plugins_list($type) {

        $standard_plugins = array(

            'antivirus' => array(
                'clamav'
            ),
            // Removed in 4.0.
            'block' => array(
                'accessreview', 'activity_modules', /* one */ 'html',
            ),
            'mod' => ['assign', 'forum', 'quiz'],
        );

        if (isset($standard_plugins[$type])) {
            return $standard_plugins[$type];
        }
    }
}
"#;
        let json = plugins_json_from_plugin_manager(php).unwrap();
        let layout = CoreLayout::new(
            r#"{"plugintypes": {"mod": "mod", "block": "blocks", "antivirus": "lib/antivirus"}}"#,
            Some(&json),
            false,
        )
        .unwrap();
        for c in [
            "block_html",
            "mod_quiz",
            "antivirus_clamav",
            "block_activity_modules",
        ] {
            assert!(layout.is_standard(c), "{c}");
        }
        assert!(!layout.is_standard("mod_attendance"));
        assert!(plugins_json_from_plugin_manager("<?php $standard_plugins = 1;").is_none());
        assert!(plugins_json_from_plugin_manager("<?php function standard_plugins_list() { $standard_plugins = array('a' => system('x')); }").is_none());
    }
}
