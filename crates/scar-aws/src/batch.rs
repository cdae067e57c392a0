//! AWS Batch for the `batch` and `lambda-batch` execution modes: the compute environment,
//! job queue and job definition `init` makes for a function (all named `scar-<function>`,
//! tagged `createdby=scar`), jobs submitted and waited for, and their removal.
//!
//! A job runs the function's image package (pushed to ECR) with its entrypoint, the
//! supervisor, in one-shot mode: the event is the job's `SCAR_EVENT` variable, and the
//! supervisor's last line `SCAR_RESPONSE <json>` in the function's log group is the result.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_batch::types::{
    AssignPublicIp, CeState, CeType, ComputeEnvironmentOrder, ComputeResource, ContainerOverrides,
    ContainerProperties, CrAllocationStrategy, CrType, JobDefinitionType, JobStatus, JobTimeout,
    JqState, KeyValuePair, LaunchTemplateSpecification, LogConfiguration, LogDriver,
    NetworkConfiguration, PlatformCapability, ResourceRequirement, ResourceType,
};
use futures_util::StreamExt as _;
use scar_core::contract::{self, batch_resource_name};
use scar_core::event::{Ending, Payload, Response};
use scar_core::lambda::log_group;
use scar_core::progress::{Phase, Progress};
use scar_core::provider::{
    FileResult, Invocation, LaunchEvent, LogLine, OnLaunch, Outcome, PackageKind, Unsupported,
};
use scar_core::{BatchSpec, FunctionSpec};

use crate::deploy::Created;
use crate::spec_codec::{lambda_variables, CREATED_BY_TAG};
use crate::{AwsError, AwsProvider};

/// How long `init` and `rm` wait for a compute environment or queue to settle.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(600);
/// AWS Batch's shortest job timeout.
const MIN_JOB_TIMEOUT_S: u32 = 60;
/// SCAR's default instance profile for EC2 and SPOT compute environments.
const DEFAULT_INSTANCE_ROLE: &str = "arn:aws:iam::{account_id}:instance-profile/ecsInstanceRole";

/// What a Batch mode needs that only the definition can give, checked before anything is
/// pulled: an image package (Batch runs container images), subnets and security groups
/// (a managed compute environment needs both), no GPU on Fargate.
pub(crate) fn check_batch_function(
    spec: &FunctionSpec,
    package: PackageKind,
) -> Result<(), AwsError> {
    if !spec.execution_mode.uses_batch() {
        return Ok(());
    }
    if package == PackageKind::Zip {
        return Err(scar_core::provider::SurfaceError::from(Unsupported {
            provider: crate::PROVIDER_NAME,
            what: format!(
                "a zip package with execution mode `{}`",
                spec.execution_mode
            ),
            instead: "AWS Batch runs container images: use --package image (the default)".into(),
        })
        .into());
    }
    let batch = spec.batch.clone().unwrap_or_default();
    let c = &batch.compute;
    if c.subnets.is_empty() || c.security_group_ids.is_empty() {
        return Err(AwsError::BatchNetwork {
            function: spec.name.clone(),
            mode: spec.execution_mode,
            subnets: c.subnets.len(),
            security_groups: c.security_group_ids.len(),
        });
    }
    if is_fargate(&c.kind) && batch.enable_gpu {
        return Err(AwsError::Input(format!(
            "function {:?}: Fargate has no GPUs: use compute_resources.type EC2 or SPOT with enable_gpu",
            spec.name
        )));
    }
    Ok(())
}

fn is_fargate(kind: &str) -> bool {
    kind.starts_with("FARGATE")
}

/// `{account_id}` (SCAR's placeholder in role ARNs) filled from the role's ARN.
fn with_account(arn: &str, role: &str) -> String {
    let account = role.split(':').nth(4).unwrap_or_default();
    arn.replace("{account_id}", account)
}

fn scar_tags() -> HashMap<String, String> {
    HashMap::from([(CREATED_BY_TAG.0.to_string(), CREATED_BY_TAG.1.to_string())])
}

/// How a job ended, or where it stands.
fn is_final(status: &JobStatus) -> bool {
    matches!(status, JobStatus::Succeeded | JobStatus::Failed)
}

