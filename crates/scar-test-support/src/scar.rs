//! Drives the real `scar` binary in a temporary scar home. The binary is scar-cli's, which
//! only scar-cli's own tests can name (`env!("CARGO_BIN_EXE_scar")`): they hand it to
//! [`Scar::new`].

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The static supervisor the tests run: `SCAR_SUPERVISOR`, else the one
/// `cargo xtask build-supervisor` leaves under `target/supervisor`. Missing: fail under CI,
/// skip loudly elsewhere.
pub fn supervisor() -> Option<PathBuf> {
    built(
        "SCAR_SUPERVISOR",
        "bootstrap",
        "run `cargo xtask build-supervisor` (cargo xtask test does)",
    )
}

/// A function on AWS's Rust runtime client (`crates/scar-test-function`), static, that
/// `cargo xtask build-supervisor` leaves beside the supervisor (`SCAR_TEST_FUNCTION` names
/// another). Missing: fail under CI, skip loudly elsewhere.
pub fn test_function() -> Option<PathBuf> {
    let beside = std::env::var_os("SCAR_SUPERVISOR")
        .map(PathBuf::from)
        .and_then(|s| Some(s.parent()?.join("test-function")))
        .filter(|p| p.is_file());
    match beside {
        Some(path) if std::env::var_os("SCAR_TEST_FUNCTION").is_none() => Some(path),
        _ => built(
            "SCAR_TEST_FUNCTION",
            "test-function",
            "run `cargo xtask build-supervisor` (cargo xtask test does)",
        ),
    }
}

/// The arm64 supervisor (`SCAR_SUPERVISOR_AARCH64`, else `target/supervisor/aarch64/bootstrap`
/// from `cargo xtask build-supervisor`). Missing: fail under CI, skip loudly elsewhere.
pub fn supervisor_aarch64() -> Option<PathBuf> {
    built(
        "SCAR_SUPERVISOR_AARCH64",
        "aarch64/bootstrap",
        "`rustup target add aarch64-unknown-linux-musl`, install gcc-aarch64-linux-gnu, then `cargo xtask build-supervisor`",
    )
}

/// A binary named by `var`, else at `target/supervisor/<rel>` in the workspace.
fn built(var: &str, rel: &str, how: &str) -> Option<PathBuf> {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        // This crate's manifest is at `<workspace>/crates/scar-test-support`.
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/supervisor")
            .join(rel)
    });
    if path.is_file() {
        return Some(path);
    }
    let msg = format!("nothing at {}: {how}", path.display());
    if std::env::var_os("CI").is_some() {
        panic!("CI: {msg}");
    }
    eprintln!("\n*** SKIPPED: {msg} ***\n");
    None
}

/// SCAR 4's `~/.scar/scar.cfg` as SCAR 4.3.1 writes it on first use: `_DEFAULT_CFG` of
/// `scar/parser/cfgfile.py` in grycap/scar (commit `e6c8b06a`), dumped as SCAR dumps it
/// (`json.dumps(_DEFAULT_CFG, indent=2)`). SCAR is licensed under the Apache License 2.0
/// (Copyright GRyCAP - I3M - UPV). The file printed in SCAR's
/// `docs/source/configuration.rst` has the same keys but `oscar` and
/// `aws.batch.multi_node_parallel`, and other values of `scar.config_version` and
/// `aws.lambda.supervisor.version`.
pub const SCAR4_DEFAULT_CFG: &str = include_str!("scar4/scar.cfg");

/// `init -n NAME -if ARCHIVE EXTRA...`: the arguments that make function `name` from an
/// image archive (`docker save`'s or OCI's), whichever provider they go to.
pub fn init_args<'a>(name: &'a str, archive: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["init", "-n", name, "-if", archive.to_str().unwrap()];
    args.extend_from_slice(extra);
    args
}

/// A scar home for one test, and the `scar` binary run in it.
pub struct Scar {
    pub home: tempfile::TempDir,
    pub supervisor: PathBuf,
    /// The `scar` binary under test.
    pub bin: PathBuf,
}

/// What one `scar` command did.
#[derive(Debug)]
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Runs `cmd` (a `scar` command) to completion.
    pub fn of(cmd: &mut Command) -> Run {
        let out: Output = cmd.output().expect("scar runs");
        Run {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }

    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(self.status, 0, "scar failed: {self:#?}");
        self
    }

    /// Asserts that scar refused the command as the user's mistake (exit status 2) with an
    /// error that says `says`.
    #[track_caller]
    pub fn assert_refused(&self, says: &str) {
        assert_eq!(self.status, 2, "not refused: {self:#?}");
        assert!(self.stderr.contains(says), "should say {says:?}: {self:#?}");
    }
}

impl Scar {
    /// A fresh home for `bin` (`Scar::new(env!("CARGO_BIN_EXE_scar"))`), or `None` (after
    /// a loud SKIPPED; a failure under `CI`) when no static supervisor is built.
    pub fn new(bin: impl Into<PathBuf>) -> Option<Scar> {
        Some(Scar {
            home: tempfile::tempdir().unwrap(),
            supervisor: supervisor()?,
            bin: bin.into(),
        })
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        for (k, _) in std::env::vars() {
            if k.starts_with("SCAR_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("SCAR_HOME", self.home.path())
            .env("SCAR_SUPERVISOR", &self.supervisor);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::of(self.command().args(args))
    }

    /// Starts `scar ARGS` (`serve`, a long launcher run) without waiting for it: its
    /// standard output to `stdout`, its standard error discarded.
    pub fn spawn(&self, args: &[&str], stdout: Stdio) -> Child {
        self.command()
            .args(args)
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .expect("scar starts")
    }

    /// `scar init -n NAME -if ARCHIVE EXTRA...` (see [`init_args`]).
    pub fn init_from(&self, name: &str, archive: &Path, extra: &[&str]) -> Run {
        self.run(&init_args(name, archive, extra))
    }

    /// `scar put -b BUCKET -p PATH --json`: stores a file or a directory's files in a bucket
    /// folder, and says what each run that it triggered did.
    pub fn put_json(&self, bucket: &str, path: &Path) -> Run {
        self.run(&["put", "-b", bucket, "-p", path.to_str().unwrap(), "--json"])
    }

    /// `scar package -n NAME --package KIND -o OUT EXTRA...`: writes the package (`image` or
    /// `zip`) that `init` on AWS would make of the function.
    pub fn package(&self, name: &str, kind: &str, out: &Path, extra: &[&str]) -> Run {
        let mut args = vec!["package", "-n", name, "--package", kind, "-o"];
        args.push(out.to_str().unwrap());
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// Where the local provider keeps `path` (`BUCKET` or `BUCKET/folder`) in this home.
    pub fn bucket(&self, path: &str) -> PathBuf {
        self.home.path().join("buckets").join(path)
    }

    /// Every path under the home but the config file: what a failed command must not
    /// change.
    pub fn state(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![self.home.path().to_path_buf()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let p = e.path();
                let rel = p
                    .strip_prefix(self.home.path())
                    .unwrap()
                    .display()
                    .to_string();
                if rel != "scar.cfg" {
                    out.push(rel);
                }
                if e.file_type().unwrap().is_dir() {
                    stack.push(p);
                }
            }
        }
        out.sort();
        out
    }
}
