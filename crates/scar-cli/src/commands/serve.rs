//! `scar serve`: watch every bound input folder of this machine and run what lands there.
//! The local provider's own: on AWS, S3 invokes functions by itself.

use scar_core::provider::{Outcome, Unsupported};
use scar_core::ExitStatus;
use scar_local::ServeEvent;

use super::Status;
use crate::args::ServeArgs;
use crate::printer::Printer;
use crate::settings::AnyProvider;

pub async fn run(provider: &AnyProvider, args: &ServeArgs, printer: &Printer) -> Status {
    let local = match provider {
        AnyProvider::Local(local) => local,
        AnyProvider::Aws(_) => {
            return Err(Unsupported {
                provider: scar_aws::PROVIDER_NAME,
                what: "`scar serve`".into(),
                instead: "S3 invokes a function for every file put into its bucket's input/ folder by itself (use `scar put` or any S3 client); run `scar serve` on the local provider (without --provider aws) to watch local buckets".into(),
            }
            .into())
        }
    };
    let on_event = |e: &ServeEvent| match e {
        ServeEvent::Watching { function, bucket } if !printer.json => {
            printer.note(format!(
                "watching {bucket}/input/ for function '{function}'"
            ));
        }
        ServeEvent::Finished { function, result } => {
            if printer.json {
                let _ =
                    printer.json_line(&serde_json::json!({"function": function, "result": result}));
            } else {
                let status = match result.outcome {
                    Outcome::Succeeded => "ok",
                    Outcome::TimedOut => "TIMED OUT",
                    _ => "FAILED",
                };
                printer.line(format!(
                    "{status} {function} {} ({} outputs)",
                    result.key,
                    result.uploaded.len()
                ));
            }
        }
        _ => {}
    };
    let stop = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    };
    let concurrency = args
        .concurrency
        .filter(|c| *c > 0)
        .unwrap_or_else(|| scar_core::provider::Provider::default_concurrency(local));
    local.serve(concurrency, &on_event, stop).await?;
    Ok(ExitStatus::Success)
}
