//! The JSON documents of OCI and Docker images, reduced to what scar needs.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::cache::{digest_hex, BlobCache};
use crate::error::PackagerError;
use crate::{LayerRef, PulledImage};

pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
#[cfg_attr(not(feature = "registry"), allow(dead_code))]
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub(crate) const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A content descriptor (manifest, config, layer, index entry).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
}

/// A manifest or an index: which one is told by the fields present.
#[derive(Debug, Deserialize)]
pub(crate) struct ManifestOrIndex {
    #[serde(rename = "schemaVersion", default)]
    pub schema_version: Option<i64>,
    #[serde(rename = "mediaType", default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    pub manifests: Option<Vec<Descriptor>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ConfigFile {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub config: Option<ContainerConfig>,
    #[serde(default)]
    pub rootfs: Option<RootFs>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ContainerConfig {
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RootFs {
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

/// One image of a `docker save` manifest.json.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DockerSaveEntry {
    pub config: String,
    #[serde(default)]
    pub layers: Vec<String>,
}

pub(crate) fn parse<'a, T: Deserialize<'a>>(
    bytes: &'a [u8],
    source_name: &str,
    what: &str,
) -> Result<T, PackagerError> {
    serde_json::from_slice(bytes).map_err(|e| PackagerError::BadManifest {
        source_name: source_name.to_string(),
        what: what.to_string(),
        reason: e.to_string(),
    })
}

/// The OCI/Docker architecture name of this machine.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// Picks the linux image for this machine's architecture from an index / manifest list.
pub(crate) fn select_platform<'a>(
    entries: &'a [Descriptor],
    source_name: &str,
) -> Result<&'a Descriptor, PackagerError> {
    select_platform_for(entries, source_name, host_architecture())
}

/// Picks the linux image for `arch` (OCI's name: `amd64`, `arm64`) from an index /
/// manifest list.
pub(crate) fn select_platform_for<'a>(
    entries: &'a [Descriptor],
    source_name: &str,
    arch: &str,
) -> Result<&'a Descriptor, PackagerError> {
    let found = entries.iter().find(|d| {
        d.platform
            .as_ref()
            .is_some_and(|p| p.os == "linux" && p.architecture == arch)
    });
    if let Some(d) = found {
        return Ok(d);
    }
    // An index without platforms and a single image (as umoci writes) means that image.
    if entries.len() == 1 && entries[0].platform.is_none() {
        return Ok(&entries[0]);
    }
    let available: Vec<String> = entries
        .iter()
        .filter_map(|d| d.platform.as_ref())
        .map(|p| format!("{}/{}", p.os, p.architecture))
        .collect();
    Err(PackagerError::NoMatchingPlatform {
        source_name: source_name.to_string(),
        architecture: arch.to_string(),
        available: if available.is_empty() {
            "no platform information".into()
        } else {
            available.join(", ")
        },
    })
}

/// Checks a descriptor's digest before it is used as a file name or cache key.
pub(crate) fn check_digest(d: &str, source_name: &str) -> Result<(), PackagerError> {
    if digest_hex(d).is_some() {
        Ok(())
    } else {
        Err(PackagerError::BadManifest {
            source_name: source_name.to_string(),
            what: "digest".into(),
            reason: format!("`{d}` is not a sha256 digest"),
        })
    }
}

/// What an image manifest says, once it is known to be one.
pub(crate) struct ImageManifest {
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

pub(crate) fn as_image_manifest(
    m: ManifestOrIndex,
    source_name: &str,
) -> Result<ImageManifest, PackagerError> {
    if m.schema_version == Some(1)
        || m.media_type
            .as_deref()
            // Not `contains("manifest.v1")`: the OCI type is `...image.manifest.v1+json`.
            .is_some_and(|t| t.starts_with("application/vnd.docker.distribution.manifest.v1"))
    {
        return Err(PackagerError::Unsupported {
            what: format!("{source_name} uses Docker schema 1 manifests (deprecated); re-push it as schema 2 or OCI"),
        });
    }
    let (Some(config), Some(layers)) = (m.config, m.layers) else {
        return Err(PackagerError::BadManifest {
            source_name: source_name.to_string(),
            what: "image manifest".into(),
            reason: "it has no config or no layers".into(),
        });
    };
    check_digest(&config.digest, source_name)?;
    for l in &layers {
        check_digest(&l.digest, source_name)?;
    }
    Ok(ImageManifest { config, layers })
}

/// Builds the result once the config and every layer are in the cache.
pub(crate) fn finish(
    source: &str,
    manifest_digest: String,
    config_digest: &str,
    layers: Vec<LayerRef>,
    cache: &BlobCache,
) -> Result<(PulledImage, ConfigFile), PackagerError> {
    let bytes = cache.read_small(config_digest)?;
    let file: ConfigFile = parse(&bytes, source, "image config")?;
    let c = file.config.as_ref();
    let config = scar_core::ImageConfig {
        entrypoint: c.and_then(|c| c.entrypoint.clone()).unwrap_or_default(),
        cmd: c.and_then(|c| c.cmd.clone()).unwrap_or_default(),
        env: c.and_then(|c| c.env.clone()).unwrap_or_default(),
        working_dir: c
            .and_then(|c| c.working_dir.clone())
            .filter(|w| !w.is_empty()),
        user: c.and_then(|c| c.user.clone()).filter(|u| !u.is_empty()),
    };
    let image = PulledImage {
        source: source.to_string(),
        manifest_digest,
        config,
        architecture: file.architecture.clone(),
        layers,
    };
    Ok((image, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(arch: &str, digest: &str) -> Descriptor {
        Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: digest.into(),
            size: 1,
            platform: Some(Platform {
                architecture: arch.into(),
                os: "linux".into(),
            }),
            annotations: BTreeMap::new(),
        }
    }

    #[test]
    fn oci_manifest_with_media_type_is_not_schema_1() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let doc = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"digest":"{digest}"}},"layers":[]}}"#
        );
        let m: ManifestOrIndex = parse(doc.as_bytes(), "x", "manifest").unwrap();
        assert!(as_image_manifest(m, "x").is_ok());
        let v1 = r#"{"schemaVersion":1,"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws"}"#;
        let m: ManifestOrIndex = parse(v1.as_bytes(), "x", "manifest").unwrap();
        assert!(matches!(
            as_image_manifest(m, "x"),
            Err(PackagerError::Unsupported { .. })
        ));
    }

    #[test]
    fn picks_host_architecture() {
        let entries = vec![entry("s390x", "a"), entry(host_architecture(), "b")];
        assert_eq!(select_platform(&entries, "x").unwrap().digest, "b");
        let err = select_platform(&entries[..1], "x").unwrap_err().to_string();
        assert!(err.contains("linux/s390x"), "{err}");
    }
}
