//! Hostile layers: nothing may be written outside the root, whatever the layer says.

use std::path::Path;

use common::{
    layer_with_bad_checksum, layer_with_garbage_size, layer_with_header, layer_with_long_name,
    layer_with_negative_size, layer_with_unknown_sparse, pax, pax_layer, raw_entry, snapshot,
    tar_of, RawTar,
};
use scar_packager::{ExtractReport, Extractor};
use scar_test_support::images as common;

/// A sentinel directory (the root's parent) and the root inside it.
fn sandbox() -> (tempfile::TempDir, std::path::PathBuf) {
    let sentinel = tempfile::tempdir().unwrap();
    let root = sentinel.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(sentinel.path().join("outside"), "original").unwrap();
    (sentinel, root)
}

fn outside_untouched(sentinel: &Path) {
    let mut names: Vec<_> = std::fs::read_dir(sentinel)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["outside", "root"],
        "something was created next to the root"
    );
    assert_eq!(
        std::fs::read_to_string(sentinel.join("outside")).unwrap(),
        "original"
    );
}

/// Applies `layers` in order onto `root`, with the default options, into one report.
fn apply_layers(root: &Path, layers: &[&[u8]]) -> ExtractReport {
    let mut report = ExtractReport::default();
    for layer in layers {
        Extractor::default()
            .apply_layer(*layer, root, &mut report)
            .unwrap();
    }
    report
}

#[test]
fn hostile_corpus_stays_inside_the_root() {
    let (sentinel, root) = sandbox();
    let token = format!("{:x}", std::process::id() as u64 * 7919 + 17);
    let pwned_tmp = format!("/tmp/pwned-{token}");
    let pwned_rel = format!("../../../../../../tmp/pwned-up-{token}");
    let layer = RawTar::new()
        .file("../escape", 0o644, b"x")
        .file("/abs/path", 0o644, b"abs")
        .file("./../../x", 0o644, b"x")
        .symlink("evil", "/")
        .file(&format!("evil/tmp/pwned-{token}"), 0o644, b"pwned")
        .symlink("up", "../../..")
        .file(&format!("up/tmp/pwned-up-{token}"), 0o644, b"pwned")
        .file("up/outside", 0o644, b"overwritten?")
        .symlink("chain", "up/..")
        .file("chain/chained", 0o644, b"chained")
        .hardlink("hl-passwd", "/etc/passwd")
        .hardlink("hl-outside", "../outside")
        .special("dev-null", tar::EntryType::Char)
        .special("fifo", tar::EntryType::Fifo)
        .file(&pwned_rel, 0o644, b"pwned")
        .finish();
    let report = apply_layers(&root, &[&layer]);

    outside_untouched(sentinel.path());
    assert!(
        !Path::new(&pwned_tmp).exists(),
        "{pwned_tmp} written outside"
    );
    assert!(!Path::new(&format!("/tmp/pwned-up-{token}")).exists());
    assert!(!Path::new("/abs/path").exists());

    // Absolute names and writes through symlinks land inside the root (chroot semantics).
    assert_eq!(std::fs::read(root.join("abs/path")).unwrap(), b"abs");
    assert_eq!(
        std::fs::read(root.join(format!("tmp/pwned-{token}"))).unwrap(),
        b"pwned"
    );
    assert_eq!(
        std::fs::read(root.join(format!("tmp/pwned-up-{token}"))).unwrap(),
        b"pwned"
    );
    assert_eq!(
        std::fs::read(root.join("outside")).unwrap(),
        b"overwritten?"
    );
    assert_eq!(std::fs::read(root.join("chained")).unwrap(), b"chained");
    // Symlinks are stored verbatim.
    assert_eq!(
        std::fs::read_link(root.join("evil")).unwrap(),
        Path::new("/")
    );
    assert_eq!(
        std::fs::read_link(root.join("up")).unwrap(),
        Path::new("../../..")
    );
    // Refused and skipped entries are reported.
    assert_eq!(report.skipped_devices, 2);
    assert!(!root.join("dev-null").exists() && !root.join("fifo").exists());
    assert!(!root.join("hl-outside").exists() && !root.join("hl-passwd").exists());
    let w = report.warnings.join("\n");
    for needle in [
        "../escape",
        "./../../x",
        "hl-outside",
        "hl-passwd",
        "dev-null",
        "fifo",
        "/abs/path",
    ] {
        assert!(w.contains(needle), "no warning about {needle}:\n{w}");
    }
    assert!(!root.join("escape").exists() && !root.join("x").exists());
}

