//! The local provider's errors.

use std::path::PathBuf;

use scar_core::provider::ProviderError;
use scar_core::ErrorCategory;

/// What went wrong on the local provider.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(transparent)]
    Spec(#[from] scar_core::SpecError),
    #[error("function {0:?} already exists: remove it first with `scar rm -n {0}`, or pick another name")]
    Exists(String),
    #[error("function {0:?} not found: `scar ls` lists the functions")]
    NotFound(String),
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
    #[error("no usable supervisor (`bootstrap`): {0}")]
    NoSupervisor(String),
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

impl ProviderError for LocalError {
    fn category(&self) -> ErrorCategory {
        match self {
            LocalError::Spec(_) | LocalError::Exists(_) | LocalError::NotFound(_) => {
                ErrorCategory::Usage
            }
            LocalError::Image(e) => e.category(),
            LocalError::Supervisor { .. } => ErrorCategory::Function,
            LocalError::NoSupervisor(_) => ErrorCategory::Usage,
            _ => ErrorCategory::Provider,
        }
    }
}
