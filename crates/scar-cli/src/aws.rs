//! The `aws` provider's commands.

use crate::args::Cli;
use crate::settings::Context;

/// Runs a command on AWS.
pub async fn run(_ctx: &Context, _cli: &Cli) -> anyhow::Result<i32> {
    Err(anyhow::Error::new(crate::settings::UnsupportedProvider))
}
