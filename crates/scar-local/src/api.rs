//! The Lambda Runtime API, served on 127.0.0.1 to one sandbox's supervisor: `next` hands
//! out invocations, `response` and `error` answer them (202), as Lambda's own does.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::{mpsc, oneshot};

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
    /// `POST /invocation/<id>/error`.
    Error(Bytes),
}

struct Shared {
    next: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
    in_flight: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
}

/// A running Runtime API for one sandbox.
pub(crate) struct RuntimeApi {
    /// `host:port`, for `AWS_LAMBDA_RUNTIME_API`.
    pub address: String,
    pub queue: mpsc::Sender<Pending>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RuntimeApi {
    /// Binds a free loopback port and starts serving.
    pub async fn start() -> std::io::Result<RuntimeApi> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?.to_string();
        let (queue, rx) = mpsc::channel(16);
        let shared = Arc::new(Shared {
            next: tokio::sync::Mutex::new(rx),
            in_flight: Mutex::new(HashMap::new()),
        });
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
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
        Ok(RuntimeApi {
            address,
            queue,
            task,
        })
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
                (
                    "lambda-runtime-trace-id",
                    format!(
                        "Root=1-{:08x}-{}",
                        p.deadline_ms / 1000,
                        &p.request_id.replace('-', "")[..24.min(p.request_id.len())]
                    ),
                ),
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
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let answer = match kind.as_str() {
                "response" => Answer::Response(body),
                "error" => Answer::Error(body),
                _ => return Ok(reply(StatusCode::NOT_FOUND, "unknown path")),
            };
            let sender = shared
                .in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            match sender {
                Some(tx) => {
                    let _ = tx.send(answer);
                    Ok(reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#))
                }
                None => Ok(reply(
                    StatusCode::BAD_REQUEST,
                    r#"{"errorType":"InvalidRequestID","errorMessage":"unknown request id"}"#,
                )),
            }
        }
        (&Method::POST, "init/error") => Ok(reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)),
        _ => Ok(reply(StatusCode::NOT_FOUND, "unknown path")),
    }
}
