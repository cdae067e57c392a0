//! One invocation in a sandbox whose init phase is over: handed to the runtime through its
//! Runtime API with its deadline, stopped at the deadline as Lambda stops it, logged with
//! Lambda's lines, and its answer made the caller's response.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use scar_core::event::{Ending, ErrorPayload, FunctionError, Response};
use scar_core::lambda::{log_group, Report, ReportStatus};
use scar_core::FunctionSpec;
use tokio::sync::oneshot;

use crate::api::{Answer, Pending};
use crate::provider::RunAs;
use crate::warm::Sandbox;
use crate::LocalError;

/// An invocation's deadline: its timeout, from when it is handed out.
struct Deadline {
    timeout: Duration,
    at: SystemTime,
}

impl Deadline {
    fn after(timeout_s: u32) -> Deadline {
        let timeout = Duration::from_secs(timeout_s.into());
        Deadline {
            timeout,
            at: SystemTime::now() + timeout,
        }
    }

    /// As the Runtime API hands it out (`Lambda-Runtime-Deadline-Ms`): milliseconds since
    /// the epoch.
    fn epoch_ms(&self) -> u64 {
        self.at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default()
    }
}

/// How the wait for an invocation's answer ended.
enum Ended {
    Answered(Answer),
    /// No answer by the deadline (or none will come: the Runtime API dropped it).
    TimedOut,
    /// The runtime exited first (its status, as [`exit_status_text`] words it).
    Exited(String),
}

/// One invocation of a function.
pub(crate) struct Invocation<'a> {
    pub spec: &'a FunctionSpec,
    pub run: &'a RunAs,
    pub request_id: String,
    /// Its ARN, as the runtime's context gives it.
    pub function_arn: String,
    /// The init phase before it, when outside its clock (see [`crate::init`]).
    pub init: Option<Duration>,
}

impl Invocation<'_> {
    /// Runs the invocation of `event` in `sandbox`. Returns the response, and the sandbox
    /// when it can serve another invocation (not after a timeout, nor once its runtime
    /// exited).
    pub async fn run(
        self,
        mut sandbox: Sandbox,
        event: Bytes,
    ) -> Result<(Response, Option<Sandbox>), LocalError> {
        let deadline = Deadline::after(self.run.timeout_s);
        sandbox.log.start(&self.request_id);
        let oom_before = sandbox.oom_kills();
        let begun = Instant::now();
        let answer = match self.hand_out(&mut sandbox, event, &deadline).await? {
            Ended::Answered(answer) => Some(answer),
            Ended::TimedOut => None,
            Ended::Exited(status) => {
                // As Lambda reports a runtime that exits during an invocation.
                let response = runtime_exited(
                    &self.request_id,
                    self.spec,
                    &sandbox,
                    &status,
                    begun.elapsed(),
                    self.run.memory_mb,
                );
                return Ok((response, None));
            }
        };
        let duration = begun.elapsed();
        if answer.is_none() {
            sandbox.log.timed_out(&self.request_id, self.run.timeout_s);
        }
        sandbox.log.end(&Report {
            request_id: &self.request_id,
            duration,
            memory_mb: self.run.memory_mb,
            max_memory_mb: sandbox.peak_memory_mb(),
            init: self.init,
            status: if answer.is_none() {
                ReportStatus::Timeout
            } else {
                ReportStatus::Ok
            },
        });
        let Some(answer) = answer else {
            // Lambda resets the environment of a timed-out invocation.
            sandbox.kill().await;
            let error = FunctionError::timed_out(&self.request_id, self.run.timeout_s);
            let response = failed(&self.request_id, self.spec, &sandbox, error, true);
            return Ok((response, None));
        };
        let out_of_memory = sandbox.oom_kills() > oom_before;
        let mut response = self.response(answer, &sandbox);
        if out_of_memory {
            self.note_out_of_memory(&mut response);
        }
        response.log_group = log_group(&self.spec.name);
        response.log_stream = sandbox.log.name.clone();
        Ok((response, Some(sandbox)))
    }

    /// Hands the invocation to the runtime and waits for its answer, the runtime's exit,
    /// or the deadline.
    async fn hand_out(
        &self,
        sandbox: &mut Sandbox,
        event: Bytes,
        deadline: &Deadline,
    ) -> Result<Ended, LocalError> {
        let (tx, rx) = oneshot::channel();
        let pending = Pending {
            request_id: self.request_id.clone(),
            event,
            deadline_ms: deadline.epoch_ms(),
            function_arn: self.function_arn.clone(),
            answer: tx,
        };
        if sandbox.api.queue.send(pending).await.is_err() {
            return Err(LocalError::SandboxDied {
                function: self.spec.name.clone(),
                request_id: self.request_id.clone(),
                status: "its Runtime API stopped".into(),
            });
        }
        // Stopped at the deadline, as Lambda stops it.
        Ok(tokio::select! {
            answer = rx => answer.map_or(Ended::TimedOut, Ended::Answered),
            status = sandbox.child.wait() => Ended::Exited(exit_status_text(status)),
            _ = tokio::time::sleep(deadline.timeout) => Ended::TimedOut,
        })
    }

    /// The caller's response to the runtime's answer. scar's supervisor answers with
    /// scar's response; any other runtime's answer is the function's result as it is.
    fn response(&self, answer: Answer, sandbox: &Sandbox) -> Response {
        let request_id = &self.request_id;
        match answer {
            Answer::Response(body) => match serde_json::from_slice::<Response>(&body) {
                Ok(response) => response,
                Err(_) => {
                    let mut raw = Response::new(request_id.clone(), Ending::Exited(0));
                    raw.set_output(body.to_vec());
                    raw
                }
            },
            Answer::Error(error) => {
                let scar = ErrorPayload {
                    error_type: error.error_type.clone(),
                    error_message: error.error_message.clone(),
                };
                match scar.scar_response() {
                    Some(r) => r,
                    None => failed(request_id, self.spec, sandbox, error, false),
                }
            }
            Answer::TooLarge => failed(
                request_id,
                self.spec,
                sandbox,
                FunctionError::response_too_large(),
                false,
            ),
        }
    }

    /// Says at the end of the output that the function ran out of memory, and how to give
    /// it more.
    fn note_out_of_memory(&self, response: &mut Response) {
        let note = format!(
            "scar: the function ran out of memory: its limit is {} MB (raise it with {})\n",
            self.run.memory_mb,
            if self.run.batch {
                "the batch block's `memory`"
            } else {
                "-m"
            }
        );
        let mut bytes = response.output_bytes();
        bytes.extend_from_slice(note.as_bytes());
        response.set_output(bytes);
    }
}

