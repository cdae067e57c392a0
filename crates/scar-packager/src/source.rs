//! Where an image comes from, detected from what the user typed.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek};
use std::path::{Path, PathBuf};

use crate::error::PackagerError;

/// An image's origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// A reference into an OCI distribution registry (`busybox`, `host:5000/repo:tag`).
    Registry(String),
    /// A `docker save` (or skopeo `docker-archive:`) tar file.
    DockerArchive(PathBuf),
    /// A tar of an OCI image layout (skopeo `oci-archive:`).
    OciArchive(PathBuf),
    /// An OCI image layout directory, optionally with a tag (`ref.name` annotation).
    OciLayout { path: PathBuf, tag: Option<String> },
}

impl std::fmt::Display for ImageSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImageSource::Registry(r) => write!(f, "{r}"),
            ImageSource::DockerArchive(p) | ImageSource::OciArchive(p) => {
                write!(f, "{}", p.display())
            }
            ImageSource::OciLayout { path, tag: None } => write!(f, "{}", path.display()),
            ImageSource::OciLayout { path, tag: Some(t) } => write!(f, "{}:{t}", path.display()),
        }
    }
}

impl ImageSource {
    /// Interprets `-i`: an existing path (archive file or OCI layout directory, `DIR:tag`
    /// for a tag in a layout), a skopeo-style transport (`docker://`, `oci:`,
    /// `oci-archive:`, `docker-archive:`), or else a registry reference.
    pub fn detect(s: &str) -> Result<ImageSource, PackagerError> {
        if let Some(r) = s.strip_prefix("docker://") {
            return Self::registry(r);
        }
        if let Some(p) = s.strip_prefix("oci-archive:") {
            return Ok(ImageSource::OciArchive(existing(p)?));
        }
        if let Some(p) = s.strip_prefix("docker-archive:") {
            return Ok(ImageSource::DockerArchive(existing(p)?));
        }
        if let Some(p) = s.strip_prefix("oci:") {
            return match p.rsplit_once(':') {
                Some((dir, tag)) if !Path::new(p).is_dir() => Self::layout(dir, Some(tag)),
                _ => Self::layout(p, None),
            };
        }
        let path = Path::new(s);
        if path.is_dir() {
            return Self::layout(s, None);
        }
        if path.is_file() {
            return Self::from_archive(path);
        }
        if let Some((dir, tag)) = s.rsplit_once(':') {
            if !dir.is_empty() && Path::new(dir).is_dir() && !tag.contains('/') {
                return Self::layout(dir, Some(tag));
            }
        }
        let looks_like_path = s.starts_with('/')
            || s.starts_with("./")
            || s.starts_with("../")
            || s.starts_with('~')
            || s.ends_with(".tar")
            || s.ends_with(".tar.gz")
            || s.ends_with(".tgz");
        if looks_like_path {
            return Err(PackagerError::NoSuchImagePath {
                path: PathBuf::from(s),
            });
        }
        Self::registry(s)
    }

    /// Interprets `-if`: an archive file, `docker save` or OCI, told apart by its content.
    pub fn from_archive(path: &Path) -> Result<ImageSource, PackagerError> {
        let file = File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => PackagerError::NoSuchImagePath {
                path: path.to_path_buf(),
            },
            _ => PackagerError::input(path, e),
        })?;
        let names = archive_top_names(file, path)?;
        let has = |n: &str| names.iter().any(|x| x == n);
        if has("index.json") && has("oci-layout") {
            Ok(ImageSource::OciArchive(path.to_path_buf()))
        } else if has("manifest.json") {
            Ok(ImageSource::DockerArchive(path.to_path_buf()))
        } else if has("index.json") {
            Ok(ImageSource::OciArchive(path.to_path_buf()))
        } else {
            Err(PackagerError::NotAnImage {
                path: path.to_path_buf(),
                kind: "archive",
                reason: "it has neither manifest.json (docker save) nor index.json (OCI)".into(),
            })
        }
    }

    fn registry(r: &str) -> Result<ImageSource, PackagerError> {
        #[cfg(feature = "registry")]
        r.parse::<oci_client::Reference>()
            .map_err(|source| PackagerError::BadReference {
                reference: r.to_string(),
                source,
            })?;
        Ok(ImageSource::Registry(r.to_string()))
    }

    fn layout(dir: &str, tag: Option<&str>) -> Result<ImageSource, PackagerError> {
        let path = PathBuf::from(dir);
        if !path.is_dir() {
            return Err(PackagerError::NoSuchImagePath { path });
        }
        if !path.join("index.json").is_file() {
            return Err(PackagerError::NotAnImage {
                path,
                kind: "layout directory",
                reason: "it has no index.json (an OCI image layout has oci-layout, index.json and blobs/)".into(),
            });
        }
        Ok(ImageSource::OciLayout {
            path,
            tag: tag.filter(|t| !t.is_empty()).map(str::to_string),
        })
    }
}

