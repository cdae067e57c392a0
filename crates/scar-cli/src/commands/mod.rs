//! One handler per subcommand, each written once against the provider surface
//! ([`scar_core::provider::Provider`]): parse the arguments, call the provider, hand the
//! result to the [`Printer`]. Nothing here knows which provider it runs on.

mod get;
mod init;
mod invoke;
mod log;
mod ls;
mod package;
mod put;
mod rm;
mod run;
mod serve;
mod stats;

use scar_core::bucket::BucketPath;
use scar_core::config::Overrides;
use scar_core::provider::{OnTransfer, Provider};
use scar_core::Categorized;
use scar_core::ExitStatus;

use crate::args::{Cli, Command};
use crate::printer::Printer;
use crate::settings::{AnyProvider, Context};
use crate::with_provider;

/// A command that failed: the error, and the exit status it maps to (through
/// [`Categorized::category`], the same on every provider).
#[derive(Debug)]
pub struct Failure {
    pub status: ExitStatus,
    pub error: anyhow::Error,
    /// What the user can do about it: `help:` lines under the error.
    pub help: Vec<String>,
}

impl<E: Categorized> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure {
            status: e.category().into(),
            help: crate::help::advice(&e),
            error: anyhow::Error::new(e),
        }
    }
}

impl Failure {
    /// Bad input the frontend itself finds (a missing flag): exit status 2.
    pub fn usage(
        message: impl std::fmt::Display + std::fmt::Debug + Send + Sync + 'static,
    ) -> Failure {
        Failure {
            status: ExitStatus::Usage,
            error: anyhow::Error::msg(message),
            help: Vec::new(),
        }
    }

    /// The machine failed `what` (a write to stdout, finding the executable): exit 3.
    pub fn machine(what: &str, error: std::io::Error) -> Failure {
        Failure {
            status: ExitStatus::Provider,
            error: anyhow::Error::new(error).context(what.to_string()),
            help: Vec::new(),
        }
    }

    /// The same failure, said in the context of `what`.
    pub fn context(self, what: impl std::fmt::Display + Send + Sync + 'static) -> Failure {
        Failure {
            status: self.status,
            error: self.error.context(what),
            help: self.help,
        }
    }

    /// Writing to a closed stdout (`scar log | head`): not worth a message.
    pub fn is_broken_pipe(&self) -> bool {
        let pipe = |e: &std::io::Error| e.kind() == std::io::ErrorKind::BrokenPipe;
        self.error
            .downcast_ref::<std::io::Error>()
            .is_some_and(pipe)
            || self
                .error
                .downcast_ref::<crate::printer::OutputError>()
                .is_some_and(|e| pipe(&e.0))
    }
}

/// What a handler returns.
pub type Status = Result<ExitStatus, Failure>;

/// Runs `transfer` (a `put` or a `get` of the objects at `bucket`) with a transfer bar
/// that it reports to, drawn until it ends; the bucket path is parsed first.
async fn with_transfer_bar<T, E: Categorized>(
    printer: &Printer,
    bucket: &str,
    transfer: impl AsyncFnOnce(&BucketPath, OnTransfer<'_>) -> Result<T, E>,
) -> Result<(BucketPath, T), Failure> {
    let at = BucketPath::parse(bucket)?;
    let bar = printer.transfer_bar(None);
    let out = transfer(&at, &|e| bar.event(e)).await;
    bar.finish();
    Ok((at, out?))
}

/// The settings for one command line: its flags over the environment and the config
/// file, whose warnings go to the printer.
pub(crate) fn context(cli: &Cli, printer: &Printer) -> Result<Context, Failure> {
    let mut overrides = Overrides {
        region: cli.region.clone(),
        profile: cli.profile.clone().filter(|p| !p.is_empty()),
        ..Overrides::default()
    };
    if let Command::Init(a) = &cli.command {
        overrides.memory_mb = a.memory;
        overrides.timeout_s = a.time;
        overrides.timeout_threshold_s = a.timeout_threshold;
        overrides.description = a.description.clone();
        overrides.iam_role = a.iam_role.clone();
    }
    if let Command::Run(a) = &cli.command {
        overrides.warm = match (a.warm, a.fresh) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        };
    }
    let ctx = Context::load(
        overrides,
        cli.provider.as_deref(),
        cli.supervisor.clone(),
        cli.proot.clone(),
    )?;
    for w in &ctx.config_warnings {
        printer.warn(w);
    }
    Ok(ctx)
}

