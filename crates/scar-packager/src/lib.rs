//! # scar-packager: images in, layers extracted safely
//!
//! Brings container images in from registries (OCI distribution API, through `oci-client`),
//! `docker save` archives, OCI archives and OCI layout directories ([`ImageSource`],
//! [`pull`]); keeps their blobs in a content-addressed cache ([`BlobCache`]); and applies
//! their layers onto a root directory ([`Extractor`]); and builds the
//! AWS Lambda packages: the `image` package ([`build_image_package`], then
//! [`write_oci_archive`] or [`push_image`]) and the `zip` package ([`build_zip_package`]).
//!
//! **May depend on:** scar-core, tokio, oci-client, tar, flate2, sha2 (and small helpers:
//! serde, hex, base64, uuid, tempfile, libc). No AWS SDK, no drawing: progress is reported
//! through the [`Progress`] trait and the frontend draws it.
//!
//! **Invariants:**
//! - extraction never writes outside the root: names with `..` are refused, absolute names
//!   and symlinks are resolved inside the root as in a chroot, hard links out are refused,
//!   device nodes are skipped (each reported in [`ExtractReport::warnings`]);
//! - every blob is verified against its sha256 digest before it enters the cache, and layers
//!   again as they are extracted; a blob in the cache is never fetched again;
//! - layers, archives, zips and uploads are streamed, never held in memory;
//! - packages are deterministic: the same inputs give the same zip bytes and image digests;
//! - packaging never follows a symlink out of a root and never packages device nodes;
//! - extraction into a destination is all-or-nothing (`<dest>.partial-*`, then rename; the
//!   staging is removed on an error or a panic, and swept by
//!   [`Extractor::sweep_stale_partials`] once the
//!   process that made it is gone, however it died);
//! - extraction is bounded ([`ExtractLimits`]: image size, compressed layers' expansion
//!   ratio, free disk space; header data at 16 MB), and sparse files keep their holes;
//! - no panic on any input: malformed or hostile layers are [`PackagerError::BadLayer`],
//!   [`PackagerError::TooLarge`] or [`PackagerError::Hostile`] (usage errors, exit 2).
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod cache;
#[cfg(feature = "registry")]
mod credentials;
mod digest;
mod error;
mod extract;
#[doc(hidden)]
pub mod fuzz;
mod gzip;
mod local;
mod manifest;
mod package;
mod parallel;
mod payload;
mod progress;
#[cfg(feature = "registry")]
mod registry;
mod source;

use std::sync::mpsc;

use serde::{Deserialize, Serialize};

pub use cache::{BlobCache, BlobWriter};
pub use error::PackagerError;
pub use extract::{Change, ExtractLimits, ExtractOptions, ExtractReport, Extractor};
pub use gzip::gzip_raw_layers;
pub use manifest::host_architecture;
#[cfg(feature = "registry")]
pub use package::push_image;
pub use package::{
    build_image_package, build_image_package_with_payload, build_zip_package,
    unchanged_image_package, write_oci_archive, ImagePackage, ManifestFormat, PushReport,
    ZipOptions, ZipReport, DIRECT_UPLOAD_LIMIT, LAMBDA_TASK_ROOT, UNZIPPED_LIMIT,
};
pub use payload::{Payload, PayloadEntry};
pub use progress::{NoProgress, Phase, Progress};
pub use scar_core::config::RegistryMirrors;
pub use source::ImageSource;

/// One layer of a pulled image, by digest of its (possibly compressed) blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRef {
    /// `sha256:<hex>`: the cache key.
    pub digest: String,
    pub media_type: String,
    pub size: u64,
}

/// An image whose config and layers are all in the cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PulledImage {
    /// The source as the user named it.
    pub source: String,
    /// A stable id of the image: the platform manifest's digest (for `docker save`
    /// archives, the config's digest).
    pub manifest_digest: String,
    pub config: scar_core::ImageConfig,
    /// The config's architecture (`amd64`, `arm64`, ...).
    pub architecture: String,
    /// Bottom layer first.
    pub layers: Vec<LayerRef>,
}

