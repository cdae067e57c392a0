//! The provider surface ([`Provider`]) on AWS: Lambda, S3, CloudWatch Logs, ECR.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_lambda::operation::RequestId as _;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use scar_core::bucket::BucketPath;
use scar_core::config::ProviderKind;
use scar_core::event::Payload;
use scar_core::progress::Progress;
use scar_core::provider::SurfaceError;
use scar_core::provider::{
    CreateRequest, FileResult, FunctionInfo, Invocation, LaunchEvent, LaunchRequest, LogLine,
    LogQuery, ObjectInfo, OnLaunch, OnTransfer, Outcome, PackageKind, PackageReport, Provider,
    PutReport, Unsupported,
};
use scar_core::ExecutionMode;

use crate::launcher::{DispatchEvent, DispatchOptions, DispatchOutcome, DispatchResult};
use crate::provider::{function_info, is_scar, not_found_as, permission_id, INPUT_TAG};
use crate::{AwsError, AwsProvider};

/// How often `follow_logs` polls CloudWatch.
const FOLLOW_INTERVAL: Duration = Duration::from_secs(2);

/// Asynchronous invocations in flight at once when a launch does not say.
pub const DEFAULT_CONCURRENCY: usize = 32;

/// The S3 prefix of a bucket path: `folder/`, or empty for the whole bucket.
fn prefix(at: &BucketPath) -> String {
    if at.folder.is_empty() {
        String::new()
    } else {
        format!("{}/", at.folder)
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

impl Provider for AwsProvider {
    type Error = AwsError;

    fn kind(&self) -> ProviderKind {
        ProviderKind::Aws
    }

    fn default_concurrency(&self) -> usize {
        DEFAULT_CONCURRENCY
    }

    async fn create(
        &self,
        request: CreateRequest,
        progress: &dyn Progress,
    ) -> Result<FunctionInfo, AwsError> {
        self.create_function(request, progress).await
    }

    /// A `batch` function's payload goes to AWS Batch as a job, waited for; a
    /// `lambda-batch` one's that Lambda hands over is waited for the same way.
    async fn invoke(
        &self,
        name: &str,
        payload: &Payload,
        progress: &dyn Progress,
    ) -> Result<Invocation, AwsError> {
        let spec = self.function(name).await?.spec;
        if spec.execution_mode == ExecutionMode::Batch {
            return self.run_job(name, payload, progress).await;
        }
        let invocation = self.invoke_detailed(name, spec.runtime, payload).await?;
        match invocation.response.batch_job.clone() {
            Some(job) if invocation.response.handed_over => {
                let mut from_job = self.wait_job(name, &job, progress).await?;
                from_job.response.handed_over_from = Some(invocation.response.request_id);
                Ok(from_job)
            }
            _ => Ok(invocation),
        }
    }

    async fn launch(
        &self,
        request: &LaunchRequest,
        on_event: OnLaunch<'_>,
    ) -> Result<Vec<FileResult>, AwsError> {
        if request.only_failed || request.pending_only {
            return Err(Unsupported {
                provider: crate::PROVIDER_NAME,
                what: "--only-failed and --pending".into(),
                instead: "on AWS the launcher invokes the function for every file under input/, and Lambda keeps no record of what ran".into(),
            }
            .into());
        }
        let info = self.function(&request.function).await?;
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
            .unwrap_or(DEFAULT_CONCURRENCY);
        let events = objects.into_iter().enumerate().map(|(i, object)| {
            let event = match &minio {
                Some((_, region, _)) => crate::minio_event(region, &object, i as u64 + 1),
                None => crate::s3_event(&self.region, &object, i as u64 + 1),
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

    async fn await_inputs(
        &self,
        report: &PutReport,
        _concurrency: Option<usize>,
        on_event: OnLaunch<'_>,
    ) -> Result<Vec<FileResult>, AwsError> {
        // S3's notification invokes the function for each of them: they are queued.
        on_event(&LaunchEvent::Planned {
            total: report.inputs.len(),
        });
        let results: Vec<FileResult> = report
            .inputs
            .iter()
            .map(|key| FileResult::new(key.clone(), Outcome::Queued))
            .collect();
        for r in &results {
            on_event(&LaunchEvent::Finished(r.clone()));
        }
        Ok(results)
    }

    async fn start_inputs(&self, _report: &PutReport) -> Result<(), AwsError> {
        // S3's notifications run them already.
        Ok(())
    }

    async fn logs(&self, name: &str, query: &LogQuery) -> Result<Vec<LogLine>, AwsError> {
        // `-ri` with the id of one of the function's Batch jobs: that job's stream.
        if let Some(id) = &query.request_id {
            if let Some(lines) = self.job_log(name, id).await? {
                return Ok(lines);
            }
        }
        self.read_logs(name, query).await
    }

    async fn follow_logs(
        &self,
        name: &str,
        stream: Option<&str>,
        on_line: &mut (dyn FnMut(LogLine) -> bool + Send),
    ) -> Result<(), AwsError> {
        self.follow_logs_every(name, stream, FOLLOW_INTERVAL, on_line)
            .await
    }

    async fn put(
        &self,
        at: &BucketPath,
        path: &Path,
        on_transfer: OnTransfer<'_>,
    ) -> Result<PutReport, AwsError> {
        let files = scar_core::local_files::files_to_put(path)?;
        let mut stored = Vec::new();
        for file in &files {
            let key = at.key(&file.relative);
            let size = self
                .put_file(&at.bucket, &key, &file.path, &|e| on_transfer(&e))
                .await?;
            stored.push(ObjectInfo {
                bucket: at.bucket.clone(),
                key,
                size,
                etag: String::new(),
                modified: String::new(),
            });
        }
        let functions: Vec<_> = self.list().await?.into_iter().map(|f| f.spec).collect();
        Ok(PutReport::new(stored, &functions))
    }

    async fn get(
        &self,
        at: &BucketPath,
        dest: &Path,
        on_transfer: OnTransfer<'_>,
    ) -> Result<Vec<PathBuf>, AwsError> {
        let files = self
            .get_prefix(&at.bucket, &prefix(at), dest, &|e| on_transfer(&e))
            .await?;
        // `-b bucket/folder/file.txt`: one object, not a folder.
        if files.is_empty() && !at.folder.is_empty() {
            return self
                .get_prefix(&at.bucket, &at.folder, dest, &|e| on_transfer(&e))
                .await;
        }
        Ok(files)
    }

    async fn list_objects(&self, at: &BucketPath) -> Result<Vec<ObjectInfo>, AwsError> {
        self.list_inputs(&at.bucket, &prefix(at)).await
    }

    async fn package(
        &self,
        _name: &str,
        _kind: PackageKind,
        _dest: &Path,
        _progress: &dyn Progress,
    ) -> Result<PackageReport, AwsError> {
        Err(Unsupported {
            provider: crate::PROVIDER_NAME,
            what: "`scar package`".into(),
            instead: "it writes a package to a file and needs no AWS account: run it without --provider aws".into(),
        }
        .into())
    }

    /// The functions tagged `createdby=scar`.
    async fn list(&self) -> Result<Vec<FunctionInfo>, AwsError> {
        let mut configs = Vec::new();
        let mut pages = self.lambda.list_functions().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(AwsError::sdk("lambda:ListFunctions", "functions"))?;
            configs.extend(page.functions().iter().cloned());
        }
        // ListFunctions has no tags: read each function, a few at a time.
        let mut set = tokio::task::JoinSet::new();
        let mut infos = Vec::new();
        let mut pending = configs.into_iter().filter_map(|c| c.function_name);
        loop {
            while set.len() < 8 {
                let Some(name) = pending.next() else { break };
                let lambda = self.lambda.clone();
                set.spawn(async move {
                    let out = lambda.get_function().function_name(&name).send().await;
                    (name, out)
                });
            }
            let Some(joined) = set.join_next().await else {
                break;
            };
            let Ok((name, out)) = joined else { continue };
            match out {
                Ok(out) if is_scar(out.tags()) => infos.push(function_info(&out)),
                Ok(_) => {}
                Err(e) => {
                    let e = AwsError::sdk("lambda:GetFunction", name)(e);
                    // Removed between the listing and now.
                    if !e.is_not_found() {
                        return Err(e);
                    }
                }
            }
        }
        infos.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        Ok(infos)
    }

    /// Removes the function, the notification and permission `init` added to its input
    /// bucket (other notifications stay), its log group and its ECR repository
    /// (`scar-<name>`, when scar created it). The bucket and its objects stay.
    async fn remove(&self, name: &str) -> Result<(), AwsError> {
        scar_core::spec::validate_name(name)?;
        let out = self
            .lambda
            .get_function()
            .function_name(name)
            .send()
            .await
            .map_err(|e| not_found_as(name, AwsError::sdk("lambda:GetFunction", name)(e)))?;
        let tags = out.tags().cloned().unwrap_or_default();
        if !is_scar(Some(&tags)) {
            return Err(AwsError::NotScarFunction(name.into()));
        }
        let mut buckets: Vec<String> = tags
            .get(INPUT_TAG)
            .map(|t| {
                t.split(' ')
                    // A storage provider's folder (`minio.<id>:...`) has no notification.
                    .filter(|p| !p.contains(':'))
                    .filter_map(|p| p.split('/').next())
                    .filter(|b| !b.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        // Functions made before `scar:input`.
        buckets.extend(tags.get("scar:input_bucket").cloned());
        buckets.dedup();
        for bucket in &buckets {
            match self.remove_notification(name, bucket).await {
                Err(e) if !e.is_not_found() => return Err(e),
                _ => {}
            }
            let removed = self
                .lambda
                .remove_permission()
                .function_name(name)
                .statement_id(permission_id(bucket))
                .send()
                .await
                .map_err(AwsError::sdk("lambda:RemovePermission", name));
            match removed {
                Err(e) if !e.is_not_found() => return Err(e),
                _ => {}
            }
        }
        if crate::batch::mode_of(Some(&tags)).uses_batch() {
            self.remove_batch(name).await?;
        }
        self.lambda
            .delete_function()
            .function_name(name)
            .send()
            .await
            .map_err(AwsError::sdk("lambda:DeleteFunction", name))?;
        self.delete_log_group(name).await?;
        self.delete_ecr_repository(&crate::ecr_repository_name(name))
            .await?;
        Ok(())
    }

    /// Queues an asynchronous invocation (`InvocationType=Event`); returns its request id,
    /// or for a `batch` function the id of the job it submitted.
    async fn invoke_async(&self, name: &str, payload: &Payload) -> Result<String, AwsError> {
        if self.function(name).await?.spec.execution_mode == ExecutionMode::Batch {
            let event = serde_json::to_value(payload).unwrap_or_default();
            return self
                .submit_job(name, &crate::batch::new_request_id(), &event)
                .await;
        }
        let body = serde_json::to_vec(payload).unwrap_or_default();
        let out = self
            .lambda
            .invoke()
            .function_name(name)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(body))
            .send()
            .await
            .map_err(|e| not_found_as(name, AwsError::sdk("lambda:Invoke", name)(e)))?;
        Ok(out.request_id().unwrap_or_default().to_string())
    }

    /// A scar function's description, or [`SurfaceError::NotFound`].
    async fn function(&self, name: &str) -> Result<FunctionInfo, AwsError> {
        let out = self
            .lambda
            .get_function()
            .function_name(name)
            .send()
            .await
            .map_err(|e| not_found_as(name, AwsError::sdk("lambda:GetFunction", name)(e)))?;
        if !is_scar(out.tags()) {
            return Err(AwsError::NotScarFunction(name.into()));
        }
        Ok(function_info(&out))
    }

    /// Removes every function scar created in this region; returns the names removed, or
    /// the first error after trying them all.
    async fn remove_all(&self) -> Result<Vec<String>, AwsError> {
        let mut removed = Vec::new();
        let mut first_error = None;
        for info in self.list().await? {
            match self.remove(&info.spec.name).await {
                Ok(()) => removed.push(info.spec.name),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(removed),
        }
    }
}
