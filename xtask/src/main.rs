//! `cargo xtask`: the project's automation, in Rust so that it runs wherever cargo does.
//!
//! - `demo`: builds scar and a static supervisor, assembles a small busybox image on this
//!   machine (nothing is pulled from the internet), creates a function, runs a script in
//!   it and shows its output and logs.
//! - `test`: installs the test prerequisites (apt, pip) when missing, builds, runs
//!   `cargo fmt --check`, clippy and the whole test suite. `.ci/run` calls it.
//! - `bench`: measures scar against baselines in the same run (see `bench.rs`).
//! - `build-supervisor`: the static `bootstrap` at `target/supervisor/bootstrap`, and for
//!   arm64 Lambda at `target/supervisor/aarch64/bootstrap` when the aarch64 musl target and
//!   a cross C compiler are installed.

mod bench;
mod fuzz;
mod image;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};

const MUSL: &str = "x86_64-unknown-linux-musl";
const AARCH64_MUSL: &str = "aarch64-unknown-linux-musl";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = &args[1.min(args.len())..];
    match args.first().map(String::as_str) {
        Some("build-supervisor") => {
            let debug = rest.iter().any(|a| a == "--debug");
            println!("{}", build_supervisor(debug)?.display());
            if let Some(arm) = build_supervisor_aarch64(debug)? {
                println!("{}", arm.display());
            }
            Ok(())
        }
        Some("demo") => demo(),
        Some("test") => test(rest),
        Some("bench") => bench::run_bench(rest),
        Some("install-test-tools") => install_test_tools(),
        Some("fuzz") => fuzz::fuzz(rest),
        _ => {
            eprintln!(
                "usage: cargo xtask <demo | test [-- cargo test args] | bench [--quick] | build-supervisor [--debug] | install-test-tools | fuzz [TARGET] [--seconds N]>"
            );
            std::process::exit(2);
        }
    }
}

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// Runs a command, failing with its command line when it fails.
pub fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}

fn rustup_has_target(target: &str) -> bool {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(target))
        .unwrap_or(false)
}

/// Builds the static supervisor for arm64 Lambda (`target/supervisor/aarch64/bootstrap`)
/// when the `aarch64-unknown-linux-musl` target and a cross C compiler (for aws-lc, the S3
/// client's TLS) are installed; says why not and returns `None` otherwise.
pub fn build_supervisor_aarch64(debug: bool) -> anyhow::Result<Option<PathBuf>> {
    if !rustup_has_target(AARCH64_MUSL) {
        eprintln!("xtask: no arm64 supervisor: `rustup target add {AARCH64_MUSL}` to build one");
        return Ok(None);
    }
    let Some(cc) = ["aarch64-linux-musl-gcc", "aarch64-linux-gnu-gcc"]
        .into_iter()
        .find(|c| have(c))
    else {
        eprintln!(
            "xtask: no arm64 supervisor: it needs a C compiler for aarch64 (apt-get install gcc-aarch64-linux-gnu)"
        );
        return Ok(None);
    };
    let ar = cc.replace("-gcc", "-ar");
    let mut cmd = cargo();
    cmd.args(["build", "--package", "scar-runtime", "--bin", "bootstrap"])
        .args(["--target", AARCH64_MUSL])
        .env("CC_aarch64_unknown_linux_musl", cc)
        .env("AR_aarch64_unknown_linux_musl", &ar)
        // The gcc driver links; Rust's self-contained musl provides the C library.
        .env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER", cc);
    if !debug {
        cmd.arg("--release")
            .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "s")
            .env("CARGO_PROFILE_RELEASE_STRIP", "symbols");
    }
    run(&mut cmd)?;
    let profile = if debug { "debug" } else { "release" };
    let built = target_dir()
        .join(AARCH64_MUSL)
        .join(profile)
        .join("bootstrap");
    install_supervisor(&built, &target_dir().join("supervisor").join("aarch64")).map(Some)
}

/// Copies a built supervisor to `<dir>/bootstrap` (atomically: tests may be reading it).
fn install_supervisor(built: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let dest = dir.join("bootstrap");
    let tmp = dir.join("bootstrap.tmp");
    std::fs::copy(built, &tmp).with_context(|| format!("cannot copy {}", built.display()))?;
    std::fs::rename(&tmp, &dest)?;
    Ok(dest)
}

/// Builds the static supervisor and returns its path (`target/supervisor/bootstrap`).
pub fn build_supervisor(debug: bool) -> anyhow::Result<PathBuf> {
    let installed = rustup_has_target(MUSL);
    let mut cmd = cargo();
    cmd.args(["build", "--package", "scar-runtime", "--bin", "bootstrap"]);
    if !debug {
        // With the S3 client (feature `s3`) the supervisor is ~18 MB at opt-level 3 with
        // symbols; size-optimised and stripped it is ~10 MB (the limit is 15 MB). Its work
        // is waiting on the script and on I/O, so speed is not what -O3 would buy.
        cmd.arg("--release")
            .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "s")
            .env("CARGO_PROFILE_RELEASE_STRIP", "symbols");
    }
    let profile = if debug { "debug" } else { "release" };
    let built = if installed
        || Command::new("rustup")
            .args(["target", "add", MUSL])
            .status()
            .is_ok_and(|s| s.success())
    {
        // aws-lc-sys (TLS for S3) compiles C for musl: it needs musl's compiler wrapper.
        if std::env::var_os("CC_x86_64_unknown_linux_musl").is_none()
            && !have("x86_64-linux-musl-gcc")
            && !have("musl-gcc")
        {
            bail!("building the supervisor for {MUSL} needs a C compiler for musl: apt-get install musl-tools");
        }
        run(cmd.args(["--target", MUSL]))?;
        target_dir().join(MUSL).join(profile).join("bootstrap")
    } else {
        // No musl target to be had: glibc, linked statically.
        eprintln!("xtask: the {MUSL} target is unavailable; building a static glibc supervisor");
        let gnu = "x86_64-unknown-linux-gnu";
        cmd.args(["--target", gnu]).env(
            "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS",
            "-C target-feature=+crt-static",
        );
        run(&mut cmd)?;
        target_dir().join(gnu).join(profile).join("bootstrap")
    };
    install_supervisor(&built, &target_dir().join("supervisor"))
}

