//! SCAR function definition files (`init -f`, `rm -f`) on the local provider: every
//! function of the file created with its settings, its init script read relative to the
//! file, its input bucket bound, its outputs sent to the FDL output location through its
//! filters; then removed by the same file.

use crate::common::{folder_with, with_busybox_image, write_file};

const FDL: &str = r#"# A SCAR 4 file, as users have them, plus a local image path.
functions:
  aws:
  - lambda:
      name: shout
      memory: 256
      timeout: 60
      log_level: DEBUG
      init_script: scripts/shout.sh
      environment:
        Variables:
          SUFFIX: "!"
      container:
        image: ./image/oci:latest
        timeout_threshold: 5
        environment:
          Variables:
            LEVEL: 3
      input:
      - storage_provider: s3
        path: fdl-photos/input
      output:
      - storage_provider: s3
        path: fdl-results/shouted/run1
        suffix: [.txt]
  - lambda:
      name: quiet
      timeout: 30
      container:
        image: ./image/oci:latest
    iam:
      role: arn:aws:iam::123456789012:role/lambda
"#;

const SCRIPT: &str = r#"name=$(basename "$INPUT_FILE_PATH")
tr a-z A-Z < "$INPUT_FILE_PATH" | sed "s/\$/$SUFFIX$LEVEL/" > "$TMP_OUTPUT_DIR/$name"
echo "log of $name" > "$TMP_OUTPUT_DIR/$name.log"
echo "shouted $name"
"#;

#[test]
fn an_fdl_file_creates_runs_and_removes_its_functions() {
    let Some((scar, work, _)) = with_busybox_image() else {
        return;
    };
    std::fs::create_dir_all(work.path().join("scripts")).unwrap();
    std::fs::write(work.path().join("scripts/shout.sh"), SCRIPT).unwrap();
    let fdl = work.path().join("scar.yaml");
    std::fs::write(&fdl, FDL).unwrap();
    let fdl = fdl.to_str().unwrap();

    // Bad uses fail before anything is created.
    let r = scar.run(&["init", "-f", fdl, "-n", "nope"]);
    r.assert_refused("no function named `nope`");
    let bad = work.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "functions:\n  aws:\n  - lambda:\n      name: b\n      container: {image: busybox}\n      input: [{storage_provider: onedata.od, path: b-bucket/elsewhere}]\n",
    )
    .unwrap();
    let r = scar.run(&["init", "-f", bad.to_str().unwrap()]);
    r.assert_refused("`onedata.od`: onedata storage is not supported");
    let r = scar.run(&["rm"]);
    assert_eq!(r.status, 2, "a bare `rm` removes nothing: {r:#?}");
    assert_eq!(
        scar.run(&["ls", "--json"]).ok().json(),
        serde_json::json!([])
    );

    // Every function of the file, with the file's settings; flags beside -f win.
    let r = scar.run(&["init", "-f", fdl, "-t", "40", "--json"]);
    assert_eq!(r.status, 0, "{r:#?}");
    // `log_level` is honoured now: no warning about it.
    assert!(!r.stderr.contains("log_level"), "{}", r.stderr);
    let created = r.json();
    let created = created.as_array().unwrap();
    assert_eq!(created.len(), 2, "{created:?}");
    let shout = &created[0]["spec"];
    assert_eq!(shout["name"], "shout");
    assert_eq!(shout["memory_mb"], 256);
    assert_eq!(shout["timeout_s"], 40);
    assert_eq!(shout["timeout_threshold_s"], 5);
    assert_eq!(
        shout["inputs"],
        serde_json::json!([{"bucket": "fdl-photos", "folder": "input"}])
    );
    assert_eq!(shout["outputs"][0]["bucket"], "fdl-results");
    assert_eq!(shout["outputs"][0]["folder"], "shouted/run1");
    // The container's variables and the function's own stay apart, as in SCAR 4.
    assert_eq!(shout["environment"]["LEVEL"], "3");
    assert_eq!(shout["lambda_environment"]["SUFFIX"], "!");
    assert_eq!(created[1]["spec"]["name"], "quiet");
    assert_eq!(created[1]["spec"]["timeout_s"], 40);

    // A file put into the input bucket runs `shout`; only the .txt output is uploaded, to
    // the FDL output location; nothing goes to the input bucket's output/.
    let inputs = folder_with(work.path().join("inputs"), &[("a b.txt", "hello\n")]);
    let r = scar.put_json("fdl-photos/input", &inputs);
    assert_eq!(r.status, 0, "{r:#?}");
    let buckets = scar.home.path().join("buckets");
    let out = buckets.join("fdl-results/shouted/run1");
    let shouted = std::fs::read_to_string(out.join("a b.txt")).unwrap_or_else(|e| {
        let log = scar.run(&["log", "-n", "shout"]);
        panic!("no output ({e}): put said {r:#?}; the log: {log:#?}")
    });
    assert_eq!(shouted, "HELLO!3\n");
    assert!(!out.join("a b.txt.log").exists());
    assert!(!buckets.join("fdl-photos/output/a b.txt").exists());
    // The image's ENTRYPOINT is `/bin/sh -c`: the arguments are its command.
    let run = scar.run(&["run", "-n", "quiet", "--json", "echo hi"]).ok();
    assert_eq!(run.json()["output"], "hi\n");

    // The same file removes them.
    let r = scar.run(&["rm", "-f", fdl, "--json"]).ok();
    assert_eq!(r.json()["removed"], serde_json::json!(["shout", "quiet"]));
    assert_eq!(
        scar.run(&["ls", "--json"]).ok().json(),
        serde_json::json!([])
    );
    let r = scar.run(&["rm", "-f", fdl]).ok();
    assert!(r.stdout.contains("does not exist"), "{r:#?}");
}

