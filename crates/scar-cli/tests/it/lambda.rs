//! The `zip` package's own `bootstrap` (the static supervisor) run as AWS Lambda runs a
//! `provided.al2023` function: started from the unpacked zip with `LAMBDA_TASK_ROOT` and
//! the Runtime API variables, on a root that is not the image's (this machine's, where
//! Lambda has Amazon Linux's), with no namespaces. A small Runtime API in the test hands
//! it events and records its answers. The supervisor must find `function.json`, enter the
//! image's root with the packaged proot, and answer as Lambda expects.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use images::require_tools;
use scar_test_support::images;
use scar_test_support::scar as support;
use support::Scar;

use crate::common::with_busybox_archive;

/// What the runtime posted back: `response` or `error`, the request id, the body.
#[derive(Debug, Clone)]
struct Answer {
    kind: String,
    request_id: String,
    body: serde_json::Value,
}

#[derive(Default)]
struct ApiState {
    events: VecDeque<(String, String)>,
    answers: Vec<Answer>,
    init_errors: Vec<String>,
}

/// The Lambda Runtime API, enough of it: `next` hands out queued events (and waits when
/// there are none, as Lambda freezes the sandbox), `response` / `error` are recorded.
struct RuntimeApi {
    addr: String,
    state: Arc<Mutex<ApiState>>,
}

impl RuntimeApi {
    fn start() -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let state = Arc::new(Mutex::new(ApiState::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &state);
                });
            }
        });
        RuntimeApi { addr, state }
    }

    /// [`RuntimeApi::start`], with `events` to hand out in order as the requests
    /// `<prefix>-<this process>-1`, `-2`...; returns it with those request ids, by number.
    fn serving(
        prefix: &str,
        events: &[serde_json::Value],
    ) -> (RuntimeApi, impl Fn(usize) -> String) {
        let prefix = format!("{prefix}-{}", std::process::id());
        let id = move |n: usize| format!("{prefix}-{n}");
        let api = RuntimeApi::start();
        for (n, event) in events.iter().enumerate() {
            api.queue(&id(n + 1), event);
        }
        (api, id)
    }

    fn queue(&self, request_id: &str, event: &serde_json::Value) {
        let mut state = self.state.lock().unwrap();
        state
            .events
            .push_back((request_id.to_string(), event.to_string()));
    }

    fn wait_for_answers(&self, n: usize) -> Vec<Answer> {
        let started = Instant::now();
        loop {
            let state = self.state.lock().unwrap();
            if state.answers.len() >= n {
                return state.answers.clone();
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "only {} answers: {:?}; init errors: {:?}",
                state.answers.len(),
                state.answers,
                state.init_errors
            );
            drop(state);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let request_line = line.trim_end().to_string();
    let (mut length, mut chunked) = (0usize, false);
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "content-length" {
                length = v.parse().unwrap_or(0);
            } else if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            let mut chunk = vec![0u8; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
    }
    Ok(Some((request_line, body)))
}

fn serve(conn: TcpStream, state: &Mutex<ApiState>) -> std::io::Result<()> {
    let mut writer = conn.try_clone()?;
    let mut reader = BufReader::new(conn);
    while let Some((request_line, body)) = read_request(&mut reader)? {
        let path = request_line
            .split(' ')
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let route = path.trim_start_matches("/2018-06-01/runtime/");
        if request_line.starts_with("GET") && route == "invocation/next" {
            let (id, event) = loop {
                if let Some(e) = state.lock().unwrap().events.pop_front() {
                    break e;
                }
                std::thread::sleep(Duration::from_millis(10));
            };
            let deadline =
                SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(30);
            write!(
                writer,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: {id}\r\nLambda-Runtime-Deadline-Ms: {}\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:lam\r\nLambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\nContent-Length: {}\r\n\r\n{event}",
                deadline.as_millis(),
                event.len()
            )?;
        } else {
            let mut state = state.lock().unwrap();
            if route == "init/error" {
                state
                    .init_errors
                    .push(String::from_utf8_lossy(&body).into_owned());
            } else if let Some((id, kind)) = route
                .strip_prefix("invocation/")
                .and_then(|r| r.rsplit_once('/'))
            {
                state.answers.push(Answer {
                    kind: kind.to_string(),
                    request_id: id.to_string(),
                    body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
                });
            }
            let ok = r#"{"status":"OK"}"#;
            write!(
                writer,
                "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{ok}",
                ok.len()
            )?;
        }
        writer.flush()?;
    }
    Ok(())
}

/// `cmd` (a runtime) with the environment Lambda starts a runtime of function `name` in,
/// and nothing else: the Runtime API at `api`, 128 MB, its log group, the log stream
/// `stream`.
fn as_lambda_starts<'c>(
    cmd: &'c mut Command,
    api: &RuntimeApi,
    name: &str,
    stream: &str,
) -> &'c mut Command {
    cmd.env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", &api.addr)
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", stream)
        .env("AWS_REGION", "us-east-1")
        .env("TZ", ":UTC")
}

