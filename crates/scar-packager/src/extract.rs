//! Safe layer extraction.
//!
//! Every entry name is normalised (leading `/` dropped, `.` dropped, `..` refused) and its
//! parent directories are resolved *inside* the root, one component at a time, following
//! symlinks the way a chroot would (absolute targets restart at the root, `..` stops at
//! the root). The final component is never followed. So nothing is ever written outside the
//! root, whatever symlinks, hard links or names the layers contain.

use std::collections::{BTreeMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tar::EntryType;

use crate::cache::BlobCache;
use crate::error::PackagerError;
use crate::progress::{Phase, Progress};
use crate::PulledImage;

/// What an extraction did. `warnings` are human-readable lines for the CLI to show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtractReport {
    /// Entries applied (files, directories, links, whiteouts).
    pub entries: u64,
    /// Bytes of regular-file content written.
    pub bytes: u64,
    /// Device nodes and fifos that were not created.
    pub skipped_devices: u64,
    /// Everything skipped or changed, one line each.
    pub warnings: Vec<String>,
}

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

/// Applies layers onto one root; directory modes and times are fixed in [`Self::finish`].
pub(crate) struct Extractor {
    root: PathBuf,
    dirs: BTreeMap<PathBuf, DirMeta>,
    setid_dropped: u64,
}

enum Outcome {
    Done,
    Skipped(String),
}

