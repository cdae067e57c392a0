//! Function specs: what a function is, validated to AWS Lambda's rules so that a function
//! that works on the local provider can be deployed unchanged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::spec_options::{Architecture, LogLevel, NetworkAccess};
use crate::SpecError;

/// Lambda's memory bounds, in MB.
pub const MEMORY_RANGE: std::ops::RangeInclusive<u32> = 128..=10240;
/// Lambda's timeout bounds, in seconds.
pub const TIMEOUT_RANGE: std::ops::RangeInclusive<u32> = 1..=900;

/// Environment names Lambda reserves for itself; a function may not set them.
const RESERVED_ENV: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

/// The parts of an image's configuration that decide how its command runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub entrypoint: Vec<String>,
    #[serde(default)]
    pub cmd: Vec<String>,
    /// `KEY=VALUE` entries, as in the OCI image config.
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
}

/// A function: an image plus the settings it runs with.
///
/// Built with [`FunctionSpec::new`] and its setters, so that a new field never breaks a
/// caller:
///
/// ```
/// use scar_core::{FunctionSpec, InputSpec, OutputSpec};
/// use scar_core::bucket::BucketPath;
///
/// let spec = FunctionSpec::new("thumbnails", "docker.io/library/alpine:3.20")
///     .with_memory_mb(1024)
///     .with_timeout_s(60)
///     .with_env("SIZE", "128x128")
///     .with_init_script("convert \"$INPUT_FILE_PATH\" -resize \"$SIZE\" \"$TMP_OUTPUT_DIR/out.png\"")
///     .with_input(InputSpec::at(&BucketPath::parse("photos/in").unwrap()))
///     .with_output(OutputSpec::at(&BucketPath::parse("photos/out").unwrap()));
/// assert!(spec.validate().is_ok());
/// assert_eq!(spec.timeout_threshold_s, 10);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredSpec")]
#[non_exhaustive]
pub struct FunctionSpec {
    pub name: String,
    /// Where the image came from, as the user named it (a reference or an archive path).
    pub image: String,
    pub memory_mb: u32,
    pub timeout_s: u32,
    /// Seconds kept back from the timeout to stop the script and upload its outputs.
    pub timeout_threshold_s: u32,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// The init script's text: what runs when an invocation brings no script or arguments.
    #[serde(default)]
    pub init_script: Option<String>,
    /// The function's own (Lambda) environment (`-le`, FDL `lambda.environment`): the
    /// supervisor's variables, held to Lambda's reserved names. [`FunctionSpec::environment`]
    /// is the container's (`-e`, FDL `container.environment`): the script's, any name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lambda_environment: BTreeMap<String, String>,
    /// The folders whose new objects trigger the function (`-es`, `-ib`, FDL `input:`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<InputSpec>,
    /// Where output files go, each with its own filters (`-es`, `-ob`, FDL `output:`); none:
    /// output files are not uploaded (SCAR 4's rule).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<OutputSpec>,
    /// Storage providers the inputs and outputs name (FDL `storage_providers:`), by
    /// `<kind>.<id>`. Their secrets are never printed: see [`FunctionSpec::redacted`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub storage_providers: BTreeMap<String, StorageProvider>,
    /// Where invocations run: Lambda, AWS Batch, or Lambda handing over to Batch at the
    /// threshold (SCAR's `execution_mode`).
    #[serde(default, skip_serializing_if = "ExecutionMode::is_lambda")]
    pub execution_mode: ExecutionMode,
    /// The AWS Batch job's resources (SCAR's `batch:` block), for the Batch modes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchSpec>,
    /// What runs as the function's Runtime API client: scar's supervisor, or the image's
    /// own (`--runtime-client image`). Stored specs of earlier versions call it `runtime`.
    #[serde(
        default,
        alias = "runtime",
        skip_serializing_if = "RuntimeClient::is_scar"
    )]
    pub runtime_client: RuntimeClient,
    /// Lambda's reserved concurrency (`--reserved-concurrency`): at most this many
    /// invocations at once; one more is throttled (`TooManyRequestsException`). `None`:
    /// limited only by the account's limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_concurrency: Option<u32>,
    /// The name of the REST API that gives the function an HTTP endpoint (SCAR's
    /// `api_gateway.name`, `-api`): an API Gateway REST API on AWS, a route of
    /// `scar serve`'s listener locally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_gateway: Option<String>,
    /// The VPC the function runs in (FDL `vpc`): Lambda's VpcConfig; no meaning locally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc: Option<VpcSpec>,
    /// File systems mounted read-write into every invocation (FDL `file_system`): EFS
    /// access points on AWS (Lambda's FileSystemConfigs), a host folder per access point
    /// locally; shared between invocations and functions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_systems: Vec<FileSystemSpec>,
    /// `container.create_image: false`: the image is one already prepared in ECR, used as
    /// it is (no pull, no build, no push) and never deleted by `rm`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub reuse_image: bool,
    /// `ecr.delete_image: false`: `rm` keeps the function's ECR repository and image.
    #[serde(default, skip_serializing_if = "is_false")]
    pub keep_image: bool,
    /// The instruction set it runs on (SCAR's `architectures`): its supervisor's and its
    /// image variant's.
    #[serde(default, skip_serializing_if = "Architecture::is_x86_64")]
    pub architecture: Architecture,
    /// The supervisor's verbosity (SCAR's `log_level`, `-ll`), its `LOG_LEVEL`; `None`:
    /// the supervisor's default (INFO).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<LogLevel>,
    /// A folder shipped with the function (SCAR's `extra_payload`, `-ep`), as it was named
    /// at `init`: its files are in `/var/task`, which `EXTRA_PAYLOAD` names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_payload: Option<String>,
    /// Network beyond the sandbox's own loopback (`--network`, FDL `lambda.network`):
    /// outbound, as Lambda gives it, or none (local provider; Lambda always gives it).
    #[serde(default, skip_serializing_if = "NetworkAccess::is_outbound")]
    pub network: NetworkAccess,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The VPC a function runs in, as SCAR's FDL spells it (`vpc: {SubnetIds: [...],
/// SecurityGroupIds: [...]}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VpcSpec {
    #[serde(rename = "SubnetIds", default)]
    pub subnet_ids: Vec<String>,
    #[serde(rename = "SecurityGroupIds", default)]
    pub security_group_ids: Vec<String>,
}

/// A file system mounted into a function, as SCAR's FDL spells it (`file_system: [{Arn,
/// LocalMountPath}]`): an EFS access point and where it appears (`/mnt/...`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileSystemSpec {
    #[serde(rename = "Arn")]
    pub arn: String,
    #[serde(rename = "LocalMountPath")]
    pub local_mount_path: String,
}

