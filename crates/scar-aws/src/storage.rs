//! `scar put` and `scar get`: files to and from S3, streamed, large files in parts.

use std::path::{Component, Path, PathBuf};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use scar_core::bucket::BucketPath;
use scar_core::provider::{ObjectInfo, OnTransfer, PutReport};

use crate::error::SdkResultExt as _;
use crate::{AwsError, AwsProvider};

/// Files larger than this are uploaded in parts (multipart upload).
pub(crate) const MULTIPART_THRESHOLD: u64 = 8 * 1024 * 1024;
/// The size of each part of a multipart upload (grown for files over 10,000 parts).
pub(crate) const PART_SIZE: u64 = 8 * 1024 * 1024;
/// S3's limit on the parts of one upload.
const MAX_PARTS: u64 = 10_000;

pub use scar_core::provider::TransferEvent;

impl AwsProvider {
    /// Uploads the file at `path` to `bucket`/`key`: in one request up to
    /// [`MULTIPART_THRESHOLD`], else as a multipart upload (aborted on failure, so no
    /// parts are left behind). Returns the bytes uploaded.
    pub async fn put_file(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        progress: &(dyn Fn(TransferEvent) + Send + Sync),
    ) -> Result<u64, AwsError> {
        let io = |what: &'static str| {
            let path = path.to_path_buf();
            move |source| AwsError::Io { what, path, source }
        };
        let size = tokio::fs::metadata(path)
            .await
            .map_err(io("cannot read"))?
            .len();
        progress(TransferEvent::Started {
            key: key.into(),
            size,
        });
        if size <= MULTIPART_THRESHOLD {
            let body = ByteStream::from_path(path)
                .await
                .map_err(|e| AwsError::Io {
                    what: "cannot read",
                    path: path.to_path_buf(),
                    source: std::io::Error::other(e),
                })?;
            self.s3
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(body)
                .send()
                .await
                .map_sdk_err("s3:PutObject", format!("{bucket}/{key}"))?;
        } else {
            let created = self
                .s3
                .create_multipart_upload()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map_sdk_err("s3:CreateMultipartUpload", format!("{bucket}/{key}"))?;
            let upload_id = created.upload_id().unwrap_or_default().to_string();
            let result = self
                .put_parts(bucket, key, path, size, &upload_id, progress)
                .await;
            if let Err(e) = result {
                // Parts of an unfinished upload are billed until aborted.
                let _ = self
                    .s3
                    .abort_multipart_upload()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                return Err(e);
            }
        }
        progress(TransferEvent::Finished {
            key: key.into(),
            size,
        });
        Ok(size)
    }

    async fn put_parts(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        size: u64,
        upload_id: &str,
        progress: &(dyn Fn(TransferEvent) + Send + Sync),
    ) -> Result<(), AwsError> {
        let io = |source| AwsError::Io {
            what: "cannot read",
            path: path.to_path_buf(),
            source,
        };
        let part_size = PART_SIZE.max(size.div_ceil(MAX_PARTS));
        let mut file = tokio::fs::File::open(path).await.map_err(io)?;
        let mut parts = Vec::new();
        let mut done = 0u64;
        let mut number = 1;
        loop {
            // Only one part is held in memory at a time.
            let mut buf = Vec::with_capacity(part_size as usize);
            (&mut file)
                .take(part_size)
                .read_to_end(&mut buf)
                .await
                .map_err(io)?;
            if buf.is_empty() && number > 1 {
                break;
            }
            let len = buf.len() as u64;
            let out = self
                .s3
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(buf))
                .send()
                .await
                .map_sdk_err("s3:UploadPart", format!("{bucket}/{key} (part {number})"))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag().map(str::to_string))
                    .build(),
            );
            done += len;
            progress(TransferEvent::Progress {
                key: key.into(),
                done,
                size,
            });
            number += 1;
            if len < part_size {
                break;
            }
        }
        let completed = self
            .s3
            .complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await;
        match completed {
            // moto's answer has the wrong XML root, but the upload is complete.
            Err(e)
                if crate::notifications::is_wrapped_root(&e, "CompleteMultipartUploadResponse") =>
            {
                Ok(())
            }
            answer => answer
                .map(drop)
                .map_sdk_err("s3:CompleteMultipartUpload", format!("{bucket}/{key}")),
        }
    }

    /// Downloads every object under `prefix` in `bucket` into `dest`, keeping each key's
    /// path below the prefix (a key equal to the prefix lands as its file name). Folder
    /// markers (keys ending in `/`) are skipped; a key that would land outside `dest`
    /// (`..`) is refused. Bodies are streamed to the files. Returns the files written.
    pub async fn get_prefix(
        &self,
        bucket: &str,
        prefix: &str,
        dest: &Path,
        progress: &(dyn Fn(TransferEvent) + Send + Sync),
    ) -> Result<Vec<PathBuf>, AwsError> {
        let mut written = Vec::new();
        for object in self.list_inputs(bucket, prefix).await? {
            let target = dest.join(relative_path(prefix, &object.key)?);
            self.get_one(bucket, &object.key, &target, progress).await?;
            written.push(target);
        }
        Ok(written)
    }

    async fn get_one(
        &self,
        bucket: &str,
        key: &str,
        target: &Path,
        progress: &(dyn Fn(TransferEvent) + Send + Sync),
    ) -> Result<(), AwsError> {
        let io = |what: &'static str| {
            let path = target.to_path_buf();
            move |source| AwsError::Io { what, path, source }
        };
        let out = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_sdk_err("s3:GetObject", format!("{bucket}/{key}"))?;
        let size = out.content_length().unwrap_or_default().max(0) as u64;
        progress(TransferEvent::Started {
            key: key.into(),
            size,
        });
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(io("cannot create the folder for"))?;
        }
        let mut file = tokio::fs::File::create(target)
            .await
            .map_err(io("cannot create"))?;
        let mut body = out.body;
        let mut done = 0u64;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(AwsError::stream("s3:GetObject", format!("{bucket}/{key}")))?
        {
            file.write_all(&chunk).await.map_err(io("cannot write"))?;
            done += chunk.len() as u64;
            progress(TransferEvent::Progress {
                key: key.into(),
                done,
                size,
            });
        }
        file.flush().await.map_err(io("cannot write"))?;
        progress(TransferEvent::Finished {
            key: key.into(),
            size: done,
        });
        Ok(())
    }
}

