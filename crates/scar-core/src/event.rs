//! The event model: what an invocation carries in (a direct payload or an S3 event
//! notification) and what it answers (the [`Response`]).

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

pub use aws_lambda_events::event::s3::{S3Event, S3EventRecord};

use crate::ImageConfig;

/// The direct invocation payload: `{"script", "cmd_args", "env"}`, all optional; or, for
/// a function whose runtime is its image's own, any JSON event (`event`), sent as it is.
///
/// SCAR's forms are accepted too: `script` base64-encoded, `cmd_args` as a string holding
/// a JSON list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Payload {
    #[serde(default)]
    pub script: Option<String>,
    #[serde(default, deserialize_with = "de_cmd_args")]
    pub cmd_args: Option<Vec<String>>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The whole event, serialized as it is in place of the fields above.
    #[serde(skip)]
    pub event: Option<serde_json::Value>,
}

/// scar's payload as it is sent: the fields that are set.
#[derive(Serialize)]
struct PayloadFields<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    script: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cmd_args: &'a Option<Vec<String>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    env: &'a BTreeMap<String, String>,
}

impl Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.event {
            Some(event) => event.serialize(s),
            None => PayloadFields {
                script: &self.script,
                cmd_args: &self.cmd_args,
                env: &self.env,
            }
            .serialize(s),
        }
    }
}

fn de_cmd_args<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Args {
        List(Vec<String>),
        Text(String),
    }
    match Option::<Args>::deserialize(d)? {
        None => Ok(None),
        Some(Args::List(v)) => Ok(Some(v)),
        Some(Args::Text(s)) => serde_json::from_str(&s)
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("cmd_args is not a JSON list: {e}"))),
    }
}

impl Payload {
    /// The script's text: SCAR sent scripts base64-encoded, scar sends them as text. A
    /// script that decodes as base64 into UTF-8 text is taken as SCAR's form.
    pub fn script_text(&self) -> Option<String> {
        let script = self.script.as_ref()?;
        if let Some(text) = decode_base64(script).and_then(|b| String::from_utf8(b).ok()) {
            return Some(text);
        }
        Some(script.clone())
    }
}

/// What an invocation's event is.
#[derive(Debug, Clone)]
pub enum Event {
    /// An S3 event notification: one entry per record.
    Storage(Vec<StorageRecord>),
    /// A direct invocation.
    Direct(Payload),
    /// An HTTP request, as API Gateway (REST proxy, or HTTP API and Function URLs with
    /// payload format 2.0) hands it to a function: answered with a [`ProxyResponse`].
    Http(HttpRequest),
    /// Any other event (SCAR's "unknown event"): saved whole as the invocation's input
    /// file. A JSON string is taken as SCAR sends data, base64, when it decodes as such.
    Unknown(Vec<u8>),
}

impl Event {
    /// Classifies a raw event: S3 notifications have `Records[].s3`; anything else is a
    /// direct payload.
    pub fn parse(raw: &serde_json::Value) -> Result<Event, serde_json::Error> {
        let is_s3 = raw
            .get("Records")
            .and_then(|r| r.as_array())
            .is_some_and(|r| r.iter().any(|rec| rec.get("s3").is_some()));
        if is_s3 {
            let records = raw["Records"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(StorageRecord::from_json)
                .collect();
            Ok(Event::Storage(records))
        } else if let Some(request) = HttpRequest::from_json(raw) {
            Ok(Event::Http(request))
        } else if raw.is_null() {
            Ok(Event::Direct(Payload::default()))
        } else if is_payload(raw) {
            Ok(Event::Direct(serde_json::from_value(raw.clone())?))
        } else {
            let bytes = match raw.as_str() {
                Some(text) => decode_base64(text).unwrap_or_else(|| text.as_bytes().to_vec()),
                None => raw.to_string().into_bytes(),
            };
            Ok(Event::Unknown(bytes))
        }
    }

    /// Whether `raw` is an HTTP request event (answered with a [`ProxyResponse`]).
    pub fn is_http(raw: &serde_json::Value) -> bool {
        raw.get("httpMethod").is_some_and(|m| m.is_string())
            || raw
                .pointer("/requestContext/http/method")
                .is_some_and(|m| m.is_string())
    }
}

/// Whether `raw` is scar's own payload: an object with no fields, or one with any of
/// `script`, `cmd_args`, `env`.
fn is_payload(raw: &serde_json::Value) -> bool {
    raw.as_object().is_some_and(|o| {
        o.is_empty()
            || ["script", "cmd_args", "env"]
                .iter()
                .any(|k| o.contains_key(*k))
    })
}

/// `text` decoded as base64 (whitespace ignored), if it is base64 at all.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.split_whitespace().collect();
    if compact.is_empty() || !compact.len().is_multiple_of(4) {
        return None;
    }
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()
}

/// The name of an HTTP request's body in the invocation's input folder (SCAR's).
pub const HTTP_BODY_FILE: &str = "api_event_file";