fn existing(p: &str) -> Result<PathBuf, PackagerError> {
    let path = PathBuf::from(p.split(':').next().unwrap_or(p));
    if path.exists() {
        Ok(path)
    } else {
        Err(PackagerError::NoSuchImagePath { path })
    }
}

/// The normalised names of an archive's entries (a gzip-wrapped tar is accepted).
fn archive_top_names(file: File, path: &Path) -> Result<Vec<String>, PackagerError> {
    // The tar parser's own message quotes raw header bytes: not useful to a user.
    let not_tar = |_why: String| PackagerError::NotAnImage {
        path: path.to_path_buf(),
        kind: "archive",
        reason: "it is not a tar archive (docker save, skopeo docker-archive or oci-archive)"
            .into(),
    };
    let mut reader = BufReader::new(file);
    let gz = reader
        .fill_buf()
        .map_err(|e| PackagerError::input(path, e))?
        .starts_with(&[0x1f, 0x8b]);
    let mut names = Vec::new();
    let mut collect = |entries: &mut dyn Iterator<Item = std::io::Result<String>>| {
        for e in entries {
            names.push(e.map_err(|e| not_tar(e.to_string()))?);
        }
        Ok::<_, PackagerError>(())
    };
    if gz {
        let mut a = tar::Archive::new(flate2::read::MultiGzDecoder::new(reader));
        let entries = a.entries().map_err(|e| not_tar(e.to_string()))?;
        collect(&mut entries.map(|e| e.map(|e| entry_name(&e.path_bytes()))))?;
    } else {
        let mut inner = reader.into_inner();
        inner.rewind().map_err(|e| PackagerError::input(path, e))?;
        let mut a = tar::Archive::new(inner);
        let entries = a.entries_with_seek().map_err(|e| not_tar(e.to_string()))?;
        collect(&mut entries.map(|e| e.map(|e| entry_name(&e.path_bytes()))))?;
    }
    Ok(names)
}

/// A tar entry name without `./` or leading `/`.
pub(crate) fn entry_name(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    let mut parts = Vec::new();
    for p in s.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// Opens an archive for one sequential pass, unwrapping an outer gzip.
pub(crate) fn open_archive(path: &Path) -> Result<Box<dyn Read + Send>, PackagerError> {
    let file = File::open(path).map_err(|e| PackagerError::input(path, e))?;
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let gz = reader
        .fill_buf()
        .map_err(|e| PackagerError::input(path, e))?
        .starts_with(&[0x1f, 0x8b]);
    Ok(if gz {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else {
        Box::new(reader)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_registry_references() {
        assert_eq!(
            ImageSource::detect("busybox").unwrap(),
            ImageSource::Registry("busybox".into())
        );
        assert!(matches!(
            ImageSource::detect("./nope.tar"),
            Err(PackagerError::NoSuchImagePath { .. })
        ));
        #[cfg(feature = "registry")]
        assert!(matches!(
            ImageSource::detect("UPPER/Case::x"),
            Err(PackagerError::BadReference { .. })
        ));
    }

    #[test]
    fn entry_names_are_normalised() {
        assert_eq!(entry_name(b"./blobs/sha256/ab"), "blobs/sha256/ab");
        assert_eq!(entry_name(b"x/../y.tar"), "y.tar");
    }
}
