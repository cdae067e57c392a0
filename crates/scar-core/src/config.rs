//! Configuration: `~/.scar/scar.cfg` (SCAR's JSON format, as SCAR 4 writes it, with scar's
//! additions beside it) and the precedence rule flags > environment (`SCAR_*`, `AWS_*`) >
//! file > defaults.
//!
//! Every key of the file is either read into a setting or reported in
//! [`ConfigFile::warnings`] with the reason scar has no use for it ([`keys`] lists them);
//! where scar's earlier spelling and SCAR 4's are both given, SCAR 4's wins.

mod keys;
mod mirrors;

pub use mirrors::{Mirror, OneOrMany, RegistryMirrors, RegistrySection, ENV_REGISTRY_MIRRORS};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ErrorCategory;

/// The config file's name inside the scar home.
pub const CONFIG_FILE_NAME: &str = "scar.cfg";

/// Default memory, MB.
pub const DEFAULT_MEMORY_MB: u32 = 512;
/// Default timeout, seconds.
pub const DEFAULT_TIMEOUT_S: u32 = 300;
/// Default timeout threshold, seconds.
pub const DEFAULT_THRESHOLD_S: u32 = 10;
/// Default function description.
pub const DEFAULT_DESCRIPTION: &str = "Automatically generated lambda function";
/// Default AWS region.
pub const DEFAULT_REGION: &str = "us-east-1";

/// A configuration problem: the file or an environment value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read or write the config file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the config file {path} is not valid JSON: {source} (fix it, or delete it to get the defaults back)")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("environment variable {name}={value:?} is not a valid number")]
    EnvValue { name: String, value: String },
    #[error(
        "neither SCAR_HOME nor HOME is set: set SCAR_HOME to the folder scar may keep its state in"
    )]
    NoHome,
    #[error("unknown provider {0:?}: use `local` or `aws`")]
    Provider(String),
    /// A key whose value scar cannot use (`aws.lambda.execution_mode`, variables).
    #[error("the config file: {0}")]
    Value(#[from] crate::fdl::FdlError),
    /// A value scar cannot use: a registry mirror (`registry.mirrors`,
    /// `SCAR_REGISTRY_MIRRORS`), a flag that is not a boolean (`aws.ecr.delete_image`).
    #[error("{at}: {reason}")]
    Mirror { at: String, reason: String },
}

impl ConfigError {
    /// The user-facing category of this error.
    pub fn category(&self) -> ErrorCategory {
        match self {
            ConfigError::Io { .. } => ErrorCategory::Provider,
            _ => ErrorCategory::Usage,
        }
    }
}

/// The config file: SCAR 4's keys and scar's (`provider`, `local`, `extract`, and the
/// earlier spellings `aws.lambda.time` and `aws.lambda.timeout_threshold`). Keys scar has
/// no use for are kept when the file is written back, and reported in
/// [`ConfigFile::warnings`] when it is read with [`ConfigFile::parse`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default)]
    pub aws: AwsSection,
    #[serde(default)]
    pub local: LocalSection,
    /// Bounds on image extraction (scar's addition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract: Option<ExtractSection>,
    /// Registry mirrors (scar's addition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<RegistrySection>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
    /// What scar has to say about the file's keys: those it has no use for and why,
    /// unknown ones, two spellings of one setting (not part of the file).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// `extract`: the limits of [`ExtractLimits`], in MB (2^20 bytes) as `memory` is; a key
/// left out keeps its default, 0 turns a check off.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExtractSection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_image_mb: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_layer_ratio: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_free_mb: Option<u64>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// Environment variable for [`ExtractLimits::max_image_bytes`], in MB.
pub const ENV_MAX_IMAGE_MB: &str = "SCAR_MAX_IMAGE_MB";
/// Environment variable for [`ExtractLimits::max_layer_ratio`].
pub const ENV_MAX_LAYER_RATIO: &str = "SCAR_MAX_LAYER_RATIO";
/// Environment variable for [`ExtractLimits::min_free_bytes`], in MB.
pub const ENV_MIN_FREE_MB: &str = "SCAR_MIN_FREE_MB";

const MB: u64 = 1 << 20;

/// Environment variable `name`, read through `env`, as a number: `None` when it is unset
/// or empty, [`ConfigError::EnvValue`] when it is not a number.
fn env_number<T: std::str::FromStr>(
    env: &dyn Fn(&str) -> Option<String>,
    name: &str,
) -> Result<Option<T>, ConfigError> {
    match env(name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(value) => value
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| ConfigError::EnvValue {
                name: name.into(),
                value,
            }),
    }
}

/// A yes-or-no environment variable: `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`.
fn env_bool(env: &dyn Fn(&str) -> Option<String>, name: &str) -> Result<Option<bool>, ConfigError> {
    let Some(value) = env(name).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(Some(true)),
        "0" | "false" | "no" | "off" => Ok(Some(false)),
        _ => Err(ConfigError::Mirror {
            at: name.into(),
            reason: format!("expected 1 or 0 (true or false), not {value:?}"),
        }),
    }
}

