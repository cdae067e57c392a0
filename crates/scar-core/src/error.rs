//! Error categories shared by every crate, so that frontends map them to exit codes in
//! one place (1 function failed, 2 usage or input, 3 provider/infrastructure).

/// What kind of failure an error is, from the user's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCategory {
    /// The user's input was wrong (a flag, a file, a name): exit status 2.
    Usage,
    /// The function ran and failed (non-zero exit, timeout): exit status 1.
    Function,
    /// The provider or the machine failed: exit status 3.
    Provider,
}

impl ErrorCategory {
    /// The process exit status for this category.
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorCategory::Function => 1,
            ErrorCategory::Usage => 2,
            ErrorCategory::Provider => 3,
        }
    }
}

/// A function spec (or a part of one) that breaks Lambda's rules.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("invalid function name {name:?}: {why} (use 1 to 64 letters, digits, '-' or '_')")]
    Name { name: String, why: &'static str },
    #[error("invalid memory {0} MB: it must be between 128 and 10240 MB")]
    Memory(u32),
    #[error("invalid timeout {0} s: it must be between 1 and {1} seconds")]
    Timeout(u32, u32),
    #[error("invalid batch settings: {0}")]
    Batch(String),
    #[error("invalid timeout threshold {threshold} s: it must be below the timeout ({timeout} s)")]
    Threshold { threshold: u32, timeout: u32 },
    #[error("invalid environment variable name {name:?}: {why}")]
    EnvName { name: String, why: &'static str },
    #[error("invalid environment assignment {0:?}: expected KEY=VALUE")]
    EnvAssignment(String),
    #[error("invalid output bucket: {0}")]
    Output(#[source] crate::bucket::BucketError),
    #[error("invalid input bucket: {0}")]
    Input(#[source] crate::bucket::BucketError),
    #[error("invalid output location {0}: it holds the input folder {1}, so every output would be an input that runs the function again (use a folder beside the input folder, or inside it, such as {1}/results)")]
    OutputHoldsInput(String, String),
    #[error("the input folders {0} and {1} overlap: an object would trigger the function twice (S3 refuses overlapping notifications too)")]
    InputsOverlap(String, String),
    #[error("a function whose Runtime API client is its image's own (`--runtime-client image`) cannot have {0}: scar's supervisor is what runs those (leave out `--runtime-client image`)")]
    ImageRuntimeClient(&'static str),
    #[error("invalid vpc: {0}")]
    Vpc(String),
    #[error("invalid file_system: {0}")]
    FileSystem(String),
    #[error("invalid API Gateway name {0:?}: give the REST API a name (text without control characters)")]
    ApiGateway(String),
    #[error("storage provider `{0}` is not defined: add it under `storage_providers:` in the definition file")]
    UnknownStorage(String),
}

/// Bad input that is not a function spec: a file named on the command line that cannot be
/// read, a definition file without the function asked for. Exit status 2, whatever the
/// I/O error underneath (the user named the file).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// A file the user named cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A definition file does not define the function asked for (`-f FILE -n NAME`).
    #[error("{} defines no function named `{name}`", file.display())]
    NoSuchFunction {
        /// The definition file.
        file: std::path::PathBuf,
        /// The function asked for.
        name: String,
    },
}

impl UsageError {
    /// A closure for `map_err`: `path` could not be read.
    pub fn unreadable(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> UsageError + '_ {
        move |source| UsageError::Unreadable {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl Categorized for UsageError {
    fn category(&self) -> ErrorCategory {
        ErrorCategory::Usage
    }
}

/// How a command ended, as a process exit status (`docs/contract.md`, section 5).
/// Frontends return it; every error maps to one through [`Categorized::category`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0.
    Success,
    /// 1: the function ran and failed (non-zero exit, timeout).
    FunctionFailed,
    /// 2: usage or input error.
    Usage,
    /// 3: provider or machine error.
    Provider,
}

impl ExitStatus {
    /// The process exit code.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::FunctionFailed => 1,
            ExitStatus::Usage => 2,
            ExitStatus::Provider => 3,
        }
    }

    /// Success when `ok`, else a failed function.
    pub fn function(ok: bool) -> ExitStatus {
        if ok {
            ExitStatus::Success
        } else {
            ExitStatus::FunctionFailed
        }
    }
}

impl From<ErrorCategory> for ExitStatus {
    fn from(c: ErrorCategory) -> ExitStatus {
        match c {
            ErrorCategory::Function => ExitStatus::FunctionFailed,
            ErrorCategory::Usage => ExitStatus::Usage,
            ErrorCategory::Provider => ExitStatus::Provider,
        }
    }
}

/// An error that knows its [`ErrorCategory`]: every scar library error implements it
/// (specs, config, images, both providers), so that frontends map any error to an exit
/// status in one place.
pub trait Categorized: std::error::Error + Send + Sync + 'static {
    /// The user-facing category.
    fn category(&self) -> ErrorCategory;

    /// Whether the function (or object) asked for does not exist.
    fn is_not_found(&self) -> bool {
        self.surface()
            .is_some_and(|e| matches!(e, crate::provider::SurfaceError::NotFound(_)))
    }

    /// The error both providers mean alike, when this is one: frontends key their advice
    /// on it.
    fn surface(&self) -> Option<&crate::provider::SurfaceError> {
        None
    }
}

impl Categorized for SpecError {
    fn category(&self) -> ErrorCategory {
        ErrorCategory::Usage
    }
}

impl Categorized for crate::bucket::BucketError {
    fn category(&self) -> ErrorCategory {
        ErrorCategory::Usage
    }
}

impl Categorized for crate::fdl::FdlError {
    fn category(&self) -> ErrorCategory {
        ErrorCategory::Usage
    }
}

impl Categorized for crate::config::ConfigError {
    fn category(&self) -> ErrorCategory {
        crate::config::ConfigError::category(self)
    }
}
