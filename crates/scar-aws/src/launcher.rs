//! The launcher (`scar run -es BUCKET`): one invocation per object under a bucket's
//! `input/` folder, each given the S3 event notification S3 itself would send.

use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_lambda::config::retry::RetryConfig;
use aws_sdk_lambda::operation::RequestId as _;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use scar_core::provider::ObjectInfo;
use scar_core::provider::SurfaceError;
use scar_core::provider::{
    FileResult, Invocation, LaunchEvent, LaunchRequest, OnLaunch, Outcome, Unsupported,
};
use scar_core::ExecutionMode;

use crate::error::SdkResultExt as _;
use crate::invoke::{invocation_of, invoke_request};
use crate::{AwsError, AwsProvider};

/// How throttled invocations are retried: exponential backoff with jitter, bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per invocation, the first included.
    pub max_attempts: u32,
    /// The backoff before the second attempt; doubled for each further one.
    pub base_delay: Duration,
    /// The longest backoff.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 8 attempts, backing off from 100 ms up to 20 s.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// The backoff after failed attempt `attempt` (1-based): half of the exponential
    /// delay fixed, the other half random ("equal jitter"), so that throttled callers
    /// spread out instead of retrying in lockstep.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.max_delay);
        let half = exp / 2;
        let jitter = half.mul_f64(random_unit());
        half + jitter
    }
}

/// A number in [0, 1), different on every call (no `rand` dependency needed for jitter).
fn random_unit() -> f64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// What [`AwsProvider::launch`] does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchOptions {
    /// The function to invoke.
    pub function: String,
    /// The bucket holding the input objects.
    pub bucket: String,
    /// The prefix to list; `input/` (SCAR's input folder) by default.
    pub prefix: String,
    /// Asynchronous invocations in flight at once (at least 1).
    pub concurrency: usize,
    /// How throttled invocations are retried.
    pub retry: RetryPolicy,
}

impl DispatchOptions {
    /// A launch of `function` over `bucket`/`input/`, 32 invocations in flight, default
    /// retries.
    pub fn new(function: impl Into<String>, bucket: impl Into<String>) -> DispatchOptions {
        DispatchOptions {
            function: function.into(),
            bucket: bucket.into(),
            prefix: format!("{}/", scar_core::bucket::INPUT_FOLDER),
            concurrency: crate::DEFAULT_CONCURRENCY,
            retry: RetryPolicy::default(),
        }
    }
}

/// Progress of a launch, for the caller to draw; the library draws nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispatchEvent {
    /// The input folder was listed: `objects` invocations to make.
    Listed {
        /// How many objects were found.
        objects: usize,
    },
    /// The first invocation (synchronous, it warms the function) is running.
    Warming {
        /// Its object key.
        key: String,
    },
    /// An invocation was throttled and will be retried after `delay`.
    Throttled {
        /// Its object key.
        key: String,
        /// The attempt that was throttled (1-based).
        attempt: u32,
        /// The wait before the next attempt.
        delay: Duration,
    },
    /// An invocation was accepted (or, for the first one, answered), or gave up.
    Done {
        /// Its object key.
        key: String,
        /// Whether it was accepted (the first: answered successfully).
        ok: bool,
    },
}

/// How one object's invocation ended.
#[derive(Debug)]
pub enum DispatchOutcome {
    /// The first invocation, made synchronously: its full result (the script may still
    /// have failed: see `response.succeeded()`).
    Completed(Box<Invocation>),
    /// An asynchronous invocation Lambda accepted (HTTP 202).
    Queued {
        /// Lambda's request id for it.
        request_id: String,
    },
    /// The invocation failed (after the retries, for throttling).
    Failed(AwsError),
}

/// One object's invocation.
#[derive(Debug)]
pub struct DispatchResult {
    /// The object key, as stored.
    pub key: String,
    /// Attempts made (more than 1 when throttled).
    pub attempts: u32,
    /// How it ended.
    pub outcome: DispatchOutcome,
}

