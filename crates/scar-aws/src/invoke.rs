//! Invoking a function: synchronously with its log tail, asynchronously, or as an AWS
//! Batch job for the Batch modes; and what its answer means ([`parse_invoke_result`]).

use aws_sdk_lambda::operation::invoke::builders::InvokeFluentBuilder;
use aws_sdk_lambda::operation::invoke::InvokeOutput;
use aws_sdk_lambda::operation::RequestId as _;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{InvocationType, LogType};
use base64::Engine as _;
use scar_core::event::{Ending, ErrorPayload, Payload, Response};
use scar_core::lambda::log_group;
use scar_core::progress::Progress;
use scar_core::provider::Invocation;
use scar_core::provider::SurfaceError;
use scar_core::ExecutionMode;

use crate::error::{NotFoundExt as _, SdkResultExt as _};
use crate::{AwsError, AwsProvider};

impl AwsProvider {
    /// A `batch` function's payload goes to AWS Batch as a job, waited for; a
    /// `lambda-batch` one's that Lambda hands over is waited for the same way.
    pub(crate) async fn invoke_function(
        &self,
        name: &str,
        payload: &Payload,
        progress: &dyn Progress,
    ) -> Result<Invocation, AwsError> {
        let spec = self.describe_function(name).await?.spec;
        if spec.execution_mode == ExecutionMode::Batch {
            return self.run_job(name, payload, progress).await;
        }
        let invocation = self
            .invoke_detailed(name, spec.runtime_client, payload)
            .await?;
        match invocation.response.batch_job.clone() {
            Some(job) if invocation.response.handed_over() => {
                let mut from_job = self.wait_job(name, &job, progress).await?;
                from_job.response.handed_over_from = Some(invocation.response.request_id);
                Ok(from_job)
            }
            _ => Ok(invocation),
        }
    }

    /// Queues an asynchronous invocation (`InvocationType=Event`); returns its request id,
    /// or for a `batch` function the id of the job it submitted.
    pub(crate) async fn invoke_function_async(
        &self,
        name: &str,
        payload: &Payload,
    ) -> Result<String, AwsError> {
        if self.describe_function(name).await?.spec.execution_mode == ExecutionMode::Batch {
            let event = serde_json::to_value(payload).unwrap_or_default();
            return self
                .submit_job(name, &crate::batch::new_request_id(), &event)
                .await;
        }
        let out = self.invoke_lambda(name, payload, false).await?;
        Ok(out.request_id().unwrap_or_default().to_string())
    }

    /// Invokes a function synchronously (`RequestResponse`, `LogType=Tail`) and returns
    /// scar's response with the log tail; `runtime` says whose answer to expect.
    ///
    /// A script that failed or timed out is not an error here: its response comes back
    /// with `succeeded() == false` (the supervisor reports it as a `ScarFunctionError`),
    /// and so does a function error of Lambda's or the runtime's (a crash, Lambda's own
    /// timeout, a handler that raised), in `function_error`. Errors are:
    /// [`AwsError::NotFound`]; and [`AwsError::NotScarResponse`], holding the raw text,
    /// when a function of scar's runtime answered something that is not scar's response
    /// (not a scar function, or an emulator that echoes the payload back, like moto
    /// without Docker).
    pub async fn invoke_detailed(
        &self,
        name: &str,
        runtime: scar_core::RuntimeClient,
        payload: &Payload,
    ) -> Result<Invocation, AwsError> {
        let out = self.invoke_lambda(name, payload, true).await?;
        match invocation_of(name, runtime, &out) {
            Err(e @ AwsError::NotScarResponse { .. }) => Err(self.not_found_or(name, e).await),
            other => other,
        }
    }

    /// Lambda's Invoke of function `name` with `payload` ([`invoke_request`]);
    /// [`SurfaceError::NotFound`] when there is no such function.
    async fn invoke_lambda(
        &self,
        name: &str,
        payload: &Payload,
        sync: bool,
    ) -> Result<InvokeOutput, AwsError> {
        let body = serde_json::to_vec(payload).unwrap_or_default();
        invoke_request(&self.lambda, name, body, sync)
            .send()
            .await
            .map_sdk_err("lambda:Invoke", name)
            .or_function_not_found(name)
    }

    /// Not a scar answer: "not found" when there is no such function (some emulators
    /// answer invocations of missing functions), else `err`, what came back.
    async fn not_found_or(&self, name: &str, err: AwsError) -> AwsError {
        match self.get_function(name).await {
            Ok(None) => SurfaceError::NotFound(name.into()).into(),
            _ => err,
        }
    }
}

/// Lambda's Invoke of `function` with `payload`: synchronous (`RequestResponse`, with the
/// log tail) or queued (`Event`).
pub(crate) fn invoke_request(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    payload: Vec<u8>,
    sync: bool,
) -> InvokeFluentBuilder {
    let call = lambda
        .invoke()
        .function_name(function)
        .payload(Blob::new(payload));
    if sync {
        call.invocation_type(InvocationType::RequestResponse)
            .log_type(LogType::Tail)
    } else {
        call.invocation_type(InvocationType::Event)
    }
}

/// What a synchronous invocation of `function` answered, as an [`Invocation`]: its
/// payload read by [`parse_invoke_result`], with the invocation's request id and the
/// function's log group where the response has none, and its log tail decoded.
pub(crate) fn invocation_of(
    function: &str,
    runtime: scar_core::RuntimeClient,
    out: &InvokeOutput,
) -> Result<Invocation, AwsError> {
    let raw = out.payload().map(|b| b.as_ref()).unwrap_or_default();
    let mut response = parse_invoke_result(function, runtime, out.function_error(), raw)?;
    if response.request_id.is_empty() {
        response.request_id = out.request_id().unwrap_or_default().to_string();
    }
    if response.log_group.is_empty() {
        response.log_group = log_group(function);
    }
    let log_tail = out.log_result().and_then(|tail| {
        base64::engine::general_purpose::STANDARD
            .decode(tail)
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    });
    Ok(Invocation { response, log_tail })
}

