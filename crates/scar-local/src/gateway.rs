//! API Gateway's side of `scar serve`'s HTTP listener: what a REST API's `{proxy+}`
//! resource with a Lambda proxy integration (what SCAR's `api_gateway` creates) does with
//! a request, so that `curl` and `scar invoke` work locally as against AWS:
//!
//! - `ANY /restapis/{function}/scar/_user_request_/{path}` (LocalStack's shape of an
//!   `execute-api` URL; stage `scar`, as SCAR's) becomes the REST proxy event (`httpMethod`,
//!   `path`, `headers`, `queryStringParameters`, `body`, `requestContext`...);
//! - the function's proxy response becomes the HTTP answer: its status, headers and body as
//!   they are (a base64 body stays base64, as a REST API without binary media types
//!   returns it: `curl URL | base64 -d`);
//! - API Gateway's own answers: 502 `Internal server error` for a function error or a
//!   response that is not a proxy response, 504 `Endpoint request timed out` after its 29 s
//!   integration timeout (the invocation runs on), 429 beyond reserved concurrency, 413
//!   for a request Lambda could not take.

use std::collections::BTreeMap;

use base64::Engine as _;
use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{HeaderMap, Method, StatusCode};
use scar_core::event::ProxyResponse;
use serde_json::json;

/// Where API Gateway routes start (LocalStack's `execute-api` path shape).
pub(crate) const PREFIX: &str = "/restapis/";

/// The stage SCAR deploys its APIs on.
pub(crate) const STAGE: &str = "scar";

/// What separates the stage from the user's path.
const USER_REQUEST: &str = "_user_request_";

/// API Gateway's integration timeout.
pub(crate) const INTEGRATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(29);

/// The URL path of `function`'s endpoint (`/restapis/NAME/scar/_user_request_/launch`).
pub fn launch_path(function: &str) -> String {
    format!("{PREFIX}{function}/{STAGE}/{USER_REQUEST}/launch")
}

/// A request's route: the function and the user's path (`/launch`), or `None` when the
/// path is not an API Gateway route of stage `scar`.
pub(crate) fn parse_route(path: &str) -> Option<(&str, String)> {
    let rest = path.strip_prefix(PREFIX)?;
    let (function, rest) = rest.split_once('/')?;
    let rest = rest.strip_prefix(STAGE)?.strip_prefix('/')?;
    let user = rest.strip_prefix(USER_REQUEST)?;
    let user = if user.is_empty() { "/" } else { user };
    user.starts_with('/').then(|| (function, user.to_string()))
}

/// The REST proxy event API Gateway sends for this request.
pub(crate) fn proxy_event(
    method: &Method,
    user_path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    function: &str,
    request_id: &str,
    body: &[u8],
) -> serde_json::Value {
    let mut single = serde_json::Map::new();
    let mut multi: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        single.insert(name.as_str().to_string(), json!(value));
        multi
            .entry(name.as_str().to_string())
            .or_default()
            .push(value);
    }
    let mut params = serde_json::Map::new();
    let mut multi_params: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (Some(k), Some(v)) = (decode(k), decode(v)) else {
            continue;
        };
        params.insert(k.clone(), json!(v));
        multi_params.entry(k).or_default().push(v);
    }
    let none_if_empty = |m: serde_json::Map<String, serde_json::Value>| {
        if m.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::Value::Object(m)
        }
    };
    let (body, base64) = match std::str::from_utf8(body) {
        _ if body.is_empty() => (serde_json::Value::Null, false),
        Ok(text) => (json!(text), false),
        Err(_) => (
            json!(base64::engine::general_purpose::STANDARD.encode(body)),
            true,
        ),
    };
    let proxy = user_path.trim_start_matches('/');
    json!({
        "resource": "/{proxy+}",
        "path": user_path,
        "httpMethod": method.as_str(),
        "headers": none_if_empty(single),
        "multiValueHeaders": multi,
        "queryStringParameters": none_if_empty(params),
        "multiValueQueryStringParameters": if multi_params.is_empty() { serde_json::Value::Null } else { json!(multi_params) },
        "pathParameters": if proxy.is_empty() { serde_json::Value::Null } else { json!({"proxy": proxy}) },
        "stageVariables": null,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": function,
            "httpMethod": method.as_str(),
            "path": format!("/{STAGE}{user_path}"),
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "resourcePath": "/{proxy+}",
            "stage": STAGE,
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": body,
        "isBase64Encoded": base64,
    })
}

