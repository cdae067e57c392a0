//! Packages on the local provider: `--package image` and `--package zip` run as Lambda
//! would run them, with the same results as a plain local function, on a static busybox
//! image and on a glibc image; `scar package` writes what AWS would get.

use std::path::Path;

use images::{build_busybox_image, OciImage};
use scar_test_support::images;
use scar_test_support::scar as support;
use support::{Run, Scar};

use crate::common::{number_after, scar_with, with_busybox_archive};

/// A glibc image: the host's dash, coreutils and their shared libraries.
fn build_glibc_image(work: &Path) -> OciImage {
    let img = OciImage::create(&work.join("glibc-oci"), "latest");
    img.add_layer(work, |rootfs| {
        let mut files = vec![
            "/bin/dash",
            "/bin/cat",
            "/bin/ls",
            "/bin/echo",
            "/usr/bin/id",
            "/usr/bin/env",
            "/usr/bin/sha256sum",
            "/bin/mkdir",
            "/usr/bin/basename",
            "/usr/bin/cut",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        let mut libs = Vec::new();
        for f in &files {
            let out = std::process::Command::new("ldd").arg(f).output().unwrap();
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if let Some(path) = line.split_whitespace().find(|w| w.starts_with('/')) {
                    libs.push(path.to_string());
                }
            }
        }
        files.extend(libs);
        for f in files {
            let real = std::fs::canonicalize(&f).unwrap();
            let dest = rootfs.join(f.trim_start_matches('/'));
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(&real, &dest).unwrap();
        }
        std::os::unix::fs::symlink("dash", rootfs.join("bin/sh")).unwrap();
        for d in ["etc", "tmp", "srv"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        std::fs::write(rootfs.join("etc/scar-marker"), "glibc test image\n").unwrap();
        std::fs::write(rootfs.join("srv/hello.txt"), "hello\n").unwrap();
    });
    img.config(&[
        "--config.cmd=/bin/echo",
        "--config.cmd=glibc says hello",
        "--config.env=GREETING=bonjour",
        "--config.env=PATH=/usr/bin:/bin",
        "--config.workingdir=/srv",
        "--os=linux",
        &format!("--architecture={}", scar_packager::host_architecture()),
    ]);
    img
}

const SCRIPT: &str = r#"cat /etc/scar-marker
echo "greeting=$GREETING pwd=$(pwd) uid=$(id -u)"
cat "$INPUT_FILE_PATH" 2>/dev/null
echo "made by $(basename "$0")" > "$TMP_OUTPUT_DIR/out.txt"
"#;

/// Runs the same things on a function and returns what must be equal across packages.
fn observe(scar: &Scar, name: &str, script: &Path, input: &Path) -> Vec<String> {
    let direct = scar
        .run(&["run", "-n", name, "-s", script.to_str().unwrap(), "--json"])
        .ok()
        .json();
    let image_cmd = scar.run(&["run", "-n", name]).ok().stdout;
    let bucket = format!("{}-b", name.to_ascii_lowercase());
    let events = scar.put_json(&format!("{bucket}/input"), input).ok().json()["results"].clone();
    let out = std::fs::read_to_string(scar.bucket(&bucket).join("output/out.txt")).unwrap();
    vec![
        direct["output"].as_str().unwrap().to_string(),
        direct["exit_code"].to_string(),
        image_cmd,
        events[0]["outcome"].to_string(),
        events[0]["uploaded"].to_string(),
        out.replace(
            &events[0]["request_id"].as_str().unwrap().to_string(),
            "RID",
        ),
    ]
}

#[test]
fn image_and_zip_packages_run_like_a_plain_function() {
    let Some(scar) = scar_with(&["umoci", "skopeo", "busybox"]) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let script = work.path().join("script.sh");
    std::fs::write(&script, SCRIPT).unwrap();
    let input = work.path().join("in put.txt");
    std::fs::write(&input, "the input\n").unwrap();
    let busybox = build_busybox_image(work.path());
    let glibc = build_glibc_image(work.path());
    for (label, image) in [("busybox", &busybox), ("glibc", &glibc)] {
        let archive = work.path().join(format!("{label}.tar"));
        image.docker_archive(&archive);
        let mut seen = Vec::new();
        for package in ["none", "image", "zip"] {
            let name = format!("{label}-{package}");
            let bucket = format!("{name}-b");
            let mut args = vec!["-es", &bucket];
            if package != "none" {
                args.extend(["--package", package]);
            }
            scar.init_from(&name, &archive, &args).ok();
            seen.push((package, observe(&scar, &name, &script, &input)));
        }
        let (_, plain) = &seen[0];
        assert!(plain[0].contains("test image"), "{label}: {plain:?}");
        assert!(plain[0].contains("pwd=/srv uid=0"), "{label}: {plain:?}");
        assert!(
            !plain[0].contains("the input"),
            "{label}: direct runs have no input"
        );
        for (package, observed) in &seen[1..] {
            assert_eq!(
                observed, plain,
                "{label}: --package {package} differs from a plain function"
            );
        }
        let listed = scar.run(&["ls", "--json"]).ok().json();
        let kinds: Vec<&str> = listed
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["spec"]["name"].as_str().unwrap().starts_with(label))
            .map(|f| f["package"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["image", "root", "zip"], "{label}");
    }
}

#[test]
fn a_zip_without_its_root_builds_one_from_its_layers() {
    let Some((scar, work, archive)) = with_busybox_archive(&["umoci", "skopeo", "busybox"]) else {
        return;
    };
    // `scar ARGS` with the unzipped size a zip package may have at most.
    let under = |limit: &str, args: &[&str]| {
        Run::of(
            scar.command()
                .env("SCAR_ZIP_UNZIPPED_LIMIT", limit)
                .args(args),
        )
    };
    let init = [
        "init",
        "-n",
        "cold",
        "-if",
        archive.to_str().unwrap(),
        "--package",
        "zip",
    ];
    // Small enough that the layers fit and the extracted root does not: a limit of 1 byte
    // fails and says what the layers alone take.
    let out = under("1", &init);
    assert_eq!(out.status, 2, "{out:?}");
    let stderr = &out.stderr;
    assert!(stderr.contains("help: use `--package image`"), "{stderr}");
    let layers_only: u64 = number_after(stderr, "would take ", " ");
    let limit = (layers_only + 1000).to_string();
    assert_eq!(
        scar.run(&["ls", "--json"]).ok().json(),
        serde_json::json!([])
    );
    let out = under(&limit, &init);
    assert_eq!(out.status, 0, "{out:?}");
    let fdir = scar.home.path().join("functions/cold");
    assert!(!fdir.join("coldroot").exists());
    let r = scar
        .run(&["run", "-n", "cold", "cat /etc/scar-marker; echo $GREETING"])
        .ok();
    assert_eq!(r.stdout, "scar test image\nhello\n");
    assert!(
        fdir.join("coldroot/etc/scar-marker").exists(),
        "the root was built at cold start"
    );
    let zip = work.path().join("cold.zip");
    let package = ["package", "-n", "cold", "--package", "zip", "-o"];
    let report = under(
        &limit,
        &[&package[..], &[zip.to_str().unwrap(), "--json"]].concat(),
    )
    .json();
    assert_eq!(report["includes_root"], false);
}

#[test]
fn scar_package_writes_what_aws_would_get() {
    let tools = ["umoci", "skopeo", "busybox", "proot", "unzip"];
    let Some((scar, work, archive)) = with_busybox_archive(&tools) else {
        return;
    };
    scar.init_from("pkg", &archive, &[]).ok();
    let oci = work.path().join("pkg.tar");
    let r = scar.package("pkg", "image", &oci, &["--json"]).ok().json();
    assert_eq!(r["package"], "image");
    let inspect = images::run(
        std::process::Command::new("skopeo")
            .args(["inspect", "--config"])
            .arg(format!("oci-archive:{}", oci.display())),
    );
    let config: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/opt/scar/bootstrap"])
    );
    assert_eq!(config["config"]["WorkingDir"], "/srv");
    let zip_path = work.path().join("pkg.zip");
    let r = scar
        .package("pkg", "zip", &zip_path, &["--json"])
        .ok()
        .json();
    assert_eq!(r["includes_root"], true);
    assert_eq!(r["needs_deployment_bucket"], false);
    assert!(
        r["warnings"].to_string().contains("no proot"),
        "a zip without proot cannot enter its root on Lambda, and says so: {r}"
    );
    // With a proot, the package carries it and its function file says where things are.
    {
        let proot = images::which("proot").unwrap();
        let with = work.path().join("with-proot.zip");
        scar.package("pkg", "zip", &with, &["--proot", proot.to_str().unwrap()])
            .ok();
        let unzip = |member: &str| {
            std::process::Command::new("unzip")
                .arg("-p")
                .arg(&with)
                .arg(member)
                .output()
                .unwrap()
                .stdout
        };
        assert_eq!(unzip("udocker/bin/proot"), std::fs::read(&proot).unwrap());
        let function: serde_json::Value = serde_json::from_slice(&unzip("function.json")).unwrap();
        let container = &function["container"];
        assert_eq!(container["proot"], "udocker/bin/proot");
        assert!(
            container["root"]
                .as_str()
                .is_some_and(|r| r.starts_with("udocker/containers/") && r.ends_with("/ROOT")),
            "{function}"
        );
        assert_eq!(container["layers"].as_array().unwrap().len(), 1);
    }
    let bytes = std::fs::read(&zip_path).unwrap();
    assert_eq!(&bytes[..4], b"PK\x03\x04");
    // Same function, same bytes: packages are deterministic.
    let again = work.path().join("again.zip");
    scar.package("pkg", "zip", &again, &[]).ok();
    assert_eq!(std::fs::read(&again).unwrap(), bytes);
    let r = scar.package("nobody", "zip", &again, &[]);
    assert_eq!(r.status, 2);
}