/// How far an image may expand when its layers are extracted. Images are untrusted: a
/// 6 MB gzip layer can expand to 6 GB, so extraction stops at these bounds with an error
/// that names the bound (`0` turns a check off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractLimits {
    /// The most an image may expand to (its layers' tar streams plus the holes of sparse
    /// files). Default 10 GB: Lambda's own limit on a container image.
    pub max_image_bytes: u64,
    /// The most a compressed layer may expand per byte of its blob, once it is past
    /// [`ExtractLimits::RATIO_FLOOR`] (decompression bombs: gzip reaches about 1000; real
    /// layers stay under 20). Default 100.
    pub max_layer_ratio: u64,
    /// Free space extraction leaves on the disk it writes to, checked before and during.
    /// Default 512 MB.
    pub min_free_bytes: u64,
}

impl ExtractLimits {
    /// A layer that expands to less than this is never refused for its ratio.
    pub const RATIO_FLOOR: u64 = 64 * MB;
    /// Lambda's limit on a container image (10 GB, uncompressed, all layers).
    pub const LAMBDA_IMAGE_BYTES: u64 = 10 * 1024 * MB;
    /// No bounds at all (tests, trusted layers).
    pub const UNLIMITED: ExtractLimits = ExtractLimits {
        max_image_bytes: 0,
        max_layer_ratio: 0,
        min_free_bytes: 0,
    };

    /// The limits from the config file's `extract` section over the defaults, under the
    /// environment (`SCAR_MAX_IMAGE_MB`, `SCAR_MAX_LAYER_RATIO`, `SCAR_MIN_FREE_MB`).
    pub fn resolve(
        env: &dyn Fn(&str) -> Option<String>,
        file: Option<&ExtractSection>,
    ) -> Result<ExtractLimits, ConfigError> {
        let num = |name: &str| env_number::<u64>(env, name);
        let d = ExtractLimits::default();
        let file = file.cloned().unwrap_or_default();
        let mb = |v: u64| v.saturating_mul(MB);
        Ok(ExtractLimits {
            max_image_bytes: num(ENV_MAX_IMAGE_MB)?
                .or(file.max_image_mb)
                .map_or(d.max_image_bytes, mb),
            max_layer_ratio: num(ENV_MAX_LAYER_RATIO)?
                .or(file.max_layer_ratio)
                .unwrap_or(d.max_layer_ratio),
            min_free_bytes: num(ENV_MIN_FREE_MB)?
                .or(file.min_free_mb)
                .map_or(d.min_free_bytes, mb),
        })
    }
}

impl Default for ExtractLimits {
    fn default() -> Self {
        ExtractLimits {
            max_image_bytes: Self::LAMBDA_IMAGE_BYTES,
            max_layer_ratio: 100,
            min_free_bytes: 512 * MB,
        }
    }
}

/// The `aws` section (SCAR's).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AwsSection {
    #[serde(default)]
    pub iam: IamSection,
    #[serde(default)]
    pub lambda: LambdaSection,
    #[serde(default)]
    pub cloudwatch: CloudWatchSection,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// `aws.iam`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IamSection {
    #[serde(default)]
    pub role: String,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// `aws.lambda`, SCAR 4's keys and scar's earlier spellings of two of them; a key left out
/// takes its default when the settings are resolved.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LambdaSection {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The AWS profile (`~/.aws/config`); `default` is the SDK's own choice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boto_profile: Option<String>,
    /// `lambda`, `lambda-batch` or `batch`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_mode: Option<String>,
    /// Whether `scar run` invokes asynchronously unless told otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asynchronous: Option<bool>,
    /// The supervisor's log level of new functions (SCAR's `INFO`, `DEBUG`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
    /// Seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    /// scar's earlier spelling of `timeout`, read when `timeout` is not given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<u32>,
    /// SCAR's Lambda runtime: `image` makes the image package the default; a
    /// `python3.x` (SCAR 4's default) is not followed (see [`Settings::runtime`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// MB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// scar's earlier spelling of `container.timeout_threshold`, read when that is not
    /// given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_threshold: Option<u32>,
    /// The function's own (Lambda's) variables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<Variables>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerSection>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// `aws.lambda.container`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerSection {
    /// Seconds before the timeout at which the script is stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_threshold: Option<u32>,
    /// The container's (the script's) variables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<Variables>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// SCAR's `{"Variables": {NAME: value}}`; values may be strings, numbers or booleans.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Variables {
    #[serde(rename = "Variables", default)]
    pub variables: BTreeMap<String, yaml_serde::Value>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// The launch template SCAR creates to install its supervisor on Batch instances (SCAR 4's
/// default `aws.batch.compute_resources.launch_template_name`): scar's jobs carry the
/// supervisor in their image, so scar names no template of that name.
pub const SCAR_LAUNCH_TEMPLATE: &str = "faas-supervisor";

/// The prefix of the udocker variables SCAR 4 keeps in `aws.lambda.environment`: scar runs
/// no udocker, and leaves them out of its functions.
pub const UDOCKER_PREFIX: &str = "UDOCKER_";

/// `aws.cloudwatch`: logs kept 30 days when the key is left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CloudWatchSection {
    pub log_retention_policy_in_days: u32,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl Default for CloudWatchSection {
    fn default() -> Self {
        CloudWatchSection {
            log_retention_policy_in_days: 30,
            other: BTreeMap::new(),
        }
    }
}

