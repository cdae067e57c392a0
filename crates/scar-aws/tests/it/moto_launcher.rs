//! The launcher against moto, through a recording proxy: every object invoked exactly once
//! with S3's event, and throttled invocations retried.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use common::proxy::Proxy;
use common::{scar_response, spec, Moto};
use scar_aws::{
    AwsProvider, DispatchEvent, DispatchOptions, DispatchOutcome, DispatchSummary, RetryPolicy,
};
use scar_test_support::moto as common;

use crate::on_moto::{init_zip, provider, provider_at, put_object};

async fn function_and_inputs(moto: &Moto, aws: &AwsProvider, name: &str, keys: &[String]) {
    init_zip(aws, spec(name)).await.unwrap();
    let s3 = aws.s3_client();
    s3.create_bucket().bucket("launch").send().await.unwrap();
    // A folder marker, which is not an input, and one object outside input/.
    for key in ["input/", "output/elsewhere.txt"] {
        put_object(aws, "launch", key, b"").await;
    }
    for key in keys {
        put_object(aws, "launch", key, key.as_bytes()).await;
    }
    // The first (synchronous) invocation gets a scar response; the rest are echoed.
    moto.queue_invoke_results(&[scar_response("warm-1", "warmed\n")]);
}

/// Object keys the proxy saw reach moto, as sent (URL-encoded), with their counts.
fn invoked_keys(proxy: &Proxy) -> BTreeMap<String, usize> {
    let mut keys = BTreeMap::new();
    for r in proxy.forwarded() {
        let event: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let record = &event["Records"][0];
        assert_eq!(record["eventSource"], "aws:s3");
        assert_eq!(record["eventName"], "ObjectCreated:Put");
        assert_eq!(record["s3"]["bucket"]["name"], "launch");
        assert_eq!(record["awsRegion"], "us-east-1");
        let key = record["s3"]["object"]["key"].as_str().unwrap().to_string();
        *keys.entry(key).or_default() += 1;
    }
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launcher_invokes_each_object_once_with_s3s_event() {
    let Some(moto) = Moto::start() else { return };
    let direct = provider(&moto).await;
    let keys: Vec<String> = (0..100)
        .map(|i| format!("input/photo {i:03} of 100+more.jpg"))
        .collect();
    function_and_inputs(&moto, &direct, "launchfn", &keys).await;

    let proxy = Proxy::start(moto.port, 0).await;
    let aws = provider_at(&moto, &proxy.endpoint()).await;
    let events = Mutex::new(Vec::new());
    let mut request = DispatchOptions::new("launchfn", "launch");
    request.concurrency = 8;
    let results = aws
        .launch_objects(&request, &|e| events.lock().unwrap().push(e))
        .await
        .unwrap();

    assert_eq!(results.len(), 100);
    let summary = DispatchSummary::of(&results);
    assert_eq!(
        (
            summary.completed,
            summary.queued,
            summary.failed,
            summary.retries
        ),
        (1, 99, 0, 0),
        "{summary:?}"
    );
    let warm = results
        .iter()
        .find_map(|r| match &r.outcome {
            DispatchOutcome::Completed(inv) => Some(inv),
            _ => None,
        })
        .unwrap();
    assert_eq!(warm.response.output, "warmed\n");

    // The first invocation is synchronous, the others are events.
    let forwarded = proxy.forwarded();
    assert_eq!(forwarded.len(), 100);
    assert_eq!(forwarded[0].invocation_type, "RequestResponse");
    assert!(forwarded[1..].iter().all(|r| r.invocation_type == "Event"));

    // Each key exactly once, URL-encoded as S3 sends it ('+' for spaces, %2B for '+').
    let invoked = invoked_keys(&proxy);
    assert_eq!(invoked.len(), 100);
    for key in &keys {
        let encoded = scar_core::event::encode_s3_key(key);
        assert!(
            encoded.contains("photo+") && encoded.contains("%2Bmore"),
            "{encoded}"
        );
        assert_eq!(invoked.get(&encoded), Some(&1), "{key}");
    }

    let events = events.into_inner().unwrap();
    assert_eq!(events[0], DispatchEvent::Listed { objects: 100 });
    assert!(matches!(events[1], DispatchEvent::Warming { .. }));
    let done = events
        .iter()
        .filter(|e| matches!(e, DispatchEvent::Done { ok: true, .. }))
        .count();
    assert_eq!(done, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_invocations_are_retried() {
    let Some(moto) = Moto::start() else { return };
    let direct = provider(&moto).await;
    let keys: Vec<String> = (0..20).map(|i| format!("input/file {i}.txt")).collect();
    function_and_inputs(&moto, &direct, "throttledfn", &keys).await;

    // The first 12 asynchronous invoke requests get 429.
    let proxy = Proxy::start_with(moto.port, 12, true).await;
    let aws = provider_at(&moto, &proxy.endpoint()).await;
    let mut request = DispatchOptions::new("throttledfn", "launch");
    request.concurrency = 4;
    request.retry = RetryPolicy {
        max_attempts: 10,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(200),
    };
    let throttled = Mutex::new(0);
    let results = aws
        .launch_objects(&request, &|e| {
            if matches!(e, DispatchEvent::Throttled { .. }) {
                *throttled.lock().unwrap() += 1;
            }
        })
        .await
        .unwrap();
    let summary = DispatchSummary::of(&results);
    assert_eq!(proxy.throttled(), 12);
    assert_eq!(summary.failed, 0, "{results:?}");
    assert_eq!((summary.completed, summary.queued), (1, 19));
    assert_eq!(summary.retries, 12);
    assert_eq!(*throttled.lock().unwrap(), 12);
    let invoked = invoked_keys(&proxy);
    assert_eq!(invoked.len(), 20);
    assert!(invoked.values().all(|&n| n == 1), "{invoked:?}");

    // The synchronous first invocation is retried too.
    let proxy = Proxy::start(moto.port, 2).await;
    let aws = provider_at(&moto, &proxy.endpoint()).await;
    moto.queue_invoke_results(&[scar_response("warm-2", "again\n")]);
    let results = aws.launch_objects(&request, &|_| {}).await.unwrap();
    let warm = results
        .iter()
        .find(|r| matches!(r.outcome, DispatchOutcome::Completed(_)))
        .unwrap();
    assert_eq!(warm.attempts, 3);
    assert_eq!(DispatchSummary::of(&results).failed, 0);

    // Retries are bounded: a function throttled for longer gives up, saying why.
    let proxy = Proxy::start(moto.port, 1000).await;
    let aws = provider_at(&moto, &proxy.endpoint()).await;
    request.retry.max_attempts = 3;
    let results = aws.launch_objects(&request, &|_| {}).await.unwrap();
    assert_eq!(results.len(), 20);
    for r in &results {
        assert_eq!(r.attempts, 3);
        match &r.outcome {
            DispatchOutcome::Failed(e) => {
                assert!(e.is_throttling(), "{e}");
                assert!(e.to_string().contains("lambda:Invoke"), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(proxy.throttled(), 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_bench_measures_both_ways() {
    let Some(moto) = Moto::start() else { return };
    let aws = provider(&moto).await;
    init_zip(&aws, spec("benchfn")).await.unwrap();
    let bench = scar_aws::dispatch_bench(&aws, "benchfn", 20, 8)
        .await
        .unwrap();
    assert_eq!(bench.invocations, 20);
    assert_eq!(bench.failed, 0);
    assert!(bench.sequential_rate() > 0.0 && bench.concurrent_rate() > 0.0);
}
