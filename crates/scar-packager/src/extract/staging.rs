//! Staging directories: extraction into a destination is all-or-nothing. The root is
//! built in `<dest>.partial-<id>`, locked for as long as its process lives, and renamed to
//! `dest` when complete; it is removed on an error or a panic, and swept once the process
//! that made it is gone, however it died.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::fs::{create_dir, flock, open_dir_nofollow, remove_tree};
use crate::error::PackagerError;

/// The suffix of staging directories: `<dest>.partial-<32 hex digits>`.
const PARTIAL: &str = ".partial-";
/// The same, while being created (before it is locked).
const NEW: &str = ".partial-new-";
/// A `.partial-new-*` directory older than this was left between its creation and its
/// lock (microseconds apart) by a killed process.
const NEW_STALE_AFTER: Duration = Duration::from_secs(600);

/// Removes the staging directories (`<name>.partial-<id>`) in `dir` that a killed
/// extraction left, and returns how many. A live extraction holds a lock on its staging
/// directory (released by the kernel when the process dies, however it dies): those are
/// left alone.
pub(super) fn sweep_stale_partials(dir: &Path) -> usize {
    let Ok(read) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for child in read.flatten() {
        if !child.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = child.path();
        if is_stale(&child, &path) && remove_tree(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Whether `child` is staging nobody will finish: a `.partial-*` directory whose lock
/// is free (its process is gone), or a `.partial-new-*` one left long ago.
fn is_stale(child: &fs::DirEntry, path: &Path) -> bool {
    let name = child.file_name();
    if has_id_suffix(&name, NEW) {
        // Never locked: judged by age.
        child
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > NEW_STALE_AFTER)
    } else if has_id_suffix(&name, PARTIAL) {
        match open_dir_nofollow(path) {
            Ok(fd) => flock(&fd, libc::LOCK_EX | libc::LOCK_NB).is_ok(),
            Err(_) => false,
        }
    } else {
        false
    }
}

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

/// Runs `fill` on `<dest>.partial-<random>` and renames it to `dest` when it succeeds;
/// removes it when not (or when `fill` panics). Staging left by a killed process is swept
/// first. `dest` must not exist.
pub(super) fn into_new_dir<T>(
    dest: &Path,
    fill: impl FnOnce(&Path) -> Result<T, PackagerError>,
) -> Result<T, PackagerError> {
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
    let mut staging = Staging::create(&parent, name)?;
    let out = fill(&staging.path)?;
    fs::rename(&staging.path, dest)
        .map_err(|e| PackagerError::io("move extracted root to", dest, e))?;
    staging.keep = true;
    Ok(out)
}

/// A staging directory, removed when dropped unless kept: on an error, and on a panic
/// as the stack unwinds. The lock on it keeps sweeps away while this process lives.
struct Staging {
    path: PathBuf,
    keep: bool,
    _lock: fs::File,
}

impl Staging {
    /// `<parent>/<name>.partial-<random>`, locked. It is created under a name sweeps
    /// leave alone, locked, then given its staging name: a `.partial-*` directory is
    /// locked for as long as its process lives.
    fn create(parent: &Path, name: &OsStr) -> Result<Staging, PackagerError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let with = |tag: &str| {
            let mut n = name.to_os_string();
            n.push(format!("{tag}{id}"));
            parent.join(n)
        };
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
        Ok(Staging {
            path: partial,
            keep: false,
            _lock: lock,
        })
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.keep {
            let _ = remove_tree(&self.path);
        }
    }
}
