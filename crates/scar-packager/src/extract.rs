//! Safe layer extraction.
//!
//! Every entry name is normalised (leading `/` dropped, `.` dropped, `..` refused) and its
//! parent directories are resolved *inside* the root, one component at a time, following
//! symlinks the way a chroot would (absolute targets restart at the root, `..` stops at
//! the root). The final component is never followed. So nothing is ever written outside the
//! root, whatever symlinks, hard links or names the layers contain.

use std::cell::Cell;
use std::collections::{BTreeMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use sha2::{Digest, Sha256};
use tar::EntryType;

use crate::cache::BlobCache;
use crate::error::PackagerError;
use crate::progress::{Phase, Progress};
use crate::PulledImage;

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

/// What kind of change extraction made to what the image says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Change {
    /// A hostile entry: a name with `..` or an absolute name, a hard link out of the root
    /// or to a directory, a symlink loop. Skipped (absolute names: put under the root).
    Hostile,
    /// A device node or fifo: not created.
    Device,
    /// A setuid/setgid bit: dropped.
    SetId,
    /// Anything else that could not be applied (a parent that is a file, a hard link to
    /// nothing, an unsupported entry type): skipped.
    Skipped,
}

/// What an extraction did. `warnings` are human-readable lines for the CLI to show, one
/// per entry dropped or changed; `changes` counts them by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtractReport {
    /// Entries applied (files, directories, links, whiteouts).
    pub entries: u64,
    /// Bytes of regular-file content (sizes, holes of sparse files included).
    pub bytes: u64,
    /// Device nodes and fifos that were not created.
    pub skipped_devices: u64,
    /// Everything skipped or changed, one line each.
    pub warnings: Vec<String>,
    /// How many entries each kind of change touched.
    pub changes: BTreeMap<Change, u64>,
    /// What the layers expanded to: their tar streams plus the holes of sparse files.
    pub expanded: u64,
}

impl ExtractReport {
    fn note(&mut self, change: Change, line: String) {
        *self.changes.entry(change).or_default() += 1;
        self.warnings.push(line);
    }

    /// One line saying what extraction dropped or changed, if anything; the full list is
    /// in `warnings`.
    pub fn summary(&self) -> Option<String> {
        if self.changes.is_empty() {
            return None;
        }
        let total: u64 = self.changes.values().sum();
        let parts: Vec<String> = self
            .changes
            .iter()
            .map(|(c, n)| {
                let what = match c {
                    Change::Hostile => "hostile entries skipped or put under the root",
                    Change::Device => "device nodes or fifos not created",
                    Change::SetId => "setuid/setgid bits dropped",
                    Change::Skipped => "entries that could not be applied skipped",
                };
                format!("{n} {what}")
            })
            .collect();
        Some(format!(
            "extraction dropped or changed {total} entr{} of the image: {}",
            if total == 1 { "y" } else { "ies" },
            parts.join(", ")
        ))
    }
}

/// Header metadata (GNU long names, PAX records, sparse maps) an entry may carry: far
/// above any real one, low enough to be held in memory.
const METADATA_MAX: u64 = 16 << 20;
/// Free space is checked again every time this much more was written.
const DISK_CHECK_EVERY: u64 = 64 << 20;
/// `NAME_MAX` and `PATH_MAX` of Linux file systems.
const NAME_MAX: usize = 255;
const PATH_MAX: usize = 4095;
const MB: u64 = 1 << 20;

const MAX_SYMLINK_HOPS: usize = 40;
const OPAQUE: &[u8] = b".wh..wh..opq";
const WHITEOUT_META: &[u8] = b".wh..wh.";
const WHITEOUT: &[u8] = b".wh.";

/// Why an entry name was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NameError {
    DotDot,
}

/// Splits a tar entry name into normal components. A leading `/` is dropped (the second
/// value says whether there was one); `..` anywhere is refused.
pub(crate) fn normalize(raw: &[u8]) -> Result<(Vec<OsString>, bool), NameError> {
    let absolute = raw.first() == Some(&b'/');
    let mut out = Vec::new();
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err(NameError::DotDot),
            c => out.push(OsString::from_vec(c.to_vec())),
        }
    }
    Ok((out, absolute))
}

/// What a file name means in a layer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Whiteout<'a> {
    /// Not a whiteout.
    None,
    /// `.wh..wh..opq`: the parent directory hides everything from lower layers.
    Opaque,
    /// `.wh.<name>`: `<name>` is deleted.
    Delete(&'a OsStr),
    /// `.wh..wh.*` (aufs metadata) or a malformed whiteout: ignored.
    Ignore,
}

pub(crate) fn classify(name: &OsStr) -> Whiteout<'_> {
    let b = name.as_bytes();
    if b == OPAQUE {
        Whiteout::Opaque
    } else if b.starts_with(WHITEOUT_META) {
        Whiteout::Ignore
    } else if let Some(rest) = b.strip_prefix(WHITEOUT) {
        match rest {
            b"" | b"." | b".." => Whiteout::Ignore,
            _ => Whiteout::Delete(OsStr::from_bytes(rest)),
        }
    } else {
        Whiteout::None
    }
}

/// The directory metadata to apply once all writes into the directory are done.
#[derive(Debug, Clone, Copy)]
struct DirMeta {
    mode: u32,
    mtime: Option<u64>,
}

/// Which bound an extraction hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trip {
    Image,
    Ratio,
    Metadata,
}

/// Counts what a layer expands to and stops it at the limits. Shared by the readers
/// around the layer stream and the extractor (which charges sparse holes).
struct Meter {
    /// This layer's expansion so far: decompressed tar bytes plus sparse holes.
    expanded: Cell<u64>,
    /// What the layers before this one expanded to.
    image_before: u64,
    /// 0: no bound.
    image_cap: u64,
    /// 0: no bound (set once the layer is known to be compressed).
    layer_cap: Cell<u64>,
    /// Bytes the tar reader may still read for the current entry's headers.
    window: Cell<Option<u64>>,
    tripped: Cell<Option<Trip>>,
    /// The layer's source (the file) failed, not its content.
    source_failed: Cell<bool>,
}

