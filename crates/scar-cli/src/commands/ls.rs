//! `scar ls`: the functions, or the objects under a bucket folder (`-b`).

use scar_core::bucket::BucketPath;
use scar_core::provider::Provider;
use scar_core::ExitStatus;

use super::Status;
use crate::args::LsArgs;
use crate::printer::Printer;

pub async fn run<P: Provider>(p: &P, args: &LsArgs, printer: &Printer) -> Status {
    match &args.bucket {
        Some(bucket) => printer.objects(&p.list_objects(&BucketPath::parse(bucket)?).await?)?,
        None => printer.functions(&p.list().await?)?,
    }
    Ok(ExitStatus::Success)
}
