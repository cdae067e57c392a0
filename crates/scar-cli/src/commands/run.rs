//! `scar run`: one invocation (synchronous, or `--async`), or the launcher (`-es`).

use scar_core::bucket::BucketPath;
use scar_core::event::Payload;
use scar_core::provider::{LaunchRequest, Provider};
use scar_core::spec::parse_env_assignments;
use scar_core::ExitStatus;

use super::Status;
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
    let invocation = p.invoke(&args.name, &payload).await?;
    let response = &invocation.response;
    let status = ExitStatus::function(response.succeeded());
    if printer.json {
        printer.json(response)?;
        return Ok(status);
    }
    printer.raw(&response.output_bytes())?;
    if printer.verbose {
        printer.note(format!(
            "request id: {}\nlog stream: {} {}",
            response.request_id, response.log_group, response.log_stream
        ));
        if let Some(tail) = invocation.log_tail.as_deref().filter(|t| !t.is_empty()) {
            printer.note(format!("log tail:\n{}", tail.trim_end()));
        }
    }
    if response.timed_out {
        printer.note(format!(
            "error: the function timed out (request id {}): raise -t or lower the work",
            response.request_id
        ));
    } else if let Some(code) = response.exit_code.filter(|c| *c != 0) {
        printer.note(format!(
            "error: the function exited with status {code} (request id {})",
            response.request_id
        ));
    } else if response.exit_code.is_none() {
        printer.note(format!(
            "error: the function's script did not run to an exit status (request id {}): `scar log -n {} -ri {}` shows why",
            response.request_id, args.name, response.request_id
        ));
    }
    Ok(status)
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
