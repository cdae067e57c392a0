//! The Lambda Invoke API over HTTP (`scar serve`'s listener), so that the AWS CLI, boto3
//! and the AWS SDKs call local functions with `--endpoint-url` and nothing else changed:
//!
//! - `POST /2015-03-31/functions/{name}/invocations`: `X-Amz-Invocation-Type`
//!   `RequestResponse` (the default), `Event` (202, run in the background) or `DryRun`
//!   (204); a function error answers `X-Amz-Function-Error: Unhandled` with Lambda's error
//!   body; `X-Amz-Log-Type: Tail` adds `X-Amz-Log-Result` (the end of the log, base64).
//! - `GET /2015-03-31/functions/{name}`: GetFunction's configuration.
//!
//! Names are taken as Lambda takes them (a name, an ARN or a partial ARN, with `$LATEST` as
//! the only qualifier) and never reach the file system unless they are valid names. Errors
//! are Lambda's (`x-amzn-ErrorType` and `{"Type":"User","message":...}`): 404 for a missing
//! function, 413 for a payload over Lambda's limit (refused from its `Content-Length` before
//! it is read), 400 for a payload that is not JSON, 429 beyond the function's reserved
//! concurrency. Each invocation takes a warm sandbox or starts one, so concurrent requests
//! run in parallel each in its own sandbox; idle sandboxes are reclaimed after a while.
//!
//! The same listener serves the dashboard (`/`, `/api/...`: [`crate::dashboard`]).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use scar_core::event::{ErrorPayload, FUNCTION_ERROR_TYPE};
use scar_core::lambda;
use scar_core::provider::LogQuery;
use scar_core::{Categorized as _, RuntimeClient};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

use crate::dashboard::{self, Dashboard};
use crate::gateway;
use crate::handoff;
use crate::state::StoredFunction;
use crate::{LocalError, LocalProvider};

/// The API version Lambda's paths start with.
const PREFIX: &str = "/2015-03-31/functions/";

/// Where `scar serve` listens when not told: SAM CLI's `start-lambda` port, on loopback.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3001";

/// Lambda's default account limit on concurrent executions: a function without reserved
/// concurrency is throttled beyond it, as on Lambda (never earlier).
pub const ACCOUNT_CONCURRENCY: u32 = 1000;

/// How much of an invocation's log `X-Amz-Log-Result` carries (Lambda's: the last 4 KB).
const LOG_TAIL_BYTES: usize = 4096;

/// How long a client may take to send its request headers, and then its body.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
const BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long requests under way get to finish once `scar serve` stops.
const GRACE: Duration = Duration::from_secs(30);

/// What the HTTP listener is told.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpOptions {
    /// A sandbox idle this long is stopped (Lambda reclaims idle environments too).
    pub idle_timeout: Duration,
    /// Concurrent invocations of a function without reserved concurrency.
    pub account_concurrency: u32,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            idle_timeout: Duration::from_secs(600),
            account_concurrency: ACCOUNT_CONCURRENCY,
        }
    }
}

impl HttpOptions {
    /// Sandboxes idle for `idle` are stopped.
    pub fn with_idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = idle;
        self
    }
}

/// A bound listener: bind it first, so that the caller can say where it listens.
#[derive(Debug)]
pub struct HttpListener {
    listener: TcpListener,
    address: SocketAddr,
}

impl HttpListener {
    /// Listens on `address` (port 0: any free port).
    pub async fn bind(address: SocketAddr) -> Result<HttpListener, LocalError> {
        let listener = TcpListener::bind(address)
            .await
            .map_err(LocalError::io("cannot listen on", address.to_string()))?;
        let address = listener
            .local_addr()
            .map_err(LocalError::io("cannot listen on", address.to_string()))?;
        Ok(HttpListener { listener, address })
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

/// Invocations under way per function, against each one's limit.
#[derive(Default)]
struct Slots {
    running: Mutex<HashMap<String, u32>>,
}

/// One invocation's slot, given back when dropped.
struct Slot<'a> {
    slots: &'a Slots,
    function: String,
}

impl Slots {
    fn take(&self, function: &str, limit: u32) -> Option<Slot<'_>> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let n = running.entry(function.to_string()).or_default();
        if *n >= limit {
            return None;
        }
        *n += 1;
        Some(Slot {
            slots: self,
            function: function.to_string(),
        })
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut running = self.slots.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = running.get_mut(&self.function) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                running.remove(&self.function);
            }
        }
    }
}

