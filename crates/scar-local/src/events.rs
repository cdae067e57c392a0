//! Event-driven processing: the launcher (every object already in a function's `input/`)
//! and `serve` (objects as they arrive, found by inotify), both through warm sandboxes
//! under a concurrency bound, both recording what they finished (see [`crate::records`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use scar_core::bucket::{chain_depth, BucketPath, ObjectCreated};
use scar_core::lambda::{loop_stopped, MAX_CHAIN_INVOCATIONS};
use scar_core::provider::SurfaceError;
use scar_core::provider::{FileResult, LaunchEvent, LaunchRequest, OnLaunch};
use scar_core::{FunctionSpec, InputSpec};

use crate::buckets::{ObjectInfo, SCAR_DIR};
use crate::records::{Outcome, Processed, Record, WorkerLock};
use crate::state::StoredFunction;
use crate::{LocalError, LocalProvider};

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

impl LocalProvider {
    /// The function `name`, if it has an input folder to run over.
    pub(crate) fn bound(&self, name: &str) -> Result<StoredFunction, LocalError> {
        let stored = self.layout().load(name)?;
        // A MinIO input folder counts: the launcher runs the function over it.
        if !stored
            .info
            .spec
            .inputs
            .iter()
            .any(|i| i.storage.is_none() || i.is_minio())
        {
            return Err(SurfaceError::NotBound(name.into()).into());
        }
        Ok(stored)
    }

    /// The objects of `input` (on MinIO server `minio`, or in this machine's buckets) that
    /// `stored` runs for.
    pub(crate) async fn input_objects(
        &self,
        stored: &StoredFunction,
        input: &InputSpec,
        minio: Option<&str>,
    ) -> Result<Vec<ObjectInfo>, LocalError> {
        if let Some(id) = minio {
            return self.minio_objects(stored, id, input).await;
        }
        let mut infos = Vec::new();
        for key in self.input_keys(stored, input)? {
            infos.push(self.buckets().info(&input.bucket, &key)?);
        }
        Ok(infos)
    }

    /// The objects of `input`, a folder on MinIO server `id`, that the function runs for:
    /// listed on the server with the provider's endpoint and keys. MinIO cannot notify this
    /// provider of new objects, so only the launcher gets to them.
    async fn minio_objects(
        &self,
        stored: &StoredFunction,
        id: &str,
        input: &InputSpec,
    ) -> Result<Vec<ObjectInfo>, LocalError> {
        let spec = &stored.info.spec;
        let Some(provider) = spec.storage_providers.get(id).cloned() else {
            return Err(SurfaceError::NoProvider {
                function: spec.name.clone(),
                storage: id.to_string(),
            }
            .into());
        };
        let (bucket, prefix) = (input.bucket.clone(), input.prefix());
        let client = scar_s3::S3Options::for_provider(id, &provider)
            .client(None)
            .await;
        let mut objects = scar_s3::list(&client, &bucket, &prefix)
            .await
            .map_err(|source| LocalError::ListProvider {
                storage: id.to_string(),
                source: Box::new(source),
            })?;
        objects.retain(|o| spec.is_input_of(id, &o.bucket, &o.key));
        Ok(objects)
    }

    /// The keys of `input` that trigger `stored`: all but its own outputs.
    fn input_keys(
        &self,
        stored: &StoredFunction,
        input: &InputSpec,
    ) -> Result<Vec<String>, LocalError> {
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
        self.run_chain(stored, lock, objects, concurrency, false, None, on_event)
            .await
    }