impl DispatchResult {
    /// Whether the invocation was accepted (or, for the synchronous one, succeeded).
    pub fn ok(&self) -> bool {
        match &self.outcome {
            DispatchOutcome::Completed(inv) => inv.response.succeeded(),
            DispatchOutcome::Queued { .. } => true,
            DispatchOutcome::Failed(_) => false,
        }
    }
}

/// Totals of a launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DispatchSummary {
    /// Objects found (one invocation each).
    pub objects: usize,
    /// Asynchronous invocations accepted.
    pub queued: usize,
    /// Synchronous invocations answered (the first one).
    pub completed: usize,
    /// Synchronous invocations whose script failed or timed out.
    pub function_failures: usize,
    /// Invocations that could not be made.
    pub failed: usize,
    /// Retries made after throttling, over all invocations.
    pub retries: u32,
}

impl DispatchSummary {
    /// Adds up `results`.
    pub fn of(results: &[DispatchResult]) -> DispatchSummary {
        let mut s = DispatchSummary {
            objects: results.len(),
            ..DispatchSummary::default()
        };
        for r in results {
            s.retries += r.attempts.saturating_sub(1);
            match &r.outcome {
                DispatchOutcome::Completed(inv) => {
                    s.completed += 1;
                    if !inv.response.succeeded() {
                        s.function_failures += 1;
                    }
                }
                DispatchOutcome::Queued { .. } => s.queued += 1,
                DispatchOutcome::Failed(_) => s.failed += 1,
            }
        }
        s
    }
}

/// The event a MinIO server's webhook sends for a new object, as one invocation's payload
/// (MinIO cannot notify Lambda: the launcher sends it instead).
pub(crate) fn minio_event(region: &str, object: &ObjectInfo, sequence: u64) -> serde_json::Value {
    object_created(region, object, sequence).to_minio_event()
}

/// The S3 event notification S3 sends for a new object, as one invocation's payload.
///
/// Keys are URL-encoded with `+` for spaces, as S3 does.
pub(crate) fn s3_event(region: &str, object: &ObjectInfo, sequence: u64) -> serde_json::Value {
    object_created(region, object, sequence).to_event()
}

/// A listed object as an event describes it, for either form of event.
fn object_created(
    region: &str,
    object: &ObjectInfo,
    sequence: u64,
) -> scar_core::bucket::ObjectCreated {
    scar_core::bucket::ObjectCreated {
        bucket: object.bucket.clone(),
        key: object.key.clone(),
        size: object.size,
        etag: object.etag.clone(),
        event_time: Some(object.modified.clone())
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| {
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            }),
        region: region.to_string(),
        sequence,
        // On AWS, Lambda counts a chain's invocations itself; MinIO's events start one.
        chain: 1,
    }
}

