//! `scar serve`: watch every bound input folder of this machine and run what lands there,
//! and serve the Lambda Invoke API and the dashboard on a loopback port. The local provider's own: on AWS,
//! S3 and Lambda do this by themselves.

use scar_core::provider::{Outcome, Unsupported};
use scar_core::ExitStatus;
use scar_local::{HttpListener, HttpOptions, ServeEvent};

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
    let listener = listen(args.listen, printer).await?;
    // Before saying where: a `scar run --warm` started on that line finds the server.
    local.announce(&listener);
    let url = format!("http://{}", listener.address());
    if printer.json {
        let _ = printer
            .json_line(&serde_json::json!({"listening": url, "dashboard": format!("{url}/")}));
    } else {
        printer.line(format!(
            "Lambda Invoke API on {url} (aws lambda invoke --endpoint-url {url} --function-name NAME out.json)"
        ));
        printer.note(format!("dashboard on {url}/ (JSON API under {url}/api/)"));
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let signals = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
        let _ = stop_tx.send(true);
        Ok(())
    };
    let concurrency = args
        .concurrency
        .filter(|c| *c > 0)
        .unwrap_or_else(|| scar_core::provider::Provider::default_concurrency(local));
    let options =
        HttpOptions::default().with_idle_timeout(std::time::Duration::from_secs(args.idle_timeout));
    tokio::try_join!(
        signals,
        local.serve(concurrency, &on_event, stopped()),
        local.serve_http(listener, options, stopped()),
    )?;
    Ok(ExitStatus::Success)
}

/// The Invoke API's listener: `--listen` as given (a non-loopback address is warned about),
/// else the default port, else any free loopback port when the default is taken.
async fn listen(
    address: Option<std::net::SocketAddr>,
    printer: &Printer,
) -> Result<HttpListener, scar_local::LocalError> {
    if let Some(address) = address {
        if !address.ip().is_loopback() {
            printer.warn(format!(
                "the Lambda Invoke API and the dashboard listen on {address}, not on loopback: anyone who can reach this machine can invoke your functions and upload into their input folders, unauthenticated"
            ));
        }
        return HttpListener::bind(address).await;
    }
    let default: std::net::SocketAddr = scar_local::DEFAULT_LISTEN
        .parse()
        .expect("a valid default address");
    match HttpListener::bind(default).await {
        Ok(listener) => Ok(listener),
        Err(_) => {
            printer.note(format!(
                "{default} is taken: the Lambda Invoke API listens on another loopback port"
            ));
            HttpListener::bind((default.ip(), 0).into()).await
        }
    }
}