/// The zip package's `bootstrap`, unpacked at `task`, as Lambda starts a `provided.al2023`
/// function named `name`: only Lambda's variables, talking to `api`.
fn lambda_bootstrap(task: &Path, api: &RuntimeApi, name: &str) -> Command {
    let mut cmd = Command::new(task.join("bootstrap"));
    as_lambda_starts(&mut cmd, api, name, "2026/11/25/[$LATEST]test")
        .current_dir(task)
        .env("LAMBDA_TASK_ROOT", task)
        .env("_HANDLER", "scar")
        .env("PATH", "/usr/local/bin:/usr/bin:/bin");
    cmd
}

/// Function `name`'s zip package (carrying this machine's proot), unpacked into
/// `<work>/task` as Lambda unpacks it into /var/task.
fn unpacked_zip(scar: &Scar, work: &Path, name: &str) -> PathBuf {
    let proot = images::which("proot").unwrap();
    let zip = work.join(format!("{name}.zip"));
    scar.package(name, "zip", &zip, &["--proot", proot.to_str().unwrap()])
        .ok();
    let task = work.join("task");
    images::unzip(&zip, &task);
    task
}

/// What building and unpacking a zip package of the busybox image takes.
const ZIP_TOOLS: &[&str] = &["umoci", "skopeo", "busybox", "proot", "unzip"];

/// Kills the process on drop, so that a failed assertion leaves nothing running.
struct Running(std::process::Child);

