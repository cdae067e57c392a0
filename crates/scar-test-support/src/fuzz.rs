//! The fuzz targets' seed corpora and every input that once crashed a target
//! (`fuzz/corpus/<target>`, `fuzz/regressions/<target>`), replayed through the same entry
//! points as a normal test: CI keeps them fixed without a fuzzer.

use std::path::{Path, PathBuf};

/// Runs `f` on every input of the fuzz target `target`, in name order; there must be at
/// least `min_seeds` of them (a moved corpus is not a pass).
pub fn replay(target: &str, min_seeds: usize, f: fn(&[u8])) {
    let files = inputs(target);
    assert!(
        files.len() >= min_seeds,
        "{target}: {} inputs, expected at least {min_seeds}",
        files.len()
    );
    for path in files {
        eprintln!("{target}: {}", path.display());
        f(&std::fs::read(&path).unwrap());
    }
}

/// One test per fuzz target, each a [`replay`] of its inputs:
/// `replay_tests! { test_name: "target", min_seeds, entry_point; ... }`.
#[macro_export]
macro_rules! replay_tests {
    ($($test:ident: $target:literal, $min_seeds:literal, $f:path;)*) => {
        $(
            #[test]
            fn $test() {
                $crate::fuzz::replay($target, $min_seeds, $f);
            }
        )*
    };
}

fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut out = Vec::new();
    for dir in ["corpus", "regressions"] {
        if let Ok(read) = std::fs::read_dir(fuzz.join(dir).join(target)) {
            out.extend(read.flatten().map(|e| e.path()).filter(|p| p.is_file()));
        }
    }
    out.sort();
    out
}