impl FileSystemSpec {
    /// The access point's id (`fsap-...`): the last part of its ARN
    /// (`arn:aws:elasticfilesystem:<region>:<account>:access-point/fsap-...`).
    pub fn access_point_id(&self) -> &str {
        self.arn.rsplit('/').next().unwrap_or_default()
    }

    /// Checks the ARN names an EFS access point and the mount path is one Lambda accepts
    /// (`/mnt/` and a name of letters, digits, `-`, `_` and `.`).
    pub fn validate(&self) -> Result<(), SpecError> {
        let bad = |why: String| Err(SpecError::FileSystem(why));
        let id = self.access_point_id();
        let id_ok = id.len() > 5
            && id.starts_with("fsap-")
            && id[5..].chars().all(|c| c.is_ascii_alphanumeric());
        if !self.arn.starts_with("arn:") || !self.arn.contains(":elasticfilesystem:") || !id_ok {
            return bad(format!(
                "Arn {:?} is not an EFS access point's ARN (arn:aws:elasticfilesystem:REGION:ACCOUNT:access-point/fsap-...)",
                self.arn
            ));
        }
        let name = self.local_mount_path.strip_prefix("/mnt/").unwrap_or("");
        let name_ok = !name.is_empty()
            && name.len() <= 160
            && name != "."
            && name != ".."
            && (name.chars()).all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !name_ok {
            return bad(format!(
                "LocalMountPath {:?}: Lambda mounts file systems at /mnt/NAME (NAME of letters, digits, '-', '_', '.')",
                self.local_mount_path
            ));
        }
        Ok(())
    }
}

impl VpcSpec {
    /// Checks it names subnets (`subnet-...`) and security groups (`sg-...`), at least
    /// one of each: a function in a VPC needs both.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.subnet_ids.is_empty() || self.security_group_ids.is_empty() {
            return Err(SpecError::Vpc(format!(
                "a function in a VPC needs subnets and security groups, and this one has {} subnets and {} security groups (SubnetIds, SecurityGroupIds)",
                self.subnet_ids.len(),
                self.security_group_ids.len()
            )));
        }
        let check = |ids: &[String], prefix: &str, key: &str| {
            for id in ids {
                let rest = id.strip_prefix(prefix).unwrap_or("");
                if rest.is_empty() || !rest.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return Err(SpecError::Vpc(format!(
                        "{key}: {id:?} is not an id of the form {prefix}..."
                    )));
                }
            }
            Ok(())
        };
        check(&self.subnet_ids, "subnet-", "SubnetIds")?;
        check(&self.security_group_ids, "sg-", "SecurityGroupIds")
    }
}

/// What runs as a function's Runtime API client in its sandbox (`--runtime-client`, FDL
/// `runtime_client`): not SCAR's `runtime` ([`LambdaRuntime`]), which picks the package.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuntimeClient {
    /// scar's supervisor: each invocation runs the script, the arguments or the image's
    /// command, and answers scar's response.
    #[default]
    Scar,
    /// The image's ENTRYPOINT + CMD, a Runtime API client of its own (AWS's base images,
    /// awslambdaric, aws-lambda-rust-runtime, ...), run as Lambda runs container images:
    /// with the image's Env and WorkingDir, `_HANDLER` from CMD; events and responses are
    /// the function's own JSON.
    Image,
}

impl RuntimeClient {
    /// The client as users name it (`--runtime-client`).
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeClient::Scar => "scar",
            RuntimeClient::Image => "image",
        }
    }

    pub fn is_scar(&self) -> bool {
        *self == RuntimeClient::Scar
    }
}

/// SCAR's Lambda runtime (`-rt`, FDL `lambda.runtime`, scar.cfg `aws.lambda.runtime`):
/// in SCAR it picks how the function is deployed, and so it does in scar, as the package.
/// Not scar's Runtime API client ([`RuntimeClient`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LambdaRuntime {
    /// `image`: the user's image with the supervisor in it, pushed to ECR (SCAR's image
    /// runtime): scar's image package.
    Image,
    /// `python3.x` (as given): SCAR's zip with udocker, run by its Python supervisor:
    /// scar's zip package. scar's supervisor is a static binary, so the version has no
    /// effect ([`LambdaRuntime::notice`]).
    Python(String),
}

impl LambdaRuntime {
    /// The package the runtime means.
    pub fn package(&self) -> crate::provider::PackageKind {
        match self {
            LambdaRuntime::Image => crate::provider::PackageKind::Image,
            LambdaRuntime::Python(_) => crate::provider::PackageKind::Zip,
        }
    }

    /// The runtime as SCAR spells it.
    pub fn as_str(&self) -> &str {
        match self {
            LambdaRuntime::Image => "image",
            LambdaRuntime::Python(version) => version,
        }
    }

    /// What to tell a user who asked for it: a Python version has no effect.
    pub fn notice(&self) -> Option<String> {
        match self {
            LambdaRuntime::Image => None,
            LambdaRuntime::Python(v) => Some(format!(
                "runtime `{v}`: scar's supervisor is a static binary, so the Python version has no effect; the function is a zip package, as SCAR deploys its Python runtimes"
            )),
        }
    }
}

impl std::fmt::Display for LambdaRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for LambdaRuntime {
    type Err = String;

    /// `image` or `python3.<minor>`; `scar` (scar's earlier `--runtime scar`) is refused
    /// with the flag it became.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let python = s
            .strip_prefix("python3.")
            .is_some_and(|minor| !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit()));
        match s {
            "image" => Ok(LambdaRuntime::Image),
            _ if python => Ok(LambdaRuntime::Python(s.into())),
            "scar" => Err(
                "`scar` is not one of SCAR's Lambda runtimes: scar's supervisor as the function's Runtime API client is `--runtime-client scar` (FDL `runtime_client: scar`), the default; `--runtime` (`-rt`, FDL `runtime`) takes SCAR's runtimes: `image` (the image package) or `python3.x` (the zip package)".into(),
            ),
            other => Err(format!(
                "unknown Lambda runtime `{other}`: SCAR's `image` (the image package) or `python3.x` (the zip package); the image's own Runtime API client is `--runtime-client image`"
            )),
        }
    }
}

/// Checks each file system and that no two share a mount path or an access point, nor
/// is there more than Lambda's one.
pub fn validate_file_systems(file_systems: &[FileSystemSpec]) -> Result<(), SpecError> {
    for fs in file_systems {
        fs.validate()?;
    }
    if file_systems.len() > MAX_FILE_SYSTEMS {
        return Err(SpecError::FileSystem(format!(
            "{} file systems: Lambda mounts at most {MAX_FILE_SYSTEMS} per function",
            file_systems.len()
        )));
    }
    Ok(())
}

/// Checks the name of a function's API Gateway (`-api`, FDL `api_gateway.name`): some
/// text, without control characters.
pub fn validate_api_gateway(name: &str) -> Result<(), SpecError> {
    if name.trim().is_empty() || name.chars().any(char::is_control) {
        return Err(SpecError::ApiGateway(name.to_string()));
    }
    Ok(())
}

