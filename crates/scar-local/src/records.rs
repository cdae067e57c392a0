//! What a function has processed: an append-only record per function
//! (`functions/<name>/processed.jsonl`, the last line for a key wins), and the lock that
//! makes one scar process at a time the one that processes a function's bucket.
//!
//! Together they give "no file lost, none processed twice" across restarts: an object is
//! pending until a line with its key and ETag says it finished; a process killed mid-way
//! left no line for what it was running, so that object runs again and its outputs are
//! written again under the same keys.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use scar_core::provider::FileResult;
use serde::{Deserialize, Serialize};

use crate::LocalError;

pub use scar_core::provider::Outcome;

/// One line of the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Processed {
    pub key: String,
    pub etag: String,
    pub outcome: Outcome,
    pub request_id: String,
    /// The script's exit code (absent in records of older scar versions, and on timeouts:
    /// an `Option` field reads as `None` when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The output keys uploaded, so that another process waiting on the record can say.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uploaded: Vec<String>,
}

impl Processed {
    /// The record of `result`, run for the object's version `etag`.
    pub(crate) fn of(result: &FileResult, etag: String) -> Processed {
        Processed {
            key: result.key.clone(),
            etag,
            outcome: result.outcome,
            request_id: result.request_id.clone(),
            exit_code: result.exit_code,
            uploaded: result.uploaded.clone(),
        }
    }

    /// The result it records, as far as the record keeps it.
    pub(crate) fn result(&self) -> FileResult {
        FileResult {
            exit_code: self.exit_code,
            request_id: self.request_id.clone(),
            uploaded: self.uploaded.clone(),
            ..FileResult::new(self.key.clone(), self.outcome)
        }
    }
}

/// The file of [`Record::invocations`].
pub(crate) const INVOCATIONS_FILE: &str = "invocations.jsonl";

/// Appends how `response`'s invocation ended to the record of invocations no file caused
/// ([`Record::invocations`]); best effort: the invocation's answer does not depend on it.
pub(crate) fn note_invocation(function_dir: &Path, response: &scar_core::event::Response) {
    let outcome = Outcome::of(response);
    let result = FileResult {
        exit_code: response.exit_code(),
        request_id: response.request_id.clone(),
        uploaded: response.uploaded.clone(),
        ..FileResult::new(String::new(), outcome)
    };
    let _ = Record::invocations(function_dir).append(&Processed::of(&result, String::new()));
}

/// How every line starts: `key` is the first field of [`Processed`].
const LINE_START: &str = "{\"key\":";

/// A function's record.
#[derive(Debug)]
pub(crate) struct Record {
    path: PathBuf,
    /// Opened at the first append and kept: one `write` per line after that.
    file: std::sync::OnceLock<File>,
}

impl Record {
    pub fn new(function_dir: &Path) -> Record {
        Record {
            path: function_dir.join("processed.jsonl"),
            file: std::sync::OnceLock::new(),
        }
    }

    /// The record of the invocations no file caused (`scar run`, the Invoke API, API
    /// Gateway): `functions/<name>/invocations.jsonl`, lines of [`Processed`] with an empty
    /// key, so that the dashboard knows how they ended (their log lines do not say).
    pub fn invocations(function_dir: &Path) -> Record {
        Record {
            path: function_dir.join(INVOCATIONS_FILE),
            file: std::sync::OnceLock::new(),
        }
    }

    /// The latest line for every key.
    pub fn load(&self) -> HashMap<String, Processed> {
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        let mut latest = HashMap::new();
        for line in text.lines() {
            // A line cut by a crash is not valid JSON: it is ignored. The next process's
            // first line was appended to it, though: that line is the last `{"key":` on it.
            let entry = serde_json::from_str::<Processed>(line).ok().or_else(|| {
                let start = line.rfind(LINE_START).filter(|i| *i > 0)?;
                serde_json::from_str::<Processed>(&line[start..]).ok()
            });
            if let Some(p) = entry {
                latest.insert(p.key.clone(), p);
            }
        }
        latest
    }

    /// Appends one line (a single write with `O_APPEND`, nothing buffered: a process
    /// killed right after still leaves it).
    pub fn append(&self, entry: &Processed) -> Result<(), LocalError> {
        let mut line = serde_json::to_string(entry).unwrap_or_default();
        line.push('\n');
        let file = match self.file.get() {
            Some(file) => file,
            None => {
                let opened = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)
                    .map_err(LocalError::io("cannot write", &self.path))?;
                // Another worker may have opened it meanwhile: either handle appends.
                let _ = self.file.set(opened);
                self.file.get().expect("set above")
            }
        };
        (&*file)
            .write_all(line.as_bytes())
            .map_err(LocalError::io("cannot write", &self.path))
    }
}

/// An exclusive lock on processing a function's bucket, released when dropped.
#[derive(Debug)]
pub(crate) struct WorkerLock {
    _file: File,
}

impl WorkerLock {
    /// Takes the lock, or says the function is busy.
    pub fn try_take(function_dir: &Path, name: &str) -> Result<WorkerLock, LocalError> {
        let path = function_dir.join("worker.lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(LocalError::io("cannot open", &path))?;
        // SAFETY: flock on a descriptor we own.
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r != 0 {
            return Err(LocalError::Busy(name.into()));
        }
        Ok(WorkerLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str) -> Processed {
        Processed {
            key: key.into(),
            etag: format!("etag-{key}"),
            outcome: Outcome::Succeeded,
            request_id: format!("id-{key}"),
            exit_code: Some(0),
            uploaded: vec![],
        }
    }

    /// A process killed in the middle of a line leaves it without its newline: the next
    /// process's first line lands on the same line, and must still count.
    #[test]
    fn a_line_cut_by_a_kill_loses_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let record = Record::new(dir.path());
        record.append(&entry("input/a")).unwrap();
        let cut = serde_json::to_string(&entry("input/b")).unwrap();
        let mut file = OpenOptions::new().append(true).open(&record.path).unwrap();
        file.write_all(&cut.as_bytes()[..cut.len() / 2]).unwrap();
        record.append(&entry("input/c")).unwrap();
        record.append(&entry("input/d")).unwrap();
        let done = record.load();
        let mut keys: Vec<&str> = done.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["input/a", "input/c", "input/d"]);
        assert_eq!(done["input/c"], entry("input/c"));
    }

    /// Lines of scar versions that recorded neither exit codes nor uploads still load.
    #[test]
    fn an_older_scars_line_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let record = Record::new(dir.path());
        let old = r#"{"key":"input/a","etag":"e","outcome":"succeeded","request_id":"r"}"#;
        std::fs::write(&record.path, format!("{old}\n")).unwrap();
        let loaded = &record.load()["input/a"];
        assert_eq!((loaded.exit_code, loaded.uploaded.len()), (None, 0));
        // Written back, it has the same form.
        assert_eq!(serde_json::to_string(loaded).unwrap(), old);
    }

    /// The lock is the kernel's (flock): it goes with the process, however it ends.
    #[test]
    fn the_lock_is_free_again_once_its_holder_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let held = WorkerLock::try_take(dir.path(), "f").unwrap();
        assert!(matches!(
            WorkerLock::try_take(dir.path(), "f"),
            Err(LocalError::Busy(_))
        ));
        drop(held);
        WorkerLock::try_take(dir.path(), "f").unwrap();
    }
}
