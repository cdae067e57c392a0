//! Event-driven processing: the launcher (every object already in a function's `input/`)
//! and `serve` (objects as they arrive, found by inotify), both through warm sandboxes
//! under a concurrency bound, both recording what they finished (see [`crate::records`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use scar_core::bucket::{chain_depth, ObjectCreated};
use scar_core::lambda::{loop_stopped, MAX_CHAIN_INVOCATIONS};
use scar_core::provider::{FileResult, LaunchEvent, LaunchRequest, OnLaunch};
use scar_core::InputSpec;

use crate::buckets::ObjectInfo;
use crate::records::{Outcome, Processed, Record, WorkerLock};
use crate::state::StoredFunction;
use crate::{LocalError, LocalProvider};

/// How much of a failed invocation's output a result keeps.
const TAIL: usize = 2000;

/// Progress of `serve`.
#[derive(Debug, Clone)]
pub enum ServeEvent {
    /// A function's input folder is watched.
    Watching { function: String, bucket: String },
    /// An object was found (by the start-up scan or the watcher) and queued.
    Queued { function: String, key: String },
    /// One object is done.
    Finished {
        function: String,
        result: FileResult,
    },
}

fn tail(text: &str) -> String {
    if text.len() <= TAIL {
        return text.to_string();
    }
    let mut start = text.len() - TAIL;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_string()
}

impl LocalProvider {
    fn bound(&self, name: &str) -> Result<StoredFunction, LocalError> {
        let stored = self.layout().load(name)?;
        if !stored.info.spec.inputs.iter().any(|i| i.storage.is_none()) {
            return Err(LocalError::NotBound(name.into()));
        }
        Ok(stored)
    }

    /// Runs the function once for every object in its input folders in `request.bucket`,
    /// the first synchronously (it warms a sandbox), the rest concurrently under the bound;
    /// outputs that land in another function's input folder run that one in turn.
    pub(crate) async fn launch_inputs(
        &self,
        request: &LaunchRequest,
        on_event: OnLaunch<'_>,
    ) -> Result<Vec<FileResult>, LocalError> {
        let name = request.function.as_str();
        let stored = self.bound(name)?;
        let Some(input) = stored.info.spec.input_in(&request.bucket).cloned() else {
            return Err(LocalError::WrongBucket {
                function: name.into(),
                bucket: request.bucket.clone(),
            });
        };
        let function_dir = self.layout().function_dir(name);
        let lock = WorkerLock::try_take(&function_dir, name)?;
        let done = Record::new(&function_dir).load();
        let mut objects = Vec::new();
        for key in self.input_keys(&stored, &input)? {
            let info = self.buckets().info(&input.bucket, &key)?;
            let last = done.get(&key);
            let keep = if request.only_failed {
                last.is_some_and(|p| p.outcome != Outcome::Succeeded)
            } else if request.pending_only {
                last.is_none_or(|p| p.etag != info.etag)
            } else {
                true
            };
            if keep {
                objects.push(info);
            }
        }
        self.run_chain(
            stored,
            lock,
            objects,
            self.concurrency(request.concurrency),
            true,
            on_event,
        )
        .await
    }

    /// The keys of `input` that trigger `stored`: all but its own outputs.
    fn input_keys(&self, stored: &StoredFunction, input: &InputSpec) -> Result<Vec<String>, LocalError> {
        let mut keys = self.buckets().keys(&input.path())?;
        keys.retain(|k| stored.info.spec.is_triggered_by(&input.bucket, k));
        Ok(keys)
    }

    /// Runs `name` for the given objects of its input folder (just stored by `scar put`),
    /// concurrently under the bound, and whatever they trigger down the chain. Fails with
    /// [`LocalError::Busy`] when another scar process (`scar serve`) is processing the
    /// function: [`Self::wait_for`] then waits for that process's results instead.
    pub(crate) async fn process_objects(
        &self,
        name: &str,
        objects: Vec<ObjectInfo>,
        concurrency: usize,
        on_event: OnLaunch<'_>,
    ) -> Result<Vec<FileResult>, LocalError> {
        let stored = self.bound(name)?;
        let lock = WorkerLock::try_take(&self.layout().function_dir(name), name)?;
        self.run_chain(stored, lock, objects, concurrency, false, on_event)
            .await
    }

