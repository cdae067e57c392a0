//! What the dashboard knows, read from what scar already records and kept up to date by
//! tailing: each function's `processed.jsonl` (the outcome of each file) and its log
//! streams (START / REPORT lines: which invocations ran, how long, how much memory). Each
//! refresh reads only the bytes appended since the last one.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};

use scar_core::provider::Outcome;
use scar_core::stats::{parse_report, Counts, Durations, FileCounts, FunctionStats};
use scar_core::FunctionSpec;
use serde::Serialize;

use crate::records::Processed;
use crate::state::Layout;
use crate::Buckets;

/// How many invocations per function are kept in memory (the newest).
const KEPT_PER_FUNCTION: usize = 5000;

/// One invocation as the dashboard shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Invocation {
    pub function: String,
    pub request_id: String,
    /// The log stream it ran in (none for a file that was never run: a loop stopped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// The input object's key, for an invocation a file caused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `running` until its REPORT line (or its record) arrives.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billed_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_memory_mb: Option<u64>,
    /// The exit code the record keeps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// When the dashboard saw it start or end (ms since the epoch): the log lines carry no
    /// time, so invocations that ended before `scar serve` started take their stream's
    /// modification time.
    pub at_ms: i64,
    /// Output objects, `bucket/key`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub uploaded: Vec<String>,
    /// The order in which the dashboard first saw it (ties of `at_ms` broken by it).
    #[serde(skip)]
    seen: u64,
}

/// How far one log stream has been read.
#[derive(Debug, Default)]
struct Tail {
    offset: u64,
    /// A line not yet ended by its newline.
    partial: String,
}

/// What is known of one function.
#[derive(Debug, Default)]
struct FunctionIndex {
    record: Tail,
    /// The record of invocations no file caused (`records::INVOCATIONS_FILE`).
    invocations_record: Tail,
    /// The latest record line per key.
    latest: HashMap<String, Processed>,
    streams: HashMap<PathBuf, Tail>,
    invocations: Vec<Invocation>,
    by_request: HashMap<String, usize>,
}

/// [`FunctionStats`] over the last hour (counts are all time), and per minute.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Stats {
    #[serde(flatten)]
    pub totals: FunctionStats,
    /// Per minute, oldest first (60 of them, the last one the current minute).
    pub per_minute: Vec<Minute>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Minute {
    /// The minute's start, ms since the epoch.
    pub at_ms: i64,
    pub invocations: usize,
    pub errors: usize,
    #[serde(flatten)]
    pub durations: Durations,
}

/// The dashboard's index of every function of a home.
#[derive(Debug, Default)]
pub(crate) struct Index {
    functions: BTreeMap<String, FunctionIndex>,
    /// Bumped whenever something new was read: server-sent events go out on a change.
    pub generation: u64,
    /// Invocations seen so far.
    seen: u64,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The bytes appended to `path` since `tail`, as whole lines.
fn read_new_lines(path: &Path, tail: &mut Tail) -> Vec<String> {
    let Ok(mut file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len < tail.offset {
        // Truncated or replaced: read it again.
        *tail = Tail::default();
    }
    if len == tail.offset || file.seek(SeekFrom::Start(tail.offset)).is_err() {
        return Vec::new();
    }
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    tail.offset += bytes.len() as u64;
    let mut text = std::mem::take(&mut tail.partial);
    text.push_str(&String::from_utf8_lossy(&bytes));
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    tail.partial = lines.pop().unwrap_or_default();
    lines
}

fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Succeeded => "succeeded",
        Outcome::Failed | Outcome::NotInvoked => "failed",
        Outcome::TimedOut => "timed_out",
        Outcome::Queued => "queued",
        Outcome::LoopStopped => "loop_stopped",
    }
}

