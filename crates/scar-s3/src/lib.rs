//! # scar-s3: S3 clients, built once by one set of rules
//!
//! Where scar reaches S3 or an S3-compatible store (a MinIO storage provider of a
//! function's definition), the client is built here: by the supervisor inside a function
//! (inputs and outputs), by the `aws` provider (the launcher over a MinIO folder) and by
//! the `local` provider (listing a MinIO input folder, which cannot notify it). The rules:
//! an endpoint that is not AWS's means path-style addressing and checksums only where the
//! API requires them (S3-compatible stores do not all understand the newer trailing
//! checksums); a `minio.<id>` provider's region is `us-east-1` unless it says otherwise;
//! credentials are either the standard chain's or the provider's own keys.
//!
//! **May depend on:** scar-core (the storage provider's definition, [`ObjectInfo`]), the
//! AWS SDK's S3 and config crates, thiserror.
//! **Invariants:** no credential appears in a `Debug` output or an error message; no I/O
//! before a client is asked for.
#![deny(clippy::print_stdout, clippy::print_stderr)]
#![warn(missing_docs)]

use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    SharedHttpClient,
};
use aws_sdk_s3::error::DisplayErrorContext;
use scar_core::provider::ObjectInfo;
use scar_core::StorageProvider;

/// Fixed credentials: a storage provider's keys, emulators and tests. Real accounts use
/// the standard credential chain (environment, profiles, SSO, instance roles) instead.
///
/// Its `Debug` output never shows the secret key or the session token.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token of temporary credentials.
    pub session_token: Option<String>,
}

impl StaticCredentials {
    /// Long-term keys (no session token).
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        StaticCredentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
        }
    }

    /// As the SDK takes them; `source` names where they came from.
    pub fn to_sdk(&self, source: &'static str) -> Credentials {
        Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            self.session_token.clone(),
            None,
            source,
        )
    }
}

impl std::fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// How to reach an S3 store. Whatever is `None` comes from the standard chain
/// (environment, profiles, container and instance metadata).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    /// An S3-compatible endpoint, e.g. `http://127.0.0.1:9000`.
    pub endpoint_url: Option<String>,
    /// The region.
    pub region: Option<String>,
    /// Fixed credentials instead of the standard chain's.
    pub credentials: Option<StaticCredentials>,
    /// Path-style addressing (`<endpoint>/<bucket>/<key>`) and checksums only where
    /// required: by default on when an endpoint is given here or in the environment
    /// (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`), off for AWS's own endpoints.
    pub force_path_style: Option<bool>,
}

/// The variables that override S3's endpoint (read by the SDK itself).
const ENDPOINT_VARS: [&str; 2] = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"];
/// Set to `true`, the SDK ignores [`ENDPOINT_VARS`].
const IGNORE_ENDPOINTS_VAR: &str = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS";

impl S3Options {
    /// The options of storage provider `id` of a function's definition (`minio.<id>`:
    /// path-style, region `us-east-1` unless given; `s3.<id>`): its endpoint, region and
    /// keys.
    pub fn for_provider(id: &str, provider: &StorageProvider) -> S3Options {
        let minio = id.starts_with(scar_core::spec::MINIO_PREFIX);
        S3Options {
            endpoint_url: provider.endpoint.clone(),
            region: provider
                .region
                .clone()
                .or_else(|| minio.then(|| "us-east-1".to_string())),
            credentials: match (&provider.access_key, &provider.secret_key) {
                (Some(access), Some(secret)) => Some(StaticCredentials::new(access, secret)),
                _ => None,
            },
            force_path_style: minio.then_some(true),
        }
    }

    /// Whether requests use path-style addressing (and checksums only where required).
    pub fn path_style(&self) -> bool {
        self.force_path_style
            .unwrap_or_else(|| self.endpoint_url.is_some() || endpoint_in_environment())
    }

    /// A client with these options over the standard chain's, through `http` (the SDK's
    /// default HTTPS client when `None`).
    pub async fn client(&self, http: Option<SharedHttpClient>) -> aws_sdk_s3::Client {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = &self.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &self.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(c) = &self.credentials {
            loader = loader.credentials_provider(c.to_sdk("scar"));
        }
        if let Some(http) = http {
            loader = loader.http_client(http);
        }
        let shared = loader.load().await;
        self.client_from(aws_sdk_s3::config::Builder::from(&shared))
    }

