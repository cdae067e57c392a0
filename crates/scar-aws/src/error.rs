//! [`AwsError`]: what went wrong on the `aws` provider, with the operation and the resource
//! in every message.

use aws_sdk_lambda::error::{DisplayErrorContext, ProvideErrorMetadata};
use scar_core::provider::SurfaceError;
use scar_core::Categorized;
use scar_core::ErrorCategory;

/// A boxed SDK (or I/O) error kept as the `source` of an [`AwsError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong on the `aws` provider.
///
/// Every message names the operation and the resource it was done on. SDK errors are kept
/// as the [`source`](std::error::Error::source); credentials never appear in any message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AwsError {
    /// The function spec breaks Lambda's rules.
    #[error(transparent)]
    Spec(#[from] scar_core::SpecError),
    /// `init` needs the IAM role the function runs as (the ARN of a role Lambda can
    /// assume), and the configuration has none.
    #[error("function {function:?} needs an IAM role to run as, and none is configured")]
    MissingRole {
        /// The function being created.
        function: String,
    },
    /// Creating a function packages the supervisor (`bootstrap`), and the configuration
    /// names none.
    #[error("function {function:?} cannot be packaged: no {architecture} supervisor (`bootstrap`) is configured{}", if architecture.is_x86_64() { "" } else { " (SCAR_SUPERVISOR_AARCH64, or aarch64/bootstrap beside the supervisor: `cargo xtask build-supervisor` builds it)" })]
    MissingSupervisor {
        /// The function being created.
        function: String,
        /// The architecture it runs on.
        architecture: scar_core::Architecture,
    },
    /// A zip package needs a static proot to enter the image's root on Lambda, which
    /// allows no namespaces, and the configuration names none.
    #[error("function {function:?} cannot be packaged as a zip: no static proot is configured, and Lambda allows no namespaces to enter the image's root without one")]
    MissingProot {
        /// The function being created.
        function: String,
    },
    /// A function with a file system (EFS) needs a VPC: Lambda reaches EFS's mount
    /// targets only from the function's subnets.
    #[error("function {function:?} mounts a file system (file_system): Lambda reaches EFS only from a VPC, so it needs `vpc:` with the subnets of the file system's mount targets (SubnetIds, SecurityGroupIds)")]
    FileSystemNeedsVpc {
        /// The function being created.
        function: String,
    },
    /// `create_image: false` names an image that is not in ECR.
    #[error("function {function:?} reuses an image already in ECR (create_image: false), and {image:?} is not an ECR image (ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY[:TAG]): name one, or leave out create_image: false to build and push it")]
    NotEcrImage {
        /// The function being created.
        function: String,
        /// The image it names.
        image: String,
    },
    /// A Batch execution mode's compute environment needs subnets and security groups.
    #[error("function {function:?} runs on AWS Batch (execution mode `{mode}`): its compute environment needs subnets and security groups, and its Batch block has {}", missing_network(*subnets, *security_groups))]
    BatchNetwork {
        /// The function being created.
        function: String,
        /// Its execution mode.
        mode: scar_core::ExecutionMode,
        /// How many subnets its Batch block names.
        subnets: usize,
        /// How many security groups its Batch block names.
        security_groups: usize,
    },
    /// A zip over Lambda's direct upload limit needs a deployment bucket, and none was
    /// given.
    #[error("the zip package of {function:?} is {size} bytes, over Lambda's 50 MB direct upload limit, and no deployment bucket was given")]
    NeedsDeploymentBucket {
        /// The function being created.
        function: String,
        /// The zip's size in bytes.
        size: u64,
    },
    /// The spec's document, deflated and base64-encoded, does not fit in the tags a
    /// function may carry.
    #[error("the spec of function {function:?} takes {size} characters deflated and base64-encoded, over the {limit} that a function's tags hold ({chunks} tags of {value} characters)", chunks = crate::spec_codec::SPEC_MAX_CHUNKS, value = crate::spec_codec::TAG_VALUE_LIMIT)]
    SpecTooLarge {
        /// The function being created.
        function: String,
        /// The document's size, in characters.
        size: usize,
        /// The most a document may take, in characters.
        limit: usize,
    },
    /// The function exists but scar did not create it, so scar leaves it alone.
    #[error("function {0:?} was not created by scar (it has no createdby=scar tag): scar leaves it alone")]
    NotScarFunction(String),
    /// `remove` of a function that is not the caller's: another identity's, or one with no
    /// owner recorded (see [`AwsProvider::with_all_owners`](crate::AwsProvider::with_all_owners)).
    #[error("{}", not_owner(function, owner.as_deref(), caller))]
    NotOwner {
        /// The function.
        function: String,
        /// Its `owner` tag; `None`: it has none.
        owner: Option<String>,
        /// The caller's identity (its ARN).
        caller: String,
    },
    /// The input given to a method is not usable (a bucket, a key, a path).
    #[error("{0}")]
    Input(String),
    /// What both providers mean alike: a function not found, one that exists, a bucket
    /// that does not trigger it...
    #[error(transparent)]
    Surface(#[from] scar_core::provider::SurfaceError),
    /// A bucket path or key that S3 would refuse.
    #[error(transparent)]
    Bucket(#[from] scar_core::bucket::BucketError),
    /// Pulling or packaging the image failed.
    #[error(transparent)]
    Image(#[from] scar_packager::PackagerError),
    /// An AWS service call failed.
    #[error("{operation} {resource} failed: {detail}")]
    Service {
        /// The API operation, such as `lambda:CreateFunction`.
        operation: &'static str,
        /// What it was called on (a function, a bucket, a key, a log group).
        resource: String,
        /// The error's readable text (its code, message and causes).
        detail: String,
        /// The service's error code, when it answered with one.
        code: Option<String>,
        /// The HTTP status, when there was a response.
        status: Option<u16>,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
    /// Reading or writing a local file failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The local path.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A function did not become ready (State Active, LastUpdateStatus Successful).
    #[error("function {function:?} did not become active: {reason}")]
    NotActive {
        /// The function.
        function: String,
        /// Its state and the reason Lambda gave, or the time waited.
        reason: String,
    },
    /// The invocation answered something that is not scar's response: the function does
    /// not run scar's supervisor (or an emulator echoed the payload back).
    #[error("function {function:?} answered something that is not a scar response (is it a scar function?): {}", truncate(raw, 500))]
    NotScarResponse {
        /// The function.
        function: String,
        /// The payload it answered, as text.
        raw: String,
    },
    /// `init` failed and rolling back left some resources behind.
    #[error(
        "{source} (rolling back also failed, left behind: {})",
        join(leftovers)
    )]
    RollbackIncomplete {
        /// Why `init` failed.
        #[source]
        source: Box<AwsError>,
        /// What could not be removed, each with why.
        leftovers: Vec<Leftover>,
    },
}

/// A resource a failed `init` created and could not remove again: a caller may remove it
/// (or retry) by its kind and name.
#[derive(Debug, thiserror::Error)]
#[error("{kind} {name}: {error}")]
pub struct Leftover {
    /// What it is.
    pub kind: ResourceKind,
    /// Its name: a bucket, `bucket/key`, a function, a log group, a statement id, a job
    /// definition's ARN.
    pub name: String,
    /// Why removing it failed.
    #[source]
    pub error: AwsError,
}

/// The kinds of resource `init` creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResourceKind {
    /// The Lambda function.
    Function,
    /// Its CloudWatch log group (`/aws/lambda/<function>`).
    LogGroup,
    /// An input or output bucket `init` created.
    Bucket,
    /// The deployment bucket, created for a large zip package.
    DeploymentBucket,
    /// The zip package uploaded to the deployment bucket (`bucket/key`).
    DeploymentObject,
    /// S3's permission to invoke the function (its statement id).
    Permission,
    /// The function's entry in a bucket's notification configuration (the bucket).
    Notification,
    /// The AWS Batch compute environment (`scar-<function>`).
    ComputeEnvironment,
    /// The AWS Batch job queue (`scar-<function>`).
    JobQueue,
    /// The AWS Batch job definition (its ARN).
    JobDefinition,
    /// The API Gateway REST API (its id).
    RestApi,
}

impl std::fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ResourceKind::Function => "function",
            ResourceKind::LogGroup => "log group",
            ResourceKind::Bucket => "bucket",
            ResourceKind::DeploymentBucket => "deployment bucket",
            ResourceKind::DeploymentObject => "deployment object",
            ResourceKind::Permission => "permission",
            ResourceKind::Notification => "notification on bucket",
            ResourceKind::ComputeEnvironment => "compute environment",
            ResourceKind::JobQueue => "job queue",
            ResourceKind::JobDefinition => "job definition",
            ResourceKind::RestApi => "REST API",
        })
    }
}