/// File systems a Lambda function may mount (FileSystemConfigs holds one).
pub const MAX_FILE_SYSTEMS: usize = 1;

/// The threshold a default one becomes when it does not fit below `timeout_s`: a tenth of
/// the timeout, at least 1 s, and 0 for a 1 s timeout (the script keeps most of a short
/// timeout and the supervisor still has a moment to upload what it wrote).
pub fn fitting_threshold(timeout_s: u32) -> u32 {
    (timeout_s / 10).max(1).min(timeout_s.saturating_sub(1))
}

impl std::str::FromStr for RuntimeClient {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "scar" => Ok(RuntimeClient::Scar),
            "image" => Ok(RuntimeClient::Image),
            other => Err(format!(
                "unknown runtime client `{other}`: `scar` or `image`"
            )),
        }
    }
}

/// How a function's invocations run (SCAR's `execution_mode`, `-em`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExecutionMode {
    /// On Lambda, within its limits (15 minutes, 10 GB, no GPU).
    #[default]
    Lambda,
    /// On Lambda; an invocation that reaches the timeout threshold is handed over to
    /// Batch instead of failing.
    LambdaBatch,
    /// Every event is an AWS Batch job: Lambda's limits do not apply, the job's do.
    Batch,
}

impl ExecutionMode {
    /// The mode as SCAR names it.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionMode::Lambda => "lambda",
            ExecutionMode::LambdaBatch => "lambda-batch",
            ExecutionMode::Batch => "batch",
        }
    }

    /// The mode named `name`, as SCAR names them.
    pub fn parse(name: &str) -> Option<ExecutionMode> {
        [
            ExecutionMode::Lambda,
            ExecutionMode::LambdaBatch,
            ExecutionMode::Batch,
        ]
        .into_iter()
        .find(|m| m.as_str() == name)
    }

    pub fn is_lambda(&self) -> bool {
        *self == ExecutionMode::Lambda
    }

    /// Whether some invocations run as Batch jobs.
    pub fn uses_batch(self) -> bool {
        self != ExecutionMode::Lambda
    }
}

impl std::fmt::Display for ExecutionMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The longest a Batch job may run here, in seconds (14 days: AWS Batch's own cap on a
/// job's attempt duration is far above Lambda's 900 s).
pub const BATCH_TIMEOUT_MAX: u32 = 14 * 24 * 3600;

/// An AWS Batch job's resources and where it runs (SCAR's `batch:` block).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchSpec {
    /// vCPUs reserved for the job's container.
    #[serde(default = "one_vcpu")]
    pub vcpus: u32,
    /// The container's memory, MiB.
    #[serde(default = "batch_memory")]
    pub memory_mb: u32,
    /// Whether the job gets a GPU.
    #[serde(default)]
    pub enable_gpu: bool,
    /// The role AWS Batch acts with (AWS's service-linked role when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_role: Option<String>,
    /// Variables of the job's container, over the function's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub compute: ComputeResources,
}

fn one_vcpu() -> u32 {
    1
}

fn batch_memory() -> u32 {
    1024
}

impl Default for BatchSpec {
    fn default() -> Self {
        BatchSpec {
            vcpus: one_vcpu(),
            memory_mb: batch_memory(),
            enable_gpu: false,
            service_role: None,
            environment: BTreeMap::new(),
            compute: ComputeResources::default(),
        }
    }
}

/// The compute environment a Batch job runs in (SCAR's `compute_resources`); a key left
/// out takes its [`Default`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ComputeResources {
    /// `EC2`, `SPOT`, `FARGATE` or `FARGATE_SPOT`.
    pub kind: String,
    pub desired_vcpus: u32,
    pub min_vcpus: u32,
    pub max_vcpus: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subnets: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_group_ids: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub instance_types: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_template_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_role: Option<String>,
}

impl Default for ComputeResources {
    fn default() -> Self {
        ComputeResources {
            kind: "EC2".into(),
            desired_vcpus: 0,
            min_vcpus: 0,
            max_vcpus: 2,
            subnets: Vec::new(),
            security_group_ids: Vec::new(),
            instance_types: Vec::new(),
            launch_template_name: None,
            instance_role: None,
        }
    }
}

/// The compute environment kinds AWS Batch has.
pub const COMPUTE_KINDS: [&str; 4] = ["EC2", "SPOT", "FARGATE", "FARGATE_SPOT"];

/// A [`FunctionSpec`] as stored, also by scar before it had input and output folders
/// (`input_bucket`, one `output`): such a function keeps its `input/` and `output/`.
#[derive(Deserialize)]
struct StoredSpec {
    name: String,
    image: String,
    memory_mb: u32,
    timeout_s: u32,
    timeout_threshold_s: u32,
    #[serde(default)]
    description: String,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    init_script: Option<String>,
    #[serde(default)]
    lambda_environment: BTreeMap<String, String>,
    #[serde(default)]
    inputs: Vec<InputSpec>,
    #[serde(default)]
    outputs: Vec<OutputSpec>,
    #[serde(default)]
    storage_providers: BTreeMap<String, StorageProvider>,
    #[serde(default)]
    input_bucket: Option<String>,
    #[serde(default)]
    output: Option<OutputSpec>,
    #[serde(default)]
    execution_mode: ExecutionMode,
    #[serde(default)]
    batch: Option<BatchSpec>,
    #[serde(default, alias = "runtime")]
    runtime_client: RuntimeClient,
    #[serde(default)]
    vpc: Option<VpcSpec>,
    #[serde(default)]
    file_systems: Vec<FileSystemSpec>,
    #[serde(default)]
    reuse_image: bool,
    #[serde(default)]
    keep_image: bool,
    reserved_concurrency: Option<u32>,
    #[serde(default)]
    architecture: Architecture,
    #[serde(default)]
    log_level: Option<LogLevel>,
    api_gateway: Option<String>,
    #[serde(default)]
    extra_payload: Option<String>,
    #[serde(default)]
    network: NetworkAccess,
}

