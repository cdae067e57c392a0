//! `cargo xtask fuzz [TARGET] [--seconds N]`: builds the fuzz targets of `fuzz/` with
//! libFuzzer's coverage instrumentation (the flags cargo-fuzz passes, minus the sanitizer:
//! stable Rust, no nightly, no cargo-fuzz) and runs each for N seconds (default 60).
//!
//! Corpora: `fuzz/corpus/<target>` holds the committed seeds (real files), and
//! `fuzz/regressions/<target>` every input that once crashed (replayed by `cargo test` too);
//! new inputs the fuzzer finds go to `target/fuzz/corpus/<target>`, crashes to
//! `target/fuzz/artifacts/<target>/`.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};

use crate::{ensure_tools, root, run, target_dir, Tool};

/// Every target, in the order `cargo xtask fuzz` runs them.
pub const TARGETS: &[&str] = &[
    "extract_layer",
    "image_archive",
    "image_manifest",
    "event",
    "fdl",
    "config_file",
];

fn host_triple() -> anyhow::Result<String> {
    let out = Command::new("rustc").arg("-vV").output()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .context("rustc -vV names no host")
}

/// libFuzzer itself is C++, built by libfuzzer-sys.
const FUZZ_TOOLS: [Tool; 1] = [Tool::Apt {
    probe: "g++",
    package: "g++",
}];

/// Builds the targets; returns the directory of their binaries.
fn build() -> anyhow::Result<PathBuf> {
    ensure_tools(&FUZZ_TOOLS, "fuzzing")?;
    let triple = host_triple()?;
    let dir = target_dir().join("fuzz");
    let flags = [
        "-Cpasses=sancov-module",
        "-Cllvm-args=-sanitizer-coverage-level=4",
        "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
        "-Cllvm-args=-sanitizer-coverage-pc-table",
        "-Cllvm-args=-sanitizer-coverage-trace-compares",
        "--cfg",
        "fuzzing",
    ]
    .join(" ");
    // `--target`: RUSTFLAGS then reach the targets only, not build scripts and proc macros.
    run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(root().join("fuzz"))
            .args([
                "build",
                "--release",
                "--bins",
                "--locked",
                "--target",
                &triple,
            ])
            .env("CARGO_TARGET_DIR", &dir)
            .env("RUSTFLAGS", flags)
            .env_remove("CARGO_ENCODED_RUSTFLAGS"),
    )?;
    Ok(dir.join(triple).join("release"))
}

pub fn fuzz(args: &[String]) -> anyhow::Result<()> {
    let mut seconds = 60u64;
    let mut only: Option<&str> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => {
                seconds = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .context("--seconds needs a number")?
            }
            t if TARGETS.contains(&t) => only = Some(t),
            other => bail!(
                "unknown fuzz argument `{other}`: use [TARGET] [--seconds N], targets: {}",
                TARGETS.join(", ")
            ),
        }
    }
    let bins = build()?;
    let fuzz_dir = root().join("fuzz");
    for target in TARGETS.iter().filter(|t| only.is_none_or(|o| o == **t)) {
        let work = target_dir().join("fuzz/corpus").join(target);
        let artifacts = target_dir().join("fuzz/artifacts").join(target);
        std::fs::create_dir_all(&work)?;
        std::fs::create_dir_all(&artifacts)?;
        let mut cmd = Command::new(bins.join(target));
        cmd.arg(format!("-max_total_time={seconds}"))
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .args(["-timeout=30", "-rss_limit_mb=2048", "-max_len=1048576"])
            .arg("-print_final_stats=1")
            .arg(&work);
        for dir in ["corpus", "regressions"] {
            let d = fuzz_dir.join(dir).join(target);
            if d.is_dir() {
                cmd.arg(d);
            }
        }
        eprintln!("xtask: fuzzing {target} for {seconds} s");
        run(&mut cmd).with_context(|| {
            format!(
                "fuzz target {target} failed: the crashing input is in {}; keep it in fuzz/regressions/{target}/",
                artifacts.display()
            )
        })?;
    }
    Ok(())
}
