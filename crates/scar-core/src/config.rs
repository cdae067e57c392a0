//! Configuration: `~/.scar/scar.cfg` (SCAR's JSON format, with scar's additions beside it)
//! and the precedence rule flags > environment (`SCAR_*`, `AWS_*`) > file > defaults.

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
    #[error("the config file: {0}")]
    Batch(#[from] crate::fdl::FdlError),
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

/// The config file, as SCAR wrote it plus scar's `provider` and `local` sections. Unknown
/// keys are kept when the file is written back.
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
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
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

/// `aws.lambda`; a key left out takes its [`Default`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LambdaSection {
    pub region: String,
    pub time: u32,
    pub memory: u32,
    pub description: String,
    pub timeout_threshold: u32,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl Default for LambdaSection {
    fn default() -> Self {
        LambdaSection {
            region: DEFAULT_REGION.into(),
            time: DEFAULT_TIMEOUT_S,
            memory: DEFAULT_MEMORY_MB,
            description: DEFAULT_DESCRIPTION.into(),
            timeout_threshold: DEFAULT_THRESHOLD_S,
            other: BTreeMap::new(),
        }
    }
}

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
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl ConfigFile {
    /// The defaults, as written on first use.
    pub fn defaults() -> ConfigFile {
        ConfigFile {
            provider: Some("local".into()),
            ..ConfigFile::default()
        }
    }

    /// Reads `<home>/scar.cfg`, creating it with the defaults when it does not exist.
    pub fn load_or_create(home: &Path) -> Result<ConfigFile, ConfigError> {
        let path = home.join(CONFIG_FILE_NAME);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| ConfigError::Parse {
                path: path.clone(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let config = ConfigFile::defaults();
                let io = |source| ConfigError::Io {
                    path: path.clone(),
                    source,
                };
                std::fs::create_dir_all(home).map_err(io)?;
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

/// The scar home: `$SCAR_HOME`, else `$HOME/.scar`.
pub fn scar_home(env: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf, ConfigError> {
    if let Some(home) = env("SCAR_HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(home));
    }
    env("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".scar"))
        .ok_or(ConfigError::NoHome)
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
    pub iam_role: String,
    /// 0 means the number of cores.
    pub concurrency: u32,
    pub log_retention_days: u32,
    /// Bounds on image extraction.
    pub extract: ExtractLimits,
    /// `aws.batch` (SCAR's `scar.cfg` keeps the network, roles and launch template of
    /// compute environments there): what Batch mode functions take where their
    /// definition says nothing.
    pub batch: crate::BatchSpec,
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
        let given_threshold = flags.timeout_threshold_s.or(num("SCAR_TIMEOUT_THRESHOLD")?);
        let batch = match file.aws.other.get("batch") {
            Some(b) => crate::fdl::batch_defaults(b.clone(), "aws.batch")?,
            None => crate::BatchSpec::default(),
        };
        Ok(Settings {
            batch,
            provider,
            memory_mb: flags
                .memory_mb
                .or(num("SCAR_MEMORY")?)
                .unwrap_or(lambda.memory),
            timeout_s: flags
                .timeout_s
                .or(num("SCAR_TIMEOUT")?)
                .unwrap_or(lambda.time),
            timeout_threshold_s: given_threshold.unwrap_or(lambda.timeout_threshold),
            threshold_given: given_threshold.is_some(),
            description: flags
                .description
                .clone()
                .or_else(|| text("SCAR_DESCRIPTION"))
                .unwrap_or_else(|| lambda.description.clone()),
            region: flags
                .region
                .clone()
                .or_else(|| text("AWS_REGION"))
                .or_else(|| text("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| lambda.region.clone()),
            iam_role: flags
                .iam_role
                .clone()
                .or_else(|| text("SCAR_IAM_ROLE"))
                .unwrap_or_else(|| file.aws.iam.role.clone()),
            concurrency: flags
                .concurrency
                .or(num("SCAR_CONCURRENCY")?)
                .unwrap_or(file.local.concurrency),
            log_retention_days: file.aws.cloudwatch.log_retention_policy_in_days,
            extract: ExtractLimits::resolve(env, file.extract.as_ref())?,
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
        assert_eq!(v["aws"]["lambda"]["memory"], 512);
        assert_eq!(v["aws"]["lambda"]["timeout_threshold"], 10);
        assert_eq!(ConfigFile::load_or_create(&home).unwrap(), cfg);
    }

    #[test]
    fn scar_files_load_and_keep_unknown_keys() {
        let text = r#"{"aws":{"iam":{"role":"arn:x"},"lambda":{"region":"eu-west-1","time":60,"memory":1024,"description":"d","timeout_threshold":5,"log_level":"INFO"},"cloudwatch":{"log_retention_policy_in_days":7}}}"#;
        let cfg: ConfigFile = serde_json::from_str(text).unwrap();
        assert_eq!(cfg.aws.lambda.memory, 1024);
        assert_eq!(cfg.aws.lambda.other["log_level"], "INFO");
        let back = serde_json::to_value(&cfg).unwrap();
        assert_eq!(back["aws"]["lambda"]["log_level"], "INFO");
    }

    #[test]
    fn precedence_flags_env_file_defaults() {
        let mut file = ConfigFile::defaults();
        file.aws.lambda.memory = 1024;
        file.aws.lambda.time = 100;
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
}