/// The name of an unknown event's file in the invocation's input folder.
pub const UNKNOWN_EVENT_FILE: &str = "event_file";

/// An HTTP request as API Gateway hands it over: its body decoded, its query parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request's path (`/launch`).
    pub path: String,
    /// The query string's parameters (a repeated one: its values joined with `,`, as
    /// payload format 2.0 has them).
    pub query: BTreeMap<String, String>,
    /// The body, decoded: API Gateway's base64 (`isBase64Encoded`) undone, and then, for a
    /// body that is not JSON (`Content-Type: application/json`), SCAR's own base64 too
    /// when the text is base64 (`scar invoke -db` and SCAR's send files so).
    pub body: Vec<u8>,
    /// Whether the request said its body is JSON.
    pub json: bool,
}

impl HttpRequest {
    /// Reads a REST proxy event (`httpMethod`) or a payload format 2.0 one
    /// (`requestContext.http.method`); `None` for any other event.
    pub fn from_json(raw: &serde_json::Value) -> Option<HttpRequest> {
        if !Event::is_http(raw) {
            return None;
        }
        let text = |v: Option<&serde_json::Value>| {
            v.and_then(|v| v.as_str()).unwrap_or_default().to_string()
        };
        let method = match raw.get("httpMethod") {
            Some(m) => text(Some(m)),
            None => text(raw.pointer("/requestContext/http/method")),
        };
        let path = match raw.get("path") {
            Some(p) => text(Some(p)),
            None => text(raw.get("rawPath")),
        };
        let query = raw
            .get("queryStringParameters")
            .and_then(|q| q.as_object())
            .map(|q| {
                q.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let json = raw
            .get("headers")
            .and_then(|h| h.as_object())
            .and_then(|h| {
                h.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                    .and_then(|(_, v)| v.as_str())
            })
            .is_some_and(|t| {
                t.split(';')
                    .next()
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
            });
        let body = text(raw.get("body"));
        let gateway_base64 = raw
            .get("isBase64Encoded")
            .and_then(|b| b.as_bool())
            .unwrap_or(false);
        let mut bytes = match gateway_base64 {
            true => decode_base64(&body).unwrap_or_else(|| body.clone().into_bytes()),
            false => body.into_bytes(),
        };
        if !json {
            if let Some(decoded) = std::str::from_utf8(&bytes).ok().and_then(decode_base64) {
                bytes = decoded;
            }
        }
        Some(HttpRequest {
            method,
            path,
            query,
            body: bytes,
            json,
        })
    }
}

/// What a function answers an HTTP request with (API Gateway's proxy integration
/// response, as SCAR's supervisor gives it): status 200 with the script's output as the
/// body, base64; 500 when it failed or timed out; the request id and log names in
/// headers (SCAR's `amz-lambda-request-id`, `amz-log-group-name`, `amz-log-stream-name`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyResponse {
    #[serde(rename = "statusCode")]
    pub status_code: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: String,
    #[serde(rename = "isBase64Encoded", default)]
    pub is_base64_encoded: bool,
}

/// The header of a [`ProxyResponse`] that carries the script's exit code, when it had one.
pub const EXIT_CODE_HEADER: &str = "scar-exit-code";

impl ProxyResponse {
    /// The HTTP answer to `response`.
    pub fn of(response: &Response) -> ProxyResponse {
        let mut headers = BTreeMap::from([
            (
                "amz-lambda-request-id".to_string(),
                response.request_id.clone(),
            ),
            ("amz-log-group-name".to_string(), response.log_group.clone()),
            (
                "amz-log-stream-name".to_string(),
                response.log_stream.clone(),
            ),
            (
                "content-type".to_string(),
                "application/octet-stream".to_string(),
            ),
        ]);
        if let Some(code) = response.exit_code() {
            headers.insert(EXIT_CODE_HEADER.into(), code.to_string());
        }
        let mut body = response.output_bytes();
        if response.timed_out() {
            headers.insert("scar-timed-out".into(), "true".into());
        }
        if let (false, Some(error)) = (response.succeeded(), response.function_error()) {
            if body.is_empty() {
                body = error.error_message.clone().into_bytes();
            }
        }
        ProxyResponse {
            status_code: if response.succeeded() { 200 } else { 500 },
            headers,
            body: base64::engine::general_purpose::STANDARD.encode(body),
            is_base64_encoded: true,
        }
    }

    /// A 500 for an invocation that could not even start (`message` says why).
    pub fn failed(request_id: &str, message: &str) -> ProxyResponse {
        let mut response = ProxyResponse::of(&Response::new(request_id, Ending::default()));
        response.status_code = 500;
        response.headers.remove(EXIT_CODE_HEADER);
        response.body = base64::engine::general_purpose::STANDARD.encode(message);
        response
    }

