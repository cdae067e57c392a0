//! SCAR's `extra_payload` (`-ep DIR`, FDL `lambda.extra_payload`) on the local provider: the
//! folder's files, copied at `init`, are at `/var/task` for the script, which
//! `$EXTRA_PAYLOAD` names; editing the folder afterwards changes nothing deployed; a folder
//! in a definition file is found beside the file; anything but a folder is refused.

use crate::common::{folder_with, with_busybox_image, write_file};

const READ: &str =
    "cat $EXTRA_PAYLOAD/greeting.txt $EXTRA_PAYLOAD/sub/deeper.txt; echo at $EXTRA_PAYLOAD";

#[test]
fn a_function_reads_its_extra_payload_at_var_task_as_deployed() {
    let Some((scar, work, image)) = with_busybox_image() else {
        return;
    };
    let payload = folder_with(
        work.path().join("payload"),
        &[("greeting.txt", "hello\n"), ("sub/deeper.txt", "below\n")],
    );
    let dir = payload.to_str().unwrap();
    let created = scar
        .run(&["init", "-n", "ep", "-i", &image, "-ep", dir, "--json"])
        .ok()
        .json();
    assert_eq!(created["spec"]["extra_payload"], dir, "{created}");
    let out = |name: &str| scar.run(&["run", "-n", name, READ]).ok().stdout;
    assert_eq!(out("ep"), "hello\nbelow\nat /var/task\n");

    // The function has its own copy: the folder edited after init changes nothing.
    std::fs::write(payload.join("greeting.txt"), "edited\n").unwrap();
    std::fs::remove_file(payload.join("sub/deeper.txt")).unwrap();
    assert_eq!(out("ep"), "hello\nbelow\nat /var/task\n");
    // Read-only, as Lambda's /var/task is.
    let r = scar.run(&["run", "-n", "ep", "echo x > /var/task/new"]);
    assert_ne!(r.status, 0, "{r:#?}");

    // A zip package holds the files at its root, unpacked at /var/task (not mounted over).
    std::fs::write(payload.join("sub/deeper.txt"), "zipped\n").unwrap();
    scar.run(&[
        "init",
        "-n",
        "ep-zip",
        "-i",
        &image,
        "--extra-payload",
        dir,
        "--package",
        "zip",
    ])
    .ok();
    assert_eq!(out("ep-zip"), "edited\nzipped\nat /var/task\n");
    // So does a local image package (the function's copy is mounted at /var/task).
    scar.run(&[
        "init",
        "-n",
        "ep-img",
        "-i",
        &image,
        "-ep",
        dir,
        "--package",
        "image",
    ])
    .ok();
    assert_eq!(out("ep-img"), "edited\nzipped\nat /var/task\n");

    // `scar package` ships the copy made at init, not the folder as it is now.
    std::fs::write(payload.join("greeting.txt"), "later\n").unwrap();
    let zip_file = work.path().join("ep.zip");
    scar.package("ep", "zip", &zip_file, &[]).ok();
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&zip_file).unwrap()).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("greeting.txt").unwrap(), &mut text).unwrap();
    assert_eq!(text, "hello\n");
    assert!(zip.by_name("sub/deeper.txt").is_ok());

    // Without one, no EXTRA_PAYLOAD.
    scar.run(&["init", "-n", "plain", "-i", &image]).ok();
    let r = scar
        .run(&["run", "-n", "plain", "echo [${EXTRA_PAYLOAD-unset}]"])
        .ok();
    assert_eq!(r.stdout, "[unset]\n");
}

#[test]
fn symlinks_out_of_the_extra_payload_are_not_followed() {
    let Some((scar, work, image)) = with_busybox_image() else {
        return;
    };
    let secret = write_file(work.path(), "secret.txt", "not yours\n");
    let payload = folder_with(work.path().join("payload"), &[("in.txt", "inside\n")]);
    std::os::unix::fs::symlink(&secret, payload.join("out.txt")).unwrap();
    std::os::unix::fs::symlink("in.txt", payload.join("alias.txt")).unwrap();
    let init = scar
        .run(&[
            "init",
            "-n",
            "links",
            "-i",
            &image,
            "-ep",
            payload.to_str().unwrap(),
        ])
        .ok();
    assert!(
        init.stderr
            .contains("out.txt: a symlink out of the folder, left out"),
        "{init:#?}"
    );
    let r = scar
        .run(&[
            "run",
            "-n",
            "links",
            "cat /var/task/alias.txt; ls /var/task",
        ])
        .ok();
    assert_eq!(r.stdout, "inside\nalias.txt\nin.txt\n");
}

#[test]
fn an_fdl_extra_payload_is_found_beside_the_file_and_a_missing_one_is_refused() {
    let Some((scar, work, image)) = with_busybox_image() else {
        return;
    };
    let defs = work.path().join("defs");
    folder_with(
        defs.join("files/payload"),
        &[
            ("greeting.txt", "from the file\n"),
            ("sub/deeper.txt", "deep\n"),
        ],
    );
    let lambda = |name: &str, payload: &str| {
        format!(
            "functions:\n  aws:\n  - lambda:\n      name: {name}\n      extra_payload: {payload}\n      container:\n        image: {image}\n"
        )
    };
    let fdl = write_file(&defs, "scar.yaml", &lambda("fdl-ep", "files/payload"));
    // Run from elsewhere: the folder is the file's neighbour, not the working directory's.
    let created = scar.run(&["init", "-f", &fdl, "--json"]).ok().json();
    let expected = defs.join("files/payload");
    assert_eq!(
        created[0]["spec"]["extra_payload"],
        expected.to_str().unwrap(),
        "{created}"
    );
    let r = scar.run(&["run", "-n", "fdl-ep", READ]).ok();
    assert_eq!(r.stdout, "from the file\ndeep\nat /var/task\n");

    // Missing, or a file: usage errors before anything is created.
    let missing = write_file(&defs, "missing.yaml", &lambda("nope", "no/such/dir"));
    scar.run(&["init", "-f", &missing])
        .assert_refused("extra payload `");
    let file = write_file(work.path(), "a-file", "x");
    scar.run(&["init", "-n", "nope2", "-i", &image, "-ep", &file])
        .assert_refused("is not a folder");
    scar.run(&["init", "-n", "nope3", "-i", &image, "-ep", "/no/such/dir"])
        .assert_refused("extra payload `/no/such/dir`");
    // An image with its own runtime is shipped as it is: no /var/task of scar's.
    let dir = defs.join("files/payload");
    scar.run(&[
        "init",
        "-n",
        "nope4",
        "-i",
        &image,
        "-ep",
        dir.to_str().unwrap(),
        "--runtime-client",
        "image",
    ])
    .assert_refused("cannot have an extra payload (`-ep`)");
    let listed = scar.run(&["ls", "--json"]).ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
}
