//! What an extraction did: entries applied, and every entry it dropped or changed.

use std::collections::BTreeMap;

/// What kind of change extraction made to what the image says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Change {
    /// A hostile entry: a name with `..` or an absolute name, a hard link out of the root
    /// or to a directory, a symlink loop. Skipped (absolute names: put under the root).
    Hostile,
    /// A device node or fifo: not created.
    Device,
    /// A setuid/setgid bit: dropped.
    SetId,
    /// Anything else that could not be applied (a parent that is a file, a hard link to
    /// nothing, an unsupported entry type): skipped.
    Skipped,
}

/// What an extraction did. `warnings` are human-readable lines for the CLI to show, one
/// per entry dropped or changed; `changes` counts them by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtractReport {
    /// Entries applied (files, directories, links, whiteouts).
    pub entries: u64,
    /// Bytes of regular-file content (sizes, holes of sparse files included).
    pub bytes: u64,
    /// Device nodes and fifos that were not created.
    pub skipped_devices: u64,
    /// Everything skipped or changed, one line each.
    pub warnings: Vec<String>,
    /// How many entries each kind of change touched.
    pub changes: BTreeMap<Change, u64>,
    /// What the layers expanded to: their tar streams plus the holes of sparse files.
    pub expanded: u64,
}

impl ExtractReport {
    pub(super) fn note(&mut self, change: Change, line: String) {
        *self.changes.entry(change).or_default() += 1;
        self.warnings.push(line);
    }

    /// One line saying what extraction dropped or changed, if anything; the full list is
    /// in `warnings`.
    pub fn summary(&self) -> Option<String> {
        if self.changes.is_empty() {
            return None;
        }
        let total: u64 = self.changes.values().sum();
        let parts: Vec<String> = self
            .changes
            .iter()
            .map(|(c, n)| {
                let what = match c {
                    Change::Hostile => "hostile entries skipped or put under the root",
                    Change::Device => "device nodes or fifos not created",
                    Change::SetId => "setuid/setgid bits dropped",
                    Change::Skipped => "entries that could not be applied skipped",
                };
                format!("{n} {what}")
            })
            .collect();
        Some(format!(
            "extraction dropped or changed {total} entr{} of the image: {}",
            if total == 1 { "y" } else { "ies" },
            parts.join(", ")
        ))
    }
}