/// SCAR's basic usage: `scar run -f` and `scar log -f` name the file's function; its
/// `run_script` runs unless the command line names a script or a command; a file of
/// several functions needs `-n`.
#[test]
fn run_and_log_take_the_definition_file() {
    let Some((scar, work, image)) = with_busybox_image() else {
        return;
    };
    let dir = work.path();
    write_file(dir, "runcow.sh", "echo moo from the run script\n");
    let other = write_file(dir, "other.sh", "echo the script given\n");
    let lambda = |name: &str, run_script: &str| {
        format!("  - lambda:\n      name: {name}\n{run_script}      container:\n        image: {image}\n")
    };
    let cow = write_file(
        dir,
        "cow.yaml",
        &format!(
            "functions:\n  aws:\n{}",
            lambda("scar-cow", "      run_script: runcow.sh\n")
        ),
    );
    let two = write_file(
        dir,
        "two.yaml",
        &format!(
            "functions:\n  aws:\n{}{}",
            lambda("scar-cow", "      run_script: runcow.sh\n"),
            lambda("scar-calf", "")
        ),
    );
    scar.run(&["init", "-f", &cow]).ok();
    let output = |args: &[&str]| {
        let r = scar.run(args).ok().json();
        r["output"].as_str().unwrap_or_default().to_string()
    };
    assert_eq!(
        output(&["run", "-f", &cow, "--json"]),
        "moo from the run script\n"
    );
    // What the command line says wins over the file's run_script.
    assert_eq!(
        output(&["run", "--conf-file", &cow, "-s", &other, "--json"]),
        "the script given\n"
    );
    assert_eq!(
        output(&["run", "-f", &cow, "--json", "echo a command"]),
        "a command\n"
    );
    let log = scar.run(&["log", "-f", &cow]).ok();
    assert!(log.stdout.contains("moo from the run script"), "{log:#?}");

    // Several functions: -n picks one of them; without it, both are named.
    scar.run(&["run", "-f", &two])
        .assert_refused("defines 2 functions (scar-cow, scar-calf): name one with -n");
    scar.run(&["log", "-f", &two, "-n", "nope"])
        .assert_refused("no function named `nope`");
    assert_eq!(
        output(&["run", "-f", &two, "-n", "scar-cow", "--json"]),
        "moo from the run script\n"
    );
    let r = scar.run(&["run"]);
    assert_eq!(r.status, 2, "neither -n nor -f: {r:#?}");
    scar.run(&["rm", "-f", &cow]).ok();

    // `asynchronous` is run -f's default; `deployment.bucket` is init -f's -db (SCAR's
    // payload limits beside it are Lambda's, known, not warned about).
    let later = write_file(
        dir,
        "later.yaml",
        &format!(
            "functions:\n  aws:\n{}      asynchronous: true\n      deployment:\n        bucket: later-deploy\n        max_payload_size: 52428800\n",
            lambda("scar-later", "")
        ),
    );
    let init = scar.run(&["init", "-f", &later]).ok();
    assert!(
        init.stderr
            .contains("-db later-deploy: not used, as on AWS")
            && !init.stderr.contains("max_payload_size"),
        "{init:#?}"
    );
    let queued = scar.run(&["run", "-f", &later, "-j"]).ok().json();
    assert!(queued["request_id"].is_string(), "{queued}");
    let out = dir.join("later.txt");
    scar.run(&["run", "-f", &later, "-o", out.to_str().unwrap(), "echo now"])
        .ok();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "now\n");
    scar.run(&["rm", "-f", &later]).ok();
}

