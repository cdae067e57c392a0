//! The supervisor contract: the paths and variables that the user's script can rely on, on
//! every provider (`docs/contract.md` describes them for users). These names are SCAR's,
//! kept for compatibility.

/// Where each request's directories live: `/tmp/$REQUEST_ID/{input,output}`.
pub const TMP_ROOT: &str = "/tmp";
/// The input directory's name under `/tmp/$REQUEST_ID`.
pub const INPUT_DIR_NAME: &str = "input";
/// The output directory's name under `/tmp/$REQUEST_ID`.
pub const OUTPUT_DIR_NAME: &str = "output";

/// The invocation id.
pub const REQUEST_ID: &str = "REQUEST_ID";
/// Path of the input file (storage events only).
pub const INPUT_FILE_PATH: &str = "INPUT_FILE_PATH";
/// Path of the input file (storage events only), scar's name.
pub const SCAR_INPUT_FILE: &str = "SCAR_INPUT_FILE";
/// `/tmp/$REQUEST_ID/input`.
pub const TMP_INPUT_DIR: &str = "TMP_INPUT_DIR";
/// `/tmp/$REQUEST_ID/output`.
pub const TMP_OUTPUT_DIR: &str = "TMP_OUTPUT_DIR";
/// `/tmp/$REQUEST_ID/output`, scar's name.
pub const SCAR_OUTPUT_DIR: &str = "SCAR_OUTPUT_DIR";
/// The decoded object key of the triggering object.
pub const STORAGE_OBJECT_KEY: &str = "STORAGE_OBJECT_KEY";
/// The event time of the triggering object.
pub const EVENT_TIME: &str = "EVENT_TIME";
/// The raw event JSON (unset for an event over [`EVENT_MAX_BYTES`]).
pub const EVENT: &str = "EVENT";
/// The longest event `EVENT` holds: Linux refuses to start a program with one variable
/// (`NAME=value` and its NUL) over 128 KiB (`MAX_ARG_STRLEN`, E2BIG), and an HTTP request's
/// body (a picture, base64) is often more.
pub const EVENT_MAX_BYTES: usize = 128 * 1024 - "EVENT=".len() - 1;

/// Where the supervisor and its function files live inside a package or sandbox.
pub const SUPERVISOR_DIR: &str = "/opt/scar";
/// The supervisor binary inside a package or sandbox.
pub const SUPERVISOR_PATH: &str = "/opt/scar/bootstrap";
/// The function file (JSON [`crate::event::FunctionFile`]) inside a package or sandbox.
pub const FUNCTION_FILE_PATH: &str = "/opt/scar/function.json";
/// Variable that overrides [`FUNCTION_FILE_PATH`] for the supervisor.
pub const FUNCTION_FILE_VAR: &str = "SCAR_FUNCTION_FILE";
/// Variable naming the directory that holds the function's buckets inside a local sandbox
/// (`<dir>/<bucket>/<key>`); unset on AWS, where buckets are S3's.
pub const STORAGE_DIR_VAR: &str = "SCAR_STORAGE_DIR";
/// Where the local provider mounts a function's bucket: `/opt/scar/buckets/<bucket>`.
pub const STORAGE_DIR: &str = "/opt/scar/buckets";
/// Variable set by the environment (Lambda sets it to `/var/task`) naming where a `zip`
/// package is unpacked; the supervisor finds `function.json` there.
pub const TASK_ROOT_VAR: &str = "LAMBDA_TASK_ROOT";
/// The function file's name at the root of a `zip` package.
pub const TASK_FUNCTION_FILE: &str = "function.json";
/// Variable naming the root a `zip` package's commands run in, when whoever started the
/// supervisor has already entered it (the local provider's sandbox sets `/`). Unset (on
/// Lambda), the supervisor enters the packaged root itself, through `proot`.
pub const CONTAINER_ROOT_VAR: &str = "SCAR_CONTAINER_ROOT";
/// Variable naming where a function's extra payload (SCAR's `extra_payload`, `-ep`) is:
/// set, to [`EXTRA_PAYLOAD_DIR`], only for a function that has one, in the supervisor's
/// environment and so the script's.
pub const EXTRA_PAYLOAD_VAR: &str = "EXTRA_PAYLOAD";
/// Where a function's extra payload is: Lambda's task root, read-only.
pub const EXTRA_PAYLOAD_DIR: &str = "/var/task";
/// Where (under [`TMP_ROOT`]) a supervisor builds a `zip` package's root at cold start
/// when the package holds only the layers.
pub const COLD_ROOT_NAME: &str = "scar-root";

/// Prefix of the function's environment variables that are the container's (SCAR's
/// `CONT_VAR_`): the supervisor strips it and gives them to the script, over its own
/// variables, so a container variable may have a name Lambda reserves
/// (`CONT_VAR_AWS_ACCESS_KEY_ID` reaches the script as `AWS_ACCESS_KEY_ID`).
pub const CONTAINER_VAR_PREFIX: &str = "CONT_VAR_";
/// Variable holding the function's storage providers (JSON: `<kind>.<id>` to
/// [`crate::spec::StorageProvider`]), secrets included: given to the supervisor by the
/// provider (a Lambda variable on AWS), never to the script.
pub const STORAGE_PROVIDERS_VAR: &str = "SCAR_STORAGE_PROVIDERS";
/// Variable counting the invocations of a chain so far (the event that triggered this
/// one included): each output uploaded to a function's input folder carries it one
/// further, and the chain stops at [`crate::lambda::MAX_CHAIN_INVOCATIONS`].
pub const CHAIN_DEPTH_VAR: &str = "SCAR_CHAIN_DEPTH";

