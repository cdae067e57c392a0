//! `cargo xtask`: the project's automation, in Rust so that it runs wherever cargo does.
//!
//! - `demo`: builds scar and a static supervisor, assembles a small busybox image on this
//!   machine (nothing is pulled from the internet), creates a function, runs a script in
//!   it and shows its output and logs.
//! - `test`: installs the test prerequisites (apt, pip) when missing, runs `cargo fmt
//!   --check`, builds both supervisors, builds the workspace with clippy's lints (`-D
//!   warnings`) and runs the whole test suite and each fuzz target briefly, then
//!   `release-check`, saying how long each step took. `.ci/run` calls it.
//! - `bench`: measures scar against baselines in the same run (see `bench.rs`).
//! - `release`: `dist/scar-<version>-<target>.tar.gz` for x86_64 and aarch64 musl (a
//!   static scar, both supervisors, completions, man pages, licences) and `SHA256SUMS`;
//!   `release-check` runs the x86_64 archive where no Rust is (see `release.rs`).
//! - `build-supervisor`: the static `bootstrap` at `target/supervisor/bootstrap`, and for
//!   arm64 Lambda at `target/supervisor/aarch64/bootstrap` when the aarch64 musl target and
//!   a cross C compiler are installed.

mod bench;
mod demo;
mod fuzz;
mod image;
mod release;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};

