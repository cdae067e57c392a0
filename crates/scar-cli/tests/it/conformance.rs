//! Provider conformance: one list of CLI scenarios run against the local provider and the
//! aws provider (on moto), asserting the same exit statuses, the same `--json` schemas and
//! the same messages wherever the behaviour is meant to be the same.
//!
//! moto's Lambda runs nothing (no Docker): on aws, each invocation is answered by a canned
//! scar response queued beforehand with what the local provider's real run printed, so that
//! what is compared is the frontend and the provider surface, not moto.
//!
//! One test per scenario, each with its own scar homes and moto (a failing scenario hides
//! no other), each failure naming its scenario and provider.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use images::{build_busybox_image, require_tools};
use moto::Moto;
use scar_test_support::images;
use scar_test_support::moto;
use scar_test_support::scar as support;
use support::{Run, Scar};

use crate::common::folder_with;

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
        Run::of(&mut self.command(args))
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

/// Both providers for one scenario: a fresh scar home each, a moto of the scenario's own
/// behind aws, and a busybox image archive to create functions from.
struct Sides {
    scenario: &'static str,
    local: Side,
    aws: Side,
    work: tempfile::TempDir,
    archive: String,
}

/// The sides of `scenario`, or `None` (skipped loudly; a failure under `CI`) without the
/// tools or the supervisor.
fn sides(scenario: &'static str) -> Option<Sides> {
    if !require_tools(&["umoci", "skopeo", "busybox", "proot"]) {
        return None;
    }
    let side = |name, moto| {
        Some(Side {
            name,
            scar: Scar::new(env!("CARGO_BIN_EXE_scar"))?,
            moto,
            work: tempfile::tempdir().unwrap(),
        })
    };
    let local = side("local", None)?;
    let aws = side("aws", Some(Moto::start()?))?;
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("image.tar");
    build_busybox_image(work.path()).docker_archive(&archive);
    let archive = archive.to_str().unwrap().to_string();
    Some(Sides {
        scenario,
        local,
        aws,
        work,
        archive,
    })
}

/// The sides of `scenario` with function `f` made on both, its bucket `conformance`.
fn with_function(scenario: &'static str) -> Option<Sides> {
    let sides = sides(scenario)?;
    for side in [&sides.local, &sides.aws] {
        let args = side.init_args("f", &sides.archive, "conformance");
        sides.ok(side, &to_str(&args));
    }
    Some(sides)
}

impl Sides {
    /// Where a failure happened: the scenario, the provider and the command.
    fn at(&self, side: &Side, args: &[&str]) -> String {
        format!(
            "[{} on {}] `scar {}`",
            self.scenario,
            side.name,
            args.join(" ")
        )
    }

    /// Runs `args` on `side` and asserts that it succeeded.
    #[track_caller]
    fn ok(&self, side: &Side, args: &[&str]) -> Run {
        let run = side.run(args);
        assert_eq!(run.status, 0, "{} failed: {run:#?}", self.at(side, args));
        run
    }

    /// Runs `args` on both sides; asserts the same exit status; returns both runs.
    #[track_caller]
    fn both(&self, args: &[&str]) -> (Run, Run) {
        let (l, a) = (self.local.run(args), self.aws.run(args));
        assert_eq!(
            l.status,
            a.status,
            "[{} on local and aws] `scar {}`: exit status differs\nlocal: {l:#?}\naws: {a:#?}",
            self.scenario,
            args.join(" ")
        );
        (l, a)
    }

    /// Same exit status and the same JSON schema (keys).
    #[track_caller]
    fn same_schema(&self, args: &[&str]) -> (serde_json::Value, serde_json::Value) {
        let (l, a) = self.both(args);
        let (lj, aj) = (l.json(), a.json());
        assert_eq!(
            keys(&lj),
            keys(&aj),
            "[{} on local and aws] `scar {}`: --json schema differs\nlocal: {lj:#}\naws: {aj:#}",
            self.scenario,
            args.join(" ")
        );
        (lj, aj)
    }

