//! The Batch execution modes on AWS, against moto's AWS Batch (no Docker: jobs succeed,
//! or fail with `MOTO_SIMPLE_BATCH_FAIL_AFTER`, without running): what `init` creates,
//! jobs submitted by `run`, `--async` and the launcher with the event they carry, a job's
//! response read from its log (written by the real supervisor run as the job would run
//! it), rollback, and `rm` removing exactly what `init` made.

use std::collections::HashMap;
use std::process::Command;
use std::sync::Mutex;

use base64::Engine as _;
use common::{spec_with_bucket, Moto};
use scar_aws::{AwsProvider, InitRequest, Package};
use scar_core::event::Payload;
use scar_core::progress::{NoProgress, Progress};
use scar_core::provider::{LaunchRequest, LogQuery, Outcome, Provider};
use scar_core::{BatchSpec, ExecutionMode, FunctionSpec};
use scar_test_support::moto as common;

use crate::on_moto::provider;

const IMAGE: &str =
    "123456789012.dkr.ecr.us-east-1.amazonaws.com/scar-f@sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// moto with Batch on and a network for compute environments: `(moto, provider, subnet,
/// security group)`.
async fn batch_moto(vars: &[(&str, &str)]) -> Option<(Moto, AwsProvider, String, String)> {
    let moto = Moto::start_with(vars)?;
    moto.enable_batch();
    let (subnet, group) = moto.batch_network();
    let aws = provider(&moto).await;
    Some((moto, aws, subnet, group))
}

/// moto requires a service role (AWS falls back to its service-linked role without one).
const SERVICE_ROLE: &str = "arn:aws:iam::{account_id}:role/scar-test-role";

fn batch_spec(name: &str, bucket: &str, mode: ExecutionMode, net: (&str, &str)) -> FunctionSpec {
    let mut spec = spec_with_bucket(name, bucket);
    spec.execution_mode = mode;
    let mut batch = BatchSpec {
        vcpus: 2,
        memory_mb: 2048,
        service_role: Some(SERVICE_ROLE.into()),
        ..BatchSpec::default()
    };
    batch.environment.insert("THREADS".into(), "4".into());
    batch.compute.subnets = vec![net.0.into()];
    batch.compute.security_group_ids = vec![net.1.into()];
    spec.batch = Some(batch);
    spec
}

/// Records the statuses a wait goes through.
#[derive(Default)]
struct Statuses(Mutex<Vec<String>>);

impl Progress for Statuses {
    fn status(&self, status: &str) {
        self.0.lock().unwrap().push(status.to_string());
    }
}

/// The names of the compute environments, job queues and active job definitions.
async fn batch_resources(aws: &AwsProvider) -> (Vec<String>, Vec<String>, Vec<String>) {
    let b = aws.batch_client();
    let ces = b.describe_compute_environments().send().await.unwrap();
    let queues = b.describe_job_queues().send().await.unwrap();
    let defs = b
        .describe_job_definitions()
        .status("ACTIVE")
        .send()
        .await
        .unwrap();
    (
        ces.compute_environments()
            .iter()
            .filter_map(|c| c.compute_environment_name().map(str::to_string))
            .collect(),
        queues
            .job_queues()
            .iter()
            .filter_map(|q| q.job_queue_name().map(str::to_string))
            .collect(),
        defs.job_definitions()
            .iter()
            .filter(|d| d.status() == Some("ACTIVE"))
            .filter_map(|d| d.job_definition_arn().map(str::to_string))
            .collect(),
    )
}

