//! Buckets and folders as users name them (`BUCKET[/folder]`), validated to S3's rules, and
//! the S3 event notification that a new object raises.

use serde_json::json;

use crate::event::encode_s3_key;

/// The folder of a bucket that triggers a function.
pub const INPUT_FOLDER: &str = "input";
/// The folder of a bucket that a function's outputs go to.
pub const OUTPUT_FOLDER: &str = "output";

/// A bucket and an optional folder inside it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BucketPath {
    pub bucket: String,
    /// No leading or trailing `/`; empty for the bucket's top.
    pub folder: String,
}

/// A bucket name or path that S3 would refuse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid bucket {name:?}: {why} (S3 bucket names are 3 to 63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit)")]
pub struct BucketError {
    pub name: String,
    pub why: &'static str,
}

impl BucketPath {
    /// Parses `BUCKET[/folder/...]`.
    pub fn parse(s: &str) -> Result<BucketPath, BucketError> {
        let s = s.trim_start_matches("s3://");
        let (bucket, folder) = s.split_once('/').unwrap_or((s, ""));
        validate_bucket(bucket)?;
        let folder = folder.trim_matches('/');
        if folder.split('/').any(|p| p == ".." || p == ".") {
            return Err(BucketError {
                name: s.into(),
                why: "a folder may not contain '.' or '..' components",
            });
        }
        Ok(BucketPath {
            bucket: bucket.into(),
            folder: folder.into(),
        })
    }

    /// The key of `name` inside this folder.
    pub fn key(&self, name: &str) -> String {
        folder_key(&self.folder, name)
    }

    /// The key prefix of this folder: `<folder>/`, or nothing for the bucket's top.
    pub fn prefix(&self) -> String {
        folder_prefix(&self.folder)
    }
}

/// The key of `name` inside `folder` (empty: the bucket's top).
///
/// ```
/// assert_eq!(scar_core::bucket::folder_key("in/x", "a.txt"), "in/x/a.txt");
/// assert_eq!(scar_core::bucket::folder_key("", "a.txt"), "a.txt");
/// ```
pub fn folder_key(folder: &str, name: &str) -> String {
    if folder.is_empty() {
        name.to_string()
    } else {
        format!("{folder}/{name}")
    }
}

/// The key prefix of `folder`: `<folder>/`, or nothing for the bucket's top (empty).
pub fn folder_prefix(folder: &str) -> String {
    folder_key(folder, "")
}

impl std::fmt::Display for BucketPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.folder.is_empty() {
            f.write_str(&self.bucket)
        } else {
            write!(f, "{}/{}", self.bucket, self.folder)
        }
    }
}

/// S3's bucket naming rules.
pub fn validate_bucket(name: &str) -> Result<(), BucketError> {
    let err = |why| {
        Err(BucketError {
            name: name.into(),
            why,
        })
    };
    if !(3..=63).contains(&name.len()) {
        return err("it must be 3 to 63 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return err("it has a character other than lowercase letters, digits, '.' and '-'");
    }
    let edge = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !edge(name.as_bytes()[0]) || !edge(name.as_bytes()[name.len() - 1]) {
        return err("it must start and end with a letter or digit");
    }
    if name.contains("..") {
        return err("it has two dots in a row");
    }
    Ok(())
}

/// Whether an object key may be stored: non-empty, at most 1024 bytes, and with no `.` or
/// `..` components or empty components (which could not be files).
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 1024
        && !key.starts_with('/')
        && key
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..")
}

/// The field of an S3 event record in which the local provider says how many invocations
/// of a chain led to it (AWS Lambda tracks this itself, in the trace header's lineage).
pub const CHAIN_FIELD: &str = "scarChain";

/// Where a local bucket directory keeps scar's own files (temporary uploads, chain marks):
/// never an object.
pub const INTERNAL_DIR: &str = ".scar";

/// The extended attribute of a local bucket's object that says how many invocations of a
/// chain led to it: set by the supervisor on the file before it appears under its key, so
/// that it is part of the object (no second file, no second rename).
pub const CHAIN_XATTR: &str = "user.scar.chain";

/// The chain mark of an object of a local bucket: `<bucket>/.scar/chain/<key>`, holding
/// `<invocations> <inode>`, written by the supervisor before the object it uploads is
/// renamed into place, where the bucket's file system keeps no [`CHAIN_XATTR`].
pub fn chain_mark(bucket_dir: &std::path::Path, key: &str) -> std::path::PathBuf {
    bucket_dir.join(INTERNAL_DIR).join("chain").join(key)
}