impl AwsProvider {
    /// Lists the objects under `prefix` in `bucket` (every page; folder markers, keys
    /// ending in `/`, skipped).
    pub async fn list_inputs(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<ObjectInfo>, AwsError> {
        list_objects(&self.s3, bucket, prefix).await
    }

    /// An S3 client for the storage provider `id` (`minio.<id>`, `s3.<id>`): this
    /// provider's client (its HTTP and TLS stack) pointed at the provider's endpoint, with
    /// its keys and region; path-style.
    pub fn provider_s3_client(
        &self,
        id: &str,
        provider: &scar_core::StorageProvider,
    ) -> aws_sdk_s3::Client {
        scar_s3::S3Options::for_provider(id, provider).client_over(&self.s3)
    }
}

/// Lists the objects under `prefix` in `bucket` through `client` (every page; folder
/// markers, keys ending in `/`, skipped).
pub(crate) async fn list_objects(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<ObjectInfo>, AwsError> {
    scar_s3::list(client, bucket, prefix)
        .await
        .map_err(|e| AwsError::Service {
            operation: "s3:ListObjectsV2",
            resource: format!("{bucket}/{prefix}"),
            code: e.code,
            detail: e.detail,
            status: e.status,
            source: e.source,
        })
}

impl AwsProvider {
    /// The launcher: invokes `request.function` once per object under
    /// `request.bucket`/`request.prefix`, with the S3 event S3 would send for it. The first
    /// invocation is synchronous (it warms the function, so the others find it ready);
    /// the rest are asynchronous (`Event`), `request.concurrency` in flight at once.
    /// Throttled invocations are retried per `request.retry`.
    ///
    /// Returns one result per object, in no particular order; see [`DispatchSummary::of`].
    /// Fails as a whole only when the function does not exist or the bucket cannot be
    /// listed.
    pub async fn launch_objects(
        &self,
        request: &DispatchOptions,
        progress: &(dyn Fn(DispatchEvent) + Send + Sync),
    ) -> Result<Vec<DispatchResult>, AwsError> {
        self.existing_function(&request.function).await?;
        let objects = self.list_inputs(&request.bucket, &request.prefix).await?;
        progress(DispatchEvent::Listed {
            objects: objects.len(),
        });
        let region = self.region.clone();
        let payloads = objects.into_iter().enumerate().map(move |(i, object)| {
            let event = s3_event(&region, &object, i as u64 + 1);
            (object.key, serde_json::to_vec(&event).unwrap_or_default())
        });
        Ok(self
            .dispatch(&request.function, payloads, true, request, progress)
            .await)
    }

    /// Invokes `function` once per `(key, payload)`: the first synchronously when `warm`,
    /// the rest asynchronously, `options.concurrency` in flight, with retries on
    /// throttling. The launcher's engine, public for callers that already know their
    /// payloads (and for benchmarks).
    pub async fn dispatch(
        &self,
        function: &str,
        payloads: impl IntoIterator<Item = (String, Vec<u8>)>,
        warm: bool,
        options: &DispatchOptions,
        progress: &(dyn Fn(DispatchEvent) + Send + Sync),
    ) -> Vec<DispatchResult> {
        let mut payloads = payloads.into_iter();
        let mut results = Vec::new();
        let (tx, mut rx) = mpsc::unbounded_channel::<DispatchEvent>();
        // One client for the whole launch, the SDK's retries off (this policy retries):
        // built once, not overridden per call; its connections are kept alive from one
        // invocation to the next.
        let lambda = self.dispatch_client();
        if warm {
            if let Some((key, body)) = payloads.next() {
                progress(DispatchEvent::Warming { key: key.clone() });
                let result = invoke_with_retries(
                    lambda.clone(),
                    function.to_string(),
                    key,
                    body,
                    true,
                    options.retry,
                    tx.clone(),
                )
                .await;
                while let Ok(event) = rx.try_recv() {
                    progress(event);
                }
                progress(DispatchEvent::Done {
                    key: result.key.clone(),
                    ok: result.ok(),
                });
                results.push(result);
            }
        }
        let concurrency = options.concurrency.max(1);
        let mut set = JoinSet::new();
        loop {
            // Tasks are spawned as others finish, so a million objects are never a
            // million tasks at once.
            while set.len() < concurrency {
                let Some((key, body)) = payloads.next() else {
                    break;
                };
                set.spawn(invoke_with_retries(
                    lambda.clone(),
                    function.to_string(),
                    key,
                    body,
                    false,
                    options.retry,
                    tx.clone(),
                ));
            }
            if set.is_empty() {
                break;
            }
            tokio::select! {
                Some(event) = rx.recv() => progress(event),
                Some(joined) = set.join_next() => {
                    if let Ok(result) = joined {
                        while let Ok(event) = rx.try_recv() {
                            progress(event);
                        }
                        progress(DispatchEvent::Done { key: result.key.clone(), ok: result.ok() });
                        results.push(result);
                    }
                }
            }
        }
        while let Ok(event) = rx.try_recv() {
            progress(event);
        }
        results
    }

    /// The Lambda client the launcher invokes through: the provider's configuration (its
    /// region, endpoint, credentials and timeouts) with the SDK's retries turned off. Under heavy throttling the SDK's shared retry quota runs out and fails
    /// calls early, while [`RetryPolicy`] backs each call off on its own.
    fn dispatch_client(&self) -> aws_sdk_lambda::Client {
        aws_sdk_lambda::Client::from_conf(
            self.lambda
                .config()
                .to_builder()
                .retry_config(RetryConfig::disabled())
                .build(),
        )
    }
}

/// One invocation with the launcher's retries, through
/// [`dispatch_client`](AwsProvider::dispatch_client) (the SDK's own retries off).
async fn invoke_with_retries(
    lambda: aws_sdk_lambda::Client,
    function: String,
    key: String,
    body: Vec<u8>,
    sync: bool,
    policy: RetryPolicy,
    events: mpsc::UnboundedSender<DispatchEvent>,
) -> DispatchResult {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let sent = invoke_request(&lambda, &function, body.clone(), sync)
            .send()
            .await;
        let outcome = match sent.map_sdk_err("lambda:Invoke", &function) {
            Ok(out) if sync => match invocation_of(&function, scar_core::RuntimeClient::Scar, &out)
            {
                Ok(invocation) => DispatchOutcome::Completed(Box::new(invocation)),
                Err(e) => DispatchOutcome::Failed(e),
            },
            Ok(out) => DispatchOutcome::Queued {
                request_id: out.request_id().unwrap_or_default().to_string(),
            },
            Err(err) if err.is_throttling() && attempt < policy.max_attempts => {
                let delay = policy.delay(attempt);
                let _ = events.send(DispatchEvent::Throttled {
                    key: key.clone(),
                    attempt,
                    delay,
                });
                tokio::time::sleep(delay).await;
                continue;
            }
            Err(err) => DispatchOutcome::Failed(err),
        };
        return DispatchResult {
            key,
            attempts: attempt,
            outcome,
        };
    }
}

/// What [`dispatch_bench`] measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DispatchBench {
    /// Invocations made by each method.
    pub invocations: usize,
    /// In flight at once for the concurrent method.
    pub concurrency: usize,
    /// A plain loop awaiting one `Event` invocation after the other.
    pub sequential: Duration,
    /// The launcher's dispatcher.
    pub concurrent: Duration,
    /// Invocations the launcher could not make.
    pub failed: usize,
}