impl Meter {
    fn check(&self, more: u64) -> Result<(), Trip> {
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

    fn charge(&self, n: u64) -> Result<(), Trip> {
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
struct Metered<R> {
    inner: R,
    meter: Rc<Meter>,
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
struct Watched<R> {
    inner: R,
    meter: Rc<Meter>,
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

/// Why an entry could not be applied: its stream failed (classified by [`Extractor::apply`],
/// which knows whether the source, a limit or the content is to blame), or something else.
enum Fail {
    Read(io::Error),
    Other(PackagerError),
}

impl From<PackagerError> for Fail {
    fn from(e: PackagerError) -> Self {
        Fail::Other(e)
    }
}

/// One layer's context, for error messages and limits.
pub(crate) struct LayerInfo<'a> {
    pub(crate) name: &'a str,
    /// The blob's size, when known: the base of the expansion ratio.
    pub(crate) compressed: Option<u64>,
}

/// Applies layers onto one root; directory modes and times are fixed in [`Self::finish`].
pub(crate) struct Extractor {
    root: PathBuf,
    dirs: BTreeMap<PathBuf, DirMeta>,
    options: ExtractOptions,
    /// What the layers applied so far expanded to.
    expanded: u64,
    disk: DiskWatch,
    /// The last entry's data was written out (read to its end).
    consumed: bool,
}

enum Outcome {
    Done,
    Skipped(Change, String),
}

impl Extractor {
    pub(crate) fn new(root: &Path, options: ExtractOptions) -> Result<Self, PackagerError> {
        let meta = fs::symlink_metadata(root)
            .map_err(|e| PackagerError::io("open extraction root", root, e))?;
        if !meta.is_dir() {
            return Err(PackagerError::io(
                "use as extraction root",
                root,
                io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
            ));
        }
        Ok(Extractor {
            root: root.to_path_buf(),
            dirs: BTreeMap::new(),
            options,
            expanded: 0,
            consumed: false,
            disk: DiskWatch {
                root: root.to_path_buf(),
                keep: options.limits.min_free_bytes,
                since: 0,
            },
        })
    }

    fn limit_error(&self, trip: Trip, layer: &LayerInfo<'_>) -> PackagerError {
        let l = &self.options.limits;
        match trip {
            Trip::Image => PackagerError::TooLarge {
                what: format!("the image (at {})", layer.name),
                limit: format!(
                    "{} MB, the most an image may expand to (Lambda's own limit for a container image is {} MB)",
                    l.max_image_bytes / MB,
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
                    l.max_layer_ratio,
                    layer.compressed.unwrap_or(0),
                    self.layer_cap(layer) / MB
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

    fn layer_cap(&self, layer: &LayerInfo<'_>) -> u64 {
        let ratio = self.options.limits.max_layer_ratio;
        match layer.compressed {
            Some(c) if ratio != 0 => c.saturating_mul(ratio).max(ExtractLimits::RATIO_FLOOR),
            _ => 0,
        }
    }

    /// Applies one layer (gzip or plain tar, detected by magic bytes).
    pub(crate) fn apply(
        &mut self,
        reader: impl Read,
        layer: &LayerInfo<'_>,
        report: &mut ExtractReport,
    ) -> Result<(), PackagerError> {
        let meter = Rc::new(Meter {
            expanded: Cell::new(0),
            image_before: self.expanded,
            image_cap: self.options.limits.max_image_bytes,
            layer_cap: Cell::new(0),
            window: Cell::new(None),
            tripped: Cell::new(None),
            source_failed: Cell::new(false),
        });
        let watched = Watched {
            inner: reader,
            meter: meter.clone(),
        };
        let result = self.apply_stream(watched, layer, &meter, report);
        self.expanded = self.expanded.saturating_add(meter.expanded.get());
        report.expanded = self.expanded;
        result.map_err(|fail| match fail {
            Fail::Other(e) => e,
            Fail::Read(e) => {
                if let Some(t) = meter.tripped.get() {
                    self.limit_error(t, layer)
                } else if meter.source_failed.get() {
                    PackagerError::input(layer.name, e)
                } else {
                    PackagerError::BadLayer {
                        layer: layer.name.to_string(),
                        reason: e.to_string(),
                    }
                }
            }
        })
    }

    fn apply_stream(
        &mut self,
        reader: impl Read,
        layer: &LayerInfo<'_>,
        meter: &Rc<Meter>,
        report: &mut ExtractReport,
    ) -> Result<(), Fail> {
        let (reader, compressed) = decompress_detect(reader, layer.name)?;
        if compressed {
            // A plain tar expands to itself: the ratio is for compressed layers.
            meter.layer_cap.set(self.layer_cap(layer));
        }
        let metered = Metered {
            inner: reader,
            meter: meter.clone(),
        };
        let mut archive = tar::Archive::new(metered);
        // Paths this layer put in place (explicit entries), for whiteouts and opaque dirs.
        let mut added: HashSet<PathBuf> = HashSet::new();
        let mut opaque: Vec<PathBuf> = Vec::new();
        let mut entries = archive.entries().map_err(Fail::Read)?;
        loop {
            // Everything the tar reader reads to find the next entry is header data: bound
            // it, so that a 6 GB "long name" is not held in memory.
            meter.window.set(Some(METADATA_MAX));
            let next = entries.next();
            meter.window.set(None);
            let Some(entry) = next else { break };
            let mut entry = entry.map_err(Fail::Read)?;
            let kind = entry.header().entry_type();
            if matches!(
                kind,
                EntryType::XGlobalHeader
                    | EntryType::XHeader
                    | EntryType::GNULongName
                    | EntryType::GNULongLink
            ) {
                io::copy(&mut entry, &mut io::sink()).map_err(Fail::Read)?;
                continue;
            }
            let sparse = if matches!(kind, EntryType::Regular | EntryType::Continuous) {
                pax_sparse(&mut entry).map_err(|reason| PackagerError::BadLayer {
                    layer: layer.name.to_string(),
                    reason: format!(
                        "`{}` {reason}",
                        String::from_utf8_lossy(&entry.path_bytes())
                    ),
                })?
            } else {
                None
            };
            let raw = match sparse.as_ref().and_then(|s| s.name.clone()) {
                Some(name) => name,
                None => entry.path_bytes().into_owned(),
            };
            let shown = String::from_utf8_lossy(&raw).into_owned();
            self.consumed = false;
            let outcome = self.apply_entry(
                &mut entry,
                kind,
                &raw,
                sparse,
                layer,
                meter,
                &mut added,
                &mut opaque,
                report,
            )?;
            match outcome {
                Outcome::Done => report.entries += 1,
                Outcome::Skipped(change, why) => {
                    if self.options.strict && change == Change::Hostile {
                        return Err(Fail::Other(PackagerError::Hostile {
                            layer: layer.name.to_string(),
                            entry: shown,
                            why,
                        }));
                    }
                    report.note(change, format!("{}: `{shown}` {why}", layer.name));
                }
            }
            // What the entry did not use is read here, not by the tar reader's skip,
            // which runs inside the header window. The tar reader makes up the holes of an
            // old GNU sparse entry, uncounted: bound them before they are read.
            if kind == EntryType::GNUSparse && !self.consumed {
                meter
                    .check(entry.size())
                    .map_err(|t| Fail::Other(self.limit_error(t, layer)))?;
            }
            io::copy(&mut entry, &mut io::sink()).map_err(Fail::Read)?;
        }
        // Opaque directories: drop what lower layers had, keep what this layer added.
        let mut keep: HashSet<PathBuf> = HashSet::new();
        for p in &added {
            let mut cur = p.as_path();
            while keep.insert(cur.to_path_buf()) {
                match cur.parent() {
                    Some(parent) => cur = parent,
                    None => break,
                }
            }
        }
        for dir in opaque {
            self.prune(&dir, &keep)?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        kind: EntryType,
        raw: &[u8],
        sparse: Option<PaxSparse>,
        layer: &LayerInfo<'_>,
        meter: &Meter,
        added: &mut HashSet<PathBuf>,
        opaque: &mut Vec<PathBuf>,
        report: &mut ExtractReport,
    ) -> Result<Outcome, Fail> {
        let (comps, absolute) = match normalize(raw) {
            Ok(v) => v,
            Err(NameError::DotDot) => {
                return Ok(Outcome::Skipped(
                    Change::Hostile,
                    "has a `..` component: skipped (it could point outside the root)".into(),
                ))
            }
        };
        check_name_lengths(&comps).map_err(|reason| PackagerError::BadLayer {
            layer: layer.name.to_string(),
            reason: format!("`{}` {reason}", String::from_utf8_lossy(raw)),
        })?;
        if absolute {
            let why = "has an absolute path: extracted relative to the root";
            if self.options.strict {
                return Err(Fail::Other(PackagerError::Hostile {
                    layer: layer.name.to_string(),
                    entry: String::from_utf8_lossy(raw).into_owned(),
                    why: why.into(),
                }));
            }
            report.note(
                Change::Hostile,
                format!("{}: `{}` {why}", layer.name, String::from_utf8_lossy(raw)),
            );
        }
        let header_mode = entry.header().mode().unwrap_or(0o644);
        let mtime = entry.header().mtime().ok();
        let Some((name, parents)) = comps.split_last() else {
            // The root itself (`./`): only its metadata matters.
            if kind == EntryType::Directory {
                self.dirs.insert(
                    PathBuf::new(),
                    DirMeta {
                        mode: header_mode & 0o7777,
                        mtime,
                    },
                );
            }
            return Ok(Outcome::Done);
        };

        match classify(name) {
            Whiteout::None => {}
            Whiteout::Ignore => return Ok(Outcome::Done),
            Whiteout::Opaque => {
                match self.resolve(parents, false) {
                    Ok(Some(parent)) => opaque.push(parent),
                    Ok(None) => {}
                    Err(Resolve::Skip(c, why)) => return Ok(Outcome::Skipped(c, why)),
                    Err(Resolve::Fatal(e)) => return Err(e.into()),
                }
                return Ok(Outcome::Done);
            }
            Whiteout::Delete(target) => {
                let parent = match self.resolve(parents, false) {
                    Ok(p) => p,
                    Err(Resolve::Skip(c, why)) => return Ok(Outcome::Skipped(c, why)),
                    Err(Resolve::Fatal(e)) => return Err(e.into()),
                };
                if let Some(parent) = parent {
                    let rel = parent.join(target);
                    // A whiteout only hides lower layers, never this layer's own entries.
                    if !added.contains(&rel) {
                        remove_existing(&self.root.join(&rel))?;
                    }
                }
                return Ok(Outcome::Done);
            }
        }

        let parent = match self.resolve(parents, true) {
            Ok(Some(p)) => p,
            Ok(None) => {
                return Ok(Outcome::Skipped(
                    Change::Skipped,
                    "has no parent directory: skipped".into(),
                ))
            }
            Err(Resolve::Skip(c, why)) => return Ok(Outcome::Skipped(c, why)),
            Err(Resolve::Fatal(e)) => return Err(e.into()),
        };
        let rel = parent.join(name);
        let abs = self.root.join(&rel);
        if rel.as_os_str().len() > PATH_MAX {
            return Err(Fail::Other(PackagerError::BadLayer {
                layer: layer.name.to_string(),
                reason: format!(
                    "`{}` is longer than a path may be ({PATH_MAX} bytes) once its symlinks are resolved",
                    String::from_utf8_lossy(raw)
                ),
            }));
        }

        match kind {
            EntryType::Directory => {
                match fs::symlink_metadata(&abs) {
                    Ok(m) if m.is_dir() => {}
                    _ => {
                        remove_existing(&abs)?;
                        create_dir(&abs)?;
                    }
                }
                self.dirs.insert(
                    rel.clone(),
                    DirMeta {
                        mode: header_mode & 0o7777,
                        mtime,
                    },
                );
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                // What the file will be, before a byte is written: a header may claim
                // anything.
                let stored = entry.size();
                let (size, holes) = match (&sparse, kind) {
                    (Some(s), _) => {
                        let data: u64 = s.map.iter().map(|&(_, len)| len).sum();
                        (s.real_size, s.real_size - data)
                    }
                    // The tar reader expands old GNU sparse entries; its size is the real one.
                    (None, EntryType::GNUSparse) => (
                        stored,
                        stored.saturating_sub(entry.header().entry_size().unwrap_or(0)),
                    ),
                    (None, _) => (stored, 0),
                };
                meter
                    .check(size)
                    .map_err(|t| Fail::Other(self.limit_error(t, layer)))?;
                meter
                    .charge(holes)
                    .map_err(|t| Fail::Other(self.limit_error(t, layer)))?;
                self.disk.check()?;
                remove_existing(&abs)?;
                let file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&abs)
                    .map_err(|e| PackagerError::io("create", &abs, e))?;
                let mut sink = FileSink {
                    file,
                    path: &abs,
                    pos: 0,
                    disk: &mut self.disk,
                };
                let truncated = || {
                    Fail::Other(PackagerError::Truncated {
                        path: PathBuf::from(layer.name),
                        entry: String::from_utf8_lossy(raw).into_owned(),
                    })
                };
                match &sparse {
                    None => {
                        let written = sink.copy(&mut *entry, u64::MAX)?;
                        if written < size {
                            return Err(truncated());
                        }
                        sink.finish(written)?;
                    }
                    Some(s) => {
                        for &(offset, len) in &s.map {
                            sink.seek_to(offset)?;
                            if sink.copy(&mut *entry, len)? < len {
                                return Err(truncated());
                            }
                        }
                        sink.finish(s.real_size)?;
                    }
                }
                let file = sink.file;
                self.consumed = true;
                report.bytes = report.bytes.saturating_add(size);
                if header_mode & 0o6000 != 0 {
                    report.note(
                        Change::SetId,
                        format!(
                            "{}: `{}`: setuid/setgid bits dropped (files are owned by the extracting user)",
                            layer.name,
                            String::from_utf8_lossy(raw)
                        ),
                    );
                }
                let mode = header_mode & 0o1777;
                if let Some(t) = mtime.and_then(epoch) {
                    let _ = file.set_modified(t);
                }
                file.set_permissions(fs::Permissions::from_mode(mode))
                    .map_err(|e| PackagerError::io("set permissions of", &abs, e))?;
            }
            EntryType::Symlink => {
                let Some(target) = entry.link_name_bytes() else {
                    return Ok(Outcome::Skipped(
                        Change::Skipped,
                        "is a symlink without a target: skipped".into(),
                    ));
                };
                if target.len() > PATH_MAX || target.contains(&0) {
                    return Err(Fail::Other(PackagerError::BadLayer {
                        layer: layer.name.to_string(),
                        reason: format!(
                            "`{}` is a symlink whose target is not a valid path (over {PATH_MAX} bytes, or with a NUL byte)",
                            String::from_utf8_lossy(raw)
                        ),
                    }));
                }
                remove_existing(&abs)?;
                // Stored verbatim: it is only ever followed relative to the root.
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), &abs)
                    .map_err(|e| PackagerError::io("create symlink", &abs, e))?;
                if let Some(t) = mtime {
                    set_times_nofollow(&abs, t);
                }
            }
            EntryType::Link => {
                let Some(target) = entry.link_name_bytes() else {
                    return Ok(Outcome::Skipped(
                        Change::Skipped,
                        "is a hard link without a target: skipped".into(),
                    ));
                };
                let shown = String::from_utf8_lossy(&target).into_owned();
                let (tcomps, _) = match normalize(&target) {
                    Ok(v) => v,
                    Err(NameError::DotDot) => {
                        return Ok(Outcome::Skipped(
                            Change::Hostile,
                            format!("is a hard link to `{shown}`, outside the root: refused"),
                        ))
                    }
                };
                let Some((tname, tparents)) = tcomps.split_last() else {
                    return Ok(Outcome::Skipped(
                        Change::Hostile,
                        format!("is a hard link to `{shown}` (the root): refused"),
                    ));
                };
                let tparent = match self.resolve(tparents, false) {
                    Ok(Some(p)) => p,
                    Err(Resolve::Fatal(e)) => return Err(e.into()),
                    Ok(None) | Err(Resolve::Skip(..)) => {
                        return Ok(Outcome::Skipped(
                            Change::Skipped,
                            format!("is a hard link to `{shown}`, which does not exist: skipped"),
                        ))
                    }
                };
                let tabs = self.root.join(tparent.join(tname));
                match fs::symlink_metadata(&tabs) {
                    Ok(m) if !m.is_dir() => {}
                    Ok(_) => {
                        return Ok(Outcome::Skipped(
                            Change::Hostile,
                            format!("is a hard link to `{shown}`, a directory: refused"),
                        ))
                    }
                    Err(_) => {
                        return Ok(Outcome::Skipped(
                            Change::Skipped,
                            format!(
                            "is a hard link to `{shown}`, which is not a file in the root: skipped"
                        ),
                        ))
                    }
                }
                if tabs != abs {
                    remove_existing(&abs)?;
                    // linkat(2) without AT_SYMLINK_FOLLOW: a symlink target is linked itself.
                    fs::hard_link(&tabs, &abs)
                        .map_err(|e| PackagerError::io("create hard link", &abs, e))?;
                }
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                report.skipped_devices += 1;
                let what = match kind {
                    EntryType::Char => "character device",
                    EntryType::Block => "block device",
                    _ => "fifo",
                };
                return Ok(Outcome::Skipped(
                    Change::Device,
                    format!("is a {what}: not created"),
                ));
            }
            other => {
                return Ok(Outcome::Skipped(
                    Change::Skipped,
                    format!(
                        "has unsupported tar entry type {:?}: skipped",
                        other.as_byte() as char
                    ),
                ))
            }
        }
        added.insert(rel);
        Ok(Outcome::Done)
    }

    /// Resolves parent components inside the root, like a chroot would: symlinks are
    /// followed (absolute targets from the root, `..` clamped at the root). With `create`,
    /// missing directories are made; without, `Ok(None)` says the path does not exist.
    /// Every directory on the way is made owner-writable (its mode restored at the end).
    fn resolve(&mut self, comps: &[OsString], create: bool) -> Result<Option<PathBuf>, Resolve> {
        let mut resolved = PathBuf::new();
        let mut queue: std::collections::VecDeque<OsString> = comps.iter().cloned().collect();
        let mut hops = 0;
        while let Some(c) = queue.pop_front() {
            match c.as_bytes() {
                b"" | b"." => continue,
                b".." => {
                    resolved.pop();
                    continue;
                }
                _ => {}
            }
            let next = resolved.join(&c);
            let abs = self.root.join(&next);
            match fs::symlink_metadata(&abs) {
                Ok(m) if m.file_type().is_symlink() => {
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return Err(Resolve::Skip(
                            Change::Hostile,
                            "goes through too many symlinks: skipped".into(),
                        ));
                    }
                    let target = fs::read_link(&abs)
                        .map_err(|e| Resolve::Fatal(PackagerError::io("read symlink", &abs, e)))?;
                    let tb = target.as_os_str().as_bytes();
                    if tb.first() == Some(&b'/') {
                        resolved = PathBuf::new();
                    }
                    for part in tb.split(|&b| b == b'/').rev() {
                        queue.push_front(OsString::from_vec(part.to_vec()));
                    }
                }
                Ok(m) if m.is_dir() => {
                    let mode = m.permissions().mode() & 0o7777;
                    if mode & 0o700 != 0o700 {
                        fs::set_permissions(&abs, fs::Permissions::from_mode(mode | 0o700))
                            .map_err(|e| {
                                Resolve::Fatal(PackagerError::io("make writable", &abs, e))
                            })?;
                        self.dirs
                            .entry(next.clone())
                            .or_insert(DirMeta { mode, mtime: None });
                    }
                    resolved = next;
                }
                Ok(_) => {
                    return Err(Resolve::Skip(
                        Change::Skipped,
                        format!(
                            "needs `{}` to be a directory, but it is a file: skipped",
                            next.display()
                        ),
                    ))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if !create {
                        return Ok(None);
                    }
                    create_dir(&abs).map_err(Resolve::Fatal)?;
                    resolved = next;
                }
                Err(e) => {
                    return Err(Resolve::Fatal(PackagerError::io("inspect", &abs, e)));
                }
            }
        }
        Ok(Some(resolved))
    }

    /// Removes from `dir` (relative) everything not in `keep`, recursively.
    fn prune(&self, dir: &Path, keep: &HashSet<PathBuf>) -> Result<(), PackagerError> {
        let abs = self.root.join(dir);
        let read = match fs::read_dir(&abs) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(PackagerError::io("list", &abs, e)),
        };
        for child in read {
            let child = child.map_err(|e| PackagerError::io("list", &abs, e))?;
            let rel = dir.join(child.file_name());
            if !keep.contains(&rel) {
                remove_existing(&child.path())?;
            } else if child.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                self.prune(&rel, keep)?;
            }
        }
        Ok(())
    }

    /// Applies directory modes and times, deepest first (after all their children exist).
    pub(crate) fn finish(self, report: &mut ExtractReport) -> Result<(), PackagerError> {
        let mut dirs: Vec<_> = self.dirs.into_iter().collect();
        dirs.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
        for (rel, meta) in dirs {
            let abs = self.root.join(&rel);
            match fs::symlink_metadata(&abs) {
                Ok(m) if m.is_dir() => {}
                _ => continue, // removed or replaced by a later layer
            }
            if meta.mode & 0o6000 != 0 {
                report.note(
                    Change::SetId,
                    format!("`/{}`: setuid/setgid bits dropped", rel.display()),
                );
            }
            fs::set_permissions(&abs, fs::Permissions::from_mode(meta.mode & 0o1777))
                .map_err(|e| PackagerError::io("set permissions of", &abs, e))?;
            if let Some(t) = meta.mtime {
                set_times_nofollow(&abs, t);
            }
        }
        Ok(())
    }
}

enum Resolve {
    Skip(Change, String),
    Fatal(PackagerError),
}

/// A header's time as a `SystemTime`; `None` for times no clock can hold (a base-256
/// field can say anything up to 2^95).
fn epoch(secs: u64) -> Option<std::time::SystemTime> {
    let secs = i64::try_from(secs).ok()?;
    std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(secs as u64))
}

/// Refuses names the file system cannot hold, before anything is created: a layer that
/// names them is malformed.
fn check_name_lengths(comps: &[OsString]) -> Result<(), String> {
    if let Some(long) = comps.iter().find(|c| c.len() > NAME_MAX) {
        return Err(format!(
            "has a component of {} bytes (file names are at most {NAME_MAX} bytes)",
            long.len()
        ));
    }
    let total: usize = comps.iter().map(|c| c.len() + 1).sum();
    if total > PATH_MAX {
        return Err(format!(
            "is {total} bytes long (paths are at most {PATH_MAX} bytes)"
        ));
    }
    Ok(())
}

/// Free space on the disk extraction writes to, checked before each file and every
/// [`DISK_CHECK_EVERY`] bytes.
struct DiskWatch {
    root: PathBuf,
    /// 0: not checked.
    keep: u64,
    since: u64,
}

impl DiskWatch {
    fn check(&mut self) -> Result<(), PackagerError> {
        self.since = 0;
        if self.keep == 0 {
            return Ok(());
        }
        match free_bytes(&self.root) {
            Some(free) if free < self.keep => Err(PackagerError::DiskFull {
                path: self.root.clone(),
                free_mb: free / MB,
                keep_mb: self.keep / MB,
            }),
            _ => Ok(()),
        }
    }

    fn wrote(&mut self, n: u64) -> Result<(), PackagerError> {
        self.since += n;
        if self.since >= DISK_CHECK_EVERY {
            self.check()?;
        }
        Ok(())
    }

    /// The error for a failed write: a full disk said clearly, anything else as it is.
    fn write_error(&self, path: &Path, e: io::Error) -> PackagerError {
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

/// Bytes available to this user on the file system holding `path`.
pub(crate) fn free_bytes(path: &Path) -> Option<u64> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a valid NUL-terminated path and `st` points to a statvfs to fill.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs succeeded, so it filled `st`.
    let st = unsafe { st.assume_init() };
    // The field types differ between libcs and word sizes.
    #[allow(clippy::unnecessary_cast)]
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// A regular file being written. Blocks of zeros are skipped (holes) rather than
/// written: the content is the same, and a layer of zeros does not fill the disk.
struct FileSink<'a> {
    file: fs::File,
    path: &'a Path,
    pos: u64,
    disk: &'a mut DiskWatch,
}

impl FileSink<'_> {
    /// Copies up to `limit` bytes from `from` at the current position; returns how many.
    fn copy(&mut self, from: &mut impl Read, limit: u64) -> Result<u64, Fail> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        while total < limit {
            let want = (limit - total).min(buf.len() as u64) as usize;
            let n = match from.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Fail::Read(e)),
            };
            let chunk = &buf[..n];
            if chunk.iter().all(|&b| b == 0) {
                self.file
                    .seek(SeekFrom::Current(n as i64))
                    .map_err(|e| PackagerError::io("seek in", self.path, e))?;
            } else {
                self.file
                    .write_all(chunk)
                    .map_err(|e| self.disk.write_error(self.path, e))?;
                self.disk.wrote(n as u64)?;
            }
            total += n as u64;
            self.pos += n as u64;
        }
        Ok(total)
    }

    fn seek_to(&mut self, offset: u64) -> Result<(), PackagerError> {
        let to = i64::try_from(offset).map_err(|_| {
            PackagerError::io(
                "seek in",
                self.path,
                io::Error::new(io::ErrorKind::InvalidInput, "offset too large"),
            )
        })?;
        self.file
            .seek(SeekFrom::Start(to as u64))
            .map_err(|e| PackagerError::io("seek in", self.path, e))?;
        self.pos = offset;
        Ok(())
    }

    /// Gives the file its final length (a trailing hole is not written by `copy`).
    fn finish(&mut self, len: u64) -> Result<(), PackagerError> {
        self.file
            .set_len(len)
            .map_err(|e| self.disk.write_error(self.path, e))
    }
}

