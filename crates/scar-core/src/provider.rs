//! The provider surface: everything a provider (`local`, `aws`) does, so that frontends are
//! written once against [`Provider`], and the types its commands take and return.
//!
//! A provider that cannot do something says so with [`Unsupported`] (exit status 2),
//! never by ignoring a flag.

use std::future::Future;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bucket::BucketPath;
use crate::config::ProviderKind;
use crate::event::{Payload, Response};
use crate::progress::Progress;
use crate::{Categorized, ErrorCategory, FunctionSpec};

/// Where a function's image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageInput {
    /// `-i`: a registry reference, or the path of an OCI layout directory.
    Reference(String),
    /// `-if`: a `docker save` or OCI archive.
    Archive(PathBuf),
}

/// What a function is deployed as: an `image` or a `zip` package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageKind {
    /// The image plus a layer with the supervisor (pushed to ECR on AWS).
    Image,
    /// SCAR's zip: `bootstrap` and a udocker tree, under Lambda's 250 MB.
    Zip,
}

impl PackageKind {
    /// The kind as users name it (`--package image|zip`).
    pub fn as_str(self) -> &'static str {
        match self {
            PackageKind::Image => "image",
            PackageKind::Zip => "zip",
        }
    }

    /// What a deployment's package is called where it may have none (`ls`): `root`, the
    /// image root as it is, when `None`.
    pub fn name_or_root(kind: Option<PackageKind>) -> &'static str {
        kind.map_or("root", PackageKind::as_str)
    }
}

impl std::str::FromStr for PackageKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "image" => Ok(PackageKind::Image),
            "zip" => Ok(PackageKind::Zip),
            other => Err(format!("unknown package `{other}`: `image` or `zip`")),
        }
    }
}

/// [`FunctionInfo::package`] as users read it: `root`, `image` or `zip`.
mod package_or_root {
    use super::PackageKind;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(kind: &Option<PackageKind>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(PackageKind::name_or_root(*kind))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PackageKind>, D::Error> {
        let name = String::deserialize(d)?;
        match name.as_str() {
            "root" => Ok(None),
            other => other.parse().map(Some).map_err(serde::de::Error::custom),
        }
    }
}

/// What [`Provider::create`] makes: [`CreateRequest::new`], then its setters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CreateRequest {
    /// The function, validated by the provider before anything is pulled.
    pub spec: FunctionSpec,
    pub image: ImageInput,
    /// The package; `None`: the provider's default (local: the image root as it is; aws:
    /// `image`).
    pub package: Option<PackageKind>,
    /// AWS: a bucket for zips over Lambda's direct upload limit (`-db`).
    pub deployment_bucket: Option<String>,
}

impl CreateRequest {
    /// `spec` from `image`, as the provider's default package, with no deployment bucket.
    pub fn new(spec: FunctionSpec, image: ImageInput) -> CreateRequest {
        CreateRequest {
            spec,
            image,
            package: None,
            deployment_bucket: None,
        }
    }

    /// Deployed as `package` (`None`: the provider's default).
    pub fn with_package(mut self, package: Option<PackageKind>) -> Self {
        self.package = package;
        self
    }

    /// AWS: zips over Lambda's direct upload limit go through `bucket`.
    pub fn with_deployment_bucket(mut self, bucket: Option<String>) -> Self {
        self.deployment_bucket = bucket;
        self
    }
}

/// A function as a provider lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionInfo {
    pub spec: FunctionSpec,
    pub provider: ProviderKind,
    /// The package it was deployed as; `None`: no package, the image root as it is (the
    /// local provider's default), shown as `root`.
    #[serde(with = "package_or_root")]
    pub package: Option<PackageKind>,
    /// The image's manifest digest.
    pub image_digest: String,
    /// When the function was created (RFC 3339).
    pub created: String,
    /// Who created it, where several identities share a provider (AWS: the caller's ARN,
    /// its `owner` tag); `None` (`null`, the same keys on every provider) where the provider
    /// has one owner (local) or the function records none (made before owners were
    /// recorded).
    #[serde(default)]
    pub owner: Option<String>,
    /// The URL that takes HTTP requests to the function, for a function with an API
    /// Gateway ([`FunctionSpec::api_gateway`]): on AWS, its REST API's stage `scar`
    /// (`https://<api id>.execute-api.<region>.amazonaws.com/scar/launch`, SCAR's; with an
    /// endpoint override, the emulator's `<endpoint>/restapis/<api id>/scar/_user_request_/launch`);
    /// locally the route of the `scar serve` that is running; `None` (`null`) otherwise.
    #[serde(default)]
    pub api_url: Option<String>,
    /// The version of the supervisor (`bootstrap`) the function was created with, read
    /// from the binary's version marker ([`crate::supervisor_version_in`]): tells an old
    /// function from a new one. `None` (`null`): a supervisor without a marker, a function
    /// created before it was recorded, or a provider that does not record it (AWS, for now).
    #[serde(default)]
    pub supervisor_version: Option<String>,
}