impl AwsProvider {
    /// Makes the compute environment, job queue and job definition of a Batch mode
    /// function, each pushed onto `created` as soon as it exists.
    pub(crate) async fn create_batch(
        &self,
        spec: &FunctionSpec,
        image_uri: &str,
        created: &mut Vec<Created>,
    ) -> Result<(), AwsError> {
        let name = batch_resource_name(&spec.name);
        let batch = spec.batch.clone().unwrap_or_default();
        let role = self.config.deployment.iam_role.clone();
        let c = &batch.compute;
        let fargate = is_fargate(&c.kind);

        let mut resources = ComputeResource::builder()
            .r#type(CrType::from(c.kind.as_str()))
            .maxv_cpus(c.max_vcpus as i32)
            .set_subnets(Some(c.subnets.clone()))
            .set_security_group_ids(Some(c.security_group_ids.clone()))
            .set_tags((!fargate).then(scar_tags));
        if !fargate {
            let instance_types = if c.instance_types.is_empty() {
                vec!["optimal".to_string()]
            } else {
                c.instance_types.clone()
            };
            resources = resources
                .minv_cpus(c.min_vcpus as i32)
                .desiredv_cpus(c.desired_vcpus as i32)
                .set_instance_types(Some(instance_types))
                .instance_role(with_account(
                    c.instance_role.as_deref().unwrap_or(DEFAULT_INSTANCE_ROLE),
                    &role,
                ))
                .allocation_strategy(if c.kind == "SPOT" {
                    CrAllocationStrategy::SpotCapacityOptimized
                } else {
                    CrAllocationStrategy::BestFitProgressive
                });
            if let Some(template) = &c.launch_template_name {
                resources = resources.launch_template(
                    LaunchTemplateSpecification::builder()
                        .launch_template_name(template)
                        .build(),
                );
            }
        }
        let resources = resources.build();
        let ce = self
            .batch
            .create_compute_environment()
            .compute_environment_name(&name)
            .r#type(CeType::Managed)
            .state(CeState::Enabled)
            .compute_resources(resources)
            .set_service_role(
                batch
                    .service_role
                    .as_deref()
                    .map(|r| with_account(r, &role)),
            )
            .set_tags(Some(scar_tags()))
            .send()
            .await
            .map_err(AwsError::sdk("batch:CreateComputeEnvironment", &name))?;
        created.push(Created::ComputeEnvironment);
        let ce_arn = ce.compute_environment_arn().unwrap_or(&name).to_string();
        self.settle_compute_environment(&name).await?;

        self.batch
            .create_job_queue()
            .job_queue_name(&name)
            .state(JqState::Enabled)
            .priority(1)
            .compute_environment_order(
                ComputeEnvironmentOrder::builder()
                    .order(1)
                    .compute_environment(ce_arn)
                    .build(),
            )
            .set_tags(Some(scar_tags()))
            .send()
            .await
            .map_err(AwsError::sdk("batch:CreateJobQueue", &name))?;
        created.push(Created::JobQueue);

        let requirement = |kind: ResourceType, value: String| {
            ResourceRequirement::builder()
                .r#type(kind)
                .value(value)
                .build()
        };
        let mut requirements = vec![
            requirement(ResourceType::Vcpu, batch.vcpus.to_string()),
            requirement(ResourceType::Memory, batch.memory_mb.to_string()),
        ];
        if batch.enable_gpu {
            requirements.push(requirement(ResourceType::Gpu, "1".into()));
        }
        let environment = job_variables(spec, &batch)
            .into_iter()
            .map(|(k, v)| KeyValuePair::builder().name(k).value(v).build())
            .collect();
        let mut container = ContainerProperties::builder()
            .image(image_uri)
            .set_resource_requirements(Some(requirements))
            .set_environment(Some(environment))
            .job_role_arn(&role)
            .execution_role_arn(&role)
            .log_configuration(
                LogConfiguration::builder()
                    .log_driver(LogDriver::Awslogs)
                    .options("awslogs-group", log_group(&spec.name))
                    .options("awslogs-stream-prefix", "batch")
                    .build(),
            );
        if fargate {
            container = container.network_configuration(
                NetworkConfiguration::builder()
                    .assign_public_ip(AssignPublicIp::Enabled)
                    .build(),
            );
        }
        let definition = self
            .batch
            .register_job_definition()
            .job_definition_name(&name)
            .r#type(JobDefinitionType::Container)
            .container_properties(container.build())
            .set_platform_capabilities(Some(vec![if fargate {
                PlatformCapability::Fargate
            } else {
                PlatformCapability::Ec2
            }]))
            .timeout(
                JobTimeout::builder()
                    .attempt_duration_seconds(spec.timeout_s.max(MIN_JOB_TIMEOUT_S) as i32)
                    .build(),
            )
            .propagate_tags(true)
            .set_tags(Some(scar_tags()))
            .send()
            .await
            .map_err(AwsError::sdk("batch:RegisterJobDefinition", &name))?;
        created.push(Created::JobDefinition(
            definition.job_definition_arn().unwrap_or(&name).to_string(),
        ));
        Ok(())
    }

