//! # scar-runtime: the supervisor that runs inside every function
//!
//! Shipped as the `bootstrap` binary (a Lambda custom runtime). For each invocation it
//! stages `/tmp/$REQUEST_ID/{input,output}`, sets the variables of `docs/contract.md`,
//! runs what the invocation asks for (its script, its `cmd_args`, the function's init
//! script, or the image's ENTRYPOINT + CMD), captures stdout and stderr together, kills the
//! whole process group when the timeout threshold is reached, and answers with a
//! [`scar_core::event::Response`].
//!
//! With `SCAR_EVENT` set it runs once instead, as an AWS Batch job's command ([`oneshot`]).
//! On Lambda, a `batch` function's supervisor submits each event as such a job, and a
//! `lambda-batch` one each event that reaches its threshold (`batch`, feature `s3`).
//!
//! The same binary runs on AWS Lambda and inside `scar-local` sandboxes: it knows only the
//! Lambda Runtime API and the contract, never which provider it is on. In a `zip` package
//! on Lambda, `/` is Amazon Linux's: the supervisor finds the image's root in the package
//! (or applies its layers under `/tmp` at cold start) and runs commands in it with the
//! packaged `proot` ([`ContainerRoot`]).
//!
//! **May depend on:** scar-core, scar-packager (layer extraction only: no registry
//! client), `lambda_runtime`, tokio, libc, and the S3 and AWS Batch clients (feature `s3`).
//! **Invariants:** never panics on an event (a bad event is an error response); a killed
//! or failed script never kills the supervisor; the request directory is removed after
//! each invocation, so a warm sandbox starts every invocation clean.

#[cfg(feature = "s3")]
pub mod batch;
mod container;
pub mod log;
pub mod oneshot;
mod run;
pub mod storage;

pub use container::ContainerRoot;
pub use run::{Invocation, Startup, Supervisor, SupervisorError};
pub use storage::{DirStorage, Storage};

/// The supervisor's version as the `bootstrap` binary carries it:
/// [`scar_core::SUPERVISOR_VERSION_MARKER`], the version, a NUL. `scar --version` reads it
/// from the file's bytes ([`scar_core::supervisor_version_in`]) without running it: an
/// arm64 supervisor does not run on x86_64 without qemu.
pub const VERSION_MARKER: &str =
    concat!("scar-supervisor-version=", env!("CARGO_PKG_VERSION"), "\0");

/// [`VERSION_MARKER`] as bytes, for a `#[used]` static of the `bootstrap` binary.
pub const fn version_marker<const N: usize>() -> [u8; N] {
    let bytes = VERSION_MARKER.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N && i < bytes.len() {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

#[cfg(test)]
mod version_tests {
    #[test]
    fn the_embedded_marker_reads_back_as_this_version() {
        let marker: [u8; super::VERSION_MARKER.len()] = super::version_marker();
        assert!(super::VERSION_MARKER.starts_with(scar_core::SUPERVISOR_VERSION_MARKER));
        assert_eq!(
            scar_core::supervisor_version_in(&marker).as_deref(),
            Some(env!("CARGO_PKG_VERSION"))
        );
    }
}