#[test]
fn hard_link_inside_the_root_through_symlinks_is_kept_inside() {
    let (sentinel, root) = sandbox();
    let layer = RawTar::new()
        .file("etc/passwd", 0o644, b"root:x:0:0::/:/bin/sh\n")
        .symlink("evil", "/")
        .hardlink("hl", "/etc/passwd")
        .hardlink("hl2", "evil/etc/passwd")
        .finish();
    apply_layers(&root, &[&layer]);
    outside_untouched(sentinel.path());
    assert_eq!(
        std::fs::read(root.join("hl")).unwrap(),
        b"root:x:0:0::/:/bin/sh\n"
    );
    assert_eq!(
        std::fs::read(root.join("hl2")).unwrap(),
        b"root:x:0:0::/:/bin/sh\n"
    );
    assert_ne!(
        std::fs::read(root.join("hl")).unwrap(),
        std::fs::read("/etc/passwd").unwrap()
    );
}

#[test]
fn opaque_marker_keeps_entries_of_its_own_layer_in_any_order() {
    let (_sentinel, root) = sandbox();
    let lower = RawTar::new()
        .file("d/old", 0o644, b"old")
        .file("d/sub/older", 0o644, b"older")
        .file("e/old", 0o644, b"old")
        .finish();
    let upper = RawTar::new()
        .file("d/new", 0o644, b"new")
        .file("d/sub/newer", 0o644, b"newer")
        .file("d/.wh..wh..opq", 0o644, b"")
        .file("e/.wh..wh..opq", 0o644, b"")
        .file("e/new", 0o644, b"new")
        .file(".wh.gone", 0o644, b"")
        .finish();
    let gone = RawTar::new().file("gone", 0o644, b"x").finish();
    let report = apply_layers(&root, &[&lower, &gone, &upper]);
    let names: Vec<_> = snapshot(&root)
        .keys()
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(names, ["d", "d/new", "d/sub", "d/sub/newer", "e", "e/new"]);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

#[test]
fn read_only_directories_and_replacements() {
    let (_sentinel, root) = sandbox();
    let lower = RawTar::new()
        .dir("ro/", 0o555)
        .file("ro/a", 0o444, b"a")
        .dir("ro/inner/", 0o500)
        .file("ro/inner/b", 0o400, b"b")
        .file("becomes-dir", 0o644, b"file")
        .finish();
    let upper = RawTar::new()
        .file("ro/c", 0o644, b"c")
        .file("ro/.wh.inner", 0o644, b"")
        .dir("becomes-dir/", 0o755)
        .file("becomes-dir/x", 0o644, b"x")
        .finish();
    apply_layers(&root, &[&lower, &upper]);
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &str| {
        std::fs::metadata(root.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("ro"), 0o555);
    assert_eq!(mode("ro/a"), 0o444);
    assert!(root.join("ro/c").exists() && !root.join("ro/inner").exists());
    assert_eq!(std::fs::read(root.join("becomes-dir/x")).unwrap(), b"x");
    crate::make_writable(&root);
}

#[test]
fn zstd_layers_are_refused_clearly() {
    let (_sentinel, root) = sandbox();
    let mut report = ExtractReport::default();
    let err = Extractor::default()
        .apply_layer(&[0x28u8, 0xb5, 0x2f, 0xfd, 0, 0][..], &root, &mut report)
        .unwrap_err();
    assert!(err.to_string().contains("zstd"), "{err}");
    assert_eq!(err.category(), scar_core::ErrorCategory::Usage);
}

// ---------------------------------------------------------------------------------------
// Malformed headers, limits, strict mode and staging (issue 13).

use scar_core::ErrorCategory;
use scar_packager::{Change, ExtractLimits, ExtractOptions, PackagerError};

/// Writes `layer` beside the sentinel and extracts it into a new root `dest` with
/// `options`; checks that nothing escaped, and that a failure left neither `dest` nor
/// staging behind.
fn extract_file(
    layer: &[u8],
    options: &ExtractOptions,
) -> (
    tempfile::TempDir,
    Result<scar_packager::ExtractReport, PackagerError>,
) {
    let work = tempfile::tempdir().unwrap();
    let sentinel = work.path().join("s");
    std::fs::create_dir(&sentinel).unwrap();
    std::fs::write(sentinel.join("outside"), "original").unwrap();
    let roots = sentinel.join("root");
    std::fs::create_dir(&roots).unwrap();
    let file = work.path().join("layer.tar");
    std::fs::write(&file, layer).unwrap();
    let dest = roots.join("dest");
    let result = Extractor::new(*options).extract_layer_files(&[file], &dest);
    outside_untouched(&sentinel);
    let left: Vec<_> = std::fs::read_dir(&roots)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    if result.is_err() {
        assert!(left.is_empty(), "left behind after an error: {left:?}");
    } else {
        assert_eq!(left, ["dest"], "staging left behind");
    }
    (work, result)
}

fn dest_of(work: &tempfile::TempDir) -> std::path::PathBuf {
    work.path().join("s/root/dest")
}

/// The default options with one limit changed by `set`; not strict.
fn limited(set: impl FnOnce(&mut ExtractLimits)) -> ExtractOptions {
    let mut options = ExtractOptions::default();
    set(&mut options.limits);
    options
}

#[track_caller]
fn assert_bad_input(result: Result<scar_packager::ExtractReport, PackagerError>, needle: &str) {
    let err = result.expect_err("a malformed layer was accepted");
    assert_eq!(err.category(), ErrorCategory::Usage, "{err:?}");
    assert!(err.to_string().contains(needle), "`{err}` lacks `{needle}`");
}

/// Regression: a base-256 mtime of 2^63 or more (e.g. -1) panicked with "overflow when
/// adding duration to instant" in `apply_entry`.
#[test]
fn mtimes_no_clock_can_hold_are_ignored_not_a_panic() {
    let huge = |v: u64| move |h: &mut tar::Header| h.set_mtime(v);
    let minus_one = |h: &mut tar::Header| h.as_old_mut().mtime = [0xff; 12];
    let layer = tar_of(&[
        raw_entry("d/", tar::EntryType::Directory, b"", minus_one, false),
        raw_entry("d/f", tar::EntryType::Regular, b"f", minus_one, false),
        raw_entry("g", tar::EntryType::Regular, b"g", huge(1 << 63), false),
        raw_entry("h", tar::EntryType::Regular, b"h", huge(u64::MAX), false),
        raw_entry(
            "i",
            tar::EntryType::Regular,
            b"i",
            huge(i64::MAX as u64),
            false,
        ),
        raw_entry(
            "l",
            tar::EntryType::Symlink,
            b"",
            |h| {
                h.set_link_name("d/f").unwrap();
                h.as_old_mut().mtime = [0xff; 12];
            },
            false,
        ),
    ]);
    let (work, result) = extract_file(&layer, &ExtractOptions::default());
    result.unwrap();
    let dest = dest_of(&work);
    for (p, c) in [("d/f", "f"), ("g", "g"), ("h", "h"), ("i", "i"), ("l", "f")] {
        assert_eq!(std::fs::read_to_string(dest.join(p)).unwrap(), c);
    }
}

/// Every malformed header field is bad input (exit status 2), never a panic, never a
/// machine failure, and leaves nothing.
#[test]
fn malformed_header_fields_are_bad_input() {
    let deep = vec!["d".repeat(200); 25].join("/");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("bad checksum", layer_with_bad_checksum(), "checksum"),
        ("garbage size", layer_with_garbage_size(), "size"),
        ("negative size", layer_with_negative_size(), "layer"),
        (
            "size past 2^63",
            layer_with_header(|h| h.set_size(1 << 63)),
            "layer",
        ),
        (
            "size over the data",
            layer_with_header(|h| h.set_size(1 << 20)),
            "truncated",
        ),
        (
            "name component over 255 bytes",
            layer_with_long_name(),
            "at most 255 bytes",
        ),
        (
            "path over 4095 bytes",
            pax_layer(
                &[("path", deep.as_bytes())],
                "f",
                tar::EntryType::Regular,
                b"x",
            ),
            "at most 4095 bytes",
        ),
        (
            "symlink target over 4095 bytes",
            pax_layer(
                &[("linkpath", "t".repeat(5000).as_bytes())],
                "l",
                tar::EntryType::Symlink,
                b"",
            ),
            "symlink",
        ),
        (
            "long name of 20 MB",
            tar_of(&[
                raw_entry(
                    "././@LongLink",
                    tar::EntryType::GNULongName,
                    &vec![b'a'; 20 << 20],
                    |_| {},
                    false,
                ),
                raw_entry("f", tar::EntryType::Regular, b"x", |_| {}, false),
            ]),
            "header data",
        ),
        (
            "PAX sparse of an unknown version",
            layer_with_unknown_sparse(),
            "unknown format",
        ),
        (
            "PAX sparse chunk past 2^64",
            pax_layer(
                &[
                    ("GNU.sparse.size", b"10"),
                    ("GNU.sparse.map", b"18446744073709551615,1"),
                ],
                "f",
                tar::EntryType::Regular,
                b"x",
            ),
            "2^64",
        ),
        (
            "PAX sparse chunks out of order",
            pax_layer(
                &[
                    ("GNU.sparse.size", b"100"),
                    ("GNU.sparse.map", b"50,1,10,1"),
                ],
                "f",
                tar::EntryType::Regular,
                b"xy",
            ),
            "out of order",
        ),
        (
            "PAX sparse map over its data",
            pax_layer(
                &[("GNU.sparse.size", b"100"), ("GNU.sparse.map", b"0,50")],
                "f",
                tar::EntryType::Regular,
                b"xy",
            ),
            "stored",
        ),
        (
            "PAX sparse 1.0 map of 2^62 chunks",
            tar_of(&[
                pax(&[
                    ("GNU.sparse.major", b"1"),
                    ("GNU.sparse.minor", b"0"),
                    ("GNU.sparse.realsize", b"100"),
                ]),
                raw_entry(
                    "f",
                    tar::EntryType::Regular,
                    &{
                        let mut map = b"4611686018427387904\n".to_vec();
                        map.resize(512, 0);
                        map
                    },
                    |_| {},
                    false,
                ),
            ]),
            "too many chunks",
        ),
        (
            "not gzip after a gzip magic",
            b"\x1f\x8b\x08\x00garbage".repeat(100),
            "not a valid layer",
        ),
    ];
    for (label, layer, needle) in cases {
        eprintln!("case: {label}");
        let (_work, result) = extract_file(&layer, &ExtractOptions::default());
        assert_bad_input(result, needle);
    }
}

/// Regression: a skipped old GNU sparse entry (type `S`) was drained through the tar
/// reader, which makes up its holes: a hole of 2^62 bytes kept a core busy for ever.
#[test]
fn a_skipped_sparse_entry_with_a_huge_hole_is_bounded() {
    let sparse = |name: &str| {
        raw_entry(
            name,
            tar::EntryType::GNUSparse,
            b"",
            |h| {
                let gnu = h.as_gnu_mut().unwrap();
                // One chunk of 0 bytes at 2^62: a file that is all hole.
                gnu.sparse[0].offset = *b"\x80\0\0\0\x40\0\0\0\0\0\0\0";
                gnu.sparse[0].numbytes = *b"00000000000\0";
                gnu.realsize = *b"\x80\0\0\0\x40\0\0\0\0\0\0\0";
                h.set_size(0);
            },
            false,
        )
    };
    for name in ["../hostile", ".wh.whiteout", "applied"] {
        let layer = tar_of(&[sparse(name)]);
        let started = std::time::Instant::now();
        let (_work, result) = extract_file(&layer, &ExtractOptions::default());
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{name}: took {:?}",
            started.elapsed()
        );
        let err = result.unwrap_err();
        assert!(
            matches!(err, PackagerError::TooLarge { .. }),
            "{name}: {err:?}"
        );
    }
}