/// How many invocations of a chain of events led to the local object `object` (the file
/// of `key` in the bucket directory `bucket_dir`): what its [`CHAIN_XATTR`] says, else
/// the chain mark its writer left, when the mark is of this very file (its inode); else
/// 0, an object no function wrote.
pub fn chain_depth(bucket_dir: &std::path::Path, key: &str, object: &std::path::Path) -> u32 {
    use std::os::unix::fs::MetadataExt as _;
    if let Ok(Some(value)) = xattr::get(object, CHAIN_XATTR) {
        return std::str::from_utf8(&value)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
    }
    let Ok(meta) = std::fs::metadata(object) else {
        return 0;
    };
    let Ok(text) = std::fs::read_to_string(chain_mark(bucket_dir, key)) else {
        return 0;
    };
    match text.split_once(' ') {
        Some((depth, ino)) if ino.trim().parse() == Ok(meta.ino()) => depth.parse().unwrap_or(0),
        _ => 0,
    }
}

/// One object as an S3 event notification describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectCreated {
    pub bucket: String,
    /// The key, not encoded.
    pub key: String,
    pub size: u64,
    pub etag: String,
    /// RFC 3339 with milliseconds, `Z`.
    pub event_time: String,
    pub region: String,
    /// Orders events for one key, as S3's `sequencer` does.
    pub sequence: u64,
    /// The invocations of the chain this event starts, itself included: 1 for an object
    /// that a user or program wrote, one more for each function's output on the way.
    pub chain: u32,
}

impl ObjectCreated {
    /// The S3 event notification JSON that AWS sends for this object (`ObjectCreated:Put`).
    pub fn to_event(&self) -> serde_json::Value {
        let record = self.record(
            "2.1",
            "aws:s3",
            "ObjectCreated:Put",
            json!({"x-amz-request-id": "scar", "x-amz-id-2": "scar"}),
        );
        let mut event = json!({ "Records": [record] });
        if self.chain > 1 {
            event["Records"][0][CHAIN_FIELD] = self.chain.into();
        }
        event
    }

    /// The event a MinIO server's webhook sends for this object (`s3:ObjectCreated:Put`,
    /// `eventSource` [`MINIO_EVENT_SOURCE`], the top-level `Key` and `EventName` MinIO adds),
    /// as SCAR's supervisor reads it. MinIO cannot notify Lambda: scar's launcher sends it.
    pub fn to_minio_event(&self) -> serde_json::Value {
        let record = self.record(
            "2.0",
            MINIO_EVENT_SOURCE,
            "s3:ObjectCreated:Put",
            json!({"x-amz-request-id": format!("{:016X}", self.sequence)}),
        );
        json!({
            "EventName": "s3:ObjectCreated:Put",
            "Key": format!("{}/{}", self.bucket, self.key),
            "Records": [record],
        })
    }

    /// The record of this object's event, in the layout S3 and MinIO share; they differ
    /// in its version, source, name and response elements.
    fn record(
        &self,
        version: &str,
        source: &str,
        name: &str,
        response_elements: serde_json::Value,
    ) -> serde_json::Value {
        json!({
            "eventVersion": version,
            "eventSource": source,
            "awsRegion": self.region,
            "eventTime": self.event_time,
            "eventName": name,
            "userIdentity": {"principalId": "scar"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": response_elements,
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "scar",
                "bucket": {
                    "name": self.bucket,
                    "ownerIdentity": {"principalId": "scar"},
                    "arn": format!("arn:aws:s3:::{}", self.bucket),
                },
                "object": {
                    "key": encode_s3_key(&self.key),
                    "size": self.size,
                    "eTag": self.etag,
                    "sequencer": format!("{:016X}", self.sequence),
                },
            },
        })
    }
}

/// The `eventSource` of a MinIO server's event records (AWS's is `aws:s3`).
pub const MINIO_EVENT_SOURCE: &str = "minio:s3";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_paths() {
        let p = BucketPath::parse("my-bucket/in/sub/").unwrap();
        assert_eq!(p.bucket, "my-bucket");
        assert_eq!(p.folder, "in/sub");
        assert_eq!(p.key("a b.txt"), "in/sub/a b.txt");
        assert_eq!(BucketPath::parse("b12").unwrap().key("x"), "x");
        for bad in ["ab", "Upper", "-x-y", "a..b", "a_b", "x/../y"] {
            assert!(BucketPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys() {
        assert!(valid_key("input/a b/ü+%.txt"));
        for bad in ["", "/a", "a//b", "a/../b", "./a"] {
            assert!(!valid_key(bad), "{bad}");
        }
    }

    #[test]
    fn events_are_s3_events() {
        let e = ObjectCreated {
            bucket: "bkt".into(),
            key: "input/a b+c.txt".into(),
            size: 3,
            etag: "abc".into(),
            event_time: "2026-11-25T00:00:00.000Z".into(),
            region: "us-east-1".into(),
            sequence: 1,
            chain: 1,
        }
        .to_event();
        let parsed: aws_lambda_events::event::s3::S3Event = serde_json::from_value(e).unwrap();
        let key = parsed.records[0].s3.object.key.clone().unwrap();
        assert_eq!(key, "input/a+b%2Bc.txt");
        assert_eq!(crate::event::decode_s3_key(&key), "input/a b+c.txt");
    }
}
