//! Reads Moodle `version.php` files: core (`$version`, `$release`, `$branch`) and plugins
//! (`$plugin->component`, `version`, `requires`, `supported`, `incompatible`,
//! `dependencies`, `release`, `maturity`).
//!
//! The file is PHP. It is tokenised (strings, numbers, comments, arrays in `[...]` and
//! `array(...)` form) and its simple assignments are read; nothing is executed. Statements
//! that are not plain assignments of literals (`defined(...) || die();`) are skipped.

use std::collections::BTreeMap;

use crate::release::{Branch, Build, Release};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionPhpError {
    #[error("version.php line {line}: {message}")]
    Syntax { line: usize, message: String },
    #[error("version.php does not set {0}")]
    Missing(&'static str),
    #[error("version.php sets {field} to {value}, which is not {expected}")]
    BadValue {
        field: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// Plugin maturity, `MATURITY_*`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Maturity {
    Alpha,
    Beta,
    Rc,
    Stable,
}

impl Maturity {
    pub fn from_code(code: i64) -> Option<Maturity> {
        Some(match code {
            50 => Maturity::Alpha,
            100 => Maturity::Beta,
            150 => Maturity::Rc,
            200 => Maturity::Stable,
            _ => return None,
        })
    }

    fn from_constant(name: &str) -> Option<Maturity> {
        Some(match name {
            "MATURITY_ALPHA" => Maturity::Alpha,
            "MATURITY_BETA" => Maturity::Beta,
            "MATURITY_RC" => Maturity::Rc,
            "MATURITY_STABLE" => Maturity::Stable,
            _ => return None,
        })
    }
}

/// What core's `version.php` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreVersion {
    pub build: Build,
    pub release: String,
    pub branch: Branch,
    pub maturity: Option<Maturity>,
}

impl CoreVersion {
    /// The X.Y of this core, from `$branch`.
    pub fn major_release(&self) -> Release {
        self.branch.release()
    }
}

/// What a plugin's `version.php` says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PluginVersion {
    pub component: Option<String>,
    pub version: Option<Build>,
    pub requires: Option<Build>,
    /// Inclusive branch range, `[401, 405]`.
    pub supported: Option<(Branch, Branch)>,
    /// Blocks when core's branch is at or above it.
    pub incompatible: Option<Branch>,
    /// Component → minimum version; `None` is `ANY_VERSION`.
    pub dependencies: BTreeMap<String, Option<Build>>,
    pub release: Option<String>,
    pub maturity: Option<Maturity>,
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Number(String),
    Str(String),
    Const(String),
    Array(Vec<(Option<Value>, Value)>),
}

