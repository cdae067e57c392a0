//! The bounds of an extraction: what the image and each compressed layer may expand to,
//! the header data an entry may carry, and the free space to keep on the disk.

use std::cell::Cell;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::apply::LayerInfo;
use super::fs::free_bytes;
use super::ExtractLimits;
use crate::error::PackagerError;

/// Header metadata (GNU long names, PAX records, sparse maps) an entry may carry: far
/// above any real one, low enough to be held in memory.
pub(super) const METADATA_MAX: u64 = 16 << 20;
/// Free space is checked again every time this much more was written.
const DISK_CHECK_EVERY: u64 = 64 << 20;
pub(super) const MB: u64 = 1 << 20;

/// Which bound an extraction hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Trip {
    Image,
    Ratio,
    Metadata,
}

/// Counts what a layer expands to and stops it at the limits. Shared by the readers
/// around the layer stream and the extractor (which charges sparse holes).
pub(super) struct Meter {
    /// This layer's expansion so far: decompressed tar bytes plus sparse holes.
    pub(super) expanded: Cell<u64>,
    /// What the layers before this one expanded to.
    image_before: u64,
    /// 0: no bound.
    image_cap: u64,
    /// 0: no bound (set once the layer is known to be compressed).
    pub(super) layer_cap: Cell<u64>,
    /// Bytes the tar reader may still read for the current entry's headers.
    pub(super) window: Cell<Option<u64>>,
    pub(super) tripped: Cell<Option<Trip>>,
    /// The layer's source (the file) failed, not its content.
    pub(super) source_failed: Cell<bool>,
}

impl Meter {
    /// A meter for a layer after layers that expanded to `image_before` bytes.
    pub(super) fn new(image_before: u64, image_cap: u64) -> Self {
        Meter {
            expanded: Cell::new(0),
            image_before,
            image_cap,
            layer_cap: Cell::new(0),
            window: Cell::new(None),
            tripped: Cell::new(None),
            source_failed: Cell::new(false),
        }
    }

    pub(super) fn check(&self, more: u64) -> Result<(), Trip> {
        let after = self.expanded.get().saturating_add(more);
        if self.image_cap != 0 && self.image_before.saturating_add(after) > self.image_cap {
            return Err(Trip::Image);
        }
        let layer_cap = self.layer_cap.get();
        if layer_cap != 0 && after > layer_cap {
            return Err(Trip::Ratio);
        }
        Ok(())
    }

    pub(super) fn charge(&self, n: u64) -> Result<(), Trip> {
        self.check(n)?;
        self.expanded.set(self.expanded.get() + n);
        Ok(())
    }

    fn trip(&self, t: Trip) -> io::Error {
        self.tripped.set(Some(t));
        io::Error::other("extraction limit reached")
    }
}

/// The decompressed layer stream, counted.
pub(super) struct Metered<R> {
    pub(super) inner: R,
    pub(super) meter: Rc<Meter>,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(left) = self.meter.window.get() {
            if n as u64 > left {
                return Err(self.meter.trip(Trip::Metadata));
            }
            self.meter.window.set(Some(left - n as u64));
        }
        self.meter
            .charge(n as u64)
            .map_err(|t| self.meter.trip(t))?;
        Ok(n)
    }
}

/// The layer's source, watched for its own failures (as opposed to bad content).
pub(super) struct Watched<R> {
    pub(super) inner: R,
    pub(super) meter: Rc<Meter>,
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            if e.kind() != io::ErrorKind::Interrupted {
                self.meter.source_failed.set(true);
            }
        })
    }
}

/// What a compressed layer may expand to (0: no bound): its size times the ratio, but
/// never less than the floor.
pub(super) fn layer_cap(limits: &ExtractLimits, layer: &LayerInfo<'_>) -> u64 {
    let ratio = limits.max_layer_ratio;
    match layer.compressed {
        Some(c) if ratio != 0 => c.saturating_mul(ratio).max(ExtractLimits::RATIO_FLOOR),
        _ => 0,
    }
}

/// The error for a bound `layer` hit, with the setting that moves it.
pub(super) fn limit_error(
    limits: &ExtractLimits,
    trip: Trip,
    layer: &LayerInfo<'_>,
) -> PackagerError {
    match trip {
        Trip::Image => PackagerError::TooLarge {
            what: format!("the image (at {})", layer.name),
            limit: format!(
                "{} MB, the most an image may expand to (Lambda's own limit for a container image is {} MB)",
                limits.max_image_bytes / MB,
                ExtractLimits::LAMBDA_IMAGE_BYTES / MB
            ),
            help: format!(
                "if the image is meant to be this big, raise the limit with {}=<MB> or {{\"extract\": {{\"max_image_mb\": <MB>}}}} in scar.cfg (0 turns the check off)",
                scar_core::config::ENV_MAX_IMAGE_MB
            ),
        },
        Trip::Ratio => PackagerError::TooLarge {
            what: layer.name.to_string(),
            limit: format!(
                "{} times its compressed size of {} bytes ({} MB): it looks like a decompression bomb",
                limits.max_layer_ratio,
                layer.compressed.unwrap_or(0),
                layer_cap(limits, layer) / MB
            ),
            help: format!(
                "if the image is trusted, raise the ratio with {}=<N> or {{\"extract\": {{\"max_layer_ratio\": <N>}}}} in scar.cfg (0 turns the check off)",
                scar_core::config::ENV_MAX_LAYER_RATIO
            ),
        },
        Trip::Metadata => PackagerError::BadLayer {
            layer: layer.name.to_string(),
            reason: format!(
                "an entry's header data (long names, PAX records, sparse map) is over {} MB",
                METADATA_MAX / MB
            ),
        },
    }
}

/// Whether the disk holding `root` has `need` bytes free on top of the `keep` to keep
/// (0: not checked). Before extraction, the layers' blobs need at least their own size.
pub(super) fn check_space(root: &Path, need: u64, keep: u64) -> Result<(), PackagerError> {
    if keep == 0 {
        return Ok(());
    }
    match free_bytes(root) {
        Some(free) if free < need.saturating_add(keep) => Err(PackagerError::DiskFull {
            path: root.to_path_buf(),
            free_mb: free / MB,
            keep_mb: keep / MB,
        }),
        _ => Ok(()),
    }
}

/// Free space on the disk extraction writes to, checked before each file and every
/// [`DISK_CHECK_EVERY`] bytes.
pub(super) struct DiskWatch {
    root: PathBuf,
    /// 0: not checked.
    keep: u64,
    since: u64,
}

impl DiskWatch {
    pub(super) fn new(root: &Path, keep: u64) -> Self {
        DiskWatch {
            root: root.to_path_buf(),
            keep,
            since: 0,
        }
    }

    pub(super) fn check(&mut self) -> Result<(), PackagerError> {
        self.since = 0;
        check_space(&self.root, 0, self.keep)
    }

    pub(super) fn wrote(&mut self, n: u64) -> Result<(), PackagerError> {
        self.since += n;
        if self.since >= DISK_CHECK_EVERY {
            self.check()?;
        }
        Ok(())
    }

    /// The error for a failed write: a full disk said clearly, anything else as it is.
    pub(super) fn write_error(&self, path: &Path, e: io::Error) -> PackagerError {
        match e.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => PackagerError::DiskFull {
                path: self.root.clone(),
                free_mb: free_bytes(&self.root).unwrap_or(0) / MB,
                keep_mb: self.keep / MB,
            },
            _ => PackagerError::io("write", path, e),
        }
    }
}