/// `local`: scar's local provider.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LocalSection {
    /// Sandboxes run at once; 0 means the number of cores.
    #[serde(default)]
    pub concurrency: u32,
    /// Whether `scar run` hands its invocation to a running `scar serve` (warm reuse).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warm: bool,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl ConfigFile {
    /// The defaults, as written on first use (with SCAR 4's spellings).
    pub fn defaults() -> ConfigFile {
        let mut config = ConfigFile {
            provider: Some("local".into()),
            ..ConfigFile::default()
        };
        config.aws.lambda = LambdaSection {
            region: Some(DEFAULT_REGION.into()),
            execution_mode: Some(crate::ExecutionMode::Lambda.as_str().into()),
            timeout: Some(DEFAULT_TIMEOUT_S),
            memory: Some(DEFAULT_MEMORY_MB),
            description: Some(DEFAULT_DESCRIPTION.into()),
            container: Some(ContainerSection {
                timeout_threshold: Some(DEFAULT_THRESHOLD_S),
                ..ContainerSection::default()
            }),
            ..LambdaSection::default()
        };
        config
    }

    /// A config file's text: its values, and in [`ConfigFile::warnings`] what scar has to
    /// say about its keys.
    pub fn parse(text: &[u8]) -> Result<ConfigFile, serde_json::Error> {
        // Read from the text, not from the value, so that an error says where it is.
        let mut config: ConfigFile = serde_json::from_slice(text)?;
        config.warnings = keys::review(&serde_json::from_slice(text)?);
        Ok(config)
    }

    /// Reads `<folder>/scar.cfg`, creating it with the defaults when it does not exist.
    pub fn load_or_create(folder: &Path) -> Result<ConfigFile, ConfigError> {
        let path = folder.join(CONFIG_FILE_NAME);
        match std::fs::read(&path) {
            Ok(bytes) => ConfigFile::parse(&bytes).map_err(|source| ConfigError::Parse {
                path: path.clone(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let config = ConfigFile::defaults();
                let io = |source| ConfigError::Io {
                    path: path.clone(),
                    source,
                };
                std::fs::create_dir_all(folder).map_err(io)?;
                let text =
                    serde_json::to_string_pretty(&config).map_err(|source| ConfigError::Parse {
                        path: path.clone(),
                        source,
                    })?;
                std::fs::write(&path, text + "\n").map_err(io)?;
                Ok(config)
            }
            Err(source) => Err(ConfigError::Io { path, source }),
        }
    }
}

/// The scar home, where scar keeps its state: `$SCAR_HOME`, else `$HOME/.scar`.
pub fn scar_home(env: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf, ConfigError> {
    if let Some(home) = env("SCAR_HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(home));
    }
    env("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".scar"))
        .ok_or(ConfigError::NoHome)
}

/// The variable that names the folder holding `scar.cfg`, as in SCAR.
pub const CONFIG_FOLDER_VAR: &str = "SCAR_CONFIG_FOLDER";

/// The folder holding `scar.cfg`: `$SCAR_CONFIG_FOLDER` (SCAR's variable), else the scar
/// home `home` ([`scar_home`]). `SCAR_CONFIG_FOLDER` moves only the config file; the state
/// stays in the home.
pub fn config_folder(env: &dyn Fn(&str) -> Option<String>, home: &Path) -> PathBuf {
    env(CONFIG_FOLDER_VAR)
        .filter(|f| !f.is_empty())
        .map_or_else(|| home.to_path_buf(), PathBuf::from)
}

/// Which provider runs the functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Local,
    Aws,
}

impl ProviderKind {
    /// The name users select it by (`--provider local|aws`).
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Local => "local",
            ProviderKind::Aws => "aws",
        }
    }
}

impl std::str::FromStr for ProviderKind {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "local" => Ok(ProviderKind::Local),
            "aws" => Ok(ProviderKind::Aws),
            other => Err(ConfigError::Provider(other.into())),
        }
    }
}

/// The profile the AWS SDK takes when none is named: SCAR 4's `boto_profile` default,
/// which scar leaves to the SDK (so that `AWS_PROFILE` still chooses).
const DEFAULT_PROFILE: &str = "default";

/// SCAR's `environment` of the section `at`, as the strings a shell sees.
fn variables(vars: Option<&Variables>, at: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    Ok(crate::fdl::env_values(
        vars.map(|v| v.variables.clone()),
        at,
    )?)
}

/// Settings given as flags; `None` where the flag was not given.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub provider: Option<ProviderKind>,
    pub memory_mb: Option<u32>,
    pub timeout_s: Option<u32>,
    pub timeout_threshold_s: Option<u32>,
    pub description: Option<String>,
    pub region: Option<String>,
    pub iam_role: Option<String>,
    pub concurrency: Option<u32>,
    /// `run --warm` (`Some(true)`) or `run --fresh` (`Some(false)`).
    pub warm: Option<bool>,
    /// `--profile`.
    pub profile: Option<String>,
}

