//! [`AwsProvider`]: functions on AWS Lambda, their buckets on S3, their logs on CloudWatch.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_lambda::operation::RequestId as _;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    Environment, FunctionCode, FunctionConfiguration, InvocationType, LastUpdateStatus, LogType,
    PackageType, Runtime, State,
};
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, FilterRule, FilterRuleName,
    LambdaFunctionConfiguration, NotificationConfiguration, NotificationConfigurationFilter,
    S3KeyFilter,
};
use base64::Engine as _;
use scar_core::config::ProviderKind;
use scar_core::event::{ErrorPayload, Payload, Response};
use scar_core::lambda::log_group;
use scar_core::provider::SurfaceError;
use scar_core::provider::{FunctionInfo, Invocation, PackageKind};
use scar_core::FunctionSpec;

use crate::config::retention_days;
use crate::{AwsConfig, AwsError};

/// The tag every function (and ECR repository) scar creates carries: `createdby=scar`.
pub const CREATED_BY_TAG: (&str, &str) = ("createdby", "scar");
/// Tag holding the image the function was made from, as the user named it.
const IMAGE_TAG: &str = "scar:image";
/// Tag holding the supervisor's timeout threshold, in seconds.
const THRESHOLD_TAG: &str = "scar:timeout_threshold";
/// Tag holding the input folders whose notifications and permissions `init` added
/// (`bucket[/folder]`, separated by spaces).
pub(crate) const INPUT_TAG: &str = "scar:input";
/// Tag holding where outputs go (`[<provider>:]bucket[/folder]`, separated by spaces);
/// their filters live only in the function file of the package.
const OUTPUT_TAG: &str = "scar:output";

/// Tag holding a function's runtime when it is not scar's supervisor (`image`).
const RUNTIME_TAG: &str = "scar:runtime";

/// How long [`AwsProvider::init`] waits for a new function to become active.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(600);

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
    /// The bucket a zip over [`scar_core::lambda::DIRECT_UPLOAD_LIMIT`] is uploaded through (`-db`); created
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
    pub(crate) lambda: aws_sdk_lambda::Client,
    pub(crate) s3: aws_sdk_s3::Client,
    pub(crate) logs: aws_sdk_cloudwatchlogs::Client,
    pub(crate) ecr: aws_sdk_ecr::Client,
    pub(crate) batch: aws_sdk_batch::Client,
}

impl std::fmt::Debug for AwsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsProvider")
            .field("region", &self.region)
            .field("endpoint_url", &self.config.endpoint_url)
            .field("profile", &self.config.profile)
            .finish_non_exhaustive()
    }
}

