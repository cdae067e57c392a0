//! Deploying a function ([`AwsProvider::init`]): the Lambda function, its log group, its
//! input and output folders, its Batch resources; and the rollback of all of them when a
//! step fails.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    Environment, FileSystemConfig, FunctionCode, LastUpdateStatus, PackageType, Runtime, State,
    VpcConfig,
};
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use scar_core::lambda::log_group;
use scar_core::provider::SurfaceError;
use scar_core::provider::{FunctionInfo, PackageKind};
use scar_core::FunctionSpec;

use crate::batch::Switchable;
use crate::config::retention_days;
use crate::error::{Leftover, NotFoundExt as _, ResourceKind, SdkResultExt as _};
use crate::spec_codec::{self, CREATED_BY_TAG};
use crate::{AwsError, AwsProvider, InitRequest, Package};

/// Lambda's VpcConfig of `spec` (FDL `vpc`).
pub(crate) fn vpc_config(spec: &FunctionSpec) -> Option<VpcConfig> {
    spec.vpc.as_ref().map(|v| {
        VpcConfig::builder()
            .set_subnet_ids(Some(v.subnet_ids.clone()))
            .set_security_group_ids(Some(v.security_group_ids.clone()))
            .build()
    })
}

/// Lambda's FileSystemConfigs of `spec` (FDL `file_system`); `None` when it has none.
pub(crate) fn file_system_configs(spec: &FunctionSpec) -> Option<Vec<FileSystemConfig>> {
    let configs: Vec<FileSystemConfig> = (spec.file_systems.iter())
        .filter_map(|fs| {
            FileSystemConfig::builder()
                .arn(&fs.arn)
                .local_mount_path(&fs.local_mount_path)
                .build()
                .ok()
        })
        .collect();
    (!configs.is_empty()).then_some(configs)
}

/// Whether `image` is in ECR (`ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY`): what
/// `create_image: false` reuses, as SCAR checks it.
pub(crate) fn is_ecr_image(image: &str) -> bool {
    let host = image.split('/').next().unwrap_or_default();
    image.contains('/') && host.contains(".dkr.ecr.")
}

/// The image `create_image: false` reuses, with SCAR's default tag (`latest`) when it
/// names neither a tag nor a digest.
pub(crate) fn reused_image_uri(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or_default();
    if last.contains(':') || last.contains('@') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

/// How long [`AwsProvider::init`] waits for a new function to become active.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(600);

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
    /// The function's API Gateway (its id): with it go its resource, method, integration
    /// and deployment.
    RestApi(String),
}

