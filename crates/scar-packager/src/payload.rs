//! A function's extra payload (SCAR's `extra_payload`, `-ep`): a folder on the user's
//! machine whose files the function finds in `/var/task`. One walk of it serves every
//! package: the local provider's copy, the zip's entries, the image's layer.
//!
//! Symlinks are never reproduced: one whose target is inside the folder is followed (its
//! file or folder copied in its place), one that leads out of the folder, dangles or loops
//! back to a folder being walked is left out and reported, so nothing outside the folder
//! is ever shipped.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use crate::PackagerError;

/// One thing in the payload, at `rel` below its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadEntry {
    /// Where it goes, relative to the payload's root (never empty, never `..`).
    pub rel: PathBuf,
    /// The file to read (a regular file), or `None` for a folder.
    pub source: Option<PathBuf>,
    /// Permission bits.
    pub mode: u32,
}

/// The folder's contents, parents before children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Payload {
    pub entries: Vec<PayloadEntry>,
    /// What was left out and why (symlinks out of the folder, special files).
    pub skipped: Vec<String>,
}

impl Payload {
    /// Walks `dir`. Fails when `dir` is not a folder or cannot be read.
    pub fn walk(dir: &Path) -> Result<Payload, PackagerError> {
        let meta = fs::metadata(dir).map_err(|e| PackagerError::input(dir, e))?;
        if !meta.is_dir() {
            return Err(PackagerError::input(
                dir,
                std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a folder"),
            ));
        }
        let root = fs::canonicalize(dir).map_err(|e| PackagerError::input(dir, e))?;
        let mut payload = Payload::default();
        let mut walking = vec![root.clone()];
        walk_into(&root, &root, Path::new(""), &mut walking, &mut payload)?;
        Ok(payload)
    }

    /// Copies the payload into `dest` (made if missing): plain files and folders only.
    pub fn copy_to(&self, dest: &Path) -> Result<(), PackagerError> {
        fs::create_dir_all(dest).map_err(|e| PackagerError::io("create directory", dest, e))?;
        for e in &self.entries {
            let to = dest.join(&e.rel);
            match &e.source {
                None => {
                    fs::create_dir_all(&to)
                        .map_err(|err| PackagerError::io("create directory", &to, err))?;
                }
                Some(from) => {
                    fs::copy(from, &to).map_err(|err| PackagerError::io("copy to", &to, err))?;
                }
            }
            fs::set_permissions(&to, fs::Permissions::from_mode(e.mode))
                .map_err(|err| PackagerError::io("set permissions of", &to, err))?;
        }
        Ok(())
    }

    /// The top-level names in the payload.
    pub fn top_level_names(&self) -> impl Iterator<Item = &std::ffi::OsStr> {
        self.entries
            .iter()
            .filter(|e| e.rel.components().count() == 1)
            .map(|e| e.rel.as_os_str())
    }
}

/// Walks the folder `real` (a canonical path inside `root`), whose entries go under `rel`.
fn walk_into(
    root: &Path,
    real: &Path,
    rel: &Path,
    walking: &mut Vec<PathBuf>,
    payload: &mut Payload,
) -> Result<(), PackagerError> {
    let mut names: Vec<_> = fs::read_dir(real)
        .map_err(|e| PackagerError::input(real, e))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(|e| PackagerError::input(real, e))?;
    names.sort();
    for name in names {
        let path = real.join(&name);
        let entry_rel = rel.join(&name);
        let shown = entry_rel.display().to_string();
        let lmeta = fs::symlink_metadata(&path).map_err(|e| PackagerError::input(&path, e))?;
        let (target, meta) = if lmeta.file_type().is_symlink() {
            match fs::canonicalize(&path) {
                Ok(t) if t.starts_with(root) => {
                    let meta = fs::metadata(&t).map_err(|e| PackagerError::input(&t, e))?;
                    (t, meta)
                }
                Ok(_) => {
                    payload
                        .skipped
                        .push(format!("{shown}: a symlink out of the folder"));
                    continue;
                }
                Err(_) => {
                    payload.skipped.push(format!("{shown}: a dangling symlink"));
                    continue;
                }
            }
        } else {
            (path, lmeta)
        };
        let mode = meta.permissions().mode() & 0o7777;
        if meta.is_dir() {
            if walking.contains(&target) {
                payload
                    .skipped
                    .push(format!("{shown}: a symlink to a folder it is in"));
                continue;
            }
            payload.entries.push(PayloadEntry {
                rel: entry_rel.clone(),
                source: None,
                mode: mode | 0o700,
            });
            walking.push(target.clone());
            walk_into(root, &target, &entry_rel, walking, payload)?;
            walking.pop();
        } else if meta.is_file() {
            payload.entries.push(PayloadEntry {
                rel: entry_rel,
                source: Some(target),
                mode: mode | 0o400,
            });
        } else {
            payload
                .skipped
                .push(format!("{shown}: not a file or a folder"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_inside_are_followed_and_those_out_are_left_out() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("secret");
        fs::write(&outside, "no").unwrap();
        let dir = t.path().join("payload");
        fs::create_dir_all(dir.join("sub")).unwrap();
        fs::write(dir.join("a.txt"), "a").unwrap();
        fs::write(dir.join("sub/b.txt"), "b").unwrap();
        symlink("sub/b.txt", dir.join("link")).unwrap();
        symlink(&outside, dir.join("out")).unwrap();
        symlink("../secret", dir.join("sub/up")).unwrap();
        symlink("..", dir.join("sub/loop")).unwrap();
        symlink("nowhere", dir.join("dangling")).unwrap();
        let p = Payload::walk(&dir).unwrap();
        let rels: Vec<_> = p
            .entries
            .iter()
            .map(|e| e.rel.display().to_string())
            .collect();
        assert_eq!(rels, ["a.txt", "link", "sub", "sub/b.txt"]);
        assert_eq!(p.skipped.len(), 4, "{:?}", p.skipped);
        let dest = t.path().join("copy");
        p.copy_to(&dest).unwrap();
        assert_eq!(fs::read_to_string(dest.join("link")).unwrap(), "b");
        assert!(!fs::symlink_metadata(dest.join("link"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(!dest.join("out").exists());
    }

    #[test]
    fn a_file_is_not_a_payload() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("f");
        fs::write(&f, "x").unwrap();
        assert!(Payload::walk(&f).is_err());
        assert!(Payload::walk(&t.path().join("missing")).is_err());
    }
}