/// Settings after precedence: flags > environment > config file > defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub provider: ProviderKind,
    pub memory_mb: u32,
    pub timeout_s: u32,
    pub timeout_threshold_s: u32,
    /// Whether the threshold was given (flag or `SCAR_TIMEOUT_THRESHOLD`), not a default
    /// (the config file's or [`DEFAULT_THRESHOLD_S`]): see [`Settings::threshold_for`].
    pub threshold_given: bool,
    pub description: String,
    pub region: String,
    /// The AWS profile; `None`: the SDK's own choice (`AWS_PROFILE`, else `default`).
    pub profile: Option<String>,
    pub iam_role: String,
    /// How new functions run where neither a flag nor their definition says.
    pub execution_mode: crate::ExecutionMode,
    /// Whether `scar run` invokes asynchronously where neither a flag nor the function's
    /// definition says (`aws.lambda.asynchronous`).
    pub asynchronous: bool,
    /// Variables of new functions' containers (`aws.lambda.container.environment`), under
    /// their definition's and the flags'.
    pub environment: BTreeMap<String, String>,
    /// Variables of new functions themselves (Lambda's: `aws.lambda.environment`, SCAR's
    /// udocker variables left out), under their definition's and the flags'.
    pub lambda_environment: BTreeMap<String, String>,
    /// 0 means the number of cores.
    pub concurrency: u32,
    /// Whether `scar run` hands its invocation to a running `scar serve` (flags `--warm`
    /// / `--fresh`, `SCAR_WARM`, `local.warm`; default off).
    pub warm: bool,
    pub log_retention_days: u32,
    /// Bounds on image extraction.
    pub extract: ExtractLimits,
    /// Where images are pulled from first (`registry.mirrors`, `SCAR_REGISTRY_MIRRORS`).
    pub mirrors: RegistryMirrors,
    /// `aws.batch` (SCAR's `scar.cfg` keeps the network, roles and launch template of
    /// compute environments there): what Batch mode functions take where their
    /// definition says nothing.
    pub batch: crate::BatchSpec,
    /// SCAR's Lambda runtime of new functions where neither a flag nor their definition
    /// names one (`aws.lambda.runtime`): `image` only. A `python3.x` there, the value of
    /// SCAR 4's default file rather than a choice, leaves the package to scar's default
    /// (the config review says so).
    pub runtime: Option<crate::LambdaRuntime>,
    /// `aws.ecr.delete_image` (SCAR's): whether `rm` deletes a function's ECR image where
    /// its definition does not say (`ecr.delete_image`).
    pub delete_image: bool,
    /// The supervisor's log level of new functions where neither `-ll` nor their
    /// definition says (`aws.lambda.log_level`).
    pub log_level: Option<crate::LogLevel>,
}

impl Settings {
    /// The threshold of a function whose timeout is `timeout_s`, when its own flag or
    /// definition file gives none. A given threshold is kept as it is (validation refuses
    /// one that is not below the timeout); a default one that does not fit below the
    /// timeout (10 s for `-t 5`) becomes a tenth of the timeout, at least 1 s, and 0 for a
    /// 1 s timeout: the script keeps most of a short timeout and the supervisor still has
    /// a moment to upload what it wrote.
    pub fn threshold_for(&self, timeout_s: u32) -> u32 {
        if self.threshold_given || self.timeout_threshold_s < timeout_s {
            return self.timeout_threshold_s;
        }
        crate::spec::fitting_threshold(timeout_s)
    }

