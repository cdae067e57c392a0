//! A MinIO input folder, on both providers the same way (moto's server standing for MinIO):
//! MinIO cannot notify Lambda or the local provider of new objects, so `init` warns that
//! the folder has no trigger, and `scar run -n F -es BUCKET` lists the folder on the MinIO
//! server and invokes the function once per object with the event MinIO's webhook would
//! send (`eventSource` `minio:s3`). The provider's keys never reach the output.

use std::path::Path;

use scar_test_support::images::build_busybox_image;
use scar_test_support::moto::Moto;
use scar_test_support::scar::Run;

use crate::common::scar_with;

const SECRET: &str = "minio-secret-never-shown";

/// Copies its input to its output, and keeps the event's source beside it.
const COPY_SCRIPT: &str = r#"name=$(basename "$INPUT_FILE_PATH")
cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/$name"
case "$EVENT" in *'"minio:s3"'*) echo minio > "$TMP_OUTPUT_DIR/$name.source";; *) echo other > "$TMP_OUTPUT_DIR/$name.source";; esac
echo "copied $STORAGE_OBJECT_KEY"
"#;

/// Puts `body` as `archive/<key>` on the store (moto checks no signature).
fn put_object(store: &Moto, key: &str, body: &str) {
    let (status, text) = store
        .http("PUT", &format!("/archive/{key}"), &[], body.as_bytes())
        .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&text));
}

/// The store with bucket `archive`: two objects in `in/`, one elsewhere.
fn store_with_objects() -> Option<Moto> {
    let store = Moto::start()?;
    let (status, _) = store.http("PUT", "/archive", &[], b"").unwrap();
    assert_eq!(status, 200);
    put_object(&store, "in/a.txt", "alpha");
    put_object(&store, "in/b.txt", "beta");
    put_object(&store, "other/c.txt", "not an input");
    Some(store)
}

fn fdl(work: &Path, name: &str, image: &str, output: &str, store: &Moto, extra: &str) -> String {
    let file = work.join(format!("{name}.yaml"));
    std::fs::write(
        &file,
        format!(
            r#"functions:
  aws:
  - lambda:
      name: {name}
      init_script: {script}
      container:
        image: {image}
      input: [{{storage_provider: minio.store, path: archive/in}}]
      output: [{{storage_provider: s3, path: {output}}}]
{extra}storage_providers:
  minio:
    store:
      endpoint: {endpoint}
      access_key: minio-user
      secret_key: {SECRET}
"#,
            script = work.join("copy.sh").display(),
            endpoint = store.endpoint()
        ),
    )
    .unwrap();
    std::fs::write(work.join("copy.sh"), COPY_SCRIPT).unwrap();
    file.to_str().unwrap().to_string()
}

fn assert_warned(init: &Run, name: &str) {
    assert!(
        init.stderr.contains(&format!(
            "minio.store:archive/in: MinIO cannot trigger '{name}': run it over the folder's objects with `scar run -n {name} -es archive`"
        )),
        "{init:#?}"
    );
}

/// Local: the launcher over the MinIO folder runs once per object there (not the one
/// outside the folder), and the outputs land in the local folder.
#[test]
fn local_launcher_runs_over_a_minio_folder() {
    let Some(scar) = scar_with(&["umoci", "busybox"]) else {
        return;
    };
    let Some(store) = store_with_objects() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let image = build_busybox_image(&work.path().join("image")).image_arg();
    let file = fdl(work.path(), "reader", &image, "results/out", &store, "");
    let init = scar.run(&["init", "-f", &file, "--json"]);
    assert_eq!(init.status, 0, "{init:#?}");
    assert_warned(&init, "reader");

    let run = scar.run(&["run", "-n", "reader", "-es", "archive", "--json"]);
    assert_eq!(run.status, 0, "{run:#?}");
    let results = run.json();
    let mut keys: Vec<&str> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    keys.sort();
    assert_eq!(keys, ["in/a.txt", "in/b.txt"], "{results:#}");
    for r in results.as_array().unwrap() {
        assert_eq!(r["outcome"], "succeeded", "{results:#}");
    }
    let out = scar.bucket("results/out");
    assert_eq!(std::fs::read_to_string(out.join("a.txt")).unwrap(), "alpha");
    assert_eq!(std::fs::read_to_string(out.join("b.txt")).unwrap(), "beta");
    assert_eq!(
        std::fs::read_to_string(out.join("a.txt.source")).unwrap(),
        "minio\n",
        "the function saw MinIO's event"
    );

    // A bucket that is neither the function's nor its MinIO input's is still refused.
    let wrong = scar.run(&["run", "-n", "reader", "-es", "nope"]);
    assert_eq!(wrong.status, 2, "{wrong:#?}");

    for shown in [
        init.stdout,
        init.stderr,
        run.stdout,
        run.stderr,
        scar.run(&["log", "-n", "reader"]).ok().stdout,
        scar.run(&["ls", "--json"]).ok().stdout,
    ] {
        assert!(!shown.contains(SECRET), "{shown}");
    }
}

/// AWS (moto for Lambda, another moto for MinIO): `init` warns the same way; the launcher
/// lists the folder on the MinIO server and invokes once per object with a `minio:s3`
/// event naming it (moto's Lambda, running nothing, echoes the first payload back).
#[test]
fn aws_launcher_sends_minio_events_for_a_minio_folder() {
    let Some(scar) = scar_with(&["umoci", "skopeo", "busybox", "proot"]) else {
        return;
    };
    let (Some(aws), Some(store)) = (Moto::start(), store_with_objects()) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("image.tar");
    build_busybox_image(work.path()).docker_archive(&archive);
    let role = format!("    iam:\n      role: {}\n", aws.role_arn());
    let file = fdl(
        work.path(),
        "minfn",
        archive.to_str().unwrap(),
        "results-b/out",
        &store,
        &role,
    );
    let run = |args: &[&str]| {
        let mut cmd = scar.command();
        aws.aws_cli(&mut cmd, work.path());
        Run::of(cmd.args(args))
    };
    let init = run(&["init", "-f", &file, "--package", "zip", "--json"]);
    assert_eq!(init.status, 0, "{init:#?}");
    assert_warned(&init, "minfn");

    let launched = run(&["run", "-n", "minfn", "-es", "archive", "--json"]);
    let results: serde_json::Value =
        serde_json::from_str(&launched.stdout).unwrap_or_else(|e| panic!("{e}: {launched:#?}"));
    let results = results.as_array().unwrap();
    let mut keys: Vec<&str> = results.iter().map(|r| r["key"].as_str().unwrap()).collect();
    keys.sort();
    assert_eq!(keys, ["in/a.txt", "in/b.txt"], "{launched:#?}");
    // The first (synchronous) invocation's payload, echoed by moto: MinIO's event.
    let echoed = results
        .iter()
        .find_map(|r| r["error"].as_str())
        .unwrap_or_else(|| panic!("no echoed payload: {launched:#?}"));
    assert!(echoed.contains(r#""eventSource":"minio:s3""#), "{echoed}");
    assert!(echoed.contains(r#""Key":"archive/in/"#), "{echoed}");
    assert_eq!(
        results.iter().filter(|r| r["outcome"] == "queued").count(),
        1,
        "{launched:#?}"
    );
    for shown in [init.stdout, init.stderr, launched.stdout, launched.stderr] {
        assert!(!shown.contains(SECRET), "{shown}");
    }
}
