//! Lambda's packages, checked with the real tools that consume them: an `image`
//! package pushed to a registry is read back by skopeo and unpacked by umoci; its OCI
//! archive is read by skopeo and by scar; a `zip` package's udocker tree is run by udocker.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use common::*;
use scar_core::event::FunctionFile;
use scar_packager::{
    build_image_package, build_zip_package, pull, push_image, write_oci_archive, BlobCache,
    Extractor, ImageSource, ManifestFormat, NoProgress, PackagerError, Phase, Progress,
    PulledImage, ZipOptions, DIRECT_UPLOAD_LIMIT, UNZIPPED_LIMIT,
};
use scar_test_support::images as common;

/// Records phases and blobs.
#[derive(Default)]
struct Record {
    phases: Mutex<Vec<Phase>>,
    blobs: Mutex<Vec<(String, bool)>>,
}

impl Progress for Record {
    fn start(&self, phase: Phase, _total: Option<u64>) {
        self.phases.lock().unwrap().push(phase);
    }
    fn blob(&self, digest: &str, cached: bool) {
        self.blobs
            .lock()
            .unwrap()
            .push((digest.to_string(), cached));
    }
}

fn function() -> FunctionFile {
    FunctionFile {
        name: "scar-fn".into(),
        timeout_s: 300,
        timeout_threshold_s: 10,
        init_script: Some("echo from the init script\n".into()),
        ..Default::default()
    }
}

/// Any file does as the supervisor for packaging: udocker runs the image's command.
fn supervisor(work: &Path) -> PathBuf {
    let path = work.join("bootstrap");
    std::fs::copy(which("busybox").unwrap(), &path).unwrap();
    path
}

async fn pulled(work: &Path) -> (OciImage, BlobCache, PulledImage) {
    let img = build_busybox_image(work);
    let cache = BlobCache::new(work.join("cache"));
    let source = ImageSource::OciLayout {
        path: img.layout.clone(),
        tag: Some(img.tag.clone()),
    };
    let image = pull(&source, &cache, &NoProgress).await.unwrap();
    (img, cache, image)
}

fn skopeo_config(transport: &str) -> serde_json::Value {
    let out =
        run(Command::new("skopeo").args(["inspect", "--tls-verify=false", "--config", transport]));
    serde_json::from_str(&out).unwrap()
}

/// The manifest of `docker://reference`, raw, as skopeo reads it.
fn skopeo_manifest(reference: &str) -> serde_json::Value {
    let transport = format!("docker://{reference}");
    let out =
        run(Command::new("skopeo").args(["inspect", "--tls-verify=false", "--raw", &transport]));
    serde_json::from_str(&out).unwrap()
}

/// The image at `docker://reference`, copied by skopeo into the layout `<work>/<name>` and
/// unpacked there by umoci: its root.
fn unpacked_from_registry(reference: &str, work: &Path, name: &str) -> PathBuf {
    let layout = work.join(name);
    run(Command::new("skopeo").args([
        "--insecure-policy",
        "copy",
        "-q",
        "--src-tls-verify=false",
        &format!("docker://{reference}"),
        &format!("oci:{}:{name}", layout.display()),
    ]));
    let image = OciImage {
        layout,
        tag: name.into(),
    };
    image.unpack(&work.join(format!("{name}-bundle")))
}

fn check_config(config: &serde_json::Value) {
    let c = &config["config"];
    assert_eq!(c["Entrypoint"], serde_json::json!(["/opt/scar/bootstrap"]));
    assert!(c.get("Cmd").is_none() || c["Cmd"].is_null(), "{c}");
    assert_eq!(c["WorkingDir"], "/srv");
    assert!(c["Env"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("GREETING=hello")));
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
}

/// The function file records the image's own command for the supervisor.
fn check_function_json(bytes: &[u8]) {
    let f: FunctionFile = serde_json::from_slice(bytes).unwrap();
    assert_eq!(f.name, "scar-fn");
    assert_eq!(
        f.init_script.as_deref(),
        Some("echo from the init script\n")
    );
    assert_eq!(f.image.entrypoint, ["/bin/sh", "-c"]);
    assert_eq!(f.image.cmd, ["echo hello"]);
    assert_eq!(f.image.working_dir.as_deref(), Some("/srv"));
}

