//! File-system calls of extraction that never follow a final symlink and work on
//! read-only trees.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::PackagerError;

pub(super) fn create_dir(abs: &Path) -> Result<(), PackagerError> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .mode(0o755)
        .create(abs)
        .map_err(|e| PackagerError::io("create directory", abs, e))
}

/// Sets atime and mtime without following a final symlink. Failures are not fatal: times
/// are cosmetic.
pub(super) fn set_times_nofollow(path: &Path, secs: u64) {
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

/// A header's time as a `SystemTime`; `None` for times no clock can hold (a base-256
/// field can say anything up to 2^95).
pub(super) fn epoch(secs: u64) -> Option<std::time::SystemTime> {
    let secs = i64::try_from(secs).ok()?;
    std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(secs as u64))
}

/// Removes whatever is at `abs` (never following a symlink), even read-only trees.
pub(super) fn remove_existing(abs: &Path) -> Result<(), PackagerError> {
    match fs::symlink_metadata(abs) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(PackagerError::io("inspect", abs, e)),
        Ok(m) if m.is_dir() => remove_tree(abs),
        Ok(_) => fs::remove_file(abs).map_err(|e| PackagerError::io("remove", abs, e)),
    }
}

/// `remove_dir_all` that also works on trees with read-only directories.
pub(super) fn remove_tree(abs: &Path) -> Result<(), PackagerError> {
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

pub(super) fn open_dir_nofollow(path: &Path) -> io::Result<fs::File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

pub(super) fn flock(file: &fs::File, op: libc::c_int) -> io::Result<()> {
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

/// Bytes available to this user on the file system holding `path`.
pub(super) fn free_bytes(path: &Path) -> Option<u64> {
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
