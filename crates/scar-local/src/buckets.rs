//! Local buckets: `$SCAR_HOME/buckets/<bucket>/<key>`, a directory tree per bucket.
//! Objects are written atomically (a temporary file under `<bucket>/.scar/tmp` renamed into
//! place), so watchers and readers never see half an object.

use std::io::Read;
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use scar_core::bucket::{valid_key, BucketPath, INPUT_FOLDER, OUTPUT_FOLDER};
pub use scar_core::provider::ObjectInfo;

use crate::LocalError;

/// The hidden directory of scar's own files inside a bucket.
pub(crate) const SCAR_DIR: &str = scar_core::bucket::INTERNAL_DIR;

/// The buckets under one scar home.
#[derive(Debug, Clone)]
pub struct Buckets {
    root: PathBuf,
}

impl Buckets {
    pub(crate) fn new(root: PathBuf) -> Buckets {
        Buckets { root }
    }

    /// The directory of a bucket.
    pub fn dir(&self, bucket: &str) -> PathBuf {
        self.root.join(bucket)
    }

    /// Whether `rel` (a key or folder of `bucket`; empty: the bucket itself) exists and is
    /// reached from the bucket's directory without a symlink. A function can write
    /// symlinks into its buckets (they are mounted in its sandbox): none may lead scar,
    /// which runs outside the sandbox, to a file of the host.
    pub(crate) fn inside(&self, bucket: &str, rel: &str) -> bool {
        let top = self.dir(bucket);
        let (Ok(top), Ok(real)) = (
            std::fs::canonicalize(&top),
            std::fs::canonicalize(top.join(rel)),
        ) else {
            return false;
        };
        match rel.is_empty() {
            true => real == top,
            false => real == top.join(rel),
        }
    }