/// Fields that are broken but not needed (mode, owner, time) are ignored, not fatal.
#[test]
fn garbage_in_unneeded_fields_is_ignored() {
    let layer = tar_of(&[raw_entry(
        "f",
        tar::EntryType::Regular,
        b"data",
        |h| {
            h.as_old_mut().mode = *b"zzzzzzz\0";
            h.as_old_mut().uid = [0xff; 8];
            h.as_old_mut().gid = *b"garbage\0";
            h.as_old_mut().mtime = *b"not a time!\0";
        },
        false,
    )]);
    let (work, result) = extract_file(&layer, &ExtractOptions::default());
    result.unwrap();
    assert_eq!(std::fs::read(dest_of(&work).join("f")).unwrap(), b"data");
}

fn gzip(data: impl std::io::Read) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::copy(&mut { data }, &mut gz).unwrap();
    gz.finish().unwrap()
}

/// A tar of one file of `size` bytes of `byte`, streamed.
fn big_file_tar(size: u64, byte: u8) -> impl std::io::Read {
    use std::io::Read as _;
    let mut h = tar::Header::new_gnu();
    h.set_path("big").unwrap();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_cksum();
    let pad = (512 - size % 512) % 512 + 1024;
    std::io::Cursor::new(h.as_bytes().to_vec())
        .chain(std::io::repeat(byte).take(size))
        .chain(std::io::repeat(0).take(pad))
}

