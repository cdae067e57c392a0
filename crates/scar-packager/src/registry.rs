//! Pulling from registries that speak the OCI distribution API, through `oci-client`.

use std::net::IpAddr;
use std::time::Duration;

use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::{Client, Reference};

use crate::cache::BlobCache;
use crate::credentials::{Credentials, DockerConfig};
use crate::error::PackagerError;
use crate::manifest::{
    as_image_manifest, finish, parse, select_platform_for, Descriptor, ManifestOrIndex,
    DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST,
};
use crate::progress::{Phase, Progress};
use crate::{LayerRef, PulledImage};
use scar_core::config::{Mirror, RegistryMirrors};

const ACCEPT: &[&str] = &[OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST];

/// Whether `registry` (`host[:port]`) is on this machine, where plain HTTP is used.
pub(crate) fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        registry
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(registry)
    };
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A client for `registry` (`host[:port]`): plain HTTP on loopback, HTTPS elsewhere.
/// `monolithic` uploads each blob in one streamed `PUT` (registries such as ECR mishandle
/// chunked `PATCH` uploads).
pub(crate) fn client_for(registry: &str, monolithic: bool) -> Client {
    client_with(registry, is_loopback(registry), monolithic)
}

/// A client for `registry`, over plain HTTP when `plain_http` (a mirror named with
/// `http://`), else HTTPS.
fn client_with(registry: &str, plain_http: bool, monolithic: bool) -> Client {
    let mut insecure = Vec::new();
    if plain_http {
        insecure.push(registry.to_string());
    }
    Client::new(ClientConfig {
        protocol: ClientProtocol::HttpsExcept(insecure),
        platform_resolver: None,
        connect_timeout: Some(Duration::from_secs(15)),
        read_timeout: Some(Duration::from_secs(120)),
        use_monolithic_push: monolithic,
        ..Default::default()
    })
}

/// The reference `shown` names (`[docker://]host[:port]/repo[:tag]`).
fn parse_reference(shown: &str) -> Result<Reference, PackagerError> {
    let text = shown.strip_prefix("docker://").unwrap_or(shown);
    text.parse().map_err(|source| PackagerError::BadReference {
        reference: shown.to_string(),
        source,
    })
}

/// A client with its credentials, and the names errors are reported with.
pub(crate) struct Ctx<'a> {
    pub(crate) client: Client,
    pub(crate) credentials: Credentials,
    pub(crate) shown: &'a str,
    pub(crate) registry: String,
}

impl<'a> Ctx<'a> {
    /// The reference `shown` names (`[docker://]host[:port]/repo[:tag]`) and a context for
    /// its registry: basic auth with `credentials` when given, else what `docker` finds in
    /// its config file (see [`crate::credentials`]), else anonymous; `monolithic` as
    /// [`client_for`] says.
    pub(crate) async fn connect(
        shown: &'a str,
        credentials: Option<(String, String)>,
        monolithic: bool,
        docker: &DockerConfig,
    ) -> Result<(Reference, Ctx<'a>), PackagerError> {
        let reference = parse_reference(shown)?;
        let registry = reference.resolve_registry().to_string();
        let credentials = match credentials {
            Some((user, password)) => Credentials::given(user, password),
            None => docker.credentials(reference.registry()).await,
        };
        let ctx = Ctx {
            client: client_for(&registry, monolithic),
            credentials,
            shown,
            registry,
        };
        Ok((reference, ctx))
    }

