//! The `image` package: the base image's layers plus one layer holding the supervisor and
//! the function file, with the supervisor as entrypoint. Written as an OCI archive or
//! pushed to a registry (OCI or Docker schema 2 manifest).

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;
use scar_core::contract::{FUNCTION_FILE_PATH, SUPERVISOR_DIR, SUPERVISOR_PATH};
use scar_core::event::FunctionFile;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{function_file, function_json, read_config, PackageInputs};
use crate::cache::{BlobCache, BlobWriter};
use crate::error::PackagerError;
use crate::extract::is_gzip;
use crate::manifest::{parse, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, REF_NAME};
use crate::progress::{Phase, Progress};
use crate::{blocking, LayerRef, NoProgress, PulledImage};

const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
use crate::gzip::OCI_LAYER_GZIP;
const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Which manifest schema to write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ManifestFormat {
    /// `application/vnd.oci.image.manifest.v1+json` (the default; ECR and Lambda accept it).
    #[default]
    Oci,
    /// Docker image manifest v2, schema 2, for registries that only take Docker types.
    Docker,
}

impl ManifestFormat {
    /// The manifest's media type.
    pub fn media_type(self) -> &'static str {
        match self {
            ManifestFormat::Oci => OCI_MANIFEST,
            ManifestFormat::Docker => DOCKER_MANIFEST,
        }
    }
}

/// A built image package: every blob (base layers, the supervisor layer, the new config)
/// is in the cache; manifests are rendered on demand in either format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePackage {
    /// The base image, as the user named it.
    pub source: String,
    /// The new config blob.
    pub config_digest: String,
    pub config_size: u64,
    /// Bottom first; the last one is the supervisor layer (gzip), but in an
    /// [`unchanged_image_package`].
    pub layers: Vec<LayerRef>,
    /// sha256 of the supervisor layer's uncompressed tar (its diff_id in the config);
    /// empty in an [`unchanged_image_package`].
    pub supervisor_diff_id: String,
    pub architecture: String,
    /// What `/opt/scar/function.json` holds (the image's command recorded in `image`).
    pub function: FunctionFile,
}

/// The result of [`push_image`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// The reference pushed to.
    pub reference: String,
    /// Digest of the pushed manifest (`reference@digest` pulls exactly this image).
    pub manifest_digest: String,
    /// Blobs uploaded (layers and config).
    pub pushed: Vec<String>,
    /// Blobs the registry already had (not uploaded).
    pub skipped: Vec<String>,
    /// Bytes uploaded.
    pub pushed_bytes: u64,
}

fn layer_media_type(
    layer: &LayerRef,
    cache: &BlobCache,
    format: ManifestFormat,
) -> Result<&'static str, PackagerError> {
    let mt = layer.media_type.as_str();
    let gzip = if mt.ends_with("gzip") {
        true
    } else if mt.ends_with("zstd") {
        return match format {
            ManifestFormat::Oci => Ok(OCI_LAYER_ZSTD),
            ManifestFormat::Docker => Err(PackagerError::Unsupported {
                what: format!(
                    "layer {} is zstd-compressed, which Docker schema 2 manifests cannot carry (use the OCI format)",
                    layer.digest
                ),
            }),
        };
    } else if mt.ends_with(".tar") || mt.ends_with("tar") {
        false
    } else {
        let path = cache.path(&layer.digest);
        is_gzip(&path).map_err(|e| PackagerError::io("read cached blob", &path, e))?
    };
    Ok(match (format, gzip) {
        (ManifestFormat::Oci, true) => OCI_LAYER_GZIP,
        (ManifestFormat::Oci, false) => OCI_LAYER,
        (ManifestFormat::Docker, true) => DOCKER_LAYER_GZIP,
        (ManifestFormat::Docker, false) => DOCKER_LAYER,
    })
}

impl ImagePackage {
    /// The supervisor layer (the last one).
    pub fn supervisor_layer(&self) -> Option<&LayerRef> {
        self.layers.last()
    }

