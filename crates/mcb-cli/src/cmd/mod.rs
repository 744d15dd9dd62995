//! One module per subcommand: each runs its operation and presents the outcome, as text or
//! as its JSON document.

pub mod check;
pub mod gc;
pub mod info;
pub mod realise;
pub mod reproduce;
pub mod verify;

/// `n thing` or `n things`.
pub(crate) fn plural(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("{n} {thing}")
    } else {
        format!("{n} {thing}s")
    }
}
