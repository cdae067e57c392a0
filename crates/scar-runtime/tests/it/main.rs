//! The integration tests of scar-runtime, as one test binary (each file of `tests/` used to
//! be its own binary, each linking tokio and the AWS SDK): the supervisor run directly, in
//! one-shot mode, from a zip package, and against S3 and MinIO on moto.

mod minio_input;
mod oneshot;
mod s3_storage;
mod supervisor;
mod zip_package;