impl Value {
    fn describe(&self) -> String {
        match self {
            Value::Number(n) => n.clone(),
            Value::Str(s) => format!("'{s}'"),
            Value::Const(c) => c.clone(),
            Value::Array(_) => "an array".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Var(String),
    Ident(String),
    Number(String),
    Str(String),
    Punct(&'static str),
    Other(char),
}

/// The index just after the next `<?php` (any case) at or after `from`.
fn open_tag(b: &[u8], from: usize) -> Option<usize> {
    b.get(from..)?
        .windows(5)
        .position(|w| w.eq_ignore_ascii_case(b"<?php"))
        .map(|p| from + p + 5)
}

/// How deeply arrays may nest: real files nest two levels.
const MAX_DEPTH: usize = 32;

fn tokenize(src: &str) -> Result<Vec<(Tok, usize)>, VersionPhpError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut line = 1;
    // Outside `<?php … ?>` is text PHP prints, not code.
    let mut i = match open_tag(b, 0) {
        Some(at) => {
            line += src[..at].matches('\n').count();
            at
        }
        None => b.len(),
    };
    while i < b.len() {
        let c = b[i];
        match c {
            b'\n' => {
                line += 1;
                i += 1;
            }
            c if c.is_ascii_whitespace() => i += 1,
            // A line comment ends at the line's end or at `?>`, as PHP reads it.
            b'#' | b'/' if c == b'#' || b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' && !(b[i] == b'?' && b.get(i + 1) == Some(&b'>'))
                {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let start_line = line;
                i += 2;
                loop {
                    if i + 1 >= b.len() {
                        return Err(VersionPhpError::Syntax {
                            line: start_line,
                            message: "unterminated /* comment".into(),
                        });
                    }
                    if b[i] == b'*' && b[i + 1] == b'/' {
                        i += 2;
                        break;
                    }
                    if b[i] == b'\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
            b'?' if b.get(i + 1) == Some(&b'>') => {
                // `?>` ends a statement; code resumes at the next `<?php`.
                out.push((Tok::Punct(";"), line));
                let from = i + 2;
                i = match open_tag(b, from) {
                    Some(at) => {
                        line += src[from..at].matches('\n').count();
                        at
                    }
                    None => b.len(),
                };
            }
            b'\'' | b'"' => {
                let start_line = line;
                let (text, end) = string_literal(b, i, &mut line)?;
                out.push((Tok::Str(text), start_line));
                i = end;
            }
            b'$' => {
                let start = i + 1;
                i += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                out.push((Tok::Var(src[start..i].to_string()), line));
            }
            c if c.is_ascii_digit() => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.' || b[i] == b'_') {
                    i += 1;
                }
                out.push((Tok::Number(src[start..i].replace('_', "")), line));
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b'\\' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'\\')
                {
                    i += 1;
                }
                let ident = src[start..i].trim_start_matches('\\').to_string();
                out.push((Tok::Ident(ident), line));
            }
            _ => match punct(src.get(i..i + 2), c) {
                Some(p) => {
                    out.push((Tok::Punct(p), line));
                    i += p.len();
                }
                None => {
                    // A multi-byte character outside a string: skip it whole.
                    let ch = src[i..].chars().next().unwrap_or('?');
                    out.push((Tok::Other(ch), line));
                    i += ch.len_utf8();
                }
            },
        }
    }
    Ok(out)
}

/// The string literal opening at `i` (either quote): its text, with `\\` and the
/// quote unescaped, and the index after it; `line` counts the newlines inside.
fn string_literal(
    b: &[u8],
    mut i: usize,
    line: &mut usize,
) -> Result<(String, usize), VersionPhpError> {
    let quote = b[i];
    let start_line = *line;
    let mut s = Vec::new();
    i += 1;
    loop {
        let Some(&ch) = b.get(i) else {
            return Err(VersionPhpError::Syntax {
                line: start_line,
                message: "unterminated string".into(),
            });
        };
        if ch == quote {
            return Ok((String::from_utf8_lossy(&s).into_owned(), i + 1));
        }
        if ch == b'\\' && i + 1 < b.len() {
            let next = b[i + 1];
            if next == quote || next == b'\\' {
                s.push(next);
                i += 2;
                continue;
            }
        }
        if ch == b'\n' {
            *line += 1;
        }
        s.push(ch);
        i += 1;
    }
}

/// The punctuation starting with `c` (`two` is it and the byte after).
fn punct(two: Option<&str>, c: u8) -> Option<&'static str> {
    match two {
        Some("->") => return Some("->"),
        Some("=>") => return Some("=>"),
        Some("==") => return Some("=="),
        Some("||") => return Some("||"),
        Some("&&") => return Some("&&"),
        _ => {}
    }
    match c {
        b'=' => Some("="),
        b';' => Some(";"),
        b',' => Some(","),
        b'[' => Some("["),
        b']' => Some("]"),
        b'(' => Some("("),
        b')' => Some(")"),
        b'-' => Some("-"),
        _ => None,
    }
}

