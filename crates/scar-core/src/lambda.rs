//! AWS Lambda's facts that both providers honour (the local one rehearses them).

/// Where Lambda unpacks a zip package (`LAMBDA_TASK_ROOT`).
pub const TASK_ROOT: &str = "/var/task";

/// Lambda's limit on a zip package's unzipped size (250 MB, in bytes as Lambda counts).
pub const UNZIPPED_LIMIT: u64 = 250 * 1024 * 1024;

/// Lambda's limit on a zip uploaded directly; larger ones go through an S3 bucket.
pub const DIRECT_UPLOAD_LIMIT: u64 = 50 * 1024 * 1024;

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