impl AwsProvider {
    /// Creates a function from a package: the Lambda function (tagged `createdby=scar`, and
    /// with the caller's identity as its [owner](crate::OWNER_TAG)),
    /// its log group `/aws/lambda/<name>` with the configured retention, and for each
    /// input folder of its own storage the bucket (when missing) and folder, S3's
    /// permission to invoke the function and an `s3:ObjectCreated:*` notification on the
    /// folder, added to the bucket's other notifications; its output folders; with a Batch
    /// execution mode, its compute environment, job queue and job definition; with an API
    /// Gateway, its REST API and API Gateway's permission to invoke
    /// (see [`api_url`](crate::api_url)).
    ///
    /// Returns once the function is active. On any failure, what this call created is
    /// removed again (the function, its log group, the permission, the notification, the
    /// bucket if it made it); what could not be is in [`AwsError::RollbackIncomplete`].
    pub async fn init(&self, request: InitRequest) -> Result<FunctionInfo, AwsError> {
        let spec = &request.spec;
        self.check_deployable(spec, package_kind(&request.package))?;
        let owner = self.caller().await?.tag_value().to_string();
        self.ensure_absent(&spec.name).await?;
        let mut created = Vec::new();
        match self.init_steps(&request, &owner, &mut created).await {
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

    /// What can be checked before anything is pulled, pushed or created: the spec, what
    /// a Batch mode needs, the role.
    pub(crate) fn check_deployable(
        &self,
        spec: &FunctionSpec,
        kind: PackageKind,
    ) -> Result<(), AwsError> {
        spec.validate()?;
        crate::batch::check_batch_function(spec, kind)?;
        if spec.reserved_concurrency.is_some() {
            return Err(SurfaceError::from(scar_core::provider::Unsupported {
                provider: crate::PROVIDER_NAME,
                what: "`--reserved-concurrency`".into(),
                instead:
                    "set it on the deployed function with `aws lambda put-function-concurrency`"
                        .into(),
            })
            .into());
        }
        if spec.network == scar_core::NetworkAccess::None {
            return Err(SurfaceError::from(scar_core::provider::Unsupported {
                provider: crate::PROVIDER_NAME,
                what: "`--network none`".into(),
                instead: "Lambda gives every function outbound network; put it in a VPC without a NAT gateway (FDL `vpc`) to cut it off".into(),
            })
            .into());
        }
        spec_codec::encode(spec, None)?;
        if !spec.file_systems.is_empty() && spec.vpc.is_none() {
            return Err(AwsError::FileSystemNeedsVpc {
                function: spec.name.clone(),
            });
        }
        if spec.reuse_image && !is_ecr_image(&spec.image) {
            return Err(AwsError::NotEcrImage {
                function: spec.name.clone(),
                image: spec.image.clone(),
            });
        }
        if self.config.deployment.iam_role.trim().is_empty() {
            return Err(AwsError::MissingRole {
                function: spec.name.clone(),
            });
        }
        Ok(())
    }

    /// [`AwsError::Exists`] when Lambda has a function of that name (scar's or not).
    pub(crate) async fn ensure_absent(&self, name: &str) -> Result<(), AwsError> {
        match self.get_function(name).await? {
            Some(_) => Err(SurfaceError::Exists(name.to_string()).into()),
            None => Ok(()),
        }
    }

    async fn init_steps(
        &self,
        request: &InitRequest,
        owner: &str,
        created: &mut Vec<Created>,
    ) -> Result<FunctionInfo, AwsError> {
        let spec = &request.spec;
        // Before the function, which is created with its API's id (as SCAR does).
        let api_id = match &spec.api_gateway {
            Some(api) => Some(self.create_api_gateway(spec, api, owner, created).await?),
            None => None,
        };
        let function_arn =
            (self.create_lambda_function(request, owner, api_id.as_deref(), created)).await?;
        self.create_log_group(&spec.name, created).await?;
        if spec.execution_mode.uses_batch() {
            if let Package::Image { uri } = &request.package {
                self.create_batch(spec, uri, created).await?;
            }
        }
        self.wait_active(&spec.name).await?;
        if let Some(api_id) = &api_id {
            self.permit_api_gateway(&spec.name, &function_arn, api_id, created)
                .await?;
        }
        self.connect_inputs(spec, &function_arn, created).await?;
        self.ensure_outputs(spec, created).await?;
        self.function_info(&spec.name).await
    }

    /// The Lambda function itself, with the spec's tags and variables, `owner` and the id
    /// of its API Gateway's REST API; its ARN.
    async fn create_lambda_function(
        &self,
        request: &InitRequest,
        owner: &str,
        api_id: Option<&str>,
        created: &mut Vec<Created>,
    ) -> Result<String, AwsError> {
        let InitRequest { spec, package, .. } = request;
        let name = &spec.name;
        let encoded = spec_codec::encode(spec, Some(owner))?;
        let mut create = self
            .lambda
            .create_function()
            .function_name(name)
            .role(&self.config.deployment.iam_role)
            .memory_size(spec.memory_mb as i32)
            .timeout(spec.timeout_s as i32)
            .description(&spec.description)
            .architectures(aws_sdk_lambda::types::Architecture::from(
                spec.architecture.as_str(),
            ))
            .set_tags(Some(encoded.tags));
        create = create
            .set_vpc_config(vpc_config(spec))
            .set_file_system_configs(file_system_configs(spec));
        let mut variables = function_variables(spec, encoded.variables);
        if let Some(version) = self.supervisor_version(spec) {
            variables.insert(scar_core::contract::SUPERVISOR_VERSION_VAR.into(), version);
        }
        if let Some(api_id) = api_id {
            variables.insert(crate::apigateway::API_ID_VAR.into(), api_id.into());
        }
        if !variables.is_empty() {
            create = create.environment(
                Environment::builder()
                    .set_variables(Some(variables.into_iter().collect()))
                    .build(),
            );
        }
        create = match package {
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
            .map_sdk_err("lambda:CreateFunction", name)?;
        created.push(Created::Function);
        Ok(out.function_arn().unwrap_or_default().to_string())
    }

    /// The log group `/aws/lambda/<name>` (kept when it exists) with the configured
    /// retention.
    async fn create_log_group(
        &self,
        name: &str,
        created: &mut Vec<Created>,
    ) -> Result<(), AwsError> {
        let group = log_group(name);
        let made = self
            .logs
            .create_log_group()
            .log_group_name(&group)
            .tags(CREATED_BY_TAG.0, CREATED_BY_TAG.1)
            .send()
            .await
            .map_sdk_err("logs:CreateLogGroup", &group);
        match made {
            Ok(_) => created.push(Created::LogGroup),
            Err(e) if e.has_code(&["ResourceAlreadyExistsException"]) => {}
            Err(e) => return Err(e),
        }
        if let Some(days) = retention_days(self.config.deployment.log_retention_days) {
            self.logs
                .put_retention_policy()
                .log_group_name(&group)
                .retention_in_days(days)
                .send()
                .await
                .map_sdk_err("logs:PutRetentionPolicy", &group)?;
        }
        Ok(())
    }

    /// Every input folder of the function's own storage, connected to the function (a
    /// storage provider's cannot notify Lambda: the launcher runs those).
    async fn connect_inputs(
        &self,
        spec: &FunctionSpec,
        function_arn: &str,
        created: &mut Vec<Created>,
    ) -> Result<(), AwsError> {
        let mut permitted = Vec::new();
        let own = spec.inputs.iter().filter(|i| i.storage.is_none());
        for (i, input) in own.enumerate() {
            self.connect_input(&spec.name, function_arn, input, i, &mut permitted, created)
                .await?;
        }
        Ok(())
    }

    /// Output folders (in other buckets too): created when missing, as SCAR does.
    async fn ensure_outputs(
        &self,
        spec: &FunctionSpec,
        created: &mut Vec<Created>,
    ) -> Result<(), AwsError> {
        for output in spec.outputs.iter().filter(|o| o.storage.is_none()) {
            if self.ensure_bucket(&output.bucket).await? {
                created.push(Created::Bucket(output.bucket.clone()));
            }
            self.ensure_folder(&output.bucket, &output.folder).await?;
        }
        Ok(())
    }

    /// A zip package's code: in the request up to Lambda's direct upload limit, else
    /// through the deployment bucket (created when missing and kept afterwards).
    async fn zip_code(
        &self,
        request: &InitRequest,
        path: &std::path::Path,
        created: &mut Vec<Created>,
    ) -> Result<FunctionCode, AwsError> {
        let name = &request.spec.name;
        let read_error = |source| AwsError::Io {
            what: "cannot read the zip package",
            path: path.to_path_buf(),
            source,
        };
        let size = tokio::fs::metadata(path).await.map_err(read_error)?.len();
        if size <= scar_core::lambda::DIRECT_UPLOAD_LIMIT {
            let bytes = tokio::fs::read(path).await.map_err(read_error)?;
            return Ok(FunctionCode::builder().zip_file(Blob::new(bytes)).build());
        }
        let deployment_bucket = request.deployment_bucket.as_ref().or(self
            .config
            .deployment
            .deployment_bucket
            .as_ref());
        let Some(bucket) = deployment_bucket else {
            return Err(AwsError::NeedsDeploymentBucket {
                function: name.clone(),
                size,
            });
        };
        if self.ensure_bucket(bucket).await? {
            created.push(Created::DeploymentBucket(bucket.clone()));
        }
        let key = scar_core::lambda::deployment_package_key(name);
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
    pub(crate) async fn ensure_bucket(&self, bucket: &str) -> Result<bool, AwsError> {
        let head = self.s3.head_bucket().bucket(bucket).send().await;
        if head
            .map_sdk_err("s3:HeadBucket", bucket)
            .optional()?
            .is_some()
        {
            return Ok(false);
        }
        let mut create = self.s3.create_bucket().bucket(bucket);
        if self.region != "us-east-1" {
            create = create.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(self.region.as_str()))
                    .build(),
            );
        }
        create.send().await.map_sdk_err("s3:CreateBucket", bucket)?;
        Ok(true)
    }

    /// An empty `folder/` object, as SCAR and the console make folders.
    pub(crate) async fn ensure_folder(&self, bucket: &str, folder: &str) -> Result<(), AwsError> {
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
            .map_sdk_err("s3:PutObject", format!("{bucket}/{key}"))?;
        Ok(())
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
                .map_sdk_err("lambda:GetFunctionConfiguration", name)?;
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

    /// Undoes `created` in reverse order; returns what could not be undone.
    async fn roll_back(&self, name: &str, created: Vec<Created>) -> Vec<Leftover> {
        let mut leftovers = Vec::new();
        for item in created.into_iter().rev() {
            if let Err(error) = self.undo(name, &item).await.optional() {
                let (kind, name) = item.resource(name);
                leftovers.push(Leftover { kind, name, error });
            }
        }
        leftovers
    }

    /// Removes one resource `init` created for function `name`.
    async fn undo(&self, name: &str, item: &Created) -> Result<(), AwsError> {
        match item {
            Created::Notification { bucket } => self.remove_notification(name, bucket).await,
            Created::Permission { statement_id } => self
                .lambda
                .remove_permission()
                .function_name(name)
                .statement_id(statement_id)
                .send()
                .await
                .map(drop)
                .map_sdk_err("lambda:RemovePermission", name),
            Created::Bucket(bucket) | Created::DeploymentBucket(bucket) => {
                self.delete_bucket(bucket).await
            }
            Created::DeploymentObject { bucket, key } => self.delete_object(bucket, key).await,
            Created::LogGroup => self.delete_log_group(name).await,
            Created::ComputeEnvironment => {
                self.tear_down(Switchable::ComputeEnvironment, name).await
            }
            Created::JobQueue => self.tear_down(Switchable::JobQueue, name).await,
            Created::JobDefinition(arn) => self.deregister_job_definition(arn).await,
            Created::Function => self.delete_lambda_function(name).await,
            Created::RestApi(api_id) => self.delete_rest_api(api_id).await,
        }
    }
}

impl Created {
    /// What it is and its name, for function `function`.
    fn resource(&self, function: &str) -> (ResourceKind, String) {
        let batch = || scar_core::contract::batch_resource_name(function);
        match self {
            Created::DeploymentBucket(bucket) => (ResourceKind::DeploymentBucket, bucket.clone()),
            Created::DeploymentObject { bucket, key } => {
                (ResourceKind::DeploymentObject, format!("{bucket}/{key}"))
            }
            Created::Function => (ResourceKind::Function, function.to_string()),
            Created::LogGroup => (ResourceKind::LogGroup, log_group(function)),
            Created::Bucket(bucket) => (ResourceKind::Bucket, bucket.clone()),
            Created::Permission { statement_id } => {
                (ResourceKind::Permission, statement_id.clone())
            }
            Created::Notification { bucket } => (ResourceKind::Notification, bucket.clone()),
            Created::ComputeEnvironment => (ResourceKind::ComputeEnvironment, batch()),
            Created::JobQueue => (ResourceKind::JobQueue, batch()),
            Created::JobDefinition(arn) => (ResourceKind::JobDefinition, arn.clone()),
            Created::RestApi(api_id) => (ResourceKind::RestApi, api_id.clone()),
        }
    }
}

/// The kind of a ready package.
fn package_kind(package: &Package) -> PackageKind {
    match package {
        Package::Zip { .. } => PackageKind::Zip,
        Package::Image { .. } => PackageKind::Image,
    }
}

impl AwsProvider {
    /// The version of the supervisor `spec`'s package carries: the configured one of its
    /// architecture; none for an image's own runtime client.
    fn supervisor_version(&self, spec: &FunctionSpec) -> Option<String> {
        if spec.runtime_client == scar_core::RuntimeClient::Image {
            return None;
        }
        let supervisor = self.config.packaging.supervisor(spec.architecture)?;
        scar_core::supervisor_version(supervisor).ok().flatten()
    }
}

/// The Lambda function's variables: the spec's (`variables`, from [`spec_codec::encode`])
/// and, for the Batch modes, where the supervisor submits jobs.
fn function_variables(
    spec: &FunctionSpec,
    mut variables: BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    if spec.execution_mode.uses_batch() {
        let resources = scar_core::contract::batch_resource_name(&spec.name);
        variables.insert(
            scar_core::contract::BATCH_JOB_QUEUE_VAR.into(),
            resources.clone(),
        );
        variables.insert(
            scar_core::contract::BATCH_JOB_DEFINITION_VAR.into(),
            resources,
        );
    }
    variables
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What CreateFunction is sent for `vpc` and `file_system` (moto keeps no
    /// FileSystemConfigs to read back, so the request is checked here).
    #[test]
    fn vpc_and_file_systems_in_the_request() {
        let mut spec = FunctionSpec::new("f", "busybox");
        assert!(vpc_config(&spec).is_none() && file_system_configs(&spec).is_none());
        spec.vpc = Some(scar_core::VpcSpec {
            subnet_ids: vec!["subnet-1a".into()],
            security_group_ids: vec!["sg-2b".into()],
        });
        let arn = "arn:aws:elasticfilesystem:us-east-1:123456789012:access-point/fsap-0a";
        spec.file_systems = vec![scar_core::FileSystemSpec {
            arn: arn.into(),
            local_mount_path: "/mnt/efs".into(),
        }];
        let vpc = vpc_config(&spec).unwrap();
        assert_eq!(vpc.subnet_ids(), ["subnet-1a"]);
        assert_eq!(vpc.security_group_ids(), ["sg-2b"]);
        let fs = file_system_configs(&spec).unwrap();
        assert_eq!((fs[0].arn(), fs[0].local_mount_path()), (arn, "/mnt/efs"));
    }

    /// `create_image: false` takes ECR images only, SCAR's `latest` tag added when none.
    #[test]
    fn reused_ecr_images() {
        let ecr = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/scar-f";
        assert!(is_ecr_image(ecr));
        assert!(!is_ecr_image("busybox") && !is_ecr_image("docker.io/library/busybox"));
        assert_eq!(reused_image_uri(ecr), format!("{ecr}:latest"));
        assert_eq!(reused_image_uri(&format!("{ecr}:v1")), format!("{ecr}:v1"));
        let pinned = format!("{ecr}@sha256:abc");
        assert_eq!(reused_image_uri(&pinned), pinned);
    }

    /// A caller can act on what a rollback left: each leftover has a kind and a name, and
    /// the error says both.
    #[test]
    fn leftovers_are_typed() {
        let leftover = |item: Created| {
            let (kind, name) = item.resource("f");
            Leftover {
                kind,
                name,
                error: AwsError::Input("denied".into()),
            }
        };
        let left = vec![
            leftover(Created::Permission {
                statement_id: "scar-s3-b".into(),
            }),
            leftover(Created::LogGroup),
            leftover(Created::JobQueue),
            leftover(Created::RestApi("a1b2c3d4e5".into())),
        ];
        assert_eq!(
            left.iter()
                .map(|l| (l.kind, l.name.as_str()))
                .collect::<Vec<_>>(),
            [
                (ResourceKind::Permission, "scar-s3-b"),
                (ResourceKind::LogGroup, "/aws/lambda/f"),
                (ResourceKind::JobQueue, "scar-f"),
                (ResourceKind::RestApi, "a1b2c3d4e5"),
            ]
        );
        let err = AwsError::RollbackIncomplete {
            source: Box::new(AwsError::Input("init failed".into())),
            leftovers: left,
        };
        assert_eq!(
            err.to_string(),
            "init failed (rolling back also failed, left behind: permission scar-s3-b: denied; log group /aws/lambda/f: denied; job queue scar-f: denied; REST API a1b2c3d4e5: denied)"
        );
    }
}
