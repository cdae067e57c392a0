//! `scar init`: one function, or every function of an FDL file (`-f`).

use scar_core::provider::{CreateRequest, PackageKind, Provider};
use scar_core::ExitStatus;

use super::{context, Failure, Status};
use crate::args::{Cli, InitArgs};
use crate::printer::Printer;
use crate::settings::{AnyProvider, Context, NewFunction};
use crate::with_provider;

pub async fn run(cli: &Cli, args: &InitArgs, printer: &Printer) -> Status {
    // The settings, resolved once for the command; each function of a definition file
    // takes the file's values under the flags, over them.
    let ctx = context(cli, printer)?;
    let functions = crate::settings::new_functions(&ctx.settings, args, printer)?;
    // Bad input costs nothing: every function is checked before any pull.
    for f in &functions {
        f.spec.validate()?;
        if f.image.is_none() {
            return Err(Failure::usage(
                "no image: give one with -i IMAGE or -if ARCHIVE",
            ));
        }
    }
    warn_of_cycles(&ctx, cli, &functions, printer).await?;
    // A MinIO input folder has no trigger: the same words on both providers.
    for f in &functions {
        for notice in f.spec.input_notices() {
            printer.warn(notice);
        }
    }
    let zip = functions
        .iter()
        .any(|f| f.package == Some(PackageKind::Zip));
    if let (true, Some(proot)) = (zip, ctx.proot()) {
        if !matches!(scar_local::is_static_elf(&proot), Ok(true)) {
            printer.warn(format!(
                "{} is not a static executable: on Lambda it runs only if Amazon Linux has what it links to",
                proot.display()
            ));
        }
    }
    let mut created = Vec::new();
    for f in functions {
        let provider = provider_for(&ctx, cli, &f, args.strict).await?;
        let image = f.image.ok_or_else(|| Failure::usage("no image"))?;
        let request = CreateRequest::new(f.spec, image)
            .with_package(f.package)
            .with_deployment_bucket(f.deployment_bucket);
        let bars = printer.bars();
        let info = with_provider!(&provider, |p| p
            .create(request, &bars)
            .await
            .map_err(Failure::from))?;
        printer.created(&info);
        created.push(crate::printer::shown(&info));
    }
    if printer.json {
        if args.file.is_some() {
            printer.json(&created)?;
        } else if let Some(info) = created.first() {
            printer.json(info)?;
        }
    }
    Ok(ExitStatus::Success)
}

/// The provider that creates `f`: the command's, with the function's own role and log
/// retention (an FDL file gives each function its own).
async fn provider_for(
    ctx: &Context,
    cli: &Cli,
    f: &NewFunction,
    strict: bool,
) -> Result<AnyProvider, Failure> {
    let mut ctx = ctx.for_function(f.fdl.as_ref());
    ctx.settings.iam_role = f.iam_role.clone();
    ctx.settings.log_retention_days = f.log_retention_days;
    Ok(match ctx.provider(cli).await? {
        AnyProvider::Local(p) => AnyProvider::Local(p.with_strict_extraction(strict)),
        AnyProvider::Aws(p) => AnyProvider::Aws(p.with_strict_extraction(strict)),
    })
}

/// Warns when the functions being created, with those already there, form a cycle through
/// their folders: a chain that follows it runs until it is stopped as a recursive loop.
async fn warn_of_cycles(
    ctx: &Context,
    cli: &Cli,
    functions: &[NewFunction],
    printer: &Printer,
) -> Result<(), Failure> {
    if functions.iter().all(|f| f.spec.outputs.is_empty()) {
        return Ok(());
    }
    // A chain runs through every owner's functions.
    let provider = super::scoped(ctx.provider(cli).await?, true);
    let existing = with_provider!(&provider, |p| p.list().await.map_err(Failure::from))?;
    let mut specs: Vec<scar_core::FunctionSpec> = existing
        .into_iter()
        .map(|f| f.spec)
        .filter(|s| !functions.iter().any(|new| new.spec.name == s.name))
        .collect();
    specs.extend(functions.iter().map(|f| f.spec.clone()));
    for cycle in scar_core::spec::chain_cycles(&specs) {
        printer.warn(format!(
            "the functions {} form a cycle through their folders: a chain that follows it is stopped after {} invocations, as AWS Lambda's recursive loop detection stops it",
            cycle.join(" -> "),
            scar_core::lambda::MAX_CHAIN_INVOCATIONS
        ));
    }
    Ok(())
}