/// An `Event` invocation, run after its 202 went out.
struct Queued {
    stored: StoredFunction,
    event: Bytes,
    request_id: String,
    /// Where the result goes, for a caller that waits for it (API Gateway's route, which
    /// stops waiting at its integration timeout while the invocation runs on).
    reply: Option<oneshot::Sender<Result<scar_core::event::Response, LocalError>>>,
}

/// What `serve.json` in the scar home holds while `scar serve` listens: where, and which
/// process (so that a server killed without cleaning up is seen as gone).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct ServeFile {
    pub url: String,
    pub pid: u32,
}

/// What the request handlers share.
struct Context<'a> {
    provider: &'a LocalProvider,
    options: HttpOptions,
    slots: Slots,
    queue: mpsc::UnboundedSender<Queued>,
    dashboard: std::sync::Arc<Dashboard>,
    /// Turns true when `scar serve` stops (the dashboard's event streams end then).
    stop: watch::Receiver<bool>,
}

type Reply = Response<Full<Bytes>>;

impl LocalProvider {
    /// Writes `serve.json` in the home: where this process serves (for `ls`, `invoke` and
    /// `run --warm`). [`LocalProvider::serve_http`] does it too; a frontend calls it first
    /// when it says where it listens, so that whoever reads that finds the file already.
    /// Best effort: without it, `ls` shows no local endpoint URLs.
    pub fn announce(&self, listener: &HttpListener) {
        let url = format!("http://{}", listener.address());
        let pid = std::process::id();
        let _ = std::fs::write(self.layout().serve_file(), to_json(&ServeFile { url, pid }));
    }

    /// Serves the Lambda Invoke API on `listener` until `shutdown` completes; then stops
    /// taking connections, lets the requests and `Event` invocations under way finish
    /// (within a grace period) and stops the warm sandboxes.
    pub async fn serve_http(
        &self,
        listener: HttpListener,
        options: HttpOptions,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), LocalError> {
        let (queue, mut queued) = mpsc::unbounded_channel::<Queued>();
        let idle_timeout = options.idle_timeout;
        let (stop_tx, stop_rx) = watch::channel(false);
        let url = format!("http://{}", listener.address());
        let dashboard = Dashboard::new(self.layout().clone(), self.buckets().clone(), url.clone());
        let context = Context {
            provider: self,
            options,
            slots: Slots::default(),
            queue,
            dashboard: std::sync::Arc::new(dashboard),
            stop: stop_rx.clone(),
        };
        let context = &context;
        let mut connections = FuturesUnordered::new();
        let mut background = FuturesUnordered::new();
        let mut reclaim = tokio::time::interval((idle_timeout / 4).max(Duration::from_secs(1)));
        let mut shutdown = std::pin::pin!(shutdown);
        let serve_file = self.layout().serve_file();
        let pid = std::process::id();
        self.announce(&listener);
        // Its result is in the function's log, as on Lambda.
        let run_queued = |q: Queued| async move {
            let result = self
                .invoke_event(&q.stored, q.event, Some(q.request_id))
                .await;
            if let Ok(response) = &result {
                let function_dir = self.layout().function_dir(&q.stored.info.spec.name);
                crate::records::note_invocation(&function_dir, response);
            }
            if let Some(reply) = q.reply {
                let _ = reply.send(result);
            }
        };
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.listener.accept() => {
                    // A failed accept (out of descriptors) is the client's loss, not serve's.
                    let Ok((stream, _)) = accepted else { continue };
                    let _ = stream.set_nodelay(true);
                    let mut stop = stop_rx.clone();
                    connections.push(async move {
                        let service = hyper::service::service_fn(move |req| context.handle(req));
                        let conn = hyper::server::conn::http1::Builder::new()
                            .timer(hyper_util::rt::TokioTimer::new())
                            .header_read_timeout(HEADER_TIMEOUT)
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                        let mut conn = std::pin::pin!(conn);
                        tokio::select! {
                            _ = conn.as_mut() => return,
                            _ = stop.wait_for(|s| *s) => {}
                        }
                        conn.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(GRACE, conn).await;
                    });
                }
                Some(q) = queued.recv() => background.push(run_queued(q)),
                Some(()) = connections.next(), if !connections.is_empty() => {}
                Some(()) = background.next(), if !background.is_empty() => {}
                _ = reclaim.tick() => {
                    for mut sandbox in self.reclaim_idle(idle_timeout) {
                        sandbox.kill().await;
                    }
                }
            }
        }
        drop(listener);
        let _ = stop_tx.send(true);
        let drain = async {
            loop {
                tokio::select! {
                    Some(()) = connections.next(), if !connections.is_empty() => {}
                    Some(()) = background.next(), if !background.is_empty() => {}
                    Some(q) = queued.recv(), if !connections.is_empty() => {
                        background.push(run_queued(q));
                    }
                    else => break,
                }
            }
        };
        let _ = tokio::time::timeout(GRACE, drain).await;
        self.stop_sandboxes().await;
        // Another server may have taken the home over since: remove only our own.
        let ours = std::fs::read(&serve_file)
            .ok()
            .and_then(|b| serde_json::from_slice::<ServeFile>(&b).ok())
            .is_some_and(|s| s.pid == pid);
        if ours {
            let _ = std::fs::remove_file(&serve_file);
        }
        Ok(())
    }
}

