//! The whole spec, read back: generated specs deployed on moto through
//! [`AwsProvider::init`] read back equal from `function`, `list` and init's own answer.

#[allow(dead_code)]
#[path = "../src/spec_strategy.rs"]
mod spec_strategy;

use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::test_runner::{Config, TestCaseError, TestRunner};
use scar_aws::{AwsConfig, AwsProvider, InitRequest, Package, StaticCredentials};
use scar_core::provider::Provider;
use scar_test_support::moto::{self as common, make_zip, Moto};

async fn provider(moto: &Moto) -> AwsProvider {
    let mut config = AwsConfig::new(common::REGION);
    config.connection.endpoint_url = Some(moto.endpoint());
    config.deployment.iam_role = moto.role_arn();
    config.connection.credentials = Some(StaticCredentials {
        access_key_id: common::ACCESS_KEY.into(),
        secret_access_key: common::ACCESS_KEY.into(),
        session_token: None,
    });
    AwsProvider::connect(config).await
}

/// Each case is an init, three reads and an rm on moto: a modest number of them.
#[test]
fn generated_specs_read_back_whole_from_lambda() {
    let Some(moto) = Moto::start() else { return };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let aws = runtime.block_on(provider(&moto));
    let dir = tempfile::tempdir().unwrap();
    let zip = make_zip(dir.path());
    let count = AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config {
        cases: 24,
        max_shrink_iters: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&spec_strategy::specs(false), |mut spec| {
        // One name per case: a failed case's function stays behind in moto.
        spec.name = format!("roundtrip-{}", count.fetch_add(1, Ordering::Relaxed));
        runtime.block_on(async {
            let request = InitRequest::new(spec.clone(), Package::Zip { path: zip.clone() });
            let created = aws
                .init(request)
                .await
                .map_err(|e| TestCaseError::fail(format!("init: {e}")))?;
            let read = aws
                .function(&spec.name)
                .await
                .map_err(|e| TestCaseError::fail(format!("function: {e}")))?;
            let listed = aws
                .list()
                .await
                .map_err(|e| TestCaseError::fail(format!("list: {e}")))?
                .into_iter()
                .find(|f| f.spec.name == spec.name);
            aws.remove(&spec.name)
                .await
                .map_err(|e| TestCaseError::fail(format!("rm: {e}")))?;
            proptest::prop_assert_eq!(&created.spec, &spec, "init's answer");
            proptest::prop_assert_eq!(&read.spec, &spec, "function");
            proptest::prop_assert_eq!(listed.map(|f| f.spec), Some(spec), "list");
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
