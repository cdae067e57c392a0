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

impl Storage for DirStorage {
    fn download(&self, bucket: &str, key: &str, dest: &Path) -> std::io::Result<u64> {
        std::fs::copy(self.object(bucket, key)?, dest)
    }

    fn upload(&self, src: &Path, bucket: &str, key: &str, chain: u32) -> std::io::Result<()> {
        use std::os::unix::fs::MetadataExt as _;
        let dest = self.object(bucket, key)?;
        let bucket_dir = self.root.join(bucket);
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