    /// The file of an object.
    pub fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.join(bucket).join(key)
    }

    /// Creates a bucket (if needed) with its `input/` and `output/` folders.
    pub fn create(&self, bucket: &str) -> Result<(), LocalError> {
        scar_core::bucket::validate_bucket(bucket)?;
        for folder in [INPUT_FOLDER, OUTPUT_FOLDER] {
            let dir = self.dir(bucket).join(folder);
            std::fs::create_dir_all(&dir).map_err(LocalError::io("cannot create", &dir))?;
        }
        Ok(())
    }

    fn existing(&self, bucket: &str) -> Result<PathBuf, LocalError> {
        let dir = self.dir(bucket);
        if dir.is_dir() {
            Ok(dir)
        } else {
            Err(LocalError::NoBucket(bucket.into()))
        }
    }

    /// Describes one object.
    pub fn info(&self, bucket: &str, key: &str) -> Result<ObjectInfo, LocalError> {
        let path = self.object_path(bucket, key);
        let meta = std::fs::metadata(&path).map_err(LocalError::io("cannot read", &path))?;
        let modified: chrono::DateTime<chrono::Utc> = meta
            .modified()
            .map(Into::into)
            .unwrap_or_else(|_| chrono::Utc::now());
        Ok(ObjectInfo {
            bucket: bucket.into(),
            key: key.into(),
            size: meta.len(),
            etag: md5_file(&path).map_err(LocalError::io("cannot read", &path))?,
            modified: modified.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        })
    }

    /// Keys under a folder, recursively, sorted; scar's own files and folders excluded.
    pub fn keys(&self, at: &BucketPath) -> Result<Vec<String>, LocalError> {
        let bucket_dir = self.existing(&at.bucket)?;
        let start = if at.folder.is_empty() {
            bucket_dir.clone()
        } else {
            bucket_dir.join(&at.folder)
        };
        // A folder that is a symlink (or under one) is not the bucket's: nothing in it.
        if !at.folder.is_empty() && start.exists() && !self.inside(&at.bucket, &at.folder) {
            return Ok(Vec::new());
        }
        let mut keys = Vec::new();
        let mut stack = vec![start];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(rel) = path.strip_prefix(&bucket_dir) else {
                    continue;
                };
                let key = rel.to_string_lossy().into_owned();
                if key == SCAR_DIR || key.starts_with(".scar/") {
                    continue;
                }
                match entry.file_type() {
                    Ok(t) if t.is_dir() => stack.push(path),
                    Ok(t) if t.is_file() => keys.push(key),
                    _ => {}
                }
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// Lists objects under a folder, or the buckets when `at` is `None`.
    pub fn list(&self, at: &BucketPath) -> Result<Vec<ObjectInfo>, LocalError> {
        self.keys(at)?
            .into_iter()
            .map(|k| self.info(&at.bucket, &k))
            .collect()
    }

    /// The buckets.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Stores a file, or a directory's files recursively (keeping relative paths), under a
    /// folder. Returns the objects written, in order.
    pub fn put(&self, at: &BucketPath, path: &Path) -> Result<Vec<ObjectInfo>, LocalError> {
        let files = scar_core::local_files::files_to_put(path)
            .map_err(scar_core::provider::SurfaceError::from)?;
        self.existing(&at.bucket)?;
        let mut written = Vec::new();
        for file in files {
            let key = at.key(&file.relative);
            written.push(self.store(&at.bucket, &key, &file.path)?);
        }
        Ok(written)
    }

    /// A path for a new temporary file in `bucket`'s `.scar/tmp` (`TAG-PID-N`), whose folder
    /// exists and is reached without a symlink: what [`Buckets::place`] then moves into
    /// place.
    pub(crate) fn temporary(&self, bucket: &str, tag: &str) -> Result<PathBuf, LocalError> {
        let tmp_dir = self.dir(bucket).join(SCAR_DIR).join("tmp");
        std::fs::create_dir_all(&tmp_dir).map_err(LocalError::io("cannot create", &tmp_dir))?;
        let tmp_rel = format!("{SCAR_DIR}/tmp");
        if !self.inside(bucket, &tmp_rel) {
            return Err(LocalError::Escapes {
                bucket: bucket.to_string(),
                key: tmp_rel,
            });
        }
        static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(tmp_dir.join(format!("{tag}-{}-{n}", std::process::id())))
    }

    /// Moves the finished temporary file `tmp` ([`Buckets::temporary`]) into place as
    /// `bucket/key`, atomically, creating its folders; refused, and `tmp` removed, when the
    /// key's folder or the key itself is reached through a symlink.
    pub(crate) fn place(&self, bucket: &str, key: &str, tmp: &Path) -> Result<(), LocalError> {
        let dest = self.object_path(bucket, key);
        let placed = (|| {
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(LocalError::io("cannot create", parent))?;
            }
            let folder = key.rsplit_once('/').map_or("", |(folder, _)| folder);
            let dest_is_link = std::fs::symlink_metadata(&dest).is_ok_and(|m| m.is_symlink());
            if !self.inside(bucket, folder) || dest_is_link {
                return Err(LocalError::Escapes {
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                });
            }
            std::fs::rename(tmp, &dest).map_err(LocalError::io("cannot store", &dest))
        })();
        if placed.is_err() {
            let _ = std::fs::remove_file(tmp);
        }
        placed
    }

    /// Stores the file `src` as `bucket/key` (atomically: a reader never sees half of it),
    /// creating the bucket when it does not exist, as a deployment bucket is on S3.
    pub fn store(&self, bucket: &str, key: &str, src: &Path) -> Result<ObjectInfo, LocalError> {
        scar_core::bucket::validate_bucket(bucket)?;
        if !valid_key(key) {
            return Err(LocalError::Key(key.to_string()));
        }
        let tmp = self.temporary(bucket, "put")?;
        if let Err(source) = std::fs::copy(src, &tmp) {
            let _ = std::fs::remove_file(&tmp);
            return Err(LocalError::Input {
                path: src.to_path_buf(),
                source,
            });
        }
        self.place(bucket, key, &tmp)?;
        self.info(bucket, key)
    }

    /// Copies the objects under a folder into `dest`, keeping their paths relative to the
    /// folder. Returns the files written.
    pub fn get(&self, at: &BucketPath, dest: &Path) -> Result<Vec<PathBuf>, LocalError> {
        let keys = self.keys(at)?;
        let mut written = Vec::new();
        for key in keys {
            let rel = if at.folder.is_empty() {
                key.as_str()
            } else {
                key.strip_prefix(&format!("{}/", at.folder)).unwrap_or(&key)
            };
            let target = dest.join(rel);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(LocalError::io("cannot create", parent))?;
            }
            std::fs::copy(self.object_path(&at.bucket, &key), &target)
                .map_err(LocalError::io("cannot write", &target))?;
            written.push(target);
        }
        Ok(written)
    }
}

fn md5_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex_lower(&hasher.finalize()))
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
