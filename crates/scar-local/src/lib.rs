//! # scar-local: the `local` provider
//!
//! Functions, logs and invocations on one Linux machine, with no account and no daemon.
//! An image is pulled and extracted once into `$SCAR_HOME/cache` (by `scar-packager`); each
//! invocation is served to the real supervisor (`bootstrap`, from `scar-runtime`) through a
//! Lambda Runtime API at the sandbox's own `127.0.0.1:9001`, and the supervisor runs in a
//! sandbox built from Linux user + mount + pid + network namespaces with the image root as
//! `/` (read-only, as on Lambda), a private `/tmp`, `/proc`, a minimal `/dev`, the
//! supervisor bind-mounted read-only at `/opt/scar`, and outbound network through
//! `slirp4netns` (the host's loopback out of reach). Logs are kept per function and per stream with Lambda's START / END /
//! REPORT lines.
//!
//! **May depend on:** scar-core, scar-packager, tokio, hyper, libc, and scar-s3 (the S3
//! client every scar crate builds alike) only to list a MinIO input folder for the
//! launcher. Never on scar-runtime (it runs the supervisor's binary, never links it), nor
//! on the AWS SDK directly.
//! **Invariants:** a failed `init` leaves nothing behind in `$SCAR_HOME`; the cached image
//! root is never written by a function (it is mounted read-only); every sandbox dies with
//! the process that started it.
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod api;
mod buckets;
mod cgroup;
mod create;
mod dashboard;
mod environment;
mod error;
mod events;
mod gateway;
mod handoff;
mod http;
mod init;
mod invocation;
mod logs;
mod network;
mod packages;
mod provider;
mod records;
mod sandbox;
mod state;
mod supervisor;
mod surface;
mod walk;
mod warm;

pub use buckets::Buckets;
pub use dashboard::{Counts, Durations, FunctionStats};
pub use error::LocalError;
pub use events::ServeEvent;
pub use gateway::launch_path;
pub use http::{HttpListener, HttpOptions, ACCOUNT_CONCURRENCY, DEFAULT_LISTEN};
pub use provider::{LocalProvider, PROVIDER_NAME};
pub use records::Processed;
pub use scar_core::supervisor_version;
pub use supervisor::{
    can_run, elf_architecture, find_proot, find_supervisor, find_supervisor_aarch64, is_static_elf,
};
pub use surface::BackgroundJob;
