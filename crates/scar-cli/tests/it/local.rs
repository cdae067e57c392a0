//! `scar` end to end on the local provider, with images built by umoci and moved by skopeo.

use std::path::Path;
use std::time::{Duration, Instant};

use images::{build_busybox_image, require_tools, OciImage, TestRegistry};
use scar_test_support::images;
use scar_test_support::scar as support;
use support::Scar;

use crate::common::scar_with;

const TOOLS: &[&str] = &["umoci", "skopeo", "busybox"];

/// A busybox image (entrypoint `/bin/sh -c`, cmd `echo hello`, env GREETING=hello, workdir
/// /srv) as a docker-archive made by skopeo.
fn image_archive(work: &Path) -> (OciImage, std::path::PathBuf) {
    let image = build_busybox_image(work);
    let archive = work.join("image.tar");
    image.docker_archive(&archive);
    (image, archive)
}

fn setup() -> Option<(Scar, tempfile::TempDir, OciImage, std::path::PathBuf)> {
    if !require_tools(TOOLS) {
        return None;
    }
    let scar = Scar::new(env!("CARGO_BIN_EXE_scar"))?;
    let work = tempfile::tempdir().unwrap();
    let (image, archive) = image_archive(work.path());
    Some((scar, work, image, archive))
}

#[test]
fn a_function_runs_scripts_inside_its_image() {
    let Some((scar, work, _image, archive)) = setup() else {
        return;
    };
    let info = scar
        .init_from("fn1", &archive, &["-e", "FROM_INIT=i", "--json"])
        .ok()
        .json();
    assert_eq!(info["spec"]["name"], "fn1");
    assert_eq!(info["spec"]["memory_mb"], 512);
    assert_eq!(info["spec"]["timeout_s"], 300);
    let listed = scar.run(&["ls", "--json"]).ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["spec"]["name"], "fn1");
    // One owner locally: --all-owners is accepted and lists the same, owner null.
    assert_eq!(
        scar.run(&["ls", "--all-owners", "--json"]).ok().json(),
        listed
    );
    assert!(listed[0]["owner"].is_null(), "{listed}");
    let table = scar.run(&["ls"]).ok().stdout;
    assert!(
        table.starts_with("NAME") && table.contains("fn1"),
        "{table}"
    );

    let script = work.path().join("script.sh");
    std::fs::write(
        &script,
        r#"cat /etc/scar-marker
test -e /etc/debian_version && echo "HOST FILE VISIBLE" || echo "no host files"
echo "rid=$REQUEST_ID"
echo "in=$TMP_INPUT_DIR out=$TMP_OUTPUT_DIR sout=$SCAR_OUTPUT_DIR"
echo "env: $GREETING $FROM_INIT $FROM_RUN"
echo "pwd: $(pwd)"
echo "shell: $0"
touch /etc/written 2>/dev/null && echo "ROOT WRITABLE" || echo "root is read-only"
touch /tmp/ok && echo "tmp writable"
echo "pid1: $(cat /proc/1/cmdline | tr '\0' ' ')"
echo to-stderr >&2
"#,
    )
    .unwrap();
    let out = scar
        .run(&[
            "run",
            "-n",
            "fn1",
            "-e",
            "FROM_RUN=r",
            "-s",
            script.to_str().unwrap(),
            "--json",
        ])
        .ok()
        .json();
    let text = out["output"].as_str().unwrap();
    let rid = out["request_id"].as_str().unwrap();
    assert_eq!(out["exit_code"], 0);
    assert_eq!(out["timed_out"], false);
    assert!(text.contains("scar test image"), "{text}");
    assert!(text.contains("no host files"), "{text}");
    assert!(text.contains(&format!("rid={rid}")), "{text}");
    assert!(
        text.contains(&format!(
            "in=/tmp/{rid}/input out=/tmp/{rid}/output sout=/tmp/{rid}/output"
        )),
        "{text}"
    );
    assert!(text.contains("env: hello i r"), "{text}");
    assert!(text.contains("pwd: /srv"), "{text}");
    assert!(
        text.contains(&format!("shell: /tmp/{rid}/script.sh")),
        "{text}"
    );
    assert!(text.contains("root is read-only"), "{text}");
    assert!(text.contains("tmp writable"), "{text}");
    assert!(text.contains("pid1: /opt/scar/bootstrap"), "{text}");
    assert!(text.contains("to-stderr"), "{text}");
    assert_eq!(out["log_group"], "/aws/lambda/fn1");

    // Arguments replace CMD and keep ENTRYPOINT (`/bin/sh -c`), as `docker run` does.
    let args = scar
        .run(&["run", "-n", "fn1", "echo \"args:$0:$1\"", "a b", "c"])
        .ok();
    assert_eq!(args.stdout, "args:a b:c\n");
    // No script, no arguments, no init script: the image's own ENTRYPOINT + CMD.
    assert_eq!(scar.run(&["run", "-n", "fn1"]).ok().stdout, "hello\n");

    scar.run(&["rm", "-n", "fn1"]).ok();
    assert_eq!(
        scar.run(&["ls", "--json"]).ok().json(),
        serde_json::json!([])
    );
    assert_eq!(scar.run(&["run", "-n", "fn1"]).status, 2);
}

