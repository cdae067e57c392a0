//! The local provider's Runtime API driven by a real client that is not scar's supervisor:
//! AWS's Rust runtime (`lambda_runtime`), in `crates/scar-test-function`, built static by
//! `cargo xtask build-supervisor` and run as the function's runtime (`--supervisor`). What
//! goes wrong must go wrong as on Lambda: function errors with their type, timeouts stopped
//! at the deadline, responses over 6 MB refused, init errors returned to the first
//! invocation, and an init phase outside the invocation's timeout.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use scar_test_support::images::{build_busybox_image, busybox_archive, require_tools};
use scar_test_support::lambda;
use scar_test_support::scar::{test_function, Run, Scar};

use crate::common::number_after;

const TOOLS: &[&str] = &["umoci", "skopeo", "busybox"];

struct Setup {
    scar: Scar,
    function: PathBuf,
    archive: PathBuf,
    _work: tempfile::TempDir,
}

fn setup() -> Option<Setup> {
    if !require_tools(TOOLS) {
        return None;
    }
    let scar = Scar::new(env!("CARGO_BIN_EXE_scar"))?;
    let function = test_function()?;
    let work = tempfile::tempdir().unwrap();
    let archive = busybox_archive(work.path());
    Some(Setup {
        scar,
        function,
        archive,
        _work: work,
    })
}

impl Setup {
    /// A function whose runtime is the test function; `extra`: more `init` flags.
    fn init(&self, name: &str, extra: &[&str]) -> serde_json::Value {
        let mut args = vec!["--supervisor", self.function.to_str().unwrap(), "--json"];
        args.extend_from_slice(extra);
        self.scar.init_from(name, &self.archive, &args).ok().json()
    }

    fn log(&self, name: &str) -> String {
        self.scar.run(&["log", "-n", name]).ok().stdout
    }

    /// `scar run NAME --json context`: the response, and the Lambda context the runtime
    /// saw, which it answered.
    fn context(&self, name: &str) -> (serde_json::Value, serde_json::Value) {
        let out = self
            .scar
            .run(&["run", "-n", name, "--json", "context"])
            .ok()
            .json();
        let ctx = serde_json::from_str(out["output"].as_str().unwrap()).unwrap();
        (out, ctx)
    }

    /// `scar run NAME --payload PAYLOAD` (an event, or `@FILE`), which must succeed.
    fn run_payload(&self, name: &str, payload: &str) -> Run {
        self.scar
            .run(&["run", "-n", name, "--payload", payload])
            .ok()
    }

    /// `scar run NAME --json ARGS...`, which must fail (exit status 1): its response.
    #[track_caller]
    fn failed_run(&self, name: &str, args: &[&str]) -> serde_json::Value {
        let run = self
            .scar
            .run(&[&["run", "-n", name, "--json"], args].concat());
        assert_eq!(run.status, 1, "{run:#?}");
        run.json()
    }

    /// `scar run NAME --json ARGS...`, and how long it took.
    fn timed_run(&self, name: &str, args: &[&str]) -> (Run, Duration) {
        let begun = Instant::now();
        let run = self
            .scar
            .run(&[&["run", "-n", name, "--json"], args].concat());
        (run, begun.elapsed())
    }

    /// Three files in `bucket/input`, run by the launcher one at a time: the log of
    /// function `name` afterwards.
    fn launch_three_files(&self, name: &str, bucket: &str) -> String {
        let input = self.scar.bucket(&format!("{bucket}/input"));
        std::fs::create_dir_all(&input).unwrap();
        for i in 0..3 {
            std::fs::write(input.join(format!("f{i}.txt")), "x").unwrap();
        }
        let launch = [
            "run",
            "-n",
            name,
            "-es",
            bucket,
            "--concurrency",
            "1",
            "--json",
        ];
        let out = self.scar.run(&launch).ok().json();
        assert_eq!(out.as_array().unwrap().len(), 3, "{out}");
        self.log(name)
    }
}

