//! The one place that writes to stdout and stderr: results (tables, `--json`), progress
//! bars (indicatif, on a terminal only), warnings and errors. Colour only when the stream
//! is a terminal and `NO_COLOR` is unset. Libraries report through callbacks and
//! [`Progress`]; handlers hand what they have to the [`Printer`].
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use scar_core::event::Ending;
use scar_core::progress::{Phase, Progress};
use scar_core::provider::{
    FileResult, FunctionInfo, Invocation, LaunchEvent, LogLine, ObjectInfo, Outcome, PackageReport,
    TransferEvent,
};
use scar_core::stats::FunctionStats;

/// Writing the output failed (a closed pipe, a full disk): the machine's, exit 3, and a
/// closed pipe (`scar log | head`) ends the command quietly.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the output: {0}")]
pub struct OutputError(#[from] pub std::io::Error);

impl From<serde_json::Error> for OutputError {
    fn from(e: serde_json::Error) -> OutputError {
        OutputError(e.into())
    }
}

impl scar_core::Categorized for OutputError {
    fn category(&self) -> scar_core::ErrorCategory {
        scar_core::ErrorCategory::Provider
    }
}

/// How the user asked to see results.
#[derive(Debug, Clone, Copy, Default)]
pub struct Printer {
    /// `--json`: machine-readable results on stdout, no bars.
    pub json: bool,
    /// `-v`: details too (every note behind a summary, request ids).
    pub verbose: bool,
}

fn colour(stream_is_terminal: bool) -> bool {
    stream_is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `text` in the ANSI colour `code` when stdout takes colour.
fn paint(text: &str, code: &str) -> String {
    if colour(std::io::stdout().is_terminal()) {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

impl Printer {
    pub fn new(json: bool, verbose: bool) -> Printer {
        Printer { json, verbose }
    }

    /// A line of human output on stdout (nothing with `--json`).
    pub fn line(&self, text: impl AsRef<str>) {
        if !self.json {
            println!("{}", text.as_ref());
        }
    }

    /// A value as pretty JSON on stdout.
    pub fn json<T: serde::Serialize>(&self, value: &T) -> Result<(), OutputError> {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, value)?;
        Ok(writeln!(out)?)
    }

    /// One JSON line on stdout (streams: `log`, `serve`).
    pub fn json_line<T: serde::Serialize>(&self, value: &T) -> Result<(), OutputError> {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, value)?;
        writeln!(out)?;
        Ok(out.flush()?)
    }

    /// Raw bytes on stdout (a function's output).
    pub fn raw(&self, bytes: &[u8]) -> Result<(), OutputError> {
        let mut out = std::io::stdout().lock();
        out.write_all(bytes)?;
        Ok(out.flush()?)
    }

    /// A note on stderr (always: it is not the result).
    pub fn note(&self, text: impl AsRef<str>) {
        eprintln!("{}", text.as_ref());
    }

    pub fn warn(&self, text: impl AsRef<str>) {
        eprintln!("warning: {}", text.as_ref());
    }

    /// An error and its causes, as the user should read them.
    pub fn error(&self, err: &anyhow::Error, help: &[String]) {
        let mut text = format!("error: {err}");
        for cause in err.chain().skip(1) {
            let cause = cause.to_string();
            // The AWS SDK wraps every service answer in an error that only says this; the
            // answer itself is already in the text.
            if cause == "service error" {
                continue;
            }
            if !text.contains(&cause) {
                text.push_str(&format!("\n  caused by: {cause}"));
            }
        }
        for line in help {
            text.push_str(&format!("\nhelp: {line}"));
        }
        eprintln!("{text}");
    }

    /// One log line: its JSON (`--json`) or its message.
    pub fn log_line(&self, line: &LogLine) -> Result<(), OutputError> {
        let mut out = std::io::stdout().lock();
        if self.json {
            serde_json::to_writer(&mut out, line)?;
            writeln!(out)?;
        } else {
            writeln!(out, "{}", line.message)?;
        }
        Ok(out.flush()?)
    }

    /// Rows as a table with a header, columns padded to their widest cell.
    pub fn table(&self, header: &[&str], rows: &[Vec<String>]) -> Result<(), OutputError> {
        let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
        for row in rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: Vec<&str>| -> String {
            let mut s = String::new();
            for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
                if i + 1 == cells.len() {
                    s.push_str(cell);
                } else {
                    s.push_str(&format!("{cell:<w$}  "));
                }
            }
            s.trim_end().to_string()
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", line(header.to_vec()))?;
        for row in rows {
            writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
        }
        Ok(())
    }

    /// Functions as a table, or as JSON (secrets redacted).
    pub fn functions(&self, functions: &[FunctionInfo]) -> Result<(), OutputError> {
        if self.json {
            let shown: Vec<FunctionInfo> = functions.iter().map(shown).collect();
            return self.json(&shown);
        }
        // Owners are worth a column where they differ (`ls --all-owners` on AWS).
        let first = functions.first().map(|f| &f.owner);
        let with_owner = functions.iter().any(|f| Some(&f.owner) != first);
        // SCAR's API_URL column, where a function has an API Gateway.
        let with_api = functions.iter().any(|f| f.api_url.is_some());
        let rows: Vec<Vec<String>> = functions
            .iter()
            .map(|f| {
                let mut row = vec![
                    f.spec.name.clone(),
                    format!("{} MB", f.spec.memory_mb),
                    format!("{} s", f.spec.timeout_s),
                    f.spec.execution_mode.to_string(),
                    scar_core::provider::PackageKind::name_or_root(f.package).to_string(),
                    f.spec.image.clone(),
                    f.created.clone(),
                ];
                if with_api {
                    row.push(f.api_url.clone().unwrap_or_else(|| "-".into()));
                }
                if with_owner {
                    row.push(f.owner.clone().unwrap_or_else(|| "-".into()));
                }
                row
            })
            .collect();
        let mut header = vec![
            "NAME", "MEMORY", "TIMEOUT", "MODE", "PACKAGE", "IMAGE", "CREATED",
        ];
        if with_api {
            header.push("API_URL");
        }
        if with_owner {
            header.push("OWNER");
        }
        self.table(&header, &rows)
    }

    /// Objects as a table, or as JSON.
    pub fn objects(&self, objects: &[ObjectInfo]) -> Result<(), OutputError> {
        if self.json {
            return self.json(&objects);
        }
        let rows: Vec<Vec<String>> = objects
            .iter()
            .map(|o| vec![o.key.clone(), o.size.to_string(), o.modified.clone()])
            .collect();
        self.table(&["KEY", "SIZE", "MODIFIED"], &rows)
    }

    /// Per function counts and duration percentiles (`scar stats`); `--json`: the list.
    /// A count the provider does not keep is `-`; the INPUTS and OUTPUTS columns (objects
    /// S3 lists, on AWS) appear when some function has them.
    pub fn stats(&self, stats: &[FunctionStats]) -> Result<(), OutputError> {
        if self.json {
            return self.json(&stats);
        }
        let ms = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into());
        let n = |v: Option<usize>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
        let objects = stats
            .iter()
            .any(|s| s.counts.inputs.is_some() || s.counts.outputs.is_some());
        let rows: Vec<Vec<String>> = stats
            .iter()
            .map(|s| {
                let c = &s.counts;
                let mut row = vec![
                    s.function.clone(),
                    n(c.waiting),
                    n(c.running),
                    n(c.done),
                    n(c.failed),
                    n(c.timed_out),
                    n(c.loop_stopped),
                ];
                if objects {
                    row.extend([n(c.inputs), n(c.outputs)]);
                }
                row.extend([
                    s.invocations.to_string(),
                    ms(s.durations.p50_ms),
                    ms(s.durations.p95_ms),
                    ms(s.durations.max_ms),
                ]);
                row
            })
            .collect();
        let mut header = vec![
            "FUNCTION",
            "WAITING",
            "RUNNING",
            "DONE",
            "FAILED",
            "TIMED_OUT",
            "LOOP_STOPPED",
        ];
        if objects {
            header.extend(["INPUTS", "OUTPUTS"]);
        }
        header.extend(["INVOCATIONS", "P50_MS", "P95_MS", "MAX_MS"]);
        self.table(&header, &rows)
    }

    /// Per-file results (failures with their output) and a summary line; `--json`: the
    /// list. `follow` names the function whose queued runs `log --follow` shows.
    pub fn results(&self, results: &[FileResult], follow: Option<&str>) -> Result<(), OutputError> {
        if self.json {
            return self.json(&results);
        }
        let mut out = std::io::stdout().lock();
        for r in results {
            let how = match (r.outcome, r.exit_code, &r.error) {
                (Outcome::Succeeded, _, _) => match r.uploaded.len() {
                    1 => "1 output".to_string(),
                    n => format!("{n} outputs"),
                },
                (Outcome::Queued, _, Some(e)) => format!("queued: {e}"),
                (Outcome::Queued, _, _) => "queued".to_string(),
                (Outcome::LoopStopped, _, Some(e)) => format!("stopped: {e}"),
                (_, _, Some(e)) => format!("error: {e}"),
                (Outcome::TimedOut, _, _) => "timed out".to_string(),
                (_, Some(code), _) => format!("exit status {code}"),
                _ => "failed".to_string(),
            };
            let status = if r.outcome.ok() {
                paint(&format!("{:<6}", "ok"), "32")
            } else {
                paint("FAILED", "31")
            };
            let request = if r.request_id.is_empty() {
                String::new()
            } else {
                format!(", request {}", r.request_id)
            };
            let what = match (&r.function, &r.bucket) {
                (Some(f), Some(b)) => format!("{f}: {b}/{}", r.key),
                (Some(f), None) => format!("{f}: {}", r.key),
                _ => r.key.clone(),
            };
            writeln!(out, "{status} {what} ({how}{request})")?;
            if !r.outcome.ok() {
                for line in r.output_tail.lines() {
                    writeln!(out, "    {line}")?;
                }
            }
        }
        let count = |o: Outcome| results.iter().filter(|r| r.outcome == o).count();
        let mut summary = format!(
            "{} files: {} succeeded, {} failed, {} timed out",
            results.len(),
            count(Outcome::Succeeded),
            count(Outcome::Failed) + count(Outcome::NotInvoked) + count(Outcome::LoopStopped),
            count(Outcome::TimedOut),
        );
        let stopped = count(Outcome::LoopStopped);
        if stopped > 0 {
            summary.push_str(&format!(" ({stopped} stopped as a recursive loop)"));
        }
        let chained: std::collections::BTreeSet<&str> = results
            .iter()
            .filter_map(|r| r.function.as_deref())
            .collect();
        if !chained.is_empty() {
            let names: Vec<&str> = chained.into_iter().collect();
            summary.push_str(&format!(", the chain ran {}", names.join(", ")));
        }
        let queued = count(Outcome::Queued);
        if queued > 0 {
            summary.push_str(&format!(", {queued} queued"));
        }
        let retries: u32 = results.iter().map(|r| r.attempts.saturating_sub(1)).sum();
        if retries > 0 {
            summary.push_str(&format!(", {retries} retries after throttling"));
        }
        let uploaded: usize = results.iter().map(|r| r.uploaded.len()).sum();
        writeln!(out, "{summary}; {uploaded} outputs uploaded")?;
        if let (true, Some(function)) = (queued > 0, follow) {
            writeln!(
                out,
                "Queued invocations run on their own: `scar log -n {function} --follow` shows them."
            )?;
        }
        Ok(())
    }

    /// A synchronous invocation: the output on stdout (`--json`: the whole response), then
    /// on stderr what went wrong, and with `-v` the request id, log stream and log tail.
    pub fn invocation(&self, function: &str, inv: &Invocation) -> Result<(), OutputError> {
        let r = &inv.response;
        if self.json {
            return self.json(r);
        }
        self.raw(&r.output_bytes())?;
        if self.verbose {
            self.note(format!(
                "request id: {}\nlog stream: {} {}",
                r.request_id, r.log_group, r.log_stream
            ));
            if let Some(tail) = inv.log_tail.as_deref().filter(|t| !t.is_empty()) {
                self.note(format!("log tail:\n{}", tail.trim_end()));
            }
        }
        let id = &r.request_id;
        match (&r.batch_job, &r.handed_over_from) {
            (Some(job), Some(from)) => self.note(format!(
                "the event was handed over by request {from} at the timeout threshold and ran as AWS Batch job {job}"
            )),
            (Some(job), None) if self.verbose => self.note(format!("ran as AWS Batch job {job}")),
            (None, Some(from)) => self.note(format!(
                "the event was handed over by request {from} at the timeout threshold and ran as a Batch job"
            )),
            _ => {}
        }
        if let Some(e) = r.function_error() {
            // As Lambda's invoke reports an Unhandled function error.
            let mut text = format!(
                "error: the function failed (Unhandled, request id {id}): {}: {}",
                e.error_type, e.error_message
            );
            for line in &e.stack_trace {
                text.push_str("\n  ");
                text.push_str(line.trim_end());
            }
            if r.timed_out() {
                text.push_str("\nhelp: raise -t or lower the work");
            }
            self.note(text);
            return Ok(());
        }
        match r.ending {
            Ending::TimedOut { .. } => self.note(format!(
                "error: the function timed out (request id {id}): raise -t or lower the work"
            )),
            Ending::Exited(code) if code != 0 => self.note(format!(
                "error: the function exited with status {code} (request id {id})"
            )),
            Ending::Unfinished { .. } => self.note(format!(
                "error: the function's script did not run to an exit status (request id {id}): `scar log -n {function} -ri {id}` shows why"
            )),
            _ => {}
        }
        Ok(())
    }

    /// A function just created (`--json` prints the list of them at the end).
    pub fn created(&self, info: &FunctionInfo) {
        self.line(format!(
            "Function '{}' created on the {} provider from {} ({}).",
            info.spec.name,
            info.provider.as_str(),
            info.spec.image,
            info.image_digest
        ));
        if !info.spec.inputs.is_empty() {
            let inputs: Vec<String> = info.spec.inputs.iter().map(|i| format!("{i}/")).collect();
            let outputs = if info.spec.outputs.is_empty() {
                "are not uploaded (no output location)".to_string()
            } else {
                let outputs: Vec<String> =
                    info.spec.outputs.iter().map(|o| format!("{o}/")).collect();
                format!("go to {}", outputs.join(", "))
            };
            self.line(format!(
                "Files put into {} invoke it; outputs {outputs}.",
                inputs.join(", ")
            ));
        }
        if let Some(url) = &info.api_url {
            self.line(format!("API Gateway endpoint: {url}"));
        }
    }

    /// A package written to a file.
    pub fn package(&self, function: &str, report: &PackageReport) -> Result<(), OutputError> {
        if self.json {
            return self.json(report);
        }
        for w in &report.warnings {
            self.warn(w);
        }
        self.line(format!(
            "{} package of '{function}' written to {} ({:.1} MB).",
            report.package.as_str(),
            report.path.display(),
            report.size as f64 / 1e6
        ));
        if let Some(digest) = &report.digest {
            self.line(format!("manifest digest: {digest}"));
        }
        if report.needs_deployment_bucket == Some(true) {
            self.line("over 50 MB: on AWS it must be deployed through a bucket (-db BUCKET)");
        }
        if report.includes_root == Some(false) {
            self.line(
                "the root does not fit under 250 MB: it is built from the layers at cold start",
            );
        }
        Ok(())
    }

    /// Progress of an image's pull, extraction, packaging and push, on stderr.
    pub fn bars(&self) -> Bars {
        Bars {
            enabled: !self.json && std::io::stderr().is_terminal(),
            statuses: !self.json,
            bar: Mutex::new(None),
            notes: self.verbose,
            hidden_notes: AtomicU64::new(0),
        }
    }

    /// The launcher's progress: files done, with failed and timed-out counts.
    pub fn launch_bar(&self) -> LaunchBar {
        let bar = (!self.json && std::io::stderr().is_terminal()).then(|| {
            ProgressBar::new(0).with_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} files {msg} {per_sec} {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            )
        });
        LaunchBar {
            bar,
            counts: Mutex::new((0, 0, 0)),
            chain: Mutex::new(Default::default()),
        }
    }

    /// Bytes transferred over all files; `total` when known (put), else it grows.
    pub fn transfer_bar(&self, total: Option<u64>) -> TransferBar {
        let bar = (!self.json && std::io::stderr().is_terminal()).then(|| {
            ProgressBar::new(total.unwrap_or(0)).with_style(
                ProgressStyle::with_template(
                    "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            )
        });
        TransferBar {
            bar,
            done: Mutex::new(HashMap::new()),
            grow: total.is_none(),
        }
    }
}

/// Draws a library's [`Progress`] on stderr. Warnings are always printed; the notes behind
/// them only with `-v` (else counted, and the warning says `-v` lists them).
pub struct Bars {
    enabled: bool,
    /// Statuses (a Batch job's states) as lines when no bar is drawn, but for `--json`.
    statuses: bool,
    bar: Mutex<Option<ProgressBar>>,
    notes: bool,
    hidden_notes: AtomicU64,
}

impl Bars {
    fn print(&self, line: String) {
        let guard = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        match &*guard {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }
}

impl Progress for Bars {
    fn start(&self, phase: Phase, total_bytes: Option<u64>) {
        if !self.enabled {
            return;
        }
        let label = match phase {
            Phase::Pull => "pulling",
            Phase::Extract => "extracting",
            Phase::Package => "packaging",
            Phase::Push => "pushing",
            Phase::Compress => "compressing",
            Phase::Job => "waiting",
        };
        let bar = match total_bytes {
            Some(total) => ProgressBar::new(total).with_style(
                ProgressStyle::with_template(
                    "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner(),
        };
        bar.set_message(label);
        bar.enable_steady_tick(Duration::from_millis(120));
        *self.bar.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar);
    }

    fn advance(&self, bytes: u64) {
        if let Some(bar) = &*self.bar.lock().unwrap_or_else(|e| e.into_inner()) {
            bar.inc(bytes);
        }
    }

    fn status(&self, status: &str) {
        match &*self.bar.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(bar) => bar.set_message(status.to_string()),
            None if self.statuses => eprintln!("{status}"),
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
            bar.finish_and_clear();
        }
    }

    fn warn(&self, msg: &str) {
        let hidden = self.hidden_notes.swap(0, Ordering::Relaxed);
        if hidden > 0 {
            self.print(format!("warning: {msg} (-v lists them)"));
        } else {
            self.print(format!("warning: {msg}"));
        }
    }

    fn note(&self, msg: &str) {
        if self.notes {
            self.print(format!("  {msg}"));
        } else {
            self.hidden_notes.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A function as it may be shown: the storage providers' keys and secret-looking
/// variables redacted ([`scar_core::FunctionSpec::redacted`]).
pub fn shown(info: &FunctionInfo) -> FunctionInfo {
    FunctionInfo {
        spec: info.spec.redacted(),
        ..info.clone()
    }
}

/// The launcher's progress bar.
pub struct LaunchBar {
    bar: Option<ProgressBar>,
    /// Failed, timed out, retried.
    counts: Mutex<(u64, u64, u64)>,
    /// Files done by each function down a chain (the named function's are not counted).
    chain: Mutex<std::collections::BTreeMap<String, u64>>,
}

impl LaunchBar {
    pub fn event(&self, event: &LaunchEvent) {
        let Some(bar) = &self.bar else { return };
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            LaunchEvent::Planned { total } => bar.set_length(*total as u64),
            LaunchEvent::Retrying { .. } => c.2 += 1,
            LaunchEvent::Finished(r) => {
                if let Some(f) = &r.function {
                    let mut chain = self.chain.lock().unwrap_or_else(|e| e.into_inner());
                    *chain.entry(f.clone()).or_default() += 1;
                }
                match r.outcome {
                    Outcome::Failed | Outcome::NotInvoked | Outcome::LoopStopped => c.0 += 1,
                    Outcome::TimedOut => c.1 += 1,
                    Outcome::Succeeded | Outcome::Queued => {}
                }
                bar.inc(1);
            }
        }
        let chain = self.chain.lock().unwrap_or_else(|e| e.into_inner());
        let along: String = chain.iter().map(|(f, n)| format!(", {f}: {n}")).collect();
        bar.set_message(format!(
            "({} failed, {} timed out, {} retried{along})",
            c.0, c.1, c.2
        ));
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Bytes transferred, over all files.
pub struct TransferBar {
    bar: Option<ProgressBar>,
    done: Mutex<HashMap<String, u64>>,
    grow: bool,
}

impl TransferBar {
    pub fn event(&self, event: &TransferEvent) {
        let Some(bar) = &self.bar else { return };
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        let (key, now) = match event {
            TransferEvent::Started { key, size } => {
                if self.grow {
                    bar.inc_length(*size);
                }
                bar.set_message(short_name(key));
                (key, 0)
            }
            TransferEvent::Progress { key, done, .. } => (key, *done),
            TransferEvent::Finished { key, size } => (key, *size),
        };
        let before = done.entry(key.clone()).or_insert(0);
        if now > *before {
            bar.inc(now - *before);
            *before = now;
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn short_name(key: &str) -> String {
    let name = key.rsplit('/').next().unwrap_or(key);
    let chars: Vec<char> = name.chars().collect();
    if chars.len() > 24 {
        format!("…{}", chars[chars.len() - 23..].iter().collect::<String>())
    } else {
        name.to_string()
    }
}
