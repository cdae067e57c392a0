//! A recording HTTP/1.1 proxy in front of moto that can answer Lambda invocations with
//! 429 TooManyRequestsException, to show the launcher's retries.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An invoke request that reached moto.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub invocation_type: String,
    pub body: Vec<u8>,
}

#[derive(Default)]
struct State {
    throttle_first: AtomicUsize,
    events_only: bool,
    throttled: AtomicUsize,
    forwarded: Mutex<Vec<Recorded>>,
}

/// The proxy; stops accepting when dropped.
pub struct Proxy {
    pub port: u16,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream_port`, answering the
    /// first `throttle_first` invoke requests with 429.
    pub async fn start(upstream_port: u16, throttle_first: usize) -> Proxy {
        Proxy::start_with(upstream_port, throttle_first, false).await
    }

    /// Like [`Proxy::start`]; with `events_only`, only asynchronous (`Event`) invoke
    /// requests are throttled.
    pub async fn start_with(upstream_port: u16, throttle_first: usize, events_only: bool) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State {
            events_only,
            ..State::default()
        });
        state.throttle_first.store(throttle_first, Ordering::SeqCst);
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    return;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(conn, upstream_port, state).await;
                });
            }
        });
        Proxy { port, state, task }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Invoke requests answered with 429.
    pub fn throttled(&self) -> usize {
        self.state.throttled.load(Ordering::SeqCst)
    }

    /// Invoke requests forwarded to moto, in arrival order.
    pub fn forwarded(&self) -> Vec<Recorded> {
        self.state.forwarded.lock().unwrap().clone()
    }
}

async fn serve(mut conn: TcpStream, upstream_port: u16, state: Arc<State>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    loop {
        // Read one request: the head, then Content-Length bytes of body.
        let head_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            let mut chunk = [0u8; 16384];
            let n = conn.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
        };
        assert!(
            header("transfer-encoding").is_none(),
            "the test proxy does not do chunked requests"
        );
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            let mut chunk = [0u8; 16384];
            let n = conn.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = buf[head_end..head_end + length].to_vec();
        let rest = buf.split_off(head_end + length);
        let request_line = head.lines().next().unwrap_or_default().to_string();
        buf = rest;

        let is_invoke = request_line.contains("/invocations");
        let invocation_type = header("x-amz-invocation-type").unwrap_or_default();
        if is_invoke {
            let eligible = !state.events_only || invocation_type == "Event";
            // One atomic decrement per request: concurrent requests never both see the
            // same count (a lost compare-and-swap used to let one through unthrottled).
            if eligible
                && state
                    .throttle_first
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
            {
                state.throttled.fetch_add(1, Ordering::SeqCst);
                let json = r#"{"Reason":"ReservedFunctionConcurrentInvocationLimitExceeded","Type":"User","message":"Rate Exceeded."}"#;
                let response = format!(
                    "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nx-amzn-ErrorType: TooManyRequestsException\r\nx-amzn-RequestId: throttled\r\nContent-Length: {}\r\n\r\n{json}",
                    json.len()
                );
                conn.write_all(response.as_bytes()).await?;
                continue;
            }
            state.forwarded.lock().unwrap().push(Recorded {
                invocation_type,
                body: body.clone(),
            });
        }

        // Forward on a fresh upstream connection that closes after the response.
        let mut upstream = TcpStream::connect(("127.0.0.1", upstream_port)).await?;
        let mut forwarded = String::new();
        for line in head[..head_end].split("\r\n").filter(|l| !l.is_empty()) {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("connection:") || lower.starts_with("keep-alive:") {
                continue;
            }
            forwarded.push_str(line);
            forwarded.push_str("\r\n");
        }
        forwarded.push_str("Connection: close\r\n\r\n");
        upstream.write_all(forwarded.as_bytes()).await?;
        upstream.write_all(&body).await?;
        let mut response = Vec::new();
        upstream.read_to_end(&mut response).await?;
        // Keep the client's connection alive: drop moto's `Connection: close`.
        let response = strip_connection_close(&response);
        conn.write_all(&response).await?;
    }
}

fn strip_connection_close(response: &[u8]) -> Vec<u8> {
    let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") else {
        return response.to_vec();
    };
    let head = String::from_utf8_lossy(&response[..end]);
    let mut out = String::new();
    let mut has_length = false;
    for line in head.split("\r\n") {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("connection:") {
            continue;
        }
        has_length |=
            lower.starts_with("content-length:") || lower.starts_with("transfer-encoding:");
        out.push_str(line);
        out.push_str("\r\n");
    }
    let body = &response[end + 4..];
    if !has_length {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}