/// Asserts that `ctx` is the context Lambda gives the invocation `out` of function `name`,
/// whose timeout is 5 s: its ARN, name, memory, version, log group and stream, the
/// invocation's request id and deadline, and Lambda's variables.
#[track_caller]
fn assert_lambda_context(ctx: &serde_json::Value, out: &serde_json::Value, name: &str) {
    assert_eq!(ctx["request_id"], out["request_id"]);
    assert_eq!(
        ctx["function_arn"],
        format!("arn:aws:lambda:us-east-1:000000000000:function:{name}")
    );
    assert_eq!(ctx["function_name"], name);
    assert_eq!(ctx["memory"], 512);
    assert_eq!(ctx["version"], "$LATEST");
    assert_eq!(ctx["log_group"], format!("/aws/lambda/{name}"));
    assert_eq!(ctx["log_stream"], out["log_stream"]);
    // The real deadline: the invocation's 5 s, from when it was handed out.
    let remaining = ctx["remaining_ms"].as_u64().unwrap();
    assert!(remaining > 4_000 && remaining <= 5_000, "{remaining}");
    assert_eq!(ctx["env"]["LAMBDA_RUNTIME_DIR"], "/var/runtime");
    assert_eq!(ctx["env"]["AWS_LAMBDA_INITIALIZATION_TYPE"], "on-demand");
}

#[test]
fn a_normal_invocation_sees_lambdas_context_and_environment() {
    let Some(s) = setup() else { return };
    // `-t 5` without `-tt`: the default threshold (10 s) does not fit, so it is fitted.
    let info = s.init("ctx", &["-t", "5"]);
    assert_eq!(info["spec"]["timeout_threshold_s"], 1, "{info}");

    let (out, ctx) = s.context("ctx");
    assert!(out.get("function_error").is_none(), "{out}");
    // Any other runtime's answer is the function's result as it is.
    assert_lambda_context(&ctx, &out, "ctx");
    lambda::assert_trace_id(ctx["trace_id"].as_str().unwrap());
    assert_eq!(ctx["env"]["LAMBDA_TASK_ROOT"], "/var/task");

    // Without --json the response is printed as it is.
    let plain = s.scar.run(&["run", "-n", "ctx", "context"]).ok();
    let again: serde_json::Value = serde_json::from_str(plain.stdout.trim()).unwrap();
    assert_eq!(again["function_name"], "ctx");
    assert!(
        s.log("ctx").contains("Init Duration:"),
        "REPORT has the init phase"
    );
}

#[test]
fn a_raised_error_reaches_the_caller_with_its_type() {
    let Some(s) = setup() else { return };
    s.init("fails", &[]);
    let json = s.failed_run("fails", &["fail"]);
    assert_eq!(json["function_error"]["errorType"], "TestFunctionError");
    assert_eq!(json["function_error"]["errorMessage"], "failed on purpose");
    assert_eq!(json["timed_out"], false);
    let plain = s.scar.run(&["run", "-n", "fails", "fail"]);
    assert_eq!(plain.status, 1, "{plain:#?}");
    assert!(
        plain.stderr.contains("Unhandled, request id")
            && plain
                .stderr
                .contains("TestFunctionError: failed on purpose"),
        "{plain:#?}"
    );
}

#[test]
fn a_timeout_is_stopped_at_the_deadline_with_lambdas_log_line() {
    let Some(s) = setup() else { return };
    s.init("slow", &["-t", "2"]);
    let (out, took) = s.timed_run("slow", &["sleep", "20000"]);
    assert_eq!(out.status, 1, "{out:#?}");
    // Cold start plus the 2 s timeout, not the 20 s sleep nor a grace period.
    assert!(took < Duration::from_millis(4_500), "took {took:?}");
    assert!(took >= Duration::from_secs(2), "took {took:?}");
    let json = out.json();
    assert_eq!(json["timed_out"], true);
    assert_eq!(json["function_error"]["errorType"], "Sandbox.Timedout");
    let rid = json["request_id"].as_str().unwrap();
    assert_eq!(
        json["function_error"]["errorMessage"],
        format!("RequestId: {rid} Error: Task timed out after 2.00 seconds")
    );
    let log = s.log("slow");
    assert!(
        log.contains(&format!("{rid} Task timed out after 2.00 seconds")),
        "{log}"
    );
    assert!(log.contains("Status: timeout"), "{log}");
    eprintln!("timeout of 2 s: scar run took {took:?}");
}

#[test]
fn a_response_over_six_megabytes_is_refused() {
    let Some(s) = setup() else { return };
    s.init("big", &[]);
    let out = s
        .scar
        .run(&["run", "-n", "big", "--json", "big", &(7 << 20).to_string()]);
    assert_eq!(out.status, 1, "{:?}", out.stderr);
    assert!(
        out.stdout.len() < 4096,
        "{} bytes printed",
        out.stdout.len()
    );
    let json = out.json();
    assert_eq!(
        json["function_error"]["errorType"],
        "Function.ResponseSizeTooLarge"
    );
    // Under the limit it goes through.
    let ok = s
        .scar
        .run(&["run", "-n", "big", "big", &(5 << 20).to_string()])
        .ok();
    assert_eq!(ok.stdout.len(), (5 << 20) + 2, "a JSON string of 5 MiB");
}

