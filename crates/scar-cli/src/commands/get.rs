//! `scar get`: a bucket folder's objects (or one object) into a local directory.

use scar_core::bucket::BucketPath;
use scar_core::provider::Provider;
use scar_core::ExitStatus;

use super::Status;
use crate::args::GetArgs;
use crate::printer::Printer;

pub async fn run<P: Provider>(p: &P, args: &GetArgs, printer: &Printer) -> Status {
    let at = BucketPath::parse(&args.bucket)?;
    let bar = printer.transfer_bar(None);
    let files = p.get(&at, &args.path, &|e| bar.event(e)).await;
    bar.finish();
    let files = files?;
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
