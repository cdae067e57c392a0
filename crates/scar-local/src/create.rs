//! Creating a function: the image pulled into the cache, the root its sandboxes run on
//! (the image's own, extracted once and shared, or its package's), and the function
//! recorded; on any failure nothing new is left in the scar home.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use scar_core::config::ProviderKind;
use scar_core::provider::{FunctionInfo, ImageInput, PackageKind, SurfaceError, Unsupported};
use scar_core::{FunctionSpec, RuntimeClient};
use scar_packager::{BlobCache, ImageSource, Progress, PulledImage};

use crate::state::{ensure_mount_point, Launch, StoredFunction};
use crate::{LocalError, LocalProvider, PROVIDER_NAME};

/// Mount points every root gets, so that sandboxes can mount over them.
const MOUNT_POINTS: &[&str] = &["tmp", "proc", "dev", "opt/scar", "var/task"];

impl LocalProvider {
    /// Creates a function: pulls the image into the cache, extracts its root once, and
    /// records the function. On any failure nothing new is left in the scar home.
    pub(crate) async fn create_function(
        &self,
        spec: FunctionSpec,
        image: &ImageInput,
        package: Option<PackageKind>,
        progress: &dyn Progress,
    ) -> Result<FunctionInfo, LocalError> {
        spec.validate()?;
        if self.layout().function_dir(&spec.name).exists() {
            return Err(SurfaceError::Exists(spec.name).into());
        }
        self.check_inputs_free(&spec)?;
        if spec.runtime_client == RuntimeClient::Image && package.is_some() {
            return Err(SurfaceError::Unsupported(Unsupported {
                provider: PROVIDER_NAME,
                what: "--package with --runtime-client image".into(),
                instead: "leave out --package: the image runs as it is".into(),
            })
            .into());
        }
        if scar_core::Architecture::host() != Some(spec.architecture) {
            crate::supervisor::can_run(spec.architecture).map_err(|why| {
                SurfaceError::Unsupported(Unsupported {
                    provider: PROVIDER_NAME,
                    what: format!("an {} function on this machine", spec.architecture),
                    instead: format!("{why}; or deploy it to AWS (--provider aws)"),
                })
            })?;
            self.supervisor_for(spec.architecture.oci())?;
        }
        let source = match image {
            ImageInput::Reference(r) => ImageSource::detect(r)?,
            ImageInput::Archive(p) => ImageSource::from_archive(p)?,
        };
        let payload = match &spec.extra_payload {
            Some(dir) => Some(self.extra_payload(Path::new(dir), progress)?),
            None => None,
        };
        let cache_dir = self.layout().cache();
        let name = spec.name.clone();
        let before = blob_files(&cache_dir);
        let result = self
            .init_from(spec, &source, package, payload.as_ref(), progress)
            .await;
        if result.is_err() {
            let _ = std::fs::remove_dir_all(self.layout().partial_dir(&name));
            // Blobs fetched for a failed init are leftovers too.
            for path in blob_files(&cache_dir).difference(&before) {
                let _ = std::fs::remove_file(path);
            }
        }
        result
    }

    /// Refuses an input folder that overlaps one of another function's.
    fn check_inputs_free(&self, spec: &FunctionSpec) -> Result<(), LocalError> {
        let others = self.layout().list()?;
        for input in &spec.inputs {
            for other in &others {
                if let Some(theirs) = other.info.spec.inputs.iter().find(|i| i.overlaps(input)) {
                    return Err(SurfaceError::InputTaken {
                        input: input.to_string(),
                        theirs: theirs.to_string(),
                        function: other.info.spec.name.clone(),
                    }
                    .into());
                }
            }
        }
        Ok(())
    }

    /// The extra payload's folder, walked (what is left out said): it is copied into
    /// the function, not read again.
    fn extra_payload(
        &self,
        dir: &Path,
        progress: &dyn Progress,
    ) -> Result<scar_packager::Payload, LocalError> {
        let payload = scar_packager::Payload::walk(dir)?;
        for skipped in &payload.skipped {
            progress.warn(&format!(
                "extra payload {}: {skipped}, left out",
                dir.display()
            ));
        }
        Ok(payload)
    }

