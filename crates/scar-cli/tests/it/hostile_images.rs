//! `scar init -if` on hostile and malformed images: the right exit status, a summary of
//! what extraction dropped, nothing left behind, and no panic.

use std::path::{Path, PathBuf};

use images::{
    build_busybox_image, layer_with_bad_checksum, layer_with_garbage_size, layer_with_long_name,
    layer_with_negative_size, layer_with_unknown_sparse, raw_entry, require_tools, tar_of,
    OciImage, RawTar,
};
use scar_test_support::images;
use scar_test_support::scar as support;
use support::Scar;

const TOOLS: &[&str] = &["umoci", "skopeo", "busybox"];

/// A busybox image with `layer` (an uncompressed tar, gzipped on the way) on top, as a
/// docker-archive.
fn archive_with(base: &OciImage, work: &Path, name: &str, layer: &[u8]) -> PathBuf {
    let layout = work.join(format!("layout-{name}"));
    images::run(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(&base.layout)
            .arg(&layout),
    );
    let image = OciImage {
        layout,
        tag: base.tag.clone(),
    };
    image.append_raw_layer(layer);
    let archive = work.join(format!("{name}.tar"));
    image.docker_archive(&archive);
    archive
}

fn setup() -> Option<(Scar, tempfile::TempDir, OciImage)> {
    if !require_tools(TOOLS) {
        return None;
    }
    let scar = Scar::new(env!("CARGO_BIN_EXE_scar"))?;
    let work = tempfile::tempdir().unwrap();
    let base = build_busybox_image(work.path());
    Some((scar, work, base))
}

/// No root, no staging, no function: what a failed init must leave.
#[track_caller]
fn nothing_left(scar: &Scar) {
    let state = scar.state();
    let bad: Vec<_> = state
        .iter()
        .filter(|p| p.starts_with("cache/roots/") || p.starts_with("functions/"))
        .collect();
    assert!(bad.is_empty(), "left behind: {bad:?}");
}

#[test]
fn malformed_layers_exit_2_and_leave_nothing() {
    let Some((scar, work, base)) = setup() else {
        return;
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("bad-checksum", layer_with_bad_checksum(), "checksum"),
        (
            "garbage-size",
            layer_with_garbage_size(),
            "not a valid layer",
        ),
        ("negative-size", layer_with_negative_size(), "layer"),
        ("long-name", layer_with_long_name(), "at most 255 bytes"),
        (
            "unknown-sparse",
            layer_with_unknown_sparse(),
            "unknown format",
        ),
    ];
    for (name, layer, needle) in cases {
        let archive = archive_with(&base, work.path(), name, &layer);
        let run = scar.init_from("f", &archive, &[]);
        assert_eq!(run.status, 2, "{name}: {run:#?}");
        assert!(run.stderr.contains(needle), "{name}: {}", run.stderr);
        nothing_left(&scar);
    }
}

/// Regression: a base-256 mtime of -1 made `scar init` panic (exit 101) and leave its
/// staging directory behind.
#[test]
fn an_mtime_past_any_clock_is_not_a_panic() {
    let Some((scar, work, base)) = setup() else {
        return;
    };
    let layer = tar_of(&[raw_entry(
        "f",
        tar::EntryType::Regular,
        b"data",
        |h| h.as_old_mut().mtime = [0xff; 12],
        false,
    )]);
    let archive = archive_with(&base, work.path(), "mtime", &layer);
    scar.init_from("f", &archive, &[]).ok();
}

#[test]
fn hostile_entries_are_summed_up_listed_on_request_and_refused_when_strict() {
    let Some((scar, work, base)) = setup() else {
        return;
    };
    let layer = RawTar::new()
        .file("../escape", 0o644, b"x")
        .hardlink("hl-out", "../../outside")
        .special("null", tar::EntryType::Char)
        .finish();
    let archive = archive_with(&base, work.path(), "hostile", &layer);

    let strict = scar.init_from("s", &archive, &["--strict"]);
    assert_eq!(strict.status, 2, "{strict:#?}");
    assert!(strict.stderr.contains("../escape") && strict.stderr.contains("--strict"));
    nothing_left(&scar);

    let run = scar.init_from("f", &archive, &[]).ok();
    assert!(
        run.stderr
            .contains("warning: extraction dropped or changed 3 entries of the image: 2 hostile")
            && run.stderr.contains("(-v lists them)"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("`../escape`"), "{}", run.stderr);

    // Another image (another root to extract), with -v: every entry is listed.
    let layer = RawTar::new()
        .file("../escape", 0o644, b"x")
        .hardlink("hl-out", "../../outside")
        .special("null", tar::EntryType::Char)
        .file("distinct", 0o644, b"another image")
        .finish();
    let archive = archive_with(&base, work.path(), "hostile-v", &layer);
    let run = scar.init_from("g", &archive, &["-v"]).ok();
    for needle in ["`../escape`", "`hl-out`", "`null`", "3 entries"] {
        assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
    }
    assert!(!run.stderr.contains("(-v lists them)"), "{}", run.stderr);
}

#[test]
fn a_bomb_is_refused_at_the_limit_with_how_to_raise_it() {
    let Some((scar, work, base)) = setup() else {
        return;
    };
    let mut layer = Vec::new();
    let mut h = tar::Header::new_gnu();
    h.set_path("big").unwrap();
    h.set_size(32 << 20);
    h.set_mode(0o644);
    h.set_cksum();
    layer.extend_from_slice(h.as_bytes());
    layer.resize(512 + (32 << 20) + 1024, b'a');
    layer[512 + (32 << 20)..].fill(0);
    let archive = archive_with(&base, work.path(), "bomb", &layer);
    let out = scar
        .command()
        .env("SCAR_MAX_IMAGE_MB", "16")
        .args(["init", "-n", "f", "-if", archive.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for needle in ["16 MB", "SCAR_MAX_IMAGE_MB"] {
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
    nothing_left(&scar);
}
