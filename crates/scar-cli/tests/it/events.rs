//! Event-driven processing on the local provider: buckets, put, the launcher, serve.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use scar_test_support::scar as support;
use sha2::{Digest, Sha256};
use support::Scar;

use crate::common::{with_busybox_archive, with_busybox_image};

/// For each input: its checksum, and the event it saw, as outputs named after it.
const CHECKSUM_SCRIPT: &str = r#"name=$(basename "$INPUT_FILE_PATH")
sha256sum "$INPUT_FILE_PATH" | cut -d' ' -f1 > "$TMP_OUTPUT_DIR/$name.sha256"
printf '%s' "$EVENT" > "$TMP_OUTPUT_DIR/$name.event.json"
echo "processed key=$STORAGE_OBJECT_KEY"
"#;

fn setup(
    name: &str,
    bucket: &str,
    script: &str,
    extra: &[&str],
) -> Option<(Scar, tempfile::TempDir)> {
    let (scar, work, archive) = with_busybox_archive(&["umoci", "skopeo", "busybox"])?;
    let script_path = work.path().join("init.sh");
    std::fs::write(&script_path, script).unwrap();
    let mut args = vec!["-es", bucket, "-s", script_path.to_str().unwrap()];
    args.extend_from_slice(extra);
    scar.init_from(name, &archive, &args).ok();
    Some((scar, work))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// How many invocations each key got, from the function's logs.
fn runs_per_key(scar: &Scar, name: &str) -> BTreeMap<String, usize> {
    let log = scar.run(&["log", "-n", name]).ok().stdout;
    let mut counts = BTreeMap::new();
    for line in log.lines() {
        if let Some(key) = line.strip_prefix("processed key=") {
            *counts.entry(key.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

#[test]
fn two_hundred_files_give_two_hundred_output_sets() {
    let Some((scar, work)) = setup("many", "many-files", CHECKSUM_SCRIPT, &[]) else {
        return;
    };
    let inputs = work.path().join("inputs");
    let mut originals = BTreeMap::new();
    for i in 0..200 {
        let rel = match i % 4 {
            0 => format!("plain-{i}.txt"),
            1 => format!("with space {i}+plus%pct.txt"),
            2 => format!("ünïcødé/日本-{i}.dat"),
            _ => format!("deep/er/path/file {i}.bin"),
        };
        let path = inputs.join(&rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let content = format!("content of file {i}\n").repeat(i + 1);
        std::fs::write(&path, &content).unwrap();
        originals.insert(format!("input/{rel}"), content);
    }
    let r = scar.put_json("many-files/input", &inputs);
    assert_eq!(r.status, 0, "{r:#?}");
    let results = r.json()["results"].clone();
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), 200);
    assert!(
        results.iter().all(|r| r["outcome"] == "succeeded"),
        "{results:?}"
    );

    let out = scar.bucket("many-files").join("output");
    for (key, content) in &originals {
        let name = key.rsplit('/').next().unwrap();
        let sum = std::fs::read_to_string(out.join(format!("{name}.sha256"))).unwrap_or_else(|e| {
            panic!(
                "{key}: {e}: {:?}",
                std::fs::read_dir(&out)
                    .unwrap()
                    .map(|e| e.unwrap().file_name())
                    .collect::<Vec<_>>()
            )
        });
        assert_eq!(sum.trim(), sha256_hex(content.as_bytes()), "{key}");
        let event = std::fs::read(out.join(format!("{name}.event.json"))).unwrap();
        let event: aws_lambda_events::event::s3::S3Event = serde_json::from_slice(&event).unwrap();
        let record = &event.records[0];
        assert_eq!(record.event_name.as_deref(), Some("ObjectCreated:Put"));
        assert_eq!(record.s3.bucket.name.as_deref(), Some("many-files"));
        assert_eq!(record.s3.object.size, Some(content.len() as i64));
        let raw_key = record.s3.object.key.clone().unwrap();
        assert!(!raw_key.contains(' '), "keys are URL-encoded: {raw_key}");
        assert_eq!(&scar_core_decode(&raw_key), key);
    }
    // 400 outputs, nothing else; each input ran once.
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 400);
    let runs = runs_per_key(&scar, "many");
    assert_eq!(runs.len(), 200);
    assert!(runs.values().all(|n| *n == 1), "{runs:?}");
    // `ls -b` and `get` agree with the bucket.
    let listed = scar
        .run(&["ls", "-b", "many-files/output", "--json"])
        .ok()
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 400);
    let dest = work.path().join("got");
    scar.run(&[
        "get",
        "-b",
        "many-files/output",
        "-p",
        dest.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(std::fs::read_dir(&dest).unwrap().count(), 400);
}

/// The decoding S3 clients apply to event keys (`+` is a space, `%XX` a byte).
fn scar_core_decode(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                out.push(u8::from_str_radix(&key[i + 1..i + 3], 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn launcher_bound_progress_failures_timeouts_and_reruns() {
    let script = r#"name=$(basename "$INPUT_FILE_PATH")
echo "processed key=$STORAGE_OBJECT_KEY"
echo partial > "$TMP_OUTPUT_DIR/$name.out"
case "$name" in
  fail*) echo "bad input $name" >&2; exit 3 ;;
  slow*) sleep 30.1 ;;
  *) sleep 0.31 ;;
esac
"#;
    let Some((scar, work)) = setup("launch", "launch-b", script, &["-t", "3", "-tt", "1"]) else {
        return;
    };
    let input = scar.bucket("launch-b").join("input");
    for i in 0..10 {
        std::fs::write(input.join(format!("ok-{i}.txt")), "x").unwrap();
    }
    std::fs::write(input.join("fail-1.txt"), "x").unwrap();
    std::fs::write(input.join("slow-1.txt"), "x").unwrap();
    // A folder is not an object.
    std::fs::create_dir_all(input.join("empty-folder")).unwrap();

    // Count the scripts' `sleep` processes from the host while the launcher runs.
    let launch = [
        "run",
        "-n",
        "launch",
        "-es",
        "launch-b",
        "--concurrency",
        "2",
        "--json",
    ];
    let mut child = scar.spawn(&launch, Stdio::piped());
    let mut max_running = 0;
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(60) {
        max_running = max_running.max(count_sleeps(&["0.31", "30.1"]));
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "some files failed");
    assert!(max_running <= 2, "{max_running} scripts ran at once");
    assert_eq!(max_running, 2, "the bound was never reached");
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), 12);
    let by_key: BTreeMap<&str, &serde_json::Value> = results
        .iter()
        .map(|r| (r["key"].as_str().unwrap(), r))
        .collect();
    assert_eq!(by_key["input/fail-1.txt"]["outcome"], "failed");
    assert_eq!(by_key["input/fail-1.txt"]["exit_code"], 3);
    assert!(by_key["input/fail-1.txt"]["output_tail"]
        .as_str()
        .unwrap()
        .contains("bad input fail-1.txt"));
    assert_eq!(by_key["input/slow-1.txt"]["outcome"], "timed_out");
    assert_eq!(by_key["input/ok-3.txt"]["outcome"], "succeeded");
    // A timed-out run still uploads what it wrote.
    let output = scar.bucket("launch-b").join("output");
    assert_eq!(
        std::fs::read_to_string(output.join("slow-1.txt.out")).unwrap(),
        "partial\n"
    );
    assert_eq!(std::fs::read_dir(&output).unwrap().count(), 12);
    // No more sandboxes than the bound: one log stream each.
    let streams = count_files(&scar.home.path().join("logs/launch"));
    assert!(streams <= 2, "{streams} sandboxes");

    // The human summary agrees.
    let again = scar.run(&["run", "-n", "launch", "-es", "launch-b", "--only-failed"]);
    assert_eq!(again.status, 1);
    assert!(
        again
            .stdout
            .contains("2 files: 0 succeeded, 1 failed, 1 timed out"),
        "{again:#?}"
    );
    assert!(
        again
            .stdout
            .contains("FAILED input/fail-1.txt (exit status 3"),
        "{again:#?}"
    );
    // Fix the failing file: --only-failed runs just the two, then nothing is pending.
    std::fs::remove_file(input.join("slow-1.txt")).unwrap();
    std::fs::write(input.join("fail-1.txt"), "x").unwrap();
    let r = scar.run(&[
        "run",
        "-n",
        "launch",
        "-es",
        "launch-b",
        "--pending",
        "--json",
    ]);
    assert_eq!(r.json().as_array().unwrap().len(), 0, "{r:#?}");
    drop(work);
}

#[test]
fn serve_picks_up_cp_mv_and_files_written_while_stopped() {
    let Some((scar, work)) = setup("served", "served-b", CHECKSUM_SCRIPT, &[]) else {
        return;
    };
    let input = scar.bucket("served-b").join("input");
    std::fs::write(input.join("before-start.txt"), "early").unwrap();
    let serve =
        |scar: &Scar| scar.spawn(&["serve", "--concurrency", "2", "--json"], Stdio::piped());
    let wait_outputs = |n: usize| {
        let out = scar.bucket("served-b").join("output");
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0) >= n * 2 {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("timed out waiting for {n} output sets");
    };
    let mut server = serve(&scar);
    wait_outputs(1);
    // Another program (`cp`, `mv`) puts a file written elsewhere into the input folder.
    let put_in_by = |program: &str, text: &str, name: &str| {
        let src = work.path().join(format!("{program}-source.txt"));
        std::fs::write(&src, text).unwrap();
        let done = std::process::Command::new(program)
            .arg(&src)
            .arg(input.join(name))
            .status();
        assert!(done.unwrap().success(), "{program}");
    };
    put_in_by("cp", "copied", "by cp.txt");
    put_in_by("mv", "moved", "by-mv.txt");
    std::fs::create_dir_all(input.join("new dir")).unwrap();
    std::fs::write(input.join("new dir/inner.txt"), "inner").unwrap();
    wait_outputs(4);
    // `put` while the server holds the function: the server runs it, and put reports what
    // that run uploaded, read from the function's record.
    let put_file = work.path().join("put-while-serving.txt");
    std::fs::write(&put_file, "put").unwrap();
    let r = scar.put_json("served-b/input", &put_file);
    assert_eq!(r.status, 0, "{r:#?}");
    let put = r.json()["results"].clone();
    assert_eq!(put[0]["key"], "input/put-while-serving.txt", "{put}");
    assert_eq!(put[0]["exit_code"], 0, "{put}");
    assert_eq!(
        put[0]["uploaded"],
        serde_json::json!([
            "served-b/output/put-while-serving.txt.event.json",
            "served-b/output/put-while-serving.txt.sha256"
        ]),
        "{put}"
    );
    stop(&mut server);

    // Written while stopped: picked up at the next start; nothing runs twice.
    std::fs::write(input.join("while-stopped.txt"), "late").unwrap();
    let mut server = serve(&scar);
    wait_outputs(6);
    stop(&mut server);
    let runs = runs_per_key(&scar, "served");
    let expected = [
        "input/before-start.txt",
        "input/by cp.txt",
        "input/by-mv.txt",
        "input/new dir/inner.txt",
        "input/put-while-serving.txt",
        "input/while-stopped.txt",
    ];
    assert_eq!(
        runs.keys().map(String::as_str).collect::<Vec<_>>(),
        expected,
        "{runs:?}"
    );
    assert!(runs.values().all(|n| *n == 1), "{runs:?}");
    let out = scar.bucket("served-b").join("output");
    assert_eq!(
        std::fs::read_to_string(out.join("by cp.txt.sha256"))
            .unwrap()
            .trim(),
        sha256_hex(b"copied")
    );
}

/// Each run leaves one empty output named after its input and its request id, so that runs
/// per input can be counted from the output folder.
const RUN_MARK_SCRIPT: &str = r#"name=$(basename "$INPUT_FILE_PATH")
echo "processed key=$STORAGE_OBJECT_KEY"
: > "$TMP_OUTPUT_DIR/$name.$REQUEST_ID.run"
"#;

/// The fault test of `scar serve`: 2,000 files written the way cp+mv, rsync and downloaders
/// write them (`.NAME.tmp`, then renamed to `NAME`) while serve is killed with SIGKILL twice
/// and restarted. No file is lost, no run is on a temporary name, and what runs again is at
/// most what was in flight at the kills.
#[test]
fn serve_under_a_renaming_writer_and_two_kills_runs_each_file_once() {
    const FILES: usize = 2000;
    const CONCURRENCY: usize = 2;
    let Some((scar, _work)) = setup("renamed", "renamed-b", RUN_MARK_SCRIPT, &[]) else {
        return;
    };
    let input = scar.bucket("renamed-b").join("input");
    let out = scar.bucket("renamed-b").join("output");
    let started = Instant::now();
    // serve's `--json` lines, read as they come (a full pipe would stall serve).
    let reported = std::sync::Arc::new(std::sync::Mutex::new(Vec::<serde_json::Value>::new()));
    let serve = || {
        let concurrency = CONCURRENCY.to_string();
        let mut child = scar.spawn(
            &["serve", "--concurrency", &concurrency, "--json"],
            Stdio::piped(),
        );
        let stdout = child.stdout.take().unwrap();
        let reported = reported.clone();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                // Results only: not the line saying where the Invoke API listens.
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    if v.get("result").is_some() {
                        reported.lock().unwrap().push(v);
                    }
                }
            }
        });
        child
    };
    // Runs per input name, from the outputs (`NAME.REQUESTID.run`).
    let runs = || {
        let mut per_name: BTreeMap<String, usize> = BTreeMap::new();
        for entry in std::fs::read_dir(&out).into_iter().flatten().flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            if let Some((name, _id)) = file.strip_suffix(".run").and_then(|f| f.rsplit_once('.')) {
                *per_name.entry(name.to_string()).or_insert(0) += 1;
            }
        }
        per_name
    };
    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writer = {
        let input = input.clone();
        let written = written.clone();
        std::thread::spawn(move || {
            for i in 0..FILES {
                let name = format!("f{i:04}.txt");
                let tmp = input.join(format!(".{name}.tmp"));
                std::fs::write(&tmp, format!("file {i}\n")).unwrap();
                if i < FILES / 2 {
                    // The first half as `cp` then `mv` from a shell: a moment between the
                    // two, and files no faster than serve runs them, so that serve is
                    // idle when a temporary name is closed.
                    std::thread::sleep(Duration::from_millis(2));
                    std::fs::rename(&tmp, input.join(&name)).unwrap();
                    std::thread::sleep(Duration::from_millis(3));
                } else {
                    // The second half as fast as it goes: a backlog builds up.
                    std::fs::rename(&tmp, input.join(&name)).unwrap();
                }
                written.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        })
    };
    let wait_until = |what: &str, done: &dyn Fn() -> bool| {
        while !done() {
            assert!(
                started.elapsed() < Duration::from_secs(150),
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let mut server = serve();
    // Kill 1: while the writer writes, once serve is running things.
    wait_until("the first outputs", &|| {
        written.load(std::sync::atomic::Ordering::SeqCst) >= FILES / 4
            && runs().values().sum::<usize>() >= 20
    });
    server.kill().unwrap();
    server.wait().unwrap();
    let at_first_kill = runs().values().sum::<usize>();
    std::thread::sleep(Duration::from_millis(300));
    let mut server = serve();
    // Kill 2: after the writer is done, in the middle of the backlog.
    writer.join().unwrap();
    let second_at = (at_first_kill + FILES) / 2;
    wait_until("half the backlog", &|| {
        runs().values().sum::<usize>() >= second_at
    });
    server.kill().unwrap();
    server.wait().unwrap();
    let at_second_kill = runs().values().sum::<usize>();
    let mut server = serve();
    let names: Vec<String> = (0..FILES).map(|i| format!("f{i:04}.txt")).collect();
    wait_until("every file to run", &|| {
        let runs = runs();
        names.iter().all(|n| runs.contains_key(n))
    });
    stop(&mut server);
    let elapsed = started.elapsed();

    // Three views of the runs, by input name: the outputs (runs that succeeded), the log
    // (scripts that started, killed ones included) and serve's results (invocations that
    // ended, failed ones included: a script may fail before it logs). A name's runs are the
    // most any view saw.
    let outputs = runs();
    let basename = |key: &str| key.rsplit('/').next().unwrap_or(key).to_string();
    let mut logged: BTreeMap<String, usize> = BTreeMap::new();
    for (key, n) in runs_per_key(&scar, "renamed") {
        *logged.entry(basename(&key)).or_insert(0) += n;
    }
    let reported = reported.lock().unwrap();
    let mut results: BTreeMap<String, usize> = BTreeMap::new();
    for v in reported.iter() {
        *results
            .entry(basename(v["result"]["key"].as_str().unwrap_or_default()))
            .or_insert(0) += 1;
    }
    let mut runs: BTreeMap<String, usize> = BTreeMap::new();
    for view in [&outputs, &logged, &results] {
        for (name, n) in view {
            let most = runs.entry(name.clone()).or_insert(0);
            *most = (*most).max(*n);
        }
    }
    let total: usize = runs.values().sum();
    let lost: Vec<&String> = names.iter().filter(|n| !outputs.contains_key(*n)).collect();
    let on_temporary: usize = runs
        .iter()
        .filter(|(n, _)| !names.contains(n))
        .map(|(_, c)| c)
        .sum();
    let extra = total.saturating_sub(FILES);
    let not_ok: Vec<&serde_json::Value> = reported
        .iter()
        .filter(|v| v["result"]["outcome"] != "succeeded")
        .collect();
    eprintln!(
        "serve fault test: {FILES} files, {total} runs ({} succeeded, {} started per the log, \
         {} results reported), {extra} extra runs, {on_temporary} runs on temporary names, \
         {} lost, {} results not succeeded; kills at {at_first_kill} and {at_second_kill} \
         runs, concurrency {CONCURRENCY}, {:.1} s",
        outputs.values().sum::<usize>(),
        logged.values().sum::<usize>(),
        reported.len(),
        lost.len(),
        not_ok.len(),
        elapsed.as_secs_f64()
    );
    assert!(lost.is_empty(), "lost: {lost:?}");
    assert_eq!(
        on_temporary,
        0,
        "runs on temporary names: {:?}",
        runs.iter()
            .filter(|(n, _)| !names.contains(n))
            .collect::<Vec<_>>()
    );
    assert!(
        extra <= 2 * CONCURRENCY,
        "{extra} extra runs: {:?}",
        runs.iter().filter(|(_, c)| **c > 1).collect::<Vec<_>>()
    );
    assert!(not_ok.is_empty(), "{not_ok:?}");
}

#[test]
fn put_async_returns_at_once_and_the_files_still_run() {
    let Some((scar, work)) = setup("later", "later-b", CHECKSUM_SCRIPT, &[]) else {
        return;
    };
    let dir = work.path().join("batch");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..5 {
        std::fs::write(dir.join(format!("a{i}.txt")), format!("{i}")).unwrap();
    }
    let r = scar
        .run(&[
            "put",
            "-b",
            "later-b/input",
            "-p",
            dir.to_str().unwrap(),
            "--async",
        ])
        .ok();
    assert!(r.stdout.contains("in the background"), "{r:#?}");
    let out = scar.bucket("later-b").join("output");
    let started = Instant::now();
    while std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0) < 10 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the background run did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        std::fs::read_to_string(out.join("a3.txt.sha256"))
            .unwrap()
            .trim(),
        sha256_hex(b"3")
    );
    // Each ran once, and nothing is pending.
    let started = Instant::now();
    loop {
        let r = scar.run(&[
            "run",
            "-n",
            "later",
            "-es",
            "later-b",
            "--pending",
            "--json",
        ]);
        if r.status == 0 {
            assert_eq!(r.json().as_array().unwrap().len(), 0, "{r:#?}");
            break;
        }
        // The background launcher may still hold the function for a moment.
        assert!(r.stderr.contains("being served"), "{r:#?}");
        assert!(started.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(runs_per_key(&scar, "later").values().all(|n| *n == 1));
}

#[test]
fn a_killed_launcher_loses_nothing() {
    let script = "name=$(basename \"$INPUT_FILE_PATH\")\necho \"processed key=$STORAGE_OBJECT_KEY\"\nsleep 0.1\ncp \"$INPUT_FILE_PATH\" \"$TMP_OUTPUT_DIR/$name\"\n";
    let Some((scar, _work)) = setup("killed", "killed-b", script, &[]) else {
        return;
    };
    let input = scar.bucket("killed-b").join("input");
    for i in 0..40 {
        std::fs::write(input.join(format!("f{i:02}.txt")), format!("{i}")).unwrap();
    }
    let launch = [
        "run",
        "-n",
        "killed",
        "-es",
        "killed-b",
        "--concurrency",
        "2",
    ];
    let mut child = scar.spawn(&launch, Stdio::null());
    std::thread::sleep(Duration::from_millis(800));
    child.kill().unwrap();
    child.wait().unwrap();
    let out = scar.bucket("killed-b").join("output");
    let before = std::fs::read_dir(&out).unwrap().count();
    assert!(
        before < 40,
        "the launcher finished before it was killed ({before})"
    );
    let r = scar.run(&[
        "run",
        "-n",
        "killed",
        "-es",
        "killed-b",
        "--pending",
        "--json",
    ]);
    assert_eq!(r.status, 0, "{r:#?}");
    for i in 0..40 {
        let name = format!("f{i:02}.txt");
        assert_eq!(
            std::fs::read_to_string(out.join(&name)).unwrap(),
            format!("{i}"),
            "{name}"
        );
    }
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 40);
}

#[test]
fn buckets_are_bound_to_one_function_and_memory_is_limited() {
    let script = "dd if=/dev/zero of=/dev/null bs=300M count=1 && echo allocated\n";
    let Some((scar, work)) = setup("small", "bound-b", script, &["-m", "128"]) else {
        return;
    };
    let archive = work.path().join("image.tar");
    let r = scar.init_from("other", &archive, &["-es", "bound-b"]);
    r.assert_refused("bound-b/input is already taken: bound-b/input triggers function \"small\"");
    let r = scar.init_from("other", &archive, &["-es", "Bad_Bucket"]);
    assert_eq!(r.status, 2, "{r:#?}");
    let r = scar.run(&["run", "-n", "small", "--json"]);
    if r.stderr.contains("memory limits are not enforced") {
        eprintln!(
            "*** memory limit not enforceable here: {} ***",
            r.stderr.trim()
        );
        assert!(
            std::env::var_os("CI").is_none(),
            "CI machines run as root with cgroups"
        );
        return;
    }
    assert_eq!(r.status, 1, "{r:#?}");
    let j = r.json();
    assert!(!j["output"].as_str().unwrap().contains("allocated"), "{j}");
    assert!(
        j["output"].as_str().unwrap().contains("ran out of memory"),
        "{j}"
    );
    // Removing the function unbinds the bucket.
    scar.run(&["rm", "-n", "small"]).ok();
    scar.init_from("other", &archive, &["-es", "bound-b"]).ok();
}

/// An FDL output location inside the function's own `input/` (`loop-b/input/results`):
/// what the function writes there never runs it again, through `put`, `serve` or the
/// launcher; an output location that holds all of `input/` is refused at `init`.
#[test]
fn a_functions_own_outputs_never_trigger_it() {
    let Some((scar, work, _)) = with_busybox_image() else {
        return;
    };
    std::fs::write(work.path().join("sum.sh"), CHECKSUM_SCRIPT).unwrap();
    let fdl = |output: &str| {
        format!(
            "functions:\n  aws:\n  - lambda:\n      name: loop\n      init_script: sum.sh\n      container: {{image: ./image/oci:latest}}\n      input: [{{path: loop-b/input}}]\n      output: [{{path: {output}}}]\n"
        )
    };
    for holds_input in ["loop-b", "loop-b/input"] {
        let file = work.path().join("over.yaml");
        std::fs::write(&file, fdl(holds_input)).unwrap();
        let r = scar.run(&["init", "-f", file.to_str().unwrap()]);
        assert_eq!(r.status, 2, "{holds_input}: {r:#?}");
        assert!(r.stderr.contains("holds the input folder"), "{}", r.stderr);
        assert_eq!(
            scar.run(&["ls", "--json"]).ok().json(),
            serde_json::json!([])
        );
    }
    let file = work.path().join("scar.yaml");
    std::fs::write(&file, fdl("loop-b/input/results")).unwrap();
    scar.run(&["init", "-f", file.to_str().unwrap()]).ok();
    let input = scar.bucket("loop-b").join("input");
    let results = input.join("results");

    // put: one invocation, for the input only.
    let src = work.path().join("first.txt");
    std::fs::write(&src, "first").unwrap();
    let r = scar.put_json("loop-b/input", &src);
    assert_eq!(r.status, 0, "{r:#?}");
    let put = r.json()["results"].clone();
    assert_eq!(put.as_array().unwrap().len(), 1, "{put}");
    assert_eq!(
        put[0]["uploaded"],
        serde_json::json!([
            "loop-b/input/results/first.txt.event.json",
            "loop-b/input/results/first.txt.sha256"
        ])
    );

    // serve: files written by another program run once each; their outputs, written into
    // the watched folder, do not.
    let mut server = scar.spawn(&["serve", "--json"], Stdio::null());
    for name in ["second.txt", "third.txt"] {
        std::fs::write(input.join(name), name).unwrap();
    }
    let started = Instant::now();
    while count_files(&results) < 6 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no outputs from serve"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Time for any event the outputs raised to run (it would, within milliseconds).
    std::thread::sleep(Duration::from_millis(1500));
    stop(&mut server);
    assert_eq!(count_files(&results), 6, "outputs of outputs were made");
    let runs = runs_per_key(&scar, "loop");
    assert_eq!(
        runs.keys().collect::<Vec<_>>(),
        ["input/first.txt", "input/second.txt", "input/third.txt"],
        "{runs:?}"
    );
    assert!(runs.values().all(|n| *n == 1), "{runs:?}");

    // The launcher: nothing pending, and a full run covers the three inputs alone.
    let r = scar.run(&["run", "-n", "loop", "-es", "loop-b", "--pending", "--json"]);
    assert_eq!(r.json().as_array().unwrap().len(), 0, "{r:#?}");
    let r = scar.run(&["run", "-n", "loop", "-es", "loop-b", "--json"]);
    assert_eq!(r.status, 0, "{r:#?}");
    let mut keys: Vec<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["key"].as_str().unwrap().to_string())
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        ["input/first.txt", "input/second.txt", "input/third.txt"]
    );
    assert_eq!(count_files(&results), 6);
}

fn stop(child: &mut std::process::Child) {
    // SAFETY: signalling our own child.
    unsafe {
        libc_kill(child.id() as i32, 2);
    }
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "scar serve did not stop on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// `sleep` processes with one of these arguments (other tests sleep too).
fn count_sleeps(args: &[&str]) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let parts: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            parts.first().is_some_and(|p| p.ends_with(b"sleep"))
                && parts
                    .get(1)
                    .is_some_and(|a| args.iter().any(|x| x.as_bytes() == *a))
        })
        .count()
}

fn count_files(dir: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                n += 1;
            }
        }
    }
    n
}
