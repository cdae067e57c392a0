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

pub use error::{Categorized, ErrorCategory, ExitStatus, SpecError, UsageError};
pub use spec::{
    BatchSpec, ExecutionMode, FunctionSpec, ImageConfig, InputSpec, LambdaRuntime, OutputSpec,
    RuntimeClient, StorageProvider,
};
pub use spec::{FileSystemSpec, VpcSpec};
pub use spec_options::{Architecture, LogLevel, NetworkAccess};
