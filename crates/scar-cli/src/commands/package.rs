//! `scar package`: a function's deployment package, written to a file.

use scar_core::provider::{PackageKind, Provider};
use scar_core::ExitStatus;

use super::Status;
use crate::args::PackageArgs;
use crate::printer::Printer;

pub async fn run<P: Provider>(p: &P, args: &PackageArgs, printer: &Printer) -> Status {
    let kind = match args.package {
        crate::args::PackageKind::Image => PackageKind::Image,
        crate::args::PackageKind::Zip => PackageKind::Zip,
    };
    let report = p
        .package(&args.name, kind, &args.output, &printer.bars())
        .await?;
    printer.package(&args.name, &report)?;
    Ok(ExitStatus::Success)
}
