//! What a file of a source is: a plain file, an executable one, or a symlink. Manifests
//! record it; the listing rule checks it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EntryKind {
    File,
    Exec,
    /// The object holds the link target.
    Symlink,
}
