//! Pulling from registries that speak the OCI distribution API, through `oci-client`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::cache::BlobCache;
use crate::error::PackagerError;
use crate::manifest::{
    as_image_manifest, finish, parse, select_platform, Descriptor, ManifestOrIndex, DOCKER_LIST,
    DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST,
};
use crate::progress::{Phase, Progress};
use crate::{LayerRef, PulledImage};

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

fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// Basic credentials for `registry` from the Docker config file, else anonymous (the
/// client then asks the registry's token service for an anonymous bearer token).
pub(crate) fn docker_auth(registry: &str) -> RegistryAuth {
    let Some(path) = docker_config_path() else {
        return RegistryAuth::Anonymous;
    };
    let Ok(text) = std::fs::read(&path) else {
        return RegistryAuth::Anonymous;
    };
    auth_from_config(&text, registry).unwrap_or(RegistryAuth::Anonymous)
}

fn auth_from_config(text: &[u8], registry: &str) -> Option<RegistryAuth> {
    let json: serde_json::Value = serde_json::from_slice(text).ok()?;
    let auths = json.get("auths")?.as_object()?;
    let hub = ["docker.io", "index.docker.io", "registry-1.docker.io"];
    let wanted: Vec<&str> = if hub.contains(&registry) {
        hub.to_vec()
    } else {
        vec![registry]
    };
    for (key, entry) in auths {
        let host = key
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default();
        if !wanted.contains(&host) {
            continue;
        }
        if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .ok()?;
            let decoded = String::from_utf8(decoded).ok()?;
            let (user, pass) = decoded.split_once(':')?;
            return Some(RegistryAuth::Basic(user.to_string(), pass.to_string()));
        }
        let user = entry.get("username").and_then(|u| u.as_str());
        let pass = entry.get("password").and_then(|p| p.as_str());
        if let (Some(u), Some(p)) = (user, pass) {
            return Some(RegistryAuth::Basic(u.to_string(), p.to_string()));
        }
    }
    None
}

/// A client for `registry` (`host[:port]`): plain HTTP on loopback, HTTPS elsewhere.
/// `monolithic` uploads each blob in one streamed `PUT` (registries such as ECR mishandle
/// chunked `PATCH` uploads).
pub(crate) fn client_for(registry: &str, monolithic: bool) -> Client {
    let mut insecure = Vec::new();
    if is_loopback(registry) {
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

/// A client with its credentials, and the names errors are reported with.
pub(crate) struct Ctx<'a> {
    pub(crate) client: Client,
    pub(crate) auth: RegistryAuth,
    pub(crate) shown: &'a str,
    pub(crate) registry: String,
}

impl<'a> Ctx<'a> {
    /// The reference `shown` names (`[docker://]host[:port]/repo[:tag]`) and a context for
    /// its registry: basic auth with `credentials` when given, else from the Docker config
    /// file, else anonymous; `monolithic` as [`client_for`] says.
    pub(crate) fn connect(
        shown: &'a str,
        credentials: Option<(String, String)>,
        monolithic: bool,
    ) -> Result<(Reference, Ctx<'a>), PackagerError> {
        let text = shown.strip_prefix("docker://").unwrap_or(shown);
        let reference: Reference = text.parse().map_err(|source| PackagerError::BadReference {
            reference: shown.to_string(),
            source,
        })?;
        let registry = reference.resolve_registry().to_string();
        let auth = match credentials {
            Some((user, password)) => RegistryAuth::Basic(user, password),
            None => docker_auth(reference.registry()),
        };
        let ctx = Ctx {
            client: client_for(&registry, monolithic),
            auth,
            shown,
            registry,
        };
        Ok((reference, ctx))
    }

    pub(crate) fn err(&self, action: &str, wanted: &str, e: OciDistributionError) -> PackagerError {
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

pub(crate) async fn pull(
    shown: &str,
    cache: &BlobCache,
    progress: &dyn Progress,
) -> Result<PulledImage, PackagerError> {
    let (reference, ctx) = Ctx::connect(shown, None, false)?;
    let source_name = format!("`{shown}`");
    progress.start(Phase::Pull, None);

    let wanted = format!(
        "{}:{}",
        reference.repository(),
        reference.digest().or(reference.tag()).unwrap_or("latest")
    );
    let mut current = reference.clone();
    let (mut bytes, mut digest) = ctx
        .client
        .pull_manifest_raw(&current, &ctx.auth, ACCEPT)
        .await
        .map_err(|e| ctx.err("fetching the manifest", &wanted, e))?;
    for _ in 0..4 {
        let m: ManifestOrIndex = parse(&bytes, &source_name, "manifest")?;
        let expected = digest.starts_with("sha256:").then_some(digest.as_str());
        let label = format!("manifest of {source_name}");
        cache.ingest(&bytes[..], expected, &label, &crate::NoProgress)?;
        if let Some(list) = &m.manifests {
            let chosen = select_platform(list, &source_name)?;
            current = reference.clone_with_digest(chosen.digest.clone());
            (bytes, digest) = ctx
                .client
                .pull_manifest_raw(&current, &ctx.auth, ACCEPT)
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
        progress.finish();
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

    #[test]
    fn docker_config_auth() {
        let cfg = br#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"},
                     "reg:5000":{"auth":"YWxpY2U6czNjcjN0"}}}"#;
        match auth_from_config(cfg, "reg:5000") {
            Some(RegistryAuth::Basic(u, p)) => {
                assert_eq!((u.as_str(), p.as_str()), ("alice", "s3cr3t"))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            auth_from_config(cfg, "docker.io"),
            Some(RegistryAuth::Basic(..))
        ));
        assert!(auth_from_config(cfg, "other").is_none());
    }
}
