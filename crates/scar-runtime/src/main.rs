//! `bootstrap`: the Lambda custom runtime that supervises a scar function; with
//! `SCAR_EVENT` set, an AWS Batch job's command that runs that event once
//! ([`scar_runtime::oneshot`]).

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use scar_core::event::{ProxyResponse, Response, FUNCTION_ERROR_TYPE};
use scar_core::ExecutionMode;
use scar_runtime::{Invocation, Supervisor};

/// The version, where `scar --version` finds it in this file's bytes (kept by `#[used]`
/// through LTO and stripping).
#[used]
static EMBEDDED_VERSION: [u8; scar_runtime::VERSION_MARKER.len()] = scar_runtime::version_marker();

fn main() -> Result<(), lambda_runtime::Error> {
    // Lambda and AWS Batch start it without arguments; this is for people.
    if std::env::args().nth(1).as_deref() == Some("--version") {
        println!(
            "bootstrap (scar's supervisor) {}",
            env!("CARGO_PKG_VERSION")
        );
        return Ok(());
    }
    if scar_runtime::oneshot::requested() {
        // Before any thread starts: it sets SCAR_BATCH_JOB in the process's environment.
        std::process::exit(scar_runtime::oneshot::run_from_environment());
    }
    // Started by hand, or by a runtime that is not Lambda's: say so, where the Lambda
    // runtime crate would panic on the first variable it misses.
    if let Some(missing) = missing_lambda_environment() {
        eprintln!(
            "bootstrap: {missing}: this is scar's supervisor, started inside a function by \
             Lambda or by scar (`scar run`), or as an AWS Batch job's command with \
             SCAR_EVENT; `bootstrap --version` says which one it is"
        );
        std::process::exit(3);
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(lambda_loop())
}

/// What a Lambda runtime's environment lacks for the Runtime API client: the variables
/// Lambda always sets (and `scar`'s local Runtime API too), the memory size a number.
fn missing_lambda_environment() -> Option<String> {
    const REQUIRED: [&str; 4] = [
        "AWS_LAMBDA_RUNTIME_API",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    ];
    if let Some(name) = REQUIRED.iter().find(|n| std::env::var_os(n).is_none()) {
        return Some(format!("{name} is not set"));
    }
    let memory = std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").unwrap_or_default();
    if memory.parse::<i32>().is_err() {
        return Some(format!(
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE is {memory:?}, not a number of MB"
        ));
    }
    None
}

async fn lambda_loop() -> Result<(), lambda_runtime::Error> {
    let supervisor = match Supervisor::from_environment() {
        Ok(s) => std::sync::Arc::new(s),
        Err(e) => {
            eprintln!("scar: {e}");
            std::process::exit(3);
        }
    };
    // On AWS, a Batch mode function's job queue (the local provider runs jobs itself).
    let batch = scar_runtime::batch::BatchQueue::from_environment()
        .filter(|_| supervisor.function.execution_mode.uses_batch())
        .map(std::sync::Arc::new);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let supervisor = supervisor.clone();
        let batch = batch.clone();
        async move {
            let name = supervisor.function.name.clone();
            // An HTTP request is answered as API Gateway's proxy integration wants.
            let http = scar_core::event::Event::is_http(&event.payload)
                .then(|| event.context.request_id.clone());
            let invocation = Invocation {
                request_id: event.context.request_id.clone(),
                deadline: event.context.deadline(),
                event: event.payload,
            };
            if let Some(queue) = &batch {
                if supervisor.function.execution_mode == ExecutionMode::Batch {
                    // Every event is a job: nothing runs on Lambda.
                    let mut response = Response {
                        request_id: invocation.request_id.clone(),
                        ..Response::default()
                    };
                    queue
                        .hand_over(&name, &invocation.event, &mut response)
                        .await;
                    return answer(Ok(response), http.as_deref());
                }
            }
            // Kept for a hand-over at the threshold.
            let event = batch.as_ref().map(|_| invocation.event.clone());
            // The script blocks; keep the runtime's I/O free while it runs.
            let mut result = tokio::task::spawn_blocking(move || supervisor.invoke(&invocation))
                .await
                .map_err(|e| Diagnostic {
                    error_type: "ScarSupervisorError".into(),
                    error_message: e.to_string(),
                })?;
            if let (Ok(response), Some(queue), Some(event)) = (&mut result, &batch, &event) {
                if response.handed_over() {
                    queue.hand_over(&name, event, response).await;
                }
            }
            answer(result, http.as_deref())
        }
    }))
    .await
}

fn answer(
    result: Result<Response, scar_runtime::SupervisorError>,
    http: Option<&str>,
) -> Result<serde_json::Value, Diagnostic> {
    if let Some(request_id) = http {
        let proxy = match &result {
            Ok(response) => ProxyResponse::of(response),
            Err(e) => {
                eprintln!("scar: {e}");
                ProxyResponse::failed(request_id, &format!("scar: {e}"))
            }
        };
        return Ok(serde_json::to_value(proxy).unwrap_or_default());
    }
    match result {
        Ok(response) if response.succeeded() => {
            Ok(serde_json::to_value(response).unwrap_or_default())
        }
        Ok(response) => Err(Diagnostic {
            error_type: FUNCTION_ERROR_TYPE.into(),
            error_message: serde_json::to_string(&response).unwrap_or_default(),
        }),
        Err(e) => {
            eprintln!("scar: {e}");
            Err(Diagnostic {
                error_type: "ScarSupervisorError".into(),
                error_message: e.to_string(),
            })
        }
    }
}
