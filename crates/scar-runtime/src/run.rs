//! One invocation: stage, run, capture, enforce the threshold, answer.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use scar_core::contract;
use scar_core::event::{Ending, Event, FunctionFile, Response, StorageRecord};
use scar_core::OutputSpec;

use crate::container::ContainerRoot;
use crate::log::debug;
use crate::storage::Storage;

/// The most output kept for the response; Lambda's response limit is 6 MB. The tail is
/// kept, since that is where errors are.
const OUTPUT_LIMIT: usize = 4 << 20;

/// Why an invocation could not even start.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("cannot prepare {path}: {source}")]
    Stage {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the event is not valid: {0}")]
    Event(#[source] serde_json::Error),
    #[error("nothing to run: the invocation has no script or arguments, the function has no init script, and the image has no ENTRYPOINT or CMD (pass a script with -s, or arguments)")]
    NothingToRun,
    #[error("cannot read the function file {path}: {why}")]
    FunctionFile { path: PathBuf, why: String },
    #[error("cannot download the input object {bucket}/{key}: {source}")]
    Download {
        bucket: String,
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the event names object {bucket}/{key} but this function has no storage")]
    NoStorage { bucket: String, key: String },
    #[error("the event names object {bucket}/{key} of {storage}, which is not among this function's storage providers")]
    NoProvider {
        storage: String,
        bucket: String,
        key: String,
    },
    #[error("the MinIO event names object {bucket}/{key}, but no MinIO input folder of this function holds it, and the function has not exactly one MinIO storage provider")]
    UnknownMinio { bucket: String, key: String },
    #[error("the zip package at {package} holds no proot, and its image root has to be entered here (no namespaces on Lambda)\nhelp: rebuild it with `--proot PATH` (a static proot, such as udocker's), or deploy the image package")]
    NoProot { package: PathBuf },
    #[error("cannot build the image root at {path} from the package's layers: {why}")]
    ColdRoot { path: PathBuf, why: String },
    #[error(
        "the storage providers handed over in SCAR_STORAGE_PROVIDERS are not valid JSON ({0})"
    )]
    StorageProviders(String),
}

/// One invocation as the Runtime API hands it over.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    /// When the invocation must be answered.
    pub deadline: SystemTime,
    /// The raw event.
    pub event: serde_json::Value,
}

/// The supervisor: the function file plus where request directories go.
#[derive(Debug, Clone)]
pub struct Supervisor {
    pub function: FunctionFile,
    /// Normally `/tmp`; tests point it elsewhere.
    pub tmp_root: PathBuf,
    /// Where the script's output is echoed as it comes (the function's log).
    pub echo_output: bool,
    /// Where input objects come from and outputs go; `None`: no bucket.
    pub storage: Option<std::sync::Arc<dyn Storage>>,
    /// The storage providers outputs may name (`minio.<id>`, `s3.<id>`), connected when
    /// first used.
    pub providers: std::collections::HashMap<String, std::sync::Arc<dyn Storage>>,
    /// The image root to enter for each command (a `zip` package on Lambda); `None`: the
    /// supervisor already runs in it.
    pub container: Option<ContainerRoot>,
}

/// What the supervisor is told at start-up: [`Supervisor::from_environment`] reads it from
/// the environment; tests build it.
#[derive(Debug, Clone, Default)]
pub struct Startup {
    /// `SCAR_FUNCTION_FILE`: this function file, which must exist.
    pub function_file: Option<PathBuf>,
    /// `LAMBDA_TASK_ROOT`: where a `zip` package is unpacked.
    pub task_root: Option<PathBuf>,
    /// `SCAR_CONTAINER_ROOT`: `/` when the image root was entered for us (the local
    /// sandbox); another path is a root to enter.
    pub container_root: Option<PathBuf>,
    /// Where request directories (and a cold-built root) go: `/tmp`.
    pub tmp_root: PathBuf,
}

