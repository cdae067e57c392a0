//! The sandbox environment: what a function's runtime starts with in its sandbox. Lambda's
//! variables and the function's own; a Batch job's variables and GPUs; how its package is
//! laid out (`/opt/scar`, a zip's `/var/task`); its buckets; and the program, scar's
//! supervisor or, for a function whose runtime is its image's own, the image's ENTRYPOINT
//! and CMD as Lambda runs a container image.

use std::path::PathBuf;

use scar_core::contract;
use scar_core::lambda::log_group;
use scar_core::{FunctionSpec, ImageConfig, RuntimeClient};

use crate::provider::RunAs;
use crate::state::{Launch, StoredFunction};
use crate::{LocalError, LocalProvider};

/// What a sandbox's runtime starts with (see [`crate::sandbox::SandboxSpec`]).
pub(crate) struct Environment {
    /// The function's `opt` directory, mounted at `/opt/scar` (none: the root has its own,
    /// or the runtime is the image's).
    pub opt: Option<PathBuf>,
    /// The runtime's path inside the sandbox, and its arguments.
    pub program: String,
    pub args: Vec<String>,
    /// Where it starts (none: `/`).
    pub workdir: Option<String>,
    pub env: Vec<(String, String)>,
    /// Bind mounts: a host path, where it goes relative to the root, and whether it is
    /// read-only.
    pub binds: Vec<(PathBuf, String, bool)>,
}

impl Environment {
    fn var(&mut self, name: &str, value: impl Into<String>) {
        self.env.push((name.into(), value.into()));
    }

    fn bind(&mut self, host: PathBuf, inside: String, read_only: bool) {
        self.binds.push((host, inside, read_only));
    }

    /// The image's own runtime in place of scar's supervisor, as Lambda runs a container
    /// image: ENTRYPOINT + CMD, the image's Env under Lambda's variables, `_HANDLER` from
    /// CMD, in the image's WorkingDir. Nothing is mounted under `/opt/scar`.
    fn own_runtime(self, spec: &FunctionSpec, image: &ImageConfig) -> Result<Self, LocalError> {
        let mut command = image.entrypoint.iter().chain(&image.cmd).cloned();
        let program = command
            .next()
            .ok_or_else(|| LocalError::NoRuntime(spec.name.clone()))?;
        let mut env: Vec<(String, String)> = image
            .env
            .iter()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let image_path = env.iter().any(|(k, _)| k == "PATH");
        env.extend(
            self.env
                .into_iter()
                .filter(|(k, _)| !(image_path && k == "PATH") && k != "_HANDLER"),
        );
        if let Some(handler) = image.cmd.first() {
            env.push(("_HANDLER".into(), handler.clone()));
        }
        env.extend(spec.environment.clone());
        let mut binds = self.binds;
        // Buckets are the supervisor's, under /opt/scar, which is not mounted.
        binds.retain(|(_, inside, _)| !inside.starts_with("opt/scar/"));
        Ok(Environment {
            opt: None,
            program,
            args: command.collect(),
            workdir: image.working_dir.clone().filter(|w| !w.is_empty()),
            env,
            binds,
        })
    }
}

impl LocalProvider {
    /// The environment of a sandbox of `stored` run as `run` says, its runtime reaching its
    /// Runtime API at `api` and writing to the log stream `log_stream`.
    pub(crate) fn environment(
        &self,
        stored: &StoredFunction,
        run: &RunAs,
        api: &str,
        log_stream: &str,
    ) -> Result<Environment, LocalError> {
        let spec = &stored.info.spec;
        let mut environment = Environment {
            opt: None,
            program: contract::SUPERVISOR_PATH.into(),
            args: Vec::new(),
            workdir: None,
            env: lambda_variables(spec, run, api, log_stream, self.region()),
            binds: Vec::new(),
        };
        if run.batch {
            self.batch_job(spec, &mut environment);
        }
        self.lay_out_package(stored, &mut environment)?;
        self.mount_buckets(spec, &mut environment);
        self.mount_file_systems(stored, &mut environment)?;
        match spec.runtime_client {
            RuntimeClient::Scar => Ok(environment),
            RuntimeClient::Image => environment.own_runtime(spec, &stored.image_config),
        }
    }

