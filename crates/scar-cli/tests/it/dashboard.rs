//! `scar serve`'s dashboard in a real browser: Debian's headless Chromium driven by
//! Playwright for Python (`tests/data/dashboard.py`), against a two-step chain; and its
//! JSON API checked against what `scar log` and the buckets say.

use std::process::Command;

use super::common::{folder_with, scar_with, with_busybox_image, write_file};
use super::serve_http::Served;

/// Step `STEP` of the chain: the input with the step appended, under the input's name; a
/// file named `bad*` fails (exit 3) with a line saying so.
const STEP_SCRIPT: &str = r#"name=$(basename "$INPUT_FILE_PATH")
case "$name" in bad*) echo "refusing $name"; exit 3;; esac
printf '%s|%s' "$(cat "$INPUT_FILE_PATH")" "$STEP" > "$TMP_OUTPUT_DIR/$name"
echo "step $STEP ran for $STORAGE_OBJECT_KEY"
"#;

/// Values that must never reach the page or the API.
const ENV_SECRET: &str = "env-value-7f3a91c2";
const PROVIDER_SECRET: &str = "provider-secret-d84e02b7";

const GOOD_FILES: usize = 50;

#[test]
fn the_dashboard_shows_a_two_step_chain_live_in_a_browser() {
    if scar_with(&["python3", "chromium", "playwright"]).is_none() {
        return;
    }
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
      container: {{image: {image}, environment: {{Variables: {{STEP: 1, GREETING: {ENV_SECRET}}}}}}}
      input: [{{storage_provider: s3, path: flow/start}}]
      output: [{{storage_provider: s3, path: flow/mid}}]
  - lambda:
      name: two
      init_script: step.sh
      container: {{image: {image}, environment: {{Variables: {{STEP: 2}}}}}}
      input: [{{storage_provider: s3, path: flow/mid}}]
      output: [{{storage_provider: s3, path: flow/end}}]
storage_providers:
  minio:
    store:
      endpoint: http://127.0.0.1:9
      access_key: minio-user
      secret_key: {PROVIDER_SECRET}
"#
        ),
    );
    let r = scar.run(&["init", "-f", &fdl]);
    assert_eq!(r.status, 0, "{r:#?}");
    let mut files: Vec<(String, String)> = (0..GOOD_FILES)
        .map(|i| (format!("f{i:02}.txt"), format!("file {i}")))
        .collect();
    files.push(("bad.txt".into(), "bad".into()));
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let inputs = folder_with(work.path().join("inputs"), &files);

    let served = Served::start(&scar, &[]);
    assert_eq!(served.dashboard, format!("{}/", served.endpoint));
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    let driver = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/dashboard.py");
    let out = Command::new("python3")
        .args([
            driver,
            &served.endpoint,
            inputs.to_str().unwrap(),
            shots.to_str().unwrap(),
            ENV_SECRET,
            PROVIDER_SECRET,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();

    // The chain picture: both steps, 50 done each, the bad file failed in step one.
    assert_eq!(seen["one"]["done"], GOOD_FILES, "{seen:#}");
    assert_eq!(seen["one"]["failed"], 1, "{seen:#}");
    assert_eq!(seen["two"]["done"], GOOD_FILES, "{seen:#}");
    assert_eq!(seen["two"]["failed"], 0, "{seen:#}");
    assert_eq!(seen["one"]["text"], format!("done {GOOD_FILES}"));
    // The failed file's row and its log link, which leads to exactly its lines.
    assert_eq!(seen["failed_key"], "start/bad.txt", "{seen:#}");
    assert_eq!(seen["failed_rows"], 1, "{seen:#}");
    let id = seen["failed_request_id"].as_str().unwrap();
    let log = seen["log"].as_str().unwrap();
    let expected = scar.run(&["log", "-n", "one", "-ri", id]).ok().stdout;
    assert!(log.contains("refusing bad.txt"), "{log}");
    assert!(log.starts_with(&format!("START RequestId: {id}")), "{log}");
    assert_eq!(log.matches("REPORT RequestId:").count(), 1, "{log}");
    for line in log.lines() {
        assert!(
            expected.contains(line),
            "{line:?} is not in scar log -ri:\n{expected}"
        );
    }
    assert_eq!(seen["log_link_by_keyboard"], true, "{seen:#}");
    assert_eq!(seen["two_rows"], GOOD_FILES, "{seen:#}");
    assert!(seen["duration_points"].as_u64().unwrap() > 0, "{seen:#}");
    assert_eq!(seen["page_errors"], serde_json::json!([]), "{seen:#}");
    assert_eq!(
        seen["leaks"],
        serde_json::json!([]),
        "secrets leaked: {seen:#}"
    );
    for shot in [
        "dashboard-1280x800.png",
        "dashboard-full.png",
        "dashboard-narrow.png",
    ] {
        assert!(shots.join(shot).is_file(), "{shot} was not saved");
    }

    // The API's counts are what `scar log` and the buckets say.
    let stats = seen["api_stats"].as_array().unwrap();
    for (function, folder, ran, outputs) in [
        ("one", "flow/mid", GOOD_FILES + 1, GOOD_FILES),
        ("two", "flow/end", GOOD_FILES, GOOD_FILES),
    ] {
        let s = stats
            .iter()
            .find(|s| s["function"] == function)
            .unwrap_or_else(|| panic!("no stats of {function}: {stats:#?}"));
        let log = scar.run(&["log", "-n", function]).ok().stdout;
        let reports = log.matches("REPORT RequestId:").count();
        assert_eq!(reports, ran, "{function}: {log}");
        assert_eq!(s["invocations"], reports, "{function}: {s:#}");
        let listed = scar.run(&["ls", "-b", folder, "--json"]).ok().json();
        let listed = listed.as_array().unwrap().len();
        assert_eq!(listed, outputs);
        assert_eq!(s["counts"]["done"], listed, "{function}: {s:#}");
        assert_eq!(s["counts"]["waiting"], 0, "{function}: {s:#}");
        assert_eq!(s["counts"]["running"], 0, "{function}: {s:#}");
        assert!(s["p50_ms"].as_f64().unwrap() > 0.0, "{s:#}");
        assert!(s["p95_ms"].as_f64() >= s["p50_ms"].as_f64(), "{s:#}");
        assert!(s["max_ms"].as_f64() >= s["p95_ms"].as_f64(), "{s:#}");
    }
    // `scar stats` says the same, in a table and as JSON.
    let cli = scar.run(&["stats", "--json"]).ok().json();
    for s in stats {
        let function = &s["function"];
        let row = cli
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["function"] == *function)
            .unwrap_or_else(|| panic!("scar stats has no {function}: {cli:#}"));
        assert_eq!(row["counts"], s["counts"], "{function}");
        assert_eq!(row["invocations"], s["invocations"], "{function}");
        assert_eq!(row["p50_ms"], s["p50_ms"], "{function}");
        assert_eq!(row["max_ms"], s["max_ms"], "{function}");
    }
    let table = scar.run(&["stats", "-n", "one"]).ok().stdout;
    assert!(
        table.contains("FUNCTION") && table.contains("P95_MS"),
        "{table}"
    );
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        row[..8],
        ["one", "0", "0", "50", "1", "0", "0", "51"],
        "{table}"
    );
    let r = scar.run(&["stats", "-n", "nope"]);
    assert_eq!(r.status, 2, "{r:#?}");

    let failed = seen["api_invocations_failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(failed[0]["request_id"], id);
    assert_eq!(failed[0]["exit_code"], 3);
}