    /// Applies the precedence rule. `env` reads an environment variable (so tests need not
    /// touch the process environment).
    pub fn resolve(
        flags: &Overrides,
        env: &dyn Fn(&str) -> Option<String>,
        file: &ConfigFile,
    ) -> Result<Settings, ConfigError> {
        let num = |name: &str| env_number::<u32>(env, name);
        let text = |name: &str| env(name).filter(|v| !v.is_empty());
        let provider = match flags.provider {
            Some(p) => p,
            None => match text("SCAR_PROVIDER").or_else(|| file.provider.clone()) {
                Some(p) => p.parse()?,
                None => ProviderKind::Local,
            },
        };
        let lambda = &file.aws.lambda;
        let container = lambda.container.clone().unwrap_or_default();
        let given_threshold = flags.timeout_threshold_s.or(num("SCAR_TIMEOUT_THRESHOLD")?);
        let mut batch = match file.aws.other.get("batch") {
            Some(b) => crate::fdl::batch_defaults(b.clone(), "aws.batch")?,
            None => crate::BatchSpec::default(),
        };
        let template = &mut batch.compute.launch_template_name;
        if template.as_deref() == Some(SCAR_LAUNCH_TEMPLATE) {
            *template = None;
        }
        let execution_mode = match lambda.execution_mode.as_deref() {
            None => crate::ExecutionMode::default(),
            Some(mode) => crate::fdl::execution_mode(mode, "aws.lambda.execution_mode")?,
        };
        let runtime = match lambda.runtime.as_deref() {
            None => None,
            Some(r) => match crate::fdl::lambda_runtime(r, "aws.lambda.runtime")? {
                crate::LambdaRuntime::Image => Some(crate::LambdaRuntime::Image),
                crate::LambdaRuntime::Python(_) => None,
            },
        };
        let mut lambda_environment = variables(lambda.environment.as_ref(), "aws.lambda")?;
        lambda_environment.retain(|name, _| !name.starts_with(UDOCKER_PREFIX));
        let delete_image = match file
            .aws
            .other
            .get("ecr")
            .and_then(|e| e.get("delete_image"))
        {
            None | Some(serde_json::Value::Null) => true,
            Some(serde_json::Value::Bool(b)) => *b,
            Some(other) => {
                return Err(ConfigError::Mirror {
                    at: "aws.ecr.delete_image".into(),
                    reason: format!("expected true or false, not {other}"),
                })
            }
        };
        let parse = |level: &str| {
            level
                .parse::<crate::LogLevel>()
                .map_err(|reason| ConfigError::Mirror {
                    at: "aws.lambda.log_level".into(),
                    reason,
                })
        };
        let log_level = lambda.log_level.as_deref().map(parse).transpose()?;
        // SCAR 4's default file says INFO, the supervisor's own default: no setting then.
        let log_level = log_level.filter(|l| *l != crate::LogLevel::default());
        Ok(Settings {
            batch,
            delete_image,
            log_level,
            provider,
            memory_mb: flags
                .memory_mb
                .or(num("SCAR_MEMORY")?)
                .or(lambda.memory)
                .unwrap_or(DEFAULT_MEMORY_MB),
            timeout_s: flags
                .timeout_s
                .or(num("SCAR_TIMEOUT")?)
                .or(lambda.timeout)
                .or(lambda.time)
                .unwrap_or(DEFAULT_TIMEOUT_S),
            timeout_threshold_s: given_threshold
                .or(container.timeout_threshold)
                .or(lambda.timeout_threshold)
                .unwrap_or(DEFAULT_THRESHOLD_S),
            threshold_given: given_threshold.is_some(),
            description: flags
                .description
                .clone()
                .or_else(|| text("SCAR_DESCRIPTION"))
                .or_else(|| lambda.description.clone())
                .unwrap_or_else(|| DEFAULT_DESCRIPTION.into()),
            region: flags
                .region
                .clone()
                .or_else(|| text("AWS_REGION"))
                .or_else(|| text("AWS_DEFAULT_REGION"))
                .or_else(|| lambda.region.clone().filter(|r| !r.is_empty()))
                .unwrap_or_else(|| DEFAULT_REGION.into()),
            profile: flags
                .profile
                .clone()
                .or_else(|| text("AWS_PROFILE"))
                .or_else(|| {
                    let named = lambda.boto_profile.clone();
                    named.filter(|p| p != DEFAULT_PROFILE)
                })
                .filter(|p| !p.is_empty()),
            iam_role: flags
                .iam_role
                .clone()
                .or_else(|| text("SCAR_IAM_ROLE"))
                .unwrap_or_else(|| file.aws.iam.role.clone()),
            execution_mode,
            runtime,
            asynchronous: lambda.asynchronous.unwrap_or(false),
            environment: variables(container.environment.as_ref(), "aws.lambda.container")?,
            lambda_environment,
            concurrency: flags
                .concurrency
                .or(num("SCAR_CONCURRENCY")?)
                .unwrap_or(file.local.concurrency),
            warm: match flags.warm {
                Some(warm) => warm,
                None => env_bool(env, "SCAR_WARM")?.unwrap_or(file.local.warm),
            },
            log_retention_days: file.aws.cloudwatch.log_retention_policy_in_days,
            extract: ExtractLimits::resolve(env, file.extract.as_ref())?,
            mirrors: RegistryMirrors::resolve(env, file.registry.as_ref())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn first_use_creates_the_file_with_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let cfg = ConfigFile::load_or_create(&home).unwrap();
        assert_eq!(cfg, ConfigFile::defaults());
        let text = std::fs::read_to_string(home.join(CONFIG_FILE_NAME)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        // SCAR 4's spellings.
        assert_eq!(v["aws"]["lambda"]["memory"], 512);
        assert_eq!(v["aws"]["lambda"]["timeout"], 300);
        assert_eq!(v["aws"]["lambda"]["container"]["timeout_threshold"], 10);
        assert_eq!(v["aws"]["lambda"]["execution_mode"], "lambda");
        assert!(v["aws"]["lambda"].get("time").is_none(), "{text}");
        let again = ConfigFile::load_or_create(&home).unwrap();
        assert_eq!(again, cfg);
        assert!(again.warnings.is_empty(), "{:?}", again.warnings);
        let s = Settings::resolve(&Overrides::default(), &env_of(&[]), &cfg).unwrap();
        assert_eq!(s, resolved(ConfigFile::default(), &[]));
    }

    /// The settings of `file` (SCAR's JSON) under the environment `env`, no flags.
    fn settings(file: &str, env: &'static [(&'static str, &'static str)]) -> Settings {
        resolved(ConfigFile::parse(file.as_bytes()).unwrap(), env)
    }

    fn resolved(file: ConfigFile, env: &'static [(&'static str, &'static str)]) -> Settings {
        Settings::resolve(&Overrides::default(), &env_of(env), &file).unwrap()
    }

    #[test]
    fn scars_earlier_files_load_and_keep_unknown_keys() {
        let text = r#"{"aws":{"iam":{"role":"arn:x"},"lambda":{"region":"eu-west-1","time":60,"memory":1024,"description":"d","timeout_threshold":5,"log_level":"DEBUG","supervisor":{"version":"1.0"}},"cloudwatch":{"log_retention_policy_in_days":7}}}"#;
        let cfg = ConfigFile::parse(text.as_bytes()).unwrap();
        assert_eq!(cfg.aws.lambda.memory, Some(1024));
        assert_eq!(cfg.aws.lambda.other["supervisor"]["version"], "1.0");
        assert_eq!(cfg.warnings.len(), 1, "{:?}", cfg.warnings);
        assert!(cfg.warnings[0].starts_with("aws.lambda.supervisor: not used by scar"));
        // SCAR's log level is new functions' default.
        let s = Settings::resolve(&Overrides::default(), &env_of(&[]), &cfg).unwrap();
        assert_eq!(s.log_level, Some(crate::LogLevel::Debug));
        let bad = r#"{"aws":{"lambda":{"log_level":"LOUD"}}}"#;
        let bad = ConfigFile::parse(bad.as_bytes()).unwrap();
        let e = Settings::resolve(&Overrides::default(), &env_of(&[]), &bad).unwrap_err();
        assert!(e.to_string().starts_with("aws.lambda.log_level: "), "{e}");
        let back = serde_json::to_value(&cfg).unwrap();
        assert_eq!(back["aws"]["lambda"]["log_level"], "DEBUG");
        let s = settings(text, &[]);
        assert_eq!((s.timeout_s, s.timeout_threshold_s), (60, 5));
        assert_eq!((s.region.as_str(), s.log_retention_days), ("eu-west-1", 7));
    }

    #[test]
    fn precedence_flags_env_file_defaults() {
        let mut file = ConfigFile::defaults();
        file.aws.lambda.memory = Some(1024);
        file.aws.lambda.timeout = Some(100);
        let env = env_of(&[("SCAR_MEMORY", "2048"), ("SCAR_TIMEOUT", "50")]);
        let flags = Overrides {
            timeout_s: Some(20),
            ..Overrides::default()
        };
        let s = Settings::resolve(&flags, &env, &file).unwrap();
        assert_eq!(s.timeout_s, 20); // flag
        assert_eq!(s.memory_mb, 2048); // environment
        assert_eq!(s.timeout_threshold_s, 10); // default
        assert!(!s.threshold_given);
        // A default threshold that does not fit a short timeout is fitted to it.
        let fitted: Vec<u32> = [1, 2, 5, 10, 30, 300].map(|t| s.threshold_for(t)).into();
        assert_eq!(fitted, vec![0, 1, 1, 1, 10, 10]);
        let given = Settings {
            threshold_given: true,
            ..s.clone()
        };
        assert_eq!(
            given.threshold_for(5),
            10,
            "a given threshold is never changed"
        );
        assert_eq!(s.provider, ProviderKind::Local);
        let s = Settings::resolve(&Overrides::default(), &env_of(&[]), &file).unwrap();
        assert_eq!(s.memory_mb, 1024); // file
        assert!(Settings::resolve(&flags, &env_of(&[("SCAR_MEMORY", "lots")]), &file).is_err());
    }

    /// SCAR 4's spellings take the same place in the precedence as scar's: under the flags
    /// and the environment, over the defaults.
    #[test]
    fn precedence_holds_with_scar4_spellings() {
        let file = r#"{"aws":{"lambda":{"timeout":100,"memory":1024,"region":"eu-west-1",
            "boto_profile":"dev","container":{"timeout_threshold":7}}}}"#;
        let file = ConfigFile::parse(file.as_bytes()).unwrap();
        assert!(file.warnings.is_empty(), "{:?}", file.warnings);
        let env = env_of(&[
            ("SCAR_TIMEOUT", "50"),
            ("SCAR_TIMEOUT_THRESHOLD", "3"),
            ("AWS_REGION", "eu-south-2"),
            ("AWS_PROFILE", "ops"),
        ]);
        let flags = Overrides {
            timeout_s: Some(20),
            timeout_threshold_s: Some(2),
            region: Some("ap-south-1".into()),
            profile: Some("cli".into()),
            ..Overrides::default()
        };
        let pick = |s: Settings| {
            let profile = s.profile.clone().unwrap_or_default();
            (s.timeout_s, s.timeout_threshold_s, s.region, profile)
        };
        let of_flags = Settings::resolve(&flags, &env, &file).unwrap();
        assert_eq!(pick(of_flags), (20, 2, "ap-south-1".into(), "cli".into()));
        let of_env = Settings::resolve(&Overrides::default(), &env, &file).unwrap();
        assert_eq!(pick(of_env), (50, 3, "eu-south-2".into(), "ops".into()));
        let of_file = resolved(file, &[]);
        assert_eq!(of_file.memory_mb, 1024);
        assert!(
            !of_file.threshold_given,
            "the file's threshold is a default"
        );
        assert_eq!(pick(of_file), (100, 7, "eu-west-1".into(), "dev".into()));
        let defaults = settings("{}", &[]);
        assert_eq!(pick(defaults), (300, 10, "us-east-1".into(), String::new()));
        // `default`, SCAR's profile, is left to the SDK, so that AWS_PROFILE still chooses.
        let named = r#"{"aws":{"lambda":{"boto_profile":"default"}}}"#;
        assert_eq!(settings(named, &[]).profile, None);
    }

