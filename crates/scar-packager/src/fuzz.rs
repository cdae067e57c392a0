//! Fuzz entry points: the parsers of scar-packager that take untrusted input (layers,
//! image archives and their manifests and configs), as plain functions. The fuzz targets
//! (`fuzz/`, `cargo xtask fuzz`) call them, and so do the regression tests that replay
//! the seed corpora and past crashes. Each one must never panic, whatever the bytes, and
//! checks the invariants that matter: nothing written outside the root, no staging left.

use std::io::Write;
use std::path::Path;

use crate::extract::{ExtractLimits, ExtractOptions, Extractor};
use crate::{BlobCache, NoProgress};

/// Limits small enough for a fuzzer's pace, with the ratio check on.
const LIMITS: ExtractLimits = ExtractLimits {
    max_image_bytes: 64 << 20,
    max_layer_ratio: 100,
    min_free_bytes: 0,
};

/// A layer through the whole extractor, into a new root inside a sentinel directory;
/// then: nothing beside the root, no staging left on failure.
pub fn extract_layer(data: &[u8]) {
    let Ok(work) = tempfile::tempdir() else {
        return;
    };
    let layer = work.path().join("layer");
    let roots = work.path().join("roots");
    if std::fs::write(&layer, data).is_err() || std::fs::create_dir(&roots).is_err() {
        return;
    }
    let mut made: Vec<String> = Vec::new();
    for strict in [false, true] {
        let name = if strict { "strict" } else { "lenient" };
        let dest = roots.join(name);
        let options = ExtractOptions {
            limits: LIMITS,
            strict,
        };
        let result =
            Extractor::new(options).extract_layer_files(std::slice::from_ref(&layer), &dest);
        match &result {
            Ok(report) => {
                assert!(dest.is_dir(), "extraction succeeded without a root");
                assert!(
                    !(strict && report.changes.contains_key(&crate::Change::Hostile)),
                    "strict extraction let a hostile entry through: {report:?}"
                );
                made.push(name.to_string());
            }
            Err(_) => assert!(!dest.exists(), "a failed extraction left its root"),
        }
        assert_eq!(list(&roots), made, "staging or escapes beside the roots");
        assert_eq!(
            list(work.path()),
            ["layer", "roots"],
            "something was written outside the root"
        );
    }
}

fn list(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// An image archive (`docker save` or OCI), read as `scar init -if` reads it, into a
/// temporary cache; a pulled image is then extracted.
pub fn image_archive(data: &[u8]) {
    let Ok(work) = tempfile::tempdir() else {
        return;
    };
    let path = work.path().join("image.tar");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    pull_and_extract(&path, work.path());
}

fn pull_and_extract(path: &Path, work: &Path) {
    let cache = BlobCache::new(work.join("cache"));
    for oci in [false, true] {
        if let Ok(image) = crate::local::pull_archive(path, oci, &cache, &NoProgress) {
            let dest = work.join(format!("root-{oci}"));
            let options = ExtractOptions {
                limits: LIMITS,
                strict: false,
            };
            let _ = Extractor::new(options).extract_image(&image, &cache, &dest, &NoProgress);
        }
    }
}

/// A manifest, index or config: `data` is put in a small valid archive (one layer, one
/// config, both present as blobs) as the docker `manifest.json`, as the OCI `index.json`,
/// as the image manifest an index points to, and as the config, then read as an archive.
pub fn image_manifest(data: &[u8]) {
    let Ok(work) = tempfile::tempdir() else {
        return;
    };
    let layer = {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        let _ = b.append_data(&mut h, "hi", &b"hi"[..]);
        b.into_inner().unwrap_or_default()
    };
    let config = br#"{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":[]}}"#;
    let digest = |b: &[u8]| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(b))
    };
    let (ld, cd, dd) = (digest(&layer), digest(config), digest(data));
    let docker_manifest = format!(
        r#"[{{"Config":"{cd}.json","RepoTags":["t:latest"],"Layers":["{ld}/layer.tar"]}}]"#
    );
    let oci_manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{cd}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:{ld}","size":{}}}]}}"#,
        config.len(),
        layer.len()
    );
    let index_to = |digest: &str, size: usize| {
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{digest}","size":{size},"annotations":{{"org.opencontainers.image.ref.name":"latest"}}}}]}}"#
        )
    };
    let md = digest(oci_manifest.as_bytes());
    // (file name, content) sets: data as each of the four documents.
    let archives: Vec<Vec<(String, Vec<u8>)>> = vec![
        vec![
            ("manifest.json".into(), data.to_vec()),
            (format!("{cd}.json"), config.to_vec()),
            (format!("{ld}/layer.tar"), layer.clone()),
        ],
        vec![
            ("manifest.json".into(), docker_manifest.into_bytes()),
            (format!("{cd}.json"), data.to_vec()),
            (format!("{ld}/layer.tar"), layer.clone()),
        ],
        vec![
            (
                "oci-layout".into(),
                br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
            ),
            ("index.json".into(), data.to_vec()),
            (
                format!("blobs/sha256/{md}"),
                oci_manifest.clone().into_bytes(),
            ),
            (format!("blobs/sha256/{cd}"), config.to_vec()),
            (format!("blobs/sha256/{ld}"), layer.clone()),
        ],
        vec![
            (
                "oci-layout".into(),
                br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
            ),
            ("index.json".into(), index_to(&dd, data.len()).into_bytes()),
            (format!("blobs/sha256/{dd}"), data.to_vec()),
            (format!("blobs/sha256/{cd}"), config.to_vec()),
            (format!("blobs/sha256/{ld}"), layer.clone()),
        ],
    ];
    for (i, files) in archives.into_iter().enumerate() {
        let dir = work.path().join(i.to_string());
        if std::fs::create_dir(&dir).is_err() {
            return;
        }
        let path = dir.join("image.tar");
        let Ok(file) = std::fs::File::create(&path) else {
            return;
        };
        let mut b = tar::Builder::new(file);
        for (name, content) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(content.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            if b.append_data(&mut h, &name, &content[..]).is_err() {
                return;
            }
        }
        match b.into_inner() {
            Ok(mut f) => {
                let _ = f.flush();
            }
            Err(_) => return,
        }
        pull_and_extract(&path, &dir);
    }
}