#[tokio::test(flavor = "multi_thread")]
async fn image_package_pushed_to_a_registry_reads_back_with_skopeo_and_umoci() {
    if !require_tools(&["umoci", "skopeo", "busybox", "docker-registry"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (_img, cache, image) = pulled(work.path()).await;
    let bootstrap = supervisor(work.path());
    let record = Record::default();
    let pkg = build_image_package(&image, &cache, &function(), &bootstrap, &record)
        .await
        .unwrap();
    assert_eq!(pkg.layers.len(), 2);
    assert_eq!(pkg.function.image, image.config);
    // Deterministic: the same inputs give the same blobs.
    let again = build_image_package(&image, &cache, &function(), &bootstrap, &NoProgress)
        .await
        .unwrap();
    assert_eq!(again, pkg);
    assert!(record.phases.lock().unwrap().contains(&Phase::Package));

    let registry = TestRegistry::start();
    let reference = format!("{}/scar-fn:latest", registry.addr);
    let record = Record::default();
    let report = push_image(&pkg, &cache, &reference, None, ManifestFormat::Oci, &record)
        .await
        .unwrap();
    assert_eq!(report.pushed.len(), 3, "{report:?}");
    assert!(report.skipped.is_empty());
    assert!(record.phases.lock().unwrap().contains(&Phase::Push));

    let config = skopeo_config(&format!("docker://{reference}"));
    check_config(&config);

    // Unpacked by umoci: the supervisor, the function file and the base files are there.
    let rootfs = unpacked_from_registry(&reference, work.path(), "pushed");
    let bin = rootfs.join("opt/scar/bootstrap");
    assert_eq!(
        std::fs::read(&bin).unwrap(),
        std::fs::read(&bootstrap).unwrap()
    );
    assert_eq!(
        std::fs::metadata(&bin).unwrap().permissions().mode() & 0o777,
        0o755
    );
    check_function_json(&std::fs::read(rootfs.join("opt/scar/function.json")).unwrap());
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/scar-marker")).unwrap(),
        "scar test image\n"
    );
    assert!(rootfs.join("bin/busybox").is_file());

    // Pushed again: nothing is uploaded.
    let record = Record::default();
    let second = push_image(&pkg, &cache, &reference, None, ManifestFormat::Oci, &record)
        .await
        .unwrap();
    assert!(second.pushed.is_empty(), "{second:?}");
    assert_eq!(second.skipped.len(), 3);
    assert_eq!(second.pushed_bytes, 0);
    assert!(record
        .blobs
        .lock()
        .unwrap()
        .iter()
        .all(|(_, cached)| *cached));
    assert_eq!(second.manifest_digest, report.manifest_digest);

    // The Docker schema 2 variant, read back by skopeo, with basic credentials given
    // (the registry has no auth: they are simply sent).
    let v2 = format!("{}/scar-fn:v2s2", registry.addr);
    push_image(
        &pkg,
        &cache,
        &v2,
        Some(("AWS".into(), "token".into())),
        ManifestFormat::Docker,
        &NoProgress,
    )
    .await
    .unwrap();
    let raw = skopeo_manifest(&v2);
    assert_eq!(
        raw["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        raw["config"]["mediaType"],
        "application/vnd.docker.container.image.v1+json"
    );
    check_config(&skopeo_config(&format!("docker://{v2}")));
}

/// A `docker save` archive's layers are uncompressed; what goes to the registry is gzipped
/// (under new digests, same diff_ids), and reads back the same with skopeo and umoci.
#[tokio::test(flavor = "multi_thread")]
async fn raw_layers_are_pushed_gzipped() {
    if !require_tools(&["umoci", "skopeo", "busybox", "docker-registry"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let img = build_busybox_image(work.path());
    let archive = work.path().join("saved.tar");
    img.docker_archive(&archive);
    let cache = BlobCache::new(work.path().join("cache"));
    let source = ImageSource::from_archive(&archive).unwrap();
    let image = pull(&source, &cache, &NoProgress).await.unwrap();
    let raw = &image.layers[0];
    assert!(!std::fs::read(cache.path(&raw.digest))
        .unwrap()
        .starts_with(&[0x1f, 0x8b]));
    let bootstrap = supervisor(work.path());
    let pkg = build_image_package(&image, &cache, &function(), &bootstrap, &NoProgress)
        .await
        .unwrap();
    let registry = TestRegistry::start();
    let reference = format!("{}/saved:latest", registry.addr);
    let record = Record::default();
    let report = push_image(&pkg, &cache, &reference, None, ManifestFormat::Oci, &record)
        .await
        .unwrap();
    assert!(record.phases.lock().unwrap().contains(&Phase::Compress));
    assert!(!report.pushed.contains(&raw.digest), "{report:?}");
    let manifest = skopeo_manifest(&reference);
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    for l in layers {
        assert_eq!(
            l["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip",
            "{manifest}"
        );
    }
    // The base layer's gzip is in the cache under the pushed digest, and decompresses to
    // the raw layer (its diff_id in the config, unchanged).
    let gz = layers[0]["digest"].as_str().unwrap();
    let mut unpacked = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::MultiGzDecoder::new(std::fs::File::open(cache.path(gz)).unwrap()),
        &mut unpacked,
    )
    .unwrap();
    assert_eq!(unpacked, std::fs::read(cache.path(&raw.digest)).unwrap());
    let config = skopeo_config(&format!("docker://{reference}"));
    check_config(&config);
    assert_eq!(config["rootfs"]["diff_ids"][0], raw.digest.as_str());

    let rootfs = unpacked_from_registry(&reference, work.path(), "pulled");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/scar-marker")).unwrap(),
        "scar test image\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn oci_archive_is_read_by_skopeo_and_by_scar() {
    if !require_tools(&["umoci", "skopeo", "busybox"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (_img, cache, image) = pulled(work.path()).await;
    let bootstrap = supervisor(work.path());
    let pkg = build_image_package(&image, &cache, &function(), &bootstrap, &NoProgress)
        .await
        .unwrap();
    let archive = work.path().join("out/scar-fn.tar");
    let digest = write_oci_archive(&pkg, &cache, &archive, "scar-fn:latest", &NoProgress)
        .await
        .unwrap();
    let again = work.path().join("again.tar");
    write_oci_archive(&pkg, &cache, &again, "scar-fn:latest", &NoProgress)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(&archive).unwrap(),
        std::fs::read(&again).unwrap()
    );

    check_config(&skopeo_config(&format!(
        "oci-archive:{}",
        archive.display()
    )));
    let inspect = run(
        Command::new("skopeo").args(["inspect", &format!("oci-archive:{}", archive.display())])
    );
    let inspect: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(inspect["Digest"], digest.as_str());

    // Read back by scar itself, into a fresh cache.
    let cache2 = BlobCache::new(work.path().join("cache2"));
    let source = ImageSource::from_archive(&archive).unwrap();
    assert!(matches!(source, ImageSource::OciArchive(_)));
    let back = pull(&source, &cache2, &NoProgress).await.unwrap();
    assert_eq!(back.manifest_digest, digest);
    assert_eq!(back.config.entrypoint, ["/opt/scar/bootstrap"]);
    assert!(back.config.cmd.is_empty());
    assert_eq!(back.config.working_dir.as_deref(), Some("/srv"));
    let root = work.path().join("root");
    Extractor::default()
        .extract_image(&back, &cache2, &root, &NoProgress)
        .unwrap();
    assert_eq!(
        std::fs::read(root.join("opt/scar/bootstrap")).unwrap(),
        std::fs::read(&bootstrap).unwrap()
    );
    check_function_json(&std::fs::read(root.join("opt/scar/function.json")).unwrap());
}

const UDOCKER_TOOLS: &[&str] = &[
    "umoci", "skopeo", "busybox", "udocker", "proot", "unzip", "bash",
];

#[tokio::test(flavor = "multi_thread")]
async fn zip_package_runs_in_real_udocker() {
    if !require_tools(UDOCKER_TOOLS) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (img, cache, image) = pulled(work.path()).await;
    let wrapper = proot_wrapper(work.path());
    let zips = Zips::of(&image, &cache, work.path());
    let zip = work.path().join("fn.zip");
    let report = zips
        .build("fn.zip", &ZipOptions::new("scar-fn"))
        .await
        .unwrap();
    assert!(report.includes_root, "{report:?}");
    assert!(!report.needs_deployment_bucket);
    assert_eq!(report.zip_size, std::fs::metadata(&zip).unwrap().len());
    assert!(report.unzipped_size > report.zip_size);
    let id = report.container_id.clone().unwrap();

    let out = work.path().join("unzipped");
    unzip(&zip, &out);
    let mode = std::fs::metadata(out.join("bootstrap"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    check_function_json(&std::fs::read(out.join("function.json")).unwrap());
    // Symlinks in the root stay links (an absolute one is not followed into the host).
    let root = out.join("udocker/containers").join(&id).join("ROOT");
    assert_eq!(
        std::fs::read_link(root.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert_eq!(
        std::fs::read_link(out.join("udocker/containers/scar-fn")).unwrap(),
        Path::new(&id)
    );

    // udocker runs the named container: the image's files, and the image's command.
    let ud = out.join("udocker");
    let cat = udocker(
        &ud,
        &wrapper,
        &[
            "run",
            "--entrypoint=",
            "scar-fn",
            "/bin/cat",
            "/etc/scar-marker",
        ],
    );
    assert!(cat.contains("scar test image"), "{cat}");
    let own = udocker(&ud, &wrapper, &["run", "scar-fn"]);
    assert!(own.contains("hello"), "{own}");
    let verify = udocker(&ud, &wrapper, &["verify", "scar-fn:latest"]);
    assert!(verify.contains("image Ok") || verify.is_empty(), "{verify}");

    // The image part mirrors what `udocker load` writes for the same image.
    let archive = work.path().join("img.tar");
    img.copy_to(&format!("oci-archive:{}:latest", archive.display()), &[]);
    let loaded = work.path().join("loaded");
    udocker(
        &loaded,
        &wrapper,
        &["load", "-i", archive.to_str().unwrap(), "scar-fn"],
    );
    let theirs = snapshot(&loaded.join("repos"));
    let ours = snapshot(&ud.join("repos"));
    assert_eq!(
        theirs.keys().collect::<Vec<_>>(),
        ours.keys().collect::<Vec<_>>()
    );
    for (path, node) in &theirs {
        if path.ends_with("TAG") {
            continue; // holds the absolute path of the udocker directory
        }
        assert_eq!(Some(node), ours.get(path), "{}", path.display());
    }
    assert_eq!(
        std::fs::read_to_string(ud.join("repos/scar-fn/latest/TAG")).unwrap(),
        "/var/task/udocker/repos/scar-fn:latest"
    );
    let layers = |d: &Path| {
        let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(d.join("layers"))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(layers(&loaded), layers(&ud));
}

#[tokio::test(flavor = "multi_thread")]
async fn layers_only_zip_is_created_and_run_by_udocker() {
    if !require_tools(UDOCKER_TOOLS) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (_img, cache, image) = pulled(work.path()).await;
    let wrapper = proot_wrapper(work.path());
    let zips = Zips::of(&image, &cache, work.path());
    let zip = work.path().join("fn.zip");
    let options = ZipOptions {
        include_root: false,
        ..ZipOptions::new("scar-fn")
    };
    let report = zips.build("fn.zip", &options).await.unwrap();
    assert!(!report.includes_root);
    assert!(report.container_id.is_none());
    let out = work.path().join("unzipped");
    unzip(&zip, &out);
    let ud = out.join("udocker");
    assert_eq!(std::fs::read_dir(ud.join("containers")).unwrap().count(), 0);
    udocker(&ud, &wrapper, &["create", "--name=cold", "scar-fn:latest"]);
    let cat = udocker(
        &ud,
        &wrapper,
        &["run", "--entrypoint=", "cold", "/bin/cat", "/srv/hello.txt"],
    );
    assert!(cat.contains("hello from the image"), "{cat}");
}

/// An image with a layer of `mb` megabytes of incompressible data.
async fn big_image(work: &Path, mb: usize) -> (BlobCache, PulledImage) {
    let img = build_busybox_image(work);
    img.add_layer(work, |root| {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let data: Vec<u8> = (0..mb * 1024 * 1024)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        std::fs::write(root.join("srv/big.bin"), data).unwrap();
    });
    let cache = BlobCache::new(work.join("cache"));
    let source = ImageSource::OciLayout {
        path: img.layout.clone(),
        tag: Some(img.tag.clone()),
    };
    let image = pull(&source, &cache, &NoProgress).await.unwrap();
    (cache, image)
}

/// Zip packages of one image, each built into the work directory under its own name.
struct Zips<'a> {
    image: &'a PulledImage,
    cache: &'a BlobCache,
    bootstrap: PathBuf,
    work: &'a Path,
}

impl<'a> Zips<'a> {
    /// Zip packages of `image` in `cache`, with a stand-in supervisor, built into `work`.
    fn of(image: &'a PulledImage, cache: &'a BlobCache, work: &'a Path) -> Zips<'a> {
        Zips {
            image,
            cache,
            bootstrap: supervisor(work),
            work,
        }
    }

    async fn build(
        &self,
        name: &str,
        options: &ZipOptions,
    ) -> Result<scar_packager::ZipReport, PackagerError> {
        build_zip_package(
            self.image,
            self.cache,
            &function(),
            &self.bootstrap,
            &self.work.join(name),
            options,
            &NoProgress,
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn size_limits_decide_root_bucket_or_error() {
    if !require_tools(&["umoci", "busybox"]) {
        return;
    }
    assert_eq!(UNZIPPED_LIMIT, 262_144_000);
    assert_eq!(DIRECT_UPLOAD_LIMIT, 52_428_800);
    let defaults = ZipOptions::new("f");
    assert_eq!(defaults.unzipped_limit, UNZIPPED_LIMIT);
    assert_eq!(defaults.direct_upload_limit, DIRECT_UPLOAD_LIMIT);

    let work = tempfile::tempdir().unwrap();
    let (cache, image) = big_image(work.path(), 3).await;
    let zips = Zips::of(&image, &cache, work.path());
    let base = ZipOptions::new("scar-fn");

    // Layers only: its unzipped size is the floor.
    let layers_only = ZipOptions {
        include_root: false,
        ..base.clone()
    };
    let lo = zips.build("lo.zip", &layers_only).await.unwrap();
    // Everything fits under a roomy limit.
    let full = zips.build("full.zip", &base).await.unwrap();
    assert!(full.includes_root);
    let root_size = full.root_size.unwrap();
    assert!(root_size > 3 * 1024 * 1024);
    assert!(full.unzipped_size >= lo.unzipped_size + root_size);

    // The root does not fit next to the layers: layers only, and the report says why.
    let tight = ZipOptions {
        unzipped_limit: lo.unzipped_size + root_size / 2,
        ..base.clone()
    };
    let r = zips.build("tight.zip", &tight).await.unwrap();
    assert!(!r.includes_root);
    assert_eq!(r.unzipped_size, lo.unzipped_size);
    assert!(
        r.warnings.iter().any(|w| w.contains("/tmp")),
        "{:?}",
        r.warnings
    );

    // Exactly at the limit still fits.
    let exact = ZipOptions {
        unzipped_limit: full.unzipped_size,
        ..base.clone()
    };
    let r = zips.build("exact.zip", &exact).await.unwrap();
    assert!(r.includes_root);

    // Nothing fits: a clear error pointing to the image package; no zip left behind.
    let none = ZipOptions {
        unzipped_limit: lo.unzipped_size - 1,
        ..base.clone()
    };
    let err = zips.build("none.zip", &none).await.unwrap_err();
    assert!(
        matches!(err, PackagerError::PackageTooLarge { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("--package image"), "{err}");
    assert!(!work.path().join("none.zip").exists());

    // The 50 MB rule, with a small limit: incompressible data keeps the zip large.
    assert!(full.zip_size > 3 * 1024 * 1024);
    let bucket = ZipOptions {
        direct_upload_limit: full.zip_size - 1,
        ..base.clone()
    };
    let r = zips.build("b.zip", &bucket).await.unwrap();
    assert!(r.needs_deployment_bucket);
    let direct = ZipOptions {
        direct_upload_limit: full.zip_size,
        ..base
    };
    let r = zips.build("d.zip", &direct).await.unwrap();
    assert!(!r.needs_deployment_bucket);
}

#[tokio::test(flavor = "multi_thread")]
async fn zip_packages_are_deterministic() {
    if !require_tools(&["umoci", "busybox", "unzip"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (_img, cache, image) = pulled(work.path()).await;
    let zips = Zips::of(&image, &cache, work.path());
    let (a, b) = (work.path().join("a.zip"), work.path().join("b.zip"));
    let options = ZipOptions::new("scar-fn");
    let ra = zips.build("a.zip", &options).await.unwrap();
    let other_work = ZipOptions {
        work_dir: Some(work.path().join("elsewhere")),
        ..options
    };
    let rb = zips.build("b.zip", &other_work).await.unwrap();
    assert_eq!(ra.zip_size, rb.zip_size);
    assert!(std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap());
    // And it is a valid zip by Info-ZIP's standard.
    run(Command::new("unzip").arg("-tq").arg(&a));
}
