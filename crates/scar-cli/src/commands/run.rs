//! `scar run`: one invocation (synchronous, or `--async`), or the launcher (`-es`).

use scar_core::bucket::BucketPath;
use scar_core::event::Payload;
use scar_core::progress::Progress as _;
use scar_core::provider::{LaunchRequest, Provider};
use scar_core::spec::parse_env_assignments;
use scar_core::ExitStatus;

use super::{Failure, Status};
use crate::args::RunArgs;
use crate::printer::Printer;
use crate::settings::read_script;

pub async fn run<P: Provider>(
    p: &P,
    args: &RunArgs,
    settings: &scar_core::config::Settings,
    printer: &Printer,
) -> Status {
    if args.fresh && p.kind() == scar_core::config::ProviderKind::Aws {
        return Err(scar_core::provider::Unsupported {
            provider: scar_aws::PROVIDER_NAME,
            what: "`--fresh`".into(),
            instead: "Lambda itself decides when an invocation reuses a warm sandbox; changing the function (`scar rm` and `scar init` again) gives it new ones".into(),
        }
        .into());
    }
    let (name, fdl) = crate::settings::named_function(args.name.as_deref(), args.file.as_deref())?;
    if let Some(bucket) = &args.event_source {
        return launch(p, &name, args, bucket, printer).await;
    }
    // The file's `asynchronous` (else scar.cfg's), unless the output is wanted in a file.
    let asynchronous = (fdl.as_ref().and_then(|f| f.asynchronous)).unwrap_or(settings.asynchronous);
    let run_async = args.run_async || (asynchronous && args.output_file.is_none());
    // The file's `run_script`, unless the command line says what to run.
    let script = match (&args.script, fdl.and_then(|f| f.run_script)) {
        (Some(given), _) => Some(given.clone()),
        (None, Some(file_s)) if args.args.is_empty() && args.payload.is_none() => Some(file_s),
        _ => None,
    };
    let payload = Payload {
        script: script.as_deref().map(read_script).transpose()?,
        cmd_args: (!args.args.is_empty()).then(|| args.args.clone()),
        env: parse_env_assignments(&args.environment)?,
        event: args.payload.as_deref().map(read_event).transpose()?,
    };
    if run_async {
        let request_id = p.invoke_async(&name, &payload).await?;
        if printer.json {
            printer.json(&serde_json::json!({"function": name, "request_id": request_id}))?;
        } else {
            printer.line(format!(
                "Invocation {request_id} queued: `scar log -n {name} -ri {request_id}` shows it once it ran."
            ));
        }
        return Ok(ExitStatus::Success);
    }
    let bars = printer.bars();
    let invocation = p.invoke(&name, &payload, &bars).await;
    bars.finish();
    let mut invocation = invocation?;
    if let Some(file) = &args.output_file {
        let output = invocation.response.output_bytes();
        std::fs::write(file, &output).map_err(|e| {
            Failure::usage(format!(
                "cannot write the output to {}: {e}",
                file.display()
            ))
        })?;
        if !printer.json {
            invocation.response.set_output(Vec::new());
            printer.note(format!(
                "the output ({} bytes) is in {}",
                output.len(),
                file.display()
            ));
        }
    }
    printer.invocation(&name, &invocation)?;
    Ok(ExitStatus::function(invocation.response.succeeded()))
}

/// The launcher: the function once per object already in its bucket's input folder.
async fn launch<P: Provider>(
    p: &P,
    name: &str,
    args: &RunArgs,
    bucket: &str,
    printer: &Printer,
) -> Status {
    let at = BucketPath::parse(bucket)?;
    let request = LaunchRequest {
        function: name.to_string(),
        bucket: at.bucket,
        concurrency: args.concurrency,
        only_failed: args.only_failed,
        pending_only: args.pending,
    };
    let bar = printer.launch_bar();
    let results = p.launch(&request, &|e| bar.event(e)).await;
    bar.finish();
    let results = results?;
    printer.results(&results, Some(name))?;
    Ok(ExitStatus::function(results.iter().all(|r| r.outcome.ok())))
}

/// `--payload`: JSON, or `@FILE` holding JSON.
fn read_event(given: &str) -> Result<serde_json::Value, Failure> {
    let text = match given.strip_prefix('@') {
        Some(file) => std::fs::read_to_string(file)
            .map_err(scar_core::UsageError::unreadable(file.as_ref()))?,
        None => given.to_string(),
    };
    serde_json::from_str(&text).map_err(|e| {
        Failure::usage(format!(
            "the payload is not JSON: {e} (give `--payload '{{...}}'` or `--payload @FILE`)"
        ))
    })
}
