//! Layers onto one root: each layer's stream decompressed, metered and read entry by
//! entry, its opaque directories pruned; directory modes and times fixed once all the
//! layers are in.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use tar::EntryType;

use super::entry::Header;
use super::fs::{remove_existing, set_times_nofollow};
use super::limits::{
    layer_cap, limit_error, DiskWatch, Meter, Metered, Trip, Watched, METADATA_MAX,
};
use super::sparse::pax_sparse;
use super::{Change, ExtractLimits, ExtractOptions, ExtractReport};
use crate::error::PackagerError;

/// One layer's context, for error messages and limits.
pub(super) struct LayerInfo<'a> {
    pub(super) name: &'a str,
    /// The blob's size, when known: the base of the expansion ratio.
    pub(super) compressed: Option<u64>,
}

/// Why a layer could not be applied: its stream failed (classified by
/// [`Applier::apply`], which knows whether the source, a limit or the content is to
/// blame), or something else.
pub(super) enum Fail {
    Read(io::Error),
    Other(PackagerError),
}

impl From<PackagerError> for Fail {
    fn from(e: PackagerError) -> Self {
        Fail::Other(e)
    }
}

/// Why an entry was not applied: skipped (the layer goes on, and the report says why),
/// or failed (so does the layer).
pub(super) enum NotApplied {
    Skipped(Change, String),
    Failed(Fail),
}

impl From<Fail> for NotApplied {
    fn from(e: Fail) -> Self {
        NotApplied::Failed(e)
    }
}

impl From<PackagerError> for NotApplied {
    fn from(e: PackagerError) -> Self {
        NotApplied::Failed(Fail::Other(e))
    }
}

/// The directory metadata to apply once all writes into the directory are done.
#[derive(Debug, Clone, Copy)]
pub(super) struct DirMeta {
    pub(super) mode: u32,
    pub(super) mtime: Option<u64>,
}

/// One layer being applied: which, its meter, and what it has put in place so far.
pub(super) struct Pass<'a> {
    pub(super) layer: &'a LayerInfo<'a>,
    meter: Rc<Meter>,
    limits: ExtractLimits,
    /// Paths this layer put in place (explicit entries), for whiteouts and opaque dirs.
    pub(super) added: HashSet<PathBuf>,
    pub(super) opaque: Vec<PathBuf>,
}

impl Pass<'_> {
    /// Whether `more` bytes still fit in the limits.
    pub(super) fn check(&self, more: u64) -> Result<(), Fail> {
        self.bounded(self.meter.check(more))
    }

    /// Counts `n` bytes that are not in the stream (sparse holes).
    pub(super) fn charge(&self, n: u64) -> Result<(), Fail> {
        self.bounded(self.meter.charge(n))
    }

    fn bounded(&self, within: Result<(), Trip>) -> Result<(), Fail> {
        within.map_err(|t| Fail::Other(limit_error(&self.limits, t, self.layer)))
    }

    /// The error for a malformed entry named `raw`.
    pub(super) fn bad(&self, raw: &[u8], reason: String) -> PackagerError {
        PackagerError::BadLayer {
            layer: self.layer.name.to_string(),
            reason: format!("`{}` {reason}", String::from_utf8_lossy(raw)),
        }
    }
}

/// Applies layers onto one root; directory modes and times are fixed in [`Self::finish`].
pub(super) struct Applier {
    pub(super) root: PathBuf,
    pub(super) dirs: BTreeMap<PathBuf, DirMeta>,
    options: ExtractOptions,
    /// What the layers applied so far expanded to.
    expanded: u64,
    pub(super) disk: DiskWatch,
    /// The last entry's data was written out (read to its end).
    pub(super) consumed: bool,
}

impl Applier {
    pub(super) fn new(root: &Path, options: ExtractOptions) -> Result<Self, PackagerError> {
        let meta = fs::symlink_metadata(root)
            .map_err(|e| PackagerError::io("open extraction root", root, e))?;
        if !meta.is_dir() {
            return Err(PackagerError::io(
                "use as extraction root",
                root,
                io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
            ));
        }
        Ok(Applier {
            root: root.to_path_buf(),
            dirs: BTreeMap::new(),
            options,
            expanded: 0,
            consumed: false,
            disk: DiskWatch::new(root, options.limits.min_free_bytes),
        })
    }