    /// Same exit status and the same error message, once request ids and paths are set
    /// aside.
    #[track_caller]
    fn same_error(&self, args: &[&str], status: i32) -> String {
        let (l, a) = self.both(args);
        assert_eq!(l.status, status, "{}: {l:#?}", self.at(&self.local, args));
        assert_eq!(
            l.stderr.trim(),
            a.stderr.trim(),
            "[{} on local and aws] `scar {}`: messages differ",
            self.scenario,
            args.join(" ")
        );
        l.stderr
    }
}

/// The keys of a JSON object (of the first element, for an array).
fn keys(v: &serde_json::Value) -> BTreeSet<String> {
    let v = v.as_array().and_then(|a| a.first()).unwrap_or(v);
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// A scar response as the supervisor answers it.
fn response(request_id: &str, exit_code: i32, output: &str) -> serde_json::Value {
    serde_json::json!({
        "request_id": request_id, "exit_code": exit_code, "timed_out": false,
        "output": output, "uploaded": [], "log_group": "/aws/lambda/f", "log_stream": "s"
    })
}

#[test]
fn bad_input_is_refused_alike_before_anything_is_made() {
    let Some(s) = sides("bad_input_is_refused_alike_before_anything_is_made") else {
        return;
    };
    s.same_error(&["init", "-n", "bad name", "-if", &s.archive], 2);
    s.same_error(&["init", "-n", "f", "-if", &s.archive, "-m", "5"], 2);
    s.same_error(&["run", "-n", "nobody", "echo"], 2);
    s.same_error(&["ls", "-b", "Not_A_Bucket"], 2);
}

#[test]
fn init_and_ls_describe_a_function_alike() {
    let Some(s) = sides("init_and_ls_describe_a_function_alike") else {
        return;
    };
    let init = |side: &Side| {
        let mut args = side.init_args("f", &s.archive, "conformance");
        args.push("--json".into());
        s.ok(side, &to_str(&args)).json()
    };
    let (li, ai) = (init(&s.local), init(&s.aws));
    let at = "[init_and_ls_describe_a_function_alike on local and aws] init --json";
    assert_eq!(keys(&li), keys(&ai), "{at}: a function described alike");
    assert_eq!(keys(&li["spec"]), keys(&ai["spec"]), "{at}: its spec");
    assert_eq!(
        li["image_digest"], ai["image_digest"],
        "{at}: the same image"
    );
    let (ll, al) = s.same_schema(&["ls", "--json"]);
    let at = "[init_and_ls_describe_a_function_alike] ls --json";
    assert_eq!(ll[0]["spec"]["name"], "f", "{at} on local: {ll}");
    assert_eq!(al[0]["spec"]["name"], "f", "{at} on aws: {al}");
    assert!(
        ll[0]["spec"]["inputs"].is_array(),
        "{at} on local: {}",
        ll[0]
    );
    assert_eq!(ll[0]["spec"]["inputs"], al[0]["spec"]["inputs"], "{at}");
    assert_eq!(ll[0]["spec"]["outputs"], al[0]["spec"]["outputs"], "{at}");
}

#[test]
fn run_prints_a_commands_output_alike() {
    let Some(s) = with_function("run_prints_a_commands_output_alike") else {
        return;
    };
    s.aws.answers(&[response("r-1", 0, "hi\n")]);
    let (l, a) = s.same_schema(&["run", "-n", "f", "--json", "echo hi"]);
    let at = "[run_prints_a_commands_output_alike] run --json";
    assert_eq!(l["output"], "hi\n", "{at} on local: {l}");
    assert_eq!(a["output"], l["output"], "{at} on aws: {a}");
}

#[test]
fn a_failing_script_exits_1_with_the_same_note() {
    let Some(s) = with_function("a_failing_script_exits_1_with_the_same_note") else {
        return;
    };
    let script = s.work.path().join("script.sh");
    std::fs::write(&script, "echo \"from a script: $GREETING\"\nexit 3\n").unwrap();
    let args = ["run", "-n", "f", "-e", "GREETING=hello", "-s"];
    let args = [&args[..], &[script.to_str().unwrap()]].concat();
    let local_run = s.local.run(&args);
    let at = |side: &Side| s.at(side, &args);
    assert_eq!(local_run.status, 1, "{}: {local_run:#?}", at(&s.local));
    assert_eq!(
        local_run.stdout,
        "from a script: hello\n",
        "{}",
        at(&s.local)
    );
    s.aws.answers(&[response("r-2", 3, &local_run.stdout)]);
    let aws_run = s.aws.run(&args);
    assert_eq!(
        (aws_run.status, &aws_run.stdout),
        (1, &local_run.stdout),
        "{}: {aws_run:#?}",
        at(&s.aws)
    );
    let note = |r: &Run| r.stderr.replace(&request_of(&r.stderr), "ID");
    assert_eq!(
        note(&local_run),
        note(&aws_run),
        "[a_failing_script_exits_1_with_the_same_note on local and aws]: notes differ"
    );
    assert!(
        note(&local_run).contains("exited with status 3"),
        "{}: {local_run:#?}",
        at(&s.local)
    );
}

#[test]
fn run_async_returns_a_request_id_at_once() {
    let Some(s) = with_function("run_async_returns_a_request_id_at_once") else {
        return;
    };
    let (l, _) = s.same_schema(&["run", "-n", "f", "--async", "--json", "echo later"]);
    let id = l["request_id"].as_str().unwrap().to_string();
    // Locally it completes after scar returned, and is logged.
    let args = ["log", "-n", "f", "-ri", &id];
    let log = wait_for(&s.at(&s.local, &args), || {
        let r = s.local.run(&args);
        (r.status == 0 && r.stdout.contains("later")).then_some(r.stdout)
    });
    assert!(
        log.contains(&format!("REPORT RequestId: {id}")),
        "{}: {log}",
        s.at(&s.local, &args)
    );
}

#[test]
fn log_of_a_request_that_never_ran_is_the_same_error() {
    let Some(s) = with_function("log_of_a_request_that_never_ran_is_the_same_error") else {
        return;
    };
    s.same_error(&["log", "-n", "f", "-ri", "no-such-id"], 2);
}

#[test]
fn log_follow_shows_a_line_written_after_it_started() {
    let Some(s) = with_function("log_follow_shows_a_line_written_after_it_started") else {
        return;
    };
    for side in [&s.local, &s.aws] {
        let args = ["log", "-n", "f", "--follow"];
        let mut child = side
            .command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        let marker = format!("marker-{}", side.name);
        match &side.moto {
            None => {
                s.ok(side, &["run", "-n", "f", &format!("echo {marker}")]);
            }
            Some(moto) => put_log_line(moto, &marker),
        }
        let out = read_until(&mut child, &marker, Duration::from_secs(20));
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            out.contains(&marker),
            "{}: printed {out:?}",
            s.at(side, &args)
        );
    }
}