impl DispatchBench {
    /// Invocations per second of the sequential loop.
    pub fn sequential_rate(&self) -> f64 {
        self.invocations as f64 / self.sequential.as_secs_f64().max(1e-9)
    }

    /// Invocations per second of the launcher.
    pub fn concurrent_rate(&self) -> f64 {
        self.invocations as f64 / self.concurrent.as_secs_f64().max(1e-9)
    }
}

/// The benchmark hook: `n` asynchronous invocations of `function` with S3 event payloads,
/// first as a sequential loop, then through the launcher's dispatcher with `concurrency`
/// in flight. Point the provider at an emulator (moto) to measure scar's own overhead.
pub async fn dispatch_bench(
    provider: &AwsProvider,
    function: &str,
    n: usize,
    concurrency: usize,
) -> Result<DispatchBench, AwsError> {
    let payloads: Vec<(String, Vec<u8>)> = (0..n)
        .map(|i| {
            let object = ObjectInfo {
                bucket: "bench".into(),
                key: format!("input/bench file {i}.txt"),
                size: 1,
                etag: "d41d8cd98f00b204e9800998ecf8427e".into(),
                modified: String::new(),
            };
            let event = s3_event(provider.region(), &object, i as u64);
            (object.key, serde_json::to_vec(&event).unwrap_or_default())
        })
        .collect();
    let started = Instant::now();
    for (_, body) in &payloads {
        invoke_request(&provider.lambda, function, body.clone(), false)
            .send()
            .await
            .map_sdk_err("lambda:Invoke", function)?;
    }
    let sequential = started.elapsed();
    let mut options = DispatchOptions::new(function, "bench");
    options.concurrency = concurrency;
    let started = Instant::now();
    let results = provider
        .dispatch(function, payloads, false, &options, &|_| {})
        .await;
    let concurrent = started.elapsed();
    Ok(DispatchBench {
        invocations: n,
        concurrency,
        sequential,
        concurrent,
        failed: results.iter().filter(|r| !r.ok()).count(),
    })
}

