//! The one way these tests make an [`AwsProvider`] against moto (static test credentials
//! given through the configuration, never the environment, which other tests of this
//! process share; moto's region and its IAM role), and what they put on it: a function,
//! objects, log lines.

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use scar_aws::{AwsConfig, AwsError, AwsProvider, InitRequest, Package, StaticCredentials};
use scar_core::provider::FunctionInfo;
use scar_core::FunctionSpec;
use scar_test_support::moto::{make_zip, Moto, ACCESS_KEY, REGION};

/// A provider on `moto`.
pub async fn provider(moto: &Moto) -> AwsProvider {
    provider_at(moto, &moto.endpoint()).await
}

/// A provider on moto's role and credentials that sends its requests to `endpoint`, such as
/// a proxy in front of moto.
pub async fn provider_at(moto: &Moto, endpoint: &str) -> AwsProvider {
    connect(moto, endpoint, (ACCESS_KEY, ACCESS_KEY)).await
}

/// A provider on `moto` signing with `key` (an access key id and its secret, such as
/// [`Moto::create_user`]'s): that identity's.
pub async fn provider_as(moto: &Moto, key: &(String, String)) -> AwsProvider {
    connect(moto, &moto.endpoint(), (&key.0, &key.1)).await
}

async fn connect(moto: &Moto, endpoint: &str, (key, secret): (&str, &str)) -> AwsProvider {
    let mut config = AwsConfig::new(REGION);
    config.connection.endpoint_url = Some(endpoint.into());
    config.deployment.iam_role = moto.role_arn();
    config.connection.credentials = Some(StaticCredentials {
        access_key_id: key.into(),
        secret_access_key: secret.into(),
        session_token: None,
    });
    AwsProvider::connect(config).await
}

/// `init` of `spec` from a small zip package (a shell script as its `bootstrap`): a
/// function for the tests that do not look at its package.
pub async fn init_zip(aws: &AwsProvider, spec: FunctionSpec) -> Result<FunctionInfo, AwsError> {
    let dir = tempfile::tempdir().unwrap();
    let package = Package::Zip {
        path: make_zip(dir.path()),
    };
    aws.init(InitRequest::new(spec, package)).await
}

/// Stores `body` at `bucket/key` (the bucket must exist).
pub async fn put_object(aws: &AwsProvider, bucket: &str, key: &str, body: &[u8]) {
    let put = aws.s3_client().put_object().bucket(bucket).key(key);
    put.body(body.to_vec().into()).send().await.unwrap();
}

/// Writes `lines` (a time in ms since the epoch, a message) into a new stream `stream` of the
/// log group `group`, as Lambda or AWS Batch's log driver writes a run's output.
pub async fn write_log_stream<S: AsRef<str>>(
    aws: &AwsProvider,
    group: &str,
    stream: &str,
    lines: &[(i64, S)],
) {
    let logs = aws.logs_client();
    let create = logs.create_log_stream().log_group_name(group);
    create.log_stream_name(stream).send().await.unwrap();
    let events = lines.iter().map(|(time, message)| {
        let event = InputLogEvent::builder()
            .timestamp(*time)
            .message(message.as_ref());
        event.build().unwrap()
    });
    let put = logs
        .put_log_events()
        .log_group_name(group)
        .log_stream_name(stream);
    put.set_log_events(Some(events.collect()))
        .send()
        .await
        .unwrap();
}