#[test]
fn buckets_put_ls_and_get_alike() {
    let Some(s) = with_function("buckets_put_ls_and_get_alike") else {
        return;
    };
    let data = folder_with(s.work.path().join("data"), &[("a.txt", "hello bucket\n")]);
    let put_data = put("conformance/data", &data);
    let (l, a) = s.same_schema(&[&put_data[..], &["--json"]].concat());
    let at = "[buckets_put_ls_and_get_alike] put --json";
    assert_eq!(keys(&l["stored"]), keys(&a["stored"]), "{at}: {l} vs {a}");
    assert_eq!(l["stored"][0]["key"], "data/a.txt", "{at} on local: {l}");
    assert_eq!(a["stored"][0]["key"], "data/a.txt", "{at} on aws: {a}");
    assert_eq!(
        (l["function"].clone(), a["function"].clone()),
        (serde_json::Value::Null, serde_json::Value::Null),
        "{at}: no function on either"
    );
    let (l, a) = s.same_schema(&["ls", "-b", "conformance/data", "--json"]);
    let at = "[buckets_put_ls_and_get_alike on local and aws] ls -b --json";
    assert_eq!(l[0]["key"], a[0]["key"], "{at}");
    assert_eq!(l[0]["size"], a[0]["size"], "{at}");
    for side in [&s.local, &s.aws] {
        let dest = side.work.path().join("got");
        let get = [
            "get",
            "-b",
            "conformance/data",
            "-p",
            dest.to_str().unwrap(),
        ];
        s.ok(side, &get);
        assert_eq!(
            std::fs::read_to_string(dest.join("a.txt")).unwrap(),
            "hello bucket\n",
            "{}",
            s.at(side, &get)
        );
    }
}

