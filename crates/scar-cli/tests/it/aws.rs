//! `scar --provider aws` end to end: the real binary against moto (Lambda, S3, CloudWatch
//! Logs, ECR, IAM on loopback), with image packages pushed to a local docker-registry
//! through `SCAR_ECR_REGISTRY`.
//!
//! moto's Lambda runs nothing here (no Docker): a direct invocation echoes its payload back,
//! unless a canned result was queued (`Moto::queue_invoke_results`), which is how scar
//! responses are fed to `scar run`.

use std::path::PathBuf;
use std::process::Command;

use images::{build_busybox_image, require_tools, TestRegistry};
use moto::{scar_response, Moto};
use scar_test_support::images;
use scar_test_support::moto;
use scar_test_support::scar as support;
use support::{init_args, Run, Scar};

use crate::common::{folder_with, write_file};

/// Tools for the image fixtures, and the proot zip packages carry.
const IMAGE_TOOLS: &[&str] = &["umoci", "skopeo", "busybox", "proot"];

/// A scar home, moto, and a busybox image archive.
struct Env {
    scar: Scar,
    moto: Moto,
    work: tempfile::TempDir,
    /// Extra environment for every command (`SCAR_ECR_REGISTRY`).
    env: Vec<(String, String)>,
}

impl Env {
    /// Everything, or `None` (after a loud SKIPPED) when a tool is missing outside CI.
    fn start(tools: &[&str]) -> Option<Env> {
        Env::start_with(tools, &[])
    }

    /// [`Env::start`] with `vars` in moto's environment.
    fn start_with(tools: &[&str], vars: &[(&str, &str)]) -> Option<Env> {
        if !require_tools(tools) {
            return None;
        }
        let scar = Scar::new(env!("CARGO_BIN_EXE_scar"))?;
        let moto = Moto::start_with(vars)?;
        Some(Env {
            scar,
            moto,
            work: tempfile::tempdir().unwrap(),
            env: Vec::new(),
        })
    }

    /// `scar --provider aws --endpoint-url MOTO ARGS`, with static test credentials in the
    /// environment (the standard chain reads them).
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.scar.command();
        self.moto.aws_cli(&mut cmd, self.work.path());
        cmd.args(args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        Run::of(&mut self.command(args))
    }

    /// The test busybox image as a docker archive.
    fn image_archive(&self) -> PathBuf {
        let archive = self.work.path().join("image.tar");
        if !archive.exists() {
            build_busybox_image(self.work.path()).docker_archive(&archive);
        }
        archive
    }

    /// Writes the definition file `name` of `yaml` with `{archive}` and `{role}` set to the
    /// test image's archive and moto's role; returns its path.
    fn fdl(&self, name: &str, yaml: &str) -> String {
        let yaml = yaml
            .replace("{archive}", &self.image_archive().display().to_string())
            .replace("{role}", &self.moto.role_arn());
        write_file(self.work.path(), name, &yaml)
    }

    /// `scar init -n NAME -if ARCHIVE -r ROLE EXTRA... --json`, which must succeed.
    fn init(&self, name: &str, extra: &[&str]) -> serde_json::Value {
        let archive = self.image_archive();
        let role = self.moto.role_arn();
        let extra = [&["-r", &role, "--json"], extra].concat();
        self.run(&init_args(name, &archive, &extra)).ok().json()
    }
}

/// A scar response JSON for a script that exited with `code`.
fn response_with_exit(request_id: &str, output: &str, code: i32) -> String {
    serde_json::to_string(&scar_core::event::Response {
        output: output.into(),
        log_group: "/aws/lambda/fn".into(),
        log_stream: "2024/01/01/[$LATEST]abc".into(),
        ..scar_core::event::Response::new(request_id, scar_core::event::Ending::Exited(code))
    })
    .unwrap()
}

#[test]
fn zip_function_init_ls_run_and_rm() {
    let Some(env) = Env::start(IMAGE_TOOLS) else {
        return;
    };
    // Without a proot the zip could not enter its image's root on Lambda: refused first.
    let archive = env.image_archive();
    let role = env.moto.role_arn();
    let refused = env
        .command(&[
            "init",
            "-n",
            "zipfn",
            "-if",
            archive.to_str().unwrap(),
            "-r",
            &role,
            "--package",
            "zip",
        ])
        .env_remove("SCAR_PROOT")
        .env("HOME", env.work.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--proot PATH"), "{stderr}");
    assert_eq!(
        env.run(&["ls", "--json"]).ok().json(),
        serde_json::json!([])
    );

    // Debian's proot is dynamic: accepted, with a warning (a static one is for Lambda).
    // A small zip is uploaded directly: `-db` has no use, which is said, as locally.
    let proot = images::which("proot").unwrap();
    let init = env
        .run(&init_args(
            "zipfn",
            &archive,
            &[
                "-r",
                &role,
                "--json",
                "--package",
                "zip",
                "--proot",
                proot.to_str().unwrap(),
                "-e",
                "GREETING=hi",
                "-m",
                "256",
                "-db",
                "unused-deploy",
            ],
        ))
        .ok();
    assert!(
        init.stderr
            .contains("-db unused-deploy: not used, as on AWS"),
        "{init:#?}"
    );
    let info = init.json();
    assert_eq!(info["spec"]["name"], "zipfn");
    assert_eq!(info["provider"], "aws");
    assert_eq!(info["package"], "zip");
    assert_eq!(info["spec"]["memory_mb"], 256);
    assert_eq!(info["spec"]["environment"]["GREETING"], "hi");

    let listed = env.run(&["ls", "--json"]).ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["spec"]["name"], "zipfn");
    assert_eq!(listed[0]["package"], "zip");
    // The supervisor it was made with, as on the local provider; not a user variable.
    let supervisor = scar_test_support::scar::supervisor().unwrap();
    let carried = scar_core::supervisor_version_in(&std::fs::read(supervisor).unwrap());
    assert!(carried.is_some(), "the test supervisor carries its version");
    assert_eq!(
        listed[0]["supervisor_version"],
        serde_json::json!(carried),
        "{listed}"
    );
    assert_eq!(
        info["supervisor_version"],
        serde_json::json!(carried),
        "{info}"
    );
    assert!(
        listed[0]["spec"]["lambda_environment"]
            .get("SCAR_SUPERVISOR_VERSION")
            .is_none(),
        "{listed}"
    );
    let table = env.run(&["ls"]).ok().stdout;
    assert!(
        table.starts_with("NAME") && table.contains("zipfn") && table.contains("256 MB"),
        "{table}"
    );

    // A second init of the same name is refused before any work.
    let again = env.run(&[
        "init",
        "-n",
        "zipfn",
        "-i",
        "busybox",
        "-r",
        &env.moto.role_arn(),
    ]);
    again.assert_refused("already exists");

    // moto echoes the payload: not a scar response, said clearly, exit 3.
    let echoed = env.run(&["run", "-n", "zipfn", "echo", "hi"]);
    assert_eq!(echoed.status, 3, "{echoed:#?}");
    assert!(
        echoed.stderr.contains("not a scar response"),
        "{}",
        echoed.stderr
    );

    // A canned scar response: its output printed, exit 0; -v adds the request id.
    env.moto
        .queue_invoke_results(&[scar_response("req-ok", "hello from lambda\n")]);
    let ok = env.run(&["run", "-n", "zipfn", "-v"]).ok();
    assert_eq!(ok.stdout, "hello from lambda\n");
    assert!(ok.stderr.contains("request id: req-ok"), "{}", ok.stderr);

    // A script that failed: its output, the status on stderr, exit 1.
    env.moto
        .queue_invoke_results(&[response_with_exit("req-bad", "oops\n", 7)]);
    let bad = env.run(&["run", "-n", "zipfn"]);
    assert_eq!(bad.status, 1, "{bad:#?}");
    assert_eq!(bad.stdout, "oops\n");
    assert!(
        bad.stderr.contains("exited with status 7") && bad.stderr.contains("req-bad"),
        "{}",
        bad.stderr
    );

    // --json prints the whole response (and keeps the exit status).
    env.moto
        .queue_invoke_results(&[response_with_exit("req-json", "j\n", 0)]);
    let json = env.run(&["run", "-n", "zipfn", "--json"]).ok().json();
    assert_eq!(json["request_id"], "req-json");
    assert_eq!(json["exit_code"], 0);
    assert_eq!(json["output"], "j\n");

    // --async: queued, its request id printed.
    let queued = env
        .run(&["run", "-n", "zipfn", "--async", "--json"])
        .ok()
        .json();
    assert_eq!(queued["function"], "zipfn");
    assert!(queued["request_id"].is_string(), "{queued}");

    let removed = env.run(&["rm", "-n", "zipfn", "--json"]).ok().json();
    assert_eq!(removed["removed"][0], "zipfn");
    let listed = env.run(&["ls", "--json"]).ok().json();
    assert_eq!(listed, serde_json::json!([]));
}

#[test]
fn image_package_is_pushed_to_the_registry() {
    let Some(mut env) = Env::start(&["umoci", "skopeo", "busybox", "docker-registry"]) else {
        return;
    };
    let registry = TestRegistry::start();
    env.env
        .push(("SCAR_ECR_REGISTRY".into(), registry.addr.clone()));
    let info = env.init("ImgFn", &[]);
    assert_eq!(info["package"], "image");
    assert_eq!(info["spec"]["name"], "ImgFn");
    // Pinned by digest.
    assert!(
        info["image_digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"),
        "{info}"
    );

    // The package is the user's image plus the supervisor as entrypoint.
    let reference = format!("docker://{}/scar-imgfn:latest", registry.addr);
    let out = Command::new("skopeo")
        .args(["inspect", "--config", "--tls-verify=false", &reference])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/opt/scar/bootstrap"]),
        "{config}"
    );
    assert!(
        config["config"]["Env"]
            .as_array()
            .unwrap()
            .contains(&"GREETING=hello".into()),
        "{config}"
    );

    let listed = env.run(&["ls", "--json"]).ok().json();
    assert_eq!(listed[0]["package"], "image");
    env.run(&["rm", "-a"]).ok();
    assert_eq!(
        env.run(&["ls", "--json"]).ok().json(),
        serde_json::json!([])
    );
}