    #[test]
    fn where_both_spellings_are_given_scar4s_wins_and_a_difference_is_said() {
        let text = r#"{"aws":{"lambda":{"time":60,"timeout":90,"timeout_threshold":5,
            "container":{"timeout_threshold":5}}}}"#;
        let file = ConfigFile::parse(text.as_bytes()).unwrap();
        assert_eq!(
            file.warnings,
            ["aws.lambda.time: scar's earlier spelling of aws.lambda.timeout, which is given too and wins (90)"]
        );
        let s = resolved(file, &[]);
        assert_eq!((s.timeout_s, s.timeout_threshold_s), (90, 5));
    }

    #[test]
    fn an_unknown_key_is_a_warning_naming_it() {
        let text = r#"{"aws":{"lambda":{"timout":60,"memory":256}},"colour":"blue"}"#;
        let file = ConfigFile::parse(text.as_bytes()).unwrap();
        assert_eq!(
            file.warnings,
            ["aws.lambda.timout, colour: unknown to scar, ignored"]
        );
        let s = resolved(file, &[]);
        assert_eq!((s.memory_mb, s.timeout_s), (256, DEFAULT_TIMEOUT_S));
    }

    /// SCAR 4's keys that scar follows only at SCAR's values: another value is named.
    #[test]
    fn values_scar_does_not_follow_are_warned() {
        let text = r#"{"aws":{"lambda":{"region":"eu-west-1","invocation_type":"Event","layers":[]},
            "s3":{"region":"eu-west-1","boto_profile":"other"},
            "batch":{"state":"DISABLED","type":"MANAGED"}}}"#;
        let file = ConfigFile::parse(text.as_bytes()).unwrap();
        assert_eq!(
            file.warnings,
            [
                "aws.batch.state: \"DISABLED\" is not followed: scar's compute environments are managed (`MANAGED`) and enabled (`ENABLED`)",
                "aws.lambda.invocation_type: \"Event\" is not followed: `scar run` invokes asynchronously with `-a` or `aws.lambda.asynchronous: true`, else waits for the result and shows the output",
                "aws.s3.boto_profile: \"other\" is not followed: scar uses aws.lambda.boto_profile (\"default\") for every AWS service",
            ]
        );
    }

    /// SCAR 4's default file: every key is read into a setting (with SCAR's value) or
    /// named in a warning with the reason.
    #[test]
    fn scar4s_default_file_is_read_with_no_silent_key() {
        let cfg = scar_test_support::scar::SCAR4_DEFAULT_CFG;
        let file = ConfigFile::parse(cfg.as_bytes()).unwrap();
        assert_eq!(
            file.warnings,
            [
                "aws.batch.compute_resources.launch_template_name: \"faas-supervisor\" is not followed: SCAR's launch template, which installs SCAR's supervisor on Batch instances; scar's jobs carry the supervisor in their image",
                "aws.lambda.environment.Variables.UDOCKER_BIN, aws.lambda.environment.Variables.UDOCKER_DIR, aws.lambda.environment.Variables.UDOCKER_EXEC, aws.lambda.environment.Variables.UDOCKER_LIB: not used by scar: udocker's variables; scar runs no udocker and leaves them out of its functions",
                "aws.lambda.runtime: \"python3.7\" is not followed: SCAR's Python runtime, its zip package's; scar's supervisor is a static binary, so a Python version has no effect, and the package stays scar's default (`-rt python3.x` or FDL `runtime: python3.x` asks for the zip package)",
                "aws.lambda.supervisor: not used by scar: SCAR's supervisor (its version and layer); scar builds its own supervisor into each function",
                "aws.s3.event: not used by scar: SCAR's template of the S3 event `run` sends for a file; scar sends the whole event S3 would",
                "oscar: not used by scar: OSCAR clusters; scar's providers are `local` and `aws`",
                "scar.config_version: not used by scar: SCAR's version of the file's layout; scar reads every layout and never rewrites the file",
            ]
        );
        let s = resolved(file, &[]);
        let defaults = resolved(ConfigFile::defaults(), &[]);
        let batch = s.batch.clone();
        assert_eq!(
            Settings {
                batch: defaults.batch.clone(),
                ..s
            },
            defaults,
            "SCAR's values are scar's defaults"
        );
        // Batch mode functions get SCAR's instance type and roles, not its launch template.
        assert_eq!(batch.compute.instance_types, ["m3.medium"]);
        assert_eq!(batch.compute.launch_template_name, None);
        let role = batch.compute.instance_role.as_deref();
        assert_eq!(
            role,
            Some("arn:aws:iam::{account_id}:instance-profile/ecsInstanceRole")
        );
        // What the keys scar reads say, checked on values SCAR's defaults do not share.
        let mut v: serde_json::Value = serde_json::from_str(cfg).unwrap();
        let l = &mut v["aws"]["lambda"];
        l["timeout"] = 42.into();
        l["memory"] = 256.into();
        l["description"] = "d".into();
        l["region"] = "eu-west-1".into();
        l["boto_profile"] = "dev".into();
        l["execution_mode"] = "lambda-batch".into();
        l["asynchronous"] = true.into();
        l["container"]["timeout_threshold"] = 7.into();
        l["container"]["environment"]["Variables"]["LEVEL"] = 3.into();
        l["environment"]["Variables"]["MODE"] = "fast".into();
        v["aws"]["iam"]["role"] = "arn:aws:iam::1:role/r".into();
        v["aws"]["cloudwatch"]["log_retention_policy_in_days"] = 7.into();
        v["aws"]["batch"]["vcpus"] = 4.into();
        v["aws"]["batch"]["compute_resources"]["subnets"] = serde_json::json!(["subnet-1"]);
        let s = settings(&v.to_string(), &[]);
        assert_eq!(
            (s.timeout_s, s.memory_mb, s.timeout_threshold_s),
            (42, 256, 7)
        );
        assert_eq!(
            (s.description.as_str(), s.region.as_str()),
            ("d", "eu-west-1")
        );
        assert_eq!(s.profile.as_deref(), Some("dev"));
        assert_eq!(s.execution_mode, crate::ExecutionMode::LambdaBatch);
        assert!(s.asynchronous);
        assert_eq!(s.environment["LEVEL"], "3");
        assert_eq!(s.lambda_environment.keys().collect::<Vec<_>>(), ["MODE"]);
        assert_eq!(
            (s.iam_role.as_str(), s.log_retention_days),
            ("arn:aws:iam::1:role/r", 7)
        );
        assert_eq!(s.batch.vcpus, 4);
        assert_eq!(s.batch.compute.subnets, ["subnet-1"]);
        assert_eq!(s.batch.compute.instance_types, ["m3.medium"]);
    }

    #[test]
    fn a_bad_execution_mode_or_variable_is_refused() {
        let bad = |text: &str| {
            let file = ConfigFile::parse(text.as_bytes()).unwrap();
            Settings::resolve(&Overrides::default(), &env_of(&[]), &file)
                .unwrap_err()
                .to_string()
        };
        let e = bad(r#"{"aws":{"lambda":{"execution_mode":"fargate"}}}"#);
        assert!(e.contains("aws.lambda.execution_mode: `fargate`"), "{e}");
        let e = bad(r#"{"aws":{"lambda":{"environment":{"Variables":{"A":[1]}}}}}"#);
        assert!(e.contains("aws.lambda.environment.A"), "{e}");
    }

    #[test]
    fn extract_limits_env_over_file_over_defaults() {
        let d = ExtractLimits::default();
        assert_eq!(d.max_image_bytes, 10 << 30);
        let text = r#"{"extract":{"max_image_mb":2048,"min_free_mb":0}}"#;
        let file: ConfigFile = serde_json::from_str(text).unwrap();
        let s = Settings::resolve(&Overrides::default(), &env_of(&[]), &file).unwrap();
        assert_eq!(s.extract.max_image_bytes, 2048 << 20);
        assert_eq!(s.extract.min_free_bytes, 0);
        assert_eq!(s.extract.max_layer_ratio, d.max_layer_ratio);
        let env = env_of(&[("SCAR_MAX_IMAGE_MB", "10"), ("SCAR_MAX_LAYER_RATIO", "7")]);
        let s = Settings::resolve(&Overrides::default(), &env, &file).unwrap();
        assert_eq!(s.extract.max_image_bytes, 10 << 20);
        assert_eq!(s.extract.max_layer_ratio, 7);
        let bad = env_of(&[("SCAR_MIN_FREE_MB", "-1")]);
        assert!(Settings::resolve(&Overrides::default(), &bad, &file).is_err());
        // The defaults file does not grow an `extract` section.
        let text = serde_json::to_string(&ConfigFile::defaults()).unwrap();
        assert!(!text.contains("extract"), "{text}");
    }

    /// SCAR's `aws.ecr.delete_image`: `rm` deletes images unless it says false; a value
    /// that is not a boolean is refused, naming the key.
    #[test]
    fn ecr_delete_image() {
        let resolve = |text: &str| {
            let file = ConfigFile::parse(text.as_bytes()).unwrap();
            Settings::resolve(&Overrides::default(), &|_| None, &file)
        };
        assert!(resolve("{}").unwrap().delete_image);
        assert!(
            !resolve(r#"{"aws":{"ecr":{"delete_image":false}}}"#)
                .unwrap()
                .delete_image
        );
        let err = resolve(r#"{"aws":{"ecr":{"delete_image":"no"}}}"#).unwrap_err();
        assert!(err.to_string().contains("aws.ecr.delete_image"), "{err}");
        let file = ConfigFile::parse(br#"{"aws":{"ecr":{"delete_image":false}}}"#).unwrap();
        assert!(file.warnings.is_empty(), "{:?}", file.warnings);
    }

    #[test]
    fn home_resolution() {
        assert_eq!(
            scar_home(&env_of(&[("SCAR_HOME", "/x"), ("HOME", "/h")])).unwrap(),
            PathBuf::from("/x")
        );
        assert_eq!(
            scar_home(&env_of(&[("HOME", "/h")])).unwrap(),
            PathBuf::from("/h/.scar")
        );
        assert!(scar_home(&env_of(&[])).is_err());
    }

    /// `SCAR_CONFIG_FOLDER` moves the config file only, over `SCAR_HOME`.
    #[test]
    fn config_folder_resolution() {
        let home = Path::new("/x");
        let env = env_of(&[("SCAR_CONFIG_FOLDER", "/etc/scar"), ("SCAR_HOME", "/x")]);
        assert_eq!(config_folder(&env, home), PathBuf::from("/etc/scar"));
        assert_eq!(scar_home(&env).unwrap(), PathBuf::from("/x"));
        let empty = env_of(&[("SCAR_CONFIG_FOLDER", "")]);
        assert_eq!(config_folder(&empty, home), home);
        assert_eq!(config_folder(&env_of(&[]), home), home);
    }
}