const MUSL: &str = "x86_64-unknown-linux-musl";
const AARCH64_MUSL: &str = "aarch64-unknown-linux-musl";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = dispatch(&args) {
        // A message, not a `Debug` dump with a backtrace (RUST_BACKTRACE is often set).
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

fn dispatch(args: &[String]) -> anyhow::Result<()> {
    let rest = &args[1.min(args.len())..];
    match args.first().map(String::as_str) {
        Some("build-supervisor") => {
            let debug = rest.iter().any(|a| a == "--debug");
            ensure_tools(&SUPERVISOR_TOOLS, "the supervisor")?;
            let built = build_supervisors(debug)?;
            println!("{}", built.x86_64.display());
            if let Some(arm) = built.aarch64 {
                println!("{}", arm.display());
            }
            Ok(())
        }
        Some("demo") => demo::run_demo(),
        Some("test") => test(rest),
        Some("bench") => bench::run_bench(rest),
        Some("install-test-tools") => install_test_tools(),
        Some("fuzz") => fuzz::fuzz(rest),
        Some("release") => release::release(rest),
        Some("release-check") => release::release_check(rest),
        _ => {
            eprintln!(
                "usage: cargo xtask <demo | test [-- cargo test args] | bench [--quick] | build-supervisor [--debug] | install-test-tools | fuzz [TARGET] [--seconds N] | release [--profile dist|dist-check] [--target x86_64|aarch64|all] [--out DIR] | release-check [--profile P] [--arm64]>"
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

/// The supervisors a build made: this machine's, and arm64 Lambda's when it could be built.
pub struct Supervisors {
    /// `target/supervisor/bootstrap` (or `debug/bootstrap`), with `test-function` beside it.
    pub x86_64: PathBuf,
    /// `target/supervisor/aarch64/bootstrap`, when the aarch64 musl target and a cross C
    /// compiler are installed.
    pub aarch64: Option<PathBuf>,
}

/// Builds the static supervisor for this machine and returns its path:
/// `target/supervisor/bootstrap` (release, what ships and what the tests judge), or
/// `target/supervisor/debug/bootstrap` with `debug` (quicker to build: the demo's).
/// Beside it goes `test-function`, a function on AWS's Rust runtime client that the tests
/// run as a function's own runtime.
pub fn build_supervisor(debug: bool) -> anyhow::Result<PathBuf> {
    Ok(build(debug, false)?.x86_64)
}

/// Builds both supervisors in one cargo run (the two targets' crates compile side by side,
/// and their build scripts and macros once): this machine's, and arm64 Lambda's
/// (`target/supervisor/aarch64/bootstrap`) when the `aarch64-unknown-linux-musl` target
/// and a cross C compiler (for aws-lc, the S3 client's TLS) are installed; it says why not
/// otherwise.
pub fn build_supervisors(debug: bool) -> anyhow::Result<Supervisors> {
    build(debug, true)
}

fn build(debug: bool, with_arm64: bool) -> anyhow::Result<Supervisors> {
    let mut cmd = cargo();
    cmd.args(["build", "--package", "scar-runtime", "--bin", "bootstrap"])
        .args(["--package", "scar-test-function", "--bin", "test-function"]);
    if !debug {
        // With the S3 client (feature `s3`) the supervisor is ~18 MB at opt-level 3 with
        // symbols; size-optimised and stripped it is ~10 MB (the limit is 15 MB). Its work
        // is waiting on the script and on I/O, so speed is not what -O3 would buy.
        cmd.arg("--release")
            .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "s")
            .env("CARGO_PROFILE_RELEASE_STRIP", "symbols");
    }
    // Position-dependent and static: the supervisor starts in every new sandbox, and a
    // static-pie one spends ~0.4 ms relocating itself first (32,000 relocations). It runs
    // the function's own code with the function's rights, so address randomisation would
    // protect nothing from it that it could not already reach.
    for triple in ["X86_64_UNKNOWN_LINUX_MUSL", "AARCH64_UNKNOWN_LINUX_MUSL"] {
        cmd.env(
            format!("CARGO_TARGET_{triple}_RUSTFLAGS"),
            "-C relocation-model=static",
        );
    }
    let (profile, dest) = if debug {
        ("debug", target_dir().join("supervisor").join("debug"))
    } else {
        ("release", target_dir().join("supervisor"))
    };
    let host = if rustup_has_target(MUSL) {
        // aws-lc-sys (TLS for S3) compiles C for musl: it needs musl's compiler wrapper.
        if std::env::var_os("CC_x86_64_unknown_linux_musl").is_none()
            && !have("x86_64-linux-musl-gcc")
            && !have("musl-gcc")
        {
            bail!("building the supervisor for {MUSL} needs a C compiler for musl: `cargo xtask install-test-tools`, or apt-get install musl-tools");
        }
        MUSL
    } else {
        // No musl target to be had: glibc, linked statically.
        eprintln!("xtask: the {MUSL} target is unavailable; building a static glibc supervisor");
        cmd.env(
            "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS",
            "-C target-feature=+crt-static -C relocation-model=static",
        );
        "x86_64-unknown-linux-gnu"
    };
    cmd.args(["--target", host]);
    let arm64 = if with_arm64 { aarch64_compiler() } else { None };
    if let Some(cc) = arm64 {
        let ar = cc.replace("-gcc", "-ar");
        cmd.args(["--target", AARCH64_MUSL])
            .env("CC_aarch64_unknown_linux_musl", cc)
            .env("AR_aarch64_unknown_linux_musl", &ar)
            // The gcc driver links; Rust's self-contained musl provides the C library.
            .env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER", cc);
    }
    run(&mut cmd)?;
    let built = target_dir().join(host).join(profile);
    install_binary(&built.join("test-function"), &dest)?;
    let x86_64 = install_binary(&built.join("bootstrap"), &dest)?;
    let aarch64 = match arm64 {
        Some(_) => Some(install_binary(
            &target_dir()
                .join(AARCH64_MUSL)
                .join(profile)
                .join("bootstrap"),
            &dest.join("aarch64"),
        )?),
        None => None,
    };
    Ok(Supervisors { x86_64, aarch64 })
}

/// The C compiler for the arm64 supervisor's aws-lc, when its target can be built here.
fn aarch64_compiler() -> Option<&'static str> {
    if !rustup_has_target(AARCH64_MUSL) {
        eprintln!("xtask: no arm64 supervisor: `rustup target add {AARCH64_MUSL}` to build one");
        return None;
    }
    let cc = ["aarch64-linux-musl-gcc", "aarch64-linux-gnu-gcc"]
        .into_iter()
        .find(|c| have(c));
    if cc.is_none() {
        eprintln!(
            "xtask: no arm64 supervisor: it needs a C compiler for aarch64 (apt-get install gcc-aarch64-linux-gnu)"
        );
    }
    cc
}

/// Copies a built binary to `<dir>/<its name>` (atomically: tests may be reading it).
fn install_binary(built: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let name = built.file_name().context("a binary has a name")?;
    let dest = dir.join(name);
    let tmp = dir.join(format!("{}.tmp", name.to_string_lossy()));
    std::fs::copy(built, &tmp).with_context(|| format!("cannot copy {}", built.display()))?;
    std::fs::rename(&tmp, &dest)?;
    Ok(dest)
}

/// Something a task needs from outside cargo.
#[derive(Clone, Copy)]
pub enum Tool {
    /// A Debian package, present when this program (or, for a path, this file) exists.
    Apt {
        probe: &'static str,
        package: &'static str,
    },
    /// A Rust target, added with rustup.
    RustTarget(&'static str),
    /// Python packages from PyPI, present when this program exists.
    Pip {
        probe: &'static str,
        packages: &'static [&'static str],
    },
}

impl Tool {
    fn present(self) -> bool {
        match self {
            Tool::Apt { probe, .. } if probe.starts_with('/') => Path::new(probe).exists(),
            Tool::Apt { probe, .. } | Tool::Pip { probe, .. } => have(probe),
            Tool::RustTarget(t) => rustup_has_target(t),
        }
    }
}

/// The static supervisor: the musl target and musl's C compiler (aws-lc is C).
pub const SUPERVISOR_TOOLS: [Tool; 2] = [
    Tool::Apt {
        probe: "x86_64-linux-musl-gcc",
        package: "musl-tools",
    },
    Tool::RustTarget(MUSL),
];

/// Installs the missing ones among `tools`, saying what and why (`purpose`). Debian
/// packages need root, or sudo without a password; otherwise the error says what to run.
pub fn ensure_tools(tools: &[Tool], purpose: &str) -> anyhow::Result<()> {
    let missing: Vec<Tool> = tools.iter().copied().filter(|t| !t.present()).collect();
    let apt: Vec<&str> = missing
        .iter()
        .filter_map(|t| match t {
            Tool::Apt { package, .. } => Some(*package),
            _ => None,
        })
        .collect();
    if !apt.is_empty() {
        eprintln!(
            "xtask: {purpose} needs {}: installing (apt-get)",
            apt.join(" ")
        );
        let sudo = if is_root() {
            None
        } else if Command::new("sudo")
            .args(["-n", "true"])
            .status()
            .is_ok_and(|s| s.success())
        {
            Some("sudo")
        } else {
            bail!(
                "{purpose} needs the Debian packages {0}, and this user cannot install them: run `sudo apt-get install {0}`",
                apt.join(" ")
            );
        };
        let apt_get = |args: &[&str]| {
            let mut cmd = match sudo {
                Some(s) => {
                    let mut c = Command::new(s);
                    c.arg("apt-get");
                    c
                }
                None => Command::new("apt-get"),
            };
            // apt's chatter goes to stderr: stdout is the task's own (the demo's story).
            cmd.args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdout(std::io::stderr());
            cmd
        };
        run(&mut apt_get(&["update", "-qq"]))?;
        run(apt_get(&["install", "-y", "-qq", "--no-install-recommends"]).args(&apt))?;
    }
    for t in &missing {
        if let Tool::RustTarget(target) = t {
            eprintln!(
                "xtask: {purpose} needs the Rust target {target}: rustup target add {target}"
            );
            run(Command::new("rustup").args(["target", "add", target]))?;
        }
    }
    let pip: Vec<&str> = missing
        .iter()
        .flat_map(|t| match t {
            Tool::Pip { packages, .. } => packages.to_vec(),
            _ => Vec::new(),
        })
        .collect();
    if !pip.is_empty() {
        eprintln!(
            "xtask: {purpose} needs {} from PyPI: installing (pip)",
            pip.join(" ")
        );
        run(Command::new("python3")
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
            .args(&pip))?;
    }
    Ok(())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// What the tests need beyond the supervisor's tools.
const TEST_TOOLS: [Tool; 22] = [
    Tool::Apt {
        probe: "docker-registry",
        package: "docker-registry",
    },
    // The bcrypt htpasswd entry of a registry that wants a login (`htpasswd -B`).
    Tool::Apt {
        probe: "htpasswd",
        package: "apache2-utils",
    },
    Tool::Apt {
        probe: "skopeo",
        package: "skopeo",
    },
    Tool::Apt {
        probe: "umoci",
        package: "umoci",
    },
    Tool::Apt {
        probe: "busybox",
        package: "busybox-static",
    },
    Tool::Apt {
        probe: "proot",
        package: "proot",
    },
    Tool::Apt {
        probe: "parallel",
        package: "parallel",
    },
    // Sandboxes' outbound network (the local provider's; its tests check it).
    Tool::Apt {
        probe: "slirp4netns",
        package: "slirp4netns",
    },
    // The Debian image the awslambdaric tests build (once, cached under the target dir).
    Tool::Apt {
        probe: "debootstrap",
        package: "debootstrap",
    },
    Tool::Apt {
        probe: "zip",
        package: "zip",
    },
    Tool::Apt {
        probe: "unzip",
        package: "unzip",
    },
    // GNU tar: the reference the sparse-file tests compare scar's extraction with.
    Tool::Apt {
        probe: "tar",
        package: "tar",
    },
    // The arm64 supervisor: a cross C compiler, and qemu to run it in a test.
    Tool::Apt {
        probe: "aarch64-linux-gnu-gcc",
        package: "gcc-aarch64-linux-gnu",
    },
    // Its C headers: a recommendation of the compiler, which --no-install-recommends
    // leaves out (aws-lc then fails on <sys/types.h>). A path: no program to look for.
    Tool::Apt {
        probe: "/usr/aarch64-linux-gnu/include/stdio.h",
        package: "libc6-dev-arm64-cross",
    },
    Tool::Apt {
        probe: "qemu-aarch64-static",
        package: "qemu-user-static",
    },
    // The release check renders a man page of the archive (`man -l`).
    Tool::Apt {
        probe: "man",
        package: "man-db",
    },
    Tool::RustTarget(AARCH64_MUSL),
    Tool::Pip {
        probe: "moto_server",
        packages: &["moto[server]", "boto3"],
    },
    Tool::Pip {
        probe: "udocker",
        packages: &["udocker"],
    },
    // A real client of `scar serve`'s Lambda Invoke API (boto3 is the other).
    Tool::Pip {
        probe: "aws",
        packages: &["awscli"],
    },
    // The dashboard's browser test: Debian's headless Chromium, driven by Playwright
    // (`executable_path`: Playwright's own browser download is never used).
    Tool::Apt {
        probe: "chromium",
        package: "chromium",
    },
    Tool::Pip {
        probe: "playwright",
        packages: &["playwright"],
    },
];

/// Installs what the tests need when it is missing (from Debian, rustup and PyPI).
fn install_test_tools() -> anyhow::Result<()> {
    let all: Vec<Tool> = SUPERVISOR_TOOLS
        .iter()
        .chain(&TEST_TOOLS)
        .copied()
        .collect();
    ensure_tools(&all, "the test suite")?;
    register_qemu_aarch64()
}

/// Registers qemu-user for aarch64 executables with binfmt_misc (with the F flag, so that
/// it runs them inside sandboxes too), as Debian's `qemu-user-binfmt` would: the tests run
/// arm64 functions with the arm64 supervisor on an x86_64 machine. Needs root; otherwise
/// says what to run.
fn register_qemu_aarch64() -> anyhow::Result<()> {
    let dir = Path::new("/proc/sys/fs/binfmt_misc");
    if std::env::consts::ARCH == "aarch64" || dir.join("qemu-aarch64").exists() {
        return Ok(());
    }
    let conf = Path::new("/usr/lib/binfmt.d/qemu-aarch64.conf");
    let rule = std::fs::read_to_string(conf)
        .with_context(|| format!("{} (package qemu-user-static)", conf.display()))?;
    if !is_root() {
        eprintln!(
            "xtask: arm64 functions cannot run here until qemu-aarch64 is registered with binfmt_misc: run `sudo sh -c 'cat {} > {}/register'`",
            conf.display(),
            dir.display()
        );
        return Ok(());
    }
    if !dir.join("register").exists() {
        run(Command::new("mount")
            .args(["-t", "binfmt_misc", "binfmt_misc"])
            .arg(dir))?;
    }
    eprintln!(
        "xtask: the test suite runs arm64 functions: registering qemu-aarch64 with binfmt_misc"
    );
    std::fs::write(dir.join("register"), rule.trim())
        .with_context(|| format!("registering {} with binfmt_misc", conf.display()))?;
    Ok(())
}

/// Runs one step of a long task and says how long it took: where CI's minutes go.
fn phase<T>(name: &str, step: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    let started = std::time::Instant::now();
    let out = step();
    eprintln!(
        "xtask: {name}: {:.0} s{}",
        started.elapsed().as_secs_f64(),
        if out.is_err() { " (failed)" } else { "" }
    );
    out
}

fn test(extra: &[String]) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    phase("fmt", || {
        run(cargo().args(["fmt", "--all", "--", "--check"]))
    })?;
    phase("tools", install_test_tools)?;
    // Release: what ships, and what the size test must judge.
    let supervisors = phase("supervisors", || build_supervisors(false))?;
    let arm64 = supervisors
        .aarch64
        .context("the tests need the arm64 supervisor, and it could not be built")?;
    // Clippy's lints run inside the build the tests need (clippy-driver as the workspace's
    // compiler, as `cargo clippy` runs it over `cargo check`): every target `cargo test`
    // builds is linted, `-D warnings`, and the dependencies compile once instead of twice.
    let linted = |cmd: &mut Command| {
        cmd.env("RUSTC_WORKSPACE_WRAPPER", "clippy-driver").env(
            "CLIPPY_ARGS",
            "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__",
        );
    };
    phase("build, with clippy's lints", || {
        let mut cmd = cargo();
        cmd.args(["test", "--workspace", "--no-run"]);
        linted(&mut cmd);
        run(&mut cmd)
    })?;
    phase("test", || {
        let mut cmd = cargo();
        cmd.args(["test", "--workspace", "--no-fail-fast"])
            .args(extra)
            .env("SCAR_SUPERVISOR", &supervisors.x86_64)
            .env("SCAR_SUPERVISOR_AARCH64", &arm64);
        linted(&mut cmd);
        run(&mut cmd)
    })?;
    // Every fuzz target, briefly: their corpora and regressions replay in `cargo test`
    // already; this keeps the harness building and finds what a few seconds find.
    phase("fuzz", || fuzz::fuzz(&["--seconds".into(), "5".into()]))?;
    // The x86_64 release archive (a quicker profile, the same packaging) run where no Rust,
    // compiler or build tree can be seen: init, run, put/get, rm from its files alone.
    phase("release check", || release::release_check(&[]))?;
    eprintln!(
        "xtask: test: {:.0} s in all",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