#[test]
fn exit_codes_timeouts_and_init_scripts() {
    let Some((scar, work, _image, archive)) = setup() else {
        return;
    };
    let init = work.path().join("init.sh");
    std::fs::write(&init, "echo from-init-script; exit ${CODE:-0}\n").unwrap();
    scar.init_from(
        "fn2",
        &archive,
        &["-t", "4", "-tt", "2", "-s", init.to_str().unwrap()],
    )
    .ok();
    let r = scar.run(&["run", "-n", "fn2"]).ok();
    assert_eq!(r.stdout, "from-init-script\n");
    // A failing script: its output, then exit status 1; --json says the script's code.
    let r = scar.run(&["run", "-n", "fn2", "-e", "CODE=7"]);
    assert_eq!(r.status, 1, "{r:#?}");
    assert_eq!(r.stdout, "from-init-script\n");
    assert!(r.stderr.contains("status 7"), "{r:#?}");
    let r = scar.run(&["run", "-n", "fn2", "-e", "CODE=7", "--json"]);
    assert_eq!(r.status, 1, "{r:#?}");
    assert_eq!(r.json()["exit_code"], 7);

    // Past the timeout minus the threshold (4 - 2 s) the script is killed.
    let slow = work.path().join("slow.sh");
    std::fs::write(&slow, "echo before\nsleep 30\necho after\n").unwrap();
    let started = Instant::now();
    let r = scar.run(&["run", "-n", "fn2", "-s", slow.to_str().unwrap(), "--json"]);
    let took = started.elapsed();
    assert_eq!(r.status, 1, "{r:#?}");
    let j = r.json();
    assert_eq!(j["timed_out"], true);
    assert_eq!(j["exit_code"], serde_json::Value::Null);
    let text = j["output"].as_str().unwrap();
    assert!(
        text.starts_with("before\n") && !text.contains("\nafter\n"),
        "{text}"
    );
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(10),
        "{took:?}"
    );
}

#[test]
fn log_by_request_id_returns_exactly_that_invocation() {
    let Some((scar, _work, _image, archive)) = setup() else {
        return;
    };
    scar.init_from("fn3", &archive, &[]).ok();
    let first = scar.run(&["run", "-n", "fn3", "echo first-run"]).ok();
    assert_eq!(first.stdout, "first-run\n");
    let a = scar
        .run(&["run", "-n", "fn3", "--json", "echo line-a; echo line-b"])
        .ok()
        .json();
    let b = scar
        .run(&["run", "-n", "fn3", "--json", "echo line-c"])
        .ok()
        .json();
    let (ida, idb) = (
        a["request_id"].as_str().unwrap(),
        b["request_id"].as_str().unwrap(),
    );
    assert_ne!(ida, idb);
    let log = scar.run(&["log", "-n", "fn3", "-ri", ida]).ok().stdout;
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 5, "{log}");
    assert_eq!(lines[0], format!("START RequestId: {ida} Version: $LATEST"));
    assert_eq!(&lines[1..3], ["line-a", "line-b"]);
    assert_eq!(lines[3], format!("END RequestId: {ida}"));
    assert!(
        lines[4].starts_with(&format!("REPORT RequestId: {ida}\tDuration: ")),
        "{log}"
    );
    assert!(lines[4].contains("Memory Size: 512 MB"), "{log}");
    // All of it: three invocations, each with its lines.
    let all = scar.run(&["log", "-n", "fn3"]).ok().stdout;
    assert_eq!(all.matches("START RequestId:").count(), 3, "{all}");
    assert!(all.contains("first-run") && all.contains("line-c"), "{all}");
    // One stream, by name.
    let stream = a["log_stream"].as_str().unwrap();
    let by_stream = scar.run(&["log", "-n", "fn3", "-ls", stream]).ok().stdout;
    assert!(by_stream.contains("line-a"), "{by_stream}");
    let json = scar
        .run(&["log", "-n", "fn3", "-ri", idb, "--json"])
        .ok()
        .stdout;
    let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(first["stream"], b["log_stream"]);
    // An id with no lines is an error that says so, not an empty success.
    let none = scar.run(&["log", "-n", "fn3", "-ri", "no-such-request"]);
    assert_eq!(none.status, 2, "{none:?}");
    assert!(none.stdout.is_empty(), "{none:?}");
    assert!(
        none.stderr
            .contains("no log lines for request no-such-request")
            && none.stderr.contains("may not have run yet"),
        "{none:?}"
    );
}

