//! Local sources: OCI layout directories, OCI archives and `docker save` archives.
//! All synchronous; [`crate::pull`] runs them on a blocking thread.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::cache::{digest_hex, sha256_reader, BlobCache, MAX_METADATA_BYTES};
use crate::error::PackagerError;
use crate::extract::is_gzip;
use crate::manifest::{
    as_image_manifest, check_digest, finish, parse, select_platform, Descriptor, DockerSaveEntry,
    ManifestOrIndex, REF_NAME,
};
use crate::progress::{Phase, Progress};
use crate::source::{entry_name, open_archive};
use crate::{LayerRef, PulledImage};

/// Resolves an OCI index to one image and makes sure its blobs are in the cache.
/// `fetch` brings one blob into the cache and says whether it was already there.
fn resolve_oci(
    index_bytes: &[u8],
    tag: Option<&str>,
    source_name: &str,
    cache: &BlobCache,
    fetch: &mut dyn FnMut(&Descriptor, &str) -> Result<bool, PackagerError>,
    progress: &dyn Progress,
) -> Result<PulledImage, PackagerError> {
    let index: ManifestOrIndex = parse(index_bytes, source_name, "index.json")?;
    let entries = index.manifests.unwrap_or_default();
    let chosen = match tag {
        Some(tag) => entries
            .iter()
            .find(|d| {
                d.annotations.get(REF_NAME).map(String::as_str) == Some(tag)
                    || d.annotations
                        .get("io.containerd.image.name")
                        .is_some_and(|n| n.rsplit_once(':').is_some_and(|(_, t)| t == tag))
            })
            .ok_or_else(|| PackagerError::ImageNotFound {
                source_name: source_name.to_string(),
                wanted: format!("tagged `{tag}` (tags: {})", tags(&entries)),
            })?,
        None if entries.len() == 1 => &entries[0],
        None if entries.is_empty() => {
            return Err(PackagerError::ImageNotFound {
                source_name: source_name.to_string(),
                wanted: "at all (index.json lists no manifests)".into(),
            })
        }
        None => match entries
            .iter()
            .find(|d| d.annotations.get(REF_NAME).map(String::as_str) == Some("latest"))
        {
            Some(d) => d,
            None if entries.iter().all(|d| d.platform.is_some()) => {
                select_platform(&entries, source_name)?
            }
            None => {
                return Err(PackagerError::ImageNotFound {
                    source_name: source_name.to_string(),
                    wanted: format!(
                        "chosen: it has {} images, name one as PATH:TAG (tags: {})",
                        entries.len(),
                        tags(&entries)
                    ),
                })
            }
        },
    };
    let mut desc = chosen.clone();
    for _ in 0..4 {
        check_digest(&desc.digest, source_name)?;
        let cached = fetch(&desc, "manifest")?;
        progress.blob(&desc.digest, cached);
        let bytes = cache.read_small(&desc.digest)?;
        let m: ManifestOrIndex = parse(&bytes, source_name, "manifest")?;
        if let Some(list) = &m.manifests {
            desc = select_platform(list, source_name)?.clone();
            continue;
        }
        let manifest = as_image_manifest(m, source_name)?;
        let cached = fetch(&manifest.config, "config")?;
        progress.blob(&manifest.config.digest, cached);
        let mut layers = Vec::new();
        for l in &manifest.layers {
            let cached = fetch(l, "layer")?;
            progress.blob(&l.digest, cached);
            layers.push(LayerRef {
                digest: l.digest.clone(),
                media_type: l.media_type.clone(),
                size: l.size,
            });
        }
        let (image, _) = finish(
            source_name,
            desc.digest.clone(),
            &manifest.config.digest,
            layers,
            cache,
        )?;
        return Ok(image);
    }
    Err(PackagerError::BadManifest {
        source_name: source_name.to_string(),
        what: "index".into(),
        reason: "indexes nested more than 4 deep".into(),
    })
}