    /// The body as bytes (base64 undone when it is encoded).
    pub fn body_bytes(&self) -> Vec<u8> {
        if self.is_base64_encoded {
            decode_base64(&self.body).unwrap_or_else(|| self.body.clone().into_bytes())
        } else {
            self.body.clone().into_bytes()
        }
    }
}

/// One object of a storage event, read leniently: only the bucket and key are required
/// (`eventTime` is optional, as some S3-compatible stores leave it out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageRecord {
    pub bucket: String,
    /// The object key, decoded.
    pub key: String,
    pub event_time: Option<String>,
    /// The invocations of the chain so far, this one included (scar's `scarChain`
    /// field, set by the local provider; 1 when absent).
    pub chain: u32,
    /// The record's `eventSource`: `aws:s3`, or [`crate::bucket::MINIO_EVENT_SOURCE`]
    /// for an object on a MinIO server.
    pub source: Option<String>,
}

impl StorageRecord {
    fn from_json(record: &serde_json::Value) -> Option<StorageRecord> {
        let s3 = record.get("s3")?;
        Some(StorageRecord {
            bucket: s3.get("bucket")?.get("name")?.as_str()?.to_string(),
            key: decode_s3_key(s3.get("object")?.get("key")?.as_str()?),
            event_time: record
                .get("eventTime")
                .and_then(|t| t.as_str())
                .map(str::to_string),
            chain: record
                .get(crate::bucket::CHAIN_FIELD)
                .and_then(|c| c.as_u64())
                .map_or(1, |c| c.clamp(1, u32::MAX.into()) as u32),
            source: record
                .get("eventSource")
                .and_then(|s| s.as_str())
                .map(str::to_string),
        })
    }

    /// Whether the record names an object on a MinIO server (its `eventSource` is
    /// MinIO's).
    pub fn is_minio(&self) -> bool {
        self.source.as_deref() == Some(crate::bucket::MINIO_EVENT_SOURCE)
    }

    /// The object's file name: the last component of its key.
    pub fn file_name(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or(&self.key)
    }
}

/// Decodes an S3 event key: URL-encoded with `+` for spaces.
pub fn decode_s3_key(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Encodes an object key as S3 does in event notifications (`+` for spaces).
pub fn encode_s3_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// How an invocation ended: exactly one of these, so that a response cannot say "timed
/// out" and "handed over" and "failed" at once.
///
/// In the response's JSON (`docs/contract.md`, section 3) it is spread over the fields
/// users read: `exit_code`, `timed_out`, `handed_over` and `function_error`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ending {
    /// The script ran to its end with this exit status (0: it succeeded).
    Exited(i32),
    /// The script was stopped at the function's timeout; `error` is Lambda's
    /// `Sandbox.Timedout` when the platform stopped it (the supervisor reports its own
    /// timeouts without one).
    TimedOut {
        /// Lambda's error for the timeout, as its invoke returns it.
        error: Option<FunctionError>,
    },
    /// The script did not reach an exit status: it was killed by a signal, it could not
    /// start, its runtime failed or the event could not be handed over; `error` is the
    /// function error Lambda reports for it (`Runtime.ExitError`, a runtime's own), if any.
    Unfinished {
        /// The function error, as Lambda's invoke returns it.
        error: Option<FunctionError>,
    },
    /// The event went whole to an AWS Batch job (a `batch` function's, or a `lambda-batch`
    /// one's at its timeout threshold); the response's `batch_job` names it once submitted.
    HandedOver,
}

impl Default for Ending {
    /// Nothing ran yet.
    fn default() -> Ending {
        Ending::Unfinished { error: None }
    }
}

/// The answer of one invocation (`docs/contract.md`, section 3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ResponseJson", into = "ResponseJson")]
pub struct Response {
    /// The invocation's request id.
    pub request_id: String,
    /// How it ended.
    pub ending: Ending,
    /// stdout and stderr, interleaved as written; base64 when not UTF-8.
    pub output: String,
    /// `"base64"` when `output` is base64-encoded.
    pub output_encoding: Option<String>,
    /// The objects the invocation uploaded (`bucket/key`).
    pub uploaded: Vec<String>,
    /// The log group of the invocation's log lines.
    pub log_group: String,
    /// The log stream of the invocation's log lines.
    pub log_stream: String,
    /// On a Batch job's response: the request that handed the event over to it.
    pub handed_over_from: Option<String>,
    /// The AWS Batch job the event went to: submitted by a `batch` function's supervisor
    /// on Lambda, or by a `lambda-batch` one at its threshold; or the job this response
    /// is of.
    pub batch_job: Option<String>,
}