    /// A context for pulling `shown` from `mirror`, with what the Docker config file has
    /// for the mirror's host.
    async fn mirror(shown: &'a str, mirror: &Mirror, docker: &DockerConfig) -> Ctx<'a> {
        let plain_http = mirror
            .plain_http
            .unwrap_or_else(|| is_loopback(&mirror.host));
        Ctx {
            client: client_with(&mirror.host, plain_http, false),
            credentials: docker.credentials(&mirror.host).await,
            shown,
            registry: mirror.host.clone(),
        }
    }

    pub(crate) fn err(&self, action: &str, wanted: &str, e: OciDistributionError) -> PackagerError {
        if let Some(status) = refusal(&e) {
            return PackagerError::RegistryAuth {
                registry: self.registry.clone(),
                reference: self.shown.to_string(),
                action: action.to_string(),
                status,
                credentials: self.credentials.origin.clone(),
                source: Box::new(e),
            };
        }
        let not_found = match &e {
            OciDistributionError::RequestError(re) if re.is_connect() || re.is_timeout() => {
                return PackagerError::RegistryUnreachable {
                    registry: self.registry.clone(),
                    reference: self.shown.to_string(),
                    source: e,
                }
            }
            OciDistributionError::RegistryError { envelope, .. } => {
                envelope.errors.iter().any(|x| {
                    matches!(
                        x.code,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::NotFound
                            | OciErrorCode::BlobUnknown
                    )
                })
            }
            OciDistributionError::ServerError { code: 404, .. } => true,
            OciDistributionError::ImageManifestNotFoundError(_) => true,
            _ => false,
        };
        if not_found {
            PackagerError::ImageNotFound {
                source_name: format!("registry {}", self.registry),
                wanted: format!("`{wanted}` (check the repository name and tag)"),
            }
        } else {
            PackagerError::Registry {
                reference: self.shown.to_string(),
                action: action.to_string(),
                source: e,
            }
        }
    }

    async fn fetch(
        &self,
        reference: &Reference,
        desc: &Descriptor,
        what: &str,
        cache: &BlobCache,
        progress: &dyn Progress,
    ) -> Result<bool, PackagerError> {
        if cache.contains(&desc.digest) {
            return Ok(true);
        }
        let od = OciDescriptor {
            media_type: desc.media_type.clone(),
            digest: desc.digest.clone(),
            size: i64::try_from(desc.size).unwrap_or(i64::MAX),
            ..Default::default()
        };
        let action = format!("downloading {what} {}", desc.digest);
        let wanted = format!("{}@{}", reference.repository(), desc.digest);
        let mut stream = self
            .client
            .pull_blob_stream(reference, &od)
            .await
            .map_err(|e| self.err(&action, &wanted, e))?;
        let mut writer = cache.writer()?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.err(&action, &wanted, e.into()))?;
            writer.write(&chunk)?;
            progress.advance(chunk.len() as u64);
        }
        let label = format!("{what} {} from {}", desc.digest, self.shown);
        writer.commit(Some(&desc.digest), &label)?;
        Ok(false)
    }
}

/// Whether `e` is the registry refusing who scar is (or is not): what it answered, said
/// for a person (the registry's own words stay in `e`).
fn refusal(e: &OciDistributionError) -> Option<&'static str> {
    let status = |code: u16| match code {
        401 => Some("401 Unauthorized"),
        403 => Some("403 Forbidden"),
        _ => None,
    };
    match e {
        OciDistributionError::UnauthorizedError { .. } => Some("401 Unauthorized"),
        OciDistributionError::AuthenticationFailure(_) => {
            Some("its token service refused the credentials")
        }
        OciDistributionError::ServerError { code, .. } => status(*code),
        // What `blob_exists` gives.
        OciDistributionError::RequestError(re) => status(re.status()?.as_u16()),
        OciDistributionError::RegistryError { envelope, .. } => {
            envelope.errors.iter().find_map(|x| match x.code {
                OciErrorCode::Unauthorized => Some("UNAUTHORIZED"),
                OciErrorCode::Denied => Some("DENIED"),
                _ => None,
            })
        }
        _ => None,
    }
}

/// Pulls `shown` with the credentials the Docker config file gives, from the first of its
/// registry's `mirrors` that has it, else from the registry itself.
pub(crate) async fn pull(
    shown: &str,
    cache: &BlobCache,
    progress: &dyn Progress,
    mirrors: &RegistryMirrors,
    architecture: &str,
) -> Result<PulledImage, PackagerError> {
    let docker = DockerConfig::from_env();
    pull_for(shown, cache, progress, &docker, mirrors, architecture).await
}

/// [`pull`] with the Docker config file `docker`. As Docker does with its
/// `registry-mirrors`, a mirror that has not the image (or does not answer, or refuses) is
/// passed over, said in a warning; one that serves content whose digest is wrong is an
/// error, not passed over: what comes in is verified as from any registry.
#[cfg(test)]
pub(crate) async fn pull_with(
    shown: &str,
    cache: &BlobCache,
    progress: &dyn Progress,
    docker: &DockerConfig,
    mirrors: &RegistryMirrors,
) -> Result<PulledImage, PackagerError> {
    let arch = crate::host_architecture();
    pull_for(shown, cache, progress, docker, mirrors, arch).await
}

/// [`pull_with`] choosing `architecture`'s image (OCI's name) from a manifest list.
async fn pull_for(
    shown: &str,
    cache: &BlobCache,
    progress: &dyn Progress,
    docker: &DockerConfig,
    mirrors: &RegistryMirrors,
    architecture: &str,
) -> Result<PulledImage, PackagerError> {
    let reference = parse_reference(shown)?;
    progress.start(Phase::Pull, None);
    for mirror in mirrors.of(reference.registry()) {
        let at = mirrored(&reference, mirror);
        let mirror_ctx = Ctx::mirror(shown, mirror, docker).await;
        match pull_from(&at, &mirror_ctx, cache, progress, architecture).await {
            Ok(image) => {
                progress.note(&format!(
                    "`{shown}` came from its mirror {}",
                    mirror.location
                ));
                progress.finish();
                return Ok(image);
            }
            Err(e) if !passes_over(&e) => return Err(e),
            Err(e) => progress.warn(&format!(
                "mirror {} passed over for `{shown}`: {e}",
                mirror.location
            )),
        }
    }
    let (reference, ctx) = Ctx::connect(shown, None, false, docker).await?;
    let image = pull_from(&reference, &ctx, cache, progress, architecture).await?;
    progress.finish();
    Ok(image)
}