fn tags(entries: &[Descriptor]) -> String {
    let t: Vec<&str> = entries
        .iter()
        .filter_map(|d| d.annotations.get(REF_NAME).map(String::as_str))
        .collect();
    if t.is_empty() {
        "none".into()
    } else {
        t.join(", ")
    }
}

/// Pulls from an OCI layout directory: blobs are copied into the cache (verified) unless
/// already there.
pub(crate) fn pull_layout(
    dir: &Path,
    tag: Option<&str>,
    cache: &BlobCache,
    progress: &dyn Progress,
) -> Result<PulledImage, PackagerError> {
    let source_name = format!("`{}`", dir.display());
    let index_path = dir.join("index.json");
    let index = read_small_file(&index_path).map_err(|e| match e {
        PackagerError::Input { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            PackagerError::NotAnImage {
                path: dir.to_path_buf(),
                kind: "layout directory",
                reason: "it has no index.json".into(),
            }
        }
        e => e,
    })?;
    progress.start(Phase::Pull, None);
    let mut fetch = |d: &Descriptor, what: &str| -> Result<bool, PackagerError> {
        check_digest(&d.digest, &source_name)?;
        if cache.contains(&d.digest) {
            return Ok(true);
        }
        let hex = digest_hex(&d.digest).unwrap_or_default();
        let path = dir.join("blobs").join("sha256").join(hex);
        let file = File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => PackagerError::MissingBlob {
                source_name: source_name.clone(),
                digest: d.digest.clone(),
            },
            _ => PackagerError::input(&path, e),
        })?;
        let label = format!("{what} {} of {source_name}", d.digest);
        cache.ingest(file, Some(&d.digest), &label, progress)?;
        Ok(false)
    };
    let result = resolve_oci(&index, tag, &source_name, cache, &mut fetch, progress);
    progress.finish();
    result
}

fn read_small_file(path: &Path) -> Result<Vec<u8>, PackagerError> {
    let f = File::open(path).map_err(|e| PackagerError::input(path, e))?;
    let mut buf = Vec::new();
    f.take(MAX_METADATA_BYTES)
        .read_to_end(&mut buf)
        .map_err(|e| PackagerError::input(path, e))?;
    Ok(buf)
}

enum Alias {
    Sym(String),
    Hard(String),
}

/// What one pass over an archive found.
#[derive(Default)]
struct Pass {
    /// Archive path -> digest of the bytes stored in the cache.
    files: HashMap<String, String>,
    links: HashMap<String, Alias>,
    /// Small JSON documents, kept in memory.
    small: HashMap<String, Vec<u8>>,
    /// Blobs this pull added to the cache (removed again if they turn out bad).
    added: HashSet<String>,
}

impl Pass {
    /// Follows symlinks and hard links between archive entries.
    fn resolve(&self, name: &str) -> Option<&str> {
        let mut cur = entry_name(name.as_bytes());
        for _ in 0..16 {
            if let Some(d) = self.files.get(&cur) {
                return Some(d);
            }
            cur = match self.links.get(&cur)? {
                Alias::Hard(t) => entry_name(t.as_bytes()),
                Alias::Sym(t) if t.starts_with('/') => entry_name(t.as_bytes()),
                Alias::Sym(t) => {
                    let dir = cur.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                    entry_name(format!("{dir}/{t}").as_bytes())
                }
            };
        }
        None
    }

    fn small(&self, name: &str) -> Option<&[u8]> {
        self.small
            .get(&entry_name(name.as_bytes()))
            .map(Vec::as_slice)
    }

    fn discard_added(&self, cache: &BlobCache) {
        for d in &self.added {
            let _ = std::fs::remove_file(cache.path(d));
        }
    }
}

