//! # scar-cli: the `scar` command
//!
//! A thin frontend: [`args`] holds the clap definitions (with SCAR's multi-letter short
//! flags such as `-if` and `-tt`), [`settings`] resolves flags, environment and the config
//! file once per command and connects the provider, [`commands`] has one handler per
//! subcommand written once against [`scar_core::provider::Provider`], and [`printer`] owns
//! everything the user sees (tables, `--json`, progress bars, colour).
//!
//! **May depend on:** every scar library crate, clap, indicatif, anyhow.
//! **Invariants:** no provider logic here; every error maps to an exit status through
//! [`scar_core::Categorized::category`]; only [`printer`] writes to stdout
//! and stderr.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod args;
pub mod commands;
pub mod help;
pub mod meta;
pub mod printer;
pub mod settings;
