//! `scar`: parse, run, map the result to an exit status.

use scar_core::ExitStatus;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // Answered before clap: the version names the supervisors found, and the generators
    // are hidden from the help.
    if scar_cli::meta::wants_version(&args) {
        scar_cli::meta::print_version(&scar_cli::printer::Printer::default());
        return;
    }
    if let Some(generate) = scar_cli::meta::Generate::from_args(&args) {
        let printer = scar_cli::printer::Printer::default();
        let result = generate.map_err(std::io::Error::other);
        if let Err(e) = result.and_then(|g| g.run(&printer)) {
            printer.note(format!("error: {e}"));
            std::process::exit(ExitStatus::Usage.code());
        }
        return;
    }
    // Work the local provider left to a process of its own (`run --async`, `put --async`).
    if let Some(job) = scar_local::BackgroundJob::from_args(&args[1.min(args.len())..]) {
        let runtime = runtime();
        let code = runtime.block_on(scar_cli::settings::run_background(job));
        runtime.shutdown_background();
        std::process::exit(code.code());
    }
    // Before the runtime: `--help` and bad command lines need no threads.
    let cli = scar_cli::args::parse(args);
    let runtime = runtime();
    let (printer, status) = runtime.block_on(scar_cli::commands::run(cli));
    let status = match status {
        Ok(status) => status,
        // A closed pipe (`scar log | head`) is not an error worth a message.
        Err(failure) if failure.is_broken_pipe() => ExitStatus::Success,
        Err(failure) => {
            printer.error(&failure.error, &failure.help);
            failure.status
        }
    };
    runtime.shutdown_background();
    std::process::exit(status.code());
}

/// The async runtime commands run on, or the reason it cannot start (exit status 3).
fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            scar_cli::printer::Printer::default().note(format!("error: cannot start: {e}"));
            std::process::exit(ExitStatus::Provider.code());
        }
    }
}