/// [`Response`] as its JSON has it: [`Ending`] spread over the fields users read.
#[derive(Serialize, Deserialize)]
struct ResponseJson {
    request_id: String,
    /// The script's exit code; `None` when it did not reach one (timeout, signal, could
    /// not start); 0 for an event handed over to Batch.
    exit_code: Option<i32>,
    timed_out: bool,
    output: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    output_encoding: Option<String>,
    #[serde(default)]
    uploaded: Vec<String>,
    #[serde(default)]
    log_group: String,
    #[serde(default)]
    log_stream: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    handed_over: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    handed_over_from: Option<String>,
    /// The invocation failed as Lambda reports a function error (`X-Amz-Function-Error:
    /// Unhandled`): the runtime's `/error` body, or Lambda's own error for a timeout, a
    /// response over the size limit or a failed init.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    function_error: Option<FunctionError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    batch_job: Option<String>,
}

impl From<Response> for ResponseJson {
    fn from(r: Response) -> ResponseJson {
        let exit_code = r.exit_code();
        let (timed_out, handed_over, function_error) = match r.ending {
            Ending::Exited(_) => (false, false, None),
            Ending::TimedOut { error } => (true, false, error),
            Ending::Unfinished { error } => (false, false, error),
            Ending::HandedOver => (false, true, None),
        };
        ResponseJson {
            request_id: r.request_id,
            exit_code,
            timed_out,
            output: r.output,
            output_encoding: r.output_encoding,
            uploaded: r.uploaded,
            log_group: r.log_group,
            log_stream: r.log_stream,
            handed_over,
            handed_over_from: r.handed_over_from,
            function_error,
            batch_job: r.batch_job,
        }
    }
}

impl From<ResponseJson> for Response {
    /// Read leniently, as an older supervisor may have written it: a hand-over wins over a
    /// timeout, a timeout over an exit code, and a function error means no exit status.
    fn from(j: ResponseJson) -> Response {
        let ending = match (j.handed_over, j.timed_out, j.exit_code, j.function_error) {
            (true, ..) => Ending::HandedOver,
            (false, true, _, error) => Ending::TimedOut { error },
            (false, false, _, Some(error)) => Ending::Unfinished { error: Some(error) },
            (false, false, Some(code), None) => Ending::Exited(code),
            (false, false, None, None) => Ending::Unfinished { error: None },
        };
        Response {
            request_id: j.request_id,
            ending,
            output: j.output,
            output_encoding: j.output_encoding,
            uploaded: j.uploaded,
            log_group: j.log_group,
            log_stream: j.log_stream,
            handed_over_from: j.handed_over_from,
            batch_job: j.batch_job,
        }
    }
}

impl Response {
    /// A response of request `request_id` that ended as `ending`, with no output yet.
    pub fn new(request_id: impl Into<String>, ending: Ending) -> Response {
        Response {
            request_id: request_id.into(),
            ending,
            ..Response::default()
        }
    }

    /// Whether the invocation did its part: the script exited with status 0, or the event
    /// went to a Batch job (which answers for itself).
    pub fn succeeded(&self) -> bool {
        matches!(self.ending, Ending::Exited(0) | Ending::HandedOver)
    }

    /// The exit status users read (`exit_code` in the JSON): the script's, when it ran to
    /// its end; 0 for an event handed over to Batch; none otherwise.
    pub fn exit_code(&self) -> Option<i32> {
        match self.ending {
            Ending::Exited(code) => Some(code),
            Ending::HandedOver => Some(0),
            _ => None,
        }
    }

    /// Whether the script was stopped at the timeout.
    pub fn timed_out(&self) -> bool {
        matches!(self.ending, Ending::TimedOut { .. })
    }

    /// Whether the event went whole to an AWS Batch job.
    pub fn handed_over(&self) -> bool {
        self.ending == Ending::HandedOver
    }

    /// The function error Lambda reports for the invocation, if any.
    pub fn function_error(&self) -> Option<&FunctionError> {
        match &self.ending {
            Ending::TimedOut { error } | Ending::Unfinished { error } => error.as_ref(),
            _ => None,
        }
    }

    /// Sets `output` from raw bytes, base64-encoding them when they are not UTF-8.
    pub fn set_output(&mut self, bytes: Vec<u8>) {
        match String::from_utf8(bytes) {
            Ok(text) => {
                self.output = text;
                self.output_encoding = None;
            }
            Err(e) => {
                self.output = base64::engine::general_purpose::STANDARD.encode(e.as_bytes());
                self.output_encoding = Some("base64".into());
            }
        }
    }

    /// The output as bytes, decoding base64 when it was encoded.
    pub fn output_bytes(&self) -> Vec<u8> {
        if self.output_encoding.as_deref() == Some("base64") {
            base64::engine::general_purpose::STANDARD
                .decode(&self.output)
                .unwrap_or_else(|_| self.output.clone().into_bytes())
        } else {
            self.output.clone().into_bytes()
        }
    }
}

/// The error type the supervisor reports for a failed invocation (non-zero exit or
/// timeout). Its `errorMessage` holds the [`Response`] JSON, so that clients get the
/// output either way while Lambda treats the invocation as failed (retries, destinations).
pub const FUNCTION_ERROR_TYPE: &str = "ScarFunctionError";