impl FunctionIndex {
    fn invocation(
        &mut self,
        function: &str,
        request_id: &str,
        at_ms: i64,
        seen: &mut u64,
    ) -> &mut Invocation {
        let i = match self.by_request.get(request_id) {
            Some(&i) => i,
            None => {
                self.invocations.push(Invocation {
                    function: function.to_string(),
                    request_id: request_id.to_string(),
                    stream: None,
                    key: None,
                    outcome: "running".into(),
                    duration_ms: None,
                    billed_ms: None,
                    memory_mb: None,
                    max_memory_mb: None,
                    exit_code: None,
                    at_ms,
                    uploaded: Vec::new(),
                    seen: *seen,
                });
                *seen += 1;
                let i = self.invocations.len() - 1;
                if !request_id.is_empty() {
                    self.by_request.insert(request_id.to_string(), i);
                }
                i
            }
        };
        &mut self.invocations[i]
    }

    /// Reads what was appended to the function's record and streams; whether anything was.
    fn refresh(&mut self, function: &str, layout: &Layout, first: bool, seen: &mut u64) -> bool {
        let mut changed = false;
        let log_dir = layout.logs(function);
        for (stream, path) in crate::logs::streams(&log_dir) {
            let mut tail = self.streams.remove(&path).unwrap_or_default();
            let lines = read_new_lines(&path, &mut tail);
            self.streams.insert(path.clone(), tail);
            if lines.is_empty() {
                continue;
            }
            changed = true;
            let at = match first {
                true => std::fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .map(|t| chrono::DateTime::<chrono::Utc>::from(t).timestamp_millis())
                    .unwrap_or_else(|_| now_ms()),
                false => now_ms(),
            };
            for line in lines {
                if let Some(rest) = line.strip_prefix("START RequestId: ") {
                    let id = rest.split(' ').next().unwrap_or_default();
                    let inv = self.invocation(function, id, at, seen);
                    inv.stream = Some(stream.clone());
                } else if let Some(report) = parse_report(&line) {
                    let inv = self.invocation(function, &report.request_id, at, seen);
                    inv.stream.get_or_insert_with(|| stream.clone());
                    inv.at_ms = at;
                    inv.duration_ms = Some(report.duration_ms);
                    inv.billed_ms = Some(report.billed_ms);
                    inv.memory_mb = Some(report.memory_mb);
                    inv.max_memory_mb = Some(report.max_memory_mb);
                    if inv.outcome == "running" {
                        inv.outcome = match report.status.as_deref() {
                            Some("timeout") => "timed_out",
                            Some(s) if s.starts_with("error") => "failed",
                            _ => "succeeded",
                        }
                        .into();
                    }
                }
            }
        }
        let record = layout.function_dir(function).join("processed.jsonl");
        let mut tail = std::mem::take(&mut self.record);
        let lines = read_new_lines(&record, &mut tail);
        self.record = tail;
        for line in lines {
            let Some(p) = parse_record_line(&line) else {
                continue;
            };
            changed = true;
            let at = now_ms();
            let inv = self.invocation(function, &p.request_id, at, seen);
            inv.key = Some(p.key.clone());
            inv.outcome = outcome_name(p.outcome).into();
            inv.exit_code = p.exit_code;
            inv.uploaded = p.uploaded.clone();
            if p.request_id.is_empty() {
                // Never run (a loop stopped): no stream tells its time.
                inv.at_ms = if first {
                    file_time(&record).unwrap_or(at)
                } else {
                    at
                };
            }
            self.latest.insert(p.key.clone(), p);
        }
        // How invocations no file caused ended (`scar run`, the Invoke API): their log
        // lines do not say, their REPORT's status only for a timeout or a runtime error.
        let noted = layout
            .function_dir(function)
            .join(crate::records::INVOCATIONS_FILE);
        let mut tail = std::mem::take(&mut self.invocations_record);
        let lines = read_new_lines(&noted, &mut tail);
        self.invocations_record = tail;
        for line in lines {
            let Some(p) = parse_record_line(&line) else {
                continue;
            };
            if p.request_id.is_empty() {
                continue;
            }
            changed = true;
            let inv = self.invocation(function, &p.request_id, now_ms(), seen);
            if inv.key.is_none() {
                inv.outcome = outcome_name(p.outcome).into();
                inv.exit_code = p.exit_code;
                inv.uploaded = p.uploaded.clone();
            }
        }
        if self.invocations.len() > KEPT_PER_FUNCTION * 2 {
            let drop = self.invocations.len() - KEPT_PER_FUNCTION;
            self.invocations.drain(..drop);
            self.by_request = self
                .invocations
                .iter()
                .enumerate()
                .filter(|(_, inv)| !inv.request_id.is_empty())
                .map(|(i, inv)| (inv.request_id.clone(), i))
                .collect();
        }
        changed
    }

