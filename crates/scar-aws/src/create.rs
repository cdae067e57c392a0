//! A function from an image, end to end: pull it (`scar-packager`), package it (`zip`, or
//! `image` pushed to ECR), create the Lambda function and bind its bucket
//! ([`AwsProvider::init`]). What `scar init` does on AWS, for any Rust program.

use std::path::{Path, PathBuf};

use scar_core::event::FunctionFile;
use scar_core::progress::Progress;
use scar_core::provider::{CreateRequest, FunctionInfo, ImageInput, PackageKind};
use scar_packager::{BlobCache, ImageSource, ManifestFormat, ZipOptions};

use crate::{AwsError, AwsProvider, InitRequest, Package};

/// A temporary file removed on drop.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl AwsProvider {
    fn packaging(
        &self,
        function: &str,
        arch: scar_core::Architecture,
    ) -> Result<(BlobCache, &Path), AwsError> {
        let Some(supervisor) = self.config.packaging.supervisor(arch) else {
            return Err(AwsError::MissingSupervisor {
                function: function.to_string(),
                architecture: arch,
            });
        };
        let cache = self
            .config
            .packaging
            .cache_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("scar-cache"));
        Ok((BlobCache::new(cache), supervisor))
    }

    /// Creates a function from an image: validates it, pulls the image, builds its
    /// package (default `image`, pushed to the function's ECR repository and pinned by
    /// digest; or `zip`, with the configured proot, through `deployment_bucket` when over
    /// 50 MB), then [`AwsProvider::init`]. Nothing is left behind when a step fails.
    pub(crate) async fn create_function(
        &self,
        request: CreateRequest,
        progress: &dyn Progress,
    ) -> Result<FunctionInfo, AwsError> {
        let spec = request.spec;
        // Bad input costs nothing: checked before any pull or push.
        self.check_deployable(&spec, request.package.unwrap_or(PackageKind::Image))?;
        let payload = extra_payload(&spec, progress)?;
        // `-db` as given, for the warning when the package has no use for it.
        let given_bucket = request.deployment_bucket.clone();
        let deployment_bucket = request
            .deployment_bucket
            .or_else(|| self.config.deployment.deployment_bucket.clone());
        if let Some(bucket) = &deployment_bucket {
            scar_core::bucket::BucketPath::parse(bucket)?;
        }
        self.ensure_absent(&spec.name).await?;
        if spec.reuse_image {
            // An image already prepared in ECR (SCAR's `create_image: false`): as it is.
            if let Some(bucket) = &given_bucket {
                progress.warn(&scar_core::lambda::unused_deployment_bucket(bucket));
            }
            let package = Package::Image {
                uri: crate::deploy::reused_image_uri(&spec.image),
            };
            return self
                .init(InitRequest {
                    spec,
                    package,
                    deployment_bucket,
                })
                .await;
        }
        let (cache, supervisor) = self.packaging(&spec.name, spec.architecture)?;
        let source = match &request.image {
            ImageInput::Archive(file) => ImageSource::from_archive(file)?,
            ImageInput::Reference(reference) => ImageSource::detect(reference)?,
        };
        let mirrors = &self.config.packaging.mirrors;
        // Lambda's x86_64 functions take the image for amd64, its arm64 ones for arm64.
        let arch = spec.architecture.oci();
        let image =
            scar_packager::pull_for_architecture(&source, &cache, progress, mirrors, arch).await?;
        let function = FunctionFile::new(&spec, image.config.clone());
        let own_runtime = spec.runtime_client == scar_core::RuntimeClient::Image;
        let (package, _zip) = match request.package.unwrap_or(PackageKind::Image) {
            // A Lambda container image with its own runtime: pushed as it is.
            PackageKind::Image if own_runtime => {
                let pkg = scar_packager::unchanged_image_package(&image, &cache)?;
                (
                    self.push_package(&spec.name, &pkg, &cache, progress)
                        .await?,
                    None,
                )
            }
            PackageKind::Zip if own_runtime => {
                return Err(AwsError::Surface(scar_core::provider::SurfaceError::Unsupported(scar_core::provider::Unsupported {
                    provider: crate::PROVIDER_NAME,
                    what: "--runtime-client image with a zip package".into(),
                    instead: "an image with its own runtime is pushed as it is and created with PackageType=Image: leave out --package zip".into(),
                })));
            }
            PackageKind::Zip => {
                let Some(proot) = self.config.packaging.proot.clone() else {
                    return Err(AwsError::MissingProot {
                        function: spec.name.clone(),
                    });
                };
                let mut options = ZipOptions::new(&spec.name);
                options.proot = Some(proot);
                options.extract = self.config.packaging.extract;
                // At the zip's root: Lambda unpacks it at /var/task.
                options.extra_payload = payload;
                let path = std::env::temp_dir().join(format!(
                    "scar-{}-{}.zip",
                    spec.name.to_lowercase(),
                    uuid_like()
                ));
                let zip = TempFile(path.clone());
                let report = scar_packager::build_zip_package(
                    &image, &cache, &function, supervisor, &path, &options, progress,
                )
                .await?;
                for warning in &report.warnings {
                    progress.warn(warning);
                }
                if report.needs_deployment_bucket && deployment_bucket.is_none() {
                    return Err(AwsError::NeedsDeploymentBucket {
                        function: spec.name.clone(),
                        size: report.zip_size,
                    });
                }
                if let (false, Some(bucket)) = (report.needs_deployment_bucket, &given_bucket) {
                    progress.warn(&scar_core::lambda::unused_deployment_bucket(bucket));
                }
                (Package::Zip { path }, Some(zip))
            }
            PackageKind::Image if self.config.packaging.extract.strict => {
                return Err(AwsError::Surface(scar_core::provider::SurfaceError::Unsupported(scar_core::provider::Unsupported {
                    provider: crate::PROVIDER_NAME,
                    what: "--strict with an image package".into(),
                    instead: "an image package is pushed as it is and Lambda unpacks it: --strict checks extraction, which only a zip package does here (use --package zip)".into(),
                })));
            }
            PackageKind::Image => {
                if let Some(bucket) = &given_bucket {
                    progress.warn(&scar_core::lambda::unused_deployment_bucket(bucket));
                }
                let pkg = scar_packager::build_image_package_with_payload(
                    &image,
                    &cache,
                    &function,
                    supervisor,
                    payload.as_ref(),
                    progress,
                )
                .await?;
                (
                    self.push_package(&spec.name, &pkg, &cache, progress)
                        .await?,
                    None,
                )
            }
        };
        let mut info = self
            .init(InitRequest {
                spec,
                package,
                deployment_bucket,
            })
            .await?;
        info.image_digest = image.manifest_digest;
        Ok(info)
    }
}