#[test]
fn a_bomb_stops_at_the_image_limit_and_leaves_nothing() {
    let layer = gzip(big_file_tar(64 << 20, b'a'));
    let options = limited(|l| l.max_image_bytes = 16 << 20);
    let (_work, result) = extract_file(&layer, &options);
    let err = result.unwrap_err();
    assert!(matches!(err, PackagerError::TooLarge { .. }), "{err:?}");
    assert_eq!(err.category(), ErrorCategory::Usage);
    let msg = err.to_string();
    for needle in ["16 MB", "SCAR_MAX_IMAGE_MB", "max_image_mb"] {
        assert!(msg.contains(needle), "`{msg}` lacks `{needle}`");
    }
}

#[test]
fn a_header_claiming_more_than_the_limit_is_refused_before_writing() {
    let layer = tar_of(&[raw_entry(
        "f",
        tar::EntryType::Regular,
        b"",
        |h| h.set_size(1 << 30),
        false,
    )]);
    let options = limited(|l| l.max_image_bytes = 16 << 20);
    let (_work, result) = extract_file(&layer, &options);
    assert!(
        matches!(result, Err(PackagerError::TooLarge { .. })),
        "{result:?}"
    );
}

#[test]
fn a_decompression_bomb_is_stopped_by_the_layer_ratio() {
    // 100 MB of one byte: about 1000 times smaller gzipped.
    let layer = gzip(big_file_tar(100 << 20, b'a'));
    assert!(layer.len() < 1 << 20);
    let (_work, result) = extract_file(&layer, &ExtractOptions::default());
    let err = result.unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Usage, "{err:?}");
    let msg = err.to_string();
    for needle in ["100 times", "decompression bomb", "SCAR_MAX_LAYER_RATIO"] {
        assert!(msg.contains(needle), "`{msg}` lacks `{needle}`");
    }
    // The same layer, trusted: 0 turns the ratio check off.
    let trusted = limited(|l| l.max_layer_ratio = 0);
    let (work, result) = extract_file(&layer, &trusted);
    let report = result.unwrap();
    assert_eq!(report.bytes, 100 << 20);
    let meta = std::fs::metadata(dest_of(&work).join("big")).unwrap();
    assert_eq!(meta.len(), 100 << 20);
}