    fn counts(&self, spec: &FunctionSpec, buckets: &Buckets) -> FileCounts {
        let mut counts = FileCounts::default();
        for p in self.latest.values() {
            match p.outcome {
                Outcome::Succeeded => counts.done += 1,
                Outcome::Failed | Outcome::NotInvoked => counts.failed += 1,
                Outcome::TimedOut => counts.timed_out += 1,
                Outcome::LoopStopped => counts.loop_stopped += 1,
                Outcome::Queued => {}
            }
        }
        // A START whose REPORT never came within the function's timeout (and a minute of
        // init) was cut short: its process was killed, and the file runs again.
        let stale = now_ms() - (i64::from(spec.timeout_s) + 60) * 1000;
        counts.running = self
            .invocations
            .iter()
            .filter(|i| i.outcome == "running" && i.at_ms >= stale)
            .count();
        let mut unrecorded = 0;
        for input in spec.inputs.iter().filter(|i| i.storage.is_none()) {
            let keys = buckets.keys(&input.path()).unwrap_or_default();
            unrecorded += keys
                .iter()
                .filter(|k| spec.is_triggered_by(&input.bucket, k))
                .filter(|k| !self.latest.contains_key(k.as_str()))
                .count();
        }
        counts.waiting = unrecorded.saturating_sub(counts.running);
        counts
    }
}

fn file_time(path: &Path) -> Option<i64> {
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
    Some(chrono::DateTime::<chrono::Utc>::from(modified).timestamp_millis())
}

/// A record line, as [`crate::records`] reads it (a line cut by a crash: its last entry).
fn parse_record_line(line: &str) -> Option<Processed> {
    serde_json::from_str::<Processed>(line).ok().or_else(|| {
        let start = line.rfind("{\"key\":").filter(|i| *i > 0)?;
        serde_json::from_str::<Processed>(&line[start..]).ok()
    })
}

fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

impl Index {
    /// Reads what was appended since the last refresh, for every function of the home.
    pub fn refresh(&mut self, layout: &Layout, names: &[String]) {
        let mut changed = false;
        let known: HashSet<&String> = names.iter().collect();
        let before = self.functions.len();
        self.functions.retain(|name, _| known.contains(name));
        changed |= self.functions.len() != before;
        for name in names {
            let first = !self.functions.contains_key(name);
            let index = self.functions.entry(name.clone()).or_default();
            changed |= index.refresh(name, layout, first, &mut self.seen);
        }
        if changed {
            self.generation += 1;
        }
    }

    /// Invocations, newest first, of `function` (all when `None`) that ended as `outcome`
    /// (any when `None`), at most `limit`.
    pub fn invocations(
        &self,
        function: Option<&str>,
        outcome: Option<&str>,
        limit: usize,
    ) -> Vec<Invocation> {
        let mut out: Vec<&Invocation> = self
            .functions
            .iter()
            .filter(|(name, _)| function.is_none_or(|f| f == name.as_str()))
            .flat_map(|(_, index)| index.invocations.iter())
            .filter(|i| outcome.is_none_or(|o| o == i.outcome))
            .collect();
        // Newest first; of two seen in the same millisecond, the one seen later.
        out.sort_by_key(|i| std::cmp::Reverse((i.at_ms, i.seen)));
        out.into_iter().take(limit).cloned().collect()
    }