    /// A Batch job: the job's variables, the mark the supervisor knows it by, and the
    /// machine's GPUs when the job asks for one.
    fn batch_job(&self, spec: &FunctionSpec, environment: &mut Environment) {
        if let Some(batch) = &spec.batch {
            environment.env.extend(batch.environment.clone());
        }
        environment.var(contract::BATCH_JOB_VAR, "1");
        if !spec.batch.as_ref().is_some_and(|b| b.enable_gpu) {
            return;
        }
        let gpus = gpu_devices();
        if gpus.is_empty() {
            self.notice(&format!(
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
            environment.bind(dev, inside, false);
        }
    }

    /// Where the supervisor and its function file are, as the function's package lays
    /// them out: the function's `opt` directory mounted at `/opt/scar`, an image package's
    /// own `/opt/scar`, or a zip package mounted at `/var/task` (its root built first if
    /// the zip holds none).
    fn lay_out_package(
        &self,
        stored: &StoredFunction,
        environment: &mut Environment,
    ) -> Result<(), LocalError> {
        let name = &stored.info.spec.name;
        // The extra payload at /var/task (a zip holds it itself, unpacked there).
        if stored.info.spec.extra_payload.is_some() && !matches!(stored.launch, Launch::Zip { .. })
        {
            crate::state::ensure_mount_point(&stored.root, "var/task")?;
            environment.bind(self.layout().payload_dir(name), "var/task".into(), true);
        }
        match &stored.launch {
            Launch::Root => environment.opt = Some(self.layout().opt_dir(name)),
            Launch::Image => {}
            Launch::Zip { task, .. } => {
                self.build_cold_root(stored)?;
                environment.bind(task.clone(), "var/task".into(), true);
                // The supervisor finds function.json in $LAMBDA_TASK_ROOT, as on Lambda;
                // unlike Lambda, the sandbox has already entered the image's root.
                environment.var(contract::CONTAINER_ROOT_VAR, "/");
                environment.program = "/var/task/bootstrap".into();
            }
        }
        Ok(())
    }

    /// The function's file systems (FDL `file_system`), read-write at their mount paths:
    /// the host folder of each access point, made on first use.
    fn mount_file_systems(
        &self,
        stored: &StoredFunction,
        environment: &mut Environment,
    ) -> Result<(), LocalError> {
        for fs in &stored.info.spec.file_systems {
            let host = self.layout().file_system(fs.access_point_id());
            std::fs::create_dir_all(&host).map_err(LocalError::io("cannot create", &host))?;
            let inside = fs.local_mount_path.trim_start_matches('/').to_string();
            crate::state::ensure_mount_point(&stored.root, &inside)?;
            environment.bind(host, inside, false);
        }
        Ok(())
    }

    /// The function's buckets, at `/opt/scar/buckets/<bucket>`.
    fn mount_buckets(&self, spec: &FunctionSpec, environment: &mut Environment) {
        let buckets = spec.buckets();
        if !buckets.is_empty() {
            environment.var(contract::STORAGE_DIR_VAR, contract::STORAGE_DIR);
        }
        for bucket in &buckets {
            environment.bind(
                self.buckets().dir(bucket),
                format!("opt/scar/buckets/{bucket}"),
                false,
            );
        }
    }
}

/// Lambda's variables for the runtime, then the function's own (Lambda) variables; the
/// container's are in its function file. Storage providers' secrets go to the supervisor
/// alone.
fn lambda_variables(
    spec: &FunctionSpec,
    run: &RunAs,
    api: &str,
    log_stream: &str,
    region: &str,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("AWS_LAMBDA_RUNTIME_API", api),
        ("AWS_LAMBDA_FUNCTION_NAME", spec.name.as_str()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            run.memory_mb.to_string().as_str(),
        ),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", log_group(&spec.name).as_str()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", log_stream),
        ("AWS_REGION", region),
        ("AWS_DEFAULT_REGION", region),
        ("_HANDLER", "scar"),
        ("LAMBDA_TASK_ROOT", "/var/task"),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime"),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ("TZ", ":UTC"),
        (
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.extend(spec.lambda_environment.clone());
    if spec.extra_payload.is_some() {
        env.push((
            contract::EXTRA_PAYLOAD_VAR.into(),
            contract::EXTRA_PAYLOAD_DIR.into(),
        ));
    }
    if let Some(level) = spec.log_level {
        env.push((
            scar_core::spec_options::LOG_LEVEL_VAR.into(),
            level.to_string(),
        ));
    }
    if !spec.storage_providers.is_empty() {
        env.push((
            contract::STORAGE_PROVIDERS_VAR.into(),
            serde_json::to_string(&spec.storage_providers).unwrap_or_default(),
        ));
    }
    env
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
