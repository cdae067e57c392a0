//! [`LocalProvider`]: functions on this machine.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use scar_core::event::Response;
use scar_core::{ExecutionMode, FunctionSpec};

use crate::buckets::Buckets;
use crate::init::Initialized;
use crate::invocation::Invocation;
use crate::state::{Layout, StoredFunction};
use crate::warm::WarmPool;
use crate::LocalError;

/// The provider's name, as users select it (`--provider local`).
pub const PROVIDER_NAME: &str = "local";

/// The local provider: functions, logs and sandboxes under one scar home.
pub struct LocalProvider {
    layout: Layout,
    supervisor: PathBuf,
    /// The arm64 supervisor, for arm64 functions on another machine (see
    /// [`crate::find_supervisor_aarch64`]).
    supervisor_aarch64: Option<PathBuf>,
    /// The proot that `zip` packages carry (see [`crate::find_proot`]).
    proot: Option<PathBuf>,
    region: String,
    warm: WarmPool,
    pub(crate) buckets: Buckets,
    /// Set once the user has been told that memory limits are not enforced.
    memory_warned: AtomicBool,
    /// Set once the user has been told that sandboxes have no outbound network.
    network_warned: AtomicBool,
    /// Limits and strictness of image extraction.
    extract: scar_packager::ExtractOptions,
    /// Where images are pulled from first.
    pub(crate) mirrors: scar_packager::RegistryMirrors,
    /// Invocations at once when a launch does not say.
    /// 0: the number of cores, looked up when first needed (not by every command).
    concurrency: usize,
    /// The program that runs work outliving the caller (see [`crate::BackgroundJob`]).
    background: Option<PathBuf>,
    /// Where the provider's notices go (the library prints nothing).
    notices: Box<dyn Fn(&str) + Send + Sync>,
    /// Whether a synchronous invocation goes to a running `scar serve` (see `handoff`).
    warm_reuse: bool,
}

impl std::fmt::Debug for LocalProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalProvider")
            .field("home", &self.layout.home)
            .field("supervisor", &self.supervisor)
            .finish()
    }
}

impl LocalProvider {
    /// A provider keeping its state under `home`, running `supervisor` (a static
    /// `bootstrap`, see [`crate::find_supervisor`]) in its sandboxes.
    pub fn new(
        home: impl Into<PathBuf>,
        supervisor: impl Into<PathBuf>,
        region: impl Into<String>,
    ) -> Self {
        let home_dir: PathBuf = home.into();
        LocalProvider {
            layout: Layout {
                home: home_dir.clone(),
            },
            supervisor: supervisor.into(),
            supervisor_aarch64: None,
            proot: None,
            region: region.into(),
            warm: WarmPool::default(),
            buckets: Buckets::new(home_dir.join("buckets")),
            memory_warned: AtomicBool::new(false),
            network_warned: AtomicBool::new(false),
            extract: scar_packager::ExtractOptions::default(),
            mirrors: scar_packager::RegistryMirrors::default(),
            concurrency: 0,
            background: None,
            notices: Box::new(|_| {}),
            warm_reuse: false,
        }
    }

    /// The URL of the running `scar serve`'s HTTP listener on this home, if one runs.
    pub fn serve_url(&self) -> Option<String> {
        let text = std::fs::read(self.layout.serve_file()).ok()?;
        let serve: crate::http::ServeFile = serde_json::from_slice(&text).ok()?;
        // A server that died without cleaning up (SIGKILL) is not running.
        std::path::Path::new(&format!("/proc/{}", serve.pid))
            .exists()
            .then_some(serve.url)
    }

    /// Warm reuse: a synchronous [`invoke`](scar_core::provider::Provider::invoke) is
    /// handed to the `scar serve` running on this home, when one runs, and runs in one of
    /// its warm sandboxes; without one it runs in a sandbox of its own, as it does when
    /// this is off (the default).
    pub fn with_warm_reuse(mut self, on: bool) -> Self {
        self.warm_reuse = on;
        self
    }

    pub(crate) fn warm_reuse(&self) -> bool {
        self.warm_reuse
    }

