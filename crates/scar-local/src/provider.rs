//! [`LocalProvider`]: functions on this machine.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use scar_core::config::ProviderKind;
use scar_core::event::{timed_out_message, Ending, ErrorPayload, FunctionError, Response};
use scar_core::lambda::{log_group, Report, ReportStatus};
use scar_core::provider::SurfaceError;
use scar_core::provider::{FunctionInfo, ImageInput, PackageKind};
use scar_core::{ExecutionMode, FunctionSpec, Runtime};
use scar_packager::{BlobCache, ImageSource, Progress};
use tokio::sync::oneshot;

use crate::api::{Answer, Init, Pending, RuntimeApi};
use crate::buckets::Buckets;
use crate::cgroup::MemoryCgroup;
use crate::logs::LogStream;
use crate::state::{ensure_mount_point, Launch, Layout, StoredFunction};
use crate::{sandbox, LocalError};

/// The provider's name, as users select it (`--provider local`).
pub const PROVIDER_NAME: &str = "local";

/// Mount points every root gets, so that sandboxes can mount over them.
const MOUNT_POINTS: &[&str] = &["tmp", "proc", "dev", "opt/scar", "var/task"];

/// Lambda's init phase: the runtime's time from start to its first `next`, not charged to
/// the first invocation's timeout. Past it the init starts again, charged to the invocation.
const INIT_LIMIT: Duration = Duration::from_secs(10);

/// A warm sandbox: the supervisor running, waiting on its Runtime API.
struct Sandbox {
    child: tokio::process::Child,
    api: RuntimeApi,
    log: LogStream,
    /// When it started, until its first invocation: the init phase is waited for then.
    started: Option<Instant>,
    /// Declared after `child`, so that it is removed after the sandbox is killed.
    cgroup: Option<MemoryCgroup>,
}

