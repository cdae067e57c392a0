//! Bad input gives clear Usage errors and leaves nothing behind.

use std::io::Read;
use std::path::Path;

use common::*;
use scar_core::ErrorCategory;
use scar_packager::{pull, BlobCache, Extractor, ImageSource, NoProgress, PackagerError};
use scar_test_support::images as common;

fn assert_usage(err: &PackagerError, needles: &[&str]) {
    assert_eq!(err.category(), ErrorCategory::Usage, "{err:?}");
    let msg = err.to_string();
    eprintln!("error: {msg}");
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        eprintln!("  caused by: {s}");
        source = s.source();
    }
    for n in needles {
        assert!(msg.contains(n), "`{msg}` does not mention `{n}`");
    }
}

/// The error of a pull that must fail as a usage error mentioning `needles`.
async fn refused_pull(source: &ImageSource, cache: &BlobCache, needles: &[&str]) -> PackagerError {
    let err = pull(source, cache, &NoProgress)
        .await
        .expect_err("a bad source was pulled");
    assert_usage(&err, needles);
    err
}

/// No temporary files in the cache and no partial directories next to `dest`.
fn no_leftovers(cache: &Path, dest_parent: &Path) {
    if let Ok(rd) = std::fs::read_dir(cache.join("tmp")) {
        assert_eq!(rd.count(), 0, "temporary files left in the cache");
    }
    if let Ok(rd) = std::fs::read_dir(dest_parent) {
        let partial: Vec<_> = rd
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".partial-"))
            .collect();
        assert!(partial.is_empty(), "{partial:?}");
    }
}

#[test]
fn files_that_are_not_images() {
    let tmp = tempfile::tempdir().unwrap();
    let random = tmp.path().join("random.bin");
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&random, bytes).unwrap();
    let err = ImageSource::from_archive(&random).unwrap_err();
    assert_usage(&err, &["random.bin", "is not an image archive"]);

    let plain = tmp.path().join("foo.tar");
    let tar = RawTar::new().file("hello.txt", 0o644, b"hi").finish();
    std::fs::write(&plain, tar).unwrap();
    let err = ImageSource::detect(plain.to_str().unwrap()).unwrap_err();
    assert_usage(
        &err,
        &["`", "foo.tar` is not an image archive: it has neither manifest.json (docker save) nor index.json (OCI)"],
    );

    let err = ImageSource::detect(tmp.path().join("missing.tar").to_str().unwrap()).unwrap_err();
    assert_usage(&err, &["missing.tar", "does not exist"]);

    let empty_dir = tmp.path().join("not-a-layout");
    std::fs::create_dir(&empty_dir).unwrap();
    let err = ImageSource::detect(empty_dir.to_str().unwrap()).unwrap_err();
    assert_usage(&err, &["not-a-layout", "index.json"]);

    let err = ImageSource::detect("Not A Reference!").unwrap_err();
    assert_usage(&err, &["not a valid image reference"]);
}

/// A copy of a docker archive with one byte of its biggest layer flipped.
fn tamper(src: &Path, dest: &Path) {
    let mut archive = tar::Archive::new(std::fs::File::open(src).unwrap());
    let mut out = tar::Builder::new(std::fs::File::create(dest).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if header.entry_type() == tar::EntryType::Regular && data.len() > 1_000_000 {
            let mid = data.len() / 2;
            data[mid] ^= 0xff;
        }
        out.append(&header, &data[..]).unwrap();
    }
    out.finish().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_and_tampered_archives() {
    if !require_tools(&["umoci", "skopeo", "busybox"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let img = build_busybox_image(work);
    let docker = work.join("docker.tar");
    img.docker_archive(&docker);
    let oci = work.join("oci.tar");
    img.oci_archive(&oci);
    let cache_dir = work.join("cache");
    let cache = BlobCache::new(&cache_dir);

    for (name, src) in [("docker", &docker), ("oci", &oci)] {
        let bytes = std::fs::read(src).unwrap();
        let cut = work.join(format!("{name}-truncated.tar"));
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let kind = if name == "docker" {
            ImageSource::DockerArchive(cut.clone())
        } else {
            ImageSource::OciArchive(cut.clone())
        };
        refused_pull(&kind, &cache, &[&format!("{name}-truncated.tar")]).await;
        no_leftovers(&cache_dir, work);
        // Nothing of the failed pull stays in the cache.
        let blobs = std::fs::read_dir(cache_dir.join("blobs/sha256"))
            .map(|r| r.count())
            .unwrap_or(0);
        assert_eq!(blobs, 0, "{name}: blobs of a failed pull left in the cache");
    }

    let bad = work.join("tampered.tar");
    tamper(&docker, &bad);
    let says = ["tampered.tar", "expected digest sha256:", "got sha256:"];
    let err = refused_pull(&ImageSource::from_archive(&bad).unwrap(), &cache, &says).await;
    assert!(
        matches!(err, PackagerError::DigestMismatch { .. }),
        "{err:?}"
    );
    no_leftovers(&cache_dir, work);

    // A good pull, then a cache that loses or corrupts a layer: extraction fails cleanly.
    let image = pull(&ImageSource::OciArchive(oci.clone()), &cache, &NoProgress)
        .await
        .unwrap();
    let layer = cache.path(&image.layers[0].digest);
    let good = std::fs::read(&layer).unwrap();
    let mut corrupt = good.clone();
    let n = corrupt.len();
    corrupt[n - 10] ^= 0x55;
    std::fs::write(&layer, &corrupt).unwrap();
    let dest = work.join("roots/fn");
    let extract = || Extractor::default().extract_image(&image, &cache, &dest, &NoProgress);
    let err = extract().unwrap_err();
    assert!(
        !dest.exists(),
        "destination created despite the error: {err}"
    );
    no_leftovers(&cache_dir, &work.join("roots"));
    std::fs::remove_file(&layer).unwrap();
    let err = extract().unwrap_err();
    assert!(matches!(err, PackagerError::MissingBlob { .. }), "{err:?}");
    assert!(!dest.exists());
    std::fs::write(&layer, &good).unwrap();
    extract().unwrap();
    assert!(dest.join("bin/busybox").is_file());
    let err = extract().unwrap_err();
    assert!(
        matches!(err, PackagerError::DestinationExists { .. }),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_registry_and_unknown_tag() {
    let tmp = tempfile::tempdir().unwrap();
    let cache_dir = tmp.path().join("cache");
    let cache = BlobCache::new(&cache_dir);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let reference = format!("127.0.0.1:{port}/test/img:latest");
    let says = [&format!("127.0.0.1:{port}"), "cannot reach registry"];
    let err = refused_pull(&ImageSource::detect(&reference).unwrap(), &cache, &says).await;
    assert!(
        matches!(err, PackagerError::RegistryUnreachable { .. }),
        "{err:?}"
    );
    no_leftovers(&cache_dir, tmp.path());

    if !require_tools(&["umoci", "skopeo", "busybox", "docker-registry"]) {
        return;
    }
    let img = build_busybox_image(tmp.path());
    let registry = TestRegistry::start();
    img.push(&registry, "test/img:latest", false);
    for missing in ["test/img:nosuch", "test/nothere:latest"] {
        let reference = format!("{}/{missing}", registry.addr);
        let err = refused_pull(
            &ImageSource::detect(&reference).unwrap(),
            &cache,
            &[missing],
        )
        .await;
        assert!(
            matches!(err, PackagerError::ImageNotFound { .. }),
            "{err:?}"
        );
    }
    no_leftovers(&cache_dir, tmp.path());
}