/// The REPORT of an invocation that the runtime failed (`error`) `elapsed` after it began.
pub(crate) fn error_report<'a>(
    request_id: &'a str,
    elapsed: Duration,
    memory_mb: u32,
    sandbox: &Sandbox,
    error: &FunctionError,
) -> Report<'a> {
    Report {
        request_id,
        duration: elapsed,
        memory_mb,
        max_memory_mb: sandbox.max_memory_mb(),
        init: None,
        status: ReportStatus::Error(error.error_type.clone()),
    }
}

/// Lambda's log lines and failed response for a runtime that exited (`status`, as
/// [`exit_status_text`] words it) during an invocation or before its first `next`:
/// `Runtime.ExitError`.
pub(crate) fn runtime_exited(
    request_id: &str,
    spec: &FunctionSpec,
    sandbox: &Sandbox,
    status: &str,
    elapsed: Duration,
    memory_mb: u32,
) -> Response {
    let error = FunctionError::runtime_exited(request_id, status);
    sandbox.log.error(&error);
    sandbox.log.end(&error_report(
        request_id, elapsed, memory_mb, sandbox, &error,
    ));
    failed(request_id, spec, sandbox, error, false)
}

/// How a runtime ended, as Lambda words it: `exit status 1`, `signal: killed` (or why
/// waiting for it failed).
pub(crate) fn exit_status_text(status: std::io::Result<std::process::ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    let status = match status {
        Ok(status) => status,
        Err(e) => return e.to_string(),
    };
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(9)) => "signal: killed".into(),
        (None, Some(signal)) => format!("signal: {signal}"),
        (None, None) => status.to_string(),
    }
}

/// A failed invocation's response: no exit code, the function error.
pub(crate) fn failed(
    request_id: &str,
    spec: &FunctionSpec,
    sandbox: &Sandbox,
    error: FunctionError,
    timed_out: bool,
) -> Response {
    let error = Some(error);
    let ending = if timed_out {
        Ending::TimedOut { error }
    } else {
        Ending::Unfinished { error }
    };
    Response {
        log_group: log_group(&spec.name),
        log_stream: sandbox.log.name.clone(),
        ..Response::new(request_id, ending)
    }
}