impl From<StoredSpec> for FunctionSpec {
    fn from(s: StoredSpec) -> FunctionSpec {
        let mut inputs = s.inputs;
        let mut outputs = s.outputs;
        if let Some(bucket) = s.input_bucket.filter(|_| inputs.is_empty()) {
            let at = |folder: &str| crate::bucket::BucketPath {
                bucket: bucket.clone(),
                folder: folder.into(),
            };
            inputs.push(InputSpec::at(&at(crate::bucket::INPUT_FOLDER)));
            if outputs.is_empty() && s.output.is_none() {
                outputs.push(OutputSpec::at(&at(crate::bucket::OUTPUT_FOLDER)));
            }
        }
        if outputs.is_empty() {
            outputs.extend(s.output);
        }
        FunctionSpec {
            name: s.name,
            image: s.image,
            memory_mb: s.memory_mb,
            timeout_s: s.timeout_s,
            timeout_threshold_s: s.timeout_threshold_s,
            description: s.description,
            environment: s.environment,
            init_script: s.init_script,
            lambda_environment: s.lambda_environment,
            inputs,
            outputs,
            storage_providers: s.storage_providers,
            execution_mode: s.execution_mode,
            runtime_client: s.runtime_client,
            batch: s.batch,
            vpc: s.vpc,
            file_systems: s.file_systems,
            reuse_image: s.reuse_image,
            keep_image: s.keep_image,
            reserved_concurrency: s.reserved_concurrency,
            architecture: s.architecture,
            log_level: s.log_level,
            api_gateway: s.api_gateway,
            extra_payload: s.extra_payload,
            network: s.network,
        }
    }
}

/// How a MinIO server's storage provider is named: `minio.<id>`.
pub const MINIO_PREFIX: &str = "minio.";

/// A folder whose new objects trigger a function: `<bucket>/<folder>/...` (every key of
/// the bucket when the folder is empty), in the function's own storage unless `storage`
/// names a storage provider (`minio.<id>`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    pub bucket: String,
    /// No leading or trailing `/`; empty for the whole bucket.
    #[serde(default)]
    pub folder: String,
}

impl InputSpec {
    /// An input folder of the function's own storage.
    pub fn at(path: &crate::bucket::BucketPath) -> InputSpec {
        InputSpec {
            storage: None,
            bucket: path.bucket.clone(),
            folder: path.folder.clone(),
        }
    }

    /// Whether `key` of `bucket` (in the function's own storage) lies in this folder.
    pub fn holds(&self, bucket: &str, key: &str) -> bool {
        self.storage.is_none() && bucket == self.bucket && in_folder(&self.folder, key)
    }

    /// Whether `key` of `bucket` in the storage provider `storage` (`minio.<id>`,
    /// `s3.<id>`) lies in this folder.
    pub fn holds_in(&self, storage: &str, bucket: &str, key: &str) -> bool {
        self.storage.as_deref() == Some(storage)
            && bucket == self.bucket
            && in_folder(&self.folder, key)
    }

    /// Whether this folder is on a MinIO server (`minio.<id>`), which cannot notify the
    /// function of new objects: only the launcher runs it over them.
    pub fn is_minio(&self) -> bool {
        self.storage
            .as_deref()
            .is_some_and(|s| s.starts_with(MINIO_PREFIX))
    }

    /// The key prefix S3's notification filters on: `<folder>/`, or nothing.
    pub fn prefix(&self) -> String {
        crate::bucket::folder_prefix(&self.folder)
    }

    /// Whether the two folders share objects (one holds the other): S3 refuses two
    /// notifications on overlapping prefixes, and an object would trigger both.
    pub fn overlaps(&self, other: &InputSpec) -> bool {
        self.storage == other.storage
            && self.bucket == other.bucket
            && (nested(&self.folder, &other.folder) || nested(&other.folder, &self.folder))
    }

    /// `bucket/folder`, as users write it.
    pub fn path(&self) -> crate::bucket::BucketPath {
        crate::bucket::BucketPath {
            bucket: self.bucket.clone(),
            folder: self.folder.clone(),
        }
    }
}

impl std::fmt::Display for InputSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(storage) = &self.storage {
            write!(f, "{storage}:")?;
        }
        write!(f, "{}", self.path())
    }
}

/// Whether `key` lies in `folder` (every key lies in the empty folder).
fn in_folder(folder: &str, key: &str) -> bool {
    folder.is_empty()
        || key
            .strip_prefix(folder)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Whether folder `outer` holds folder `inner` (or is it).
fn nested(outer: &str, inner: &str) -> bool {
    outer.is_empty() || outer == inner || in_folder(outer, inner)
}

/// A storage provider of SCAR's `storage_providers:` section: an S3 account of its own
/// (`s3.<id>`) or an S3-compatible server (`minio.<id>`).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageProvider {
    /// `http(s)://host[:port]` (MinIO); none: AWS S3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Whether TLS certificates are checked (MinIO's `verify`).
    #[serde(default = "yes")]
    pub verify: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,
}

fn yes() -> bool {
    true
}

/// What replaces a secret wherever a spec is shown.
pub const REDACTED: &str = "(redacted)";

impl std::fmt::Debug for StorageProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never printed: secrets stay out of logs, `--json` and error messages.
        f.debug_struct("StorageProvider")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("verify", &self.verify)
            .finish_non_exhaustive()
    }
}

/// Where a function's output files are uploaded: `<bucket>/<folder>/<relative path>`, only
/// those whose file name starts with one of `prefix` and ends with one of `suffix` (an
/// empty list accepts all), as SCAR's FDL `output:` entries say; in the function's own
/// storage unless `storage` names a storage provider (`minio.<id>`, `s3.<id>`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    pub bucket: String,
    /// No leading or trailing `/`; empty for the bucket's top.
    #[serde(default)]
    pub folder: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefix: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suffix: Vec<String>,
}

impl OutputSpec {
    /// An output folder of the function's own storage, taking every file.
    pub fn at(path: &crate::bucket::BucketPath) -> OutputSpec {
        OutputSpec {
            bucket: path.bucket.clone(),
            folder: path.folder.clone(),
            ..OutputSpec::default()
        }
    }

    /// Whether the output file at `relative` (under the output directory) is uploaded.
    pub fn accepts(&self, relative: &str) -> bool {
        let name = relative.rsplit('/').next().unwrap_or(relative);
        (self.prefix.is_empty() || self.prefix.iter().any(|p| name.starts_with(p.as_str())))
            && (self.suffix.is_empty() || self.suffix.iter().any(|s| name.ends_with(s.as_str())))
    }

    /// Whether `key` of `bucket` (in the function's own storage) lies where this location
    /// writes (every key of the bucket when the folder is its top).
    pub fn holds(&self, bucket: &str, key: &str) -> bool {
        self.storage.is_none() && bucket == self.bucket && in_folder(&self.folder, key)
    }

    /// The object key of the output file at `relative`.
    pub fn key(&self, relative: &str) -> String {
        crate::bucket::folder_key(&self.folder, relative)
    }
}

impl std::fmt::Display for OutputSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(storage) = &self.storage {
            write!(f, "{storage}:")?;
        }
        f.write_str(&self.bucket)?;
        if !self.folder.is_empty() {
            write!(f, "/{}", self.folder)?;
        }
        Ok(())
    }
}

