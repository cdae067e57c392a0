//! `scar init`: one function, or every function of an FDL file (`-f`).

use scar_core::event::Payload;
use scar_core::progress::Progress as _;
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
        check_extra_payload(&f.spec)?;
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
        // The proot runs on Lambda beside the supervisor: of the function's architecture.
        let proot_arch = scar_local::elf_architecture(&proot);
        let zips = functions
            .iter()
            .filter(|f| f.package == Some(PackageKind::Zip));
        for f in zips.filter(|f| proot_arch.is_some_and(|a| a != f.spec.architecture)) {
            printer.warn(format!(
                "{} is not an {} executable, and function '{}' is {}: on Lambda its zip package cannot enter the image's root (give one of {} with --proot)",
                proot.display(),
                f.spec.architecture.machine(),
                f.spec.name,
                f.spec.architecture,
                f.spec.architecture.machine(),
            ));
        }
    }
    let mut created = Vec::new();
    let mut preheat_failed = false;
    for f in functions {
        let preheat = f.preheat;
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
        // Plain data: serializing it cannot fail.
        let mut shown = serde_json::to_value(crate::printer::shown(&info)).unwrap_or_default();
        if preheat {
            let report =
                with_provider!(&provider, |p| preheat_function(p, &info.spec.name, printer)
                    .await);
            preheat_failed |= !report.succeeded;
            shown["preheat"] = serde_json::to_value(&report).unwrap_or_default();
        }
        created.push(shown);
    }
    if printer.json {
        if args.file.is_some() {
            printer.json(&created)?;
        } else if let Some(info) = created.first() {
            printer.json(info)?;
        }
    }
    if preheat_failed {
        return Ok(ExitStatus::FunctionFailed);
    }
    Ok(ExitStatus::Success)
}

/// The extra payload (`-ep`, `extra_payload`) is a folder: anything else is the user's
/// mistake, said before any pull.
fn check_extra_payload(spec: &scar_core::FunctionSpec) -> Result<(), Failure> {
    let Some(dir) = &spec.extra_payload else {
        return Ok(());
    };
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(Failure::usage(format!(
            "extra payload `{dir}` is not a folder: -ep/--extra-payload (extra_payload) names a folder whose files the function finds in /var/task"
        ))),
        Err(e) => Err(Failure::usage(format!(
            "extra payload `{dir}`: {e}: -ep/--extra-payload (extra_payload) names an existing folder"
        ))),
    }
}

/// What `-ph` did: one invocation with no script or arguments (what runs is the init
/// script, else the image's command), as SCAR preheats.
#[derive(Debug, serde::Serialize)]
struct Preheat {
    succeeded: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    /// Why it failed: the invocation's error, or the end of its output.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Invokes `name` once to warm it (`-ph`), and says how it went.
async fn preheat_function<P: Provider>(p: &P, name: &str, printer: &Printer) -> Preheat {
    let bars = printer.bars();
    let invocation = p.invoke(name, &Payload::default(), &bars).await;
    bars.finish();
    let report = match invocation {
        Ok(inv) if inv.response.succeeded() => Preheat {
            succeeded: true,
            request_id: Some(inv.response.request_id.clone()),
            error: None,
        },
        Ok(inv) => Preheat {
            succeeded: false,
            request_id: Some(inv.response.request_id.clone()),
            error: Some(format!(
                "{}: {}",
                match inv.response.ending {
                    scar_core::event::Ending::Exited(code) => format!("exit status {code}"),
                    scar_core::event::Ending::TimedOut { .. } => "timed out".to_string(),
                    _ => "it did not finish".to_string(),
                },
                scar_core::provider::output_tail(&String::from_utf8_lossy(
                    &inv.response.output_bytes()
                ))
                .trim_end()
            )),
        },
        Err(e) => Preheat {
            succeeded: false,
            request_id: None,
            error: Some(e.to_string()),
        },
    };
    match &report.error {
        None => printer.line(format!("Function '{name}' preheated.")),
        Some(why) => printer.warn(format!("the preheat invocation of '{name}' failed: {why}")),
    }
    report
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
