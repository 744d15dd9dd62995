/// The stages of a realise, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Resolve,
    Fetch,
    Compose,
    Commit,
    Materialise,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Resolve => "resolve",
            Stage::Fetch => "fetch",
            Stage::Compose => "compose",
            Stage::Commit => "commit",
            Stage::Materialise => "materialise",
        }
    }
}

/// How the pipeline tells its caller what it is doing. The CLI draws progress bars and
/// prints warnings; tests and libraries can stay silent.
pub trait Reporter: Sync {
    /// A stage starts; `detail` says on what (a component, a URL).
    fn stage(&self, _stage: Stage, _detail: &str) {}
    /// Work with a known size starts (files to lay out).
    fn total(&self, _n: u64) {}
    /// One unit of that work is done.
    fn advance(&self) {}
    /// Something the user should read, that does not stop the run.
    fn warn(&self, _message: &str) {}
}

/// A reporter that says nothing.
pub struct Silent;

impl Reporter for Silent {}
