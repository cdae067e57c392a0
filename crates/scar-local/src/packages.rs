//! Packages on the local provider: functions run from the very `image` or `zip` package
//! that AWS would get, so that users rehearse what they deploy; and `scar package`, which
//! writes a function's package to a file.

use std::io::Read;
use std::path::{Path, PathBuf};

use scar_core::event::FunctionFile;
use scar_core::lambda::DIRECT_UPLOAD_LIMIT;
use scar_core::provider::{FunctionInfo, PackageKind, PackageReport};
use scar_packager::{BlobCache, ImagePackage, Progress, PulledImage, ZipOptions};

use crate::state::{ensure_mount_point, Launch, StoredFunction};
use crate::{LocalError, LocalProvider};

/// The layers of an image package as an image, so that it can be extracted like any other.
fn as_pulled(package: &ImagePackage, base: &PulledImage) -> PulledImage {
    PulledImage {
        source: package.source.clone(),
        manifest_digest: package.config_digest.clone(),
        config: base.config.clone(),
        architecture: package.architecture.clone(),
        layers: package.layers.clone(),
    }
}

impl LocalProvider {
    /// Builds an image package and extracts it as the function's root.
    pub(crate) async fn prepare_image_package(
        &self,
        image: &PulledImage,
        function: &FunctionFile,
        buckets: &[String],
        progress: &dyn Progress,
    ) -> Result<PathBuf, LocalError> {
        let cache = BlobCache::new(self.layout().cache());
        let package = self
            .image_package(image, &cache, function, progress)
            .await?;
        let pulled = as_pulled(&package, image);
        let root = self.layout().root_for(&pulled.manifest_digest);
        if !root.exists() {
            scar_packager::Extractor::new(*self.extract_options())
                .extract_image(&pulled, &cache, &root, progress)?;
        }
        prepare_mount_points(&root, buckets)?;
        Ok(root)
    }

    /// The image package of `function` on `image` (whose blobs are in `cache`), with this
    /// provider's supervisor.
    async fn image_package(
        &self,
        image: &PulledImage,
        cache: &BlobCache,
        function: &FunctionFile,
        progress: &dyn Progress,
    ) -> Result<ImagePackage, LocalError> {
        let package = scar_packager::build_image_package(
            image,
            cache,
            function,
            self.supervisor_for(&image.architecture)?,
            progress,
        )
        .await?;
        Ok(package)
    }

    /// `-db BUCKET`: what AWS does with a deployment bucket, done to the local bucket so
    /// that the same command line rehearses it: a zip package over Lambda's direct upload
    /// limit is stored as `BUCKET/scar/<function>.zip`, the key the aws provider uploads it
    /// to (the bucket is created when missing); any other package has no use for the
    /// bucket there either, which a warning says.
    pub(crate) fn deploy_through(
        &self,
        bucket: &str,
        info: &FunctionInfo,
        progress: &dyn scar_core::progress::Progress,
    ) -> Result<(), LocalError> {
        let name = &info.spec.name;
        let zip = self.layout().function_dir(name).join("package.zip");
        let size = match info.package {
            Some(PackageKind::Zip) => std::fs::metadata(&zip)
                .map_err(LocalError::io("cannot read", &zip))?
                .len(),
            _ => 0,
        };
        if size <= DIRECT_UPLOAD_LIMIT {
            progress.warn(&scar_core::lambda::unused_deployment_bucket(bucket));
            return Ok(());
        }
        let key = scar_core::lambda::deployment_package_key(name);
        self.buckets().store(bucket, &key, &zip)?;
        progress.note(&format!(
            "the zip package ({} MB) is in {bucket}/{key}, as it would be on S3",
            size >> 20
        ));
        Ok(())
    }