/// A PAX-format GNU sparse file (formats 0.0, 0.1 and 1.0): its real name and size, and
/// where its data chunks go, in order. The entry's data is the chunks, back to back (for
/// 1.0 after the map, which [`pax_sparse`] has already read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PaxSparse {
    pub(crate) name: Option<Vec<u8>>,
    pub(crate) real_size: u64,
    pub(crate) map: Vec<(u64, u64)>,
}

/// Reads the GNU sparse records of an entry's PAX header, and for format 1.0 the map at
/// the start of its data, as GNU tar writes them. `Ok(None)`: not a sparse file. Every
/// number is checked: chunks in order, inside the real size, adding up to the data.
fn pax_sparse<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Option<PaxSparse>, String> {
    let mut records: Vec<(String, Vec<u8>)> = Vec::new();
    match entry.pax_extensions() {
        Ok(Some(exts)) => {
            for ext in exts {
                let ext = ext.map_err(|e| format!("has a malformed PAX header: {e}"))?;
                if let Ok(key) = ext.key() {
                    if key.starts_with("GNU.sparse.") {
                        records.push((key.to_string(), ext.value_bytes().to_vec()));
                    }
                }
            }
        }
        Ok(None) => return Ok(None),
        Err(e) => return Err(format!("has a malformed PAX header: {e}")),
    }
    if records.is_empty() {
        return Ok(None);
    }
    let get = |k: &str| {
        records
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_slice())
    };
    let number = |v: &[u8], what: &str| -> Result<u64, String> {
        std::str::from_utf8(v)
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                format!(
                    "has a sparse {what} that is not a number: `{}`",
                    String::from_utf8_lossy(v)
                )
            })
    };
    let version = (get("GNU.sparse.major"), get("GNU.sparse.minor"));
    let format = match version {
        (Some(b"1"), Some(b"0")) => "1.0",
        (Some(b"0"), Some(b"1")) => "0.1",
        (Some(b"0"), Some(b"0")) => "0.0",
        (None, None) if get("GNU.sparse.map").is_some() => "0.1",
        (None, None) if get("GNU.sparse.offset").is_some() => "0.0",
        (major, minor) => {
            return Err(format!(
                "is a GNU sparse file of an unknown format ({}.{}): refused (GNU tar writes 0.0, 0.1 and 1.0)",
                String::from_utf8_lossy(major.unwrap_or(b"?")),
                String::from_utf8_lossy(minor.unwrap_or(b"?"))
            ))
        }
    };
    let size_key = if format == "1.0" {
        "GNU.sparse.realsize"
    } else {
        "GNU.sparse.size"
    };
    let real_size = number(
        get(size_key)
            .or_else(|| get("GNU.sparse.size"))
            .or_else(|| get("GNU.sparse.realsize"))
            .ok_or_else(|| format!("is a GNU sparse file ({format}) without its real size"))?,
        "size",
    )?;
    let name = get("GNU.sparse.name").map(<[u8]>::to_vec);
    let mut data_size = entry.size();
    let mut nums: Vec<u64> = Vec::new();
    match format {
        "0.0" => {
            for (k, v) in &records {
                match k.as_str() {
                    "GNU.sparse.offset" => nums.push(number(v, "offset")?),
                    "GNU.sparse.numbytes" => {
                        if nums.len().is_multiple_of(2) {
                            return Err("has a sparse numbytes without its offset".into());
                        }
                        nums.push(number(v, "length")?)
                    }
                    _ => {}
                }
            }
        }
        "0.1" => {
            let map = get("GNU.sparse.map").unwrap_or(b"");
            if !map.is_empty() {
                for part in map.split(|&b| b == b',') {
                    nums.push(number(part, "map entry")?);
                }
            }
        }
        _ => {
            let (map, consumed) = read_sparse_map_1_0(entry)?;
            nums = map;
            data_size = data_size
                .checked_sub(consumed)
                .ok_or("has a sparse map longer than its data")?;
        }
    }
    if !nums.len().is_multiple_of(2) {
        return Err("has a sparse map with an odd number of values".into());
    }
    let mut map = Vec::with_capacity(nums.len() / 2);
    let mut end = 0u64;
    let mut data = 0u64;
    for pair in nums.chunks_exact(2) {
        let (offset, len) = (pair[0], pair[1]);
        let chunk_end = offset
            .checked_add(len)
            .ok_or("has a sparse chunk past 2^64 bytes")?;
        if offset < end || chunk_end > real_size {
            return Err(format!(
                "has a sparse map with chunks out of order, overlapping or past its real size of {real_size} bytes"
            ));
        }
        end = chunk_end;
        data += len;
        map.push((offset, len));
    }
    if data != data_size {
        return Err(format!(
            "has a sparse map of {data} bytes of data, but {data_size} bytes stored"
        ));
    }
    Ok(Some(PaxSparse {
        name,
        real_size,
        map,
    }))
}