    /// Applies one layer (gzip or plain tar, detected by magic bytes).
    pub(super) fn apply(
        &mut self,
        reader: impl Read,
        layer: &LayerInfo<'_>,
        report: &mut ExtractReport,
    ) -> Result<(), PackagerError> {
        let limits = self.options.limits;
        let meter = Rc::new(Meter::new(self.expanded, limits.max_image_bytes));
        let watched = Watched {
            inner: reader,
            meter: meter.clone(),
        };
        let mut pass = Pass {
            layer,
            meter: meter.clone(),
            limits,
            added: HashSet::new(),
            opaque: Vec::new(),
        };
        let result = self.apply_stream(watched, &mut pass, report);
        self.expanded = self.expanded.saturating_add(meter.expanded.get());
        report.expanded = self.expanded;
        result.map_err(|fail| match fail {
            Fail::Other(e) => e,
            Fail::Read(e) => {
                if let Some(t) = meter.tripped.get() {
                    limit_error(&limits, t, layer)
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
        pass: &mut Pass<'_>,
        report: &mut ExtractReport,
    ) -> Result<(), Fail> {
        let (reader, compressed) = decompress_detect(reader, pass.layer.name)?;
        if compressed {
            // A plain tar expands to itself: the ratio is for compressed layers.
            pass.meter
                .layer_cap
                .set(layer_cap(&pass.limits, pass.layer));
        }
        let metered = Metered {
            inner: reader,
            meter: pass.meter.clone(),
        };
        let mut archive = tar::Archive::new(metered);
        let mut entries = archive.entries().map_err(Fail::Read)?;
        loop {
            // Everything the tar reader reads to find the next entry is header data: bound
            // it, so that a 6 GB "long name" is not held in memory.
            pass.meter.window.set(Some(METADATA_MAX));
            let next = entries.next();
            pass.meter.window.set(None);
            let Some(entry) = next else { break };
            self.apply_tar_entry(entry.map_err(Fail::Read)?, pass, report)?;
        }
        self.prune_opaque(pass)?;
        Ok(())
    }

    /// One entry of the stream, applied or reported, and then read to its end.
    fn apply_tar_entry<R: Read>(
        &mut self,
        mut entry: tar::Entry<'_, R>,
        pass: &mut Pass<'_>,
        report: &mut ExtractReport,
    ) -> Result<(), Fail> {
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            io::copy(&mut entry, &mut io::sink()).map_err(Fail::Read)?;
            return Ok(());
        }
        let sparse = if matches!(kind, EntryType::Regular | EntryType::Continuous) {
            pax_sparse(&mut entry).map_err(|reason| pass.bad(&entry.path_bytes(), reason))?
        } else {
            None
        };
        let raw = match sparse.as_ref().and_then(|s| s.name.clone()) {
            Some(name) => name,
            None => entry.path_bytes().into_owned(),
        };
        let head = Header::of(&entry, kind, &raw);
        self.consumed = false;
        match self.apply_entry(&mut entry, &head, sparse, pass, report) {
            Ok(()) => report.entries += 1,
            Err(NotApplied::Skipped(change, why)) => {
                self.note_or_refuse(change, why, &head.shown(), pass, report)?
            }
            Err(NotApplied::Failed(fail)) => return Err(fail),
        }
        // What the entry did not use is read here, not by the tar reader's skip,
        // which runs inside the header window. The tar reader makes up the holes of an
        // old GNU sparse entry, uncounted: bound them before they are read.
        if kind == EntryType::GNUSparse && !self.consumed {
            pass.check(entry.size())?;
        }
        io::copy(&mut entry, &mut io::sink()).map_err(Fail::Read)?;
        Ok(())
    }

    /// Reports what was dropped or changed of an entry; a hostile one is an error
    /// instead when extraction is strict.
    pub(super) fn note_or_refuse(
        &self,
        change: Change,
        why: String,
        shown: &str,
        pass: &Pass<'_>,
        report: &mut ExtractReport,
    ) -> Result<(), Fail> {
        if self.options.strict && change == Change::Hostile {
            return Err(Fail::Other(PackagerError::Hostile {
                layer: pass.layer.name.to_string(),
                entry: shown.to_string(),
                why,
            }));
        }
        report.note(change, format!("{}: `{shown}` {why}", pass.layer.name));
        Ok(())
    }

    /// Opaque directories: drop what lower layers had, keep what this layer added.
    fn prune_opaque(&self, pass: &Pass<'_>) -> Result<(), PackagerError> {
        let mut keep: HashSet<PathBuf> = HashSet::new();
        for p in &pass.added {
            let mut cur = p.as_path();
            while keep.insert(cur.to_path_buf()) {
                match cur.parent() {
                    Some(parent) => cur = parent,
                    None => break,
                }
            }
        }
        for dir in &pass.opaque {
            self.prune(dir, &keep)?;
        }
        Ok(())
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
    pub(super) fn finish(self, report: &mut ExtractReport) -> Result<(), PackagerError> {
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
