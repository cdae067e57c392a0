//! Pushing an image package to a registry (feature `registry`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use oci_client::errors::OciDistributionError;
use oci_client::RegistryOperation;
use tokio::io::AsyncReadExt;

use super::image::{ImagePackage, ManifestFormat, PushReport};
use crate::cache::BlobCache;
use crate::credentials::DockerConfig;
use crate::error::PackagerError;
use crate::gzip::gzip_raw_layers;
use crate::progress::{Phase, Progress};
use crate::registry::Ctx;

/// A file as a stream of chunks, counting what was read (the upload's progress).
fn file_stream(
    file: tokio::fs::File,
    sent: Arc<AtomicU64>,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, OciDistributionError>> + Send + 'static {
    futures_util::stream::unfold(Some(file), move |state| {
        let sent = Arc::clone(&sent);
        async move {
            let mut file = state?;
            let mut buf = vec![0u8; 256 * 1024];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    sent.fetch_add(n as u64, Ordering::Relaxed);
                    Some((Ok(bytes::Bytes::from(buf)), Some(file)))
                }
                Err(e) => Some((Err(OciDistributionError::IoError(e)), None)),
            }
        }
    })
}

/// Pushes `package` to `reference` (`host[:port]/repo[:tag]`; plain HTTP on loopback).
/// Uncompressed layers (as `docker save` writes them) are pushed gzipped (see
/// [`crate::gzip_raw_layers`]). `credentials` are used as basic auth (ECR gives them from its
/// authorization token); without them, what Docker's config file gives for the registry
/// (its credential helpers included), else anonymous. Blobs the registry already has are
/// not uploaded (checked with `HEAD`); others are streamed from the cache in one `PUT`
/// each. Progress: `Phase::Push`, `blob(digest, skipped)`, bytes uploaded.
pub async fn push_image(
    package: &ImagePackage,
    cache: &BlobCache,
    reference: &str,
    credentials: Option<(String, String)>,
    format: ManifestFormat,
    progress: &dyn Progress,
) -> Result<PushReport, PackagerError> {
    let docker = DockerConfig::from_env();
    push_to(
        Ctx::connect(reference, credentials, true, &docker).await?,
        package,
        cache,
        format,
        progress,
    )
    .await
}

/// [`push_image`] through a connected context (see [`Ctx::connect`]).
pub(crate) async fn push_to(
    (parsed, ctx): (oci_client::Reference, Ctx<'_>),
    package: &ImagePackage,
    cache: &BlobCache,
    format: ManifestFormat,
    progress: &dyn Progress,
) -> Result<PushReport, PackagerError> {
    let reference = ctx.shown;
    let text = reference.strip_prefix("docker://").unwrap_or(reference);
    // What goes over the network is compressed: uncompressed layers (from `docker save`
    // archives) are pushed gzipped, under their gzip digests (the config's diff_ids stay).
    let package = &{
        let (pkg, cache_owned) = (package.clone(), cache.clone());
        crate::blocking(progress, move |p| {
            let (layers, _) = gzip_raw_layers(&pkg.layers, &cache_owned, p)?;
            Ok(ImagePackage { layers, ..pkg })
        })
        .await?
    };
    let (manifest, manifest_digest) = package.manifest(cache, format)?;
    let blobs = package.blobs();
    let total: u64 = blobs.iter().map(|(_, s)| s).sum();
    progress.start(Phase::Push, Some(total));

    ctx.client
        .auth(&parsed, &ctx.credentials.auth, RegistryOperation::Push)
        .await
        .map_err(|e| ctx.err("authenticating for push", text, e))?;

    let mut report = PushReport {
        reference: reference.to_string(),
        manifest_digest: manifest_digest.clone(),
        pushed: Vec::new(),
        skipped: Vec::new(),
        pushed_bytes: 0,
    };
    let mut done = std::collections::HashSet::new();
    for (digest, size) in blobs {
        if !done.insert(digest.clone()) {
            continue;
        }
        let action = format!("checking blob {digest}");
        let exists = ctx
            .client
            .blob_exists(&parsed, &digest)
            .await
            .map_err(|e| ctx.err(&action, text, e))?;
        if exists {
            progress.blob(&digest, true);
            progress.advance(size);
            report.skipped.push(digest);
            continue;
        }
        let path = cache.path(&digest);
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| PackagerError::io("open cached blob", &path, e))?;
        let len = file
            .metadata()
            .await
            .map_err(|e| PackagerError::io("read cached blob", &path, e))?
            .len();
        let sent = Arc::new(AtomicU64::new(0));
        let stream = file_stream(file, Arc::clone(&sent));
        let action = format!("uploading blob {digest}");
        let mut reported = 0u64;
        let result = {
            let upload = ctx
                .client
                .push_blob_stream(&parsed, stream, &digest, Some(len));
            let mut upload = std::pin::pin!(upload);
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tokio::select! {
                    r = &mut upload => break r,
                    _ = tick.tick() => {
                        let now = sent.load(Ordering::Relaxed);
                        progress.advance(now - reported);
                        reported = now;
                    }
                }
            }
        };
        result.map_err(|e| ctx.err(&action, text, e))?;
        progress.advance(len.saturating_sub(reported));
        progress.blob(&digest, false);
        report.pushed_bytes += len;
        report.pushed.push(digest);
    }
    let content_type = format
        .media_type()
        .parse()
        .map_err(|_| PackagerError::Unsupported {
            what: "manifest media type".into(),
        })?;
    ctx.client
        .push_manifest_raw(&parsed, manifest, content_type)
        .await
        .map_err(|e| ctx.err("pushing the manifest", text, e))?;
    progress.finish();
    Ok(report)
}
