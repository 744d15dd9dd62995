//! The machine a codebase would run on, as Moodle's environment check sees it: PHP's
//! version and extensions (the `php` on the PATH) and the database server mcb's tests
//! would use (the newest PostgreSQL installed).

use mcb_exec::Program;
use mcb_moodle::Host;

/// This machine's facts; what cannot be asked is left unknown.
pub fn probe() -> Host {
    let php = Program::new("php")
        .args(["-r", "echo PHP_VERSION;"])
        .run()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|v| !v.is_empty());
    let extensions = php.as_ref().and_then(|_| {
        let out = Program::new("php").arg("-m").run().ok()?;
        Some(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| l.trim().to_ascii_lowercase())
                .filter(|l| !l.is_empty() && !l.starts_with('['))
                .collect(),
        )
    });
    Host {
        php,
        extensions,
        database: mcb_database::installed_version().map(|v| ("postgres".to_string(), v)),
    }
}
