//! init, invoke, list and rm against moto: what init creates, what rm removes, rollback.

use aws_sdk_lambda::operation::get_function::GetFunctionOutput;
use aws_sdk_s3::operation::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput;
use common::{scar_response, spec, Moto};
use scar_aws::{AwsError, AwsProvider, InitRequest, Package};
use scar_core::event::Payload;
use scar_core::progress::NoProgress;
use scar_core::provider::SurfaceError;
use scar_core::provider::{PackageKind, Provider};
use scar_core::Categorized;
use scar_core::ErrorCategory;
use scar_test_support::moto as common;

use crate::on_moto::{init_zip, provider};

/// Lambda's `GetFunction` of `name`, or `None` when it fails (no such function).
async fn get_function(aws: &AwsProvider, name: &str) -> Option<GetFunctionOutput> {
    let got = aws.lambda_client().get_function().function_name(name);
    got.send().await.ok()
}

async fn function_exists(aws: &AwsProvider, name: &str) -> bool {
    get_function(aws, name).await.is_some()
}

/// The notification configuration of `bucket`.
async fn notifications(
    aws: &AwsProvider,
    bucket: &str,
) -> GetBucketNotificationConfigurationOutput {
    let asked = aws.s3_client().get_bucket_notification_configuration();
    asked.bucket(bucket).send().await.unwrap()
}

/// Asserts that each of `objects` (bucket, key) exists.
async fn assert_objects_exist(aws: &AwsProvider, objects: &[(&str, &str)]) {
    for (bucket, key) in objects {
        let head = aws.s3_client().head_object().bucket(*bucket).key(*key);
        head.send()
            .await
            .unwrap_or_else(|e| panic!("{bucket}/{key}: {e:?}"));
    }
}

async fn log_groups(aws: &AwsProvider) -> Vec<(String, Option<i32>)> {
    let out = aws
        .logs_client()
        .describe_log_groups()
        .send()
        .await
        .unwrap();
    out.log_groups()
        .iter()
        .map(|g| {
            (
                g.log_group_name().unwrap_or_default().to_string(),
                g.retention_in_days(),
            )
        })
        .collect()
}

#[tokio::test]
async fn zip_init_invoke_list_and_rm() {
    let Some(moto) = Moto::start() else { return };
    let aws = provider(&moto).await;
    let mut s = spec("zipfn");
    s.environment.insert("GREETING".into(), "hi".into());
    s.memory_mb = 1024;
    s.timeout_s = 60;
    let info = init_zip(&aws, s.clone()).await.unwrap();
    assert_eq!(info.package, Some(PackageKind::Zip));
    assert_eq!(info.spec.memory_mb, 1024);
    assert_eq!(info.spec.timeout_s, 60);
    assert_eq!(info.spec.environment["GREETING"], "hi");
    assert_eq!(info.spec.image, s.image);

    let config = get_function(&aws, "zipfn").await.unwrap();
    let c = config.configuration().unwrap();
    assert_eq!(c.runtime().map(|r| r.as_str()), Some("provided.al2023"));
    assert_eq!(c.handler(), Some("bootstrap"));
    assert_eq!(config.tags().unwrap()["createdby"], "scar");
    assert!(log_groups(&aws)
        .await
        .contains(&("/aws/lambda/zipfn".to_string(), Some(30))));

    // A second init of the same name is refused, and leaves the first alone.
    let again = init_zip(&aws, s.clone()).await.unwrap_err();
    assert!(
        matches!(again, AwsError::Surface(SurfaceError::Exists(_))),
        "{again}"
    );
    assert_eq!(again.category(), ErrorCategory::Usage);

    // Listing: only scar's functions.
    let list = aws.list().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].spec.name, "zipfn");
    assert_eq!(list[0].spec.timeout_threshold_s, 10);

    // Invoke: a canned scar response, then moto's echo (not a scar response).
    moto.queue_invoke_results(&[scar_response("req-1", "hello\n")]);
    let inv = aws
        .invoke_detailed("zipfn", scar_core::RuntimeClient::Scar, &Payload::default())
        .await
        .unwrap();
    assert_eq!(inv.response.output, "hello\n");
    assert_eq!(inv.response.request_id, "req-1");
    assert_eq!(inv.response.log_group, "/aws/lambda/zipfn");
    let payload = Payload {
        cmd_args: Some(vec!["echo".into(), "x".into()]),
        ..Payload::default()
    };
    let echo = aws
        .invoke("zipfn", &payload, &NoProgress)
        .await
        .unwrap_err();
    match &echo {
        AwsError::NotScarResponse { raw, .. } => assert!(raw.contains("cmd_args"), "{raw}"),
        other => panic!("{other}"),
    }
    aws.invoke_async("zipfn", &payload).await.unwrap();

    aws.remove("zipfn").await.unwrap();
    assert!(!function_exists(&aws, "zipfn").await);
    assert!(!log_groups(&aws)
        .await
        .iter()
        .any(|(g, _)| g == "/aws/lambda/zipfn"));
    assert!(aws.list().await.unwrap().is_empty());

    // (moto's no-Docker invoke echoes even for a missing function: ask GetFunction.)
    let gone = aws.function("zipfn").await.unwrap_err();
    assert!(
        matches!(gone, AwsError::Surface(SurfaceError::NotFound(_))),
        "{gone}"
    );
    assert_eq!(gone.category(), ErrorCategory::Usage);
    assert!(matches!(
        aws.remove("zipfn").await.unwrap_err(),
        AwsError::Surface(SurfaceError::NotFound(_))
    ));
}

