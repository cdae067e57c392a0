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
        _ => Vec::new(),
    }
}
