//! Lambda's init phase: a new sandbox's runtime starting, up to its first `next`. It is
//! waited for up to [`INIT_LIMIT`] outside the first invocation's clock; past that it is
//! tried again in a new sandbox, on the invocation's clock. An init error, or a runtime that
//! exits first, is the answer of the invocation that waited on it.

use std::time::{Duration, Instant};

use scar_core::event::{FunctionError, Response};

use crate::api::Init;
use crate::invocation::{error_report, exit_status_text, failed, runtime_exited};
use crate::provider::RunAs;
use crate::state::StoredFunction;
use crate::warm::Sandbox;
use crate::{LocalError, LocalProvider};

/// Lambda's init phase: the runtime's time from start to its first `next`, not charged to
/// the first invocation's timeout. Past it the init starts again, charged to the invocation.
const INIT_LIMIT: Duration = Duration::from_secs(10);

/// How a sandbox's init phase ended.
enum InitEnd {
    /// The runtime asked for its first invocation.
    Done,
    /// Not within [`INIT_LIMIT`]: tried again in a new sandbox, on the invocation's clock.
    TimedOut,
    /// The runtime posted `/runtime/init/error`.
    Failed(FunctionError),
    /// The runtime exited first (its status).
    Exited(String),
}

/// What the init phase leaves the invocation waiting on it.
pub(crate) enum Initialized {
    /// A sandbox to run it in, with the init phase's duration when that phase was outside
    /// the invocation's clock (`Init Duration` in its REPORT).
    Ready(Sandbox, Option<Duration>),
    /// The init failed: this is the invocation's response.
    Failed(Response),
}

impl LocalProvider {
    /// Takes `sandbox` (of `stored`, run as `run` says) through its init phase if it has
    /// not had one, for the invocation `request_id`.
    pub(crate) async fn initialize(
        &self,
        mut sandbox: Sandbox,
        stored: &StoredFunction,
        run: &RunAs,
        request_id: &str,
    ) -> Result<Initialized, LocalError> {
        let Some(started) = sandbox.started.take() else {
            return Ok(Initialized::Ready(sandbox, None));
        };
        let spec = &stored.info.spec;
        match wait_init(&mut sandbox, started).await {
            InitEnd::Done => Ok(Initialized::Ready(sandbox, Some(started.elapsed()))),
            InitEnd::TimedOut => {
                sandbox.log.init_timed_out(started.elapsed());
                // As Lambda does: the environment is reset and the init tried again within
                // the invocation, on its clock.
                sandbox.kill().await;
                let mut again = self.start_sandbox(stored, run).await?;
                again.started = None;
                Ok(Initialized::Ready(again, None))
            }
            InitEnd::Failed(error) => {
                // Lambda returns the init error to the invocation that waited on it.
                let elapsed = started.elapsed();
                sandbox.log.start(request_id);
                sandbox.log.end(&error_report(
                    request_id,
                    elapsed,
                    run.memory_mb,
                    &sandbox,
                    &error,
                ));
                sandbox.kill().await;
                Ok(Initialized::Failed(failed(
                    request_id, spec, &sandbox, error, false,
                )))
            }
            InitEnd::Exited(status) => {
                // Lambda: the runtime exited before its first `next`.
                sandbox.log.start(request_id);
                Ok(Initialized::Failed(runtime_exited(
                    request_id,
                    spec,
                    &sandbox,
                    &status,
                    started.elapsed(),
                    run.memory_mb,
                )))
            }
        }
    }
}

/// Waits for the init phase of a sandbox started at `started`.
async fn wait_init(sandbox: &mut Sandbox, started: Instant) -> InitEnd {
    let mut init = sandbox.api.init.clone();
    let limit = tokio::time::Instant::from_std(started + INIT_LIMIT);
    let ended = tokio::select! {
        state = init.wait_for(|i| *i != Init::Running) => state.map(|s| s.clone()).ok(),
        status = sandbox.child.wait() => {
            // An init error posted just before the runtime exited still counts.
            if let Init::Failed(e) = &*sandbox.api.init.borrow() {
                return InitEnd::Failed(e.clone());
            }
            return InitEnd::Exited(exit_status_text(status));
        }
        _ = tokio::time::sleep_until(limit) => None,
    };
    match ended {
        Some(Init::Failed(e)) => InitEnd::Failed(e),
        Some(_) => InitEnd::Done,
        None => InitEnd::TimedOut,
    }
}