/// The map at the start of a GNU sparse 1.0 entry's data: decimal numbers, one a line
/// (the count, then offset and length pairs), padded to a 512-byte block. Returns the
/// numbers and the bytes the map took.
fn read_sparse_map_1_0<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<(Vec<u64>, u64), String> {
    let mut block = [0u8; 512];
    let mut consumed = 0u64;
    let mut line: Vec<u8> = Vec::new();
    let mut nums: Vec<u64> = Vec::new();
    let mut wanted: Option<u64> = None;
    loop {
        if wanted.is_some_and(|w| nums.len() as u64 == w) {
            return Ok((nums, consumed));
        }
        if consumed >= METADATA_MAX {
            return Err(format!("has a sparse map over {} MB", METADATA_MAX / MB));
        }
        entry
            .read_exact(&mut block)
            .map_err(|e| format!("has a truncated sparse map: {e}"))?;
        consumed += 512;
        for &b in &block {
            if wanted.is_some_and(|w| nums.len() as u64 == w) {
                break;
            }
            if b != b'\n' {
                if line.len() > 20 {
                    return Err("has a sparse map entry that is not a number".into());
                }
                line.push(b);
                continue;
            }
            let n = std::str::from_utf8(&line)
                .ok()
                .and_then(|t| t.parse::<u64>().ok())
                .ok_or_else(|| {
                    format!(
                        "has a sparse map entry that is not a number: `{}`",
                        String::from_utf8_lossy(&line)
                    )
                })?;
            line.clear();
            match wanted {
                None => {
                    // Count, then 2 numbers per chunk; bounded by the map's own size.
                    let w = n
                        .checked_mul(2)
                        .ok_or("has a sparse map with too many chunks")?;
                    if w > METADATA_MAX / 2 {
                        return Err("has a sparse map with too many chunks".into());
                    }
                    wanted = Some(w);
                }
                Some(_) => nums.push(n),
            }
        }
    }
}

