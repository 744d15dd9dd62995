//! Editing a site file as text, so that its comments and layout stay as the administrator
//! wrote them: a starter file (`init`), a plugin entry added (`add`) or removed
//! (`remove`). Every edit is parsed again before it is accepted.

use std::path::Path;

use crate::error::ConfigError;
use crate::site::SiteFile;

/// A commented starter site file for Moodle `moodle` (e.g. `4.5`).
/// `config` is where the site's config.php is, when the site links one.
pub fn starter(name: &str, moodle: &str, config: Option<&str>) -> String {
    let links = match config {
        Some(target) => format!("    links: {{ \"config.php\": {target:?} }},"),
        None => format!("    // links: {{ \"config.php\": \"/etc/moodle/{name}/config.php\" }},"),
    };
    format!(
        r#"// The site file: the desired state of one Moodle codebase. Keep it in git with
// site.lock beside it; `mcb realise` builds it, `mcb plan` says what would change.
Site(
    // Names the site's branch in the store: lowercase letters, digits, _ and -.
    name: "{name}",
    // "{moodle}" follows the newest {moodle}.x release; "{moodle}+" the weekly builds of the
    // stable branch; "{moodle}.3" one release. Add git: "URL" for a mirror of moodle.git.
    moodle: (version: "{moodle}"),
    // Take only stable releases of plugins (or "rc", "beta", "alpha").
    // maturity: "stable",
    plugins: {{
        // From the plugins directory, the newest version for this Moodle:
        //   "mod_attendance": (),
        // From git, the newest tag that installs, or a pinned ref:
        //   "local_mailtest": (git: "https://github.com/michael-milette/moodle-local_mailtest.git"),
        // A pinned release (as administrators see it) or build number:
        //   "block_xp": (version: "18.0"),
    }},
    // Files kept outside the codebase, linked into it (never followed by mcb):
{links}
)
"#
    )
}

/// A source for `add`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewSource {
    Directory,
    Git {
        url: String,
        reference: Option<String>,
    },
    Zip {
        location: String,
    },
    Path {
        dir: String,
    },
    Composer {
        package: String,
    },
    /// The site's CAMP registry.
    Camp,
}

fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl NewSource {
    /// The entry's value as the site file writes it.
    fn ron(&self, version: Option<&str>) -> String {
        let mut fields: Vec<String> = Vec::new();
        match self {
            NewSource::Directory => {}
            NewSource::Git { url, reference } => {
                fields.push(format!("git: {}", quoted(url)));
                if let Some(r) = reference {
                    fields.push(format!("ref: {}", quoted(r)));
                }
            }
            NewSource::Zip { location } => fields.push(format!("zip: {}", quoted(location))),
            NewSource::Path { dir } => fields.push(format!("path: {}", quoted(dir))),
            NewSource::Composer { package } => {
                fields.push(format!("composer: {}", quoted(package)))
            }
            NewSource::Camp => fields.push("camp: true".into()),
        }
        if let Some(v) = version {
            fields.push(format!("version: {}", quoted(v)));
        }
        format!("({})", fields.join(", "))
    }
}

/// A token's place in the text: what it is and where it starts and ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Open(u8),
    Close(u8),
    Str,
    Comma,
    Colon,
    Word,
}

/// The tokens of a RON text, comments and whitespace skipped: (token, start, end).
fn tokens(text: &str) -> Vec<(Token, usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'"' => {
                let start = i;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                out.push((Token::Str, start, i.min(b.len())));
            }
            b'(' | b'{' | b'[' => {
                out.push((Token::Open(c), i, i + 1));
                i += 1;
            }
            b')' | b'}' | b']' => {
                out.push((Token::Close(c), i, i + 1));
                i += 1;
            }
            b',' => {
                out.push((Token::Comma, i, i + 1));
                i += 1;
            }
            b':' => {
                out.push((Token::Colon, i, i + 1));
                i += 1;
            }
            c if c.is_ascii_whitespace() => i += 1,
            _ => {
                let start = i;
                while i < b.len() && !b[i].is_ascii_whitespace() && !b"(){}[],:\"/".contains(&b[i])
                {
                    i += 1;
                }
                if i == start {
                    i += 1;
                }
                out.push((Token::Word, start, i));
            }
        }
    }
    out
}