impl Extractor {
    pub(crate) fn new(root: &Path) -> Result<Self, PackagerError> {
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
            setid_dropped: 0,
        })
    }

    /// Applies one layer (gzip or plain tar, detected by magic bytes).
    pub(crate) fn apply(
        &mut self,
        reader: impl Read,
        layer_name: &str,
        report: &mut ExtractReport,
    ) -> Result<(), PackagerError> {
        let reader = decompress(reader, layer_name)?;
        let mut archive = tar::Archive::new(reader);
        let input_err = |e: io::Error| PackagerError::input(layer_name, e);
        // Paths this layer put in place (explicit entries), for whiteouts and opaque dirs.
        let mut added: HashSet<PathBuf> = HashSet::new();
        let mut opaque: Vec<PathBuf> = Vec::new();
        for entry in archive.entries().map_err(input_err)? {
            let mut entry = entry.map_err(input_err)?;
            let kind = entry.header().entry_type();
            if matches!(
                kind,
                EntryType::XGlobalHeader
                    | EntryType::XHeader
                    | EntryType::GNULongName
                    | EntryType::GNULongLink
            ) {
                continue;
            }
            let raw = entry.path_bytes().into_owned();
            let shown = String::from_utf8_lossy(&raw).into_owned();
            match self.apply_entry(&mut entry, kind, &raw, &mut added, &mut opaque, report) {
                Ok(Outcome::Done) => report.entries += 1,
                Ok(Outcome::Skipped(why)) => {
                    report
                        .warnings
                        .push(format!("{layer_name}: `{shown}` {why}"));
                }
                Err(e) => return Err(e),
            }
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

    fn apply_entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        kind: EntryType,
        raw: &[u8],
        added: &mut HashSet<PathBuf>,
        opaque: &mut Vec<PathBuf>,
        report: &mut ExtractReport,
    ) -> Result<Outcome, PackagerError> {
        let (comps, absolute) = match normalize(raw) {
            Ok(v) => v,
            Err(NameError::DotDot) => {
                return Ok(Outcome::Skipped(
                    "has a `..` component: skipped (it could point outside the root)".into(),
                ))
            }
        };
        if absolute {
            report.warnings.push(format!(
                "`{}` has an absolute path: extracted relative to the root",
                String::from_utf8_lossy(raw)
            ));
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
                    Err(Resolve::Skip(why)) => return Ok(Outcome::Skipped(why)),
                    Err(Resolve::Fatal(e)) => return Err(e),
                }
                return Ok(Outcome::Done);
            }
            Whiteout::Delete(target) => {
                let parent = match self.resolve(parents, false) {
                    Ok(p) => p,
                    Err(Resolve::Skip(why)) => return Ok(Outcome::Skipped(why)),
                    Err(Resolve::Fatal(e)) => return Err(e),
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
            Ok(None) => return Ok(Outcome::Skipped("has no parent directory: skipped".into())),
            Err(Resolve::Skip(why)) => return Ok(Outcome::Skipped(why)),
            Err(Resolve::Fatal(e)) => return Err(e),
        };
        let rel = parent.join(name);
        let abs = self.root.join(&rel);

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
            EntryType::Regular | EntryType::Continuous => {
                remove_existing(&abs)?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&abs)
                    .map_err(|e| PackagerError::io("create", &abs, e))?;
                let expected = entry.header().size().ok();
                let written = copy_entry(&mut *entry, &mut file, &abs)?;
                let expected = expected.unwrap_or(written);
                if written < expected {
                    return Err(PackagerError::Truncated {
                        path: PathBuf::from("layer"),
                        entry: String::from_utf8_lossy(raw).into_owned(),
                    });
                }
                report.bytes += written;
                if header_mode & 0o6000 != 0 {
                    self.setid_dropped += 1;
                }
                let mode = header_mode & 0o1777;
                if let Some(t) = mtime {
                    let _ = file.set_modified(epoch(t));
                }
                file.set_permissions(fs::Permissions::from_mode(mode))
                    .map_err(|e| PackagerError::io("set permissions of", &abs, e))?;
            }
            EntryType::Symlink => {
                let Some(target) = entry.link_name_bytes() else {
                    return Ok(Outcome::Skipped(
                        "is a symlink without a target: skipped".into(),
                    ));
                };
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
                        "is a hard link without a target: skipped".into(),
                    ));
                };
                let shown = String::from_utf8_lossy(&target).into_owned();
                let (tcomps, _) = match normalize(&target) {
                    Ok(v) => v,
                    Err(NameError::DotDot) => {
                        return Ok(Outcome::Skipped(format!(
                            "is a hard link to `{shown}`, outside the root: refused"
                        )))
                    }
                };
                let Some((tname, tparents)) = tcomps.split_last() else {
                    return Ok(Outcome::Skipped(format!(
                        "is a hard link to `{shown}` (the root): refused"
                    )));
                };
                let tparent = match self.resolve(tparents, false) {
                    Ok(Some(p)) => p,
                    Err(Resolve::Fatal(e)) => return Err(e),
                    Ok(None) | Err(Resolve::Skip(_)) => {
                        return Ok(Outcome::Skipped(format!(
                            "is a hard link to `{shown}`, which does not exist: skipped"
                        )))
                    }
                };
                let tabs = self.root.join(tparent.join(tname));
                match fs::symlink_metadata(&tabs) {
                    Ok(m) if !m.is_dir() => {}
                    _ => {
                        return Ok(Outcome::Skipped(format!(
                            "is a hard link to `{shown}`, which is not a file in the root: skipped"
                        )))
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
                return Ok(Outcome::Skipped(format!("is a {what}: not created")));
            }
            other => {
                return Ok(Outcome::Skipped(format!(
                    "has unsupported tar entry type {:?}: skipped",
                    other.as_byte() as char
                )))
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
                    return Err(Resolve::Skip(format!(
                        "needs `{}` to be a directory, but it is a file: skipped",
                        next.display()
                    )))
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
                report
                    .warnings
                    .push(format!("`/{}`: setuid/setgid bits dropped", rel.display()));
            }
            fs::set_permissions(&abs, fs::Permissions::from_mode(meta.mode & 0o1777))
                .map_err(|e| PackagerError::io("set permissions of", &abs, e))?;
            if let Some(t) = meta.mtime {
                set_times_nofollow(&abs, t);
            }
        }
        if self.setid_dropped > 0 {
            report.warnings.push(format!(
                "setuid/setgid bits dropped from {} file(s) (files are owned by the extracting user)",
                self.setid_dropped
            ));
        }
        Ok(())
    }
}

enum Resolve {
    Skip(String),
    Fatal(PackagerError),
}

fn epoch(secs: u64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)
}

fn create_dir(abs: &Path) -> Result<(), PackagerError> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .mode(0o755)
        .create(abs)
        .map_err(|e| PackagerError::io("create directory", abs, e))
}

fn copy_entry(mut from: impl Read, to: &mut fs::File, path: &Path) -> Result<u64, PackagerError> {
    use std::io::Write;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(PackagerError::input("layer", e)),
        };
        to.write_all(&buf[..n])
            .map_err(|e| PackagerError::io("write", path, e))?;
        total += n as u64;
    }
}