#[test]
fn every_image_source_makes_a_function() {
    let Some(scar) = scar_with(&["umoci", "skopeo", "busybox", "docker-registry"]) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let image = build_busybox_image(work.path());
    let registry = TestRegistry::start();
    let reference = image.push(&registry, "test/busybox:v1", false);
    let oci_archive = work.path().join("oci.tar");
    image.oci_archive(&oci_archive);
    let layout = image.image_arg();
    for (name, flag, source) in [
        ("from-registry", "-i", reference.as_str()),
        ("from-layout", "-i", layout.as_str()),
        ("from-oci-archive", "-if", oci_archive.to_str().unwrap()),
    ] {
        scar.run(&["init", "-n", name, flag, source]).ok();
        let r = scar.run(&["run", "-n", name, "cat /etc/scar-marker"]).ok();
        assert_eq!(r.stdout, "scar test image\n", "{name}");
    }
    // One image, one cached root, whatever the source.
    let roots = std::fs::read_dir(scar.home.path().join("cache/roots"))
        .unwrap()
        .count();
    assert_eq!(roots, 1);
}

/// A registry behind a login (`docker-registry` with htpasswd), its credentials from a
/// credential helper the Docker config file in `DOCKER_CONFIG` names: `init` pulls through
/// it; without it, or with a password the registry refuses, `init` is refused (exit 2) with
/// an error that says so, names the registry and the helper, and shows no secret.
#[test]
fn init_pulls_from_a_registry_behind_a_login_through_a_credential_helper() {
    let Some(scar) = scar_with(&["umoci", "skopeo", "busybox", "docker-registry", "htpasswd"])
    else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let registry = TestRegistry::with_login("alice", "s3cr3t-pw");
    let reference = build_busybox_image(work.path()).push(&registry, "test/private:v1", false);
    let addr = registry.addr.as_str();
    let bin = work.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    images::credential_helper(&bin, "scartest", &[(addr, "alice", "s3cr3t-pw")]);
    images::credential_helper(&bin, "wrong", &[(addr, "alice", "wrong-s3cr3t")]);
    let path = std::env::join_paths(
        std::iter::once(bin.clone())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let init = |name: &str, config: &str| {
        let docker = work.path().join(format!("docker-{name}"));
        std::fs::create_dir(&docker).unwrap();
        std::fs::write(docker.join("config.json"), config).unwrap();
        support::Run::of(
            scar.command()
                .env("DOCKER_CONFIG", &docker)
                .env("PATH", &path)
                .args(["init", "-n", name, "-i", &reference]),
        )
    };

    let none = init("none", "{}");
    none.assert_refused(&format!("registry {addr} refused access"));
    assert!(
        none.stderr.contains("401 Unauthorized") && none.stderr.contains("no credentials"),
        "{none:#?}"
    );
    let wrong = init("wrong", r#"{"credsStore":"wrong"}"#);
    wrong.assert_refused("scar offered the credentials from `docker-credential-wrong`");
    assert!(!format!("{wrong:?}").contains("s3cr3t"), "{wrong:#?}");
    let missing = init("missing", r#"{"credsStore":"not-installed"}"#);
    missing.assert_refused("`docker-credential-not-installed` (credsStore in ");

    init(
        "private",
        &format!(r#"{{"credHelpers":{{"{addr}":"scartest"}}}}"#),
    )
    .ok();
    assert_eq!(images::helper_asked(&bin, "scartest"), format!("{addr}\n"));
    let r = scar
        .run(&["run", "-n", "private", "cat /etc/scar-marker"])
        .ok();
    assert_eq!(r.stdout, "scar test image\n");
}

#[test]
fn bad_input_is_refused_with_status_2_and_leaves_nothing() {
    let Some((scar, work, image, archive)) = setup() else {
        return;
    };
    let archive = archive.to_str().unwrap();
    scar.run(&["init", "-n", "taken", "-if", archive]).ok();
    let before = scar.state();

    let not_image = work.path().join("random.tar");
    std::fs::write(
        &not_image,
        (0..5000u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let truncated = work.path().join("truncated.tar");
    let bytes = std::fs::read(archive).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let tampered = work.path().join("tampered.tar");
    image.docker_archive(&tampered);
    flip_a_layer_byte(&tampered);
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let unreachable = format!("127.0.0.1:{closed_port}/test/busybox:latest");
    let missing_script = work.path().join("no-such-script.sh");
    let (not_image, truncated, tampered, missing_script) = (
        not_image.to_str().unwrap(),
        truncated.to_str().unwrap(),
        tampered.to_str().unwrap(),
        missing_script.to_str().unwrap(),
    );
    let cases: &[(&[&str], &str)] = &[
        (&["init", "-n", "taken", "-if", archive], "already exists"),
        (
            &["init", "-n", "bad name", "-if", archive],
            "invalid function name",
        ),
        (&["init", "-n", "m", "-m", "64", "-if", archive], "memory"),
        (&["init", "-n", "t", "-t", "901", "-if", archive], "timeout"),
        (
            &["init", "-n", "t", "-t", "5", "-tt", "5", "-if", archive],
            "threshold",
        ),
        (&["init", "-n", "r", "-if", not_image], "not"),
        (&["init", "-n", "r", "-if", truncated], ""),
        (&["init", "-n", "r", "-if", tampered], "digest"),
        (&["init", "-n", "r", "-i", &unreachable], ""),
        (
            &["init", "-n", "r", "-if", archive, "-s", missing_script],
            "no-such-script",
        ),
        (
            &["init", "-n", "r", "-if", archive, "-e", "1BAD=x"],
            "environment",
        ),
        (&["run", "-n", "nobody"], "not found"),
        (
            &["run", "-n", "taken", "-s", missing_script],
            "no-such-script",
        ),
        (&["rm", "-n", "nobody"], "not found"),
        (&["log", "-n", "nobody"], "not found"),
    ];
    for &(args, says) in cases {
        let r = scar.run(args);
        assert_eq!(r.status, 2, "{args:?}: {r:#?}");
        assert!(r.stderr.starts_with("error: "), "{args:?}: {r:#?}");
        assert!(
            r.stderr.to_lowercase().contains(says),
            "{args:?} should say {says:?}: {r:#?}"
        );
        assert!(!r.stderr.contains("panicked"), "{r:#?}");
        assert_eq!(scar.state(), before, "{args:?} left something behind");
    }
    // An unknown tag on a live registry.
    if require_tools(&["docker-registry"]) {
        let registry = TestRegistry::start();
        image.push(&registry, "test/busybox:v1", false);
        let r = scar.run(&[
            "init",
            "-n",
            "r",
            "-i",
            &format!("{}/test/busybox:nope", registry.addr),
        ]);
        assert_eq!(r.status, 2, "{r:#?}");
        assert_eq!(scar.state(), before);
    }
    assert_eq!(
        scar.run(&["ls", "--json"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// Changes one byte inside the first layer of a docker archive, keeping the tar valid.
fn flip_a_layer_byte(archive: &Path) {
    let mut bytes = std::fs::read(archive).unwrap();
    let mut ar = tar::Archive::new(&bytes[..]);
    let mut target = None;
    for entry in ar.entries().unwrap() {
        let entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        if entry.header().entry_type().is_file() && entry.size() > 4096 && !path.ends_with(".json")
        {
            target = Some(entry.raw_file_position() as usize + 2048);
            break;
        }
    }
    let at = target.expect("a layer blob in the archive");
    bytes[at] ^= 0xff;
    std::fs::write(archive, bytes).unwrap();
}

/// SCAR's `-api NAME` on the local provider: the function is created as any other and
/// keeps the name; with no `scar serve` running it has no URL, so no API_URL column.
#[test]
fn a_function_with_an_api_gateway_is_kept_locally() {
    let Some((scar, _work, _image, archive)) = setup() else {
        return;
    };
    let info = scar
        .init_from("api-local", &archive, &["-api", "local-api", "--json"])
        .ok()
        .json();
    assert_eq!(info["spec"]["api_gateway"], "local-api", "{info}");
    assert!(info["api_url"].is_null(), "{info}");
    let listed = scar.run(&["ls", "--json"]).ok().json();
    assert_eq!(listed[0]["spec"]["api_gateway"], "local-api", "{listed}");
    assert!(listed[0]["api_url"].is_null(), "{listed}");
    let table = scar.run(&["ls"]).ok().stdout;
    assert!(!table.contains("API_URL"), "{table}");
    assert_eq!(scar.run(&["run", "-n", "api-local"]).ok().stdout, "hello\n");
    scar.run(&["rm", "-n", "api-local"]).ok();
}

/// `init --json` and `ls --json` say which supervisor a function was created with: the
/// version its binary carries (`scar_runtime::VERSION_MARKER`), so that an old function
/// can be told from a new one; `null` for a supervisor without the marker.
#[test]
fn a_function_records_its_supervisors_version() {
    let Some((scar, _work, _image, archive)) = setup() else {
        return;
    };
    let Some(supervisor) = support::supervisor() else {
        return;
    };
    let carried = scar_core::supervisor_version_in(&std::fs::read(&supervisor).unwrap());
    let expected = serde_json::json!(carried);
    let info = scar
        .init_from("sv-version", &archive, &["--json"])
        .ok()
        .json();
    assert_eq!(info["supervisor_version"], expected, "{info}");
    let listed = scar.run(&["ls", "--json"]).ok().json();
    assert_eq!(listed[0]["supervisor_version"], expected, "{listed}");
    let version = scar.run(&["--version"]).ok().stdout;
    assert!(
        version.starts_with(&format!("scar {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    assert!(
        version.contains(&format!(
            "supervisor (x86_64): {} {}",
            carried.as_deref().unwrap_or("(no version)"),
            supervisor.display()
        )),
        "{version}"
    );
    scar.run(&["rm", "-n", "sv-version"]).ok();
}

/// A function can write symlinks into its buckets (they are mounted in its sandbox); scar,
/// outside the sandbox, never writes or lists through them: `put` into a folder a function
/// turned into a symlink to a host folder is refused and writes nothing there, and `ls -b`
/// and `get` of it find nothing.
#[test]
fn symlinks_a_function_plants_in_its_bucket_never_lead_scar_out_of_it() {
    let Some((scar, work, image)) = crate::common::with_busybox_image() else {
        return;
    };
    let outside = work.path().join("host-folder");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "host secret\n").unwrap();
    let o = outside.display();
    let script = crate::common::write_file(
        work.path(),
        "plant.sh",
        &format!(
            "b=/opt/scar/buckets/trap\nrm -rf $b/.scar/tmp\nmkdir -p $b/.scar\nln -s {o} $b/.scar/tmp\nln -s {o} $b/input/linked\nln -s {o}/secret.txt $b/input/secret.txt\necho planted\n"
        ),
    );
    scar.run(&["init", "-n", "planter", "-i", &image, "-es", "trap"])
        .ok();
    let r = scar.run(&["run", "-n", "planter", "-s", &script]).ok();
    assert!(r.stdout.contains("planted"), "{r:#?}");
    let file = work.path().join("x.txt");
    std::fs::write(&file, "from the user\n").unwrap();
    let before: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    // Through the planted `.scar/tmp`, and into the planted folder.
    scar.put_json("trap/input", &file).assert_refused("symlink");
    scar.put_json("trap/input/linked", &file)
        .assert_refused("symlink");
    let after: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(before, after, "scar wrote into the host folder");
    // Listing and fetching never read the host's file through them.
    let listed = scar.run(&["ls", "-b", "trap/input", "--json"]).ok().stdout;
    assert!(!listed.contains("secret"), "{listed}");
    let linked = scar
        .run(&["ls", "-b", "trap/input/linked", "--json"])
        .ok()
        .stdout;
    assert!(!linked.contains("secret"), "{linked}");
    let dest = work.path().join("fetched");
    scar.run(&[
        "get",
        "-b",
        "trap/input/linked",
        "-p",
        dest.to_str().unwrap(),
    ]);
    assert!(!dest.join("secret.txt").exists(), "fetched the host's file");
}
