//! `scar get`: a bucket folder's objects (or one object) into a local directory.

use scar_core::provider::Provider;
use scar_core::ExitStatus;

use super::{with_transfer_bar, Status};
use crate::args::GetArgs;
use crate::printer::Printer;

pub async fn run<P: Provider>(p: &P, args: &GetArgs, printer: &Printer) -> Status {
    let (at, files) = with_transfer_bar(printer, &args.bucket, async |at, on_transfer| {
        p.get(at, &args.path, on_transfer).await
    })
    .await?;
    if printer.json {
        printer.json(&files)?;
    } else {
        printer.line(format!(
            "{} files copied from {at} to {}.",
            files.len(),
            args.path.display()
        ));
    }
    Ok(ExitStatus::Success)
}
