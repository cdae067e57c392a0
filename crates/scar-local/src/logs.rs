//! Log streams as CloudWatch Logs has them: a group per function, a stream per sandbox
//! (`2026/11/25/[$LATEST]<id>`), START / END / REPORT lines around each invocation.
//!
//! A stream is a plain file under `logs/<function>/<stream name>`. The supervisor writes
//! the script's output straight into it and the provider appends the START / END /
//! REPORT lines through its own handle; both open it with `O_APPEND`, and an invocation's
//! lines all come between the `next` that hands it out and the answer, so the START..REPORT
//! slice of a stream is exactly that invocation's lines.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use scar_core::event::{timed_out_message, FunctionError};
use scar_core::lambda::Report;
use scar_core::provider::{LogLine, LogQuery};

use crate::LocalError;

/// One log stream, open for appending.
pub(crate) struct LogStream {
    pub name: String,
    file: File,
}

impl LogStream {
    /// Creates a new stream under `dir` named as Lambda names them.
    pub fn create(dir: &Path) -> Result<LogStream, LocalError> {
        LogStream::open(dir, &uuid::Uuid::new_v4().simple().to_string())
    }

    /// Opens today's stream `<date>/[$LATEST]<id>` under `dir`, created if need be.
    fn open(dir: &Path, id: &str) -> Result<LogStream, LocalError> {
        let name = format!("{}/[$LATEST]{id}", chrono::Utc::now().format("%Y/%m/%d"));
        let path = dir.join(&name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(LocalError::io("cannot create", parent))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(LocalError::io("cannot create the log stream", &path))?;
        Ok(LogStream { name, file })
    }

    /// A second handle on the stream, for the sandbox's stdout and stderr.
    pub fn handle(&self) -> std::io::Result<File> {
        self.file.try_clone()
    }

    /// Appends one line.
    pub fn line(&self, message: &str) {
        let mut text = String::with_capacity(message.len() + 1);
        text.push_str(message);
        text.push('\n');
        // One write per line: appends from the supervisor never split it.
        let _ = (&self.file).write_all(text.as_bytes());
    }

    /// `START`: an invocation begins.
    pub fn start(&self, request_id: &str) {
        self.line(&format!("START RequestId: {request_id} Version: $LATEST"));
    }

    /// `END` and `REPORT`: an invocation's last lines.
    pub fn end(&self, report: &Report<'_>) {
        self.line(&format!("END RequestId: {}", report.request_id));
        self.line(&report.to_string());
    }

    /// The line of an invocation stopped at its deadline (before its `END`).
    pub fn timed_out(&self, request_id: &str, timeout_s: u32) {
        self.line(&format!(
            "{} {request_id} {}",
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            timed_out_message(timeout_s)
        ));
    }

    /// A runtime's error as Lambda logs it: its message, then its type.
    pub fn error(&self, error: &FunctionError) {
        self.line(&error.error_message);
        self.line(&error.error_type);
    }

    /// `INIT_REPORT`: the init phase ran past its limit, `elapsed` after it started.
    pub fn init_timed_out(&self, elapsed: Duration) {
        self.line(&format!(
            "INIT_REPORT Init Duration: {:.2} ms\tPhase: init\tStatus: timeout",
            elapsed.as_secs_f64() * 1000.0
        ));
    }
}

/// Appends `line` to the function's stream of scar's own (`<date>/[$LATEST]scar`, under
/// the function's log directory `dir`): what the provider, not an invocation, has to say.
/// A line that cannot be written is dropped.
pub(crate) fn scar_line(dir: &Path, line: &str) {
    if let Ok(stream) = LogStream::open(dir, "scar") {
        stream.line(&format!("scar: {line}"));
    }
}

/// The streams under a function's log directory `dir`: (name, file).
pub(crate) fn streams(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = crate::walk::files_under(dir)
        .into_iter()
        .filter_map(|path| {
            let name = path.strip_prefix(dir).ok()?.to_string_lossy().into_owned();
            Some((name, path))
        })
        .collect();
    // Oldest stream first, as `aws logs` and SCAR print them.
    out.sort_by_key(|(name, path)| {
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        (modified, name.clone())
    });
    out
}

/// Reads a function's log lines, filtered by `query`.
pub(crate) fn read(dir: &Path, query: &LogQuery) -> Result<Vec<LogLine>, LocalError> {
    let mut lines = Vec::new();
    for (name, path) in streams(dir) {
        if query.stream.as_deref().is_some_and(|s| s != name) {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(LocalError::io("cannot read", &path))?;
        let text = String::from_utf8_lossy(&bytes);
        let mut inside = query.request_id.is_none();
        for line in text.lines() {
            if let Some(id) = &query.request_id {
                if line.starts_with("START RequestId: ") && line.contains(id.as_str()) {
                    inside = true;
                }
                if !inside {
                    continue;
                }
                lines.push(LogLine {
                    stream: name.clone(),
                    message: line.to_string(),
                });
                if line.starts_with("REPORT RequestId: ") && line.contains(id.as_str()) {
                    inside = false;
                }
            } else {
                lines.push(LogLine {
                    stream: name.clone(),
                    message: line.to_string(),
                });
            }
        }
    }
    Ok(lines)
}
