//! [`AwsConfig`]: where the provider connects and as whom, how it deploys, how it
//! packages.

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Static credentials, for emulators and tests: the one type every scar crate uses, whose
/// `Debug` output never shows the secret key or the session token.
pub use scar_s3::StaticCredentials;

/// How the `aws` provider is set up, by concern: where it connects and as whom
/// ([`Connection`]), how it deploys functions ([`Deployment`]), and how it packages their
/// images ([`Packaging`]).
///
/// ```
/// let mut config = scar_aws::AwsConfig::new("eu-west-1");
/// config.connection.endpoint_url = Some("http://127.0.0.1:5000".into());
/// config.deployment.iam_role = "arn:aws:iam::123456789012:role/lambda".into();
/// assert_eq!(config.deployment.log_retention_days, 30);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AwsConfig {
    /// Where requests go and as whom.
    pub connection: Connection,
    /// What functions are deployed with.
    pub deployment: Deployment,
    /// How images become packages.
    pub packaging: Packaging,
}

/// Where the provider's requests go, and as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Connection {
    /// The region. Empty: the SDK's region chain (`AWS_REGION`, the profile), else
    /// `us-east-1`.
    pub region: String,
    /// The profile of `~/.aws/config` and `~/.aws/credentials` to use instead of the
    /// default one (`AWS_PROFILE`).
    pub profile: Option<String>,
    /// Sends every service's requests here (an emulator such as moto, or an
    /// S3-compatible store) instead of AWS's endpoints.
    pub endpoint_url: Option<String>,
    /// Static credentials instead of the standard chain (emulators, tests).
    pub credentials: Option<StaticCredentials>,
}

/// What functions are deployed with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Deployment {
    /// The ARN of the IAM role functions run as; needed by [`init`](crate::AwsProvider::init).
    pub iam_role: String,
    /// The bucket a zip over [`scar_core::lambda::DIRECT_UPLOAD_LIMIT`] is uploaded
    /// through when a request names none; created when missing and kept afterwards.
    pub deployment_bucket: Option<String>,
    /// Push image packages to this registry (`host:port`) instead of the one ECR's
    /// authorization token names: for emulators such as moto, whose ECR has no registry.
    pub registry_override: Option<String>,
    /// Days CloudWatch keeps a function's logs; 0 keeps them forever. Rounded up to a
    /// value CloudWatch accepts (1, 3, 5, 7, 14, 30, 60, 90, ...).
    pub log_retention_days: u32,
}

/// How images become packages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Packaging {
    /// Where pulled images and packages are cached (scar: `$SCAR_HOME/cache`; default: a
    /// `scar-cache` folder in the system's temp dir).
    pub cache_dir: Option<std::path::PathBuf>,
    /// The static supervisor (`bootstrap`) that packages carry; needed to create functions.
    pub supervisor: Option<std::path::PathBuf>,
    /// The arm64 supervisor, for functions of `architectures: [arm64]`.
    pub supervisor_aarch64: Option<std::path::PathBuf>,
    /// The static proot that zip packages carry (see `scar_packager::ZipOptions::proot`).
    pub proot: Option<std::path::PathBuf>,
    /// How a zip package's root is extracted (limits, `strict`).
    pub extract: scar_packager::ExtractOptions,
    /// Where the images functions are made from are pulled from first.
    pub mirrors: scar_packager::RegistryMirrors,
}

impl Packaging {
    /// The supervisor that packages of `arch` carry, if one is configured.
    pub fn supervisor(&self, arch: scar_core::Architecture) -> Option<&std::path::Path> {
        match arch {
            scar_core::Architecture::X86_64 => self.supervisor.as_deref(),
            scar_core::Architecture::Arm64 => self.supervisor_aarch64.as_deref(),
        }
    }
}

impl Connection {
    /// A connection to `region` with the standard credential chain and AWS's endpoints.
    pub fn new(region: impl Into<String>) -> Connection {
        Connection {
            region: region.into(),
            profile: None,
            endpoint_url: None,
            credentials: None,
        }
    }