/// How the caller asked to invoke (`X-Amz-Invocation-Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InvocationType {
    RequestResponse,
    Event,
    DryRun,
}

impl Context<'_> {
    async fn handle(
        &self,
        req: Request<Incoming>,
    ) -> Result<Response<dashboard::Body>, Infallible> {
        if dashboard::owns(req.uri().path()) {
            return Ok(self.dashboard.handle(req, self.stop.clone()).await);
        }
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut reply = match self.route(req, &request_id).await {
            Ok(reply) => reply,
            Err(error) => error.reply(),
        };
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            reply
                .headers_mut()
                .insert(HeaderName::from_static("x-amzn-requestid"), v);
        }
        Ok(reply.map(|body| body.boxed_unsync()))
    }

    async fn route(&self, req: Request<Incoming>, request_id: &str) -> Result<Reply, ApiError> {
        let path = req.uri().path().to_string();
        if path.starts_with(gateway::PREFIX) {
            let (status, headers, body) = self.api_gateway(req, request_id).await;
            let mut out = Response::new(Full::new(body));
            *out.status_mut() = status;
            out.headers_mut().extend(headers);
            return Ok(out);
        }
        let Some(rest) = path.strip_prefix(PREFIX) else {
            return Err(ApiError::unknown_operation());
        };
        let (raw_name, operation) = match rest.split_once('/') {
            Some((name, "invocations")) => (name, Operation::Invoke),
            Some(_) => return Err(ApiError::unknown_operation()),
            None => (rest, Operation::GetFunction),
        };
        let expected = match operation {
            Operation::Invoke => Method::POST,
            Operation::GetFunction => Method::GET,
        };
        if req.method() != expected {
            return Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowedException",
                format!("{} is not allowed here: use {expected}", req.method()),
            ));
        }
        let qualifier = query_param(req.uri().query(), "Qualifier");
        let name = FunctionName::parse(raw_name, qualifier.as_deref())?;
        match operation {
            Operation::Invoke => self.invoke(req, &name, request_id).await,
            Operation::GetFunction => self.get_function(&name).await,
        }
    }

    /// A request to a function's API Gateway route, answered as API Gateway answers.
    async fn api_gateway(&self, req: Request<Incoming>, request_id: &str) -> gateway::Answer {
        let not_found = || gateway::own(StatusCode::NOT_FOUND, "Not Found");
        let path = req.uri().path().to_string();
        let Some((raw_name, user_path)) = gateway::parse_route(&path) else {
            return not_found();
        };
        let Ok(name) = FunctionName::parse(raw_name, None) else {
            return not_found();
        };
        let stored = match self.load(&name) {
            Ok(stored) => stored,
            Err(e) if e.status == StatusCode::NOT_FOUND => return not_found(),
            Err(_) => {
                return gateway::own(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
            }
        };
        let asynchronous = req
            .headers()
            .get("x-amz-invocation-type")
            .is_some_and(|v| v.as_bytes() == b"Event");
        let limit = match asynchronous {
            true => lambda::MAX_ASYNC_PAYLOAD_BYTES,
            false => lambda::MAX_SYNC_PAYLOAD_BYTES,
        };
        let too_long = || gateway::own(StatusCode::PAYLOAD_TOO_LARGE, "Request Too Long");
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|size| size > limit) {
            return too_long();
        }
        let (parts, body) = req.into_parts();
        let body = match read_body(body, limit).await {
            Ok(body) => body,
            Err(e) if e.status == StatusCode::PAYLOAD_TOO_LARGE => return too_long(),
            Err(e) => return gateway::own(e.status, "Bad Request"),
        };
        let event = gateway::proxy_event(
            &parts.method,
            &user_path,
            parts.uri.query(),
            &parts.headers,
            &name.name,
            request_id,
            &body,
        );
        let event = to_json(&event);
        if event.len() > limit {
            return too_long();
        }
        let spec = &stored.info.spec;
        let limit = spec
            .reserved_concurrency
            .unwrap_or(self.options.account_concurrency);
        let slot = match asynchronous {
            true => None,
            false => match self.slots.take(&spec.name, limit) {
                Some(slot) => Some(slot),
                None => return gateway::own(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests"),
            },
        };
        let (tx, rx) = oneshot::channel();
        let queued = Queued {
            stored,
            event,
            request_id: request_id.to_string(),
            reply: (!asynchronous).then_some(tx),
        };
        if self.queue.send(queued).is_err() {
            return gateway::own(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
        }
        if asynchronous {
            return gateway::own(StatusCode::ACCEPTED, "Request accepted");
        }
        let answer = match tokio::time::timeout(gateway::INTEGRATION_TIMEOUT, rx).await {
            Err(_) => gateway::own(StatusCode::GATEWAY_TIMEOUT, "Endpoint request timed out"),
            Ok(Ok(Ok(response))) => gateway::answer(
                &response.output_bytes(),
                response.function_error().is_some(),
            ),
            Ok(_) => gateway::own(StatusCode::BAD_GATEWAY, "Internal server error"),
        };
        drop(slot);
        answer
    }

    /// The stored function `name` stands for: 404 when there is none.
    fn load(&self, name: &FunctionName) -> Result<StoredFunction, ApiError> {
        match self.provider.layout().load(&name.name) {
            Ok(stored) => Ok(stored),
            Err(e) if e.is_not_found() => Err(ApiError::not_found(&self.arn(&name.name))),
            Err(e) => Err(ApiError::service(&e)),
        }
    }

    fn arn(&self, name: &str) -> String {
        format!(
            "arn:aws:lambda:{}:000000000000:function:{name}",
            self.provider.region()
        )
    }

    async fn invoke(
        &self,
        req: Request<Incoming>,
        name: &FunctionName,
        request_id: &str,
    ) -> Result<Reply, ApiError> {
        let header = |h: &str| {
            req.headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let kind = match header("x-amz-invocation-type").as_deref() {
            None | Some("RequestResponse") => InvocationType::RequestResponse,
            Some("Event") => InvocationType::Event,
            Some("DryRun") => InvocationType::DryRun,
            Some(other) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameterValueException",
                    format!(
                        "invalid X-Amz-Invocation-Type {other:?}: RequestResponse, Event or DryRun"
                    ),
                ))
            }
        };
        let tail = header("x-amz-log-type").as_deref() == Some("Tail");
        // A `scar run` handed over (see `handoff`): scar's whole response, not Lambda's.
        let full = header(handoff::FULL_RESPONSE_HEADER).as_deref() == Some(handoff::FULL_RESPONSE);
        let limit = match kind {
            InvocationType::Event => lambda::MAX_ASYNC_PAYLOAD_BYTES,
            _ => lambda::MAX_SYNC_PAYLOAD_BYTES,
        };
        // Refused before a byte of it is read.
        let declared = header(CONTENT_LENGTH.as_str()).and_then(|v| v.parse::<usize>().ok());
        if let Some(size) = declared.filter(|s| *s > limit) {
            return Err(ApiError::too_large(size, limit));
        }
        let stored = self.load(name)?;
        let body = read_body(req.into_body(), limit).await?;
        let event = if body.iter().all(u8::is_ascii_whitespace) {
            Bytes::from_static(b"{}")
        } else {
            if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestContentException",
                    format!("Could not parse request body into json: {e}"),
                ));
            }
            body
        };
        match kind {
            InvocationType::DryRun => Ok(reply(StatusCode::NO_CONTENT, Bytes::new())),
            InvocationType::Event => {
                let queued = Queued {
                    stored,
                    event,
                    request_id: request_id.to_string(),
                    reply: None,
                };
                if self.queue.send(queued).is_err() {
                    return Err(ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "ServiceException",
                        "scar serve is stopping".to_string(),
                    ));
                }
                Ok(reply(StatusCode::ACCEPTED, Bytes::new()))
            }
            InvocationType::RequestResponse => {
                let spec = &stored.info.spec;
                let (limit, reason) = match spec.reserved_concurrency {
                    Some(n) => (n, "ReservedFunctionConcurrentInvocationLimitExceeded"),
                    None => (
                        self.options.account_concurrency,
                        "ConcurrentInvocationLimitExceeded",
                    ),
                };
                let Some(_slot) = self.slots.take(&spec.name, limit) else {
                    return Err(ApiError::throttled(reason));
                };
                let response = self
                    .provider
                    .invoke_event(&stored, event, Some(request_id.to_string()))
                    .await
                    .map_err(|e| ApiError::service(&e))?;
                let function_dir = self.provider.layout().function_dir(&spec.name);
                crate::records::note_invocation(&function_dir, &response);
                if full {
                    return Ok(reply(StatusCode::OK, to_json(&response)));
                }
                let (payload, unhandled) = lambda_answer(spec.runtime_client, &response);
                let mut out = reply(StatusCode::OK, payload);
                let headers = out.headers_mut();
                headers.insert(
                    HeaderName::from_static("x-amz-executed-version"),
                    HeaderValue::from_static("$LATEST"),
                );
                if unhandled {
                    headers.insert(
                        HeaderName::from_static("x-amz-function-error"),
                        HeaderValue::from_static("Unhandled"),
                    );
                }
                if tail {
                    let log = self.log_tail(&spec.name, &response.log_stream, request_id);
                    if let Ok(v) = HeaderValue::from_str(&log) {
                        headers.insert(HeaderName::from_static("x-amz-log-result"), v);
                    }
                }
                Ok(out)
            }
        }
    }

    /// The end of invocation `request_id`'s log lines, base64 (`X-Amz-Log-Result`).
    fn log_tail(&self, function: &str, stream: &str, request_id: &str) -> String {
        let query = LogQuery {
            stream: (!stream.is_empty()).then(|| stream.to_string()),
            request_id: Some(request_id.to_string()),
        };
        let dir = self.provider.layout().logs(function);
        let lines = crate::logs::read(&dir, &query).unwrap_or_default();
        let mut text = String::new();
        for line in lines {
            text.push_str(&line.message);
            text.push('\n');
        }
        let bytes = text.as_bytes();
        let tail = &bytes[bytes.len().saturating_sub(LOG_TAIL_BYTES)..];
        base64::engine::general_purpose::STANDARD.encode(tail)
    }

    async fn get_function(&self, name: &FunctionName) -> Result<Reply, ApiError> {
        let stored = self.load(name)?;
        let spec = &stored.info.spec;
        let mut configuration = json!({
            "FunctionName": spec.name,
            "FunctionArn": self.arn(&spec.name),
            "Description": spec.description,
            "Timeout": spec.timeout_s,
            "MemorySize": spec.memory_mb,
            "LastModified": stored.info.created,
            "Version": "$LATEST",
            "PackageType": "Image",
            "State": "Active",
            "LastUpdateStatus": "Successful",
            "Architectures": ["x86_64"],
            "Environment": {"Variables": spec.lambda_environment},
        });
        if let Some(arch) = std::env::consts::ARCH.eq("aarch64").then_some("arm64") {
            configuration["Architectures"] = json!([arch]);
        }
        let mut body = json!({
            "Configuration": configuration,
            "Code": {"RepositoryType": "ECR", "ImageUri": spec.image},
            "Tags": {"createdby": "scar"},
        });
        if let Some(n) = spec.reserved_concurrency {
            body["Concurrency"] = json!({"ReservedConcurrentExecutions": n});
        }
        Ok(reply(StatusCode::OK, body.to_string()))
    }
}

