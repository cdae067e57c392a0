//! `scar rm`: one function (`-n`), all (`-a`), or those an FDL file defines (`-f`); on
//! AWS only the caller's, unless `--all-owners`.

use scar_core::provider::{LeftOut, Provider};
use scar_core::Categorized;
use scar_core::ExitStatus;

use super::{context, Failure, Status};
use crate::args::{Cli, Command, RmArgs};
use crate::printer::Printer;
use crate::with_provider;

pub async fn run<P: Provider>(p: &P, args: &RmArgs, printer: &Printer) -> Status {
    let Some(name) = &args.name else {
        return run_all(p, args, printer).await;
    };
    p.remove(name).await?;
    if printer.json {
        printer.json(&serde_json::json!({ "removed": [name] }))?;
    }
    printer.line(format!("Function '{name}' removed."));
    Ok(ExitStatus::Success)
}

/// `rm -a`: every function `ls` lists; what it left (other owners' functions) is counted.
async fn run_all<P: Provider>(p: &P, args: &RmArgs, printer: &Printer) -> Status {
    let names = p.remove_all().await?;
    // What remains is what `rm -a` left out (nothing with --all-owners).
    let left_out = match args.all_owners {
        true => LeftOut::default(),
        false => p.listing().await?.left_out,
    };
    if printer.json {
        printer.json(&serde_json::json!({ "removed": names, "left_out": left_out }))?;
    }
    for name in &names {
        printer.line(format!("Function '{name}' removed."));
    }
    if names.is_empty() {
        printer.line("No scar functions to remove.");
    }
    if left_out.total() > 0 {
        printer.note(format!(
            "{} left alone: `scar rm -a --all-owners` removes them too",
            super::ls::left_out(&left_out)
        ));
    }
    Ok(ExitStatus::Success)
}

/// `rm -f FILE`: removes the functions the file defines (those that exist).
pub async fn run_file(cli: &Cli, args: &RmArgs, printer: &Printer) -> Status {
    let file = args.file.as_deref().unwrap_or(std::path::Path::new(""));
    let mut removed = Vec::new();
    let functions = crate::settings::fdl_functions(file)?;
    let ctx = context(cli, printer)?;
    for f in functions {
        // Each function is removed in its own region, with its own profile.
        let ctx = ctx.for_function(Some(&f));
        let name = f.name;
        let single = Cli {
            command: Command::Rm(RmArgs {
                name: Some(name.clone()),
                all: false,
                file: None,
                all_owners: args.all_owners,
                json: true,
            }),
            ..cli.clone()
        };
        let provider = super::scoped(ctx.provider(&single).await?, args.all_owners);
        let gone = with_provider!(&provider, |p| match p.remove(&name).await {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(Failure::from(e)),
        })?;
        if gone {
            removed.push(name.clone());
            printer.line(format!("Function '{name}' removed."));
        } else {
            printer.line(format!(
                "Function '{name}' does not exist: nothing to remove."
            ));
        }
    }
    if printer.json {
        printer.json(&serde_json::json!({ "removed": removed }))?;
    }
    Ok(ExitStatus::Success)
}
