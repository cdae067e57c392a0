//! Gzip for layers that arrive uncompressed.
//!
//! `docker save` writes every layer as a plain tar, so an image from such an archive takes
//! two to three times the bytes of the same image pulled from a registry. Packages that
//! have to fit a limit (the zip package's 250 MB) or go over the network (a push to a
//! registry) carry such layers gzipped instead: [`gzip_raw_layers`].
//!
//! A layer is cut into chunks of [`CHUNK`] bytes, each compressed on its own core into one
//! gzip member (no time, no name), and the members are concatenated in order: a
//! multi-member gzip file, which GNU tar, udocker, containerd, Lambda and this crate's own
//! extraction read as one stream. The same layer always gives the same bytes, whatever the
//! number of cores; memory holds a few chunks per core, whatever the layer's size.
//!
//! The result is kept in the blob cache under its own digest, and the pairing raw digest ->
//! gzip digest under `<cache>/gzip/<raw hex>`, so a layer is compressed once.

use std::fs;
use std::io::{self, Read, Write};

use flate2::{Compression, GzBuilder};

use crate::cache::{digest_hex, BlobCache};
use crate::error::PackagerError;
use crate::extract::is_gzip;
use crate::parallel::map_ordered;
use crate::progress::{Phase, Progress};
use crate::LayerRef;

/// Bytes per gzip member. Big enough that the restart costs under 0.1% of compression,
/// small enough to keep every core busy on one layer.
pub(crate) const CHUNK: usize = 4 << 20;

/// Compression level: 1, as `gzip -1`. Layers are mostly binaries, where higher levels
/// gain a few percent for several times the time.
const LEVEL: u32 = 1;

/// The OCI media type of a gzip layer.
pub(crate) const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Whether the cached layer is stored uncompressed (a plain tar).
pub(crate) fn is_raw(layer: &LayerRef, cache: &BlobCache) -> Result<bool, PackagerError> {
    let mt = layer.media_type.as_str();
    if mt.ends_with("gzip") || mt.ends_with("zstd") {
        return Ok(false);
    }
    let path = cache.path(&layer.digest);
    is_gzip(&path)
        .map(|gz| !gz)
        .map_err(|e| PackagerError::io("read cached blob", &path, e))
}

/// `layers` with every uncompressed one replaced by its gzip (in the cache), and how many
/// that was. Layers that are already compressed are kept as they are. Progress:
/// `Phase::Compress` over the raw layers' bytes.
pub fn gzip_raw_layers(
    layers: &[LayerRef],
    cache: &BlobCache,
    progress: &dyn Progress,
) -> Result<(Vec<LayerRef>, usize), PackagerError> {
    let mut raw = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        if is_raw(l, cache)? {
            raw.push(i);
        }
    }
    let mut out = layers.to_vec();
    if raw.is_empty() {
        return Ok((out, 0));
    }
    let total = raw.iter().map(|&i| layers[i].size).sum();
    progress.start(Phase::Compress, Some(total));
    for &i in &raw {
        let (digest, size) = gzip_layer(&layers[i].digest, cache, progress)?;
        out[i] = LayerRef {
            digest,
            media_type: OCI_LAYER_GZIP.into(),
            size,
        };
    }
    progress.finish();
    Ok((out, raw.len()))
}

/// Where the gzip of the raw blob `digest` is remembered.
fn memo_path(cache: &BlobCache, digest: &str) -> Option<std::path::PathBuf> {
    digest_hex(digest).map(|hex| cache.root().join("gzip").join(hex))
}

/// The gzip of one cached raw blob, compressed now or found from an earlier run.
fn gzip_layer(
    digest: &str,
    cache: &BlobCache,
    progress: &dyn Progress,
) -> Result<(String, u64), PackagerError> {
    let memo = memo_path(cache, digest);
    if let Some(found) = memo
        .as_ref()
        .and_then(|m| fs::read_to_string(m).ok())
        .map(|s| s.trim().to_string())
        .filter(|d| cache.contains(d))
    {
        let size = fs::metadata(cache.path(&found))
            .map_err(|e| PackagerError::io("inspect cached blob", cache.path(&found), e))?
            .len();
        progress.advance(size);
        progress.blob(&found, true);
        return Ok((found, size));
    }
    let path = cache.path(digest);
    let mut file = cache.open(digest)?;
    let mut writer = cache.writer()?;
    let chunks = std::iter::from_fn(|| match read_chunk(&mut file) {
        Ok(c) if c.is_empty() => None,
        Ok(c) => Some(Ok(c)),
        Err(e) => Some(Err(PackagerError::io("read cached blob", &path, e))),
    });
    map_ordered(
        chunks,
        |chunk| gzip_member(&chunk).map(|gz| (chunk.len(), gz)),
        |member| {
            let (read, gz) = member.map_err(|e| PackagerError::io("compress", &path, e))?;
            writer.write(&gz)?;
            progress.advance(read as u64);
            Ok(())
        },
        || {
            PackagerError::io(
                "compress",
                &path,
                io::Error::other("a compression worker stopped"),
            )
        },
    )?;
    let size = writer.len();
    let gz = writer.commit(None, "gzipped layer")?;
    if let Some(memo) = memo {
        // Only an optimisation: a failure to remember means compressing again next time.
        let _ = remember(&memo, &gz);
    }
    progress.blob(&gz, false);
    Ok((gz, size))
}

/// Writes the memo atomically (a temporary file renamed into place).
fn remember(memo: &std::path::Path, gz: &str) -> io::Result<()> {
    let dir = memo.parent().ok_or_else(|| io::Error::other("no parent"))?;
    fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    writeln!(tmp, "{gz}")?;
    tmp.persist(memo).map_err(|e| e.error)?;
    Ok(())
}

/// Up to [`CHUNK`] bytes (fewer only at the end).
fn read_chunk(file: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut chunk = Vec::with_capacity(CHUNK);
    file.take(CHUNK as u64).read_to_end(&mut chunk)?;
    Ok(chunk)
}

/// One complete gzip member, deterministic: no time, no name, OS "unknown".
pub(crate) fn gzip_member(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut enc = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::with_capacity(data.len() / 2), Compression::new(LEVEL));
    enc.write_all(data)?;
    enc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_concatenate_into_one_stream() {
        let data: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i % 251) as u8).collect();
        let mut gz = Vec::new();
        for c in data.chunks(CHUNK) {
            gz.extend(gzip_member(c).unwrap());
        }
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        assert_eq!(gzip_member(b"x").unwrap(), gzip_member(b"x").unwrap());
    }
}
