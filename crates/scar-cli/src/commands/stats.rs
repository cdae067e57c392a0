//! `scar stats`: per function, counts of files and invocation duration percentiles, read
//! from the local provider's records and log streams (what `scar serve`'s dashboard shows).

use scar_core::provider::Unsupported;
use scar_core::ExitStatus;

use super::Status;
use crate::args::StatsArgs;
use crate::printer::Printer;
use crate::settings::AnyProvider;

pub fn run(provider: &AnyProvider, args: &StatsArgs, printer: &Printer) -> Status {
    let local = match provider {
        AnyProvider::Local(local) => local,
        AnyProvider::Aws(_) => {
            return Err(Unsupported {
                provider: scar_aws::PROVIDER_NAME,
                what: "`scar stats`".into(),
                instead: "CloudWatch has each function's invocations, errors and durations (`aws cloudwatch get-metric-statistics --namespace AWS/Lambda`); `scar log` shows the REPORT lines".into(),
            }
            .into())
        }
    };
    let stats = local.stats(args.name.as_deref())?;
    printer.stats(&stats)?;
    Ok(ExitStatus::Success)
}