    /// The manifest in `format` and its digest. Blobs are named by the same digests in
    /// both formats; only the media types differ.
    pub fn manifest(
        &self,
        cache: &BlobCache,
        format: ManifestFormat,
    ) -> Result<(Vec<u8>, String), PackagerError> {
        let layers = self
            .layers
            .iter()
            .map(|l| {
                Ok(json!({
                    "mediaType": layer_media_type(l, cache, format)?,
                    "digest": l.digest,
                    "size": l.size,
                }))
            })
            .collect::<Result<Vec<_>, PackagerError>>()?;
        let config_type = match format {
            ManifestFormat::Oci => OCI_CONFIG,
            ManifestFormat::Docker => DOCKER_CONFIG,
        };
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": format.media_type(),
            "config": {"mediaType": config_type, "digest": self.config_digest, "size": self.config_size},
            "layers": layers,
        });
        let bytes = serde_json::to_vec(&manifest).map_err(|e| PackagerError::Unsupported {
            what: format!("manifest that cannot be serialized: {e}"),
        })?;
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        Ok((bytes, digest))
    }

    /// Every blob of the package: layers bottom first, then the config.
    pub(super) fn blobs(&self) -> Vec<(String, u64)> {
        self.layers
            .iter()
            .map(|l| (l.digest.clone(), l.size))
            .chain(std::iter::once((
                self.config_digest.clone(),
                self.config_size,
            )))
            .collect()
    }
}

/// Hashes what is written through it (the uncompressed layer, for its diff_id).
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

struct Sink(BlobWriter);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(io::Error::other)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn header(path: &str, kind: tar::EntryType, mode: u32, size: u64) -> io::Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path)?;
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_cksum();
    Ok(h)
}

/// The supervisor layer, deterministic (fixed times and owners, gzip without a time
/// stamp), streamed into the cache. Returns (blob digest, blob size, diff_id).
fn build_layer(
    cache: &BlobCache,
    supervisor: &Path,
    function_json: &[u8],
    extra_payload: Option<&crate::Payload>,
) -> Result<(String, u64, String), PackagerError> {
    let mut bin = File::open(supervisor).map_err(|e| PackagerError::input(supervisor, e))?;
    let bin_size = bin
        .metadata()
        .map_err(|e| PackagerError::input(supervisor, e))?
        .len();
    let writer = cache.writer()?;
    let hashing = Hashing {
        inner: GzEncoder::new(Sink(writer), Compression::default()),
        hasher: Sha256::new(),
    };
    let mut tar = tar::Builder::new(hashing);
    let dir = SUPERVISOR_DIR.trim_start_matches('/');
    let io_err = |e: io::Error| PackagerError::io("write the supervisor layer for", supervisor, e);
    let mut parents = Vec::new();
    let mut acc = String::new();
    for part in dir.split('/') {
        acc.push_str(part);
        acc.push('/');
        parents.push(acc.clone());
    }
    for p in &parents {
        let h = header(p, tar::EntryType::Directory, 0o755, 0).map_err(io_err)?;
        tar.append(&h, io::empty()).map_err(io_err)?;
    }
    let h = header(
        SUPERVISOR_PATH.trim_start_matches('/'),
        tar::EntryType::Regular,
        0o755,
        bin_size,
    )
    .map_err(io_err)?;
    let mut limited = (&mut bin).take(bin_size);
    tar.append(&h, &mut limited).map_err(io_err)?;
    if limited.limit() != 0 {
        return Err(PackagerError::Truncated {
            path: supervisor.to_path_buf(),
            entry: "(the supervisor binary shrank while it was read)".into(),
        });
    }
    let h = header(
        FUNCTION_FILE_PATH.trim_start_matches('/'),
        tar::EntryType::Regular,
        0o644,
        function_json.len() as u64,
    )
    .map_err(io_err)?;
    tar.append(&h, function_json).map_err(io_err)?;
    if let Some(payload) = extra_payload {
        append_payload(&mut tar, payload)?;
    }
    let hashing = tar.into_inner().map_err(io_err)?;
    let diff_id = format!("sha256:{}", hex::encode(hashing.hasher.finalize()));
    let Sink(writer) = hashing.inner.finish().map_err(io_err)?;
    let size = writer.len();
    let digest = writer.commit(None, "supervisor layer")?;
    Ok((digest, size, diff_id))
}