impl Supervisor {
    /// [`Supervisor::start`] with what the environment says: `SCAR_FUNCTION_FILE`,
    /// `LAMBDA_TASK_ROOT`, `SCAR_CONTAINER_ROOT`; requests under `/tmp`.
    pub fn from_environment() -> Result<Supervisor, SupervisorError> {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Supervisor::start(&Startup {
            function_file: var(contract::FUNCTION_FILE_VAR),
            task_root: var(contract::TASK_ROOT_VAR),
            container_root: var(contract::CONTAINER_ROOT_VAR),
            tmp_root: PathBuf::from(contract::TMP_ROOT),
        })
    }

    /// Reads the function file: the one named, else `/opt/scar/function.json` (an image
    /// package), else `function.json` in the task root (a `zip` package). None at all
    /// means a bare function: the image's command and no init script. A `zip` package's
    /// image root is found or built here, once per cold start.
    pub fn start(startup: &Startup) -> Result<Supervisor, SupervisorError> {
        let candidates: Vec<PathBuf> = match &startup.function_file {
            Some(p) => vec![p.clone()],
            None => std::iter::once(PathBuf::from(contract::FUNCTION_FILE_PATH))
                .chain(
                    startup
                        .task_root
                        .iter()
                        .map(|t| t.join(contract::TASK_FUNCTION_FILE)),
                )
                .collect(),
        };
        let explicit = startup.function_file.is_some();
        let mut found = None;
        for path in candidates {
            match std::fs::read(&path) {
                Ok(bytes) => {
                    found = Some((path, bytes));
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => continue,
                Err(e) => {
                    return Err(SupervisorError::FunctionFile {
                        path,
                        why: e.to_string(),
                    })
                }
            }
        }
        let (function, base): (FunctionFile, Option<PathBuf>) = match found {
            Some((path, bytes)) => {
                let function =
                    serde_json::from_slice(&bytes).map_err(|e| SupervisorError::FunctionFile {
                        path: path.clone(),
                        why: e.to_string(),
                    })?;
                (function, path.parent().map(Path::to_path_buf))
            }
            None => (FunctionFile::default(), None),
        };
        let container = match (&function.container, &startup.container_root) {
            (None, _) => None,
            (Some(_), Some(root)) if root == Path::new("/") => None,
            (Some(packaged), given) => {
                let base = base.unwrap_or_else(|| PathBuf::from("/"));
                let mut packaged = packaged.clone();
                if let Some(root) = given {
                    packaged.root = Some(root.to_string_lossy().into_owned());
                }
                Some(ContainerRoot::prepare(
                    &base,
                    &packaged,
                    &startup.tmp_root.join(contract::COLD_ROOT_NAME),
                )?)
            }
        };
        // The bucket directory (local provider), else S3 (connects only when first used).
        let storage = crate::storage::from_environment();
        let providers = crate::storage::providers_from_environment()?;
        debug!(
            "function {:?}: {} input folder(s), {} output location(s), threshold {} s, image root {}",
            function.name,
            function.inputs.len(),
            function.outputs.len(),
            function.timeout_threshold_s,
            match &container {
                Some(_) => "entered with proot",
                None => "this root",
            }
        );
        Ok(Supervisor {
            function,
            tmp_root: startup.tmp_root.clone(),
            echo_output: true,
            storage,
            providers,
            container,
        })
    }

    /// Runs one invocation to its response. Errors are only for invocations that could not
    /// start; a script that fails or times out is a [`Response`] saying so.
    pub fn invoke(&self, inv: &Invocation) -> Result<Response, SupervisorError> {
        let request_dir = self.tmp_root.join(&inv.request_id);
        let result = self.invoke_in(inv, &request_dir);
        // A warm sandbox starts every invocation clean, as /tmp is shared between them.
        let _ = std::fs::remove_dir_all(&request_dir);
        result
    }

    fn invoke_in(&self, inv: &Invocation, request_dir: &Path) -> Result<Response, SupervisorError> {
        let input_dir = request_dir.join(contract::INPUT_DIR_NAME);
        let output_dir = request_dir.join(contract::OUTPUT_DIR_NAME);
        for dir in [&input_dir, &output_dir] {
            std::fs::create_dir_all(dir).map_err(|source| SupervisorError::Stage {
                path: dir.clone(),
                source,
            })?;
        }
        let mut event = Event::parse(&inv.event).map_err(SupervisorError::Event)?;
        debug!(
            "request {}: {} event",
            inv.request_id,
            match &event {
                Event::Storage(records) => format!("storage ({} record(s))", records.len()),
                Event::Direct(_) => "direct".to_string(),
                Event::Http(r) =>
                    format!("HTTP ({} {}, {} byte body)", r.method, r.path, r.body.len()),
                Event::Unknown(bytes) => format!("unknown ({} bytes, the input file)", bytes.len()),
            }
        );
        if let Event::Storage(records) = &mut event {
            // The function's own outputs (an output folder inside the triggering input/)
            // are not inputs: on AWS the bucket's notification fires for them too.
            let (own, inputs): (Vec<_>, Vec<_>) =
                records.drain(..).partition(|r| self.is_own_output(r));
            *records = inputs;
            if records.is_empty() {
                let own: Vec<String> = own
                    .iter()
                    .map(|r| format!("{}/{}", r.bucket, r.key))
                    .collect();
                let note = format!(
                    "[scar: not run: {} is this function's own output]\n",
                    own.join(", ")
                );
                if self.echo_output {
                    print!("{note}");
                }
                let mut response = response_to(inv);
                // Nothing to do is done: no function error, so no retries.
                response.ending = Ending::Exited(0);
                response.set_output(note.into_bytes());
                return Ok(response);
            }
        }
        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        vars.extend(self.function.environment.clone());
        // The container's variables as the provider stored them (`CONT_VAR_<NAME>`), over
        // the supervisor's own: `AWS_ACCESS_KEY_ID` among them wins over Lambda's.
        for (name, value) in std::env::vars() {
            if let Some(name) = name.strip_prefix(contract::CONTAINER_VAR_PREFIX) {
                if !name.is_empty() {
                    vars.insert(name.to_string(), value);
                }
            }
        }
        let chain = match &event {
            Event::Storage(records) => records.iter().map(|r| r.chain).max().unwrap_or(1),
            Event::Direct(_) | Event::Http(_) | Event::Unknown(_) => 1,
        };
        let (script, args) = match &event {
            Event::Direct(payload) => {
                vars.extend(payload.env.clone());
                (payload.script_text(), payload.cmd_args.clone())
            }
            Event::Storage(records) => {
                for record in records {
                    self.stage(record, &input_dir)?;
                }
                if let Some(record) = records.first() {
                    storage_vars(record, &input_dir, &mut vars);
                }
                (None, None)
            }
            Event::Http(request) => {
                // SCAR's: query parameters are the script's variables; but a caller of
                // the endpoint never replaces a variable the function already has (its
                // own, the image's, Lambda's: PATH, credentials) nor sets the loader's.
                let image_env = &self.function.image.env;
                let taken = |name: &str| {
                    vars.contains_key(name)
                        || std::env::var_os(name).is_some()
                        || image_env
                            .iter()
                            .any(|e| e.split_once('=').is_some_and(|(k, _)| k == name))
                };
                let given: Vec<(String, String)> = (request.query.iter())
                    .filter(|(name, _)| {
                        is_variable_name(name) && !name.starts_with("LD_") && !taken(name)
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                vars.extend(given);
                let file = input_dir.join(scar_core::event::HTTP_BODY_FILE);
                write_file(&file, &request.body)?;
                input_file_vars(&file, &mut vars);
                (None, None)
            }
            Event::Unknown(bytes) => {
                let file = input_dir.join(scar_core::event::UNKNOWN_EVENT_FILE);
                write_file(&file, bytes)?;
                input_file_vars(&file, &mut vars);
                (None, None)
            }
        };
        vars.insert(contract::REQUEST_ID.into(), inv.request_id.clone());
        vars.insert(contract::TMP_INPUT_DIR.into(), path_str(&input_dir));
        for name in [contract::TMP_OUTPUT_DIR, contract::SCAR_OUTPUT_DIR] {
            vars.insert(name.into(), path_str(&output_dir));
        }
        let raw_event = inv.event.to_string();
        if raw_event.len() <= contract::EVENT_MAX_BYTES {
            vars.insert(contract::EVENT.into(), raw_event);
        } else {
            // Set, the script could not start at all (E2BIG); its input file has the data.
            debug!(
                "request {}: EVENT unset: the event is {} bytes, over {}",
                inv.request_id,
                raw_event.len(),
                contract::EVENT_MAX_BYTES
            );
        }

        let image = &self.function.image;
        let argv: Vec<String> = if let Some(script) = script {
            let path = request_dir.join("script.sh");
            write_file(&path, script.as_bytes())?;
            vec![contract::SHELL.into(), path_str(&path)]
        } else if let Some(args) = args.filter(|a| !a.is_empty()) {
            image.entrypoint.iter().cloned().chain(args).collect()
        } else if let Some(init) = &self.function.init_script {
            let path = request_dir.join("init.sh");
            write_file(&path, init.as_bytes())?;
            vec![contract::SHELL.into(), path_str(&path)]
        } else {
            image
                .entrypoint
                .iter()
                .chain(image.cmd.iter())
                .cloned()
                .collect()
        };
        if argv.is_empty() {
            return Err(SupervisorError::NothingToRun);
        }
        debug!("request {}: running {argv:?}", inv.request_id);

        let budget = inv
            .deadline
            .duration_since(SystemTime::now())
            .unwrap_or_default()
            .saturating_sub(Duration::from_secs(
                self.function.timeout_threshold_s.into(),
            ));
        let mut response = response_to(inv);
        debug!(
            "request {}: {:.1} s until the threshold",
            inv.request_id,
            budget.as_secs_f64()
        );
        let mut outcome = self.run(&argv, &vars, budget);
        debug!(
            "request {}: {:?}, {} bytes of output",
            inv.request_id,
            outcome.ending,
            outcome.output.len()
        );
        if matches!(outcome.ending, Ending::TimedOut { .. }) && self.hands_over() {
            // Lambda's share is over: the event goes to Batch whole, rather than failing;
            // nothing the script wrote is uploaded, so no output comes twice.
            let note = "scar: the timeout threshold was reached: the event is handed over to a Batch job (execution mode lambda-batch); nothing was uploaded\n";
            if self.echo_output {
                print!("{note}");
            }
            outcome.output.extend_from_slice(note.as_bytes());
            response.ending = Ending::HandedOver;
            response.set_output(outcome.output);
            return Ok(response);
        }
        // scar's notes on uploads go to the log, and into the output too unless the output
        // is an HTTP request's answer: that is the client's data (a picture a script `cat`s,
        // saved with `scar invoke -o`), which a line of text would spoil.
        let mut notes = Vec::new();
        // Outputs go up whatever happened: a timed-out run keeps what it wrote.
        for target in &self.function.outputs {
            let storage = match &target.storage {
                None => self.storage.as_ref(),
                Some(id) => self.providers.get(id),
            };
            let Some(storage) = storage else {
                let note = format!(
                    "scar: cannot upload to {target}: {} is not available to this function\n",
                    target.storage.as_deref().unwrap_or("its storage")
                );
                eprint!("{note}");
                notes.extend_from_slice(note.as_bytes());
                continue;
            };
            response.uploaded.extend(upload_outputs(
                storage.as_ref(),
                &output_dir,
                target,
                chain,
                &mut notes,
            ));
        }
        if self.function.outputs.is_empty() && has_files(&output_dir) {
            let note = "scar: the function has no output location: output files are not uploaded (add -ob, or an `output:` entry)\n";
            eprint!("{note}");
            notes.extend_from_slice(note.as_bytes());
        }
        if !matches!(event, Event::Http(_)) {
            outcome.output.extend_from_slice(&notes);
        }
        debug!(
            "request {}: {} output file(s) uploaded",
            inv.request_id,
            response.uploaded.len()
        );
        response.ending = outcome.ending;
        response.set_output(outcome.output);
        Ok(response)
    }

    /// Whether an invocation that reaches the threshold is handed over to Batch: a
    /// `lambda-batch` function, not already running as the Batch job.
    fn hands_over(&self) -> bool {
        self.function.execution_mode == scar_core::ExecutionMode::LambdaBatch
            && std::env::var_os(contract::BATCH_JOB_VAR).is_none()
    }

    fn is_own_output(&self, record: &StorageRecord) -> bool {
        self.function
            .outputs
            .iter()
            .any(|o| o.holds(&record.bucket, &record.key))
    }

    /// The storage provider (`minio.<id>`) that holds the record's object, when it is not
    /// the function's own storage: the MinIO input folder of the record's bucket that holds
    /// the key, when the record is MinIO's (`eventSource` `minio:s3`) or no input folder of
    /// the function's own storage holds it; for a MinIO record that no folder holds, the
    /// one MinIO input bucket of that name, or the only MinIO provider.
    fn provider_of(&self, record: &StorageRecord) -> Result<Option<&str>, SupervisorError> {
        let inputs = &self.function.inputs;
        let own = inputs.iter().any(|i| i.holds(&record.bucket, &record.key));
        if !record.is_minio() && own {
            return Ok(None);
        }
        let held = inputs.iter().find_map(|i| {
            let id = i.storage.as_deref().filter(|_| i.is_minio())?;
            i.holds_in(id, &record.bucket, &record.key).then_some(id)
        });
        if let Some(id) = held {
            return Ok(Some(id));
        }
        if !record.is_minio() {
            return Ok(None);
        }
        let mut by_bucket = inputs
            .iter()
            .filter(|i| i.is_minio() && i.bucket == record.bucket)
            .filter_map(|i| i.storage.as_deref());
        let mut minio = self
            .providers
            .keys()
            .filter(|k| k.starts_with(scar_core::spec::MINIO_PREFIX))
            .map(String::as_str);
        match (
            by_bucket.next(),
            by_bucket.next(),
            minio.next(),
            minio.next(),
        ) {
            (Some(id), None, ..) => Ok(Some(id)),
            (None, None, Some(id), None) => Ok(Some(id)),
            _ => Err(SupervisorError::UnknownMinio {
                bucket: record.bucket.clone(),
                key: record.key.clone(),
            }),
        }
    }

    fn stage(&self, record: &StorageRecord, input_dir: &Path) -> Result<(), SupervisorError> {
        let storage = match self.provider_of(record)? {
            Some(id) => self
                .providers
                .get(id)
                .ok_or_else(|| SupervisorError::NoProvider {
                    storage: id.to_string(),
                    bucket: record.bucket.clone(),
                    key: record.key.clone(),
                })?,
            None => self
                .storage
                .as_ref()
                .ok_or_else(|| SupervisorError::NoStorage {
                    bucket: record.bucket.clone(),
                    key: record.key.clone(),
                })?,
        };
        debug!("staging {}/{}", record.bucket, record.key);
        storage
            .download(
                &record.bucket,
                &record.key,
                &input_dir.join(record.file_name()),
            )
            .map(drop)
            .map_err(|source| SupervisorError::Download {
                bucket: record.bucket.clone(),
                key: record.key.clone(),
                source,
            })
    }

    fn run(&self, argv: &[String], vars: &BTreeMap<String, String>, budget: Duration) -> Outcome {
        let image = &self.function.image;
        let wanted_dir = image.working_dir.as_deref().filter(|d| !d.is_empty());
        let (argv, workdir) = match &self.container {
            None => {
                let dir = wanted_dir.filter(|d| Path::new(d).is_dir()).unwrap_or("/");
                (argv.to_vec(), dir)
            }
            Some(c) => {
                let dir = wanted_dir.filter(|d| c.is_dir_inside(d)).unwrap_or("/");
                (c.command_line(argv, dir, &self.tmp_root), "/")
            }
        };
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        // The image's Env first, so that the function's and the invocation's win.
        for entry in &image.env {
            if let Some((k, v)) = entry.split_once('=') {
                cmd.env(k, v);
            }
        }
        cmd.envs(vars);
        // The storage providers' secrets are the supervisor's, never the script's.
        cmd.env_remove(contract::STORAGE_PROVIDERS_VAR);
        if self.container.is_some()
            && !vars.contains_key("PROOT_NO_SECCOMP")
            && std::env::var_os("PROOT_NO_SECCOMP").is_none()
        {
            // Lambda's seccomp filter leaves proot no seccomp acceleration (udocker's P2).
            cmd.env("PROOT_NO_SECCOMP", "1");
        }
        cmd.current_dir(workdir);
        // Its own process group, so that the threshold kills everything the script started.
        cmd.process_group(0);
        let (reader, writer) = match std::io::pipe() {
            Ok(pair) => pair,
            Err(e) => return Outcome::failed(format!("scar: cannot create a pipe: {e}\n")),
        };
        let writer2 = match writer.try_clone() {
            Ok(w) => w,
            Err(e) => return Outcome::failed(format!("scar: cannot create a pipe: {e}\n")),
        };
        cmd.stdin(Stdio::null()).stdout(writer).stderr(writer2);
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                drop(cmd);
                return Outcome::failed(format!("scar: cannot run {:?}: {e}\n", argv[0]));
            }
        };
        // Our copies of the write end must go, or the reader never sees the end.
        drop(cmd);
        let pgid = child.id() as libc::pid_t;
        let echo = self.echo_output;
        let collector = std::thread::spawn(move || collect(reader, echo));

        let started = Instant::now();
        let mut timed_out = false;
        let exited = ExitWatch::open(child.id());
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) => {}
                Err(_) => break None,
            }
            let elapsed = started.elapsed();
            if elapsed >= budget {
                timed_out = true;
                kill_group(pgid);
                break child.wait().ok();
            }
            // Woken the moment the script exits (a pidfd), else polled.
            match &exited {
                Some(watch) => watch.wait(budget - elapsed),
                None => std::thread::sleep(poll_interval(elapsed)),
            }
        };
        // Whatever the script left running in the background goes too: its pipe would
        // otherwise keep the output open, and Lambda would freeze it anyway.
        kill_group(pgid);
        reap_orphans();
        let mut output = collector.join().unwrap_or_default();
        if timed_out {
            let note = format!(
                "scar: the script was killed after {:.1} s: the timeout minus the threshold of {} s\n",
                budget.as_secs_f64(),
                self.function.timeout_threshold_s
            );
            if echo {
                let _ = std::io::stdout().write_all(note.as_bytes());
            }
            output.extend_from_slice(note.as_bytes());
        }
        let exit_code = status.and_then(|s| {
            use std::os::unix::process::ExitStatusExt;
            s.code().or_else(|| s.signal().map(|sig| 128 + sig))
        });
        let ending = match exit_code {
            _ if timed_out => Ending::TimedOut { error: None },
            Some(code) => Ending::Exited(code),
            None => Ending::Unfinished { error: None },
        };
        Outcome { ending, output }
    }
}