impl Running {
    /// Starts `cmd`, its output discarded.
    fn quietly(cmd: &mut Command) -> Running {
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn();
        Running(child.unwrap())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_zip_packages_bootstrap_runs_as_lambda_runs_it() {
    let Some((scar, work, archive)) = with_busybox_archive(ZIP_TOOLS) else {
        return;
    };
    scar.init_from("lam", &archive, &[]).ok();
    let task = unpacked_zip(&scar, work.path(), "lam");

    let (api, id) = RuntimeApi::serving(
        "lam",
        &[
            serde_json::json!({"script": "if test -e /etc/scar-marker; then echo root=image; else echo root=host; fi\necho \"pwd=$(pwd) greeting=$GREETING\"\ncat /srv/hello.txt\n"}),
            serde_json::json!({}),
            serde_json::json!({"script": "echo bad; exit 4"}),
        ],
    );

    let child = lambda_bootstrap(&task, &api, "lam")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    let answers = api.wait_for_answers(3);
    let _ = running.0.kill();
    let mut log = String::new();
    running
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();

    // Inside the image's root, in its WorkingDir, with its Env: not on the host's root.
    assert_eq!(
        (answers[0].kind.as_str(), answers[0].request_id.clone()),
        ("response", id(1))
    );
    let r = &answers[0].body;
    assert_eq!(r["exit_code"], 0, "{r}");
    assert_eq!(
        r["output"],
        "root=image\npwd=/srv greeting=hello\nhello from the image\n"
    );
    assert_eq!(r["log_group"], "/aws/lambda/lam");
    // No payload: the image's own ENTRYPOINT + CMD.
    assert_eq!(answers[1].kind, "response");
    assert_eq!(answers[1].body["output"], "hello\n");
    // A failing script is a function error carrying scar's response.
    assert_eq!(
        (answers[2].kind.as_str(), answers[2].request_id.clone()),
        ("error", id(3))
    );
    assert_eq!(answers[2].body["errorType"], "ScarFunctionError");
    let inner: serde_json::Value =
        serde_json::from_str(answers[2].body["errorMessage"].as_str().unwrap()).unwrap();
    assert_eq!(
        (inner["exit_code"].clone(), inner["output"].clone()),
        (4.into(), "bad\n".into())
    );
    // The function's log (the runtime's stdout) has what the scripts printed.
    assert!(log.contains("hello from the image"), "{log}");
    // Each request directory under /tmp is gone after its invocation.
    for n in 1..=3 {
        assert!(!Path::new("/tmp").join(id(n)).exists());
    }
}

/// Step 1 of a chain as AWS runs it: the zip package's bootstrap, started as Lambda starts
/// it, given the S3 event of an object put into `flow/start` of an S3 API (moto's server)
/// and Lambda's variables as scar stores them (`CONT_VAR_AWS_ACCESS_KEY_ID`), reads the
/// object from S3 and writes its output into step 2's folder, `flow/two`, where S3's
/// notification for step 2 fires.
#[test]
fn step_one_of_a_chain_writes_into_step_twos_folder_on_s3() {
    let Some((scar, work, archive)) = with_busybox_archive(ZIP_TOOLS) else {
        return;
    };
    let Some(moto) = scar_test_support::moto::Moto::start() else {
        return;
    };
    let script = work.path().join("step.sh");
    std::fs::write(
        &script,
        "name=$(basename \"$INPUT_FILE_PATH\")\nprintf '%s|1' \"$(cat \"$INPUT_FILE_PATH\")\" > \"$TMP_OUTPUT_DIR/$name\"\necho \"key=$AWS_ACCESS_KEY_ID\"\n",
    )
    .unwrap();
    let script = script.to_str().unwrap();
    let flags = ["-ib", "flow/start", "-ob", "flow/two", "-s", script];
    scar.init_from("one", &archive, &flags).ok();
    let task = unpacked_zip(&scar, work.path(), "one");
    // The object, put into the first folder through S3's API.
    let input = work.path().join("x.txt");
    std::fs::write(&input, "x").unwrap();
    let aws = |args: &[&str]| {
        let mut cmd = scar.command();
        cmd.args(args);
        moto.aws_cli(&mut cmd, work.path());
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    };
    let (status, _) = moto.http("PUT", "/flow", &[], b"").unwrap();
    assert_eq!(status, 200);
    aws(&["put", "-b", "flow/start", "-p", input.to_str().unwrap()]);

    let (api, _) = RuntimeApi::serving(
        "chain",
        &[serde_json::json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2026-12-02T00:00:00.000Z", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "flow", "arn": "arn:aws:s3:::flow"},
                   "object": {"key": "start/x.txt", "size": 1}}}]})],
    );
    let running = Running::quietly(
        lambda_bootstrap(&task, &api, "one")
            .env("AWS_ACCESS_KEY_ID", scar_test_support::moto::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", scar_test_support::moto::ACCESS_KEY)
            .env("AWS_ENDPOINT_URL_S3", moto.endpoint())
            .env("CONT_VAR_AWS_ACCESS_KEY_ID", "AKIACONTAINER"),
    );
    let answers = api.wait_for_answers(1);
    drop(running);
    let r = &answers[0].body;
    assert_eq!(answers[0].kind, "response", "{r}");
    assert_eq!(r["output"], "key=AKIACONTAINER\n", "{r}");
    assert_eq!(r["uploaded"], serde_json::json!(["flow/two/x.txt"]), "{r}");
    let fetched = work.path().join("fetched");
    aws(&["get", "-b", "flow/two", "-p", fetched.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(fetched.join("x.txt")).unwrap(),
        "x|1"
    );
}

/// The arm64 supervisor (for arm64 Lambda functions) under qemu: a static aarch64 ELF with
/// no interpreter, that speaks the Runtime API and runs what the event asks.
#[test]
fn the_arm64_supervisor_answers_under_qemu() {
    if !require_tools(&["qemu-aarch64-static"]) {
        return;
    }
    let Some(bootstrap) = support::supervisor_aarch64() else {
        return;
    };
    let elf = std::fs::read(&bootstrap).unwrap();
    // e_machine 183 (EM_AARCH64), little-endian, at offset 18.
    assert_eq!(
        u16::from_le_bytes([elf[18], elf[19]]),
        183,
        "not an aarch64 ELF"
    );
    assert!(
        scar_local::is_static_elf(&bootstrap).unwrap(),
        "has an interpreter"
    );
    assert!(elf.len() < 15 * 1024 * 1024, "{} bytes", elf.len());

    let work = tempfile::tempdir().unwrap();
    let function = work.path().join("function.json");
    std::fs::write(
        &function,
        serde_json::json!({"name": "arm", "timeout_s": 30, "timeout_threshold_s": 2,
            "init_script": "echo \"init script, event $REQUEST_ID\""})
        .to_string(),
    )
    .unwrap();
    let (api, id) = RuntimeApi::serving(
        "arm",
        &[
            serde_json::json!({"script": "echo hello from arm64; exit 3"}),
            serde_json::json!({}),
        ],
    );
    let mut qemu = Command::new("qemu-aarch64-static");
    let _running = Running::quietly(
        as_lambda_starts(qemu.arg(&bootstrap), &api, "arm", "2026/11/25/[$LATEST]arm")
            .env("PATH", "/usr/bin:/bin")
            .env("SCAR_FUNCTION_FILE", &function),
    );
    let answers = api.wait_for_answers(2);
    assert_eq!(answers[0].kind, "error", "{answers:?}");
    let failed: serde_json::Value =
        serde_json::from_str(answers[0].body["errorMessage"].as_str().unwrap()).unwrap();
    assert_eq!(failed["exit_code"], 3);
    assert_eq!(failed["output"], "hello from arm64\n");
    assert_eq!(answers[1].kind, "response", "{answers:?}");
    assert_eq!(
        answers[1].body["output"],
        format!("init script, event {}\n", id(2))
    );
}

/// The Batch modes on Lambda: the static supervisor, started as Lambda starts it with the
/// variables `scar init` gives a Batch mode function (its job queue and definition) and
/// AWS Batch on moto, submits a `batch` function's every event as a job without running
/// it, and a `lambda-batch` function's event that outlives the threshold: handed over
/// (answered as a success, nothing uploaded), not killed as a failure. Each job carries
/// the event whole, and the request it came from.
#[test]
fn the_supervisor_on_lambda_submits_batch_jobs() {
    use base64::Engine as _;
    let Some(bootstrap) = support::supervisor() else {
        return;
    };
    let Some(moto) = scar_test_support::moto::Moto::start() else {
        return;
    };
    moto.enable_batch();
    let (subnet, group) = moto.batch_network();
    let ce = moto.batch_api(
        "createcomputeenvironment",
        serde_json::json!({
            "computeEnvironmentName": "scar-ce", "type": "MANAGED", "state": "ENABLED",
            "serviceRole": moto.role_arn(),
            "computeResources": {"type": "EC2", "minvCpus": 0, "maxvCpus": 2,
                "instanceTypes": ["optimal"], "subnets": [subnet], "securityGroupIds": [group],
                "instanceRole": "arn:aws:iam::123456789012:instance-profile/ecsInstanceRole"}}),
    );
    moto.batch_api(
        "createjobqueue",
        serde_json::json!({"jobQueueName": "scar-q", "state": "ENABLED", "priority": 1,
            "computeEnvironmentOrder": [{"order": 1,
                "computeEnvironment": ce["computeEnvironmentArn"]}]}),
    );
    moto.batch_api(
        "registerjobdefinition",
        serde_json::json!({"jobDefinitionName": "scar-d", "type": "container",
            "containerProperties": {"image": "img", "resourceRequirements": [
                {"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}]}}),
    );

    let work = tempfile::tempdir().unwrap();
    let lambda = |name: &str, mode: &str, queue: &str, api: &RuntimeApi| {
        let function = work.path().join(format!("{name}.json"));
        std::fs::write(
            &function,
            serde_json::json!({"name": name, "timeout_s": 30, "timeout_threshold_s": 27,
                "execution_mode": mode,
                "outputs": [{"bucket": "never", "folder": "output"}]})
            .to_string(),
        )
        .unwrap();
        let mut supervisor = Command::new(&bootstrap);
        Running::quietly(
            as_lambda_starts(&mut supervisor, api, name, "2026/12/02/[$LATEST]batch")
                .env("AWS_ACCESS_KEY_ID", scar_test_support::moto::ACCESS_KEY)
                .env("AWS_SECRET_ACCESS_KEY", scar_test_support::moto::ACCESS_KEY)
                .env("AWS_ENDPOINT_URL", moto.endpoint())
                .env("SCAR_BATCH_JOB_QUEUE", queue)
                .env("SCAR_BATCH_JOB_DEFINITION", "scar-d")
                .env("PATH", "/usr/bin:/bin")
                .env("SCAR_FUNCTION_FILE", &function),
        )
    };
    let job_of = |answer: &Answer| -> (serde_json::Value, String) {
        let id = answer.body["batch_job"]
            .as_str()
            .expect("a job id")
            .to_string();
        let jobs = moto.batch_api("describejobs", serde_json::json!({"jobs": [id]}));
        let env = &jobs["jobs"][0]["container"]["environment"];
        let var = |name: &str| -> String {
            env.as_array()
                .unwrap()
                .iter()
                .find(|kv| kv["name"] == name)
                .and_then(|kv| kv["value"].as_str())
                .unwrap_or_default()
                .to_string()
        };
        let encoded = var("SCAR_EVENT");
        let json = base64::engine::general_purpose::STANDARD
            .decode(encoded.strip_prefix("base64:").expect("base64: prefix"))
            .unwrap();
        (
            serde_json::from_slice(&json).unwrap(),
            var("SCAR_HANDED_OVER_FROM"),
        )
    };

    // lambda-batch: 3 s of Lambda's share (30 s less the 27 s threshold), then Batch's.
    let slow = serde_json::json!({"script": "echo started; sleep 20; echo late > $TMP_OUTPUT_DIR/late.txt"});
    let quick = serde_json::json!({"script": "echo quick"});
    let (api, id) = RuntimeApi::serving("lb", &[slow.clone(), quick]);
    let started = Instant::now();
    let running = lambda("lb", "lambda-batch", "scar-q", &api);
    let answers = api.wait_for_answers(2);
    let took = started.elapsed();
    drop(running);
    let handed = &answers[0];
    assert_eq!(handed.kind, "response", "{:?}", handed.body);
    assert_eq!(handed.body["handed_over"], true, "{}", handed.body);
    assert_eq!(handed.body["uploaded"], serde_json::json!([]));
    let output = handed.body["output"].as_str().unwrap();
    assert!(output.starts_with("started\n"), "{output}");
    assert!(output.contains("submitted to AWS Batch: job"), "{output}");
    assert!(
        took < Duration::from_secs(15),
        "{took:?}: killed at the threshold"
    );
    assert_eq!(job_of(handed), (slow, id(1)));
    // Under the threshold: Lambda's own run, no job.
    assert_eq!(answers[1].kind, "response");
    assert_eq!(answers[1].body["output"], "quick\n");
    assert!(
        answers[1].body.get("batch_job").is_none(),
        "{}",
        answers[1].body
    );

    // batch: every event is a job, the script never runs on Lambda.
    let event = serde_json::json!({"script": "echo on lambda"});
    let (api, id) = RuntimeApi::serving("bb", std::slice::from_ref(&event));
    let running = lambda("bb", "batch", "scar-q", &api);
    let answers = api.wait_for_answers(1);
    drop(running);
    assert_eq!(answers[0].kind, "response", "{:?}", answers[0].body);
    let output = answers[0].body["output"].as_str().unwrap();
    assert!(!output.contains("on lambda"), "{output}");
    assert!(output.contains("submitted to AWS Batch: job"), "{output}");
    assert_eq!(job_of(&answers[0]), (event, id(1)));

    // A queue that does not exist: the invocation fails (Lambda retries it), never lost.
    let (api, _) = RuntimeApi::serving("lost", &[serde_json::json!({})]);
    let _running = lambda("lost", "batch", "no-such-queue", &api);
    let answers = api.wait_for_answers(1);
    assert_eq!(answers[0].kind, "error", "{:?}", answers[0].body);
    let inner: serde_json::Value =
        serde_json::from_str(answers[0].body["errorMessage"].as_str().unwrap()).unwrap();
    assert!(
        inner["output"]
            .as_str()
            .unwrap()
            .contains("could not be submitted to AWS Batch"),
        "{inner}"
    );
}
