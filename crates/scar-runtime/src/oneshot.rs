//! One-shot mode: the supervisor as an AWS Batch job's command.
//!
//! SCAR hands the event to its Batch job in an environment variable; so does scar:
//! when `SCAR_EVENT` ([`contract::EVENT_VAR`]) is set, `bootstrap` contacts no Runtime API.
//! It runs that one event with [`Supervisor::invoke`]:
//!
//! - `SCAR_EVENT` is the event JSON, or `base64:` followed by it base64-encoded (Batch
//!   environment values are strings; events may hold any bytes);
//! - the request id is `AWS_BATCH_JOB_ID` when set, else a new uuid;
//! - the deadline is now plus the function file's `timeout_s` (Batch enforces its own
//!   timeout; the threshold still leaves time to upload the outputs);
//! - it runs as a Batch job (`SCAR_BATCH_JOB` is set): a `lambda-batch` function that
//!   reaches the threshold times out, it is never handed over again.
//!
//! The script's output is printed as it comes; then one last stdout line,
//! `SCAR_RESPONSE <response JSON>`. Exit status: 0 when the script succeeded, 1 when it
//! failed or timed out, 3 when the invocation could not start (a bad event, a missing
//! input object, a bad function file), with the error on stderr.

use std::io::Write;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use scar_core::contract;
use scar_core::event::Response;

use crate::{Invocation, Supervisor, SupervisorError};

/// The script succeeded.
pub const EXIT_SUCCEEDED: i32 = 0;
/// The script failed or timed out.
pub const EXIT_FAILED: i32 = 1;
/// The invocation could not start.
pub const EXIT_NOT_STARTED: i32 = 3;

/// Why `SCAR_EVENT` holds no event.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("{var} is not valid base64 after `{prefix}`: {0}", var = contract::EVENT_VAR, prefix = contract::EVENT_BASE64_PREFIX)]
    Base64(#[source] base64::DecodeError),
    #[error("{var} is not valid JSON: {0}", var = contract::EVENT_VAR)]
    Json(#[source] serde_json::Error),
    #[error("{var} is not UTF-8", var = contract::EVENT_VAR)]
    NotUtf8,
}

/// The event `SCAR_EVENT` holds: JSON, or `base64:` and the JSON base64-encoded.
pub fn decode_event(raw: &str) -> Result<serde_json::Value, EventError> {
    let raw = raw.trim();
    match raw.strip_prefix(contract::EVENT_BASE64_PREFIX) {
        Some(encoded) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(EventError::Base64)?;
            serde_json::from_slice(&bytes).map_err(EventError::Json)
        }
        None => serde_json::from_str(raw).map_err(EventError::Json),
    }
}

/// The request id of a one-shot run: the Batch job's id, made safe as a directory name,
/// else a new uuid.
pub fn request_id(job_id: Option<&str>) -> String {
    let safe: Option<String> = job_id
        .map(|id| {
            id.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "-_.:".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect::<String>()
        })
        .filter(|id| !id.is_empty() && !id.chars().all(|c| c == '.'));
    safe.unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// The one invocation: `timeout_s` from now (the default timeout when the function file
/// gives none).
pub fn invocation(event: serde_json::Value, job_id: Option<&str>, timeout_s: u32) -> Invocation {
    let timeout_s = if timeout_s == 0 {
        scar_core::config::DEFAULT_TIMEOUT_S
    } else {
        timeout_s
    };
    Invocation {
        request_id: request_id(job_id),
        deadline: SystemTime::now() + Duration::from_secs(timeout_s.into()),
        event,
    }
}

/// The exit status for an invocation's result.
pub fn exit_code(result: &Result<Response, SupervisorError>) -> i32 {
    match result {
        Ok(r) if r.succeeded() && !r.handed_over() => EXIT_SUCCEEDED,
        Ok(_) => EXIT_FAILED,
        Err(_) => EXIT_NOT_STARTED,
    }
}

/// The last stdout line: `SCAR_RESPONSE <response JSON>`.
pub fn response_line(response: &Response) -> String {
    format!(
        "{}{}",
        contract::ONESHOT_RESPONSE_PREFIX,
        serde_json::to_string(response).unwrap_or_default()
    )
}

/// Whether `SCAR_EVENT` asks for a one-shot run.
pub fn requested() -> bool {
    std::env::var_os(contract::EVENT_VAR).is_some()
}

/// Runs the event of `SCAR_EVENT` once and returns the exit status. Call it before any
/// other thread starts: it marks the process as a Batch job in its own environment.
pub fn run_from_environment() -> i32 {
    // A Batch job never hands over (Supervisor::hands_over), and the script sees it too.
    std::env::set_var(contract::BATCH_JOB_VAR, "1");
    let raw = match std::env::var(contract::EVENT_VAR) {
        Ok(raw) => Ok(raw),
        Err(_) => Err(EventError::NotUtf8),
    };
    let event = match raw.and_then(|raw| decode_event(&raw)) {
        Ok(event) => event,
        Err(e) => {
            eprintln!("scar: {e}");
            return EXIT_NOT_STARTED;
        }
    };
    let supervisor = match Supervisor::from_environment() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("scar: {e}");
            return EXIT_NOT_STARTED;
        }
    };
    let job_id = std::env::var(contract::BATCH_JOB_ID_VAR).ok();
    let inv = invocation(event, job_id.as_deref(), supervisor.function.timeout_s);
    run(&supervisor, &inv)
}