/// Brings `source` into `cache`: every blob of the chosen image ends up in the cache,
/// verified. Blobs already there are not fetched again. Local sources run on a blocking
/// thread.
///
/// ```no_run
/// # async fn demo() -> Result<(), scar_packager::PackagerError> {
/// use scar_packager::{pull, BlobCache, ImageSource, NoProgress};
/// let cache = BlobCache::new("/tmp/scar-cache");
/// let image = pull(&ImageSource::detect("busybox")?, &cache, &NoProgress).await?;
/// println!("{} has {} layers", image.manifest_digest, image.layers.len());
/// # Ok(()) }
/// ```
pub async fn pull(
    source: &ImageSource,
    cache: &BlobCache,
    progress: &dyn Progress,
) -> Result<PulledImage, PackagerError> {
    pull_through(source, cache, progress, &RegistryMirrors::default()).await
}

/// [`pull`], a registry's images from the first of its `mirrors` that has them (in their
/// order), else from the registry itself, as Docker's `registry-mirrors` do; each mirror
/// passed over is said in a [`Progress::warn`], the one that served the image in a
/// [`Progress::note`]. What a mirror serves is verified as what
/// any registry serves.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use scar_packager::{pull_through, BlobCache, ImageSource, NoProgress, RegistryMirrors};
/// let mut mirrors = RegistryMirrors::default();
/// mirrors.add("docker.io", "http://127.0.0.1:5000")?;
/// let cache = BlobCache::new("/tmp/scar-cache");
/// let image = pull_through(&ImageSource::detect("grycap/cowsay")?, &cache, &NoProgress, &mirrors).await?;
/// # Ok(()) }
/// ```
pub async fn pull_through(
    source: &ImageSource,
    cache: &BlobCache,
    progress: &dyn Progress,
    mirrors: &RegistryMirrors,
) -> Result<PulledImage, PackagerError> {
    pull_arch(source, cache, progress, mirrors, None).await
}

/// [`pull_through`] for `architecture` (OCI's name: `amd64`, `arm64`): a registry's
/// manifest list gives its image for it; any other image (a single-platform one, an
/// archive's) must be of it, else [`PackagerError::NoMatchingPlatform`] says which
/// architectures the source has.
pub async fn pull_for_architecture(
    source: &ImageSource,
    cache: &BlobCache,
    progress: &dyn Progress,
    mirrors: &RegistryMirrors,
    architecture: &str,
) -> Result<PulledImage, PackagerError> {
    let image = pull_arch(source, cache, progress, mirrors, Some(architecture)).await?;
    if !image.architecture.is_empty() && image.architecture != architecture {
        return Err(PackagerError::NoMatchingPlatform {
            source_name: format!("`{source}`"),
            architecture: architecture.to_string(),
            available: format!("the image it gives is linux/{}", image.architecture),
        });
    }
    Ok(image)
}

async fn pull_arch(
    source: &ImageSource,
    cache: &BlobCache,
    progress: &dyn Progress,
    mirrors: &RegistryMirrors,
    architecture: Option<&str>,
) -> Result<PulledImage, PackagerError> {
    let cache_owned = cache.clone();
    let mut image = match source {
        #[cfg(feature = "registry")]
        ImageSource::Registry(r) => {
            let arch = architecture.unwrap_or_else(|| host_architecture());
            return registry::pull(r, cache, progress, mirrors, arch).await;
        }
        #[cfg(not(feature = "registry"))]
        ImageSource::Registry(r) => {
            let _ = (mirrors, architecture); // A build without registries has nothing to mirror.
            return Err(PackagerError::Unsupported {
                what: format!(
                    "pulling `{r}`: this build has no registry support (feature `registry`)"
                ),
            });
        }
        ImageSource::DockerArchive(p) => {
            let p = p.clone();
            blocking(progress, move |pr| {
                local::pull_archive(&p, false, &cache_owned, pr)
            })
            .await?
        }
        ImageSource::OciArchive(p) => {
            let p = p.clone();
            blocking(progress, move |pr| {
                local::pull_archive(&p, true, &cache_owned, pr)
            })
            .await?
        }
        ImageSource::OciLayout { path, tag } => {
            let (p, t) = (path.clone(), tag.clone());
            blocking(progress, move |pr| {
                local::pull_layout(&p, t.as_deref(), &cache_owned, pr)
            })
            .await?
        }
    };
    image.source = source.to_string();
    Ok(image)
}

