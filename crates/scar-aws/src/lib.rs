//! # scar-aws: the `aws` provider (not yet implemented)
//!
//! Will implement [`scar_core::provider::Provider`] on AWS Lambda + S3 + CloudWatch Logs
//! (+ ECR for image packages) through the official AWS SDK for Rust, with the standard
//! credential chain and `--endpoint-url` for emulators. See DESIGN.md §1 and issue 6.
//!
//! **May depend on:** scar-core, scar-packager, the `aws-sdk-*` crates, tokio.
//! **Invariants:** credentials never reach logs or output.

/// The provider's name, as users select it (`--provider aws`).
pub const PROVIDER_NAME: &str = "aws";
