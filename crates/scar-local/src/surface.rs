//! The provider surface ([`Provider`]) on this machine, and the background jobs that let
//! `invoke_async` and `start_inputs` outlive the process that asked for them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use scar_core::bucket::BucketPath;
use scar_core::config::ProviderKind;
use scar_core::event::Payload;
use scar_core::lambda;
use scar_core::progress::Progress;
use scar_core::provider::{
    CreateRequest, FileResult, FunctionInfo, Invocation, LaunchRequest, LogLine, LogQuery,
    OnLaunch, OnTransfer, PackageKind, PackageReport, Provider, PutReport, TransferEvent,
    Unsupported,
};
use scar_core::stats::FunctionStats;

use crate::buckets::ObjectInfo;
use crate::events::{launch_folder, to_launch};
use crate::records::{Record, WorkerLock};
use crate::{LocalError, LocalProvider};

/// How often `follow_logs` looks for new lines.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(250);

/// The first argument of a background job's command line.
const BACKGROUND_ARG: &str = "__scar-local-background";

/// Work the local provider hands to a process of its own, so that it completes after the
/// caller exits: the frontend's executable, started with [`BackgroundJob::to_args`],
/// recognises them with [`BackgroundJob::from_args`] and calls
/// [`LocalProvider::run_background`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackgroundJob {
    /// An asynchronous invocation whose payload waits under the function's `queued/`.
    Invoke {
        function: String,
        request_id: String,
    },
    /// The launcher over a function's pending inputs (`put --async`).
    Launch { function: String, bucket: String },
}

impl BackgroundJob {
    /// The command-line arguments that carry this job.
    pub fn to_args(&self) -> Vec<String> {
        match self {
            BackgroundJob::Invoke {
                function,
                request_id,
            } => vec![
                BACKGROUND_ARG.into(),
                "invoke".into(),
                function.clone(),
                request_id.clone(),
            ],
            BackgroundJob::Launch { function, bucket } => vec![
                BACKGROUND_ARG.into(),
                "launch".into(),
                function.clone(),
                bucket.clone(),
            ],
        }
    }

    /// The job `args` (without the program name) carry, if they carry one.
    pub fn from_args(args: &[String]) -> Option<BackgroundJob> {
        match args {
            [tag, kind, function, x] if tag == BACKGROUND_ARG => match kind.as_str() {
                "invoke" => Some(BackgroundJob::Invoke {
                    function: function.clone(),
                    request_id: x.clone(),
                }),
                "launch" => Some(BackgroundJob::Launch {
                    function: function.clone(),
                    bucket: x.clone(),
                }),
                _ => None,
            },
            _ => None,
        }
    }
}

impl LocalProvider {
    /// Starts `job` in a detached process (its own session, no terminal): it survives the
    /// caller.
    fn spawn_background(&self, job: &BackgroundJob, what: &str) -> Result<(), LocalError> {
        let Some(program) = self.background() else {
            return Err(scar_core::provider::SurfaceError::from(Unsupported {
                provider: crate::PROVIDER_NAME,
                what: what.into(),
                instead: "this program gave the local provider no way to run work in the background (LocalProvider::with_background)".into(),
            })
            .into());
        };
        let mut cmd = std::process::Command::new(program);
        // The job's process resolves its settings as this one did: the same home,
        // supervisor, region and proot (the rest comes from the same environment and
        // config file).
        cmd.args(job.to_args())
            .env("SCAR_HOME", &self.layout().home)
            .env("SCAR_SUPERVISOR", self.supervisor())
            .env("AWS_REGION", self.region());
        if let Some(proot) = self.proot() {
            cmd.env("SCAR_PROOT", proot);
        }
        if let Some(arm64) = self.supervisor_aarch64() {
            cmd.env("SCAR_SUPERVISOR_AARCH64", arm64);
        }
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // SAFETY: setsid is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            use std::os::unix::process::CommandExt as _;
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        cmd.spawn()
            .map_err(LocalError::io("cannot start a background process", program))?;
        Ok(())
    }

