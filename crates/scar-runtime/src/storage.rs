//! Where input objects come from and output files go.
//!
//! On the local provider a function's bucket is a directory tree bind-mounted into the
//! sandbox, named by `SCAR_STORAGE_DIR` (`<dir>/<bucket>/<key>`): [`DirStorage`]. Writes are
//! atomic (a temporary file renamed into place), so a watcher never sees half an output.
//!
//! On AWS Lambda there is no such directory: buckets are S3's, through [`S3Storage`]
//! (feature `s3`, on by default).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use scar_core::contract::STORAGE_DIR_VAR;

#[cfg(feature = "s3")]
#[path = "s3.rs"]
pub(crate) mod s3;
#[cfg(feature = "s3")]
pub use s3::{S3Options, S3Storage, StaticCredentials};

/// The storage this environment gives: the bucket directory named by `SCAR_STORAGE_DIR`
/// (local provider), else S3 (AWS; feature `s3`), which connects only when first used.
/// Without the feature and the variable: none.
pub fn from_environment() -> Option<Arc<dyn Storage>> {
    if let Some(dir) = std::env::var_os(STORAGE_DIR_VAR) {
        return Some(Arc::new(DirStorage::new(dir)));
    }
    #[cfg(feature = "s3")]
    {
        Some(Arc::new(S3Storage::from_environment()))
    }
    #[cfg(not(feature = "s3"))]
    {
        None
    }
}

/// The storage providers the provider handed over in `SCAR_STORAGE_PROVIDERS`, each
/// connected when first used. Without the feature `s3` there are none.
pub fn providers_from_environment(
) -> Result<std::collections::HashMap<String, Arc<dyn Storage>>, crate::run::SupervisorError> {
    let mut out = std::collections::HashMap::new();
    let Some(text) = std::env::var_os(scar_core::contract::STORAGE_PROVIDERS_VAR) else {
        return Ok(out);
    };
    let providers: std::collections::BTreeMap<String, scar_core::StorageProvider> =
        serde_json::from_str(&text.to_string_lossy()).map_err(|e| {
            // The value holds secrets: only where the problem is, never the text.
            crate::run::SupervisorError::StorageProviders(format!(
                "line {} column {}",
                e.line(),
                e.column()
            ))
        })?;
    #[cfg(feature = "s3")]
    for (id, p) in providers {
        let storage = S3Storage::for_provider(&id, p);
        out.insert(id, Arc::new(storage) as Arc<dyn Storage>);
    }
    #[cfg(not(feature = "s3"))]
    drop(providers);
    Ok(out)
}

/// Objects in buckets.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Copies object `bucket/key` to the file `dest`.
    fn download(&self, bucket: &str, key: &str, dest: &Path) -> std::io::Result<u64>;
    /// Stores the file `src` as object `bucket/key`, an output of an invocation that was
    /// number `chain` of its chain of events (see [`scar_core::bucket::chain_depth`]).
    fn upload(&self, src: &Path, bucket: &str, key: &str, chain: u32) -> std::io::Result<()>;
}

/// Buckets as directories: `<root>/<bucket>/<key>`.
#[derive(Debug)]
pub struct DirStorage {
    root: PathBuf,
    /// Names this writer's temporary files: every sandbox's supervisor is PID 1, so the
    /// process id cannot tell concurrent writers apart.
    instance: u64,
    counter: AtomicU64,
}

impl DirStorage {
    pub fn new(root: impl Into<PathBuf>) -> DirStorage {
        let mut instance = 0u64;
        // SAFETY: getrandom fills the 8 bytes of a local.
        let filled = unsafe { libc::getrandom((&mut instance as *mut u64).cast(), 8, 0) };
        if filled != 8 {
            instance = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
        }
        DirStorage {
            root: root.into(),
            instance,
            counter: AtomicU64::new(0),
        }
    }

    fn object(&self, bucket: &str, key: &str) -> std::io::Result<PathBuf> {
        if !scar_core::bucket::valid_key(key) || scar_core::bucket::validate_bucket(bucket).is_err()
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("invalid object {bucket}/{key}"),
            ));
        }
        Ok(self.root.join(bucket).join(key))
    }
}