impl AwsProvider {
    /// Pushes an image package to the function's ECR repository (or the registry that
    /// overrides it), pinned by digest: the function runs exactly what was pushed.
    async fn push_package(
        &self,
        function: &str,
        pkg: &scar_packager::ImagePackage,
        cache: &BlobCache,
        progress: &dyn Progress,
    ) -> Result<Package, AwsError> {
        let repository = crate::ecr_repository_name(function);
        let login = self.ecr_login(&repository).await?;
        let repo_uri = match &self.config.deployment.registry_override {
            Some(r) if !r.trim().is_empty() => {
                format!("{}/{repository}", r.trim().trim_end_matches('/'))
            }
            _ => login.repository_uri.clone(),
        };
        let pushed = scar_packager::push_image(
            pkg,
            cache,
            &format!("{repo_uri}:latest"),
            Some((login.username.clone(), login.password.clone())),
            ManifestFormat::Oci,
            progress,
        )
        .await?;
        Ok(Package::Image {
            uri: format!("{repo_uri}@{}", pushed.manifest_digest),
        })
    }
}

/// The function's extra payload (`-ep`), walked once, what is left out of it said; refused
/// where the package is not scar's to build (an image used as it is).
fn extra_payload(
    spec: &scar_core::FunctionSpec,
    progress: &dyn Progress,
) -> Result<Option<scar_packager::Payload>, AwsError> {
    let Some(dir) = &spec.extra_payload else {
        return Ok(None);
    };
    // (`--runtime-client image` with one is refused by the spec's validation.)
    if spec.reuse_image {
        return Err(AwsError::Surface(
            scar_core::provider::SurfaceError::Unsupported(scar_core::provider::Unsupported {
                provider: crate::PROVIDER_NAME,
                what: "an extra payload (-ep) with an image already in ECR (create_image: false)".into(),
                instead: "an image scar does not package has no /var/task of scar's: add the files to the image, or let scar package it".into(),
            }),
        ));
    }
    let payload = scar_packager::Payload::walk(Path::new(dir))?;
    for skipped in &payload.skipped {
        progress.warn(&format!("extra payload {dir}: {skipped}, left out"));
    }
    Ok(Some(payload))
}

fn uuid_like() -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{n:x}", std::process::id())
}
