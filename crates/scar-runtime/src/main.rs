//! `bootstrap`: the Lambda custom runtime that supervises a scar function.

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use scar_core::event::{Response, FUNCTION_ERROR_TYPE};
use scar_runtime::{Invocation, Supervisor};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let supervisor = match Supervisor::from_environment() {
        Ok(s) => std::sync::Arc::new(s),
        Err(e) => {
            eprintln!("scar: {e}");
            std::process::exit(3);
        }
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let supervisor = supervisor.clone();
        async move {
            let invocation = Invocation {
                request_id: event.context.request_id.clone(),
                deadline: event.context.deadline(),
                event: event.payload,
            };
            // The script blocks; keep the runtime's I/O free while it runs.
            let result = tokio::task::spawn_blocking(move || supervisor.invoke(&invocation))
                .await
                .map_err(|e| Diagnostic {
                    error_type: "ScarSupervisorError".into(),
                    error_message: e.to_string(),
                })?;
            answer(result)
        }
    }))
    .await
}

fn answer(result: Result<Response, scar_runtime::SupervisorError>) -> Result<Response, Diagnostic> {
    match result {
        Ok(response) if response.succeeded() => Ok(response),
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