fn create_dir(abs: &Path) -> Result<(), PackagerError> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .mode(0o755)
        .create(abs)
        .map_err(|e| PackagerError::io("create directory", abs, e))
}

/// Sets atime and mtime without following a final symlink. Failures are not fatal: times
/// are cosmetic.
fn set_times_nofollow(path: &Path, secs: u64) {
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return;
    };
    // `as _`: the field's own type (`time_t`, whose alias is deprecated on musl).
    let Ok(secs) = i64::try_from(secs) else {
        return;
    };
    let t = libc::timespec {
        tv_sec: secs as _,
        tv_nsec: 0,
    };
    let times = [t, t];
    // SAFETY: `c` is a valid NUL-terminated path and `times` points to two timespecs.
    unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        );
    }
}

/// Removes whatever is at `abs` (never following a symlink), even read-only trees.
pub(crate) fn remove_existing(abs: &Path) -> Result<(), PackagerError> {
    match fs::symlink_metadata(abs) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(PackagerError::io("inspect", abs, e)),
        Ok(m) if m.is_dir() => remove_tree(abs),
        Ok(_) => fs::remove_file(abs).map_err(|e| PackagerError::io("remove", abs, e)),
    }
}

/// `remove_dir_all` that also works on trees with read-only directories.
pub(crate) fn remove_tree(abs: &Path) -> Result<(), PackagerError> {
    match fs::remove_dir_all(abs) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(_) => {
            make_tree_writable(abs);
            fs::remove_dir_all(abs).map_err(|e| PackagerError::io("remove", abs, e))
        }
    }
}