/// Pulls from an archive (docker save or OCI), reading it exactly once.
pub(crate) fn pull_archive(
    path: &Path,
    prefer_oci: bool,
    cache: &BlobCache,
    progress: &dyn Progress,
) -> Result<PulledImage, PackagerError> {
    let source_name = format!("`{}`", path.display());
    let size = std::fs::metadata(path).map(|m| m.len()).ok();
    progress.start(Phase::Pull, size);
    let mut pass = Pass::default();
    let result = read_pass(path, &source_name, cache, progress, &mut pass).and_then(|()| {
        let has_index = pass.small.contains_key("index.json");
        let has_docker = pass.small.contains_key("manifest.json");
        if has_index && (prefer_oci || !has_docker) {
            pull_oci_from_pass(&pass, &source_name, cache, progress)
        } else if has_docker {
            pull_docker_from_pass(&pass, &source_name, cache, progress)
        } else {
            Err(PackagerError::NotAnImage {
                path: path.to_path_buf(),
                kind: "archive",
                reason: "it has neither manifest.json (docker save) nor index.json (OCI)".into(),
            })
        }
    });
    if result.is_err() {
        pass.discard_added(cache);
    }
    progress.finish();
    result
}

fn read_pass(
    path: &Path,
    source_name: &str,
    cache: &BlobCache,
    progress: &dyn Progress,
    pass: &mut Pass,
) -> Result<(), PackagerError> {
    let not_tar = |e: std::io::Error| PackagerError::NotAnImage {
        path: path.to_path_buf(),
        kind: "archive",
        reason: format!("it is not a readable tar archive ({e})"),
    };
    let mut archive = tar::Archive::new(open_archive(path)?);
    for entry in archive.entries().map_err(not_tar)? {
        let mut entry = entry.map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => PackagerError::Truncated {
                path: path.to_path_buf(),
                entry: "(next header)".into(),
            },
            _ => not_tar(e),
        })?;
        let name = entry_name(&entry.path_bytes());
        let link = entry
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned());
        let declared = entry.header().size().unwrap_or(0);
        let truncated = || PackagerError::Truncated {
            path: path.to_path_buf(),
            entry: name.clone(),
        };
        match entry.header().entry_type() {
            tar::EntryType::Symlink => {
                if let Some(t) = link {
                    pass.links.insert(name, Alias::Sym(t));
                }
            }
            tar::EntryType::Link => {
                if let Some(t) = link {
                    pass.links.insert(name, Alias::Hard(t));
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let is_blob = name.starts_with("blobs/");
                let is_meta = !is_blob
                    && (name.ends_with(".json") || name == "oci-layout" || name == "repositories");
                let is_layer =
                    name.ends_with(".tar") || name.ends_with(".tar.gz") || name.ends_with(".tgz");
                if is_meta {
                    if declared > MAX_METADATA_BYTES {
                        continue;
                    }
                    let mut buf = Vec::with_capacity(declared as usize);
                    entry
                        .read_to_end(&mut buf)
                        .map_err(|e| PackagerError::input(path, e))?;
                    if (buf.len() as u64) < declared {
                        return Err(truncated());
                    }
                    pass.small.insert(name, buf);
                } else if is_blob || is_layer {
                    // Blob files are named by their digest: check it on the way in.
                    let expected = name
                        .strip_prefix("blobs/")
                        .map(|n| n.replacen('/', ":", 1))
                        .filter(|d| digest_hex(d).is_some());
                    let label = format!("`{name}` in {source_name}");
                    let mut writer = cache.writer()?;
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = entry.read(&mut buf).map_err(|e| match e.kind() {
                            std::io::ErrorKind::UnexpectedEof => truncated(),
                            _ => PackagerError::input(path, e),
                        })?;
                        if n == 0 {
                            break;
                        }
                        writer.write(&buf[..n])?;
                        progress.advance(n as u64);
                    }
                    if writer.len() < declared {
                        return Err(truncated());
                    }
                    let (digest, new) = writer.commit_new(expected.as_deref(), &label)?;
                    if new {
                        pass.added.insert(digest.clone());
                    }
                    pass.files.insert(name, digest);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn pull_oci_from_pass(
    pass: &Pass,
    source_name: &str,
    cache: &BlobCache,
    progress: &dyn Progress,
) -> Result<PulledImage, PackagerError> {
    let index = pass.small("index.json").unwrap_or_default();
    let seen: HashSet<&str> = pass.files.values().map(String::as_str).collect();
    let mut fetch = |d: &Descriptor, _what: &str| -> Result<bool, PackagerError> {
        if seen.contains(d.digest.as_str()) && cache.contains(&d.digest) {
            Ok(!pass.added.contains(&d.digest))
        } else {
            Err(PackagerError::MissingBlob {
                source_name: source_name.to_string(),
                digest: d.digest.clone(),
            })
        }
    };
    resolve_oci(index, None, source_name, cache, &mut fetch, progress)
}

fn pull_docker_from_pass(
    pass: &Pass,
    source_name: &str,
    cache: &BlobCache,
    progress: &dyn Progress,
) -> Result<PulledImage, PackagerError> {
    let manifest = pass.small("manifest.json").unwrap_or_default();
    let entries: Vec<DockerSaveEntry> = parse(manifest, source_name, "manifest.json")?;
    let Some(entry) = entries.first() else {
        return Err(PackagerError::ImageNotFound {
            source_name: source_name.to_string(),
            wanted: "at all (manifest.json is empty)".into(),
        });
    };
    let missing = |name: &str| PackagerError::MissingBlob {
        source_name: source_name.to_string(),
        digest: format!("`{name}` (is the archive truncated?)"),
    };
    // The config: a blob file (newer docker) or a `<hex>.json` kept in memory.
    let config_digest = match pass.resolve(&entry.config) {
        Some(d) => d.to_string(),
        None => {
            let bytes = pass
                .small(&entry.config)
                .ok_or_else(|| missing(&entry.config))?;
            let stem = entry_name(entry.config.as_bytes());
            let stem = stem.rsplit('/').next().unwrap_or_default();
            let expected = stem
                .strip_suffix(".json")
                .map(|h| format!("sha256:{h}"))
                .filter(|d| digest_hex(d).is_some());
            let label = format!("config `{}` in {source_name}", entry.config);
            cache.ingest(bytes, expected.as_deref(), &label, progress)?
        }
    };
    progress.blob(&config_digest, false);
    let config_bytes = cache.read_small(&config_digest)?;
    let config: crate::manifest::ConfigFile = parse(&config_bytes, source_name, "image config")?;
    let diff_ids = config.rootfs.map(|r| r.diff_ids).unwrap_or_default();
    if diff_ids.len() != entry.layers.len() {
        return Err(PackagerError::BadManifest {
            source_name: source_name.to_string(),
            what: "image".into(),
            reason: format!(
                "manifest.json lists {} layers but the config has {} diff_ids",
                entry.layers.len(),
                diff_ids.len()
            ),
        });
    }
    let mut layers = Vec::new();
    for (name, diff_id) in entry.layers.iter().zip(&diff_ids) {
        let digest = pass.resolve(name).ok_or_else(|| missing(name))?.to_string();
        let blob = cache.path(&digest);
        let gz = is_gzip(&blob).map_err(|e| PackagerError::io("read cached blob", &blob, e))?;
        let uncompressed = if gz {
            let f = cache.open(&digest)?;
            sha256_reader(flate2::read::MultiGzDecoder::new(f))
                .map_err(|e| PackagerError::input(format!("layer `{name}` in {source_name}"), e))?
        } else {
            digest.clone()
        };
        if &uncompressed != diff_id {
            return Err(PackagerError::DigestMismatch {
                what: format!("layer `{name}` in {source_name}"),
                expected: diff_id.clone(),
                actual: uncompressed,
            });
        }
        let size = std::fs::metadata(&blob).map(|m| m.len()).unwrap_or(0);
        progress.blob(&digest, !pass.added.contains(&digest));
        layers.push(LayerRef {
            digest,
            media_type: if gz {
                "application/vnd.docker.image.rootfs.diff.tar.gzip".into()
            } else {
                "application/vnd.docker.image.rootfs.diff.tar".into()
            },
            size,
        });
    }
    let (image, _) = finish(
        source_name,
        config_digest.clone(),
        &config_digest,
        layers,
        cache,
    )?;
    Ok(image)
}