/// The functions a [`Listing`] left out because they are not known to be the caller's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftOut {
    /// Another identity's.
    pub other_owners: usize,
    /// With no owner recorded (made before owners were recorded).
    pub no_owner: usize,
}

impl LeftOut {
    /// How many in all.
    pub fn total(&self) -> usize {
        self.other_owners + self.no_owner
    }
}

/// The caller's functions ([`Provider::list`]), and how many others it left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub functions: Vec<FunctionInfo>,
    pub left_out: LeftOut,
}

/// A synchronous invocation's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The supervisor's response (the script's output, exit code, outputs uploaded).
    pub response: Response,
    /// The end of the invocation's log (Lambda's `LogType: Tail`), when the provider has it.
    pub log_tail: Option<String>,
}

/// A launch: the function once for every object in its bucket's input folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchRequest {
    pub function: String,
    /// The bucket; it must be the function's.
    pub bucket: String,
    /// Invocations at once; `None`: [`Provider::default_concurrency`].
    pub concurrency: Option<usize>,
    /// Only objects whose last run failed or timed out.
    pub only_failed: bool,
    /// Only objects not processed yet in their current version.
    pub pending_only: bool,
}

impl LaunchRequest {
    /// Every object of `bucket`'s input folder, at the provider's default concurrency.
    pub fn new(function: impl Into<String>, bucket: impl Into<String>) -> LaunchRequest {
        LaunchRequest {
            function: function.into(),
            bucket: bucket.into(),
            concurrency: None,
            only_failed: false,
            pending_only: false,
        }
    }
}

/// How one object's invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed,
    TimedOut,
    /// Accepted for an asynchronous run (AWS: HTTP 202); its result is in the logs.
    Queued,
    /// The invocation could not be made (an error, after retries).
    NotInvoked,
    /// Not run: the chain of events that led to it is a recursive loop
    /// ([`crate::lambda::MAX_CHAIN_INVOCATIONS`]).
    LoopStopped,
}

impl Outcome {
    /// How the invocation that answered `response` ended.
    pub fn of(response: &Response) -> Outcome {
        if response.timed_out() {
            Outcome::TimedOut
        } else if response.succeeded() {
            Outcome::Succeeded
        } else {
            Outcome::Failed
        }
    }

    /// Succeeded, or accepted to run.
    pub fn ok(self) -> bool {
        matches!(self, Outcome::Succeeded | Outcome::Queued)
    }
}

/// One object's invocation, in a launch or after a `put`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileResult {
    /// The function that ran, when the result is one of a chain's (outputs of one
    /// function that triggered the next); `None`: the function the command named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// The object's bucket, beside `function`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// The object key, as stored.
    pub key: String,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Empty when the invocation could not be made.
    pub request_id: String,
    /// Output keys written.
    #[serde(default)]
    pub uploaded: Vec<String>,
    /// The end of the output, for failed invocations.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output_tail: String,
    /// Why the invocation could not run, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Attempts made (more than 1 when throttled and retried).
    #[serde(default = "one")]
    pub attempts: u32,
}

fn one() -> u32 {
    1
}

/// How much of a failed invocation's output a [`FileResult`] keeps: its last lines, and
/// of those at most this many bytes.
pub const OUTPUT_TAIL_LINES: usize = 20;
/// See [`OUTPUT_TAIL_LINES`].
pub const OUTPUT_TAIL_BYTES: usize = 2000;

/// The end of `text`: its last [`OUTPUT_TAIL_LINES`] lines, at most [`OUTPUT_TAIL_BYTES`]
/// bytes of them (cut at a character boundary).
pub fn output_tail(text: &str) -> String {
    let trimmed = text.trim_end_matches('\n');
    let mut start = trimmed.len();
    for _ in 0..OUTPUT_TAIL_LINES {
        match trimmed[..start].rfind('\n') {
            Some(i) => start = i,
            None => {
                start = 0;
                break;
            }
        }
    }
    let mut tail = trimmed[start..].trim_start_matches('\n');
    if tail.len() > OUTPUT_TAIL_BYTES {
        let mut cut = tail.len() - OUTPUT_TAIL_BYTES;
        while !tail.is_char_boundary(cut) {
            cut += 1;
        }
        tail = &tail[cut..];
    }
    tail.to_string()
}