fn join(leftovers: &[Leftover]) -> String {
    let texts: Vec<String> = leftovers.iter().map(Leftover::to_string).collect();
    texts.join("; ")
}

fn missing_network(subnets: usize, security_groups: usize) -> &'static str {
    match (subnets, security_groups) {
        (0, 0) => "neither",
        (0, _) => "no subnets",
        _ => "no security groups",
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}

impl AwsError {
    /// The error of a call to storage provider `id` rather than the account's S3: its
    /// resource is named `<id>:<resource>` (the provider's keys are never part of it).
    pub fn on_storage_provider(self, id: &str) -> AwsError {
        match self {
            AwsError::Service {
                operation,
                resource,
                detail,
                code,
                status,
                source,
            } => AwsError::Service {
                operation,
                resource: format!("{id}:{resource}"),
                detail,
                code,
                status,
                source,
            },
            other => other,
        }
    }

    /// The service's error code, if this is a service error that has one.
    pub fn code(&self) -> Option<&str> {
        match self {
            AwsError::Service { code, .. } => code.as_deref(),
            AwsError::RollbackIncomplete { source, .. } => source.code(),
            _ => None,
        }
    }

    /// Whether this is a service error with one of `codes`.
    pub(crate) fn has_code(&self, codes: &[&str]) -> bool {
        self.code().is_some_and(|c| codes.contains(&c))
    }

