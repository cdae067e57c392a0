//! One tar entry onto the root: its name checked and resolved inside the root, then
//! whiteouts, directories, regular files (sparse or not), symlinks, hard links and
//! devices, each with its mode and time.

use std::ffi::{OsStr, OsString};
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tar::EntryType;

use super::apply::{Applier, DirMeta, Fail, NotApplied, Pass};
use super::fs::{create_dir, epoch, remove_existing, set_times_nofollow};
use super::limits::DiskWatch;
use super::path::{check_name_lengths, normalize, NameError, PATH_MAX};
use super::sparse::PaxSparse;
use super::{Change, ExtractReport};
use crate::error::PackagerError;

const OPAQUE: &[u8] = b".wh..wh..opq";
const WHITEOUT_META: &[u8] = b".wh..wh.";
const WHITEOUT: &[u8] = b".wh.";

/// What a file name means in a layer.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Whiteout<'a> {
    /// Not a whiteout.
    None,
    /// `.wh..wh..opq`: the parent directory hides everything from lower layers.
    Opaque,
    /// `.wh.<name>`: `<name>` is deleted.
    Delete(&'a OsStr),
    /// `.wh..wh.*` (aufs metadata) or a malformed whiteout: ignored.
    Ignore,
}

pub(super) fn classify(name: &OsStr) -> Whiteout<'_> {
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

/// What the tar header says of an entry, besides its content.
pub(super) struct Header<'r> {
    pub(super) kind: EntryType,
    /// The entry's name as the layer spells it (a sparse file's real name).
    pub(super) raw: &'r [u8],
    mode: u32,
    mtime: Option<u64>,
}

impl<'r> Header<'r> {
    pub(super) fn of<R: Read>(entry: &tar::Entry<'_, R>, kind: EntryType, raw: &'r [u8]) -> Self {
        Header {
            kind,
            raw,
            mode: entry.header().mode().unwrap_or(0o644),
            mtime: entry.header().mtime().ok(),
        }
    }

    pub(super) fn shown(&self) -> String {
        String::from_utf8_lossy(self.raw).into_owned()
    }

    fn dir_meta(&self) -> DirMeta {
        DirMeta {
            mode: self.mode & 0o7777,
            mtime: self.mtime,
        }
    }
}

