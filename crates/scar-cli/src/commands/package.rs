//! `scar package`: a function's deployment package, written to a file.

use scar_core::provider::Provider;
use scar_core::ExitStatus;

use super::Status;
use crate::args::PackageArgs;
use crate::printer::Printer;

pub async fn run<P: Provider>(p: &P, args: &PackageArgs, printer: &Printer) -> Status {
    let kind = args.package;
    let report = p
        .package(&args.name, kind, &args.output, &printer.bars())
        .await?;
    printer.package(&args.name, &report)?;
    Ok(ExitStatus::Success)
}
