//! `scar serve`'s dashboard and its JSON API, on the same listener as the Invoke API:
//!
//! - `GET /`: one page (HTML, CSS and JavaScript compiled into the binary, no build step):
//!   the functions, the chain they form through their folders with live counts, the
//!   invocations, charts of the last hour, and the buckets. It updates itself from
//!   server-sent events (`GET /api/events`).
//! - `GET /api/functions`, `/api/chain`, `/api/invocations?function=&outcome=&limit=`,
//!   `/api/stats`, `/api/logs?function=&request_id=` (the invocation's lines, as
//!   `scar log -ri` prints them), `/api/buckets`, `/api/buckets/BUCKET?prefix=`,
//!   `/api/object?bucket=&key=` (a download); `POST /api/upload?bucket=&folder=&name=`
//!   (the body becomes an object of a function's input folder, which runs it as `scar put`
//!   would under `scar serve`).
//!
//! It reads only what scar records anyway (each function's `processed.jsonl`, its log
//! streams, the bucket folders), tailing the files (see [`index`]): the invocation path
//! does nothing for it. **Invariants:** read-only, apart from uploads into input folders
//! (which need the `X-Scar-Dashboard` header, so that no other web page can make a
//! browser send one); no variable value, storage provider key or credential is ever
//! written out (function specs are never serialized whole); a request whose `Host` is not
//! the listener's loopback name is refused (DNS rebinding).

mod index;

pub use scar_core::stats::{Counts, Durations, FunctionStats};

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{
    HeaderValue, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE, HOST,
};
use hyper::{Method, Request, Response, StatusCode};
use scar_core::bucket::valid_key;
use scar_core::provider::LogQuery;
use scar_core::FunctionSpec;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::state::{Layout, StoredFunction};
use crate::Buckets;
use index::Index;

/// A response of the listener: whole, or streamed (events, downloads).
pub(crate) type Body = UnsyncBoxBody<Bytes, Infallible>;

/// A snapshot, the filters it was made with, and when.
type Shared = (std::time::Instant, BTreeMap<String, String>, Value);

/// An answer made from files, on a blocking thread.
type Blocking = Box<dyn FnOnce(&Dashboard) -> Response<Body> + Send>;

const PAGE: &str = include_str!("dashboard/index.html");
const SCRIPT: &str = include_str!("dashboard/app.js");
const STYLE: &str = include_str!("dashboard/style.css");

/// How often the files are read again for server-sent events.
const TICK: Duration = Duration::from_millis(500);
/// A comment line this often keeps idle event streams open through proxies.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// Invocations a snapshot carries (the API's default limit too).
const RECENT: usize = 200;
/// The largest upload taken.
const MAX_UPLOAD: u64 = 512 * 1024 * 1024;

impl crate::LocalProvider {
    /// Per function (`name`'s alone when given): counts of files and the percentiles of
    /// invocation durations, from the records and log streams, as the dashboard reads them.
    /// [`scar_core::provider::Provider::stats`] on this provider.
    pub(crate) fn read_stats(
        &self,
        name: Option<&str>,
    ) -> Result<Vec<FunctionStats>, crate::LocalError> {
        let functions = match name {
            Some(name) => vec![self.layout().load(name)?],
            None => self.layout().list()?,
        };
        let names: Vec<String> = functions.iter().map(|f| f.info.spec.name.clone()).collect();
        let mut index = Index::default();
        index.refresh(self.layout(), &names);
        Ok(functions
            .iter()
            .map(|f| index.totals(&f.info.spec, self.buckets()))
            .collect())
    }
}

/// Whether a path is the dashboard's.
pub(crate) fn owns(path: &str) -> bool {
    path == "/" || path.starts_with("/api/") || path.starts_with("/dashboard/")
}