    async fn init_from(
        &self,
        spec: FunctionSpec,
        source: &ImageSource,
        package: Option<PackageKind>,
        payload: Option<&scar_packager::Payload>,
        progress: &dyn Progress,
    ) -> Result<FunctionInfo, LocalError> {
        let cache = BlobCache::new(self.layout().cache());
        let arch = spec.architecture.oci();
        let image = if scar_core::Architecture::host() == Some(spec.architecture) {
            scar_packager::pull_through(source, &cache, progress, &self.mirrors).await?
        } else {
            scar_packager::pull_for_architecture(source, &cache, progress, &self.mirrors, arch)
                .await?
        };
        if spec.runtime_client == RuntimeClient::Image
            && image.config.entrypoint.is_empty()
            && image.config.cmd.is_empty()
        {
            return Err(LocalError::NoRuntime(spec.name));
        }
        let mut stored = StoredFunction {
            info: FunctionInfo {
                spec,
                provider: ProviderKind::Local,
                package,
                image_digest: image.manifest_digest.clone(),
                created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                owner: None,
                api_url: None,
                supervisor_version: None,
            },
            root: PathBuf::new(),
            image_config: image.config.clone(),
            pulled: Some(image.clone()),
            launch: Launch::Root,
            revision: String::new(),
        };
        (stored.launch, stored.root) = self
            .sandbox_root(&stored, &image, &cache, payload, progress)
            .await?;
        for bucket in &stored.info.spec.buckets() {
            self.buckets().create(bucket)?;
        }
        let supervisor = self.supervisor_for(&image.architecture)?;
        // Recorded so that `ls` tells functions of an older supervisor; a file that cannot
        // be read fails in `create` below.
        stored.info.supervisor_version = crate::supervisor_version(supervisor).ok().flatten();
        self.layout().create(&stored, supervisor, payload)?;
        Ok(stored.info)
    }

    /// How `stored`'s sandboxes launch, and the root they run on: the image's, or that of
    /// the package `stored` runs from.
    async fn sandbox_root(
        &self,
        stored: &StoredFunction,
        image: &PulledImage,
        cache: &BlobCache,
        payload: Option<&scar_packager::Payload>,
        progress: &dyn Progress,
    ) -> Result<(Launch, PathBuf), LocalError> {
        let function = stored.function_file();
        let buckets = stored.info.spec.buckets();
        match stored.info.package {
            None => Ok((Launch::Root, self.image_root(image, cache, progress)?)),
            Some(PackageKind::Image) => {
                let root = self
                    .prepare_image_package(image, &function, &buckets, progress)
                    .await?;
                Ok((Launch::Image, root))
            }
            Some(PackageKind::Zip) => {
                self.prepare_zip_package(stored, image, payload, progress)
                    .await
            }
        }
    }

    /// The image's root under `cache/roots`, extracted unless an earlier function did, with
    /// the mount points a sandbox needs.
    fn image_root(
        &self,
        image: &PulledImage,
        cache: &BlobCache,
        progress: &dyn Progress,
    ) -> Result<PathBuf, LocalError> {
        let root = self.layout().root_for(&image.manifest_digest);
        if let Some(roots) = root.parent() {
            // Staging of an init that was killed: nobody will finish it.
            scar_packager::Extractor::sweep_stale_partials(roots);
        }
        if !root.exists() {
            scar_packager::Extractor::new(*self.extract_options())
                .extract_image(image, cache, &root, progress)?;
        }
        for rel in MOUNT_POINTS {
            ensure_mount_point(&root, rel)?;
        }
        Ok(root)
    }
}

fn blob_files(cache: &Path) -> BTreeSet<PathBuf> {
    let dir = cache.join("blobs").join("sha256");
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}