/// Where `key` lands below the destination of a `get` of `prefix`.
fn relative_path(prefix: &str, key: &str) -> Result<PathBuf, AwsError> {
    let rest = key
        .strip_prefix(prefix)
        .unwrap_or(key)
        .trim_start_matches('/');
    let rest = if rest.is_empty() {
        key.rsplit('/').next().unwrap_or(key)
    } else {
        rest
    };
    let path = PathBuf::from(rest);
    let safe = !rest.is_empty()
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !safe {
        return Err(AwsError::Input(format!(
            "object key {key:?} would be written outside the destination folder: refused"
        )));
    }
    Ok(path)
}

impl AwsProvider {
    /// Uploads a file, or a folder's files, under `at`; the report says which functions
    /// they trigger.
    pub(crate) async fn put_path(
        &self,
        at: &BucketPath,
        path: &Path,
        on_transfer: OnTransfer<'_>,
    ) -> Result<PutReport, AwsError> {
        let files = scar_core::local_files::files_to_put(path)
            .map_err(scar_core::provider::SurfaceError::from)?;
        let mut stored = Vec::new();
        for file in &files {
            let key = at.key(&file.relative);
            let size = self
                .put_file(&at.bucket, &key, &file.path, &|e| on_transfer(&e))
                .await?;
            stored.push(ObjectInfo {
                bucket: at.bucket.clone(),
                key,
                size,
                etag: String::new(),
                modified: String::new(),
            });
        }
        let functions: Vec<_> = self
            .list_functions()
            .await?
            .into_iter()
            .map(|f| f.spec)
            .collect();
        Ok(PutReport::new(stored, &functions))
    }

    /// Downloads the objects under `at` (or the one object `at` names) into `dest`.
    pub(crate) async fn get_path(
        &self,
        at: &BucketPath,
        dest: &Path,
        on_transfer: OnTransfer<'_>,
    ) -> Result<Vec<PathBuf>, AwsError> {
        let files = self
            .get_prefix(&at.bucket, &at.prefix(), dest, &|e| on_transfer(&e))
            .await?;
        // `-b bucket/folder/file.txt`: one object, not a folder.
        if files.is_empty() && !at.folder.is_empty() {
            return self
                .get_prefix(&at.bucket, &at.folder, dest, &|e| on_transfer(&e))
                .await;
        }
        Ok(files)
    }

    /// The objects under `at`.
    pub(crate) async fn list_path(&self, at: &BucketPath) -> Result<Vec<ObjectInfo>, AwsError> {
        self.list_inputs(&at.bucket, &at.prefix()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_land_below_the_destination() {
        assert_eq!(
            relative_path("output/", "output/a/b.txt").unwrap(),
            PathBuf::from("a/b.txt")
        );
        assert_eq!(
            relative_path("output", "output/b.txt").unwrap(),
            PathBuf::from("b.txt")
        );
        assert_eq!(
            relative_path("output/b.txt", "output/b.txt").unwrap(),
            PathBuf::from("b.txt")
        );
        assert!(relative_path("", "../etc/passwd").is_err());
        assert!(relative_path("x/", "x/a/../../../y").is_err());
    }
}