/// The dashboard of one home.
pub(crate) struct Dashboard {
    layout: Layout,
    buckets: Buckets,
    /// `http://ADDRESS` of the listener.
    base_url: String,
    index: Mutex<Index>,
    /// The last snapshot the event streams made, and when: streams with the same filters
    /// share it within a tick instead of each walking the folders again.
    shared: Mutex<Option<Shared>>,
}

impl Dashboard {
    pub fn new(layout: Layout, buckets: Buckets, base_url: String) -> Dashboard {
        Dashboard {
            layout,
            buckets,
            base_url,
            index: Mutex::new(Index::default()),
            shared: Mutex::new(None),
        }
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The functions, and the index brought up to date with their files.
    fn refresh(&self) -> Vec<StoredFunction> {
        let functions = self.layout.list().unwrap_or_default();
        let names: Vec<String> = functions.iter().map(|f| f.info.spec.name.clone()).collect();
        self.index().refresh(&self.layout, &names);
        functions
    }

    /// Answers a request to one of its paths.
    pub async fn handle(
        self: &Arc<Self>,
        req: Request<Incoming>,
        stop: watch::Receiver<bool>,
    ) -> Response<Body> {
        if !self.host_allowed(&req) {
            return text(StatusCode::FORBIDDEN, "this Host is not the dashboard's\n");
        }
        let path = req.uri().path().to_string();
        let query = parse_query(req.uri().query());
        let q = |k: &str| query.get(k).map(String::as_str).filter(|v| !v.is_empty());
        if req.method() == Method::POST && path == "/api/upload" {
            return self.upload(req, &query).await;
        }
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "read-only: use GET\n");
        }
        let me = Arc::clone(self);
        let blocking = |f: Blocking| async move {
            tokio::task::spawn_blocking(move || f(&me))
                .await
                .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "failed\n"))
        };
        match path.as_str() {
            "/" => asset(PAGE, "text/html; charset=utf-8"),
            "/dashboard/app.js" => asset(SCRIPT, "text/javascript; charset=utf-8"),
            "/dashboard/style.css" => asset(STYLE, "text/css; charset=utf-8"),
            "/api/events" => self.events(query, stop),
            "/api/functions" => {
                blocking(Box::new(|d| json_reply(&d.functions(&d.refresh())))).await
            }
            "/api/chain" => blocking(Box::new(|d| json_reply(&d.chain(&d.refresh())))).await,
            "/api/stats" => blocking(Box::new(|d| json_reply(&d.stats(&d.refresh())))).await,
            "/api/snapshot" => blocking(Box::new(move |d| json_reply(&d.snapshot(&query)))).await,
            "/api/invocations" => {
                let function = q("function").map(str::to_string);
                let outcome = q("outcome").map(str::to_string);
                let limit = q("limit").and_then(|l| l.parse().ok()).unwrap_or(RECENT);
                blocking(Box::new(move |d| {
                    d.refresh();
                    let list =
                        d.index()
                            .invocations(function.as_deref(), outcome.as_deref(), limit);
                    json_reply(&list)
                }))
                .await
            }
            "/api/logs" => {
                let (Some(function), Some(id)) = (q("function"), q("request_id")) else {
                    return text(StatusCode::BAD_REQUEST, "function and request_id, please\n");
                };
                let (function, id) = (function.to_string(), id.to_string());
                blocking(Box::new(move |d| d.log_lines(&function, &id))).await
            }
            "/api/buckets" => {
                blocking(Box::new(|d| json_reply(&d.bucket_list(&d.refresh())))).await
            }
            "/api/object" => {
                let (Some(bucket), Some(key)) = (q("bucket"), q("key")) else {
                    return text(StatusCode::BAD_REQUEST, "bucket and key, please\n");
                };
                self.download(bucket, key).await
            }
            _ => match path.strip_prefix("/api/buckets/") {
                Some(bucket) => {
                    let bucket = crate::http::percent_decode(bucket).unwrap_or_default();
                    let prefix = q("prefix").unwrap_or_default().to_string();
                    blocking(Box::new(move |d| d.browse(&bucket, &prefix))).await
                }
                None => text(StatusCode::NOT_FOUND, "no such page\n"),
            },
        }
    }

    /// A `Host` naming the listener on loopback (a page of another site that resolves its
    /// name to 127.0.0.1 must not read the dashboard); any when it listens elsewhere.
    fn host_allowed(&self, req: &Request<Incoming>) -> bool {
        let address = self.base_url.trim_start_matches("http://");
        let Some((ip, port)) = address.rsplit_once(':') else {
            return true;
        };
        let loopback = ip
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            return true;
        }
        let Some(host) = req.headers().get(HOST).and_then(|h| h.to_str().ok()) else {
            return true;
        };
        ["127.0.0.1", "localhost", "[::1]", ip]
            .iter()
            .any(|name| host == format!("{name}:{port}"))
    }

    fn functions(&self, functions: &[StoredFunction]) -> Value {
        Value::Array(
            functions
                .iter()
                .map(|f| {
                    let spec = &f.info.spec;
                    json!({
                        "name": spec.name,
                        "image": spec.image,
                        "memory_mb": spec.memory_mb,
                        "timeout_s": spec.timeout_s,
                        "inputs": inputs_of(spec),
                        "outputs": spec.outputs.iter().map(|o| json!({
                            "path": with_storage(o.storage.as_deref(), &o.bucket, &o.folder),
                            "prefix": o.prefix,
                            "suffix": o.suffix,
                        })).collect::<Vec<_>>(),
                        // As `scar ls` has it: a function with an API Gateway has one.
                        "endpoint": spec.api_gateway.as_ref().map(|_| {
                            format!("{}{}", self.base_url, crate::gateway::launch_path(&spec.name))
                        }),
                        "invoke_url": format!("{}/2015-03-31/functions/{}/invocations", self.base_url, spec.name),
                    })
                })
                .collect(),
        )
    }

    /// Functions as nodes, with their counts; the folders through which one triggers the
    /// next as edges (what `init`'s cycle warning follows: [`scar_core::spec::triggers`]).
    fn chain(&self, functions: &[StoredFunction]) -> Value {
        let index = self.index();
        let nodes: Vec<Value> = functions
            .iter()
            .map(|f| {
                let spec = &f.info.spec;
                json!({
                    "name": spec.name,
                    "inputs": inputs_of(spec),
                    "counts": index.counts(spec, &self.buckets),
                })
            })
            .collect();
        let mut edges = Vec::new();
        for from in functions.iter().map(|f| &f.info.spec) {
            for to in functions.iter().map(|f| &f.info.spec) {
                if scar_core::spec::triggers(from, to) {
                    edges.push(json!({
                        "from": from.name,
                        "to": to.name,
                        "folders": linking_folders(from, to),
                    }));
                }
            }
        }
        let specs: Vec<FunctionSpec> = functions.iter().map(|f| f.info.spec.clone()).collect();
        json!({
            "nodes": nodes,
            "edges": edges,
            "cycles": scar_core::spec::chain_cycles(&specs),
        })
    }

    fn stats(&self, functions: &[StoredFunction]) -> Value {
        let index = self.index();
        Value::Array(
            functions
                .iter()
                .map(|f| json!(index.stats(&f.info.spec, &self.buckets, None)))
                .collect(),
        )
    }

    /// Everything the page shows, in one document (what each event carries).
    fn snapshot(&self, query: &BTreeMap<String, String>) -> Value {
        let functions = self.refresh();
        let q = |k: &str| query.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let invocations = self
            .index()
            .invocations(q("function"), q("outcome"), RECENT);
        json!({
            "functions": self.functions(&functions),
            "chain": self.chain(&functions),
            "stats": self.stats(&functions),
            "invocations": invocations,
            "generation": self.index().generation,
        })
    }

    /// [`Self::snapshot`], or the one another event stream with the same filters made
    /// less than half a tick ago.
    fn shared_snapshot(&self, query: &BTreeMap<String, String>) -> Value {
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, q, snapshot)) = shared.as_ref() {
            if q == query && at.elapsed() < TICK / 2 {
                return snapshot.clone();
            }
        }
        let snapshot = self.snapshot(query);
        *shared = Some((std::time::Instant::now(), query.clone(), snapshot.clone()));
        snapshot
    }

    /// Server-sent events: a snapshot now and whenever something changed, until the
    /// client goes or `scar serve` stops.
    fn events(
        self: &Arc<Self>,
        query: BTreeMap<String, String>,
        mut stop: watch::Receiver<bool>,
    ) -> Response<Body> {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut sent = None;
            let mut quiet = Duration::ZERO;
            loop {
                let me2 = Arc::clone(&me);
                let query2 = query.clone();
                let Ok(snapshot) =
                    tokio::task::spawn_blocking(move || me2.shared_snapshot(&query2)).await
                else {
                    return;
                };
                // Compared whole, generation aside: a file landing in an input folder
                // changes a count (waiting) before any record or log line says anything.
                let mut snapshot = snapshot;
                let generation = snapshot["generation"].take();
                let text = snapshot.to_string();
                let message = if sent.as_ref() != Some(&text) {
                    snapshot["generation"] = generation;
                    sent = Some(text);
                    quiet = Duration::ZERO;
                    Some(format!("event: snapshot\ndata: {snapshot}\n\n"))
                } else if quiet >= KEEPALIVE {
                    quiet = Duration::ZERO;
                    Some(": keepalive\n\n".to_string())
                } else {
                    None
                };
                if let Some(message) = message {
                    if tx.send(Bytes::from(message)).await.is_err() {
                        return;
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(TICK) => quiet += TICK,
                    _ = stop.wait_for(|s| *s) => return,
                    _ = tx.closed() => return,
                }
            }
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            let bytes = rx.recv().await?;
            Some((Ok::<_, Infallible>(Frame::data(bytes)), rx))
        });
        let mut response = Response::new(StreamBody::new(stream).boxed_unsync());
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }

    /// The lines of invocation `id` of `function`, as `scar log -n F -ri ID` prints them.
    fn log_lines(&self, function: &str, id: &str) -> Response<Body> {
        if scar_core::spec::validate_name(function).is_err() {
            return text(StatusCode::NOT_FOUND, "no such function\n");
        }
        self.refresh();
        let stream = self
            .index()
            .invocation(function, id)
            .and_then(|i| i.stream.clone());
        let query = LogQuery {
            stream,
            request_id: Some(id.to_string()),
        };
        match crate::logs::read(&self.layout.logs(function), &query) {
            Ok(lines) if !lines.is_empty() => {
                let mut out = String::new();
                for line in lines {
                    out.push_str(&line.message);
                    out.push('\n');
                }
                text(StatusCode::OK, &out)
            }
            _ => text(StatusCode::NOT_FOUND, "no log lines for this invocation\n"),
        }
    }

    fn bucket_list(&self, functions: &[StoredFunction]) -> Value {
        let inputs: Vec<(String, String)> = functions
            .iter()
            .flat_map(|f| f.info.spec.inputs.iter())
            .filter(|i| i.storage.is_none())
            .map(|i| (i.bucket.clone(), i.folder.clone()))
            .collect();
        Value::Array(
            self.buckets
                .names()
                .into_iter()
                .map(|name| {
                    let input_folders: Vec<&String> = inputs
                        .iter()
                        .filter(|(b, _)| *b == name)
                        .map(|(_, f)| f)
                        .collect();
                    json!({"name": name, "input_folders": input_folders})
                })
                .collect(),
        )
    }

    /// One level of a bucket's folder: its sub-folders and objects.
    fn browse(&self, bucket: &str, prefix: &str) -> Response<Body> {
        let prefix = prefix.trim_matches('/');
        if scar_core::bucket::validate_bucket(bucket).is_err()
            || (!prefix.is_empty() && !valid_key(prefix))
            || prefix.split('/').next() == Some(crate::buckets::SCAR_DIR)
        {
            return text(StatusCode::BAD_REQUEST, "invalid bucket or folder\n");
        }
        let dir = self.buckets.dir(bucket).join(prefix);
        if !self.buckets.inside(bucket, prefix) {
            return text(StatusCode::NOT_FOUND, "no such folder\n");
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return text(StatusCode::NOT_FOUND, "no such folder\n");
        };
        let mut folders = Vec::new();
        let mut objects = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if prefix.is_empty() && name == crate::buckets::SCAR_DIR {
                continue;
            }
            let key = match prefix.is_empty() {
                true => name.clone(),
                false => format!("{prefix}/{name}"),
            };
            // Symlinks are no objects (as for `scar ls`), and never followed.
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            match entry.metadata() {
                Ok(_) if kind.is_dir() => folders.push(key),
                Ok(m) if kind.is_file() => {
                    let modified = m
                        .modified()
                        .map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339())
                        .unwrap_or_default();
                    objects.push(json!({"key": key, "size": m.len(), "modified": modified}));
                }
                _ => {}
            }
        }
        folders.sort();
        objects.sort_by(|a, b| a["key"].as_str().cmp(&b["key"].as_str()));
        json_reply(
            &json!({"bucket": bucket, "prefix": prefix, "folders": folders, "objects": objects}),
        )
    }

    /// An object, streamed.
    async fn download(&self, bucket: &str, key: &str) -> Response<Body> {
        if scar_core::bucket::validate_bucket(bucket).is_err()
            || !valid_key(key)
            || key.split('/').next() == Some(crate::buckets::SCAR_DIR)
        {
            return text(StatusCode::BAD_REQUEST, "invalid bucket or key\n");
        }
        let path = self.buckets.object_path(bucket, key);
        if !self.buckets.inside(bucket, key) {
            return text(StatusCode::NOT_FOUND, "no such object\n");
        }
        let (file, size) = match tokio::fs::File::open(&path).await {
            Ok(f) => match f.metadata().await {
                Ok(m) if m.is_file() => (f, m.len()),
                _ => return text(StatusCode::NOT_FOUND, "no such object\n"),
            },
            _ => return text(StatusCode::NOT_FOUND, "no such object\n"),
        };
        let stream = futures_util::stream::unfold(file, |mut file| async move {
            use tokio::io::AsyncReadExt as _;
            let mut buf = vec![0u8; 64 * 1024];
            match file.read(&mut buf).await {
                Ok(0) | Err(_) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok::<_, Infallible>(Frame::data(Bytes::from(buf))), file))
                }
            }
        });
        let mut response = Response::new(StreamBody::new(stream).boxed_unsync());
        let name = key.rsplit('/').next().unwrap_or(key);
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() && c != '"' && c != '\\' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        headers.insert(CONTENT_LENGTH, HeaderValue::from(size));
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
            headers.insert(CONTENT_DISPOSITION, v);
        }
        response
    }

    /// Stores the request's body as `folder/name` of `bucket`, when that folder is a
    /// function's input folder; `scar serve` then runs it as it runs any new file.
    async fn upload(
        &self,
        req: Request<Incoming>,
        query: &BTreeMap<String, String>,
    ) -> Response<Body> {
        if !req.headers().contains_key("x-scar-dashboard") {
            return text(
                StatusCode::FORBIDDEN,
                "uploads need the X-Scar-Dashboard header\n",
            );
        }
        let get = |k: &str| query.get(k).map(String::as_str).unwrap_or_default();
        let (bucket, folder, name) = (get("bucket"), get("folder").trim_matches('/'), get("name"));
        let key = match folder.is_empty() {
            true => name.to_string(),
            false => format!("{folder}/{name}"),
        };
        if name.is_empty()
            || name.contains('/')
            || !valid_key(&key)
            || scar_core::bucket::validate_bucket(bucket).is_err()
            || key.split('/').next() == Some(crate::buckets::SCAR_DIR)
        {
            return text(StatusCode::BAD_REQUEST, "invalid bucket, folder or name\n");
        }
        let functions = self.layout.list().unwrap_or_default();
        let Some(function) = functions
            .iter()
            .find(|f| f.info.spec.is_triggered_by(bucket, &key))
        else {
            return text(
                StatusCode::FORBIDDEN,
                "uploads go only into a function's input folder\n",
            );
        };
        let function = function.info.spec.name.clone();
        let tmp = match self.buckets.temporary(bucket, "dashboard") {
            Ok(tmp) => tmp,
            Err(e) => return text(StatusCode::BAD_REQUEST, &format!("upload failed: {e}\n")),
        };
        let written = async {
            let mut file = std::fs::File::create(&tmp)?;
            let mut body = req.into_body();
            let mut size = 0u64;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(std::io::Error::other)?;
                if let Ok(data) = frame.into_data() {
                    size += data.len() as u64;
                    if size > MAX_UPLOAD {
                        return Err(std::io::Error::other("too large"));
                    }
                    file.write_all(&data)?;
                }
            }
            file.sync_all()?;
            self.buckets
                .place(bucket, &key, &tmp)
                .map_err(std::io::Error::other)?;
            Ok::<_, std::io::Error>(size)
        }
        .await;
        match written {
            Ok(size) => json_reply(&json!({
                "bucket": bucket, "key": key, "size": size, "function": function
            })),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                text(StatusCode::BAD_REQUEST, &format!("upload failed: {e}\n"))
            }
        }
    }
}

