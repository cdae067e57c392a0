//! # scar-aws: the `aws` provider
//!
//! [`AwsProvider`] implements the whole provider surface ([`scar_core::provider::Provider`])
//! on AWS Lambda + S3 + CloudWatch Logs (+ ECR for image packages, + AWS Batch for the
//! `batch` and `lambda-batch` execution modes, + API Gateway for SCAR's `-api`) through the
//! official AWS SDK for Rust: the standard credential chain (environment, profiles, SSO), and
//! [`AwsConfig::endpoint_url`] for emulators (moto) and S3-compatible stores.
//! `Provider::create` is `scar init` end to end: it pulls the image and builds its package
//! with `scar-packager` (an `image` pushed to ECR, or a `zip`), then [`AwsProvider::init`]
//! deploys it (the function, its log group, with an input bucket the bucket, permission
//! and notification, with an API Gateway its REST API and permission; rolled back on
//! failure).
//!
//! Beyond the trait: [`AwsProvider::init`] from a ready [`Package`],
//! [`AwsProvider::wait_job`] for a Batch job's result,
//! [`AwsProvider::ecr_login`], the launcher's engine [`AwsProvider::dispatch`].
//!
//! ```no_run
//! use scar_aws::{AwsConfig, AwsProvider};
//! use scar_core::progress::NoProgress;
//! use scar_core::provider::{CreateRequest, ImageInput, Provider};
//!
//! # async fn demo(spec: scar_core::FunctionSpec) -> Result<(), scar_aws::AwsError> {
//! let mut config = AwsConfig::new("us-east-1");
//! config.deployment.iam_role = "arn:aws:iam::123456789012:role/scar".into();
//! config.packaging.supervisor = Some("target/supervisor/bootstrap".into());
//! let aws = AwsProvider::connect(config).await;
//! let name = spec.name.clone();
//! // The provider's default package: an image package, pushed to ECR.
//! let request = CreateRequest::new(
//!     spec,
//!     ImageInput::Reference("docker.io/library/alpine:3.20".into()),
//! );
//! aws.create(request, &NoProgress).await?;
//! let invocation = aws.invoke(&name, &Default::default(), &NoProgress).await?;
//! assert!(invocation.response.succeeded());
//! aws.remove(&name).await?;
//! # Ok(()) }
//! ```
//!
//! **May depend on:** scar-core, scar-packager (images in, packages out), the `aws-sdk-*`
//! crates and `aws-config` (one TLS stack: the SDK's default rustls client), tokio.
//! **Invariants:** credentials never reach errors, logs or `Debug` output; every resource
//! scar creates is tagged `createdby=scar` (or named after the function) and `remove`
//! deletes only those; every function is tagged with its creator's identity
//! ([`OWNER_TAG`]), and `list`, `remove_all` and `remove` take only the caller's unless
//! told otherwise ([`AwsProvider::with_all_owners`]); the library reports progress through
//! callbacks and draws nothing.
#![deny(clippy::print_stdout, clippy::print_stderr)]
#![warn(missing_docs)]

mod apigateway;
mod batch;
mod config;
mod create;
mod deploy;
mod describe;
mod ecr;
mod error;
mod invoke;
mod launcher;
mod logs;
mod notifications;
mod owner;
mod provider;
mod remove;
mod spec_codec;
#[cfg(test)]
mod spec_strategy;
mod stats;
mod storage;
mod surface;

pub use apigateway::{api_url, API_STAGE};
pub use config::{AwsConfig, Connection, Deployment, Packaging, StaticCredentials};
pub use ecr::{ecr_repository_name, EcrLogin};
pub use error::{AwsError, BoxError, Leftover, ResourceKind};
pub use launcher::{
    dispatch_bench, DispatchBench, DispatchEvent, DispatchOptions, DispatchOutcome, DispatchResult,
    DispatchSummary, RetryPolicy,
};
pub use owner::OWNER_TAG;
pub use provider::{AwsProvider, InitRequest, Package};
pub use spec_codec::{CREATED_BY_TAG, SPEC_DOCUMENT_LIMIT, SPEC_MAX_CHUNKS, TAG_VALUE_LIMIT};
pub use stats::STATS_WINDOW;
pub use storage::TransferEvent;
pub use surface::DEFAULT_CONCURRENCY;

/// The provider's name, as users select it (`--provider aws`).
pub const PROVIDER_NAME: &str = "aws";
