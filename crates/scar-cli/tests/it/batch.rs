//! SCAR's AWS Batch execution modes on the local provider: a `batch` function runs on its
//! job's terms (the `batch:` block's memory, a timeout past Lambda's 900 s cap), and a
//! `lambda-batch` function that reaches its threshold continues as a Batch job, with its
//! outputs uploaded once. On AWS, what a Batch function needs is checked before anything is
//! pulled (the rest of AWS Batch is tested against moto in scar-aws's `moto_batch.rs`).

use std::path::Path;

use scar_test_support::moto::Moto;

use crate::common::{with_busybox_image, write_file};

/// A `batch` function: Lambda's timeout cap does not apply (1000 s is refused on Lambda's
/// terms, accepted as a job's), and its sandbox gets the job's memory, not the function's.
#[test]
fn a_batch_function_runs_on_its_jobs_terms() {
    let Some((scar, work, image)) = with_busybox_image() else {
        return;
    };
    let r = scar.run(&["init", "-n", "capped", "-i", &image, "-t", "1000"]);
    r.assert_refused("between 1 and 900 seconds");

    write_file(
        work.path(),
        "alloc.sh",
        "dd if=/dev/zero of=/dev/null bs=200M count=1 2>/dev/null && echo \"allocated as a job: memory $AWS_LAMBDA_FUNCTION_MEMORY_SIZE MB, $JOB_NOTE\"\n",
    );
    let fdl = write_file(
        work.path(),
        "job.yaml",
        &format!(
            r#"functions:
  aws:
  - lambda:
      name: job
      memory: 128
      timeout: 1000
      execution_mode: batch
      init_script: alloc.sh
      container: {{image: {image}}}
    batch:
      vcpus: 2
      memory: 512
      enable_gpu: true
      environment: {{Variables: {{JOB_NOTE: from-the-batch-block}}}}
      compute_resources: {{type: SPOT, max_v_cpus: 4, instance_types: [g3s.xlarge]}}
"#
        ),
    );
    let r = scar.run(&["init", "-f", &fdl, "--json"]);
    assert_eq!(r.status, 0, "{r:#?}");
    let spec = &r.json()[0]["spec"];
    assert_eq!(spec["execution_mode"], "batch");
    assert_eq!(spec["timeout_s"], 1000);
    assert_eq!(spec["batch"]["memory_mb"], 512);
    assert_eq!(spec["batch"]["compute"]["kind"], "SPOT");
    let listed = scar.run(&["ls"]).ok().stdout;
    let row = listed
        .lines()
        .find(|l| l.starts_with("job "))
        .unwrap_or_default();
    assert!(listed.contains("MODE") && row.contains("batch"), "{listed}");

    let r = scar.run(&["run", "-n", "job", "--json"]);
    if !Path::new("/dev/nvidia0").exists() {
        assert!(
            r.stderr
                .contains("asks for a GPU (enable_gpu) and this machine has none"),
            "{}",
            r.stderr
        );
    }
    if r.stderr.contains("memory limits are not enforced") {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI machines run as root with cgroups"
        );
    }
    assert_eq!(r.status, 0, "{r:#?}");
    assert_eq!(
        r.json()["output"],
        "allocated as a job: memory 512 MB, from-the-batch-block\n"
    );
    // On Lambda's terms (128 MB) the same script runs out of memory.
    let r = scar.run(&[
        "init",
        "-n",
        "lambda-terms",
        "-i",
        &image,
        "-m",
        "128",
        "-s",
        &work.path().join("alloc.sh").to_string_lossy(),
    ]);
    assert_eq!(r.status, 0, "{r:#?}");
    let r = scar.run(&["run", "-n", "lambda-terms", "--json"]);
    if !r.stderr.contains("memory limits are not enforced") {
        assert_eq!(r.status, 1, "{r:#?}");
        assert!(
            r.json()["output"]
                .as_str()
                .unwrap()
                .contains("ran out of memory"),
            "{r:#?}"
        );
    }
}

