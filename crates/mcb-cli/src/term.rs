//! Writing to the terminal safely. Text mcb prints can hold what upstreams wrote (release
//! names, paths, server messages): control characters are escaped so no escape sequence
//! reaches the terminal. Colour is mcb's own, added after that: on a terminal, off when
//! piped, `--color`, `NO_COLOR` honoured (anstream decides). A closed pipe (`mcb … | head`)
//! ends mcb quietly, as other command-line tools do, instead of a panic.

use std::io::Write;

/// `text` with control characters other than newline and tab escaped.
pub(crate) fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// `--color`: when to colour what mcb prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ColorWhen {
    Auto,
    Always,
    Never,
}

/// Sets the colour choice for the whole run.
pub(crate) fn set_color(when: ColorWhen) {
    let choice = match when {
        ColorWhen::Auto => anstream::ColorChoice::Auto,
        ColorWhen::Always => anstream::ColorChoice::Always,
        ColorWhen::Never => anstream::ColorChoice::Never,
    };
    choice.write_global();
}

const RED: anstyle::Style = anstyle::AnsiColor::Red.on_default().bold();
const YELLOW: anstyle::Style = anstyle::AnsiColor::Yellow.on_default().bold();
const GREEN: anstyle::Style = anstyle::AnsiColor::Green.on_default();
const CYAN: anstyle::Style = anstyle::AnsiColor::Cyan.on_default().bold();
const DIM: anstyle::Style = anstyle::Style::new().dimmed();

/// Words that warn, wherever they stand in a line.
const ALARMS: [(&str, anstyle::Style); 5] = [
    ("DANGER", RED),
    ("DOWNGRADE", RED),
    ("BLOCKS", RED),
    ("FAILED", RED),
    ("NOT RECOGNISED", RED),
];

/// `line` (already cleaned) with mcb's colours: the kind of a diagnostic, the mark of a
/// planned change, and alarm words. anstream strips them where colour is off.
fn paint(line: &str) -> String {
    let prefixes: [(&str, anstyle::Style); 5] = [
        ("error:", RED),
        ("warning:", YELLOW),
        ("hint:", CYAN),
        ("caused by:", DIM),
        ("note:", DIM),
    ];
    for (p, style) in prefixes {
        if let Some(rest) = line.strip_prefix(p) {
            return format!("{style}{p}{style:#}{rest}");
        }
    }
    let marks: [(&str, anstyle::Style); 4] =
        [("+ ", GREEN), ("- ", RED), ("! ", RED), ("~ ", YELLOW)];
    let indent = line.len() - line.trim_start_matches(' ').len();
    let (lead, body) = line.split_at(indent);
    let mut out = match marks
        .iter()
        .find(|(m, _)| indent > 0 && body.starts_with(m))
    {
        Some((m, style)) => format!("{lead}{style}{}{style:#}{}", m.trim_end(), &body[1..]),
        None => line.to_string(),
    };
    for (word, style) in ALARMS {
        out = out.replace(word, &format!("{style}{word}{style:#}"));
    }
    out
}

/// Each line of `text`, painted.
fn painted(text: &str) -> String {
    text.lines().map(paint).collect::<Vec<_>>().join("\n")
}

fn write_or_exit(mut w: impl Write, text: &str) {
    if let Err(e) = w.write_all(text.as_bytes()).and_then(|()| w.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        // Nowhere left to say it.
        std::process::exit(1);
    }
}

/// Prints a line of human text on stdout.
pub(crate) fn out_line(text: &str) {
    write_or_exit(
        anstream::stdout().lock(),
        &format!("{}\n", painted(&clean(text))),
    );
}

/// Prints a line of human text on stderr.
pub(crate) fn err_line(text: &str) {
    write_or_exit(
        anstream::stderr().lock(),
        &format!("{}\n", painted(&clean(text))),
    );
}

/// A command's outcome that is a failure without being an error of mcb's (damage found, a
/// test failed, a tree that does not reproduce): `error: …` on stderr, whatever `-q` and
/// `--json` say, so no failing exit is ever silent.
pub(crate) fn failed(text: &str) {
    err_line(&format!("error: {text}"));
}

/// What to try after [`failed`], on stderr.
pub(crate) fn hint(text: &str) {
    err_line(&format!("hint: {text}"));
}

/// The version of every JSON document mcb prints: a change in a command's schema that
/// drops or changes a field raises it.
pub(crate) const JSON_FORMAT: u32 = 1;

/// Prints one JSON document on stdout (JSON escapes control characters itself).
pub(crate) fn out_json_doc(value: &serde_json::Value) {
    let mut value = value.clone();
    if let Some(obj) = value.as_object_mut() {
        obj.insert("format".into(), JSON_FORMAT.into());
    }
    write_or_exit(std::io::stdout().lock(), &format!("{value}\n"));
}

/// Prints a command's output as its JSON document.
pub(crate) fn out_json<T: serde::Serialize>(body: &T) {
    out_json_doc(&serde_json::to_value(body).expect("outputs are plain data"));
}

/// `println!` for human text, cleaned.
macro_rules! say {
    ($($t:tt)*) => { $crate::term::out_line(&format!($($t)*)) };
}

pub(crate) use say;

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_control_characters() {
        assert_eq!(
            super::clean("a\u{1b}[2Jb\nc\td\u{7}"),
            "a\\u{1b}[2Jb\nc\td\\u{7}"
        );
    }
}
