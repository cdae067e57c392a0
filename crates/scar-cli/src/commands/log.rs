//! `scar log`: a function's lines, one invocation's (`-ri`), or new ones as they come
//! (`--follow`).

use scar_core::provider::{LogQuery, NoLogLines, Provider};
use scar_core::ExitStatus;

use super::{Failure, Status};
use crate::args::LogArgs;
use crate::printer::Printer;

pub async fn run<P: Provider>(p: &P, args: &LogArgs, printer: &Printer) -> Status {
    let (name, _) = crate::settings::named_function(args.name.as_deref(), args.file.as_deref())?;
    if args.follow {
        return follow(p, &name, args, printer).await;
    }
    let query = LogQuery {
        stream: args.log_stream_name.clone(),
        request_id: args.request_id.clone(),
    };
    let lines = p.logs(&name, &query).await?;
    if let (Some(id), true) = (&args.request_id, lines.is_empty()) {
        return Err(NoLogLines {
            function: name,
            request_id: id.clone(),
        }
        .into());
    }
    for line in &lines {
        printer.log_line(line)?;
    }
    Ok(ExitStatus::Success)
}

/// Prints the last minute's lines, then new ones, until Ctrl-C or a closed stdout.
async fn follow<P: Provider>(p: &P, name: &str, args: &LogArgs, printer: &Printer) -> Status {
    let mut broken: Option<crate::printer::OutputError> = None;
    let mut on_line = |line| match printer.log_line(&line) {
        Ok(()) => true,
        Err(e) => {
            broken = Some(e);
            false
        }
    };
    let following = p.follow_logs(name, args.log_stream_name.as_deref(), &mut on_line);
    tokio::select! {
        r = following => r?,
        _ = tokio::signal::ctrl_c() => {}
    }
    match broken {
        Some(e) if e.0.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure::from(e)),
        _ => Ok(ExitStatus::Success),
    }
}