enum Event {
    Start(Phase, Option<u64>),
    Advance(u64),
    Blob(String, bool),
    Finish,
    Warn(String),
    Note(String),
}

/// A [`Progress`] usable from a blocking thread: events are forwarded to the caller's.
struct Forward(mpsc::Sender<Event>);

impl Progress for Forward {
    fn start(&self, phase: Phase, total: Option<u64>) {
        let _ = self.0.send(Event::Start(phase, total));
    }
    fn advance(&self, bytes: u64) {
        let _ = self.0.send(Event::Advance(bytes));
    }
    fn blob(&self, digest: &str, cached: bool) {
        let _ = self.0.send(Event::Blob(digest.to_string(), cached));
    }
    fn finish(&self) {
        let _ = self.0.send(Event::Finish);
    }
    fn warn(&self, msg: &str) {
        let _ = self.0.send(Event::Warn(msg.to_string()));
    }
    fn note(&self, msg: &str) {
        let _ = self.0.send(Event::Note(msg.to_string()));
    }
}

fn deliver(progress: &dyn Progress, ev: Event) {
    match ev {
        Event::Start(p, t) => progress.start(p, t),
        Event::Advance(b) => progress.advance(b),
        Event::Blob(d, c) => progress.blob(&d, c),
        Event::Finish => progress.finish(),
        Event::Warn(m) => progress.warn(&m),
        Event::Note(m) => progress.note(&m),
    }
}

/// The directory `dest` goes into (`.` for a bare file name), created when missing.
fn parent_dir(dest: &std::path::Path) -> Result<std::path::PathBuf, PackagerError> {
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| PackagerError::io("create directory", &dir, e))?;
    Ok(dir)
}

/// A temporary file beside `dest` (same file system, so `persist` is a rename), and a
/// second handle to write it through.
fn temp_file_beside(
    dest: &std::path::Path,
    prefix: &str,
) -> Result<(tempfile::NamedTempFile, std::fs::File), PackagerError> {
    let dir = parent_dir(dest)?;
    let tmp = tempfile::Builder::new()
        .prefix(prefix)
        .tempfile_in(&dir)
        .map_err(|e| PackagerError::io("create temporary file in", &dir, e))?;
    let file = tmp
        .as_file()
        .try_clone()
        .map_err(|e| PackagerError::io("open", tmp.path(), e))?;
    Ok((tmp, file))
}

/// Feeds everything `reader` yields to `f`, one chunk of at most 128 KiB at a time, and
/// returns how many bytes that was. A read interrupted by a signal is retried; another
/// read error becomes an `E` through `read_error`.
pub(crate) fn for_each_chunk<E>(
    mut reader: impl std::io::Read,
    read_error: impl FnOnce(std::io::Error) -> E,
    mut f: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<u64, E> {
    let mut buf = vec![0u8; 128 * 1024];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(e)),
        };
        f(&buf[..n])?;
        total += n as u64;
    }
}

async fn blocking<T: Send + 'static>(
    progress: &dyn Progress,
    f: impl FnOnce(&dyn Progress) -> Result<T, PackagerError> + Send + 'static,
) -> Result<T, PackagerError> {
    let (tx, rx) = mpsc::channel();
    let mut handle = tokio::task::spawn_blocking(move || f(&Forward(tx)));
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(50));
    let result = loop {
        tokio::select! {
            r = &mut handle => break r,
            _ = tick.tick() => {
                while let Ok(ev) = rx.try_recv() {
                    deliver(progress, ev);
                }
            }
        }
    };
    while let Ok(ev) = rx.try_recv() {
        deliver(progress, ev);
    }
    match result {
        Ok(r) => r,
        Err(join) => Err(PackagerError::io(
            "run the background task for",
            "image",
            std::io::Error::other(join.to_string()),
        )),
    }
}
