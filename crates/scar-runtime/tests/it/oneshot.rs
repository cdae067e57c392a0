//! One-shot mode: the built `bootstrap` run as an AWS Batch job's command would be, with
//! the event in `SCAR_EVENT`, no Runtime API, one run, an exit status and a last
//! `SCAR_RESPONSE` line.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use scar_core::event::Response;
use serde_json::json;

/// A bucket tree with `bkt/input/photo.txt` and a function file that copies its input to
/// `bkt/output` upper-cased (or runs `script` instead).
struct Job {
    _tmp: tempfile::TempDir,
    buckets: PathBuf,
    function_file: PathBuf,
}

impl Job {
    fn new(function: serde_json::Value) -> Job {
        let tmp = tempfile::tempdir().unwrap();
        let buckets = tmp.path().join("buckets");
        std::fs::create_dir_all(buckets.join("bkt/input")).unwrap();
        std::fs::write(buckets.join("bkt/input/photo.txt"), "hello batch\n").unwrap();
        let function_file = tmp.path().join("function.json");
        std::fs::write(&function_file, function.to_string()).unwrap();
        Job {
            _tmp: tmp,
            buckets,
            function_file,
        }
    }

    fn with_script(script: &str, extra: serde_json::Value) -> Job {
        let mut function = json!({
            "name": "oneshot",
            "timeout_s": 30,
            "timeout_threshold_s": 2,
            "init_script": script,
            "outputs": [{"bucket": "bkt", "folder": "output"}],
        });
        if let (Some(f), Some(extra)) = (function.as_object_mut(), extra.as_object()) {
            f.extend(extra.clone());
        }
        Job::new(function)
    }

    /// Runs `bootstrap` with nothing in its environment but what Batch would give it.
    fn run(&self, event: &str, job_id: &str) -> Output {
        Command::new(env!("CARGO_BIN_EXE_bootstrap"))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("SCAR_FUNCTION_FILE", &self.function_file)
            .env("SCAR_STORAGE_DIR", &self.buckets)
            .env("SCAR_EVENT", event)
            .env("AWS_BATCH_JOB_ID", job_id)
            .output()
            .unwrap()
    }

    fn bucket_file(&self, key: &str) -> PathBuf {
        self.buckets.join("bkt").join(key)
    }
}