fn with_storage(storage: Option<&str>, bucket: &str, folder: &str) -> String {
    let path = match folder.is_empty() {
        true => bucket.to_string(),
        false => format!("{bucket}/{folder}"),
    };
    match storage {
        Some(s) => format!("{s}:{path}"),
        None => path,
    }
}

fn inputs_of(spec: &FunctionSpec) -> Vec<String> {
    spec.inputs
        .iter()
        .map(|i| with_storage(i.storage.as_deref(), &i.bucket, &i.folder))
        .collect()
}

/// The input folders of `to` that outputs of `from` land in.
fn linking_folders(from: &FunctionSpec, to: &FunctionSpec) -> Vec<String> {
    to.inputs
        .iter()
        .filter(|i| {
            from.outputs
                .iter()
                .filter(|o| o.storage.is_none())
                .any(|o| {
                    let written = scar_core::InputSpec {
                        storage: None,
                        bucket: o.bucket.clone(),
                        folder: o.folder.clone(),
                    };
                    i.overlaps(&written)
                })
        })
        .map(|i| with_storage(None, &i.bucket, &i.folder))
        .collect()
}

fn parse_query(query: Option<&str>) -> BTreeMap<String, String> {
    query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| crate::http::percent_decode(&s.replace('+', " "));
            Some((decode(k)?, decode(v)?))
        })
        .collect()
}

fn full(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Full::new(body).boxed_unsync());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn asset(body: &'static str, content_type: &'static str) -> Response<Body> {
    let mut response = full(
        StatusCode::OK,
        content_type,
        Bytes::from_static(body.as_bytes()),
    );
    response.headers_mut().insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'"),
    );
    response
}

fn text(status: StatusCode, message: &str) -> Response<Body> {
    full(
        status,
        "text/plain; charset=utf-8",
        Bytes::from(message.to_string()),
    )
}

fn json_reply(value: &impl serde::Serialize) -> Response<Body> {
    full(
        StatusCode::OK,
        "application/json",
        Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
    )
}