/// Runs `inv` once, prints the response line (or the error, on stderr) and returns the
/// exit status.
pub fn run(supervisor: &Supervisor, inv: &Invocation) -> i32 {
    let mut result = supervisor.invoke(inv);
    if let Ok(response) = &mut result {
        // A `lambda-batch` event handed over on Lambda: the request it came from.
        response.handed_over_from = std::env::var(contract::HANDED_OVER_FROM_VAR)
            .ok()
            .filter(|v| !v.is_empty());
    }
    let code = exit_code(&result);
    match &result {
        Ok(response) => {
            let mut stdout = std::io::stdout().lock();
            // The response starts a line of its own, whatever the script last printed.
            if supervisor.echo_output && !ends_line(response) {
                let _ = writeln!(stdout);
            }
            let _ = writeln!(stdout, "{}", response_line(response));
            let _ = stdout.flush();
        }
        Err(e) => eprintln!("scar: {e}"),
    }
    code
}

/// Whether the output echoed so far ended a line (or there was none).
fn ends_line(response: &Response) -> bool {
    let bytes = match response.output_encoding.as_deref() {
        Some("base64") => base64::engine::general_purpose::STANDARD
            .decode(&response.output)
            .unwrap_or_default(),
        _ => response.output.clone().into_bytes(),
    };
    bytes.last().is_none_or(|b| *b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;
    use scar_core::event::Ending;
    use serde_json::json;

    #[test]
    fn events_plain_and_base64() {
        let event = json!({"script": "echo hi", "bytes": "\u{1}\u{ff}"});
        let text = event.to_string();
        assert_eq!(decode_event(&text).unwrap(), event);
        let encoded = base64::engine::general_purpose::STANDARD.encode(&text);
        assert_eq!(decode_event(&format!("base64:{encoded}\n")).unwrap(), event);
        assert!(matches!(
            decode_event("base64:***"),
            Err(EventError::Base64(_))
        ));
        assert!(matches!(
            decode_event("{not json"),
            Err(EventError::Json(_))
        ));
        let e = decode_event("").unwrap_err().to_string();
        assert!(e.starts_with("SCAR_EVENT is not valid JSON"), "{e}");
    }

    #[test]
    fn request_ids_are_safe_directory_names() {
        assert_eq!(request_id(Some("job-1")), "job-1");
        assert_eq!(request_id(Some("abc:3")), "abc:3");
        assert_eq!(request_id(Some("../x/y")), ".._x_y");
        for fresh in [
            request_id(None),
            request_id(Some("")),
            request_id(Some("..")),
        ] {
            assert!(uuid::Uuid::parse_str(&fresh).is_ok(), "{fresh}");
        }
    }

    #[test]
    fn deadline_is_the_timeout_from_now() {
        let inv = invocation(json!({}), Some("j"), 60);
        let left = inv.deadline.duration_since(SystemTime::now()).unwrap();
        assert!(left > Duration::from_secs(58) && left <= Duration::from_secs(60));
        let inv = invocation(json!({}), None, 0);
        let left = inv.deadline.duration_since(SystemTime::now()).unwrap();
        assert!(left > Duration::from_secs(290), "the default timeout");
    }

    #[test]
    fn exit_codes() {
        let ended = |ending| Ok(Response::new("r", ending));
        assert_eq!(exit_code(&ended(Ending::Exited(0))), EXIT_SUCCEEDED);
        assert_eq!(exit_code(&ended(Ending::Exited(2))), EXIT_FAILED);
        assert_eq!(
            exit_code(&ended(Ending::TimedOut { error: None })),
            EXIT_FAILED
        );
        assert_eq!(exit_code(&ended(Ending::HandedOver)), EXIT_FAILED);
        assert_eq!(
            exit_code(&ended(Ending::Unfinished { error: None })),
            EXIT_FAILED
        );
        assert_eq!(
            exit_code(&Err(SupervisorError::NothingToRun)),
            EXIT_NOT_STARTED
        );
        let line = response_line(&Response::default());
        assert!(line.starts_with("SCAR_RESPONSE {"), "{line}");
    }
}