impl FileResult {
    /// The result of `key`'s invocation that answered `response`: the same on every
    /// provider (its outcome, the end of a failed run's output, a function error's type
    /// and message as `error`).
    pub fn from_response(key: impl Into<String>, response: Response) -> FileResult {
        let outcome = Outcome::of(&response);
        let output_tail = if outcome == Outcome::Succeeded {
            String::new()
        } else {
            output_tail(&String::from_utf8_lossy(&response.output_bytes()))
        };
        FileResult {
            exit_code: response.exit_code(),
            error: response
                .function_error()
                .map(|e| format!("{}: {}", e.error_type, e.error_message)),
            request_id: response.request_id,
            uploaded: response.uploaded,
            output_tail,
            ..FileResult::new(key, outcome)
        }
    }

    /// `key`'s invocation ended in `error` instead of a response: a function error (its
    /// process died, it never answered) is [`Outcome::Failed`]; anything else means the
    /// invocation could not be made, [`Outcome::NotInvoked`].
    pub fn from_error(key: impl Into<String>, error: &dyn Categorized) -> FileResult {
        let outcome = match error.category() {
            ErrorCategory::Function => Outcome::Failed,
            _ => Outcome::NotInvoked,
        };
        FileResult {
            error: Some(error.to_string()),
            ..FileResult::new(key, outcome)
        }
    }

    /// `key`'s result with `outcome` and nothing else known yet (one attempt).
    pub fn new(key: impl Into<String>, outcome: Outcome) -> FileResult {
        FileResult {
            function: None,
            bucket: None,
            key: key.into(),
            outcome,
            exit_code: None,
            request_id: String::new(),
            uploaded: Vec::new(),
            output_tail: String::new(),
            error: None,
            attempts: 1,
        }
    }
}

/// Progress of a launch (and of the runs a `put` causes), for the frontend to draw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchEvent {
    /// The objects to run are known.
    Planned { total: usize },
    /// An invocation was throttled and is retried.
    Retrying { key: String, attempt: u32 },
    /// One object is done.
    Finished(FileResult),
}

/// An object in a bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectInfo {
    pub bucket: String,
    pub key: String,
    pub size: u64,
    /// Content hash, as S3 gives it (MD5 hex for simple uploads), without quotes.
    pub etag: String,
    /// Last modification (RFC 3339).
    pub modified: String,
}

/// Progress of one file's transfer (put, get).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferEvent {
    Started { key: String, size: u64 },
    Progress { key: String, done: u64, size: u64 },
    Finished { key: String, size: u64 },
}

/// What `put` stored, and what it caused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutReport {
    pub stored: Vec<ObjectInfo>,
    /// The function whose input folder received objects, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// The input objects it runs for (own outputs never trigger it).
    #[serde(default)]
    pub inputs: Vec<String>,
}

impl PutReport {
    /// What storing `stored` causes, given the functions of the provider: the first one
    /// that a stored object triggers runs for every stored object that triggers it (input
    /// folders do not overlap, so no object triggers two).
    pub fn new(stored: Vec<ObjectInfo>, functions: &[FunctionSpec]) -> PutReport {
        let bound = stored.iter().find_map(|o| {
            functions
                .iter()
                .find(|f| f.is_triggered_by(&o.bucket, &o.key))
        });
        let inputs: Vec<String> = match bound {
            Some(spec) => stored
                .iter()
                .filter(|o| spec.is_triggered_by(&o.bucket, &o.key))
                .map(|o| o.key.clone())
                .collect(),
            None => Vec::new(),
        };
        PutReport {
            function: bound.map(|spec| spec.name.clone()),
            stored,
            inputs,
        }
    }
}

/// A package written to a file by [`Provider::package`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageReport {
    pub path: PathBuf,
    pub package: PackageKind,
    pub size: u64,
    /// The image package's manifest digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unzipped_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub includes_root: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_deployment_bucket: Option<bool>,
    #[serde(default)]
    pub warnings: Vec<String>,
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