/// The test function posts its init error with the type in the
/// `Lambda-Runtime-Function-Error-Type` header only: the header is honoured.
/// A runtime that exits during an invocation: Lambda's `Runtime.ExitError` with the exit
/// status, its log lines, and a new environment for the next invocation.
#[test]
fn a_runtime_that_exits_is_a_runtime_exit_error() {
    let Some(s) = setup() else { return };
    s.init("dies", &[]);
    let json = s.failed_run("dies", &["exit", "7"]);
    let rid = json["request_id"].as_str().unwrap().to_string();
    assert_eq!(json["function_error"]["errorType"], "Runtime.ExitError");
    assert_eq!(
        json["function_error"]["errorMessage"],
        format!("RequestId: {rid} Error: Runtime exited with error: exit status 7")
    );
    let log = s.log("dies");
    assert!(
        log.contains("Runtime exited with error: exit status 7\n")
            || log.contains("Runtime exited with error: exit status 7"),
        "{log}"
    );
    assert!(
        log.lines().any(|l| l.ends_with("Runtime.ExitError"))
            && log.contains(&format!("REPORT RequestId: {rid}"))
            && log.contains("Error Type: Runtime.ExitError"),
        "{log}"
    );
    let plain = s.scar.run(&["run", "-n", "dies", "exit", "3"]);
    assert_eq!(plain.status, 1, "{plain:#?}");
    assert!(
        plain.stderr.contains("Runtime.ExitError: RequestId:"),
        "{}",
        plain.stderr
    );
    // The next invocation gets a new runtime.
    let next = s.scar.run(&["run", "-n", "dies", "--json", "context"]);
    assert_eq!(next.status, 0, "{next:#?}");
}

#[test]
fn an_init_error_is_returned_to_the_first_invocation() {
    let Some(s) = setup() else { return };
    s.init(
        "nohandler",
        &["--lambda-environment", "TEST_HANDLER=missing"],
    );
    let json = s.failed_run("nohandler", &["context"]);
    assert_eq!(
        json["function_error"]["errorType"],
        "Runtime.HandlerNotFound"
    );
    assert_eq!(
        json["function_error"]["errorMessage"],
        "missing is not a handler of this function"
    );
    let log = s.log("nohandler");
    let rid = json["request_id"].as_str().unwrap();
    assert!(
        log.contains(&format!("REPORT RequestId: {rid}"))
            && log.contains("Error Type: Runtime.HandlerNotFound"),
        "{log}"
    );
}

#[test]
fn the_init_phase_is_not_charged_to_the_invocation() {
    let Some(s) = setup() else { return };
    s.init(
        "slowinit",
        &["-t", "3", "--lambda-environment", "TEST_INIT_SLEEP_MS=2000"],
    );
    let (_, ctx) = s.context("slowinit");
    let remaining = ctx["remaining_ms"].as_u64().unwrap();
    assert!(
        remaining > 2_500,
        "the full timeout is left: {remaining} ms"
    );
    let log = s.log("slowinit");
    let init_ms: f64 = number_after(&log, "Init Duration: ", " ms");
    assert!(init_ms >= 2_000.0, "Init Duration {init_ms} ms");
    eprintln!("init of 2 s: Init Duration {init_ms} ms, {remaining} ms of 3 s left");
}

#[test]
fn the_launcher_reuses_a_warm_runtime() {
    let Some(s) = setup() else { return };
    s.init("warm", &["-es", "warm-b"]);
    let log = s.launch_three_files("warm", "warm-b");
    // One runtime process served all three, after one init.
    assert!(log.contains("invocation 3 of runtime"), "{log}");
    assert_eq!(log.matches("Init Duration").count(), 1, "{log}");
}

/// A Lambda container image whose ENTRYPOINT is the test function, as AWS's base images
/// are laid out: CMD the handler, an Env of its own, a WorkingDir.
fn lambda_image(s: &Setup) -> PathBuf {
    let work = s._work.path().join("lambda-image");
    std::fs::create_dir_all(&work).unwrap();
    let image = build_busybox_image(&work);
    let function = s.function.clone();
    image.add_layer(&work, |rootfs| {
        let dest = rootfs.join("var/runtime");
        std::fs::create_dir_all(&dest).unwrap();
        std::fs::copy(&function, dest.join("bootstrap")).unwrap();
        std::fs::create_dir_all(rootfs.join("var/task")).unwrap();
    });
    image.config(&[
        "--config.entrypoint=/var/runtime/bootstrap",
        "--config.cmd=function.handler",
        "--config.env=FROM_IMAGE=image-env",
        "--config.workingdir=/var/task",
    ]);
    let archive = work.join("lambda.tar");
    image.docker_archive(&archive);
    archive
}