impl FunctionSpec {
    /// A function `name` of `image` (a registry reference, or the path of an archive or
    /// OCI layout) with the defaults `scar init` gives: 512 MB, a 300 s timeout, a 10 s
    /// threshold, no variables, no script, no folders, Lambda's execution mode and scar's
    /// supervisor as its runtime.
    pub fn new(name: impl Into<String>, image: impl Into<String>) -> FunctionSpec {
        FunctionSpec {
            name: name.into(),
            image: image.into(),
            memory_mb: crate::config::DEFAULT_MEMORY_MB,
            timeout_s: crate::config::DEFAULT_TIMEOUT_S,
            timeout_threshold_s: crate::config::DEFAULT_THRESHOLD_S,
            description: String::new(),
            environment: BTreeMap::new(),
            init_script: None,
            lambda_environment: BTreeMap::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            storage_providers: BTreeMap::new(),
            execution_mode: ExecutionMode::default(),
            batch: None,
            runtime_client: RuntimeClient::default(),
            vpc: None,
            file_systems: Vec::new(),
            reuse_image: false,
            keep_image: false,
            reserved_concurrency: None,
            architecture: Architecture::default(),
            log_level: None,
            api_gateway: None,
            extra_payload: None,
            network: NetworkAccess::default(),
        }
    }

    /// With `memory_mb` of memory (128..=10240).
    pub fn with_memory_mb(mut self, memory_mb: u32) -> Self {
        self.memory_mb = memory_mb;
        self
    }

    /// With a timeout of `timeout_s` (1..=900); a default threshold that no longer fits
    /// below it becomes a tenth of it, as `scar init` makes it.
    pub fn with_timeout_s(mut self, timeout_s: u32) -> Self {
        self.timeout_s = timeout_s;
        if self.timeout_threshold_s >= timeout_s {
            self.timeout_threshold_s = fitting_threshold(timeout_s);
        }
        self
    }

    /// With the script stopped `threshold_s` before the timeout.
    pub fn with_timeout_threshold_s(mut self, threshold_s: u32) -> Self {
        self.timeout_threshold_s = threshold_s;
        self
    }

