//! Everything the user sees: progress bars, tables, JSON, and exit statuses.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use scar_core::provider::ProviderError;
use scar_core::ErrorCategory;
use scar_packager::{Phase, Progress};

/// Draws the packager's progress on stderr (nothing when stderr is not a terminal or
/// output is JSON; warnings are always printed).
pub struct Bars {
    enabled: bool,
    bar: Mutex<Option<ProgressBar>>,
    /// Print notes (the details behind a warning); else count them.
    notes: bool,
    hidden_notes: std::sync::atomic::AtomicU64,
}

impl Bars {
    pub fn new(quiet: bool) -> Bars {
        Bars {
            enabled: !quiet && std::io::stderr().is_terminal(),
            bar: Mutex::new(None),
            notes: false,
            hidden_notes: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Prints every note (`-v`), not only the warnings that sum them up.
    pub fn with_notes(mut self, notes: bool) -> Bars {
        self.notes = notes;
        self
    }

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

    fn finish(&self) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
            bar.finish_and_clear();
        }
    }

    fn warn(&self, msg: &str) {
        let hidden = self
            .hidden_notes
            .swap(0, std::sync::atomic::Ordering::Relaxed);
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
            self.hidden_notes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Writes one log line: its JSON (`--json`) or its message.
pub fn write_log_line(
    out: &mut impl Write,
    line: &scar_core::provider::LogLine,
    json: bool,
) -> std::io::Result<()> {
    if json {
        serde_json::to_writer(&mut *out, line)?;
        writeln!(out)
    } else {
        writeln!(out, "{}", line.message)
    }
}

/// Prints rows as a table with a header, columns padded to their widest cell.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = std::io::stdout().lock();
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
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// Prints functions as a table, or as JSON.
pub fn print_functions(
    functions: &[scar_core::provider::FunctionInfo],
    json: bool,
) -> anyhow::Result<()> {
    if json {
        return print_json(&functions);
    }
    let rows: Vec<Vec<String>> = functions
        .iter()
        .map(|f| {
            vec![
                f.spec.name.clone(),
                format!("{} MB", f.spec.memory_mb),
                format!("{} s", f.spec.timeout_s),
                f.package.clone(),
                f.spec.image.clone(),
                f.created.clone(),
            ]
        })
        .collect();
    print_table(
        &["NAME", "MEMORY", "TIMEOUT", "PACKAGE", "IMAGE", "CREATED"],
        &rows,
    )?;
    Ok(())
}

/// The exit status for an error (DESIGN.md §3): 2 usage or input, 3 provider, 1 function.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    category(err).exit_code()
}

fn category(err: &anyhow::Error) -> ErrorCategory {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<scar_local::LocalError>() {
            return e.category();
        }
        if let Some(e) = cause.downcast_ref::<scar_packager::PackagerError>() {
            return e.category();
        }
        if let Some(e) = cause.downcast_ref::<scar_aws::AwsError>() {
            return e.category();
        }
        if let Some(e) = cause.downcast_ref::<scar_core::config::ConfigError>() {
            return e.category();
        }
        if cause.is::<scar_core::SpecError>()
            || cause.is::<scar_core::bucket::BucketError>()
            || cause.is::<crate::settings::InputFile>()
            || cause.is::<scar_core::fdl::FdlError>()
            || cause.is::<crate::settings::UnsupportedProvider>()
            || cause.is::<scar_core::provider::NoLogLines>()
        {
            return ErrorCategory::Usage;
        }
    }
    ErrorCategory::Provider
}

/// Prints an error and its causes, the way the user should read it.
pub fn report(err: &anyhow::Error) {
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
    eprintln!("{text}");
}

/// The launcher's progress bar: files done, with failed and timed-out counts.
pub struct LaunchBar {
    bar: Option<ProgressBar>,
    counts: Mutex<(u64, u64)>,
}

impl LaunchBar {
    pub fn new(quiet: bool) -> LaunchBar {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            ProgressBar::new(0).with_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} files {msg} {per_sec} {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            )
        });
        LaunchBar {
            bar,
            counts: Mutex::new((0, 0)),
        }
    }

    pub fn event(&self, event: &scar_local::LaunchEvent) {
        let Some(bar) = &self.bar else { return };
        match event {
            scar_local::LaunchEvent::Planned { total } => bar.set_length(*total as u64),
            scar_local::LaunchEvent::Finished(r) => {
                let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
                match r.outcome {
                    scar_local::Outcome::Failed => c.0 += 1,
                    scar_local::Outcome::TimedOut => c.1 += 1,
                    scar_local::Outcome::Succeeded => {}
                }
                bar.set_message(format!("({} failed, {} timed out)", c.0, c.1));
                bar.inc(1);
            }
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