    /// The invocation `request_id` of `function`.
    pub fn invocation(&self, function: &str, request_id: &str) -> Option<&Invocation> {
        let index = self.functions.get(function)?;
        index
            .by_request
            .get(request_id)
            .map(|&i| &index.invocations[i])
    }

    /// A function's counts.
    pub fn counts(&self, spec: &FunctionSpec, buckets: &Buckets) -> Counts {
        self.functions
            .get(&spec.name)
            .map(|i| i.counts(spec, buckets))
            .unwrap_or_default()
            .into()
    }

    /// A function's counts, and its durations' percentiles over all it has run.
    pub fn totals(&self, spec: &FunctionSpec, buckets: &Buckets) -> FunctionStats {
        let durations = self
            .functions
            .get(&spec.name)
            .into_iter()
            .flat_map(|i| i.invocations.iter())
            .filter_map(|i| i.duration_ms)
            .collect();
        FunctionStats::new(spec.name.clone(), self.counts(spec, buckets), durations)
    }

    /// A function's stats over the hour before `now_ms` (its counts are all time).
    pub fn stats(&self, spec: &FunctionSpec, buckets: &Buckets, now: Option<i64>) -> Stats {
        let now = now.unwrap_or_else(now_ms);
        let minute = 60_000;
        let first = (now / minute - 59) * minute;
        let mut durations = Vec::new();
        let mut minutes: Vec<(Vec<f64>, usize, usize)> = vec![(Vec::new(), 0, 0); 60];
        if let Some(index) = self.functions.get(&spec.name) {
            for inv in &index.invocations {
                if inv.at_ms < first || inv.at_ms >= first + 60 * minute {
                    continue;
                }
                let slot = &mut minutes[((inv.at_ms - first) / minute) as usize];
                if inv.outcome != "running" {
                    slot.1 += 1;
                }
                if matches!(inv.outcome.as_str(), "failed" | "timed_out") {
                    slot.2 += 1;
                }
                if let Some(d) = inv.duration_ms {
                    durations.push(d);
                    slot.0.push(d);
                }
            }
        }
        let per_minute = minutes
            .into_iter()
            .enumerate()
            .map(|(i, (d, invocations, errors))| {
                let d = sorted(d);
                Minute {
                    at_ms: first + i as i64 * minute,
                    invocations,
                    errors,
                    durations: Durations::of(&d),
                }
            })
            .collect();
        Stats {
            totals: FunctionStats::new(spec.name.clone(), self.counts(spec, buckets), durations),
            per_minute,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A function's records and log lines, joined by request id: a file run and failed, one
    /// still running, one whose loop was stopped (a record, no log lines), an invocation no
    /// file caused (the Invoke API: log lines only), and a file waiting.
    #[test]
    fn records_and_log_lines_make_invocations_and_counts() {
        use scar_core::bucket::BucketPath;
        let home = tempfile::tempdir().unwrap();
        let layout = Layout {
            home: home.path().to_path_buf(),
        };
        let buckets = Buckets::new(home.path().join("buckets"));
        let spec = FunctionSpec::new("f", "busybox").with_input(scar_core::InputSpec::at(
            &BucketPath::parse("bkt/in").unwrap(),
        ));
        for key in ["ok", "bad", "loop", "running", "waiting"] {
            let path = buckets.object_path("bkt", &format!("in/{key}"));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, key).unwrap();
        }
        let stream = layout.logs("f").join("2026/12/07/[$LATEST]abc");
        std::fs::create_dir_all(stream.parent().unwrap()).unwrap();
        let report = |id: &str, ms: u64| {
            scar_core::lambda::Report {
                request_id: id,
                duration: std::time::Duration::from_millis(ms),
                memory_mb: 128,
                max_memory_mb: 9,
                init: None,
                status: scar_core::lambda::ReportStatus::Ok,
            }
            .to_string()
        };
        let mut log = String::new();
        for (id, ms) in [("r-ok", 10), ("r-bad", 20), ("r-api", 30)] {
            log += &format!("START RequestId: {id} Version: $LATEST\nout\nEND RequestId: {id}\n");
            log += &report(id, ms);
            log += "\n";
        }
        log += "START RequestId: r-running Version: $LATEST\n";
        std::fs::write(&stream, log).unwrap();
        let record = |key: &str, outcome, id: &str| {
            let p = Processed {
                key: format!("in/{key}"),
                etag: "e".into(),
                outcome,
                request_id: id.into(),
                exit_code: None,
                uploaded: vec![],
            };
            serde_json::to_string(&p).unwrap() + "\n"
        };
        std::fs::create_dir_all(layout.function_dir("f")).unwrap();
        let lines = record("ok", Outcome::Succeeded, "r-ok")
            + &record("bad", Outcome::Failed, "r-bad")
            + &record("loop", Outcome::LoopStopped, "");
        std::fs::write(layout.function_dir("f").join("processed.jsonl"), lines).unwrap();

        let mut index = Index::default();
        index.refresh(&layout, &["f".to_string()]);
        let counts = index.counts(&spec, &buckets);
        assert_eq!(
            counts,
            Counts::from(FileCounts {
                waiting: 1,
                running: 1,
                done: 1,
                failed: 1,
                timed_out: 0,
                loop_stopped: 1,
            })
        );
        let all = index.invocations(None, None, 100);
        assert_eq!(all.len(), 5, "{all:#?}");
        let failed = index.invocations(Some("f"), Some("failed"), 100);
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].request_id, "r-bad");
        assert_eq!(failed[0].key.as_deref(), Some("in/bad"));
        assert_eq!(failed[0].duration_ms, Some(20.0));
        let api = index.invocation("f", "r-api").unwrap();
        assert_eq!(
            (api.key.as_deref(), api.outcome.as_str()),
            (None, "succeeded")
        );
        assert!(index.invocations(Some("g"), None, 100).is_empty());
        let totals = index.totals(&spec, &buckets);
        assert_eq!(totals.invocations, 3);
        assert_eq!(
            (totals.durations.p50_ms, totals.durations.max_ms),
            (Some(20.0), Some(30.0))
        );