    /// Loads the SDK's shared configuration: the standard credential chain and profiles,
    /// or the static credentials; the region; the endpoint override.
    pub async fn load_sdk_config(&self) -> SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(profile) = &self.profile {
            loader = loader.profile_name(profile);
        }
        if !self.region.is_empty() {
            loader = loader.region(Region::new(self.region.clone()));
        }
        if let Some(url) = &self.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(c) = &self.credentials {
            loader = loader.credentials_provider(aws_sdk_lambda::config::Credentials::new(
                c.access_key_id.clone(),
                c.secret_access_key.clone(),
                c.session_token.clone(),
                None,
                "scar-static",
            ));
        }
        let sdk = loader.load().await;
        if sdk.region().is_none() {
            return sdk
                .into_builder()
                .region(Region::new(scar_core::config::DEFAULT_REGION))
                .build();
        }
        sdk
    }
}

impl Default for Deployment {
    /// No role, no deployment bucket, ECR's own registry, a 30-day log retention.
    fn default() -> Self {
        Deployment {
            iam_role: String::new(),
            deployment_bucket: None,
            registry_override: None,
            log_retention_days: 30,
        }
    }
}

impl AwsConfig {
    /// A configuration for `region` with the standard credential chain, no endpoint
    /// override, no role and a 30-day log retention.
    pub fn new(region: impl Into<String>) -> AwsConfig {
        AwsConfig {
            connection: Connection::new(region),
            deployment: Deployment::default(),
            packaging: Packaging::default(),
        }
    }

    /// The configuration resolved by scar's precedence rule (flags > environment > config
    /// file > defaults).
    pub fn from_settings(settings: &scar_core::config::Settings) -> AwsConfig {
        let mut config = AwsConfig::new(settings.region.clone());
        config.connection.profile = settings.profile.clone();
        config.deployment.iam_role = settings.iam_role.clone();
        config.deployment.log_retention_days = settings.log_retention_days;
        config.packaging.mirrors = settings.mirrors.clone();
        config
    }

    /// Loads the SDK's shared configuration of [`AwsConfig::connection`].
    pub async fn load_sdk_config(&self) -> SdkConfig {
        self.connection.load_sdk_config().await
    }
}

/// The retention values CloudWatch Logs accepts, in days.
const RETENTION_DAYS: &[i32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// `days` rounded up to a retention CloudWatch accepts; `None` for 0 (keep forever).
pub(crate) fn retention_days(days: u32) -> Option<i32> {
    if days == 0 {
        return None;
    }
    let days = i32::try_from(days).unwrap_or(i32::MAX);
    Some(
        RETENTION_DAYS
            .iter()
            .copied()
            .find(|&d| d >= days)
            .unwrap_or(3653),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_rounds_up() {
        assert_eq!(retention_days(0), None);
        assert_eq!(retention_days(1), Some(1));
        assert_eq!(retention_days(2), Some(3));
        assert_eq!(retention_days(30), Some(30));
        assert_eq!(retention_days(31), Some(60));
        assert_eq!(retention_days(99999), Some(3653));
    }

    /// The profile of the settings (`--profile`, `AWS_PROFILE`, scar.cfg's
    /// `aws.lambda.boto_profile`) is the connection's.
    #[test]
    fn the_settings_profile_is_the_connections() {
        use scar_core::config::{ConfigFile, Overrides, Settings};
        let file = ConfigFile::parse(br#"{"aws":{"lambda":{"boto_profile":"dev"}}}"#).unwrap();
        let settings = Settings::resolve(&Overrides::default(), &|_| None, &file).unwrap();
        let config = AwsConfig::from_settings(&settings);
        assert_eq!(config.connection.profile.as_deref(), Some("dev"));
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let mut config = AwsConfig::new("us-east-1");
        config.connection.credentials = Some(StaticCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "very-secret".into(),
            session_token: Some("token-secret".into()),
        });
        let text = format!("{config:?}");
        assert!(!text.contains("very-secret") && !text.contains("token-secret"));
    }
}
