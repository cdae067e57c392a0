//! Hostile layers: nothing may be written outside the root, whatever the layer says.

mod common;

use std::path::Path;

use common::{snapshot, RawTar};
use scar_packager::{extract_layer, ExtractReport};

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
    let mut report = ExtractReport::default();
    extract_layer(&layer[..], &root, &mut report).unwrap();

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
    let mut report = ExtractReport::default();
    extract_layer(&layer[..], &root, &mut report).unwrap();
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
    let mut report = ExtractReport::default();
    extract_layer(&lower[..], &root, &mut report).unwrap();
    extract_layer(&gone[..], &root, &mut report).unwrap();
    extract_layer(&upper[..], &root, &mut report).unwrap();
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
    let mut report = ExtractReport::default();
    extract_layer(&lower[..], &root, &mut report).unwrap();
    extract_layer(&upper[..], &root, &mut report).unwrap();
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
    let _ = std::process::Command::new("chmod")
        .arg("-R")
        .arg("u+w")
        .arg(&root)
        .status();
}

#[test]
fn zstd_layers_are_refused_clearly() {
    let (_sentinel, root) = sandbox();
    let mut report = ExtractReport::default();
    let err = extract_layer(&[0x28u8, 0xb5, 0x2f, 0xfd, 0, 0][..], &root, &mut report).unwrap_err();
    assert!(err.to_string().contains("zstd"), "{err}");
    assert_eq!(err.category(), scar_core::ErrorCategory::Usage);
}