        // Its REPORT arrives: read on the next refresh, and only it.
        let generation = index.generation;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&stream)
            .unwrap();
        use std::io::Write as _;
        writeln!(file, "{}", report("r-running", 40)).unwrap();
        index.refresh(&layout, &["f".to_string()]);
        assert_eq!(index.generation, generation + 1);
        assert_eq!(index.counts(&spec, &buckets).running, Some(0));
        assert_eq!(index.invocations(None, None, 100).len(), 5);
        let now = index.invocation("f", "r-running").unwrap();
        assert_eq!(
            (now.outcome.as_str(), now.duration_ms),
            ("succeeded", Some(40.0))
        );
        let stats = index.stats(&spec, &buckets, None);
        assert_eq!(stats.per_minute.len(), 60);
        assert_eq!(
            stats.totals.invocations, 4,
            "all within the hour: {stats:#?}"
        );
        index.refresh(&layout, &["f".to_string()]);
        assert_eq!(index.generation, generation + 1, "nothing new, no change");
    }

    /// Lines are read once, and a line still being written is read when it ends.
    #[test]
    fn tails_read_only_whole_new_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stream");
        std::fs::write(&path, "a\nb").unwrap();
        let mut tail = Tail::default();
        assert_eq!(read_new_lines(&path, &mut tail), ["a"]);
        assert!(read_new_lines(&path, &mut tail).is_empty());
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"c\nd\n").unwrap();
        assert_eq!(read_new_lines(&path, &mut tail), ["bc", "d"]);
    }
}