    fn queued_payload(&self, function: &str, request_id: &str) -> PathBuf {
        self.layout()
            .function_dir(function)
            .join("queued")
            .join(format!("{request_id}.json"))
    }

    /// Runs a job that [`BackgroundJob::from_args`] recognised, to its end.
    pub async fn run_background(&self, job: BackgroundJob) -> Result<(), LocalError> {
        let result = match &job {
            BackgroundJob::Invoke {
                function,
                request_id,
            } => {
                let path = self.queued_payload(function, request_id);
                let event = std::fs::read(&path).map_err(LocalError::io("cannot read", &path))?;
                let _ = std::fs::remove_file(&path);
                let stored = self.layout().load(function)?;
                self.invoke_event(&stored, Bytes::from(event), Some(request_id.clone()))
                    .await
                    .map(|_| ())
            }
            BackgroundJob::Launch { function, bucket } => {
                let mut request = LaunchRequest::new(function, bucket);
                request.pending_only = true;
                match self.launch(&request, &|_| {}).await {
                    // `scar serve` (or another launcher) runs them already.
                    Err(LocalError::Busy(_)) => Ok(()),
                    other => other.map(|_| ()),
                }
            }
        };
        self.stop_sandboxes().await;
        result
    }
}

/// Lines of `path` from byte `from`, and the offset after the last complete line.
fn new_lines(path: &Path, from: u64) -> (Vec<String>, u64) {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return (Vec::new(), from);
    };
    let mut buf = Vec::new();
    if file.seek(SeekFrom::Start(from)).is_err() || file.read_to_end(&mut buf).is_err() {
        return (Vec::new(), from);
    }
    let complete = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let text = String::from_utf8_lossy(&buf[..complete]);
    (
        text.lines().map(str::to_string).collect(),
        from + complete as u64,
    )
}

impl Provider for LocalProvider {
    type Error = LocalError;

    fn kind(&self) -> ProviderKind {
        ProviderKind::Local
    }

    fn default_concurrency(&self) -> usize {
        self.concurrency(None)
    }

    async fn create(
        &self,
        request: CreateRequest,
        progress: &dyn Progress,
    ) -> Result<FunctionInfo, Self::Error> {
        if let Some(bucket) = &request.deployment_bucket {
            scar_core::bucket::validate_bucket(bucket)?;
        }
        let info = self
            .create_function(request.spec, &request.image, request.package, progress)
            .await?;
        if let Some(bucket) = &request.deployment_bucket {
            self.deploy_through(bucket, &info, progress)?;
        }
        Ok(info)
    }

    async fn list(&self) -> Result<Vec<FunctionInfo>, Self::Error> {
        let url = self.serve_url();
        let infos = self.layout().list()?.into_iter();
        Ok(infos
            .map(|s| with_api_url(s.info, url.as_deref()))
            .collect())
    }

    async fn function(&self, name: &str) -> Result<FunctionInfo, Self::Error> {
        scar_core::spec::validate_name(name)?;
        let info = self.layout().load(name)?.info;
        Ok(with_api_url(info, self.serve_url().as_deref()))
    }

    async fn remove(&self, name: &str) -> Result<(), Self::Error> {
        scar_core::spec::validate_name(name)?;
        self.drop_warm(name);
        self.layout().remove(name)
    }

    async fn remove_all(&self) -> Result<Vec<String>, Self::Error> {
        let mut names = Vec::new();
        for f in self.layout().list()? {
            let name = f.info.spec.name;
            self.drop_warm(&name);
            self.layout().remove(&name)?;
            names.push(name);
        }
        Ok(names)
    }

