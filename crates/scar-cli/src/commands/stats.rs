//! `scar stats`: per function, counts of files and invocation duration percentiles, as the
//! provider knows them (local: its records and log streams, what `scar serve`'s dashboard
//! shows; aws: REPORT lines of the last day and S3 listings, counts AWS does not keep
//! shown as `-`).

use scar_core::provider::Provider;
use scar_core::ExitStatus;

use super::Status;
use crate::args::StatsArgs;
use crate::printer::Printer;

pub async fn run<P: Provider>(p: &P, args: &StatsArgs, printer: &Printer) -> Status {
    printer.stats(&p.stats(args.name.as_deref()).await?)?;
    Ok(ExitStatus::Success)
}