/// The extra payload's files under `var/task/`, where Lambda's task root is.
fn append_payload<W: Write>(
    tar: &mut tar::Builder<W>,
    payload: &crate::Payload,
) -> Result<(), PackagerError> {
    let task = scar_core::lambda::TASK_ROOT.trim_start_matches('/');
    let mut acc = String::new();
    for part in task.split('/') {
        acc.push_str(part);
        acc.push('/');
        let h = header(&acc, tar::EntryType::Directory, 0o755, 0)
            .map_err(|e| PackagerError::io("write the supervisor layer entry", &acc, e))?;
        tar.append(&h, io::empty())
            .map_err(|e| PackagerError::io("write the supervisor layer entry", &acc, e))?;
    }
    for e in &payload.entries {
        let name = Path::new(task).join(&e.rel);
        let err =
            |err: io::Error| PackagerError::io("write the supervisor layer entry", &name, err);
        match &e.source {
            None => {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(e.mode);
                h.set_size(0);
                h.set_mtime(0);
                tar.append_data(&mut h, &name, io::empty()).map_err(err)?;
            }
            Some(path) => {
                let mut file = File::open(path).map_err(|e| PackagerError::input(path, e))?;
                let size = file
                    .metadata()
                    .map_err(|e| PackagerError::input(path, e))?
                    .len();
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(e.mode);
                h.set_size(size);
                h.set_mtime(0);
                let mut limited = (&mut file).take(size);
                tar.append_data(&mut h, &name, &mut limited).map_err(err)?;
                if limited.limit() != 0 {
                    return Err(PackagerError::Truncated {
                        path: path.clone(),
                        entry: "(a file of the extra payload shrank while it was read)".into(),
                    });
                }
            }
        }
    }
    Ok(())
}

fn build_sync(
    inputs: &PackageInputs,
    progress: &dyn Progress,
) -> Result<ImagePackage, PackagerError> {
    let (image, cache) = (&inputs.image, &inputs.cache);
    progress.start(Phase::Package, None);
    let function = function_file(image, &inputs.function);
    let fjson = function_json(&function)?;
    let (_, base_config) = read_config(image, cache)?;
    let mut config: Value = parse(&base_config, &image.source, "image config")?;
    let Some(obj) = config.as_object_mut() else {
        return Err(PackagerError::BadManifest {
            source_name: image.source.clone(),
            what: "image config".into(),
            reason: "it is not a JSON object".into(),
        });
    };

    let diff_ids_len = obj
        .get("rootfs")
        .and_then(|r| r.get("diff_ids"))
        .and_then(|d| d.as_array())
        .map(Vec::len)
        .unwrap_or(0);
    if diff_ids_len != image.layers.len() {
        return Err(PackagerError::BadManifest {
            source_name: image.source.clone(),
            what: "image config".into(),
            reason: format!(
                "it lists {diff_ids_len} diff_ids for {} layers",
                image.layers.len()
            ),
        });
    }

    let (layer_digest, layer_size, diff_id) = build_layer(
        cache,
        &inputs.supervisor,
        &fjson,
        inputs.extra_payload.as_ref(),
    )?;
    progress.blob(&layer_digest, false);

    let c = obj.entry("config").or_insert_with(|| json!({}));
    if !c.is_object() {
        *c = json!({});
    }
    if let Some(c) = c.as_object_mut() {
        c.insert("Entrypoint".into(), json!([SUPERVISOR_PATH]));
        c.remove("Cmd");
    }
    if let Some(ids) = obj
        .get_mut("rootfs")
        .and_then(|r| r.get_mut("diff_ids"))
        .and_then(|d| d.as_array_mut())
    {
        ids.push(json!(diff_id));
    }
    if let Some(history) = obj.get_mut("history").and_then(|h| h.as_array_mut()) {
        history.push(json!({
            "created": "1970-01-01T00:00:00Z",
            "created_by": "scar: supervisor and function file in /opt/scar",
        }));
    }
    let config_bytes = serde_json::to_vec(&config).map_err(|e| PackagerError::Unsupported {
        what: format!("config that cannot be serialized: {e}"),
    })?;
    let config_digest = cache.ingest(&config_bytes[..], None, "image config", &NoProgress)?;
    progress.blob(&config_digest, false);

    let mut layers = image.layers.clone();
    layers.push(LayerRef {
        digest: layer_digest,
        media_type: OCI_LAYER_GZIP.into(),
        size: layer_size,
    });
    progress.finish();
    Ok(ImagePackage {
        source: image.source.clone(),
        config_digest,
        config_size: config_bytes.len() as u64,
        layers,
        supervisor_diff_id: diff_id,
        architecture: image.architecture.clone(),
        function,
    })
}

