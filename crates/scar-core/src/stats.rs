//! What `scar stats` shows of a function on every provider: counts of its files and the
//! percentiles of its invocations' durations, read from `REPORT` lines.
//!
//! A count a provider does not record is `None` (`null` in JSON, `-` in a table), never a
//! made-up zero: the local provider records every file's outcome; AWS records none of
//! them (S3 only tells which objects are in a folder).

use serde::Serialize;

/// Per function counts of files. Every field the local provider fills; on AWS only
/// `inputs` and `outputs` (S3 listings) are known.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Counts {
    /// Files in its input folders that no record says finished, and that are not running.
    pub waiting: Option<usize>,
    /// Invocations started (START) whose REPORT has not come yet.
    pub running: Option<usize>,
    pub done: Option<usize>,
    pub failed: Option<usize>,
    pub timed_out: Option<usize>,
    pub loop_stopped: Option<usize>,
    /// Objects in its input folders, run or not (AWS: S3 cannot say which have run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<usize>,
    /// Objects in its output folders (AWS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<usize>,
}

/// Counts of files where each file's outcome is recorded (the local provider).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileCounts {
    pub waiting: usize,
    pub running: usize,
    pub done: usize,
    pub failed: usize,
    pub timed_out: usize,
    pub loop_stopped: usize,
}

impl From<FileCounts> for Counts {
    fn from(c: FileCounts) -> Counts {
        Counts {
            waiting: Some(c.waiting),
            running: Some(c.running),
            done: Some(c.done),
            failed: Some(c.failed),
            timed_out: Some(c.timed_out),
            loop_stopped: Some(c.loop_stopped),
            inputs: None,
            outputs: None,
        }
    }
}

impl Counts {
    /// Only what S3 listings tell: the objects in the input and output folders (`None`
    /// where the function has no such folder in its own storage).
    pub fn of_objects(inputs: Option<usize>, outputs: Option<usize>) -> Counts {
        Counts {
            inputs,
            outputs,
            ..Counts::default()
        }
    }
}

/// Percentiles of invocation durations (from REPORT lines), in ms; `None` without any.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Durations {
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

impl Durations {
    /// Of `sorted` durations (ascending).
    pub fn of(sorted: &[f64]) -> Durations {
        Durations {
            p50_ms: percentile(sorted, 0.5),
            p95_ms: percentile(sorted, 0.95),
            max_ms: sorted.last().copied(),
        }
    }
}

/// The `q`-th percentile (0..=1) of sorted values, nearest rank.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// A function's counts and the percentiles of the durations of its invocations that
/// REPORT lines tell (`scar stats`, the dashboard's `/api/stats`).
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct FunctionStats {
    pub function: String,
    pub counts: Counts,
    /// Invocations with a REPORT line.
    pub invocations: usize,
    #[serde(flatten)]
    pub durations: Durations,
}

impl FunctionStats {
    /// `function`'s stats from its counts and the durations (ms) of its REPORT lines, in
    /// any order.
    pub fn new(function: impl Into<String>, counts: Counts, mut durations: Vec<f64>) -> Self {
        durations.sort_by(f64::total_cmp);
        FunctionStats {
            function: function.into(),
            counts,
            invocations: durations.len(),
            durations: Durations::of(&durations),
        }
    }
}

/// A `REPORT` line's fields.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ReportFields {
    pub request_id: String,
    pub duration_ms: f64,
    pub billed_ms: u64,
    pub memory_mb: u64,
    pub max_memory_mb: u64,
    /// Lambda's `Status` field: `timeout`, `error`, or none.
    pub status: Option<String>,
}

