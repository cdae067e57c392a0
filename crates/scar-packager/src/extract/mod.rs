//! Safe layer extraction: an [`Extractor`] applies image layers onto a root.
//!
//! Every entry name is normalised (leading `/` dropped, `.` dropped, `..` refused) and its
//! parent directories are resolved *inside* the root, one component at a time, following
//! symlinks the way a chroot would (absolute targets restart at the root, `..` stops at
//! the root). The final component is never followed. So nothing is ever written outside the
//! root, whatever symlinks, hard links or names the layers contain.
//!
//! - `apply`: layers onto one root: decompression, the tar stream, opaque directories,
//!   directory modes at the end;
//! - `entry`: one tar entry onto the root: whiteouts, files, links, devices, modes;
//! - `path`: entry names, and their resolution inside the root;
//! - `sparse`: GNU sparse maps in PAX headers;
//! - `limits`: the bounds (image size, expansion ratio, header data, free space);
//! - `staging`: `<dest>.partial-*` directories, their locks and sweeping;
//! - `report`: what an extraction did;
//! - `fs`: file-system calls that never follow a final symlink.

mod apply;
mod entry;
mod fs;
mod limits;
mod path;
mod report;
mod sparse;
mod staging;

use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::digest::StreamDigest;

use self::apply::{Applier, LayerInfo};
use crate::cache::BlobCache;
use crate::error::PackagerError;
use crate::progress::{Phase, Progress};
use crate::PulledImage;

pub(crate) use apply::is_gzip;
pub use report::{Change, ExtractReport};
pub use scar_core::config::ExtractLimits;

/// How to extract: the bounds, and whether hostile entries are errors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtractOptions {
    pub limits: ExtractLimits,
    /// Any hostile entry (a path out of the root, an absolute name, a hard link out, a
    /// symlink loop) is an error instead of being skipped and reported.
    pub strict: bool,
}

impl ExtractOptions {
    /// No limits, not strict: for layers that are trusted as they are.
    pub const UNLIMITED: ExtractOptions = ExtractOptions {
        limits: ExtractLimits::UNLIMITED,
        strict: false,
    };
}

/// Applies image layers (gzip or plain tar) onto a root, within its [`ExtractOptions`].
/// What it dropped or changed of the layers it says in an [`ExtractReport`].
///
/// ```no_run
/// # fn demo() -> Result<(), scar_packager::PackagerError> {
/// use scar_packager::{ExtractOptions, Extractor};
/// let extractor = Extractor::new(ExtractOptions { strict: true, ..Default::default() });
/// let report = extractor.extract_layer_files(&["layer.tar".into()], "/tmp/root".as_ref())?;
/// println!("{} entries", report.entries);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extractor {
    options: ExtractOptions,
}

impl Extractor {
    pub fn new(options: ExtractOptions) -> Self {
        Extractor { options }
    }

    pub fn options(&self) -> &ExtractOptions {
        &self.options
    }

    /// Extracts all layers of a pulled image into `dest`, atomically: the work happens in
    /// `<dest>.partial-<random>`, renamed to `dest` on success and removed on failure.
    /// `dest` must not exist. Each layer is re-verified against its digest as it is read.
    /// What was dropped or changed is reported to `progress`: each entry as a note, then
    /// one summary warning.
    pub fn extract_image(
        &self,
        image: &PulledImage,
        cache: &BlobCache,
        dest: &Path,
        progress: &dyn Progress,
    ) -> Result<ExtractReport, PackagerError> {
        let result = staging::into_new_dir(dest, |partial| {
            self.apply_image(image, cache, partial, progress)
        });
        progress.finish();
        if let Ok(report) = &result {
            if let Some(summary) = report.summary() {
                progress.warn(&summary);
            }
        }
        result
    }

    /// Applies layer files (`docker save` / udocker `.layer` blobs, gzip or plain tar),
    /// bottom first, onto a new root at `dest`, atomically as [`Self::extract_image`] does.
    /// For layers that are already on disk and trusted as such (a package's own), so not
    /// digest-checked here; the limits still apply.
    pub fn extract_layer_files(
        &self,
        layers: &[PathBuf],
        dest: &Path,
    ) -> Result<ExtractReport, PackagerError> {
        staging::into_new_dir(dest, |partial| self.apply_layer_files(layers, partial))
    }

