//! SCAR workflows on the local provider: functions chained through folders (a put into the
//! first folder runs every step; the launcher and serve follow the chain too), several
//! outputs with their own filters, loops stopped as AWS Lambda stops them, outputs to a
//! MinIO-style store (moto's server standing for MinIO), and a container variable named
//! `AWS_ACCESS_KEY_ID`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use scar_test_support::moto::Moto;

use crate::common::{folder_with, with_busybox_image, write_file};

/// Appends this step's number to the input and writes it under the input's name; with
/// `EXTRA` set, also a `.wav` beside it (one function, outputs for two folders).
const STEP_SCRIPT: &str = r#"name=$(basename "$INPUT_FILE_PATH")
printf '%s|%s' "$(cat "$INPUT_FILE_PATH")" "$STEP" > "$TMP_OUTPUT_DIR/$name"
if [ -n "$EXTRA" ]; then echo audio > "$TMP_OUTPUT_DIR/$name.wav"; fi
echo "step $STEP ran for $STORAGE_OBJECT_KEY"
"#;

/// Copies its input to its output unchanged.
const COPY_SCRIPT: &str = r#"cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"
echo "copied $STORAGE_OBJECT_KEY"
"#;

/// A three-step chain, SCAR's av-workflow's shape: `one` sends `.txt` to `two`'s folder
/// and `.wav` to another; `two` feeds `three`. A put into `flow/start` runs all three and
/// reports each file along the chain; the launcher and serve follow it the same way.
#[test]
fn a_put_runs_the_whole_chain() {
    let Some((scar, work, image)) = with_busybox_image() else {
        return;
    };
    std::fs::write(work.path().join("step.sh"), STEP_SCRIPT).unwrap();
    let fdl = write_file(
        work.path(),
        "chain.yaml",
        &format!(
            r#"functions:
  aws:
  - lambda:
      name: one
      init_script: step.sh
      container: {{image: {image}, environment: {{Variables: {{STEP: 1, EXTRA: yes}}}}}}
      input: [{{storage_provider: s3, path: flow/start}}]
      output:
      - {{storage_provider: s3, path: flow/two, suffix: [.txt]}}
      - {{storage_provider: s3, path: flow/audio, suffix: [.wav]}}
  - lambda:
      name: two
      init_script: step.sh
      container: {{image: {image}, environment: {{Variables: {{STEP: 2}}}}}}
      input: [{{storage_provider: s3, path: flow/two}}]
      output: [{{storage_provider: s3, path: flow/three}}]
  - lambda:
      name: three
      init_script: step.sh
      container: {{image: {image}, environment: {{Variables: {{STEP: 3}}}}}}
      input: [{{storage_provider: s3, path: flow/three}}]
      output: [{{storage_provider: s3, path: done-b/results}}]
"#
        ),
    );
    let r = scar.run(&["init", "-f", &fdl]);
    assert_eq!(r.status, 0, "{r:#?}");
    assert!(
        !r.stderr.contains("cycle"),
        "a chain is no cycle: {}",
        r.stderr
    );
    // A second function on a folder the chain uses is refused.
    let r = scar.run(&[
        "init",
        "-n",
        "intruder",
        "-i",
        &image,
        "-ib",
        "flow/two/sub",
        "-ob",
        "elsewhere",
    ]);
    r.assert_refused("flow/two/sub is already taken: flow/two triggers function \"two\"");

    let inputs = folder_with(
        work.path().join("inputs"),
        &[("x.txt", "x"), ("y.txt", "y")],
    );
    let r = scar.put_json("flow/start", &inputs);
    assert_eq!(r.status, 0, "{r:#?}");
    let put = r.json();
    assert_eq!(put["function"], "one");
    let results = put["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 6, "two files, three steps each: {put:#}");
    let mut along: Vec<String> = results
        .iter()
        .map(|r| {
            assert_eq!(r["outcome"], "succeeded", "{r}");
            format!(
                "{}:{}",
                r["function"].as_str().unwrap_or("one"),
                r["key"].as_str().unwrap()
            )
        })
        .collect();
    along.sort();
    assert_eq!(
        along,
        [
            "one:start/x.txt",
            "one:start/y.txt",
            "three:three/x.txt",
            "three:three/y.txt",
            "two:two/x.txt",
            "two:two/y.txt",
        ]
    );
    for name in ["x", "y"] {
        assert_eq!(
            std::fs::read_to_string(scar.bucket(&format!("done-b/results/{name}.txt"))).unwrap(),
            format!("{name}|1|2|3")
        );
        // The .wav went to its own folder, and only there.
        assert!(scar.bucket(&format!("flow/audio/{name}.txt.wav")).is_file());
        assert!(!scar.bucket(&format!("flow/two/{name}.txt.wav")).exists());
    }
    // The human form names each step.
    let again = folder_with(work.path().join("again"), &[("z.txt", "z")]);
    let r = scar.run(&["put", "-b", "flow/start", "-p", again.to_str().unwrap()]);
    assert_eq!(r.status, 0, "{r:#?}");
    assert!(r.stdout.contains("three: flow/three/z.txt"), "{}", r.stdout);
    assert!(
        r.stdout.contains("the chain ran three, two"),
        "{}",
        r.stdout
    );

    // The launcher over the first folder follows the chain too.
    let r = scar.run(&["run", "-n", "one", "-es", "flow", "--json"]);
    assert_eq!(r.status, 0, "{r:#?}");
    assert_eq!(r.json().as_array().unwrap().len(), 9, "{}", r.stdout);

    // So does serve, for a file another program drops into the first folder.
    let mut serve = scar.spawn(&["serve", "--json"], Stdio::null());
    let start = scar.bucket("flow/start");
    std::fs::write(start.join(".w.txt.tmp"), "w").unwrap();
    std::fs::rename(start.join(".w.txt.tmp"), start.join("w.txt")).unwrap();
    let done = scar.bucket("done-b/results/w.txt");
    let started = Instant::now();
    while !done.exists() && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(std::fs::read_to_string(&done).unwrap(), "w|1|2|3");
    // A put while serve runs the chain waits for serve's results along it.
    let late = folder_with(work.path().join("late"), &[("v.txt", "v")]);
    let r = scar.put_json("flow/start", &late);
    let _ = serve.kill();
    let _ = serve.wait();
    assert_eq!(r.status, 0, "{r:#?}");
    let mut steps: Vec<String> = r.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{}:{}", r["function"].as_str().unwrap_or("one"), r["key"]))
        .collect();
    steps.sort();
    assert_eq!(
        steps,
        [
            "one:\"start/v.txt\"",
            "three:\"three/v.txt\"",
            "two:\"two/v.txt\""
        ],
        "{}",
        r.stdout
    );
}

/// Two functions whose outputs feed each other: `init` warns of the cycle, and a put runs
/// the chain until AWS Lambda's recursive loop detection would stop it (16 invocations),
/// saying so in the result and the log.
#[test]
fn a_loop_is_stopped_after_lambdas_number_of_invocations() {
    let Some((scar, work, image)) = with_busybox_image() else {
        return;
    };
    std::fs::write(work.path().join("copy.sh"), COPY_SCRIPT).unwrap();
    let fdl = write_file(
        work.path(),
        "loop.yaml",
        &format!(
            r#"functions:
  aws:
  - lambda:
      name: ping
      init_script: copy.sh
      container: {{image: {image}}}
      input: [{{path: pingpong/a}}]
      output: [{{path: pingpong/b}}]
  - lambda:
      name: pong
      init_script: copy.sh
      container: {{image: {image}}}
      input: [{{path: pingpong/b}}]
      output: [{{path: pingpong/a/again}}]
"#
        ),
    );
    let r = scar.run(&["init", "-f", &fdl]);
    assert_eq!(r.status, 0, "{r:#?}");
    assert!(
        r.stderr
            .contains("the functions ping -> pong -> ping form a cycle through their folders"),
        "{}",
        r.stderr
    );
    let src = work.path().join("ball.txt");
    std::fs::write(&src, "ball").unwrap();
    let r = scar.put_json("pingpong/a", &src);
    assert_eq!(r.status, 1, "a stopped loop is a failure: {r:#?}");
    let results = r.json()["results"].as_array().unwrap().clone();
    let ran = results
        .iter()
        .filter(|r| r["outcome"] == "succeeded")
        .count();
    let stopped: Vec<_> = results
        .iter()
        .filter(|r| r["outcome"] == "loop_stopped")
        .collect();
    assert_eq!(ran, 16, "{results:#?}");
    assert_eq!(stopped.len(), 1, "{results:#?}");
    let why = stopped[0]["error"].as_str().unwrap();
    assert!(why.contains("invocation 17 of one chain"), "{why}");
    assert!(why.contains("after 16"), "{why}");
    // The 17th would have been ping's (odd invocations are ping's).
    assert_eq!(stopped[0]["function"], "ping", "{stopped:?}");
    assert_eq!(stopped[0]["key"], "a/again/ball.txt", "{stopped:?}");
    let log = scar.run(&["log", "-n", "ping"]).ok().stdout;
    assert!(log.contains("recursive loop"), "{log}");
}

const SECRET: &str = "minio-secret-never-printed";

/// Outputs to a MinIO-style store (a moto server with its own endpoint and keys) beside
/// a local folder; a container variable named `AWS_ACCESS_KEY_ID` reaches the script; the
/// store's keys never reach the log, `--json` or the listing.
#[test]
fn minio_outputs_and_a_container_aws_access_key() {
    let Some((scar, work, image)) = with_busybox_image() else {
        return;
    };
    let Some(store) = Moto::start() else {
        return;
    };
    let (status, _) = store.http("PUT", "/archive", &[], b"").unwrap();
    assert_eq!(status, 200);
    std::fs::write(
        work.path().join("cred.sh"),
        r#"name=$(basename "$INPUT_FILE_PATH")
echo "key=$AWS_ACCESS_KEY_ID" > "$TMP_OUTPUT_DIR/$name.key"
env | grep -c SCAR_STORAGE_PROVIDERS > "$TMP_OUTPUT_DIR/$name.env"
echo "ran with $AWS_ACCESS_KEY_ID"
"#,
    )
    .unwrap();
    let fdl = write_file(
        work.path(),
        "minio.yaml",
        &format!(
            r#"functions:
  aws:
  - lambda:
      name: archiver
      init_script: cred.sh
      container:
        image: {image}
        environment:
          Variables:
            AWS_ACCESS_KEY_ID: AKIACONTAINER
      input: [{{storage_provider: s3, path: cred-b/input}}]
      output:
      - {{storage_provider: s3, path: cred-b/output, suffix: [.env]}}
      - {{storage_provider: minio.store, path: archive/results, suffix: [.key]}}
storage_providers:
  minio:
    store:
      endpoint: {endpoint}
      verify: false
      access_key: minio-user
      secret_key: {SECRET}
"#,
            endpoint = store.endpoint()
        ),
    );
    let r = scar.run(&["init", "-f", &fdl, "--json"]);
    assert_eq!(r.status, 0, "{r:#?}");
    assert!(!r.stdout.contains(SECRET), "{}", r.stdout);
    let src = work.path().join("doc.txt");
    std::fs::write(&src, "doc").unwrap();
    let r = scar.put_json("cred-b/input", &src);
    assert_eq!(r.status, 0, "{r:#?}");
    let put = r.json();
    assert_eq!(
        put["results"][0]["uploaded"],
        serde_json::json!([
            "cred-b/output/doc.txt.env",
            "minio.store:archive/results/doc.txt.key"
        ]),
        "{put:#}"
    );
    // Read back through S3's API (scar's aws provider pointed at the store).
    let fetched = work.path().join("fetched");
    let mut get = scar.command();
    get.args([
        "get",
        "-b",
        "archive/results",
        "-p",
        fetched.to_str().unwrap(),
    ]);
    store.aws_cli(&mut get, work.path());
    let out = get.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(fetched.join("doc.txt.key")).unwrap(),
        "key=AKIACONTAINER\n"
    );
    assert_eq!(
        std::fs::read_to_string(scar.bucket("cred-b/output/doc.txt.env")).unwrap(),
        "0\n",
        "the providers' secrets are the supervisor's, not the script's"
    );
    for shown in [
        r.stdout,
        r.stderr,
        scar.run(&["ls", "--json"]).ok().stdout,
        scar.run(&["log", "-n", "archiver"]).ok().stdout,
    ] {
        assert!(!shown.contains(SECRET), "{shown}");
    }
    let listed = scar.run(&["ls", "--json"]).ok().json();
    assert_eq!(
        listed[0]["spec"]["storage_providers"]["minio.store"]["secret_key"],
        "(redacted)"
    );
}