/// `reference` on `mirror`: the same repository (under the mirror's prefix), tag and
/// digest.
fn mirrored(reference: &Reference, mirror: &Mirror) -> Reference {
    let repository = match &mirror.prefix {
        Some(prefix) => format!("{prefix}/{}", reference.repository()),
        None => reference.repository().to_string(),
    };
    let host = mirror.host.clone();
    match (reference.tag(), reference.digest()) {
        (Some(tag), Some(digest)) => {
            Reference::with_tag_and_digest(host, repository, tag.into(), digest.into())
        }
        (None, Some(digest)) => Reference::with_digest(host, repository, digest.into()),
        (tag, None) => Reference::with_tag(host, repository, tag.unwrap_or("latest").into()),
    }
}

/// Whether a mirror that failed with `e` is passed over for the next one (or the registry
/// itself): not when what it served failed verification.
fn passes_over(e: &PackagerError) -> bool {
    match e {
        PackagerError::Registry { source, .. } => {
            !matches!(source, OciDistributionError::DigestError(_))
        }
        PackagerError::ImageNotFound { .. }
        | PackagerError::RegistryUnreachable { .. }
        | PackagerError::RegistryAuth { .. } => true,
        _ => false,
    }
}

/// Pulls `reference` through `ctx` (the registry `ctx.shown` names, or a mirror of it).
async fn pull_from(
    reference: &Reference,
    ctx: &Ctx<'_>,
    cache: &BlobCache,
    progress: &dyn Progress,
    architecture: &str,
) -> Result<PulledImage, PackagerError> {
    let shown = ctx.shown;
    let source_name = format!("`{shown}`");
    let wanted = format!(
        "{}:{}",
        reference.repository(),
        reference.digest().or(reference.tag()).unwrap_or("latest")
    );
    let mut current = reference.clone();
    let (mut bytes, mut digest) = ctx
        .client
        .pull_manifest_raw(&current, &ctx.credentials.auth, ACCEPT)
        .await
        .map_err(|e| ctx.err("fetching the manifest", &wanted, e))?;
    for _ in 0..4 {
        let m: ManifestOrIndex = parse(&bytes, &source_name, "manifest")?;
        let expected = digest.starts_with("sha256:").then_some(digest.as_str());
        let label = format!("manifest of {source_name}");
        cache.ingest(&bytes[..], expected, &label, &crate::NoProgress)?;
        if let Some(list) = &m.manifests {
            let chosen = select_platform_for(list, &source_name, architecture)?;
            current = reference.clone_with_digest(chosen.digest.clone());
            (bytes, digest) = ctx
                .client
                .pull_manifest_raw(&current, &ctx.credentials.auth, ACCEPT)
                .await
                .map_err(|e| ctx.err("fetching the platform manifest", &chosen.digest, e))?;
            continue;
        }
        let manifest = as_image_manifest(m, &source_name)?;
        let cached = ctx
            .fetch(&current, &manifest.config, "config", cache, progress)
            .await?;
        progress.blob(&manifest.config.digest, cached);
        let mut layers = Vec::new();
        for l in &manifest.layers {
            let cached = ctx.fetch(&current, l, "layer", cache, progress).await?;
            progress.blob(&l.digest, cached);
            layers.push(LayerRef {
                digest: l.digest.clone(),
                media_type: l.media_type.clone(),
                size: l.size,
            });
        }
        let (image, _) = finish(shown, digest, &manifest.config.digest, layers, cache)?;
        return Ok(image);
    }
    Err(PackagerError::BadManifest {
        source_name,
        what: "manifest list".into(),
        reason: "manifest lists nested more than 4 deep".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_use_http() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("index.docker.io"));
        assert!(!is_loopback("10.0.0.1:5000"));
    }

    /// A mirror that has not the image, or does not answer, is passed over; one whose
    /// manifest does not match its digest is an error.
    #[test]
    fn a_mirror_serving_the_wrong_content_is_not_passed_over() {
        let bad = PackagerError::Registry {
            reference: "grycap/cowsay".into(),
            action: "fetching the manifest".into(),
            source: OciDistributionError::DigestError(
                oci_client::errors::DigestError::VerificationError {
                    expected: "sha256:a".into(),
                    actual: "sha256:b".into(),
                },
            ),
        };
        assert!(!passes_over(&bad));
        let missing = PackagerError::ImageNotFound {
            source_name: "registry 127.0.0.1:5000".into(),
            wanted: "grycap/cowsay:latest".into(),
        };
        assert!(passes_over(&missing));
    }
}