/// How the script ended, and what it wrote.
struct Outcome {
    ending: Ending,
    output: Vec<u8>,
}

impl Outcome {
    fn failed(message: String) -> Outcome {
        eprint!("{message}");
        Outcome {
            ending: Ending::Exited(127),
            output: message.into_bytes(),
        }
    }
}

/// A process's exit as a descriptor to wait on (`pidfd_open`, Linux 5.3), so that the
/// supervisor wakes the moment the script exits instead of polling.
struct ExitWatch(std::os::fd::OwnedFd);

impl ExitWatch {
    fn open(pid: u32) -> Option<ExitWatch> {
        use std::os::fd::FromRawFd as _;
        // SAFETY: pidfd_open returns a new descriptor we then own, or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        (fd >= 0).then(|| ExitWatch(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) }))
    }

    /// Until the process exits, or `limit` passes (or a signal interrupts).
    fn wait(&self, limit: Duration) {
        use std::os::fd::AsRawFd as _;
        let mut pfd = libc::pollfd {
            fd: self.0.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = limit.as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: poll on one pollfd we own.
        unsafe {
            libc::poll(&mut pfd, 1, ms);
        }
    }
}

/// Short scripts are the common case: poll fast at first, then back off.
fn poll_interval(elapsed: Duration) -> Duration {
    if elapsed < Duration::from_millis(20) {
        Duration::from_micros(200)
    } else if elapsed < Duration::from_secs(1) {
        Duration::from_millis(2)
    } else {
        Duration::from_millis(20)
    }
}

fn collect(mut reader: std::io::PipeReader, echo: bool) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let mut stdout = std::io::stdout();
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if echo {
                    let _ = stdout.write_all(&buf[..n]);
                    let _ = stdout.flush();
                }
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > OUTPUT_LIMIT * 2 {
                    kept.drain(..kept.len() - OUTPUT_LIMIT);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if kept.len() > OUTPUT_LIMIT {
        let cut = kept.len() - OUTPUT_LIMIT;
        kept.drain(..cut);
        let mut note = format!("[scar: {cut} bytes of earlier output omitted]\n").into_bytes();
        note.append(&mut kept);
        kept = note;
    }
    kept
}

fn kill_group(pgid: libc::pid_t) {
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is touched.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// As PID 1 of a sandbox, the supervisor inherits the script's orphans: reap them.
fn reap_orphans() {
    if std::process::id() != 1 {
        return;
    }
    loop {
        let mut status = 0;
        // SAFETY: waitpid with WNOHANG only reads the status into a local.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            break;
        }
    }
}

/// A response to `inv` that says nothing yet of what ran.
fn response_to(inv: &Invocation) -> Response {
    Response {
        request_id: inv.request_id.clone(),
        log_group: std::env::var("AWS_LAMBDA_LOG_GROUP_NAME").unwrap_or_default(),
        log_stream: std::env::var("AWS_LAMBDA_LOG_STREAM_NAME").unwrap_or_default(),
        ..Response::default()
    }
}

/// Whether `dir` holds anything.
fn has_files(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
}

/// Uploads every file under `output_dir` that `target` accepts, as
/// `<folder>/<relative path>` in its bucket, and returns them as `bucket/key` (prefixed by
/// `<provider>:` for a storage provider's); problems are added to `notes` (and printed)
/// rather than failing the invocation.
fn upload_outputs(
    storage: &dyn Storage,
    output_dir: &Path,
    target: &OutputSpec,
    chain: u32,
    notes: &mut Vec<u8>,
) -> Vec<String> {
    let mut uploaded = Vec::new();
    let mut stack = vec![output_dir.to_path_buf()];
    let mut files = Vec::new();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(t) if t.is_file() => files.push(path),
                _ => {} // symlinks and specials are not outputs
            }
        }
    }
    files.sort();
    for file in files {
        let Ok(rel) = file.strip_prefix(output_dir) else {
            continue;
        };
        let rel = rel.to_string_lossy();
        if !target.accepts(&rel) {
            continue;
        }
        let key = target.key(&rel);
        let shown = match &target.storage {
            None => format!("{}/{key}", target.bucket),
            Some(id) => format!("{id}:{}/{key}", target.bucket),
        };
        match storage.upload(&file, &target.bucket, &key, chain) {
            Ok(()) => uploaded.push(shown),
            Err(e) => {
                let note = format!("scar: cannot upload {shown}: {e}\n");
                eprint!("{note}");
                notes.extend_from_slice(note.as_bytes());
            }
        }
    }
    uploaded
}

fn storage_vars(record: &StorageRecord, input_dir: &Path, vars: &mut BTreeMap<String, String>) {
    let file = path_str(&input_dir.join(record.file_name()));
    vars.insert(contract::INPUT_FILE_PATH.into(), file.clone());
    vars.insert(contract::SCAR_INPUT_FILE.into(), file);
    vars.insert(contract::STORAGE_OBJECT_KEY.into(), record.key.clone());
    if let Some(time) = &record.event_time {
        vars.insert(contract::EVENT_TIME.into(), time.clone());
    }
}

/// `INPUT_FILE_PATH` (and SCAR's `SCAR_INPUT_FILE`) naming `file`.
fn input_file_vars(file: &Path, vars: &mut BTreeMap<String, String>) {
    vars.insert(contract::INPUT_FILE_PATH.into(), path_str(file));
    vars.insert(contract::SCAR_INPUT_FILE.into(), path_str(file));
}

/// Whether `name` can be an environment variable's name (letters, digits and `_`, not
/// starting with a digit): a query parameter of another name is not handed over.
fn is_variable_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), SupervisorError> {
    std::fs::write(path, bytes).map_err(|source| SupervisorError::Stage {
        path: path.to_path_buf(),
        source,
    })
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}