#[test]
fn a_nearly_full_disk_is_a_machine_error_and_leaves_nothing() {
    let layer = tar_of(&[raw_entry("f", tar::EntryType::Regular, b"x", |_| {}, false)]);
    let options = limited(|l| l.min_free_bytes = u64::MAX / 2);
    let (_work, result) = extract_file(&layer, &options);
    let err = result.unwrap_err();
    assert!(matches!(err, PackagerError::DiskFull { .. }), "{err:?}");
    assert_eq!(err.category(), ErrorCategory::Provider);
    assert!(err.to_string().contains("SCAR_MIN_FREE_MB"), "{err}");
}

/// A real full disk: a 4 MB tmpfs (needs mount rights; skipped loudly without them).
#[test]
fn a_full_disk_during_extraction_leaves_nothing() {
    let work = tempfile::tempdir().unwrap();
    let mnt = work.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&mnt)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !mounted {
        eprintln!("\n*** SKIPPED: cannot mount a tmpfs here ***\n");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mnt.clone());
    let layer_path = work.path().join("layer.tar");
    let mut data = big_file_tar(8 << 20, b'z');
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut data, &mut bytes).unwrap();
    std::fs::write(&layer_path, bytes).unwrap();
    let dest = mnt.join("roots/dest");
    let options = limited(|l| l.min_free_bytes = 0);
    let err = Extractor::new(options)
        .extract_layer_files(&[layer_path], &dest)
        .unwrap_err();
    assert!(matches!(err, PackagerError::DiskFull { .. }), "{err:?}");
    assert_eq!(err.category(), ErrorCategory::Provider);
    let left: Vec<_> = std::fs::read_dir(mnt.join("roots"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

fn hostile_layer() -> Vec<u8> {
    RawTar::new()
        .file("ok", 0o644, b"ok")
        .file("../escape", 0o644, b"x")
        .file("/abs", 0o644, b"abs")
        .hardlink("hl-out", "../outside")
        .special("null", tar::EntryType::Char)
        .file("suid", 0o4755, b"s")
        .finish()
}

#[test]
fn changes_are_counted_by_kind_and_summed_up() {
    let (_work, result) = extract_file(&hostile_layer(), &ExtractOptions::default());
    let report = result.unwrap();
    assert_eq!(
        report.changes.get(&Change::Hostile),
        Some(&3),
        "{report:#?}"
    );
    assert_eq!(report.changes.get(&Change::Device), Some(&1));
    assert_eq!(report.changes.get(&Change::SetId), Some(&1));
    assert_eq!(report.warnings.len(), 5);
    let summary = report.summary().unwrap();
    assert!(
        summary.starts_with("extraction dropped or changed 5 entries of the image: 3 hostile"),
        "{summary}"
    );
}

#[test]
fn strict_makes_any_hostile_entry_an_error() {
    let strict = ExtractOptions {
        strict: true,
        ..ExtractOptions::default()
    };
    for layer in [
        RawTar::new().file("../escape", 0o644, b"x").finish(),
        RawTar::new().file("/abs", 0o644, b"x").finish(),
        RawTar::new()
            .file("a", 0o644, b"a")
            .hardlink("hl", "../a")
            .finish(),
    ] {
        let (_work, result) = extract_file(&layer, &strict);
        let err = result.unwrap_err();
        assert!(matches!(err, PackagerError::Hostile { .. }), "{err:?}");
        assert_eq!(err.category(), ErrorCategory::Usage);
        assert!(err.to_string().contains("--strict"), "{err}");
    }
    // Devices and setuid bits are changes, not hostility.
    let layer = RawTar::new()
        .special("null", tar::EntryType::Char)
        .file("suid", 0o4755, b"s")
        .finish();
    let (_work, result) = extract_file(&layer, &strict);
    result.unwrap();
}

// Staging directories: removed on failure, swept after a kill, never while alive.

/// A header for `big` of `size` bytes.
fn big_header(size: u64) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_path("big").unwrap();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// The staging directories in `dir`.
fn staging_in(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().contains(".partial-"))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until a staging directory in `dir` holds `big` with some data in it.
fn wait_for_staging(dir: &Path) -> std::path::PathBuf {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Some(s) = staging_in(dir)
            .into_iter()
            .find(|s| std::fs::metadata(s.join("big")).is_ok_and(|m| m.len() > 0))
        {
            return s;
        }
        assert!(std::time::Instant::now() < deadline, "no staging appeared");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn fifo_in(dir: &Path) -> std::path::PathBuf {
    let fifo = dir.join("layer.fifo");
    common::run(std::process::Command::new("mkfifo").arg(&fifo));
    fifo
}

fn small_layer_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("small.tar");
    std::fs::write(&path, RawTar::new().file("s", 0o644, b"s").finish()).unwrap();
    path
}

/// The child of `killed_extraction_is_swept_by_the_next_one`: extracts a layer from a
/// fifo that its parent feeds, and is killed in the middle. Does nothing on its own.
#[test]
#[ignore = "run by killed_extraction_is_swept_by_the_next_one, in a child process"]
fn child_extracting_from_a_fifo() {
    let Some(dir) = std::env::var_os("SCAR_TEST_FIFO_DIR") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let result = Extractor::default()
        .extract_layer_files(&[dir.join("layer.fifo")], &dir.join("roots/child"));
    panic!("the parent should have killed this process: {result:?}");
}

/// The child test's name as the harness knows it: its path below the crate.
fn child_test_name() -> String {
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    format!("{module}::child_extracting_from_a_fifo")
}

#[test]
fn killed_extraction_is_swept_by_the_next_one() {
    use std::io::Write;
    let work = tempfile::tempdir().unwrap();
    let fifo = fifo_in(work.path());
    let roots = work.path().join("roots");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            child_test_name().as_str(),
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env("SCAR_TEST_FIFO_DIR", work.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut feed = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    feed.write_all(&big_header(64 << 20)).unwrap();
    feed.write_all(&vec![b'x'; 1 << 20]).unwrap();
    let staging = wait_for_staging(&roots);
    child.kill().unwrap(); // SIGKILL: no unwinding, no cleanup
    child.wait().unwrap();
    drop(feed);
    assert!(staging.is_dir(), "a SIGKILL cannot clean up");

    // The next extraction beside it sweeps it.
    Extractor::default()
        .extract_layer_files(&[small_layer_file(work.path())], &roots.join("next"))
        .unwrap();
    assert!(!staging.exists(), "stale staging not swept");
    let names: Vec<_> = std::fs::read_dir(&roots)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, ["next"]);
}

#[test]
fn a_live_extraction_is_never_swept() {
    use std::io::Write;
    let work = tempfile::tempdir().unwrap();
    let fifo = fifo_in(work.path());
    let roots = work.path().join("roots");
    let (fifo2, dest) = (fifo.clone(), roots.join("live"));
    let extracting =
        std::thread::spawn(move || Extractor::default().extract_layer_files(&[fifo2], &dest));
    let mut feed = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let size = 2u64 << 20;
    feed.write_all(&big_header(size)).unwrap();
    feed.write_all(&vec![b'x'; 1 << 20]).unwrap();
    let staging = wait_for_staging(&roots);

    assert_eq!(Extractor::sweep_stale_partials(&roots), 0);
    Extractor::default()
        .extract_layer_files(&[small_layer_file(work.path())], &roots.join("other"))
        .unwrap();
    assert!(staging.is_dir(), "a live extraction's staging was swept");

    feed.write_all(&vec![b'x'; 1 << 20]).unwrap();
    feed.write_all(&[0u8; 1024]).unwrap();
    drop(feed);
    extracting.join().unwrap().unwrap();
    assert_eq!(
        std::fs::metadata(roots.join("live/big")).unwrap().len(),
        size
    );
    assert!(staging_in(&roots).is_empty());
}

/// A layer stream that ends in the middle of a file: a truncation error, and the
/// staging goes.
#[test]
fn staging_is_removed_when_the_layer_ends_early() {
    let work = tempfile::tempdir().unwrap();
    let fifo = fifo_in(work.path());
    let roots = work.path().join("roots");
    let dest = roots.join("dest");
    let feeder = std::thread::spawn(move || {
        use std::io::Write;
        let mut feed = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        feed.write_all(&big_header(8 << 20)).unwrap();
        feed.write_all(&vec![b'x'; 1 << 20]).unwrap();
    });
    let err = Extractor::default()
        .extract_layer_files(&[work.path().join("layer.fifo")], &dest)
        .unwrap_err();
    feeder.join().unwrap();
    assert!(err.to_string().contains("truncated"), "{err}");
    assert_eq!(err.category(), ErrorCategory::Usage);
    assert!(staging_in(&roots).is_empty() && !dest.exists());
}

/// A panic in the middle of extraction (here: from the caller's progress reporter) still
/// removes the staging, as the stack unwinds.
#[test]
fn staging_is_removed_when_extraction_panics() {
    struct Panics;
    impl scar_packager::Progress for Panics {
        fn advance(&self, _bytes: u64) {
            panic!("progress reporter panics mid-extraction");
        }
    }
    let work = tempfile::tempdir().unwrap();
    let cache = scar_packager::BlobCache::new(work.path().join("cache"));
    let layer = RawTar::new().file("f", 0o644, b"x").finish();
    let mut w = cache.writer().unwrap();
    w.write(&layer).unwrap();
    let digest = w.commit(None, "layer").unwrap();
    let image = scar_packager::PulledImage {
        source: "test".into(),
        manifest_digest: "sha256:0".into(),
        config: Default::default(),
        architecture: "amd64".into(),
        layers: vec![scar_packager::LayerRef {
            digest,
            media_type: "application/vnd.oci.image.layer.v1.tar".into(),
            size: layer.len() as u64,
        }],
    };
    let roots = work.path().join("roots");
    let dest = roots.join("dest");
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Extractor::default().extract_image(&image, &cache, &dest, &Panics)
    }));
    assert!(caught.is_err(), "the reporter did not panic");
    assert!(staging_in(&roots).is_empty(), "{:?}", staging_in(&roots));
    assert!(!dest.exists());
}
