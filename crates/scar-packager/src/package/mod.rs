//! Packages: how a pulled image becomes something AWS Lambda runs.
//!
//! - [`build_image_package`]: the image plus one layer with the supervisor and the
//!   function file at `/opt/scar/`, written as an OCI archive ([`write_oci_archive`]) or
//!   pushed to a registry ([`push_image`]);
//! - [`build_zip_package`]: SCAR's zip: `bootstrap`, `function.json` and a udocker tree.
//!
//! Both record the image's own command (entrypoint, cmd, env, workdir, user) in the
//! function file, so the supervisor runs it as the image would.

mod image;
#[cfg(feature = "registry")]
mod push;
mod udocker;
mod zipwriter;

pub use image::{
    build_image_package, build_image_package_with_payload, unchanged_image_package,
    write_oci_archive, ImagePackage, ManifestFormat, PushReport,
};
#[cfg(feature = "registry")]
pub use push::push_image;
#[cfg(all(test, feature = "registry"))]
pub(crate) use push::push_to;
pub use udocker::{
    build_zip_package, ZipOptions, ZipReport, DIRECT_UPLOAD_LIMIT, LAMBDA_TASK_ROOT, UNZIPPED_LIMIT,
};

use std::path::{Path, PathBuf};

use scar_core::event::FunctionFile;

use crate::cache::BlobCache;
use crate::error::PackagerError;
use crate::manifest::parse;
use crate::PulledImage;

/// What a package is built from, owned so that a blocking task can take it: the pulled
/// image, the cache that holds its blobs, the function file and the supervisor.
pub(crate) struct PackageInputs {
    pub(crate) image: PulledImage,
    pub(crate) cache: BlobCache,
    pub(crate) function: FunctionFile,
    pub(crate) supervisor: PathBuf,
    /// The function's extra payload, for `/var/task` (SCAR's `-ep`).
    pub(crate) extra_payload: Option<crate::Payload>,
}

impl PackageInputs {
    pub(crate) fn new(
        image: &PulledImage,
        cache: &BlobCache,
        function: &FunctionFile,
        supervisor: &Path,
    ) -> PackageInputs {
        PackageInputs {
            image: image.clone(),
            cache: cache.clone(),
            function: function.clone(),
            supervisor: supervisor.to_path_buf(),
            extra_payload: None,
        }
    }
}

/// The function file a package carries: the caller's, with the image's command recorded.
pub(crate) fn function_file(image: &PulledImage, function: &FunctionFile) -> FunctionFile {
    let mut f = function.clone();
    f.image = image.config.clone();
    f
}

pub(crate) fn function_json(f: &FunctionFile) -> Result<Vec<u8>, PackagerError> {
    let mut bytes = serde_json::to_vec_pretty(f).map_err(|e| PackagerError::Unsupported {
        what: format!("function file that cannot be serialized: {e}"),
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// The digest of the image's config blob. `PulledImage::manifest_digest` names the
/// platform manifest (in the cache), or for `docker save` archives the config itself.
pub(crate) fn config_digest(
    image: &PulledImage,
    cache: &BlobCache,
) -> Result<String, PackagerError> {
    let bytes = cache.read_small(&image.manifest_digest)?;
    let doc: serde_json::Value = parse(&bytes, &image.source, "manifest")?;
    if let Some(d) = doc
        .get("config")
        .and_then(|c| c.get("digest"))
        .and_then(|d| d.as_str())
    {
        crate::manifest::check_digest(d, &image.source)?;
        return Ok(d.to_string());
    }
    if doc.get("rootfs").is_some() {
        return Ok(image.manifest_digest.clone());
    }
    Err(PackagerError::BadManifest {
        source_name: image.source.clone(),
        what: "manifest".into(),
        reason: "it names no config".into(),
    })
}

/// Reads the image's config JSON whole.
pub(crate) fn read_config(
    image: &PulledImage,
    cache: &BlobCache,
) -> Result<(String, Vec<u8>), PackagerError> {
    let digest = config_digest(image, cache)?;
    let bytes = cache.read_small(&digest)?;
    Ok((digest, bytes))
}
