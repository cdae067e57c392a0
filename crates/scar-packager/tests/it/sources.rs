//! Every image source, pulled and extracted by scar, gives the same root as `umoci unpack`.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use common::*;
use scar_packager::{pull, BlobCache, Extractor, ImageSource, NoProgress, Phase, Progress};
use scar_test_support::images as common;

const TOOLS: &[&str] = &["umoci", "skopeo", "busybox"];

/// A work directory, once the tools are found; `None` (skipped loudly, a failure under
/// `CI`) without them.
fn workdir() -> Option<tempfile::TempDir> {
    require_tools(TOOLS).then(|| tempfile::tempdir().unwrap())
}

/// Three layers: a busybox root with a symlink, a hard link and a 0555 directory; then
/// deletions (whiteouts) and a replaced directory; then a hand-made layer with an opaque
/// directory whose marker comes *after* the layer's own entries in it.
fn build_layered_image(work: &Path) -> OciImage {
    let img = build_busybox_image(work);
    img.add_layer(work, |root| {
        std::fs::create_dir_all(root.join("data/old/deep")).unwrap();
        std::fs::write(root.join("data/old/a"), "a").unwrap();
        std::fs::write(root.join("data/old/deep/b"), "b").unwrap();
        std::fs::create_dir_all(root.join("data/repl/sub")).unwrap();
        std::fs::write(root.join("data/repl/x"), "x").unwrap();
        std::fs::write(root.join("data/repl/sub/z"), "z").unwrap();
        std::fs::create_dir_all(root.join("del")).unwrap();
        std::fs::write(root.join("del/me"), "bye").unwrap();
        std::fs::write(root.join("del/keep"), "stay").unwrap();
        std::fs::create_dir_all(root.join("ro")).unwrap();
        std::fs::write(root.join("ro/file"), "read only dir").unwrap();
        std::fs::set_permissions(root.join("ro"), std::fs::Permissions::from_mode(0o555)).unwrap();
        std::os::unix::fs::symlink("etc/passwd", root.join("passwd-link")).unwrap();
        std::os::unix::fs::symlink("/etc/group", root.join("group-abs-link")).unwrap();
        std::fs::hard_link(root.join("srv/hello.txt"), root.join("srv/hello-hard.txt")).unwrap();
        std::fs::write(root.join("bin/script"), "#!/bin/sh\necho hi\n").unwrap();
        std::fs::set_permissions(
            root.join("bin/script"),
            std::fs::Permissions::from_mode(0o750),
        )
        .unwrap();
    });
    img.add_layer(work, |root| {
        std::fs::remove_file(root.join("del/me")).unwrap();
        std::fs::remove_dir_all(root.join("data/old")).unwrap();
        std::fs::create_dir(root.join("data/old")).unwrap();
        std::fs::write(root.join("data/old/c"), "c").unwrap();
        std::fs::write(root.join("etc/scar-marker"), "changed in layer 3\n").unwrap();
    });
    let opaque = RawTar::new()
        .dir("data/", 0o755)
        .dir("data/repl/", 0o755)
        .file("data/repl/new.txt", 0o644, b"new in the opaque layer")
        .dir("data/repl/sub/", 0o700)
        .file("data/repl/sub/fresh", 0o600, b"fresh")
        .file("data/repl/.wh..wh..opq", 0o644, b"")
        .finish();
    img.append_raw_layer(&opaque);
    img
}