/// Lambda's error payload (`/runtime/invocation/<id>/error` body and the invoke result).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorPayload {
    #[serde(rename = "errorType")]
    pub error_type: String,
    #[serde(rename = "errorMessage")]
    pub error_message: String,
}

impl ErrorPayload {
    /// The [`Response`] carried by a scar function error, if this is one.
    pub fn scar_response(&self) -> Option<Response> {
        (self.error_type == FUNCTION_ERROR_TYPE)
            .then(|| serde_json::from_str(&self.error_message).ok())
            .flatten()
    }
}

/// A function error as Lambda returns it to the caller: `{"errorType", "errorMessage",
/// "stackTrace"}`. A runtime's own (its `/runtime/invocation/<id>/error` body, the
/// `Lambda-Runtime-Function-Error-Type` header when the body names no type), or one of
/// Lambda's ([`FunctionError::timed_out`], [`FunctionError::response_too_large`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionError {
    #[serde(rename = "errorType", default)]
    pub error_type: String,
    #[serde(rename = "errorMessage", default)]
    pub error_message: String,
    /// The runtime's trace, a line per entry (runtimes send lists of strings; any other
    /// JSON entry is kept as its JSON text).
    #[serde(
        rename = "stackTrace",
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de_stack_trace"
    )]
    pub stack_trace: Vec<String>,
}

pub use crate::lambda::MAX_RESPONSE_BYTES;

impl FunctionError {
    /// An error a runtime posted: its body read leniently (Lambda takes the type from the
    /// body, else from the `Lambda-Runtime-Function-Error-Type` header).
    pub fn from_runtime(body: &[u8], header_type: Option<&str>) -> FunctionError {
        let mut error =
            serde_json::from_slice::<FunctionError>(body).unwrap_or_else(|_| FunctionError {
                error_message: String::from_utf8_lossy(body).into_owned(),
                ..FunctionError::default()
            });
        if error.error_type.is_empty() {
            error.error_type = header_type
                .filter(|t| !t.is_empty())
                .unwrap_or("Unhandled")
                .to_string();
        }
        error
    }

    /// Lambda's error for an invocation stopped at its deadline.
    pub fn timed_out(request_id: &str, timeout_s: u32) -> FunctionError {
        FunctionError {
            error_type: "Sandbox.Timedout".into(),
            error_message: format!(
                "RequestId: {request_id} Error: {}",
                timed_out_message(timeout_s)
            ),
            stack_trace: Vec::new(),
        }
    }

    /// Lambda's error for a runtime that exited before answering (`status`: `exit status
    /// 1`, `signal: killed`).
    pub fn runtime_exited(request_id: &str, status: &str) -> FunctionError {
        FunctionError {
            error_type: "Runtime.ExitError".into(),
            error_message: format!(
                "RequestId: {request_id} Error: Runtime exited with error: {status}"
            ),
            stack_trace: Vec::new(),
        }
    }

    /// Lambda's error for a response over [`MAX_RESPONSE_BYTES`].
    pub fn response_too_large() -> FunctionError {
        FunctionError {
            error_type: "Function.ResponseSizeTooLarge".into(),
            error_message: format!(
                "Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
            ),
            stack_trace: Vec::new(),
        }
    }
}

/// What Lambda logs, and says to the caller, of an invocation stopped at its deadline.
pub fn timed_out_message(timeout_s: u32) -> String {
    format!("Task timed out after {timeout_s}.00 seconds")
}

fn de_stack_trace<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match value {
        Some(serde_json::Value::Array(entries)) => entries
            .into_iter()
            .map(|e| match e {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            })
            .collect(),
        Some(serde_json::Value::String(s)) => s.lines().map(str::to_string).collect(),
        Some(serde_json::Value::Null) | None => Vec::new(),
        Some(other) => vec![other.to_string()],
    })
}

/// What the supervisor reads at start-up from `/opt/scar/function.json`: the function's
/// settings and the image's command.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionFile {
    pub name: String,
    pub timeout_s: u32,
    pub timeout_threshold_s: u32,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub init_script: Option<String>,
    #[serde(default)]
    pub image: ImageConfig,
    /// Set in a `zip` package: where the image's root is inside the package, for a
    /// supervisor that starts outside it (on Lambda, `/` is Amazon Linux's and the image is
    /// only files under `$LAMBDA_TASK_ROOT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<PackagedRoot>,
    /// The folders whose objects the function runs for: the supervisor downloads an
    /// object of a storage provider's folder (MinIO's) from that provider.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<crate::spec::InputSpec>,
    /// Where output files go, each with its filters; none: they are not uploaded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<crate::spec::OutputSpec>,
    /// `lambda-batch`: at the threshold the supervisor hands the event over instead of
    /// stopping the script as a timeout.
    #[serde(default, skip_serializing_if = "crate::spec::ExecutionMode::is_lambda")]
    pub execution_mode: crate::spec::ExecutionMode,
}

