//! AWS Lambda's facts that both providers honour (the local one rehearses them).

/// Where Lambda unpacks a zip package (`LAMBDA_TASK_ROOT`).
pub const TASK_ROOT: &str = "/var/task";

/// Lambda's limit on a zip package's unzipped size (250 MB, in bytes as Lambda counts).
pub const UNZIPPED_LIMIT: u64 = 250 * 1024 * 1024;

/// Lambda's limit on a zip uploaded directly; larger ones go through an S3 bucket.
pub const DIRECT_UPLOAD_LIMIT: u64 = 50 * 1024 * 1024;

/// Where a zip package over [`DIRECT_UPLOAD_LIMIT`] goes in the deployment bucket (`-db`),
/// on AWS and, rehearsing it, on the local provider.
pub fn deployment_package_key(function: &str) -> String {
    format!("scar/{function}.zip")
}

/// What both providers say of `-db BUCKET` given for a package that does not go through it
/// (an image package, or a zip up to [`DIRECT_UPLOAD_LIMIT`]).
pub fn unused_deployment_bucket(bucket: &str) -> String {
    format!(
        "-db {bucket}: not used, as on AWS: only a zip package over {} MB goes through a deployment bucket",
        DIRECT_UPLOAD_LIMIT >> 20
    )
}

/// Lambda's largest synchronous response, bytes: its `Function.ResponseSizeTooLarge`
/// message names this number (6 MiB and 100 bytes).
pub const MAX_RESPONSE_BYTES: usize = 6_291_556;

/// Lambda's largest synchronous invocation payload (6 MiB).
pub const MAX_SYNC_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;

/// Lambda's largest asynchronous (`Event`) invocation payload: 1 MB (Invoke's reference
/// since 2025; the deprecated InvokeAsync operation keeps 256 KB).
pub const MAX_ASYNC_PAYLOAD_BYTES: usize = 1024 * 1024;

/// Lambda's words for a payload over `limit` (its `RequestEntityTooLargeException`);
/// `operation`: `InvokeFunction` or `InvokeAsync`.
pub fn payload_too_large(size: usize, limit: usize, operation: &str) -> String {
    format!(
        "the payload is {size} bytes: Request must be smaller than {limit} bytes for the {operation} operation (Lambda's limit; a larger input belongs in a bucket)"
    )
}

/// CloudWatch Logs' group for a function's logs.
pub fn log_group(function: &str) -> String {
    format!("/aws/lambda/{function}")
}

/// The invocations AWS Lambda lets one chain of events make before its recursive loop
/// detection stops the next (a function whose outputs trigger itself, directly or through
/// others): the 17th is not run.
pub const MAX_CHAIN_INVOCATIONS: u32 = 16;

/// Why an invocation of a chain was not run: the words of the result and the log.
pub fn loop_stopped(function: &str, bucket: &str, key: &str) -> String {
    format!(
        "recursive loop: {bucket}/{key} would be invocation {} of one chain of events; stopped, as AWS Lambda's recursive loop detection stops a chain after {MAX_CHAIN_INVOCATIONS} (check the outputs of '{function}' and the functions before it: one of them writes into a folder the chain came from)",
        MAX_CHAIN_INVOCATIONS + 1
    )
}

/// How an invocation's `REPORT` line ends: Lambda's `Status` field, when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportStatus {
    /// The invocation returned (Lambda writes no status).
    Ok,
    /// Stopped at its deadline: `Status: timeout`.
    Timeout,
    /// A runtime error (an init error, a runtime that exited): `Status: error` with
    /// Lambda's error type.
    Error(String),
}

/// Lambda's `REPORT` line of one invocation, as CloudWatch Logs shows it:
/// `REPORT RequestId: … Duration: 12.34 ms Billed Duration: 13 ms Memory Size: 512 MB
/// Max Memory Used: 20 MB`, fields separated by tabs.
#[derive(Debug, Clone, PartialEq)]
pub struct Report<'a> {
    /// The invocation's request id.
    pub request_id: &'a str,
    /// How long it ran.
    pub duration: std::time::Duration,
    /// The function's memory, MB.
    pub memory_mb: u32,
    /// The most it used, MB.
    pub max_memory_mb: u64,
    /// The init phase that came before it, in a cold start.
    pub init: Option<std::time::Duration>,
    /// How it ended.
    pub status: ReportStatus,
}

impl std::fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "REPORT RequestId: {}\tDuration: {:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB",
            self.request_id,
            self.duration.as_secs_f64() * 1000.0,
            self.duration.as_millis() + 1,
            self.memory_mb,
            self.max_memory_mb,
        )?;
        if let Some(init) = self.init {
            write!(f, "\tInit Duration: {:.2} ms", init.as_secs_f64() * 1000.0)?;
        }
        match &self.status {
            ReportStatus::Ok => Ok(()),
            ReportStatus::Timeout => write!(f, "\tStatus: timeout"),
            ReportStatus::Error(kind) => write!(f, "\tStatus: error\tError Type: {kind}"),
        }
    }
}

#[cfg(test)]
mod report_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_report_line_has_lambdas_fields_and_order() {
        let line = Report {
            request_id: "r1",
            duration: Duration::from_micros(12_345),
            memory_mb: 512,
            max_memory_mb: 20,
            init: Some(Duration::from_millis(3)),
            status: ReportStatus::Ok,
        }
        .to_string();
        assert_eq!(
            line,
            "REPORT RequestId: r1\tDuration: 12.35 ms\tBilled Duration: 13 ms\tMemory Size: 512 MB\tMax Memory Used: 20 MB\tInit Duration: 3.00 ms"
        );
        let error = Report {
            init: None,
            status: ReportStatus::Error("Runtime.ExitError".into()),
            ..Report {
                request_id: "r2",
                duration: Duration::from_millis(1),
                memory_mb: 128,
                max_memory_mb: 1,
                init: None,
                status: ReportStatus::Timeout,
            }
        }
        .to_string();
        assert!(
            error.ends_with("\tStatus: error\tError Type: Runtime.ExitError"),
            "{error}"
        );
    }
}