/// `%XX`-decoding of a query string's part (`+` is a space, as browsers send it).
fn decode(s: &str) -> Option<String> {
    crate::http::percent_decode(&s.replace('+', " "))
}

/// An HTTP answer: status, headers, body.
pub(crate) type Answer = (StatusCode, Vec<(HeaderName, HeaderValue)>, Bytes);

/// What API Gateway answers for a function's answer: the proxy response it holds, else
/// API Gateway's 502.
pub(crate) fn answer(payload: &[u8], function_error: bool) -> Answer {
    let proxy = (!function_error)
        .then(|| serde_json::from_slice::<ProxyResponse>(payload).ok())
        .flatten()
        .and_then(|p| StatusCode::from_u16(p.status_code).ok().map(|s| (s, p)));
    let Some((status, proxy)) = proxy else {
        return own(StatusCode::BAD_GATEWAY, "Internal server error");
    };
    let headers = proxy
        .headers
        .iter()
        .filter_map(|(k, v)| {
            Some((
                HeaderName::from_bytes(k.as_bytes()).ok()?,
                HeaderValue::from_str(v).ok()?,
            ))
        })
        .collect();
    (status, headers, Bytes::from(proxy.body))
}

/// One of API Gateway's own answers: `{"message": ...}`.
pub(crate) fn own(status: StatusCode, message: &str) -> Answer {
    let headers = vec![(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    )];
    (
        status,
        headers,
        Bytes::from(json!({"message": message}).to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            parse_route("/restapis/f/scar/_user_request_/launch"),
            Some(("f", "/launch".to_string()))
        );
        assert_eq!(
            parse_route("/restapis/f/scar/_user_request_"),
            Some(("f", "/".to_string()))
        );
        assert_eq!(parse_route("/restapis/f/prod/_user_request_/launch"), None);
        assert_eq!(parse_route("/restapis/f/scar/launch"), None);
        assert_eq!(parse_route("/2015-03-31/functions/f/invocations"), None);
        assert_eq!(launch_path("f"), "/restapis/f/scar/_user_request_/launch");
    }

    #[test]
    fn the_event_is_api_gateways_and_the_supervisor_reads_it() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        let event = proxy_event(
            &Method::POST,
            "/launch",
            Some("size=10&name=a%20b+c&size=20&bad=%zz"),
            &headers,
            "f",
            "req",
            b"aGk=",
        );
        assert_eq!(event["httpMethod"], "POST");
        assert_eq!(event["requestContext"]["path"], "/scar/launch");
        assert_eq!(event["pathParameters"]["proxy"], "launch");
        assert_eq!(event["queryStringParameters"]["size"], "20");
        assert_eq!(
            event["multiValueQueryStringParameters"]["size"],
            json!(["10", "20"])
        );
        assert!(event["queryStringParameters"].get("bad").is_none());
        let Ok(scar_core::event::Event::Http(r)) = scar_core::event::Event::parse(&event) else {
            panic!("{event}")
        };
        assert_eq!(r.query["name"], "a b c");
        assert_eq!(r.body, b"hi");
        // Bytes that are not text go base64, flagged.
        let event = proxy_event(
            &Method::PUT,
            "/",
            None,
            &HeaderMap::new(),
            "f",
            "r",
            &[0xff, 0],
        );
        assert_eq!(event["isBase64Encoded"], true);
        assert_eq!(event["queryStringParameters"], serde_json::Value::Null);
        let Ok(scar_core::event::Event::Http(r)) = scar_core::event::Event::parse(&event) else {
            panic!()
        };
        assert_eq!(r.body, [0xff, 0]);
    }

    #[test]
    fn answers() {
        let proxy = json!({"statusCode": 201, "headers": {"x-a": "1", "bad header": "x"},
            "body": "aGk=", "isBase64Encoded": true});
        let (status, headers, body) = answer(proxy.to_string().as_bytes(), false);
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(headers.len(), 1);
        assert_eq!(&body[..], b"aGk=");
        assert_eq!(
            answer(proxy.to_string().as_bytes(), true).0,
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(
            answer(b"{\"not\": \"a proxy response\"}", false).0,
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(
            answer(b"{\"statusCode\": 99}", false).0,
            StatusCode::BAD_GATEWAY
        );
    }
}
