//! Warm reuse for a synchronous invocation (`scar run`): handing it to the `scar serve`
//! running on the same scar home, so that it runs in one of that server's warm sandboxes
//! instead of a sandbox started for it (what Lambda does with a function invoked again
//! while an earlier sandbox is still up).
//!
//! The invocation goes to the server's Lambda Invoke API with [`FULL_RESPONSE_HEADER`],
//! which makes the server answer scar's whole [`Response`] (exit code, output, uploads,
//! log stream) rather than Lambda's payload, so that the caller prints what a fresh
//! sandbox would have given it. An error comes back with its category, so that the exit
//! status is the same too.
//!
//! Nothing is run twice: the caller falls back to a sandbox of its own only when the
//! server cannot be reached at all (no connection, so no request was sent). Turned on by
//! [`crate::LocalProvider::with_warm_reuse`].

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Request, StatusCode};
use scar_core::event::Response;
use scar_core::ErrorCategory;

use crate::LocalError;

/// The request header that asks `scar serve`'s Invoke API for scar's whole [`Response`].
pub(crate) const FULL_RESPONSE_HEADER: &str = "x-scar-response";
/// Its value.
pub(crate) const FULL_RESPONSE: &str = "full";

/// How an error's category travels in the server's error body.
pub(crate) fn category_name(category: ErrorCategory) -> &'static str {
    match category {
        ErrorCategory::Usage => "usage",
        ErrorCategory::Function => "function",
        ErrorCategory::Provider => "provider",
    }
}

fn category_of(name: Option<&str>) -> ErrorCategory {
    match name {
        Some("usage") => ErrorCategory::Usage,
        Some("function") => ErrorCategory::Function,
        _ => ErrorCategory::Provider,
    }
}

/// Invokes `function` with `event` through the server at `url` (`http://HOST:PORT`),
/// waiting at most `wait` for the answer: the server's answer (its response, or why it
/// did not run it), or `None` when no server could be reached and nothing was sent.
pub(crate) async fn invoke(
    url: &str,
    function: &str,
    event: Bytes,
    wait: Duration,
) -> Option<Result<Response, LocalError>> {
    let address = url.strip_prefix("http://")?;
    let stream = tokio::net::TcpStream::connect(address).await.ok()?;
    let _ = stream.set_nodelay(true);
    let failed = |why: String| {
        Some(Err(LocalError::Served {
            category: ErrorCategory::Provider,
            message: format!("the invocation was handed to `scar serve` at {url}, which {why}: `scar log -n {function}` shows whether it ran"),
        }))
    };
    let exchange = async {
        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
        let request = Request::post(format!("/2015-03-31/functions/{function}/invocations"))
            .header(HOST, address)
            .header(CONTENT_TYPE, "application/json")
            .header(FULL_RESPONSE_HEADER, FULL_RESPONSE)
            .body(Full::new(event))
            .expect("a valid request");
        let answer = async {
            let response = sender.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        };
        tokio::select! {
            answer = answer => answer,
            // The connection ends first only when it failed; its error is the answer's.
            Err(e) = connection => Err(e),
        }
    };
    let (status, body) = match tokio::time::timeout(wait, exchange).await {
        Err(_) => return failed(format!("did not answer within {} s", wait.as_secs())),
        Ok(Err(e)) => return failed(format!("broke off: {e}")),
        Ok(Ok(answer)) => answer,
    };
    if status == StatusCode::OK {
        return Some(serde_json::from_slice::<Response>(&body).map_err(|e| {
            LocalError::Served {
                category: ErrorCategory::Provider,
                message: format!("`scar serve` at {url} answered something that is not scar's response ({e}): is it a scar of another version?"),
            }
        }));
    }
    let error: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let message = ["message", "Message"]
        .iter()
        .find_map(|k| error.get(k).and_then(|m| m.as_str()))
        .unwrap_or("no message")
        .to_string();
    let category = match status {
        StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE => {
            ErrorCategory::Usage
        }
        _ => category_of(error.get("category").and_then(|c| c.as_str())),
    };
    let message = match status {
        StatusCode::TOO_MANY_REQUESTS => format!(
            "function {function:?} is throttled: `scar serve` at {url} already runs it as many times as its reserved concurrency allows ({message})"
        ),
        _ => message,
    };
    Some(Err(LocalError::Served { category, message }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_travel_both_ways() {
        for c in [
            ErrorCategory::Usage,
            ErrorCategory::Function,
            ErrorCategory::Provider,
        ] {
            assert_eq!(category_of(Some(category_name(c))), c);
        }
        assert_eq!(category_of(None), ErrorCategory::Provider);
    }
}
