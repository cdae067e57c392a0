//! The supervisor run directly (no Runtime API): staging, what runs, variables, the
//! threshold. The Runtime API path is covered end to end by scar-cli's tests.

use std::time::{Duration, Instant, SystemTime};

use scar_core::event::FunctionFile;
use scar_core::ImageConfig;
use scar_runtime::{Invocation, Supervisor, SupervisorError};
use serde_json::json;

fn supervisor(tmp: &std::path::Path, function: FunctionFile) -> Supervisor {
    Supervisor {
        function,
        tmp_root: tmp.to_path_buf(),
        echo_output: false,
        storage: None,
        providers: Default::default(),
        container: None,
    }
}

fn output(path: &str) -> scar_core::OutputSpec {
    scar_core::OutputSpec::at(&scar_core::bucket::BucketPath::parse(path).unwrap())
}

fn invocation(id: &str, event: serde_json::Value, secs: u64) -> Invocation {
    Invocation {
        request_id: id.into(),
        deadline: SystemTime::now() + Duration::from_secs(secs),
        event,
    }
}

#[test]
fn script_sees_contract_variables_and_output_comes_back() {
    let tmp = tempfile::tempdir().unwrap();
    let mut function = FunctionFile {
        timeout_threshold_s: 1,
        ..FunctionFile::default()
    };
    function
        .environment
        .insert("FROM_FUNCTION".into(), "f".into());
    function.image.env = vec!["FROM_IMAGE=i".into(), "FROM_FUNCTION=overridden".into()];
    let sup = supervisor(tmp.path(), function);
    let script = r#"echo "id=$REQUEST_ID in=$TMP_INPUT_DIR out=$TMP_OUTPUT_DIR so=$SCAR_OUTPUT_DIR"
echo "img=$FROM_IMAGE fn=$FROM_FUNCTION inv=$FROM_INVOCATION"
test -d "$TMP_INPUT_DIR" && test -d "$TMP_OUTPUT_DIR" && echo dirs-ok
echo "$EVENT" | grep -q FROM_INVOCATION && echo event-ok
echo to-stderr >&2
exit 3"#;
    let event = json!({"script": script, "env": {"FROM_INVOCATION": "v"}});
    let r = sup.invoke(&invocation("req-1", event, 30)).unwrap();
    let out = r.output.clone();
    let dir = tmp.path().join("req-1");
    assert!(
        out.contains(&format!(
            "id=req-1 in={0}/input out={0}/output so={0}/output",
            dir.display()
        )),
        "{out}"
    );
    assert!(out.contains("img=i fn=f inv=v"), "{out}");
    assert!(out.contains("dirs-ok") && out.contains("event-ok"), "{out}");
    assert!(out.contains("to-stderr"), "{out}");
    assert_eq!(r.exit_code(), Some(3));
    assert!(!r.timed_out());
    assert!(!r.succeeded());
    assert!(!dir.exists(), "the request directory is removed afterwards");
}

#[test]
fn priority_script_then_args_then_init_then_image_command() {
    let tmp = tempfile::tempdir().unwrap();
    let function = FunctionFile {
        init_script: Some("echo from-init".into()),
        image: ImageConfig {
            entrypoint: vec!["/bin/echo".into()],
            cmd: vec!["from-cmd".into()],
            ..ImageConfig::default()
        },
        ..FunctionFile::default()
    };
    let sup = supervisor(tmp.path(), function.clone());
    let run = |e| sup.invoke(&invocation("r", e, 30)).unwrap().output;
    assert_eq!(run(json!({"script": "echo from-script"})), "from-script\n");
    // cmd_args replace CMD and keep ENTRYPOINT, as `docker run IMAGE ARGS` does.
    assert_eq!(run(json!({"cmd_args": ["a", "b c"]})), "a b c\n");
    // SCAR's base64 script form.
    assert_eq!(run(json!({"script": "ZWNobyBiNjQK"})), "b64\n");
    assert_eq!(run(json!({})), "from-init\n");
    let bare = supervisor(
        tmp.path(),
        FunctionFile {
            init_script: None,
            ..function
        },
    );
    let r = bare.invoke(&invocation("r", json!({}), 30)).unwrap();
    assert_eq!(r.output, "from-cmd\n");
    assert!(r.succeeded());
    let empty = supervisor(tmp.path(), FunctionFile::default());
    assert!(matches!(
        empty.invoke(&invocation("r", json!({}), 30)),
        Err(SupervisorError::NothingToRun)
    ));
}

