//! `scar.cfg` as SCAR 4 writes it, through the `scar` binary: found where
//! `SCAR_CONFIG_FOLDER` says, its keys read with the meaning SCAR gives them, under the
//! flags and the environment, and every key scar has no use for named in a warning.

use scar_test_support::scar::{Run, SCAR4_DEFAULT_CFG};

use crate::common::with_busybox_image;

#[test]
fn a_scar4_config_file_in_scar_config_folder_gives_init_its_defaults() {
    let Some((scar, work, image)) = with_busybox_image() else {
        return;
    };
    // SCAR 4's default file, edited as its documentation says, and a typo.
    let mut cfg: serde_json::Value = serde_json::from_str(SCAR4_DEFAULT_CFG).unwrap();
    let lambda = &mut cfg["aws"]["lambda"];
    lambda["timeout"] = 42.into();
    lambda["memory"] = 256.into();
    lambda["container"]["timeout_threshold"] = 7.into();
    lambda["container"]["environment"]["Variables"]["LEVEL"] = 3.into();
    lambda["execution_mode"] = "lambda-batch".into();
    lambda["log_level"] = "debug".into();
    lambda["timout"] = 60.into();
    cfg["aws"]["batch"]["vcpus"] = 2.into();
    // SCAR's API Gateway template is what scar makes: only a changed value is named.
    cfg["aws"]["api_gateway"]["stage_name"] = "prod".into();
    let folder = work.path().join("scar-config");
    std::fs::create_dir(&folder).unwrap();
    let file = folder.join("scar.cfg");
    std::fs::write(&file, cfg.to_string()).unwrap();
    let init = |name: &str, env: &[(&str, &str)], flags: &[&str]| {
        let mut cmd = scar.command();
        cmd.env("SCAR_CONFIG_FOLDER", &folder)
            .envs(env.iter().copied())
            .args(["init", "-n", name, "-i", &image, "--json"])
            .args(flags);
        Run::of(&mut cmd).ok()
    };

    let r = init("from-file", &[], &[]);
    let spec = &r.json()["spec"];
    assert_eq!(spec["timeout_s"], 42, "{r:#?}");
    assert_eq!(spec["memory_mb"], 256);
    assert_eq!(spec["timeout_threshold_s"], 7);
    assert_eq!(spec["environment"]["LEVEL"], "3");
    // A Batch mode with no definition takes SCAR's `aws.batch`, but its launch template.
    assert_eq!(spec["execution_mode"], "lambda-batch");
    // SCAR's log level is the supervisor's of new functions (`-ll` and the file's win).
    assert_eq!(spec["log_level"], "DEBUG", "{spec}");
    assert_eq!(spec["batch"]["vcpus"], 2);
    assert_eq!(spec["batch"]["compute"]["instance_types"][0], "m3.medium");
    assert!(spec["batch"]["compute"]
        .get("launch_template_name")
        .is_none());
    // SCAR's udocker variables stay out of the function.
    let lambda_env = spec["lambda_environment"].as_object();
    assert!(lambda_env.is_none_or(|e| e.is_empty()), "{spec}");
    // What scar does not use is named, with the file, through the printer.
    let file = file.display().to_string();
    for key in [
        "oscar: not used by scar",
        "aws.api_gateway.stage_name: \"prod\" is not followed: scar makes SCAR's API Gateway",
        "scar.config_version: not used by scar",
        "aws.lambda.runtime: \"python3.7\" is not followed: SCAR's Python runtime",
        "aws.lambda.supervisor: not used by scar",
        "aws.lambda.timout: unknown to scar",
        "aws.batch.compute_resources.launch_template_name: \"faas-supervisor\" is not followed",
    ] {
        let line = format!("warning: {file}: {key}");
        assert!(r.stderr.contains(&line), "{line:?} in {}", r.stderr);
    }
    assert!(
        !r.stderr.contains("aws.api_gateway: not used"),
        "{}",
        r.stderr
    );
    // SCAR_CONFIG_FOLDER moves the config file only: none is made in the home, whose
    // state holds the function.
    assert!(!scar.home.path().join("scar.cfg").exists());
    assert!(scar.home.path().join("functions/from-file").is_dir());

    // flags > environment > file, with SCAR 4's spellings.
    let timeout = [("SCAR_TIMEOUT", "30")];
    let r = init("from-env", &timeout, &[]);
    assert_eq!(r.json()["spec"]["timeout_s"], 30, "{r:#?}");
    let r = init("from-flag", &timeout, &["-t", "20"]);
    assert_eq!(r.json()["spec"]["timeout_s"], 20, "{r:#?}");

    // `aws.lambda.asynchronous: true`: `run` answers with the request id at once.
    cfg["aws"]["lambda"]["asynchronous"] = true.into();
    std::fs::write(folder.join("scar.cfg"), cfg.to_string()).unwrap();
    let mut run = scar.command();
    run.env("SCAR_CONFIG_FOLDER", &folder)
        .args(["run", "-n", "from-file", "--json"]);
    let r = Run::of(&mut run).ok().json();
    assert!(
        r["request_id"].as_str().is_some_and(|id| !id.is_empty()),
        "{r}"
    );
}
