//! `stats` on AWS: invocations and their durations from the REPORT lines of each
//! function's CloudWatch log group (the last [`STATS_WINDOW`]), and the objects S3 lists in
//! its input and output folders. AWS keeps no outcome per file: the counts the local
//! provider reads from its records (waiting, running, done, failed, timed out,
//! loop-stopped) are `None` here.

use std::collections::HashSet;
use std::time::Duration;

use scar_core::lambda::log_group;
use scar_core::provider::{FunctionInfo, Provider as _};
use scar_core::stats::{parse_report, Counts, FunctionStats};

use crate::error::{NotFoundExt as _, SdkResultExt as _};
use crate::{AwsError, AwsProvider};

/// How far back REPORT lines are read: CloudWatch keeps logs for as long as the group's
/// retention says, and reading them all could page for long.
pub const STATS_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// CloudWatch's filter for REPORT lines: a quoted term matches the phrase as it is.
const REPORT_FILTER: &str = "\"REPORT RequestId\"";

impl AwsProvider {
    /// Per function (`name`'s alone, or every function `list` lists): see the module.
    pub async fn function_stats(&self, name: Option<&str>) -> Result<Vec<FunctionStats>, AwsError> {
        let functions = match name {
            Some(name) => vec![self.function(name).await?],
            None => self.list().await?,
        };
        let since = chrono::Utc::now().timestamp_millis() - STATS_WINDOW.as_millis() as i64;
        let mut stats = Vec::with_capacity(functions.len());
        for f in &functions {
            let durations = self.report_durations(&f.spec.name, since).await?;
            let counts = self.object_counts(f).await?;
            stats.push(FunctionStats::new(f.spec.name.clone(), counts, durations));
        }
        Ok(stats)
    }

    /// The durations (ms) of the REPORT lines in `name`'s log group from `since` (epoch
    /// ms) on, every page; one per request id (a line CloudWatch gave twice counts once).
    /// None when the group does not exist yet (the function has not run).
    async fn report_durations(&self, name: &str, since: i64) -> Result<Vec<f64>, AwsError> {
        let group = log_group(name);
        let mut pages = self
            .logs
            .filter_log_events()
            .log_group_name(&group)
            .filter_pattern(REPORT_FILTER)
            .start_time(since)
            .into_paginator()
            .send();
        let mut seen = HashSet::new();
        let mut durations = Vec::new();
        while let Some(page) = pages.next().await {
            let Some(page) = page
                .map_sdk_err("logs:FilterLogEvents", &group)
                .optional()?
            else {
                return Ok(Vec::new());
            };
            let messages = page.events().iter().filter_map(|e| e.message());
            for report in messages.filter_map(parse_report) {
                if seen.insert(report.request_id) {
                    durations.push(report.duration_ms);
                }
            }
        }
        Ok(durations)
    }

    /// The objects in `f`'s input folders (the keys that trigger it) and in its output
    /// folders, of its own S3 storage; `None` for a kind of folder it has none of there
    /// (folders of other storage providers are not listed).
    async fn object_counts(&self, f: &FunctionInfo) -> Result<Counts, AwsError> {
        let spec = &f.spec;
        let own_inputs: Vec<_> = spec.inputs.iter().filter(|i| i.storage.is_none()).collect();
        let own_outputs: Vec<_> = spec
            .outputs
            .iter()
            .filter(|o| o.storage.is_none())
            .collect();
        let mut inputs = HashSet::new();
        for input in &own_inputs {
            for o in self.list_inputs(&input.bucket, &input.prefix()).await? {
                if spec.is_triggered_by(&o.bucket, &o.key) {
                    inputs.insert((o.bucket, o.key));
                }
            }
        }
        let mut outputs = HashSet::new();
        for output in &own_outputs {
            let prefix = scar_core::bucket::folder_prefix(&output.folder);
            for o in self.list_inputs(&output.bucket, &prefix).await? {
                outputs.insert((o.bucket, o.key));
            }
        }
        Ok(Counts::of_objects(
            (!own_inputs.is_empty()).then_some(inputs.len()),
            (!own_outputs.is_empty()).then_some(outputs.len()),
        ))
    }
}
