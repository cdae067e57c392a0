//! AWS Lambda's facts that both providers honour (the local one rehearses them).

/// Where Lambda unpacks a zip package (`LAMBDA_TASK_ROOT`).
pub const TASK_ROOT: &str = "/var/task";

/// Lambda's limit on a zip package's unzipped size (250 MB, in bytes as Lambda counts).
pub const UNZIPPED_LIMIT: u64 = 250 * 1024 * 1024;

/// Lambda's limit on a zip uploaded directly; larger ones go through an S3 bucket.
pub const DIRECT_UPLOAD_LIMIT: u64 = 50 * 1024 * 1024;

/// CloudWatch Logs' group for a function's logs.
pub fn log_group(function: &str) -> String {
    format!("/aws/lambda/{function}")
}