    /// Builds `stored`'s zip package and unzips it into `task` in its partial directory,
    /// as Lambda unzips it into `/var/task` (with `payload` at its root). Returns the
    /// launch and the sandbox root.
    pub(crate) async fn prepare_zip_package(
        &self,
        stored: &StoredFunction,
        image: &PulledImage,
        payload: Option<&scar_packager::Payload>,
        progress: &dyn Progress,
    ) -> Result<(Launch, PathBuf), LocalError> {
        let function = &stored.function_file();
        let buckets = &stored.info.spec.buckets();
        let name = &stored.info.spec.name;
        let (dir, final_dir) = (
            &self.layout().partial_dir(name),
            &self.layout().function_dir(name),
        );
        let cache = BlobCache::new(self.layout().cache());
        std::fs::create_dir_all(dir).map_err(LocalError::io("cannot create", dir))?;
        let zip_path = dir.join("package.zip");
        let mut options = self.zip_options(&function.name);
        // The zip holds the payload at its root, as on Lambda: /var/task has it.
        options.extra_payload = payload.cloned();
        let report = scar_packager::build_zip_package(
            image,
            &cache,
            function,
            self.supervisor_for(&image.architecture)?,
            &zip_path,
            &options,
            progress,
        )
        .await?;
        for w in &report.warnings {
            progress.warn(w);
        }
        let task = dir.join("task");
        unzip(&zip_path, &task)?;
        let launch = Launch::Zip {
            task: final_dir.join("task"),
            repo: report.repo.clone(),
            tag: report.tag.clone(),
            built_root: report.container_id.is_none(),
        };
        let root_rel = match &report.container_id {
            Some(id) => format!("task/udocker/containers/{id}/ROOT"),
            None => "coldroot".to_string(),
        };
        if report.container_id.is_some() {
            prepare_mount_points(&dir.join(&root_rel), buckets)?;
        }
        Ok((launch, final_dir.join(root_rel)))
    }

    /// A zip package without the root: build it from the zip's udocker layers, as the
    /// supervisor would under /tmp at a cold start on Lambda. Done once per function.
    pub(crate) fn build_cold_root(&self, stored: &StoredFunction) -> Result<(), LocalError> {
        let Launch::Zip {
            task,
            repo,
            tag,
            built_root: true,
        } = &stored.launch
        else {
            return Ok(());
        };
        if stored.root.exists() {
            return Ok(());
        }
        let udocker = task.join("udocker");
        let ancestry_path = udocker.join("repos").join(repo).join(tag).join("ancestry");
        let text = std::fs::read_to_string(&ancestry_path).map_err(LocalError::io(
            "cannot read the zip's udocker tree",
            &ancestry_path,
        ))?;
        let top_first: Vec<String> =
            serde_json::from_str(&text).map_err(|e| LocalError::State {
                path: ancestry_path.clone(),
                why: e.to_string(),
            })?;
        let layers: Vec<PathBuf> = top_first
            .iter()
            .rev()
            .map(|hex| udocker.join("layers").join(format!("{hex}.layer")))
            .collect();
        scar_packager::Extractor::new(*self.extract_options())
            .extract_layer_files(&layers, &stored.root)?;
        prepare_mount_points(&stored.root, &stored.info.spec.buckets())
    }

    /// The image `stored` was made from, to build its packages from (its blobs are in the
    /// cache).
    pub(crate) fn pulled_image(&self, stored: &StoredFunction) -> Result<PulledImage, LocalError> {
        stored.pulled.clone().ok_or_else(|| LocalError::State {
            path: self.layout().function_dir(&stored.info.spec.name),
            why: "it was made by an older scar without its image record: recreate it".into(),
        })
    }

    /// Writes `stored`'s image package, built from `image`, to `dest` as an OCI archive.
    pub(crate) async fn write_image_package(
        &self,
        stored: &StoredFunction,
        image: &PulledImage,
        dest: &Path,
        progress: &dyn Progress,
    ) -> Result<PackageReport, LocalError> {
        let cache = BlobCache::new(self.layout().cache());
        let payload = self.deployed_payload(stored)?;
        let package = scar_packager::build_image_package_with_payload(
            image,
            &cache,
            &stored.function_file(),
            self.supervisor_for(&image.architecture)?,
            payload.as_ref(),
            progress,
        )
        .await?;
        let name = &stored.info.spec.name;
        let reference = format!("scar-{}:latest", name.to_ascii_lowercase());
        let digest =
            scar_packager::write_oci_archive(&package, &cache, dest, &reference, progress).await?;
        Ok(PackageReport {
            path: dest.to_path_buf(),
            package: PackageKind::Image,
            size: file_size(dest),
            digest: Some(digest),
            unzipped_size: None,
            includes_root: None,
            needs_deployment_bucket: None,
            warnings: Vec::new(),
        })
    }

    /// The options `stored`'s zip package is written with: this provider's, and the
    /// image's root when the cache holds it already (no second extraction).
    pub(crate) fn package_zip_options(
        &self,
        stored: &StoredFunction,
    ) -> Result<ZipOptions, LocalError> {
        let mut options = self.zip_options(&stored.info.spec.name);
        if stored.launch == Launch::Root && stored.root.is_dir() {
            options.extracted_root = Some(stored.root.clone());
        }
        options.extra_payload = self.deployed_payload(stored)?;
        Ok(options)
    }