#[test]
fn threshold_kills_the_whole_process_group() {
    let tmp = tempfile::tempdir().unwrap();
    let sup = supervisor(
        tmp.path(),
        FunctionFile {
            timeout_threshold_s: 1,
            ..FunctionFile::default()
        },
    );
    let marker = tmp.path().join("survivor");
    // A background child that would write a marker later: it must die with the group.
    let script = format!(
        "echo started\n(sleep 3; touch {}) &\nsleep 60\necho never",
        marker.display()
    );
    let started = Instant::now();
    let r = sup
        .invoke(&invocation("slow", json!({ "script": script }), 3))
        .unwrap();
    let took = started.elapsed();
    assert!(r.timed_out(), "{r:?}");
    assert_eq!(r.exit_code(), None);
    assert!(r.output.starts_with("started\n"), "{}", r.output);
    assert!(r.output.contains("killed"), "{}", r.output);
    assert!(took < Duration::from_secs(10), "took {took:?}");
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        !marker.exists(),
        "a background process outlived the timeout"
    );
}

#[test]
fn http_requests_and_unknown_events_are_input_files() {
    let tmp = tempfile::tempdir().unwrap();
    let buckets = tempfile::tempdir().unwrap();
    let mut sup = supervisor(tmp.path(), FunctionFile::default());
    sup.storage = Some(std::sync::Arc::new(scar_runtime::DirStorage::new(
        buckets.path(),
    )));
    sup.function.outputs = vec![output("bkt/output")];
    sup.function.init_script = Some(
        r#"echo "$(basename "$INPUT_FILE_PATH") $SCAR_INPUT_FILE size=${size:-none}${LD_PRELOAD}"
[ "$HOME" != /evil ] || echo "HOME taken over"
cat "$INPUT_FILE_PATH"
cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/copy""#
            .into(),
    );
    // SCAR's API Gateway event (faas-supervisor's example), its body SCAR's base64.
    let event = json!({
        "body": "cGljdHVyZSBieXRlcwo=", "httpMethod": "POST", "isBase64Encoded": false,
        "headers": {"Content-Type": "application/octet-stream"},
        "path": "/launch", "queryStringParameters": {"size": "10", "no-such name": "x",
            "PATH": "/nowhere", "LD_PRELOAD": "/tmp/evil.so", "HOME": "/evil"},
        "requestContext": {"stage": "scar", "path": "/scar/launch"}, "resource": "/{proxy+}"
    });
    let r = sup.invoke(&invocation("h", event, 30)).unwrap();
    let file = tmp.path().join("h/input/api_event_file");
    assert_eq!(
        r.output,
        format!("api_event_file {} size=10\npicture bytes\n", file.display())
    );
    assert!(r.succeeded());
    assert_eq!(r.uploaded, ["bkt/output/copy"]);
    assert_eq!(
        std::fs::read(buckets.path().join("bkt/output/copy")).unwrap(),
        b"picture bytes\n"
    );
    // Anything else that is not scar's payload: the event itself is the input file.
    let r = sup
        .invoke(&invocation(
            "u",
            json!({"detail-type": "Scheduled Event"}),
            30,
        ))
        .unwrap();
    let file = tmp.path().join("u/input/event_file");
    assert_eq!(
        r.output,
        format!(
            "event_file {} size=none\n{{\"detail-type\":\"Scheduled Event\"}}",
            file.display()
        )
    );
}