/// What every provider means alike when a function or a bucket is not as asked: each
/// provider's error wraps it (as it wraps [`Unsupported`]), so the words, the exit status
/// and the `--json` error are the same everywhere. Bad input: exit status 2.
///
/// The messages say what is wrong; what to do about it is the frontend's to say.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SurfaceError {
    /// Something this provider does not do.
    #[error(transparent)]
    Unsupported(#[from] Unsupported),
    /// Bad input that is not a spec (a file that cannot be read).
    #[error(transparent)]
    Usage(#[from] crate::UsageError),
    /// No function of that name.
    #[error("function {0:?} not found")]
    NotFound(String),
    /// A function of that name exists already.
    #[error("function {0:?} already exists")]
    Exists(String),
    /// An input folder overlaps another function's: one object triggers one function.
    #[error("the input folder {input} is already taken: {theirs} triggers function {function:?}, and one object triggers one function")]
    InputTaken {
        /// The folder asked for.
        input: String,
        /// The other function's folder that overlaps it.
        theirs: String,
        /// The other function.
        function: String,
    },
    /// A launch named a bucket that does not trigger the function.
    #[error("bucket {bucket:?} does not trigger function {function:?}")]
    WrongBucket {
        /// The function.
        function: String,
        /// The bucket given.
        bucket: String,
    },
    /// An input names a storage provider the function does not define.
    #[error("{storage} is not among the storage providers of function {function:?}")]
    NoProvider {
        /// The function.
        function: String,
        /// The storage provider (`minio.<id>`).
        storage: String,
    },
    /// A launch on a function that has no input folder.
    #[error("function {0:?} has no input folder")]
    NotBound(String),
}

impl Categorized for SurfaceError {
    fn category(&self) -> ErrorCategory {
        ErrorCategory::Usage
    }

    fn is_not_found(&self) -> bool {
        matches!(self, SurfaceError::NotFound(_))
    }

    fn surface(&self) -> Option<&SurfaceError> {
        Some(self)
    }
}

/// Something this provider does not do (a command, or a flag of one): bad input, exit 2.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{what} is not available on the {provider} provider: {instead}")]
pub struct Unsupported {
    pub provider: &'static str,
    /// What was asked, as the user wrote it (`scar serve`, `--only-failed`).
    pub what: String,
    /// What to do instead.
    pub instead: String,
}

impl Categorized for Unsupported {
    fn category(&self) -> ErrorCategory {
        ErrorCategory::Usage
    }
}

/// `log -ri ID` found no lines for that invocation: it has not run (yet), ran elsewhere,
/// or its logs expired. Bad input (exit status 2) on every provider.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("no log lines for request {request_id} of function '{function}': it may not have run yet, or its logs have expired")]
pub struct NoLogLines {
    pub function: String,
    pub request_id: String,
}

impl Categorized for NoLogLines {
    fn category(&self) -> ErrorCategory {
        ErrorCategory::Usage
    }
}

/// A callback for launch progress.
pub type OnLaunch<'a> = &'a (dyn Fn(&LaunchEvent) + Sync);
/// A callback for transfer progress.
pub type OnTransfer<'a> = &'a (dyn Fn(&TransferEvent) + Sync);

/// Everything a provider does. Every command of the frontend is written once against it.
pub trait Provider: Send + Sync {
    type Error: Categorized + From<SurfaceError>;

    /// Which provider this is.
    fn kind(&self) -> ProviderKind;

    /// Invocations at once when a launch does not say (the frontend's help states it).
    fn default_concurrency(&self) -> usize;

    /// Creates a function: pulls the image, packages it, deploys it and binds its bucket;
    /// nothing is left behind when a step fails.
    fn create(
        &self,
        request: CreateRequest,
        progress: &dyn Progress,
    ) -> impl Future<Output = Result<FunctionInfo, Self::Error>> + Send;

    /// The functions this provider holds: on a provider several identities share (an AWS
    /// account and region), the caller's own, unless the provider was told to list every
    /// owner's.
    fn list(&self) -> impl Future<Output = Result<Vec<FunctionInfo>, Self::Error>> + Send;

    /// [`Provider::list`], with how many functions it left out as not the caller's. By
    /// default none: every function is the caller's.
    fn listing(&self) -> impl Future<Output = Result<Listing, Self::Error>> + Send {
        async {
            Ok(Listing {
                functions: self.list().await?,
                left_out: LeftOut::default(),
            })
        }
    }

    /// One function.
    fn function(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<FunctionInfo, Self::Error>> + Send;

    /// Removes a function and everything it made; where several identities share the
    /// provider, only the caller's own, unless the provider was told otherwise.
    fn remove(&self, name: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Removes every function [`Provider::list`] lists; returns their names.
    fn remove_all(&self) -> impl Future<Output = Result<Vec<String>, Self::Error>> + Send;

    /// Invokes a function synchronously; `progress` hears of a long wait (a Batch job's
    /// states).
    fn invoke(
        &self,
        name: &str,
        payload: &Payload,
        progress: &dyn Progress,
    ) -> impl Future<Output = Result<Invocation, Self::Error>> + Send;

    /// Invokes a function asynchronously (Lambda's `Event`): returns its request id at
    /// once; the invocation completes and is logged on its own.
    fn invoke_async(
        &self,
        name: &str,
        payload: &Payload,
    ) -> impl Future<Output = Result<String, Self::Error>> + Send;

    /// The launcher: the function once per object in its bucket's input folder.
    fn launch(
        &self,
        request: &LaunchRequest,
        on_event: OnLaunch<'_>,
    ) -> impl Future<Output = Result<Vec<FileResult>, Self::Error>> + Send;

    /// Waits for the runs `put` caused (`report.inputs` of `report.function`), as results.
    fn await_inputs(
        &self,
        report: &PutReport,
        concurrency: Option<usize>,
        on_event: OnLaunch<'_>,
    ) -> impl Future<Output = Result<Vec<FileResult>, Self::Error>> + Send;

    /// Starts the runs `put` caused without waiting for them (`put --async`); they
    /// complete and are recorded on their own (local: a background launcher; aws: S3's
    /// notifications run them already).
    fn start_inputs(
        &self,
        report: &PutReport,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Reads a function's log lines.
    fn logs(
        &self,
        name: &str,
        query: &LogQuery,
    ) -> impl Future<Output = Result<Vec<LogLine>, Self::Error>> + Send;

    /// Prints new log lines as they come, through `on_line`, until it returns false.
    fn follow_logs(
        &self,
        name: &str,
        stream: Option<&str>,
        on_line: &mut (dyn FnMut(LogLine) -> bool + Send),
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Per function (`name`'s alone when given, else every function [`Provider::list`]
    /// lists): counts of files and the percentiles of invocation durations from REPORT
    /// lines. Counts the provider does not record are `None` (AWS records no outcome per
    /// file; see [`crate::stats::Counts`]).
    fn stats(
        &self,
        name: Option<&str>,
    ) -> impl Future<Output = Result<Vec<crate::stats::FunctionStats>, Self::Error>> + Send;

    /// Stores a file, or a directory's files, under a bucket folder.
    fn put(
        &self,
        at: &BucketPath,
        path: &Path,
        on_transfer: OnTransfer<'_>,
    ) -> impl Future<Output = Result<PutReport, Self::Error>> + Send;

    /// Copies a folder's objects (or one object) into `dest`.
    fn get(
        &self,
        at: &BucketPath,
        dest: &Path,
        on_transfer: OnTransfer<'_>,
    ) -> impl Future<Output = Result<Vec<PathBuf>, Self::Error>> + Send;

    /// The objects under a bucket folder.
    fn list_objects(
        &self,
        at: &BucketPath,
    ) -> impl Future<Output = Result<Vec<ObjectInfo>, Self::Error>> + Send;

    /// Writes a function's deployment package to a file.
    fn package(
        &self,
        name: &str,
        kind: PackageKind,
        dest: &Path,
        progress: &dyn Progress,
    ) -> impl Future<Output = Result<PackageReport, Self::Error>> + Send;

    /// Stops what the provider keeps running between calls (warm sandboxes).
    fn shutdown(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Ending, FunctionError};

    fn response(ending: Ending, output: &str) -> Response {
        Response {
            output: output.into(),
            ..Response::new("r1", ending)
        }
    }

    #[test]
    fn a_failed_run_keeps_the_end_of_its_output() {
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        let r = FileResult::from_response("k", response(Ending::Exited(1), &text));
        assert_eq!(r.outcome, Outcome::Failed);
        assert_eq!(r.exit_code, Some(1));
        assert!(r.output_tail.starts_with("line 11\n"), "{}", r.output_tail);
        assert!(r.output_tail.ends_with("line 30"), "{}", r.output_tail);
        let long = "é".repeat(3000);
        assert!(output_tail(&long).len() <= OUTPUT_TAIL_BYTES);
        assert!(
            FileResult::from_response("k", response(Ending::Exited(0), &text))
                .output_tail
                .is_empty()
        );
    }

    #[test]
    fn a_function_error_is_the_results_error_on_every_provider() {
        let error = FunctionError {
            error_type: "Runtime.ExitError".into(),
            error_message: "exit status 3".into(),
            stack_trace: Vec::new(),
        };
        let resp = response(Ending::Unfinished { error: Some(error) }, "");
        let r = FileResult::from_response("k", resp);
        assert_eq!(r.outcome, Outcome::Failed);
        assert_eq!(r.error.as_deref(), Some("Runtime.ExitError: exit status 3"));
        // An invocation that could not be made (a usage or machine error) is not invoked.
        let r = FileResult::from_error("k", &SurfaceError::NotFound("f".into()));
        assert_eq!(r.outcome, Outcome::NotInvoked);
        assert_eq!(r.error.as_deref(), Some("function \"f\" not found"));
    }
}
