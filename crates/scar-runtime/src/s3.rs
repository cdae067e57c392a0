//! Buckets in S3 (feature `s3`): where input objects come from and outputs go on AWS Lambda.
//!
//! [`S3Storage`] is lazy: nothing is read, resolved or connected until the first
//! download or upload, so a function that never touches a bucket never needs credentials
//! and starts as fast as without it. The client comes from the standard chain
//! (`aws-config`): on Lambda, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN` and `AWS_REGION` in the environment. `AWS_ENDPOINT_URL_S3` and
//! `AWS_ENDPOINT_URL` are read by the SDK itself; when an endpoint is overridden (an
//! S3-compatible store, moto), addressing is path-style and checksums are only sent where
//! the API requires them, which such stores understand.
//!
//! The [`Storage`] trait is synchronous (the supervisor calls it from a blocking thread);
//! the SDK is async. `S3Storage` owns a small tokio runtime (one worker, for the HTTP
//! connections' background tasks) and blocks on it: this works from any thread that is not
//! itself running async code, with or without another runtime around it.

use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::primitives::ByteStream;

use crate::storage::Storage;

/// The variables that override S3's endpoint (read by the SDK itself).
const ENDPOINT_VARS: [&str; 2] = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"];
/// Set to `true`, the SDK ignores [`ENDPOINT_VARS`].
const IGNORE_ENDPOINTS_VAR: &str = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS";

/// How to reach S3. Whatever is `None` comes from the standard chain (environment,
/// profiles, container and instance metadata).
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// An S3-compatible endpoint, e.g. `http://127.0.0.1:5000`.
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub credentials: Option<StaticCredentials>,
    /// Path-style addressing (`<endpoint>/<bucket>/<key>`); by default on when an
    /// endpoint is overridden (here or by the environment), virtual-hosted otherwise.
    pub force_path_style: Option<bool>,
}

/// Fixed credentials (tests, S3-compatible stores).
#[derive(Clone)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never printed: secrets stay out of logs, `--json` and error messages.
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Buckets as S3 buckets, through the official SDK.
pub struct S3Storage {
    options: S3Options,
    runtime: OnceLock<tokio::runtime::Runtime>,
    client: OnceLock<aws_sdk_s3::Client>,
}

impl std::fmt::Debug for S3Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Storage")
            .field("options", &self.options)
            .field("connected", &self.client.get().is_some())
            .finish()
    }
}

impl S3Storage {
    /// S3 as the standard chain configures it. Reads nothing yet.
    pub fn from_environment() -> S3Storage {
        S3Storage::new(S3Options::default())
    }

    /// S3 with these settings over the standard chain's. Reads nothing yet.
    pub fn new(options: S3Options) -> S3Storage {
        S3Storage {
            options,
            runtime: OnceLock::new(),
            client: OnceLock::new(),
        }
    }

    /// The storage of provider `id` (`minio.<id>`: path-style, region `us-east-1` unless
    /// given; `s3.<id>`) with its endpoint and keys. Reads nothing yet.
    pub fn for_provider(id: &str, p: scar_core::StorageProvider) -> S3Storage {
        let credentials = match (p.access_key, p.secret_key) {
            (Some(access_key_id), Some(secret_access_key)) => Some(StaticCredentials {
                access_key_id,
                secret_access_key,
                session_token: None,
            }),
            _ => None,
        };
        let minio = id.starts_with(scar_core::spec::MINIO_PREFIX);
        S3Storage::new(S3Options {
            endpoint_url: p.endpoint,
            region: p.region.or_else(|| minio.then(|| "us-east-1".to_string())),
            credentials,
            force_path_style: minio.then_some(true),
        })
    }

    /// Whether requests use path-style addressing.
    pub fn path_style(&self) -> bool {
        self.options
            .force_path_style
            .unwrap_or_else(|| self.options.endpoint_url.is_some() || endpoint_in_environment())
    }

    fn runtime(&self) -> std::io::Result<&tokio::runtime::Runtime> {
        if let Some(rt) = self.runtime.get() {
            return Ok(rt);
        }
        let built = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("scar-s3")
            .enable_all()
            .build()?;
        let mut spare = Some(built);
        let rt = self
            .runtime
            .get_or_init(|| spare.take().expect("taken once"));
        if let Some(lost) = spare {
            // Another thread got there first.
            lost.shutdown_background();
        }
        Ok(rt)
    }

    fn client(&self) -> std::io::Result<(&tokio::runtime::Runtime, &aws_sdk_s3::Client)> {
        let rt = self.runtime()?;
        let client = self
            .client
            .get_or_init(|| rt.block_on(connect(&self.options, self.path_style())));
        Ok((rt, client))
    }
}