    /// A closure turning a failed download stream of `resource` into an [`AwsError`].
    pub(crate) fn stream(
        operation: &'static str,
        resource: impl Into<String>,
    ) -> impl FnOnce(aws_sdk_s3::primitives::ByteStreamError) -> AwsError {
        let resource = resource.into();
        move |err| AwsError::Service {
            operation,
            resource,
            detail: DisplayErrorContext(&err).to_string(),
            code: None,
            status: None,
            source: Box::new(err),
        }
    }

    /// Whether the service said the resource does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, AwsError::Surface(SurfaceError::NotFound(_)))
            || self.has_code(&[
                "ResourceNotFoundException",
                "NoSuchBucket",
                "NoSuchKey",
                "NotFound",
                "RepositoryNotFoundException",
                "NoSuchConfiguration",
            ])
            || matches!(
                self,
                AwsError::Service {
                    status: Some(404),
                    ..
                }
            )
    }

    /// Whether this is throttling (HTTP 429, `TooManyRequestsException` and the like),
    /// which is worth retrying after a while.
    pub fn is_throttling(&self) -> bool {
        matches!(
            self,
            AwsError::Service {
                status: Some(429),
                ..
            }
        ) || self.has_code(THROTTLING_CODES)
    }
}

/// Error codes AWS services use for throttling.
pub(crate) const THROTTLING_CODES: &[&str] = &[
    "TooManyRequestsException",
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "EC2ThrottledException",
];

/// The result of an AWS SDK call, its error made an [`AwsError`] that names the call: the
/// one way this crate turns SDK errors into its own.
pub(crate) trait SdkResultExt<T> {
    /// The error as [`AwsError::Service`]: `operation` (such as `lambda:GetFunction`) on
    /// `resource` failed, with the service's code, HTTP status and readable message.
    fn map_sdk_err(
        self,
        operation: &'static str,
        resource: impl Into<String>,
    ) -> Result<T, AwsError>;
}

impl<T, E> SdkResultExt<T> for Result<T, E>
where
    E: ProvideErrorMetadata + SdkStatus + std::error::Error + Send + Sync + 'static,
{
    fn map_sdk_err(
        self,
        operation: &'static str,
        resource: impl Into<String>,
    ) -> Result<T, AwsError> {
        self.map_err(|err| AwsError::Service {
            operation,
            resource: resource.into(),
            detail: readable(&err),
            code: err.code().map(str::to_string),
            status: err.http_status(),
            source: Box::new(err),
        })
    }
}

/// A result in which a resource that does not exist is an answer, not a failure.
pub(crate) trait NotFoundExt<T> {
    /// `Ok(None)` when the error says the resource does not exist
    /// ([`AwsError::is_not_found`]).
    fn optional(self) -> Result<Option<T>, AwsError>;