/// `image` as it is, to push unchanged (a Lambda container image with a runtime of its
/// own, `--runtime-client image`): its config and layers, no supervisor layer
/// (`supervisor_diff_id` is empty) and no function file.
pub fn unchanged_image_package(
    image: &PulledImage,
    cache: &BlobCache,
) -> Result<ImagePackage, PackagerError> {
    let (config_digest, config) = read_config(image, cache)?;
    Ok(ImagePackage {
        source: image.source.clone(),
        config_digest,
        config_size: config.len() as u64,
        layers: image.layers.clone(),
        supervisor_diff_id: String::new(),
        architecture: image.architecture.clone(),
        function: FunctionFile::default(),
    })
}

/// Builds the `image` package of `image`: its layers plus one layer with `supervisor` at
/// `/opt/scar/bootstrap` (mode 0755) and `function` at `/opt/scar/function.json`; the
/// config's entrypoint becomes the supervisor, its cmd is cleared, env and working dir
/// are kept; the image's own entrypoint and cmd are recorded in the function file's
/// `image` field. The new layer and config go into `cache` (deterministic: building
/// twice gives the same digests).
///
/// ```no_run
/// # async fn demo(image: scar_packager::PulledImage) -> Result<(), scar_packager::PackagerError> {
/// use scar_packager::{build_image_package, push_image, BlobCache, ManifestFormat, NoProgress};
/// let cache = BlobCache::new("/tmp/scar-cache");
/// let function = scar_core::event::FunctionFile { name: "f".into(), timeout_s: 300,
///     timeout_threshold_s: 10, ..Default::default() };
/// let pkg = build_image_package(&image, &cache, &function, "/usr/lib/scar/bootstrap".as_ref(),
///     &NoProgress).await?;
/// push_image(&pkg, &cache, "127.0.0.1:5000/scar-f:latest", None, ManifestFormat::Oci,
///     &NoProgress).await?;
/// # Ok(()) }
/// ```
pub async fn build_image_package(
    image: &PulledImage,
    cache: &BlobCache,
    function: &FunctionFile,
    supervisor: &Path,
    progress: &dyn Progress,
) -> Result<ImagePackage, PackagerError> {
    build_image_package_with_payload(image, cache, function, supervisor, None, progress).await
}

/// [`build_image_package`], with the files of `extra_payload` (SCAR's `-ep`) at
/// `/var/task` in the supervisor layer, as Lambda's task root has them in a zip package.
pub async fn build_image_package_with_payload(
    image: &PulledImage,
    cache: &BlobCache,
    function: &FunctionFile,
    supervisor: &Path,
    extra_payload: Option<&crate::Payload>,
    progress: &dyn Progress,
) -> Result<ImagePackage, PackagerError> {
    let mut inputs = PackageInputs::new(image, cache, function, supervisor);
    inputs.extra_payload = extra_payload.cloned();
    blocking(progress, move |p| build_sync(&inputs, p)).await
}

/// An OCI archive to write, owned so that a blocking task can take it.
struct OciArchive {
    package: ImagePackage,
    cache: BlobCache,
    dest: PathBuf,
    ref_name: String,
}

