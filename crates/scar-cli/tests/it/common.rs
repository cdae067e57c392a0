//! What the modules of this binary share: what most tests start with (`scar` in a fresh
//! home, the busybox image), and reading numbers out of what `scar` prints.

use std::path::{Path, PathBuf};

use scar_test_support::images::{build_busybox_image, busybox_archive, require_tools};
use scar_test_support::scar::Scar;

/// The `scar` binary under test in a fresh home, once `tools` are found; `None` (skipped
/// loudly, a failure under `CI`) when a tool or the static supervisor is missing.
pub fn scar_with(tools: &[&str]) -> Option<Scar> {
    if !require_tools(tools) {
        return None;
    }
    Scar::new(env!("CARGO_BIN_EXE_scar"))
}

/// [`scar_with`] umoci and busybox, a work directory, and the test busybox image built in
/// it: `(scar, work, image)`, the image as `-i` and an FDL file's `image:` name it
/// (`<work>/image/oci:latest`).
pub fn with_busybox_image() -> Option<(Scar, tempfile::TempDir, String)> {
    let scar = scar_with(&["umoci", "busybox"])?;
    let work = tempfile::tempdir().unwrap();
    let image = build_busybox_image(&work.path().join("image")).image_arg();
    Some((scar, work, image))
}

/// [`scar_with`] `tools` (which must let umoci and skopeo build the image), a work
/// directory, and the test busybox image saved in it as a docker archive: `(scar, work,
/// archive)`, the archive as `-if` takes it.
pub fn with_busybox_archive(tools: &[&str]) -> Option<(Scar, tempfile::TempDir, PathBuf)> {
    let scar = scar_with(tools)?;
    let work = tempfile::tempdir().unwrap();
    let archive = busybox_archive(work.path());
    Some((scar, work, archive))
}

/// Writes `text` to `dir/name`; returns its path as a flag takes it.
pub fn write_file(dir: &Path, name: &str, text: &str) -> String {
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    file.to_str().unwrap().to_string()
}

/// Creates the directory `dir` holding `files` (a name under `dir`, its text); returns
/// `dir`.
pub fn folder_with(dir: PathBuf, files: &[(&str, &str)]) -> PathBuf {
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in files {
        let file = dir.join(name);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }
    dir
}

/// The number in `text` between the first `before` and the `after` that follows it (`Init
/// Duration: 12.3 ms`); panics, showing `text`, when there is none.
#[track_caller]
pub fn number_after<T: std::str::FromStr>(text: &str, before: &str, after: &str) -> T {
    text.split(before)
        .nth(1)
        .and_then(|rest| rest.split(after).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {before:?} in {text}"))
}