/// The local provider: functions, logs and sandboxes under one scar home.
pub struct LocalProvider {
    layout: Layout,
    supervisor: PathBuf,
    /// The proot that `zip` packages carry (see [`crate::find_proot`]).
    proot: Option<PathBuf>,
    region: String,
    warm: Mutex<HashMap<String, Vec<Sandbox>>>,
    pub(crate) buckets: Buckets,
    /// Set once the user has been told that memory limits are not enforced.
    memory_warned: std::sync::atomic::AtomicBool,
    /// Limits and strictness of image extraction.
    extract: scar_packager::ExtractOptions,
    /// Invocations at once when a launch does not say.
    concurrency: usize,
    /// The program that runs work outliving the caller (see [`crate::BackgroundJob`]).
    background: Option<PathBuf>,
    /// Where the provider's notices go (the library prints nothing).
    notices: Box<dyn Fn(&str) + Send + Sync>,
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
            proot: None,
            region: region.into(),
            warm: Mutex::new(HashMap::new()),
            buckets: Buckets::new(home_buckets(&home_dir)),
            memory_warned: std::sync::atomic::AtomicBool::new(false),
            extract: scar_packager::ExtractOptions::default(),
            concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            background: None,
            notices: Box::new(|_| {}),
        }
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
        flag.filter(|c| *c > 0).unwrap_or(self.concurrency)
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

    /// Creates a function: pulls the image into the cache, extracts its root once, and
    /// records the function. On any failure nothing new is left in the scar home.
    pub(crate) async fn create_function(
        &self,
        spec: FunctionSpec,
        image: &ImageInput,
        package: Option<PackageKind>,
        progress: &dyn Progress,
    ) -> Result<FunctionInfo, LocalError> {
        spec.validate()?;
        if self.layout.function_dir(&spec.name).exists() {
            return Err(SurfaceError::Exists(spec.name).into());
        }
        let others = self.layout.list()?;
        for input in &spec.inputs {
            for other in &others {
                if let Some(theirs) = other.info.spec.inputs.iter().find(|i| i.overlaps(input)) {
                    return Err(SurfaceError::InputTaken {
                        input: input.to_string(),
                        theirs: theirs.to_string(),
                        function: other.info.spec.name.clone(),
                    }
                    .into());
                }
            }
        }
        if spec.runtime == Runtime::Image && package.is_some() {
            return Err(LocalError::Surface(
                scar_core::provider::SurfaceError::Unsupported(scar_core::provider::Unsupported {
                    provider: PROVIDER_NAME,
                    what: "--package with --runtime image".into(),
                    instead: "leave out --package: the image runs as it is".into(),
                }),
            ));
        }
        let source = match image {
            ImageInput::Reference(r) => ImageSource::detect(r)?,
            ImageInput::Archive(p) => ImageSource::from_archive(p)?,
        };
        let cache_dir = self.layout.cache();
        let name = spec.name.clone();
        let before = blob_files(&cache_dir);
        let result = self.init_from(spec, &source, package, progress).await;
        if result.is_err() {
            let _ = std::fs::remove_dir_all(self.layout.partial_dir(&name));
            // Blobs fetched for a failed init are leftovers too.
            for path in blob_files(&cache_dir).difference(&before) {
                let _ = std::fs::remove_file(path);
            }
        }
        result
    }

    async fn init_from(
        &self,
        spec: FunctionSpec,
        source: &ImageSource,
        package: Option<PackageKind>,
        progress: &dyn Progress,
    ) -> Result<FunctionInfo, LocalError> {
        let cache = BlobCache::new(self.layout.cache());
        let image = scar_packager::pull(source, &cache, progress).await?;
        if spec.runtime == Runtime::Image
            && image.config.entrypoint.is_empty()
            && image.config.cmd.is_empty()
        {
            return Err(LocalError::NoRuntime(spec.name));
        }
        let mut stored = StoredFunction {
            info: FunctionInfo {
                spec,
                provider: ProviderKind::Local,
                package,
                image_digest: image.manifest_digest.clone(),
                created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            },
            root: PathBuf::new(),
            image_config: image.config.clone(),
            pulled: Some(image.clone()),
            launch: Launch::Root,
        };
        let function = {
            let mut f = stored.function_file();
            f.image = image.config.clone();
            f
        };
        let buckets = stored.info.spec.buckets();
        let name = stored.info.spec.name.clone();
        match package {
            None => {
                let root = self.layout.root_for(&image.manifest_digest);
                if let Some(roots) = root.parent() {
                    // Staging of an init that was killed: nobody will finish it.
                    scar_packager::Extractor::sweep_stale_partials(roots);
                }
                if !root.exists() {
                    scar_packager::Extractor::new(self.extract)
                        .extract_image(&image, &cache, &root, progress)?;
                }
                for rel in MOUNT_POINTS {
                    ensure_mount_point(&root, rel)?;
                }
                stored.root = root;
            }
            Some(PackageKind::Image) => {
                stored.root = self
                    .prepare_image_package(&image, &function, &buckets, progress)
                    .await?;
                stored.launch = Launch::Image;
            }
            Some(PackageKind::Zip) => {
                let partial = self.layout.partial_dir(&name);
                let (launch, root) = self
                    .prepare_zip_package(
                        &image,
                        &function,
                        &buckets,
                        &partial,
                        &self.layout.function_dir(&name),
                        progress,
                    )
                    .await?;
                stored.launch = launch;
                stored.root = root;
            }
        }
        for bucket in &buckets {
            self.buckets.create(bucket)?;
        }
        self.layout.create(&stored, &self.supervisor)?;
        Ok(stored.info)
    }

    pub(crate) fn supervisor(&self) -> &Path {
        &self.supervisor
    }

    /// Drops the warm sandboxes of `name` (they are killed on drop).
    pub(crate) fn drop_warm(&self, name: &str) {
        let gone = self
            .warm
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        let batch = self
            .warm
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&format!("{name}#batch"));
        drop((gone, batch));
    }

    /// Stops every warm sandbox and waits for them to go.
    pub(crate) async fn stop_sandboxes(&self) {
        let all: Vec<Sandbox> = {
            let mut warm = self.warm.lock().unwrap_or_else(|e| e.into_inner());
            warm.drain().flat_map(|(_, v)| v).collect()
        };
        for mut sandbox in all {
            let _ = sandbox.child.kill().await;
        }
    }

    async fn start_sandbox(
        &self,
        stored: &StoredFunction,
        run: &RunAs,
    ) -> Result<Sandbox, LocalError> {
        let spec = &stored.info.spec;
        let api = RuntimeApi::start()
            .await
            .map_err(LocalError::io("cannot listen on", "127.0.0.1"))?;
        let logs_dir = self.layout.logs(&spec.name);
        let log = LogStream::create(&logs_dir)?;
        let env = vec![
            ("AWS_LAMBDA_RUNTIME_API".into(), api.address.clone()),
            ("AWS_LAMBDA_FUNCTION_NAME".into(), spec.name.clone()),
            (
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(),
                run.memory_mb.to_string(),
            ),
            ("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into()),
            ("AWS_LAMBDA_LOG_GROUP_NAME".into(), log_group(&spec.name)),
            ("AWS_LAMBDA_LOG_STREAM_NAME".into(), log.name.clone()),
            ("AWS_REGION".into(), self.region.clone()),
            ("AWS_DEFAULT_REGION".into(), self.region.clone()),
            ("_HANDLER".into(), "scar".into()),
            ("LAMBDA_TASK_ROOT".into(), "/var/task".into()),
            ("LAMBDA_RUNTIME_DIR".into(), "/var/runtime".into()),
            ("AWS_LAMBDA_INITIALIZATION_TYPE".into(), "on-demand".into()),
            ("TZ".into(), ":UTC".into()),
            (
                "PATH".into(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ),
        ];
        let mut env = env;
        // The function's own (Lambda) variables are the supervisor's; the container's are
        // in its function file. Storage providers' secrets go to the supervisor alone.
        env.extend(spec.lambda_environment.clone());
        if !spec.storage_providers.is_empty() {
            env.push((
                scar_core::contract::STORAGE_PROVIDERS_VAR.into(),
                serde_json::to_string(&spec.storage_providers).unwrap_or_default(),
            ));
        }
        let mut binds = Vec::new();
        if run.batch {
            // A Batch job: the job's variables, and the mark the supervisor knows it by.
            if let Some(batch) = &spec.batch {
                env.extend(batch.environment.clone());
            }
            env.push((scar_core::contract::BATCH_JOB_VAR.into(), "1".into()));
            if spec.batch.as_ref().is_some_and(|b| b.enable_gpu) {
                let gpus = gpu_devices();
                if gpus.is_empty() {
                    (self.notices)(&format!(
                        "function '{}' asks for a GPU (enable_gpu) and this machine has none (/dev/nvidia*): its job runs on the CPU",
                        spec.name
                    ));
                }
                for dev in gpus {
                    let inside = dev
                        .strip_prefix("/")
                        .unwrap_or(&dev)
                        .to_string_lossy()
                        .into_owned();
                    binds.push((dev, inside, false));
                }
            }
        }
        let opt_dir = self.layout.opt_dir(&spec.name);
        let (opt, program) = match &stored.launch {
            Launch::Root => (
                Some(opt_dir.as_path()),
                scar_core::contract::SUPERVISOR_PATH,
            ),
            Launch::Image => (None, scar_core::contract::SUPERVISOR_PATH),
            Launch::Zip { task, .. } => {
                self.build_cold_root(stored)?;
                binds.push((task.clone(), "var/task".to_string(), true));
                // The supervisor finds function.json in $LAMBDA_TASK_ROOT, as on Lambda;
                // unlike Lambda, the sandbox has already entered the image's root.
                env.push((scar_core::contract::CONTAINER_ROOT_VAR.into(), "/".into()));
                (None, "/var/task/bootstrap")
            }
        };
        let buckets = spec.buckets();
        if !buckets.is_empty() {
            env.push((
                scar_core::contract::STORAGE_DIR_VAR.into(),
                scar_core::contract::STORAGE_DIR.into(),
            ));
        }
        for bucket in &buckets {
            binds.push((
                self.buckets.dir(bucket),
                format!("opt/scar/buckets/{bucket}"),
                false,
            ));
        }
        let cgroup =
            match MemoryCgroup::create(&uuid::Uuid::new_v4().simple().to_string(), run.memory_mb) {
                Ok(c) => Some(c),
                Err(why) => {
                    if !self
                        .memory_warned
                        .swap(true, std::sync::atomic::Ordering::Relaxed)
                    {
                        (self.notices)(&format!(
                            "memory limits are not enforced on this machine ({why})"
                        ));
                    }
                    None
                }
            };
        let handle = log
            .handle()
            .map_err(LocalError::io("cannot open the log stream", &logs_dir))?;
        // A function whose runtime is its image's own runs as Lambda runs a container
        // image: ENTRYPOINT + CMD, the image's Env under Lambda's variables, `_HANDLER` from
        // CMD, in the image's WorkingDir; scar's supervisor is not mounted.
        let (opt, program, args, workdir, env) = match spec.runtime {
            Runtime::Scar => (opt, program.to_string(), Vec::new(), None, env),
            Runtime::Image => {
                // Buckets are the supervisor's, under /opt/scar, which is not mounted.
                binds.retain(|(_, inside, _)| !inside.starts_with("opt/scar/"));
                let image = &stored.image_config;
                let mut command = image.entrypoint.iter().chain(&image.cmd).cloned();
                let program = command
                    .next()
                    .ok_or_else(|| LocalError::NoRuntime(spec.name.clone()))?;
                let mut all: Vec<(String, String)> = image
                    .env
                    .iter()
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                let image_path = all.iter().any(|(k, _)| k == "PATH");
                all.extend(
                    env.into_iter()
                        .filter(|(k, _)| !(image_path && k == "PATH") && k != "_HANDLER"),
                );
                if let Some(handler) = image.cmd.first() {
                    all.push(("_HANDLER".into(), handler.clone()));
                }
                all.extend(spec.environment.clone());
                (
                    None,
                    program,
                    command.collect(),
                    image.working_dir.clone().filter(|w| !w.is_empty()),
                    all,
                )
            }
        };
        let started = Instant::now();
        let child = sandbox::spawn(sandbox::SandboxSpec {
            root: &stored.root,
            opt_dir: opt,
            program: &program,
            args,
            workdir: workdir.as_deref(),
            env,
            log: handle,
            tmp_mb: 512,
            binds,
            cgroup_procs: cgroup.as_ref().map(MemoryCgroup::procs_file),
        })
        .map_err(|source| LocalError::Sandbox {
            function: spec.name.clone(),
            hint: sandbox_hint(&source),
            source,
        })?;
        Ok(Sandbox {
            child,
            api,
            log,
            started: Some(started),
            cgroup,
        })
    }

    fn take_warm(&self, name: &str) -> Option<Sandbox> {
        let mut warm = self.warm.lock().unwrap_or_else(|e| e.into_inner());
        warm.get_mut(name).and_then(Vec::pop)
    }

    fn put_warm(&self, name: &str, sandbox: Sandbox) {
        let mut warm = self.warm.lock().unwrap_or_else(|e| e.into_inner());
        warm.entry(name.to_string()).or_default().push(sandbox);
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

    /// One invocation in a sandbox run as `run` says.
    async fn invoke_as(
        &self,
        stored: &StoredFunction,
        event: Bytes,
        request_id: Option<String>,
        run: &RunAs,
    ) -> Result<Response, LocalError> {
        let spec = &stored.info.spec;
        let pool = run.pool(&spec.name);
        let mut sandbox = loop {
            match self.take_warm(&pool) {
                Some(mut s) => {
                    if matches!(s.child.try_wait(), Ok(None)) {
                        break s;
                    } // else it died while idle: drop it
                }
                None => break self.start_sandbox(stored, run).await?,
            }
        };
        let request_id = request_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        // Lambda's init phase: up to INIT_LIMIT before the first `next`, outside the
        // invocation's clock; past it, the rest of the init is the invocation's.
        let mut init_duration = None;
        if let Some(started) = sandbox.started.take() {
            match wait_init(&mut sandbox, started).await {
                InitEnd::Done => init_duration = Some(started.elapsed()),
                InitEnd::TimedOut => {
                    sandbox.log.line(&format!(
                        "INIT_REPORT Init Duration: {:.2} ms\tPhase: init\tStatus: timeout",
                        started.elapsed().as_secs_f64() * 1000.0
                    ));
                    // As Lambda does: the environment is reset and the init tried again
                    // within the invocation, on its clock.
                    let _ = sandbox.child.kill().await;
                    sandbox = self.start_sandbox(stored, run).await?;
                    sandbox.started = None;
                }
                InitEnd::Failed(error) => {
                    // Lambda returns the init error to the invocation that waited on it.
                    let elapsed = started.elapsed();
                    sandbox
                        .log
                        .line(&format!("START RequestId: {request_id} Version: $LATEST"));
                    sandbox.log.line(&format!("END RequestId: {request_id}"));
                    sandbox.log.line(
                        &Report {
                            request_id: &request_id,
                            duration: elapsed,
                            memory_mb: run.memory_mb,
                            max_memory_mb: max_memory_mb(&sandbox.child),
                            init: None,
                            status: ReportStatus::Error(error.error_type.clone()),
                        }
                        .to_string(),
                    );
                    let _ = sandbox.child.kill().await;
                    return Ok(failed(&request_id, spec, &sandbox, error, false));
                }
                InitEnd::Exited(status) => {
                    // Lambda: the runtime exited before its first `next`.
                    sandbox
                        .log
                        .line(&format!("START RequestId: {request_id} Version: $LATEST"));
                    return Ok(runtime_exited(
                        &request_id,
                        spec,
                        &mut sandbox,
                        &status,
                        started.elapsed(),
                        run.memory_mb,
                    ));
                }
            }
        }
        let timeout = Duration::from_secs(run.timeout_s.into());
        let deadline = SystemTime::now() + timeout;
        let deadline_ms = deadline
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        let (tx, rx) = oneshot::channel();
        sandbox
            .log
            .line(&format!("START RequestId: {request_id} Version: $LATEST"));
        let oom_before = sandbox.cgroup.as_ref().map_or(0, MemoryCgroup::oom_kills);
        let begun = Instant::now();
        let pending = Pending {
            request_id: request_id.clone(),
            event,
            deadline_ms,
            function_arn: format!(
                "arn:aws:lambda:{}:000000000000:function:{}",
                self.region, spec.name
            ),
            answer: tx,
        };
        if sandbox.api.queue.send(pending).await.is_err() {
            return Err(LocalError::SandboxDied {
                function: spec.name.clone(),
                request_id,
                status: "its Runtime API stopped".into(),
            });
        }
        // Stopped at the deadline, as Lambda stops it.
        let answer = tokio::select! {
            answer = rx => answer.ok(),
            status = sandbox.child.wait() => {
                // As Lambda reports a runtime that exits during an invocation.
                return Ok(runtime_exited(
                    &request_id,
                    spec,
                    &mut sandbox,
                    &exit_status_text(status),
                    begun.elapsed(),
                    run.memory_mb,
                ));
            }
            _ = tokio::time::sleep(timeout) => None,
        };
        let duration = begun.elapsed();
        if answer.is_none() {
            sandbox.log.line(&format!(
                "{} {request_id} {}",
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                timed_out_message(run.timeout_s)
            ));
        }
        sandbox.log.line(&format!("END RequestId: {request_id}"));
        let memory_used = sandbox
            .cgroup
            .as_ref()
            .and_then(MemoryCgroup::peak_mb)
            .unwrap_or_else(|| max_memory_mb(&sandbox.child));
        sandbox.log.line(
            &Report {
                request_id: &request_id,
                duration,
                memory_mb: run.memory_mb,
                max_memory_mb: memory_used,
                init: init_duration,
                status: if answer.is_none() {
                    ReportStatus::Timeout
                } else {
                    ReportStatus::Ok
                },
            }
            .to_string(),
        );
        let Some(answer) = answer else {
            // Lambda resets the environment of a timed-out invocation.
            let _ = sandbox.child.kill().await;
            let error = FunctionError::timed_out(&request_id, run.timeout_s);
            return Ok(failed(&request_id, spec, &sandbox, error, true));
        };
        let log_stream = sandbox.log.name.clone();
        let out_of_memory = sandbox
            .cgroup
            .as_ref()
            .is_some_and(|c| c.oom_kills() > oom_before);
        let answered = match answer {
            // scar's supervisor answers with scar's response; any other runtime's answer
            // is the function's result as it is.
            Answer::Response(body) => match serde_json::from_slice::<Response>(&body) {
                Ok(response) => response,
                Err(_) => {
                    let mut raw = Response::new(request_id.clone(), Ending::Exited(0));
                    raw.set_output(body.to_vec());
                    raw
                }
            },
            Answer::Error(error) => {
                let scar = ErrorPayload {
                    error_type: error.error_type.clone(),
                    error_message: error.error_message.clone(),
                };
                match scar.scar_response() {
                    Some(r) => r,
                    None => failed(&request_id, spec, &sandbox, error, false),
                }
            }
            Answer::TooLarge => failed(
                &request_id,
                spec,
                &sandbox,
                FunctionError::response_too_large(),
                false,
            ),
        };
        self.put_warm(&pool, sandbox);
        let mut response = answered;
        if out_of_memory {
            let note = format!(
                "scar: the function ran out of memory: its limit is {} MB (raise it with {})\n",
                run.memory_mb,
                if run.batch {
                    "the batch block's `memory`"
                } else {
                    "-m"
                }
            );
            let mut bytes = response.output_bytes();
            bytes.extend_from_slice(note.as_bytes());
            response.set_output(bytes);
        }
        response.log_group = log_group(&spec.name);
        response.log_stream = log_stream;
        Ok(response)
    }
}

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

/// A failed invocation's response: no exit code, the function error.
/// Lambda's log lines and failed response for a runtime that exited (`status`, as
/// [`exit_status_text`] words it) during an invocation or before its first `next`:
/// `Runtime.ExitError`.
fn runtime_exited(
    request_id: &str,
    spec: &FunctionSpec,
    sandbox: &mut Sandbox,
    status: &str,
    elapsed: Duration,
    memory_mb: u32,
) -> Response {
    let error = FunctionError::runtime_exited(request_id, status);
    sandbox.log.line(&error.error_message);
    sandbox.log.line(&error.error_type);
    sandbox.log.line(&format!("END RequestId: {request_id}"));
    sandbox.log.line(
        &Report {
            request_id,
            duration: elapsed,
            memory_mb,
            max_memory_mb: max_memory_mb(&sandbox.child),
            init: None,
            status: ReportStatus::Error(error.error_type.clone()),
        }
        .to_string(),
    );
    failed(request_id, spec, sandbox, error, false)
}

/// How a runtime ended, as Lambda words it: `exit status 1`, `signal: killed` (or why
/// waiting for it failed).
fn exit_status_text(status: std::io::Result<std::process::ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    let status = match status {
        Ok(status) => status,
        Err(e) => return e.to_string(),
    };
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(9)) => "signal: killed".into(),
        (None, Some(signal)) => format!("signal: {signal}"),
        (None, None) => status.to_string(),
    }
}

