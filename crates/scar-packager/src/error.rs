//! The one error type of this crate: what failed, on what, and why.

use std::io;
use std::path::PathBuf;

use scar_core::ErrorCategory;

/// Everything that can go wrong while bringing an image in or extracting it.
#[derive(Debug, thiserror::Error)]
pub enum PackagerError {
    /// The path given as an image does not exist.
    #[error("`{}` does not exist (expected an image archive, an OCI layout directory or an image reference)", path.display())]
    NoSuchImagePath { path: PathBuf },

    /// A file or directory that is not an image.
    #[error("`{}` is not an image {kind}: {reason}", path.display())]
    NotAnImage {
        path: PathBuf,
        kind: &'static str,
        reason: String,
    },

    /// The input ended before an entry it announced.
    #[error("`{}` is truncated: entry `{entry}` is shorter than its header says", path.display())]
    Truncated { path: PathBuf, entry: String },

    /// Reading the user's input (archive, layout) failed.
    #[error("cannot read `{}`", path.display())]
    Input {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A blob whose content does not hash to the digest it was announced with.
    #[error("blob {what} is corrupt: expected digest {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },

    /// A manifest, index or config that cannot be understood.
    #[error("invalid {what} in {source_name}: {reason}")]
    BadManifest {
        source_name: String,
        what: String,
        reason: String,
    },

    /// A blob a manifest refers to is not in the image.
    #[error("{source_name} refers to blob {digest}, which it does not contain")]
    MissingBlob { source_name: String, digest: String },

    /// No image (or no tag) matched what was asked for.
    #[error("{source_name} has no image {wanted}")]
    ImageNotFound { source_name: String, wanted: String },

    /// A manifest list / index without an image for this machine.
    #[error("{source_name} has no image for linux/{architecture} (it has: {available})")]
    NoMatchingPlatform {
        source_name: String,
        architecture: String,
        available: String,
    },

    /// A string that is neither a path nor a valid image reference.
    #[cfg(feature = "registry")]
    #[error("`{reference}` is not a valid image reference (expected e.g. `busybox`, `registry:5000/repo/name:tag`, or a path)")]
    BadReference {
        reference: String,
        #[source]
        source: oci_client::ParseError,
    },

    /// The registry could not be reached at all.
    #[cfg(feature = "registry")]
    #[error("cannot reach registry {registry} for `{reference}`: is the address right and the registry running?")]
    RegistryUnreachable {
        registry: String,
        reference: String,
        #[source]
        source: oci_client::errors::OciDistributionError,
    },

    /// The registry answered with an error.
    #[cfg(feature = "registry")]
    #[error("registry error for `{reference}` while {action}")]
    Registry {
        reference: String,
        action: String,
        #[source]
        source: oci_client::errors::OciDistributionError,
    },

    /// The registry refused the credentials offered, or wants some and none were found.
    #[cfg(feature = "registry")]
    #[error("registry {registry} refused access to `{reference}` while {action} ({status}): scar offered {credentials}\nhelp: scar finds registry credentials as Docker does, in $DOCKER_CONFIG/config.json (default ~/.docker/config.json): the credential helper `credHelpers` names for the registry, else the one `credsStore` names, else `auths` (what `docker login` writes)")]
    RegistryAuth {
        registry: String,
        reference: String,
        action: String,
        /// What the registry answered (`401 Unauthorized`, `403 Forbidden`, ...).
        status: &'static str,
        /// What was offered and from where, never the secret.
        credentials: String,
        #[source]
        source: Box<oci_client::errors::OciDistributionError>,
    },

    /// Something this crate deliberately does not support.
    #[error("unsupported: {what}")]
    Unsupported { what: String },

    /// A zip package that cannot fit Lambda's unzipped size limit, even without the root.
    #[error("the zip package would take {unzipped} bytes unzipped even without the extracted root, over Lambda's limit of {limit} bytes\nhelp: use `--package image` (container images may be up to 10 GB)")]
    PackageTooLarge { unzipped: u64, limit: u64 },

    /// A layer that is not a tar stream scar can apply: a malformed header, a name the
    /// file system cannot hold, a sparse map that does not add up.
    #[error("{layer} is not a valid layer: {reason}")]
    BadLayer { layer: String, reason: String },

    /// An entry `--strict` refuses (a path out of the root, a hard link out...).
    #[error(
        "{layer}: `{entry}` {why}\nhelp: without --strict such entries are skipped and reported"
    )]
    Hostile {
        layer: String,
        entry: String,
        why: String,
    },

    /// The image expands past one of the extraction limits.
    #[error("{what} expands past {limit}: refused\nhelp: {help}")]
    TooLarge {
        what: String,
        limit: String,
        help: String,
    },

    /// The disk extraction writes to is (nearly) full.
    #[error("not enough disk space to extract into `{}`: {free_mb} MB free, and scar keeps at least {keep_mb} MB free\nhelp: free space on that disk, move SCAR_HOME to a bigger one, or lower SCAR_MIN_FREE_MB", path.display())]
    DiskFull {
        path: PathBuf,
        free_mb: u64,
        keep_mb: u64,
    },

    /// Extraction target already exists.
    #[error("`{}` already exists: refusing to extract over it", path.display())]
    DestinationExists { path: PathBuf },

    /// A local I/O failure on the cache or the destination.
    #[error("cannot {action} `{}`", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl PackagerError {
    /// Whether this is the user's input being wrong ([`ErrorCategory::Usage`]) or the
    /// machine failing ([`ErrorCategory::Provider`]).
    pub fn category(&self) -> ErrorCategory {
        match self {
            // A name the file system cannot hold comes from the image.
            PackagerError::Io { source, .. }
                if source.raw_os_error() == Some(libc::ENAMETOOLONG) =>
            {
                ErrorCategory::Usage
            }
            PackagerError::Io { .. } | PackagerError::DiskFull { .. } => ErrorCategory::Provider,
            PackagerError::Input { source, .. } => match source.kind() {
                io::ErrorKind::UnexpectedEof
                | io::ErrorKind::InvalidData
                | io::ErrorKind::InvalidInput
                | io::ErrorKind::NotFound
                | io::ErrorKind::PermissionDenied
                | io::ErrorKind::IsADirectory
                | io::ErrorKind::NotADirectory => ErrorCategory::Usage,
                _ => ErrorCategory::Provider,
            },
            _ => ErrorCategory::Usage,
        }
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        PackagerError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn input(path: impl Into<PathBuf>, source: io::Error) -> Self {
        PackagerError::Input {
            path: path.into(),
            source,
        }
    }
}

impl scar_core::Categorized for PackagerError {
    fn category(&self) -> ErrorCategory {
        PackagerError::category(self)
    }
}
