//! Event-driven processing: the launcher (every object already in a function's `input/`)
//! and `serve` (objects as they arrive, found by inotify), both through warm sandboxes
//! under a concurrency bound, both recording what they finished (see [`crate::records`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use scar_core::bucket::{BucketPath, ObjectCreated, INPUT_FOLDER};
use scar_core::provider::{FileResult, LaunchEvent, LaunchRequest, OnLaunch};
use scar_core::FunctionSpec;

use crate::buckets::{ObjectInfo, SCAR_DIR};
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
    fn bound(&self, name: &str) -> Result<(StoredFunction, String), LocalError> {
        let stored = self.layout().load(name)?;
        let bucket = stored
            .info
            .spec
            .input_bucket
            .clone()
            .ok_or_else(|| LocalError::NotBound(name.into()))?;
        Ok((stored, bucket))
    }

    /// Runs the function once for every object in its bucket's `input/` folder: the first
    /// synchronously (it warms a sandbox), the rest concurrently under the bound.
    pub(crate) async fn launch_inputs(
        &self,
        request: &LaunchRequest,
        on_event: OnLaunch<'_>,
    ) -> Result<Vec<FileResult>, LocalError> {
        let name = request.function.as_str();
        let (stored, bucket) = self.bound(name)?;
        if bucket != request.bucket {
            return Err(LocalError::WrongBucket {
                function: name.into(),
                bucket: request.bucket.clone(),
            });
        }
        let function_dir = self.layout().function_dir(name);
        let _lock = WorkerLock::try_take(&function_dir, name)?;
        let record = Record::new(&function_dir);
        let done = record.load();
        let mut objects = Vec::new();
        for key in self.input_keys(&stored, &bucket)? {
            let info = self.buckets().info(&bucket, &key)?;
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
        on_event(&LaunchEvent::Planned {
            total: objects.len(),
        });
        let mut results = Vec::with_capacity(objects.len());
        let mut rest = objects.into_iter();
        if let Some(first) = rest.next() {
            let r = self.process_object(&stored, &record, first).await;
            on_event(&LaunchEvent::Finished(r.clone()));
            results.push(r);
        }
        let mut running = futures_util::stream::iter(rest)
            .map(|info| self.process_object(&stored, &record, info))
            .buffer_unordered(self.concurrency(request.concurrency));
        while let Some(r) = running.next().await {
            on_event(&LaunchEvent::Finished(r.clone()));
            results.push(r);
        }
        Ok(results)
    }

    pub(crate) fn spec_bound_to(&self, bucket: &str) -> Result<Option<FunctionSpec>, LocalError> {
        Ok(self
            .layout()
            .list()?
            .into_iter()
            .map(|f| f.info.spec)
            .find(|spec| spec.input_bucket.as_deref() == Some(bucket)))
    }

    /// The keys of `bucket`'s `input/` folder that trigger `stored`: all but its own
    /// outputs (an output folder inside `input/`).
    fn input_keys(&self, stored: &StoredFunction, bucket: &str) -> Result<Vec<String>, LocalError> {
        let input = BucketPath {
            bucket: bucket.into(),
            folder: INPUT_FOLDER.into(),
        };
        let mut keys = self.buckets().keys(&input)?;
        keys.retain(|k| !stored.info.spec.is_own_output(k));
        Ok(keys)
    }

    /// Runs `name` for the given objects of its input folder (just stored by `scar put`),
    /// concurrently under the bound. Fails with [`LocalError::Busy`] when another scar
    /// process (`scar serve`) is processing the function: [`Self::wait_for`] then waits
    /// for that process's results instead.
    pub(crate) async fn process_objects(
        &self,
        name: &str,
        objects: Vec<ObjectInfo>,
        concurrency: usize,
        on_event: OnLaunch<'_>,
    ) -> Result<Vec<FileResult>, LocalError> {
        let (stored, _) = self.bound(name)?;
        let function_dir = self.layout().function_dir(name);
        let _lock = WorkerLock::try_take(&function_dir, name)?;
        let record = Record::new(&function_dir);
        on_event(&LaunchEvent::Planned {
            total: objects.len(),
        });
        let mut running = futures_util::stream::iter(objects)
            .map(|info| self.process_object(&stored, &record, info))
            .buffer_unordered(concurrency.max(1));
        let mut results = Vec::new();
        while let Some(r) = running.next().await {
            on_event(&LaunchEvent::Finished(r.clone()));
            results.push(r);
        }
        Ok(results)
    }

    /// Waits until the record of `name` says each object (in its current version) is done,
    /// as another process (`scar serve`) processes them, or until `timeout`.
    pub(crate) async fn wait_for(
        &self,
        name: &str,
        objects: &[ObjectInfo],
        timeout: std::time::Duration,
        on_event: OnLaunch<'_>,
    ) -> Result<Vec<FileResult>, LocalError> {
        let record = Record::new(&self.layout().function_dir(name));
        on_event(&LaunchEvent::Planned {
            total: objects.len(),
        });
        let started = std::time::Instant::now();
        let mut results: HashMap<String, FileResult> = HashMap::new();
        while results.len() < objects.len() && started.elapsed() < timeout {
            let done = record.load();
            for info in objects {
                if results.contains_key(&info.key) {
                    continue;
                }
                if let Some(p) = done.get(&info.key).filter(|p| p.etag == info.etag) {
                    let r = FileResult {
                        key: p.key.clone(),
                        outcome: p.outcome,
                        exit_code: p.exit_code,
                        request_id: p.request_id.clone(),
                        uploaded: p.uploaded.clone(),
                        output_tail: String::new(),
                        error: None,
                        attempts: 1,
                    };
                    on_event(&LaunchEvent::Finished(r.clone()));
                    results.insert(info.key.clone(), r);
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Ok(objects
            .iter()
            .filter_map(|o| results.remove(&o.key))
            .collect())
    }

    /// Invokes the function for one object with the S3 event AWS would send, and records
    /// the outcome.
    pub(crate) async fn process_object(
        &self,
        stored: &StoredFunction,
        record: &Record,
        info: ObjectInfo,
    ) -> FileResult {
        let event = ObjectCreated {
            bucket: info.bucket.clone(),
            key: info.key.clone(),
            size: info.size,
            etag: info.etag.clone(),
            event_time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            region: self.region().to_string(),
            sequence: 0,
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
            let Some(folder) = input_folder(&stored.info.spec) else {
                continue;
            };
            let name = stored.info.spec.name.clone();
            let dir = self.layout().function_dir(&name);
            let lock = WorkerLock::try_take(&dir, &name)?;
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
                bucket: folder.bucket.clone(),
            });
            watched.push(Watched {
                function: name.clone(),
                bucket: folder.bucket,
                bucket_dir,
                dir: input,
            });
            functions.insert(name, (stored, Record::new(&dir), lock));
        }

        // What each function has finished, by key: the ETag it had.
        let mut finished: HashMap<(String, String), String> = HashMap::new();
        for (name, (_, record, _)) in &functions {
            for (key, p) in record.load() {
                finished.insert((name.clone(), key), p.etag);
            }
        }
        let mut pending = Pending::default();
        // The start-up scan: what arrived while nothing watched.
        for (name, key) in self.scan(&watched, &functions, &finished).await {
            pending.push(name, key, on_event);
        }

        let mut running = FuturesUnordered::new();
        let mut in_flight: HashSet<(String, String)> = HashSet::new();
        let mut changed_while_running: HashSet<(String, String)> = HashSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        let mut stopping = false;
        loop {
            while !stopping && running.len() < concurrency.max(1) {
                let Some(item) = pending.queue.pop_front() else {
                    break;
                };
                pending.queued.remove(&item);
                let (name, key) = item.clone();
                let Some((stored, record, _)) = functions.get(&name) else {
                    continue;
                };
                let Some(w) = watched.iter().find(|w| w.function == name) else {
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
                    (name, etag, result)
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
                    for (name, key) in found {
                        // What the function itself uploaded (an output folder inside
                        // input/) is not an input.
                        if functions.get(&name).is_some_and(|(s, ..)| s.info.spec.is_own_output(&key)) {
                            continue;
                        }
                        let item = (name.clone(), key.clone());
                        if in_flight.contains(&item) {
                            changed_while_running.insert(item);
                        } else {
                            pending.push(name, key, on_event);
                        }
                    }
                }
                Some((name, etag, result)) = running.next(), if !running.is_empty() => {
                    let item = (name.clone(), result.key.clone());
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
        finished: &HashMap<(String, String), String>,
    ) -> Vec<(String, String)> {
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
                if watched_key(&path, watched).is_none() || stored.info.spec.is_own_output(&key) {
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
            let item = (w.function.clone(), key);
            let done = self
                .buckets()
                .info(&w.bucket, &item.1)
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

/// The folder a function's inputs land in, if it has one: today `input/` of its bucket.
fn input_folder(spec: &FunctionSpec) -> Option<BucketPath> {
    spec.input_bucket.clone().map(|bucket| BucketPath {
        bucket,
        folder: INPUT_FOLDER.into(),
    })
}

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
fn watched_key(path: &Path, watched: &[Watched]) -> Option<(String, String)> {
    let w = watched.iter().find(|w| path.starts_with(&w.dir))?;
    let rel = path.strip_prefix(&w.bucket_dir).ok()?;
    let mut components = rel.components();
    match components.next()? {
        Component::Normal(first) if first != SCAR_DIR => {}
        _ => return None,
    }
    Some((w.function.clone(), rel.to_str()?.to_string()))
}

/// Objects waiting for a free slot, each once.
#[derive(Default)]
struct Pending {
    queue: VecDeque<(String, String)>,
    queued: HashSet<(String, String)>,
}

impl Pending {
    fn push(
        &mut self,
        function: String,
        key: String,
        on_event: &(dyn Fn(&ServeEvent) + Send + Sync),
    ) {
        if self.queued.insert((function.clone(), key.clone())) {
            on_event(&ServeEvent::Queued {
                function: function.clone(),
                key: key.clone(),
            });
            self.queue.push_back((function, key));
        }
    }
}

/// The (function, key) pairs a debounced file-system event completes: a file closed after
/// writing, or renamed or moved into place, under a watched input folder; a new directory is
/// scanned, since files may land in it before its watch does. A file's creation alone is
/// not enough (it may still be being written).
fn keys_of_event(
    event: &notify_debouncer_full::DebouncedEvent,
    watched: &[Watched],
) -> Vec<(String, String)> {
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
            files_under(path)
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
        let key = |p: &str, w: &[Watched]| watched_key(Path::new(p), w).map(|(_, k)| k);
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
