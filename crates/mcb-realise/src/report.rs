/// The stages of a run, in the order a realise goes through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Choosing versions: refs fetched, `version.php` files read.
    Plan,
    /// Sources brought into the store.
    Fetch,
    /// The codebase's git tree.
    Compose,
    /// The commit that records it.
    Commit,
    /// The generation laid out.
    Materialise,
    /// Branch, lock and `result` moved.
    Publish,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Plan => "plan",
            Stage::Fetch => "fetch",
            Stage::Compose => "compose",
            Stage::Commit => "commit",
            Stage::Materialise => "materialise",
            Stage::Publish => "publish",
        }
    }
}

/// How a run tells its caller what it is doing. The CLI draws progress and prints
/// warnings; tests and libraries can stay silent. Transfers (git fetches, downloads) are
/// watched through [`mcb_catalog::TransferWatch`].
pub trait Reporter: mcb_catalog::TransferWatch {
    /// A stage starts; `detail` says on what (a component, a URL).
    fn stage(&self, _stage: Stage, _detail: &str) {}
    /// Work with a known size starts (files to lay out).
    fn total(&self, _n: u64) {}
    /// One unit of that work is done.
    fn advance(&self) {}
    /// Something the user should read, that does not stop the run.
    fn warn(&self, _message: &str) {}
    /// What a run decided and why, for who asks (`-v`).
    fn detail(&self, _message: &str) {}
}

/// A reporter that says nothing.
pub struct Silent;

impl Reporter for Silent {}

impl mcb_catalog::TransferWatch for Silent {}