    /// With a description.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// With a variable of the container (the script's).
    pub fn with_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.environment.insert(name.into(), value.into());
        self
    }

    /// With a variable of the function itself (Lambda's environment).
    pub fn with_lambda_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.lambda_environment.insert(name.into(), value.into());
        self
    }

    /// With an init script: what runs when an invocation brings no script or arguments.
    pub fn with_init_script(mut self, script: impl Into<String>) -> Self {
        self.init_script = Some(script.into());
        self
    }

    /// With one more input folder.
    pub fn with_input(mut self, input: InputSpec) -> Self {
        self.inputs.push(input);
        self
    }

    /// With one more output location.
    pub fn with_output(mut self, output: OutputSpec) -> Self {
        self.outputs.push(output);
        self
    }

    /// With a storage provider (`minio.<id>`, `s3.<id>`) its folders may name.
    pub fn with_storage_provider(
        mut self,
        id: impl Into<String>,
        provider: StorageProvider,
    ) -> Self {
        self.storage_providers.insert(id.into(), provider);
        self
    }

    /// Running in `mode`; a Batch mode gets [`BatchSpec::default`] unless it has one.
    pub fn with_execution_mode(mut self, mode: ExecutionMode) -> Self {
        self.execution_mode = mode;
        if mode.uses_batch() && self.batch.is_none() {
            self.batch = Some(BatchSpec::default());
        }
        self
    }

    /// With the AWS Batch job's resources.
    pub fn with_batch(mut self, batch: BatchSpec) -> Self {
        self.batch = Some(batch);
        self
    }

    /// With `client` as its Runtime API client.
    pub fn with_runtime_client(mut self, client: RuntimeClient) -> Self {
        self.runtime_client = client;
        self
    }

    /// With at most `reserved` invocations at once (Lambda's reserved concurrency).
    pub fn with_reserved_concurrency(mut self, reserved: Option<u32>) -> Self {
        self.reserved_concurrency = reserved;
        self
    }

    /// Running on `architecture` (SCAR's `architectures`).
    pub fn with_architecture(mut self, architecture: Architecture) -> Self {
        self.architecture = architecture;
        self
    }

    /// With its supervisor at `level` (SCAR's `log_level`); `None`: the default, INFO.
    pub fn with_log_level(mut self, level: Option<LogLevel>) -> Self {
        self.log_level = level;
        self
    }

    /// With `network` beyond its sandbox's loopback (`--network`).
    pub fn with_network(mut self, network: NetworkAccess) -> Self {
        self.network = network;
        self
    }

    /// With an API Gateway named `name` (SCAR's `-api`): on AWS, a REST API that takes
    /// HTTP requests to the function.
    pub fn with_api_gateway(mut self, name: impl Into<String>) -> Self {
        self.api_gateway = Some(name.into());
        self
    }

    /// With the folder `dir` shipped with it (SCAR's `-ep`): its files in `/var/task`.
    pub fn with_extra_payload(mut self, dir: impl Into<String>) -> Self {
        self.extra_payload = Some(dir.into());
        self
    }

    /// Checks every field against Lambda's rules.
    pub fn validate(&self) -> Result<(), SpecError> {
        validate_name(&self.name)?;
        if !MEMORY_RANGE.contains(&self.memory_mb) {
            return Err(SpecError::Memory(self.memory_mb));
        }
        let timeouts = match self.execution_mode {
            ExecutionMode::Batch => 1..=BATCH_TIMEOUT_MAX,
            _ => TIMEOUT_RANGE,
        };
        if !timeouts.contains(&self.timeout_s) {
            return Err(SpecError::Timeout(self.timeout_s, *timeouts.end()));
        }
        if let Some(batch) = &self.batch {
            if batch.vcpus == 0 || batch.memory_mb < 4 {
                return Err(SpecError::Batch(format!(
                    "a job needs at least 1 vCPU and 4 MiB (it asks for {} vCPUs and {} MiB)",
                    batch.vcpus, batch.memory_mb
                )));
            }
            if !COMPUTE_KINDS.contains(&batch.compute.kind.as_str()) {
                return Err(SpecError::Batch(format!(
                    "compute_resources.type `{}`: use one of {}",
                    batch.compute.kind,
                    COMPUTE_KINDS.join(", ")
                )));
            }
            let c = &batch.compute;
            if c.min_vcpus > c.max_vcpus || c.desired_vcpus > c.max_vcpus {
                return Err(SpecError::Batch(format!(
                    "compute_resources: min_v_cpus ({}) and desired_v_cpus ({}) may not exceed max_v_cpus ({})",
                    c.min_vcpus, c.desired_vcpus, c.max_vcpus
                )));
            }
        }
        // An extra payload too: the image is shipped as it is, and Lambda's base images
        // keep their own handler code in /var/task.
        if self.runtime_client == RuntimeClient::Image
            && (self.execution_mode.uses_batch()
                || self.init_script.is_some()
                || self.extra_payload.is_some())
        {
            return Err(SpecError::ImageRuntimeClient(
                if self.init_script.is_some() {
                    "an init script"
                } else if self.extra_payload.is_some() {
                    "an extra payload (`-ep`)"
                } else {
                    "a Batch execution mode"
                },
            ));
        }
        if let Some(vpc) = &self.vpc {
            vpc.validate()?;
        }
        validate_file_systems(&self.file_systems)?;
        if let Some(api) = &self.api_gateway {
            validate_api_gateway(api)?;
        }
        if self.timeout_threshold_s >= self.timeout_s {
            return Err(SpecError::Threshold {
                threshold: self.timeout_threshold_s,
                timeout: self.timeout_s,
            });
        }
        for key in self.environment.keys() {
            validate_container_env_name(key)?;
        }
        for key in self.lambda_environment.keys() {
            validate_env_name(key)?;
        }
        let storage_known = |storage: &Option<String>| match storage {
            Some(id) if !self.storage_providers.contains_key(id) => {
                Err(SpecError::UnknownStorage(id.clone()))
            }
            _ => Ok(()),
        };
        for (i, input) in self.inputs.iter().enumerate() {
            crate::bucket::validate_bucket(&input.bucket).map_err(SpecError::Input)?;
            storage_known(&input.storage)?;
            if let Some(other) = self.inputs[..i].iter().find(|o| o.overlaps(input)) {
                return Err(SpecError::InputsOverlap(
                    other.to_string(),
                    input.to_string(),
                ));
            }
        }
        for output in &self.outputs {
            crate::bucket::validate_bucket(&output.bucket).map_err(SpecError::Output)?;
            storage_known(&output.storage)?;
            // An output folder inside an input folder is fine (its objects are told apart
            // by `is_own_output`); one that holds an input folder leaves nothing to tell
            // them by.
            let held = self.inputs.iter().find(|input| {
                input.storage == output.storage
                    && input.bucket == output.bucket
                    && nested(&output.folder, &input.folder)
            });
            if let Some(input) = held {
                return Err(SpecError::OutputHoldsInput(
                    output.to_string(),
                    input.to_string(),
                ));
            }
        }
        Ok(())
    }

    /// Whether a new object `key` of `bucket` (in the function's own storage) triggers the
    /// function: it lies in an input folder and is not one of the function's own outputs.
    pub fn is_triggered_by(&self, bucket: &str, key: &str) -> bool {
        self.inputs.iter().any(|i| i.holds(bucket, key)) && !self.is_own_output(bucket, key)
    }

    /// Whether `key` of `bucket` is one of the function's own outputs (an output folder
    /// inside an input folder): such an object never triggers the function, or every run
    /// would start another.
    pub fn is_own_output(&self, bucket: &str, key: &str) -> bool {
        self.outputs.iter().any(|o| o.holds(bucket, key))
    }

    /// The input folder of the function's own storage in `bucket`, if any.
    pub fn input_in(&self, bucket: &str) -> Option<&InputSpec> {
        self.inputs
            .iter()
            .find(|i| i.storage.is_none() && i.bucket == bucket)
    }

    /// Whether the launcher runs the function for object `key` of `bucket` on storage
    /// provider `storage`: it lies in an input folder there and is not one of the
    /// function's own outputs (an output folder of the same provider inside it).
    pub fn is_input_of(&self, storage: &str, bucket: &str, key: &str) -> bool {
        self.inputs.iter().any(|i| i.holds_in(storage, bucket, key))
            && !self.outputs.iter().any(|o| {
                o.storage.as_deref() == Some(storage)
                    && o.bucket == bucket
                    && in_folder(&o.folder, key)
            })
    }

    /// The input folder on a MinIO server in `bucket`, if any (when the function has no
    /// input folder of its own storage there: [`Self::input_in`] comes first).
    pub fn minio_input_in(&self, bucket: &str) -> Option<&InputSpec> {
        self.inputs
            .iter()
            .find(|i| i.is_minio() && i.bucket == bucket)
    }

    /// What `init` should tell the user about the function's inputs: a MinIO folder has no
    /// automatic trigger (MinIO cannot notify Lambda, nor the local provider), so only the
    /// launcher runs the function over its objects. One line per such folder.
    pub fn input_notices(&self) -> Vec<String> {
        self.inputs
            .iter()
            .filter(|i| i.is_minio())
            .map(|i| {
                format!(
                    "{i}: MinIO cannot trigger '{name}': run it over the folder's objects with `scar run -n {name} -es {bucket}`",
                    name = self.name,
                    bucket = i.bucket
                )
            })
            .collect()
    }

    /// The buckets of the function's own storage it reads and writes: its input buckets,
    /// then its output buckets, each once.
    pub fn buckets(&self) -> Vec<String> {
        let mut buckets: Vec<String> = Vec::new();
        let own = self
            .inputs
            .iter()
            .filter(|i| i.storage.is_none())
            .map(|i| &i.bucket)
            .chain(
                self.outputs
                    .iter()
                    .filter(|o| o.storage.is_none())
                    .map(|o| &o.bucket),
            );
        for bucket in own {
            if !buckets.contains(bucket) {
                buckets.push(bucket.clone());
            }
        }
        buckets
    }

    /// The seconds the script may run: the timeout minus the threshold.
    pub fn script_budget_s(&self) -> u32 {
        self.timeout_s.saturating_sub(self.timeout_threshold_s)
    }

    /// The spec as it may be shown (`ls --json`): storage providers' keys and the values
    /// of variables whose names say they are secrets are replaced by [`REDACTED`].
    pub fn redacted(&self) -> FunctionSpec {
        let mut spec = self.clone();
        for provider in spec.storage_providers.values_mut() {
            for secret in [&mut provider.access_key, &mut provider.secret_key] {
                if secret.is_some() {
                    *secret = Some(REDACTED.into());
                }
            }
        }
        for env in [&mut spec.environment, &mut spec.lambda_environment] {
            for (name, value) in env.iter_mut() {
                if is_secret_name(name) {
                    *value = REDACTED.into();
                }
            }
        }
        spec
    }
}

/// Whether what `from` uploads can trigger `to`: an output folder of `from` and an input
/// folder of `to` (in the functions' own storage) share objects. A function's own outputs
/// never trigger it, so a function is never its own next step.
pub fn triggers(from: &FunctionSpec, to: &FunctionSpec) -> bool {
    from.name != to.name
        && from
            .outputs
            .iter()
            .filter(|o| o.storage.is_none())
            .any(|o| {
                let written = InputSpec {
                    storage: None,
                    bucket: o.bucket.clone(),
                    folder: o.folder.clone(),
                };
                to.inputs.iter().any(|i| i.overlaps(&written))
            })
}