    /// A client with these options over `base`'s configuration (its HTTP and TLS stack,
    /// its credentials where these options have none): no I/O.
    pub fn client_over(&self, base: &aws_sdk_s3::Client) -> aws_sdk_s3::Client {
        let mut config = base.config().to_builder();
        if let Some(url) = &self.endpoint_url {
            config = config.endpoint_url(url);
        }
        if let Some(region) = &self.region {
            config = config.region(Region::new(region.clone()));
        }
        if let Some(c) = &self.credentials {
            config = config.credentials_provider(c.to_sdk("scar-storage-provider"));
        }
        self.client_from(config)
    }

    fn client_from(&self, mut config: aws_sdk_s3::config::Builder) -> aws_sdk_s3::Client {
        if self.path_style() {
            config = config
                .force_path_style(true)
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        }
        aws_sdk_s3::Client::from_conf(config.build())
    }
}

fn endpoint_in_environment() -> bool {
    let ignored =
        std::env::var(IGNORE_ENDPOINTS_VAR).is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"));
    !ignored
        && ENDPOINT_VARS
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// A listing that failed.
#[derive(Debug, thiserror::Error)]
#[error("s3:ListObjectsV2 {bucket}/{prefix} failed: {detail}")]
#[non_exhaustive]
pub struct ListError {
    /// The bucket.
    pub bucket: String,
    /// The prefix listed.
    pub prefix: String,
    /// The service's answer or the cause chain (never a credential).
    pub detail: String,
    /// The service's error code, when it answered with one (`NoSuchBucket`).
    pub code: Option<String>,
    /// The HTTP status, when there was a response.
    pub status: Option<u16>,
    /// The SDK error.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// The objects under `prefix` in `bucket`, every page; folder markers (keys ending in
/// `/`) left out.
pub async fn list(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<ObjectInfo>, ListError> {
    let mut out = Vec::new();
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| ListError {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            detail: readable(&e),
            code: aws_sdk_s3::error::ProvideErrorMetadata::code(&e).map(str::to_string),
            status: e.raw_response().map(|r| r.status().as_u16()),
            source: Box::new(e),
        })?;
        for object in page.contents() {
            let Some(key) = object.key().filter(|k| !k.ends_with('/')) else {
                continue;
            };
            out.push(ObjectInfo {
                bucket: bucket.to_string(),
                key: key.to_string(),
                size: object.size().map_or(0, |n| u64::try_from(n).unwrap_or(0)),
                etag: object
                    .e_tag()
                    .unwrap_or_default()
                    .trim_matches('"')
                    .to_string(),
                modified: object
                    .last_modified()
                    .and_then(|t| t.fmt(aws_sdk_s3::primitives::DateTimeFormat::DateTime).ok())
                    .unwrap_or_default(),
            });
        }
    }
    Ok(out)
}

/// What the user needs of an SDK error: the service's code and message when it answered
/// (`NoSuchBucket: The specified bucket does not exist`), else the chain of causes, each
/// once (`dispatch failure: io error: ... Connection refused`).
pub fn readable<E>(err: &E) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error,
{
    if let Some(code) = err.code() {
        return match err.message().filter(|m| !m.is_empty()) {
            Some(message) => format!("{code}: {message}"),
            None => code.to_string(),
        };
    }
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    if parts.is_empty() {
        DisplayErrorContext(err).to_string()
    } else {
        parts.join(": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show_in_debug() {
        let mut c = StaticCredentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/SECRET");
        c.session_token = Some("TOKEN-SECRET".into());
        let text = format!(
            "{:?}",
            S3Options {
                credentials: Some(c),
                ..S3Options::default()
            }
        );
        assert!(text.contains("AKIDEXAMPLE"), "{text}");
        assert!(!text.contains("SECRET"), "{text}");
    }

    #[test]
    fn a_minio_provider_is_path_style_in_us_east_1() {
        let p = StorageProvider {
            endpoint: Some("http://127.0.0.1:9000".into()),
            access_key: Some("a".into()),
            secret_key: Some("s".into()),
            ..StorageProvider::default()
        };
        let o = S3Options::for_provider("minio.store", &p);
        assert_eq!(o.region.as_deref(), Some("us-east-1"));
        assert!(o.path_style());
        assert_eq!(
            o.credentials.as_ref().map(|c| c.access_key_id.as_str()),
            Some("a")
        );
        let s3 = S3Options::for_provider("s3.other", &StorageProvider::default());
        assert_eq!(s3.region, None);
        assert_eq!(s3.force_path_style, None);
    }
}