fn make_tree_writable(dir: &Path) {
    let Ok(m) = fs::symlink_metadata(dir) else {
        return;
    };
    if !m.is_dir() {
        return;
    }
    let _ = fs::set_permissions(
        dir,
        fs::Permissions::from_mode((m.permissions().mode() & 0o7777) | 0o700),
    );
    if let Ok(read) = fs::read_dir(dir) {
        for child in read.flatten() {
            if child.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                make_tree_writable(&child.path());
            }
        }
    }
}

/// Wraps a layer stream in the right decompressor, judged by its first bytes; says
/// whether it was compressed.
fn decompress_detect<'a>(
    reader: impl Read + 'a,
    layer_name: &str,
) -> Result<(Box<dyn Read + 'a>, bool), PackagerError> {
    let mut buf = BufReader::with_capacity(64 * 1024, reader);
    let head = buf
        .fill_buf()
        .map_err(|e| PackagerError::input(layer_name, e))?;
    let unsupported = |what: &str| PackagerError::Unsupported {
        what: format!(
            "{layer_name} is {what}-compressed (only gzip and plain tar layers are supported)"
        ),
    };
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok((Box::new(flate2::read::MultiGzDecoder::new(buf)), true))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Err(unsupported("zstd"))
    } else if head.starts_with(b"BZh") {
        Err(unsupported("bzip2"))
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Err(unsupported("xz"))
    } else {
        Ok((Box::new(buf), false))
    }
}

