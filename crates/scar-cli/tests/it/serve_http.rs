//! `scar serve`'s Lambda Invoke API, called by real AWS clients: boto3's `lambda.invoke`
//! (`tests/data/invoke_api.py`) and the AWS CLI (`aws lambda invoke --endpoint-url`), both
//! from PyPI (installed by `cargo xtask install-test-tools`).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use scar_test_support::scar::Scar;

use super::common::{scar_with, with_busybox_image};

/// A running `scar serve`, stopped (SIGINT) and waited for on drop.
pub(crate) struct Served {
    child: Child,
    /// `http://127.0.0.1:PORT`, as `serve --json` printed it.
    pub endpoint: String,
    /// The dashboard's URL, as it printed it.
    pub dashboard: String,
}

impl Served {
    pub fn start(scar: &Scar, extra: &[&str]) -> Served {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--json"];
        args.extend_from_slice(extra);
        let mut child = scar.spawn(&args, Stdio::piped());
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines
            .next()
            .expect("serve prints where it listens")
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&first).unwrap();
        let endpoint = v["listening"].as_str().expect("listening").to_string();
        assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
        let dashboard = v["dashboard"].as_str().unwrap_or_default().to_string();
        // The rest of its output is drained, so that it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Served {
            child,
            endpoint,
            dashboard,
        }
    }

    /// Runs the boto3 driver's `check` against this endpoint; returns its JSON line.
    fn check(&self, check: &str) -> serde_json::Value {
        let driver = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/invoke_api.py");
        let out = aws_env(Command::new("python3").args([driver, &self.endpoint, check]))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "boto3 check {check} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc_kill(self.child.id() as i32, 2) };
        let started = Instant::now();
        while self.child.try_wait().ok().flatten().is_none() {
            if started.elapsed() > Duration::from_secs(40) {
                let _ = self.child.kill();
                panic!("scar serve did not stop on SIGINT");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// An AWS client's environment with made-up credentials and no user configuration.
fn aws_env(cmd: &mut Command) -> &mut Command {
    cmd.env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
}

/// `scar` with the busybox image and function `echo` (30 s timeout), and `tools`.
fn with_echo(tools: &[&str]) -> Option<(Scar, tempfile::TempDir, String)> {
    scar_with(tools)?;
    let (scar, work, image) = with_busybox_image()?;
    scar.run(&["init", "-n", "echo", "-i", &image, "-t", "30"])
        .ok();
    Some((scar, work, image))
}

#[test]
fn boto3_invokes_a_local_function_request_response_event_and_dry_run() {
    let Some((scar, _work, _)) = with_echo(&["python3"]) else {
        return;
    };
    let served = Served::start(&scar, &[]);
    let result = served.check("clients");
    // The Event invocation ran in the background, and its lines are in the log.
    let id = result["event_request_id"].as_str().unwrap();
    let started = Instant::now();
    loop {
        let log = scar.run(&["log", "-n", "echo", "-ri", id]);
        if log.stdout.contains("event-ran") && log.stdout.contains("REPORT") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the Event invocation did not run: {log:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_aws_cli_invokes_a_local_function() {
    let Some((scar, work, _)) = with_echo(&["python3", "aws"]) else {
        return;
    };
    let served = Served::start(&scar, &[]);
    let out_file = work.path().join("out.json");
    let aws = |args: &[&str]| {
        aws_env(
            Command::new("aws")
                .args(args)
                .args(["--endpoint-url", &served.endpoint]),
        )
        .output()
        .unwrap()
    };
    let out = aws(&[
        "lambda",
        "invoke",
        "--function-name",
        "echo",
        "--payload",
        r#"{"script": "echo from the aws cli"}"#,
        out_file.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(meta["StatusCode"], 200, "{meta}");
    assert_eq!(meta["ExecutedVersion"], "$LATEST", "{meta}");
    let body: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out_file).unwrap()).unwrap();
    assert_eq!(body["output"], "from the aws cli\n", "{body}");

    // A missing function: the CLI's own error for Lambda's 404, exit status 254.
    let out = aws(&[
        "lambda",
        "invoke",
        "--function-name",
        "missing",
        out_file.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ResourceNotFoundException"), "{stderr}");

    let out = aws(&["lambda", "get-function", "--function-name", "echo"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(f["Configuration"]["FunctionName"], "echo", "{f}");
}

#[test]
fn a_second_request_reuses_the_first_ones_warm_sandbox_until_it_idles_out() {
    let Some((scar, _work, _)) = with_echo(&["python3"]) else {
        return;
    };
    {
        let served = Served::start(&scar, &[]);
        served.check("warm");
    }
    let served = Served::start(&scar, &["--idle-timeout", "1"]);
    served.check("reclaimed");
}

/// A function removed and created again under its name by another `scar` (as SCAR's
/// api_gateway.rst does with `scar-imagemagick` while `scar serve` runs) is the new
/// definition from its first request on: the old one's warm sandbox is not reused.
#[test]
fn a_function_created_again_while_served_never_runs_in_the_old_ones_warm_sandbox() {
    let Some((scar, work, image)) = with_busybox_image() else {
        return;
    };
    let first = super::common::write_file(work.path(), "first.sh", "echo first-definition\n");
    let second = super::common::write_file(work.path(), "second.sh", "echo second-definition\n");
    scar.run(&["init", "-n", "again", "-i", &image, "-s", &first])
        .ok();
    let served = Served::start(&scar, &[]);
    let invoke = || {
        let address = served.endpoint.trim_start_matches("http://");
        let mut conn = std::net::TcpStream::connect(address).unwrap();
        write!(
            conn,
            "POST /2015-03-31/functions/again/invocations HTTP/1.1\r\nHost: {address}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        )
        .unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).unwrap();
        answer
    };
    let answer = invoke();
    assert!(answer.contains("first-definition"), "{answer}");
    scar.run(&["rm", "-n", "again"]).ok();
    scar.run(&["init", "-n", "again", "-i", &image, "-s", &second])
        .ok();
    let answer = invoke();
    assert!(
        answer.contains("second-definition") && !answer.contains("first-definition"),
        "{answer}"
    );
}

#[test]
fn concurrent_requests_run_in_parallel_and_reserved_concurrency_throttles() {
    let Some((scar, _work, image)) = with_echo(&["python3"]) else {
        return;
    };
    scar.run(&[
        "init",
        "-n",
        "single",
        "-i",
        &image,
        "--reserved-concurrency",
        "1",
    ])
    .ok();
    let served = Served::start(&scar, &[]);
    served.check("concurrency");
}

#[test]
fn bad_requests_get_lambdas_answers_never_a_hang() {
    let Some((scar, _work, _)) = with_echo(&["python3"]) else {
        return;
    };
    let served = Served::start(&scar, &[]);
    served.check("bad_input");

    // A client that sends its headers and then nothing: answered (or dropped) by the
    // server's timeout, never a hang; and a half-closed one after part of a body.
    let address = served.endpoint.trim_start_matches("http://").to_string();
    let mut half = std::net::TcpStream::connect(&address).unwrap();
    half.write_all(
        b"POST /2015-03-31/functions/echo/invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"scr",
    )
    .unwrap();
    half.shutdown(std::net::Shutdown::Write).unwrap();
    half.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut answer = String::new();
    let _ = half.read_to_string(&mut answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "{answer}"
    );
    // The server still serves.
    served.check("warm");
}

#[test]
fn a_non_loopback_listen_address_is_warned_about() {
    let Some(scar) = scar_with(&[]) else {
        return;
    };
    let mut child = scar
        .command()
        .args(["serve", "--listen", "0.0.0.0:0", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("\"listening\":\"http://0.0.0.0:"), "{first}");
    // SAFETY: signalling our own child.
    unsafe { libc_kill(child.id() as i32, 2) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not on loopback"), "{stderr}");
}

/// One HTTP/1.1 request on a fresh connection: (status, headers lowercased, body). `Host`
/// names the listener unless `headers` give one.
pub(crate) fn http(
    endpoint: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, std::collections::HashMap<String, String>, Vec<u8>) {
    let address = endpoint.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {address}\r\n"));
    }
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete answer");
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    (status, headers, answer[split + 4..].to_vec())
}

fn unbase64(body: &[u8]) -> String {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap_or_else(|e| panic!("not base64 ({e}): {}", String::from_utf8_lossy(body)));
    String::from_utf8(bytes).unwrap()
}

#[test]
fn the_api_gateway_route_answers_as_scars_rest_api_does() {
    let Some((scar, work, image)) = with_echo(&["python3"]) else {
        return;
    };
    let script = super::common::write_file(
        work.path(),
        "upper.sh",
        "echo \"size=${size:-none} $(basename \"$INPUT_FILE_PATH\")\"\ntr a-z A-Z < \"$INPUT_FILE_PATH\"\ncp \"$INPUT_FILE_PATH\" \"$TMP_OUTPUT_DIR/upper.txt\"\n",
    );
    let fails = super::common::write_file(work.path(), "fails.sh", "echo broken\nexit 3\n");
    scar.run(&[
        "init",
        "-n",
        "upper",
        "-i",
        &image,
        "-s",
        &script,
        "--output-bucket",
        "results/upper",
    ])
    .ok();
    scar.run(&["init", "-n", "fails", "-i", &image, "-s", &fails])
        .ok();
    let served = Served::start(&scar, &[]);
    let launch = "/restapis/upper/scar/_user_request_/launch";

    // SCAR's client: a file base64 as the body, query parameters as variables; the
    // script's output comes back base64, as from SCAR's REST API.
    let (status, headers, body) = http(
        &served.endpoint,
        "POST",
        &format!("{launch}?size=10"),
        &[("Content-Type", "application/octet-stream")],
        b"aGVsbG8gd29ybGQK",
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(unbase64(&body), "size=10 api_event_file\nHELLO WORLD\n");
    assert!(!headers["amz-lambda-request-id"].is_empty(), "{headers:?}");
    assert_eq!(headers["scar-exit-code"], "0", "{headers:?}");
    // Its output file went to the function's output folder.
    let listed = scar.run(&["ls", "-b", "results/upper"]);
    assert!(listed.stdout.contains("upper.txt"), "{listed:#?}");

    // A GET without a body: an empty input file.
    let (status, _, body) = http(&served.endpoint, "GET", launch, &[], b"");
    assert_eq!(
        (status, unbase64(&body)),
        (200, "size=none api_event_file\n".to_string())
    );

    // A failing script: 500, its output in the body.
    let (status, headers, body) = http(
        &served.endpoint,
        "POST",
        "/restapis/fails/scar/_user_request_/launch",
        &[],
        b"x",
    );
    assert_eq!((status, unbase64(&body)), (500, "broken\n".to_string()));
    assert_eq!(headers["scar-exit-code"], "3", "{headers:?}");

    // API Gateway's own answers: no such function or stage, an asynchronous request,
    // a body Lambda could not take (refused from its Content-Length alone).
    let (status, _, body) = http(
        &served.endpoint,
        "GET",
        "/restapis/nope/scar/_user_request_/launch",
        &[],
        b"",
    );
    assert_eq!(
        (status, &body[..]),
        (404, &br#"{"message":"Not Found"}"#[..])
    );
    let (status, _, _) = http(
        &served.endpoint,
        "GET",
        "/restapis/upper/prod/_user_request_/launch",
        &[],
        b"",
    );
    assert_eq!(status, 404);
    let (status, _, _) = http(
        &served.endpoint,
        "POST",
        launch,
        &[("X-Amz-Invocation-Type", "Event")],
        b"aGk=",
    );
    assert_eq!(status, 202);
    let (status, _, body) = http(
        &served.endpoint,
        "POST",
        launch,
        &[("Content-Length", "7000000")],
        b"",
    );
    assert_eq!(
        (status, &body[..]),
        (413, &br#"{"message":"Request Too Long"}"#[..])
    );

    // While it serves, its address is known to the other commands of this home.
    let home = scar.home.path();
    let serve: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.join("serve.json")).unwrap()).unwrap();
    assert_eq!(serve["url"], served.endpoint);
    drop(served);
    assert!(!home.join("serve.json").exists(), "serve.json left behind");
}

#[test]
fn scar_invoke_calls_the_endpoint_as_scars_invoke_does() {
    let Some((scar, work, image)) = with_echo(&["python3"]) else {
        return;
    };
    let script = super::common::write_file(
        work.path(),
        "gray.sh",
        "echo \"mode=${mode:-none}\" >&2\ntr a-z A-Z < \"$INPUT_FILE_PATH\"\n[ \"$mode\" != fail ] || exit 4\n",
    );
    scar.run(&[
        "init", "-n", "gray", "-i", &image, "-s", &script, "-api", "gray-api",
    ])
    .ok();
    scar.run(&["init", "-n", "plain", "-i", &image]).ok();
    let picture = super::common::write_file(work.path(), "picture.txt", "pixels\n");

    // Before any `scar serve`: no endpoint yet, said so; and the function without an API.
    let r = scar.run(&["invoke", "-n", "gray", "-db", &picture]);
    r.assert_refused("start `scar serve` first");
    let r = scar.run(&["invoke", "-n", "plain"]);
    r.assert_refused("has no HTTP endpoint");
    // Bad input is refused before anything is sent.
    let big = work.path().join("big.bin");
    std::fs::write(&big, vec![7u8; 5 * 1024 * 1024]).unwrap();
    let r = scar.run(&["invoke", "-n", "gray", "-db", big.to_str().unwrap()]);
    r.assert_refused("over Lambda's 6291456-byte limit for synchronous invocations");
    scar.run(&["invoke", "-n", "gray", "-p", "novalue"])
        .assert_refused("give KEY=VALUE");
    scar.run(&["invoke", "-n", "gray", "-jd", "{not json"])
        .assert_refused("-jd is not JSON");

    let served = Served::start(&scar, &[]);
    // `ls` shows the URL of the function with an API Gateway, only of that one.
    let listed = scar.run(&["ls", "--json"]).ok().json();
    let url = |name: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["spec"]["name"] == name)
            .map(|f| f["api_url"].clone())
            .unwrap()
    };
    assert_eq!(
        url("gray"),
        format!(
            "{}/restapis/gray/scar/_user_request_/launch",
            served.endpoint
        )
    );
    assert_eq!(url("plain"), serde_json::Value::Null);

    // The file goes up, the decoded answer comes back, to stdout or to -o.
    let r = scar
        .run(&["invoke", "-n", "gray", "-db", &picture, "-p", "mode=fast"])
        .ok();
    assert_eq!(r.stdout, "mode=fast\nPIXELS\n");
    let out = work.path().join("out.txt");
    scar.run(&[
        "invoke",
        "-n",
        "gray",
        "-db",
        &picture,
        "-o",
        out.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "mode=none\nPIXELS\n"
    );
    // SCAR's JSON parameters, a JSON body, --json.
    let r = scar
        .run(&[
            "invoke",
            "-n",
            "gray",
            "-jd",
            r#"{"k": "v"}"#,
            "-p",
            r#"{"mode": "json"}"#,
            "-j",
        ])
        .ok()
        .json();
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["exit_code"], 0, "{r}");
    assert_eq!(r["output"], "mode=json\n{\"K\": \"V\"}", "{r}");
    assert!(
        r["request_id"].as_str().is_some_and(|id| !id.is_empty()),
        "{r}"
    );
    // A failing script: exit 1, its output still shown.
    let r = scar.run(&["invoke", "-n", "gray", "-db", &picture, "-p", "mode=fail"]);
    assert_eq!(r.status, 1, "{r:#?}");
    assert!(r.stdout.contains("PIXELS"), "{r:#?}");
    assert!(r.stderr.contains("exited with 4"), "{r:#?}");
    // Asynchronous: accepted, and it runs.
    let r = scar
        .run(&["invoke", "-n", "gray", "-db", &picture, "-a"])
        .ok();
    assert!(r.stdout.contains("Request accepted"), "{r:#?}");
    drop(served);
    // Once serve stops, the endpoint is gone again.
    scar.run(&["invoke", "-n", "gray"])
        .assert_refused("start `scar serve` first");
}

/// The processes descended from `pid` (its sandboxes), as (pid, start time) so that a
/// reused pid is not taken for one of them.
fn descendants(pid: u32) -> Vec<(u32, u64)> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Some((ppid, start)) = stat_of(p) {
            parents.push((p, ppid, start));
        }
    }
    let mut found: Vec<(u32, u64)> = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for (p, ppid, start) in &parents {
            if *ppid == parent {
                found.push((*p, *start));
                frontier.push(*p);
            }
        }
    }
    found
}

/// A process's parent and start time (`/proc/PID/stat` fields 4 and 22).
fn stat_of(pid: u32) -> Option<(u32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    Some((fields.get(1)?.parse().ok()?, fields.get(19)?.parse().ok()?))
}

/// Those of `processes` still alive.
fn alive(processes: &[(u32, u64)]) -> Vec<(u32, u64)> {
    processes
        .iter()
        .filter(|(p, start)| stat_of(*p).is_some_and(|(_, s)| s == *start))
        .copied()
        .collect()
}

/// One keep-alive connection that POSTs and reads `Content-Length` answers.
struct KeepAlive(BufReader<std::net::TcpStream>);

impl KeepAlive {
    fn open(endpoint: &str) -> KeepAlive {
        let stream = std::net::TcpStream::connect(endpoint.trim_start_matches("http://")).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        KeepAlive(BufReader::new(stream))
    }

    fn post(&mut self, path: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        self.0.get_mut().write_all(head.as_bytes())?;
        self.0.get_mut().write_all(body)?;
        let mut line = String::new();
        self.0.read_line(&mut line)?;
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut length = 0;
        loop {
            line.clear();
            if self.0.read_line(&mut line)? == 0 || line.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut answer = vec![0; length];
        self.0.read_exact(&mut answer)?;
        Ok((status, answer))
    }
}

#[test]
fn ten_thousand_requests_at_concurrency_32_none_lost_nothing_left_behind() {
    let Some((scar, work, image)) = with_echo(&["python3"]) else {
        return;
    };
    let script = super::common::write_file(work.path(), "echo.sh", "cat \"$INPUT_FILE_PATH\"\n");
    scar.run(&["init", "-n", "api", "-i", &image, "-s", &script])
        .ok();
    let served = Served::start(&scar, &[]);
    let endpoint = served.endpoint.clone();
    // 16 connections through the Invoke API and 16 through the API Gateway route, each
    // request carrying its own number, which must come back in its own answer.
    let per_connection = 10_000 / 32;
    let workers: Vec<_> = (0..32)
        .map(|w| {
            let endpoint = endpoint.clone();
            std::thread::spawn(move || {
                let mut conn = KeepAlive::open(&endpoint);
                for i in 0..per_connection {
                    let n = format!("{w}-{i}");
                    if w % 2 == 0 {
                        let body = serde_json::json!({"script": format!("echo {n}")}).to_string();
                        let (status, answer) = conn
                            .post("/2015-03-31/functions/echo/invocations", body.as_bytes())
                            .unwrap();
                        let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
                        assert_eq!(
                            (status, answer["output"].as_str()),
                            (200, Some(&*format!("{n}\n")))
                        );
                    } else {
                        let (status, answer) = conn
                            .post("/restapis/api/scar/_user_request_/launch", n.as_bytes())
                            .unwrap();
                        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
                        assert_eq!(unbase64(&answer), n);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join()
            .expect("a client saw an answer Lambda would not give");
    }
    let sandboxes = descendants(served.child.id());
    assert!(
        sandboxes.len() >= 32,
        "not a sandbox per connection: {sandboxes:?}"
    );
    drop(served);
    // Killed with their parent: gone at once, or within moments (reaped by the kernel).
    let started = Instant::now();
    while !alive(&sandboxes).is_empty() && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<String> = alive(&sandboxes)
        .iter()
        .map(|(p, _)| {
            let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            format!(
                "{p}: {} | {stat}",
                String::from_utf8_lossy(&cmd).replace('\0', " ")
            )
        })
        .collect();
    assert!(
        left.is_empty(),
        "processes left after serve stopped: {left:#?}"
    );

    // Killed with SIGKILL under load: the next `scar serve` leaves no orphan behind.
    let served = Served::start(&scar, &[]);
    let endpoint = served.endpoint.clone();
    let load: Vec<_> = (0..8)
        .map(|_| {
            let endpoint = endpoint.clone();
            std::thread::spawn(move || {
                let mut conn = KeepAlive::open(&endpoint);
                let body = br#"{"script": "sleep 0.2; echo slept"}"#;
                while conn
                    .post("/2015-03-31/functions/echo/invocations", body)
                    .is_ok()
                {}
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let sandboxes = descendants(served.child.id());
    assert!(!sandboxes.is_empty(), "no sandbox under load");
    let mut served = served;
    served.child.kill().unwrap();
    served.child.wait().unwrap();
    std::mem::forget(served);
    for l in load {
        let _ = l.join();
    }
    let restarted = Served::start(&scar, &[]);
    let started = Instant::now();
    loop {
        let left = alive(&sandboxes);
        if left.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "orphans of the killed serve: {left:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(restarted);
}

#[test]
fn the_api_gateway_route_gives_up_after_29_seconds_and_the_invocation_runs_on() {
    let Some((scar, work, image)) = with_echo(&["python3"]) else {
        return;
    };
    let script = super::common::write_file(
        work.path(),
        "slow.sh",
        "sleep 32\necho finished > \"$TMP_OUTPUT_DIR/done.txt\"\n",
    );
    scar.run(&[
        "init",
        "-n",
        "slow",
        "-i",
        &image,
        "-t",
        "60",
        "-s",
        &script,
        "--output-bucket",
        "slow-out",
    ])
    .ok();
    let served = Served::start(&scar, &[]);
    let started = Instant::now();
    let (status, _, body) = http(
        &served.endpoint,
        "GET",
        "/restapis/slow/scar/_user_request_/launch",
        &[],
        b"",
    );
    let waited = started.elapsed();
    assert_eq!(
        (status, &body[..]),
        (504, &br#"{"message":"Endpoint request timed out"}"#[..])
    );
    assert!(
        waited >= Duration::from_secs(28) && waited < Duration::from_secs(32),
        "{waited:?}"
    );
    // The Invoke API has no such limit; and the one API Gateway gave up on finishes.
    loop {
        let listed = scar.run(&["ls", "-b", "slow-out"]);
        if listed.stdout.contains("done.txt") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{listed:#?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `scar run --warm` (and `SCAR_WARM`, `local.warm`) hands its invocation to the running
/// `scar serve`: it runs in the server's warm sandbox (the same log stream from one call to
/// the next, and the `/tmp` the previous call left), and prints and exits as a sandbox of
/// its own would have. Without a server it runs in a sandbox of its own.
#[test]
fn scar_run_warm_hands_its_invocation_to_a_running_serve_and_runs_alone_without_one() {
    let Some((scar, work, _)) = with_echo(&[]) else {
        return;
    };
    let script = super::common::write_file(
        work.path(),
        "probe.sh",
        "echo probe\n[ -e /tmp/seen ] && echo warm-again\ntouch /tmp/seen\nexit ${CODE:-0}\n",
    );
    let run = |extra: &[&str], env: &[(&str, &str)]| {
        let mut cmd = scar.command();
        cmd.args(["run", "-n", "echo", "-s", &script, "-j"])
            .args(extra);
        for (k, v) in env {
            cmd.env(k, v);
        }
        scar_test_support::scar::Run::of(&mut cmd)
    };
    let stream =
        |r: &scar_test_support::scar::Run| r.json()["log_stream"].as_str().unwrap().to_string();
    let alone = run(&[], &[]).ok();
    let alone_failed = run(&["-e", "CODE=3"], &[]);
    assert_eq!(alone.json()["output"], "probe\n", "{alone:#?}");
    // Without a server, --warm runs alone too.
    let fallback = run(&["--warm"], &[]).ok();
    assert_eq!(fallback.json()["output"], "probe\n");
    assert_ne!(stream(&fallback), stream(&alone));

    let served = Served::start(&scar, &[]);
    let first = run(&["--warm"], &[]).ok();
    let again = run(&["--warm"], &[]).ok();
    assert_eq!(first.json()["output"], "probe\n", "{first:#?}");
    assert_eq!(stream(&again), stream(&first), "not the same warm sandbox");
    assert_eq!(again.json()["output"], "probe\nwarm-again\n", "{again:#?}");
    // The answer is the one a sandbox of its own gives: the same fields.
    let keys = |v: serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(again.json()), keys(alone.json()));
    // The environment variable and the config key say the same; --fresh overrides them.
    let by_env = run(&[], &[("SCAR_WARM", "1")]).ok();
    assert_eq!(stream(&by_env), stream(&first));
    let fresh = run(&["--fresh"], &[("SCAR_WARM", "1")]).ok();
    assert_ne!(stream(&fresh), stream(&first));
    assert_eq!(fresh.json()["output"], "probe\n", "{fresh:#?}");
    let not_told = run(&[], &[]).ok();
    assert_ne!(
        stream(&not_told),
        stream(&first),
        "warm reuse is the user's choice"
    );
    let config = scar.home.path().join("scar.cfg");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    cfg["local"]["warm"] = serde_json::json!(true);
    std::fs::write(&config, cfg.to_string()).unwrap();
    let by_config = run(&[], &[]).ok();
    assert_eq!(stream(&by_config), stream(&first));
    assert!(!by_config.stderr.contains("warning"), "{by_config:#?}");
    // A failed script: the exit status and the response of a sandbox of its own.
    let failed = run(&["--warm", "-e", "CODE=3"], &[]);
    assert_eq!(failed.status, alone_failed.status, "{failed:#?}");
    assert_eq!(failed.json()["exit_code"], 3, "{failed:#?}");
    assert_eq!(failed.json()["exit_code"], alone_failed.json()["exit_code"]);
    assert_eq!(stream(&failed), stream(&first));
    // Bad input is refused as such.
    run(&[], &[("SCAR_WARM", "maybe")]).assert_refused("SCAR_WARM");
    run(&["--warm", "--async"], &[]).assert_refused("--async");
    drop(served);
    // The server gone, the config's warm reuse runs alone again.
    let after = run(&[], &[]).ok();
    assert_ne!(stream(&after), stream(&first));
    assert_eq!(after.json()["output"], "probe\n");
}
