//! [`AwsProvider`]: the client set every other module works through, and what
//! [`AwsProvider::init`] takes ([`InitRequest`], [`Package`]).

use std::path::PathBuf;
use std::sync::Arc;

use aws_config::SdkConfig;
use scar_core::FunctionSpec;

use crate::AwsConfig;

/// What a function's code is: made by `scar-packager`, taken here as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Package {
    /// A zip holding `bootstrap` (the supervisor) and the image's udocker tree; runs on the
    /// `provided.al2023` runtime.
    Zip {
        /// The zip file.
        path: PathBuf,
    },
    /// An image already pushed to ECR (see [`AwsProvider::ecr_login`]); `PackageType=Image`.
    Image {
        /// The image URI, such as `123456789012.dkr.ecr.us-east-1.amazonaws.com/scar-f:latest`.
        uri: String,
    },
}

/// What [`AwsProvider::init`] creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitRequest {
    /// The function; with `input_bucket` set, objects created under its `input/` folder
    /// trigger the function.
    pub spec: FunctionSpec,
    /// The function's code.
    pub package: Package,
    /// The bucket a zip over [`scar_core::lambda::DIRECT_UPLOAD_LIMIT`] is uploaded through (else
    /// [`Deployment::deployment_bucket`](crate::Deployment::deployment_bucket)); created
    /// when missing and kept afterwards.
    pub deployment_bucket: Option<String>,
}

impl InitRequest {
    /// A request without a deployment bucket.
    pub fn new(spec: FunctionSpec, package: Package) -> InitRequest {
        InitRequest {
            spec,
            package,
            deployment_bucket: None,
        }
    }
}

/// The `aws` provider: a Lambda, S3, CloudWatch Logs and ECR client set.
///
/// Cheap to clone (the SDK clients share their connection pools).
#[derive(Clone)]
pub struct AwsProvider {
    pub(crate) config: AwsConfig,
    pub(crate) region: String,
    /// The endpoint override every service's requests go to (an emulator), from the SDK's
    /// configuration (`--endpoint-url`, or `AWS_ENDPOINT_URL`): where API URLs point too.
    pub(crate) endpoint_url: Option<String>,
    pub(crate) lambda: aws_sdk_lambda::Client,
    pub(crate) s3: aws_sdk_s3::Client,
    pub(crate) logs: aws_sdk_cloudwatchlogs::Client,
    pub(crate) ecr: aws_sdk_ecr::Client,
    pub(crate) batch: aws_sdk_batch::Client,
    pub(crate) sts: aws_sdk_sts::Client,
    pub(crate) apigateway: aws_sdk_apigateway::Client,
    /// `list`, `remove_all` and `remove` take every owner's functions, not only the
    /// caller's ([`AwsProvider::with_all_owners`]).
    pub(crate) all_owners: bool,
    /// The caller's identity, asked of STS once.
    pub(crate) caller: Arc<tokio::sync::OnceCell<crate::owner::Caller>>,
}

impl std::fmt::Debug for AwsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsProvider")
            .field("region", &self.region)
            .field("endpoint_url", &self.endpoint_url)
            .field("profile", &self.config.connection.profile)
            .field("all_owners", &self.all_owners)
            .finish_non_exhaustive()
    }
}

impl AwsProvider {
    /// Connects with `config`: the standard credential chain (or its static credentials),
    /// its region, profile and endpoint. No request is sent yet.
    pub async fn connect(config: AwsConfig) -> AwsProvider {
        let sdk = config.load_sdk_config().await;
        AwsProvider::from_sdk_config(config, &sdk)
    }

    /// A provider on an SDK configuration the caller loaded itself. `config` still gives
    /// the role and log retention; its connection fields are not used.
    pub fn from_sdk_config(config: AwsConfig, sdk: &SdkConfig) -> AwsProvider {
        let s3 = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build();
        AwsProvider {
            region: sdk
                .region()
                .map(|r| r.to_string())
                .unwrap_or_else(|| scar_core::config::DEFAULT_REGION.into()),
            endpoint_url: sdk.endpoint_url().map(str::to_string),
            lambda: aws_sdk_lambda::Client::new(sdk),
            s3: aws_sdk_s3::Client::from_conf(s3),
            logs: aws_sdk_cloudwatchlogs::Client::new(sdk),
            ecr: aws_sdk_ecr::Client::new(sdk),
            batch: aws_sdk_batch::Client::new(sdk),
            sts: aws_sdk_sts::Client::new(sdk),
            apigateway: aws_sdk_apigateway::Client::new(sdk),
            all_owners: false,
            caller: Arc::default(),
            config,
        }
    }

    /// With `all`, [`list`](scar_core::provider::Provider::list),
    /// [`remove_all`](scar_core::provider::Provider::remove_all) and
    /// [`remove`](scar_core::provider::Provider::remove) take every scar function of the
    /// account and region; without (the default), only the caller's: those whose `owner`
    /// tag is the caller's identity (see [`OWNER_TAG`](crate::OWNER_TAG)).
    pub fn with_all_owners(mut self, all: bool) -> Self {
        self.all_owners = all;
        self
    }

    /// With `strict`, a zip package's image with a hostile entry (a path out of the root,
    /// an absolute name, a hard link out) fails `create` instead of the entry being skipped.
    pub fn with_strict_extraction(mut self, strict: bool) -> Self {
        self.config.packaging.extract.strict = strict;
        self
    }

    /// The region requests go to.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The Lambda client, for what this crate does not wrap.
    pub fn lambda_client(&self) -> &aws_sdk_lambda::Client {
        &self.lambda
    }

    /// The S3 client (path-style addressing).
    pub fn s3_client(&self) -> &aws_sdk_s3::Client {
        &self.s3
    }

    /// The CloudWatch Logs client.
    pub fn logs_client(&self) -> &aws_sdk_cloudwatchlogs::Client {
        &self.logs
    }

    /// The ECR client.
    pub fn ecr_client(&self) -> &aws_sdk_ecr::Client {
        &self.ecr
    }

    /// The AWS Batch client (the Batch modes' compute environments, job queues and jobs).
    pub fn batch_client(&self) -> &aws_sdk_batch::Client {
        &self.batch
    }

    /// The API Gateway client (the REST APIs of functions with an API Gateway).
    pub fn apigateway_client(&self) -> &aws_sdk_apigateway::Client {
        &self.apigateway
    }
}