/// One assignment target: `$name` or `$object->property`.
type Target = (String, Option<String>);

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }

    fn line(&self) -> usize {
        self.toks
            .get(self.pos)
            .or(self.toks.last())
            .map(|t| t.1)
            .unwrap_or(1)
    }

    fn err(&self, message: impl Into<String>) -> VersionPhpError {
        VersionPhpError::Syntax {
            line: self.line(),
            message: message.into(),
        }
    }

    fn eat(&mut self, p: &'static str) -> bool {
        if self.peek() == Some(&Tok::Punct(p)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_statement(&mut self) {
        let mut depth = 0i32;
        while let Some(t) = self.peek() {
            match t {
                Tok::Punct("(") | Tok::Punct("[") => depth += 1,
                Tok::Punct(")") | Tok::Punct("]") => depth -= 1,
                Tok::Punct(";") if depth <= 0 => {
                    self.pos += 1;
                    return;
                }
                _ => {}
            }
            self.pos += 1;
        }
    }

    /// Reads every `target = literal;` statement in order.
    fn assignments(&mut self) -> Result<Vec<(Target, Value, usize)>, VersionPhpError> {
        let mut out = Vec::new();
        while self.peek().is_some() {
            let start = self.pos;
            if let Some(Tok::Var(var)) = self.peek().cloned() {
                self.pos += 1;
                let mut prop = None;
                if self.eat("->") {
                    match self.peek().cloned() {
                        Some(Tok::Ident(p)) => {
                            self.pos += 1;
                            prop = Some(p);
                        }
                        _ => {
                            self.skip_statement();
                            continue;
                        }
                    }
                }
                if self.eat("=") {
                    let line = self.toks[start].1;
                    let value = self.value()?;
                    if !self.eat(";") {
                        return Err(self.err(format!(
                            "expected ';' after the value of ${var}{}",
                            prop.as_deref()
                                .map(|p| format!("->{p}"))
                                .unwrap_or_default()
                        )));
                    }
                    out.push(((var, prop), value, line));
                    continue;
                }
            }
            self.pos = start;
            self.skip_statement();
        }
        Ok(out)
    }

    fn value(&mut self) -> Result<Value, VersionPhpError> {
        match self.peek().cloned() {
            Some(Tok::Number(n)) => {
                self.pos += 1;
                Ok(Value::Number(n))
            }
            Some(Tok::Punct("-")) => {
                self.pos += 1;
                match self.peek().cloned() {
                    Some(Tok::Number(n)) => {
                        self.pos += 1;
                        Ok(Value::Number(format!("-{n}")))
                    }
                    _ => Err(self.err("expected a number after '-'")),
                }
            }
            Some(Tok::Str(s)) => {
                self.pos += 1;
                Ok(Value::Str(s))
            }
            Some(Tok::Punct("[")) => {
                self.pos += 1;
                self.array_items("]")
            }
            Some(Tok::Ident(id)) if id.eq_ignore_ascii_case("array") => {
                self.pos += 1;
                if !self.eat("(") {
                    return Err(self.err("expected '(' after array"));
                }
                self.array_items(")")
            }
            Some(Tok::Ident(id)) => {
                self.pos += 1;
                Ok(Value::Const(id))
            }
            Some(other) => {
                Err(self.err(format!("unexpected {other:?} where a value was expected")))
            }
            None => Err(self.err("the file ends where a value was expected")),
        }
    }

    fn array_items(&mut self, close: &'static str) -> Result<Value, VersionPhpError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(format!("arrays nest more than {MAX_DEPTH} levels deep")));
        }
        let r = self.array_items_inner(close);
        self.depth -= 1;
        r
    }

    fn array_items_inner(&mut self, close: &'static str) -> Result<Value, VersionPhpError> {
        let mut items = Vec::new();
        loop {
            if self.eat(close) {
                return Ok(Value::Array(items));
            }
            let first = self.value()?;
            let item = if self.eat("=>") {
                (Some(first), self.value()?)
            } else {
                (None, first)
            };
            items.push(item);
            if !self.eat(",") {
                if self.eat(close) {
                    return Ok(Value::Array(items));
                }
                return Err(self.err(format!("expected ',' or '{close}' in an array")));
            }
        }
    }
}

fn parse_assignments(src: &str) -> Result<Vec<(Target, Value, usize)>, VersionPhpError> {
    let mut p = Parser {
        toks: tokenize(src)?,
        pos: 0,
        depth: 0,
    };
    p.assignments()
}

fn as_build(field: &'static str, v: &Value) -> Result<Build, VersionPhpError> {
    let text = match v {
        Value::Number(n) => n.as_str(),
        Value::Str(s) => s.as_str(),
        _ => "",
    };
    Build::parse(text).ok_or_else(|| VersionPhpError::BadValue {
        field,
        value: v.describe(),
        expected: "a version number such as 2024100700",
    })
}

fn as_branch(field: &'static str, v: &Value) -> Result<Branch, VersionPhpError> {
    let text = match v {
        Value::Number(n) => n.as_str(),
        Value::Str(s) => s.as_str(),
        _ => "",
    };
    text.parse::<u32>()
        .map(Branch)
        .map_err(|_| VersionPhpError::BadValue {
            field,
            value: v.describe(),
            expected: "a branch number such as 405",
        })
}

fn as_string(v: &Value) -> String {
    match v {
        Value::Str(s) | Value::Number(s) | Value::Const(s) => s.clone(),
        Value::Array(_) => String::new(),
    }
}

fn as_maturity(v: &Value) -> Result<Maturity, VersionPhpError> {
    let m = match v {
        Value::Const(c) => Maturity::from_constant(c),
        Value::Number(n) => n.parse().ok().and_then(Maturity::from_code),
        _ => None,
    };
    m.ok_or_else(|| VersionPhpError::BadValue {
        field: "maturity",
        value: v.describe(),
        expected: "one of MATURITY_ALPHA, MATURITY_BETA, MATURITY_RC, MATURITY_STABLE",
    })
}