/// A picture POSTed whole (api_gateway.rst's homer.png is 465 KB, 620 KB as base64): with
/// the event in `EVENT` Linux would refuse to start the script (E2BIG, over 128 KiB for one
/// variable), so `EVENT` is left out and the body is only the input file.
#[test]
fn an_event_over_128_kib_runs_without_event() {
    use base64::Engine as _;
    let tmp = tempfile::tempdir().unwrap();
    let mut sup = supervisor(tmp.path(), FunctionFile::default());
    sup.function.init_script =
        Some(r#"echo "EVENT=${EVENT:-unset} $(wc -c < "$INPUT_FILE_PATH")""#.into());
    let body = vec![7u8; 300 * 1024];
    let event = json!({
        "body": base64::engine::general_purpose::STANDARD.encode(&body),
        "httpMethod": "POST", "isBase64Encoded": false,
        "headers": {"Content-Type": "application/octet-stream"},
        "path": "/launch", "requestContext": {"stage": "scar", "path": "/scar/launch"},
        "resource": "/{proxy+}"
    });
    let r = sup.invoke(&invocation("big", event, 30)).unwrap();
    assert!(r.succeeded(), "{r:?}");
    assert_eq!(r.output, format!("EVENT=unset {}\n", body.len()));
    // Under the limit, `EVENT` is there as before.
    let r = sup
        .invoke(&invocation("small", json!({"detail-type": "x"}), 30))
        .unwrap();
    assert!(
        r.output.starts_with(r#"EVENT={"detail-type":"x"} "#),
        "{}",
        r.output
    );
}

/// An HTTP answer's body is the script's output alone: a function without output location
/// that leaves a file in `$TMP_OUTPUT_DIR` and `cat`s it (api_gateway.rst's grey picture)
/// gets no note appended to the picture; any other event's output keeps the note.
#[test]
fn an_http_answer_gets_no_note_about_uploads() {
    let tmp = tempfile::tempdir().unwrap();
    let mut sup = supervisor(tmp.path(), FunctionFile::default());
    sup.function.init_script = Some(
        r#"cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/picture"; cat "$TMP_OUTPUT_DIR/picture""#.into(),
    );
    let event = json!({
        "body": "cGljdHVyZSBieXRlcwo=", "httpMethod": "POST", "isBase64Encoded": false,
        "headers": {"Content-Type": "application/octet-stream"},
        "path": "/launch", "requestContext": {"stage": "scar", "path": "/scar/launch"},
        "resource": "/{proxy+}"
    });
    let r = sup.invoke(&invocation("h", event, 30)).unwrap();
    assert_eq!(r.output, "picture bytes\n");
    let r = sup
        .invoke(&invocation("u", json!({"detail-type": "x"}), 30))
        .unwrap();
    assert!(
        r.output
            .ends_with("output files are not uploaded (add -ob, or an `output:` entry)\n"),
        "{}",
        r.output
    );
}

#[test]
fn storage_events_stage_the_input_and_upload_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let buckets = tempfile::tempdir().unwrap();
    let object = buckets.path().join("bkt/input/my file+1.txt");
    std::fs::create_dir_all(object.parent().unwrap()).unwrap();
    std::fs::write(&object, "payload\n").unwrap();
    let mut sup = supervisor(tmp.path(), FunctionFile::default());
    sup.storage = Some(std::sync::Arc::new(scar_runtime::DirStorage::new(
        buckets.path(),
    )));
    sup.function.outputs = vec![output("bkt/output")];
    sup.function.init_script = Some(
        r#"echo "$STORAGE_OBJECT_KEY|$EVENT_TIME|$INPUT_FILE_PATH|$SCAR_INPUT_FILE"
cat "$INPUT_FILE_PATH"
mkdir -p "$TMP_OUTPUT_DIR/sub"
cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/sub/copy of $(basename "$INPUT_FILE_PATH")"
echo done > "$TMP_OUTPUT_DIR/result.txt""#
            .into(),
    );
    let event = json!({"Records": [{"eventTime": "2026-01-01T00:00:00.000Z",
        "s3": {"bucket": {"name": "bkt"}, "object": {"key": "input/my+file%2B1.txt"}}}]});
    let r = sup.invoke(&invocation("s", event, 30)).unwrap();
    let input = tmp.path().join("s/input/my file+1.txt");
    assert_eq!(
        r.output,
        format!(
            "input/my file+1.txt|2026-01-01T00:00:00.000Z|{0}|{0}\npayload\n",
            input.display()
        )
    );
    assert_eq!(
        r.uploaded,
        [
            "bkt/output/result.txt",
            "bkt/output/sub/copy of my file+1.txt"
        ]
    );
    let out = buckets.path().join("bkt/output");
    assert_eq!(
        std::fs::read_to_string(out.join("result.txt")).unwrap(),
        "done\n"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("sub/copy of my file+1.txt")).unwrap(),
        "payload\n"
    );

    // A timed-out run still uploads what it wrote.
    sup.function.timeout_threshold_s = 1;
    sup.function.init_script =
        Some("echo partial > \"$TMP_OUTPUT_DIR/partial.txt\"\nsleep 30".into());
    let event = json!({"Records": [{"s3": {"bucket": {"name": "bkt"}, "object": {"key": "input/my+file%2B1.txt"}}}]});
    let r = sup.invoke(&invocation("t", event, 2)).unwrap();
    assert!(r.timed_out());
    assert_eq!(r.uploaded, ["bkt/output/partial.txt"]);
    assert!(out.join("partial.txt").exists());

    // FDL output locations: other buckets and folders, each with the files its filters
    // accept (SCAR's av-workflow: `.avi` to one folder, `.wav` to another).
    sup.function.outputs = vec![
        scar_core::OutputSpec {
            prefix: vec!["img-".into()],
            suffix: vec![".png".into()],
            ..output("results/gray/run1")
        },
        scar_core::OutputSpec {
            suffix: vec!["wav".into()],
            ..output("results/audio")
        },
    ];
    sup.function.init_script = Some(
        "cd \"$TMP_OUTPUT_DIR\" && mkdir d && touch img-1.png d/img-2.png img-3.txt log.png a.wav"
            .into(),
    );
    let event = json!({"Records": [{"s3": {"bucket": {"name": "bkt"}, "object": {"key": "input/my+file%2B1.txt"}}}]});
    let r = sup.invoke(&invocation("o", event, 30)).unwrap();
    assert_eq!(
        r.uploaded,
        [
            "results/gray/run1/d/img-2.png",
            "results/gray/run1/img-1.png",
            "results/audio/a.wav"
        ]
    );
    assert!(buckets
        .path()
        .join("results/gray/run1/d/img-2.png")
        .is_file());
    assert!(!buckets.path().join("results/gray/run1/img-3.txt").exists());
    assert!(!buckets.path().join("results/audio/img-1.png").exists());

    // No output location (SCAR 4's rule for an input and no output): nothing goes up, and
    // the log says so.
    sup.function.outputs.clear();
    let event = json!({"Records": [{"s3": {"bucket": {"name": "bkt"}, "object": {"key": "input/my+file%2B1.txt"}}}]});
    let r = sup.invoke(&invocation("none", event, 30)).unwrap();
    assert!(r.uploaded.is_empty(), "{r:?}");
    assert!(
        r.output.contains("output files are not uploaded"),
        "{}",
        r.output
    );
    sup.function.outputs = vec![output("bkt/output")];

    // A missing object is an error, not a run without input.
    let event =
        json!({"Records": [{"s3": {"bucket": {"name": "bkt"}, "object": {"key": "input/nope"}}}]});
    assert!(matches!(
        sup.invoke(&invocation("u", event, 30)),
        Err(SupervisorError::Download { .. })
    ));
}