/// Writes `archive`, as [`write_oci_archive`] says; returns the manifest's digest.
fn write_archive_sync(
    archive: &OciArchive,
    progress: &dyn Progress,
) -> Result<String, PackagerError> {
    let OciArchive {
        package,
        cache,
        dest,
        ref_name,
    } = archive;
    let (manifest, manifest_digest) = package.manifest(cache, ManifestFormat::Oci)?;
    let blobs = package.blobs();
    let total: u64 = blobs.iter().map(|(_, s)| s).sum();
    progress.start(Phase::Package, Some(total));
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": OCI_MANIFEST,
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": {REF_NAME: ref_name},
        }],
    });
    let index = serde_json::to_vec(&index).map_err(|e| PackagerError::Unsupported {
        what: format!("index that cannot be serialized: {e}"),
    })?;
    let (tmp, file) = crate::temp_file_beside(dest, ".scar-oci-")?;
    let io_err = |e: io::Error| PackagerError::io("write OCI archive", dest, e);
    let mut tar = tar::Builder::new(io::BufWriter::with_capacity(256 * 1024, file));
    let small = |tar: &mut tar::Builder<_>, name: &str, bytes: &[u8]| -> io::Result<()> {
        let h = header(name, tar::EntryType::Regular, 0o644, bytes.len() as u64)?;
        tar.append(&h, bytes)
    };
    small(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io_err)?;
    small(&mut tar, "index.json", &index).map_err(io_err)?;
    for d in ["blobs/", "blobs/sha256/"] {
        let h = header(d, tar::EntryType::Directory, 0o755, 0).map_err(io_err)?;
        tar.append(&h, io::empty()).map_err(io_err)?;
    }
    let blob_name = |d: &str| format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
    small(&mut tar, &blob_name(&manifest_digest), &manifest).map_err(io_err)?;
    let mut seen = std::collections::HashSet::new();
    for (digest, _) in &blobs {
        if !seen.insert(digest.clone()) {
            continue;
        }
        let path = cache.path(digest);
        let f = cache.open(digest)?;
        let size = f
            .metadata()
            .map_err(|e| PackagerError::io("read cached blob", &path, e))?
            .len();
        let h = header(&blob_name(digest), tar::EntryType::Regular, 0o644, size).map_err(io_err)?;
        let mut limited = f.take(size);
        tar.append(&h, &mut limited).map_err(io_err)?;
        progress.blob(digest, true);
        progress.advance(size);
    }
    let mut out = tar.into_inner().map_err(io_err)?;
    out.flush().map_err(io_err)?;
    drop(out);
    tmp.as_file().sync_all().map_err(io_err)?;
    tmp.persist(dest)
        .map_err(|e| PackagerError::io("move OCI archive into", dest, e.error))?;
    progress.finish();
    Ok(manifest_digest)
}

/// Writes `package` as an OCI archive (a tar of an OCI image layout, as skopeo's
/// `oci-archive:` reads it) at `dest`, atomically; its index names the image `ref_name`
/// (`org.opencontainers.image.ref.name`, e.g. `latest` or `scar-NAME:latest`). Returns the
/// manifest's digest.
pub async fn write_oci_archive(
    package: &ImagePackage,
    cache: &BlobCache,
    dest: &Path,
    ref_name: &str,
    progress: &dyn Progress,
) -> Result<String, PackagerError> {
    let archive = OciArchive {
        package: package.clone(),
        cache: cache.clone(),
        dest: dest.to_path_buf(),
        ref_name: ref_name.to_string(),
    };
    blocking(progress, move |p| write_archive_sync(&archive, p)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_follow_the_format() {
        let cache = BlobCache::new("/nonexistent");
        let l = |mt: &str| LayerRef {
            digest: format!("sha256:{}", "a".repeat(64)),
            media_type: mt.into(),
            size: 1,
        };
        assert_eq!(
            layer_media_type(&l(DOCKER_LAYER_GZIP), &cache, ManifestFormat::Oci).unwrap(),
            OCI_LAYER_GZIP
        );
        assert_eq!(
            layer_media_type(&l(OCI_LAYER), &cache, ManifestFormat::Docker).unwrap(),
            DOCKER_LAYER
        );
        assert!(layer_media_type(&l(OCI_LAYER_ZSTD), &cache, ManifestFormat::Docker).is_err());
    }
}
