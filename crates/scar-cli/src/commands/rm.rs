//! `scar rm`: one function (`-n`), all (`-a`), or those an FDL file defines (`-f`).

use scar_core::provider::Provider;
use scar_core::Categorized;
use scar_core::ExitStatus;

use super::{context, Failure, Status};
use crate::args::{Cli, Command, RmArgs};
use crate::printer::Printer;
use crate::with_provider;

pub async fn run<P: Provider>(p: &P, args: &RmArgs, printer: &Printer) -> Status {
    let names = match &args.name {
        Some(name) => {
            p.remove(name).await?;
            vec![name.clone()]
        }
        None => p.remove_all().await?,
    };
    report(&names, printer)?;
    if names.is_empty() && args.name.is_none() {
        printer.line("No scar functions to remove.");
    }
    Ok(ExitStatus::Success)
}

fn report(names: &[String], printer: &Printer) -> Result<(), crate::printer::OutputError> {
    if printer.json {
        return printer.json(&serde_json::json!({ "removed": names }));
    }
    for name in names {
        printer.line(format!("Function '{name}' removed."));
    }
    Ok(())
}

/// `rm -f FILE`: removes the functions the file defines (those that exist).
pub async fn run_file(cli: &Cli, args: &RmArgs, printer: &Printer) -> Status {
    let file = args.file.as_deref().unwrap_or(std::path::Path::new(""));
    let mut removed = Vec::new();
    let names = crate::settings::fdl_names(file)?;
    let ctx = context(cli, printer)?;
    for name in names {
        let single = Cli {
            command: Command::Rm(RmArgs {
                name: Some(name.clone()),
                all: false,
                file: None,
                json: true,
            }),
            ..cli.clone()
        };
        let provider = ctx.provider(&single).await?;
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
