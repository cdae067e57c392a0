//! `scar init`: one function, or every function of an FDL file (`-f`).

use scar_core::provider::{CreateRequest, ImageInput, PackageKind, Provider};
use scar_core::ExitStatus;

use super::{context, Failure, Status};
use crate::args::{Cli, Command, InitArgs};
use crate::printer::Printer;
use crate::settings::AnyProvider;
use crate::with_provider;

pub async fn run(cli: &Cli, args: &InitArgs, printer: &Printer) -> Status {
    let each = match &args.file {
        Some(file) => crate::settings::expand_fdl(args, file, printer)?,
        None => vec![args.clone()],
    };
    // Bad input costs nothing: every function is checked before any pull.
    let mut prepared = Vec::new();
    for one in each {
        let single = Cli {
            command: Command::Init(one.clone()),
            ..cli.clone()
        };
        let mut ctx = context(&single)?;
        if let Some(days) = one.log_retention_days {
            ctx.settings.log_retention_days = days;
        }
        let spec = crate::settings::function_spec(&ctx.settings, &one)?;
        spec.validate()?;
        prepared.push((single, ctx, one, spec));
    }
    warn_of_cycles(&prepared, printer).await?;
    // A MinIO input folder has no trigger: the same words on both providers.
    for (.., spec) in &prepared {
        for notice in spec.input_notices() {
            printer.warn(notice);
        }
    }
    let mut created = Vec::new();
    for (single, ctx, one, spec) in prepared {
        let image = match (one.image, one.image_file) {
            (_, Some(file)) => ImageInput::Archive(file),
            (Some(reference), None) => ImageInput::Reference(reference),
            (None, None) => {
                return Err(Failure::from(crate::settings::InputFile(
                    "-i/-if".into(),
                    std::io::Error::other("give an image with -i IMAGE or -if ARCHIVE"),
                )))
            }
        };
        let package = one.package.map(|k| match k {
            crate::args::PackageKind::Image => PackageKind::Image,
            crate::args::PackageKind::Zip => PackageKind::Zip,
        });
        if let (Some(PackageKind::Zip), Some(proot)) = (package, ctx.proot()) {
            if !matches!(scar_local::is_static_elf(&proot), Ok(true)) {
                printer.warn(format!(
                    "{} is not a static executable: on Lambda it runs only if Amazon Linux has what it links to",
                    proot.display()
                ));
            }
        }
        let request = CreateRequest {
            spec,
            image,
            package,
            deployment_bucket: one.deployment_bucket.clone(),
        };
        let provider = match ctx.provider(&single).await? {
            AnyProvider::Local(p) => AnyProvider::Local(p.with_strict_extraction(one.strict)),
            AnyProvider::Aws(p) => AnyProvider::Aws(p.with_strict_extraction(one.strict)),
        };
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

/// Warns when the functions being created, with those already there, form a cycle through
/// their folders: a chain that follows it runs until it is stopped as a recursive loop.
async fn warn_of_cycles(
    prepared: &[(
        Cli,
        crate::settings::Context,
        InitArgs,
        scar_core::FunctionSpec,
    )],
    printer: &Printer,
) -> Result<(), Failure> {
    let Some((single, ctx, ..)) = prepared.first() else {
        return Ok(());
    };
    if prepared.iter().all(|(.., spec)| spec.outputs.is_empty()) {
        return Ok(());
    }
    let provider = ctx.provider(single).await?;
    let existing = with_provider!(&provider, |p| p.list().await.map_err(Failure::from))?;
    let mut specs: Vec<scar_core::FunctionSpec> = existing
        .into_iter()
        .map(|f| f.spec)
        .filter(|s| !prepared.iter().any(|(.., new)| new.name == s.name))
        .collect();
    specs.extend(prepared.iter().map(|(.., spec)| spec.clone()));
    for cycle in scar_core::spec::chain_cycles(&specs) {
        printer.warn(format!(
            "the functions {} form a cycle through their folders: a chain that follows it is stopped after {} invocations, as AWS Lambda's recursive loop detection stops it",
            cycle.join(" -> "),
            scar_core::lambda::MAX_CHAIN_INVOCATIONS
        ));
    }
    Ok(())
}