impl Applier {
    /// Applies one entry. What it skips, it says why; what it fails on fails the layer.
    pub(super) fn apply_entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        head: &Header<'_>,
        sparse: Option<PaxSparse>,
        pass: &mut Pass<'_>,
        report: &mut ExtractReport,
    ) -> Result<(), NotApplied> {
        let comps = self.entry_name(head, pass, report)?;
        let Some((name, parents)) = comps.split_last() else {
            // The root itself (`./`): only its metadata matters.
            if head.kind == EntryType::Directory {
                self.dirs.insert(PathBuf::new(), head.dir_meta());
            }
            return Ok(());
        };
        match classify(name) {
            Whiteout::None => {}
            Whiteout::Ignore => return Ok(()),
            Whiteout::Opaque => {
                if let Some(parent) = self.resolve(parents, false)? {
                    pass.opaque.push(parent);
                }
                return Ok(());
            }
            Whiteout::Delete(target) => {
                if let Some(parent) = self.resolve(parents, false)? {
                    let rel = parent.join(target);
                    // A whiteout only hides lower layers, never this layer's own entries.
                    if !pass.added.contains(&rel) {
                        remove_existing(&self.root.join(&rel))?;
                    }
                }
                return Ok(());
            }
        }
        let rel = self.place(parents, name, head, pass)?;
        let abs = self.root.join(&rel);
        match head.kind {
            EntryType::Directory => self.directory(&abs, &rel, head)?,
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.regular_file(entry, head, sparse, &abs, pass, report)?
            }
            EntryType::Symlink => symlink(entry, head, &abs, pass)?,
            EntryType::Link => self.hard_link(entry, &abs)?,
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                report.skipped_devices += 1;
                let what = match head.kind {
                    EntryType::Char => "character device",
                    EntryType::Block => "block device",
                    _ => "fifo",
                };
                return Err(NotApplied::Skipped(
                    Change::Device,
                    format!("is a {what}: not created"),
                ));
            }
            other => {
                return Err(NotApplied::Skipped(
                    Change::Skipped,
                    format!(
                        "has unsupported tar entry type {:?}: skipped",
                        other.as_byte() as char
                    ),
                ))
            }
        }
        pass.added.insert(rel);
        Ok(())
    }

    /// The entry's name as components: `..` is skipped, names too long are malformed,
    /// and an absolute name is put under the root (said, or refused when strict).
    fn entry_name(
        &self,
        head: &Header<'_>,
        pass: &Pass<'_>,
        report: &mut ExtractReport,
    ) -> Result<Vec<OsString>, NotApplied> {
        let (comps, absolute) = match normalize(head.raw) {
            Ok(v) => v,
            Err(NameError::DotDot) => {
                return Err(NotApplied::Skipped(
                    Change::Hostile,
                    "has a `..` component: skipped (it could point outside the root)".into(),
                ))
            }
        };
        check_name_lengths(&comps).map_err(|reason| pass.bad(head.raw, reason))?;
        if absolute {
            let why = "has an absolute path: extracted relative to the root";
            self.note_or_refuse(Change::Hostile, why.into(), &head.shown(), pass, report)?;
        }
        Ok(comps)
    }

    /// Where the entry goes, relative to the root: its parents resolved (and created).
    fn place(
        &mut self,
        parents: &[OsString],
        name: &OsStr,
        head: &Header<'_>,
        pass: &Pass<'_>,
    ) -> Result<PathBuf, NotApplied> {
        let Some(parent) = self.resolve(parents, true)? else {
            return Err(NotApplied::Skipped(
                Change::Skipped,
                "has no parent directory: skipped".into(),
            ));
        };
        let rel = parent.join(name);
        if rel.as_os_str().len() > PATH_MAX {
            return Err(pass
                .bad(
                    head.raw,
                    format!(
                        "is longer than a path may be ({PATH_MAX} bytes) once its symlinks are resolved"
                    ),
                )
                .into());
        }
        Ok(rel)
    }

    fn directory(&mut self, abs: &Path, rel: &Path, head: &Header<'_>) -> Result<(), NotApplied> {
        match fs::symlink_metadata(abs) {
            Ok(m) if m.is_dir() => {}
            _ => {
                remove_existing(abs)?;
                create_dir(abs)?;
            }
        }
        self.dirs.insert(rel.to_path_buf(), head.dir_meta());
        Ok(())
    }

    /// A regular file, bounded by what its header says before a byte is written; zeros
    /// and sparse holes are left as holes.
    fn regular_file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        head: &Header<'_>,
        sparse: Option<PaxSparse>,
        abs: &Path,
        pass: &Pass<'_>,
        report: &mut ExtractReport,
    ) -> Result<(), NotApplied> {
        // What the file will be, before a byte is written: a header may claim anything.
        let (size, holes) = match (&sparse, head.kind) {
            (Some(s), _) => (s.real_size, s.holes()),
            // The tar reader expands old GNU sparse entries; its size is the real one.
            (None, EntryType::GNUSparse) => (
                entry.size(),
                entry
                    .size()
                    .saturating_sub(entry.header().entry_size().unwrap_or(0)),
            ),
            (None, _) => (entry.size(), 0),
        };
        pass.check(size)?;
        pass.charge(holes)?;
        self.disk.check()?;
        remove_existing(abs)?;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(abs)
            .map_err(|e| PackagerError::io("create", abs, e))?;
        let mut sink = FileSink {
            file,
            path: abs,
            pos: 0,
            disk: &mut self.disk,
        };
        if !sink.fill(entry, sparse.as_ref(), size)? {
            return Err(Fail::Other(PackagerError::Truncated {
                path: PathBuf::from(pass.layer.name),
                entry: head.shown(),
            })
            .into());
        }
        let file = sink.file;
        self.consumed = true;
        report.bytes = report.bytes.saturating_add(size);
        if head.mode & 0o6000 != 0 {
            report.note(
                Change::SetId,
                format!(
                    "{}: `{}`: setuid/setgid bits dropped (files are owned by the extracting user)",
                    pass.layer.name,
                    head.shown()
                ),
            );
        }
        if let Some(t) = head.mtime.and_then(epoch) {
            let _ = file.set_modified(t);
        }
        file.set_permissions(fs::Permissions::from_mode(head.mode & 0o1777))
            .map_err(|e| PackagerError::io("set permissions of", abs, e))?;
        Ok(())
    }

    /// A hard link to a file already in the root; never to a directory or out of it.
    fn hard_link<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        abs: &Path,
    ) -> Result<(), NotApplied> {
        let Some(target) = entry.link_name_bytes() else {
            return Err(NotApplied::Skipped(
                Change::Skipped,
                "is a hard link without a target: skipped".into(),
            ));
        };
        let tabs = self.link_target(&target)?;
        if tabs != abs {
            remove_existing(abs)?;
            // linkat(2) without AT_SYMLINK_FOLLOW: a symlink target is linked itself.
            fs::hard_link(&tabs, abs).map_err(|e| PackagerError::io("create hard link", abs, e))?;
        }
        Ok(())
    }

    /// The file a hard link's target names, inside the root.
    fn link_target(&mut self, target: &[u8]) -> Result<PathBuf, NotApplied> {
        let shown = String::from_utf8_lossy(target).into_owned();
        let refused = |why: String| NotApplied::Skipped(Change::Hostile, why);
        let skipped = |why: String| NotApplied::Skipped(Change::Skipped, why);
        let (tcomps, _) = match normalize(target) {
            Ok(v) => v,
            Err(NameError::DotDot) => {
                return Err(refused(format!(
                    "is a hard link to `{shown}`, outside the root: refused"
                )))
            }
        };
        let Some((tname, tparents)) = tcomps.split_last() else {
            return Err(refused(format!(
                "is a hard link to `{shown}` (the root): refused"
            )));
        };
        let tparent = match self.resolve(tparents, false) {
            Ok(Some(p)) => p,
            Err(NotApplied::Failed(e)) => return Err(NotApplied::Failed(e)),
            Ok(None) | Err(NotApplied::Skipped(..)) => {
                return Err(skipped(format!(
                    "is a hard link to `{shown}`, which does not exist: skipped"
                )))
            }
        };
        let tabs = self.root.join(tparent.join(tname));
        match fs::symlink_metadata(&tabs) {
            Ok(m) if !m.is_dir() => Ok(tabs),
            Ok(_) => Err(refused(format!(
                "is a hard link to `{shown}`, a directory: refused"
            ))),
            Err(_) => Err(skipped(format!(
                "is a hard link to `{shown}`, which is not a file in the root: skipped"
            ))),
        }
    }
}