/// Installs what the tests need when it is missing (as root, from Debian and PyPI).
fn install_test_tools() -> anyhow::Result<()> {
    let apt = [
        ("docker-registry", "docker-registry"),
        ("skopeo", "skopeo"),
        ("umoci", "umoci"),
        ("busybox", "busybox-static"),
        ("proot", "proot"),
        ("parallel", "parallel"),
        ("zip", "zip"),
        ("x86_64-linux-musl-gcc", "musl-tools"),
        ("unzip", "unzip"),
        // The arm64 supervisor: a cross C compiler, and qemu to run it in a test.
        ("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu"),
        // Its C headers: a recommendation of the compiler, which --no-install-recommends
        // leaves out (aws-lc then fails on <sys/types.h>). A path: no program to look for.
        (
            "/usr/aarch64-linux-gnu/include/stdio.h",
            "libc6-dev-arm64-cross",
        ),
        ("qemu-aarch64-static", "qemu-user-static"),
    ];
    let missing: Vec<&str> = apt
        .iter()
        .filter(|(bin, _)| {
            if bin.starts_with('/') {
                !Path::new(bin).exists()
            } else {
                !have(bin)
            }
        })
        .map(|(_, pkg)| *pkg)
        .collect();
    if !missing.is_empty() {
        eprintln!("xtask: installing {}", missing.join(" "));
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    if !rustup_has_target(AARCH64_MUSL) {
        eprintln!("xtask: adding the {AARCH64_MUSL} target");
        run(Command::new("rustup").args(["target", "add", AARCH64_MUSL]))?;
    }
    let pip_missing = !have("moto_server") || !have("udocker");
    if pip_missing {
        eprintln!("xtask: installing moto[server], boto3 and udocker from PyPI");
        run(Command::new("python3").args([
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "moto[server]",
            "boto3",
            "udocker",
        ]))?;
    }
    Ok(())
}

fn test(extra: &[String]) -> anyhow::Result<()> {
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    install_test_tools()?;
    // Release: what ships, and what the size test must judge.
    let supervisor = build_supervisor(false)?;
    let arm64 = build_supervisor_aarch64(false)?
        .context("the tests need the arm64 supervisor, and it could not be built")?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo().args(["build", "--workspace", "--bins"]))?;
    run(cargo()
        .args(["test", "--workspace", "--no-fail-fast"])
        .args(extra)
        .env("SCAR_SUPERVISOR", &supervisor)
        .env("SCAR_SUPERVISOR_AARCH64", &arm64))?;
    // Every fuzz target, briefly: their corpora and regressions replay in `cargo test`
    // already; this keeps the harness building and finds what a few seconds find.
    fuzz::fuzz(&["--seconds".into(), "5".into()])
}

fn demo() -> anyhow::Result<()> {
    let supervisor = build_supervisor(false)?;
    run(cargo().args(["build", "--release", "--package", "scar-cli"]))?;
    let scar = target_dir().join("release").join("scar");
    let work = target_dir().join("demo");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let archive = work.join("demo-image.tar");
    image::busybox_docker_archive(&archive)?;
    let home = work.join("home");
    let scar_cmd = |args: &[&str]| {
        let mut cmd = Command::new(&scar);
        cmd.args(args)
            .env("SCAR_HOME", &home)
            .env("SCAR_SUPERVISOR", &supervisor);
        cmd
    };
    let script = work.join("hello.sh");
    std::fs::write(
        &script,
        "echo \"Hello from $(uname -s) inside the image, request $REQUEST_ID\"\n\
         echo \"the image says: $(cat /etc/demo-release)\"\n\
         echo \"output dir: $TMP_OUTPUT_DIR; greeting: $GREETING\"\n",
    )?;
    let step = |title: &str| println!("\n\x1b[1m$ {title}\x1b[0m");
    step("scar init -n demo -if demo-image.tar");
    run(&mut scar_cmd(&[
        "init",
        "-n",
        "demo",
        "-if",
        &archive.to_string_lossy(),
    ]))?;
    step("scar run -n demo -e GREETING=hi -s hello.sh");
    run(&mut scar_cmd(&[
        "run",
        "-n",
        "demo",
        "-e",
        "GREETING=hi",
        "-s",
        &script.to_string_lossy(),
    ]))?;
    step("scar run -n demo ls /");
    run(&mut scar_cmd(&["run", "-n", "demo", "ls", "/"]))?;
    step("scar ls");
    run(&mut scar_cmd(&["ls"]))?;
    step("scar log -n demo");
    run(&mut scar_cmd(&["log", "-n", "demo"]))?;
    step("scar rm -n demo");
    run(&mut scar_cmd(&["rm", "-n", "demo"]))?;
    println!("\nThe demo's state was under {}.", home.display());
    Ok(())
}
