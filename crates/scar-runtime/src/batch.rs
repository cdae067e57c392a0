//! Events handed to AWS Batch from Lambda: a `batch` function's supervisor submits every
//! event as a job, a `lambda-batch` one the events that reach its timeout threshold.
//!
//! The job runs the function's image package with this same supervisor in one-shot mode
//! ([`crate::oneshot`]): the event goes in the job's `SCAR_EVENT` variable (base64), as
//! SCAR passes its event in the job's environment.

use aws_config::BehaviorVersion;
use aws_sdk_batch::types::{ContainerOverrides, KeyValuePair};
use scar_core::contract;
use scar_core::event::{Ending, Response};

/// Where a function's jobs go: the job queue and job definition `scar init` made, named
/// in the Lambda function's variables.
#[derive(Debug, Clone)]
pub struct BatchQueue {
    pub queue: String,
    pub definition: String,
}

impl BatchQueue {
    /// The queue named by `SCAR_BATCH_JOB_QUEUE` and `SCAR_BATCH_JOB_DEFINITION`; `None`
    /// off AWS (the local provider runs Batch jobs itself) or when either is missing.
    pub fn from_environment() -> Option<BatchQueue> {
        let var = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Some(BatchQueue {
            queue: var(contract::BATCH_JOB_QUEUE_VAR)?,
            definition: var(contract::BATCH_JOB_DEFINITION_VAR)?,
        })
    }

    /// Submits `event` as a job of `function`'s, named after the request; `from`: the
    /// Lambda request that hands it over. Returns the job id.
    pub async fn submit(
        &self,
        function: &str,
        request_id: &str,
        event: &serde_json::Value,
    ) -> Result<String, String> {
        let event = contract::job_event_variable(event)?;
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        loader = loader.http_client(crate::storage::s3::https_client());
        let client = aws_sdk_batch::Client::new(&loader.load().await);
        let variable =
            |name: &str, value: String| KeyValuePair::builder().name(name).value(value).build();
        let out = client
            .submit_job()
            .job_name(contract::batch_job_name(function, request_id))
            .job_queue(&self.queue)
            .job_definition(&self.definition)
            .container_overrides(
                ContainerOverrides::builder()
                    .environment(variable(contract::EVENT_VAR, event))
                    .environment(variable(
                        contract::HANDED_OVER_FROM_VAR,
                        request_id.to_string(),
                    ))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                let e = aws_sdk_batch::error::DisplayErrorContext(e);
                format!("batch:SubmitJob to {}: {e}", self.queue)
            })?;
        Ok(out.job_id().unwrap_or_default().to_string())
    }

    /// Submits `event` and says so in `response`: its `batch_job`, and a line of output;
    /// a submission that fails makes the response a failure (Lambda retries it).
    pub async fn hand_over(
        &self,
        function: &str,
        event: &serde_json::Value,
        response: &mut Response,
    ) {
        let mut output = response.output_bytes();
        match self.submit(function, &response.request_id, event).await {
            Ok(job) => {
                let line = format!(
                    "scar: the event was submitted to AWS Batch: job {job} (queue {})\n",
                    self.queue
                );
                print!("{line}");
                output.extend_from_slice(line.as_bytes());
                response.batch_job = Some(job);
                response.ending = Ending::HandedOver;
            }
            Err(e) => {
                let line = format!("scar: the event could not be submitted to AWS Batch: {e}\n");
                eprint!("{line}");
                output.extend_from_slice(line.as_bytes());
                response.ending = Ending::Unfinished { error: None };
            }
        }
        response.set_output(output);
    }
}