enum Operation {
    Invoke,
    GetFunction,
}

/// A function as Lambda's paths name it: a name, an ARN
/// (`arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`) or a partial ARN
/// (`ACCOUNT:function:NAME`, `NAME:QUALIFIER`); the only version here is `$LATEST`.
#[derive(Debug, PartialEq, Eq)]
struct FunctionName {
    name: String,
}

impl FunctionName {
    fn parse(raw: &str, qualifier: Option<&str>) -> Result<FunctionName, ApiError> {
        let invalid = |value: &str| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                format!("1 validation error detected: Value '{value}' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{{2}}(-gov)?-[a-z]+-\\d{{1}}:)?(\\d{{12}}:)?(function:)?([a-zA-Z0-9-_\\.]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?"),
            )
        };
        let decoded = percent_decode(raw).ok_or_else(|| invalid(raw))?;
        if decoded.is_empty() || decoded.len() > 256 {
            return Err(invalid(&decoded));
        }
        let parts: Vec<&str> = decoded.split(':').collect();
        let (name, from_name) = match parts.as_slice() {
            ["arn", partition, "lambda", _region, account, "function", name, rest @ ..]
                if partition.starts_with("aws") && is_account(account) && rest.len() <= 1 =>
            {
                (*name, rest.first().copied())
            }
            [account, "function", name, rest @ ..] if is_account(account) && rest.len() <= 1 => {
                (*name, rest.first().copied())
            }
            [name] => (*name, None),
            [name, qualifier] => (*name, Some(*qualifier)),
            _ => return Err(invalid(&decoded)),
        };
        let lambda_chars = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        if !lambda_chars(name) || name.len() > 64 {
            return Err(invalid(&decoded));
        }
        let qualifier = match (from_name, qualifier) {
            (Some(a), Some(b)) if a != b => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameterValueException",
                    "The derived qualifier from the function name does not match the specified qualifier.".into(),
                ))
            }
            (a, b) => a.or(b),
        };
        // No function can have a name scar refuses ('.', '..'): never looked up.
        let arn = format!("arn:aws:lambda:::function:{name}");
        if scar_core::spec::validate_name(name).is_err() {
            return Err(ApiError::not_found(&arn));
        }
        if let Some(q) = qualifier.filter(|q| *q != "$LATEST") {
            return Err(ApiError::not_found(&format!("{arn}:{q}")));
        }
        Ok(FunctionName { name: name.into() })
    }
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// `%XX` decoded, as UTF-8; `None` when malformed.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| percent_decode(v)).flatten()
    })
}