/// A `lambda-batch` function whose script outlives its threshold: the Lambda run hands
/// the event over instead of failing, the Batch job runs it to the end, and its outputs are
/// uploaded once (nothing from the Lambda run).
#[test]
fn a_lambda_batch_function_continues_as_a_batch_job_past_its_threshold() {
    let Some((scar, work, image)) = with_busybox_image() else {
        return;
    };
    let script = write_file(
        work.path(),
        "slow.sh",
        r#"name=$(basename "$INPUT_FILE_PATH")
echo "started $REQUEST_ID" > "$TMP_OUTPUT_DIR/started-$REQUEST_ID.txt"
sleep 4
cat "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$name"
echo "finished $name"
"#,
    );
    let r = scar.run(&[
        "init",
        "-n",
        "slowfn",
        "-i",
        &image,
        "-es",
        "slow-b",
        "-s",
        &script,
        "-t",
        "3",
        "-tt",
        "1",
        "-em",
        "lambda-batch",
    ]);
    assert_eq!(r.status, 0, "{r:#?}");
    let src = work.path().join("clip.txt");
    std::fs::write(&src, "frames").unwrap();
    let r = scar.put_json("slow-b/input", &src);
    assert_eq!(r.status, 0, "{r:#?}");
    let result = &r.json()["results"][0];
    assert_eq!(result["outcome"], "succeeded", "{result}");
    let uploaded: Vec<String> = result["uploaded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .collect();
    let job = result["request_id"].as_str().unwrap();
    assert_eq!(
        uploaded,
        [
            "slow-b/output/clip.txt".to_string(),
            format!("slow-b/output/started-{job}.txt")
        ],
        "only the job's outputs: {result}"
    );
    let out = scar.bucket("slow-b/output");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 2);
    assert_eq!(
        std::fs::read_to_string(out.join("clip.txt")).unwrap(),
        "frames"
    );
    let log = scar.run(&["log", "-n", "slowfn"]).ok().stdout;
    assert!(
        log.contains("handed over to a Batch job (execution mode lambda-batch)"),
        "{log}"
    );
    assert!(log.contains("finished clip.txt"), "{log}");

    // Run directly, the result says where the event went.
    let r = scar.run(&["run", "-n", "slowfn", "--json", "sleep 4; echo late"]);
    assert_eq!(r.status, 0, "{r:#?}");
    let j = r.json();
    assert!(j["handed_over_from"].is_string(), "{j}");
    assert!(
        j["output"]
            .as_str()
            .unwrap()
            .contains("was handed over to a Batch job"),
        "{j}"
    );
    assert!(j["output"].as_str().unwrap().ends_with("late\n"), "{j}");
    let r = scar.run(&["run", "-n", "slowfn", "sleep 4; echo late"]);
    assert_eq!(r.status, 0, "{r:#?}");
    assert!(r.stdout.ends_with("late\n"), "{r:#?}");
    assert!(
        r.stderr.contains("was handed over by request")
            && r.stderr
                .contains("at the timeout threshold and ran as a Batch job"),
        "{}",
        r.stderr
    );
}

/// On AWS, what a Batch function needs that only its definition gives is checked before
/// anything is pulled or made: an image package (Batch runs container images), and the
/// subnets and security groups of its compute environment (from the definition, or
/// `aws.batch.compute_resources` in scar.cfg as SCAR keeps them).
#[test]
fn the_aws_provider_says_what_a_batch_function_needs_before_pulling() {
    let Some((scar, work, image)) = with_busybox_image() else {
        return;
    };
    let Some(moto) = Moto::start() else {
        return;
    };
    let init = |extra: &[&str]| {
        let mut cmd = scar.command();
        cmd.args(["init", "-n", "remote", "-i", &image, "-em", "batch"]);
        cmd.args(extra);
        moto.aws_cli(&mut cmd, work.path());
        cmd.env("SCAR_IAM_ROLE", moto.role_arn());
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = init(&["--package", "zip"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("AWS Batch runs container images"),
        "{stderr}"
    );
    let (code, stderr) = init(&[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("its compute environment needs subnets and security groups"),
        "{stderr}"
    );
    // Nothing was made.
    let mut ls = scar.command();
    ls.args(["ls", "--json"]);
    moto.aws_cli(&mut ls, work.path());
    let out = ls.output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
}