#[tokio::test]
async fn image_init_with_ecr_and_rm_removes_the_repository() {
    let Some(moto) = Moto::start() else { return };
    let aws = provider(&moto).await;
    let repository = scar_aws::ecr_repository_name("ImgFn");
    assert_eq!(repository, "scar-imgfn");
    let login = aws.ecr_login(&repository).await.unwrap();
    assert_eq!(login.username, "AWS");
    assert!(!login.password.is_empty());
    assert!(login.repository_uri.ends_with("/scar-imgfn"), "{login:?}");
    assert!(!format!("{login:?}").contains(&login.password));
    // Logging in again finds the repository.
    assert_eq!(
        aws.ecr_login(&repository).await.unwrap().repository_uri,
        login.repository_uri
    );

    assert!(aws_sdk_ecr_repos(&aws).await.contains(&repository));
    // A repository scar did not create is never removed.
    aws.ecr_client()
        .create_repository()
        .repository_name("scar-other")
        .send()
        .await
        .unwrap();
    let uri = format!("{}:latest", login.repository_uri);
    let info = aws
        .init(InitRequest::new(
            spec("ImgFn"),
            Package::Image { uri: uri.clone() },
        ))
        .await
        .unwrap();
    assert_eq!(info.package, Some(PackageKind::Image));
    let got = get_function(&aws, "ImgFn").await.unwrap();
    assert_eq!(
        got.configuration()
            .unwrap()
            .package_type()
            .map(|p| p.as_str()),
        Some("Image")
    );
    assert_eq!(got.code().unwrap().image_uri(), Some(uri.as_str()));

    aws.remove("ImgFn").await.unwrap();
    assert!(!function_exists(&aws, "ImgFn").await);
    let repos = aws_sdk_ecr_repos(&aws).await;
    assert!(!repos.contains(&repository), "{repos:?}");
    assert!(repos.contains(&"scar-other".to_string()), "{repos:?}");
}

