//! The launcher's dispatch rate against an endpoint (moto), versus a sequential loop.
//!
//! ```text
//! cargo run --release -p scar-aws --example dispatch_bench -- --endpoint http://127.0.0.1:5000 \
//!     [--n 500] [--concurrency 32] [--moto] [--latency-ms 20]
//! cargo run --release -p scar-aws --example dispatch_bench -- --stub [--latency-ms 20]
//! ```
//! With `--moto`, the example prepares moto itself: Lambda without Docker and the IAM role.
//! With `--stub`, the endpoint is a stand-in for Lambda's Invoke API in this process that
//! answers every call at once on kept-alive connections: the dispatcher's own limit, where
//! moto's cost per call (milliseconds of Python, a connection per call) would hide it.
//! With `--latency-ms`, the calls go through a proxy on loopback that delays every byte a
//! client sends by that long: the round trip to a real region, which an emulator on the
//! same machine lacks and which is what concurrent dispatch hides.
//! It creates an image-package function (moto accepts any image URI), measures, and
//! removes it. Prints one JSON line: the figures `cargo xtask bench` collects.

use std::process::ExitCode;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

use scar_aws::{AwsConfig, AwsProvider, InitRequest, Package, StaticCredentials};
use scar_core::provider::Provider;

const ROLE: &str = "arn:aws:iam::123456789012:role/scar-bench";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let stub = args.iter().any(|a| a == "--stub");
    let endpoint = match (value("--endpoint"), stub) {
        (Some(endpoint), false) => endpoint,
        (None, true) => match stub_lambda().await {
            Ok(port) => format!("http://127.0.0.1:{port}"),
            Err(e) => {
                eprintln!("cannot start the stub endpoint: {e}");
                return ExitCode::from(3);
            }
        },
        _ => {
            eprintln!(
                "usage: dispatch_bench (--endpoint URL [--moto] | --stub) [--n N] [--concurrency C] [--latency-ms MS]"
            );
            return ExitCode::from(2);
        }
    };
    let n: usize = value("--n").and_then(|v| v.parse().ok()).unwrap_or(500);
    let concurrency: usize = value("--concurrency")
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    if args.iter().any(|a| a == "--moto") {
        if let Err(e) = prepare_moto(&endpoint) {
            eprintln!("cannot prepare moto at {endpoint}: {e}");
            return ExitCode::from(3);
        }
    }
    let latency_ms: u64 = value("--latency-ms")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let target = if latency_ms > 0 {
        match delay_proxy(&endpoint, Duration::from_millis(latency_ms)).await {
            Ok(port) => format!("http://127.0.0.1:{port}"),
            Err(e) => {
                eprintln!("cannot start the latency proxy: {e}");
                return ExitCode::from(3);
            }
        }
    } else {
        endpoint
    };
    let mut config = AwsConfig::new("us-east-1");
    config.connection.endpoint_url = Some(target);
    config.deployment.iam_role = ROLE.into();
    config.connection.credentials = Some(StaticCredentials {
        access_key_id: "testing".into(),
        secret_access_key: "testing".into(),
        session_token: None,
    });
    let aws = AwsProvider::connect(config).await;
    // The tests' spec (scar's defaults), small: a benchmark, not a copy of the literal.
    let spec = scar_core::FunctionSpec::new("scar-dispatch-bench", "bench")
        .with_memory_mb(128)
        .with_timeout_s(60)
        .with_description("dispatch benchmark");
    let name = spec.name.clone();
    // The stub accepts any function: nothing to create there.
    if !stub {
        let _ = aws.remove(&name).await;
        let package = Package::Image {
            uri: "123456789012.dkr.ecr.us-east-1.amazonaws.com/scar-bench:latest".into(),
        };
        if let Err(e) = aws.init(InitRequest::new(spec, package)).await {
            eprintln!("error: {e}");
            return ExitCode::from(3);
        }
    }
    let result = scar_aws::dispatch_bench(&aws, &name, n, concurrency).await;
    if !stub {
        let _ = aws.remove(&name).await;
    }
    match result {
        Ok(b) => {
            println!(
                "{}",
                serde_json::json!({
                    "invocations": b.invocations,
                    "latency_ms": latency_ms,
                    "endpoint": if stub { "stub" } else { "emulator" },
                    "concurrency": b.concurrency,
                    "sequential_s": b.sequential.as_secs_f64(),
                    "concurrent_s": b.concurrent.as_secs_f64(),
                    "sequential_per_s": b.sequential_rate(),
                    "concurrent_per_s": b.concurrent_rate(),
                    "speedup": b.concurrent_rate() / b.sequential_rate(),
                    "failed": b.failed,
                })
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(3)
        }
    }
}

/// A loopback proxy to `endpoint` (`http://host:port`) that delays every byte a client
/// sends by `latency` (a delay line: each chunk is stamped when it arrives and forwarded
/// at stamp + `latency`, so a request written in several pieces is still late by
/// `latency` once, and chunks in flight overlap); answers flow back at once. Returns its
/// port.
async fn delay_proxy(endpoint: &str, latency: Duration) -> std::io::Result<u16> {
    let upstream = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (mut client_rx, mut client_tx) = client.into_split();
                let (mut server_rx, mut server_tx) = server.into_split();
                let (line_tx, mut line_rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
                let read = async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = client_rx.read(&mut buf).await {
                        if n == 0
                            || line_tx
                                .send((Instant::now() + latency, buf[..n].to_vec()))
                                .is_err()
                        {
                            break;
                        }
                    }
                };
                let forward = async move {
                    while let Some((due, chunk)) = line_rx.recv().await {
                        tokio::time::sleep_until(due).await;
                        if server_tx.write_all(&chunk).await.is_err() {
                            break;
                        }
                    }
                    let _ = server_tx.shutdown().await;
                };
                let answers = async {
                    let _ = tokio::io::copy(&mut server_rx, &mut client_tx).await;
                };
                tokio::join!(read, forward, answers);
            });
        }
    });
    Ok(port)
}

/// A stand-in for Lambda's Invoke API that costs next to nothing: every request on a
/// connection (kept alive, as Lambda's are) is answered `202 Accepted` with a request id.
/// It shows the dispatcher's own limit where moto's (a Python server that closes every
/// connection and takes milliseconds of CPU per call) would hide it. Returns its port.
async fn stub_lambda() -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        let served = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        while let Ok((stream, _)) = listener.accept().await {
            let served = served.clone();
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                let mut stream = tokio::io::BufStream::new(stream);
                while let Some(()) = read_request(&mut stream).await {
                    let id = served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let answer = format!(
                        "HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\n\
                         x-amzn-requestid: stub-{id}\r\ncontent-length: 0\r\n\r\n"
                    );
                    if stream.write_all(answer.as_bytes()).await.is_err()
                        || stream.flush().await.is_err()
                    {
                        break;
                    }
                }
            });
        }
    });
    Ok(port)
}

/// Reads one HTTP/1.1 request (its headers, then `content-length` bytes of body); `None`
/// at the end of the connection.
async fn read_request<S: tokio::io::AsyncBufRead + Unpin>(stream: &mut S) -> Option<()> {
    let mut length = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        if stream.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.ok()?;
    Some(())
}

/// moto: Lambda without Docker, and the role functions need.
fn prepare_moto(endpoint: &str) -> std::io::Result<()> {
    let addr = endpoint.trim_start_matches("http://").trim_end_matches('/');
    scar_test_support::moto::prepare(addr, "scar-bench")
}