impl DirStorage {
    /// Writes `src` into an unnamed file in `dest`'s directory (`O_TMPFILE`), gives it its
    /// chain depth ([`scar_core::bucket::CHAIN_XATTR`]) and links it in under `dest`: one
    /// new inode and no temporary name, complete from the moment it appears. An existing
    /// object is replaced atomically (a temporary link renamed over it).
    fn publish_unnamed(
        &self,
        src: &Path,
        bucket_dir: &Path,
        dest: &Path,
        chain: u32,
    ) -> std::io::Result<()> {
        use std::os::fd::AsRawFd as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        use std::os::unix::fs::PermissionsExt as _;
        let parent = dest.parent().unwrap_or(bucket_dir);
        let mut input = std::fs::File::open(src)?;
        // Its permissions, as a copy keeps them.
        let mode = input.metadata()?.permissions().mode() & 0o7777;
        let open = || {
            std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_TMPFILE)
                .mode(0o600)
                .open(parent)
        };
        let mut file = match open() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(parent)?;
                open()?
            }
            r => r?,
        };
        std::io::copy(&mut input, &mut file)?;
        xattr::FileExt::set_xattr(
            &file,
            scar_core::bucket::CHAIN_XATTR,
            chain.to_string().as_bytes(),
        )?;
        let link = std::ffi::CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
        let named = |to: &Path| -> std::io::Result<()> {
            use std::os::unix::ffi::OsStrExt as _;
            let to = std::ffi::CString::new(to.as_os_str().as_bytes())?;
            // SAFETY: two NUL-terminated paths that outlive the call.
            let r = unsafe {
                libc::linkat(
                    libc::AT_FDCWD,
                    link.as_ptr(),
                    libc::AT_FDCWD,
                    to.as_ptr(),
                    libc::AT_SYMLINK_FOLLOW,
                )
            };
            if r == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        };
        match named(dest) {
            Ok(()) => {
                // A file linked in was never closed under its name: an open and close for
                // writing tells watchers (`scar serve`'s, any inotify user's) that it is
                // complete, as a writer in place would.
                drop(
                    std::fs::OpenOptions::new()
                        .write(true)
                        .custom_flags(libc::O_NOFOLLOW)
                        .open(dest),
                );
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let tmp_dir = bucket_dir.join(scar_core::bucket::INTERNAL_DIR).join("tmp");
                std::fs::create_dir_all(&tmp_dir)?;
                let n = self.counter.fetch_add(1, Ordering::Relaxed);
                let tmp = tmp_dir.join(format!("{:016x}-{n}", self.instance));
                named(&tmp)?;
                std::fs::rename(&tmp, dest).inspect_err(|_| {
                    let _ = std::fs::remove_file(&tmp);
                })?;
            }
            Err(e) => return Err(e),
        }
        // As `std::fs::copy`: exactly the source's permissions (the umask left aside).
        file.set_permissions(std::fs::Permissions::from_mode(mode))
    }
}

/// Whether `e` says the file system or kernel lacks what [`DirStorage::publish_unnamed`]
/// uses, rather than that the upload failed.
fn unsupported(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL | libc::ENOSYS | libc::EXDEV)
    ) || (e.kind() == std::io::ErrorKind::NotFound && !Path::new("/proc/self/fd").exists())
}

impl Storage for DirStorage {
    fn download(&self, bucket: &str, key: &str, dest: &Path) -> std::io::Result<u64> {
        std::fs::copy(self.object(bucket, key)?, dest)
    }

    fn upload(&self, src: &Path, bucket: &str, key: &str, chain: u32) -> std::io::Result<()> {
        use std::os::unix::fs::MetadataExt as _;
        let dest = self.object(bucket, key)?;
        let bucket_dir = self.root.join(bucket);
        match self.publish_unnamed(src, &bucket_dir, &dest, chain) {
            Ok(()) => return Ok(()),
            // A file system or kernel without unnamed files or user attributes, or no
            // /proc: the temporary name and the mark file below.
            Err(e) if unsupported(&e) => {}
            Err(e) => return Err(e),
        }
        let tmp_dir = bucket_dir.join(scar_core::bucket::INTERNAL_DIR).join("tmp");
        std::fs::create_dir_all(&tmp_dir)?;
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let tmp = tmp_dir.join(format!("{:016x}-{n}", self.instance));
        std::fs::copy(src, &tmp)?;
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // The chain mark goes first, so that whoever sees the object sees its mark.
        let mark = scar_core::bucket::chain_mark(&bucket_dir, key);
        if let Some(parent) = mark.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let ino = std::fs::metadata(&tmp)?.ino();
        let mark_tmp = tmp_dir.join(format!("{:016x}-{n}.chain", self.instance));
        std::fs::write(&mark_tmp, format!("{chain} {ino}"))?;
        std::fs::rename(&mark_tmp, &mark)?;
        std::fs::rename(&tmp, &dest).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn an_upload_appears_whole_with_its_chain_depth_and_replaces_the_old_object() {
        let root = tempfile::tempdir().unwrap();
        let work = tempfile::tempdir().unwrap();
        let storage = DirStorage::new(root.path());
        let src = work.path().join("out.txt");
        std::fs::write(&src, "first").unwrap();
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o751)).unwrap();
        storage.upload(&src, "bkt", "deep/er/out.txt", 3).unwrap();
        let bucket = root.path().join("bkt");
        let object = bucket.join("deep/er/out.txt");
        assert_eq!(std::fs::read_to_string(&object).unwrap(), "first");
        let mode = std::fs::metadata(&object).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o751);
        let depth = scar_core::bucket::chain_depth(&bucket, "deep/er/out.txt", &object);
        assert_eq!(depth, 3);

        // Again under the same key: replaced, with the new depth, nothing left behind.
        std::fs::write(&src, "second").unwrap();
        storage.upload(&src, "bkt", "deep/er/out.txt", 5).unwrap();
        assert_eq!(std::fs::read_to_string(&object).unwrap(), "second");
        assert_eq!(
            scar_core::bucket::chain_depth(&bucket, "deep/er/out.txt", &object),
            5
        );
        let tmp = bucket.join(scar_core::bucket::INTERNAL_DIR).join("tmp");
        let left: Vec<_> = std::fs::read_dir(&tmp)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{left:?}");

        // A key that leads out of the bucket is refused.
        assert!(storage.upload(&src, "bkt", "../escape", 1).is_err());
        assert!(!root.path().join("escape").exists());
    }
}
