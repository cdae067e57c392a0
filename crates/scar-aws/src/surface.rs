//! The provider surface ([`Provider`]) on AWS: each method delegates to the module of its
//! concern (deploy, invoke, launcher, logs, storage, describe, remove).

use std::path::{Path, PathBuf};
use std::time::Duration;

use scar_core::bucket::BucketPath;
use scar_core::config::ProviderKind;
use scar_core::event::Payload;
use scar_core::progress::Progress;
use scar_core::provider::{
    CreateRequest, FileResult, FunctionInfo, Invocation, LaunchEvent, LaunchRequest, Listing,
    LogLine, LogQuery, ObjectInfo, OnLaunch, OnTransfer, Outcome, PackageKind, PackageReport,
    Provider, PutReport, Unsupported,
};

use scar_core::stats::FunctionStats;

use crate::{AwsError, AwsProvider};

/// How often `follow_logs` polls CloudWatch.
const FOLLOW_INTERVAL: Duration = Duration::from_secs(2);

/// Asynchronous invocations in flight at once when a launch does not say.
pub const DEFAULT_CONCURRENCY: usize = 32;

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
        self.invoke_function(name, payload, progress).await
    }

    async fn launch(
        &self,
        request: &LaunchRequest,
        on_event: OnLaunch<'_>,
    ) -> Result<Vec<FileResult>, AwsError> {
        self.launch_folder(request, on_event).await
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

    /// From the REPORT lines of the last [`crate::stats::STATS_WINDOW`] and S3 listings of
    /// the input and output folders; AWS keeps no outcome per file, so those counts are
    /// `None`.
    async fn stats(&self, name: Option<&str>) -> Result<Vec<FunctionStats>, AwsError> {
        self.function_stats(name).await
    }

    async fn put(
        &self,
        at: &BucketPath,
        path: &Path,
        on_transfer: OnTransfer<'_>,
    ) -> Result<PutReport, AwsError> {
        self.put_path(at, path, on_transfer).await
    }

    async fn get(
        &self,
        at: &BucketPath,
        dest: &Path,
        on_transfer: OnTransfer<'_>,
    ) -> Result<Vec<PathBuf>, AwsError> {
        self.get_path(at, dest, on_transfer).await
    }

    async fn list_objects(&self, at: &BucketPath) -> Result<Vec<ObjectInfo>, AwsError> {
        self.list_path(at).await
    }

    async fn package(
        &self,
        _name: &str,
        _kind: PackageKind,
        _dest: &Path,
        _progress: &dyn Progress,
    ) -> Result<PackageReport, AwsError> {
        Err(scar_core::provider::SurfaceError::from(Unsupported {
            provider: crate::PROVIDER_NAME,
            what: "`scar package`".into(),
            instead: "it writes a package to a file and needs no AWS account: run it without --provider aws".into(),
        })
        .into())
    }

    /// The functions tagged `createdby=scar` whose owner is the caller (every owner's with
    /// [`AwsProvider::with_all_owners`]).
    async fn list(&self) -> Result<Vec<FunctionInfo>, AwsError> {
        Ok(self.list_owned().await?.functions)
    }

    /// [`Provider::list`], with how many functions of other owners, or of none, it left out.
    async fn listing(&self) -> Result<Listing, AwsError> {
        self.list_owned().await
    }

    /// Removes the function, the notification and permission `init` added to its input
    /// bucket (other notifications stay), its log group and its ECR repository
    /// (`scar-<name>`, when scar created it). The bucket and its objects stay.
    /// [`AwsError::NotOwner`] when the function is not the caller's (unless
    /// [`AwsProvider::with_all_owners`]).
    async fn remove(&self, name: &str) -> Result<(), AwsError> {
        self.remove_function(name).await
    }

    /// Queues an asynchronous invocation (`InvocationType=Event`); returns its request id,
    /// or for a `batch` function the id of the job it submitted.
    async fn invoke_async(&self, name: &str, payload: &Payload) -> Result<String, AwsError> {
        self.invoke_function_async(name, payload).await
    }

    /// A scar function's description, or [`AwsError::NotFound`].
    async fn function(&self, name: &str) -> Result<FunctionInfo, AwsError> {
        self.describe_function(name).await
    }

    /// Removes every function [`Provider::list`] lists (the caller's, or with
    /// [`AwsProvider::with_all_owners`] every owner's); returns the names removed, or the
    /// first error after trying them all.
    async fn remove_all(&self) -> Result<Vec<String>, AwsError> {
        self.remove_all_functions().await
    }
}