#[test]
fn missing_program_is_a_failed_invocation_not_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let sup = supervisor(tmp.path(), FunctionFile::default());
    let r = sup
        .invoke(&invocation(
            "m",
            json!({"cmd_args": ["/no/such/program"]}),
            30,
        ))
        .unwrap();
    assert_eq!(r.exit_code(), Some(127));
    assert!(r.output.contains("/no/such/program"), "{}", r.output);
}

/// An output folder inside `input/`: on AWS the bucket's notification fires for each output
/// too, and a supervisor that ran the function for it would start a loop.
#[test]
fn own_outputs_inside_input_never_run_the_function() {
    let tmp = tempfile::tempdir().unwrap();
    let buckets = tempfile::tempdir().unwrap();
    let input = buckets.path().join("bkt/input");
    std::fs::create_dir_all(input.join("results")).unwrap();
    std::fs::write(input.join("photo.txt"), "a photo\n").unwrap();
    std::fs::write(input.join("results/earlier.txt"), "an output\n").unwrap();
    let mut sup = supervisor(tmp.path(), FunctionFile::default());
    sup.storage = Some(std::sync::Arc::new(scar_runtime::DirStorage::new(
        buckets.path(),
    )));
    sup.function.outputs = vec![output("bkt/input/results")];
    sup.function.init_script = Some(
        r#"echo "ran for $STORAGE_OBJECT_KEY"
cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH")""#
            .into(),
    );
    // The run for an S3 event with a record for each of `keys`.
    let run_for = |id: &str, keys: &[&str]| {
        let records: Vec<_> = keys
            .iter()
            .map(|key| json!({"s3": {"bucket": {"name": "bkt"}, "object": {"key": key}}}))
            .collect();
        sup.invoke(&invocation(id, json!({ "Records": records }), 30))
            .unwrap()
    };

    // An input runs, and its output lands inside input/results.
    let r = run_for("in", &["input/photo.txt"]);
    assert_eq!(r.output, "ran for input/photo.txt\n");
    assert_eq!(r.uploaded, ["bkt/input/results/photo.txt"]);

    // The event that output raises runs nothing, succeeds, and says why.
    let r = run_for("own", &["input/results/photo.txt"]);
    assert!(r.succeeded(), "{r:?}");
    assert!(r.uploaded.is_empty(), "{r:?}");
    assert!(
        r.output
            .contains("not run: bkt/input/results/photo.txt is this function's own output"),
        "{}",
        r.output
    );
    assert!(!r.output.contains("ran for"), "{}", r.output);

    // Mixed records: only the real input runs.
    let r = run_for("mixed", &["input/results/earlier.txt", "input/photo.txt"]);
    assert_eq!(r.output, "ran for input/photo.txt\n");
    assert_eq!(
        std::fs::read_dir(input.join("results")).unwrap().count(),
        2,
        "nothing nested under results/"
    );
}
