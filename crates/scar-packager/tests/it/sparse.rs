//! Sparse files are applied as GNU tar applies them: every sparse format GNU tar writes
//! (PAX 0.0, 0.1, 1.0 and old GNU type `S`), extracted by GNU tar and by scar from the
//! same layer, compared byte for byte and by size.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use common::{assert_same_tree, require_tools, run};
use scar_packager::{ExtractReport, Extractor};
use scar_test_support::images as common;

/// Writes `data` at `offset` in `path` (created sparse when missing).
fn put(path: &Path, offset: u64, data: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap();
    f.write_all_at(data, offset).unwrap();
}

/// Files with holes at the start, middle and end, one all hole, one with many chunks
/// (past the 4 that fit an old GNU header, so extension headers follow), and a dense one.
fn sparse_tree(src: &Path) {
    std::fs::create_dir_all(src.join("dir")).unwrap();
    let mb = 1 << 20;
    put(&src.join("middle"), 0, b"head");
    put(&src.join("middle"), mb, b"hello");
    put(&src.join("middle"), 3 * mb, b"end");
    put(&src.join("lead-hole"), 2 * mb + 17, b"data after a hole");
    put(&src.join("trail-hole"), 0, &vec![7u8; 10_000]);
    std::fs::File::options()
        .write(true)
        .open(src.join("trail-hole"))
        .unwrap()
        .set_len(5 * mb)
        .unwrap();
    std::fs::File::create(src.join("all-hole"))
        .unwrap()
        .set_len(5 * mb)
        .unwrap();
    for i in 0..40u64 {
        put(
            &src.join("dir/many"),
            i * 64 * 1024,
            format!("chunk {i}").as_bytes(),
        );
    }
    put(&src.join("dense"), 0, &vec![1u8; 70_000]);
}

fn compare(format: &[&str], src: &Path, work: &Path, gzip: bool) {
    let name = format.join("");
    let tar_path = work.join(format!("{name}.tar"));
    let mut cmd = Command::new("tar");
    cmd.arg("--sparse")
        .args(format)
        .arg("-cf")
        .arg(&tar_path)
        .arg("-C")
        .arg(src)
        .arg(".");
    run(&mut cmd);
    // 14 MB of files, nearly all holes: only a sparse encoding is this small.
    let stored = std::fs::metadata(&tar_path).unwrap().len();
    assert!(
        stored < 1 << 20,
        "{name}: tar did not store sparse files ({stored} bytes)"
    );
    let layer = if gzip {
        run(Command::new("gzip").arg("-kf").arg(&tar_path));
        work.join(format!("{name}.tar.gz"))
    } else {
        tar_path.clone()
    };
    let by_tar = work.join(format!("{name}-gnu"));
    std::fs::create_dir(&by_tar).unwrap();
    run(Command::new("tar")
        .arg("--sparse")
        .arg("-xf")
        .arg(&tar_path)
        .arg("-C")
        .arg(&by_tar));
    let by_scar = work.join(format!("{name}-scar"));
    let report: ExtractReport = Extractor::default()
        .extract_layer_files(&[layer], &by_scar)
        .unwrap();
    assert!(report.warnings.is_empty(), "{name}: {:?}", report.warnings);
    assert_same_tree(&by_tar, &by_scar);
    for f in [
        "middle",
        "lead-hole",
        "trail-hole",
        "all-hole",
        "dir/many",
        "dense",
    ] {
        let (a, b) = (by_tar.join(f), by_scar.join(f));
        assert_eq!(
            std::fs::metadata(&a).unwrap().len(),
            std::fs::metadata(&b).unwrap().len(),
            "{name}: size of {f}"
        );
        assert_eq!(
            std::fs::read(&a).unwrap(),
            std::fs::read(&b).unwrap(),
            "{name}: {f}"
        );
    }
    // Holes stay holes: 5 MB of nothing takes (almost) no disk.
    let blocks = std::fs::metadata(by_scar.join("all-hole"))
        .unwrap()
        .blocks();
    assert!(
        blocks * 512 < 1 << 20,
        "{name}: all-hole takes {blocks} blocks"
    );
}

#[test]
fn sparse_files_extract_as_gnu_tar_extracts_them() {
    if !require_tools(&["tar", "gzip"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    sparse_tree(&src);
    for (format, gzip) in [
        (&["--format=posix", "--sparse-version=0.0"][..], false),
        (&["--format=posix", "--sparse-version=0.1"][..], false),
        (&["--format=posix", "--sparse-version=1.0"][..], false),
        (
            &["--format=posix", "--sparse-version=1.0", "-H", "posix"][..],
            true,
        ),
        (&["--format=gnu"][..], false),
        (&["--format=oldgnu"][..], true),
    ] {
        eprintln!("format: {format:?} gzip: {gzip}");
        compare(format, &src, work.path(), gzip);
    }
}
