//! A `zip` package run as Lambda runs it: unpacked in a task root on a host whose `/` is
//! not the image's (here this machine's Debian, there Amazon Linux), with no namespaces.
//! The supervisor finds `function.json` through `LAMBDA_TASK_ROOT`, finds the image root in
//! the package or builds it from the layers under `/tmp`, and runs every command inside it
//! with the packaged proot (here Debian's; on Lambda a static one).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use scar_core::event::FunctionFile;
use scar_packager::{build_zip_package, pull, BlobCache, ImageSource, NoProgress, ZipOptions};
use scar_runtime::{DirStorage, Invocation, Startup, Supervisor, SupervisorError};
use scar_test_support::images as common;
use serde_json::json;

/// Builds the busybox image's zip package (with the root, or layers only; with or without
/// a proot) and unzips it into `<work>/task`, as Lambda unpacks it into /var/task.
fn unpacked_package(work: &Path, include_root: bool, proot: Option<PathBuf>) -> PathBuf {
    let img = common::build_busybox_image(&work.join("image"));
    let source = ImageSource::detect(&img.image_arg()).unwrap();
    let cache = BlobCache::new(work.join("cache"));
    let function = FunctionFile {
        name: "zipfn".into(),
        timeout_s: 60,
        timeout_threshold_s: 1,
        ..FunctionFile::default()
    };
    // The supervisor binary is not run here: the library is, against the unpacked tree.
    let supervisor = work.join("bootstrap");
    std::fs::write(&supervisor, "#!/bin/sh\n").unwrap();
    let mut options = ZipOptions::new("zipfn");
    options.include_root = include_root;
    options.proot = proot;
    let zip = work.join("zipfn.zip");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let report = rt.block_on(async {
        let image = pull(&source, &cache, &NoProgress).await.unwrap();
        build_zip_package(
            &image,
            &cache,
            &function,
            &supervisor,
            &zip,
            &options,
            &NoProgress,
        )
        .await
        .unwrap()
    });
    assert_eq!(report.includes_root, include_root);
    let task = work.join("task");
    common::run(
        Command::new("unzip")
            .arg("-q")
            .arg(&zip)
            .arg("-d")
            .arg(&task),
    );
    task
}

fn start(task: &Path, tmp: &Path) -> Result<Supervisor, SupervisorError> {
    let mut sup = Supervisor::start(&Startup {
        task_root: Some(task.to_path_buf()),
        tmp_root: tmp.to_path_buf(),
        ..Startup::default()
    })?;
    sup.echo_output = false;
    Ok(sup)
}

fn invocation(id: &str, event: serde_json::Value) -> Invocation {
    Invocation {
        request_id: id.into(),
        deadline: SystemTime::now() + Duration::from_secs(30),
        event,
    }
}

/// What the script sees: whose root it is in, where it is, and the contract's paths.
const PROBE: &str = r#"if test -e /etc/scar-marker; then echo root=image; else echo root=host; fi
test -e /etc/debian_version && echo host-file-visible
echo "pwd=$(pwd) greeting=$GREETING"
cat /srv/hello.txt
"#;