#[test]
fn a_lambda_container_image_runs_with_its_own_runtime() {
    let Some(s) = setup() else { return };
    let archive = lambda_image(&s);
    // No --supervisor: the image's ENTRYPOINT + CMD is the runtime.
    let info = s
        .scar
        .init_from(
            "byo",
            &archive,
            &[
                "--runtime-client",
                "image",
                "-e",
                "FROM_INIT=init-env",
                "--json",
            ],
        )
        .ok()
        .json();
    assert_eq!(info["spec"]["runtime_client"], "image");
    let out = s.run_payload("byo", r#"{"cmd_args":["context"]}"#);
    let ctx: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(ctx["env"]["_HANDLER"], "function.handler");
    assert_eq!(ctx["env"]["FROM_IMAGE"], "image-env");
    assert_eq!(ctx["env"]["FROM_INIT"], "init-env");
    assert_eq!(ctx["cwd"], "/var/task");
    assert_eq!(ctx["function_name"], "byo");

    // Any JSON event goes as it is, and the response comes back as it is.
    let event = r#"{"echo":{"env":"prod","items":[1,2,{"k":null}]}}"#;
    let out = s.run_payload("byo", event);
    assert_eq!(out.stdout, r#"{"env":"prod","items":[1,2,{"k":null}]}"#);
    let file = s._work.path().join("event.json");
    std::fs::write(&file, r#"{"echo":"from a file"}"#).unwrap();
    let from_file = s.run_payload("byo", &format!("@{}", file.display()));
    assert_eq!(from_file.stdout, r#""from a file""#);
    let bad = s.scar.run(&["run", "-n", "byo", "--payload", "{not json"]);
    assert_eq!(bad.status, 2, "{bad:#?}");

    // An image with nothing to run cannot be its own runtime.
    let plain = s._work.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let image = scar_test_support::images::OciImage::create(&plain.join("oci"), "latest");
    image.add_layer(&plain, scar_test_support::images::fill_busybox_rootfs);
    image.config(&[
        "--os=linux",
        &format!(
            "--architecture={}",
            scar_test_support::images::host_architecture()
        ),
    ]);
    let bare = plain.join("bare.tar");
    image.docker_archive(&bare);
    let refused = s
        .scar
        .init_from("bare", &bare, &["--runtime-client", "image"]);
    refused.assert_refused("no ENTRYPOINT or CMD");
}

/// The second client: AWS's Python runtime client, `awslambdaric` from PyPI, in a Debian
/// image built once and cached under the target directory. Every case of the Rust client's
/// tests, in one test so that the image's root is extracted once.
#[test]
fn awslambdaric_in_a_debian_image_behaves_as_on_lambda() {
    let Some(s) = setup() else { return };
    let cache = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("test-images");
    let Some(archive) = scar_test_support::images::awslambdaric_image(&cache) else {
        return;
    };
    let init = |name: &str, extra: &[&str]| {
        let extra = [&["--runtime-client", "image"], extra].concat();
        s.scar.init_from(name, &archive, &extra).ok();
    };

    // A normal invocation: Lambda's context, environment and trace header.
    init("py", &["-t", "5", "-e", "FROM_INIT=init-env"]);
    let (out, ctx) = s.context("py");
    assert_lambda_context(&ctx, &out, "py");
    let trace = ctx["trace_id"].as_str().unwrap();
    assert!(
        trace.starts_with("Root=1-") && trace.contains(";Parent=") && trace.ends_with(";Sampled=0"),
        "{trace}"
    );
    assert_eq!(ctx["env"]["_HANDLER"], "app.handler");
    assert_eq!(ctx["env"]["FROM_IMAGE"], "image-env");
    assert_eq!(ctx["env"]["FROM_INIT"], "init-env");
    assert_eq!(ctx["cwd"], "/var/task");
    let echo = s.run_payload("py", r#"{"echo":{"a":[1,"b"]}}"#);
    assert_eq!(echo.stdout, r#"{"a": [1, "b"]}"#, "Python's JSON, as it is");

    // A raised exception: its type, message and trace reach `--json`.
    let failed = s.failed_run("py", &["fail"]);
    let error = &failed["function_error"];
    assert_eq!(error["errorType"], "ValueError");
    assert_eq!(error["errorMessage"], "failed on purpose");
    let trace = error["stackTrace"].as_array().unwrap();
    assert!(
        trace.iter().any(|l| l.as_str().unwrap().contains("app.py")),
        "{error}"
    );

    // A response over 6 MB.
    let big = s
        .scar
        .run(&["run", "-n", "py", "--json", "big", &(7 << 20).to_string()]);
    assert_eq!(big.status, 1, "{:?}", big.stderr);
    assert_eq!(
        big.json()["function_error"]["errorType"],
        "Function.ResponseSizeTooLarge"
    );

    // A timeout, stopped at the deadline.
    init("pyslow", &["-t", "2"]);
    let (slow, took) = s.timed_run("pyslow", &["sleep", "20000"]);
    assert_eq!(slow.status, 1, "{slow:#?}");
    let slow = slow.json();
    assert_eq!(slow["timed_out"], true);
    assert_eq!(slow["function_error"]["errorType"], "Sandbox.Timedout");
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert!(s
        .log("pyslow")
        .contains("Task timed out after 2.00 seconds"));

    // A handler that does not exist: awslambdaric's init error, on the first invocation.
    init("pymissing", &["-e", "TEST_HANDLER=app.missing"]);
    let missing = s.failed_run("pymissing", &["context"]);
    assert_eq!(
        missing["function_error"]["errorType"],
        "Runtime.HandlerNotFound"
    );
    assert!(s
        .log("pymissing")
        .contains("Error Type: Runtime.HandlerNotFound"));

    // A 2 s init leaves the invocation its whole timeout.
    init("pyinit", &["-t", "3", "-e", "TEST_INIT_SLEEP_MS=2000"]);
    let (_, ctx) = s.context("pyinit");
    let remaining = ctx["remaining_ms"].as_u64().unwrap();
    assert!(
        remaining > 2_500,
        "{remaining} ms of 3 s left after a 2 s init"
    );

    // Warm reuse through the launcher: one Python process serves every file.
    init("pywarm", &["-es", "pywarm-b"]);
    let log = s.launch_three_files("pywarm", "pywarm-b");
    assert!(log.contains("invocation 3 of runtime"), "{log}");
    assert_eq!(log.matches("Init Duration").count(), 1, "{log}");
    eprintln!(
        "awslambdaric: timeout of 2 s took {took:?}; {remaining} ms of 3 s left after a 2 s init"
    );
}

#[test]
fn an_init_over_ten_seconds_is_tried_again_on_the_invocations_clock() {
    let Some(s) = setup() else { return };
    s.init(
        "longinit",
        &[
            "-t",
            "5",
            "--lambda-environment",
            "TEST_INIT_SLEEP_MS=11000",
        ],
    );
    let (out, took) = s.timed_run("longinit", &["context"]);
    assert_eq!(out.status, 1, "{out:#?}");
    let json = out.json();
    assert_eq!(json["function_error"]["errorType"], "Sandbox.Timedout");
    // 10 s of init phase, then the second init runs into the 5 s timeout.
    assert!(
        took >= Duration::from_secs(15) && took < Duration::from_secs(18),
        "took {took:?}"
    );
    let log = s.log("longinit");
    assert!(log.contains("INIT_REPORT Init Duration: 10"), "{log}");
    assert!(log.contains("Status: timeout"), "{log}");
    assert!(log.contains("Task timed out after 5.00 seconds"), "{log}");
}

#[test]
fn payloads_over_lambdas_limits_are_refused_before_anything_runs() {
    let Some(s) = setup() else { return };
    s.init("limits", &[]);
    // An event whose `echo` is `len` bytes, in a file, as `--payload` names it.
    let payload = |name: &str, len: usize| {
        let file = s._work.path().join(name);
        std::fs::write(&file, format!(r#"{{"echo":"{}"}}"#, "y".repeat(len))).unwrap();
        format!("@{}", file.display())
    };
    let big = payload("big.json", 7 << 20);
    let sync = s.scar.run(&["run", "-n", "limits", "--payload", &big]);
    assert_eq!(sync.status, 2, "{:?}", sync.stderr);
    assert!(
        sync.stderr.contains(
            "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
        ),
        "{:?}",
        sync.stderr
    );
    let medium = payload("medium.json", 1100 << 10);
    let queued = s
        .scar
        .run(&["run", "-n", "limits", "--async", "--payload", &medium]);
    assert_eq!(queued.status, 2, "{:?}", queued.stderr);
    assert!(
        queued
            .stderr
            .contains("Request must be smaller than 1048576 bytes for the InvokeAsync operation"),
        "{:?}",
        queued.stderr
    );
    // Under the synchronous limit the same payload runs.
    let ok = s.run_payload("limits", &medium);
    assert_eq!(ok.stdout.len(), (1100 << 10) + 2);
}