    /// Invocations at once when a launch does not say (default: the number of cores).
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        if concurrency > 0 {
            self.concurrency = concurrency;
        }
        self
    }

    /// The concurrency bound: `flag` when given (and not 0), else the provider's.
    pub(crate) fn concurrency(&self, flag: Option<usize>) -> usize {
        let cores = || std::thread::available_parallelism().map_or(2, |n| n.get());
        (flag.filter(|c| *c > 0))
            .or((self.concurrency > 0).then_some(self.concurrency))
            .unwrap_or_else(cores)
    }

    /// Work that must outlive the calling process (`invoke_async`, `start_inputs`) is run
    /// by `program` given [`crate::BackgroundJob::to_args`]; the frontend passes its own
    /// executable, which hands such arguments to [`LocalProvider::run_background`].
    /// Without one, those calls fail with [`scar_core::provider::Unsupported`].
    pub fn with_background(mut self, program: impl Into<PathBuf>) -> Self {
        self.background = Some(program.into());
        self
    }

    pub(crate) fn background(&self) -> Option<&Path> {
        self.background.as_deref()
    }

    /// Notices for the user (memory limits not enforced, ...) go to `f`.
    pub fn with_notices(mut self, f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.notices = Box::new(f);
        self
    }

    /// Extracts images within `limits` (default: [`scar_packager::ExtractLimits::default`]).
    pub fn with_extract_limits(mut self, limits: scar_packager::ExtractLimits) -> Self {
        self.extract.limits = limits;
        self
    }

    /// Pulls a registry's images from its `mirrors` first (default: none).
    pub fn with_registry_mirrors(mut self, mirrors: scar_packager::RegistryMirrors) -> Self {
        self.mirrors = mirrors;
        self
    }

    /// With `strict`, an image with a hostile entry (a path out of the root, an absolute
    /// name, a hard link out) fails `init` instead of the entry being skipped and reported.
    pub fn with_strict_extraction(mut self, strict: bool) -> Self {
        self.extract.strict = strict;
        self
    }

    pub(crate) fn extract_options(&self) -> &scar_packager::ExtractOptions {
        &self.extract
    }

    /// Puts `proot` into the `zip` packages this provider builds, so that they run on
    /// Lambda too (locally the sandbox enters the image's root, and proot is not used).
    pub fn with_proot(mut self, proot: Option<PathBuf>) -> Self {
        self.proot = proot;
        self
    }

    pub(crate) fn proot(&self) -> Option<&Path> {
        self.proot.as_deref()
    }

    /// The local buckets.
    pub fn buckets(&self) -> &Buckets {
        &self.buckets
    }

    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    pub(crate) fn region(&self) -> &str {
        &self.region
    }

    pub(crate) fn supervisor(&self) -> &Path {
        &self.supervisor
    }

    /// Runs arm64 functions with `supervisor` (a static aarch64 `bootstrap`), where this
    /// machine is not arm64 itself.
    pub fn with_supervisor_aarch64(mut self, supervisor: Option<PathBuf>) -> Self {
        self.supervisor_aarch64 = supervisor;
        self
    }

    pub(crate) fn supervisor_aarch64(&self) -> Option<&Path> {
        self.supervisor_aarch64.as_deref()
    }

    /// The supervisor for an image of `architecture` (OCI's name): the arm64 one for an
    /// arm64 image on another machine, else this provider's.
    pub(crate) fn supervisor_for(&self, architecture: &str) -> Result<&Path, LocalError> {
        let arm64 = scar_core::Architecture::Arm64;
        if architecture != arm64.oci() || scar_core::Architecture::host() == Some(arm64) {
            return Ok(&self.supervisor);
        }
        self.supervisor_aarch64().ok_or_else(|| {
            LocalError::NoSupervisor("an arm64 function needs the arm64 supervisor: set SCAR_SUPERVISOR_AARCH64, or put it at aarch64/bootstrap beside the supervisor (`cargo xtask build-supervisor` builds it with the aarch64-unknown-linux-musl target)".into())
        })
    }

    /// Tells the user `text` (see [`LocalProvider::with_notices`]).
    pub(crate) fn notice(&self, text: &str) {
        (self.notices)(text);
    }

    /// Tells the user that memory limits are not enforced on this machine (`why`): once.
    pub(crate) fn warn_memory_not_enforced(&self, why: &str) {
        if !self.memory_warned.swap(true, Ordering::Relaxed) {
            self.notice(&format!(
                "memory limits are not enforced on this machine ({why})"
            ));
        }
    }

    /// Tells the user that sandboxes have no outbound network (`why`): once.
    pub(crate) fn warn_no_outbound_network(&self, why: &str) {
        if !self.network_warned.swap(true, Ordering::Relaxed) {
            self.notice(&format!(
                "functions have no outbound network on this machine: {why}; or give them none explicitly with `--network none`"
            ));
        }
    }

    /// Drops the warm sandboxes of `name` (they are killed on drop).
    pub(crate) fn drop_warm(&self, name: &str) {
        drop(self.warm.remove(&RunAs::pools(name)));
    }

    /// Takes out the warm sandboxes idle for `idle` or longer (see [`WarmPool::reclaim`]).
    pub(crate) fn reclaim_idle(&self, idle: std::time::Duration) -> Vec<crate::warm::Sandbox> {
        self.warm.reclaim(idle)
    }

    /// Stops every warm sandbox and waits for them to go.
    pub(crate) async fn stop_sandboxes(&self) {
        for mut sandbox in self.warm.drain() {
            sandbox.kill().await;
        }
    }

    /// Invokes a function with a raw event (a direct payload or an S3 event), as its
    /// execution mode says: on Lambda's terms, as a Batch job (the job's memory, no
    /// Lambda cap on the timeout), or on Lambda's terms handing the event over to a Batch
    /// job when the supervisor reaches the threshold (`lambda-batch`).
    pub(crate) async fn invoke_event(
        &self,
        stored: &StoredFunction,
        event: Bytes,
        request_id: Option<String>,
    ) -> Result<Response, LocalError> {
        let spec = &stored.info.spec;
        let lambda = RunAs::lambda(spec);
        let batch = RunAs::batch(spec);
        match spec.execution_mode {
            ExecutionMode::Lambda => self.invoke_as(stored, event, request_id, &lambda).await,
            ExecutionMode::Batch => self.invoke_as(stored, event, request_id, &batch).await,
            ExecutionMode::LambdaBatch => {
                let first = self
                    .invoke_as(stored, event.clone(), request_id, &lambda)
                    .await?;
                if !first.handed_over() {
                    return Ok(first);
                }
                let mut job = self.invoke_as(stored, event, None, &batch).await?;
                let mut output = format!(
                    "[scar: request {} reached the timeout threshold on Lambda's terms and was handed over to a Batch job, request {}]\n",
                    first.request_id, job.request_id
                )
                .into_bytes();
                output.extend(job.output_bytes());
                job.set_output(output);
                job.handed_over_from = Some(first.request_id);
                Ok(job)
            }
        }
    }

    /// One invocation in a sandbox run as `run` says: a warm one, or a new one taken
    /// through its init phase; back to the warm pool after, if it can serve again.
    async fn invoke_as(
        &self,
        stored: &StoredFunction,
        event: Bytes,
        request_id: Option<String>,
        run: &RunAs,
    ) -> Result<Response, LocalError> {
        let spec = &stored.info.spec;
        let pool = run.pool(stored);
        let sandbox = match self.warm.take(&pool) {
            Some(sandbox) => sandbox,
            None => self.start_sandbox(stored, run).await?,
        };
        let request_id = request_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let (sandbox, init) = match self.initialize(sandbox, stored, run, &request_id).await? {
            Initialized::Ready(sandbox, init) => (sandbox, init),
            Initialized::Failed(response) => return Ok(response),
        };
        let invocation = Invocation {
            spec,
            run,
            function_arn: format!(
                "arn:aws:lambda:{}:000000000000:function:{}",
                self.region, spec.name
            ),
            request_id,
            init,
        };
        let (response, reusable) = invocation.run(sandbox, event).await?;
        if let Some(sandbox) = reusable {
            self.warm.put(&pool, sandbox);
        }
        Ok(response)
    }
}