    async fn invoke(
        &self,
        name: &str,
        payload: &Payload,
        _progress: &dyn Progress,
    ) -> Result<Invocation, Self::Error> {
        let stored = self.layout().load(name)?;
        let event = Bytes::from(serde_json::to_vec(payload).unwrap_or_default());
        payload_fits(
            name,
            event.len(),
            lambda::MAX_SYNC_PAYLOAD_BYTES,
            "InvokeFunction",
        )?;
        let served = match self.warm_reuse().then(|| self.serve_url()).flatten() {
            // Its timeout is the server's to enforce; this only bounds a server that hangs.
            Some(url) => {
                let wait = Duration::from_secs(u64::from(stored.info.spec.timeout_s) + 60);
                crate::handoff::invoke(&url, name, event.clone(), wait)
                    .await
                    .transpose()?
            }
            None => None,
        };
        let response = match served {
            // Noted by the server that ran it.
            Some(response) => response,
            None => {
                let response = self.invoke_event(&stored, event, None).await?;
                let function_dir = self.layout().function_dir(name);
                crate::records::note_invocation(&function_dir, &response);
                response
            }
        };
        // `scar log -ri` reads the invocation's lines; not read here, on the hot path.
        let log_tail = None;
        Ok(Invocation { response, log_tail })
    }

    async fn invoke_async(&self, name: &str, payload: &Payload) -> Result<String, Self::Error> {
        self.layout().load(name)?;
        let bytes = serde_json::to_vec(payload).unwrap_or_default();
        payload_fits(
            name,
            bytes.len(),
            lambda::MAX_ASYNC_PAYLOAD_BYTES,
            "InvokeAsync",
        )?;
        let request_id = uuid::Uuid::new_v4().to_string();
        let path = self.queued_payload(name, &request_id);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(LocalError::io("cannot create", dir))?;
        }
        std::fs::write(&path, bytes).map_err(LocalError::io("cannot write", &path))?;
        let job = BackgroundJob::Invoke {
            function: name.into(),
            request_id: request_id.clone(),
        };
        if let Err(e) = self.spawn_background(&job, "`run --async`") {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        Ok(request_id)
    }

    /// Runs the function once for every object in its input folder in `request.bucket`,
    /// the first synchronously (it warms a sandbox), the rest concurrently under the bound;
    /// outputs that land in another function's input folder run that one in turn.
    async fn launch(
        &self,
        request: &LaunchRequest,
        on_event: OnLaunch<'_>,
    ) -> Result<Vec<FileResult>, Self::Error> {
        let name = request.function.as_str();
        let stored = self.bound(name)?;
        let (input, minio) = launch_folder(&stored.info.spec, &request.bucket)?;
        let function_dir = self.layout().function_dir(name);
        let lock = WorkerLock::try_take(&function_dir, name)?;
        let done = Record::new(&function_dir).load();
        let listed = self
            .input_objects(&stored, &input, minio.as_deref())
            .await?;
        let objects = to_launch(listed, &done, request);
        let concurrency = self.concurrency(request.concurrency);
        self.run_chain(stored, lock, objects, concurrency, true, minio, on_event)
            .await
    }

    async fn await_inputs(
        &self,
        report: &PutReport,
        concurrency: Option<usize>,
        on_event: OnLaunch<'_>,
    ) -> Result<Vec<FileResult>, Self::Error> {
        let Some(function) = &report.function else {
            return Ok(Vec::new());
        };
        let inputs: Vec<ObjectInfo> = report
            .stored
            .iter()
            .filter(|o| report.inputs.contains(&o.key))
            .cloned()
            .collect();
        match self
            .process_objects(
                function,
                inputs.clone(),
                self.concurrency(concurrency),
                on_event,
            )
            .await
        {
            // `scar serve` is processing this bucket: wait for its results.
            Err(LocalError::Busy(_)) => {
                self.wait_for(function, &inputs, Duration::from_secs(24 * 3600), on_event)
                    .await
            }
            other => other,
        }
    }

    async fn start_inputs(&self, report: &PutReport) -> Result<(), Self::Error> {
        let (Some(function), Some(first)) = (&report.function, report.stored.first()) else {
            return Ok(());
        };
        let job = BackgroundJob::Launch {
            function: function.clone(),
            bucket: first.bucket.clone(),
        };
        self.spawn_background(&job, "`put --async`")
    }

    /// Every file's outcome is recorded here: every count is known.
    async fn stats(&self, name: Option<&str>) -> Result<Vec<FunctionStats>, Self::Error> {
        self.read_stats(name)
    }

    async fn logs(&self, name: &str, query: &LogQuery) -> Result<Vec<LogLine>, Self::Error> {
        self.layout().load(name)?;
        crate::logs::read(&self.layout().logs(name), query)
    }