/// Turns an invoke result into scar's response.
///
/// - no function error: the payload is scar's [`Response`], or with a runtime of the
///   image's own ([`scar_core::RuntimeClient::Image`]) the function's result as it is (the
///   response's output);
/// - a function error whose `errorType` is [`scar_core::event::FUNCTION_ERROR_TYPE`]: the
///   script failed or timed out, and `errorMessage` holds the response;
/// - any other function error (a runtime's, or Lambda's: `Sandbox.Timedout`,
///   `Runtime.ExitError`, ...): a failed response whose `function_error` has its type,
///   message and stack trace, as Lambda's invoke returns them;
/// - a payload that is not scar's from scar's runtime: [`AwsError::NotScarResponse`] with
///   the raw text.
pub(crate) fn parse_invoke_result(
    function: &str,
    runtime: scar_core::RuntimeClient,
    function_error: Option<&str>,
    payload: &[u8],
) -> Result<Response, AwsError> {
    match function_error {
        None if runtime == scar_core::RuntimeClient::Image => {
            let mut raw = Response::new(String::new(), Ending::Exited(0));
            raw.set_output(payload.to_vec());
            Ok(raw)
        }
        None => {
            serde_json::from_slice::<Response>(payload).map_err(|_| AwsError::NotScarResponse {
                function: function.into(),
                raw: String::from_utf8_lossy(payload).into_owned(),
            })
        }
        Some(kind) => {
            if let Some(r) = serde_json::from_slice::<ErrorPayload>(payload)
                .ok()
                .and_then(|e| e.scar_response())
            {
                return Ok(r);
            }
            let error = scar_core::event::FunctionError::from_runtime(payload, Some(kind));
            let ending = if error.error_type == "Sandbox.Timedout" {
                Ending::TimedOut { error: Some(error) }
            } else {
                Ending::Unfinished { error: Some(error) }
            };
            Ok(Response::new(String::new(), ending))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scar_core::event::FUNCTION_ERROR_TYPE;

    #[test]
    fn invoke_results_are_parsed() {
        let ok = Response {
            output: "hi\n".into(),
            ..Response::new("r1", Ending::Exited(0))
        };
        let body = serde_json::to_vec(&ok).unwrap();
        let scar = scar_core::RuntimeClient::Scar;
        assert_eq!(parse_invoke_result("f", scar, None, &body).unwrap(), ok);

        let failed = Response {
            ending: Ending::Exited(3),
            ..ok.clone()
        };
        let error = ErrorPayload {
            error_type: FUNCTION_ERROR_TYPE.into(),
            error_message: serde_json::to_string(&failed).unwrap(),
        };
        let body = serde_json::to_vec(&error).unwrap();
        let got = parse_invoke_result("f", scar, Some("Unhandled"), &body).unwrap();
        assert_eq!(got, failed);
        assert!(!got.succeeded());

        // Lambda's own errors and a runtime's: a failed run with the error as Lambda's
        // invoke returns it (X-Amz-Function-Error: Unhandled, the type in the body).
        let crash = br#"{"errorType":"Runtime.ExitError","errorMessage":"exit status 1"}"#;
        let got = parse_invoke_result("f", scar, Some("Unhandled"), crash).unwrap();
        assert!(!got.succeeded());
        let e = got.function_error().unwrap();
        assert_eq!(
            (e.error_type.as_str(), e.error_message.as_str()),
            ("Runtime.ExitError", "exit status 1")
        );
        let raised = br#"{"errorType":"ValueError","errorMessage":"bad input","stackTrace":["  File \"/var/task/app.py\", line 3, in handler\n"],"requestId":"r"}"#;
        let got = parse_invoke_result(
            "f",
            scar_core::RuntimeClient::Image,
            Some("Unhandled"),
            raised,
        )
        .unwrap();
        let e = got.function_error().unwrap();
        assert_eq!(e.error_type, "ValueError");
        assert_eq!(e.stack_trace.len(), 1);
        assert!(e.stack_trace[0].contains("app.py"), "{e:?}");
        assert!(!got.timed_out());
        let timeout = br#"{"errorType":"Sandbox.Timedout","errorMessage":"RequestId: r Error: Task timed out after 3.00 seconds"}"#;
        let got = parse_invoke_result("f", scar, Some("Unhandled"), timeout).unwrap();
        assert!(got.timed_out() && !got.succeeded());
        // A body that is not JSON keeps its text, the header its type.
        let got = parse_invoke_result("f", scar, Some("Unhandled"), b"not json").unwrap();
        assert_eq!(
            got.function_error()
                .map(|e| (e.error_type.as_str(), e.error_message.as_str())),
            Some(("Unhandled", "not json"))
        );

        // Scar's runtime answers scar's response; a runtime of the image's own answers the
        // function's result, as it is.
        let echo = br#"{"cmd_args":["ls"]}"#;
        let err = parse_invoke_result("f", scar, None, echo).unwrap_err();
        assert!(
            matches!(err, AwsError::NotScarResponse { ref raw, .. } if raw == r#"{"cmd_args":["ls"]}"#)
        );
        let own = parse_invoke_result("f", scar_core::RuntimeClient::Image, None, echo).unwrap();
        assert!(own.succeeded());
        assert_eq!(own.output, r#"{"cmd_args":["ls"]}"#);
    }
}