/// The `plugins: { … }` map of the `Site(…)`: the indices of its `{` and `}` tokens.
fn plugins_map(text: &str, toks: &[(Token, usize, usize)]) -> Option<(usize, usize)> {
    let mut depth = 0;
    for (i, (t, s, e)) in toks.iter().enumerate() {
        match t {
            Token::Open(_) => depth += 1,
            Token::Close(_) => depth -= 1,
            Token::Word if depth == 1 && &text[*s..*e] == "plugins" => {
                let open = i + 2;
                if toks.get(i + 1).map(|t| t.0) != Some(Token::Colon)
                    || toks.get(open).map(|t| t.0) != Some(Token::Open(b'{'))
                {
                    return None;
                }
                let mut d = 0;
                for (j, (t, _, _)) in toks.iter().enumerate().skip(open) {
                    match t {
                        Token::Open(_) => d += 1,
                        Token::Close(_) => {
                            d -= 1;
                            if d == 0 {
                                return Some((open, j));
                            }
                        }
                        _ => {}
                    }
                }
                return None;
            }
            _ => {}
        }
    }
    None
}

/// Each entry of the map between tokens `open` and `close`: (component, first token
/// index, index of the last token of its value).
fn entries(
    text: &str,
    toks: &[(Token, usize, usize)],
    open: usize,
    close: usize,
) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let mut i = open + 1;
    while i < close {
        if toks[i].0 != Token::Str {
            i += 1;
            continue;
        }
        let key = text[toks[i].1 + 1..toks[i].2 - 1].to_string();
        let start = i;
        // key : value, where value is one bracketed group or one token.
        let mut j = i + 2;
        let mut d = 0;
        while j < close {
            match toks[j].0 {
                Token::Open(_) => d += 1,
                Token::Close(_) => d -= 1,
                _ => {}
            }
            if d == 0 {
                break;
            }
            j += 1;
        }
        out.push((key, start, j.min(close - 1)));
        i = j + 1;
    }
    out
}

fn edit_error(path: &Path, message: String) -> ConfigError {
    ConfigError::new(path, message)
}

/// `value` (a `( … )` entry's text) with its `version` field set to `version`.
fn with_version(value: &str, version: &str) -> String {
    let toks = tokens(value);
    let mut depth = 0;
    for (i, (t, s, e)) in toks.iter().enumerate() {
        match t {
            Token::Open(_) => depth += 1,
            Token::Close(_) => depth -= 1,
            Token::Word if depth == 1 && &value[*s..*e] == "version" => {
                if let (Some((Token::Colon, _, _)), Some((Token::Str, vs, ve))) =
                    (toks.get(i + 1), toks.get(i + 2))
                {
                    return format!("{}{}{}", &value[..*vs], quoted(version), &value[*ve..]);
                }
            }
            _ => {}
        }
    }
    // No version yet: one more field before the closing parenthesis.
    let Some((Token::Close(b')'), close, _)) = toks.last().copied() else {
        return value.to_string();
    };
    let head = value[..close].trim_end();
    let sep = if head.ends_with('(') || head.ends_with(',') {
        ""
    } else {
        ", "
    };
    format!("{head}{sep}version: {}{}", quoted(version), &value[close..])
}

/// The site file `text` (at `path`) with `component`'s entry changed: to `source` when one
/// is given (with `version`, or none), else its own source with `version` pinned. The
/// comments around it stay.
fn change_plugin(
    path: &Path,
    text: &str,
    toks: &[(Token, usize, usize)],
    (first, last): (usize, usize),
    component: &str,
    source: Option<&NewSource>,
    version: Option<&str>,
) -> Result<String, ConfigError> {
    let (start, end) = (toks[first + 2].1, toks[last].2);
    let value = &text[start..end];
    let new = match (source, version) {
        (Some(s), v) => s.ron(v),
        (None, Some(v)) => with_version(value, v),
        (None, None) => {
            return Err(
                edit_error(path, format!("{component} is in the site file already"))
                    .component(component)
                    .hint("give a source (--git, --zip, --path, --composer) or --version to change its entry"),
            );
        }
    };
    let out = format!("{}{new}{}", &text[..start], &text[end..]);
    SiteFile::parse(path, &out)?;
    Ok(out)
}