fn printer_for(command: &Command) -> Printer {
    match command {
        Command::Init(a) => Printer::new(a.json, a.verbose),
        Command::Run(a) => Printer::new(a.json, a.verbose),
        Command::Ls(a) => Printer::new(a.json, false),
        Command::Rm(a) => Printer::new(a.json, false),
        Command::Log(a) => Printer::new(a.json, false),
        Command::Put(a) => Printer::new(a.json, false),
        Command::Get(a) => Printer::new(a.json, false),
        Command::Invoke(a) => Printer::new(a.json, false),
        Command::Serve(a) => Printer::new(a.json, false),
        Command::Package(a) => Printer::new(a.json, false),
        Command::Stats(a) => Printer::new(a.json, false),
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> (Printer, Status) {
    let printer = printer_for(&cli.command);
    let status = dispatch(&cli, &printer).await;
    (printer, status)
}

async fn dispatch(cli: &Cli, printer: &Printer) -> Status {
    match &cli.command {
        // Each function of an FDL file has settings of its own.
        Command::Init(args) => return init::run(cli, args, printer).await,
        Command::Rm(args) if args.file.is_some() => return rm::run_file(cli, args, printer).await,
        Command::Ls(args) if args.file.is_some() => return ls::run_file(cli, args, printer).await,
        _ => {}
    }
    let ctx = context(cli, printer)?;
    // A function of a definition file is reached in its own region, with its profile.
    let file_function = match &cli.command {
        Command::Run(a) if a.file.is_some() => {
            crate::settings::named_function(a.name.as_deref(), a.file.as_deref())?.1
        }
        Command::Log(a) if a.file.is_some() => {
            crate::settings::named_function(a.name.as_deref(), a.file.as_deref())?.1
        }
        Command::Invoke(a) if a.file.is_some() => {
            crate::settings::named_function(a.name.as_deref(), a.file.as_deref())?.1
        }
        _ => None,
    };
    let ctx = ctx.for_function(file_function.as_ref());
    let all_owners = match &cli.command {
        Command::Ls(a) => a.all_owners,
        Command::Rm(a) => a.all_owners,
        _ => false,
    };
    let provider = scoped(ctx.provider(cli).await?, all_owners);
    if let Command::Serve(args) = &cli.command {
        return serve::run(&provider, args, printer).await;
    }
    let status = with_provider!(&provider, |p| on(p, cli, &ctx, printer).await);
    with_provider!(&provider, |p| p.shutdown().await);
    status
}

/// `provider`, taking every owner's functions with `all_owners` (`--all-owners`): on AWS,
/// where several identities share an account; the local provider has one owner.
pub(crate) fn scoped(provider: AnyProvider, all_owners: bool) -> AnyProvider {
    match provider {
        AnyProvider::Aws(p) => AnyProvider::Aws(p.with_all_owners(all_owners)),
        local @ AnyProvider::Local(_) => local,
    }
}

async fn on<P: Provider>(p: &P, cli: &Cli, ctx: &Context, printer: &Printer) -> Status {
    match &cli.command {
        Command::Run(a) => run::run(p, a, &ctx.settings, printer).await,
        Command::Ls(a) => ls::run(p, a, printer).await,
        Command::Rm(a) => rm::run(p, a, printer).await,
        Command::Log(a) => log::run(p, a, printer).await,
        Command::Put(a) => put::run(p, a, printer).await,
        Command::Get(a) => get::run(p, a, printer).await,
        Command::Invoke(a) => invoke::run(p, a, printer).await,
        Command::Package(a) => package::run(p, a, printer).await,
        Command::Stats(a) => stats::run(p, a, printer).await,
        Command::Init(_) | Command::Serve(_) => {
            unreachable!("dispatched before")
        }
    }
}
