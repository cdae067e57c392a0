//! `scar put`: files into a bucket folder; those that land in a function's input folder
//! run it, and put waits for their results (`--async`: it returns at once).
//!
//! `--json` prints one object on every provider: `stored` (the objects), `function` (the
//! function they trigger, if any), `inputs` (the keys it runs for), `async`, and `results`
//! (one per input; empty with `--async`).

use scar_core::provider::{FileResult, Provider, PutReport};
use scar_core::ExitStatus;

use super::{with_transfer_bar, Status};
use crate::args::PutArgs;
use crate::printer::Printer;

#[derive(serde::Serialize)]
struct PutOutput<'a> {
    #[serde(flatten)]
    report: &'a PutReport,
    #[serde(rename = "async")]
    run_async: bool,
    results: &'a [FileResult],
}

pub async fn run<P: Provider>(p: &P, args: &PutArgs, printer: &Printer) -> Status {
    let (at, report) = with_transfer_bar(printer, &args.bucket, async |at, on_transfer| {
        p.put(at, &args.path, on_transfer).await
    })
    .await?;
    let json = |results: &[FileResult]| {
        printer.json(&PutOutput {
            report: &report,
            run_async: args.run_async,
            results,
        })
    };
    let Some(function) = report.function.clone() else {
        if printer.json {
            json(&[])?;
        } else {
            printer.line(format!("{} files stored in {at}.", report.stored.len()));
        }
        return Ok(ExitStatus::Success);
    };
    if args.run_async {
        p.start_inputs(&report).await?;
        if printer.json {
            json(&[])?;
        } else {
            printer.line(format!(
                "{} files stored in {at}; function '{function}' runs for {} of them in the background (`scar log -n {function} --follow`).",
                report.stored.len(),
                report.inputs.len()
            ));
        }
        return Ok(ExitStatus::Success);
    }
    let bar = printer.launch_bar();
    let results = p
        .await_inputs(&report, args.concurrency, &|e| bar.event(e))
        .await;
    bar.finish();
    let results = results?;
    if printer.json {
        json(&results)?;
    } else {
        printer.results(&results, Some(&function))?;
    }
    Ok(ExitStatus::function(results.iter().all(|r| r.outcome.ok())))
}