/// The terms a sandbox runs on: Lambda's (the function's memory and timeout) or a Batch
/// job's (the `batch:` block's memory, the function's timeout without Lambda's cap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunAs {
    pub batch: bool,
    pub memory_mb: u32,
    pub timeout_s: u32,
}

impl RunAs {
    fn lambda(spec: &FunctionSpec) -> RunAs {
        RunAs {
            batch: false,
            memory_mb: spec.memory_mb,
            timeout_s: spec.timeout_s,
        }
    }

    fn batch(spec: &FunctionSpec) -> RunAs {
        let job = spec.batch.clone().unwrap_or_default();
        RunAs {
            batch: true,
            memory_mb: job.memory_mb,
            // A `batch` function's timeout is its job's; a job handed over from Lambda
            // runs as long as AWS Batch lets it.
            timeout_s: match spec.execution_mode {
                ExecutionMode::Batch => spec.timeout_s,
                _ => scar_core::spec::BATCH_TIMEOUT_MAX,
            },
        }
    }

    /// The warm pool these sandboxes go back to: one per function, definition (see
    /// [`StoredFunction::revision`]) and terms: `NAME[#batch]@REVISION`.
    pub fn pool(&self, stored: &StoredFunction) -> String {
        format!(
            "{}@{}",
            pool(&stored.info.spec.name, self.batch),
            stored.revision
        )
    }

    /// Every pool of `function`'s sandboxes, without their revisions (see
    /// [`WarmPool::remove`](crate::warm::WarmPool::remove)).
    fn pools(function: &str) -> [String; 2] {
        [false, true].map(|batch| pool(function, batch))
    }
}

fn pool(function: &str, batch: bool) -> String {
    if batch {
        format!("{function}#batch")
    } else {
        function.to_string()
    }
}
