//! The local provider's errors.

use std::path::PathBuf;

use scar_core::Categorized;
use scar_core::ErrorCategory;

/// What went wrong on the local provider.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalError {
    #[error(transparent)]
    Spec(#[from] scar_core::SpecError),
    #[error(transparent)]
    Image(#[from] scar_packager::PackagerError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the state file {path} is damaged: {why}")]
    State { path: PathBuf, why: String },
    #[error("cannot start a sandbox for {function:?}: {source}{hint}")]
    Sandbox {
        function: String,
        hint: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the sandbox of {function:?} stopped during invocation {request_id} ({status}): see `scar log -n {function} -ri {request_id}`")]
    SandboxDied {
        function: String,
        request_id: String,
        status: String,
    },
    #[error("invocation {request_id} of {function:?} got no answer within its timeout: the sandbox was stopped")]
    NoAnswer {
        function: String,
        request_id: String,
    },
    #[error("the supervisor of {function:?} failed invocation {request_id}: {message}")]
    Supervisor {
        function: String,
        request_id: String,
        message: String,
    },
    #[error("function {0:?} runs its image's own Runtime API client (`--runtime-client image`), and its image has no ENTRYPOINT or CMD to run: use a Lambda container image, or leave out `--runtime-client image`")]
    NoRuntime(String),
    #[error("cannot invoke {function:?}: {message}")]
    PayloadTooLarge { function: String, message: String },
    #[error("no usable supervisor (`bootstrap`): {0}")]
    NoSupervisor(String),
    #[error(transparent)]
    Bucket(#[from] scar_core::bucket::BucketError),
    #[error("bucket {0:?} does not exist: `scar init -es {0}` creates it with a function, `scar ls -b` lists buckets")]
    NoBucket(String),
    #[error("invalid object key {0:?}")]
    Key(String),
    #[error("cannot list storage provider {storage}: {source}")]
    ListProvider {
        storage: String,
        #[source]
        source: Box<scar_s3::ListError>,
    },
    #[error("cannot read {path}: {source}")]
    Input {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot watch the input folders: {0}")]
    Watch(String),
    #[error(transparent)]
    Surface(#[from] scar_core::provider::SurfaceError),
    #[error("function {0:?} is being served by another scar process (`scar serve` or a launcher): let it finish, or stop it first")]
    Busy(String),
    #[error("in bucket {bucket:?}, {key:?} leads out of the bucket through a symlink (a function can write symlinks into its buckets): scar does not follow it; remove the symlink")]
    Escapes { bucket: String, key: String },
    /// An invocation handed to a running `scar serve` failed there (see `handoff`).
    #[error("{message}")]
    Served {
        category: ErrorCategory,
        message: String,
    },
}

impl LocalError {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> LocalError {
        let path = path.into();
        move |source| LocalError::Io { what, path, source }
    }
}

impl Categorized for LocalError {
    fn surface(&self) -> Option<&scar_core::provider::SurfaceError> {
        match self {
            LocalError::Surface(e) => Some(e),
            _ => None,
        }
    }

    fn category(&self) -> ErrorCategory {
        match self {
            LocalError::Spec(_)
            | LocalError::Surface(_)
            | LocalError::Bucket(_)
            | LocalError::NoBucket(_)
            | LocalError::Key(_)
            | LocalError::Input { .. }
            | LocalError::Busy(_)
            | LocalError::Escapes { .. }
            | LocalError::NoRuntime(_)
            | LocalError::PayloadTooLarge { .. } => ErrorCategory::Usage,
            // The function's process died or ran past its deadline: on Lambda, a function
            // error too (Runtime.ExitError, a timeout), so exit 1 on both providers.
            LocalError::SandboxDied { .. } | LocalError::NoAnswer { .. } => ErrorCategory::Function,
            LocalError::Image(e) => e.category(),
            LocalError::Supervisor { .. } => ErrorCategory::Function,
            LocalError::NoSupervisor(_) => ErrorCategory::Usage,
            LocalError::Served { category, .. } => *category,
            _ => ErrorCategory::Provider,
        }
    }
}
