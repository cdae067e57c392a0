//! # scar-cli: the `scar` command
//!
//! A thin frontend: [`args`] holds the clap definitions (with SCAR's multi-letter short
//! flags such as `-if` and `-tt`), [`settings`] merges flags, environment and the config
//! file in one place, [`commands`] calls the providers, and [`output`] owns everything the
//! user sees (tables, `--json`, progress bars, exit statuses).
//!
//! **May depend on:** every scar library crate, clap, indicatif, anyhow.
//! **Invariants:** no provider logic here; every error maps to the exit statuses of
//! DESIGN.md §3 in [`output::exit_code`].

pub mod args;
pub mod aws;
pub mod commands;
pub mod output;
pub mod settings;