impl FunctionFile {
    /// The function file of `spec` running an image configured as `image`.
    pub fn new(spec: &crate::FunctionSpec, image: ImageConfig) -> FunctionFile {
        FunctionFile {
            name: spec.name.clone(),
            timeout_s: spec.timeout_s,
            timeout_threshold_s: spec.timeout_threshold_s,
            environment: spec.environment.clone(),
            init_script: spec.init_script.clone(),
            image,
            container: None,
            inputs: spec.inputs.clone(),
            outputs: spec.outputs.clone(),
            execution_mode: spec.execution_mode,
        }
    }
}

/// How a `zip` package's supervisor reaches the image's root. Paths are
/// relative to the task root (`$LAMBDA_TASK_ROOT`, `/var/task` on Lambda).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackagedRoot {
    /// The extracted root (`udocker/containers/<id>/ROOT`), when the package holds it.
    #[serde(default)]
    pub root: Option<String>,
    /// The image's layers, bottom first (`udocker/layers/<hex>.layer`): without `root`,
    /// the supervisor builds the root from them under `/tmp` at cold start.
    #[serde(default)]
    pub layers: Vec<String>,
    /// The static `proot` that runs commands inside the root where namespaces are not
    /// allowed (Lambda), when the package holds one (`udocker/bin/proot`).
    #[serde(default)]
    pub proot: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SCAR's own example of a REST proxy event (faas-supervisor's apigateway.py), trimmed.
    fn rest_event(body: &str, content_type: &str, query: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "body": body,
            "headers": {"Accept": "*/*", "Content-Type": content_type},
            "httpMethod": "POST",
            "isBase64Encoded": false,
            "path": "/launch",
            "pathParameters": {"proxy": "launch"},
            "queryStringParameters": query,
            "requestContext": {"path": "/scar/launch", "stage": "scar", "resourcePath": "/{proxy+}"},
            "resource": "/{proxy+}",
        })
    }

    #[test]
    fn http_events_rest_and_payload_2() {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        // SCAR's client sends files base64 as a non-JSON body.
        let raw = rest_event(
            &b64(b"\x89PNG\0"),
            "application/octet-stream",
            serde_json::json!({"size": "10", "bad-name": "x"}),
        );
        let Ok(Event::Http(r)) = Event::parse(&raw) else {
            panic!()
        };
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/launch"));
        assert_eq!(r.body, b"\x89PNG\0");
        assert_eq!(r.query["size"], "10");
        assert!(!r.json);
        // A JSON body is kept as it is, base64-looking or not.
        let raw = rest_event(
            "\"abcd\"",
            "application/json; charset=utf-8",
            serde_json::Value::Null,
        );
        let Ok(Event::Http(r)) = Event::parse(&raw) else {
            panic!()
        };
        assert_eq!((r.body.as_slice(), r.json), (&b"\"abcd\""[..], true));
        // Plain text that is not base64 is kept too.
        let raw = rest_event("hello, world", "text/plain", serde_json::Value::Null);
        let Ok(Event::Http(r)) = Event::parse(&raw) else {
            panic!()
        };
        assert_eq!(r.body, b"hello, world");
        // Payload format 2.0 (HTTP APIs, Function URLs), API Gateway's base64 undone.
        let raw = serde_json::json!({
            "version": "2.0", "rawPath": "/scar/launch", "rawQueryString": "a=1",
            "headers": {"content-type": "text/plain"},
            "queryStringParameters": {"a": "1,2"},
            "requestContext": {"http": {"method": "PUT", "path": "/scar/launch"}},
            "body": b64(b"plain words here"), "isBase64Encoded": true,
        });
        let Ok(Event::Http(r)) = Event::parse(&raw) else {
            panic!()
        };
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("PUT", "/scar/launch")
        );
        assert_eq!(r.body, b"plain words here");
        assert_eq!(r.query["a"], "1,2");
        // No body at all (a GET).
        let mut raw = rest_event("", "", serde_json::Value::Null);
        raw["body"] = serde_json::Value::Null;
        let Ok(Event::Http(r)) = Event::parse(&raw) else {
            panic!()
        };
        assert!(r.body.is_empty());
    }

    #[test]
    fn unknown_events_and_payloads() {
        let parse = |v: serde_json::Value| Event::parse(&v).unwrap();
        assert!(matches!(parse(serde_json::json!({})), Event::Direct(_)));
        assert!(matches!(parse(serde_json::Value::Null), Event::Direct(_)));
        assert!(matches!(
            parse(serde_json::json!({"script": "echo", "other": 1})),
            Event::Direct(_)
        ));
        let Event::Unknown(bytes) = parse(serde_json::json!({"detail-type": "Scheduled Event"}))
        else {
            panic!()
        };
        assert_eq!(bytes, br#"{"detail-type":"Scheduled Event"}"#);
        // A string: SCAR's base64 data, else the text.
        let Event::Unknown(bytes) = parse(serde_json::json!("aGVsbG8=")) else {
            panic!()
        };
        assert_eq!(bytes, b"hello");
        let Event::Unknown(bytes) = parse(serde_json::json!("not base64!")) else {
            panic!()
        };
        assert_eq!(bytes, b"not base64!");
        let Event::Unknown(bytes) = parse(serde_json::json!([1, 2])) else {
            panic!()
        };
        assert_eq!(bytes, b"[1,2]");
    }

    #[test]
    fn proxy_responses() {
        let mut ok = Response::new("req-1", Ending::Exited(0));
        ok.set_output(vec![0xff, 0x00, b'x']);
        ok.log_group = "/aws/lambda/f".into();
        let p = ProxyResponse::of(&ok);
        assert_eq!(p.status_code, 200);
        assert!(p.is_base64_encoded);
        assert_eq!(p.body_bytes(), vec![0xff, 0x00, b'x']);
        assert_eq!(p.headers["amz-lambda-request-id"], "req-1");
        assert_eq!(p.headers["amz-log-group-name"], "/aws/lambda/f");
        assert_eq!(p.headers[EXIT_CODE_HEADER], "0");
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["statusCode"], 200);
        assert_eq!(json["isBase64Encoded"], true);
        assert_eq!(serde_json::from_value::<ProxyResponse>(json).unwrap(), p);

        let mut failed = Response::new("req-2", Ending::Exited(3));
        failed.set_output(b"boom\n".to_vec());
        let p = ProxyResponse::of(&failed);
        assert_eq!((p.status_code, p.body_bytes()), (500, b"boom\n".to_vec()));
        assert_eq!(p.headers[EXIT_CODE_HEADER], "3");
        let timed_out = Response::new(
            "req-3",
            Ending::TimedOut {
                error: Some(FunctionError::timed_out("req-3", 3)),
            },
        );
        let p = ProxyResponse::of(&timed_out);
        assert_eq!(p.status_code, 500);
        assert_eq!(p.headers["scar-timed-out"], "true");
        assert!(
            String::from_utf8(p.body_bytes())
                .unwrap()
                .contains("Task timed out"),
            "{p:?}"
        );
        let p = ProxyResponse::failed("req-4", "scar: cannot prepare");
        assert_eq!(
            (p.status_code, p.body_bytes()),
            (500, b"scar: cannot prepare".to_vec())
        );
        assert!(!p.headers.contains_key(EXIT_CODE_HEADER));
    }

    #[test]
    fn scar_forms_of_the_payload() {
        let p: Payload = serde_json::from_str(
            r#"{"script":"ZWNobyBoaQo=","cmd_args":"[\"a\",\"b c\"]","env":{"K":"V"}}"#,
        )
        .unwrap();
        assert_eq!(p.script_text().as_deref(), Some("echo hi\n"));
        assert_eq!(p.cmd_args, Some(vec!["a".to_string(), "b c".to_string()]));
        let p: Payload =
            serde_json::from_str(r#"{"script":"echo plain text","cmd_args":["x"]}"#).unwrap();
        assert_eq!(p.script_text().as_deref(), Some("echo plain text"));
        assert!(serde_json::from_str::<Payload>(r#"{"cmd_args":"not json"}"#).is_err());
    }

    #[test]
    fn a_whole_event_is_sent_as_it_is() {
        let event = serde_json::json!({"env": "prod", "items": [1, 2]});
        let p = Payload {
            event: Some(event.clone()),
            ..Payload::default()
        };
        assert_eq!(serde_json::to_value(&p).unwrap(), event);
        let fields = Payload {
            cmd_args: Some(vec!["a".into()]),
            ..Payload::default()
        };
        assert_eq!(
            serde_json::to_string(&fields).unwrap(),
            r#"{"cmd_args":["a"]}"#
        );
    }

    #[test]
    fn s3_keys_round_trip() {
        for key in ["input/a b+c%d/ü é.txt", "input/x", "input/100% sure+.png"] {
            assert_eq!(decode_s3_key(&encode_s3_key(key)), key);
        }
        assert_eq!(decode_s3_key("input/a+b%2Bc"), "input/a b+c");
        assert_eq!(decode_s3_key("bad%zz%4"), "bad%zz%4");
    }

    #[test]
    fn events_are_classified() {
        let s3 = serde_json::json!({"Records":[{"eventSource":"aws:s3","s3":{"bucket":{"name":"b"},"object":{"key":"input/a+b"}}}]});
        match Event::parse(&s3).unwrap() {
            Event::Storage(records) => {
                assert_eq!(records[0].key, "input/a b");
                assert_eq!(records[0].file_name(), "a b");
                assert_eq!(records[0].event_time, None);
            }
            other => panic!("{other:?}"),
        }
        let direct = serde_json::json!({"cmd_args":["ls"]});
        assert!(matches!(Event::parse(&direct).unwrap(), Event::Direct(_)));
        assert!(matches!(
            Event::parse(&serde_json::Value::Null).unwrap(),
            Event::Direct(_)
        ));
    }

    #[test]
    fn minio_events_are_storage_events_from_minio() {
        let event = crate::bucket::ObjectCreated {
            bucket: "archive".into(),
            key: "in/a b.txt".into(),
            size: 3,
            etag: "e".into(),
            event_time: "2024-01-01T00:00:00.000Z".into(),
            region: String::new(),
            sequence: 1,
            chain: 1,
        }
        .to_minio_event();
        assert_eq!(event["Key"], "archive/in/a b.txt");
        match Event::parse(&event).unwrap() {
            Event::Storage(records) => {
                assert_eq!(records[0].bucket, "archive");
                assert_eq!(records[0].key, "in/a b.txt");
                assert!(records[0].is_minio());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn runtime_errors_are_read_as_lambda_reads_them() {
        let e = FunctionError::from_runtime(
            br#"{"errorType":"ValueError","errorMessage":"bad","stackTrace":["  File \"a.py\"", "    raise"]}"#,
            Some("Unhandled"),
        );
        assert_eq!(e.error_type, "ValueError");
        assert_eq!(e.stack_trace.len(), 2);
        let e = FunctionError::from_runtime(br#"{"errorMessage":"m"}"#, Some("Runtime.Custom"));
        assert_eq!(
            (e.error_type.as_str(), e.error_message.as_str()),
            ("Runtime.Custom", "m")
        );
        let e = FunctionError::from_runtime(b"not json", None);
        assert_eq!(
            (e.error_type.as_str(), e.error_message.as_str()),
            ("Unhandled", "not json")
        );
        let r = Response::new(
            "r",
            Ending::TimedOut {
                error: Some(FunctionError::timed_out("r", 5)),
            },
        );
        assert!(!r.succeeded());
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json["function_error"]["errorMessage"],
            "RequestId: r Error: Task timed out after 5.00 seconds"
        );
    }

    #[test]
    fn each_ending_is_the_json_users_read_and_reads_back() {
        let error = FunctionError::runtime_exited("r", "signal: killed");
        let cases = [
            (Ending::Exited(0), r#"{"exit_code":0,"timed_out":false}"#),
            (Ending::Exited(3), r#"{"exit_code":3,"timed_out":false}"#),
            (
                Ending::TimedOut { error: None },
                r#"{"exit_code":null,"timed_out":true}"#,
            ),
            (
                Ending::Unfinished { error: None },
                r#"{"exit_code":null,"timed_out":false}"#,
            ),
            (
                Ending::HandedOver,
                r#"{"exit_code":0,"timed_out":false,"handed_over":true}"#,
            ),
        ];
        for (ending, fields) in cases {
            let json = serde_json::to_value(Response::new("r", ending.clone())).unwrap();
            let want: serde_json::Value = serde_json::from_str(fields).unwrap();
            for (k, v) in want.as_object().unwrap() {
                assert_eq!(&json[k], v, "{ending:?}: {k}");
            }
            for absent in ["handed_over", "function_error"] {
                if want.get(absent).is_none() {
                    assert!(json.get(absent).is_none(), "{ending:?}: {absent} in {json}");
                }
            }
            let back: Response = serde_json::from_value(json).unwrap();
            assert_eq!(back.ending, ending);
        }
        let failed = Response::new(
            "r",
            Ending::Unfinished {
                error: Some(error.clone()),
            },
        );
        let back: Response =
            serde_json::from_str(&serde_json::to_string(&failed).unwrap()).unwrap();
        assert_eq!(back, failed);
        assert_eq!(back.function_error(), Some(&error));
    }

    #[test]
    fn contradictory_json_reads_as_one_ending() {
        let read = |json: &str| serde_json::from_str::<Response>(json).unwrap().ending;
        // What a supervisor wrote when a hand-over at the threshold followed a timeout.
        assert_eq!(
            read(
                r#"{"request_id":"r","exit_code":0,"timed_out":true,"handed_over":true,"output":""}"#
            ),
            Ending::HandedOver
        );
        assert_eq!(
            read(r#"{"request_id":"r","exit_code":0,"timed_out":true,"output":""}"#),
            Ending::TimedOut { error: None }
        );
        let e = read(
            r#"{"request_id":"r","exit_code":0,"timed_out":false,"output":"","function_error":{"errorType":"T","errorMessage":"m"}}"#,
        );
        assert!(matches!(e, Ending::Unfinished { error: Some(ref f) } if f.error_type == "T"));
    }

    #[test]
    fn non_utf8_output_is_base64() {
        let mut r = Response::default();
        r.set_output(vec![0xff, 0xfe, b'a']);
        assert_eq!(r.output_encoding.as_deref(), Some("base64"));
        assert_eq!(r.output_bytes(), vec![0xff, 0xfe, b'a']);
    }
}
