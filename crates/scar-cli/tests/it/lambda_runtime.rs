//! SCAR's `-rt`/`--runtime` (FDL `runtime`, scar.cfg `aws.lambda.runtime`) on the local
//! provider: `image` is the image package with the supervisor in it, `python3.x` the zip
//! package with one warning that the version has no effect; scar's own Runtime API client
//! mode is `--runtime-client` (see `runtime_api.rs`), and `--runtime scar` names it.

use crate::common::{with_busybox_archive, write_file};

/// The `package` that `scar ls --json` shows for each of `names`.
fn packages(scar: &scar_test_support::scar::Scar, names: &[&str]) -> Vec<String> {
    let listed = scar.run(&["ls", "--json"]).ok().json();
    names
        .iter()
        .map(|name| {
            let f = (listed.as_array().unwrap().iter())
                .find(|f| f["spec"]["name"] == *name)
                .unwrap_or_else(|| panic!("{name} not in {listed}"));
            f["package"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn rt_image_is_the_image_package_and_runs() {
    let Some((scar, _work, archive)) = with_busybox_archive(&["umoci", "skopeo", "busybox"]) else {
        return;
    };
    let info = scar
        .init_from("rt-image", &archive, &["-rt", "image", "--json"])
        .ok()
        .json();
    assert_eq!(info["package"], "image", "{info}");
    // Its client is scar's supervisor: scripts and commands run.
    assert!(info["spec"].get("runtime_client").is_none(), "{info}");
    let long = scar
        .init_from("rt-image-long", &archive, &["--runtime", "image"])
        .ok();
    assert!(!long.stderr.contains("warning"), "{long:#?}");
    assert_eq!(
        packages(&scar, &["rt-image", "rt-image-long"]),
        ["image", "image"]
    );
    let r = scar
        .run(&["run", "-n", "rt-image", "echo from the image package"])
        .ok();
    assert!(r.stdout.contains("from the image package"), "{r:#?}");
    // `--package image` beside it says the same; `zip` contradicts it.
    scar.init_from("rt-both", &archive, &["-rt", "image", "--package", "image"])
        .ok();
    scar.init_from("rt-clash", &archive, &["-rt", "image", "--package", "zip"])
        .assert_refused("--runtime image (-rt) means --package image");
}

#[test]
fn fdl_runtime_python_is_a_zip_with_one_warning() {
    let Some((scar, work, archive)) = with_busybox_archive(&["umoci", "skopeo", "busybox"]) else {
        return;
    };
    let archive = archive.to_str().unwrap();
    let fdl = write_file(
        work.path(),
        "python.yaml",
        &format!(
            "functions:\n  aws:\n  - lambda:\n      name: py-a\n      runtime: python3.9\n      container: {{image_file: {archive}}}\n  - lambda:\n      name: py-b\n      runtime: python3.12\n      container: {{image_file: {archive}}}\n"
        ),
    );
    let r = scar.run(&["init", "-f", &fdl]).ok();
    let warning = "scar's supervisor is a static binary, so the Python version has no effect";
    assert_eq!(r.stderr.matches(warning).count(), 1, "one warning: {r:#?}");
    assert!(!r.stderr.contains("not used"), "`runtime` is read: {r:#?}");
    assert_eq!(packages(&scar, &["py-a", "py-b"]), ["zip", "zip"]);
    let ran = scar.run(&["run", "-n", "py-b", "echo from the zip"]).ok();
    assert!(ran.stdout.contains("from the zip"), "{ran:#?}");
    // On the command line, the same: one warning, a zip.
    let r = scar
        .init_from("py-c", std::path::Path::new(archive), &["-rt", "python3.9"])
        .ok();
    assert_eq!(r.stderr.matches(warning).count(), 1, "{r:#?}");
    assert_eq!(packages(&scar, &["py-c"]), ["zip"]);
    // The flag wins over the file.
    scar.run(&["rm", "-n", "py-a"]).ok();
    let r = scar
        .run(&["init", "-f", &fdl, "-n", "py-a", "-rt", "image"])
        .ok();
    assert!(!r.stderr.contains(warning), "{r:#?}");
    assert_eq!(packages(&scar, &["py-a"]), ["image"]);
}

#[test]
fn scar_cfg_runtime_image_is_the_default_package() {
    let Some((scar, _work, archive)) = with_busybox_archive(&["umoci", "skopeo", "busybox"]) else {
        return;
    };
    let cfg = scar.home.path().join("scar.cfg");
    std::fs::write(&cfg, r#"{"aws": {"lambda": {"runtime": "image"}}}"#).unwrap();
    let r = scar.init_from("cfg-image", &archive, &[]).ok();
    assert!(
        !r.stderr.contains("aws.lambda.runtime"),
        "read, not warned: {r:#?}"
    );
    // SCAR 4's default value is named as not followed: the package stays scar's default.
    std::fs::write(&cfg, r#"{"aws": {"lambda": {"runtime": "python3.7"}}}"#).unwrap();
    let r = scar.init_from("cfg-python", &archive, &[]).ok();
    assert!(
        r.stderr
            .contains("aws.lambda.runtime: \"python3.7\" is not followed"),
        "{r:#?}"
    );
    assert_eq!(
        packages(&scar, &["cfg-image", "cfg-python"]),
        ["image", "root"]
    );
    std::fs::write(&cfg, r#"{"aws": {"lambda": {"runtime": "scar"}}}"#).unwrap();
    let r = scar.init_from("cfg-scar", &archive, &[]);
    assert_ne!(r.status, 0, "{r:#?}");
    assert!(r.stderr.contains("--runtime-client scar"), "{r:#?}");
}