impl AwsProvider {
    /// Runs the function over the objects of its input folder in the request's bucket
    /// (its own storage's, or a MinIO server's, which cannot notify Lambda): S3's event
    /// for each, invoked asynchronously with retries, or a Batch job each.
    pub(crate) async fn launch_folder(
        &self,
        request: &LaunchRequest,
        on_event: OnLaunch<'_>,
    ) -> Result<Vec<FileResult>, AwsError> {
        if request.only_failed || request.pending_only {
            return Err(scar_core::provider::SurfaceError::from(Unsupported {
                provider: crate::PROVIDER_NAME,
                what: "--only-failed and --pending".into(),
                instead: "on AWS the launcher invokes the function for every file under input/, and Lambda keeps no record of what ran".into(),
            })
            .into());
        }
        let info = self.describe_function(&request.function).await?;
        let spec = info.spec;
        let (input, minio) = match (
            spec.input_in(&request.bucket),
            spec.minio_input_in(&request.bucket),
        ) {
            (Some(input), _) => (input.clone(), None),
            (None, Some(input)) => {
                let id = input.storage.clone().unwrap_or_default();
                let Some(provider) = spec.storage_providers.get(&id) else {
                    return Err(SurfaceError::NoProvider {
                        function: request.function.clone(),
                        storage: id,
                    }
                    .into());
                };
                let region = provider.region.clone().unwrap_or_default();
                let client = self.provider_s3_client(&id, provider);
                (input.clone(), Some((id, region, client)))
            }
            (None, None) => {
                return Err(SurfaceError::WrongBucket {
                    function: request.function.clone(),
                    bucket: request.bucket.clone(),
                }
                .into())
            }
        };
        let prefix = input.prefix();
        // Own outputs (an output folder inside the input folder) never run the function:
        // they are left out of the listing, not invoked only for the supervisor to skip them.
        let objects: Vec<_> = match &minio {
            // MinIO cannot notify Lambda: the launcher lists the folder on the server and
            // sends the event MinIO's webhook would.
            Some((id, _, client)) => {
                crate::launcher::list_objects(client, &request.bucket, &prefix)
                    .await
                    .map_err(|e| e.on_storage_provider(id))?
                    .into_iter()
                    .filter(|o| spec.is_input_of(id, &request.bucket, &o.key))
                    .collect()
            }
            None => self
                .list_inputs(&request.bucket, &prefix)
                .await?
                .into_iter()
                .filter(|o| spec.is_triggered_by(&request.bucket, &o.key))
                .collect(),
        };
        on_event(&LaunchEvent::Planned {
            total: objects.len(),
        });
        let concurrency = request
            .concurrency
            .filter(|c| *c > 0)
            .unwrap_or(crate::DEFAULT_CONCURRENCY);
        let events = objects.into_iter().enumerate().map(|(i, object)| {
            let event = match &minio {
                Some((_, region, _)) => crate::launcher::minio_event(region, &object, i as u64 + 1),
                None => crate::launcher::s3_event(&self.region, &object, i as u64 + 1),
            };
            (object.key, event)
        });
        if spec.execution_mode == ExecutionMode::Batch {
            // A job per object, submitted here: no Lambda invocation in between.
            return Ok(self
                .submit_jobs(&request.function, events, concurrency, on_event)
                .await);
        }
        let mut options = DispatchOptions::new(&request.function, &request.bucket);
        options.prefix = prefix;
        options.concurrency = concurrency;
        let payloads =
            events.map(|(key, event)| (key, serde_json::to_vec(&event).unwrap_or_default()));
        let results = self
            .dispatch(&request.function, payloads, true, &options, &|e| match e {
                DispatchEvent::Throttled { key, attempt, .. } => {
                    on_event(&LaunchEvent::Retrying { key, attempt })
                }
                // Progress as invocations are accepted; the results returned are complete.
                DispatchEvent::Done { key, ok } => {
                    let outcome = if ok {
                        Outcome::Queued
                    } else {
                        Outcome::NotInvoked
                    };
                    on_event(&LaunchEvent::Finished(FileResult::new(key, outcome)))
                }
                DispatchEvent::Listed { .. } | DispatchEvent::Warming { .. } => {}
            })
            .await;
        Ok(results.into_iter().map(file_result).collect())
    }
}