    /// The copy of `stored`'s extra payload made at `init`, walked: what its packages
    /// ship (not the user's folder, which may have changed since).
    fn deployed_payload(
        &self,
        stored: &StoredFunction,
    ) -> Result<Option<scar_packager::Payload>, LocalError> {
        if stored.info.spec.extra_payload.is_none() {
            return Ok(None);
        }
        let dir = self.layout().payload_dir(&stored.info.spec.name);
        Ok(Some(scar_packager::Payload::walk(&dir)?))
    }

    /// Writes `stored`'s zip package, built from `image` with `options`, to `dest`.
    pub(crate) async fn write_zip_package(
        &self,
        stored: &StoredFunction,
        image: &PulledImage,
        options: ZipOptions,
        dest: &Path,
        progress: &dyn Progress,
    ) -> Result<PackageReport, LocalError> {
        let report = scar_packager::build_zip_package(
            image,
            &BlobCache::new(self.layout().cache()),
            &stored.function_file(),
            self.supervisor_for(&image.architecture)?,
            dest,
            &options,
            progress,
        )
        .await?;
        Ok(PackageReport {
            path: dest.to_path_buf(),
            package: PackageKind::Zip,
            size: report.zip_size,
            digest: None,
            unzipped_size: Some(report.unzipped_size),
            includes_root: Some(report.includes_root),
            needs_deployment_bucket: Some(report.needs_deployment_bucket),
            warnings: report.warnings,
        })
    }
}

/// Lambda's limits, unless `SCAR_ZIP_UNZIPPED_LIMIT` (bytes) lowers the unzipped one: a
/// knob for rehearsing the layers-only layout with a small image.
impl LocalProvider {
    fn zip_options(&self, name: &str) -> ZipOptions {
        zip_options(name, self.proot(), *self.extract_options())
    }
}

fn zip_options(
    name: &str,
    proot: Option<&Path>,
    extract: scar_packager::ExtractOptions,
) -> ZipOptions {
    let mut options = ZipOptions::new(name);
    options.proot = proot.map(Path::to_path_buf);
    options.extract = extract;
    if let Some(limit) = std::env::var("SCAR_ZIP_UNZIPPED_LIMIT")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        options.unzipped_limit = limit.min(options.unzipped_limit);
    }
    options
}

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn prepare_mount_points(root: &Path, buckets: &[String]) -> Result<(), LocalError> {
    for rel in ["tmp", "proc", "dev", "var/task"] {
        ensure_mount_point(root, rel)?;
    }
    for bucket in buckets {
        ensure_mount_point(root, &format!("opt/scar/buckets/{bucket}"))?;
    }
    Ok(())
}

/// Unzips a package: files with their modes, symlinks as symlinks (never followed).
fn unzip(zip_path: &Path, dest: &Path) -> Result<(), LocalError> {
    use std::os::unix::fs::PermissionsExt;
    let file = std::fs::File::open(zip_path).map_err(LocalError::io("cannot read", zip_path))?;
    let bad = |why: String| LocalError::State {
        path: zip_path.to_path_buf(),
        why,
    };
    let mut archive = zip::ZipArchive::new(file).map_err(|e| bad(e.to_string()))?;
    std::fs::create_dir_all(dest).map_err(LocalError::io("cannot create", dest))?;
    let mut dir_modes = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| bad(e.to_string()))?;
        let Some(rel) = entry.enclosed_name() else {
            return Err(bad(format!(
                "entry {:?} leads outside the package",
                entry.name()
            )));
        };
        let path = dest.join(rel);
        let mode = entry.unix_mode().unwrap_or(0o644);
        if entry.is_dir() {
            std::fs::create_dir_all(&path).map_err(LocalError::io("cannot create", &path))?;
            dir_modes.push((path, mode & 0o7777));
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(LocalError::io("cannot create", parent))?;
        }
        if mode & 0o170000 == 0o120000 {
            let mut target = String::new();
            entry
                .read_to_string(&mut target)
                .map_err(LocalError::io("cannot read a link in", zip_path))?;
            std::os::unix::fs::symlink(&target, &path)
                .map_err(LocalError::io("cannot create", &path))?;
            continue;
        }
        let mut out =
            std::fs::File::create(&path).map_err(LocalError::io("cannot create", &path))?;
        std::io::copy(&mut entry, &mut out).map_err(LocalError::io("cannot write", &path))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o7777))
            .map_err(LocalError::io("cannot set the mode of", &path))?;
    }
    // Directory modes last: a read-only directory must not stop its own contents.
    for (path, mode) in dir_modes.into_iter().rev() {
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode | 0o700));
    }
    Ok(())
}