impl CoreVersion {
    pub fn parse(src: &str) -> Result<CoreVersion, VersionPhpError> {
        let mut build = None;
        let mut release = None;
        let mut branch = None;
        let mut maturity = None;
        for ((var, prop), value, _) in parse_assignments(src)? {
            if prop.is_some() {
                continue;
            }
            match var.as_str() {
                "version" => build = Some(as_build("$version", &value)?),
                "release" => release = Some(as_string(&value)),
                "branch" => branch = Some(as_branch("$branch", &value)?),
                "maturity" => maturity = Some(as_maturity(&value)?),
                _ => {}
            }
        }
        let release = release.ok_or(VersionPhpError::Missing("$release"))?;
        let branch = match branch {
            Some(b) => b,
            // Very old cores have no $branch; the release text still names X.Y.
            None => Release::parse_leading(&release)
                .map(Release::branch)
                .ok_or(VersionPhpError::Missing("$branch"))?,
        };
        Ok(CoreVersion {
            build: build.ok_or(VersionPhpError::Missing("$version"))?,
            release,
            branch,
            maturity,
        })
    }
}

impl PluginVersion {
    pub fn parse(src: &str) -> Result<PluginVersion, VersionPhpError> {
        let mut pv = PluginVersion::default();
        for ((var, prop), value, _) in parse_assignments(src)? {
            // `$module` is what activity modules used before `$plugin`.
            if var != "plugin" && var != "module" {
                continue;
            }
            let Some(prop) = prop else { continue };
            match prop.as_str() {
                "component" => pv.component = Some(as_string(&value)),
                "version" => pv.version = Some(as_build("version", &value)?),
                "requires" => pv.requires = Some(as_build("requires", &value)?),
                "release" => pv.release = Some(as_string(&value)),
                "maturity" => pv.maturity = Some(as_maturity(&value)?),
                "incompatible" => pv.incompatible = Some(as_branch("incompatible", &value)?),
                "supported" => {
                    let bad = || VersionPhpError::BadValue {
                        field: "supported",
                        value: value.describe(),
                        expected: "a range of two branches such as [401, 405]",
                    };
                    let Value::Array(items) = &value else {
                        return Err(bad());
                    };
                    if items.len() != 2 {
                        return Err(bad());
                    }
                    let lo = as_branch("supported", &items[0].1)?;
                    let hi = as_branch("supported", &items[1].1)?;
                    pv.supported = Some((lo, hi));
                }
                "dependencies" => {
                    let Value::Array(items) = &value else {
                        return Err(VersionPhpError::BadValue {
                            field: "dependencies",
                            value: value.describe(),
                            expected: "an array of component => version",
                        });
                    };
                    for (key, v) in items {
                        let Some(Value::Str(component)) = key else {
                            return Err(VersionPhpError::BadValue {
                                field: "dependencies",
                                value: v.describe(),
                                expected: "keyed by a component name",
                            });
                        };
                        let min = match v {
                            Value::Const(c) if c == "ANY_VERSION" => None,
                            Value::Str(s) if s == "any" => None,
                            other => Some(as_build("dependencies", other)?),
                        };
                        pv.dependencies.insert(component.clone(), min);
                    }
                }
                _ => {}
            }
        }
        Ok(pv)
    }

    /// Is core branch `b` inside `supported` (or is there no range)?
    pub fn supports_branch(&self, b: Branch) -> bool {
        match self.supported {
            Some((lo, hi)) => lo <= b && b <= hi,
            None => true,
        }
    }