    /// Waits until the compute environment is `VALID` (its creation or update done).
    async fn settle_compute_environment(&self, name: &str) -> Result<(), AwsError> {
        let start = Instant::now();
        loop {
            let out = self
                .batch
                .describe_compute_environments()
                .compute_environments(name)
                .send()
                .await
                .map_err(AwsError::sdk("batch:DescribeComputeEnvironments", name))?;
            let Some(ce) = out.compute_environments().first() else {
                return Ok(());
            };
            match ce.status().map(|s| s.as_str()) {
                Some("CREATING" | "UPDATING" | "DELETING") => {}
                Some("INVALID") => {
                    return Err(AwsError::Input(format!(
                        "AWS Batch says the compute environment {name} is INVALID: {}",
                        ce.status_reason().unwrap_or("no reason given")
                    )))
                }
                _ => return Ok(()),
            }
            if start.elapsed() > SETTLE_TIMEOUT {
                return Err(AwsError::Input(format!(
                    "the compute environment {name} did not settle within {} s",
                    SETTLE_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    /// Removes the job queue, compute environment and job definitions of `function` that
    /// scar made (tagged `createdby=scar`); what is missing, or not scar's, is left alone.
    pub(crate) async fn remove_batch(&self, function: &str) -> Result<(), AwsError> {
        self.delete_job_queue(function).await?;
        self.delete_compute_environment(function).await?;
        self.deregister_job_definitions(function).await
    }

    pub(crate) async fn delete_job_queue(&self, function: &str) -> Result<(), AwsError> {
        let name = batch_resource_name(function);
        let start = Instant::now();
        loop {
            let out = self
                .batch
                .describe_job_queues()
                .job_queues(&name)
                .send()
                .await
                .map_err(AwsError::sdk("batch:DescribeJobQueues", &name))?;
            let Some(queue) = out.job_queues().first() else {
                return Ok(());
            };
            if !crate::spec_codec::is_scar(queue.tags()) {
                return Ok(());
            }
            let status = queue.status().map(|s| s.as_str()).unwrap_or_default();
            let state = queue.state().map(|s| s.as_str()).unwrap_or_default();
            match (status, state) {
                ("DELETED", _) => return Ok(()),
                ("CREATING" | "UPDATING" | "DELETING", _) => {}
                (_, "ENABLED") => {
                    self.batch
                        .update_job_queue()
                        .job_queue(&name)
                        .state(JqState::Disabled)
                        .send()
                        .await
                        .map_err(AwsError::sdk("batch:UpdateJobQueue", &name))?;
                }
                _ => {
                    self.batch
                        .delete_job_queue()
                        .job_queue(&name)
                        .send()
                        .await
                        .map_err(AwsError::sdk("batch:DeleteJobQueue", &name))?;
                }
            }
            if start.elapsed() > SETTLE_TIMEOUT {
                return Err(AwsError::Input(format!(
                    "the job queue {name} was not deleted within {} s",
                    SETTLE_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    pub(crate) async fn delete_compute_environment(&self, function: &str) -> Result<(), AwsError> {
        let name = batch_resource_name(function);
        let start = Instant::now();
        loop {
            let out = self
                .batch
                .describe_compute_environments()
                .compute_environments(&name)
                .send()
                .await
                .map_err(AwsError::sdk("batch:DescribeComputeEnvironments", &name))?;
            let Some(ce) = out.compute_environments().first() else {
                return Ok(());
            };
            if !crate::spec_codec::is_scar(ce.tags()) {
                return Ok(());
            }
            let status = ce.status().map(|s| s.as_str()).unwrap_or_default();
            let state = ce.state().map(|s| s.as_str()).unwrap_or_default();
            match (status, state) {
                ("DELETED", _) => return Ok(()),
                ("CREATING" | "UPDATING" | "DELETING", _) => {}
                (_, "ENABLED") => {
                    self.batch
                        .update_compute_environment()
                        .compute_environment(&name)
                        .state(CeState::Disabled)
                        .send()
                        .await
                        .map_err(AwsError::sdk("batch:UpdateComputeEnvironment", &name))?;
                }
                _ => {
                    let deleted = self
                        .batch
                        .delete_compute_environment()
                        .compute_environment(&name)
                        .send()
                        .await
                        .map_err(AwsError::sdk("batch:DeleteComputeEnvironment", &name));
                    // Still bound to its queue while the queue is deleted: try again.
                    if let Err(e) = deleted {
                        if !e.has_code(&["ClientException"]) {
                            return Err(e);
                        }
                    }
                }
            }
            if start.elapsed() > SETTLE_TIMEOUT {
                return Err(AwsError::Input(format!(
                    "the compute environment {name} was not deleted within {} s",
                    SETTLE_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Deregisters every active revision of the function's job definition that scar made.
    pub(crate) async fn deregister_job_definitions(&self, function: &str) -> Result<(), AwsError> {
        let name = batch_resource_name(function);
        let out = self
            .batch
            .describe_job_definitions()
            .job_definition_name(&name)
            .status("ACTIVE")
            .send()
            .await
            .map_err(AwsError::sdk("batch:DescribeJobDefinitions", &name))?;
        for definition in out.job_definitions() {
            if !crate::spec_codec::is_scar(definition.tags()) {
                continue;
            }
            if let Some(arn) = definition.job_definition_arn() {
                self.deregister_job_definition(arn).await?;
            }
        }
        Ok(())
    }

    pub(crate) async fn deregister_job_definition(&self, arn: &str) -> Result<(), AwsError> {
        self.batch
            .deregister_job_definition()
            .job_definition(arn)
            .send()
            .await
            .map(drop)
            .map_err(AwsError::sdk("batch:DeregisterJobDefinition", arn))
    }

    /// Submits `event` as a job of `function` (its queue and definition); returns the job id.
    pub(crate) async fn submit_job(
        &self,
        function: &str,
        request_id: &str,
        event: &serde_json::Value,
    ) -> Result<String, AwsError> {
        let name = batch_resource_name(function);
        let event = contract::job_event_variable(event).map_err(AwsError::Input)?;
        let out = self
            .batch
            .submit_job()
            .job_name(contract::batch_job_name(function, request_id))
            .job_queue(&name)
            .job_definition(&name)
            .container_overrides(
                ContainerOverrides::builder()
                    .environment(
                        KeyValuePair::builder()
                            .name(contract::EVENT_VAR)
                            .value(event)
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                let e = AwsError::sdk("batch:SubmitJob", &name)(e);
                if e.has_code(&["ClientException"]) && e.to_string().contains("not found") {
                    AwsError::Input(format!(
                        "function {function:?} has no AWS Batch job queue {name}: it was not created by this version of scar"
                    ))
                } else {
                    e
                }
            })?;
        Ok(out.job_id().unwrap_or_default().to_string())
    }

    /// The launcher of a `batch` function: a job per event, `concurrency` submissions at
    /// once; each result is `queued` with its job id as request id, or `not_invoked`.
    pub(crate) async fn submit_jobs(
        &self,
        function: &str,
        events: impl Iterator<Item = (String, serde_json::Value)>,
        concurrency: usize,
        on_event: OnLaunch<'_>,
    ) -> Vec<FileResult> {
        let stream = futures_util::stream::iter(events.map(|(key, event)| async move {
            let request_id = new_request_id();
            let mut result = FileResult::new(key, Outcome::Queued);
            match self.submit_job(function, &request_id, &event).await {
                Ok(job) => result.request_id = job,
                Err(e) => {
                    result.outcome = Outcome::NotInvoked;
                    result.error = Some(e.to_string());
                }
            }
            result
        }))
        .buffer_unordered(concurrency.max(1));
        futures_util::pin_mut!(stream);
        let mut results = Vec::new();
        while let Some(result) = stream.next().await {
            on_event(&LaunchEvent::Finished(result.clone()));
            results.push(result);
        }
        results.sort_by(|a, b| a.key.cmp(&b.key));
        results
    }

    /// Submits a synchronous run's payload as a job and waits for it.
    pub(crate) async fn run_job(
        &self,
        function: &str,
        payload: &Payload,
        progress: &dyn Progress,
    ) -> Result<Invocation, AwsError> {
        let event = serde_json::to_value(payload).unwrap_or_default();
        let id = self.submit_job(function, &new_request_id(), &event).await?;
        self.wait_job(function, &id, progress).await
    }

    /// Waits for job `id` of `function` to succeed or fail, reporting each state it
    /// passes through (SUBMITTED, PENDING, RUNNABLE, STARTING, RUNNING, SUCCEEDED or
    /// FAILED); its response is the supervisor's last `SCAR_RESPONSE` line in the job's
    /// log, else one made from what Batch says of the job.
    pub async fn wait_job(
        &self,
        function: &str,
        id: &str,
        progress: &dyn Progress,
    ) -> Result<Invocation, AwsError> {
        progress.start(Phase::Job, None);
        let mut last = None;
        let mut pause = Duration::from_millis(500);
        let job = loop {
            let out = self
                .batch
                .describe_jobs()
                .jobs(id)
                .send()
                .await
                .map_err(AwsError::sdk("batch:DescribeJobs", id))?;
            let Some(job) = out.jobs().first().cloned() else {
                progress.finish();
                return Err(AwsError::Input(format!(
                    "AWS Batch has no job {id} (finished jobs are kept for about a week)"
                )));
            };
            let status = job.status().cloned();
            if status != last {
                if let Some(s) = &status {
                    progress.status(&format!("job {id}: {}", s.as_str()));
                }
                last = status.clone();
            }
            if status.as_ref().is_some_and(is_final) {
                break job;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        };
        progress.finish();
        let container = job.container();
        let stream = container
            .and_then(|c| c.log_stream_name())
            .unwrap_or_default()
            .to_string();
        let group = log_group(function);
        let lines = if stream.is_empty() {
            Vec::new()
        } else {
            self.stream_lines(&group, &stream).await?
        };
        let succeeded = job.status() == Some(&JobStatus::Succeeded);
        let response = lines
            .iter()
            .rev()
            .find_map(|l| l.strip_prefix(contract::ONESHOT_RESPONSE_PREFIX))
            .and_then(|json| serde_json::from_str::<Response>(json).ok());
        let mut response = match response {
            Some(r) => r,
            None => {
                let mut output = lines.join("\n");
                if !output.is_empty() {
                    output.push('\n');
                }
                if !succeeded {
                    output.push_str(&format!(
                        "scar: the AWS Batch job {id} FAILED: {}\n",
                        job.status_reason().unwrap_or("no reason given")
                    ));
                }
                let ending = match container.and_then(|c| c.exit_code()) {
                    Some(code) => Ending::Exited(code),
                    None if succeeded => Ending::Exited(0),
                    None => Ending::default(),
                };
                let mut r = Response::new(id, ending);
                r.set_output(output.into_bytes());
                r
            }
        };
        response.request_id = id.to_string();
        response.batch_job = Some(id.to_string());
        response.log_group = group;
        response.log_stream = stream;
        // A job that FAILED (killed at its timeout, out of memory) never succeeded,
        // whatever its last line said.
        if !succeeded && response.succeeded() {
            response.ending = Ending::default();
        }
        Ok(Invocation {
            response,
            log_tail: None,
        })
    }

    /// The lines of one stream of `group`, in order.
    async fn stream_lines(&self, group: &str, stream: &str) -> Result<Vec<String>, AwsError> {
        let mut lines = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .logs
                .get_log_events()
                .log_group_name(group)
                .log_stream_name(stream)
                .start_from_head(true)
                .set_next_token(token.clone())
                .send()
                .await;
            let out = match out {
                Ok(out) => out,
                Err(e) => {
                    let e = AwsError::sdk("logs:GetLogEvents", format!("{group} {stream}"))(e);
                    // A job that never started has no stream.
                    if e.has_code(&["ResourceNotFoundException"]) {
                        return Ok(lines);
                    }
                    return Err(e);
                }
            };
            let before = lines.len();
            lines.extend(
                out.events()
                    .iter()
                    .filter_map(|e| e.message())
                    .map(|m| m.trim_end_matches(['\n', '\r']).to_string()),
            );
            let next = out.next_forward_token().map(str::to_string);
            if lines.len() == before || next.is_none() || next == token {
                return Ok(lines);
            }
            token = next;
        }
    }

    /// The log lines of job `id`, when it is a job of `function`'s (`scar log -ri`);
    /// `None` when AWS Batch has no such job.
    pub(crate) async fn job_log(
        &self,
        function: &str,
        id: &str,
    ) -> Result<Option<Vec<LogLine>>, AwsError> {
        let out = self.batch.describe_jobs().jobs(id).send().await;
        let Ok(out) = out else {
            // Not a job id (a Lambda request id is not always accepted as one).
            return Ok(None);
        };
        let Some(job) = out.jobs().first() else {
            return Ok(None);
        };
        let queue = batch_resource_name(function);
        if !job
            .job_queue()
            .is_some_and(|q| q == queue || q.ends_with(&format!("/{queue}")))
        {
            return Ok(None);
        }
        let Some(stream) = job.container().and_then(|c| c.log_stream_name()) else {
            return Ok(Some(Vec::new()));
        };
        let lines = self.stream_lines(&log_group(function), stream).await?;
        Ok(Some(
            lines
                .into_iter()
                .map(|message| LogLine {
                    stream: stream.to_string(),
                    message,
                })
                .collect(),
        ))
    }
}

/// A job's variables: the function's Lambda variables (its container's as `CONT_VAR_*`,
/// its storage providers), the batch block's over them, and the marks of a Batch job.
fn job_variables(spec: &FunctionSpec, batch: &BatchSpec) -> Vec<(String, String)> {
    let mut vars = lambda_variables(spec);
    for (k, v) in &batch.environment {
        vars.insert(format!("{}{k}", contract::CONTAINER_VAR_PREFIX), v.clone());
    }
    vars.insert(contract::BATCH_JOB_VAR.into(), "1".into());
    vars.into_iter().collect()
}

/// A request id for a job scar submits itself (`scar run`, the launcher): unique in this
/// process and across processes.
pub(crate) fn new_request_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seq = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{:x}-{n:x}-{seq}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_placeholders_come_from_the_role() {
        assert_eq!(
            with_account(DEFAULT_INSTANCE_ROLE, "arn:aws:iam::123456789012:role/scar"),
            "arn:aws:iam::123456789012:instance-profile/ecsInstanceRole"
        );
    }

    #[test]
    fn job_variables_mark_the_job_and_keep_container_names() {
        let mut spec = scar_test_support::moto::spec("f");
        spec.environment
            .insert("AWS_ACCESS_KEY_ID".into(), "k".into());
        let mut batch = BatchSpec::default();
        batch.environment.insert("THREADS".into(), "8".into());
        let vars: HashMap<_, _> = job_variables(&spec, &batch).into_iter().collect();
        assert_eq!(vars["CONT_VAR_AWS_ACCESS_KEY_ID"], "k");
        assert_eq!(vars["CONT_VAR_THREADS"], "8");
        assert_eq!(vars[contract::BATCH_JOB_VAR], "1");
    }
}
