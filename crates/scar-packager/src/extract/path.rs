//! Entry names, and where they lead inside the root.
//!
//! A name is split into normal components (leading `/` dropped, `.` dropped, `..`
//! refused) and its parent directories are resolved one component at a time, following
//! symlinks the way a chroot would: absolute targets restart at the root, `..` stops at
//! the root.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use super::apply::{Applier, DirMeta, NotApplied};
use super::fs::create_dir;
use super::Change;
use crate::error::PackagerError;

/// `NAME_MAX` and `PATH_MAX` of Linux file systems.
const NAME_MAX: usize = 255;
pub(super) const PATH_MAX: usize = 4095;
const MAX_SYMLINK_HOPS: usize = 40;

/// Why an entry name was refused.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum NameError {
    DotDot,
}

/// Splits a tar entry name into normal components. A leading `/` is dropped (the second
/// value says whether there was one); `..` anywhere is refused.
pub(super) fn normalize(raw: &[u8]) -> Result<(Vec<OsString>, bool), NameError> {
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

/// Refuses names the file system cannot hold, before anything is created: a layer that
/// names them is malformed.
pub(super) fn check_name_lengths(comps: &[OsString]) -> Result<(), String> {
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

impl Applier {
    /// Resolves parent components inside the root, like a chroot would: symlinks are
    /// followed (absolute targets from the root, `..` clamped at the root). With `create`,
    /// missing directories are made; without, `Ok(None)` says the path does not exist.
    /// Every directory on the way is made owner-writable (its mode restored at the end).
    pub(super) fn resolve(
        &mut self,
        comps: &[OsString],
        create: bool,
    ) -> Result<Option<PathBuf>, NotApplied> {
        let mut resolved = PathBuf::new();
        let mut queue: VecDeque<OsString> = comps.iter().cloned().collect();
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
                        return Err(NotApplied::Skipped(
                            Change::Hostile,
                            "goes through too many symlinks: skipped".into(),
                        ));
                    }
                    let target = fs::read_link(&abs)
                        .map_err(|e| PackagerError::io("read symlink", &abs, e))?;
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
                            .map_err(|e| PackagerError::io("make writable", &abs, e))?;
                        self.dirs
                            .entry(next.clone())
                            .or_insert(DirMeta { mode, mtime: None });
                    }
                    resolved = next;
                }
                Ok(_) => {
                    return Err(NotApplied::Skipped(
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
                    create_dir(&abs)?;
                    resolved = next;
                }
                Err(e) => return Err(PackagerError::io("inspect", &abs, e).into()),
            }
        }
        Ok(Some(resolved))
    }
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
}
