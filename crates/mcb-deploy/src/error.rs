//! Why a push or a deploy failed.

use std::path::PathBuf;

use mcb_realise::ErrorKind;

/// What a deploy or push looked for and did not find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absent {
    /// The site, in the store or on the remote.
    Site,
    /// The generation named.
    Generation,
    /// A deployed release at `DIR/current`.
    Release,
    /// A release before the current one.
    EarlierRelease,
}

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The store, its git repository, the site's generations.
    #[error(transparent)]
    Run(#[from] mcb_realise::RealiseError),
    /// A remote mcb does not give git (a remote helper, an option, an unknown transport).
    #[error(transparent)]
    Remote(#[from] mcb_git::program::RemoteRefused),
    /// Nothing of that name where it was looked for.
    #[error("{message}")]
    Unknown { message: String, about: Absent },
    /// The generation's recorded `mcb test` failed.
    #[error("generation {} of site {site} failed its `mcb test`: deploy refuses it", &commit.as_str()[..12])]
    TestFailed {
        site: String,
        commit: mcb_store::GitOid,
    },
    /// The remote's branch has commits this store lacks.
    #[error(
        "{remote} has commits on branch {site} that this store does not: it has diverged ({summary})"
    )]
    Diverged {
        remote: String,
        site: String,
        summary: String,
    },
    /// The remote holds a generation tag on another commit.
    #[error(
        "{remote} has tag {tag} on another commit: its history of site {site} is not this store's"
    )]
    TagElsewhere {
        remote: String,
        site: String,
        tag: String,
    },
    /// The remote refused a ref for another reason than divergence.
    #[error("{remote} refused {reference}: {summary}")]
    Refused {
        remote: String,
        reference: String,
        summary: String,
    },
    /// git could not push or fetch (the remote unreachable, access denied).
    #[error("{what}")]
    Transfer {
        what: String,
        #[source]
        source: mcb_git::GitError,
    },
    /// Something else than what mcb makes stands where a deploy puts its entries.
    #[error("{} is {found}, not what mcb makes there ({wanted})", path.display())]
    NotOurs {
        path: PathBuf,
        found: &'static str,
        wanted: &'static str,
    },
    /// A file of the deploy directory could not be used.
    #[error("{message}")]
    Filesystem {
        message: String,
        #[source]
        source: std::io::Error,
    },
}

impl DeployError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            DeployError::Run(e) => e.kind(),
            DeployError::Remote(_) | DeployError::Unknown { .. } => ErrorKind::Usage,
            DeployError::Diverged { .. } | DeployError::TagElsewhere { .. } => ErrorKind::Config,
            DeployError::TestFailed { .. } => ErrorKind::Pending,
            DeployError::Refused { .. }
            | DeployError::Transfer { .. }
            | DeployError::NotOurs { .. }
            | DeployError::Filesystem { .. } => ErrorKind::Failure,
        }
    }
}

impl From<mcb_store::StoreError> for DeployError {
    fn from(e: mcb_store::StoreError) -> DeployError {
        DeployError::Run(e.into())
    }
}

impl From<mcb_git::GitError> for DeployError {
    fn from(e: mcb_git::GitError) -> DeployError {
        DeployError::Run(e.into())
    }
}

pub(crate) fn fs_error(message: String, source: std::io::Error) -> DeployError {
    DeployError::Filesystem { message, source }
}
