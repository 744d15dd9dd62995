/// Why a binary cache could not give or take a package. Every one of them leaves the local
/// store as it was; a reader then fetches from upstream.
#[derive(Debug, thiserror::Error)]
pub enum SubstituteError {
    #[error("{0}")]
    Key(String),
    #[error("'{url}' is not a binary cache: {why}")]
    BadUrl { url: String, why: String },
    #[error("cache {cache}: {what}: {source}")]
    Remote {
        cache: String,
        what: String,
        #[source]
        source: Box<object_store::Error>,
    },
    /// The cache answered, and what it gave is not what was asked for.
    #[error("cache {cache}: {what}")]
    Refused { cache: String, what: String },
    #[error("the local store: {0}")]
    Store(#[from] mcb_store::StoreError),
    #[error("the store's git: {0}")]
    Git(String),
    #[error("cannot start the cache's client: {0}")]
    Runtime(std::io::Error),
}
