//! The integration tests of scar-cli, as one test binary (each file of `tests/` used to be
//! its own binary, each linking tokio and the AWS SDK): the `scar` binary driven in a
//! temporary home against the local provider and against moto.
//! Modules run in parallel in one process: a test that needs a port or a directory takes a
//! free one, and none changes the process's environment or current directory.

mod aws;
mod batch;
mod common;
mod config;
mod conformance;
mod dashboard;
mod events;
mod extra_payload;
mod fdl;
mod hostile_images;
mod lambda;
mod lambda_runtime;
mod local;
mod minio_input;
mod network;
mod packages;
mod runtime_api;
mod serve_http;
mod snapshots;
mod upstream_fdl;
mod walkthrough;
mod workflows;
