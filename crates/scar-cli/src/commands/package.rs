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
    if printer.json {
        printer.json(&report)?;
        return Ok(ExitStatus::Success);
    }
    for w in &report.warnings {
        printer.warn(w);
    }
    printer.line(format!(
        "{} package of '{}' written to {} ({:.1} MB).",
        report.package.as_str(),
        args.name,
        report.path.display(),
        report.size as f64 / 1e6
    ));
    if let Some(digest) = &report.digest {
        printer.line(format!("manifest digest: {digest}"));
    }
    if report.needs_deployment_bucket == Some(true) {
        printer.line("over 50 MB: on AWS it must be deployed through a bucket (-db BUCKET)");
    }
    if report.includes_root == Some(false) {
        printer
            .line("the root does not fit under 250 MB: it is built from the layers at cold start");
    }
    Ok(ExitStatus::Success)
}