/// SCAR's spellings of the flags, as its documentation types them: `-j`, `-a`, `-o`,
/// `--timeout`, `--run-script`, `-em`/`-bm`/`-bc`/`-g`; a Batch flag without a Batch mode
/// is refused with the reason, not ignored.
#[test]
fn scars_spellings_of_the_flags_work() {
    let Some((scar, work, image)) = with_busybox_image() else {
        return;
    };
    let created = scar
        .run(&["init", "-n", "cow", "-i", &image, "--timeout", "30", "-j"])
        .ok()
        .json();
    assert_eq!(created["spec"]["timeout_s"], 30, "{created}");
    // -j is --json, not the image's command.
    let r = scar
        .run(&["run", "-n", "cow", "-j", "echo moo"])
        .ok()
        .json();
    assert_eq!(r["output"], "moo\n", "{r}");
    // -o: the output goes to the file, not the terminal.
    let out = work.path().join("out.txt");
    let r = scar
        .run(&[
            "run",
            "-n",
            "cow",
            "-o",
            out.to_str().unwrap(),
            "echo to a file",
        ])
        .ok();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "to a file\n");
    assert!(!r.stdout.contains("to a file"), "{r:#?}");
    // -a is asynchronous: a request id at once.
    let r = scar.run(&["run", "-n", "cow", "-a", "-j"]).ok().json();
    assert!(
        r["request_id"].as_str().is_some_and(|id| !id.is_empty()),
        "{r}"
    );
    let script = write_file(work.path(), "moo.sh", "echo from --run-script\n");
    let r = scar
        .run(&["run", "-n", "cow", "--run-script", &script, "-j"])
        .ok()
        .json();
    assert_eq!(r["output"], "from --run-script\n");
    assert_eq!(
        scar.run(&["ls", "-j"]).ok().json()[0]["spec"]["name"],
        "cow"
    );

    scar.run(&["init", "-n", "calf", "-i", &image, "-bm", "2048"])
        .assert_refused("need --execution-mode batch or lambda-batch");
    // -db is taken as on AWS: an image (or small zip) package has no use for it.
    let r = scar
        .run(&["init", "-n", "kid", "-i", &image, "-db", "deploy-bucket"])
        .ok();
    assert!(
        r.stderr.contains("-db deploy-bucket: not used, as on AWS"),
        "{r:#?}"
    );
    scar.run(&["init", "-n", "kid2", "-i", &image, "-db", "Bad_Bucket"])
        .assert_refused("Bad_Bucket");
    let batch = scar
        .run(&[
            "init", "-n", "job", "-i", &image, "-em", "batch", "-bm", "2048", "-bc", "2", "-j",
        ])
        .ok()
        .json();
    let b = &batch["spec"]["batch"];
    assert_eq!(
        (b["memory_mb"].as_u64(), b["vcpus"].as_u64()),
        (Some(2048), Some(2)),
        "{batch}"
    );
    let r = scar.run(&["rm", "-a", "-j"]).ok().json();
    assert_eq!(r["removed"].as_array().map(Vec::len), Some(3), "{r}");
}