/// Sets atime and mtime without following a final symlink. Failures are not fatal: times
/// are cosmetic.
fn set_times_nofollow(path: &Path, secs: u64) {
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return;
    };
    // `as _`: the field's own type (`time_t`, whose alias is deprecated on musl).
    let t = libc::timespec {
        tv_sec: secs.min(i64::MAX as u64) as _,
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

/// Wraps a layer stream in the right decompressor, judged by its first bytes.
pub(crate) fn decompress<'a>(
    reader: impl Read + 'a,
    layer_name: &str,
) -> Result<Box<dyn Read + 'a>, PackagerError> {
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
        Ok(Box::new(flate2::read::MultiGzDecoder::new(buf)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Err(unsupported("zstd"))
    } else if head.starts_with(b"BZh") {
        Err(unsupported("bzip2"))
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Err(unsupported("xz"))
    } else {
        Ok(Box::new(buf))
    }
}

/// Whether the blob starts with the gzip magic bytes.
pub(crate) fn is_gzip(path: &Path) -> io::Result<bool> {
    let mut head = [0u8; 2];
    let mut f = fs::File::open(path)?;
    let n = f.read(&mut head)?;
    Ok(n == 2 && head == [0x1f, 0x8b])
}

/// Applies one layer onto an existing root directory (directory modes fixed at the end).
pub fn extract_layer(
    reader: impl Read,
    root: &Path,
    report: &mut ExtractReport,
) -> Result<(), PackagerError> {
    let mut ex = Extractor::new(root)?;
    ex.apply(reader, "layer", report)?;
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
pub fn extract_image(
    image: &PulledImage,
    cache: &BlobCache,
    dest: &Path,
    progress: &dyn Progress,
) -> Result<ExtractReport, PackagerError> {
    let result = into_new_dir(dest, |partial| extract_all(image, cache, partial, progress));
    progress.finish();
    result
}

/// Applies layer files (`docker save` / udocker `.layer` blobs, gzip or plain tar), bottom
/// first, onto a new root at `dest`, atomically as [`extract_image`] does. For layers that
/// are already on disk and trusted as such (a package's own), so not digest-checked here.
pub fn extract_layer_files(
    layers: &[PathBuf],
    dest: &Path,
) -> Result<ExtractReport, PackagerError> {
    into_new_dir(dest, |partial| {
        let mut report = ExtractReport::default();
        for layer in layers {
            let file = fs::File::open(layer).map_err(|e| PackagerError::input(layer, e))?;
            extract_layer(BufReader::new(file), partial, &mut report)?;
        }
        Ok(report)
    })
}

/// Runs `fill` on `<dest>.partial-<random>` and renames it to `dest` when it succeeds;
/// removes it when not. `dest` must not exist.
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
    let mut partial_name = name.to_os_string();
    partial_name.push(format!(".partial-{}", uuid::Uuid::new_v4().simple()));
    let partial = parent.join(partial_name);
    create_dir(&partial)?;

    let result = fill(&partial).and_then(|report| {
        fs::rename(&partial, dest)
            .map_err(|e| PackagerError::io("move extracted root to", dest, e))?;
        Ok(report)
    });
    if result.is_err() {
        let _ = remove_tree(&partial);
    }
    result
}

fn extract_all(
    image: &PulledImage,
    cache: &BlobCache,
    root: &Path,
    progress: &dyn Progress,
) -> Result<ExtractReport, PackagerError> {
    let total: u64 = image.layers.iter().map(|l| l.size).sum();
    progress.start(Phase::Extract, Some(total));
    let mut report = ExtractReport::default();
    let mut ex = Extractor::new(root)?;
    for layer in &image.layers {
        if !cache.contains(&layer.digest) {
            return Err(PackagerError::MissingBlob {
                source_name: format!("the blob cache `{}`", cache.root().display()),
                digest: layer.digest.clone(),
            });
        }
        let file = cache.open(&layer.digest)?;
        let mut verifying = Verifying {
            inner: file,
            hasher: Sha256::new(),
            progress,
        };
        let name = format!("layer {}", layer.digest);
        let before = report.warnings.len();
        ex.apply(&mut verifying, &name, &mut report)?;
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
            progress.warn(w);
        }
    }
    let before = report.warnings.len();
    ex.finish(&mut report)?;
    for w in &report.warnings[before..] {
        progress.warn(w);
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
