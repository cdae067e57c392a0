//! `scar`: parse, run, map errors to exit statuses.

use clap::Parser;
use scar_cli::args::{rewrite_scar_flags, Cli};
use scar_cli::output::{exit_code, report};

fn main() {
    let cli = Cli::parse_from(rewrite_scar_flags(std::env::args()));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            std::process::exit(3);
        }
    };
    let status = match runtime.block_on(scar_cli::commands::run(cli)) {
        Ok(status) => status,
        Err(err) => {
            // A closed pipe (`scar log | head`) is not an error worth a message.
            if err
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            {
                0
            } else {
                report(&err);
                exit_code(&err)
            }
        }
    };
    runtime.shutdown_background();
    std::process::exit(status);
}