/// One request, written as its request line and header lines (no blank line at the end),
/// on a fresh connection (see [`super::serve_http::http`]): `(status, headers, body)`.
fn http(
    endpoint: &str,
    request: &str,
    body: &[u8],
) -> (u16, std::collections::HashMap<String, String>, Vec<u8>) {
    let mut lines = request.split("\r\n");
    let mut first = lines.next().unwrap().split(' ');
    let (method, path) = (first.next().unwrap(), first.next().unwrap());
    let headers: Vec<(&str, &str)> = lines.filter_map(|l| l.split_once(": ")).collect();
    super::serve_http::http(endpoint, method, path, &headers, body)
}

fn get(endpoint: &str, path: &str) -> (u16, Vec<u8>) {
    let host = endpoint.trim_start_matches("http://");
    let (status, _, body) = http(
        endpoint,
        &format!("GET {path} HTTP/1.1\r\nHost: {host}"),
        b"",
    );
    (status, body)
}

/// The dashboard writes nothing but uploads into input folders, and those only from its
/// own page (the `X-Scar-Dashboard` header); it refuses other `Host` names, keys that
/// leave the bucket, scar's own `.scar/`; its events arrive live and end when serve stops.
#[test]
fn the_dashboard_is_read_only_but_for_uploads_into_input_folders() {
    let Some((scar, work, image)) = with_busybox_image() else {
        return;
    };
    std::fs::write(work.path().join("step.sh"), STEP_SCRIPT).unwrap();
    let r = scar.run(&[
        "init",
        "-n",
        "one",
        "-i",
        &image,
        "-s",
        work.path().join("step.sh").to_str().unwrap(),
        "-ib",
        "flow/start",
        "-ob",
        "flow/mid",
        "-e",
        &format!("GREETING={ENV_SECRET}"),
    ]);
    assert_eq!(r.status, 0, "{r:#?}");
    let served = Served::start(&scar, &[]);
    let e = served.endpoint.as_str();
    let host = e.trim_start_matches("http://");
    let upload = |query: &str, header: &str| {
        http(
            e,
            &format!("POST /api/upload?{query} HTTP/1.1\r\nHost: {host}{header}"),
            b"uploaded",
        )
    };

    // Events: a first snapshot at once, the next when an upload has run.
    use std::io::{BufRead as _, Write as _};
    let mut events = std::net::TcpStream::connect(host).unwrap();
    events
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    write!(events, "GET /api/events HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
    let mut events = std::io::BufReader::new(events);
    let mut next_snapshot = || loop {
        let mut line = String::new();
        assert!(events.read_line(&mut line).unwrap() > 0, "the stream ended");
        if let Some(data) = line.strip_prefix("data: ") {
            return serde_json::from_str::<serde_json::Value>(data).unwrap();
        }
    };
    let first = next_snapshot();
    assert_eq!(first["chain"]["nodes"][0]["counts"]["done"], 0, "{first:#}");

    // Not without the header, not outside an input folder, not out of the bucket.
    let (status, _, _) = upload("bucket=flow&folder=start&name=a.txt", "");
    assert_eq!(status, 403);
    let header = "\r\nX-Scar-Dashboard: 1";
    for query in [
        "bucket=flow&folder=mid&name=a.txt",
        "bucket=flow&folder=&name=a.txt",
        "bucket=other&folder=start&name=a.txt",
    ] {
        assert_eq!(upload(query, header).0, 403, "{query}");
    }
    for query in [
        "bucket=flow&folder=start&name=..%2F..%2Fescape",
        "bucket=flow&folder=start%2F..%2F..&name=escape",
        "bucket=flow&folder=.scar&name=a.txt",
        "bucket=..&folder=start&name=a.txt",
        "bucket=flow&folder=start&name=",
    ] {
        assert_eq!(upload(query, header).0, 400, "{query}");
    }
    assert!(!scar.home.path().join("escape").exists());
    // Into the input folder: stored, run, and the next snapshot says so.
    let (status, _, body) = upload("bucket=flow&folder=start&name=a.txt", header);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let stored: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(stored["key"], "start/a.txt");
    assert_eq!(stored["function"], "one");
    let started = std::time::Instant::now();
    loop {
        let s = next_snapshot();
        if s["chain"]["nodes"][0]["counts"]["done"] == 1 {
            assert_eq!(s["invocations"][0]["key"], "start/a.txt", "{s:#}");
            assert_eq!(
                s["invocations"][0]["uploaded"][0], "flow/mid/a.txt",
                "{s:#}"
            );
            break;
        }
        assert!(
            started.elapsed().as_secs() < 60,
            "no event said it ran: {s:#}"
        );
    }
    let (status, body) = get(e, "/api/object?bucket=flow&key=mid%2Fa.txt");
    assert_eq!(status, 200);
    assert_eq!(String::from_utf8_lossy(&body), "uploaded|");

    // Reads stay in the buckets, and out of `.scar/`.
    for path in [
        "/api/object?bucket=flow&key=..%2F..%2Ffunctions%2Fone%2Ffunction.json",
        "/api/object?bucket=flow&key=.scar%2Ftmp",
        "/api/object?bucket=..&key=functions%2Fone%2Ffunction.json",
        "/api/buckets/flow?prefix=..%2F..",
        "/api/buckets/flow?prefix=.scar",
        "/api/logs?function=..%2F..&request_id=x",
    ] {
        let (status, body) = get(e, path);
        assert!(
            status == 400 || status == 404,
            "{path}: {status} {}",
            String::from_utf8_lossy(&body)
        );
    }
    let (_, listing) = get(e, "/api/buckets/flow");
    assert!(!String::from_utf8_lossy(&listing).contains(".scar"));
    // A symlink a function could write into its bucket leads nowhere: not read, not
    // listed, not written through.
    let secret_file = work.path().join("host-secret");
    std::fs::write(&secret_file, ENV_SECRET).unwrap();
    let mid = scar.bucket("flow/mid");
    std::os::unix::fs::symlink(&secret_file, mid.join("link")).unwrap();
    std::os::unix::fs::symlink(work.path(), mid.join("linked-dir")).unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), scar.bucket("flow/start").join("sub")).unwrap();
    for path in [
        "/api/object?bucket=flow&key=mid%2Flink",
        "/api/object?bucket=flow&key=mid%2Flinked-dir%2Fhost-secret",
        "/api/buckets/flow?prefix=mid%2Flinked-dir",
    ] {
        let (status, body) = get(e, path);
        assert_eq!(status, 404, "{path}: {}", String::from_utf8_lossy(&body));
    }
    let (_, listing) = get(e, "/api/buckets/flow?prefix=mid");
    let listing = String::from_utf8_lossy(&listing);
    assert!(
        listing.contains("mid/a.txt") && !listing.contains("link"),
        "{listing}"
    );
    let (status, _, _) = upload("bucket=flow&folder=start%2Fsub&name=x.txt", header);
    assert_eq!(status, 400);
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    // Nothing else is written, and another site's name is refused.
    for request in [
        "PUT /api/object?bucket=flow&key=start%2Fb.txt HTTP/1.1",
        "DELETE /api/object?bucket=flow&key=start%2Fa.txt HTTP/1.1",
        "POST /api/buckets/flow HTTP/1.1",
    ] {
        let (status, _, _) = http(e, &format!("{request}\r\nHost: {host}"), b"x");
        assert_eq!(status, 405, "{request}");
    }
    let (status, _, _) = http(
        e,
        "GET /api/functions HTTP/1.1\r\nHost: evil.example:80",
        b"",
    );
    assert_eq!(status, 403);
    // Not a secret in any answer.
    for path in [
        "/",
        "/api/functions",
        "/api/chain",
        "/api/snapshot",
        "/api/stats",
    ] {
        let (status, body) = get(e, path);
        assert_eq!(status, 200, "{path}");
        assert!(
            !String::from_utf8_lossy(&body).contains(ENV_SECRET),
            "{path}"
        );
    }

    // scar serve stops at once, an event stream open or not.
    let started = std::time::Instant::now();
    drop(served);
    assert!(
        started.elapsed().as_secs() < 10,
        "serve took {:?} to stop with an event stream open",
        started.elapsed()
    );
}