/// A resource `init` created, undone in reverse order when a later step fails.
#[derive(Debug)]
pub(crate) enum Created {
    DeploymentBucket(String),
    DeploymentObject {
        bucket: String,
        key: String,
    },
    Function,
    LogGroup,
    Bucket(String),
    Permission {
        statement_id: String,
    },
    Notification {
        bucket: String,
    },
    /// AWS Batch's, for the Batch modes: all named `scar-<function>`.
    ComputeEnvironment,
    JobQueue,
    JobDefinition(String),
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
            lambda: aws_sdk_lambda::Client::new(sdk),
            s3: aws_sdk_s3::Client::from_conf(s3),
            logs: aws_sdk_cloudwatchlogs::Client::new(sdk),
            ecr: aws_sdk_ecr::Client::new(sdk),
            batch: aws_sdk_batch::Client::new(sdk),
            config,
        }
    }

    /// With `strict`, a zip package's image with a hostile entry (a path out of the root,
    /// an absolute name, a hard link out) fails `create` instead of the entry being skipped.
    pub fn with_strict_extraction(mut self, strict: bool) -> Self {
        self.config.extract.strict = strict;
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

    /// Creates a function from a package: the Lambda function (tagged `createdby=scar`),
    /// its log group `/aws/lambda/<name>` with the configured retention, and with
    /// `spec.input_bucket` the bucket (when missing, with `input/` and `output/`
    /// folders), S3's permission to invoke the function and an `s3:ObjectCreated:*`
    /// notification on `input/`, added to the bucket's other notifications.
    ///
    /// Returns once the function is active. On any failure, what this call created is
    /// removed again (the function, its log group, the permission, the notification, the
    /// bucket if it made it).
    pub async fn init(&self, request: InitRequest) -> Result<FunctionInfo, AwsError> {
        let spec = &request.spec;
        spec.validate()?;
        let kind = match request.package {
            Package::Zip { .. } => scar_core::provider::PackageKind::Zip,
            Package::Image { .. } => scar_core::provider::PackageKind::Image,
        };
        crate::batch::check_batch_function(spec, kind)?;
        if self.config.iam_role.trim().is_empty() {
            return Err(AwsError::MissingRole {
                function: spec.name.clone(),
            });
        }
        match self
            .lambda
            .get_function()
            .function_name(&spec.name)
            .send()
            .await
        {
            Ok(_) => return Err(SurfaceError::Exists(spec.name.clone()).into()),
            Err(e) => {
                let e = AwsError::sdk("lambda:GetFunction", &spec.name)(e);
                if !e.is_not_found() {
                    return Err(e);
                }
            }
        }
        let mut created = Vec::new();
        match self.init_steps(&request, &mut created).await {
            Ok(info) => Ok(info),
            Err(err) => {
                let leftovers = self.roll_back(&spec.name, created).await;
                if leftovers.is_empty() {
                    Err(err)
                } else {
                    Err(AwsError::RollbackIncomplete {
                        source: Box::new(err),
                        leftovers,
                    })
                }
            }
        }
    }

    async fn init_steps(
        &self,
        request: &InitRequest,
        created: &mut Vec<Created>,
    ) -> Result<FunctionInfo, AwsError> {
        let spec = &request.spec;
        let name = &spec.name;
        let mut tags = HashMap::from([
            (CREATED_BY_TAG.0.to_string(), CREATED_BY_TAG.1.to_string()),
            (THRESHOLD_TAG.into(), spec.timeout_threshold_s.to_string()),
        ]);
        if is_tag_value(&spec.image) && !spec.image.is_empty() {
            tags.insert(IMAGE_TAG.into(), spec.image.clone());
        }
        // Every input folder, a storage provider's as `<provider>:<path>`: the launcher
        // needs a MinIO folder's too (only the own storage's get notifications).
        if !spec.inputs.is_empty() {
            let inputs: Vec<String> = spec.inputs.iter().map(|i| i.to_string()).collect();
            tags.insert(INPUT_TAG.into(), inputs.join(" "));
        }
        if spec.execution_mode.uses_batch() {
            tags.insert(
                crate::batch::MODE_TAG.into(),
                spec.execution_mode.to_string(),
            );
        }
        if spec.runtime == scar_core::Runtime::Image {
            tags.insert(RUNTIME_TAG.into(), spec.runtime.as_str().into());
        }
        let outputs: Vec<String> = spec.outputs.iter().map(|o| o.to_string()).collect();
        let outputs = outputs.join(" ");
        if !outputs.is_empty() && is_tag_value(&outputs) {
            tags.insert(OUTPUT_TAG.into(), outputs);
        }

        let mut create = self
            .lambda
            .create_function()
            .function_name(name)
            .role(&self.config.iam_role)
            .memory_size(spec.memory_mb as i32)
            .timeout(spec.timeout_s as i32)
            .description(&spec.description)
            .set_tags(Some(tags));
        let mut variables = lambda_variables(spec);
        if spec.execution_mode.uses_batch() {
            // Where the supervisor on Lambda submits jobs.
            let resources = scar_core::contract::batch_resource_name(name);
            variables.insert(
                scar_core::contract::BATCH_JOB_QUEUE_VAR.into(),
                resources.clone(),
            );
            variables.insert(
                scar_core::contract::BATCH_JOB_DEFINITION_VAR.into(),
                resources,
            );
        }
        if !variables.is_empty() {
            create = create.environment(
                Environment::builder()
                    .set_variables(Some(variables.into_iter().collect()))
                    .build(),
            );
        }
        create = match &request.package {
            Package::Zip { path } => {
                let code = self.zip_code(request, path, created).await?;
                create
                    .package_type(PackageType::Zip)
                    .runtime(Runtime::Providedal2023)
                    .handler("bootstrap")
                    .code(code)
            }
            Package::Image { uri } => create
                .package_type(PackageType::Image)
                .code(FunctionCode::builder().image_uri(uri).build()),
        };
        let out = create
            .send()
            .await
            .map_err(AwsError::sdk("lambda:CreateFunction", name))?;
        created.push(Created::Function);
        let function_arn = out.function_arn().unwrap_or_default().to_string();

        let group = log_group(name);
        match self
            .logs
            .create_log_group()
            .log_group_name(&group)
            .tags(CREATED_BY_TAG.0, CREATED_BY_TAG.1)
            .send()
            .await
        {
            Ok(_) => created.push(Created::LogGroup),
            Err(e) => {
                let e = AwsError::sdk("logs:CreateLogGroup", &group)(e);
                if !e.has_code(&["ResourceAlreadyExistsException"]) {
                    return Err(e);
                }
            }
        }
        if let Some(days) = retention_days(self.config.log_retention_days) {
            self.logs
                .put_retention_policy()
                .log_group_name(&group)
                .retention_in_days(days)
                .send()
                .await
                .map_err(AwsError::sdk("logs:PutRetentionPolicy", &group))?;
        }

        if spec.execution_mode.uses_batch() {
            if let Package::Image { uri } = &request.package {
                self.create_batch(spec, uri, created).await?;
            }
        }

        self.wait_active(name).await?;

        let mut permitted = Vec::new();
        for (i, input) in spec
            .inputs
            .iter()
            .filter(|i| i.storage.is_none())
            .enumerate()
        {
            self.connect_input(name, &function_arn, input, i, &mut permitted, created)
                .await?;
        }
        // Output folders (in other buckets too): created when missing, as SCAR does.
        for output in spec.outputs.iter().filter(|o| o.storage.is_none()) {
            if self.ensure_bucket(&output.bucket).await? {
                created.push(Created::Bucket(output.bucket.clone()));
            }
            self.ensure_folder(&output.bucket, &output.folder).await?;
        }
        let got = self
            .lambda
            .get_function()
            .function_name(name)
            .send()
            .await
            .map_err(AwsError::sdk("lambda:GetFunction", name))?;
        let mut info = function_info(&got);
        // What Lambda cannot hold comes from the request.
        info.spec.image = spec.image.clone();
        info.spec.init_script = spec.init_script.clone();
        Ok(info)
    }

    async fn zip_code(
        &self,
        request: &InitRequest,
        path: &std::path::Path,
        created: &mut Vec<Created>,
    ) -> Result<FunctionCode, AwsError> {
        let name = &request.spec.name;
        let size = tokio::fs::metadata(path)
            .await
            .map_err(|source| AwsError::Io {
                what: "cannot read the zip package",
                path: path.to_path_buf(),
                source,
            })?
            .len();
        if size <= scar_core::lambda::DIRECT_UPLOAD_LIMIT {
            let bytes = tokio::fs::read(path).await.map_err(|source| AwsError::Io {
                what: "cannot read the zip package",
                path: path.to_path_buf(),
                source,
            })?;
            return Ok(FunctionCode::builder().zip_file(Blob::new(bytes)).build());
        }
        let Some(bucket) = &request.deployment_bucket else {
            return Err(AwsError::NeedsDeploymentBucket {
                function: name.clone(),
                size,
            });
        };
        if self.ensure_bucket(bucket).await? {
            created.push(Created::DeploymentBucket(bucket.clone()));
        }
        let key = format!("scar/{name}.zip");
        self.put_file(bucket, &key, path, &|_| {}).await?;
        created.push(Created::DeploymentObject {
            bucket: bucket.clone(),
            key: key.clone(),
        });
        Ok(FunctionCode::builder()
            .s3_bucket(bucket)
            .s3_key(key)
            .build())
    }

    /// Creates `bucket` when it does not exist; says whether it did.
    async fn ensure_bucket(&self, bucket: &str) -> Result<bool, AwsError> {
        match self.s3.head_bucket().bucket(bucket).send().await {
            Ok(_) => return Ok(false),
            Err(e) => {
                let e = AwsError::sdk("s3:HeadBucket", bucket)(e);
                if !e.is_not_found() {
                    return Err(e);
                }
            }
        }
        let mut create = self.s3.create_bucket().bucket(bucket);
        if self.region != "us-east-1" {
            create = create.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(self.region.as_str()))
                    .build(),
            );
        }
        create
            .send()
            .await
            .map_err(AwsError::sdk("s3:CreateBucket", bucket))?;
        Ok(true)
    }

    /// Polls until the function is `Active` with its last update `Successful`, backing off
    /// from 250 ms to 5 s, for at most ten minutes.
    async fn wait_active(&self, name: &str) -> Result<(), AwsError> {
        let started = Instant::now();
        let mut delay = Duration::from_millis(250);
        loop {
            let config = self
                .lambda
                .get_function_configuration()
                .function_name(name)
                .send()
                .await
                .map_err(AwsError::sdk("lambda:GetFunctionConfiguration", name))?;
            let state = config.state();
            let update = config.last_update_status();
            if matches!(state, Some(State::Failed))
                || matches!(update, Some(LastUpdateStatus::Failed))
            {
                let reason = config
                    .state_reason()
                    .or(config.last_update_status_reason())
                    .unwrap_or("no reason given");
                return Err(AwsError::NotActive {
                    function: name.into(),
                    reason: format!("its state is Failed: {reason}"),
                });
            }
            let active = matches!(state, None | Some(State::Active));
            let updated = matches!(update, None | Some(LastUpdateStatus::Successful));
            if active && updated {
                return Ok(());
            }
            if started.elapsed() > ACTIVE_TIMEOUT {
                return Err(AwsError::NotActive {
                    function: name.into(),
                    reason: format!(
                        "still {} after {} s",
                        state.map(|s| s.as_str()).unwrap_or("?"),
                        ACTIVE_TIMEOUT.as_secs()
                    ),
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// An empty `folder/` object, as SCAR and the console make folders.
    async fn ensure_folder(&self, bucket: &str, folder: &str) -> Result<(), AwsError> {
        if folder.is_empty() {
            return Ok(());
        }
        let key = format!("{folder}/");
        self.s3
            .put_object()
            .bucket(bucket)
            .key(&key)
            .body(Vec::new().into())
            .send()
            .await
            .map_err(AwsError::sdk("s3:PutObject", format!("{bucket}/{key}")))?;
        Ok(())
    }

    /// An input folder: its bucket and folder, S3's permission to invoke (once per
    /// bucket), and an `s3:ObjectCreated:*` notification filtered on the folder's prefix,
    /// added to the bucket's other notifications. A folder that overlaps another
    /// function's is refused, as S3 refuses overlapping notifications.
    async fn connect_input(
        &self,
        name: &str,
        function_arn: &str,
        input: &scar_core::InputSpec,
        index: usize,
        permitted: &mut Vec<String>,
        created: &mut Vec<Created>,
    ) -> Result<(), AwsError> {
        let bucket = input.bucket.as_str();
        if self.ensure_bucket(bucket).await? {
            created.push(Created::Bucket(bucket.into()));
        }
        self.ensure_folder(bucket, &input.folder).await?;
        if !permitted.iter().any(|b| b == bucket) {
            let statement_id = permission_id(bucket);
            let mut permission = self
                .lambda
                .add_permission()
                .function_name(name)
                .statement_id(&statement_id)
                .action("lambda:InvokeFunction")
                .principal("s3.amazonaws.com")
                .source_arn(format!("arn:aws:s3:::{bucket}"));
            // Bucket ARNs carry no account: pin the account so that a bucket of the same
            // name in another account cannot invoke the function.
            if let Some(account) = function_arn.split(':').nth(4).filter(|a| !a.is_empty()) {
                permission = permission.source_account(account);
            }
            permission
                .send()
                .await
                .map_err(AwsError::sdk("lambda:AddPermission", name))?;
            created.push(Created::Permission { statement_id });
            permitted.push(bucket.to_string());
        }

        let id = notification_id_of(name, index);
        let prefix = input.prefix();
        self.update_notifications(bucket, |lambdas| {
            lambdas.retain(|c| c.id() != Some(&id));
            for other in lambdas.iter() {
                let theirs = notification_prefix(other);
                let theirs_input = scar_core::InputSpec {
                    storage: None,
                    bucket: bucket.to_string(),
                    folder: theirs.trim_end_matches('/').to_string(),
                };
                let owner = other
                    .lambda_function_arn()
                    .rsplit(':')
                    .next()
                    .unwrap_or_default()
                    .to_string();
                if owner != name && theirs_input.overlaps(input) {
                    return Err(SurfaceError::InputTaken {
                        input: input.to_string(),
                        theirs: theirs_input.to_string(),
                        function: owner,
                    }
                    .into());
                }
            }
            let mut config = LambdaFunctionConfiguration::builder()
                .id(&id)
                .lambda_function_arn(function_arn)
                .events(aws_sdk_s3::types::Event::from("s3:ObjectCreated:*"));
            if !prefix.is_empty() {
                config = config.filter(
                    NotificationConfigurationFilter::builder()
                        .key(
                            S3KeyFilter::builder()
                                .filter_rules(
                                    FilterRule::builder()
                                        .name(FilterRuleName::Prefix)
                                        .value(&prefix)
                                        .build(),
                                )
                                .build(),
                        )
                        .build(),
                );
            }
            lambdas.push(
                config
                    .build()
                    .map_err(|e| AwsError::Input(format!("bad notification for {name}: {e}")))?,
            );
            Ok(())
        })
        .await?;
        created.push(Created::Notification {
            bucket: bucket.into(),
        });
        Ok(())
    }

    /// Reads the bucket's notification configuration, lets `change` edit its Lambda
    /// entries, and writes it back with every other entry (topics, queues, EventBridge)
    /// as it was. Nothing is written when `change` left the entries as they were.
    async fn update_notifications(
        &self,
        bucket: &str,
        change: impl FnOnce(&mut Vec<LambdaFunctionConfiguration>) -> Result<(), AwsError>,
    ) -> Result<(), AwsError> {
        let current = match self
            .s3
            .get_bucket_notification_configuration()
            .bucket(bucket)
            .send()
            .await
        {
            Ok(current) => current,
            Err(e) if is_empty_notification_quirk(&e) => {
                aws_sdk_s3::operation::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput::builder().build()
            }
            Err(e) => return Err(AwsError::sdk("s3:GetBucketNotificationConfiguration", bucket)(e)),
        };
        let before = current.lambda_function_configurations().to_vec();
        let mut lambdas = before.clone();
        change(&mut lambdas)?;
        if lambdas == before {
            return Ok(());
        }
        let config = NotificationConfiguration::builder()
            .set_topic_configurations(Some(current.topic_configurations().to_vec()))
            .set_queue_configurations(Some(current.queue_configurations().to_vec()))
            .set_lambda_function_configurations(Some(lambdas))
            .set_event_bridge_configuration(current.event_bridge_configuration().cloned())
            .build();
        self.s3
            .put_bucket_notification_configuration()
            .bucket(bucket)
            .notification_configuration(config)
            .send()
            .await
            .map_err(AwsError::sdk(
                "s3:PutBucketNotificationConfiguration",
                bucket,
            ))?;
        Ok(())
    }

    /// Undoes `created` in reverse order; returns what could not be undone.
    async fn roll_back(&self, name: &str, created: Vec<Created>) -> Vec<String> {
        let mut leftovers = Vec::new();
        for item in created.into_iter().rev() {
            let result = match &item {
                Created::Notification { bucket } => self.remove_notification(name, bucket).await,
                Created::Permission { statement_id } => self
                    .lambda
                    .remove_permission()
                    .function_name(name)
                    .statement_id(statement_id)
                    .send()
                    .await
                    .map(drop)
                    .map_err(AwsError::sdk("lambda:RemovePermission", name)),
                Created::Bucket(bucket) | Created::DeploymentBucket(bucket) => {
                    self.delete_bucket(bucket).await
                }
                Created::DeploymentObject { bucket, key } => self
                    .s3
                    .delete_object()
                    .bucket(bucket)
                    .key(key)
                    .send()
                    .await
                    .map(drop)
                    .map_err(AwsError::sdk("s3:DeleteObject", format!("{bucket}/{key}"))),
                Created::LogGroup => self.delete_log_group(name).await,
                Created::ComputeEnvironment => self.delete_compute_environment(name).await,
                Created::JobQueue => self.delete_job_queue(name).await,
                Created::JobDefinition(arn) => self.deregister_job_definition(arn).await,
                Created::Function => self
                    .lambda
                    .delete_function()
                    .function_name(name)
                    .send()
                    .await
                    .map(drop)
                    .map_err(AwsError::sdk("lambda:DeleteFunction", name)),
            };
            if let Err(e) = result {
                if !e.is_not_found() {
                    leftovers.push(format!("{item:?}: {e}"));
                }
            }
        }
        leftovers
    }

    /// Removes the Lambda entries of `bucket`'s notifications that `init` added for `name`
    /// (by their id `scar-<name>`), keeping every other entry.
    pub(crate) async fn remove_notification(
        &self,
        name: &str,
        bucket: &str,
    ) -> Result<(), AwsError> {
        self.update_notifications(bucket, |lambdas| {
            lambdas.retain(|c| !c.id().is_some_and(|id| is_notification_of(id, name)));
            Ok(())
        })
        .await
    }

    /// Deletes a bucket this crate created: its objects first.
    async fn delete_bucket(&self, bucket: &str) -> Result<(), AwsError> {
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(AwsError::sdk("s3:ListObjectsV2", bucket))?;
            for object in page.contents() {
                if let Some(key) = object.key() {
                    self.s3
                        .delete_object()
                        .bucket(bucket)
                        .key(key)
                        .send()
                        .await
                        .map_err(AwsError::sdk("s3:DeleteObject", format!("{bucket}/{key}")))?;
                }
            }
        }
        self.s3
            .delete_bucket()
            .bucket(bucket)
            .send()
            .await
            .map_err(AwsError::sdk("s3:DeleteBucket", bucket))?;
        Ok(())
    }

    pub(crate) async fn delete_log_group(&self, name: &str) -> Result<(), AwsError> {
        let group = log_group(name);
        match self
            .logs
            .delete_log_group()
            .log_group_name(&group)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = AwsError::sdk("logs:DeleteLogGroup", group)(e);
                if e.is_not_found() {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Invokes a function synchronously (`RequestResponse`, `LogType=Tail`) and returns
    /// scar's response with the log tail; `runtime` says whose answer to expect.
    ///
    /// A script that failed or timed out is not an error here: its response comes back
    /// with `succeeded() == false` (the supervisor reports it as a `ScarFunctionError`),
    /// and so does a function error of Lambda's or the runtime's (a crash, Lambda's own
    /// timeout, a handler that raised), in `function_error`. Errors are:
    /// [`SurfaceError::NotFound`]; and [`AwsError::NotScarResponse`], holding the raw text,
    /// when a function of scar's runtime answered something that is not scar's response
    /// (not a scar function, or an emulator that echoes the payload back, like moto
    /// without Docker).
    pub async fn invoke_detailed(
        &self,
        name: &str,
        runtime: scar_core::Runtime,
        payload: &Payload,
    ) -> Result<Invocation, AwsError> {
        let body = serde_json::to_vec(payload).unwrap_or_default();
        let out = self
            .lambda
            .invoke()
            .function_name(name)
            .invocation_type(InvocationType::RequestResponse)
            .log_type(LogType::Tail)
            .payload(Blob::new(body))
            .send()
            .await
            .map_err(|e| not_found_as(name, AwsError::sdk("lambda:Invoke", name)(e)))?;
        let request_id = out.request_id().map(str::to_string);
        let log_tail = out.log_result().and_then(|tail| {
            base64::engine::general_purpose::STANDARD
                .decode(tail)
                .ok()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        });
        let raw = out.payload().map(|b| b.as_ref()).unwrap_or_default();
        let mut response = match parse_invoke_result(name, runtime, out.function_error(), raw) {
            Ok(r) => r,
            // Not a scar answer: say "not found" when there is no such function (some
            // emulators answer invocations of missing functions), else what came back.
            Err(e @ AwsError::NotScarResponse { .. }) => {
                return Err(
                    match self.lambda.get_function().function_name(name).send().await {
                        Err(g) => {
                            match not_found_as(name, AwsError::sdk("lambda:GetFunction", name)(g)) {
                                nf @ AwsError::Surface(SurfaceError::NotFound(_)) => nf,
                                _ => e,
                            }
                        }
                        Ok(_) => e,
                    },
                );
            }
            Err(e) => return Err(e),
        };
        if response.request_id.is_empty() {
            response.request_id = request_id.clone().unwrap_or_default();
        }
        if response.log_group.is_empty() {
            response.log_group = log_group(name);
        }
        Ok(Invocation { response, log_tail })
    }
}

/// Maps Lambda's not-found errors to [`SurfaceError::NotFound`].
pub(crate) fn not_found_as(name: &str, err: AwsError) -> AwsError {
    if err.has_code(&["ResourceNotFoundException"]) {
        AwsError::Surface(SurfaceError::NotFound(name.into()))
    } else {
        err
    }
}

/// Turns an invoke result into scar's response.
///
/// - no function error: the payload is scar's [`Response`], or with a runtime of the
///   image's own ([`scar_core::Runtime::Image`]) the function's result as it is (the
///   response's output);
/// - a function error whose `errorType` is [`scar_core::event::FUNCTION_ERROR_TYPE`]: the
///   script failed or timed out, and `errorMessage` holds the response;
/// - any other function error (a runtime's, or Lambda's: `Sandbox.Timedout`,
///   `Runtime.ExitError`, ...): a failed response whose `function_error` has its type,
///   message and stack trace, as Lambda's invoke returns them;
/// - a payload that is not scar's from scar's runtime: [`AwsError::NotScarResponse`] with
///   the raw text.
pub fn parse_invoke_result(
    function: &str,
    runtime: scar_core::Runtime,
    function_error: Option<&str>,
    payload: &[u8],
) -> Result<Response, AwsError> {
    match function_error {
        None if runtime == scar_core::Runtime::Image => {
            let mut raw = Response {
                exit_code: Some(0),
                ..Response::default()
            };
            raw.set_output(payload.to_vec());
            Ok(raw)
        }
        None => {
            serde_json::from_slice::<Response>(payload).map_err(|_| AwsError::NotScarResponse {
                function: function.into(),
                raw: String::from_utf8_lossy(payload).into_owned(),
            })
        }
        Some(kind) => {
            if let Some(r) = serde_json::from_slice::<ErrorPayload>(payload)
                .ok()
                .and_then(|e| e.scar_response())
            {
                return Ok(r);
            }
            let error = scar_core::event::FunctionError::from_runtime(payload, Some(kind));
            Ok(Response {
                timed_out: error.error_type == "Sandbox.Timedout",
                function_error: Some(error),
                ..Response::default()
            })
        }
    }
}

/// Whether `err` is a successful (2xx) answer the SDK could not parse because its XML root
/// is `<{root}`, as moto 5.2's generic serializer writes some S3 answers
/// (`<OperationResponse>` instead of S3's own root). Real S3 never answers so; an
/// `<Error>` body never counts.
pub(crate) fn is_wrapped_root<E>(err: &aws_sdk_s3::error::SdkError<E>, root: &str) -> bool {
    let Some(raw) = err.raw_response() else {
        return false;
    };
    let body = raw.body().bytes().map(String::from_utf8_lossy);
    raw.status().is_success()
        && matches!(err, aws_sdk_s3::error::SdkError::ServiceError(_))
        && body.is_some_and(|b| b.contains(&format!("<{root}")) && !b.contains("<Error>"))
}

/// moto answers a bucket without notifications with an empty
/// `<GetBucketNotificationResponse/>`: taken as empty only when it holds no configuration
/// at all, so that a real configuration is never dropped.
fn is_empty_notification_quirk<E>(err: &aws_sdk_s3::error::SdkError<E>) -> bool {
    let body = err
        .raw_response()
        .and_then(|r| r.body().bytes())
        .map(String::from_utf8_lossy);
    is_wrapped_root(err, "GetBucketNotificationResponse")
        && body.is_some_and(|b| !b.contains("Configuration"))
}

/// The id of the notification `init` adds for a function's input folder number `index`:
/// `scar-<function>` for the first, `scar-<function>:<index>` for the others.
pub fn notification_id_of(function: &str, index: usize) -> String {
    if index == 0 {
        notification_id(function)
    } else {
        format!("{}:{index}", notification_id(function))
    }
}

/// Whether notification `id` is one `init` added for `function`.
fn is_notification_of(id: &str, function: &str) -> bool {
    let base = notification_id(function);
    id == base
        || id
            .strip_prefix(base.as_str())
            .and_then(|rest| rest.strip_prefix(':'))
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
}

/// The key prefix a notification filters on (empty: the whole bucket).
fn notification_prefix(config: &LambdaFunctionConfiguration) -> String {
    config
        .filter()
        .and_then(|f| f.key())
        .map(|k| k.filter_rules())
        .unwrap_or_default()
        .iter()
        .find(|r| matches!(r.name(), Some(FilterRuleName::Prefix)))
        .and_then(|r| r.value())
        .unwrap_or_default()
        .to_string()
}

/// The function's Lambda variables: its own, its container's under `CONT_VAR_` (so
/// that any name, Lambda's reserved ones included, can be stored), and its storage
/// providers for the supervisor.
pub(crate) fn lambda_variables(spec: &FunctionSpec) -> BTreeMap<String, String> {
    let mut vars = spec.lambda_environment.clone();
    for (k, v) in &spec.environment {
        // A runtime of the image's own reads its variables as they are: no supervisor
        // strips the prefix.
        let name = match spec.runtime {
            scar_core::Runtime::Image => k.clone(),
            scar_core::Runtime::Scar => {
                format!("{}{k}", scar_core::contract::CONTAINER_VAR_PREFIX)
            }
        };
        vars.insert(name, v.clone());
    }
    if !spec.storage_providers.is_empty() {
        vars.insert(
            scar_core::contract::STORAGE_PROVIDERS_VAR.into(),
            serde_json::to_string(&spec.storage_providers).unwrap_or_default(),
        );
    }
    vars
}

/// The id of the notification `init` adds to an input bucket: `scar-<function>`.
pub fn notification_id(function: &str) -> String {
    format!("scar-{function}")
}

/// The statement id of S3's invoke permission on a function: `scar-s3-<bucket>`, with the
/// characters statement ids do not allow (dots) turned into `-`.
pub fn permission_id(bucket: &str) -> String {
    let bucket: String = bucket
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("scar-s3-{bucket}")
}

pub(crate) fn is_scar(tags: Option<&HashMap<String, String>>) -> bool {
    tags.and_then(|t| t.get(CREATED_BY_TAG.0))
        .is_some_and(|v| v == CREATED_BY_TAG.1)
}

/// Lambda tag values: up to 256 of letters, digits, spaces and `_ . : / = + - @`.
fn is_tag_value(value: &str) -> bool {
    value.len() <= 256
        && value
            .chars()
            .all(|c| c.is_alphanumeric() || " _.:/=+-@".contains(c))
}

/// A function as scar lists it, from GetFunction's answer.
pub(crate) fn function_info(
    out: &aws_sdk_lambda::operation::get_function::GetFunctionOutput,
) -> FunctionInfo {
    let empty = FunctionConfiguration::builder().build();
    let config = out.configuration().unwrap_or(&empty);
    let tags = out.tags().cloned().unwrap_or_default();
    let image_uri = out.code().and_then(|c| c.image_uri());
    let resolved = out.code().and_then(|c| c.resolved_image_uri());
    let is_image = matches!(config.package_type(), Some(PackageType::Image));
    let image = tags
        .get(IMAGE_TAG)
        .cloned()
        .or_else(|| image_uri.map(str::to_string))
        .unwrap_or_else(|| if is_image { "image" } else { "zip" }.into());
    let digest = resolved
        .or(image_uri)
        .and_then(|u| u.split_once('@'))
        .map(|(_, d)| d.to_string())
        .unwrap_or_default();
    let variables: BTreeMap<String, String> = config
        .environment()
        .and_then(|e| e.variables())
        .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let runtime = match tags.get(RUNTIME_TAG).map(String::as_str) {
        Some("image") => scar_core::Runtime::Image,
        _ => scar_core::Runtime::Scar,
    };
    let mut environment = BTreeMap::new();
    let mut lambda_environment = BTreeMap::new();
    let mut storage_providers = BTreeMap::new();
    for (k, v) in variables {
        if let Some(name) = k.strip_prefix(scar_core::contract::CONTAINER_VAR_PREFIX) {
            environment.insert(name.to_string(), v);
        } else if k == scar_core::contract::STORAGE_PROVIDERS_VAR {
            storage_providers = serde_json::from_str(&v).unwrap_or_default();
        } else if k == scar_core::contract::BATCH_JOB_QUEUE_VAR
            || k == scar_core::contract::BATCH_JOB_DEFINITION_VAR
        {
            // scar's own, for the supervisor.
        } else {
            lambda_environment.insert(k, v);
        }
    }
    let paths = |tag: &str| -> Vec<(Option<String>, scar_core::bucket::BucketPath)> {
        tags.get(tag)
            .map(|t| {
                t.split(' ')
                    .filter_map(|p| {
                        let (storage, path) = match p.split_once(':') {
                            Some((s, p)) => (Some(s.to_string()), p),
                            None => (None, p),
                        };
                        scar_core::bucket::BucketPath::parse(path)
                            .ok()
                            .map(|b| (storage, b))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut inputs: Vec<scar_core::InputSpec> = paths(INPUT_TAG)
        .into_iter()
        .map(|(storage, p)| scar_core::InputSpec {
            storage,
            ..scar_core::InputSpec::at(&p)
        })
        .collect();
    // Functions made before `scar:input`: their bucket's `input/` folder.
    if let Some(bucket) = tags.get("scar:input_bucket").filter(|_| inputs.is_empty()) {
        inputs.push(scar_core::InputSpec {
            storage: None,
            bucket: bucket.clone(),
            folder: scar_core::bucket::INPUT_FOLDER.into(),
        });
    }
    let outputs = paths(OUTPUT_TAG)
        .into_iter()
        .map(|(storage, p)| scar_core::OutputSpec {
            storage,
            ..scar_core::OutputSpec::at(&p)
        })
        .collect();
    let timeout_s = config.timeout().unwrap_or(3).max(0) as u32;
    FunctionInfo {
        spec: FunctionSpec {
            name: config.function_name().unwrap_or_default().to_string(),
            image,
            memory_mb: config.memory_size().unwrap_or(128).max(0) as u32,
            timeout_s,
            timeout_threshold_s: tags
                .get(THRESHOLD_TAG)
                .and_then(|t| t.parse().ok())
                .unwrap_or(scar_core::config::DEFAULT_THRESHOLD_S.min(timeout_s.saturating_sub(1))),
            description: config.description().unwrap_or_default().to_string(),
            environment,
            lambda_environment,
            init_script: None,
            inputs,
            outputs,
            storage_providers,
            execution_mode: crate::batch::mode_of(Some(&tags)),
            batch: None,
            runtime,
        },
        provider: ProviderKind::Aws,
        package: Some(if is_image {
            PackageKind::Image
        } else {
            PackageKind::Zip
        }),
        image_digest: digest,
        created: config.last_modified().map(rfc3339).unwrap_or_default(),
    }
}

/// Lambda's `LastModified` (`2024-01-02T03:04:05.000+0000`) as RFC 3339.
fn rfc3339(text: &str) -> String {
    chrono::DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z")
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
        .unwrap_or_else(|_| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use scar_core::event::FUNCTION_ERROR_TYPE;

    #[test]
    fn invoke_results_are_parsed() {
        let ok = Response {
            request_id: "r1".into(),
            exit_code: Some(0),
            output: "hi\n".into(),
            ..Response::default()
        };
        let body = serde_json::to_vec(&ok).unwrap();
        let scar = scar_core::Runtime::Scar;
        assert_eq!(parse_invoke_result("f", scar, None, &body).unwrap(), ok);

        let failed = Response {
            exit_code: Some(3),
            ..ok.clone()
        };
        let error = ErrorPayload {
            error_type: FUNCTION_ERROR_TYPE.into(),
            error_message: serde_json::to_string(&failed).unwrap(),
        };
        let body = serde_json::to_vec(&error).unwrap();
        let got = parse_invoke_result("f", scar, Some("Unhandled"), &body).unwrap();
        assert_eq!(got, failed);
        assert!(!got.succeeded());

        // Lambda's own errors and a runtime's: a failed run with the error as Lambda's
        // invoke returns it (X-Amz-Function-Error: Unhandled, the type in the body).
        let crash = br#"{"errorType":"Runtime.ExitError","errorMessage":"exit status 1"}"#;
        let got = parse_invoke_result("f", scar, Some("Unhandled"), crash).unwrap();
        assert!(!got.succeeded());
        let e = got.function_error.unwrap();
        assert_eq!(
            (e.error_type.as_str(), e.error_message.as_str()),
            ("Runtime.ExitError", "exit status 1")
        );
        let raised = br#"{"errorType":"ValueError","errorMessage":"bad input","stackTrace":["  File \"/var/task/app.py\", line 3, in handler\n"],"requestId":"r"}"#;
        let got =
            parse_invoke_result("f", scar_core::Runtime::Image, Some("Unhandled"), raised).unwrap();
        let e = got.function_error.clone().unwrap();
        assert_eq!(e.error_type, "ValueError");
        assert_eq!(e.stack_trace.len(), 1);
        assert!(e.stack_trace[0].contains("app.py"), "{e:?}");
        assert!(!got.timed_out);
        let timeout = br#"{"errorType":"Sandbox.Timedout","errorMessage":"RequestId: r Error: Task timed out after 3.00 seconds"}"#;
        let got = parse_invoke_result("f", scar, Some("Unhandled"), timeout).unwrap();
        assert!(got.timed_out && !got.succeeded());
        // A body that is not JSON keeps its text, the header its type.
        let got = parse_invoke_result("f", scar, Some("Unhandled"), b"not json").unwrap();
        assert_eq!(
            got.function_error.map(|e| (e.error_type, e.error_message)),
            Some(("Unhandled".into(), "not json".into()))
        );

        // Scar's runtime answers scar's response; a runtime of the image's own answers the
        // function's result, as it is.
        let echo = br#"{"cmd_args":["ls"]}"#;
        let err = parse_invoke_result("f", scar, None, echo).unwrap_err();
        assert!(
            matches!(err, AwsError::NotScarResponse { ref raw, .. } if raw == r#"{"cmd_args":["ls"]}"#)
        );
        let own = parse_invoke_result("f", scar_core::Runtime::Image, None, echo).unwrap();
        assert!(own.succeeded());
        assert_eq!(own.output, r#"{"cmd_args":["ls"]}"#);
    }

    #[test]
    fn names_of_what_init_adds() {
        assert_eq!(permission_id("my.bucket-1"), "scar-s3-my-bucket-1");
        assert_eq!(notification_id("f"), "scar-f");
        assert_eq!(log_group("f"), "/aws/lambda/f");
        assert!(is_tag_value("docker.io/library/ubuntu:22.04"));
        assert!(!is_tag_value("a,b"));
        assert_eq!(
            rfc3339("2024-01-02T03:04:05.000+0000"),
            "2024-01-02T03:04:05Z"
        );
    }
}
