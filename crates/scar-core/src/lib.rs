//! # scar-core: the vocabulary every other scar crate speaks
//!
//! What a *function* is ([`FunctionSpec`], validated to Lambda's rules), where its settings
//! come from ([`config`]: flags > environment > `~/.scar/scar.cfg` > defaults), what an
//! *invocation* carries in and out ([`event`]), the paths and variables the supervisor
//! promises to the user's script ([`contract`]), and the [`provider`] traits that the
//! `local` and `aws` providers implement.
//!
//! SCAR's function definition files (YAML) are read in [`fdl`].
//!
//! **May depend on:** serde, `aws_lambda_events` (types only), thiserror, base64,
//! yaml_serde.
//! **Invariants:** no network, no async runtime, no AWS SDK; the only I/O is reading and
//! writing the config file in [`config`] and listing the local files a `put` names in
//! [`local_files`] (FDL files are read by their callers). Everything here is cheap to construct and test.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod bucket;
pub mod config;
pub mod contract;
pub mod error;
pub mod event;
pub mod fdl;
#[doc(hidden)]
pub mod fuzz;
pub mod lambda;
pub mod local_files;
pub mod progress;
pub mod provider;
pub mod spec;
pub mod spec_options;
pub mod stats;

pub use error::{Categorized, ErrorCategory, ExitStatus, SpecError, UsageError};
pub use spec::{
    BatchSpec, ExecutionMode, FunctionSpec, ImageConfig, InputSpec, LambdaRuntime, OutputSpec,
    RuntimeClient, StorageProvider,
};
pub use spec::{FileSystemSpec, VpcSpec};
pub use spec_options::{Architecture, LogLevel, NetworkAccess};

/// What precedes the version that the supervisor binary (`bootstrap`) carries in its bytes,
/// followed by a NUL: `scar_runtime::VERSION_MARKER` writes it, `scar --version` reads it.
pub const SUPERVISOR_VERSION_MARKER: &str = "scar-supervisor-version=";

/// The version the supervisor at `path` carries ([`supervisor_version_in`]): `Ok(None)`
/// for one without a version marker (older than scar 0.1.0's). Both providers record it
/// with the functions they create.
pub fn supervisor_version(path: &std::path::Path) -> std::io::Result<Option<String>> {
    Ok(supervisor_version_in(&std::fs::read(path)?))
}

/// The version the supervisor binary `bytes` carries after [`SUPERVISOR_VERSION_MARKER`],
/// if any (supervisors older than 0.1.0's marker carry none).
pub fn supervisor_version_in(bytes: &[u8]) -> Option<String> {
    let marker = SUPERVISOR_VERSION_MARKER.as_bytes();
    let mut from = 0;
    while let Some(at) = bytes[from..]
        .windows(marker.len())
        .position(|w| w == marker)
    {
        let start = from + at + marker.len();
        let rest = &bytes[start..bytes.len().min(start + 64)];
        if let Some(end) = rest.iter().position(|&b| b == 0) {
            let version = &rest[..end];
            let valid = |b: &u8| b.is_ascii_alphanumeric() || b".+-".contains(b);
            if !version.is_empty() && version.iter().all(valid) {
                return Some(String::from_utf8_lossy(version).into_owned());
            }
        }
        from = start;
    }
    None
}

#[cfg(test)]
mod version_marker_tests {
    use super::*;

    #[test]
    fn the_supervisor_version_is_read_after_the_marker() {
        let bytes = b"\x7fELF..scar-supervisor-version=\x01junk\0..scar-supervisor-version=0.2.0-rc.1\0rest";
        assert_eq!(supervisor_version_in(bytes).as_deref(), Some("0.2.0-rc.1"));
        assert_eq!(
            supervisor_version_in(b"scar-supervisor-version=0.1.0"),
            None
        );
        assert_eq!(supervisor_version_in(b"no marker here"), None);
    }
}
