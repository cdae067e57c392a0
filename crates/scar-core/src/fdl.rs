//! SCAR's function definition language (FDL): the YAML files that `scar init -f`,
//! `run -f`, `log -f` and `rm -f` read, in both of SCAR's layouts, so that existing files keep working.
//!
//! SCAR 4 and later:
//! ```yaml
//! functions:
//!   aws:
//!   - lambda:
//!       name: scar-imagemagick
//!       memory: 1024
//!       timeout: 300
//!       init_script: grayify.sh          # relative to the YAML file
//!       run_script: run.sh               # what `scar run -f` runs by default
//!       environment: {Variables: {KEY: value}}
//!       container:
//!         image: grycap/imagemagick
//!         timeout_threshold: 10
//!         environment: {Variables: {KEY2: value}}
//!       input:
//!       - {storage_provider: s3, path: my-bucket}              # or my-bucket/input
//!       output:
//!       - {storage_provider: s3, path: my-bucket/results, suffix: [png]}
//!     iam: {role: "arn:aws:iam::123456789012:role/lambda"}
//!     api_gateway: {name: imagemagick-api}   # SCAR's HTTP endpoint (AWS)
//!     cloudwatch: {log_retention_policy_in_days: 30}
//! ```
//! SCAR 3 and earlier: `functions: {<name>: {image, init_script, memory, time,
//! s3: {input_bucket}}}`.
//!
//! Inputs and outputs are any `bucket[/folder]` (a bare bucket is all of it, as in SCAR 4),
//! several of each; `storage_providers:` names S3 accounts (`s3.<id>`) and MinIO servers
//! (`minio.<id>`). A function with an input and no output uploads no output files (SCAR
//! 4's rule, warned about). The container's variables and the function's (Lambda's) stay
//! apart, as in SCAR 4.
//!
//! What scar has no use for (layers, OSCAR clusters) is reported in
//! [`Fdl::warnings`] and otherwise ignored; what it cannot honour (a storage provider other
//! than S3 and MinIO, AWS Batch) is an error, never silently dropped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use yaml_serde::Value;

use crate::bucket::{validate_bucket, BucketPath, INPUT_FOLDER, OUTPUT_FOLDER};
use crate::spec::{
    BatchSpec, ComputeResources, ExecutionMode, FileSystemSpec, InputSpec, LambdaRuntime,
    OutputSpec, RuntimeClient, StorageProvider, VpcSpec,
};
use crate::spec_options::{Architecture, LogLevel, NetworkAccess};

/// A file that is not a function definition scar can deploy.
#[derive(Debug, thiserror::Error)]
pub enum FdlError {
    #[error("not valid YAML for a function definition: {0}")]
    Yaml(#[from] yaml_serde::Error),
    #[error("{at}: {why}")]
    Invalid { at: String, why: String },
}

/// One function as the file defines it; `None` leaves the setting to the flags, the
/// environment, the config file or the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FdlFunction {
    pub name: String,
    /// A registry reference, or (scar's addition) a path starting with `./`, `../` or `/`
    /// to an image archive or OCI layout, resolved against the file's directory. Empty
    /// when only `image_file` is given.
    pub image: String,
    /// `container.image_file`: a `docker save` archive (SCAR's "upload docker image
    /// files"), resolved against the file's directory; it wins over `image`.
    pub image_file: Option<PathBuf>,
    pub memory_mb: Option<u32>,
    pub timeout_s: Option<u32>,
    pub timeout_threshold_s: Option<u32>,
    pub description: Option<String>,
    /// The container's variables (`container.environment`; SCAR 3: `environment`).
    pub environment: BTreeMap<String, String>,
    /// The function's (Lambda's) variables (`lambda.environment`).
    pub lambda_environment: BTreeMap<String, String>,
    /// The init script's path, resolved against the file's directory.
    pub init_script: Option<PathBuf>,
    /// `lambda.run_script`: the script `scar run -f` runs when the command line names none,
    /// resolved against the file's directory.
    pub run_script: Option<PathBuf>,
    /// `lambda.asynchronous`: whether `scar run -f` invokes asynchronously unless told
    /// otherwise (`None`: as the config file's `aws.lambda.asynchronous` says).
    pub asynchronous: Option<bool>,
    /// `lambda.deployment.bucket`: the deployment bucket (`-db`) of its zip package.
    pub deployment_bucket: Option<String>,
    pub inputs: Vec<InputSpec>,
    pub outputs: Vec<OutputSpec>,
    /// The storage providers its inputs and outputs name.
    pub storage_providers: BTreeMap<String, StorageProvider>,
    /// `iam.role`: the execution role on AWS.
    pub iam_role: Option<String>,
    /// `cloudwatch.log_retention_policy_in_days`.
    pub log_retention_days: Option<u32>,
    /// `lambda.execution_mode`.
    pub execution_mode: Option<ExecutionMode>,
    /// The `batch:` block (a Batch mode without one takes `aws.batch` of the config file).
    pub batch: Option<BatchSpec>,
    /// `lambda.runtime`: SCAR's Lambda runtime (`image`, `python3.x`), which picks the
    /// package as `-rt` does.
    pub runtime: Option<LambdaRuntime>,
    /// `lambda.runtime_client` (scar's addition): the Runtime API client, as
    /// `--runtime-client`.
    pub runtime_client: Option<RuntimeClient>,
    /// `lambda.region`: the AWS region the function lives in (`None`: the settings').
    pub region: Option<String>,
    /// `lambda.boto_profile`: the AWS profile it is created and reached with.
    pub boto_profile: Option<String>,
    /// `lambda.vpc`: Lambda's VpcConfig.
    pub vpc: Option<VpcSpec>,
    /// `lambda.file_system`: EFS access points and where they are mounted.
    pub file_systems: Vec<FileSystemSpec>,
    /// `lambda.container.create_image`: `Some(false)` reuses an image already in ECR.
    pub create_image: Option<bool>,
    /// `ecr.delete_image`: `Some(false)` keeps the ECR repository on `rm`.
    pub delete_image: Option<bool>,
    /// `lambda.architectures` (one of them: Lambda takes one).
    pub architecture: Option<Architecture>,
    /// `lambda.log_level`: the supervisor's verbosity.
    pub log_level: Option<LogLevel>,
    /// `lambda.extra_payload`: a folder shipped with the function, resolved against the
    /// file's directory.
    pub extra_payload: Option<PathBuf>,
    /// `lambda.preheat`: one warming invocation after `init`.
    pub preheat: Option<bool>,
    /// `lambda.network` (scar's): `none` gives the sandbox no network beyond its loopback.
    pub network: Option<NetworkAccess>,
    /// `api_gateway.name` (beside `lambda:`): SCAR's API Gateway, a REST API of that name.
    pub api_gateway: Option<String>,
}