/// The site file `text` (at `path`) with `component` pinned to `version`, its source kept.
pub fn pin_plugin(
    path: &Path,
    text: &str,
    component: &str,
    version: &str,
) -> Result<String, ConfigError> {
    add_plugin(path, text, component, None, Some(version))
}

/// The site file `text` (at `path`) with `moodle: ( … version: … )` set to `version`.
pub fn pin_moodle(path: &Path, text: &str, version: &str) -> Result<String, ConfigError> {
    let toks = tokens(text);
    let mut depth = 0;
    for (i, (t, s, e)) in toks.iter().enumerate() {
        match t {
            Token::Open(_) => depth += 1,
            Token::Close(_) => depth -= 1,
            Token::Word if depth == 1 && &text[*s..*e] == "moodle" => {
                let open = i + 2;
                if toks.get(open).map(|t| t.0) != Some(Token::Open(b'(')) {
                    break;
                }
                let mut d = 0;
                let close = toks
                    .iter()
                    .enumerate()
                    .skip(open)
                    .find(|(_, (t, _, _))| {
                        match t {
                            Token::Open(_) => d += 1,
                            Token::Close(_) => d -= 1,
                            _ => {}
                        }
                        d == 0
                    })
                    .map(|(j, _)| j);
                let Some(close) = close else { break };
                let (start, end) = (toks[open].1, toks[close].2);
                let out = format!(
                    "{}{}{}",
                    &text[..start],
                    with_version(&text[start..end], version),
                    &text[end..]
                );
                SiteFile::parse(path, &out)?;
                return Ok(out);
            }
            _ => {}
        }
    }
    Err(edit_error(
        path,
        "the site file has no `moodle: ( … )` mcb can find".into(),
    ))
}

/// The site file `text` (at `path`) with `component` added from `source` (the plugins
/// directory when none), or, when it is there already, its entry changed (as Composer's
/// `require` does). Refused when the file has no `plugins` map mcb can find.
pub fn add_plugin(
    path: &Path,
    text: &str,
    component: &str,
    source: Option<&NewSource>,
    version: Option<&str>,
) -> Result<String, ConfigError> {
    mcb_moodle::Component::parse(component)
        .map_err(|e| edit_error(path, e.to_string()).component(component))?;
    let toks = tokens(text);
    let (open, close) = plugins_map(text, &toks).ok_or_else(|| {
        edit_error(
            path,
            "the site file has no `plugins: { … }` map to add to".into(),
        )
        .hint("add `plugins: {},` inside Site( … ) first")
    })?;
    let list = entries(text, &toks, open, close);
    if let Some((_, first, last)) = list.iter().find(|(k, _, _)| k == component) {
        return change_plugin(
            path,
            text,
            &toks,
            (*first, *last),
            component,
            source,
            version,
        );
    }
    let source = source.unwrap_or(&NewSource::Directory);
    let entry = format!("{}: {},", quoted(component), source.ron(version));
    let close_at = toks[close].1;
    let line_start = text[..close_at].rfind('\n').map_or(0, |n| n + 1);
    let closing_indent = &text[line_start..close_at];
    let mut out = String::with_capacity(text.len() + entry.len() + 16);
    if closing_indent.trim().is_empty() && line_start > toks[open].2 {
        // `}` on its own line: the entry goes on the line before it, indented like the
        // others (or one level deeper than the brace).
        let indent = list
            .last()
            .map(|(_, s, _)| {
                let at = toks[*s].1;
                let ls = text[..at].rfind('\n').map_or(0, |n| n + 1);
                text[ls..at].to_string()
            })
            .filter(|i| i.trim().is_empty())
            .unwrap_or_else(|| format!("{closing_indent}    "));
        let before = &text[..line_start];
        out.push_str(before);
        if let Some((_, _, last)) = list.last()
            && toks.get(last + 1).map(|t| t.0) != Some(Token::Comma)
        {
            // The last entry has no trailing comma: give it one.
            let end = toks[*last].2;
            out.truncate(end);
            out.push(',');
            out.push_str(&before[end..]);
        }
        out.push_str(&format!("{indent}{entry}\n"));
        out.push_str(&text[line_start..]);
    } else {
        // `{ … }` on one line.
        let mut head = text[..close_at].trim_end().to_string();
        if !head.ends_with('{') && !head.ends_with(',') {
            head.push(',');
        }
        out.push_str(&head);
        out.push(' ');
        out.push_str(&entry);
        out.push(' ');
        out.push_str(&text[close_at..]);
    }
    SiteFile::parse(path, &out)?;
    Ok(out)
}