#[test]
fn the_launcher_reports_each_file_alike() {
    let Some(s) = with_function("the_launcher_reports_each_file_alike") else {
        return;
    };
    // The same per-file schema; a bucket that is not the function's is refused alike.
    let inputs = folder_with(s.work.path().join("inputs"), &[("one.txt", "1")]);
    for side in [&s.local, &s.aws] {
        s.ok(side, &put("conformance/input", &inputs));
    }
    s.aws.answers(&[response("r-3", 0, "ran\n")]);
    let (l, a) = s.same_schema(&["run", "-n", "f", "-es", "conformance", "--json"]);
    let at = "[the_launcher_reports_each_file_alike] run -es --json";
    assert_eq!(l[0]["key"], "input/one.txt", "{at} on local: {l}");
    assert_eq!(a[0]["key"], "input/one.txt", "{at} on aws: {a}");
    assert_eq!(l[0]["outcome"], a[0]["outcome"], "{at}: {l} vs {a}");
    s.same_error(&["run", "-n", "f", "-es", "other-bucket"], 2);
    // --only-failed needs a record of what ran: local has one, Lambda has none, and the
    // aws provider says so instead of ignoring the flag.
    let only_failed = ["run", "-n", "f", "-es", "conformance", "--only-failed"];
    s.ok(&s.local, &only_failed);
    let refused = s.aws.run(&only_failed);
    let at = s.at(&s.aws, &only_failed);
    assert_eq!(refused.status, 2, "{at}: {refused:#?}");
    assert!(
        refused.stderr.contains("--only-failed"),
        "{at}: {refused:#?}"
    );
}

#[test]
fn serve_is_refused_on_aws_and_stats_answer_alike() {
    let Some(s) = with_function("serve_is_refused_on_aws_and_stats_answer_alike") else {
        return;
    };
    // serve is the local provider's; aws refuses it (exit 2) rather than ignoring it.
    let serve = s.aws.run(&["serve"]);
    assert_eq!(serve.status, 2, "{}: {serve:#?}", s.at(&s.aws, &["serve"]));
    // stats answer on both, with the same keys; the counts AWS does not keep are null
    // there (not 0), and it adds what S3 lists instead.
    let (l, a) = s.same_schema(&["stats", "--json"]);
    let at = "[serve_is_refused_on_aws_and_stats_answer_alike] stats --json";
    let (l, a) = (&l[0], &a[0]);
    assert_eq!(
        (&l["function"], &a["function"]),
        (&"f".into(), &"f".into()),
        "{at}: {l} vs {a}"
    );
    for count in [
        "waiting",
        "running",
        "done",
        "failed",
        "timed_out",
        "loop_stopped",
    ] {
        assert!(l["counts"][count].is_u64(), "{at} on local: {count}: {l}");
        assert!(a["counts"][count].is_null(), "{at} on aws: {count}: {a}");
    }
    assert_eq!(a["counts"]["inputs"], 0, "{at} on aws: {a}");
    assert_eq!(
        (&l["invocations"], &a["invocations"]),
        (&0.into(), &0.into()),
        "{at}"
    );
    s.same_error(&["stats", "-n", "nope"], 2);
}

#[test]
fn rm_removes_alike_and_a_second_rm_is_not_found() {
    let Some(s) = with_function("rm_removes_alike_and_a_second_rm_is_not_found") else {
        return;
    };
    let (l, a) = s.same_schema(&["rm", "-n", "f", "--json"]);
    let at = "[rm_removes_alike_and_a_second_rm_is_not_found on local and aws]";
    assert_eq!(l, a, "{at} rm --json");
    s.same_error(&["rm", "-n", "f"], 2);
    let (l, a) = s.same_schema(&["ls", "--json"]);
    assert_eq!(
        (l, a),
        (serde_json::json!([]), serde_json::json!([])),
        "{at} ls --json"
    );
}

/// `scar put -b BUCKET -p PATH`.
fn put<'a>(bucket: &'a str, path: &'a Path) -> [&'a str; 5] {
    ["put", "-b", bucket, "-p", path.to_str().unwrap()]
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

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what}: timed out waiting"
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