/// `examples/word-count` as its README runs it, with the image swapped for a locally built
/// busybox (CI cannot reach Docker Hub).
#[test]
fn the_word_count_example_runs_as_documented() {
    let Some((scar, work, image)) = with_busybox_image() else {
        return;
    };
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/word-count");
    let dir = work.path().join("word-count");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["scar.yaml", "count.sh"] {
        std::fs::copy(example.join(f), dir.join(f)).unwrap();
    }
    let yaml = std::fs::read_to_string(dir.join("scar.yaml")).unwrap();
    assert!(yaml.contains("image: docker.io/library/busybox:1.36"));
    std::fs::write(
        dir.join("scar.yaml"),
        yaml.replace(
            "image: docker.io/library/busybox:1.36",
            &format!("image: {image}"),
        ),
    )
    .unwrap();

    let fdl = dir.join("scar.yaml");
    scar.run(&["init", "-f", fdl.to_str().unwrap()]).ok();
    let texts = folder_with(
        work.path().join("texts"),
        &[("hamlet.txt", "to be or not to be\n")],
    );
    let put = scar
        .run(&[
            "put",
            "-b",
            "word-count/input",
            "-p",
            texts.to_str().unwrap(),
            "--json",
        ])
        .ok()
        .json()["results"]
        .clone();
    assert_eq!(
        put[0]["uploaded"],
        serde_json::json!(["word-count/results/hamlet.txt.count"]),
        "{put}"
    );
    let counts = work.path().join("counts");
    scar.run(&[
        "get",
        "-b",
        "word-count/results",
        "-p",
        counts.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(
        std::fs::read_to_string(counts.join("hamlet.txt.count")).unwrap(),
        "word count: hamlet.txt\nlines 1\nwords 6\nbytes 19\n"
    );
    let r = scar.run(&["rm", "-f", fdl.to_str().unwrap()]).ok();
    assert!(r.stdout.contains("'word-count' removed"), "{r:#?}");
}

/// `file_system` on the local provider: a host folder per access point under
/// `$SCAR_HOME/file-systems`, mounted read-write at the function's mount path, shared by
/// every invocation and every function that mounts it, as EFS is.
#[test]
fn file_systems_are_shared_between_invocations_and_functions() {
    let Some((scar, work, image)) = with_busybox_image() else {
        return;
    };
    let dir = work.path();
    let ap = "arn:aws:elasticfilesystem:us-east-1:123456789012:access-point/fsap-0123456789abcdef0";
    let lambda = |name: &str, mount: &str| {
        format!("  - lambda:\n      name: {name}\n      file_system:\n      - Arn: {ap}\n        LocalMountPath: {mount}\n      container:\n        image: {image}\n")
    };
    let fdl = write_file(
        dir,
        "efs.yaml",
        &format!(
            "functions:\n  aws:\n{}{}",
            lambda("efs-writer", "/mnt/efs"),
            lambda("efs-reader", "/mnt/data")
        ),
    );
    scar.run(&["init", "-f", &fdl]).ok();
    let output = |args: &[&str]| {
        let r = scar.run(args).ok().json();
        r["output"].as_str().unwrap_or_default().to_string()
    };
    // One invocation writes, the next reads what it wrote.
    output(&[
        "run",
        "-f",
        &fdl,
        "-n",
        "efs-writer",
        "--json",
        "echo kept > /mnt/efs/note",
    ]);
    assert_eq!(
        output(&[
            "run",
            "-f",
            &fdl,
            "-n",
            "efs-writer",
            "--json",
            "cat /mnt/efs/note"
        ]),
        "kept\n"
    );
    // Another function mounting the same access point elsewhere sees it, and writes back.
    assert_eq!(
        output(&[
            "run",
            "-f",
            &fdl,
            "-n",
            "efs-reader",
            "--json",
            "cat /mnt/data/note; echo more >> /mnt/data/note"
        ]),
        "kept\n"
    );
    let host = scar
        .home
        .path()
        .join("file-systems/fsap-0123456789abcdef0/note");
    assert_eq!(std::fs::read_to_string(&host).unwrap(), "kept\nmore\n");
    // Removing the functions keeps the file system, as removing a Lambda function keeps
    // its EFS.
    scar.run(&["rm", "-f", &fdl]).ok();
    assert!(host.exists());

    // A mount path Lambda would refuse is refused here too, before anything is made.
    let bad = write_file(
        dir,
        "bad.yaml",
        &format!("functions:\n  aws:\n{}", lambda("efs-bad", "/efs")),
    );
    scar.run(&["init", "-f", &bad])
        .assert_refused("LocalMountPath \"/efs\"");
}

/// SCAR's `log_level` (`-ll`): a function at DEBUG has the supervisor's debug lines in its
/// log (what it runs, how it ended); one at the default level has none; a level SCAR does
/// not have is a usage error naming the flag's or the file's key, before anything exists.
#[test]
fn log_level_debug_puts_the_supervisors_debug_lines_in_the_log() {
    let Some((scar, work, image)) = with_busybox_image() else {
        return;
    };
    let dir = work.path();
    let lambda = |name: &str, extra: &str| {
        format!(
            "  - lambda:\n      name: {name}\n{extra}      container:\n        image: {image}\n"
        )
    };
    let fdl = write_file(
        dir,
        "levels.yaml",
        &format!(
            "functions:\n  aws:\n{}{}",
            lambda("loud", "      log_level: DEBUG\n"),
            lambda("plain", "")
        ),
    );
    let created = scar.run(&["init", "-f", &fdl, "--json"]).ok().json();
    assert_eq!(created[0]["spec"]["log_level"], "DEBUG", "{created}");
    assert!(created[1]["spec"].get("log_level").is_none(), "{created}");
    // The flag, in SCAR's spelling and any case.
    let flagged = scar
        .run(&["init", "-n", "flagged", "-i", &image, "-ll", "debug", "-j"])
        .ok()
        .json();
    assert_eq!(flagged["spec"]["log_level"], "DEBUG", "{flagged}");

    for name in ["loud", "plain", "flagged"] {
        let r = scar
            .run(&["run", "-n", name, "--json", "echo said hi"])
            .ok();
        assert_eq!(r.json()["output"], "said hi\n", "{r:#?}");
    }
    let log = |name: &str| scar.run(&["log", "-n", name]).ok().stdout;
    for name in ["loud", "flagged"] {
        let log = log(name);
        assert!(
            log.contains("[DEBUG] scar: request ") && log.contains(": running [\"/bin/sh\""),
            "{name}: {log}"
        );
        assert!(
            log.contains("Exited(0), 8 bytes of output"),
            "{name}: {log}"
        );
    }
    let plain = log("plain");
    assert!(plain.contains("said hi"), "{plain}");
    assert!(!plain.contains("[DEBUG]"), "{plain}");

    // Refused, nothing created.
    scar.run(&["init", "-n", "bad", "-i", &image, "-ll", "LOUD"])
        .assert_refused("unknown log level `LOUD`: CRITICAL, ERROR, WARNING, INFO or DEBUG");
    let bad = write_file(
        dir,
        "bad.yaml",
        &format!(
            "functions:\n  aws:\n{}",
            lambda("bad", "      log_level: verbose\n")
        ),
    );
    scar.run(&["init", "-f", &bad])
        .assert_refused("functions.aws[0].lambda.log_level: unknown log level `verbose`");
    let listed = scar.run(&["ls", "--json"]).ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed}");
}

/// SCAR's `preheat` (`-ph`): `init` invokes each new function once, as SCAR does (no
/// script: the image's command), and reports that invocation; without it, nothing runs.
/// A failed warming invocation fails `init` (exit 1) and says why, the function stays.
#[test]
fn preheat_invokes_the_new_function_once() {
    let Some((scar, work, image)) = with_busybox_image() else {
        return;
    };
    let dir = work.path();
    let starts = |name: &str| {
        let log = scar.run(&["log", "-n", name]).ok().stdout;
        (log.matches("START RequestId:").count(), log)
    };

    let warm = scar
        .run(&["init", "-n", "warm", "-i", &image, "-ph", "--json"])
        .ok()
        .json();
    let preheat = &warm["preheat"];
    assert_eq!(preheat["succeeded"], true, "{warm}");
    let id = preheat["request_id"].as_str().unwrap();
    let (count, log) = starts("warm");
    assert_eq!(count, 1, "{log}");
    // The image's command (`echo hello`) ran, under the reported request id.
    assert!(
        log.contains(&format!("START RequestId: {id}")) && log.contains("hello"),
        "{log}"
    );

    let cold = scar
        .run(&["init", "-n", "cold", "-i", &image, "--json"])
        .ok()
        .json();
    assert!(cold.get("preheat").is_none(), "{cold}");
    assert_eq!(starts("cold").0, 0);

    // The file's `preheat: true`; the text output says so too.
    let fdl = write_file(
        dir,
        "warm.yaml",
        &format!("functions:\n  aws:\n  - lambda:\n      name: warm-fdl\n      preheat: true\n      container:\n        image: {image}\n"),
    );
    let r = scar.run(&["init", "-f", &fdl]).ok();
    assert!(
        r.stdout.contains("Function 'warm-fdl' preheated."),
        "{r:#?}"
    );
    assert_eq!(starts("warm-fdl").0, 1);

    // A warming invocation that fails: exit 1, the reason, the function kept.
    let failing = write_file(dir, "fail.sh", "echo cold start broke; exit 3\n");
    let r = scar.run(&["init", "-n", "broken", "-i", &image, "-s", &failing, "-ph"]);
    assert_eq!(r.status, 1, "{r:#?}");
    assert!(
        r.stderr
            .contains("the preheat invocation of 'broken' failed: exit status 3: cold start broke"),
        "{r:#?}"
    );
    let listed = scar.run(&["ls", "--json"]).ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 4, "{listed}");
}

