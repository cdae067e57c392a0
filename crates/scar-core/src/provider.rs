//! The provider traits: what every provider (`local`, `aws`) does with functions, so that
//! frontends are written once against them.

use std::future::Future;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::ProviderKind;
use crate::event::{Payload, Response};
use crate::{ErrorCategory, FunctionSpec};

/// Where a function's image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageInput {
    /// `-i`: a registry reference, or the path of an OCI layout directory.
    Reference(String),
    /// `-if`: a `docker save` or OCI archive.
    Archive(PathBuf),
}

/// A function as a provider lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionInfo {
    pub spec: FunctionSpec,
    pub provider: ProviderKind,
    /// The package kind: `root` (local, no package), `image` or `zip`.
    pub package: String,
    /// The image's manifest digest.
    pub image_digest: String,
    /// When the function was created (RFC 3339).
    pub created: String,
}

/// Which log lines to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogQuery {
    /// Only this stream.
    pub stream: Option<String>,
    /// Only this invocation: its START..REPORT slice.
    pub request_id: Option<String>,
}

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub stream: String,
    pub message: String,
}

/// An error a provider reports, classified for the exit status.
pub trait ProviderError: std::error::Error + Send + Sync + 'static {
    /// The user-facing category.
    fn category(&self) -> ErrorCategory;
}

/// What every provider does with functions. Creating a function differs enough between
/// providers (progress, packages) that it lives on each provider's own type.
pub trait Provider {
    type Error: ProviderError;

    /// The functions this provider holds.
    fn list(&self) -> impl Future<Output = Result<Vec<FunctionInfo>, Self::Error>> + Send;

    /// Invokes a function synchronously and returns its response.
    fn invoke(
        &self,
        name: &str,
        payload: &Payload,
    ) -> impl Future<Output = Result<Response, Self::Error>> + Send;

    /// Removes a function and everything it made.
    fn remove(&self, name: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Reads a function's log lines.
    fn logs(
        &self,
        name: &str,
        query: &LogQuery,
    ) -> impl Future<Output = Result<Vec<LogLine>, Self::Error>> + Send;
}

/// `log -ri ID` found no lines for that invocation: it has not run (yet), ran elsewhere,
/// or its logs expired. Bad input (exit status 2) on every provider.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("no log lines for request {request_id} of function '{function}': it may not have run yet, or its logs have expired")]
pub struct NoLogLines {
    pub function: String,
    pub request_id: String,
}

impl ProviderError for NoLogLines {
    fn category(&self) -> ErrorCategory {
        ErrorCategory::Usage
    }
}
