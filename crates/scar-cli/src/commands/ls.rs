//! `scar ls`: the functions (on AWS the caller's, every owner's with `--all-owners`), or
//! the objects under a bucket folder (`-b`).

use scar_core::bucket::BucketPath;
use scar_core::provider::{LeftOut, Provider};
use scar_core::Categorized;
use scar_core::ExitStatus;

use super::{context, Failure, Status};
use crate::args::{Cli, LsArgs};
use crate::printer::Printer;
use crate::with_provider;

pub async fn run<P: Provider>(p: &P, args: &LsArgs, printer: &Printer) -> Status {
    match &args.bucket {
        Some(bucket) => printer.objects(&p.list_objects(&BucketPath::parse(bucket)?).await?)?,
        None => {
            let listing = p.listing().await?;
            printer.functions(&listing.functions)?;
            if listing.left_out.total() > 0 {
                printer.note(format!(
                    "{} not shown: `scar ls --all-owners` lists them",
                    left_out(&listing.left_out)
                ));
            }
        }
    }
    Ok(ExitStatus::Success)
}

/// `ls -f FILE`: the functions the file defines that exist, each looked up in its own
/// region with its own profile.
pub async fn run_file(cli: &Cli, args: &LsArgs, printer: &Printer) -> Status {
    let file = args.file.as_deref().unwrap_or(std::path::Path::new(""));
    let functions = crate::settings::fdl_functions(file)?;
    let ctx = context(cli, printer)?;
    let mut found = Vec::new();
    for f in &functions {
        let ctx = ctx.for_function(Some(f));
        let provider = super::scoped(ctx.provider(cli).await?, true);
        let info = with_provider!(&provider, |p| match p.function(&f.name).await {
            Ok(info) => Ok(Some(info)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(Failure::from(e)),
        })?;
        found.extend(info);
    }
    printer.functions(&found)?;
    Ok(ExitStatus::Success)
}

/// What a listing left out, in words: `2 functions of other owners and 1 function with no
/// owner recorded (...)`.
pub(super) fn left_out(left_out: &LeftOut) -> String {
    let count = |n: usize, one: &str, many: &str| match n {
        1 => format!("1 function {one}"),
        n => format!("{n} functions {many}"),
    };
    let mut parts = Vec::new();
    if left_out.other_owners > 0 {
        let n = left_out.other_owners;
        parts.push(count(n, "of another owner", "of other owners"));
    }
    if left_out.no_owner > 0 {
        let what = "with no owner recorded (made before scar recorded owners)";
        parts.push(count(left_out.no_owner, what, what));
    }
    parts.join(" and ")
}