fn check_runs_inside(sup: &Supervisor, tmp: &Path) {
    // The image's own command (ENTRYPOINT + CMD) with its WorkingDir and Env.
    let r = sup.invoke(&invocation("cmd", json!({}))).unwrap();
    assert_eq!((r.exit_code(), r.output.as_str()), (Some(0), "hello\n"));

    let r = sup
        .invoke(&invocation("probe", json!({ "script": PROBE })))
        .unwrap();
    assert_eq!(
        r.output, "root=image\npwd=/srv greeting=hello\nhello from the image\n",
        "{r:?}"
    );

    // A storage event: the input is staged under /tmp outside and read inside; what the
    // script writes inside comes back out and is uploaded.
    let buckets = tmp.join("buckets");
    let object = buckets.join("bkt/input/a photo.txt");
    std::fs::create_dir_all(object.parent().unwrap()).unwrap();
    std::fs::write(&object, "pixels\n").unwrap();
    let mut sup = sup.clone();
    sup.storage = Some(std::sync::Arc::new(DirStorage::new(&buckets)));
    sup.function.outputs = vec![scar_core::OutputSpec::at(
        &scar_core::bucket::BucketPath::parse("bkt/output").unwrap(),
    )];
    sup.function.init_script = Some(
        "tr a-z A-Z < \"$INPUT_FILE_PATH\" > \"$TMP_OUTPUT_DIR/$(basename \"$INPUT_FILE_PATH\")\"\ncat /etc/scar-marker\n"
            .into(),
    );
    let event = json!({"Records": [{"s3": {"bucket": {"name": "bkt"},
        "object": {"key": "input/a+photo.txt"}}}]});
    let r = sup.invoke(&invocation("event", event)).unwrap();
    assert_eq!(r.exit_code(), Some(0), "{r:?}");
    assert_eq!(r.output, "scar test image\n");
    assert_eq!(r.uploaded, ["bkt/output/a photo.txt"]);
    assert_eq!(
        std::fs::read_to_string(buckets.join("bkt/output/a photo.txt")).unwrap(),
        "PIXELS\n"
    );

    // The threshold still kills everything the script started under proot.
    sup.function.init_script = None;
    let slow = Invocation {
        request_id: "slow".into(),
        deadline: SystemTime::now() + Duration::from_secs(3),
        event: json!({"script": "echo started\nsleep 30 &\nsleep 30\necho never"}),
    };
    let r = sup.invoke(&slow).unwrap();
    assert!(r.timed_out(), "{r:?}");
    assert!(r.output.starts_with("started\n") && !r.output.contains("never"));
}

#[test]
fn a_zip_package_runs_inside_its_image_root_without_namespaces() {
    if !common::require_tools(&["umoci", "busybox", "proot", "unzip"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let task = unpacked_package(work.path(), true, common::which("proot"));
    let sup = start(&task, tmp.path()).unwrap();
    let container = sup
        .container
        .clone()
        .expect("the root is entered with proot");
    assert!(container.root.starts_with(&task), "{container:?}");
    assert!(!tmp.path().join("scar-root").exists());
    check_runs_inside(&sup, tmp.path());

    // Where the root was entered for it (the local sandbox says so), it runs as it is.
    let sup = Supervisor::start(&Startup {
        task_root: Some(task.clone()),
        container_root: Some("/".into()),
        tmp_root: tmp.path().to_path_buf(),
        ..Startup::default()
    })
    .unwrap();
    assert!(sup.container.is_none());
    assert_eq!(sup.function.name, "zipfn");
}

#[test]
fn a_layers_only_zip_package_builds_its_root_under_tmp_once() {
    if !common::require_tools(&["umoci", "busybox", "proot", "unzip"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let task = unpacked_package(work.path(), false, common::which("proot"));
    let sup = start(&task, tmp.path()).unwrap();
    let cold = tmp.path().join("scar-root");
    assert_eq!(sup.container.as_ref().unwrap().root, cold);
    assert!(cold.join("etc/scar-marker").is_file());
    check_runs_inside(&sup, tmp.path());

    // A warm restart (a new supervisor, the same /tmp) reuses the root it built.
    std::fs::write(cold.join("srv/built-once"), "").unwrap();
    let again = start(&task, tmp.path()).unwrap();
    assert_eq!(again.container.unwrap().root, cold);
    assert!(cold.join("srv/built-once").exists());
    assert!(std::fs::read_dir(tmp.path()).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains("partial")));
}

#[test]
fn a_zip_package_without_proot_says_how_to_fix_it() {
    if !common::require_tools(&["umoci", "busybox", "unzip"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let task = unpacked_package(work.path(), true, None);
    let err = start(&task, tmp.path()).unwrap_err();
    assert!(matches!(err, SupervisorError::NoProot { .. }), "{err:?}");
    assert!(err.to_string().contains("--proot"), "{err}");
}