/// The body, at most `limit` bytes, within [`BODY_TIMEOUT`].
async fn read_body(mut body: Incoming, limit: usize) -> Result<Bytes, ApiError> {
    let read = async {
        let mut kept = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestContentException",
                    format!("cannot read the request body: {e}"),
                )
            })?;
            if let Ok(data) = frame.into_data() {
                if kept.len() + data.len() > limit {
                    return Err(ApiError::too_large(kept.len() + data.len(), limit));
                }
                kept.extend_from_slice(&data);
            }
        }
        Ok(Bytes::from(kept))
    };
    tokio::time::timeout(BODY_TIMEOUT, read)
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "RequestTimeoutException",
                format!(
                    "the request body did not arrive within {} s",
                    BODY_TIMEOUT.as_secs()
                ),
            ))
        })
}

/// What Lambda's Invoke answers for `response`: the payload the runtime posted, and
/// whether it is a function error (`X-Amz-Function-Error: Unhandled`). scar's supervisor
/// answers its response, or, for a failed run, an error whose message is that response
/// (as on Lambda); an image's own runtime answers its own JSON.
fn lambda_answer(runtime: RuntimeClient, response: &scar_core::event::Response) -> (Bytes, bool) {
    if let Some(error) = response.function_error() {
        return (to_json(error), true);
    }
    match runtime {
        RuntimeClient::Image => (Bytes::from(response.output_bytes()), false),
        _ if response.succeeded() => (to_json(response), false),
        _ => {
            let error = ErrorPayload {
                error_type: FUNCTION_ERROR_TYPE.into(),
                error_message: String::from_utf8_lossy(&to_json(response)).into_owned(),
            };
            (to_json(&error), true)
        }
    }
}

