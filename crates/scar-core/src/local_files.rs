//! The local files a `put` names: a file under its own name, or a directory's files
//! recursively under their paths relative to it, in key order. The same walk for every
//! provider, so that what is stored, and what an unreadable entry does, never differ.

use std::path::{Path, PathBuf};

use crate::UsageError;

/// A local file to store, and the name it gets under the bucket folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its path relative to what `put` was given (`/`-separated), or its name.
    pub relative: String,
}

/// The files under `path` to store. An entry that cannot be read (a directory without
/// permission, a broken link) fails the whole walk, naming it: nothing is stored in part.
pub fn files_to_put(path: &Path) -> Result<Vec<LocalFile>, UsageError> {
    let meta = std::fs::metadata(path).map_err(UsageError::unreadable(path))?;
    if !meta.is_dir() {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Ok(vec![LocalFile {
            path: path.to_path_buf(),
            relative: name,
        }]);
    }
    let mut files = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(UsageError::unreadable(&dir))? {
            let entry = entry.map_err(UsageError::unreadable(&dir))?;
            let p = entry.path();
            let meta = std::fs::metadata(&p).map_err(UsageError::unreadable(&p))?;
            if meta.is_dir() {
                stack.push(p);
            } else if meta.is_file() {
                let relative = p
                    .strip_prefix(path)
                    .unwrap_or(&p)
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                files.push(LocalFile { path: p, relative });
            }
        }
    }
    files.sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_walked_in_key_order_and_a_file_is_itself() {
        let dir = std::env::temp_dir().join(format!("scar-core-walk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("b/c")).unwrap();
        std::fs::write(dir.join("z.txt"), "z").unwrap();
        std::fs::write(dir.join("b/c/a.txt"), "a").unwrap();
        let files = files_to_put(&dir).unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.relative.as_str()).collect();
        assert_eq!(names, ["b/c/a.txt", "z.txt"]);
        let one = files_to_put(&dir.join("z.txt")).unwrap();
        assert_eq!(one[0].relative, "z.txt");
        let missing = files_to_put(&dir.join("nope")).unwrap_err();
        assert!(missing.to_string().contains("nope"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
