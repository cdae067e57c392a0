//! Provider conformance: one list of CLI scenarios run against the local provider and the
//! aws provider (on moto), asserting the same exit statuses, the same `--json` schemas and
//! the same messages wherever the behaviour is meant to be the same.
//!
//! moto's Lambda runs nothing (no Docker): on aws, each invocation is answered by a canned
//! scar response queued beforehand with what the local provider's real run printed, so that
//! what is compared is the frontend and the provider surface, not moto.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{build_busybox_image, require_tools};
use moto::Moto;
use scar_test_support::images as common;
use scar_test_support::moto;
use scar_test_support::scar as support;
use support::{Run, Scar};

/// A provider under test: how to run `scar` against it.
struct Side {
    name: &'static str,
    scar: Scar,
    moto: Option<Moto>,
    work: tempfile::TempDir,
}

impl Side {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.scar.command();
        if let Some(moto) = &self.moto {
            moto.aws_cli(&mut cmd, self.work.path());
        }
        cmd.args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        let out = self.command(args).output().expect("scar runs");
        Run {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// On aws, the next invocations answer these scar responses (moto runs nothing); the
    /// local provider runs the real thing.
    fn answers(&self, responses: &[serde_json::Value]) {
        if let Some(moto) = &self.moto {
            let canned: Vec<String> = responses.iter().map(|r| r.to_string()).collect();
            moto.queue_invoke_results(&canned);
        }
    }

    fn init_args(&self, name: &str, archive: &str, bucket: &str) -> Vec<String> {
        let mut args: Vec<String> = ["init", "-n", name, "-if", archive, "-es", bucket]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if let Some(moto) = &self.moto {
            args.extend([
                "-r".into(),
                moto.role_arn(),
                "--package".into(),
                "zip".into(),
            ]);
        }
        args
    }
}

fn sides() -> Option<(Side, Side)> {
    if !require_tools(&["umoci", "skopeo", "busybox", "proot"]) {
        return None;
    }
    let local = Side {
        name: "local",
        scar: Scar::new(env!("CARGO_BIN_EXE_scar"))?,
        moto: None,
        work: tempfile::tempdir().unwrap(),
    };
    let aws = Side {
        name: "aws",
        scar: Scar::new(env!("CARGO_BIN_EXE_scar"))?,
        moto: Some(Moto::start()?),
        work: tempfile::tempdir().unwrap(),
    };
    Some((local, aws))
}

/// The keys of a JSON object (of the first element, for an array).
fn keys(v: &serde_json::Value) -> BTreeSet<String> {
    let v = v.as_array().and_then(|a| a.first()).unwrap_or(v);
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// Runs `args` on both sides; asserts the same exit status; returns both runs.
#[track_caller]
fn both(sides: &(Side, Side), args: &[&str]) -> (Run, Run) {
    let (l, a) = (sides.0.run(args), sides.1.run(args));
    assert_eq!(
        l.status,
        a.status,
        "`scar {}`: exit status differs\nlocal: {l:#?}\naws: {a:#?}",
        args.join(" ")
    );
    (l, a)
}

/// Same exit status and the same JSON schema (keys).
#[track_caller]
fn same_schema(sides: &(Side, Side), args: &[&str]) -> (serde_json::Value, serde_json::Value) {
    let (l, a) = both(sides, args);
    let (lj, aj) = (l.json(), a.json());
    assert_eq!(
        keys(&lj),
        keys(&aj),
        "`scar {}`: --json schema differs\nlocal: {lj:#}\naws: {aj:#}",
        args.join(" ")
    );
    (lj, aj)
}

/// Same exit status and the same error message, once request ids and paths are set aside.
#[track_caller]
fn same_error(sides: &(Side, Side), args: &[&str], status: i32) -> String {
    let (l, a) = both(sides, args);
    assert_eq!(l.status, status, "`scar {}`: {l:#?}", args.join(" "));
    assert_eq!(
        l.stderr.trim(),
        a.stderr.trim(),
        "`scar {}`: messages differ",
        args.join(" ")
    );
    l.stderr
}

/// A scar response as the supervisor answers it.
fn response(request_id: &str, exit_code: i32, output: &str) -> serde_json::Value {
    serde_json::json!({
        "request_id": request_id, "exit_code": exit_code, "timed_out": false,
        "output": output, "uploaded": [], "log_group": "/aws/lambda/f", "log_stream": "s"
    })
}

#[test]
fn both_providers_behave_the_same() {
    let Some(sides) = sides() else { return };
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("image.tar");
    build_busybox_image(work.path()).docker_archive(&archive);
    let archive = archive.to_str().unwrap().to_string();
    let script = work.path().join("script.sh");
    std::fs::write(&script, "echo \"from a script: $GREETING\"\nexit 3\n").unwrap();
    let script = script.to_str().unwrap().to_string();

    // Bad input is refused the same way, before anything is made.
    same_error(&sides, &["init", "-n", "bad name", "-if", &archive], 2);
    same_error(&sides, &["init", "-n", "f", "-if", &archive, "-m", "5"], 2);
    same_error(&sides, &["run", "-n", "nobody", "echo"], 2);
    same_error(&sides, &["ls", "-b", "Not_A_Bucket"], 2);

    // init: the same JSON; ls lists it the same way.
    let (local, aws) = (&sides.0, &sides.1);
    let init = |side: &Side| {
        let mut args = side.init_args("f", &archive, "conformance");
        args.push("--json".into());
        side.run(&to_str(&args)).ok().json()
    };
    let (li, ai) = (init(local), init(aws));
    assert_eq!(
        keys(&li),
        keys(&ai),
        "init --json describes a function alike"
    );
    assert_eq!(keys(&li["spec"]), keys(&ai["spec"]));
    assert_eq!(li["image_digest"], ai["image_digest"], "the same image");
    let (ll, al) = same_schema(&sides, &["ls", "--json"]);
    assert_eq!(ll[0]["spec"]["name"], "f");
    assert_eq!(al[0]["spec"]["name"], "f");
    assert!(ll[0]["spec"]["inputs"].is_array(), "{}", ll[0]);
    assert_eq!(ll[0]["spec"]["inputs"], al[0]["spec"]["inputs"]);
    assert_eq!(ll[0]["spec"]["outputs"], al[0]["spec"]["outputs"]);

    // run: a command, its output, JSON and exit 0.
    aws.answers(&[response("r-1", 0, "hi\n")]);
    let (l, a) = same_schema(&sides, &["run", "-n", "f", "--json", "echo hi"]);
    assert_eq!(l["output"], "hi\n");
    assert_eq!(a["output"], l["output"]);
    // A script that fails: exit 1 and the same note on both.
    let local_run = local.run(&["run", "-n", "f", "-e", "GREETING=hello", "-s", &script]);
    assert_eq!(local_run.status, 1, "{local_run:#?}");
    assert_eq!(local_run.stdout, "from a script: hello\n");
    aws.answers(&[response("r-2", 3, &local_run.stdout)]);
    let aws_run = aws.run(&["run", "-n", "f", "-e", "GREETING=hello", "-s", &script]);
    assert_eq!((aws_run.status, &aws_run.stdout), (1, &local_run.stdout));
    let note = |r: &Run| r.stderr.replace(&request_of(&r.stderr), "ID");
    assert_eq!(note(&local_run), note(&aws_run));
    assert!(
        note(&local_run).contains("exited with status 3"),
        "{local_run:#?}"
    );

    // run --async: at once, with a request id, on both.
    let (l, _) = same_schema(
        &sides,
        &["run", "-n", "f", "--async", "--json", "echo later"],
    );
    let id = l["request_id"].as_str().unwrap().to_string();
    // Locally it completes after scar returned, and is logged.
    let log = wait_for(|| {
        let r = local.run(&["log", "-n", "f", "-ri", &id]);
        (r.status == 0 && r.stdout.contains("later")).then_some(r.stdout)
    });
    assert!(log.contains(&format!("REPORT RequestId: {id}")), "{log}");

    // log -ri of an id that never ran: exit 2, the same message.
    same_error(&sides, &["log", "-n", "f", "-ri", "no-such-id"], 2);

    // log --follow follows on both: a line written after it started shows up.
    for side in [local, aws] {
        let mut child = side
            .command(&["log", "-n", "f", "--follow"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        let marker = format!("marker-{}", side.name);
        match &side.moto {
            None => {
                local
                    .run(&["run", "-n", "f", &format!("echo {marker}")])
                    .ok();
            }
            Some(moto) => put_log_line(moto, &marker),
        }
        let out = read_until(&mut child, &marker, Duration::from_secs(20));
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            out.contains(&marker),
            "{}: --follow printed {out:?}",
            side.name
        );
    }

    // Buckets: put, ls -b, get.
    let data = work.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("a.txt"), "hello bucket\n").unwrap();
    let (l, a) = same_schema(
        &sides,
        &[
            "put",
            "-b",
            "conformance/data",
            "-p",
            data.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(keys(&l["stored"]), keys(&a["stored"]));
    assert_eq!(l["stored"][0]["key"], "data/a.txt");
    assert_eq!(a["stored"][0]["key"], "data/a.txt");
    assert_eq!(
        (l["function"].clone(), a["function"].clone()),
        (serde_json::Value::Null, serde_json::Value::Null)
    );
    let (l, a) = same_schema(&sides, &["ls", "-b", "conformance/data", "--json"]);
    assert_eq!(l[0]["key"], a[0]["key"]);
    assert_eq!(l[0]["size"], a[0]["size"]);
    for side in [local, aws] {
        let dest = side.work.path().join("got");
        side.run(&[
            "get",
            "-b",
            "conformance/data",
            "-p",
            dest.to_str().unwrap(),
        ])
        .ok();
        assert_eq!(
            std::fs::read_to_string(dest.join("a.txt")).unwrap(),
            "hello bucket\n",
            "{}",
            side.name
        );
    }

    // The launcher over input/: the same per-file schema; a bucket that is not the
    // function's is refused alike.
    let inputs = work.path().join("inputs");
    std::fs::create_dir_all(&inputs).unwrap();
    std::fs::write(inputs.join("one.txt"), "1").unwrap();
    local
        .run(&[
            "put",
            "-b",
            "conformance/input",
            "-p",
            inputs.to_str().unwrap(),
        ])
        .ok();
    aws.run(&[
        "put",
        "-b",
        "conformance/input",
        "-p",
        inputs.to_str().unwrap(),
    ])
    .ok();
    aws.answers(&[response("r-3", 0, "ran\n")]);
    let (l, a) = same_schema(&sides, &["run", "-n", "f", "-es", "conformance", "--json"]);
    assert_eq!(l[0]["key"], "input/one.txt");
    assert_eq!(a[0]["key"], "input/one.txt");
    assert_eq!(l[0]["outcome"], a[0]["outcome"]);
    same_error(&sides, &["run", "-n", "f", "-es", "other-bucket"], 2);
    // --only-failed needs a record of what ran: local has one, Lambda has none, and the
    // aws provider says so instead of ignoring the flag.
    local
        .run(&["run", "-n", "f", "-es", "conformance", "--only-failed"])
        .ok();
    let refused = aws.run(&["run", "-n", "f", "-es", "conformance", "--only-failed"]);
    assert_eq!(refused.status, 2, "{refused:#?}");
    assert!(refused.stderr.contains("--only-failed"), "{refused:#?}");

    // serve is the local provider's; aws refuses it (exit 2) instead of ignoring it.
    let serve = aws.run(&["serve"]);
    assert_eq!(serve.status, 2, "{serve:#?}");

    // rm: the same JSON; a second rm is the same not-found error.
    let (l, a) = same_schema(&sides, &["rm", "-n", "f", "--json"]);
    assert_eq!(l, a);
    same_error(&sides, &["rm", "-n", "f"], 2);
    let (l, a) = same_schema(&sides, &["ls", "--json"]);
    assert_eq!((l, a), (serde_json::json!([]), serde_json::json!([])));
}

fn to_str(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The request id in `error: ... (request id ID)`.
fn request_of(text: &str) -> String {
    text.split("request id ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap_or_default()
        .to_string()
}

fn wait_for<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Reads the child's stdout until `marker` shows up or `limit` passes.
fn read_until(child: &mut std::process::Child, marker: &str, limit: Duration) -> String {
    use std::io::Read;
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    let mut out = Vec::new();
    while start.elapsed() < limit {
        if let Ok(chunk) = rx.recv_timeout(Duration::from_millis(200)) {
            out.extend(chunk);
        }
        if String::from_utf8_lossy(&out).contains(marker) {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Writes one line into the function's CloudWatch log group on moto.
fn put_log_line(moto: &Moto, message: &str) {
    let stream = "2026/01/01/[$LATEST]conformance";
    moto.logs_api(
        "CreateLogStream",
        serde_json::json!({"logGroupName": "/aws/lambda/f", "logStreamName": stream}),
    );
    let now = chrono_ms();
    moto.logs_api(
        "PutLogEvents",
        serde_json::json!({"logGroupName": "/aws/lambda/f", "logStreamName": stream,
            "logEvents": [{"timestamp": now, "message": message}]}),
    );
}

fn chrono_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