/// A job's variables as submitted (the definition's and the overrides).
async fn job_variables(aws: &AwsProvider, id: &str) -> HashMap<String, String> {
    let out = aws
        .batch_client()
        .describe_jobs()
        .jobs(id)
        .send()
        .await
        .unwrap();
    let job = out.jobs().first().expect("the job exists");
    job.container()
        .map(|c| {
            c.environment()
                .iter()
                .filter_map(|kv| Some((kv.name()?.to_string(), kv.value()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The event a job carries in `SCAR_EVENT` (`base64:`).
fn job_event(vars: &HashMap<String, String>) -> serde_json::Value {
    let encoded = vars["SCAR_EVENT"]
        .strip_prefix("base64:")
        .expect("base64: prefix");
    let json = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    serde_json::from_slice(&json).unwrap()
}

#[tokio::test]
async fn init_makes_the_batch_resources_and_rm_removes_exactly_them() {
    let Some((_moto, aws, subnet, group)) = batch_moto(&[]).await else {
        return;
    };
    let b = aws.batch_client();
    // A revision of the same job definition that scar did not register: rm keeps it.
    b.register_job_definition()
        .job_definition_name("scar-bf")
        .r#type(aws_sdk_batch::types::JobDefinitionType::Container)
        .container_properties(
            aws_sdk_batch::types::ContainerProperties::builder()
                .image("someone/else")
                .resource_requirements(
                    aws_sdk_batch::types::ResourceRequirement::builder()
                        .r#type(aws_sdk_batch::types::ResourceType::Vcpu)
                        .value("1")
                        .build(),
                )
                .resource_requirements(
                    aws_sdk_batch::types::ResourceRequirement::builder()
                        .r#type(aws_sdk_batch::types::ResourceType::Memory)
                        .value("512")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let (_, _, before) = batch_resources(&aws).await;
    assert_eq!(before.len(), 1, "{before:?}");

    let spec = batch_spec("bf", "bbucket", ExecutionMode::Batch, (&subnet, &group));
    let info = aws
        .init(InitRequest::new(spec, Package::Image { uri: IMAGE.into() }))
        .await
        .unwrap();
    assert_eq!(info.spec.execution_mode, ExecutionMode::Batch);

    // The compute environment, on the function's network, tagged as scar's.
    let ces = b
        .describe_compute_environments()
        .compute_environments("scar-bf")
        .send()
        .await
        .unwrap();
    let ce = &ces.compute_environments()[0];
    assert_eq!(ce.r#type().map(|t| t.as_str()), Some("MANAGED"));
    assert_eq!(ce.tags().unwrap()["createdby"], "scar");
    let resources = ce.compute_resources().unwrap();
    assert_eq!(resources.subnets(), std::slice::from_ref(&subnet));
    assert_eq!(resources.security_group_ids(), std::slice::from_ref(&group));
    assert_eq!(resources.r#type().map(|t| t.as_str()), Some("EC2"));
    assert_eq!(
        resources.instance_role(),
        Some("arn:aws:iam::123456789012:instance-profile/ecsInstanceRole")
    );
    // The queue, on that environment.
    let queues = b
        .describe_job_queues()
        .job_queues("scar-bf")
        .send()
        .await
        .unwrap();
    let queue = &queues.job_queues()[0];
    assert_eq!(queue.tags().unwrap()["createdby"], "scar");
    assert!(queue.compute_environment_order()[0]
        .compute_environment()
        .unwrap()
        .ends_with("compute-environment/scar-bf"));
    // The job definition: the pinned image package, the job's resources and variables,
    // logs into the function's log group.
    let defs = b
        .describe_job_definitions()
        .job_definition_name("scar-bf")
        .status("ACTIVE")
        .send()
        .await
        .unwrap();
    let ours: Vec<_> = defs
        .job_definitions()
        .iter()
        .filter(|d| d.tags().is_some_and(|t| t.get("createdby").is_some()))
        .collect();
    assert_eq!(ours.len(), 1, "{defs:?}");
    let container = ours[0].container_properties().unwrap();
    assert_eq!(container.image(), Some(IMAGE));
    let requirements: HashMap<_, _> = container
        .resource_requirements()
        .iter()
        .filter_map(|r| Some((r.r#type()?.as_str().to_string(), r.value()?.to_string())))
        .collect();
    assert_eq!(requirements["VCPU"], "2");
    assert_eq!(requirements["MEMORY"], "2048");
    let variables: HashMap<_, _> = container
        .environment()
        .iter()
        .filter_map(|kv| Some((kv.name()?.to_string(), kv.value()?.to_string())))
        .collect();
    assert_eq!(variables["CONT_VAR_THREADS"], "4");
    let logs = container.log_configuration().unwrap();
    assert_eq!(logs.log_driver().map(|d| d.as_str()), Some("awslogs"));
    assert_eq!(logs.options().unwrap()["awslogs-group"], "/aws/lambda/bf");
    // The Lambda function knows where its events go, and says it runs on Batch.
    let got = aws
        .lambda_client()
        .get_function()
        .function_name("bf")
        .send()
        .await
        .unwrap();
    let vars = got
        .configuration()
        .unwrap()
        .environment()
        .unwrap()
        .variables()
        .unwrap();
    assert_eq!(vars["SCAR_BATCH_JOB_QUEUE"], "scar-bf");
    assert_eq!(vars["SCAR_BATCH_JOB_DEFINITION"], "scar-bf");
    let listed = aws.list().await.unwrap();
    assert_eq!(listed[0].spec.execution_mode, ExecutionMode::Batch);
    // scar's own variables are not the user's.
    assert!(listed[0].spec.lambda_environment.is_empty());

    aws.remove("bf").await.unwrap();
    let (ces, queues, defs) = batch_resources(&aws).await;
    assert!(ces.is_empty(), "{ces:?}");
    assert!(queues.is_empty(), "{queues:?}");
    assert_eq!(defs, before, "only scar's revision is deregistered");
    assert!(aws.function("bf").await.is_err());
}

#[tokio::test]
async fn run_async_and_the_launcher_submit_one_job_per_event() {
    let Some((moto, aws, subnet, group)) = batch_moto(&[]).await else {
        return;
    };
    let spec = batch_spec("jobs", "jbucket", ExecutionMode::Batch, (&subnet, &group));
    aws.init(InitRequest::new(spec, Package::Image { uri: IMAGE.into() }))
        .await
        .unwrap();
    let payload = Payload {
        script: Some("echo from a job".into()),
        ..Payload::default()
    };

    // --async: the job's id, and the job carries the payload as its event.
    let id = aws.invoke_async("jobs", &payload).await.unwrap();
    let vars = job_variables(&aws, &id).await;
    assert_eq!(job_event(&vars)["script"], "echo from a job");

    // Synchronous: submitted, then waited for through its states to SUCCEEDED.
    let statuses = Statuses::default();
    let inv = aws.invoke("jobs", &payload, &statuses).await.unwrap();
    let r = &inv.response;
    assert!(r.succeeded(), "{r:?}");
    let job = r.batch_job.clone().expect("the job's id");
    assert_eq!(r.request_id, job);
    let seen = statuses.0.lock().unwrap().clone();
    assert_eq!(
        seen.last().map(String::as_str),
        Some(format!("job {job}: SUCCEEDED").as_str()),
        "{seen:?}"
    );

    // The launcher: a job per object of the input folder, with S3's event for it.
    for key in ["input/a.txt", "input/b.txt"] {
        aws.s3_client()
            .put_object()
            .bucket("jbucket")
            .key(key)
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
    }
    let results = aws
        .launch(&LaunchRequest::new("jobs", "jbucket"), &|_| {})
        .await
        .unwrap();
    assert_eq!(results.len(), 2, "{results:?}");
    for (result, key) in results.iter().zip(["input/a.txt", "input/b.txt"]) {
        assert_eq!(result.outcome, Outcome::Queued, "{result:?}");
        let event = job_event(&job_variables(&aws, &result.request_id).await);
        assert_eq!(event["Records"][0]["s3"]["object"]["key"], key, "{event}");
        assert_eq!(event["Records"][0]["s3"]["bucket"]["name"], "jbucket");
    }
    // Lambda was never invoked for them: moto would have echoed the payload back.
    drop(moto);
}

/// A job's response is the supervisor's last line in the job's log: here the real
/// supervisor runs the event a launched job carries, as the job's command (one-shot mode,
/// S3 on moto), and its output is written to the job's stream as the awslogs driver does.
#[tokio::test]
async fn a_jobs_response_and_log_come_from_the_supervisor_it_ran() {
    let Some(supervisor) = scar_test_support::scar::supervisor() else {
        return;
    };
    let Some((moto, aws, subnet, group)) = batch_moto(&[]).await else {
        return;
    };
    let spec = batch_spec("upper", "ubucket", ExecutionMode::Batch, (&subnet, &group));
    aws.init(InitRequest::new(spec, Package::Image { uri: IMAGE.into() }))
        .await
        .unwrap();
    aws.s3_client()
        .put_object()
        .bucket("ubucket")
        .key("input/word.txt")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"batch\n"))
        .send()
        .await
        .unwrap();
    let results = aws
        .launch(&LaunchRequest::new("upper", "ubucket"), &|_| {})
        .await
        .unwrap();
    let job = results[0].request_id.clone();
    let vars = job_variables(&aws, &job).await;

    // The job's command: the supervisor with the job's variables, the function file of
    // the package, S3 on moto.
    let dir = tempfile::tempdir().unwrap();
    let function = dir.path().join("function.json");
    std::fs::write(
        &function,
        serde_json::json!({
            "name": "upper", "timeout_s": 60, "timeout_threshold_s": 5,
            "execution_mode": "batch",
            "init_script": "tr a-z A-Z < \"$INPUT_FILE_PATH\" > \"$TMP_OUTPUT_DIR/word.txt\"; echo \"job $AWS_BATCH_JOB_ID threads=$THREADS\"",
            "outputs": [{"bucket": "ubucket", "folder": "output"}],
        })
        .to_string(),
    )
    .unwrap();
    let out = Command::new(&supervisor)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("SCAR_FUNCTION_FILE", &function)
        .env("AWS_ENDPOINT_URL", moto.endpoint())
        .env("AWS_ACCESS_KEY_ID", common::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", common::ACCESS_KEY)
        .env("AWS_REGION", common::REGION)
        .envs(vars.iter())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What the awslogs driver would have written: the container's stdout, a line each.
    let described = aws
        .batch_client()
        .describe_jobs()
        .jobs(&job)
        .send()
        .await
        .unwrap();
    let stream = described.jobs()[0]
        .container()
        .and_then(|c| c.log_stream_name())
        .unwrap()
        .to_string();
    let logs = aws.logs_client();
    logs.create_log_stream()
        .log_group_name("/aws/lambda/upper")
        .log_stream_name(&stream)
        .send()
        .await
        .unwrap();
    let now = now_ms();
    let events: Vec<_> = stdout
        .lines()
        .map(|l| {
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(now)
                .message(l)
                .build()
                .unwrap()
        })
        .collect();
    logs.put_log_events()
        .log_group_name("/aws/lambda/upper")
        .log_stream_name(&stream)
        .set_log_events(Some(events))
        .send()
        .await
        .unwrap();

    let inv = aws.wait_job("upper", &job, &NoProgress).await.unwrap();
    let r = inv.response;
    assert!(r.succeeded(), "{r:?}");
    assert_eq!(r.output, format!("job {job} threads=4\n"));
    assert_eq!(r.uploaded, vec!["ubucket/output/word.txt".to_string()]);
    assert_eq!(r.log_stream, stream);
    let got = aws
        .s3_client()
        .get_object()
        .bucket("ubucket")
        .key("output/word.txt")
        .send()
        .await
        .unwrap();
    let body = got.body.collect().await.unwrap().into_bytes();
    assert_eq!(&body[..], b"BATCH\n");

    // `scar log -ri <job id>`: the job's lines.
    let lines = aws
        .logs(
            "upper",
            &LogQuery {
                stream: None,
                request_id: Some(job.clone()),
            },
        )
        .await
        .unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.message == format!("job {job} threads=4")),
        "{lines:?}"
    );
    assert!(lines.last().unwrap().message.starts_with("SCAR_RESPONSE {"));
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn a_failed_job_is_a_failed_run_with_batchs_reason() {
    let Some((_moto, aws, subnet, group)) =
        batch_moto(&[("MOTO_SIMPLE_BATCH_FAIL_AFTER", "0")]).await
    else {
        return;
    };
    let spec = batch_spec(
        "failing",
        "fbucket",
        ExecutionMode::Batch,
        (&subnet, &group),
    );
    aws.init(InitRequest::new(spec, Package::Image { uri: IMAGE.into() }))
        .await
        .unwrap();
    let statuses = Statuses::default();
    let inv = aws
        .invoke("failing", &Payload::default(), &statuses)
        .await
        .unwrap();
    let r = &inv.response;
    assert!(!r.succeeded(), "{r:?}");
    assert!(r.output.contains("FAILED"), "{r:?}");
    let seen = statuses.0.lock().unwrap().clone();
    assert!(seen.last().unwrap().ends_with(": FAILED"), "{seen:?}");
}

#[tokio::test]
async fn a_failure_midway_rolls_the_batch_resources_back() {
    let Some((_moto, aws, subnet, group)) = batch_moto(&[]).await else {
        return;
    };
    // Another function's input folder holds this one's: refused after the function and
    // its Batch resources were made.
    aws.init(InitRequest::new(
        spec_with_bucket("first", "taken"),
        Package::Image { uri: IMAGE.into() },
    ))
    .await
    .unwrap();
    let mut spec = batch_spec(
        "second",
        "taken",
        ExecutionMode::LambdaBatch,
        (&subnet, &group),
    );
    spec.inputs = vec![scar_core::InputSpec::at(
        &scar_core::bucket::BucketPath::parse("taken/input/sub").unwrap(),
    )];
    let err = aws
        .init(InitRequest::new(spec, Package::Image { uri: IMAGE.into() }))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already taken"), "{err}");
    let (ces, queues, defs) = batch_resources(&aws).await;
    assert!(ces.is_empty(), "{ces:?}");
    assert!(queues.is_empty(), "{queues:?}");
    assert!(defs.is_empty(), "{defs:?}");
    assert!(aws.function("second").await.is_err());

    // Without subnets: refused before anything is made.
    let mut bare = batch_spec("third", "other", ExecutionMode::Batch, ("", ""));
    bare.batch.as_mut().unwrap().compute.subnets.clear();
    let err = aws
        .init(InitRequest::new(bare, Package::Image { uri: IMAGE.into() }))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("needs subnets and security groups"),
        "{err}"
    );
    assert!(aws.function("third").await.is_err());
}

/// `lambda-batch` on AWS: a synchronous run whose Lambda invocation handed the event over
/// (moto's Lambda answers what the supervisor answers then: `handed_over`, the job's id)
/// is followed into the job, and its result says which request handed it over.
#[tokio::test]
async fn a_handed_over_run_is_followed_into_its_job() {
    let Some((moto, aws, subnet, group)) = batch_moto(&[]).await else {
        return;
    };
    let spec = batch_spec(
        "lb",
        "lbucket",
        ExecutionMode::LambdaBatch,
        (&subnet, &group),
    );
    aws.init(InitRequest::new(spec, Package::Image { uri: IMAGE.into() }))
        .await
        .unwrap();
    let job = aws
        .batch_client()
        .submit_job()
        .job_name("lb-req-1")
        .job_queue("scar-lb")
        .job_definition("scar-lb")
        .send()
        .await
        .unwrap()
        .job_id()
        .unwrap()
        .to_string();
    let handed_over = scar_core::event::Response {
        batch_job: Some(job.clone()),
        output: "started\n".into(),
        ..scar_core::event::Response::new("req-1", scar_core::event::Ending::HandedOver)
    };
    moto.queue_invoke_results(&[serde_json::to_string(&handed_over).unwrap()]);
    let statuses = Statuses::default();
    let inv = aws
        .invoke("lb", &Payload::default(), &statuses)
        .await
        .unwrap();
    let r = inv.response;
    assert!(r.succeeded(), "{r:?}");
    assert_eq!(r.batch_job.as_deref(), Some(job.as_str()));
    assert_eq!(r.handed_over_from.as_deref(), Some("req-1"));
    assert!(!statuses.0.lock().unwrap().is_empty());
    // A lambda-batch function is listed with its mode; its runs start on Lambda.
    assert_eq!(
        aws.function("lb").await.unwrap().spec.execution_mode,
        ExecutionMode::LambdaBatch
    );
}