/// The one of `names` closest to `wanted` (at most a typo's distance away), for "did you
/// mean".
pub fn did_you_mean<'a>(wanted: &str, names: &[&'a str]) -> Option<&'a str> {
    let most = (wanted.len() / 3).max(2);
    names
        .iter()
        .map(|n| (edit_distance(wanted, n), *n))
        .filter(|(d, _)| *d <= most)
        .min()
        .map(|(_, n)| n)
}

/// Levenshtein's distance between `a` and `b`, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1)
                .min(row[j] + 1)
                .min(diag + usize::from(ca != *cb));
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The site file `text` (at `path`) without `component`'s entry and the comment lines
/// right above it; other comments stay.
pub fn remove_plugin(path: &Path, text: &str, component: &str) -> Result<String, ConfigError> {
    let toks = tokens(text);
    let (open, close) = plugins_map(text, &toks)
        .ok_or_else(|| edit_error(path, "the site file has no `plugins: { … }` map".into()))?;
    let list = entries(text, &toks, open, close);
    let Some((_, first, last)) = list.iter().find(|(k, _, _)| k == component) else {
        let names: Vec<&str> = list.iter().map(|(k, _, _)| k.as_str()).collect();
        let hint = match did_you_mean(component, &names) {
            Some(near) => format!("did you mean {near}?"),
            None => "a dependency added automatically goes when nothing needs it".into(),
        };
        return Err(
            edit_error(path, format!("{component} is not in the site file"))
                .component(component)
                .hint(hint),
        );
    };
    let mut end = toks[*last].2;
    if toks.get(last + 1).map(|t| t.0) == Some(Token::Comma) {
        end = toks[last + 1].2;
    }
    let start = toks[*first].1;
    let line_start = text[..start].rfind('\n').map_or(0, |n| n + 1);
    let line_end = text[end..].find('\n').map_or(text.len(), |n| end + n + 1);
    // A `//` comment after the entry on its last line is the entry's own.
    let after = text[end..line_end].trim();
    let alone =
        text[line_start..start].trim().is_empty() && (after.is_empty() || after.starts_with("//"));
    let out = if alone {
        // Whole lines, with the comment lines right above the entry: they describe it.
        // A comment after a blank line speaks of more.
        let mut from = line_start;
        while from > 0 {
            let prev_start = text[..from - 1].rfind('\n').map_or(0, |n| n + 1);
            let prev = text[prev_start..from].trim();
            let comment = prev.starts_with("//")
                || (prev.starts_with("/*") && prev.ends_with("*/") && prev.len() >= 4);
            // A commented-out entry (the starter's examples) speaks of the file, not of
            // the entry below it.
            let example = prev.contains("\": (");
            if !comment || example {
                break;
            }
            from = prev_start;
        }
        format!("{}{}", &text[..from], &text[line_end..])
    } else {
        let mut s = text[..start].trim_end_matches([' ', '\t']).to_string();
        let rest = text[end..].trim_start_matches([' ', '\t']);
        if !s.ends_with(['{', '\n']) && !rest.starts_with(['}', '\n']) {
            s.push(' ');
        }
        s.push_str(rest);
        s
    };
    SiteFile::parse(path, &out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: &str = r#"// Production.
Site(
    name: "prod",
    moodle: (version: "4.5"),
    plugins: {
        // Attendance, from the directory.
        "mod_attendance": (),
        /* Mail test, pinned */
        "local_mailtest": (git: "https://example.org/mailtest.git",
                           ref: "v3.1.7"), // keep: checked by hand
        "block_xp": (version: "18.0")
    },
)
"#;

    fn p() -> &'static Path {
        Path::new("site.ron")
    }

    #[test]
    fn add_keeps_comments_and_indent() {
        let out = add_plugin(
            p(),
            SITE,
            "filter_x",
            Some(&NewSource::Git {
                url: "https://example.org/x.git".into(),
                reference: None,
            }),
            None,
        )
        .unwrap();
        assert!(out.contains("        \"block_xp\": (version: \"18.0\"),\n        \"filter_x\": (git: \"https://example.org/x.git\"),\n    },"), "{out}");
        assert!(out.contains("// keep: checked by hand"));
        assert!(out.starts_with("// Production.\n"));
        let site = SiteFile::parse(p(), &out).unwrap();
        assert_eq!(site.plugins.len(), 4);
        assert!(add_plugin(p(), &out, "filter_x", None, None).is_err());
    }

    #[test]
    fn add_to_an_empty_map_on_one_line() {
        let text = "Site(name: \"a\", moodle: (version: \"4.5\"), plugins: {})\n";
        let out = add_plugin(p(), text, "mod_a", None, Some("1.2")).unwrap();
        assert_eq!(
            out,
            "Site(name: \"a\", moodle: (version: \"4.5\"), plugins: { \"mod_a\": (version: \"1.2\"), })\n"
        );
        let out = add_plugin(p(), &out, "mod_b", None, None).unwrap();
        assert_eq!(SiteFile::parse(p(), &out).unwrap().plugins.len(), 2);
    }

    #[test]
    fn a_typo_finds_the_name_meant() {
        let names = ["block_xp", "mod_attendance", "filter_embedquestion"];
        assert_eq!(did_you_mean("block_xpp", &names), Some("block_xp"));
        assert_eq!(
            did_you_mean("mod_atendance", &names),
            Some("mod_attendance")
        );
        assert_eq!(did_you_mean("local_nope", &names), None);
    }

    #[test]
    fn add_changes_an_entry_in_place_and_pins_keep_the_source() {
        let git = NewSource::Git {
            url: "https://example.org/xp.git".into(),
            reference: Some("v19.0".into()),
        };
        let out = add_plugin(p(), SITE, "block_xp", Some(&git), None).unwrap();
        assert!(
            out.contains("\"block_xp\": (git: \"https://example.org/xp.git\", ref: \"v19.0\")\n"),
            "{out}"
        );
        assert_eq!(out.matches("block_xp").count(), 1);
        // A version alone keeps the source and its comment.
        let out = pin_plugin(p(), SITE, "local_mailtest", "2024010100").unwrap();
        assert!(
            out.contains("ref: \"v3.1.7\", version: \"2024010100\"), // keep: checked by hand"),
            "{out}"
        );
        let out = pin_plugin(p(), &out, "local_mailtest", "2024020200").unwrap();
        assert!(out.contains("version: \"2024020200\")"), "{out}");
        assert!(!out.contains("2024010100"), "{out}");
        let out = pin_plugin(p(), SITE, "mod_attendance", "3.0").unwrap();
        assert!(
            out.contains("\"mod_attendance\": (version: \"3.0\"),"),
            "{out}"
        );
        let out = pin_moodle(p(), SITE, "4.5.3").unwrap();
        assert!(out.contains("moodle: (version: \"4.5.3\"),"), "{out}");
        assert!(add_plugin(p(), SITE, "block_xp", None, None).is_err());
    }

    #[test]
    fn remove_takes_the_entry_only() {
        let out = remove_plugin(p(), SITE, "mod_attendance").unwrap();
        assert!(out.contains("plugins: {\n        /* Mail"), "{out}");
        assert!(!out.contains("mod_attendance"));
        assert!(!out.contains("Attendance, from the directory"));
        assert!(out.contains("/* Mail test, pinned */"));
        let out = remove_plugin(p(), &out, "local_mailtest").unwrap();
        assert!(!out.contains("mailtest.git"), "{out}");
        assert!(!out.contains("Mail test"), "{out}");
        assert!(out.starts_with("// Production.\n"), "{out}");
        let e = remove_plugin(p(), SITE, "block_xpp").unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("did you mean block_xp?"));
        let out = remove_plugin(p(), &out, "block_xp").unwrap();
        let site = SiteFile::parse(p(), &out).unwrap();
        assert!(site.plugins.is_empty());
        assert!(out.contains("// Production."));
        assert!(remove_plugin(p(), &out, "block_xp").is_err());
    }

    #[test]
    fn the_starter_parses() {
        let site = SiteFile::parse(p(), &starter("prod", "4.5", None)).unwrap();
        assert_eq!(site.name, "prod");
        assert!(site.plugins.is_empty());
    }
}