    /// A resource that does not exist as [`SurfaceError::NotFound`] of function `name`:
    /// what every provider says of a missing function.
    fn or_function_not_found(self, name: &str) -> Result<T, AwsError>;
}

impl<T> NotFoundExt<T> for Result<T, AwsError> {
    fn optional(self) -> Result<Option<T>, AwsError> {
        match self {
            Ok(value) => Ok(Some(value)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn or_function_not_found(self, name: &str) -> Result<T, AwsError> {
        self.optional()?
            .ok_or_else(|| SurfaceError::NotFound(name.into()).into())
    }
}

/// [`AwsError::NotOwner`]'s message.
fn not_owner(function: &str, owner: Option<&str>, caller: &str) -> String {
    match owner {
        Some(owner) => format!(
            "function {function:?} belongs to {owner}, not to you ({caller}): scar leaves other owners' functions alone"
        ),
        None => format!(
            "function {function:?} has no owner tag (it was created before scar recorded owners): scar cannot tell it is yours ({caller})"
        ),
    }
}

/// The HTTP status of an SDK error, when there was a response.
pub(crate) trait SdkStatus {
    fn http_status(&self) -> Option<u16>;
}

impl<E> SdkStatus for aws_sdk_lambda::error::SdkError<E> {
    fn http_status(&self) -> Option<u16> {
        self.raw_response().map(|r| r.status().as_u16())
    }
}

impl Categorized for AwsError {
    fn is_not_found(&self) -> bool {
        AwsError::is_not_found(self)
    }

    fn surface(&self) -> Option<&SurfaceError> {
        match self {
            AwsError::Surface(e) => Some(e),
            AwsError::RollbackIncomplete { source, .. } => source.surface(),
            _ => None,
        }
    }

    fn category(&self) -> ErrorCategory {
        match self {
            AwsError::Spec(_)
            | AwsError::SpecTooLarge { .. }
            | AwsError::MissingRole { .. }
            | AwsError::MissingSupervisor { .. }
            | AwsError::MissingProot { .. }
            | AwsError::BatchNetwork { .. }
            | AwsError::FileSystemNeedsVpc { .. }
            | AwsError::NotEcrImage { .. }
            | AwsError::NeedsDeploymentBucket { .. }
            | AwsError::Surface(_)
            | AwsError::NotScarFunction(_)
            | AwsError::NotOwner { .. }
            | AwsError::Input(_)
            | AwsError::Bucket(_) => ErrorCategory::Usage,
            AwsError::Image(e) => e.category(),
            AwsError::RollbackIncomplete { source, .. } => source.category(),
            AwsError::Service { code, .. }
                if code.as_deref().is_some_and(|c| {
                    matches!(
                        c,
                        "InvalidParameterValueException"
                            | "NoSuchBucket"
                            | "NoSuchKey"
                            | "InvalidBucketName"
                            | "BucketAlreadyExists"
                            | "ResourceConflictException"
                    )
                }) =>
            {
                ErrorCategory::Usage
            }
            _ => ErrorCategory::Provider,
        }
    }
}

/// What the user needs of an SDK error: the service's code and message, or the chain of
/// causes (one wording for every scar crate: [`scar_s3::readable`]).
fn readable<E>(err: &E) -> String
where
    E: ProvideErrorMetadata + std::error::Error,
{
    scar_s3::readable(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(code: &str) -> AwsError {
        AwsError::Service {
            operation: "s3:GetObject",
            resource: "b/k".into(),
            detail: code.into(),
            code: Some(code.into()),
            status: None,
            source: Box::new(std::io::Error::other(code.to_string())),
        }
    }

    /// A missing resource is an answer (`None`, or the function's not-found); any other
    /// failure stays what it was.
    #[test]
    fn missing_resources_are_answers() {
        assert!(matches!(
            Err::<(), _>(service("NoSuchKey")).optional(),
            Ok(None)
        ));
        assert!(matches!(Ok::<_, AwsError>(1).optional(), Ok(Some(1))));
        let denied = Err::<(), _>(service("AccessDenied")).optional();
        assert_eq!(denied.unwrap_err().code(), Some("AccessDenied"));
        let missing = Err::<(), _>(service("ResourceNotFoundException"));
        assert!(matches!(
            missing.or_function_not_found("f"),
            Err(AwsError::Surface(SurfaceError::NotFound(name))) if name == "f"
        ));
    }
}
