//! The fuzz targets' seed corpora and every input that once crashed a target
//! (`fuzz/corpus/<target>`, `fuzz/regressions/<target>`), replayed through the same entry
//! points as a normal test: CI keeps them fixed without a fuzzer.

use std::path::PathBuf;

fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut out = Vec::new();
    for dir in ["corpus", "regressions"] {
        if let Ok(read) = std::fs::read_dir(fuzz.join(dir).join(target)) {
            out.extend(read.flatten().map(|e| e.path()).filter(|p| p.is_file()));
        }
    }
    out.sort();
    out
}

fn replay(target: &str, min_seeds: usize, f: fn(&[u8])) {
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

#[test]
fn extract_layer_inputs() {
    replay("extract_layer", 10, scar_packager::fuzz::extract_layer);
}

#[test]
fn image_archive_inputs() {
    replay("image_archive", 2, scar_packager::fuzz::image_archive);
}

#[test]
fn image_manifest_inputs() {
    replay("image_manifest", 3, scar_packager::fuzz::image_manifest);
}