/// An arm64 function on the local provider runs where the machine can run arm64 (natively,
/// or qemu-user registered with binfmt_misc's F flag) and is refused with the reason
/// otherwise; here on x86_64, which of the two depends on the machine's binfmt_misc.
#[test]
fn an_arm64_function_locally_is_refused_with_the_reason_where_it_cannot_run() {
    let Some((scar, work, image)) = with_busybox_image() else {
        return;
    };
    if std::env::consts::ARCH == "aarch64" {
        return; // native: nothing to refuse
    }
    let fdl = write_file(
        work.path(),
        "arm.yaml",
        &format!(
            "functions:\n  aws:\n  - lambda:\n      name: arm\n      architectures: [arm64]\n      container:\n        image: {image}\n"
        ),
    );
    let r = scar.run(&["init", "-f", &fdl]);
    assert_ne!(
        r.status, 0,
        "an arm64 function of an amd64-only image was created: {r:#?}"
    );
    let entry = std::path::Path::new("/proc/sys/fs/binfmt_misc/qemu-aarch64");
    let usable = std::fs::read_to_string(entry).is_ok_and(|t| {
        t.lines().any(|l| l.trim() == "enabled")
            && t.lines()
                .any(|l| l.starts_with("flags:") && l.contains('F'))
    });
    if usable {
        // The machine could run it: what stops it is the image, which has no arm64 variant.
        assert!(r.stderr.contains("arm64"), "{r:#?}");
    } else {
        assert!(
            r.stderr.contains("runs no aarch64 executables")
                || r.stderr.contains("is disabled")
                || r.stderr.contains("without the F flag"),
            "{r:#?}"
        );
        assert!(r.stderr.contains("--provider aws"), "{r:#?}");
    }
    assert!(!scar.run(&["ls"]).stdout.contains("arm"), "nothing is left");
}