    /// Runs `first` for `objects` under the concurrency bound (the first one alone when
    /// `warm_first`, to warm a sandbox), then every function that their outputs trigger,
    /// and so on down the chain, as S3's notifications would on AWS. A function another
    /// scar process is running (`scar serve`) is left to it. Results of functions other
    /// than `first` name their function. `minio`: `objects` are on that MinIO server
    /// (`minio.<id>`), not in this machine's buckets; the chain that follows is local.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn run_chain(
        &self,
        first: StoredFunction,
        lock: WorkerLock,
        objects: Vec<ObjectInfo>,
        concurrency: usize,
        warm_first: bool,
        minio: Option<String>,
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
        // (function, object, whether the chain brought it rather than the caller)
        let mut queue: VecDeque<(String, ObjectInfo, bool)> = objects
            .into_iter()
            .map(|o| (first_name.clone(), o, false))
            .collect();
        let mut results = Vec::with_capacity(total);
        let mut running = FuturesUnordered::new();
        let mut warming = warm_first;
        loop {
            let limit = if warming { 1 } else { concurrency.max(1) };
            while running.len() < limit {
                let Some((name, info, chained)) = queue.pop_front() else {
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
                let (stored, record) = (stored.clone(), record.clone());
                let origin = minio.as_deref().filter(|_| !chained);
                running.push(async move {
                    let mut r = match origin {
                        Some(id) => {
                            self.process_minio_object(&stored, &record, info.clone(), id)
                                .await
                        }
                        None => self.process_object(&stored, &record, info.clone()).await,
                    }?;
                    if chained {
                        r.function = Some(name.clone());
                        r.bucket = Some(info.bucket);
                    }
                    Ok::<_, LocalError>(r)
                });
            }
            let Some(r) = running.next().await else {
                break;
            };
            // A result that could not be recorded fails the launch: a launcher that is
            // killed later must find what ran (no object run twice, none lost).
            let r = r?;
            warming = false;
            // Outputs that land in an input folder run its function, as S3 would have it.
            for uploaded in &r.uploaded {
                let Some((next, bucket, key)) = next_step(&all, uploaded) else {
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
                queue.push_back((next_name, info, true));
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
        let mut waiting: Vec<(String, ObjectInfo)> = objects
            .iter()
            .map(|o| (name.to_string(), o.clone()))
            .collect();
        on_event(&LaunchEvent::Planned {
            total: waiting.len(),
        });
        let started = std::time::Instant::now();
        let mut results: Vec<FileResult> = Vec::new();
        while !waiting.is_empty() && started.elapsed() < timeout {
            let mut still = Vec::new();
            let mut records: HashMap<String, HashMap<String, Processed>> = HashMap::new();
            for (function, info) in std::mem::take(&mut waiting) {
                let done = records
                    .entry(function.clone())
                    .or_insert_with(|| Record::new(&self.layout().function_dir(&function)).load());
                let Some(p) = done.get(&info.key).filter(|p| p.etag == info.etag) else {
                    still.push((function, info));
                    continue;
                };
                let r = FileResult {
                    function: (function != name).then(|| function.clone()),
                    bucket: (function != name).then(|| info.bucket.clone()),
                    ..p.result()
                };
                for uploaded in &r.uploaded {
                    let Some((next, bucket, key)) = next_step(&all, uploaded) else {
                        continue;
                    };
                    if let Ok(info) = self.buckets().info(bucket, key) {
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
    ) -> Result<FileResult, LocalError> {
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
            record.append(&Processed::of(&result, info.etag))?;
            return Ok(result);
        }
        let event = object_created(&info, self.region(), chain).to_event();
        self.invoke_for(stored, record, info, event).await
    }

    /// Invokes the function for one object of the MinIO server `id` with the event MinIO's
    /// webhook would send (`eventSource` `minio:s3`), and records the outcome. Such an
    /// object starts a chain: MinIO has no chain marks.
    pub(crate) async fn process_minio_object(
        &self,
        stored: &StoredFunction,
        record: &Record,
        info: ObjectInfo,
        id: &str,
    ) -> Result<FileResult, LocalError> {
        let region = stored
            .info
            .spec
            .storage_providers
            .get(id)
            .and_then(|p| p.region.clone())
            .unwrap_or_default();
        let event = object_created(&info, &region, 1).to_minio_event();
        self.invoke_for(stored, record, info, event).await
    }

    /// Invokes the function with `event`, for object `info`, and records the outcome.
    async fn invoke_for(
        &self,
        stored: &StoredFunction,
        record: &Record,
        info: ObjectInfo,
        event: serde_json::Value,
    ) -> Result<FileResult, LocalError> {
        let bytes = Bytes::from(serde_json::to_vec(&event).unwrap_or_default());
        let result = match self.invoke_event(stored, bytes, None).await {
            Ok(response) => FileResult::from_response(info.key.clone(), response),
            Err(e) => FileResult::from_error(info.key.clone(), &e),
        };
        record.append(&Processed::of(&result, info.etag))?;
        Ok(result)
    }

    /// Appends `line` to the function's log, in a stream of scar's own: what the provider,
    /// not an invocation, has to say.
    fn log_line(&self, function: &str, line: &str) {
        crate::logs::scar_line(&self.layout().logs(function), line);
    }

    /// Watches the input folder of every function with a bucket and runs each object that
    /// lands there once, under the name it ends up with: the watcher's events are debounced
    /// ([`DEBOUNCE`]), so a file written under a temporary name and renamed into place (cp
    /// then mv, rsync, editors, downloaders) is reported under its final name only; a name
    /// that is gone, or no longer a regular file, when its turn comes is dropped without a
    /// word. Objects that arrived while nothing watched are found by a scan at start (and
    /// again whenever the watcher may have lost events). Returns when `shutdown` completes,
    /// after the invocations under way have finished.
    pub async fn serve(
        &self,
        concurrency: usize,
        on_event: &(dyn Fn(&ServeEvent) + Send + Sync),
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), LocalError> {
        let mut functions: HashMap<String, (StoredFunction, Record, WorkerLock)> = HashMap::new();
        let (tx, mut rx) =
            tokio::sync::mpsc::unbounded_channel::<notify_debouncer_full::DebounceEventResult>();
        let mut watcher = notify_debouncer_full::new_debouncer(
            DEBOUNCE,
            None,
            move |result: notify_debouncer_full::DebounceEventResult| {
                let _ = tx.send(result);
            },
        )
        .map_err(|e| LocalError::Watch(e.to_string()))?;
        let mut watched: Vec<Watched> = Vec::new();
        for stored in self.layout().list()? {
            let folders = input_folders(&stored.info.spec);
            if folders.is_empty() {
                continue;
            }
            let name = stored.info.spec.name.clone();
            let dir = self.layout().function_dir(&name);
            let lock = WorkerLock::try_take(&dir, &name)?;
            for folder in folders {
                self.buckets().create(&folder.bucket)?;
                let bucket_dir = self.buckets().dir(&folder.bucket);
                let input = if folder.folder.is_empty() {
                    bucket_dir.clone()
                } else {
                    bucket_dir.join(&folder.folder)
                };
                std::fs::create_dir_all(&input).map_err(LocalError::io("cannot create", &input))?;
                watcher
                    .watch(&input, notify::RecursiveMode::Recursive)
                    .map_err(|e| LocalError::Watch(format!("{}: {e}", input.display())))?;
                on_event(&ServeEvent::Watching {
                    function: name.clone(),
                    bucket: folder.to_string(),
                });
                watched.push(Watched {
                    function: name.clone(),
                    bucket: folder.bucket,
                    bucket_dir,
                    dir: input,
                });
            }
            functions.insert(name, (stored, Record::new(&dir), lock));
        }

        // What each function has finished, by bucket and key: the ETag it had.
        let mut finished: HashMap<Item, String> = HashMap::new();
        for (name, (_, record, _)) in &functions {
            let done = record.load();
            for w in watched.iter().filter(|w| &w.function == name) {
                for (key, p) in &done {
                    finished.insert(
                        (name.clone(), w.bucket.clone(), key.clone()),
                        p.etag.clone(),
                    );
                }
            }
        }
        let mut pending = Pending::default();
        // The start-up scan: what arrived while nothing watched.
        for item in self.scan(&watched, &functions, &finished).await {
            pending.push(item, on_event);
        }

        let mut running = FuturesUnordered::new();
        let mut in_flight: HashSet<Item> = HashSet::new();
        let mut changed_while_running: HashSet<Item> = HashSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        let mut stopping = false;
        loop {
            while !stopping && running.len() < concurrency.max(1) {
                let Some(item) = pending.queue.pop_front() else {
                    break;
                };
                pending.queued.remove(&item);
                let (name, bucket, key) = item.clone();
                let Some((stored, record, _)) = functions.get(&name) else {
                    continue;
                };
                let Some(w) = watched
                    .iter()
                    .find(|w| w.function == name && w.bucket == bucket)
                else {
                    continue;
                };
                // Gone (renamed away, deleted) or not a regular file since it was queued:
                // nothing to run, nothing to report.
                let is_file = std::fs::symlink_metadata(w.bucket_dir.join(&key))
                    .is_ok_and(|m| m.file_type().is_file());
                if !is_file {
                    continue;
                }
                let Ok(info) = self.buckets().info(&w.bucket, &key) else {
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
                Some(result) = rx.recv(), if !stopping => {
                    let mut found = Vec::new();
                    match result {
                        Ok(events) => {
                            for event in &events {
                                if event.need_rescan() {
                                    // The kernel's queue overflowed: events were lost.
                                    found.extend(self.scan(&watched, &functions, &finished).await);
                                } else {
                                    found.extend(keys_of_event(event, &watched));
                                }
                            }
                        }
                        // The watcher failed on something: it may have missed files.
                        Err(_) => found.extend(self.scan(&watched, &functions, &finished).await),
                    }
                    for item in found {
                        // What the function itself uploaded (an output folder inside its
                        // input folder) is not an input.
                        let (name, bucket, key) = &item;
                        if !functions.get(name).is_some_and(|(s, ..)| s.info.spec.is_triggered_by(bucket, key)) {
                            continue;
                        }
                        if in_flight.contains(&item) {
                            changed_while_running.insert(item);
                        } else {
                            pending.push(item, on_event);
                        }
                    }
                }
                Some((name, bucket, etag, result)) = running.next(), if !running.is_empty() => {
                    // A result that could not be recorded stops serve: a later serve must
                    // know what ran.
                    let result = result?;
                    let item = (name.clone(), bucket, result.key.clone());
                    in_flight.remove(&item);
                    finished.insert(item.clone(), etag);
                    if changed_while_running.remove(&item) && pending.queued.insert(item.clone()) {
                        pending.queue.push_back(item);
                    }
                    on_event(&ServeEvent::Finished { function: name, result });
                }
            }
        }
        drop(watcher);
        self.stop_sandboxes().await;
        Ok(())
    }

    /// The objects of the watched folders not finished in their current version, as far as
    /// a listing can tell: a file that changes or vanishes within [`DEBOUNCE`] of the
    /// listing is left out (it is being written, or is a temporary name about to be renamed;
    /// the watcher reports it when it settles).
    async fn scan(
        &self,
        watched: &[Watched],
        functions: &HashMap<String, (StoredFunction, Record, WorkerLock)>,
        finished: &HashMap<Item, String>,
    ) -> Vec<Item> {
        let stamp = |path: &Path| {
            std::fs::symlink_metadata(path)
                .ok()
                .filter(|m| m.file_type().is_file())
                .map(|m| (m.len(), m.modified().ok()))
        };
        let mut listed = Vec::new();
        for w in watched {
            let Some((stored, ..)) = functions.get(&w.function) else {
                continue;
            };
            let Ok(rel) = w.dir.strip_prefix(&w.bucket_dir) else {
                continue;
            };
            let folder = BucketPath {
                bucket: w.bucket.clone(),
                folder: rel.to_string_lossy().into_owned(),
            };
            for key in self.buckets().keys(&folder).unwrap_or_default() {
                let path = w.bucket_dir.join(&key);
                if watched_key(&path, watched).is_none()
                    || !stored.info.spec.is_triggered_by(&w.bucket, &key)
                {
                    continue;
                }
                let Some(before) = stamp(&path) else { continue };
                listed.push((w, key, path, before));
            }
        }
        if listed.is_empty() {
            return Vec::new();
        }
        tokio::time::sleep(DEBOUNCE).await;
        let mut out = Vec::new();
        for (w, key, path, before) in listed {
            if stamp(&path) != Some(before) {
                continue;
            }
            let item = (w.function.clone(), w.bucket.clone(), key);
            let done = self
                .buckets()
                .info(&w.bucket, &item.2)
                .is_ok_and(|info| finished.get(&item) == Some(&info.etag));
            if !done {
                out.push(item);
            }
        }
        out
    }
}

/// How long the watcher waits after the last event on a path before reporting it. Writers
/// that write a temporary name and rename it into place (cp then mv, rsync, editors,
/// downloaders) rename within microseconds of closing the file; inside this window the
/// debouncer folds the temporary name's events into the final name's, so serve never sees
/// the temporary one. Short, because it delays every object by as much.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// The input folder of `spec` in `bucket` that the launcher runs it over, and the MinIO
/// server it is on (none: this machine's buckets).
pub(crate) fn launch_folder(
    spec: &FunctionSpec,
    bucket: &str,
) -> Result<(InputSpec, Option<String>), LocalError> {
    match (spec.input_in(bucket), spec.minio_input_in(bucket)) {
        (Some(input), _) => Ok((input.clone(), None)),
        (None, Some(input)) => Ok((input.clone(), input.storage.clone())),
        (None, None) => Err(SurfaceError::WrongBucket {
            function: spec.name.clone(),
            bucket: bucket.to_string(),
        }
        .into()),
    }
}

/// Of the `listed` objects, those `request` runs: all of them, those not done in their
/// current version (`pending_only`), or those that did not succeed (`only_failed`), as
/// the function's record (`done`) says.
pub(crate) fn to_launch(
    listed: Vec<ObjectInfo>,
    done: &HashMap<String, Processed>,
    request: &LaunchRequest,
) -> Vec<ObjectInfo> {
    listed
        .into_iter()
        .filter(|info| {
            let last = done.get(&info.key);
            if request.only_failed {
                last.is_some_and(|p| p.outcome != Outcome::Succeeded)
            } else if request.pending_only {
                last.is_none_or(|p| p.etag != info.etag)
            } else {
                true
            }
        })
        .collect()
}

/// The folders a function's inputs land in: its input folders in local buckets (a
/// storage provider's cannot be watched).
fn input_folders(spec: &FunctionSpec) -> Vec<InputSpec> {
    spec.inputs
        .iter()
        .filter(|i| i.storage.is_none())
        .cloned()
        .collect()
}

/// The function an uploaded output (`bucket/key`, as a response lists it) triggers, with
/// its bucket and key: the next step of a chain. A storage provider's outputs
/// (`<provider>:bucket/key`) trigger nothing here.
fn next_step<'a>(
    all: &'a [StoredFunction],
    uploaded: &'a str,
) -> Option<(&'a StoredFunction, &'a str, &'a str)> {
    let (bucket, key) = uploaded.split_once('/')?;
    if bucket.contains(':') {
        return None;
    }
    let next = all
        .iter()
        .find(|f| f.info.spec.is_triggered_by(bucket, key))?;
    Some((next, bucket, key))
}

/// `info` as an event describes it, now, the `chain`-th invocation of its chain.
fn object_created(info: &ObjectInfo, region: &str, chain: u32) -> ObjectCreated {
    ObjectCreated {
        bucket: info.bucket.clone(),
        key: info.key.clone(),
        size: info.size,
        etag: info.etag.clone(),
        event_time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        region: region.to_string(),
        sequence: 0,
        chain,
    }
}

/// A function's work item under `serve`: (function, bucket, key).
type Item = (String, String, String);

/// A watched input folder.
#[derive(Debug)]
struct Watched {
    /// The function it triggers.
    function: String,
    bucket: String,
    /// The bucket's directory: keys are relative to it.
    bucket_dir: PathBuf,
    /// The folder watched: the bucket directory or a directory inside it.
    dir: PathBuf,
}

/// The function and key a path under a watched folder stands for; `None` outside every
/// watched folder, and for scar's own files: anything under a bucket's `.scar/` directory
/// (the staging files of `put` and of the supervisor's outputs), which matters when the
/// watched folder is the whole bucket.
fn watched_key(path: &Path, watched: &[Watched]) -> Option<Item> {
    let w = watched.iter().find(|w| path.starts_with(&w.dir))?;
    let rel = path.strip_prefix(&w.bucket_dir).ok()?;
    let mut components = rel.components();
    match components.next()? {
        Component::Normal(first) if first != SCAR_DIR => {}
        _ => return None,
    }
    Some((
        w.function.clone(),
        w.bucket.clone(),
        rel.to_str()?.to_string(),
    ))
}

/// Objects waiting for a free slot, each once.
#[derive(Default)]
struct Pending {
    queue: VecDeque<Item>,
    queued: HashSet<Item>,
}

impl Pending {
    fn push(&mut self, item: Item, on_event: &(dyn Fn(&ServeEvent) + Send + Sync)) {
        if self.queued.insert(item.clone()) {
            on_event(&ServeEvent::Queued {
                function: item.0.clone(),
                key: item.2.clone(),
            });
            self.queue.push_back(item);
        }
    }
}

/// The (function, key) pairs a debounced file-system event completes: a file closed after
/// writing, or renamed or moved into place, under a watched input folder; a new directory is
/// scanned, since files may land in it before its watch does. A file's creation alone is
/// not enough (it may still be being written).
fn keys_of_event(event: &notify_debouncer_full::DebouncedEvent, watched: &[Watched]) -> Vec<Item> {
    use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RenameMode};
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
        if watched_key(path, watched).is_none() {
            continue;
        }
        let files = if path.is_dir() {
            crate::walk::files_under(path)
        } else {
            vec![path.clone()]
        };
        for file in files {
            if !std::fs::symlink_metadata(&file).is_ok_and(|m| m.file_type().is_file()) {
                continue;
            }
            out.extend(watched_key(&file, watched));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watching(dir: &str) -> Vec<Watched> {
        vec![Watched {
            function: "f".into(),
            bucket: "b".into(),
            bucket_dir: PathBuf::from("/buckets/b"),
            dir: PathBuf::from(dir),
        }]
    }

    #[test]
    fn keys_are_relative_to_the_bucket_and_scar_internals_are_never_inputs() {
        let input = watching("/buckets/b/input");
        let key = |p: &str, w: &[Watched]| watched_key(Path::new(p), w).map(|(_, _, k)| k);
        assert_eq!(
            key("/buckets/b/input/a/x.txt", &input).as_deref(),
            Some("input/a/x.txt")
        );
        assert_eq!(key("/buckets/b/output/x.txt", &input), None);
        assert_eq!(key("/buckets/other/input/x.txt", &input), None);
        // A whole bucket watched: its `.scar/` (staging of put and of outputs) is not.
        let bucket = watching("/buckets/b");
        assert_eq!(key("/buckets/b/.scar/tmp/0001-3", &bucket), None);
        assert_eq!(key("/buckets/b/.scar", &bucket), None);
        assert_eq!(
            key("/buckets/b/.scarf/x", &bucket).as_deref(),
            Some(".scarf/x")
        );
        assert_eq!(key("/buckets/b/x.txt", &bucket).as_deref(), Some("x.txt"));
        assert_eq!(key("/buckets/b", &bucket), None);
    }
}