fn to_json(value: &impl serde::Serialize) -> Bytes {
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// An error as Lambda's API answers it: a status, `x-amzn-ErrorType`, and a JSON body.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    kind: &'static str,
    body: serde_json::Value,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: String) -> ApiError {
        ApiError {
            status,
            kind,
            body: json!({"Type": "User", "message": message}),
        }
    }

    fn not_found(arn: &str) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            kind: "ResourceNotFoundException",
            body: json!({"Type": "User", "Message": format!("Function not found: {arn}")}),
        }
    }

    fn too_large(size: usize, limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            format!("{size} byte payload is too large for the Invoke operation: Request must be smaller than {limit} bytes for the Invoke operation"),
        )
    }

    fn throttled(reason: &str) -> ApiError {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            kind: "TooManyRequestsException",
            body: json!({"Type": "User", "message": "Rate Exceeded.", "Reason": reason}),
        }
    }

    fn unknown_operation() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            "Unknown operation: scar serves the Lambda Invoke API (POST /2015-03-31/functions/NAME/invocations) and GetFunction".into(),
        )
    }

    fn service(error: &LocalError) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "ServiceException",
            body: json!({
                "Type": "Service",
                "message": error.to_string(),
                "category": handoff::category_name(error.category()),
            }),
        }
    }

    fn reply(self) -> Reply {
        let mut out = reply(self.status, self.body.to_string());
        out.headers_mut().insert(
            HeaderName::from_static("x-amzn-errortype"),
            HeaderValue::from_static(self.kind),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(raw: &str) -> Result<String, (StatusCode, &'static str)> {
        FunctionName::parse(raw, None)
            .map(|n| n.name)
            .map_err(|e| (e.status, e.kind))
    }

    #[test]
    fn names_arns_and_partial_arns_are_taken_as_lambda_takes_them() {
        for raw in [
            "echo",
            "echo:$LATEST",
            "echo%3A%24LATEST",
            "123456789012:function:echo",
            "arn:aws:lambda:us-east-1:123456789012:function:echo",
            "arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aecho%3A%24LATEST",
        ] {
            assert_eq!(name(raw), Ok("echo".into()), "{raw}");
        }
        let not_found = Err((StatusCode::NOT_FOUND, "ResourceNotFoundException"));
        assert_eq!(name("echo:v2"), not_found, "no versions here");
        assert_eq!(name(".."), not_found, "never looked up");
        assert_eq!(name("a.b"), not_found);
    }

    #[test]
    fn path_tricks_are_refused_before_the_file_system() {
        let invalid = Err((StatusCode::BAD_REQUEST, "ValidationException"));
        for raw in [
            "",
            "%2e%2e%2f%2e%2e%2fetc",
            "..%2Fother",
            "a%00b",
            "%ff",
            "%2",
            "a:b:c",
            "arn:aws:lambda:r:123:function:x",
            &"x".repeat(65),
        ] {
            assert_eq!(name(raw), invalid, "{raw:?}");
        }
        let clash = FunctionName::parse("echo:$LATEST", Some("v1")).unwrap_err();
        assert_eq!(clash.kind, "InvalidParameterValueException");
    }

    #[test]
    fn a_failed_scar_run_is_a_function_error_carrying_the_response() {
        use scar_core::event::{Ending, Response};
        let ok = Response::new("r1", Ending::Exited(0));
        let (body, unhandled) = lambda_answer(RuntimeClient::Scar, &ok);
        assert!(!unhandled);
        assert_eq!(serde_json::from_slice::<Response>(&body).unwrap(), ok);
        let failed = Response::new("r2", Ending::Exited(3));
        let (body, unhandled) = lambda_answer(RuntimeClient::Scar, &failed);
        assert!(unhandled);
        let error: ErrorPayload = serde_json::from_slice(&body).unwrap();
        assert_eq!(error.scar_response(), Some(failed));
        let mut raw = Response::new("r3", Ending::Exited(0));
        raw.set_output(b"{\"own\":1}".to_vec());
        assert_eq!(
            lambda_answer(RuntimeClient::Image, &raw),
            (Bytes::from_static(b"{\"own\":1}"), false)
        );
    }

    #[test]
    fn slots_are_given_back() {
        let slots = Slots::default();
        let first = slots.take("f", 1).unwrap();
        assert!(slots.take("f", 1).is_none());
        assert!(slots.take("g", 1).is_some());
        drop(first);
        assert!(slots.take("f", 1).is_some());
    }
}