impl S3Storage {
    /// The objects under `prefix` in `bucket`, every page (folder markers, keys ending in
    /// `/`, left out). Blocks: from async code, call it on a blocking thread
    /// (`tokio::task::spawn_blocking`).
    pub fn list(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> std::io::Result<Vec<scar_core::provider::ObjectInfo>> {
        let (rt, client) = self.client()?;
        rt.block_on(async {
            let mut out = Vec::new();
            let mut pages = client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| sdk_error("ListObjectsV2", bucket, prefix, e))?;
                for object in page.contents() {
                    let Some(key) = object.key().filter(|k| !k.ends_with('/')) else {
                        continue;
                    };
                    out.push(scar_core::provider::ObjectInfo {
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
                            .and_then(|t| {
                                t.fmt(aws_sdk_s3::primitives::DateTimeFormat::DateTime).ok()
                            })
                            .unwrap_or_default(),
                    });
                }
            }
            Ok(out)
        })
    }
}

impl Drop for S3Storage {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which async code may not do: let it go in the background.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

async fn connect(options: &S3Options, path_style: bool) -> aws_sdk_s3::Client {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &options.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &options.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(c) = &options.credentials {
        loader = loader.credentials_provider(Credentials::new(
            &c.access_key_id,
            &c.secret_access_key,
            c.session_token.clone(),
            None,
            "scar",
        ));
    }
    loader = loader.http_client(https_client());
    let shared = loader.load().await;
    let mut config = aws_sdk_s3::config::Builder::from(&shared);
    if path_style {
        // S3-compatible stores: path-style, and no checksums beyond what the API requires
        // (the newer aws-chunked trailing checksums are not understood everywhere).
        config = config
            .force_path_style(true)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    }
    aws_sdk_s3::Client::from_conf(config.build())
}

/// The SDK's default HTTPS client (hyper + rustls with aws-lc), trusting the image's CA
/// certificates when it has any and Mozilla's roots always: the supervisor runs inside
/// the user's image, and many images (debian, ubuntu, distroless/static) have none.
pub(crate) fn https_client() -> aws_sdk_s3::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
    use base64::Engine as _;
    let native = rustls_native_certs::load_native_certs();
    let mut trust = tls::TrustStore::empty().with_native_roots(!native.certs.is_empty());
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut pem = String::new();
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        pem.push_str(&b64.encode(cert.as_ref()));
        pem.push_str("\n-----END CERTIFICATE-----\n");
    }
    trust = trust.with_pem_certificate(pem);
    let builder = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
    match tls::TlsContext::builder().with_trust_store(trust).build() {
        Ok(context) => builder.tls_context(context).build_https(),
        Err(_) => builder.build_https(),
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

impl Storage for S3Storage {
    fn download(&self, bucket: &str, key: &str, dest: &Path) -> std::io::Result<u64> {
        let (rt, client) = self.client()?;
        let result = rt.block_on(async {
            let object = client
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| sdk_error("GetObject", bucket, key, e))?;
            let mut body = object.body;
            // Streamed to the file. This future runs on the calling (blocking) thread, so
            // plain file writes are fine here.
            let mut file = std::fs::File::create(dest)?;
            let mut written = 0u64;
            while let Some(chunk) = body.try_next().await.map_err(std::io::Error::other)? {
                file.write_all(&chunk)?;
                written += chunk.len() as u64;
            }
            file.flush()?;
            Ok(written)
        });
        if result.is_err() {
            let _ = std::fs::remove_file(dest);
        }
        result
    }

    fn upload(&self, src: &Path, bucket: &str, key: &str, _chain: u32) -> std::io::Result<()> {
        // S3 has no chain marks: on AWS, Lambda tracks chains itself.
        let (rt, client) = self.client()?;
        rt.block_on(async {
            let body = ByteStream::from_path(src)
                .await
                .map_err(std::io::Error::other)?;
            client
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(body)
                .send()
                .await
                .map_err(|e| sdk_error("PutObject", bucket, key, e))?;
            Ok(())
        })
    }
}

/// An SDK failure as an I/O error of the closest kind, with the whole cause chain in the
/// message (credentials are never part of it).
fn sdk_error<E>(op: &str, bucket: &str, key: &str, e: SdkError<E, HttpResponse>) -> std::io::Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    use std::io::ErrorKind;
    let kind = match &e {
        SdkError::TimeoutError(_) => ErrorKind::TimedOut,
        _ => match e.raw_response().map(|r| r.status().as_u16()) {
            Some(404) => ErrorKind::NotFound,
            Some(401 | 403) => ErrorKind::PermissionDenied,
            _ => ErrorKind::Other,
        },
    };
    std::io::Error::new(
        kind,
        format!("S3 {op} s3://{bucket}/{key}: {}", DisplayErrorContext(&e)),
    )
}