/// Set in the environment of a supervisor that runs as a Batch job (execution modes
/// `batch` and `lambda-batch`'s hand-over): no hand-over from there.
pub const BATCH_JOB_VAR: &str = "SCAR_BATCH_JOB";
/// Variable holding the event (JSON, or `base64:` followed by the JSON base64-encoded) of a
/// supervisor run once as a Batch job's command: with it, `bootstrap` contacts no Runtime
/// API, runs the event once, prints [`ONESHOT_RESPONSE_PREFIX`] and the response JSON as
/// its last stdout line, and exits (0: succeeded, 1: the script failed or timed out, 3:
/// the invocation could not start). It runs as a Batch job ([`BATCH_JOB_VAR`]).
pub const EVENT_VAR: &str = "SCAR_EVENT";
/// What [`EVENT_VAR`] may start with to give the event base64-encoded.
pub const EVENT_BASE64_PREFIX: &str = "base64:";
/// The longest base64 event a Batch job is given in [`EVENT_VAR`]: SubmitJob takes up to
/// 30 KiB.
pub const MAX_JOB_EVENT_BYTES: usize = 24 * 1024;

/// The [`EVENT_VAR`] value that hands `event` to a Batch job: `base64:` and the JSON
/// base64-encoded (Batch's variables are strings); an event too large for a job is refused,
/// with why.
pub fn job_event_variable(event: &serde_json::Value) -> Result<String, String> {
    use base64::Engine as _;
    let json = event.to_string();
    let encoded = base64::engine::general_purpose::STANDARD.encode(json.as_bytes());
    if encoded.len() > MAX_JOB_EVENT_BYTES {
        return Err(format!(
            "the event is {} bytes: an AWS Batch job takes up to 30 KiB (put large inputs in the bucket instead)",
            json.len()
        ));
    }
    Ok(format!("{EVENT_BASE64_PREFIX}{encoded}"))
}
/// The start of a one-shot supervisor's last stdout line, before the response JSON.
pub const ONESHOT_RESPONSE_PREFIX: &str = "SCAR_RESPONSE ";
/// Variable set by AWS Batch to the job's id: a one-shot supervisor's request id.
pub const BATCH_JOB_ID_VAR: &str = "AWS_BATCH_JOB_ID";
/// Lambda variable naming the job queue a `batch` or `lambda-batch` function's supervisor
/// submits events to (on AWS; the local provider runs the job itself).
pub const BATCH_JOB_QUEUE_VAR: &str = "SCAR_BATCH_JOB_QUEUE";
/// Lambda variable recording the version of the supervisor a function was created with
/// (read from the binary: [`crate::supervisor_version_in`]), so that `ls` tells an old
/// function from a new one on AWS too. scar's record, not the supervisor's input.
pub const SUPERVISOR_VERSION_VAR: &str = "SCAR_SUPERVISOR_VERSION";
/// Lambda variable naming the job definition of those jobs, beside [`BATCH_JOB_QUEUE_VAR`].
pub const BATCH_JOB_DEFINITION_VAR: &str = "SCAR_BATCH_JOB_DEFINITION";
/// Variable holding the request id of the Lambda invocation that handed a job its event
/// (`lambda-batch`): the job's response carries it as `handed_over_from`.
pub const HANDED_OVER_FROM_VAR: &str = "SCAR_HANDED_OVER_FROM";

/// The name of the AWS Batch compute environment, job queue and job definition made for
/// a function: `scar-<function>`.
pub fn batch_resource_name(function: &str) -> String {
    format!("scar-{function}")
}

/// An AWS Batch job's name (up to 128 letters, digits, `-` and `_`): `<function>-<request id>`,
/// other characters as `-`.
pub fn batch_job_name(function: &str, request_id: &str) -> String {
    format!("{function}-{request_id}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(128)
        .collect()
}

/// The shell that runs scripts.
pub const SHELL: &str = "/bin/sh";

/// `/tmp/<request id>`.
pub fn request_dir(request_id: &str) -> String {
    format!("{TMP_ROOT}/{request_id}")
}

/// `/tmp/<request id>/input`.
pub fn input_dir(request_id: &str) -> String {
    format!("{TMP_ROOT}/{request_id}/{INPUT_DIR_NAME}")
}

/// `/tmp/<request id>/output`.
pub fn output_dir(request_id: &str) -> String {
    format!("{TMP_ROOT}/{request_id}/{OUTPUT_DIR_NAME}")
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    #[test]
    fn job_events_are_base64_and_bounded() {
        let event = serde_json::json!({"script": "echo hi"});
        let value = super::job_event_variable(&event).unwrap();
        let encoded = value.strip_prefix(super::EVENT_BASE64_PREFIX).unwrap();
        let json = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&json).unwrap(),
            event
        );
        let big = serde_json::json!({"script": "x".repeat(20 * 1024)});
        let e = super::job_event_variable(&big).unwrap_err();
        assert!(e.contains("takes up to 30 KiB"), "{e}");
    }
}