    /// Does `incompatible` block core branch `b`?
    pub fn blocks_branch(&self, b: Branch) -> bool {
        self.incompatible.is_some_and(|inc| b >= inc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CORE: &str = r#"<?php
// This file is part of Moodle - https://moodle.org/
defined('MOODLE_INTERNAL') || die();

$version  = 2024100703.05;              // 20241007      = branching date YYYYMMDD - do not modify!
                                        //         RR    = release increments - 00 in DEV branches.
$release  = '4.5.3+ (Build: 20250321)'; // Human-friendly version name
$branch   = '405';                      // This version's branch.
$maturity = MATURITY_STABLE;            // This version's maturity level.
"#;

    #[test]
    fn reads_core() {
        let c = CoreVersion::parse(CORE).unwrap();
        assert_eq!(c.build, Build::parse("2024100703.05").unwrap());
        assert_eq!(c.release, "4.5.3+ (Build: 20250321)");
        assert_eq!(c.branch, Branch(405));
        assert_eq!(c.major_release(), Release::new(4, 5));
        assert_eq!(c.maturity, Some(Maturity::Stable));
    }

    #[test]
    fn reads_plugin_with_array_forms_comments_and_line_breaks() {
        let src = r#"<?php
/* A block comment with $plugin->version = 1; inside */
defined('MOODLE_INTERNAL') || die();
$plugin->component = 'mod_attendance'; # hash comment
$plugin->version   = 2024082600;
$plugin->requires  = 2022112800.00; // Requires 4.1
$plugin->supported = [
    401,   // 4.1
    405,
];
$plugin->incompatible = 500;
$plugin->release   = "4.5.0 \"quoted\"";
$plugin->maturity  = MATURITY_BETA;
$plugin->dependencies = array(
    'mod_foo' => 2020010100,   // foo
    "block_bar" =>
        ANY_VERSION,
);
"#;
        let p = PluginVersion::parse(src).unwrap();
        assert_eq!(p.component.as_deref(), Some("mod_attendance"));
        assert_eq!(p.version, Some(Build::from_int(2024082600)));
        assert_eq!(p.requires, Some(Build::from_int(2022112800)));
        assert_eq!(p.supported, Some((Branch(401), Branch(405))));
        assert_eq!(p.incompatible, Some(Branch(500)));
        assert_eq!(p.release.as_deref(), Some("4.5.0 \"quoted\""));
        assert_eq!(p.maturity, Some(Maturity::Beta));
        assert_eq!(p.dependencies.len(), 2);
        assert_eq!(p.dependencies["mod_foo"], Some(Build::from_int(2020010100)));
        assert_eq!(p.dependencies["block_bar"], None);
        assert!(p.supports_branch(Branch(405)));
        assert!(!p.supports_branch(Branch(500)));
        assert!(p.blocks_branch(Branch(500)));
        assert!(!p.blocks_branch(Branch(405)));
    }

    #[test]
    fn old_module_syntax_and_array_keyword_case() {
        let src =
            "<?php\n$module->version = 2011032200;\n$module->dependencies = ARRAY('mod_x' => 1);\n";
        let p = PluginVersion::parse(src).unwrap();
        assert_eq!(p.version, Some(Build::from_int(2011032200)));
        assert_eq!(p.dependencies["mod_x"], Some(Build::from_int(1)));
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = PluginVersion::parse(
            "<?php\n$plugin->version = 2024;\n$plugin->supported = [401 405];\n",
        )
        .unwrap_err();
        assert!(
            matches!(err, VersionPhpError::Syntax { line: 3, .. }),
            "{err:?}"
        );
        let err = PluginVersion::parse("<?php\n$plugin->release = 'open\n").unwrap_err();
        assert!(
            matches!(err, VersionPhpError::Syntax { line: 2, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn bad_values_are_named() {
        let err = PluginVersion::parse("<?php $plugin->supported = 405;").unwrap_err();
        assert!(err.to_string().contains("supported"));
        let err = PluginVersion::parse("<?php $plugin->maturity = MATURITY_GREAT;").unwrap_err();
        assert!(err.to_string().contains("maturity"));
        let err = CoreVersion::parse("<?php $release = '4.5';").unwrap_err();
        assert_eq!(err, VersionPhpError::Missing("$version"));
    }

    #[test]
    fn code_after_a_closing_tag_is_read_and_text_is_not() {
        let src = "<?php\n$plugin->version = 1; // ?> $plugin->version = 9;\n?>\n$plugin->requires = 5;\n<?PHP\n$plugin->component = 'mod_x';\n$plugin->version = 2;\n";
        let p = PluginVersion::parse(src).unwrap();
        assert_eq!(p.version, Some(Build::from_int(2)));
        assert_eq!(
            p.requires, None,
            "text outside PHP tags is output, not code"
        );
        assert_eq!(p.component.as_deref(), Some("mod_x"));
        let none = PluginVersion::parse("$plugin->version = 3;").unwrap();
        assert_eq!(none.version, None, "no <?php, no code");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let src = format!("<?php $plugin->dependencies = {};", "[".repeat(100_000));
        let err = PluginVersion::parse(&src).unwrap_err();
        assert!(err.to_string().contains("nest"), "{err}");
        let src = format!(
            "<?php $plugin->dependencies = {};",
            "array(".repeat(100_000)
        );
        assert!(PluginVersion::parse(&src).is_err());
    }
}