    /// Runs `first` for `objects` under the concurrency bound (the first one alone when
    /// `warm_first`, to warm a sandbox), then every function that their outputs trigger,
    /// and so on down the chain, as S3's notifications would on AWS. A function another
    /// scar process is running (`scar serve`) is left to it. Results of functions other
    /// than `first` name their function.
    async fn run_chain(
        &self,
        first: StoredFunction,
        lock: WorkerLock,
        objects: Vec<ObjectInfo>,
        concurrency: usize,
        warm_first: bool,
        on_event: OnLaunch<'_>,
    ) -> Result<Vec<FileResult>, LocalError> {
        let first_name = first.info.spec.name.clone();
        let all: Vec<StoredFunction> = self.layout().list()?;
        // Each function met on the way: its stored form, its record and its lock (`None`:
        // another process holds it).
        type Met = (Arc<StoredFunction>, Arc<Record>, Option<WorkerLock>);
        let mut functions: HashMap<String, Met> = HashMap::new();
        let dir = self.layout().function_dir(&first_name);
        functions.insert(
            first_name.clone(),
            (Arc::new(first), Arc::new(Record::new(&dir)), Some(lock)),
        );
        let mut total = objects.len();
        on_event(&LaunchEvent::Planned { total });
        let mut queue: VecDeque<(String, ObjectInfo)> = objects
            .into_iter()
            .map(|o| (first_name.clone(), o))
            .collect();
        let mut results = Vec::with_capacity(total);
        let mut running = FuturesUnordered::new();
        let mut warming = warm_first;
        loop {
            let limit = if warming { 1 } else { concurrency.max(1) };
            while running.len() < limit {
                let Some((name, info)) = queue.pop_front() else {
                    break;
                };
                let Some((stored, record, lock)) = functions.get(&name) else {
                    continue;
                };
                if lock.is_none() {
                    let mut r = FileResult::new(info.key.clone(), Outcome::Queued);
                    r.error = Some(format!(
                        "left to the scar process that runs '{name}' (scar serve)"
                    ));
                    r.function = Some(name.clone());
                    r.bucket = Some(info.bucket.clone());
                    on_event(&LaunchEvent::Finished(r.clone()));
                    results.push(r);
                    continue;
                }
                let chained = name != first_name;
                let (stored, record) = (stored.clone(), record.clone());
                running.push(async move {
                    let mut r = self.process_object(&stored, &record, info.clone()).await;
                    if chained {
                        r.function = Some(name.clone());
                        r.bucket = Some(info.bucket);
                    }
                    r
                });
            }
            let Some(r) = running.next().await else {
                break;
            };
            warming = false;
            // Outputs that land in an input folder run its function, as S3 would have it.
            for uploaded in &r.uploaded {
                let Some((bucket, key)) = uploaded.split_once('/') else {
                    continue;
                };
                if bucket.contains(':') {
                    continue; // a storage provider's: no trigger here
                }
                let Some(next) = all.iter().find(|f| f.info.spec.is_triggered_by(bucket, key))
                else {
                    continue;
                };
                let next_name = next.info.spec.name.clone();
                if !functions.contains_key(&next_name) {
                    let dir = self.layout().function_dir(&next_name);
                    let lock = match WorkerLock::try_take(&dir, &next_name) {
                        Ok(lock) => Some(lock),
                        Err(LocalError::Busy(_)) => None,
                        Err(e) => return Err(e),
                    };
                    functions.insert(
                        next_name.clone(),
                        (Arc::new(next.clone()), Arc::new(Record::new(&dir)), lock),
                    );
                }
                let Ok(info) = self.buckets().info(bucket, key) else {
                    continue; // gone already
                };
                total += 1;
                on_event(&LaunchEvent::Planned { total });
                queue.push_back((next_name, info));
            }
            on_event(&LaunchEvent::Finished(r.clone()));
            results.push(r);
        }
        Ok(results)
    }

