//! The Lambda Runtime API, served to one sandbox's runtime (scar's supervisor, or any
//! Runtime API client) at `127.0.0.1:9001` of the sandbox's own network, as on Lambda: `next` hands out invocations, `response` and `error` answer
//! them (202), as Lambda's own does. Where things go wrong it answers as Lambda's: a
//! response over [`MAX_RESPONSE_BYTES`] gets 413 and fails the invocation, `/error` keeps the
//! whole error body and the `Lambda-Runtime-Function-Error-Type` header, `/init/error` is
//! kept for the invocation that waits on the failed init.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use scar_core::event::{FunctionError, MAX_RESPONSE_BYTES};
use tokio::sync::{mpsc, oneshot, watch};

const PREFIX: &str = "/2018-06-01/runtime/";

/// An invocation waiting for the supervisor.
pub(crate) struct Pending {
    pub request_id: String,
    pub event: Bytes,
    /// Epoch milliseconds.
    pub deadline_ms: u64,
    pub function_arn: String,
    pub answer: oneshot::Sender<Answer>,
}

/// What the supervisor answered.
#[derive(Debug)]
pub(crate) enum Answer {
    /// `POST /invocation/<id>/response`.
    Response(Bytes),
    /// `POST /invocation/<id>/error`: the body with the error-type header folded in.
    Error(FunctionError),
    /// A response over [`MAX_RESPONSE_BYTES`]: refused with 413, as Lambda does.
    TooLarge,
}

/// Where the runtime's init phase is (it ends at its first `next`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Init {
    Running,
    /// The runtime asked for its first invocation.
    Done,
    /// The runtime posted `/runtime/init/error`.
    Failed(FunctionError),
}

struct Shared {
    next: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
    /// No invocation is handed out before this is true (the sandbox's network is up).
    ready: watch::Receiver<bool>,
    in_flight: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
    init: watch::Sender<Init>,
}

/// A running Runtime API for one sandbox.
pub(crate) struct RuntimeApi {
    pub queue: mpsc::Sender<Pending>,
    /// The runtime's init phase, as the server saw it.
    pub init: watch::Receiver<Init>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RuntimeApi {
    /// Starts serving on `listener` (the sandbox's, see [`crate::network`]); invocations
    /// are handed out once `ready` is true.
    pub fn serve(
        listener: std::net::TcpListener,
        ready: watch::Receiver<bool>,
    ) -> std::io::Result<RuntimeApi> {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let (queue, rx) = mpsc::channel(16);
        let (init_tx, init) = watch::channel(Init::Running);
        let shared = Arc::new(Shared {
            next: tokio::sync::Mutex::new(rx),
            ready,
            in_flight: Mutex::new(HashMap::new()),
            init: init_tx,
        });
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    // Out of descriptors, for a moment: no busy loop.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| serve(shared.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(RuntimeApi { queue, init, task })
    }
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

async fn serve(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let Some(route) = path.strip_prefix(PREFIX) else {
        return Ok(reply(StatusCode::NOT_FOUND, "unknown path"));
    };
    let route = route.to_string();
    match (req.method(), route.as_str()) {
        (&Method::GET, "invocation/next") => {
            shared.init.send_if_modified(|init| {
                let first = *init == Init::Running;
                if first {
                    *init = Init::Done;
                }
                first
            });
            // The runtime's init goes on meanwhile; its first invocation waits for the
            // network (a closed gate: the sandbox is going).
            let _ = shared.ready.clone().wait_for(|up| *up).await;
            let pending = shared.next.lock().await.recv().await;
            let Some(p) = pending else {
                return Ok(reply(StatusCode::GONE, "the sandbox is shutting down"));
            };
            shared
                .in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(p.request_id.clone(), p.answer);
            let mut response = reply(StatusCode::OK, p.event);
            let headers = response.headers_mut();
            let pairs = [
                ("lambda-runtime-aws-request-id", p.request_id.clone()),
                ("lambda-runtime-deadline-ms", p.deadline_ms.to_string()),
                ("lambda-runtime-invoked-function-arn", p.function_arn),
                ("lambda-runtime-trace-id", trace_id()),
                ("content-type", "application/json".to_string()),
            ];
            for (name, value) in pairs {
                if let Ok(v) = value.parse() {
                    headers.insert(name, v);
                }
            }
            Ok(response)
        }
        (&Method::POST, route) if route.starts_with("invocation/") => {
            let rest = &route["invocation/".len()..];
            let (id, kind) = match rest.rsplit_once('/') {
                Some((id, kind)) => (id.to_string(), kind.to_string()),
                None => return Ok(reply(StatusCode::NOT_FOUND, "unknown path")),
            };
            let header_type = error_type_header(&req);
            let body = read_body(req).await;
            let answer = match (kind.as_str(), body) {
                ("response", Some(body)) => Answer::Response(body),
                ("response", None) => Answer::TooLarge,
                ("error", body) => Answer::Error(FunctionError::from_runtime(
                    &body.unwrap_or_default(),
                    header_type.as_deref(),
                )),
                _ => return Ok(reply(StatusCode::NOT_FOUND, "unknown path")),
            };
            let too_large = matches!(answer, Answer::TooLarge);
            let sender = shared
                .in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            match sender {
                Some(tx) => {
                    let _ = tx.send(answer);
                    if too_large {
                        return Ok(reply(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            format!(
                                r#"{{"errorMessage":"Exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).","errorType":"RequestEntityTooLarge"}}"#
                            ),
                        ));
                    }
                    Ok(reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#))
                }
                None => Ok(reply(
                    StatusCode::BAD_REQUEST,
                    r#"{"errorType":"InvalidRequestID","errorMessage":"unknown request id"}"#,
                )),
            }
        }
        (&Method::POST, "init/error") => {
            let header_type = error_type_header(&req);
            let body = read_body(req).await.unwrap_or_default();
            let error = FunctionError::from_runtime(&body, header_type.as_deref());
            shared.init.send_replace(Init::Failed(error));
            Ok(reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#))
        }
        _ => Ok(reply(StatusCode::NOT_FOUND, "unknown path")),
    }
}

fn error_type_header(req: &Request<Incoming>) -> Option<String> {
    req.headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The body, or `None` when it is over [`MAX_RESPONSE_BYTES`]. The rest of a body over
/// the limit is read and dropped (up to [`DRAIN_BYTES`]), so that the runtime gets the 413
/// rather than a reset connection.
async fn read_body(req: Request<Incoming>) -> Option<Bytes> {
    let mut body = req.into_body();
    let mut kept = Vec::new();
    let mut seen = 0usize;
    while let Some(Ok(frame)) = body.frame().await {
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len();
        if seen <= MAX_RESPONSE_BYTES {
            kept.extend_from_slice(&data);
        } else if seen > DRAIN_BYTES {
            break;
        }
    }
    (seen <= MAX_RESPONSE_BYTES).then(|| Bytes::from(kept))
}

/// The most of an oversized body read before the connection is dropped.
const DRAIN_BYTES: usize = 64 << 20;

/// A trace header of X-Ray's form, as Lambda sends it: `Root=1-<epoch s, 8 hex>-<24 hex>`,
/// a `Parent` segment (16 hex) and the sampling decision (scar traces nothing: 0).
fn trace_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let root = uuid::Uuid::new_v4().simple().to_string();
    let parent = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "Root=1-{secs:08x}-{};Parent={};Sampled=0",
        &root[..24],
        &parent[..16]
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn trace_ids_have_lambdas_form() {
        scar_test_support::lambda::assert_trace_id(&super::trace_id());
    }
}