/// The cycles the functions form through their folders (each as the names along it, the
/// first repeated at the end): a chain that follows one goes on until AWS Lambda's
/// recursive loop detection stops it. Each cycle is reported once.
pub fn chain_cycles(functions: &[FunctionSpec]) -> Vec<Vec<String>> {
    let n = functions.len();
    let next: Vec<Vec<usize>> = (0..n)
        .map(|a| {
            (0..n)
                .filter(|&b| triggers(&functions[a], &functions[b]))
                .collect()
        })
        .collect();
    let mut cycles: Vec<Vec<String>> = Vec::new();
    let mut seen: std::collections::BTreeSet<Vec<usize>> = std::collections::BTreeSet::new();
    // Depth-first from each function, keeping cycles that return to it through functions
    // after it only (so each cycle is found from its first member once).
    fn walk(
        start: usize,
        at: usize,
        path: &mut Vec<usize>,
        next: &[Vec<usize>],
        found: &mut Vec<Vec<usize>>,
    ) {
        for &b in &next[at] {
            if b == start {
                found.push(path.clone());
            } else if b > start && !path.contains(&b) && path.len() < next.len() {
                path.push(b);
                walk(start, b, path, next, found);
                path.pop();
            }
        }
    }
    for start in 0..n {
        let mut found = Vec::new();
        walk(start, start, &mut vec![start], &next, &mut found);
        for cycle in found {
            if seen.insert(cycle.clone()) {
                let mut names: Vec<String> =
                    cycle.iter().map(|&i| functions[i].name.clone()).collect();
                names.push(functions[start].name.clone());
                cycles.push(names);
            }
        }
    }
    cycles
}

/// Whether a variable's name says its value is a secret (`AWS_SECRET_ACCESS_KEY`,
/// `API_TOKEN`, `DB_PASSWORD`, `AWS_ACCESS_KEY_ID`, ...).
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    [
        "SECRET",
        "TOKEN",
        "PASSWORD",
        "PASSWD",
        "ACCESS_KEY",
        "CREDENTIAL",
        "PRIVATE",
    ]
    .iter()
    .any(|w| upper.contains(w))
}

/// A container variable's name: what a shell accepts (a letter or `_` first, then letters,
/// digits and `_`). Any such name, `AWS_ACCESS_KEY_ID` included: the container's
/// variables are the script's, not Lambda's.
pub fn validate_container_env_name(name: &str) -> Result<(), SpecError> {
    env_name_chars(name, true)
}

/// The characters of a variable name: a letter (or `_`, when `underscore_first`) first,
/// then letters, digits and `_`.
fn env_name_chars(name: &str, underscore_first: bool) -> Result<(), SpecError> {
    let err = |why| {
        Err(SpecError::EnvName {
            name: name.to_string(),
            why,
        })
    };
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || (underscore_first && c == '_') => {}
        Some(_) if underscore_first => return err("it must start with a letter or '_'"),
        Some(_) => return err("it must start with a letter"),
        None => return err("it is empty"),
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return err("only letters, digits and '_' are allowed");
    }
    Ok(())
}