#[test]
fn logs_buckets_and_the_launcher() {
    let Some(env) = Env::start(IMAGE_TOOLS) else {
        return;
    };
    let info = env.init("bucketfn", &["--package", "zip", "-es", "scar-data"]);
    assert_eq!(
        info["spec"]["inputs"],
        serde_json::json!([{"bucket": "scar-data", "folder": "input"}])
    );
    assert_eq!(
        info["spec"]["outputs"],
        serde_json::json!([{"bucket": "scar-data", "folder": "output"}])
    );

    // Logs: one invocation's slice out of its stream.
    let stream = "2024/01/01/[$LATEST]abc";
    env.moto.logs_api(
        "CreateLogStream",
        serde_json::json!({"logGroupName": "/aws/lambda/bucketfn", "logStreamName": stream}),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 5_000;
    let lines = [
        "START RequestId: r-1 Version: $LATEST",
        "first run",
        "END RequestId: r-1",
        "REPORT RequestId: r-1\tDuration: 1.00 ms",
        "START RequestId: r-2 Version: $LATEST",
        "second run",
        "END RequestId: r-2",
        "REPORT RequestId: r-2\tDuration: 1.00 ms",
    ];
    let events: Vec<_> = lines
        .iter()
        .enumerate()
        .map(|(i, m)| serde_json::json!({"timestamp": now + i as i64, "message": m}))
        .collect();
    env.moto.logs_api(
        "PutLogEvents",
        serde_json::json!({"logGroupName": "/aws/lambda/bucketfn", "logStreamName": stream, "logEvents": events}),
    );
    let all = env.run(&["log", "-n", "bucketfn"]).ok().stdout;
    assert_eq!(all.lines().count(), 8, "{all}");
    let one = env
        .run(&["log", "-n", "bucketfn", "-ri", "r-2"])
        .ok()
        .stdout;
    assert_eq!(
        one.lines().collect::<Vec<_>>(),
        &lines[4..],
        "only r-2's lines: {one}"
    );
    let json = env
        .run(&["log", "-n", "bucketfn", "-ri", "r-1", "--json"])
        .ok();
    let first: serde_json::Value =
        serde_json::from_str(json.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(first["stream"], stream);
    // An id with no lines is an error that says so, as on the local provider.
    let none = env.run(&["log", "-n", "bucketfn", "-ri", "no-such-request"]);
    assert_eq!(none.status, 2, "{none:?}");
    assert!(
        none.stderr
            .contains("no log lines for request no-such-request")
            && none.stderr.contains("may not have run yet"),
        "{none:?}"
    );

    // --follow prints the last minute's lines, then polls until Ctrl-C (exit 0).
    let child = env
        .command(&["log", "-n", "bucketfn", "--follow"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let followed = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&followed.stdout);
    assert_eq!(
        followed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&followed.stderr)
    );
    assert_eq!(text.lines().collect::<Vec<_>>(), lines, "{text}");

    // put / ls -b / get round trip.
    let data = env.work.path().join("hello.txt");
    std::fs::write(&data, "hello bucket\n").unwrap();
    let put = env
        .run(&[
            "put",
            "-b",
            "scar-data/data",
            "-p",
            data.to_str().unwrap(),
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(put["stored"][0]["key"], "data/hello.txt", "{put}");
    assert_eq!(put["function"], serde_json::Value::Null, "{put}");
    let objects = env
        .run(&["ls", "-b", "scar-data/data", "--json"])
        .ok()
        .json();
    assert_eq!(objects.as_array().unwrap().len(), 1, "{objects}");
    assert_eq!(objects[0]["key"], "data/hello.txt");
    assert_eq!(objects[0]["size"], 13);
    let dest = env.work.path().join("got");
    env.run(&["get", "-b", "scar-data/data", "-p", dest.to_str().unwrap()])
        .ok();
    assert_eq!(
        std::fs::read_to_string(dest.join("hello.txt")).unwrap(),
        "hello bucket\n"
    );

    // The launcher over a directory put into input/: the first synchronous (answered with
    // a canned scar response), the others queued.
    let inputs = folder_with(
        env.work.path().join("inputs"),
        &[("a.txt", "a"), ("b.txt", "b"), ("sub/c d.txt", "c")],
    );
    let stored = env
        .run(&[
            "put",
            "-b",
            "scar-data/input",
            "-p",
            inputs.to_str().unwrap(),
        ])
        .ok()
        .stdout;
    // S3's notification runs the bound function for each: put reports them queued.
    assert!(
        stored.contains("3 files:") && stored.contains("3 queued"),
        "{stored}"
    );
    let table = env.run(&["ls", "-b", "scar-data/input"]).ok().stdout;
    assert!(table.contains("input/sub/c d.txt"), "{table}");

    env.moto
        .queue_invoke_results(&[scar_response("warm-1", "warmed\n")]);
    let launched = env
        .run(&["run", "-n", "bucketfn", "-es", "scar-data", "--json"])
        .ok()
        .json();
    let results = launched.as_array().unwrap();
    assert_eq!(results.len(), 3, "{launched}");
    let mut keys: Vec<&str> = results.iter().map(|r| r["key"].as_str().unwrap()).collect();
    keys.sort();
    assert_eq!(keys, ["input/a.txt", "input/b.txt", "input/sub/c d.txt"]);
    let outcomes: Vec<&str> = results
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    // The first ran at once (it warms the function); the same schema as the local launcher.
    assert_eq!(outcomes.iter().filter(|o| **o == "succeeded").count(), 1);
    assert_eq!(outcomes.iter().filter(|o| **o == "queued").count(), 2);

    // The human summary; a bucket that is not the function's is refused.
    env.moto
        .queue_invoke_results(&[scar_response("warm-2", "warmed\n")]);
    let summary = env.run(&["run", "-n", "bucketfn", "-es", "scar-data"]).ok();
    assert!(
        summary
            .stdout
            .contains("3 files: 1 succeeded, 0 failed, 0 timed out, 2 queued"),
        "{}",
        summary.stdout
    );
    let wrong = env.run(&["run", "-n", "bucketfn", "-es", "other-bucket"]);
    assert_eq!(wrong.status, 2, "{wrong:#?}");

    // rm removes the function; the bucket and its objects stay.
    env.run(&["rm", "-n", "bucketfn"]).ok();
    assert_eq!(
        env.run(&["ls", "--json"]).ok().json(),
        serde_json::json!([])
    );
    let objects = env.run(&["ls", "-b", "scar-data", "--json"]).ok().json();
    assert_eq!(objects.as_array().unwrap().len(), 4, "{objects}");
}

/// `scar stats` on AWS: invocations and duration percentiles from the REPORT lines of the
/// function's log group (the last day's), and the objects S3 lists in its input and output
/// folders; the counts AWS does not keep are null, `-` in the table.
#[test]
fn stats_on_aws_read_report_lines_and_s3_listings() {
    let Some(env) = Env::start(IMAGE_TOOLS) else {
        return;
    };
    env.init("statsfn", &["--package", "zip", "-es", "stats-data"]);
    env.init("quietfn", &["--package", "zip", "-es", "quiet-data"]);

    // Objects: two inputs (S3's notification cannot run them on moto: they stay queued)
    // and one output.
    let inputs = folder_with(
        env.work.path().join("inputs"),
        &[("a.txt", "a"), ("sub/b.txt", "b")],
    );
    env.run(&[
        "put",
        "-b",
        "stats-data/input",
        "-p",
        inputs.to_str().unwrap(),
    ])
    .ok();
    let out = env.work.path().join("result.txt");
    std::fs::write(&out, "done\n").unwrap();
    env.run(&[
        "put",
        "-b",
        "stats-data/output",
        "-p",
        out.to_str().unwrap(),
    ])
    .ok();

    // moto's S3 notification tried to run statsfn in Docker for each input and logged
    // that it could not, with fractional timestamps that no SDK reads (a moto quirk, not
    // Lambda's): those streams go before the test writes its own.
    let group = "/aws/lambda/statsfn";
    let streams = env.moto.logs_api(
        "DescribeLogStreams",
        serde_json::json!({"logGroupName": group}),
    );
    for stream in streams["logStreams"].as_array().unwrap() {
        env.moto.logs_api(
            "DeleteLogStream",
            serde_json::json!({"logGroupName": group, "logStreamName": stream["logStreamName"]}),
        );
    }
    // quietfn's log group is gone (expired, or removed by hand): no REPORT lines at all.
    env.moto.logs_api(
        "DeleteLogGroup",
        serde_json::json!({"logGroupName": "/aws/lambda/quietfn"}),
    );

    // moto's Lambda runs nothing here (no Docker) and writes no log lines: the test writes
    // the lines Lambda would have written, with CloudWatch Logs' own PutLogEvents.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let report = |id: &str, ms: &str| {
        format!("REPORT RequestId: {id}\tDuration: {ms} ms\tBilled Duration: 40 ms\tMemory Size: 512 MB\tMax Memory Used: 20 MB\t")
    };
    let streams: [(&str, Vec<(i64, String)>); 2] = [
        (
            "2026/12/05/[$LATEST]old",
            // Two days old: outside the day `stats` reads.
            vec![(now - 48 * 3600 * 1000, report("r-old", "999.00"))],
        ),
        (
            "2026/12/07/[$LATEST]new",
            vec![
                (now - 9_000, "START RequestId: r-1 Version: $LATEST".into()),
                // Script output that mentions a REPORT line is not one.
                (
                    now - 8_900,
                    "said REPORT RequestId: r-x\tDuration: 5000.00 ms".into(),
                ),
                (now - 8_800, report("r-1", "12.50")),
                (now - 8_000, report("r-2", "30.00")),
                (now - 7_000, report("r-3", "20.25")),
                (now - 6_000, "START RequestId: r-4 Version: $LATEST".into()),
            ],
        ),
    ];
    for (stream, lines) in &streams {
        env.moto.logs_api(
            "CreateLogStream",
            serde_json::json!({"logGroupName": group, "logStreamName": stream}),
        );
        let events: Vec<_> = lines
            .iter()
            .map(|(t, m)| serde_json::json!({"timestamp": t, "message": m}))
            .collect();
        env.moto.logs_api(
            "PutLogEvents",
            serde_json::json!({"logGroupName": group, "logStreamName": stream, "logEvents": events}),
        );
    }
    // What `scar log` shows and `scar ls -b` lists, the day's REPORT lines only.
    let log = env.run(&["log", "-n", "statsfn"]).ok().stdout;
    let mut durations: Vec<f64> = log
        .lines()
        .filter(|l| l.starts_with("REPORT RequestId: ") && !l.contains("r-old"))
        .map(|l| {
            let ms = l.split("Duration: ").nth(1).unwrap().split(' ').next();
            ms.unwrap().parse().unwrap()
        })
        .collect();
    durations.sort_by(f64::total_cmp);
    assert_eq!(durations, [12.5, 20.25, 30.0], "{log}");
    assert!(log.contains("r-old"), "scar log shows every line: {log}");
    let listed = |at: &str| {
        let objects = env.run(&["ls", "-b", at, "--json"]).ok().json();
        objects.as_array().unwrap().len()
    };
    let (n_inputs, n_outputs) = (listed("stats-data/input"), listed("stats-data/output"));
    assert_eq!((n_inputs, n_outputs), (2, 1));

    let stats = env.run(&["stats", "--json"]).ok().json();
    let of = |name: &str| {
        stats
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["function"] == name)
            .unwrap_or_else(|| panic!("no stats of {name}: {stats:#}"))
            .clone()
    };
    let s = of("statsfn");
    assert_eq!(s["invocations"], durations.len(), "{s:#}");
    assert_eq!(s["p50_ms"], 20.25, "{s:#}");
    assert_eq!(s["p95_ms"], 30.0, "{s:#}");
    assert_eq!(s["max_ms"], 30.0, "{s:#}");
    assert_eq!(s["counts"]["inputs"], n_inputs, "{s:#}");
    assert_eq!(s["counts"]["outputs"], n_outputs, "{s:#}");
    for unknown in [
        "waiting",
        "running",
        "done",
        "failed",
        "timed_out",
        "loop_stopped",
    ] {
        assert!(
            s["counts"][unknown].is_null(),
            "{unknown} is not kept on AWS: {s:#}"
        );
    }
    // A function without a log group: no invocations, not an error.
    let q = of("quietfn");
    assert_eq!(q["invocations"], 0, "{q:#}");
    assert_eq!(q["p50_ms"], serde_json::Value::Null, "{q:#}");
    assert_eq!(q["counts"]["inputs"], 0, "{q:#}");

    // The table: one function, `-` where AWS keeps no count.
    let table = env.run(&["stats", "-n", "statsfn"]).ok().stdout;
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(lines.next(), None, "{table}");
    let cell = |name: &str| row[header.iter().position(|h| *h == name).unwrap()];
    assert_eq!(cell("FUNCTION"), "statsfn", "{table}");
    for unknown in [
        "WAITING",
        "RUNNING",
        "DONE",
        "FAILED",
        "TIMED_OUT",
        "LOOP_STOPPED",
    ] {
        assert_eq!(cell(unknown), "-", "{table}");
    }
    assert_eq!((cell("INPUTS"), cell("OUTPUTS")), ("2", "1"), "{table}");
    assert_eq!(
        (cell("INVOCATIONS"), cell("P95_MS")),
        ("3", "30.0"),
        "{table}"
    );
    // A function that does not exist: as on the local provider.
    let missing = env.run(&["stats", "-n", "nope"]);
    assert_eq!(missing.status, 2, "{missing:?}");
    assert!(
        missing.stderr.contains("function \"nope\" not found"),
        "{missing:?}"
    );
}

#[test]
fn usage_errors_say_what_to_do() {
    let Some(env) = Env::start(&[]) else { return };
    // No role: exit 2 with the hint, before any image is pulled.
    let no_role = env.run(&["init", "-n", "norole", "-i", "busybox"]);
    assert_eq!(no_role.status, 2, "{no_role:#?}");
    assert!(
        no_role.stderr.contains("-r/--iam-role") && no_role.stderr.contains("aws.iam.role"),
        "{}",
        no_role.stderr
    );
    assert!(!env.scar.home.path().join("cache").exists());

    // A bad spec is refused before anything else.
    let bad = env.run(&["init", "-n", "bad name", "-i", "busybox"]);
    assert_eq!(bad.status, 2, "{bad:#?}");

    // No network at all has no Lambda equivalent: refused, naming what does it there.
    let role = env.moto.role_arn();
    let offline = env.run(&[
        "init",
        "-n",
        "offline",
        "-i",
        "busybox",
        "-r",
        &role,
        "--network",
        "none",
    ]);
    offline.assert_refused("a VPC without a NAT gateway");
    assert!(!env.scar.home.path().join("cache").exists());

    // Lambda decides when a sandbox is reused: `run --fresh` cannot be honoured there.
    let fresh = env.run(&["run", "-n", "any", "--fresh"]);
    fresh.assert_refused("Lambda itself decides");

    // serve and package are not AWS commands.
    let serve = env.run(&["serve"]);
    serve.assert_refused("local provider");
    let package = env.run(&["package", "-n", "f", "-o", "/tmp/x.tar"]);
    package.assert_refused("without --provider aws");

    // The provider also comes from the environment.
    let mut cmd = env.command(&["ls", "--json"]);
    let out = cmd.output().unwrap();
    assert!(out.status.success());
    let mut cmd = env.scar.command();
    let out = cmd
        .args([
            "--endpoint-url",
            &env.moto.endpoint(),
            "rm",
            "-n",
            "nosuchfn",
        ])
        .env("SCAR_PROVIDER", "aws")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not found"), "{stderr}");
}

/// Two users on one account: `ls` and `rm -a` take the caller's functions and count the
/// others; `rm -n` of another's is refused; `--all-owners` takes every owner's.
#[test]
fn ls_and_rm_take_only_the_callers_functions() {
    let Some(env) = Env::start(IMAGE_TOOLS) else {
        return;
    };
    let alice = env.moto.create_user("alice");
    let bob = env.moto.create_user("bob");
    let as_user = |key: &(String, String), args: &[&str]| {
        let mut cmd = env.command(args);
        cmd.env("AWS_ACCESS_KEY_ID", &key.0)
            .env("AWS_SECRET_ACCESS_KEY", &key.1);
        Run::of(&mut cmd)
    };
    let archive = env.image_archive();
    let role = env.moto.role_arn();
    let init = |key: &(String, String), name: &str| {
        let extra = ["-r", &role, "--package", "zip", "--json"];
        as_user(key, &init_args(name, &archive, &extra)).ok().json()
    };
    let alice_arn = "arn:aws:iam::123456789012:user/alice";
    assert_eq!(init(&alice, "alice-fn")["owner"], alice_arn);
    init(&bob, "bob-fn");

    let ls = as_user(&alice, &["ls"]).ok();
    assert!(ls.stdout.contains("alice-fn"), "{ls:#?}");
    assert!(
        !ls.stdout.contains("bob-fn") && !ls.stdout.contains("OWNER"),
        "{ls:#?}"
    );
    assert!(
        ls.stderr
            .contains("1 function of another owner not shown: `scar ls --all-owners` lists them"),
        "{ls:#?}"
    );
    let all = as_user(&alice, &["ls", "--all-owners", "--json"])
        .ok()
        .json();
    let owners: Vec<_> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["owner"])
        .collect();
    assert_eq!(owners, [alice_arn, "arn:aws:iam::123456789012:user/bob"]);
    let table = as_user(&alice, &["ls", "--all-owners"]).ok().stdout;
    assert!(
        table.contains("OWNER") && table.contains("user/bob"),
        "{table}"
    );

    let refused = as_user(&alice, &["rm", "-n", "bob-fn"]);
    refused.assert_refused("belongs to arn:aws:iam::123456789012:user/bob");
    assert!(
        refused.stderr.contains("scar rm -n bob-fn --all-owners"),
        "{refused:#?}"
    );

    let rm = as_user(&alice, &["rm", "-a", "--json"]).ok();
    assert_eq!(
        rm.json(),
        serde_json::json!({"removed": ["alice-fn"], "left_out": {"other_owners": 1, "no_owner": 0}})
    );
    assert!(
        rm.stderr
            .contains("`scar rm -a --all-owners` removes them too"),
        "{rm:#?}"
    );
    let bobs = as_user(&bob, &["ls", "--json"]).ok().json();
    assert_eq!(bobs[0]["spec"]["name"], "bob-fn");

    let everyone = as_user(&alice, &["rm", "-a", "--all-owners", "--json"]).ok();
    assert_eq!(everyone.json()["removed"], serde_json::json!(["bob-fn"]));
    assert_eq!(
        as_user(&bob, &["ls", "--json"]).ok().json(),
        serde_json::json!([])
    );
}

#[test]
fn fdl_files_deploy_and_remove_on_aws() {
    let Some(env) = Env::start(IMAGE_TOOLS) else {
        return;
    };
    // The role comes from the file (no -r); the package kind from the flag beside -f.
    let fdl = env.fdl(
        "scar.yaml",
        "functions:\n  aws:\n  - lambda:\n      name: fdl-one\n      memory: 256\n      container:\n        image: {archive}\n      input:\n      - {storage_provider: s3, path: fdl-in/input}\n      output:\n      - {storage_provider: s3, path: fdl-out/results, suffix: [png]}\n    iam:\n      role: {role}\n    cloudwatch:\n      log_retention_policy_in_days: 7\n  - lambda:\n      name: fdl-two\n      container: {image: {archive}}\n    iam:\n      role: {role}\n",
    );
    let fdl = fdl.as_str();
    let created = env
        .run(&["init", "-f", fdl, "--package", "zip", "--json"])
        .ok()
        .json();
    let created = created.as_array().unwrap();
    assert_eq!(created.len(), 2, "{created:?}");
    assert_eq!(created[0]["spec"]["memory_mb"], 256);
    assert_eq!(created[0]["spec"]["inputs"][0]["bucket"], "fdl-in");
    assert_eq!(created[0]["spec"]["inputs"][0]["folder"], "input");
    assert_eq!(created[1]["spec"]["name"], "fdl-two");

    // The output bucket was created; the function remembers where its outputs go.
    let (status, _) = env.moto.http("HEAD", "/fdl-out", &[], b"").unwrap();
    assert_eq!(status, 200);
    let listed = env.run(&["ls", "--json"]).ok().json();
    let one = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["spec"]["name"] == "fdl-one")
        .unwrap()
        .clone();
    assert_eq!(one["spec"]["outputs"][0]["bucket"], "fdl-out");
    assert_eq!(one["spec"]["outputs"][0]["folder"], "results");
    let groups = env.moto.logs_api(
        "DescribeLogGroups",
        serde_json::json!({"logGroupNamePrefix": "/aws/lambda/fdl-"}),
    );
    let retention: Vec<_> = groups["logGroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["logGroupName"].clone(), g["retentionInDays"].clone()))
        .collect();
    assert_eq!(
        retention,
        [
            ("/aws/lambda/fdl-one".into(), 7.into()),
            ("/aws/lambda/fdl-two".into(), 30.into())
        ],
        "the file's retention for its function, the default for the other"
    );

    let removed = env.run(&["rm", "-f", fdl, "--json"]).ok().json();
    assert_eq!(
        removed["removed"],
        serde_json::json!(["fdl-one", "fdl-two"])
    );
    assert_eq!(
        env.run(&["ls", "--json"]).ok().json(),
        serde_json::json!([])
    );
}

#[test]
fn aws_errors_are_short_and_say_what_failed() {
    let Some(env) = Env::start(&[]) else {
        return;
    };
    // The service's answer, once, without the SDK's debug dump; a missing bucket is the
    // user's mistake (exit 2).
    let dest = env.work.path().join("got");
    let r = env.run(&[
        "get",
        "-b",
        "no-such-bucket/x",
        "-p",
        dest.to_str().unwrap(),
    ]);
    assert_eq!(r.status, 2, "{r:#?}");
    assert_eq!(
        r.stderr.trim(),
        "error: s3:ListObjectsV2 no-such-bucket/x/ failed: NoSuchBucket: The specified bucket does not exist"
    );
    // No answer at all: the chain of causes, down to the refused connection (exit 3).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = env
        .command(&["ls"])
        .args(["--endpoint-url", &format!("http://127.0.0.1:{closed}")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert!(!stderr.contains("DispatchFailure {"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

/// An output folder inside the input folder: what lands there is never an input, neither
/// for `put` (S3 notifies for it, the supervisor skips it) nor for the launcher, which
/// leaves it out of its listing instead of invoking for it.
#[test]
fn the_launcher_never_runs_a_function_on_its_own_outputs() {
    let Some(env) = Env::start(IMAGE_TOOLS) else {
        return;
    };
    let fdl = env.fdl(
        "loop.yaml",
        "functions:\n  aws:\n  - lambda:\n      name: loopfn\n      container:\n        image: {archive}\n      input:\n      - {storage_provider: s3, path: loop-b/input}\n      output:\n      - {storage_provider: s3, path: loop-b/input/results}\n    iam:\n      role: {role}\n",
    );
    env.run(&["init", "-f", &fdl, "--package", "zip"]).ok();
    let files = folder_with(
        env.work.path().join("loop-files"),
        &[("a.txt", "a"), ("results/a.txt.out", "out")],
    );
    let put = env
        .run(&[
            "put",
            "-b",
            "loop-b/input",
            "-p",
            files.to_str().unwrap(),
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(put["stored"].as_array().unwrap().len(), 2, "{put}");
    assert_eq!(put["inputs"], serde_json::json!(["input/a.txt"]), "{put}");
    env.moto
        .queue_invoke_results(&[scar_response("loop-1", "ran\n")]);
    let launched = env
        .run(&["run", "-n", "loopfn", "-es", "loop-b", "--json"])
        .ok()
        .json();
    let keys: Vec<&str> = launched
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["input/a.txt"], "{launched}");
}

/// SCAR's own Batch example (`examples/video-process`: a `batch` function chained into a
/// Lambda one), unchanged but for its images, deployed on AWS with the network, roles and
/// launch template taken from SCAR's `aws.batch` block of scar.cfg: `init` makes the
/// function's AWS Batch resources (AWS Batch on moto), `ls` shows the modes, `run` submits
/// a job and follows it to SUCCEEDED, `--async` prints the job's id, `rm` leaves nothing.
#[test]
fn scars_batch_example_deploys_runs_and_is_removed_on_aws() {
    let Some(mut env) = Env::start(&["umoci", "skopeo", "busybox", "docker-registry"]) else {
        return;
    };
    let registry = TestRegistry::start();
    env.env
        .push(("SCAR_ECR_REGISTRY".into(), registry.addr.clone()));
    env.moto.enable_batch();
    let (subnet, group) = env.moto.batch_network();
    std::fs::write(
        env.scar.home.path().join("scar.cfg"),
        serde_json::json!({"aws": {
            "iam": {"role": env.moto.role_arn()},
            "batch": {"vcpus": 1, "memory": 1024, "enable_gpu": false, "state": "ENABLED",
                "type": "MANAGED",
                "service_role": "arn:aws:iam::{account_id}:role/scar-test-role",
                "environment": {"Variables": {}},
                "compute_resources": {"security_group_ids": [group], "type": "EC2",
                    "desired_v_cpus": 0, "min_v_cpus": 0, "max_v_cpus": 2, "subnets": [subnet],
                    "instance_types": ["m3.medium"],
                    "instance_role": "arn:aws:iam::{account_id}:instance-profile/ecsInstanceRole"},
                "multi_node_parallel": {"enabled": false, "number_nodes": 10,
                    "main_node_index": 0}}}})
        .to_string(),
    )
    .unwrap();
    let source = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/scar-upstream/examples/video-process/scar-video-process.yaml"),
    )
    .unwrap();
    let archive = env.image_archive();
    let yaml: String = source
        .lines()
        .map(|l| match l.split_once("image: ") {
            Some((indent, _)) => format!("{indent}image_file: {}\n", archive.display()),
            None => format!("{l}\n"),
        })
        .collect();
    let dir = env.work.path().join("video-process");
    std::fs::create_dir_all(&dir).unwrap();
    for script in ["split-video.sh", "yolo-sample-object-detection.sh"] {
        std::fs::write(dir.join(script), "echo stub\n").unwrap();
    }
    let fdl = dir.join("scar-video-process.yaml");
    std::fs::write(&fdl, yaml).unwrap();
    let fdl = fdl.to_str().unwrap();

    let created = env.run(&["init", "-f", fdl, "--json"]).ok().json();
    assert_eq!(created.as_array().unwrap().len(), 2, "{created}");
    let batch = env.moto.batch_api(
        "describecomputeenvironments",
        serde_json::json!({"computeEnvironments": ["scar-scar-batch-ffmpeg-split"]}),
    );
    let resources = &batch["computeEnvironments"][0]["computeResources"];
    assert_eq!(resources["subnets"], serde_json::json!([subnet]), "{batch}");
    assert_eq!(resources["instanceTypes"], serde_json::json!(["m3.medium"]));
    let definitions = env.moto.batch_api(
        "describejobdefinitions",
        serde_json::json!({"jobDefinitionName": "scar-scar-batch-ffmpeg-split", "status": "ACTIVE"}),
    );
    let image = definitions["jobDefinitions"][0]["containerProperties"]["image"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        image.starts_with(&format!(
            "{}/scar-scar-batch-ffmpeg-split@sha256:",
            registry.addr
        )),
        "the pushed package, pinned: {image}"
    );
    // The Lambda step of the chain has no Batch resources.
    let none = env.moto.batch_api(
        "describejobqueues",
        serde_json::json!({"jobQueues": ["scar-scar-lambda-darknet"]}),
    );
    assert_eq!(none["jobQueues"], serde_json::json!([]));

    let ls = env.run(&["ls"]).ok();
    let line = |name: &str| {
        ls.stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {}", ls.stdout))
            .to_string()
    };
    assert!(
        line("scar-batch-ffmpeg-split").contains(" batch "),
        "{}",
        ls.stdout
    );
    assert!(
        line("scar-lambda-darknet").contains(" lambda "),
        "{}",
        ls.stdout
    );

    // A run is a job, followed to its end on stderr.
    let run = env
        .run(&["run", "-n", "scar-batch-ffmpeg-split", "--", "echo", "hi"])
        .ok();
    assert!(run.stderr.contains(": SUCCEEDED"), "{}", run.stderr);
    let run = env
        .run(&["run", "-n", "scar-batch-ffmpeg-split", "--async", "--json"])
        .ok()
        .json();
    let job = run["request_id"].as_str().unwrap();
    let jobs = env
        .moto
        .batch_api("describejobs", serde_json::json!({"jobs": [job]}));
    assert_eq!(
        jobs["jobs"][0]["jobQueue"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next(),
        Some("scar-scar-batch-ffmpeg-split"),
        "{jobs}"
    );

    env.run(&["rm", "-f", fdl]).ok();
    assert_eq!(
        env.run(&["ls", "--json"]).ok().json(),
        serde_json::json!([])
    );
    let left = env
        .moto
        .batch_api("describecomputeenvironments", serde_json::json!({}));
    assert_eq!(left["computeEnvironments"], serde_json::json!([]), "{left}");
    let left = env
        .moto
        .batch_api("describejobqueues", serde_json::json!({}));
    assert_eq!(left["jobQueues"], serde_json::json!([]), "{left}");
}

/// A Lambda container image with its own runtime (`--runtime-client image`) on AWS: pushed as it
/// is (its own entrypoint, no supervisor layer), created with PackageType=Image and its
/// variables as they are, and run with a payload of its own whose answer is printed as
/// it is (moto's Lambda, without Docker, answers the payload back).
#[test]
fn an_image_with_its_own_runtime_is_pushed_unchanged_on_aws() {
    let Some(mut env) = Env::start(&["umoci", "skopeo", "busybox", "docker-registry"]) else {
        return;
    };
    let registry = TestRegistry::start();
    env.env
        .push(("SCAR_ECR_REGISTRY".into(), registry.addr.clone()));
    let zip = env.run(&[
        "init",
        "-n",
        "own",
        "-if",
        env.image_archive().to_str().unwrap(),
        "-r",
        &env.moto.role_arn(),
        "--runtime-client",
        "image",
        "--package",
        "zip",
    ]);
    zip.assert_refused("pushed as it is");
    let info = env.init("own", &["--runtime-client", "image", "-e", "GREETING=hi"]);
    assert_eq!(info["spec"]["runtime_client"], "image", "{info}");

    let reference = format!("docker://{}/scar-own:latest", registry.addr);
    let inspect = |args: &[&str]| -> serde_json::Value {
        let out = Command::new("skopeo")
            .args(["inspect", "--tls-verify=false"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let config = inspect(&["--config", &reference]);
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/bin/sh", "-c"]),
        "the image's own entrypoint: {config}"
    );
    let source = inspect(&[&format!("docker-archive:{}", env.image_archive().display())]);
    let pushed = inspect(&[&reference]);
    assert_eq!(
        pushed["Layers"].as_array().unwrap().len(),
        source["Layers"].as_array().unwrap().len(),
        "no supervisor layer"
    );

    let signed = moto::authorization("lambda");
    let (status, body) = env
        .moto
        .http(
            "GET",
            "/2015-03-31/functions/own",
            &[("Authorization", &signed)],
            b"",
        )
        .unwrap();
    assert_eq!(status, 200);
    let got: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(got["Configuration"]["PackageType"], "Image", "{got}");
    assert_eq!(
        got["Configuration"]["Environment"]["Variables"]["GREETING"], "hi",
        "the runtime reads its variables as they are: {got}"
    );
    let listed = env.run(&["ls", "--json"]).ok().json();
    assert_eq!(listed[0]["spec"]["runtime_client"], "image", "{listed}");

    let run = env
        .run(&["run", "-n", "own", "--payload", r#"{"k":[1,2]}"#])
        .ok();
    assert_eq!(run.stdout, r#"{"k":[1,2]}"#);
    env.run(&["rm", "-n", "own"]).ok();
}

/// SCAR's `-rt image` (and FDL `runtime: image`) on AWS: the user's image with the
/// supervisor in it, pushed to ECR and created as an image function, as SCAR makes it;
/// `-rt python3.9` is SCAR's zip, with its one warning.
#[test]
fn scars_image_runtime_pushes_the_image_with_the_supervisor() {
    let Some(mut env) = Env::start(&["umoci", "skopeo", "busybox", "docker-registry", "proot"])
    else {
        return;
    };
    let registry = TestRegistry::start();
    env.env
        .push(("SCAR_ECR_REGISTRY".into(), registry.addr.clone()));
    let info = env.init("rt-img", &["-rt", "image"]);
    assert_eq!(info["package"], "image", "{info}");
    assert!(info["spec"].get("runtime_client").is_none(), "{info}");
    let fdl = env.fdl(
        "function_def.yaml",
        "functions:\n  aws:\n  - lambda:\n      runtime: image\n      name: rt-fdl\n      memory: 256\n      init_script: script.sh\n      container:\n        image_file: {archive}\n    iam:\n      role: {role}\n",
    );
    write_file(env.work.path(), "script.sh", "echo from the init script\n");
    let r = env.run(&["init", "-f", &fdl, "-rt", "image"]).ok();
    assert!(!r.stderr.contains("not used"), "`runtime` is read: {r:#?}");
    // Both are the image with the supervisor as its entrypoint, in the registry.
    for repository in ["scar-rt-img", "scar-rt-fdl"] {
        let reference = format!("docker://{}/{repository}:latest", registry.addr);
        let out = Command::new("skopeo")
            .args(["inspect", "--config", "--tls-verify=false", &reference])
            .output()
            .unwrap();
        assert!(out.status.success(), "{repository}: {out:?}");
        let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            config["config"]["Entrypoint"],
            serde_json::json!(["/opt/scar/bootstrap"]),
            "{config}"
        );
    }
    // Lambda has them as image functions.
    for name in ["rt-img", "rt-fdl"] {
        let signed = moto::authorization("lambda");
        let path = format!("/2015-03-31/functions/{name}");
        let (status, body) = (env.moto)
            .http("GET", &path, &[("Authorization", &signed)], b"")
            .unwrap();
        assert_eq!(status, 200, "{name}");
        let got: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(got["Configuration"]["PackageType"], "Image", "{got}");
    }
    // SCAR's Python runtime: a zip, and one warning.
    let role = env.moto.role_arn();
    let archive = env.image_archive();
    let r = env
        .run(&init_args(
            "rt-py",
            &archive,
            &["-r", &role, "-rt", "python3.9"],
        ))
        .ok();
    let warning = "scar's supervisor is a static binary, so the Python version has no effect";
    assert_eq!(r.stderr.matches(warning).count(), 1, "{r:#?}");
    let listed = env.run(&["ls", "--json"]).ok().json();
    let package = |name: &str| {
        (listed.as_array().unwrap().iter())
            .find(|f| f["spec"]["name"] == name)
            .map(|f| f["package"].clone())
    };
    assert_eq!(
        [package("rt-img"), package("rt-fdl"), package("rt-py")],
        [
            Some("image".into()),
            Some("image".into()),
            Some("zip".into())
        ],
        "{listed}"
    );
    env.run(&["rm", "-a"]).ok();
}

/// The region a definition file gives its function (SCAR's `lambda.region`): where it is
/// created, and where `ls -f`, `run -f`, `log -f` and `rm -f` find it; `ls` without `-f`
/// stays in one region.
#[test]
fn fdl_region_places_the_function_and_every_command_finds_it() {
    let Some(env) = Env::start(IMAGE_TOOLS) else {
        return;
    };
    let fdl = env.fdl(
        "regional.yaml",
        "functions:\n  aws:\n  - lambda:\n      name: far-fn\n      region: eu-west-1\n      boto_profile: default\n      container: {image: {archive}}\n    iam: {role: {role}}\n",
    );
    let fdl = fdl.as_str();
    let created = env
        .run(&["init", "-f", fdl, "--package", "zip", "--json"])
        .ok()
        .json();
    assert_eq!(created[0]["spec"]["name"], "far-fn");
    let there = env.moto.lambda_function("eu-west-1", "far-fn");
    let arn = there.expect("created in eu-west-1")["Configuration"]["FunctionArn"].clone();
    assert!(arn.as_str().unwrap().contains(":eu-west-1:"), "{arn}");
    assert!(
        env.moto.lambda_function(moto::REGION, "far-fn").is_none(),
        "nothing in the default region"
    );
    // `ls` lists one region (the default one here); `ls -f` finds it where the file says.
    assert_eq!(
        env.run(&["ls", "--json"]).ok().json(),
        serde_json::json!([])
    );
    let listed = env.run(&["ls", "-f", fdl, "--json"]).ok().json();
    assert_eq!(listed[0]["spec"]["name"], "far-fn", "{listed}");

    env.moto.queue_invoke_results_in(
        "eu-west-1",
        &[scar_response("req-far", "hello from eu-west-1\n")],
    );
    let ran = env.run(&["run", "-f", fdl]).ok();
    assert_eq!(ran.stdout, "hello from eu-west-1\n");
    // Without the file, the default region has no such function.
    let missing = env.run(&["run", "-n", "far-fn"]);
    assert_ne!(missing.status, 0, "{missing:#?}");

    let stream = "2024/01/01/[$LATEST]far";
    let group = "/aws/lambda/far-fn";
    env.moto.logs_api_in(
        "eu-west-1",
        "CreateLogStream",
        serde_json::json!({"logGroupName": group, "logStreamName": stream}),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 5_000;
    env.moto.logs_api_in(
        "eu-west-1",
        "PutLogEvents",
        serde_json::json!({"logGroupName": group, "logStreamName": stream,
            "logEvents": [{"timestamp": now, "message": "a line from eu-west-1"}]}),
    );
    let log = env.run(&["log", "-f", fdl]).ok();
    assert_eq!(log.stdout.trim(), "a line from eu-west-1");

    let removed = env.run(&["rm", "-f", fdl, "--json"]).ok().json();
    assert_eq!(removed["removed"], serde_json::json!(["far-fn"]));
    assert!(env.moto.lambda_function("eu-west-1", "far-fn").is_none());

    // `--region` beside the file wins over it.
    env.run(&[
        "init",
        "-f",
        fdl,
        "--package",
        "zip",
        "--region",
        "us-west-2",
    ])
    .ok();
    assert!(env.moto.lambda_function("us-west-2", "far-fn").is_some());
    assert!(env.moto.lambda_function("eu-west-1", "far-fn").is_none());
    env.run(&["rm", "-f", fdl, "--region", "us-west-2"]).ok();
    assert!(env.moto.lambda_function("us-west-2", "far-fn").is_none());
}

/// `boto_profile` of a definition file: the function is created as that profile's
/// identity (its owner tag is the profile's user), not the default credentials'.
#[test]
fn fdl_boto_profile_is_who_creates_the_function() {
    let Some(env) = Env::start(IMAGE_TOOLS) else {
        return;
    };
    let (key, secret) = env.moto.create_user("alice");
    let credentials = env.work.path().join("credentials");
    std::fs::write(
        &credentials,
        format!("[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n\n[alice]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n"),
    )
    .unwrap();
    let fdl = env.fdl(
        "profiled.yaml",
        "functions:\n  aws:\n  - lambda:\n      name: alice-fn\n      boto_profile: alice\n      container: {image: {archive}}\n    iam: {role: {role}}\n",
    );
    let with_profiles = |args: &[&str]| {
        let mut cmd = env.command(args);
        cmd.env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_SHARED_CREDENTIALS_FILE", &credentials);
        Run::of(&mut cmd)
    };
    with_profiles(&["init", "-f", &fdl, "--package", "zip"]).ok();
    let listed = with_profiles(&["ls", "-f", &fdl, "--json"]).ok().json();
    assert_eq!(
        listed[0]["owner"], "arn:aws:iam::123456789012:user/alice",
        "{listed}"
    );
    // The default identity's `ls` does not show alice's function as its own.
    let mine = with_profiles(&["ls", "--json"]).ok().json();
    assert_eq!(mine, serde_json::json!([]));
    with_profiles(&["rm", "-f", &fdl]).ok();
    assert!(env.moto.lambda_function(moto::REGION, "alice-fn").is_none());
}

/// `vpc` and `file_system` of a definition file become Lambda's VpcConfig and
/// FileSystemConfigs, and read back; bad values are refused before anything is made.
#[test]
fn fdl_vpc_and_file_system_reach_lambda() {
    let Some(env) = Env::start(IMAGE_TOOLS) else {
        return;
    };
    let ap = "arn:aws:elasticfilesystem:us-east-1:123456789012:access-point/fsap-0123456789abcdef0";
    let yaml = |name: &str, extra: &str| {
        format!("functions:\n  aws:\n  - lambda:\n      name: {name}\n{extra}      container: {{image: {{archive}}}}\n    iam: {{role: {{role}}}}\n")
    };
    let vpc = "      vpc:\n        SubnetIds: [subnet-0a1b2c3d, subnet-4e5f6a7b]\n        SecurityGroupIds: [sg-0c1d2e3f]\n";
    let fs =
        format!("      file_system:\n      - Arn: {ap}\n        LocalMountPath: /mnt/shared\n");
    let fdl = env.fdl("vpc.yaml", &yaml("vpc-fn", &format!("{vpc}{fs}")));
    env.run(&["init", "-f", &fdl, "--package", "zip"]).ok();
    let got = env.moto.lambda_function(moto::REGION, "vpc-fn").unwrap();
    let config = &got["Configuration"]["VpcConfig"];
    assert_eq!(
        config["SubnetIds"],
        serde_json::json!(["subnet-0a1b2c3d", "subnet-4e5f6a7b"]),
        "{got}"
    );
    assert_eq!(
        config["SecurityGroupIds"],
        serde_json::json!(["sg-0c1d2e3f"])
    );
    let listed = env.run(&["ls", "--json"]).ok().json();
    let spec = &listed[0]["spec"];
    assert_eq!(spec["vpc"]["SubnetIds"][1], "subnet-4e5f6a7b", "{listed}");
    assert_eq!(
        spec["file_systems"],
        serde_json::json!([{"Arn": ap, "LocalMountPath": "/mnt/shared"}])
    );
    env.run(&["rm", "-f", &fdl]).ok();

    // Refused, with nothing created: a mount path Lambda does not take, a subnet id that
    // is none, a file system without a VPC (Lambda reaches EFS only from one).
    let bad_path = fs.replace("/mnt/shared", "/data");
    for (name, extra, says) in [
        (
            "bad-path",
            format!("{vpc}{bad_path}"),
            "LocalMountPath \"/data\"",
        ),
        (
            "bad-subnet",
            vpc.replace("subnet-0a1b2c3d", "net-1"),
            "SubnetIds: \"net-1\"",
        ),
        ("no-vpc", fs.clone(), "needs `vpc:`"),
    ] {
        let fdl = env.fdl(&format!("{name}.yaml"), &yaml(name, &extra));
        let r = env.run(&["init", "-f", &fdl, "--package", "zip"]);
        r.assert_refused(says);
        assert!(env.moto.lambda_function(moto::REGION, name).is_none());
    }
}

/// `ecr.delete_image: false` keeps the function's ECR repository on `rm`; a function with
/// `container.create_image: false` then runs that image as it is (nothing pulled, built
/// or pushed) and its `rm` leaves the repository too; without either, `rm` deletes it.
#[test]
fn fdl_keeps_and_reuses_ecr_images() {
    let Some(mut env) = Env::start(&["umoci", "skopeo", "busybox", "docker-registry"]) else {
        return;
    };
    let registry = TestRegistry::start();
    env.env
        .push(("SCAR_ECR_REGISTRY".into(), registry.addr.clone()));
    let repositories = || {
        let (status, out) =
            env.moto
                .ecr_api(moto::REGION, "DescribeRepositories", serde_json::json!({}));
        assert_eq!(status, 200, "{out}");
        let mut names: Vec<String> = out["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["repositoryName"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    let kept = env.fdl(
        "kept.yaml",
        "functions:\n  aws:\n  - lambda:\n      name: kept-fn\n      container: {image: {archive}}\n    iam: {role: {role}}\n    ecr: {delete_image: false}\n  - lambda:\n      name: gone-fn\n      container: {image: {archive}}\n    iam: {role: {role}}\n",
    );
    env.run(&["init", "-f", &kept]).ok();
    assert_eq!(repositories(), ["scar-gone-fn", "scar-kept-fn"]);
    let tags = &env.moto.lambda_function(moto::REGION, "kept-fn").unwrap()["Tags"];
    assert_eq!(tags["scar:delete_image"], "false", "{tags}");
    env.run(&["rm", "-f", &kept]).ok();
    assert_eq!(repositories(), ["scar-kept-fn"], "kept, and only that one");

    // Its image, reused as it is by a new function.
    let image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/scar-kept-fn";
    let reuse = env.fdl(
        "reuse.yaml",
        &format!("functions:\n  aws:\n  - lambda:\n      name: reuse-fn\n      container:\n        image: {image}\n        create_image: false\n    iam: {{role: {{role}}}}\n"),
    );
    let created = env.run(&["init", "-f", &reuse, "--json"]).ok().json();
    assert_eq!(created[0]["spec"]["reuse_image"], true, "{created}");
    let got = env.moto.lambda_function(moto::REGION, "reuse-fn").unwrap();
    assert_eq!(got["Code"]["ImageUri"], format!("{image}:latest"), "{got}");
    assert_eq!(repositories(), ["scar-kept-fn"], "no repository of its own");
    env.run(&["rm", "-f", &reuse]).ok();
    assert_eq!(repositories(), ["scar-kept-fn"], "not scar's to delete");

    // create_image: false needs an image in ECR.
    let not_ecr = env.fdl(
        "not-ecr.yaml",
        "functions:\n  aws:\n  - lambda:\n      name: not-ecr\n      container:\n        image: busybox\n        create_image: false\n    iam: {role: {role}}\n",
    );
    env.run(&["init", "-f", &not_ecr])
        .assert_refused("is not an ECR image");
}

/// The REST APIs on moto whose name is `name`.
fn rest_apis_named(env: &Env, name: &str) -> Vec<serde_json::Value> {
    let apis = env.moto.rest_apis();
    apis.into_iter().filter(|a| a["name"] == name).collect()
}

/// Asserts the REST API `api` is SCAR's API Gateway in front of function `function`: a
/// `{proxy+}` resource under `/` taking ANY without authorization, a Lambda proxy
/// integration (POST) to the function's ARN, stage `scar`; and that the function's policy
/// lets API Gateway invoke it from that API.
fn assert_scars_api_gateway(env: &Env, api: &serde_json::Value, function: &str) {
    let id = api["id"].as_str().unwrap();
    let (status, resources) = env
        .moto
        .apigateway_get(&format!("/restapis/{id}/resources"));
    assert_eq!(status, 200, "{resources}");
    let resources = resources["item"].as_array().unwrap();
    let mut paths: Vec<&str> = resources
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    paths.sort();
    assert_eq!(paths, ["/", "/{proxy+}"]);
    let proxy = resources.iter().find(|r| r["path"] == "/{proxy+}").unwrap();
    let rid = proxy["id"].as_str().unwrap();
    let (status, method) = env
        .moto
        .apigateway_get(&format!("/restapis/{id}/resources/{rid}/methods/ANY"));
    assert_eq!(status, 200, "{method}");
    assert_eq!(method["authorizationType"], "NONE", "{method}");
    let (status, integration) = env.moto.apigateway_get(&format!(
        "/restapis/{id}/resources/{rid}/methods/ANY/integration"
    ));
    assert_eq!(status, 200, "{integration}");
    assert_eq!(integration["type"], "AWS_PROXY", "{integration}");
    assert_eq!(integration["httpMethod"], "POST", "{integration}");
    let arn = env.moto.lambda_function(moto::REGION, function).unwrap()["Configuration"]
        ["FunctionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let uri = integration["uri"].as_str().unwrap();
    assert!(
        uri.contains(&format!("/functions/{arn}/invocations")),
        "{uri} of {arn}"
    );
    let (status, stages) = env.moto.apigateway_get(&format!("/restapis/{id}/stages"));
    assert_eq!(status, 200, "{stages}");
    assert_eq!(stages["item"][0]["stageName"], "scar", "{stages}");
    let policy = env.moto.lambda_policy(function).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    let from_api = statements.iter().find(|s| {
        s["Principal"]["Service"] == "apigateway.amazonaws.com"
            && s["Condition"]["ArnLike"]["AWS:SourceArn"]
                == format!("arn:aws:execute-api:us-east-1:{}:{id}/*", moto::ACCOUNT)
    });
    assert!(from_api.is_some(), "{policy}");
}

/// SCAR's own API Gateway example (examples/darknet/scar-darknet-api-s3.yaml, its image
/// replaced by the test image and a role added): `init -f` makes SCAR's REST API, `ls`
/// shows its URL (SCAR's API_URL column, `api_url` in `--json`), `rm -f` removes the API
/// with the function.
#[test]
fn scars_api_gateway_example_deploys_lists_and_is_removed_on_aws() {
    let Some(env) = Env::start(IMAGE_TOOLS) else {
        return;
    };
    let upstream = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/scar-upstream/examples/darknet/scar-darknet-api-s3.yaml"),
    )
    .unwrap();
    assert!(upstream.contains("image: grycap/darknet"), "{upstream}");
    let yaml = upstream.replace("image: grycap/darknet", "image: {archive}")
        + "\n    iam:\n      role: {role}\n";
    write_file(env.work.path(), "yolo.sh", "echo yolo\n");
    let fdl = env.fdl("scar-darknet-api-s3.yaml", &yaml);
    let init = env.run(&["init", "-f", &fdl, "--package", "zip"]).ok();
    assert!(!init.stderr.contains("api_gateway"), "{init:#?}");
    let apis = rest_apis_named(&env, "darknet");
    assert_eq!(apis.len(), 1, "{:?}", env.moto.rest_apis());
    assert_scars_api_gateway(&env, &apis[0], "scar-darknet-api-s3");
    let id = apis[0]["id"].as_str().unwrap();
    // With moto behind --endpoint-url, the emulator's URL of the API.
    let url = format!(
        "{}/restapis/{id}/scar/_user_request_/launch",
        env.moto.endpoint()
    );
    assert!(
        init.stdout
            .contains(&format!("API Gateway endpoint: {url}")),
        "{init:#?}"
    );

    let listed = env.run(&["ls", "--json"]).ok().json();
    assert_eq!(listed[0]["api_url"], url.as_str(), "{listed}");
    assert_eq!(listed[0]["spec"]["api_gateway"], "darknet", "{listed}");
    let table = env.run(&["ls"]).ok().stdout;
    let header = table.lines().next().unwrap();
    assert!(header.contains("API_URL"), "{table}");
    assert!(table.contains(&url), "{table}");

    env.run(&["rm", "-f", &fdl]).ok();
    assert!(
        env.moto.rest_apis().is_empty(),
        "{:?}",
        env.moto.rest_apis()
    );
    assert!(env
        .moto
        .lambda_function(moto::REGION, "scar-darknet-api-s3")
        .is_none());
    // Without an API Gateway, no such column.
    env.init("plain-fn", &["--package", "zip"]);
    let table = env.run(&["ls"]).ok().stdout;
    assert!(!table.contains("API_URL"), "{table}");
    assert_eq!(
        env.run(&["ls", "--json"]).ok().json()[0]["api_url"],
        serde_json::Value::Null
    );
}

/// SCAR's `-api NAME` makes the same API Gateway as the file's `api_gateway.name`; an
/// `init` that fails after the API was made (a role Lambda cannot assume) leaves no API
/// and no function behind.
#[test]
fn api_flag_makes_the_api_gateway_and_a_failed_init_leaves_none() {
    let Some(env) = Env::start(IMAGE_TOOLS) else {
        return;
    };
    let info = env.init("api-flag-fn", &["--package", "zip", "-api", "flag-api"]);
    assert_eq!(info["spec"]["api_gateway"], "flag-api", "{info}");
    let apis = rest_apis_named(&env, "flag-api");
    assert_eq!(apis.len(), 1, "{:?}", env.moto.rest_apis());
    assert_scars_api_gateway(&env, &apis[0], "api-flag-fn");
    let id = apis[0]["id"].as_str().unwrap();
    assert_eq!(
        info["api_url"],
        format!(
            "{}/restapis/{id}/scar/_user_request_/launch",
            env.moto.endpoint()
        )
    );
    env.run(&["rm", "-n", "api-flag-fn"]).ok();
    assert!(env.moto.rest_apis().is_empty());

    // The REST API is made first; the function after it cannot be (moto's IAM has no such
    // role): the API goes too.
    let archive = env.image_archive();
    let missing = format!("arn:aws:iam::{}:role/no-such-role", moto::ACCOUNT);
    let failed = env.run(&init_args(
        "api-doomed",
        &archive,
        &["-r", &missing, "--package", "zip", "-api", "doomed-api"],
    ));
    assert_ne!(failed.status, 0, "{failed:#?}");
    assert!(failed.stderr.contains("CreateFunction"), "{failed:#?}");
    assert!(!failed.stderr.contains("left behind"), "{failed:#?}");
    assert!(
        env.moto.rest_apis().is_empty(),
        "{:?}",
        env.moto.rest_apis()
    );
    assert!(env
        .moto
        .lambda_function(moto::REGION, "api-doomed")
        .is_none());
}

/// A stand-in for API Gateway's data plane in front of moto, which serves no `execute-api`
/// requests: `tests/data/api_gateway_standin.py` on a free loopback port, forwarding the
/// rest to moto; stopped on drop.
struct ApiGatewayStandIn {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`: scar's `--endpoint-url`.
    endpoint: String,
    /// Where it appends one JSON line per `execute-api` request: the event, the function,
    /// the invocation type.
    record: PathBuf,
}

impl ApiGatewayStandIn {
    fn start(moto: &Moto, dir: &std::path::Path) -> ApiGatewayStandIn {
        use std::io::BufRead as _;
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/api_gateway_standin.py"
        );
        let record = dir.join("api-gateway-requests.jsonl");
        let mut child = Command::new("python3")
            .args([script, &moto.endpoint(), moto::REGION])
            .arg(&record)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs the API Gateway stand-in");
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_else(|| {
            let _ = child.kill();
            panic!("the API Gateway stand-in did not start (is boto3 installed?)")
        });
        let listening: serde_json::Value = serde_json::from_str(&first).unwrap();
        let endpoint = listening["listening"].as_str().unwrap().to_string();
        ApiGatewayStandIn {
            child,
            endpoint,
            record,
        }
    }

    /// The `execute-api` requests it took, in order.
    fn recorded(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

impl Drop for ApiGatewayStandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The proxy response a function gives API Gateway: SCAR's shape, with the output base64.
fn proxy_response(status: u16, exit_code: i32, output: &[u8]) -> String {
    use base64::Engine as _;
    serde_json::json!({
        "statusCode": status,
        "headers": {"amz-lambda-request-id": "r1", "scar-exit-code": exit_code.to_string()},
        "body": base64::engine::general_purpose::STANDARD.encode(output),
        "isBase64Encoded": true,
    })
    .to_string()
}

/// `scar invoke` on AWS, through SCAR's API Gateway. moto does not serve `execute-api`, so a
/// stand-in for API Gateway's data plane sits in front of moto and is scar's
/// `--endpoint-url`: the API's URL is then the emulator's, at the stand-in, in `init` and
/// `ls`. `invoke -db FILE -p k=v` POSTs the file's base64 with `k=v` in the query; the
/// stand-in's proxy event carries both to the function (as the supervisor reads them), and
/// the function's proxy response (a canned result of moto's) comes back decoded into `-o`.
/// A 500 proxy response exits 1 with its output; a payload that is not a proxy response
/// (moto echoes the event) is API Gateway's 502, exit 1; `-a` is an `Event` invocation,
/// 202, exit 0. `rm` finds the API from the emulator's URL.
#[test]
fn invoke_reaches_the_function_through_a_stand_in_for_api_gateway() {
    use base64::Engine as _;
    let Some(env) = Env::start(IMAGE_TOOLS) else {
        return;
    };
    let standin = ApiGatewayStandIn::start(&env.moto, env.work.path());
    let run = |args: &[&str]| {
        let mut cmd = env.scar.command();
        env.moto
            .aws_cli_at(&mut cmd, env.work.path(), &standin.endpoint);
        Run::of(cmd.args(args))
    };
    let archive = env.image_archive();
    let role = env.moto.role_arn();
    let init = run(&init_args(
        "invoked-fn",
        &archive,
        &[
            "-r",
            &role,
            "--package",
            "zip",
            "-api",
            "invoked-api",
            "--json",
        ],
    ))
    .ok()
    .json();
    let apis = rest_apis_named(&env, "invoked-api");
    assert_eq!(apis.len(), 1, "{:?}", env.moto.rest_apis());
    let id = apis[0]["id"].as_str().unwrap();
    let url = format!(
        "{}/restapis/{id}/scar/_user_request_/launch",
        standin.endpoint
    );
    assert_eq!(init["api_url"], url.as_str(), "{init}");
    let listed = run(&["ls", "--json"]).ok().json();
    assert_eq!(listed[0]["api_url"], url.as_str(), "{listed}");
    let function_arn = env
        .moto
        .lambda_function(moto::REGION, "invoked-fn")
        .unwrap()["Configuration"]["FunctionArn"]
        .clone();

    // A file (not text) in, the function's output out.
    let input: Vec<u8> = (0..=255u8).rev().collect();
    let input_file = env.work.path().join("input.bin");
    std::fs::write(&input_file, &input).unwrap();
    let output = b"\x89PNG made by the function\x00\xff";
    env.moto
        .queue_invoke_results(&[proxy_response(200, 0, output)]);
    let out_file = env.work.path().join("out.bin");
    let invoked = run(&[
        "invoke",
        "-n",
        "invoked-fn",
        "-db",
        input_file.to_str().unwrap(),
        "-p",
        "k=v",
        "-o",
        out_file.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(std::fs::read(&out_file).unwrap(), output, "{invoked:#?}");
    let recorded = standin.recorded();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0]["function"], function_arn);
    assert_eq!(recorded[0]["invocation_type"], "RequestResponse");
    let event = &recorded[0]["event"];
    assert_eq!(event["httpMethod"], "POST", "{event}");
    assert_eq!(event["path"], "/launch", "{event}");
    assert_eq!(event["requestContext"]["apiId"], id, "{event}");
    assert_eq!(event["requestContext"]["stage"], "scar", "{event}");
    assert_eq!(
        event["body"],
        base64::engine::general_purpose::STANDARD.encode(&input),
        "{event}"
    );
    assert_eq!(event["isBase64Encoded"], false, "{event}");
    assert_eq!(
        event["queryStringParameters"],
        serde_json::json!({"k": "v"}),
        "{event}"
    );
    // What the supervisor makes of that event: the file, and k=v among its variables.
    let Ok(scar_core::event::Event::Http(request)) = scar_core::event::Event::parse(event) else {
        panic!("not an HTTP event to the supervisor: {event}")
    };
    assert_eq!(request.body, input);
    assert_eq!(request.query["k"], "v");

    // The script failed: status 500, its output and exit code, exit 1.
    env.moto
        .queue_invoke_results(&[proxy_response(500, 3, b"it broke\n")]);
    let failed = run(&["invoke", "-n", "invoked-fn", "-jd", r#"{"a": 1}"#]);
    assert_eq!(failed.status, 1, "{failed:#?}");
    assert_eq!(failed.stdout, "it broke\n", "{failed:#?}");
    assert!(failed.stderr.contains("exited with 3"), "{failed:#?}");
    let recorded = standin.recorded();
    assert_eq!(recorded[1]["event"]["body"], r#"{"a": 1}"#);

    // No canned result: moto echoes the event, which is no proxy response: API Gateway's
    // 502, exit 1.
    let echoed = run(&["invoke", "-n", "invoked-fn"]);
    assert_eq!(echoed.status, 1, "{echoed:#?}");
    assert!(
        echoed.stderr.contains("502") && echoed.stderr.contains("Internal server error"),
        "{echoed:#?}"
    );
    let recorded = standin.recorded();
    assert_eq!(recorded.len(), 3, "{recorded:?}");
    assert_eq!(recorded[2]["event"]["httpMethod"], "GET");

    // Asynchronous: an Event invocation, 202, exit 0.
    let accepted = run(&["invoke", "-n", "invoked-fn", "-a"]).ok();
    assert!(
        accepted.stdout.contains("Request accepted"),
        "{accepted:#?}"
    );
    let recorded = standin.recorded();
    assert_eq!(recorded.len(), 4, "{recorded:?}");
    assert_eq!(recorded[3]["invocation_type"], "Event");

    // `rm` finds the API's id in the emulator's URL.
    run(&["rm", "-n", "invoked-fn"]).ok();
    assert!(
        env.moto.rest_apis().is_empty(),
        "{:?}",
        env.moto.rest_apis()
    );
}

/// The requests moto received since `start-recording` (moto's recorder, which writes them
/// to `MOTO_RECORDER_FILEPATH`): each one's method, URL and body.
fn recorded_requests(moto: &Moto) -> Vec<(String, String, Vec<u8>)> {
    use base64::Engine as _;
    let (status, text) = moto
        .http("GET", "/moto-api/recorder/download-recording", &[], b"")
        .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&text));
    let b64 = base64::engine::general_purpose::STANDARD;
    String::from_utf8(text)
        .unwrap()
        .lines()
        .map(|line| {
            let entry: serde_json::Value = serde_json::from_str(line).unwrap();
            let body = entry["body"].as_str().unwrap_or_default();
            let body = match entry["body_encoded"].as_bool() {
                Some(true) => b64.decode(body).unwrap(),
                _ => body.as_bytes().to_vec(),
            };
            let method = entry["method"].as_str().unwrap().to_string();
            (method, entry["url"].as_str().unwrap().to_string(), body)
        })
        .collect()
}

/// SCAR's `architectures: [arm64]` on AWS: Lambda is asked for `Architectures: ["arm64"]`,
/// the image's arm64 variant is the one packaged, and the zip's `bootstrap` is the arm64
/// supervisor (an aarch64 ELF, byte for byte); `ls` reads the architecture back. An
/// image with no arm64 variant, and two architectures, are refused naming the cause.
#[test]
fn fdl_arm64_reaches_lambda_with_the_arm64_supervisor() {
    let Some(arm64_supervisor) = support::supervisor_aarch64() else {
        return;
    };
    let recording = tempfile::tempdir().unwrap();
    let file = recording.path().join("moto-requests.jsonl");
    let vars = [("MOTO_RECORDER_FILEPATH", file.to_str().unwrap())];
    let Some(mut env) = Env::start_with(IMAGE_TOOLS, &vars) else {
        return;
    };
    env.env.push((
        "SCAR_SUPERVISOR_AARCH64".into(),
        arm64_supervisor.display().to_string(),
    ));
    // The test image, said to be arm64 (what runs in it does not matter on moto).
    let arm_dir = env.work.path().join("arm64");
    let arm_image = build_busybox_image(&arm_dir);
    arm_image.config(&["--architecture=arm64"]);
    let arm_archive = arm_dir.join("image.tar");
    arm_image.docker_archive(&arm_archive);
    let yaml = |name: &str, archs: &str, archive: &std::path::Path| {
        format!(
            "functions:\n  aws:\n  - lambda:\n      name: {name}\n      architectures: {archs}\n      container: {{image_file: {}}}\n    iam: {{role: {{role}}}}\n",
            archive.display()
        )
    };
    let fdl = env.fdl("arm.yaml", &yaml("arm-fn", "[arm64]", &arm_archive));
    let (status, text) = env
        .moto
        .http("POST", "/moto-api/recorder/start-recording", &[], b"")
        .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&text));
    let init = env
        .run(&["init", "-f", &fdl, "--package", "zip", "--json"])
        .ok();
    let created = init.json();
    assert_eq!(created[0]["spec"]["architecture"], "arm64", "{created}");
    if images::host_architecture() != "arm64" {
        // The machine's proot (the one the tests give zips) is not arm64: said.
        assert!(
            init.stderr
                .contains("is not an aarch64 executable, and function 'arm-fn' is arm64"),
            "{init:#?}"
        );
    }
    let got = env.moto.lambda_function(moto::REGION, "arm-fn").unwrap();
    assert_eq!(
        got["Configuration"]["Architectures"],
        serde_json::json!(["arm64"]),
        "{got}"
    );
    let listed = env.run(&["ls", "--json"]).ok().json();
    assert_eq!(listed[0]["spec"]["architecture"], "arm64", "{listed}");

    // The zip scar sent in CreateFunction: its bootstrap is the arm64 supervisor.
    let requests = recorded_requests(&env.moto);
    let create = requests
        .iter()
        .find(|(method, url, _)| method == "POST" && url.ends_with("/2015-03-31/functions"))
        .unwrap_or_else(|| panic!("no CreateFunction among {} requests", requests.len()));
    let body: serde_json::Value = serde_json::from_slice(&create.2).unwrap();
    assert_eq!(body["Architectures"], serde_json::json!(["arm64"]));
    use base64::Engine as _;
    let zip = base64::engine::general_purpose::STANDARD
        .decode(body["Code"]["ZipFile"].as_str().unwrap())
        .unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    let mut bootstrap = Vec::new();
    std::io::Read::read_to_end(&mut zip.by_name("bootstrap").unwrap(), &mut bootstrap).unwrap();
    // ELF, e_machine 183 (EM_AARCH64) at offset 18, little-endian.
    assert_eq!(&bootstrap[..4], b"\x7fELF");
    assert_eq!(u16::from_le_bytes([bootstrap[18], bootstrap[19]]), 183);
    assert!(bootstrap == std::fs::read(&arm64_supervisor).unwrap());
    env.run(&["rm", "-f", &fdl]).ok();

    // Refused, nothing created: two architectures (Lambda takes one); an image that has
    // no arm64 variant (the test image as built, of this machine's architecture).
    let two = env.fdl("two.yaml", &yaml("two-fn", "[x86_64, arm64]", &arm_archive));
    env.run(&["init", "-f", &two, "--package", "zip"])
        .assert_refused(
            "functions.aws[0].lambda.architectures: Lambda runs a function on one architecture",
        );
    assert!(env.moto.lambda_function(moto::REGION, "two-fn").is_none());
    if images::host_architecture() != "arm64" {
        let host = env.fdl(
            "host.yaml",
            &yaml("host-fn", "[arm64]", &env.image_archive()),
        );
        let r = env.run(&["init", "-f", &host, "--package", "zip"]);
        assert_ne!(r.status, 0, "{r:#?}");
        assert!(r.stderr.contains("arm64"), "{r:#?}");
        assert!(env.moto.lambda_function(moto::REGION, "host-fn").is_none());
    }
}

/// SCAR's `extra_payload` (`-ep`) on AWS: the zip sent in CreateFunction holds the folder's
/// files at its root (Lambda unpacks it at /var/task), the function's variables say
/// `EXTRA_PAYLOAD=/var/task`, and `ls` reads the folder back without showing that
/// variable as the user's.
#[test]
fn extra_payload_is_in_the_zip_at_var_task_with_its_variable() {
    let recording = tempfile::tempdir().unwrap();
    let file = recording.path().join("moto-requests.jsonl");
    let vars = [("MOTO_RECORDER_FILEPATH", file.to_str().unwrap())];
    let Some(env) = Env::start_with(IMAGE_TOOLS, &vars) else {
        return;
    };
    let payload = folder_with(
        env.work.path().join("payload"),
        &[("greeting.txt", "hello\n"), ("sub/deeper.txt", "below\n")],
    );
    let dir = payload.to_str().unwrap();
    let (status, text) = env
        .moto
        .http("POST", "/moto-api/recorder/start-recording", &[], b"")
        .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&text));
    let info = env.init("ep-fn", &["--package", "zip", "-ep", dir]);
    assert_eq!(info["spec"]["extra_payload"], dir, "{info}");

    let got = env.moto.lambda_function(moto::REGION, "ep-fn").unwrap();
    assert_eq!(
        got["Configuration"]["Environment"]["Variables"]["EXTRA_PAYLOAD"], "/var/task",
        "{got}"
    );
    let listed = env.run(&["ls", "--json"]).ok().json();
    assert_eq!(listed[0]["spec"]["extra_payload"], dir, "{listed}");
    assert!(
        listed[0]["spec"]
            .get("lambda_environment")
            .and_then(|e| e.get("EXTRA_PAYLOAD"))
            .is_none(),
        "{listed}"
    );

    let requests = recorded_requests(&env.moto);
    let create = requests
        .iter()
        .find(|(method, url, _)| method == "POST" && url.ends_with("/2015-03-31/functions"))
        .unwrap_or_else(|| panic!("no CreateFunction among {} requests", requests.len()));
    let body: serde_json::Value = serde_json::from_slice(&create.2).unwrap();
    use base64::Engine as _;
    let zip = base64::engine::general_purpose::STANDARD
        .decode(body["Code"]["ZipFile"].as_str().unwrap())
        .unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    let mut read = |name: &str| {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut zip.by_name(name).unwrap(), &mut text).unwrap();
        text
    };
    assert_eq!(read("greeting.txt"), "hello\n");
    assert_eq!(read("sub/deeper.txt"), "below\n");
    assert!(zip.by_name("bootstrap").is_ok());
}

/// The image package carries the extra payload at /var/task in its supervisor layer.
#[test]
fn extra_payload_is_in_the_image_package_at_var_task() {
    let Some(mut env) = Env::start(&["umoci", "skopeo", "busybox", "docker-registry"]) else {
        return;
    };
    let registry = TestRegistry::start();
    env.env
        .push(("SCAR_ECR_REGISTRY".into(), registry.addr.clone()));
    let payload = folder_with(
        env.work.path().join("payload"),
        &[("greeting.txt", "hello\n"), ("sub/deeper.txt", "below\n")],
    );
    let info = env.init("EpImg", &["-ep", payload.to_str().unwrap()]);
    assert_eq!(info["package"], "image", "{info}");
    let got = env.moto.lambda_function(moto::REGION, "EpImg").unwrap();
    assert_eq!(
        got["Configuration"]["Environment"]["Variables"]["EXTRA_PAYLOAD"], "/var/task",
        "{got}"
    );

    // The pushed image, copied to an OCI layout: its last layer has the files.
    let layout = env.work.path().join("pulled");
    let reference = format!("docker://{}/scar-epimg:latest", registry.addr);
    let out = Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false", &reference])
        .arg(format!("oci:{}:x", layout.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let blob = |digest: &str| {
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let json = |path: PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    };
    let index = json(layout.join("index.json"));
    let manifest = json(blob(index["manifests"][0]["digest"].as_str().unwrap()));
    let last = manifest["layers"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    let layer = std::fs::File::open(blob(last["digest"].as_str().unwrap())).unwrap();
    let mut tar = tar::Archive::new(gunzip(layer));
    let mut files = std::collections::BTreeMap::new();
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        files.insert(path, String::from_utf8_lossy(&bytes).into_owned());
    }
    assert_eq!(files["var/task/greeting.txt"], "hello\n", "{files:?}");
    assert_eq!(files["var/task/sub/deeper.txt"], "below\n", "{files:?}");
    assert!(files.contains_key("opt/scar/bootstrap"), "{files:?}");
}

/// `layer` ungzipped by `gzip -dc` (the tests have no gzip library).
fn gunzip(layer: std::fs::File) -> std::io::Cursor<Vec<u8>> {
    let out = Command::new("gzip")
        .arg("-dc")
        .stdin(layer)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::io::Cursor::new(out.stdout)
}