/// Whether the blob starts with the gzip magic bytes.
pub(crate) fn is_gzip(path: &Path) -> io::Result<bool> {
    let mut head = [0u8; 2];
    let mut f = fs::File::open(path)?;
    let n = f.read(&mut head)?;
    Ok(n == 2 && head == [0x1f, 0x8b])
}

/// Applies one layer onto an existing root directory (directory modes fixed at the end),
/// with the default [`ExtractOptions`].
pub fn extract_layer(
    reader: impl Read,
    root: &Path,
    report: &mut ExtractReport,
) -> Result<(), PackagerError> {
    extract_layer_with(reader, root, &ExtractOptions::default(), report)
}

/// [`extract_layer`] with explicit options. The layer's compressed size is unknown here, so
/// the expansion ratio is not checked; the image size and free space are.
pub fn extract_layer_with(
    reader: impl Read,
    root: &Path,
    options: &ExtractOptions,
    report: &mut ExtractReport,
) -> Result<(), PackagerError> {
    let mut ex = Extractor::new(root, *options)?;
    ex.apply(
        reader,
        &LayerInfo {
            name: "layer",
            compressed: None,
        },
        report,
    )?;
    ex.finish(report)
}

/// A reader that hashes and counts what passes through it.
struct Verifying<'p, R> {
    inner: R,
    hasher: Sha256,
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

/// Extracts all layers of a pulled image into `dest`, atomically: the work happens in
/// `<dest>.partial-<random>`, renamed to `dest` on success and removed on failure.
/// `dest` must not exist. Each layer is re-verified against its digest as it is read.
/// Default [`ExtractOptions`]; what was dropped or changed is reported to `progress`:
/// each entry as a note, then one summary warning.
pub fn extract_image(
    image: &PulledImage,
    cache: &BlobCache,
    dest: &Path,
    progress: &dyn Progress,
) -> Result<ExtractReport, PackagerError> {
    extract_image_with(image, cache, dest, &ExtractOptions::default(), progress)
}

/// [`extract_image`] with explicit options (limits, `strict`).
pub fn extract_image_with(
    image: &PulledImage,
    cache: &BlobCache,
    dest: &Path,
    options: &ExtractOptions,
    progress: &dyn Progress,
) -> Result<ExtractReport, PackagerError> {
    let result = into_new_dir(dest, |partial| {
        extract_all(image, cache, partial, options, progress)
    });
    progress.finish();
    if let Ok(report) = &result {
        if let Some(summary) = report.summary() {
            progress.warn(&summary);
        }
    }
    result
}

/// Applies layer files (`docker save` / udocker `.layer` blobs, gzip or plain tar), bottom
/// first, onto a new root at `dest`, atomically as [`extract_image`] does. For layers that
/// are already on disk and trusted as such (a package's own), so not digest-checked here;
/// the default limits still apply.
pub fn extract_layer_files(
    layers: &[PathBuf],
    dest: &Path,
) -> Result<ExtractReport, PackagerError> {
    extract_layer_files_with(layers, dest, &ExtractOptions::default())
}

/// [`extract_layer_files`] with explicit options.
pub fn extract_layer_files_with(
    layers: &[PathBuf],
    dest: &Path,
    options: &ExtractOptions,
) -> Result<ExtractReport, PackagerError> {
    into_new_dir(dest, |partial| {
        let mut report = ExtractReport::default();
        let mut ex = Extractor::new(partial, *options)?;
        let need: u64 = layers
            .iter()
            .filter_map(|l| fs::metadata(l).ok())
            .map(|m| m.len())
            .sum();
        check_space(partial, need, options)?;
        for layer in layers {
            let file = fs::File::open(layer).map_err(|e| PackagerError::input(layer, e))?;
            let size = file.metadata().map(|m| m.len()).ok();
            let name = format!("layer {}", layer.display());
            ex.apply(
                BufReader::new(file),
                &LayerInfo {
                    name: &name,
                    compressed: size,
                },
                &mut report,
            )?;
        }
        ex.finish(&mut report)?;
        Ok(report)
    })
}

