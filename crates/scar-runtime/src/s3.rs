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
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::primitives::ByteStream;

use crate::storage::Storage;

pub use scar_s3::{S3Options, StaticCredentials};

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
        S3Storage::new(S3Options::for_provider(id, &p))
    }

    /// Whether requests use path-style addressing.
    pub fn path_style(&self) -> bool {
        self.options.path_style()
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
            .get_or_init(|| rt.block_on(self.options.client(Some(https_client()))));
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
        rt.block_on(scar_s3::list(client, bucket, prefix))
            .map_err(|e| {
                let kind = match e.status {
                    Some(404) => std::io::ErrorKind::NotFound,
                    Some(401 | 403) => std::io::ErrorKind::PermissionDenied,
                    _ => std::io::ErrorKind::Other,
                };
                std::io::Error::new(kind, e.to_string())
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