/// An arm64 function runs on this x86_64 machine with the arm64 supervisor under qemu-user
/// (binfmt_misc's F flag, which `cargo xtask install-test-tools` registers): the
/// supervisor that arm64 Lambda functions and the arm64 release archive carry answers the
/// local Runtime API from inside a sandbox, runs the script and uploads its output.
#[test]
fn an_arm64_function_runs_locally_under_qemu_user() {
    if std::env::consts::ARCH == "aarch64" {
        return; // native: the other tests run it
    }
    let Some((scar, work, _)) = with_busybox_image() else {
        return;
    };
    let Some(arm64) = scar_test_support::scar::supervisor_aarch64() else {
        return;
    };
    let entry = std::path::Path::new("/proc/sys/fs/binfmt_misc/qemu-aarch64");
    let registered = std::fs::read_to_string(entry).is_ok_and(|t| {
        t.lines().any(|l| l.trim() == "enabled")
            && t.lines()
                .any(|l| l.starts_with("flags:") && l.contains('F'))
    });
    if !registered {
        assert!(
            std::env::var_os("CI").is_none(),
            "under CI qemu-aarch64 must be registered with binfmt_misc (F flag): `cargo xtask install-test-tools` does it"
        );
        eprintln!("SKIPPED: qemu-aarch64 is not registered with binfmt_misc's F flag");
        return;
    }
    // The test image labelled arm64: its busybox is this machine's, which the kernel runs
    // natively; the supervisor is aarch64, which qemu runs.
    let image = scar_test_support::images::build_busybox_image(&work.path().join("arm"));
    image.config(&["--architecture=arm64"]);
    let image = image.image_arg();
    let mut init = scar.command();
    init.env("SCAR_SUPERVISOR_AARCH64", &arm64).args([
        "init",
        "-n",
        "arm",
        "-i",
        &image,
        "--architecture",
        "arm64",
        "-ib",
        "armflow/in",
        "-ob",
        "armflow/out",
    ]);
    scar_test_support::scar::Run::of(&mut init).ok();
    let listed = scar.run(&["ls", "--json"]).ok().json();
    assert_eq!(listed[0]["spec"]["architecture"], "arm64", "{listed}");
    let script = write_file(
        work.path(),
        "arm.sh",
        "echo \"arm64 supervisor ran on $(uname -m)\"\necho made > $TMP_OUTPUT_DIR/made.txt\n",
    );
    let mut run = scar.command();
    run.env("SCAR_SUPERVISOR_AARCH64", &arm64)
        .args(["run", "-n", "arm", "-s", &script, "-j"]);
    let r = scar_test_support::scar::Run::of(&mut run).ok();
    let v = r.json();
    assert_eq!(v["exit_code"], 0, "{r:#?}");
    assert!(
        v["output"]
            .as_str()
            .unwrap()
            .contains("arm64 supervisor ran"),
        "{r:#?}"
    );
    assert_eq!(v["uploaded"].as_array().map(Vec::len), Some(1), "{r:#?}");
    let log = scar.run(&["log", "-n", "arm"]).ok();
    assert!(log.stdout.contains("REPORT"), "{log:#?}");
}