/// A launch result in the providers' common shape.
fn file_result(r: DispatchResult) -> FileResult {
    let mut out = match r.outcome {
        DispatchOutcome::Completed(inv) => FileResult::from_response(r.key, inv.response),
        DispatchOutcome::Queued { request_id } => FileResult {
            request_id,
            ..FileResult::new(r.key, Outcome::Queued)
        },
        DispatchOutcome::Failed(e) => FileResult::from_error(r.key, &e),
    };
    out.attempts = r.attempts;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_is_bounded() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        };
        for attempt in 1..12 {
            let d = p.delay(attempt);
            let exp = (Duration::from_millis(100) * (1 << (attempt - 1).min(10))).min(p.max_delay);
            assert!(
                d >= exp / 2 && d <= exp,
                "attempt {attempt}: {d:?} vs {exp:?}"
            );
        }
        let delays: std::collections::HashSet<_> = (0..20).map(|_| p.delay(5)).collect();
        assert!(delays.len() > 1, "no jitter");
    }

    #[test]
    fn events_look_like_s3s() {
        let object = ObjectInfo {
            bucket: "bk".into(),
            key: "input/a b+c.txt".into(),
            size: 42,
            etag: "abc".into(),
            modified: "2024-01-02T03:04:05Z".into(),
        };
        let event = s3_event("eu-west-1", &object, 7);
        let record = &event["Records"][0];
        assert_eq!(record["eventVersion"], "2.1");
        assert_eq!(record["eventSource"], "aws:s3");
        assert_eq!(record["awsRegion"], "eu-west-1");
        assert_eq!(record["eventName"], "ObjectCreated:Put");
        assert_eq!(record["s3"]["bucket"]["arn"], "arn:aws:s3:::bk");
        assert_eq!(record["s3"]["object"]["key"], "input/a+b%2Bc.txt");
        assert_eq!(record["s3"]["object"]["size"], 42);
        // What the supervisor reads back.
        match scar_core::event::Event::parse(&event).unwrap() {
            scar_core::event::Event::Storage(records) => {
                assert_eq!(records[0].key, "input/a b+c.txt");
                assert_eq!(records[0].bucket, "bk");
            }
            other => panic!("{other:?}"),
        }
        let parsed: scar_core::event::S3Event = serde_json::from_value(event).unwrap();
        assert_eq!(parsed.records.len(), 1);
    }

    #[test]
    fn summary_adds_up() {
        let results = vec![
            DispatchResult {
                key: "a".into(),
                attempts: 3,
                outcome: DispatchOutcome::Queued {
                    request_id: "x".into(),
                },
            },
            DispatchResult {
                key: "b".into(),
                attempts: 1,
                outcome: DispatchOutcome::Failed(AwsError::Surface(SurfaceError::NotFound(
                    "f".into(),
                ))),
            },
        ];
        let s = DispatchSummary::of(&results);
        assert_eq!((s.objects, s.queued, s.failed, s.retries), (2, 1, 1, 2));
    }
}