    /// Waits until the records say each object (in its current version) is done, as
    /// another process (`scar serve`) processes them, following the chain their outputs
    /// start, or until `timeout`.
    pub(crate) async fn wait_for(
        &self,
        name: &str,
        objects: &[ObjectInfo],
        timeout: std::time::Duration,
        on_event: OnLaunch<'_>,
    ) -> Result<Vec<FileResult>, LocalError> {
        let all: Vec<StoredFunction> = self.layout().list()?;
        let mut waiting: Vec<(String, ObjectInfo)> =
            objects.iter().map(|o| (name.to_string(), o.clone())).collect();
        on_event(&LaunchEvent::Planned {
            total: waiting.len(),
        });
        let started = std::time::Instant::now();
        let mut results: Vec<FileResult> = Vec::new();
        while !waiting.is_empty() && started.elapsed() < timeout {
            let mut still = Vec::new();
            let mut records: HashMap<String, HashMap<String, Processed>> = HashMap::new();
            for (function, info) in std::mem::take(&mut waiting) {
                let done = records.entry(function.clone()).or_insert_with(|| {
                    Record::new(&self.layout().function_dir(&function)).load()
                });
                let Some(p) = done.get(&info.key).filter(|p| p.etag == info.etag) else {
                    still.push((function, info));
                    continue;
                };
                let r = FileResult {
                    function: (function != name).then(|| function.clone()),
                    bucket: (function != name).then(|| info.bucket.clone()),
                    key: p.key.clone(),
                    outcome: p.outcome,
                    exit_code: p.exit_code,
                    request_id: p.request_id.clone(),
                    uploaded: p.uploaded.clone(),
                    output_tail: String::new(),
                    error: None,
                    attempts: 1,
                };
                for uploaded in &r.uploaded {
                    let Some((bucket, key)) = uploaded.split_once('/') else {
                        continue;
                    };
                    let next = all.iter().find(|f| f.info.spec.is_triggered_by(bucket, key));
                    if let (Some(next), Ok(info)) = (next, self.buckets().info(bucket, key)) {
                        still.push((next.info.spec.name.clone(), info));
                        on_event(&LaunchEvent::Planned {
                            total: results.len() + still.len() + 1,
                        });
                    }
                }
                on_event(&LaunchEvent::Finished(r.clone()));
                results.push(r);
            }
            waiting = still;
            if !waiting.is_empty() {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        Ok(results)
    }

    /// Invokes the function for one object with the S3 event AWS would send, and records
    /// the outcome. An object that a chain of [`MAX_CHAIN_INVOCATIONS`] invocations led
    /// to is not run: the chain is a recursive loop, stopped as AWS Lambda stops it.
    pub(crate) async fn process_object(
        &self,
        stored: &StoredFunction,
        record: &Record,
        info: ObjectInfo,
    ) -> FileResult {
        let path = self.buckets().object_path(&info.bucket, &info.key);
        let chain =
            chain_depth(&self.buckets().dir(&info.bucket), &info.key, &path).saturating_add(1);
        if chain > MAX_CHAIN_INVOCATIONS {
            let why = loop_stopped(&stored.info.spec.name, &info.bucket, &info.key);
            self.log_line(&stored.info.spec.name, &why);
            let result = FileResult {
                error: Some(why),
                ..FileResult::new(info.key.clone(), Outcome::LoopStopped)
            };
            let _ = record.append(&Processed {
                key: info.key,
                etag: info.etag,
                outcome: result.outcome,
                request_id: String::new(),
                exit_code: None,
                uploaded: Vec::new(),
            });
            return result;
        }
        let event = ObjectCreated {
            bucket: info.bucket.clone(),
            key: info.key.clone(),
            size: info.size,
            etag: info.etag.clone(),
            event_time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            region: self.region().to_string(),
            sequence: 0,
            chain,
        }
        .to_event();
        let bytes = Bytes::from(serde_json::to_vec(&event).unwrap_or_default());
        let result = match self.invoke_event(stored, bytes, None).await {
            Ok(response) => {
                let outcome = if response.timed_out {
                    Outcome::TimedOut
                } else if response.succeeded() {
                    Outcome::Succeeded
                } else {
                    Outcome::Failed
                };
                FileResult {
                    function: None,
                    bucket: None,
                    key: info.key.clone(),
                    outcome,
                    exit_code: response.exit_code,
                    request_id: response.request_id.clone(),
                    output_tail: if outcome == Outcome::Succeeded {
                        String::new()
                    } else {
                        tail(&String::from_utf8_lossy(&response.output_bytes()))
                    },
                    uploaded: response.uploaded,
                    error: None,
                    attempts: 1,
                }
            }
            Err(e) => FileResult {
                error: Some(e.to_string()),
                ..FileResult::new(info.key.clone(), Outcome::Failed)
            },
        };
        let _ = record.append(&Processed {
            key: info.key,
            etag: info.etag,
            outcome: result.outcome,
            request_id: result.request_id.clone(),
            exit_code: result.exit_code,
            uploaded: result.uploaded.clone(),
        });
        result
    }

    /// Appends `line` to the function's log, in a stream of scar's own
    /// (`<date>/[$LATEST]scar`): what the provider, not an invocation, has to say.
    fn log_line(&self, function: &str, line: &str) {
        let name = format!("{}/[$LATEST]scar", chrono::Utc::now().format("%Y/%m/%d"));
        let path = self.layout().logs(function).join(name);
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
        {
            use std::io::Write as _;
            let _ = writeln!(file, "scar: {line}");
        }
    }

    /// Watches the input folder of every function with a bucket and runs each object that
    /// lands there once it is complete (closed after writing, or renamed into place);
    /// objects that arrived while nothing watched are found by a scan at start. Returns when
    /// `shutdown` completes, after the invocations under way have finished.
    pub async fn serve(
        &self,
        concurrency: usize,
        on_event: &(dyn Fn(&ServeEvent) + Send + Sync),
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), LocalError> {
        use notify::Watcher as _;

        let mut functions: HashMap<String, (StoredFunction, Record, WorkerLock)> = HashMap::new();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<notify::Event>();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if let Ok(event) = event {
                    let _ = tx.send(event);
                }
            })
            .map_err(|e| LocalError::Watch(e.to_string()))?;
        let mut input_dirs: Vec<WatchedInput> = Vec::new();
        for stored in self.layout().list()? {
            let own: Vec<InputSpec> = stored
                .info
                .spec
                .inputs
                .iter()
                .filter(|i| i.storage.is_none())
                .cloned()
                .collect();
            if own.is_empty() {
                continue;
            }
            let name = stored.info.spec.name.clone();
            let dir = self.layout().function_dir(&name);
            let lock = WorkerLock::try_take(&dir, &name)?;
            for input in own {
                self.buckets().create(&input.bucket)?;
                let bucket_dir = self.buckets().dir(&input.bucket);
                let watched = bucket_dir.join(&input.folder);
                std::fs::create_dir_all(&watched)
                    .map_err(LocalError::io("cannot create", &watched))?;
                watcher
                    .watch(&watched, notify::RecursiveMode::Recursive)
                    .map_err(|e| LocalError::Watch(format!("{}: {e}", watched.display())))?;
                on_event(&ServeEvent::Watching {
                    function: name.clone(),
                    bucket: input.to_string(),
                });
                input_dirs.push(WatchedInput {
                    dir: watched,
                    bucket_dir,
                    bucket: input.bucket.clone(),
                    function: name.clone(),
                });
            }
            functions.insert(name, (stored, Record::new(&dir), lock));
        }

        // What each function has finished, by key: the ETag it had.
        let mut finished: HashMap<Item, String> = HashMap::new();
        let mut queue: VecDeque<Item> = VecDeque::new();
        let mut queued: HashSet<Item> = HashSet::new();
        // The start-up scan: what arrived while nothing watched.
        for (name, (stored, record, _)) in &functions {
            let done = record.load();
            for input in stored.info.spec.inputs.iter().filter(|i| i.storage.is_none()) {
                for (key, p) in &done {
                    finished.insert(
                        (name.clone(), input.bucket.clone(), key.clone()),
                        p.etag.clone(),
                    );
                }
                for key in self.input_keys(stored, input)? {
                    let pending = match (done.get(&key), self.buckets().info(&input.bucket, &key))
                    {
                        (Some(p), Ok(info)) => p.etag != info.etag,
                        (None, Ok(_)) => true,
                        (_, Err(_)) => false,
                    };
                    let item = (name.clone(), input.bucket.clone(), key.clone());
                    if pending && queued.insert(item.clone()) {
                        on_event(&ServeEvent::Queued {
                            function: name.clone(),
                            key: key.clone(),
                        });
                        queue.push_back(item);
                    }
                }
            }
        }

        let mut running = FuturesUnordered::new();
        let mut in_flight: HashSet<Item> = HashSet::new();
        let mut changed_while_running: HashSet<Item> = HashSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        let mut stopping = false;
        loop {
            while !stopping && running.len() < concurrency.max(1) {
                let Some(item) = queue.pop_front() else { break };
                queued.remove(&item);
                let (name, bucket, key) = item.clone();
                let Some((stored, record, _)) = functions.get(&name) else {
                    continue;
                };
                // Gone or unreadable since it was queued: nothing to run.
                let Ok(info) = self.buckets().info(&bucket, &key) else {
                    continue;
                };
                // Already done in this version (two events for one file).
                if finished.get(&item) == Some(&info.etag) {
                    continue;
                }
                in_flight.insert(item);
                running.push(async move {
                    let etag = info.etag.clone();
                    let result = self.process_object(stored, record, info).await;
                    (name, bucket, etag, result)
                });
            }
            if stopping && running.is_empty() {
                break;
            }
            tokio::select! {
                () = &mut shutdown, if !stopping => stopping = true,
                Some(event) = rx.recv(), if !stopping => {
                    for (name, bucket, key) in self.keys_of_event(&event, &input_dirs) {
                        // What the function itself uploaded (an output folder inside its
                        // input folder) is not an input.
                        if !functions.get(&name).is_some_and(|(s, ..)| s.info.spec.is_triggered_by(&bucket, &key)) {
                            continue;
                        }
                        let item = (name.clone(), bucket, key.clone());
                        if in_flight.contains(&item) {
                            changed_while_running.insert(item);
                        } else if queued.insert(item.clone()) {
                            on_event(&ServeEvent::Queued { function: name, key });
                            queue.push_back(item);
                        }
                    }
                }
                Some((name, bucket, etag, result)) = running.next(), if !running.is_empty() => {
                    let item = (name.clone(), bucket, result.key.clone());
                    in_flight.remove(&item);
                    finished.insert(item.clone(), etag);
                    if changed_while_running.remove(&item) && queued.insert(item.clone()) {
                        queue.push_back(item);
                    }
                    on_event(&ServeEvent::Finished { function: name, result });
                }
            }
        }
        drop(watcher);
        self.stop_sandboxes().await;
        Ok(())
    }