/// Before extraction: the layers' blobs need at least their own size, on top of the
/// free space to keep.
fn check_space(root: &Path, need: u64, options: &ExtractOptions) -> Result<(), PackagerError> {
    let keep = options.limits.min_free_bytes;
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

/// The suffix of staging directories: `<dest>.partial-<32 hex digits>`.
const PARTIAL: &str = ".partial-";
/// The same, while being created (before it is locked).
const NEW: &str = ".partial-new-";
/// A `.partial-new-*` directory older than this was left between its creation and its
/// lock (microseconds apart) by a killed process.
const NEW_STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(600);

/// Whether `name` ends in `<tag><32 hex digits>`.
fn has_id_suffix(name: &OsStr, tag: &str) -> bool {
    let b = name.as_bytes();
    let n = tag.len() + 32;
    b.len() > n
        && b[b.len() - n..].starts_with(tag.as_bytes())
        && b[b.len() - 32..]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

fn open_dir_nofollow(path: &Path) -> io::Result<fs::File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

fn flock(file: &fs::File, op: libc::c_int) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: flock on a file descriptor this `File` owns.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Removes the staging directories (`<name>.partial-<id>`) in `dir` that a killed
/// extraction left, and returns how many. A live extraction holds a lock on its staging
/// directory (released by the kernel when the process dies, however it dies): those are
/// left alone.
pub fn sweep_stale_partials(dir: &Path) -> usize {
    let Ok(read) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for child in read.flatten() {
        let name = child.file_name();
        let path = child.path();
        if !child.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let stale = if has_id_suffix(&name, NEW) {
            // Never locked: judged by age.
            child
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > NEW_STALE_AFTER)
        } else if has_id_suffix(&name, PARTIAL) {
            match open_dir_nofollow(&path) {
                // The lock is held while the tree is removed, then dropped.
                Ok(fd) => flock(&fd, libc::LOCK_EX | libc::LOCK_NB).is_ok(),
                Err(_) => false,
            }
        } else {
            false
        };
        if stale && remove_tree(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// A staging directory, removed when dropped unless kept: on an error, and on a panic
/// as the stack unwinds. The lock on it keeps sweeps away while this process lives.
struct Staging {
    path: PathBuf,
    keep: bool,
    _lock: fs::File,
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.keep {
            let _ = remove_tree(&self.path);
        }
    }
}

/// Runs `fill` on `<dest>.partial-<random>` and renames it to `dest` when it succeeds;
/// removes it when not (or when `fill` panics). Staging left by a killed process is swept
/// first. `dest` must not exist.
fn into_new_dir(
    dest: &Path,
    fill: impl FnOnce(&Path) -> Result<ExtractReport, PackagerError>,
) -> Result<ExtractReport, PackagerError> {
    if fs::symlink_metadata(dest).is_ok() {
        return Err(PackagerError::DestinationExists {
            path: dest.to_path_buf(),
        });
    }
    let name = dest.file_name().ok_or_else(|| {
        PackagerError::io(
            "extract into",
            dest,
            io::Error::new(io::ErrorKind::InvalidInput, "destination has no file name"),
        )
    })?;
    let parent = crate::parent_dir(dest)?;
    sweep_stale_partials(&parent);
    let id = uuid::Uuid::new_v4().simple().to_string();
    let with = |tag: &str| {
        let mut n = name.to_os_string();
        n.push(format!("{tag}{id}"));
        parent.join(n)
    };
    // Created under a name sweeps leave alone, locked, then given its staging name: a
    // `.partial-*` directory is locked for as long as its process lives.
    let new = with(NEW);
    create_dir(&new)?;
    let lock = open_dir_nofollow(&new)
        .and_then(|fd| flock(&fd, libc::LOCK_EX).map(|()| fd))
        .map_err(|e| {
            let _ = fs::remove_dir(&new);
            PackagerError::io("lock", &new, e)
        })?;
    let partial = with(PARTIAL);
    if let Err(e) = fs::rename(&new, &partial) {
        let _ = fs::remove_dir(&new);
        return Err(PackagerError::io("rename", &new, e));
    }
    let mut staging = Staging {
        path: partial,
        keep: false,
        _lock: lock,
    };
    let report = fill(&staging.path)?;
    fs::rename(&staging.path, dest)
        .map_err(|e| PackagerError::io("move extracted root to", dest, e))?;
    staging.keep = true;
    Ok(report)
}

fn extract_all(
    image: &PulledImage,
    cache: &BlobCache,
    root: &Path,
    options: &ExtractOptions,
    progress: &dyn Progress,
) -> Result<ExtractReport, PackagerError> {
    let total: u64 = image.layers.iter().map(|l| l.size).sum();
    check_space(root, total, options)?;
    progress.start(Phase::Extract, Some(total));
    let mut report = ExtractReport::default();
    let mut ex = Extractor::new(root, *options)?;
    for layer in &image.layers {
        if !cache.contains(&layer.digest) {
            return Err(PackagerError::MissingBlob {
                source_name: format!("the blob cache `{}`", cache.root().display()),
                digest: layer.digest.clone(),
            });
        }
        let file = cache.open(&layer.digest)?;
        let compressed = file.metadata().map(|m| m.len()).ok();
        let mut verifying = Verifying {
            inner: file,
            hasher: Sha256::new(),
            progress,
        };
        let name = format!("layer {}", layer.digest);
        let before = report.warnings.len();
        ex.apply(
            &mut verifying,
            &LayerInfo {
                name: &name,
                compressed,
            },
            &mut report,
        )?;
        // Tar readers stop at the end-of-archive marker: hash the rest too.
        io::copy(&mut verifying, &mut io::sink())
            .map_err(|e| PackagerError::io("read cached blob", cache.path(&layer.digest), e))?;
        let actual = format!("sha256:{}", hex::encode(verifying.hasher.finalize()));
        if actual != layer.digest {
            return Err(PackagerError::DigestMismatch {
                what: format!("{name} (in the cache)"),
                expected: layer.digest.clone(),
                actual,
            });
        }
        for w in &report.warnings[before..] {
            progress.note(w);
        }
    }
    let before = report.warnings.len();
    ex.finish(&mut report)?;
    for w in &report.warnings[before..] {
        progress.note(w);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comps(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn normalize_drops_dots_and_leading_slash() {
        assert_eq!(normalize(b"./a/b/").unwrap(), (comps(&["a", "b"]), false));
        assert_eq!(
            normalize(b"/abs//path").unwrap(),
            (comps(&["abs", "path"]), true)
        );
        assert_eq!(normalize(b"./").unwrap(), (vec![], false));
    }

    #[test]
    fn normalize_refuses_dotdot_anywhere() {
        for bad in [&b"../escape"[..], b"./../../x", b"a/../b", b"a/.."] {
            assert_eq!(normalize(bad), Err(NameError::DotDot), "{bad:?}");
        }
    }

    #[test]
    fn whiteouts_are_classified() {
        assert_eq!(classify(OsStr::new(".wh..wh..opq")), Whiteout::Opaque);
        assert_eq!(
            classify(OsStr::new(".wh.foo")),
            Whiteout::Delete(OsStr::new("foo"))
        );
        assert_eq!(classify(OsStr::new(".wh..wh.plnk")), Whiteout::Ignore);
        assert_eq!(classify(OsStr::new(".wh..")), Whiteout::Ignore);
        assert_eq!(classify(OsStr::new(".wh.")), Whiteout::Ignore);
        assert_eq!(classify(OsStr::new("foo.wh.x")), Whiteout::None);
    }
}