#[test]
fn a_failed_file_has_the_same_result_in_json() {
    let Some(s) = with_function("a_failed_file_has_the_same_result_in_json") else {
        return;
    };
    // The same failure is one result on both providers: outcome, exit code and the end of
    // its output (once the aws provider kept 20 lines without the last newline, the local
    // one 2000 bytes with it), and a function error's type and message as `error`.
    let script = s.work.path().join("fail.sh");
    std::fs::write(
        &script,
        "echo \"failing on $INPUT_FILE_PATH\" >&2\necho last words\nexit 3\n",
    )
    .unwrap();
    let inputs = folder_with(s.work.path().join("inputs"), &[("bad.txt", "x")]);
    for side in [&s.local, &s.aws] {
        let mut args = side.init_args("g", &s.archive, "failing");
        args.extend(["-s".into(), script.to_str().unwrap().into()]);
        s.ok(side, &to_str(&args));
        // Locally a put into the input folder runs the function already (and fails).
        side.run(&put("failing/input", &inputs));
    }
    let launch = ["run", "-n", "g", "-es", "failing", "--json"];
    let local = s.local.run(&launch);
    let at = s.at(&s.local, &launch);
    assert_eq!(local.status, 1, "{at}: {local:#?}");
    let l = local.json();
    assert_eq!(l[0]["outcome"], "failed", "{at}: {l:#}");
    let tail = l[0]["output_tail"].as_str().unwrap_or_default().to_string();
    assert!(tail.ends_with("last words"), "{at}: {l:#}");
    let output = tail.clone() + "\n";
    s.aws.answers(&[response("r-f", 3, &output)]);
    let aws = s.aws.run(&launch);
    let at = s.at(&s.aws, &launch);
    assert_eq!(aws.status, 1, "{at}: {aws:#?}");
    let a = aws.json();
    assert_eq!(
        keys(&l),
        keys(&a),
        "[{} on local and aws]: keys differ: {l:#} vs {a:#}",
        s.scenario
    );
    for field in ["outcome", "exit_code", "output_tail"] {
        assert_eq!(
            l[0][field], a[0][field],
            "[{} on local and aws] {field}: {l:#} vs {a:#}",
            s.scenario
        );
    }
    // A function error (Lambda's own, here a runtime that exited) is the result's error.
    let mut errored = response("r-e", 0, "");
    errored["exit_code"] = serde_json::Value::Null;
    errored["function_error"] = serde_json::json!({
        "errorType": "Runtime.ExitError",
        "errorMessage": "RequestId: r-e Error: Runtime exited with error: exit status 3"
    });
    s.aws.answers(&[errored]);
    let a = s.aws.run(&launch).json();
    assert_eq!(a[0]["outcome"], "failed", "{at}: {a:#}");
    assert_eq!(
        a[0]["error"],
        "Runtime.ExitError: RequestId: r-e Error: Runtime exited with error: exit status 3",
        "{at}: {a:#}"
    );
}

#[test]
fn an_unreadable_entry_fails_put_alike() {
    let Some(s) = with_function("an_unreadable_entry_fails_put_alike") else {
        return;
    };
    // A directory holding an entry that cannot be read (a dangling link): refused with the
    // same words on both providers, nothing stored (the local provider once skipped it).
    let data = folder_with(s.work.path().join("data"), &[("a.txt", "a")]);
    std::os::unix::fs::symlink(data.join("gone"), data.join("broken")).unwrap();
    let message = s.same_error(&put("conformance/data", &data), 2);
    assert!(message.contains("broken"), "[{}]: {message}", s.scenario);
    let (l, a) = s.both(&["ls", "-b", "conformance/data", "--json"]);
    assert_eq!(
        (l.json(), a.json()),
        (serde_json::json!([]), serde_json::json!([])),
        "[{}]: something was stored",
        s.scenario
    );
}

#[test]
fn a_missing_function_is_the_same_error() {
    let Some(s) = sides("a_missing_function_is_the_same_error") else {
        return;
    };
    let message = s.same_error(&["run", "-n", "nobody", "echo"], 2);
    assert!(
        message.contains("help: `scar ls` lists the functions"),
        "[{}]: {message}",
        s.scenario
    );
    s.same_error(&["log", "-n", "nobody"], 2);
}