    /// The (function, key) pairs a file-system event completes: a file closed after
    /// writing, or renamed into place, under a watched input folder; a new directory is
    /// scanned, since files may land in it before its watch does.
    fn keys_of_event(&self, event: &notify::Event, input_dirs: &[WatchedInput]) -> Vec<Item> {
        use notify::event::{
            AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RenameMode,
        };
        let paths: Vec<&PathBuf> = match event.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Modify(ModifyKind::Name(RenameMode::To))
            | EventKind::Create(CreateKind::Folder) => event.paths.iter().collect(),
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
                event.paths.iter().skip(1).collect()
            }
            _ => return Vec::new(),
        };
        let mut out = Vec::new();
        for path in paths {
            let Some(input) = input_dirs.iter().find(|w| path.starts_with(&w.dir)) else {
                continue;
            };
            let bucket_dir = &input.bucket_dir;
            let files = if path.is_dir() {
                files_under(path)
            } else {
                vec![path.clone()]
            };
            for file in files {
                if !file.is_file() {
                    continue;
                }
                if let Ok(rel) = file.strip_prefix(bucket_dir) {
                    let key = rel.to_string_lossy().into_owned();
                    // scar's own files (temporary uploads, chain marks) are never objects.
                    if key.split('/').next() == Some(scar_core::bucket::INTERNAL_DIR) {
                        continue;
                    }
                    out.push((input.function.clone(), input.bucket.clone(), key));
                }
            }
        }
        out
    }
}

/// A function's work item under `serve`: (function, bucket, key).
type Item = (String, String, String);

/// A watched input folder of a function.
struct WatchedInput {
    /// The folder's directory (the bucket's own, for a whole-bucket input).
    dir: PathBuf,
    bucket_dir: PathBuf,
    bucket: String,
    function: String,
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}
