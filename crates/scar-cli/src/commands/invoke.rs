//! `scar invoke`: a function called through its HTTP endpoint, as SCAR's `invoke` does and
//! as any client would: on AWS its API Gateway URL, locally the route of the running
//! `scar serve`. The body is a file (base64, as SCAR sends it) or JSON; what comes back is
//! SCAR's base64 response body, decoded.

use std::time::Duration;

use base64::Engine as _;
use scar_core::event::EXIT_CODE_HEADER;
use scar_core::lambda;
use scar_core::provider::Provider;
use scar_core::ExitStatus;

use super::{Failure, Status};
use crate::args::InvokeArgs;
use crate::printer::Printer;

/// How long a synchronous call may take: API Gateway's own limit is 29 s.
const CALL_TIMEOUT: Duration = Duration::from_secs(40);

pub async fn run<P: Provider>(p: &P, args: &InvokeArgs, printer: &Printer) -> Status {
    let (name, _) = crate::settings::named_function(args.name.as_deref(), args.file.as_deref())?;
    let query = parameters(&args.parameters)?;
    let (body, content_type) = match (&args.data_binary, &args.json_data) {
        (Some(file), _) => {
            let bytes =
                std::fs::read(file).map_err(scar_core::UsageError::unreadable(file.as_path()))?;
            let text = base64::engine::general_purpose::STANDARD.encode(bytes);
            (Some(text.into_bytes()), "application/octet-stream")
        }
        (None, Some(json)) => {
            serde_json::from_str::<serde::de::IgnoredAny>(json)
                .map_err(|e| Failure::usage(format!("-jd is not JSON: {e}")))?;
            (Some(json.clone().into_bytes()), "application/json")
        }
        (None, None) => (None, ""),
    };
    // Refused before anything is sent: the event that carries it must fit Lambda's limit.
    let (limit, kind) = match args.asynchronous {
        true => (lambda::MAX_ASYNC_PAYLOAD_BYTES, "asynchronous"),
        false => (lambda::MAX_SYNC_PAYLOAD_BYTES, "synchronous"),
    };
    let size = body.as_ref().map_or(0, Vec::len);
    if size > limit {
        return Err(Failure::usage(format!(
            "the request body is {size} bytes{}, over Lambda's {limit}-byte limit for {kind} invocations",
            if args.data_binary.is_some() { " once base64-encoded" } else { "" }
        )));
    }
    let info = p.function(&name).await?;
    let Some(url) = info.api_url.clone() else {
        let why = match (&info.spec.api_gateway, p.kind()) {
            (None, _) => format!(
                "function '{name}' has no HTTP endpoint: create it with an API Gateway (`-api NAME`, or `api_gateway: {{name: ...}}` in its file)"
            ),
            (Some(_), scar_core::config::ProviderKind::Local) => format!(
                "function '{name}''s endpoint is served by `scar serve`, and none is running on this scar home: start `scar serve` first"
            ),
            (Some(api), _) => format!("function '{name}''s API Gateway {api} has no URL"),
        };
        return Err(Failure::usage(why));
    };
    let client = reqwest::Client::builder()
        .timeout(CALL_TIMEOUT)
        .build()
        .map_err(|e| machine(format!("cannot make an HTTP client: {e}")))?;
    let mut request = match &body {
        Some(body) => client
            .post(&url)
            .header("Content-Type", content_type)
            .body(body.clone()),
        None => client.get(&url),
    };
    if !query.is_empty() {
        request = request.query(&query);
    }
    if args.asynchronous {
        request = request.header("X-Amz-Invocation-Type", "Event");
    }
    let answer = request.send().await.map_err(|e| {
        machine(format!("cannot reach {url}: {e}")).context(format!("invoking '{name}'"))
    })?;
    let status = answer.status();
    let header = |h: &str| {
        answer
            .headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let request_id = header("amz-lambda-request-id").or_else(|| header("x-amzn-requestid"));
    let exit_code = header(EXIT_CODE_HEADER).and_then(|c| c.parse::<i32>().ok());
    let bytes = answer
        .bytes()
        .await
        .map_err(|e| machine(format!("the answer from {url} broke off: {e}")))?;
    if args.asynchronous && status.as_u16() == 202 {
        if printer.json {
            printer.json(
                &serde_json::json!({"function": name, "status": 202, "request_id": request_id}),
            )?;
        } else {
            printer.line(format!("Request accepted: '{name}' runs on its own."));
        }
        return Ok(ExitStatus::Success);
    }
    let ran = matches!(status.as_u16(), 200 | 500);
    if !ran {
        // API Gateway's own answer (`{"message": ...}`): the function did not answer.
        let message = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        let failure = format!("{url} answered {status}: {message}");
        return match status.as_u16() {
            // Throttled, timed out, or the function's answer was not a proxy response.
            429 | 502 | 504 => Err(Failure {
                status: ExitStatus::FunctionFailed,
                error: anyhow::Error::msg(failure),
                help: Vec::new(),
            }),
            _ => Err(machine(failure)),
        };
    }
    // SCAR's response body is base64; a body that is not is kept as it is.
    let output = std::str::from_utf8(&bytes)
        .ok()
        .and_then(|t| {
            base64::engine::general_purpose::STANDARD
                .decode(t.trim())
                .ok()
        })
        .unwrap_or_else(|| bytes.to_vec());
    let ok = status.as_u16() == 200;
    if let Some(file) = &args.output_file {
        std::fs::write(file, &output).map_err(|e| {
            Failure::usage(format!(
                "cannot write the output to {}: {e}",
                file.display()
            ))
        })?;
    }
    if printer.json {
        let (text, encoding) = match String::from_utf8(output.clone()) {
            Ok(text) => (text, None),
            Err(_) => (
                base64::engine::general_purpose::STANDARD.encode(&output),
                Some("base64"),
            ),
        };
        let mut v = serde_json::json!({
            "function": name, "status": status.as_u16(), "request_id": request_id,
            "exit_code": exit_code,
        });
        match &args.output_file {
            Some(file) => v["output_file"] = serde_json::json!(file),
            None => {
                v["output"] = serde_json::json!(text);
                if let Some(encoding) = encoding {
                    v["output_encoding"] = serde_json::json!(encoding);
                }
            }
        }
        printer.json(&v)?;
    } else if let Some(file) = &args.output_file {
        printer.note(format!(
            "the output ({} bytes) is in {}",
            output.len(),
            file.display()
        ));
    } else {
        printer.raw(&output)?;
    }
    if !ok && !printer.json {
        printer.warn(match exit_code {
            Some(code) => format!("function '{name}' failed: its script exited with {code}"),
            None => format!("function '{name}' failed (timed out, or could not start)"),
        });
    }
    Ok(ExitStatus::function(ok))
}

/// `-p KEY=VALUE` (repeatable) or SCAR's `-p '{"KEY": "VALUE"}'`.
fn parameters(given: &[String]) -> Result<Vec<(String, String)>, Failure> {
    let mut out = Vec::new();
    for p in given {
        if p.trim_start().starts_with('{') {
            let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(p)
                .map_err(|e| Failure::usage(format!("-p {p}: not a JSON object: {e}")))?;
            for (k, v) in map {
                let v = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                out.push((k, v));
            }
        } else {
            let (k, v) = p
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| {
                    Failure::usage(format!("-p {p}: give KEY=VALUE, or a JSON object"))
                })?;
            out.push((k.to_string(), v.to_string()));
        }
    }
    Ok(out)
}

fn machine(message: String) -> Failure {
    Failure {
        status: ExitStatus::Provider,
        error: anyhow::Error::msg(message),
        help: Vec::new(),
    }
}