/// Lambda function names: 1 to 64 of `[A-Za-z0-9_-]`.
pub fn validate_name(name: &str) -> Result<(), SpecError> {
    let err = |why| {
        Err(SpecError::Name {
            name: name.to_string(),
            why,
        })
    };
    if name.is_empty() {
        return err("it is empty");
    }
    if name.len() > 64 {
        return err("it is longer than 64 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return err("it has a character other than letters, digits, '-' and '_'");
    }
    Ok(())
}

/// Environment variable names: a letter first, then letters, digits and `_`; not reserved
/// by Lambda.
pub fn validate_env_name(name: &str) -> Result<(), SpecError> {
    env_name_chars(name, false)?;
    if RESERVED_ENV.contains(&name) || name.starts_with("AWS_LAMBDA_") {
        return Err(SpecError::EnvName {
            name: name.to_string(),
            why: "the name is reserved by AWS Lambda",
        });
    }
    Ok(())
}

/// Parses `KEY=VALUE` assignments of Lambda variables (`-le`), validating each name.
pub fn parse_env_assignments<S: AsRef<str>>(
    items: &[S],
) -> Result<BTreeMap<String, String>, SpecError> {
    parse_assignments(items, validate_env_name)
}

/// Parses `KEY=VALUE` assignments of container variables (`-e`), validating each name.
pub fn parse_container_env_assignments<S: AsRef<str>>(
    items: &[S],
) -> Result<BTreeMap<String, String>, SpecError> {
    parse_assignments(items, validate_container_env_name)
}

fn parse_assignments<S: AsRef<str>>(
    items: &[S],
    validate: fn(&str) -> Result<(), SpecError>,
) -> Result<BTreeMap<String, String>, SpecError> {
    let mut env = BTreeMap::new();
    for item in items {
        let item = item.as_ref();
        let Some((key, value)) = item.split_once('=') else {
            return Err(SpecError::EnvAssignment(item.to_string()));
        };
        validate(key)?;
        env.insert(key.to_string(), value.to_string());
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> FunctionSpec {
        FunctionSpec::new("fn-1_a", "busybox")
    }

    #[test]
    fn valid_spec_passes() {
        assert_eq!(spec().validate(), Ok(()));
        assert_eq!(spec().script_budget_s(), 290);
    }

    #[test]
    fn names_follow_lambda_rules() {
        for bad in ["", "a b", "x/y", "ñ", &"a".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate_name(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn bounds_are_enforced() {
        let mut s = spec();
        s.memory_mb = 127;
        assert_eq!(s.validate(), Err(SpecError::Memory(127)));
        s.memory_mb = 10241;
        assert_eq!(s.validate(), Err(SpecError::Memory(10241)));
        s.memory_mb = 10240;
        s.timeout_s = 901;
        assert_eq!(s.validate(), Err(SpecError::Timeout(901, 900)));
        s.timeout_s = 0;
        assert_eq!(s.validate(), Err(SpecError::Timeout(0, 900)));
        s.timeout_s = 10;
        assert!(matches!(s.validate(), Err(SpecError::Threshold { .. })));
    }

    #[test]
    fn outputs_inside_input_are_told_apart_and_outputs_over_it_refused() {
        let mut s = spec();
        let path = |p: &str| crate::bucket::BucketPath::parse(p).unwrap();
        s.inputs = vec![InputSpec::at(&path("photos/input"))];
        s.outputs = vec![OutputSpec::at(&path("photos/input/results"))];
        assert_eq!(s.validate(), Ok(()));
        assert!(s.is_own_output("photos", "input/results/a.png"));
        assert!(s.is_own_output("photos", "input/results/deep/a.png"));
        assert!(!s.is_own_output("photos", "input/a.png"));
        assert!(s.is_triggered_by("photos", "input/a.png"));
        assert!(!s.is_triggered_by("photos", "input/results/a.png"));
        assert!(!s.is_triggered_by("photos", "inputs/a.png"));
        assert!(!s.is_triggered_by("other", "input/a.png"));
        assert!(
            !s.is_own_output("photos", "input/results.png"),
            "a sibling, not inside"
        );
        assert!(!s.is_own_output("photos", "input/resultsx/a.png"));
        for folder in ["photos", "photos/input"] {
            s.outputs = vec![OutputSpec::at(&path(folder))];
            match s.validate() {
                Err(e @ SpecError::OutputHoldsInput(..)) => {
                    assert!(e.to_string().contains("photos/input/results"), "{e}")
                }
                other => panic!("{folder:?}: {other:?}"),
            }
        }
        // Another bucket, or no input: nothing overlaps.
        s.outputs = vec![OutputSpec::at(&path("elsewhere"))];
        assert_eq!(s.validate(), Ok(()));
        assert!(!s.is_own_output("photos", "input/a.png"));
        s.inputs.clear();
        s.outputs = vec![OutputSpec::at(&path("photos/input"))];
        assert_eq!(s.validate(), Ok(()));
        assert!(!s.is_triggered_by("photos", "input/a.png"));
    }

    #[test]
    fn whole_buckets_and_overlapping_inputs() {
        let input = |p: &str| InputSpec::at(&crate::bucket::BucketPath::parse(p).unwrap());
        let whole = input("bkt");
        assert!(whole.holds("bkt", "a/b.txt") && whole.prefix().is_empty());
        assert_eq!(input("bkt/a/b").prefix(), "a/b/");
        assert!(whole.overlaps(&input("bkt/x")));
        assert!(input("bkt/a").overlaps(&input("bkt/a/b")));
        assert!(input("bkt/a/b").overlaps(&input("bkt/a")));
        assert!(!input("bkt/a").overlaps(&input("bkt/ab")));
        assert!(!input("bkt/a").overlaps(&input("other/a")));
        let mut s = spec();
        s.inputs = vec![input("bkt/a"), input("bkt/a/b")];
        assert!(matches!(s.validate(), Err(SpecError::InputsOverlap(..))));
        s.inputs = vec![input("bkt/a")];
        s.outputs = vec![OutputSpec {
            storage: Some("minio.m".into()),
            ..OutputSpec::at(&crate::bucket::BucketPath::parse("bkt/o").unwrap())
        }];
        assert_eq!(
            s.validate(),
            Err(SpecError::UnknownStorage("minio.m".into()))
        );
        s.storage_providers
            .insert("minio.m".into(), StorageProvider::default());
        assert_eq!(s.validate(), Ok(()));
        assert_eq!(s.buckets(), vec!["bkt".to_string()], "minio's is not ours");
    }

    #[test]
    fn cycles_through_folders() {
        let f = |name: &str, input: &str, output: &str| {
            let path = |p: &str| crate::bucket::BucketPath::parse(p).unwrap();
            FunctionSpec {
                name: name.into(),
                inputs: vec![InputSpec::at(&path(input))],
                outputs: vec![OutputSpec::at(&path(output))],
                ..spec()
            }
        };
        // A chain with no way back, and a function writing inside its own input.
        let chain = [
            f("one", "flow/start", "flow/two"),
            f("two", "flow/two", "flow/three"),
            f("three", "flow/three", "flow/done"),
            f("self", "own/input", "own/input/results"),
        ];
        assert!(triggers(&chain[0], &chain[1]) && !triggers(&chain[1], &chain[0]));
        assert!(chain_cycles(&chain).is_empty());
        // Ping-pong, and a longer way back into a parent folder.
        let looped = [
            f("ping", "loop/a", "loop/b"),
            f("pong", "loop/b", "loop/a/sub"),
            f("x", "www/1", "www/2"),
            f("y", "www/2", "www/3"),
            f("z", "www/3", "www/1/back"),
        ];
        assert_eq!(
            chain_cycles(&looped),
            [vec!["ping", "pong", "ping"], vec!["x", "y", "z", "x"]]
        );
    }

    #[test]
    fn specs_stored_before_folders_keep_input_and_output() {
        let old = r#"{"name":"f","image":"busybox","memory_mb":512,"timeout_s":300,
            "timeout_threshold_s":10,"input_bucket":"photos"}"#;
        let s: FunctionSpec = serde_json::from_str(old).unwrap();
        assert_eq!(s.inputs[0].to_string(), "photos/input");
        assert_eq!(s.outputs[0].to_string(), "photos/output");
        let old = r#"{"name":"f","image":"busybox","memory_mb":512,"timeout_s":300,
            "timeout_threshold_s":10,"input_bucket":"photos",
            "output":{"bucket":"res","folder":"gray","suffix":["png"]}}"#;
        let s: FunctionSpec = serde_json::from_str(old).unwrap();
        assert_eq!(s.outputs.len(), 1);
        assert_eq!(s.outputs[0].to_string(), "res/gray");
        assert_eq!(s.outputs[0].suffix, ["png"]);
        let round: FunctionSpec =
            serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(round, s);
    }

    #[test]
    fn secrets_are_redacted() {
        let mut s = spec();
        s.storage_providers.insert(
            "minio.m".into(),
            StorageProvider {
                access_key: Some("AKIAEXAMPLE".into()),
                secret_key: Some("s3cr3t".into()),
                ..StorageProvider::default()
            },
        );
        s.environment
            .insert("AWS_SECRET_ACCESS_KEY".into(), "k".into());
        s.environment.insert("MODE".into(), "fast".into());
        let shown = serde_json::to_string(&s.redacted()).unwrap();
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("AKIAEXAMPLE"),
            "{shown}"
        );
        assert!(shown.contains("fast"), "{shown}");
        assert!(!format!("{:?}", s.storage_providers).contains("s3cr3t"));
    }

    #[test]
    fn env_assignments() {
        let env = parse_env_assignments(&["A=1", "B_2=x=y", "C="]).unwrap();
        assert_eq!(env["B_2"], "x=y");
        assert_eq!(env["C"], "");
        assert!(parse_env_assignments(&["NOEQUALS"]).is_err());
        assert!(parse_env_assignments(&["1A=x"]).is_err());
        assert!(parse_env_assignments(&["AWS_REGION=x"]).is_err());
        assert!(parse_env_assignments(&["AWS_LAMBDA_X=x"]).is_err());
        // The container's variables may use any name, Lambda's reserved ones included.
        let env = parse_container_env_assignments(&["AWS_ACCESS_KEY_ID=x", "_X=1"]).unwrap();
        assert_eq!(env["AWS_ACCESS_KEY_ID"], "x");
        assert!(parse_container_env_assignments(&["1A=x"]).is_err());
    }
}
