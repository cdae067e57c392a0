//! The integration tests of scar-aws, as one test binary (each file of `tests/` used to be
//! its own binary, each linking tokio and the AWS SDK): scar-aws's provider against moto's
//! server on loopback, started and stopped by `scar-test-support`.

mod moto_batch;
mod moto_functions;
mod moto_launcher;
mod moto_logs_storage;
mod moto_owners;
mod on_moto;