fn failed(
    request_id: &str,
    spec: &FunctionSpec,
    sandbox: &Sandbox,
    error: FunctionError,
    timed_out: bool,
) -> Response {
    let error = Some(error);
    let ending = if timed_out {
        Ending::TimedOut { error }
    } else {
        Ending::Unfinished { error }
    };
    Response {
        log_group: log_group(&spec.name),
        log_stream: sandbox.log.name.clone(),
        ..Response::new(request_id, ending)
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
    fn lambda(spec: &scar_core::FunctionSpec) -> RunAs {
        RunAs {
            batch: false,
            memory_mb: spec.memory_mb,
            timeout_s: spec.timeout_s,
        }
    }

    fn batch(spec: &scar_core::FunctionSpec) -> RunAs {
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

    /// The warm pool these sandboxes go back to: one per function and terms.
    fn pool(&self, function: &str) -> String {
        if self.batch {
            format!("{function}#batch")
        } else {
            function.to_string()
        }
    }
}

/// The machine's NVIDIA devices, to pass into a Batch job's sandbox.
fn gpu_devices() -> Vec<PathBuf> {
    let mut devices: Vec<PathBuf> = std::fs::read_dir("/dev")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("nvidia"))
        })
        .collect();
    devices.sort();
    devices
}

fn home_buckets(home: &Path) -> PathBuf {
    home.join("buckets")
}

fn sandbox_hint(err: &std::io::Error) -> &'static str {
    match err.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) | Some(libc::ENOSPC) => {
            " (this machine does not allow unprivileged user namespaces: enable them with `sysctl kernel.unprivileged_userns_clone=1` or `kernel.apparmor_restrict_unprivileged_userns=0`, or run scar where they are allowed)"
        }
        Some(libc::ENOENT) => " (the supervisor is missing from the function: recreate it with `scar rm` and `scar init`)",
        _ => "",
    }
}

/// Peak memory of the sandbox's supervisor (VmHWM of PID 1), in MB.
fn max_memory_mb(middle: &tokio::process::Child) -> u64 {
    let Some(pid) = middle.id() else { return 0 };
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    let Some(init) = children.split_whitespace().next() else {
        return 0;
    };
    let status = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb.div_ceil(1024))
        .unwrap_or(0)
}

fn blob_files(cache: &Path) -> std::collections::BTreeSet<PathBuf> {
    let dir = cache.join("blobs").join("sha256");
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}