/// A request id of this test process's own: request directories go under the machine's
/// shared `/tmp`.
fn unique(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

fn s3_event(key: &str) -> String {
    json!({"Records": [{"eventTime": "2026-01-01T00:00:00.000Z",
        "s3": {"bucket": {"name": "bkt"}, "object": {"key": key}}}]})
    .to_string()
}

const UPPER: &str = r#"echo "running $REQUEST_ID on $STORAGE_OBJECT_KEY batch=$SCAR_BATCH_JOB"
tr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/photo.txt""#;

/// The last stdout line's response; every line before it is the script's output.
fn response(out: &Output) -> (Response, String) {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let last = stdout.lines().last().unwrap_or_default();
    let json = last
        .strip_prefix("SCAR_RESPONSE ")
        .unwrap_or_else(|| panic!("no SCAR_RESPONSE last line in:\n{stdout}"));
    (serde_json::from_str(json).unwrap(), stdout)
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn runs_the_event_once_and_uploads_its_outputs() {
    let job = Job::with_script(UPPER, json!({}));
    let id = unique("job-1");
    let out = job.run(&s3_event("input/photo.txt"), &id);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let (r, stdout) = response(&out);
    assert!(
        stdout.starts_with(&format!("running {id} on input/photo.txt batch=1\n")),
        "the script's output comes first, as it goes: {stdout}"
    );
    assert_eq!(r.request_id, id);
    assert_eq!(r.exit_code(), Some(0));
    assert!(!r.timed_out() && !r.handed_over());
    assert_eq!(r.uploaded, vec!["bkt/output/photo.txt".to_string()]);
    assert_eq!(
        std::fs::read_to_string(job.bucket_file("output/photo.txt")).unwrap(),
        "HELLO BATCH\n"
    );
    assert!(
        !Path::new("/tmp").join(&id).exists(),
        "the request directory is removed"
    );
}

#[test]
fn a_base64_event_works() {
    let job = Job::with_script(UPPER, json!({}));
    let encoded = base64::engine::general_purpose::STANDARD.encode(s3_event("input/photo.txt"));
    let out = job.run(&format!("base64:{encoded}"), &unique("job-base64"));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let (r, _) = response(&out);
    assert_eq!(r.request_id, unique("job-base64"));
    assert_eq!(r.uploaded, vec!["bkt/output/photo.txt".to_string()]);
    assert_eq!(
        std::fs::read_to_string(job.bucket_file("output/photo.txt")).unwrap(),
        "HELLO BATCH\n"
    );
}

#[test]
fn a_failing_script_exits_1_with_its_response() {
    let job = Job::with_script(
        "echo partial > \"$TMP_OUTPUT_DIR/p.txt\"; printf no-newline; exit 7",
        json!({}),
    );
    let out = job.run(&s3_event("input/photo.txt"), &unique("job-fail"));
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let (r, stdout) = response(&out);
    assert!(stdout.starts_with("no-newline\n"), "{stdout}");
    assert_eq!(r.exit_code(), Some(7));
    assert!(!r.succeeded());
    assert_eq!(
        r.uploaded,
        vec!["bkt/output/p.txt".to_string()],
        "outputs go up whatever happened"
    );
}

#[test]
fn an_invocation_that_cannot_start_exits_3() {
    let job = Job::with_script(UPPER, json!({}));
    // Runs the job, which must exit 3; its stdout and stderr.
    let exits_3 = |event: &str, id: &str| {
        let out = job.run(event, &unique(id));
        assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.stdout, stderr)
    };
    let (stdout, stderr) = exits_3("{\"Records\": [", "job-bad");
    assert!(
        stderr.starts_with("scar: SCAR_EVENT is not valid JSON"),
        "{stderr}"
    );
    assert!(stdout.is_empty(), "{}", String::from_utf8_lossy(&stdout));

    let (_, stderr) = exits_3("base64:%%%", "job-bad64");
    assert!(
        stderr.starts_with("scar: SCAR_EVENT is not valid base64"),
        "{stderr}"
    );

    let (_, stderr) = exits_3(&s3_event("input/missing.txt"), "job-missing");
    assert!(
        stderr.contains("cannot download the input object bkt/input/missing.txt"),
        "{stderr}"
    );
}

#[test]
fn a_lambda_batch_function_times_out_rather_than_handing_over_again() {
    let job = Job::with_script(
        "echo started; sleep 30",
        json!({"execution_mode": "lambda-batch", "timeout_s": 3, "timeout_threshold_s": 2}),
    );
    let function = std::fs::read_to_string(&job.function_file).unwrap();
    assert!(function.contains("\"lambda-batch\""), "{function}");
    let started = std::time::Instant::now();
    let out = job.run(&s3_event("input/photo.txt"), &unique("job-slow"));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "the threshold killed the script"
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let (r, stdout) = response(&out);
    assert!(r.timed_out(), "{stdout}");
    assert!(!r.handed_over(), "{stdout}");
    assert!(!stdout.contains("handed over"), "{stdout}");
    assert!(stdout.contains("killed after"), "{stdout}");
}

/// Started by hand (no Runtime API, no `SCAR_EVENT`), the supervisor says what it is and
/// exits 3, where the Lambda runtime crate would panic on the first variable it misses.
#[test]
fn bootstrap_started_by_hand_says_what_it_is_instead_of_panicking() {
    let run = |extra: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bootstrap"));
        cmd.env_clear().env("PATH", "/usr/bin:/bin");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let out = run(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("AWS_LAMBDA_RUNTIME_API is not set") && stderr.contains("--version"),
        "{stderr}"
    );
    // A memory size that is not a number is named too (the crate would panic on it).
    let out = run(&[
        ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9"),
        ("AWS_LAMBDA_FUNCTION_NAME", "f"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "lots"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        !stderr.contains("panicked") && stderr.contains("\"lots\", not a number of MB"),
        "{stderr}"
    );
}