    async fn follow_logs(
        &self,
        name: &str,
        stream: Option<&str>,
        on_line: &mut (dyn FnMut(LogLine) -> bool + Send),
    ) -> Result<(), Self::Error> {
        self.layout().load(name)?;
        let dir = self.layout().logs(name);
        // As on AWS: the last minute's lines first, then what comes.
        let recent = SystemTime::now() - Duration::from_secs(60);
        let mut offsets: HashMap<PathBuf, u64> = HashMap::new();
        for (_, path) in crate::logs::streams(&dir) {
            let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
            if modified.is_some_and(|m| m < recent) {
                let len = std::fs::metadata(&path).map_or(0, |m| m.len());
                offsets.insert(path, len);
            }
        }
        loop {
            for (stream_name, path) in crate::logs::streams(&dir) {
                if stream.is_some_and(|s| s != stream_name) {
                    continue;
                }
                let from = offsets.get(&path).copied().unwrap_or(0);
                let (lines, next) = new_lines(&path, from);
                offsets.insert(path, next);
                for message in lines {
                    let line = LogLine {
                        stream: stream_name.clone(),
                        message,
                    };
                    if !on_line(line) {
                        return Ok(());
                    }
                }
            }
            tokio::time::sleep(FOLLOW_INTERVAL).await;
        }
    }

    async fn put(
        &self,
        at: &BucketPath,
        path: &Path,
        on_transfer: OnTransfer<'_>,
    ) -> Result<PutReport, Self::Error> {
        let stored = self.buckets().put(at, path)?;
        for o in &stored {
            on_transfer(&TransferEvent::Finished {
                key: o.key.clone(),
                size: o.size,
            });
        }
        let functions: Vec<_> = self
            .layout()
            .list()?
            .into_iter()
            .map(|f| f.info.spec)
            .collect();
        Ok(PutReport::new(stored, &functions))
    }

    async fn get(
        &self,
        at: &BucketPath,
        dest: &Path,
        on_transfer: OnTransfer<'_>,
    ) -> Result<Vec<PathBuf>, Self::Error> {
        let files = self.buckets().get(at, dest)?;
        for f in &files {
            let size = std::fs::metadata(f).map_or(0, |m| m.len());
            on_transfer(&TransferEvent::Finished {
                key: f.display().to_string(),
                size,
            });
        }
        Ok(files)
    }

    async fn list_objects(&self, at: &BucketPath) -> Result<Vec<ObjectInfo>, Self::Error> {
        self.buckets().list(at)
    }

    async fn package(
        &self,
        name: &str,
        kind: PackageKind,
        dest: &Path,
        progress: &dyn Progress,
    ) -> Result<PackageReport, Self::Error> {
        let stored = self.layout().load(name)?;
        let image = self.pulled_image(&stored)?;
        match kind {
            PackageKind::Image => {
                self.write_image_package(&stored, &image, dest, progress)
                    .await
            }
            PackageKind::Zip => {
                let options = self.package_zip_options(&stored)?;
                self.write_zip_package(&stored, &image, options, dest, progress)
                    .await
            }
        }
    }

    async fn shutdown(&self) {
        self.stop_sandboxes().await;
    }
}

/// Lambda's payload limits, as Lambda refuses a payload over them (before running anything).
fn payload_fits(
    function: &str,
    size: usize,
    limit: usize,
    operation: &str,
) -> Result<(), LocalError> {
    if size > limit {
        return Err(LocalError::PayloadTooLarge {
            function: function.into(),
            message: lambda::payload_too_large(size, limit, operation),
        });
    }
    Ok(())
}

/// `info` with its endpoint on the running `scar serve` (`serve`), when it has an API
/// Gateway name.
fn with_api_url(mut info: FunctionInfo, serve: Option<&str>) -> FunctionInfo {
    if let (Some(_), Some(serve)) = (&info.spec.api_gateway, serve) {
        info.api_url = Some(format!("{serve}{}", crate::launch_path(&info.spec.name)));
    }
    info
}