async fn aws_sdk_ecr_repos(aws: &AwsProvider) -> Vec<String> {
    let out = aws
        .ecr_client()
        .describe_repositories()
        .send()
        .await
        .unwrap();
    out.repositories()
        .iter()
        .filter_map(|r| r.repository_name().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn input_bucket_notifications_are_merged_and_rm_keeps_the_others() {
    let Some(moto) = Moto::start() else { return };
    let aws = provider(&moto).await;
    let s3 = aws.s3_client();
    s3.create_bucket().bucket("shared").send().await.unwrap();
    // Somebody else's notification on the bucket.
    let other = aws_sdk_s3::types::QueueConfiguration::builder()
        .id("someone-else")
        .queue_arn("arn:aws:sqs:us-east-1:123456789012:other-queue")
        .events(aws_sdk_s3::types::Event::from("s3:ObjectCreated:*"))
        .filter(
            aws_sdk_s3::types::NotificationConfigurationFilter::builder()
                .key(
                    aws_sdk_s3::types::S3KeyFilter::builder()
                        .filter_rules(
                            aws_sdk_s3::types::FilterRule::builder()
                                .name(aws_sdk_s3::types::FilterRuleName::Prefix)
                                .value("other/")
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .build()
        .unwrap();
    s3.put_bucket_notification_configuration()
        .bucket("shared")
        .notification_configuration(
            aws_sdk_s3::types::NotificationConfiguration::builder()
                .queue_configurations(other)
                .build(),
        )
        .send()
        .await
        .unwrap();

    let s = scar_test_support::moto::spec_with_bucket("bucketfn", "shared");
    let info = init_zip(&aws, s).await.unwrap();
    assert_eq!(info.spec.inputs[0].to_string(), "shared/input");
    assert_eq!(info.spec.outputs[0].to_string(), "shared/output");

    let n = notifications(&aws, "shared").await;
    assert_eq!(n.queue_configurations().len(), 1, "{n:?}");
    assert_eq!(n.queue_configurations()[0].id(), Some("someone-else"));
    assert_eq!(n.lambda_function_configurations().len(), 1, "{n:?}");
    let ours = &n.lambda_function_configurations()[0];
    assert_eq!(ours.id(), Some("scar-bucketfn"));
    assert!(ours.lambda_function_arn().ends_with(":function:bucketfn"));
    assert_eq!(ours.events()[0].as_str(), "s3:ObjectCreated:*");
    let rule = &ours.filter().unwrap().key().unwrap().filter_rules()[0];
    assert_eq!(rule.value(), Some("input/"));

    // The folder markers and S3's permission to invoke.
    assert_objects_exist(&aws, &[("shared", "input/"), ("shared", "output/")]).await;
    let policy = aws
        .lambda_client()
        .get_policy()
        .function_name("bucketfn")
        .send()
        .await
        .unwrap();
    let policy = policy.policy().unwrap();
    assert!(policy.contains("scar-s3-shared"), "{policy}");
    assert!(policy.contains("s3.amazonaws.com"), "{policy}");
    assert!(policy.contains("arn:aws:s3:::shared"), "{policy}");

    aws.remove("bucketfn").await.unwrap();
    assert!(!function_exists(&aws, "bucketfn").await);
    let n = notifications(&aws, "shared").await;
    assert_eq!(n.queue_configurations().len(), 1, "{n:?}");
    assert!(n.lambda_function_configurations().is_empty(), "{n:?}");
    // The bucket and its objects stay.
    s3.head_bucket().bucket("shared").send().await.unwrap();
}

#[tokio::test]
async fn init_creates_a_missing_input_bucket() {
    let Some(moto) = Moto::start() else { return };
    let aws = provider(&moto).await;
    let s = scar_test_support::moto::spec_with_bucket("newbucketfn", "fresh-bucket");
    init_zip(&aws, s).await.unwrap();
    let keys = aws
        .s3_client()
        .list_objects_v2()
        .bucket("fresh-bucket")
        .send()
        .await
        .unwrap();
    let keys: Vec<_> = keys.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["input/", "output/"]);
}

#[tokio::test]
async fn a_failed_bucket_step_rolls_everything_back() {
    let Some(moto) = Moto::start() else { return };
    let aws = provider(&moto).await;
    // Another function's input folder holds this one's: the notification step is refused
    // (as S3 refuses overlapping notifications) after the function was created.
    init_zip(
        &aws,
        scar_test_support::moto::spec_with_bucket("firstfn", "taken"),
    )
    .await
    .unwrap();
    let mut s = spec("rollbackfn");
    s.inputs = vec![scar_core::InputSpec::at(
        &scar_core::bucket::BucketPath::parse("taken/input/sub").unwrap(),
    )];
    let err = init_zip(&aws, s).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(
            "taken/input/sub is already taken: taken/input triggers function \"firstfn\""
        ),
        "{text}"
    );
    assert_eq!(err.category(), ErrorCategory::Usage, "{text}");
    assert!(
        !matches!(err, AwsError::RollbackIncomplete { .. }),
        "{text}"
    );
    assert!(!function_exists(&aws, "rollbackfn").await);
    assert!(!log_groups(&aws)
        .await
        .iter()
        .any(|(g, _)| g == "/aws/lambda/rollbackfn"));
}

#[tokio::test]
async fn usage_errors_say_what_to_do() {
    let Some(moto) = Moto::start() else { return };
    let mut config = scar_aws::AwsConfig::new("us-east-1");
    config.connection.endpoint_url = Some(moto.endpoint());
    config.connection.credentials = Some(scar_aws::StaticCredentials {
        access_key_id: "testing".into(),
        secret_access_key: "s3cr3t-value".into(),
        session_token: None,
    });
    let aws = scar_aws::AwsProvider::connect(config).await;
    let dir = tempfile::tempdir().unwrap();
    let err = init_zip(&aws, spec("noroles")).await.unwrap_err();
    assert!(
        matches!(&err, AwsError::MissingRole { function } if function == "noroles"),
        "{err}"
    );
    // What failed, without a command line's advice (the CLI adds its own).
    assert!(!err.to_string().contains("--iam-role"), "{err}");
    assert_eq!(err.category(), ErrorCategory::Usage);

    // A zip over 50 MB needs a deployment bucket (a sparse file: no 50 MB written).
    let moto_aws = provider(&moto).await;
    let big = dir.path().join("big.zip");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(scar_core::lambda::DIRECT_UPLOAD_LIMIT + 1)
        .unwrap();
    let err = moto_aws
        .init(InitRequest::new(spec("bigfn"), Package::Zip { path: big }))
        .await
        .unwrap_err();
    assert!(
        matches!(err, AwsError::NeedsDeploymentBucket { size, .. } if size == scar_core::lambda::DIRECT_UPLOAD_LIMIT + 1),
        "{err}"
    );
    assert!(!err.to_string().contains("-db"), "{err}");

    // Service errors name the operation and the resource, never the secret.
    let err = aws.remove("nosuchfn").await.unwrap_err();
    assert!(
        matches!(err, AwsError::Surface(SurfaceError::NotFound(_))),
        "{err}"
    );
    let bad = aws
        .s3_client()
        .head_bucket()
        .bucket("nope")
        .send()
        .await
        .map_err(|e| format!("{}", aws_sdk_s3::error::DisplayErrorContext(e)))
        .unwrap_err();
    assert!(!bad.contains("s3cr3t-value"));
}

/// A three-step chain through one bucket's folders (SCAR's video-process and av-workflow
/// shape): each step's input folder gets its own notification, filtered on its prefix
/// beside the others'; several outputs and a storage provider are remembered; a container
/// variable named `AWS_ACCESS_KEY_ID` is stored as SCAR stores it (`CONT_VAR_`), the
/// function's own variables as they are, and the providers' secrets only for the
/// supervisor; `rm` takes each function's notification away and leaves the others.
#[tokio::test]
async fn a_chain_through_folders_gets_a_notification_per_prefix() {
    let Some(moto) = Moto::start() else { return };
    let aws = provider(&moto).await;
    let path = |p: &str| scar_core::bucket::BucketPath::parse(p).unwrap();
    let step = |name: &str, input: &str, outputs: &[&str]| {
        let mut s = spec(name);
        s.inputs = vec![scar_core::InputSpec::at(&path(input))];
        s.outputs = outputs
            .iter()
            .map(|o| scar_core::OutputSpec::at(&path(o)))
            .collect();
        s
    };
    let mut one = step("one", "flow/start", &["flow/two", "flow/audio"]);
    one.outputs[0].suffix = vec![".txt".into()];
    one.environment
        .insert("AWS_ACCESS_KEY_ID".into(), "AKIACONTAINER".into());
    one.lambda_environment.insert("MODE".into(), "fast".into());
    one.outputs.push(scar_core::OutputSpec {
        storage: Some("minio.store".into()),
        ..scar_core::OutputSpec::at(&path("archive/all"))
    });
    one.storage_providers.insert(
        "minio.store".into(),
        scar_core::StorageProvider {
            endpoint: Some("https://minio.example.org".into()),
            access_key: Some("ak".into()),
            secret_key: Some("store-secret".into()),
            ..Default::default()
        },
    );
    let steps = [
        one,
        step("two", "flow/two", &["flow/three"]),
        step("three", "flow/three", &["done-b/results"]),
    ];
    for s in &steps {
        init_zip(&aws, s.clone()).await.unwrap();
    }
    let n = notifications(&aws, "flow").await;
    let mut prefixes: Vec<(String, String, String)> = n
        .lambda_function_configurations()
        .iter()
        .map(|c| {
            let rule = &c.filter().unwrap().key().unwrap().filter_rules()[0];
            (
                c.id().unwrap().to_string(),
                c.lambda_function_arn()
                    .rsplit(':')
                    .next()
                    .unwrap()
                    .to_string(),
                rule.value().unwrap().to_string(),
            )
        })
        .collect();
    prefixes.sort();
    assert_eq!(
        prefixes,
        [
            ("scar-one".into(), "one".into(), "start/".into()),
            ("scar-three".into(), "three".into(), "three/".into()),
            ("scar-two".into(), "two".into(), "two/".into()),
        ]
    );
    // The output buckets and folders exist.
    let outputs = [("flow", "audio/"), ("flow", "two/"), ("done-b", "results/")];
    assert_objects_exist(&aws, &outputs).await;
    // What Lambda holds, and what scar reads back from it.
    let config = aws
        .lambda_client()
        .get_function_configuration()
        .function_name("one")
        .send()
        .await
        .unwrap();
    let vars = config.environment().unwrap().variables().unwrap();
    assert_eq!(vars["CONT_VAR_AWS_ACCESS_KEY_ID"], "AKIACONTAINER");
    assert_eq!(vars["MODE"], "fast");
    assert!(!vars.contains_key("AWS_ACCESS_KEY_ID"));
    assert!(vars["SCAR_STORAGE_PROVIDERS"].contains("store-secret"));
    let info = aws.function("one").await.unwrap();
    assert_eq!(info.spec.environment["AWS_ACCESS_KEY_ID"], "AKIACONTAINER");
    assert_eq!(info.spec.lambda_environment["MODE"], "fast");
    assert_eq!(info.spec.inputs, steps[0].inputs);
    let outputs: Vec<String> = info.spec.outputs.iter().map(|o| o.to_string()).collect();
    assert_eq!(
        outputs,
        ["flow/two", "flow/audio", "minio.store:archive/all"]
    );
    let shown = serde_json::to_string(&info.spec.redacted()).unwrap();
    assert!(!shown.contains("store-secret"), "{shown}");

    // Another function on a folder inside one of theirs is refused.
    let err = init_zip(&aws, step("intruder", "flow/two/sub", &["elsewhere"]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, AwsError::Surface(SurfaceError::InputTaken { .. })),
        "{err}"
    );
    assert!(!function_exists(&aws, "intruder").await);

    aws.remove("two").await.unwrap();
    let n = notifications(&aws, "flow").await;
    let mut ids: Vec<&str> = n
        .lambda_function_configurations()
        .iter()
        .filter_map(|c| c.id())
        .collect();
    ids.sort();
    assert_eq!(ids, ["scar-one", "scar-three"]);
}

/// The REST APIs on moto: (id, name, tags).
async fn rest_apis(
    aws: &AwsProvider,
) -> Vec<(String, String, std::collections::HashMap<String, String>)> {
    let out = aws
        .apigateway_client()
        .get_rest_apis()
        .send()
        .await
        .unwrap();
    out.items()
        .iter()
        .map(|api| {
            (
                api.id().unwrap_or_default().to_string(),
                api.name().unwrap_or_default().to_string(),
                api.tags().cloned().unwrap_or_default(),
            )
        })
        .collect()
}

/// `api_gateway`: SCAR's REST API in front of the function (a `{proxy+}` resource, ANY
/// without authorization, a Lambda proxy integration to the function, stage `scar`), API
/// Gateway's permission to invoke, the URL in the function's description; `rm` removes
/// the API with the function.
#[tokio::test]
async fn api_gateway_init_list_and_rm() {
    let Some(moto) = Moto::start() else { return };
    let aws = provider(&moto).await;
    let info = init_zip(&aws, spec("apifn").with_api_gateway("fn-api"))
        .await
        .unwrap();
    assert_eq!(info.spec.api_gateway.as_deref(), Some("fn-api"));
    let apis = rest_apis(&aws).await;
    assert_eq!(apis.len(), 1, "{apis:?}");
    let (id, name, tags) = &apis[0];
    assert_eq!(name, "fn-api");
    assert_eq!(tags.get("createdby").map(String::as_str), Some("scar"));
    assert_eq!(tags.get("scar:function").map(String::as_str), Some("apifn"));
    assert!(
        tags.get("owner").is_some_and(|o| o.starts_with("arn:aws:")),
        "{tags:?}"
    );
    assert_eq!(
        info.api_url.as_deref(),
        Some(scar_aws::api_url(id, common::REGION, Some(&moto.endpoint())).as_str())
    );

    let ag = aws.apigateway_client();
    let resources = ag.get_resources().rest_api_id(id).send().await.unwrap();
    let paths: Vec<_> = resources.items().iter().filter_map(|r| r.path()).collect();
    assert_eq!(paths, ["/", "/{proxy+}"]);
    let proxy = resources
        .items()
        .iter()
        .find(|r| r.path() == Some("/{proxy+}"))
        .unwrap();
    let method = ag
        .get_method()
        .rest_api_id(id)
        .resource_id(proxy.id().unwrap())
        .http_method("ANY")
        .send()
        .await
        .unwrap();
    assert_eq!(method.authorization_type(), Some("NONE"));
    let integration = method.method_integration().unwrap();
    assert_eq!(
        integration.r#type(),
        Some(&aws_sdk_apigateway::types::IntegrationType::AwsProxy)
    );
    assert_eq!(integration.http_method(), Some("POST"));
    let function_arn = get_function(&aws, "apifn")
        .await
        .unwrap()
        .configuration()
        .unwrap()
        .function_arn()
        .unwrap()
        .to_string();
    assert!(
        integration
            .uri()
            .unwrap()
            .contains(&format!("/functions/{function_arn}/invocations")),
        "{integration:?}"
    );
    let stages = ag.get_stages().rest_api_id(id).send().await.unwrap();
    let stages: Vec<_> = stages
        .item()
        .iter()
        .filter_map(|s| s.stage_name())
        .collect();
    assert_eq!(stages, [scar_aws::API_STAGE]);
    let policy = moto.lambda_policy("apifn").unwrap();
    let statement = &policy["Statement"][0];
    assert_eq!(
        statement["Principal"]["Service"], "apigateway.amazonaws.com",
        "{policy}"
    );
    let source = statement["Condition"]["ArnLike"]["AWS:SourceArn"]
        .as_str()
        .unwrap();
    assert_eq!(
        source,
        format!("arn:aws:execute-api:us-east-1:123456789012:{id}/*")
    );

    // Listed with its URL; the id is no variable of the user's.
    let listed = aws.list().await.unwrap();
    assert_eq!(listed[0].api_url, info.api_url);
    assert!(listed[0].spec.lambda_environment.is_empty(), "{listed:?}");

    aws.remove("apifn").await.unwrap();
    assert!(rest_apis(&aws).await.is_empty());
    assert!(!function_exists(&aws, "apifn").await);
}

/// A step after the API Gateway fails (an input folder another function's holds): the
/// REST API goes with everything else.
#[tokio::test]
async fn a_failed_step_after_the_api_gateway_removes_it_too() {
    let Some(moto) = Moto::start() else { return };
    let aws = provider(&moto).await;
    init_zip(
        &aws,
        scar_test_support::moto::spec_with_bucket("holder", "held"),
    )
    .await
    .unwrap();
    let mut s = spec("api-rollback").with_api_gateway("doomed-api");
    s.inputs = vec![scar_core::InputSpec::at(
        &scar_core::bucket::BucketPath::parse("held/input/sub").unwrap(),
    )];
    let err = init_zip(&aws, s).await.unwrap_err();
    assert!(!matches!(err, AwsError::RollbackIncomplete { .. }), "{err}");
    assert!(err.to_string().contains("already taken"), "{err}");
    assert!(rest_apis(&aws).await.is_empty(), "the REST API is removed");
    assert!(!function_exists(&aws, "api-rollback").await);
}