    /// Applies one layer onto an existing root directory (directory modes fixed at the
    /// end). The layer's compressed size is unknown here, so the expansion ratio is not
    /// checked; the image size and free space are.
    pub fn apply_layer(
        &self,
        reader: impl Read,
        root: &Path,
        report: &mut ExtractReport,
    ) -> Result<(), PackagerError> {
        let mut applier = Applier::new(root, self.options)?;
        let layer = LayerInfo {
            name: "layer",
            compressed: None,
        };
        applier.apply(reader, &layer, report)?;
        applier.finish(report)
    }

    /// Removes the staging directories (`<name>.partial-<id>`) in `dir` that a killed
    /// extraction left, and returns how many. A live extraction holds a lock on its
    /// staging directory (released by the kernel when the process dies, however it dies):
    /// those are left alone.
    pub fn sweep_stale_partials(dir: &Path) -> usize {
        staging::sweep_stale_partials(dir)
    }

    fn apply_layer_files(
        &self,
        layers: &[PathBuf],
        root: &Path,
    ) -> Result<ExtractReport, PackagerError> {
        let mut report = ExtractReport::default();
        let mut applier = Applier::new(root, self.options)?;
        let need: u64 = layers
            .iter()
            .filter_map(|l| std::fs::metadata(l).ok())
            .map(|m| m.len())
            .sum();
        limits::check_space(root, need, self.options.limits.min_free_bytes)?;
        for layer in layers {
            let file = std::fs::File::open(layer).map_err(|e| PackagerError::input(layer, e))?;
            let size = file.metadata().map(|m| m.len()).ok();
            let name = format!("layer {}", layer.display());
            let info = LayerInfo {
                name: &name,
                compressed: size,
            };
            applier.apply(BufReader::new(file), &info, &mut report)?;
        }
        applier.finish(&mut report)?;
        Ok(report)
    }

    fn apply_image(
        &self,
        image: &PulledImage,
        cache: &BlobCache,
        root: &Path,
        progress: &dyn Progress,
    ) -> Result<ExtractReport, PackagerError> {
        let total: u64 = image.layers.iter().map(|l| l.size).sum();
        limits::check_space(root, total, self.options.limits.min_free_bytes)?;
        progress.start(Phase::Extract, Some(total));
        let mut report = ExtractReport::default();
        let mut applier = Applier::new(root, self.options)?;
        for layer in &image.layers {
            let before = report.warnings.len();
            apply_cached_layer(&mut applier, cache, &layer.digest, progress, &mut report)?;
            for w in &report.warnings[before..] {
                progress.note(w);
            }
        }
        let before = report.warnings.len();
        applier.finish(&mut report)?;
        for w in &report.warnings[before..] {
            progress.note(w);
        }
        Ok(report)
    }
}

/// Applies the layer `digest` from the cache, checking its digest as it is read.
fn apply_cached_layer(
    applier: &mut Applier,
    cache: &BlobCache,
    digest: &str,
    progress: &dyn Progress,
    report: &mut ExtractReport,
) -> Result<(), PackagerError> {
    if !cache.contains(digest) {
        return Err(PackagerError::MissingBlob {
            source_name: format!("the blob cache `{}`", cache.root().display()),
            digest: digest.to_string(),
        });
    }
    let file = cache.open(digest)?;
    let compressed = file.metadata().map(|m| m.len()).ok();
    let mut verifying = Verifying {
        inner: file,
        hasher: StreamDigest::new(),
        progress,
    };
    let name = format!("layer {digest}");
    let info = LayerInfo {
        name: &name,
        compressed,
    };
    applier.apply(&mut verifying, &info, report)?;
    // Tar readers stop at the end-of-archive marker: hash the rest too.
    io::copy(&mut verifying, &mut io::sink())
        .map_err(|e| PackagerError::io("read cached blob", cache.path(digest), e))?;
    let actual = (verifying.hasher.finish())
        .map_err(|e| PackagerError::io("read cached blob", cache.path(digest), e))?;
    if actual != digest {
        return Err(PackagerError::DigestMismatch {
            what: format!("{name} (in the cache)"),
            expected: digest.to_string(),
            actual,
        });
    }
    Ok(())
}

/// A reader that hashes and counts what passes through it.
struct Verifying<'p, R> {
    inner: R,
    hasher: StreamDigest,
    progress: &'p dyn Progress,
}

impl<R: Read> Read for Verifying<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.progress.advance(n as u64);
        Ok(n)
    }
}
