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

pub async fn run<P: Provider>(p: &P, args: &RunArgs, printer: &Printer) -> Status {
    if let Some(bucket) = &args.event_source {
        return launch(p, args, bucket, printer).await;
    }
    let payload = Payload {
        script: args.script.as_deref().map(read_script).transpose()?,
        cmd_args: (!args.args.is_empty()).then(|| args.args.clone()),
        env: parse_env_assignments(&args.environment)?,
        event: args.payload.as_deref().map(read_event).transpose()?,
    };
    if args.run_async {
        let request_id = p.invoke_async(&args.name, &payload).await?;
        if printer.json {
            printer.json(&serde_json::json!({"function": args.name, "request_id": request_id}))?;
        } else {
            printer.line(format!(
                "Invocation {request_id} queued: `scar log -n {} -ri {request_id}` shows it once it ran.",
                args.name
            ));
        }
        return Ok(ExitStatus::Success);
    }
    let bars = printer.bars();
    let invocation = p.invoke(&args.name, &payload, &bars).await;
    bars.finish();
    let invocation = invocation?;
    printer.invocation(&args.name, &invocation)?;
    Ok(ExitStatus::function(invocation.response.succeeded()))
}

/// The launcher: the function once per object already in its bucket's input folder.
async fn launch<P: Provider>(p: &P, args: &RunArgs, bucket: &str, printer: &Printer) -> Status {
    let at = BucketPath::parse(bucket)?;
    let request = LaunchRequest {
        function: args.name.clone(),
        bucket: at.bucket,
        concurrency: args.concurrency,
        only_failed: args.only_failed,
        pending_only: args.pending,
    };
    let bar = printer.launch_bar();
    let results = p.launch(&request, &|e| bar.event(e)).await;
    bar.finish();
    let results = results?;
    printer.results(&results, Some(&args.name))?;
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
