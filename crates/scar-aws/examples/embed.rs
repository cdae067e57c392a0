//! Embedding scar-aws: the whole `scar init` (pull an image, package it, deploy it), an
//! invocation, and `scar rm`, from a Rust program, with scar-aws alone.
//!
//! ```text
//! cargo run -p scar-aws --example embed -- IMAGE [NAME]
//! ```
//! IMAGE is a registry reference, or the path of a `docker save` / OCI archive. Settings come
//! from the environment: `SCAR_IAM_ROLE` (required: the role's ARN), `SCAR_SUPERVISOR` (the
//! static `bootstrap` packages carry: `cargo xtask build-supervisor`), `SCAR_PACKAGE`
//! (`image`, the default, pushed to ECR; or `zip`, with `SCAR_PROOT`), `AWS_REGION`
//! (default us-east-1), `SCAR_ENDPOINT_URL` (an emulator such as moto; then static test
//! credentials are used unless AWS_ACCESS_KEY_ID is set), `AWS_PROFILE`.

use std::process::ExitCode;

use scar_aws::{AwsConfig, AwsProvider, StaticCredentials};
use scar_core::event::Payload;
use scar_core::progress::NoProgress;
use scar_core::provider::{CreateRequest, ImageInput, PackageKind, Provider};
use scar_core::Categorized;

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(image) = args.next() else {
        eprintln!("usage: embed IMAGE [NAME]   (set SCAR_IAM_ROLE and SCAR_SUPERVISOR; optionally SCAR_PACKAGE, SCAR_PROOT, SCAR_ENDPOINT_URL, AWS_REGION, AWS_PROFILE)");
        return ExitCode::from(2);
    };
    let name = args.next().unwrap_or_else(|| "scar-embed-example".into());
    match run(&image, &name).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.category().exit_code() as u8)
        }
    }
}

async fn run(image: &str, name: &str) -> Result<(), scar_aws::AwsError> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut config = AwsConfig::new(env("AWS_REGION").unwrap_or_else(|| "us-east-1".into()));
    config.deployment.iam_role = env("SCAR_IAM_ROLE").unwrap_or_default();
    config.connection.profile = env("AWS_PROFILE");
    config.connection.endpoint_url = env("SCAR_ENDPOINT_URL");
    config.packaging.supervisor = env("SCAR_SUPERVISOR").map(Into::into);
    config.packaging.proot = env("SCAR_PROOT").map(Into::into);
    if config.connection.endpoint_url.is_some() && env("AWS_ACCESS_KEY_ID").is_none() {
        config.connection.credentials = Some(StaticCredentials {
            access_key_id: "testing".into(),
            secret_access_key: "testing".into(),
            session_token: None,
        });
    }
    let aws = AwsProvider::connect(config).await;

    let spec = scar_core::FunctionSpec::new(name, image)
        .with_timeout_s(60)
        .with_description("scar-aws embedding example");
    let source = if std::path::Path::new(image).is_file() {
        ImageInput::Archive(image.into())
    } else {
        ImageInput::Reference(image.into())
    };
    let package = match env("SCAR_PACKAGE").as_deref() {
        Some("zip") => PackageKind::Zip,
        _ => PackageKind::Image,
    };
    let request = CreateRequest::new(spec, source).with_package(Some(package));
    let info = aws.create(request, &NoProgress).await?;
    println!(
        "created {} ({} package, {} MB, {} s)",
        info.spec.name,
        PackageKind::name_or_root(info.package),
        info.spec.memory_mb,
        info.spec.timeout_s
    );

    let payload = Payload {
        script: Some("echo hello from $REQUEST_ID".into()),
        ..Payload::default()
    };
    let invoked = aws.invoke(name, &payload, &NoProgress).await;
    match &invoked {
        Ok(inv) => {
            print!("{}", inv.response.output);
            if let Some(tail) = &inv.log_tail {
                println!("--- log tail ---\n{tail}");
            }
        }
        // An emulator without containers (moto) echoes the payload back.
        Err(e) => eprintln!("invoke: {e}"),
    }

    aws.remove(name).await?;
    println!("removed {name}");
    Ok(())
}
