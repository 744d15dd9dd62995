//! The health check: the site's page, through the web server that serves `current`, answers
//! 200 with the text it must hold, within the time the site file gives.

use std::time::{Duration, Instant};

use mcb_config::Health;

/// Asks `health.url` until it answers 200 with `health.contains`, or the time is up; `Err`
/// says what it answered last.
pub(crate) fn check(health: &Health) -> Result<String, String> {
    mcb_git::tls::install_crypto_provider();
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(health.within_seconds.into());
    let mut last;
    loop {
        let started = Instant::now();
        last = match client.get(&health.url).send() {
            Ok(r) => {
                let status = r.status();
                // A page is read up to 4 MiB: enough for any login page.
                let body = r
                    .bytes()
                    .map(|b| String::from_utf8_lossy(&b[..b.len().min(4 << 20)]).into_owned())
                    .unwrap_or_default();
                if status.as_u16() == 200 && body.contains(&health.contains) {
                    return Ok(format!(
                        "{} answered 200 with \"{}\"",
                        health.url, health.contains
                    ));
                }
                if status.as_u16() == 200 {
                    format!(
                        "{} answered 200 without \"{}\"",
                        health.url, health.contains
                    )
                } else {
                    format!("{} answered {status}: {}", health.url, page_text(&body))
                }
            }
            Err(e) => format!("{} did not answer: {}", health.url, without_url(&e)),
        };
        if Instant::now() >= deadline {
            return Err(format!("{last} (asked for {} s)", health.within_seconds));
        }
        std::thread::sleep(Duration::from_millis(500).saturating_sub(started.elapsed()));
    }
}

/// reqwest's error, its URL left out (the message names it once).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(&format!(" ({u})"), "").replace(u.as_str(), "");
    }
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

/// The words of a page, its tags left out, the first 160 characters: what the site said.
fn page_text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(if c.is_whitespace() { ' ' } else { c }),
            _ => {}
        }
    }
    let words: Vec<&str> = out.split_whitespace().collect();
    let text = words.join(" ");
    match text.char_indices().nth(160) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}
