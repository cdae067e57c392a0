//! The files under a directory, however deep: a function's log streams, a folder that
//! lands in a watched input folder.

use std::path::{Path, PathBuf};

/// Every file under `dir` that is not a directory (symlinks to directories are followed),
/// in no particular order; what cannot be read is passed over.
pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}