/// Invocations no file caused say how they ended on the dashboard as files' do: a fresh
/// `scar run` and an Invoke API call of failing scripts are `failed` with their exit codes,
/// a `scar run --warm` that succeeded is `succeeded` (their log lines do not say it).
#[test]
fn invocations_no_file_caused_show_how_they_ended() {
    let Some((scar, work, image)) = with_busybox_image() else {
        return;
    };
    scar.run(&["init", "-n", "solo", "-i", &image]).ok();
    let fail = write_file(work.path(), "fail.sh", "echo nope\nexit 3\n");
    let fine = write_file(work.path(), "fine.sh", "echo fine\n");
    let fresh = scar.run(&["run", "-n", "solo", "-s", &fail, "-j"]);
    assert_eq!(fresh.status, 1, "{fresh:#?}");
    let fresh_id = fresh.json()["request_id"].as_str().unwrap().to_string();
    let served = Served::start(&scar, &[]);
    let (status, headers, _) = super::serve_http::http(
        &served.endpoint,
        "POST",
        "/2015-03-31/functions/solo/invocations",
        &[],
        br#"{"script": "echo nope; exit 4"}"#,
    );
    assert_eq!(status, 200);
    let api_id = headers["x-amzn-requestid"].clone();
    let warm = scar
        .run(&["run", "-n", "solo", "-s", &fine, "--warm", "-j"])
        .ok();
    let warm_id = warm.json()["request_id"].as_str().unwrap().to_string();
    let find = |list: &serde_json::Value, id: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|i| i["request_id"] == id)
            .cloned()
    };
    let started = std::time::Instant::now();
    let list = loop {
        let (status, body) = get(&served.endpoint, "/api/invocations?function=solo");
        assert_eq!(status, 200);
        let list: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let ended = [&fresh_id, &api_id, &warm_id].iter().all(|id| {
            find(&list, id)
                .is_some_and(|i| i["outcome"] != "running" && i.get("duration_ms").is_some())
        });
        if ended {
            break list;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "not all three ended: {list:#}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let fresh = find(&list, &fresh_id).unwrap();
    assert_eq!(
        (&fresh["outcome"], &fresh["exit_code"]),
        (&"failed".into(), &3.into()),
        "{fresh}"
    );
    let api = find(&list, &api_id).unwrap();
    assert_eq!(
        (&api["outcome"], &api["exit_code"]),
        (&"failed".into(), &4.into()),
        "{api}"
    );
    let warm = find(&list, &warm_id).unwrap();
    assert_eq!(warm["outcome"], "succeeded", "{warm}");
    let (_, failed) = get(
        &served.endpoint,
        "/api/invocations?function=solo&outcome=failed",
    );
    let failed: serde_json::Value = serde_json::from_slice(&failed).unwrap();
    assert_eq!(failed.as_array().unwrap().len(), 2, "{failed:#}");
}
