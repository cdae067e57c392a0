//! A content-addressed blob cache: `<cache>/blobs/sha256/<hex>`.
//!
//! A blob enters the cache only through [`BlobWriter::commit`], which checks the sha256 of
//! the bytes that were streamed into a temporary file (`<cache>/tmp/`) before renaming it
//! into place; so every file under `blobs/` is known to hash to its name.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::digest::StreamDigest;
use tempfile::NamedTempFile;

use crate::error::PackagerError;
use crate::progress::Progress;

/// Manifests and configs are small; anything larger than this is refused when read whole.
pub(crate) const MAX_METADATA_BYTES: u64 = 16 * 1024 * 1024;

/// A directory of blobs keyed by sha256 digest.
#[derive(Debug, Clone)]
pub struct BlobCache {
    root: PathBuf,
}

/// The 64 lowercase hex characters of a `sha256:` digest, or `None` if malformed.
pub(crate) fn digest_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then_some(hex)
}

impl BlobCache {
    /// A cache rooted at `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        BlobCache { root: dir.into() }
    }

    /// The cache's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob `digest` (`sha256:<hex>`) lives. A malformed digest maps to a path
    /// that never exists, so it can never name a file outside the cache.
    pub fn path(&self, digest: &str) -> PathBuf {
        match digest_hex(digest) {
            Some(hex) => self.root.join("blobs").join("sha256").join(hex),
            None => self.root.join("blobs").join("invalid-digest"),
        }
    }

    /// Whether the blob is already in the cache.
    pub fn contains(&self, digest: &str) -> bool {
        digest_hex(digest).is_some() && self.path(digest).is_file()
    }

    /// Opens a cached blob for reading.
    pub fn open(&self, digest: &str) -> Result<File, PackagerError> {
        let path = self.path(digest);
        File::open(&path).map_err(|e| PackagerError::io("open cached blob", path, e))
    }

    /// Reads a small cached blob (a manifest or config) whole.
    pub(crate) fn read_small(&self, digest: &str) -> Result<Vec<u8>, PackagerError> {
        let path = self.path(digest);
        let file = self.open(digest)?;
        let mut buf = Vec::new();
        file.take(MAX_METADATA_BYTES + 1)
            .read_to_end(&mut buf)
            .map_err(|e| PackagerError::io("read cached blob", &path, e))?;
        if buf.len() as u64 > MAX_METADATA_BYTES {
            return Err(PackagerError::Unsupported {
                what: format!("metadata blob {digest} is larger than 16 MiB"),
            });
        }
        Ok(buf)
    }

    /// Starts writing a blob; nothing is visible in the cache until [`BlobWriter::commit`].
    pub fn writer(&self) -> Result<BlobWriter, PackagerError> {
        let tmp = self.root.join("tmp");
        fs::create_dir_all(&tmp)
            .map_err(|e| PackagerError::io("create cache directory", &tmp, e))?;
        let file = tempfile::Builder::new()
            .prefix(".blob-")
            .tempfile_in(&tmp)
            .map_err(|e| PackagerError::io("create temporary file in", &tmp, e))?;
        Ok(BlobWriter {
            cache: self.clone(),
            file,
            hasher: StreamDigest::new(),
            len: 0,
        })
    }

    /// Streams `reader` into the cache, verifying it against `expected` when given.
    /// Returns the blob's digest. `what` names the blob in errors.
    pub fn ingest(
        &self,
        reader: impl Read,
        expected: Option<&str>,
        what: &str,
        progress: &dyn Progress,
    ) -> Result<String, PackagerError> {
        let mut writer = self.writer()?;
        let read_error = |e| PackagerError::input(what, e);
        crate::for_each_chunk(reader, read_error, |chunk| {
            writer.write(chunk)?;
            progress.advance(chunk.len() as u64);
            Ok(())
        })?;
        writer.commit(expected, what)
    }
}

/// A blob being streamed into the cache: hashed as it is written.
pub struct BlobWriter {
    cache: BlobCache,
    file: NamedTempFile,
    hasher: StreamDigest,
    len: u64,
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter")
            .field("len", &self.len)
            .finish()
    }
}

impl BlobWriter {
    /// Appends bytes.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), PackagerError> {
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
        let path = self.file.path().to_path_buf();
        self.file
            .write_all(bytes)
            .map_err(|e| PackagerError::io("write cache file", path, e))
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Checks the digest and moves the blob into place. On a mismatch the temporary file is
    /// removed and the error names `what` and both digests.
    pub fn commit(self, expected: Option<&str>, what: &str) -> Result<String, PackagerError> {
        self.commit_new(expected, what).map(|(d, _)| d)
    }

    /// Like [`Self::commit`], also saying whether the blob is new to the cache.
    pub(crate) fn commit_new(
        self,
        expected: Option<&str>,
        what: &str,
    ) -> Result<(String, bool), PackagerError> {
        let tmp_path = self.file.path().to_path_buf();
        let actual = (self.hasher.finish())
            .map_err(|e| PackagerError::io("hash cache file", &tmp_path, e))?;
        if let Some(expected) = expected {
            if expected != actual {
                return Err(PackagerError::DigestMismatch {
                    what: what.to_string(),
                    expected: expected.to_string(),
                    actual,
                });
            }
        }
        let dest = self.cache.path(&actual);
        if dest.is_file() {
            // Same content is already there (content-addressed): drop the copy.
            return Ok((actual, false));
        }
        if let Some(dir) = dest.parent() {
            fs::create_dir_all(dir)
                .map_err(|e| PackagerError::io("create cache directory", dir, e))?;
        }
        self.file
            .as_file()
            .sync_data()
            .map_err(|e| PackagerError::io("flush cache file", &tmp_path, e))?;
        self.file
            .persist(&dest)
            .map_err(|e| PackagerError::io("move blob into", &dest, e.error))?;
        Ok((actual, true))
    }
}

/// sha256 of everything `reader` yields, as `sha256:<hex>`.
pub(crate) fn sha256_reader(reader: impl Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    crate::for_each_chunk(
        reader,
        |e| e,
        |chunk| {
            hasher.update(chunk);
            Ok(())
        },
    )?;
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoProgress;

    #[test]
    fn ingest_verifies_and_names_both_digests() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::new(dir.path());
        let d = cache.ingest(&b"hello"[..], None, "x", &NoProgress).unwrap();
        assert!(cache.contains(&d));
        let wrong = format!("sha256:{}", "0".repeat(64));
        let err = cache
            .ingest(&b"hello!"[..], Some(&wrong), "layer foo", &NoProgress)
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("layer foo") && msg.contains(&wrong), "{msg}");
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn malformed_digests_never_escape() {
        let cache = BlobCache::new("/c");
        assert_eq!(
            cache.path("sha256:../../etc"),
            Path::new("/c/blobs/invalid-digest")
        );
        assert!(digest_hex(&format!("sha256:{}", "a".repeat(64))).is_some());
        assert!(digest_hex(&format!("sha256:{}", "A".repeat(64))).is_none());
    }
}
