//! Progress events: libraries report, the frontend decides how (and whether) to draw.
//! Creating a function (pull, extract, package, push) reports through [`Progress`].

/// What the library is busy with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Bringing blobs into the cache (download or archive copy).
    Pull,
    /// Applying layers onto a root directory.
    Extract,
    /// Building a package (the `image` package's layer and archive, the `zip` package).
    Package,
    /// Uploading an image package's blobs to a registry.
    Push,
    /// Gzipping layers that arrived uncompressed (`docker save` archives).
    Compress,
    /// Waiting for an AWS Batch job; [`Progress::status`] gives each state it reaches.
    Job,
}

/// Receives progress events. Every method has a no-op default.
pub trait Progress: Send + Sync {
    /// A phase begins; `total_bytes` is known for downloads and extraction.
    fn start(&self, _phase: Phase, _total_bytes: Option<u64>) {}
    /// `bytes` more bytes were fetched (pull), read (extract), packaged or uploaded (push).
    fn advance(&self, _bytes: u64) {}
    /// A blob is ready in the cache; `cached` says it was already there (nothing fetched).
    /// When pushing: `cached` says the registry already had it (nothing uploaded).
    fn blob(&self, _digest: &str, _cached: bool) {}
    /// Where a wait stands (an AWS Batch job's state: `job <id>: RUNNABLE`).
    fn status(&self, _status: &str) {}
    /// The current phase ended.
    fn finish(&self) {}
    /// Something the user should know about (e.g. a summary of what extraction dropped).
    fn warn(&self, _msg: &str) {}
    /// A detail behind a warning (e.g. one skipped device node), for who asked for them.
    fn note(&self, _msg: &str) {}
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}