/// A parsed file: its functions, in order, and what in it was ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fdl {
    pub functions: Vec<FdlFunction>,
    pub warnings: Vec<String>,
}

impl Fdl {
    /// Parses `text`; relative paths in it (init scripts) are resolved against `base_dir`,
    /// the directory of the file.
    pub fn parse(text: &str, base_dir: &Path) -> Result<Fdl, FdlError> {
        let doc: Document = yaml_serde::from_str(text)?;
        let mut fdl = Fdl::default();
        note_ignored(&doc.other, "", &mut fdl.warnings);
        let providers = storage_providers(doc.storage_providers, &mut fdl.warnings)?;
        let Some(functions) = doc.functions else {
            return Err(invalid("the file", "it has no `functions:` section"));
        };
        let Value::Mapping(map) = functions else {
            return Err(invalid("functions", "expected a mapping"));
        };
        let layout_v4 = map
            .keys()
            .any(|k| matches!(k.as_str(), Some("aws") | Some("oscar")));
        if layout_v4 {
            for (provider, entries) in map {
                let provider = provider.as_str().unwrap_or_default().to_string();
                if provider != "aws" {
                    fdl.warnings.push(format!(
                        "functions.{provider}: scar deploys `aws` functions (here or on AWS Lambda); `{provider}` ignored"
                    ));
                    continue;
                }
                let Value::Sequence(entries) = entries else {
                    return Err(invalid("functions.aws", "expected a list of functions"));
                };
                for (i, entry) in entries.into_iter().enumerate() {
                    let at = format!("functions.aws[{i}]");
                    let entry: AwsEntry =
                        yaml_serde::from_value(entry).map_err(|e| invalid(&at, &e.to_string()))?;
                    fdl.functions.push(entry.into_function(
                        &at,
                        base_dir,
                        &providers,
                        &mut fdl.warnings,
                    )?);
                }
            }
        } else {
            for (name, body) in map {
                let name = name
                    .as_str()
                    .ok_or_else(|| invalid("functions", "function names must be strings"))?
                    .to_string();
                let at = format!("functions.{name}");
                let legacy: Legacy =
                    yaml_serde::from_value(body).map_err(|e| invalid(&at, &e.to_string()))?;
                fdl.functions
                    .push(legacy.into_function(name, &at, base_dir, &mut fdl.warnings)?);
            }
        }
        if fdl.functions.is_empty() {
            return Err(invalid("functions", "no function is defined"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for f in &fdl.functions {
            if !seen.insert(f.name.as_str()) {
                return Err(invalid(
                    "functions",
                    &format!("`{}` is defined twice", f.name),
                ));
            }
        }
        Ok(fdl)
    }
}

fn invalid(at: &str, why: &str) -> FdlError {
    FdlError::Invalid {
        at: at.to_string(),
        why: why.to_string(),
    }
}

fn note_ignored(other: &BTreeMap<String, Value>, at: &str, warnings: &mut Vec<String>) {
    for key in other.keys() {
        let path = if at.is_empty() {
            key.clone()
        } else {
            format!("{at}.{key}")
        };
        warnings.push(format!("{path}: not used by scar, ignored"));
    }
}

#[derive(Deserialize)]
struct Document {
    functions: Option<Value>,
    storage_providers: Option<Value>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct AwsEntry {
    lambda: Option<Lambda>,
    iam: Option<Iam>,
    cloudwatch: Option<Cloudwatch>,
    batch: Option<Batch>,
    ecr: Option<Ecr>,
    api_gateway: Option<ApiGateway>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

/// `api_gateway:` of a function (SCAR's): the REST API's name; SCAR makes none without one.
#[derive(Deserialize)]
struct ApiGateway {
    name: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

/// `ecr:` of a function (SCAR's): whether `rm` deletes its image.
#[derive(Deserialize)]
struct Ecr {
    delete_image: Option<bool>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct Lambda {
    name: Option<String>,
    memory: Option<u32>,
    timeout: Option<u32>,
    description: Option<String>,
    init_script: Option<String>,
    run_script: Option<String>,
    asynchronous: Option<bool>,
    deployment: Option<Deployment>,
    environment: Option<Environment>,
    container: Option<Container>,
    #[serde(default)]
    input: Vec<Storage>,
    #[serde(default)]
    output: Vec<Storage>,
    execution_mode: Option<String>,
    runtime: Option<String>,
    runtime_client: Option<String>,
    region: Option<String>,
    boto_profile: Option<String>,
    vpc: Option<VpcSpec>,
    #[serde(default)]
    file_system: Vec<FileSystemSpec>,
    architectures: Option<Vec<String>>,
    log_level: Option<String>,
    extra_payload: Option<String>,
    preheat: Option<bool>,
    network: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

/// `lambda.deployment`: SCAR keeps its payload limits here too, which are Lambda's and not
/// the user's to set (scar knows them): only the bucket is read.
#[derive(Deserialize)]
struct Deployment {
    bucket: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct Container {
    image: Option<String>,
    image_file: Option<String>,
    timeout_threshold: Option<u32>,
    environment: Option<Environment>,
    create_image: Option<bool>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct Environment {
    #[serde(rename = "Variables", default)]
    variables: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct Storage {
    storage_provider: Option<String>,
    path: String,
    #[serde(default)]
    suffix: Vec<String>,
    #[serde(default)]
    prefix: Vec<String>,
}

#[derive(Deserialize)]
struct Batch {
    vcpus: Option<u32>,
    memory: Option<u32>,
    enable_gpu: Option<bool>,
    service_role: Option<String>,
    environment: Option<Environment>,
    compute_resources: Option<Compute>,
    multi_node_parallel: Option<MultiNode>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct Compute {
    #[serde(rename = "type")]
    kind: Option<String>,
    desired_v_cpus: Option<u32>,
    min_v_cpus: Option<u32>,
    max_v_cpus: Option<u32>,
    #[serde(default)]
    subnets: Vec<String>,
    #[serde(default)]
    security_group_ids: Vec<String>,
    #[serde(default)]
    instance_types: Vec<String>,
    launch_template_name: Option<String>,
    instance_role: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct MultiNode {
    #[serde(default)]
    enabled: bool,
}

impl Batch {
    fn into_spec(self, at: &str, warnings: &mut Vec<String>) -> Result<BatchSpec, FdlError> {
        note_ignored(&self.other, at, warnings);
        if self.multi_node_parallel.is_some_and(|m| m.enabled) {
            return Err(invalid(
                &format!("{at}.multi_node_parallel"),
                "multi-node parallel jobs (MPI across instances) are not supported: run the job on one node (`enabled: false`)",
            ));
        }
        let d = BatchSpec::default();
        let environment = env_values(self.environment.map(|e| e.variables), at)?;
        let compute = match self.compute_resources {
            None => ComputeResources::default(),
            Some(c) => {
                note_ignored(&c.other, &format!("{at}.compute_resources"), warnings);
                let dc = ComputeResources::default();
                ComputeResources {
                    kind: c.kind.map(|k| k.to_ascii_uppercase()).unwrap_or(dc.kind),
                    desired_vcpus: c.desired_v_cpus.unwrap_or(dc.desired_vcpus),
                    min_vcpus: c.min_v_cpus.unwrap_or(dc.min_vcpus),
                    max_vcpus: c.max_v_cpus.unwrap_or(dc.max_vcpus),
                    subnets: c.subnets,
                    security_group_ids: c.security_group_ids,
                    instance_types: c.instance_types,
                    launch_template_name: c.launch_template_name.filter(|n| !n.is_empty()),
                    instance_role: c.instance_role.filter(|r| !r.is_empty()),
                }
            }
        };
        Ok(BatchSpec {
            vcpus: self.vcpus.unwrap_or(d.vcpus),
            memory_mb: self.memory.unwrap_or(d.memory_mb),
            enable_gpu: self.enable_gpu.unwrap_or(false),
            service_role: self.service_role.filter(|r| !r.is_empty()),
            environment,
            compute,
        })
    }
}

/// SCAR's `batch` block given as JSON (`aws.batch` of `scar.cfg`): the defaults of Batch
/// mode functions, read as a definition file's `batch:` block is.
pub fn batch_defaults(value: serde_json::Value, at: &str) -> Result<BatchSpec, FdlError> {
    let batch: Batch = serde_json::from_value(value).map_err(|e| invalid(at, &e.to_string()))?;
    batch.into_spec(at, &mut Vec::new())
}

/// SCAR's `execution_mode` named `mode`, at `at`.
pub(crate) fn execution_mode(mode: &str, at: &str) -> Result<ExecutionMode, FdlError> {
    ExecutionMode::parse(mode).ok_or_else(|| {
        invalid(
            at,
            &format!("`{mode}`: use `lambda`, `lambda-batch` or `batch`"),
        )
    })
}

/// SCAR's Lambda runtime named `runtime`, at `at`.
pub(crate) fn lambda_runtime(runtime: &str, at: &str) -> Result<LambdaRuntime, FdlError> {
    runtime.parse().map_err(|e: String| invalid(at, &e))
}

#[derive(Deserialize)]
struct Iam {
    role: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct Cloudwatch {
    log_retention_policy_in_days: Option<u32>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct Legacy {
    image: Option<String>,
    init_script: Option<String>,
    memory: Option<u32>,
    time: Option<u32>,
    timeout_threshold: Option<u32>,
    description: Option<String>,
    environment: Option<BTreeMap<String, Value>>,
    s3: Option<LegacyS3>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct LegacyS3 {
    input_bucket: Option<String>,
    output_bucket: Option<String>,
}

/// The variables of the `environment` at `at` as the strings a shell would see (`1` →
/// "1", `true` → "true"); none when it is absent.
pub(crate) fn env_values(
    vars: Option<BTreeMap<String, Value>>,
    at: &str,
) -> Result<BTreeMap<String, String>, FdlError> {
    let mut out = BTreeMap::new();
    for (k, v) in vars.unwrap_or_default() {
        let text = match v {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => String::new(),
            _ => {
                return Err(invalid(
                    &format!("{at}.environment.{k}"),
                    "environment values must be strings, numbers or booleans",
                ))
            }
        };
        out.insert(k, text);
    }
    Ok(out)
}

/// `./x` and `../x` are relative to the file; references and absolute paths stay.
fn resolve_image(image: String, base_dir: &Path) -> String {
    if image.starts_with("./") || image.starts_with("../") {
        base_dir.join(&image).to_string_lossy().into_owned()
    } else {
        image
    }
}

/// The `storage_providers:` section: `s3`/`minio` → id → settings, by `<kind>.<id>`.
fn storage_providers(
    section: Option<Value>,
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<String, StorageProvider>, FdlError> {
    let mut out = BTreeMap::new();
    let Some(section) = section else {
        return Ok(out);
    };
    let Value::Mapping(kinds) = section else {
        return Err(invalid("storage_providers", "expected a mapping"));
    };
    for (kind, ids) in kinds {
        let kind = kind.as_str().unwrap_or_default().to_string();
        let at = format!("storage_providers.{kind}");
        match kind.as_str() {
            "s3" | "minio" => {}
            _ => {
                warnings.push(format!(
                    "{at}: `{kind}` storage is not supported by scar (S3 and MinIO are); ignored"
                ));
                continue;
            }
        }
        let ids = match ids {
            Value::Mapping(ids) => ids,
            Value::Null => continue,
            _ => {
                warnings.push(format!(
                    "{at}: expected a mapping of ids to settings (SCAR 4's layout); ignored"
                ));
                continue;
            }
        };
        for (id, settings) in ids {
            let id = id.as_str().unwrap_or_default().to_string();
            let at = format!("{at}.{id}");
            let p: ProviderEntry =
                yaml_serde::from_value(settings).map_err(|e| invalid(&at, &e.to_string()))?;
            note_ignored(&p.other, &at, warnings);
            if kind == "minio" && p.endpoint.as_deref().is_none_or(str::is_empty) {
                return Err(invalid(&at, "a MinIO provider needs an `endpoint`"));
            }
            if p.verify == Some(false) {
                warnings.push(format!(
                    "{at}.verify: false is not honoured: scar always checks TLS certificates (an http:// endpoint has none to check)"
                ));
            }
            let endpoint = p.endpoint.map(|e| {
                if e.contains("://") {
                    e
                } else {
                    format!("https://{e}")
                }
            });
            out.insert(
                format!("{kind}.{id}"),
                StorageProvider {
                    endpoint,
                    region: p.region,
                    verify: p.verify.unwrap_or(true),
                    access_key: p.access_key.filter(|k| !k.is_empty()),
                    secret_key: p.secret_key.filter(|k| !k.is_empty()),
                },
            );
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
struct ProviderEntry {
    endpoint: Option<String>,
    region: Option<String>,
    verify: Option<bool>,
    access_key: Option<String>,
    secret_key: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

/// The storage an input or output names: `None` for the function's own (`s3`, or an
/// `s3.<id>` with no credentials of its own), else the defined provider.
fn storage_of(
    s: &Storage,
    at: &str,
    providers: &BTreeMap<String, StorageProvider>,
) -> Result<Option<String>, FdlError> {
    let at = format!("{at}.storage_provider");
    let Some(name) = s.storage_provider.as_deref() else {
        return Ok(None);
    };
    let (kind, id) = name.split_once('.').unwrap_or((name, ""));
    match kind {
        "s3" => Ok(providers
            .get(name)
            .filter(|p| p.access_key.is_some() || p.endpoint.is_some())
            .map(|_| name.to_string())),
        "minio" if providers.contains_key(name) => Ok(Some(name.to_string())),
        "minio" => Err(invalid(
            &at,
            &format!(
                "`{name}` is not defined: add `storage_providers: {{minio: {{{}: {{endpoint, access_key, secret_key}}}}}}`",
                if id.is_empty() { "<id>" } else { id }
            ),
        )),
        "onedata" | "webdav" | "rucio" | "dcache" => Err(invalid(
            &at,
            &format!("`{name}`: {kind} storage is not supported by scar (S3 and MinIO are)"),
        )),
        _ => Err(invalid(
            &at,
            &format!("`{name}` is not a storage provider scar knows (use `s3`, `s3.<id>` or `minio.<id>`)"),
        )),
    }
}

/// The `input` or `output` (`list`) folders at `at`, each made by `make` from its entry,
/// its storage and its path.
fn folders<T>(
    entries: Vec<Storage>,
    at: &str,
    list: &str,
    providers: &BTreeMap<String, StorageProvider>,
    make: impl Fn(Storage, Option<String>, BucketPath) -> T,
) -> Result<Vec<T>, FdlError> {
    let mut out = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let at = format!("{at}.{list}[{i}]");
        let storage = storage_of(&entry, &at, providers)?;
        let path = BucketPath::parse(&entry.path)
            .map_err(|e| invalid(&format!("{at}.path"), &e.to_string()))?;
        out.push(make(entry, storage, path));
    }
    Ok(out)
}

/// An input folder on `storage` at `path`.
fn input_folder(_: Storage, storage: Option<String>, path: BucketPath) -> InputSpec {
    InputSpec {
        storage,
        ..InputSpec::at(&path)
    }
}

/// An output folder on `storage` at `path`, with the filters of its `entry`.
fn output_folder(entry: Storage, storage: Option<String>, path: BucketPath) -> OutputSpec {
    OutputSpec {
        storage,
        prefix: entry.prefix,
        suffix: entry.suffix,
        ..OutputSpec::at(&path)
    }
}

/// `lambda.architectures`, `log_level`, `extra_payload`, `preheat` and `network`.
struct Extras {
    architecture: Option<Architecture>,
    log_level: Option<LogLevel>,
    extra_payload: Option<PathBuf>,
    preheat: Option<bool>,
    network: Option<NetworkAccess>,
}

impl Extras {
    fn of(lambda: &mut Lambda, lat: &str, base_dir: &Path) -> Result<Extras, FdlError> {
        let architecture = match lambda.architectures.take().as_deref() {
            None | Some([]) => None,
            Some([one]) => Some(
                one.parse::<Architecture>()
                    .map_err(|e| invalid(&format!("{lat}.architectures"), &e))?,
            ),
            Some(_) => return Err(invalid(
                &format!("{lat}.architectures"),
                "Lambda runs a function on one architecture: give one (`[x86_64]` or `[arm64]`)",
            )),
        };
        let log_level = match lambda.log_level.take() {
            None => None,
            Some(l) => Some(
                l.parse::<LogLevel>()
                    .map_err(|e| invalid(&format!("{lat}.log_level"), &e))?,
            ),
        };
        let network = match lambda.network.take() {
            None => None,
            Some(n) => Some(
                n.parse::<NetworkAccess>()
                    .map_err(|e| invalid(&format!("{lat}.network"), &e))?,
            ),
        };
        Ok(Extras {
            architecture,
            log_level,
            extra_payload: lambda.extra_payload.take().map(|p| base_dir.join(p)),
            preheat: lambda.preheat.take(),
            network,
        })
    }
}

impl AwsEntry {
    fn into_function(
        mut self,
        at: &str,
        base_dir: &Path,
        providers: &BTreeMap<String, StorageProvider>,
        warnings: &mut Vec<String>,
    ) -> Result<FdlFunction, FdlError> {
        note_ignored(&self.other, at, warnings);
        let Some(mut lambda) = self.lambda else {
            return Err(invalid(at, "it has no `lambda:` section"));
        };
        // SCAR's per-service region and profile: scar reaches every service of a function
        // with its `lambda`'s.
        let lambda_keys = (lambda.region.as_deref(), lambda.boto_profile.as_deref());
        let sections = [
            (self.iam.as_mut().map(|s| &mut s.other), "iam"),
            (self.cloudwatch.as_mut().map(|s| &mut s.other), "cloudwatch"),
            (self.batch.as_mut().map(|s| &mut s.other), "batch"),
            (
                self.api_gateway.as_mut().map(|s| &mut s.other),
                "api_gateway",
            ),
        ];
        for (other, section) in sections {
            if let Some(other) = other {
                let at = format!("{at}.{section}");
                service_keys_as_lambda(other, &at, lambda_keys, warnings);
            }
        }
        let lat = format!("{at}.lambda");
        note_ignored(&lambda.other, &lat, warnings);
        let extras = Extras::of(&mut lambda, &lat, base_dir)?;
        let deployment_bucket = match lambda.deployment {
            Some(d) => {
                let known = ["max_payload_size", "max_s3_payload_size"];
                let other: BTreeMap<String, Value> = d
                    .other
                    .into_iter()
                    .filter(|(k, _)| !known.contains(&k.as_str()))
                    .collect();
                note_ignored(&other, &format!("{lat}.deployment"), warnings);
                if let Some(b) = &d.bucket {
                    validate_bucket(b).map_err(|e| {
                        invalid(&format!("{lat}.deployment.bucket"), &e.to_string())
                    })?;
                }
                d.bucket
            }
            None => None,
        };
        let execution_mode = match lambda.execution_mode.as_deref() {
            None => None,
            Some(mode) => Some(execution_mode(mode, &format!("{lat}.execution_mode"))?),
        };
        let batch = match self.batch {
            Some(b) => Some(b.into_spec(&format!("{at}.batch"), warnings)?),
            None => None,
        };
        let runtime = match lambda.runtime.as_deref() {
            None => None,
            Some(r) => Some(lambda_runtime(r, &format!("{lat}.runtime"))?),
        };
        let runtime_client = match lambda.runtime_client.as_deref() {
            None => None,
            Some(c) => Some(
                c.parse()
                    .map_err(|e: String| invalid(&format!("{lat}.runtime_client"), &e))?,
            ),
        };
        let name = lambda
            .name
            .ok_or_else(|| invalid(&lat, "it has no `name`"))?;
        let container = lambda
            .container
            .ok_or_else(|| invalid(&lat, "it has no `container:` with an `image`"))?;
        let cat = format!("{lat}.container");
        note_ignored(&container.other, &cat, warnings);
        let image_file = container.image_file.map(|f| base_dir.join(f));
        let image = match (container.image, &image_file) {
            (Some(image), _) => image,
            (None, Some(_)) => String::new(),
            (None, None) => {
                return Err(invalid(&cat, "it has no `image` (or `image_file`)"));
            }
        };
        let lambda_environment = env_values(lambda.environment.map(|e| e.variables), &lat)?;
        let environment = env_values(container.environment.map(|e| e.variables), &cat)?;
        let (iam_role, log_retention_days) = (
            self.iam.map(|i| {
                note_ignored(&i.other, &format!("{at}.iam"), warnings);
                i.role
            }),
            self.cloudwatch.map(|c| {
                note_ignored(&c.other, &format!("{at}.cloudwatch"), warnings);
                c.log_retention_policy_in_days
            }),
        );
        let delete_image = self.ecr.and_then(|e| {
            note_ignored(&e.other, &format!("{at}.ecr"), warnings);
            e.delete_image
        });
        let api_gateway = self.api_gateway.and_then(|a| {
            note_ignored(&a.other, &format!("{at}.api_gateway"), warnings);
            a.name.filter(|n| !n.trim().is_empty())
        });
        if let Some(api) = &api_gateway {
            crate::spec::validate_api_gateway(api)
                .map_err(|e| invalid(&format!("{at}.api_gateway.name"), &e.to_string()))?;
        }
        if let Some(vpc) = &lambda.vpc {
            vpc.validate()
                .map_err(|e| invalid(&format!("{lat}.vpc"), &e.to_string()))?;
        }
        crate::spec::validate_file_systems(&lambda.file_system)
            .map_err(|e| invalid(&format!("{lat}.file_system"), &e.to_string()))?;
        let region = lambda.region.filter(|r| !r.trim().is_empty());
        if let Some(r) = &region {
            let ok = (r.chars()).all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok {
                return Err(invalid(
                    &format!("{lat}.region"),
                    &format!("{r:?} is not an AWS region (such as eu-west-1)"),
                ));
            }
        }
        let inputs = folders(lambda.input, &lat, "input", providers, input_folder)?;
        let outputs = folders(lambda.output, &lat, "output", providers, output_folder)?;
        if !inputs.is_empty() && outputs.is_empty() {
            warnings.push(format!(
                "{lat}: an input and no `output:`: output files are not uploaded (SCAR 4's rule); add an `output:` entry to keep them"
            ));
        }
        let used: std::collections::BTreeSet<&String> = inputs
            .iter()
            .filter_map(|i| i.storage.as_ref())
            .chain(outputs.iter().filter_map(|o| o.storage.as_ref()))
            .collect();
        let storage_providers = providers
            .iter()
            .filter(|(id, _)| used.contains(id))
            .map(|(id, p)| (id.clone(), p.clone()))
            .collect();
        Ok(FdlFunction {
            name,
            image: resolve_image(image, base_dir),
            image_file,
            memory_mb: lambda.memory,
            timeout_s: lambda.timeout,
            timeout_threshold_s: container.timeout_threshold,
            description: lambda.description,
            environment,
            lambda_environment,
            init_script: lambda.init_script.map(|p| base_dir.join(p)),
            run_script: lambda.run_script.map(|p| base_dir.join(p)),
            asynchronous: lambda.asynchronous,
            deployment_bucket,
            inputs,
            outputs,
            storage_providers,
            iam_role: iam_role.flatten().filter(|r| !r.is_empty()),
            execution_mode,
            batch,
            log_retention_days: log_retention_days.flatten(),
            runtime,
            runtime_client,
            region,
            boto_profile: lambda.boto_profile.filter(|p| !p.trim().is_empty()),
            vpc: lambda.vpc,
            file_systems: lambda.file_system,
            create_image: container.create_image,
            delete_image,
            architecture: extras.architecture,
            log_level: extras.log_level,
            extra_payload: extras.extra_payload,
            preheat: extras.preheat,
            network: extras.network,
            api_gateway,
        })
    }
}

/// Takes `region` and `boto_profile` out of a service's section (`iam`, `cloudwatch`,
/// `batch`) of a function whose `lambda` has `lambda_keys` (its region and profile):
/// silent where they agree, a warning where they do not (scar uses the function's).
fn service_keys_as_lambda(
    other: &mut BTreeMap<String, Value>,
    at: &str,
    lambda_keys: (Option<&str>, Option<&str>),
    warnings: &mut Vec<String>,
) {
    for (key, lambdas) in [("region", lambda_keys.0), ("boto_profile", lambda_keys.1)] {
        let Some(value) = other.remove(key) else {
            continue;
        };
        let value = value.as_str().unwrap_or_default().to_string();
        let same = match lambdas {
            Some(l) => l == value,
            None => key == "boto_profile" && value == "default",
        };
        if !same && !value.is_empty() {
            warnings.push(format!(
                "{at}.{key}: {value:?} is not followed: scar reaches every service of a function with its `lambda.{key}` ({})",
                lambdas.map_or("the settings'".to_string(), |l| format!("{l:?}"))
            ));
        }
    }
}

impl Legacy {
    fn into_function(
        self,
        name: String,
        at: &str,
        base_dir: &Path,
        warnings: &mut Vec<String>,
    ) -> Result<FdlFunction, FdlError> {
        note_ignored(&self.other, at, warnings);
        let image = self.image.ok_or_else(|| invalid(at, "it has no `image`"))?;
        let environment = env_values(self.environment, at)?;
        // SCAR 3's convention: `<input_bucket>/input/` triggers, outputs go to `output/` of
        // the output bucket, else of the input bucket.
        let (inputs, outputs) = match self.s3 {
            None => (Vec::new(), Vec::new()),
            Some(s3) => {
                for b in s3.input_bucket.iter().chain(s3.output_bucket.iter()) {
                    validate_bucket(b).map_err(|e| invalid(&format!("{at}.s3"), &e.to_string()))?;
                }
                let folder = |bucket: &String, folder: &str| BucketPath {
                    bucket: bucket.clone(),
                    folder: folder.into(),
                };
                let inputs: Vec<InputSpec> = s3
                    .input_bucket
                    .iter()
                    .map(|b| InputSpec::at(&folder(b, INPUT_FOLDER)))
                    .collect();
                let outputs = s3
                    .output_bucket
                    .as_ref()
                    .or(s3.input_bucket.as_ref())
                    .map(|b| OutputSpec::at(&folder(b, OUTPUT_FOLDER)))
                    .into_iter()
                    .collect();
                (inputs, outputs)
            }
        };
        Ok(FdlFunction {
            name,
            image: resolve_image(image, base_dir),
            image_file: None,
            memory_mb: self.memory,
            timeout_s: self.time,
            timeout_threshold_s: self.timeout_threshold,
            description: self.description,
            environment,
            lambda_environment: BTreeMap::new(),
            init_script: self.init_script.map(|p| base_dir.join(p)),
            run_script: None,
            asynchronous: None,
            deployment_bucket: None,
            inputs,
            outputs,
            storage_providers: BTreeMap::new(),
            iam_role: None,
            log_retention_days: None,
            execution_mode: None,
            batch: None,
            ..FdlFunction::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts that each of `texts` is in a warning of `fdl`.
    #[track_caller]
    fn assert_warns(fdl: &Fdl, texts: &[&str]) {
        for text in texts {
            assert!(
                fdl.warnings.iter().any(|w| w.contains(text)),
                "{text:?} not in {:?}",
                fdl.warnings
            );
        }
    }

    const V4: &str = r#"
functions:
  aws:
  - lambda:
      name: scar-imagemagick
      memory: 1024
      timeout: 120
      log_level: DEBUG
      init_script: scripts/grayify.sh
      environment:
        Variables:
          MODE: fast
          LEVEL: 3
      container:
        image: grycap/imagemagick
        timeout_threshold: 15
        environment:
          Variables:
            MODE: slow
      input:
      - storage_provider: s3
        path: my-bucket/input
      output:
      - storage_provider: s3.my_s3
        path: my-bucket/results/gray
        suffix: [png, jpg]
        prefix: [gray-]
    iam:
      role: arn:aws:iam::123456789012:role/lambda
    cloudwatch:
      log_retention_policy_in_days: 7
  - lambda:
      name: second
      container: {image: busybox}
  oscar:
  - cluster: {name: x, image: y}
"#;

    /// SCAR's `api_gateway: {name}` beside `lambda:`: the REST API's name; its region and
    /// profile are the function's (silent when they agree), a key scar has no use for is
    /// named, and a section without a name makes no API (as in SCAR).
    #[test]
    fn api_gateway_key() {
        let text = "functions:\n  aws:\n  - lambda:\n      name: f\n      container: {image: busybox}\n    api_gateway:\n      name: my-api\n      region: us-east-1\n      boto_profile: default\n      stage_name: prod\n";
        let fdl = Fdl::parse(text, Path::new("/w")).unwrap();
        assert_eq!(fdl.functions[0].api_gateway.as_deref(), Some("my-api"));
        assert_eq!(
            fdl.warnings,
            [
                "functions.aws[0].api_gateway.region: \"us-east-1\" is not followed: scar reaches every service of a function with its `lambda.region` (the settings')",
                "functions.aws[0].api_gateway.stage_name: not used by scar, ignored",
            ]
        );
        let unnamed = text.replace("      name: my-api\n", "");
        let fdl = Fdl::parse(&unnamed, Path::new("/w")).unwrap();
        assert_eq!(fdl.functions[0].api_gateway, None);
        let bad = text.replace("name: my-api", "name: \"a\\tb\"");
        let err = Fdl::parse(&bad, Path::new("/w")).unwrap_err();
        assert!(err.to_string().contains("api_gateway.name"), "{err}");
    }

    /// SCAR's keys of where a function lives and what it mounts: `region`,
    /// `boto_profile`, `vpc`, `file_system`, `create_image`, `ecr.delete_image`; a
    /// service's own region or profile that agrees with the function's is silent.
    #[test]
    fn region_vpc_file_system_and_ecr_keys() {
        let text = r#"
functions:
  aws:
  - lambda:
      name: f
      region: eu-west-1
      boto_profile: dev
      vpc:
        SubnetIds: [subnet-0a1b2c3d]
        SecurityGroupIds: [sg-0c1d2e3f]
      file_system:
      - Arn: arn:aws:elasticfilesystem:eu-west-1:123456789012:access-point/fsap-0abc
        LocalMountPath: /mnt/efs
      container:
        image: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/f
        create_image: false
    ecr: {delete_image: false}
    iam: {role: r, boto_profile: dev, region: eu-west-1}
    cloudwatch: {region: us-east-1}
"#;
        let fdl = Fdl::parse(text, Path::new("/w")).unwrap();
        let f = &fdl.functions[0];
        assert_eq!(f.region.as_deref(), Some("eu-west-1"));
        assert_eq!(f.boto_profile.as_deref(), Some("dev"));
        assert_eq!(f.vpc.as_ref().unwrap().subnet_ids, ["subnet-0a1b2c3d"]);
        assert_eq!(f.file_systems[0].access_point_id(), "fsap-0abc");
        assert_eq!(f.file_systems[0].local_mount_path, "/mnt/efs");
        assert_eq!((f.create_image, f.delete_image), (Some(false), Some(false)));
        assert_eq!(
            fdl.warnings,
            ["functions.aws[0].cloudwatch.region: \"us-east-1\" is not followed: scar reaches every service of a function with its `lambda.region` (\"eu-west-1\")"]
        );
        for (from, to, says) in [
            ("/mnt/efs", "/efs", "LocalMountPath \"/efs\""),
            ("subnet-0a1b2c3d", "net-1", "SubnetIds: \"net-1\""),
            (
                "region: eu-west-1\n",
                "region: Europe/Paris\n",
                "not an AWS region",
            ),
            (
                "access-point/fsap-0abc",
                "file-system/fs-0abc",
                "not an EFS access point",
            ),
        ] {
            let err = Fdl::parse(&text.replacen(from, to, 1), Path::new("/w")).unwrap_err();
            assert!(err.to_string().contains(says), "{err}");
        }
    }

    #[test]
    fn scar4_layout() {
        let fdl = Fdl::parse(V4, Path::new("/work/fdl")).unwrap();
        assert_eq!(fdl.functions.len(), 2);
        let f = &fdl.functions[0];
        assert_eq!(f.name, "scar-imagemagick");
        assert_eq!(f.image, "grycap/imagemagick");
        assert_eq!(
            (f.memory_mb, f.timeout_s, f.timeout_threshold_s),
            (Some(1024), Some(120), Some(15))
        );
        // The container's variables and the function's stay apart (SCAR 4).
        assert_eq!(f.environment["MODE"], "slow");
        assert_eq!(f.lambda_environment["MODE"], "fast");
        assert_eq!(f.lambda_environment["LEVEL"], "3");
        assert!(!f.environment.contains_key("LEVEL"));
        assert_eq!(
            f.init_script.as_deref(),
            Some(Path::new("/work/fdl/scripts/grayify.sh"))
        );
        assert_eq!(f.inputs.len(), 1);
        assert_eq!(f.inputs[0].to_string(), "my-bucket/input");
        let out = &f.outputs[0];
        assert_eq!(
            (out.bucket.as_str(), out.folder.as_str()),
            ("my-bucket", "results/gray")
        );
        assert!(
            out.accepts("sub/gray-a.png") && !out.accepts("gray-a.txt") && !out.accepts("a.png")
        );
        assert_eq!(out.key("gray-a.png"), "results/gray/gray-a.png");
        assert_eq!(
            f.iam_role.as_deref(),
            Some("arn:aws:iam::123456789012:role/lambda")
        );
        assert_eq!(f.log_retention_days, Some(7));
        let second = &fdl.functions[1];
        assert_eq!(
            (second.name.as_str(), second.image.as_str()),
            ("second", "busybox")
        );
        assert_eq!(second.memory_mb, None);
        let local = Fdl::parse(
            "functions: {aws: [{lambda: {name: l, container: {image: ./img.tar}}}, {lambda: {name: m, container: {image_file: minicow.tar.gz}}}]}",
            Path::new("/w"),
        )
        .unwrap();
        assert_eq!(local.functions[0].image, "/w/./img.tar");
        assert_eq!(
            local.functions[1].image_file.as_deref(),
            Some(Path::new("/w/minicow.tar.gz"))
        );
        assert_warns(&fdl, &["oscar"]);
        assert_eq!(f.log_level, Some(LogLevel::Debug));
        assert!(!fdl.warnings.iter().any(|w| w.contains("log_level")));
    }

    #[test]
    fn architecture_log_level_extra_payload_and_preheat() {
        let text = "functions: {aws: [{lambda: {name: f, architectures: [arm64], log_level: debug, extra_payload: payload, preheat: true, network: none, container: {image: x}}}]}";
        let fdl = Fdl::parse(text, Path::new("/defs")).unwrap();
        let f = &fdl.functions[0];
        assert_eq!(f.network, Some(NetworkAccess::None));
        assert_eq!(f.architecture, Some(Architecture::Arm64));
        assert_eq!(f.log_level, Some(LogLevel::Debug));
        assert_eq!(f.extra_payload.as_deref(), Some(Path::new("/defs/payload")));
        assert_eq!(f.preheat, Some(true));
        assert!(fdl.warnings.is_empty(), "{:?}", fdl.warnings);
        let bad = |text: &str, needle: &str| {
            let e = Fdl::parse(text, Path::new(".")).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        };
        bad(
            "functions: {aws: [{lambda: {name: f, architectures: [x86_64, arm64], container: {image: x}}}]}",
            "functions.aws[0].lambda.architectures: Lambda runs a function on one architecture",
        );
        bad(
            "functions: {aws: [{lambda: {name: f, architectures: [s390x], container: {image: x}}}]}",
            "unknown architecture `s390x`",
        );
        bad(
            "functions: {aws: [{lambda: {name: f, network: host, container: {image: x}}}]}",
            "functions.aws[0].lambda.network: unknown network `host`",
        );
        bad(
            "functions: {aws: [{lambda: {name: f, log_level: LOUD, container: {image: x}}}]}",
            "functions.aws[0].lambda.log_level: unknown log level `LOUD`",
        );
    }

    #[test]
    fn folders_outputs_and_storage_providers() {
        let text = r#"
functions:
  aws:
  - lambda:
      name: split
      container: {image: busybox}
      input: [{storage_provider: s3, path: flow/start}]
      output:
      - {storage_provider: s3, path: flow/video, suffix: [avi]}
      - {storage_provider: s3, path: flow/audio, suffix: [wav]}
      - {storage_provider: minio.store, path: archive/all}
  - lambda:
      name: whole
      container: {image: busybox}
      input: [{storage_provider: s3.mine, path: bucket-two}]
storage_providers:
  s3:
    mine: {region: eu-west-1}
  minio:
    store: {endpoint: "minio.example.org:9000", verify: false, access_key: ak, secret_key: sk}
  onedata:
    od: {oneprovider_host: h, token: t, space: s}
"#;
        let fdl = Fdl::parse(text, Path::new(".")).unwrap();
        let split = &fdl.functions[0];
        assert_eq!(split.inputs[0].to_string(), "flow/start");
        let outs: Vec<String> = split.outputs.iter().map(|o| o.to_string()).collect();
        assert_eq!(
            outs,
            ["flow/video", "flow/audio", "minio.store:archive/all"]
        );
        assert!(split.outputs[0].accepts("x.avi") && !split.outputs[0].accepts("x.wav"));
        let store = &split.storage_providers["minio.store"];
        assert_eq!(
            store.endpoint.as_deref(),
            Some("https://minio.example.org:9000")
        );
        assert!(!store.verify);
        assert_eq!(store.secret_key.as_deref(), Some("sk"));
        // A bare bucket is all of it (SCAR 4); an `s3.<id>` without credentials of its
        // own is the function's own S3; an input with no output warns.
        let whole = &fdl.functions[1];
        assert_eq!(whole.inputs[0].folder, "");
        assert_eq!(whole.inputs[0].storage, None);
        assert!(whole.storage_providers.is_empty());
        assert_warns(
            &fdl,
            &[
                "functions.aws[1].lambda: an input and no `output:`",
                "storage_providers.onedata",
            ],
        );
    }

    #[test]
    fn batch_modes_and_their_block() {
        let text = r#"
functions:
  aws:
  - lambda:
      name: yolo
      execution_mode: batch
      memory: 128
      container: {image: grycap/yolov3}
    batch:
      vcpus: 4
      memory: 12288
      enable_gpu: true
      boto_profile: other
      environment: {Variables: {MODEL: v3}}
      compute_resources:
        type: spot
        max_v_cpus: 12
        instance_types: [g3s.xlarge]
        instance_role: ""
  - lambda:
      name: handover
      execution_mode: lambda-batch
      container: {image: busybox}
"#;
        let fdl = Fdl::parse(text, Path::new(".")).unwrap();
        let yolo = &fdl.functions[0];
        assert_eq!(yolo.execution_mode, Some(ExecutionMode::Batch));
        let b = yolo.batch.as_ref().unwrap();
        assert_eq!((b.vcpus, b.memory_mb, b.enable_gpu), (4, 12288, true));
        assert_eq!(b.environment["MODEL"], "v3");
        assert_eq!(b.compute.kind, "SPOT");
        assert_eq!((b.compute.min_vcpus, b.compute.max_vcpus), (0, 12));
        assert_eq!(b.compute.instance_types, ["g3s.xlarge"]);
        assert_eq!(b.compute.instance_role, None);
        // Batch is reached with the function's profile, not one of its own.
        assert_warns(&fdl, &["batch.boto_profile: \"other\" is not followed"]);
        // A Batch mode without a `batch:` block leaves it to the config file's `aws.batch`.
        let handover = &fdl.functions[1];
        assert_eq!(handover.execution_mode, Some(ExecutionMode::LambdaBatch));
        assert_eq!(handover.batch, None);
    }

    #[test]
    fn scar3_layout() {
        let text = "functions:\n  scar-imagemagick:\n    image: grycap/imagemagick\n    init_script: grayify-image.sh\n    memory: 256\n    time: 60\n    s3:\n      input_bucket: scar-imagemagick\n";
        let fdl = Fdl::parse(text, Path::new("rel")).unwrap();
        let f = &fdl.functions[0];
        assert_eq!(f.name, "scar-imagemagick");
        assert_eq!((f.memory_mb, f.timeout_s), (Some(256), Some(60)));
        assert_eq!(f.inputs[0].to_string(), "scar-imagemagick/input");
        assert_eq!(f.outputs[0].to_string(), "scar-imagemagick/output");
        assert_eq!(
            f.init_script.as_deref(),
            Some(Path::new("rel/grayify-image.sh"))
        );
        assert!(fdl.warnings.is_empty());
    }

    /// SCAR's `runtime` picks the package, as `-rt` does; scar's Runtime API client has a
    /// key of its own; neither is "not used".
    #[test]
    fn runtime_and_runtime_client() {
        let one = |lambda: &str| {
            let text = format!(
                "functions:\n  aws:\n  - lambda: {{name: f, container: {{image: x}}, {lambda}}}\n"
            );
            Fdl::parse(&text, Path::new(".")).map(|fdl| {
                assert!(fdl.warnings.is_empty(), "{:?}", fdl.warnings);
                fdl.functions.into_iter().next().unwrap()
            })
        };
        let image = one("runtime: image").unwrap();
        assert_eq!(image.runtime, Some(LambdaRuntime::Image));
        assert_eq!(
            image.runtime.unwrap().package(),
            crate::provider::PackageKind::Image
        );
        let python = one("runtime: python3.9").unwrap().runtime.unwrap();
        assert_eq!(python.package(), crate::provider::PackageKind::Zip);
        assert!(python.notice().unwrap().contains("static binary"));
        let client = one("runtime_client: image").unwrap();
        assert_eq!(
            (client.runtime, client.runtime_client),
            (None, Some(RuntimeClient::Image))
        );
        let e = one("runtime: scar").unwrap_err().to_string();
        assert!(
            e.contains("functions.aws[0].lambda.runtime") && e.contains("--runtime-client scar"),
            "{e}"
        );
        let e = one("runtime: java21").unwrap_err().to_string();
        assert!(e.contains("unknown Lambda runtime `java21`"), "{e}");
        let e = one("runtime_client: python").unwrap_err().to_string();
        assert!(e.contains("lambda.runtime_client"), "{e}");
    }

    #[test]
    fn what_cannot_be_honoured_is_an_error() {
        let base = Path::new(".");
        let bad = |text: &str, needle: &str| {
            let e = Fdl::parse(text, base).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        };
        bad("functions: [1, 2]", "expected a mapping");
        bad("other: 1", "no `functions:`");
        bad(
            "functions:\n  aws:\n  - lambda:\n      container: {image: x}\n",
            "no `name`",
        );
        bad(
            "functions:\n  aws:\n  - lambda:\n      name: f\n",
            "no `container:`",
        );
        bad(
            "functions:\n  aws:\n  - lambda:\n      name: f\n      container: {image: x}\n      input: [{storage_provider: minio.m, path: b}]\n",
            "`minio.m` is not defined",
        );
        bad(
            "functions:\n  aws:\n  - lambda:\n      name: f\n      container: {image: x}\n      output: [{storage_provider: onedata.od, path: b}]\n",
            "onedata storage is not supported",
        );
        bad(
            "functions:\n  aws:\n  - lambda: {name: f, container: {image: x}}\nstorage_providers: {minio: {m: {access_key: a}}}\n",
            "needs an `endpoint`",
        );
        bad(
            "functions:\n  aws:\n  - lambda:\n      name: f\n      container: {image: x}\n      input: [{path: Bad_Bucket}]\n",
            "invalid bucket",
        );
        bad(
            "functions:\n  aws:\n  - lambda:\n      name: f\n      execution_mode: fargate\n      container: {image: x}\n",
            "use `lambda`, `lambda-batch` or `batch`",
        );
        bad(
            "functions:\n  aws:\n  - lambda: {name: f, execution_mode: batch, container: {image: x}}\n    batch: {multi_node_parallel: {enabled: true}}\n",
            "multi-node parallel jobs",
        );
        bad(
            "functions:\n  aws:\n  - lambda: {name: f, container: {image: x}}\n  - lambda: {name: f, container: {image: y}}\n",
            "defined twice",
        );
        bad(
            "functions: {aws: [{lambda: {name: f, memory: lots, container: {image: x}}}]}",
            "functions.aws[0]: invalid type: string \"lots\"",
        );
        bad("functions: {: ]", "YAML");
    }
}