/// Reads a `REPORT` line as Lambda writes it (and [`crate::lambda::Report`]): tab
/// separated `Name: value unit` fields after the request id. `None` for any other line,
/// or a REPORT line whose numbers do not read.
pub fn parse_report(line: &str) -> Option<ReportFields> {
    let rest = line.strip_prefix("REPORT RequestId: ")?;
    let mut fields = rest.split('\t');
    let request_id = fields.next()?.trim().to_string();
    let mut report = ReportFields {
        request_id,
        duration_ms: 0.0,
        billed_ms: 0,
        memory_mb: 0,
        max_memory_mb: 0,
        status: None,
    };
    let mut has_duration = false;
    for field in fields {
        let Some((name, value)) = field.trim().split_once(": ") else {
            continue;
        };
        let number = value.split(' ').next().unwrap_or_default();
        match name {
            "Duration" => {
                report.duration_ms = number.parse().ok()?;
                has_duration = true;
            }
            "Billed Duration" => report.billed_ms = number.parse().ok()?,
            "Memory Size" => report.memory_mb = number.parse().ok()?,
            "Max Memory Used" => report.max_memory_mb = number.parse().ok()?,
            "Status" => report.status = Some(value.trim().to_string()),
            _ => {}
        }
    }
    has_duration.then_some(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines_read_back_as_written() {
        let line = crate::lambda::Report {
            request_id: "r1",
            duration: std::time::Duration::from_micros(12_345),
            memory_mb: 512,
            max_memory_mb: 20,
            init: Some(std::time::Duration::from_millis(3)),
            status: crate::lambda::ReportStatus::Timeout,
        }
        .to_string();
        let report = parse_report(&line).unwrap();
        assert_eq!(report.request_id, "r1");
        assert!((report.duration_ms - 12.35).abs() < 0.01, "{report:?}");
        assert_eq!(
            (report.billed_ms, report.memory_mb, report.max_memory_mb),
            (13, 512, 20)
        );
        assert_eq!(report.status.as_deref(), Some("timeout"));
        assert_eq!(parse_report("START RequestId: r1 Version: $LATEST"), None);
    }

    /// Lambda's own REPORT line (as CloudWatch keeps it: a trailing tab, an `Init
    /// Duration`, an `XRAY` field) reads too; a REPORT line without a duration or with a
    /// number that does not read is no report (it is not counted as 0 ms).
    #[test]
    fn lambdas_report_lines_read_and_broken_ones_do_not() {
        let line = "REPORT RequestId: 3f5a-11\tDuration: 101.50 ms\tBilled Duration: 102 ms\tMemory Size: 128 MB\tMax Memory Used: 70 MB\tInit Duration: 150.00 ms\t\nXRAY TraceId: 1-5\tSegmentId: 6\tSampled: true\t";
        let report = parse_report(line).unwrap();
        assert_eq!(report.request_id, "3f5a-11");
        assert_eq!(report.duration_ms, 101.5);
        assert_eq!(report.billed_ms, 102);
        assert_eq!(report.status, None);
        assert_eq!(parse_report("REPORT RequestId: r2"), None);
        assert_eq!(parse_report("REPORT RequestId: r2\tDuration: abc ms"), None);
        assert_eq!(
            parse_report("log: REPORT RequestId: r2\tDuration: 1 ms"),
            None
        );
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.5), Some(50.0));
        assert_eq!(percentile(&values, 0.95), Some(95.0));
        assert_eq!(percentile(&[7.0], 0.95), Some(7.0));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn stats_take_nearest_rank_percentiles_of_any_order() {
        let durations = (1..=20).rev().map(f64::from).collect();
        let s = FunctionStats::new("f", Counts::of_objects(Some(3), None), durations);
        assert_eq!(s.invocations, 20);
        assert_eq!(
            (s.durations.p50_ms, s.durations.p95_ms, s.durations.max_ms),
            (Some(10.0), Some(19.0), Some(20.0))
        );
        let empty = FunctionStats::new("g", Counts::default(), Vec::new());
        assert_eq!(empty.durations, Durations::default());
    }

    /// Counts a provider does not record are `null`, never 0; the local shape (every
    /// count a number, no `inputs`/`outputs`) stays as the dashboard reads it.
    #[test]
    fn unknown_counts_are_null_and_local_counts_keep_their_shape() {
        let aws = serde_json::to_value(Counts::of_objects(Some(2), Some(1))).unwrap();
        assert_eq!(
            aws,
            serde_json::json!({"waiting": null, "running": null, "done": null, "failed": null,
                "timed_out": null, "loop_stopped": null, "inputs": 2, "outputs": 1})
        );
        let local = serde_json::to_value(Counts::from(FileCounts {
            waiting: 1,
            done: 2,
            ..FileCounts::default()
        }))
        .unwrap();
        assert_eq!(
            local,
            serde_json::json!({"waiting": 1, "running": 0, "done": 2, "failed": 0,
                "timed_out": 0, "loop_stopped": 0})
        );
        let stats =
            serde_json::to_value(FunctionStats::new("f", Counts::default(), vec![5.0])).unwrap();
        let mut keys: Vec<&String> = stats.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "counts",
                "function",
                "invocations",
                "max_ms",
                "p50_ms",
                "p95_ms"
            ]
        );
    }
}