/// A symlink, stored verbatim: it is only ever followed relative to the root.
fn symlink<R: Read>(
    entry: &tar::Entry<'_, R>,
    head: &Header<'_>,
    abs: &Path,
    pass: &Pass<'_>,
) -> Result<(), NotApplied> {
    let Some(target) = entry.link_name_bytes() else {
        return Err(NotApplied::Skipped(
            Change::Skipped,
            "is a symlink without a target: skipped".into(),
        ));
    };
    if target.len() > PATH_MAX || target.contains(&0) {
        return Err(pass
            .bad(
                head.raw,
                format!(
                    "is a symlink whose target is not a valid path (over {PATH_MAX} bytes, or with a NUL byte)"
                ),
            )
            .into());
    }
    remove_existing(abs)?;
    std::os::unix::fs::symlink(OsStr::from_bytes(&target), abs)
        .map_err(|e| PackagerError::io("create symlink", abs, e))?;
    if let Some(t) = head.mtime {
        set_times_nofollow(abs, t);
    }
    Ok(())
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
    /// Writes the entry's content: the whole stream, or the sparse map's chunks at their
    /// offsets; then gives the file its length. `Ok(false)`: the stream ended early.
    fn fill(
        &mut self,
        from: &mut impl Read,
        sparse: Option<&PaxSparse>,
        size: u64,
    ) -> Result<bool, Fail> {
        match sparse {
            None => {
                let written = self.copy(from, u64::MAX)?;
                if written < size {
                    return Ok(false);
                }
                self.finish(written)?;
            }
            Some(s) => {
                for &(offset, len) in &s.map {
                    self.seek_to(offset)?;
                    if self.copy(from, len)? < len {
                        return Ok(false);
                    }
                }
                self.finish(s.real_size)?;
            }
        }
        Ok(true)
    }

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

#[cfg(test)]
mod tests {
    use super::*;

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
