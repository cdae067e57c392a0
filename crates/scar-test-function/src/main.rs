//! A Lambda function on AWS's Rust runtime client (`lambda_runtime`), for the tests of the
//! local provider's Runtime API: a real client that is not scar's supervisor.
//!
//! The event's `cmd_args` (what `scar run -n F ARGS...` sends) say what to do:
//! An event `{"echo": X}` is answered X.
//! `context` answers the invocation's context and environment (a storage event: the count
//! of invocations this process served, also printed to the log); `fail` returns an error of
//! type `TestFunctionError`; `sleep MS` sleeps; `big BYTES` answers a string that long.
//! Its init reads two variables: `TEST_INIT_SLEEP_MS` (sleep before the first `next`) and
//! `TEST_HANDLER` (else `_HANDLER`): a handler other than `scar` or `function.handler` is
//! reported to `/runtime/init/error` as `Runtime.HandlerNotFound`, as AWS's runtimes do.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::{json, Value};

static INVOCATIONS: AtomicU64 = AtomicU64::new(0);

fn main() -> Result<(), lambda_runtime::Error> {
    if let Some(ms) = std::env::var("TEST_INIT_SLEEP_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        std::thread::sleep(Duration::from_millis(ms));
    }
    let handler = std::env::var("TEST_HANDLER")
        .or_else(|_| std::env::var("_HANDLER"))
        .unwrap_or_default();
    if handler != "scar" && handler != "function.handler" {
        // The type only in the `Lambda-Runtime-Function-Error-Type` header: Lambda takes it
        // from there when the body names none.
        let body = json!({
            "errorMessage": format!("{handler} is not a handler of this function"),
            "stackTrace": [],
        });
        post_init_error(&body.to_string())?;
        std::process::exit(1);
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(lambda_runtime::run(service_fn(handle)))
}

async fn handle(event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
    let count = INVOCATIONS.fetch_add(1, Ordering::SeqCst) + 1;
    let args: Vec<String> = event.payload["cmd_args"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let number = |i: usize| args.get(i).and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
    if let Some(echo) = event.payload.get("echo") {
        return Ok(echo.clone());
    }
    if event.payload.get("Records").is_some() {
        // A storage event (the launcher's): which runtime process served it.
        println!("invocation {count} of runtime {}", std::process::id());
        return Ok(json!({"invocations": count}));
    }
    match args.first().map(String::as_str) {
        Some("context") => {
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let ctx = &event.context;
            let env = |name: &str| std::env::var(name).unwrap_or_default();
            Ok(json!({
                "request_id": ctx.request_id,
                "deadline_ms": ctx.deadline,
                "remaining_ms": ctx.deadline.saturating_sub(now_ms),
                "function_arn": ctx.invoked_function_arn,
                "trace_id": ctx.xray_trace_id,
                "function_name": ctx.env_config.function_name,
                "memory": ctx.env_config.memory,
                "version": ctx.env_config.version,
                "log_group": ctx.env_config.log_group,
                "log_stream": ctx.env_config.log_stream,
                "invocations": count,
                "pid": std::process::id(),
                "env": {
                    "LAMBDA_RUNTIME_DIR": env("LAMBDA_RUNTIME_DIR"),
                    "LAMBDA_TASK_ROOT": env("LAMBDA_TASK_ROOT"),
                    "AWS_LAMBDA_INITIALIZATION_TYPE": env("AWS_LAMBDA_INITIALIZATION_TYPE"),
                    "AWS_REGION": env("AWS_REGION"),
                    "_HANDLER": env("_HANDLER"),
                    "FROM_IMAGE": env("FROM_IMAGE"),
                    "FROM_INIT": env("FROM_INIT"),
                },
                "cwd": std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default(),
            }))
        }
        Some("fail") => Err(Diagnostic {
            error_type: "TestFunctionError".into(),
            error_message: "failed on purpose".into(),
        }),
        Some("sleep") => {
            tokio::time::sleep(Duration::from_millis(number(1))).await;
            Ok(json!("slept"))
        }
        Some("big") => Ok(Value::String("x".repeat(number(1) as usize))),
        // The runtime dies in the middle of an invocation.
        Some("exit") => std::process::exit(number(1) as i32),
        other => Err(Diagnostic {
            error_type: "TestFunctionUsage".into(),
            error_message: format!("unknown command {other:?}"),
        }),
    }
}

/// `POST /runtime/init/error`, which `lambda_runtime` does not offer, over plain HTTP/1.1.
fn post_init_error(body: &str) -> std::io::Result<()> {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API").unwrap_or_default();
    let mut stream = std::net::TcpStream::connect(&api)?;
    write!(
        stream,
        "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: {api}\r\nLambda-Runtime-Function-Error-Type: Runtime.HandlerNotFound\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(())
}