async fn pull_and_compare(source: &ImageSource, expected: &Path, work: &Path, name: &str) {
    let cache = BlobCache::new(work.join(format!("cache-{name}")));
    let image = pull(source, &cache, &NoProgress)
        .await
        .unwrap_or_else(|e| panic!("pull {name}: {e:?}"));
    assert_eq!(image.layers.len(), 4, "{name}");
    assert_eq!(image.config.entrypoint, ["/bin/sh", "-c"], "{name}");
    assert_eq!(image.config.cmd, ["echo hello"], "{name}");
    assert!(
        image.config.env.contains(&"GREETING=hello".to_string()),
        "{name}"
    );
    assert_eq!(image.config.working_dir.as_deref(), Some("/srv"), "{name}");
    assert_eq!(image.architecture, scar_packager::host_architecture());
    for l in &image.layers {
        assert!(cache.contains(&l.digest), "{name}: {} not cached", l.digest);
    }
    let dest = work.join(format!("root-{name}"));
    let report = Extractor::default()
        .extract_image(&image, &cache, &dest, &NoProgress)
        .unwrap();
    assert!(report.warnings.is_empty(), "{name}: {:?}", report.warnings);
    assert_same_tree(expected, &dest);
    // The hard link is a hard link, not a copy.
    let a = std::fs::metadata(dest.join("srv/hello.txt")).unwrap();
    let b = std::fs::metadata(dest.join("srv/hello-hard.txt")).unwrap();
    assert_eq!(a.ino(), b.ino(), "{name}: hard link lost");
    assert_eq!(
        std::fs::read_dir(&dest).unwrap().count(),
        std::fs::read_dir(expected).unwrap().count()
    );
    let leftovers: Vec<_> = std::fs::read_dir(work)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".partial-"))
        .collect();
    assert!(leftovers.is_empty(), "partial dirs left: {leftovers:?}");
    // Read-only dirs must not stop the cleanup of a test either.
    crate::make_writable(&dest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_source_extracts_like_umoci() {
    let Some(tmp) = workdir() else {
        return;
    };
    let work = tmp.path();
    let img = build_layered_image(work);
    let expected = img.unpack(&work.join("expected"));
    // The opaque layer really hid the lower contents (umoci agrees with the spec).
    assert!(!expected.join("data/repl/x").exists());
    assert!(!expected.join("data/repl/sub/z").exists());
    assert!(expected.join("data/repl/new.txt").exists());
    assert!(!expected.join("data/old/a").exists() && expected.join("data/old/c").exists());

    let layout = ImageSource::detect(&format!("{}:latest", img.layout.display())).unwrap();
    assert!(matches!(
        layout,
        ImageSource::OciLayout { tag: Some(_), .. }
    ));
    pull_and_compare(&layout, &expected, work, "layout").await;

    let docker_tar = work.join("docker.tar");
    img.docker_archive(&docker_tar);
    let src = ImageSource::from_archive(&docker_tar).unwrap();
    assert!(matches!(src, ImageSource::DockerArchive(_)), "{src:?}");
    pull_and_compare(&src, &expected, work, "docker-archive").await;

    let oci_tar = work.join("oci.tar");
    img.oci_archive(&oci_tar);
    let src = ImageSource::detect(oci_tar.to_str().unwrap()).unwrap();
    assert!(matches!(src, ImageSource::OciArchive(_)), "{src:?}");
    pull_and_compare(&src, &expected, work, "oci-archive").await;

    if !require_tools(&["docker-registry"]) {
        return;
    }
    let registry = TestRegistry::start();
    let oci_ref = img.push(&registry, "test/img:latest", false);
    let src = ImageSource::detect(&oci_ref).unwrap();
    pull_and_compare(&src, &expected, work, "registry-oci").await;
    let v2s2_ref = img.push(&registry, "test/img-v2s2:latest", true);
    pull_and_compare(
        &ImageSource::detect(&v2s2_ref).unwrap(),
        &expected,
        work,
        "registry-v2s2",
    )
    .await;
    crate::make_writable(work);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_index_resolves_to_host_architecture() {
    let Some(tmp) = workdir() else {
        return;
    };
    let work = tmp.path();
    let host = scar_packager::host_architecture();
    let other = if host == "arm64" { "amd64" } else { "arm64" };
    let layout = work.join("oci");
    let mut images = Vec::new();
    for arch in [other, host] {
        let img = OciImage::create(&layout, arch);
        img.add_layer(work, |root| {
            std::fs::create_dir_all(root.join("etc")).unwrap();
            std::fs::write(root.join("etc/arch"), arch).unwrap();
        });
        img.config(&["--os=linux", &format!("--architecture={arch}")]);
        images.push(img);
    }
    let multi = OciImage::make_index(&layout, "multi", &images);
    let host_manifest = images[1].manifest_digest();

    let cache = BlobCache::new(work.join("cache"));
    let src = ImageSource::OciLayout {
        path: layout.clone(),
        tag: Some("multi".into()),
    };
    let image = pull(&src, &cache, &NoProgress).await.unwrap();
    assert_eq!(image.architecture, host);
    assert_eq!(image.manifest_digest, host_manifest);
    let dest = work.join("root");
    Extractor::default()
        .extract_image(&image, &cache, &dest, &NoProgress)
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(dest.join("etc/arch")).unwrap(),
        host
    );

    if !require_tools(&["docker-registry"]) {
        return;
    }
    let registry = TestRegistry::start();
    let reference = format!("{}/test/multi:latest", registry.addr);
    multi.copy_to(
        &format!("docker://{reference}"),
        &["--dest-tls-verify=false", "--all"],
    );
    let cache = BlobCache::new(work.join("cache2"));
    let source = ImageSource::detect(&reference).unwrap();
    let image = pull(&source, &cache, &NoProgress).await.unwrap();
    assert_eq!(image.architecture, host);
    assert_eq!(image.manifest_digest, host_manifest);
}

/// Counts what a pull fetched.
#[derive(Default)]
struct Counter {
    bytes: AtomicU64,
    fetched: Mutex<Vec<String>>,
    cached: Mutex<Vec<String>>,
    phases: Mutex<Vec<Phase>>,
}

impl Progress for Counter {
    fn start(&self, phase: Phase, _total: Option<u64>) {
        self.phases.lock().unwrap().push(phase);
    }
    fn advance(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    fn blob(&self, digest: &str, cached: bool) {
        let list = if cached { &self.cached } else { &self.fetched };
        list.lock().unwrap().push(digest.to_string());
    }
}

fn cache_state(cache: &Path) -> Vec<(String, i64)> {
    let mut v: Vec<_> = std::fs::read_dir(cache.join("blobs/sha256"))
        .unwrap()
        .flatten()
        .map(|e| {
            let m = e.metadata().unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                m.mtime_nsec() + m.mtime() * 1_000_000_000,
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_pull_fetches_nothing() {
    if !require_tools(&["umoci", "skopeo", "busybox", "docker-registry"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let img = build_busybox_image(work);
    let registry = TestRegistry::start();
    let reference = img.push(&registry, "test/cached:latest", false);
    let src = ImageSource::detect(&reference).unwrap();
    let cache = BlobCache::new(work.join("cache"));

    let first = Counter::default();
    let a = pull(&src, &cache, &first).await.unwrap();
    assert!(first.bytes.load(Ordering::Relaxed) > 1_000_000);
    assert_eq!(first.fetched.lock().unwrap().len(), 2); // config + layer
    assert_eq!(first.phases.lock().unwrap().as_slice(), [Phase::Pull]);
    let before = cache_state(&work.join("cache"));

    let second = Counter::default();
    let b = pull(&src, &cache, &second).await.unwrap();
    assert_eq!(a, b);
    assert_eq!(
        second.bytes.load(Ordering::Relaxed),
        0,
        "second pull downloaded bytes"
    );
    assert!(second.fetched.lock().unwrap().is_empty());
    assert_eq!(second.cached.lock().unwrap().len(), 2);
    assert_eq!(
        before,
        cache_state(&work.join("cache")),
        "cache files were rewritten"
    );

    // A layout pull of the same image shares the blobs too.
    let third = Counter::default();
    pull(
        &ImageSource::detect(img.layout.to_str().unwrap()).unwrap(),
        &cache,
        &third,
    )
    .await
    .unwrap();
    assert_eq!(third.bytes.load(Ordering::Relaxed), 0);
    assert!(third.fetched.lock().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(work.join("cache/tmp")).unwrap().count(),
        0
    );
}

/// The fixtures label test images with their own copy of the architecture mapping (they may
/// not depend on scar-packager): it must be scar's, or every image would be "for another
/// platform".
#[test]
fn fixture_images_carry_scars_host_architecture() {
    assert_eq!(
        common::host_architecture(),
        scar_packager::host_architecture()
    );
}