#[test]
fn the_supervisor_is_static_and_small() {
    let Some(path) = support::supervisor() else {
        return;
    };
    assert!(
        scar_local::is_static_elf(&path).unwrap(),
        "{} has an interpreter",
        path.display()
    );
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(
        size < 15 * 1024 * 1024,
        "{} is {size} bytes",
        path.display()
    );
}

/// `docker save` writes layers uncompressed: an image of 272 MiB of binary-like data is
/// over Lambda's 250 MB as such, and fits gzipped. `--package zip` gzips them into the
/// package; the zip runs on the local provider and in real udocker.
#[test]
fn a_docker_save_archive_over_250_mb_becomes_a_zip_that_fits() {
    let Some(scar) = scar_with(&[
        "umoci", "skopeo", "busybox", "udocker", "proot", "unzip", "bash",
    ]) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let image = build_busybox_image(work.path());
    const FILES: u64 = 68;
    image.add_layer(work.path(), |rootfs| {
        std::fs::create_dir_all(rootfs.join("data")).unwrap();
        for i in 0..FILES {
            let bytes = images::binary_like(i, 4 << 20);
            std::fs::write(rootfs.join(format!("data/blob-{i:02}.bin")), bytes).unwrap();
        }
    });
    let archive = work.path().join("big.tar");
    image.docker_archive(&archive);
    let limit = scar_packager::UNZIPPED_LIMIT;
    assert!(std::fs::metadata(&archive).unwrap().len() > limit);
    let expected = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(images::binary_like(7, 4 << 20)))
    };

    // `-db`, as on AWS: the zip (over 50 MB) goes through the deployment bucket.
    let init = scar
        .init_from("big", &archive, &["--package", "zip", "-db", "big-deploy"])
        .ok();
    assert!(init.stderr.contains("gzipped"), "{init:#?}");
    let deployed = scar.home.path().join("buckets/big-deploy/scar/big.zip");
    let r = scar
        .run(&[
            "run",
            "-n",
            "big",
            "sha256sum /data/blob-07.bin; cat /etc/scar-marker",
        ])
        .ok();
    assert_eq!(
        r.stdout,
        format!("{expected}  /data/blob-07.bin\nscar test image\n")
    );

    let zip = work.path().join("big.zip");
    let report = scar.package("big", "zip", &zip, &["--json"]).ok().json();
    assert!(
        report["unzipped_size"].as_u64().unwrap() <= limit,
        "{report}"
    );
    assert_eq!(report["includes_root"], false, "{report}");
    assert_eq!(report["needs_deployment_bucket"], true, "{report}");
    let again = work.path().join("again.zip");
    scar.package("big", "zip", &again, &[]).ok();
    assert!(
        std::fs::read(&zip).unwrap() == std::fs::read(&again).unwrap(),
        "the same function gives the same zip"
    );
    assert!(
        std::fs::read(&deployed).unwrap() == std::fs::read(&zip).unwrap(),
        "the deployment bucket holds the function's zip"
    );

    let out = work.path().join("unzipped");
    images::unzip(&zip, &out);
    let ud = out.join("udocker");
    let mut gzip_layers = 0;
    for e in std::fs::read_dir(ud.join("layers")).unwrap() {
        let mut head = [0u8; 2];
        use std::io::Read as _;
        std::fs::File::open(e.unwrap().path())
            .unwrap()
            .read_exact(&mut head)
            .unwrap();
        gzip_layers += usize::from(head == [0x1f, 0x8b]);
    }
    assert_eq!(gzip_layers, 2, "both layers are gzipped in the package");
    let wrapper = images::proot_wrapper(work.path());
    images::udocker(&ud, &wrapper, &["create", "--name=big", "big:latest"]);
    let sum = images::udocker(
        &ud,
        &wrapper,
        &[
            "run",
            "--entrypoint=",
            "big",
            "/bin/sha256sum",
            "/data/blob-07.bin",
        ],
    );
    assert!(sum.contains(&expected), "{sum}");
}
