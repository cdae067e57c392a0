//! # scar-aws: the `aws` provider
//!
//! [`AwsProvider`] implements [`scar_core::provider::Provider`] on AWS Lambda + S3 +
//! CloudWatch Logs (+ ECR for image packages) through the official AWS SDK for Rust: the
//! standard credential chain (environment, profiles, SSO), and
//! [`AwsConfig::endpoint_url`] for emulators (moto) and S3-compatible stores.
//!
//! What it does beyond the trait: [`AwsProvider::init`] (a function from a zip or image
//! [`Package`] made by `scar-packager`, with its log group and, with an input bucket, the
//! bucket, permission and notification; rolled back on failure),
//! [`AwsProvider::ecr_login`], [`AwsProvider::invoke_detailed`] and
//! [`AwsProvider::invoke_async`], the launcher [`AwsProvider::launch`],
//! [`AwsProvider::follow_logs`], [`AwsProvider::put`] / [`AwsProvider::get`] and
//! [`AwsProvider::remove_all`].
//!
//! ```no_run
//! use scar_aws::{AwsConfig, AwsProvider, InitRequest, Package};
//! use scar_core::provider::Provider;
//!
//! # async fn demo(spec: scar_core::FunctionSpec) -> Result<(), scar_aws::AwsError> {
//! let mut config = AwsConfig::new("us-east-1");
//! config.iam_role = "arn:aws:iam::123456789012:role/scar".into();
//! let aws = AwsProvider::connect(config).await;
//! let name = spec.name.clone();
//! aws.init(InitRequest::new(spec, Package::Zip { path: "f.zip".into() })).await?;
//! let response = aws.invoke(&name, &Default::default()).await?;
//! print!("{}", response.output);
//! aws.remove(&name).await?;
//! # Ok(()) }
//! ```
//!
//! **May depend on:** scar-core, the `aws-sdk-*` crates and `aws-config` (one TLS stack:
//! the SDK's default rustls client), tokio.
//! **Invariants:** credentials never reach errors, logs or `Debug` output; every resource
//! scar creates is tagged `createdby=scar` (or named after the function) and `remove`
//! deletes only those; the library reports progress through callbacks and draws nothing.

mod config;
mod create;
mod ecr;
mod error;
mod launcher;
mod logs;
mod provider;
mod storage;
mod surface;

pub use config::{AwsConfig, StaticCredentials};
pub use ecr::{ecr_repository_name, EcrLogin};
pub use error::{AwsError, BoxError};
pub use launcher::{
    dispatch_bench, s3_event, DispatchBench, DispatchEvent, DispatchOptions, DispatchOutcome,
    DispatchResult, DispatchSummary, InputObject, RetryPolicy,
};
pub use logs::{slice_request, LogEvent};
pub use provider::{
    notification_id, parse_invoke_result, permission_id, AwsProvider, InitRequest, Package,
    CREATED_BY_TAG, INPUT_FOLDER, OUTPUT_FOLDER,
};
pub use storage::{TransferEvent, MULTIPART_THRESHOLD, PART_SIZE};
pub use surface::DEFAULT_CONCURRENCY;

/// The provider's name, as users select it (`--provider aws`).
pub const PROVIDER_NAME: &str = "aws";
