//! Log slicing on events written into CloudWatch (moto), and put/get of a large file.

use std::sync::Mutex;

use common::Moto;
use scar_aws::TransferEvent;
use scar_core::provider::{LogQuery, Provider};
use scar_test_support::moto as common;

use crate::on_moto::{provider, write_log_stream};

#[tokio::test]
async fn logs_slice_one_request_out_of_interleaved_streams() {
    let Some(moto) = Moto::start() else { return };
    let aws = provider(&moto).await;
    let logs = aws.logs_client();
    let group = "/aws/lambda/logfn";
    logs.create_log_group()
        .log_group_name(group)
        .send()
        .await
        .unwrap();
    let base = chrono::Utc::now().timestamp_millis() - 10_000;
    // Two invocations running at once, in two streams, their lines interleaved in time.
    let lines: &[(&str, i64, &str)] = &[
        (
            "2024/01/01/[$LATEST]aaa",
            0,
            "START RequestId: req-a Version: $LATEST",
        ),
        (
            "2024/01/01/[$LATEST]bbb",
            1,
            "START RequestId: req-b Version: $LATEST",
        ),
        ("2024/01/01/[$LATEST]aaa", 2, "output of a 1"),
        ("2024/01/01/[$LATEST]bbb", 3, "output of b 1"),
        ("2024/01/01/[$LATEST]aaa", 4, "output of a 2"),
        ("2024/01/01/[$LATEST]bbb", 5, "END RequestId: req-b"),
        (
            "2024/01/01/[$LATEST]bbb",
            6,
            "REPORT RequestId: req-b\tDuration: 5.00 ms",
        ),
        ("2024/01/01/[$LATEST]aaa", 7, "END RequestId: req-a"),
        (
            "2024/01/01/[$LATEST]aaa",
            8,
            "REPORT RequestId: req-a\tDuration: 8.00 ms",
        ),
        (
            "2024/01/01/[$LATEST]aaa",
            9,
            "START RequestId: req-c Version: $LATEST",
        ),
    ];
    for stream in ["2024/01/01/[$LATEST]aaa", "2024/01/01/[$LATEST]bbb"] {
        let messages: Vec<(i64, String)> = lines
            .iter()
            .filter(|(s, _, _)| *s == stream)
            .map(|(_, t, m)| (base + t, format!("{m}\n")))
            .collect();
        write_log_stream(&aws, group, stream, &messages).await;
    }

    let all = aws.logs("logfn", &LogQuery::default()).await.unwrap();
    assert_eq!(all.len(), lines.len());
    assert_eq!(all[0].message, "START RequestId: req-a Version: $LATEST");

    // The lines `scar log` shows for a request id, a stream, or both.
    let logs_of = |request_id: Option<&str>, stream: Option<&str>| {
        let query = LogQuery {
            request_id: request_id.map(String::from),
            stream: stream.map(String::from),
        };
        let aws = &aws;
        async move { aws.logs("logfn", &query).await.unwrap() }
    };
    let a = logs_of(Some("req-a"), None).await;
    let a: Vec<_> = a.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(
        a,
        [
            "START RequestId: req-a Version: $LATEST",
            "output of a 1",
            "output of a 2",
            "END RequestId: req-a",
            "REPORT RequestId: req-a\tDuration: 8.00 ms"
        ]
    );
    let b = logs_of(Some("req-b"), Some("2024/01/01/[$LATEST]bbb")).await;
    assert_eq!(b.len(), 4);
    assert!(b.iter().all(|l| l.stream.ends_with("bbb")));
    let one_stream = logs_of(None, Some("2024/01/01/[$LATEST]bbb")).await;
    assert_eq!(one_stream.len(), 4);

    // Following: the lines already there, then the callback stops it.
    let mut seen = Vec::new();
    aws.follow_logs_every(
        "logfn",
        None,
        std::time::Duration::from_millis(50),
        &mut |line| {
            seen.push(line.message);
            seen.len() < 3
        },
    )
    .await
    .unwrap();
    assert_eq!(seen.len(), 3);

    // No function, no log group: the not-found error of every provider.
    let missing = aws.logs("nofn", &LogQuery::default()).await.unwrap_err();
    assert!(
        matches!(
            missing,
            scar_aws::AwsError::Surface(scar_core::provider::SurfaceError::NotFound(_))
        ),
        "{missing}"
    );
}

#[tokio::test]
async fn put_and_get_a_20_mb_file_in_parts() {
    let Some(moto) = Moto::start() else { return };
    let aws = provider(&moto).await;
    aws.s3_client()
        .create_bucket()
        .bucket("data")
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big input.bin");
    // Not all zeros, so that a misplaced part would show.
    let bytes = scar_test_support::images::noise(12345, 20 * 1024 * 1024 + 123);
    std::fs::write(&src, &bytes).unwrap();
    let small = dir.path().join("small.txt");
    std::fs::write(&small, b"small file\n").unwrap();

    let events = Mutex::new(Vec::new());
    let progress = |e: TransferEvent| events.lock().unwrap().push(e);
    let sent = aws
        .put_file("data", "input/big input.bin", &src, &progress)
        .await
        .unwrap();
    assert_eq!(sent, bytes.len() as u64);
    aws.put_file("data", "input/sub/small.txt", &small, &progress)
        .await
        .unwrap();
    let parts = events
        .lock()
        .unwrap()
        .iter()
        .filter(
            |e| matches!(e, TransferEvent::Progress { key, .. } if key == "input/big input.bin"),
        )
        .count();
    assert_eq!(parts, 3, "8 + 8 + 4 MB parts");
    let uploads = aws
        .s3_client()
        .list_multipart_uploads()
        .bucket("data")
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty(), "no unfinished uploads left");

    let dest = dir.path().join("dest");
    let mut written = aws
        .get_prefix("data", "input/", &dest, &|_| {})
        .await
        .unwrap();
    written.sort();
    assert_eq!(
        written,
        [dest.join("big input.bin"), dest.join("sub/small.txt")]
    );
    assert!(std::fs::read(dest.join("big input.bin")).unwrap() == bytes);
    assert_eq!(
        std::fs::read(dest.join("sub/small.txt")).unwrap(),
        b"small file\n"
    );

    // A single object by its full key lands as its file name.
    let one = dir.path().join("one");
    let written = aws
        .get_prefix("data", "input/sub/small.txt", &one, &|_| {})
        .await
        .unwrap();
    assert_eq!(written, [one.join("small.txt")]);
}
