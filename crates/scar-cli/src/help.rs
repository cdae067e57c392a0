//! What to do next, for errors the user can act on: the `help:` lines under an error.
//!
//! Libraries say what failed (with typed data); the advice is the frontend's, since it
//! names the frontend's commands and flags. Keyed on the error's kind, the same on every
//! provider for the errors both providers mean alike ([`SurfaceError`]).

use std::any::Any;

use scar_core::provider::SurfaceError;
use scar_core::Categorized;

/// The `help:` lines for `error`, if the user can act on it.
pub fn advice<E: Categorized>(error: &E) -> Vec<String> {
    if let Some(surface) = error.surface() {
        return surface_advice(surface);
    }
    let any: &dyn Any = error;
    if let Some(e) = any.downcast_ref::<scar_aws::AwsError>() {
        return aws_advice(e);
    }
    Vec::new()
}

fn surface_advice(error: &SurfaceError) -> Vec<String> {
    let line = match error {
        SurfaceError::NotFound(_) => "`scar ls` lists the functions".to_string(),
        SurfaceError::Exists(name) => {
            format!("remove it first with `scar rm -n {name}`, or pick another name")
        }
        SurfaceError::InputTaken { function, .. } => {
            format!(
                "use another folder, or remove the function that has it: `scar rm -n {function}`"
            )
        }
        SurfaceError::WrongBucket { .. } => {
            "use the bucket the function was created with (`scar ls --json` shows it)".into()
        }
        SurfaceError::NoProvider { .. } => {
            "add it under `storage_providers:` in the definition file".into()
        }
        SurfaceError::NotBound(_) => {
            "give the function an input folder: `scar init` with -es BUCKET or -ib BUCKET[/FOLDER]"
                .into()
        }
        _ => return Vec::new(),
    };
    vec![line]
}

fn aws_advice(error: &scar_aws::AwsError) -> Vec<String> {
    use scar_aws::AwsError;
    match error {
        AwsError::MissingRole { .. } => vec![
            "set -r/--iam-role, or aws.iam.role in ~/.scar/scar.cfg: the ARN of a role Lambda can assume"
                .into(),
        ],
        AwsError::NeedsDeploymentBucket { .. } => {
            vec!["give a deployment bucket with -db BUCKET".into()]
        }
        AwsError::MissingSupervisor { .. } => vec![
            "pass --supervisor PATH or set SCAR_SUPERVISOR (`cargo xtask build-supervisor` builds one)".into(),
        ],
        AwsError::MissingProot { .. } => vec![
            "pass --proot PATH (udocker's static proot works: `udocker install` puts it in ~/.udocker/bin), or use --package image".into(),
        ],
        AwsError::BatchNetwork { .. } => vec![
            "set batch.compute_resources.subnets and security_group_ids in the definition file, or in aws.batch.compute_resources of ~/.scar/scar.cfg as SCAR keeps them (`aws ec2 describe-subnets` and `aws ec2 describe-security-groups` list yours)".into(),
        ],
        AwsError::NotOwner { function, .. } => vec![format!(
            "`scar rm -n {function} --all-owners` removes it anyway (`scar ls --all-owners --json` shows each function's owner)"
        )],
        AwsError::RollbackIncomplete { source, .. } => aws_advice(source),
        _ => Vec::new(),
    }
}
