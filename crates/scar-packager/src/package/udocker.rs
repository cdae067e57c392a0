//! The `zip` package (SCAR's original format): `bootstrap` and `function.json` at the root,
//! and the image as udocker 1.3 keeps it, under `udocker/`.
//!
//! The tree mirrors what `udocker load` of an OCI archive writes (udocker 1.3.17):
//! ```text
//! udocker/{bin,lib,doc}/                       empty (udocker checks they exist)
//! udocker/layers/<hex>.layer                   every layer blob, as pulled, and the config
//! udocker/repos/<repo>/<tag>/TAG               "<udocker dir>/repos/<repo>:<tag>"
//! udocker/repos/<repo>/<tag>/v1                empty: the "v1" (ancestry) layout
//! udocker/repos/<repo>/<tag>/ancestry          JSON list of layer hex ids, top layer first
//! udocker/repos/<repo>/<tag>/container.json -> ../../../layers/<config hex>.layer
//! udocker/repos/<repo>/<tag>/<hex>.layer    -> ../../../layers/<hex>.layer
//! udocker/containers/<id>/ROOT/                the extracted root (when it fits)
//! udocker/containers/<id>/container.json       the image config
//! udocker/containers/<id>/imagerepo.name       "<repo>:<tag>"
//! udocker/containers/<name>                 -> <id>
//! ```
//! (symlinks are relative; their `../` count follows the repository's depth.)
//!
//! Lambda's limits decide what goes in: the unzipped size must stay under 250 MB, so the
//! root is included only when layers and root both fit; otherwise layers only (the root is
//! then built under /tmp at cold start). A zip over 50 MB must go through a deployment
//! bucket.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use scar_core::event::{FunctionFile, PackagedRoot};
use sha2::{Digest, Sha256};

use super::zipwriter::{write_zip, Entry};
use super::{function_file, function_json, read_config, PackageInputs};
use crate::cache::{digest_hex, BlobCache};
use crate::error::PackagerError;
use crate::extract::Extractor;
use crate::gzip::gzip_raw_layers;
use crate::progress::{Phase, Progress};
use crate::{blocking, PulledImage};

pub use scar_core::lambda::{DIRECT_UPLOAD_LIMIT, TASK_ROOT as LAMBDA_TASK_ROOT, UNZIPPED_LIMIT};

/// How to build a zip package. [`ZipOptions::new`] gives Lambda's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipOptions {
    /// The image's name in the udocker tree (`repos/<repo>/<tag>`): lowercase letters,
    /// digits, `-`, `_`, `.`, with `/` between components.
    pub repo: String,
    pub tag: String,
    /// The container's name (`udocker/containers/<name>` links to its id); no `/`, `.`,
    /// spaces or brackets (udocker's rule). `None`: the id only.
    pub container_name: Option<String>,
    /// Where the udocker tree is at run time (written in `TAG`, as udocker does).
    pub udocker_dir: String,
    /// Include the extracted root when everything fits (false: layers only).
    pub include_root: bool,
    /// Maximum unzipped size ([`UNZIPPED_LIMIT`]).
    pub unzipped_limit: u64,
    /// Above this zip size, `needs_deployment_bucket` ([`DIRECT_UPLOAD_LIMIT`]).
    pub direct_upload_limit: u64,
    /// Where the root is extracted while packaging (default: the system's temp dir).
    pub work_dir: Option<PathBuf>,
    /// A root of this very image already extracted (e.g. the local provider's cache): read
    /// from there instead of extracting the layers again.
    pub extracted_root: Option<PathBuf>,
    /// A static `proot`, packaged as `udocker/bin/proot`: how the supervisor enters the
    /// image's root on Lambda, which allows no namespaces (udocker's P2 mode). Without
    /// one, the package runs only where its root is entered for it (the local provider).
    pub proot: Option<PathBuf>,
    /// How the root is extracted when it is (limits, `strict`).
    pub extract: crate::extract::ExtractOptions,
    /// The function's extra payload (SCAR's `-ep`): its files at the zip's root, which
    /// Lambda unpacks at `/var/task`.
    pub extra_payload: Option<crate::Payload>,
}

impl ZipOptions {
    /// Lambda's limits; the image named after the function (`<name>:latest`, lowercase),
    /// the container named after the function.
    pub fn new(function_name: &str) -> ZipOptions {
        let repo: String = function_name
            .chars()
            .map(|c| match c.to_ascii_lowercase() {
                c @ ('a'..='z' | '0'..='9' | '-' | '_') => c,
                _ => '-',
            })
            .collect();
        let repo = if repo.is_empty() { "scar".into() } else { repo };
        ZipOptions {
            repo,
            tag: "latest".into(),
            container_name: valid_container_name(function_name).then(|| function_name.into()),
            udocker_dir: format!("{LAMBDA_TASK_ROOT}/udocker"),
            include_root: true,
            unzipped_limit: UNZIPPED_LIMIT,
            direct_upload_limit: DIRECT_UPLOAD_LIMIT,
            work_dir: None,
            extracted_root: None,
            proot: None,
            extract: crate::extract::ExtractOptions::default(),
            extra_payload: None,
        }
    }
}

/// What [`build_zip_package`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipReport {
    pub path: PathBuf,
    /// Size of the zip file.
    pub zip_size: u64,
    /// Sum of the entries' sizes once unzipped (what Lambda's 250 MB limit counts).
    pub unzipped_size: u64,
    pub entries: u64,
    /// Whether `udocker/containers/<id>/ROOT` is in the zip. When not, the root has to be
    /// built from the layers (under /tmp) at cold start.
    pub includes_root: bool,
    /// The zip is over the direct upload limit: deploy it through an S3 bucket (`-db`).
    pub needs_deployment_bucket: bool,
    /// Unzipped size of the extracted root, when it was extracted.
    pub root_size: Option<u64>,
    pub repo: String,
    pub tag: String,
    /// The udocker container id, when the root is included.
    pub container_id: Option<String>,
    pub container_name: Option<String>,
    /// Things the user should know (why the root was left out, skipped device nodes).
    pub warnings: Vec<String>,
}

fn valid_container_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 2048
        && !name.contains(['/', '.', ' ', '[', ']'])
        && !name.chars().any(char::is_control)
}

fn valid_repo(repo: &str) -> bool {
    !repo.is_empty()
        && repo.split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "-_.".contains(ch))
        })
}

fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && tag != "."
        && tag != ".."
        && tag
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
}

/// A udocker container id (uuid-shaped, as udocker's own) derived from the content, so
/// the same inputs give the same zip.
fn container_id(config_digest: &str, repo: &str, tag: &str) -> String {
    let h = hex::encode(Sha256::digest(format!("{config_digest}\n{repo}:{tag}")));
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn ancestry_json(hexes: &[&str]) -> String {
    // Python's json.dump spacing, as udocker writes it.
    let items: Vec<String> = hexes.iter().map(|h| format!("\"{h}\"")).collect();
    format!("[{}]", items.join(", "))
}

/// Where the packaged proot goes (udocker keeps its tools in `bin/`).
const PROOT_ENTRY: &str = "udocker/bin/proot";

/// The entries of the zip without the root and the function file: bootstrap, proot, the
/// udocker image. Also returns the layers' entry names, bottom first.
fn base_entries(
    image: &PulledImage,
    cache: &BlobCache,
    supervisor: &Path,
    config_digest: &str,
    options: &ZipOptions,
) -> Result<(Vec<Entry>, Vec<String>), PackagerError> {
    if !supervisor.is_file() {
        return Err(PackagerError::input(
            supervisor,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the supervisor binary (bootstrap) is not a file",
            ),
        ));
    }
    let mut entries = vec![Entry::file("bootstrap", 0o755, supervisor.to_path_buf())];
    if let Some(proot) = &options.proot {
        if !proot.is_file() {
            return Err(PackagerError::input(
                proot,
                std::io::Error::new(std::io::ErrorKind::NotFound, "the proot is not a file"),
            ));
        }
        entries.push(Entry::file(PROOT_ENTRY, 0o755, proot.clone()));
    }
    if let Some(payload) = &options.extra_payload {
        entries.extend(payload_entries(payload)?);
    }
    for d in ["", "bin", "lib", "doc", "containers", "layers", "repos"] {
        entries.push(Entry::dir(
            format!("udocker/{d}").trim_end_matches('/').to_string(),
            0o755,
        ));
    }
    let hex_of = |d: &str| {
        digest_hex(d)
            .map(str::to_string)
            .ok_or_else(|| PackagerError::BadManifest {
                source_name: image.source.clone(),
                what: "digest".into(),
                reason: format!("`{d}` is not a sha256 digest"),
            })
    };
    let config_hex = hex_of(config_digest)?;
    let mut layer_hexes = Vec::new();
    for l in &image.layers {
        layer_hexes.push(hex_of(&l.digest)?);
    }
    let mut in_layers = std::collections::BTreeSet::new();
    for (hex, digest) in std::iter::once((&config_hex, config_digest)).chain(
        layer_hexes
            .iter()
            .zip(image.layers.iter().map(|l| l.digest.as_str())),
    ) {
        if in_layers.insert(hex.clone()) {
            if !cache.contains(digest) {
                return Err(PackagerError::MissingBlob {
                    source_name: "the cache".into(),
                    digest: digest.to_string(),
                });
            }
            entries.push(Entry::file(
                format!("udocker/layers/{hex}.layer"),
                0o644,
                cache.path(digest),
            ));
        }
    }

    let mut dir = "udocker/repos".to_string();
    for part in options.repo.split('/') {
        dir = format!("{dir}/{part}");
        entries.push(Entry::dir(dir.clone(), 0o755));
    }
    let tag_dir = format!("{dir}/{}", options.tag);
    entries.push(Entry::dir(tag_dir.clone(), 0o755));
    let up = "../".repeat(2 + options.repo.split('/').count());
    entries.push(Entry::bytes(
        format!("{tag_dir}/TAG"),
        0o644,
        format!(
            "{}/repos/{}:{}",
            options.udocker_dir.trim_end_matches('/'),
            options.repo,
            options.tag
        ),
    ));
    entries.push(Entry::bytes(format!("{tag_dir}/v1"), 0o644, Vec::new()));
    let top_first: Vec<&str> = layer_hexes.iter().rev().map(String::as_str).collect();
    entries.push(Entry::bytes(
        format!("{tag_dir}/ancestry"),
        0o644,
        ancestry_json(&top_first),
    ));
    entries.push(Entry::symlink(
        format!("{tag_dir}/container.json"),
        format!("{up}layers/{config_hex}.layer"),
    ));
    let mut linked = std::collections::BTreeSet::new();
    for hex in &layer_hexes {
        if linked.insert(hex.clone()) {
            entries.push(Entry::symlink(
                format!("{tag_dir}/{hex}.layer"),
                format!("{up}layers/{hex}.layer"),
            ));
        }
    }
    let layers = layer_hexes
        .iter()
        .map(|hex| format!("udocker/layers/{hex}.layer"))
        .collect();
    Ok((entries, layers))
}

/// Entries for every file under `root` (named under `prefix`), with their total size.
/// Symlinks are stored as links (never followed); device nodes, fifos and sockets are
/// skipped. Modes get `u+rw` (and `u+x` on directories), as udocker's own extraction does.
fn root_entries(
    root: &Path,
    prefix: &[u8],
    warnings: &mut Vec<String>,
) -> Result<(Vec<Entry>, u64), PackagerError> {
    fn walk(
        dir: &Path,
        name: &[u8],
        out: &mut Vec<Entry>,
        size: &mut u64,
        skipped: &mut Vec<String>,
    ) -> Result<(), PackagerError> {
        let mut children: Vec<_> = fs::read_dir(dir)
            .map_err(|e| PackagerError::io("read directory", dir, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| PackagerError::io("read directory", dir, e))?;
        children.sort_by_key(|e| e.file_name());
        for child in children {
            let path = child.path();
            let mut child_name = name.to_vec();
            child_name.push(b'/');
            child_name.extend_from_slice(child.file_name().as_bytes());
            let meta =
                fs::symlink_metadata(&path).map_err(|e| PackagerError::io("inspect", &path, e))?;
            let mode = meta.permissions().mode() & 0o7777;
            let ft = meta.file_type();
            if ft.is_symlink() {
                let target =
                    fs::read_link(&path).map_err(|e| PackagerError::io("read link", &path, e))?;
                let target = target.as_os_str().as_bytes().to_vec();
                *size += target.len() as u64;
                out.push(Entry::symlink(child_name, target));
            } else if ft.is_dir() {
                out.push(Entry::dir(child_name.clone(), mode | 0o700));
                walk(&path, &child_name, out, size, skipped)?;
            } else if ft.is_file() {
                *size += meta.len();
                out.push(Entry::file(child_name, mode | 0o600, path));
            } else if ft.is_block_device() || ft.is_char_device() || ft.is_fifo() || ft.is_socket()
            {
                skipped.push(String::from_utf8_lossy(&child_name).into_owned());
            }
        }
        Ok(())
    }
    let mut out = vec![Entry::dir(prefix.to_vec(), 0o755)];
    let mut size = 0;
    let mut skipped = Vec::new();
    walk(root, prefix, &mut out, &mut size, &mut skipped)?;
    for s in skipped {
        warnings.push(format!(
            "skipped special file `{s}` (device nodes, fifos and sockets are not packaged)"
        ));
    }
    Ok((out, size))
}

fn total_size(entries: &[Entry]) -> Result<u64, PackagerError> {
    let mut total = 0;
    for e in entries {
        total += e.unzipped_size().map_err(|err| {
            PackagerError::io(
                "inspect",
                PathBuf::from(String::from_utf8_lossy(&e.name).into_owned()),
                err,
            )
        })?;
    }
    Ok(total)
}

/// The base entries (see [`base_entries`]) of `image`, and the unzipped size they take
/// with the function file (sized with a root named, so the limit holds either way).
fn sized_base(
    image: &PulledImage,
    cache: &BlobCache,
    supervisor: &Path,
    config_digest: &str,
    options: &ZipOptions,
    function: &FunctionFile,
    root_entry: &str,
) -> Result<(Vec<Entry>, Vec<String>, u64), PackagerError> {
    let (entries, layers) = base_entries(image, cache, supervisor, config_digest, options)?;
    let json = packaged_function_json(image, function, options, Some(root_entry), &layers)?;
    let size = total_size(&entries)? + json.len() as u64;
    Ok((entries, layers, size))
}

/// The zip entries of an extra payload, at the zip's root beside scar's own.
fn payload_entries(payload: &crate::Payload) -> Result<Vec<Entry>, PackagerError> {
    let ours = ["bootstrap", "udocker", "function.json"];
    if let Some(clash) = payload
        .top_level_names()
        .find(|n| ours.iter().any(|o| std::ffi::OsStr::new(o) == *n))
    {
        return Err(PackagerError::Unsupported {
            what: format!(
                "an extra payload holding `{}` (the zip package's own name at /var/task)",
                clash.to_string_lossy()
            ),
        });
    }
    Ok(payload
        .entries
        .iter()
        .map(|e| {
            let name = e.rel.as_os_str().as_encoded_bytes().to_vec();
            match &e.source {
                None => Entry::dir(name, e.mode),
                Some(path) => Entry::file(name, e.mode, path.clone()),
            }
        })
        .collect())
}

/// The package's `function.json`: the function file, with where the root (if any), the
/// layers and the proot are, so the supervisor can enter the root on Lambda.
fn packaged_function_json(
    image: &PulledImage,
    function: &FunctionFile,
    options: &ZipOptions,
    root: Option<&str>,
    layers: &[String],
) -> Result<Vec<u8>, PackagerError> {
    let mut f = function_file(image, function);
    f.container = Some(PackagedRoot {
        root: root.map(str::to_string),
        layers: layers.to_vec(),
        proot: options.proot.as_ref().map(|_| PROOT_ENTRY.to_string()),
    });
    function_json(&f)
}

/// `image` with its uncompressed layers gzipped, and how many there were.
fn gzipped_image(
    image: &PulledImage,
    cache: &BlobCache,
    progress: &dyn Progress,
) -> Result<(PulledImage, usize), PackagerError> {
    let (layers, n) = gzip_raw_layers(&image.layers, cache, progress)?;
    Ok((
        PulledImage {
            layers,
            ..image.clone()
        },
        n,
    ))
}

fn build_sync(
    inputs: &PackageInputs,
    dest: &Path,
    options: &ZipOptions,
    progress: &dyn Progress,
) -> Result<ZipReport, PackagerError> {
    let (image, cache, function) = (&inputs.image, &inputs.cache, &inputs.function);
    if !valid_repo(&options.repo) || !valid_tag(&options.tag) {
        return Err(PackagerError::Unsupported {
            what: format!(
                "udocker image name `{}:{}` (use lowercase letters, digits, `-`, `_`, `.`)",
                options.repo, options.tag
            ),
        });
    }
    if let Some(n) = &options.container_name {
        if !valid_container_name(n) {
            return Err(PackagerError::Unsupported {
                what: format!("udocker container name `{n}` (no `/`, `.`, spaces or brackets)"),
            });
        }
    }
    let (config_digest, config_bytes) = read_config(image, cache)?;
    let id = container_id(&config_digest, &options.repo, &options.tag);
    let root_entry = format!("udocker/containers/{id}/ROOT");
    let sized = |image: &PulledImage| {
        sized_base(
            image,
            cache,
            &inputs.supervisor,
            &config_digest,
            options,
            function,
            &root_entry,
        )
    };
    // The layers go in as pulled, or with the uncompressed ones (`docker save` writes
    // them so) gzipped when that is what makes the package fit.
    let (mut entries, mut layers, mut base_size) = sized(image)?;
    let mut gzipped = 0;
    if base_size > options.unzipped_limit {
        let (gz_image, n) = gzipped_image(image, cache, progress)?;
        if n > 0 {
            gzipped = n;
            (entries, layers, base_size) = sized(&gz_image)?;
        }
    }
    if base_size > options.unzipped_limit {
        return Err(PackagerError::PackageTooLarge {
            unzipped: base_size,
            limit: options.unzipped_limit,
        });
    }
    let mut warnings = Vec::new();
    if options.proot.is_none() {
        warnings.push("the package holds no proot: on AWS Lambda, which allows no namespaces, its supervisor cannot enter the image's root (give a static proot, such as udocker's)".to_string());
    }
    let mut root_size = None;
    let mut container = None;
    // Kept until the zip is written: the root's files are read from here.
    let mut _work = None;
    if options.include_root {
        let root = match &options.extracted_root {
            Some(root) => root.clone(),
            None => {
                let work_parent = options.work_dir.clone().unwrap_or_else(std::env::temp_dir);
                fs::create_dir_all(&work_parent)
                    .map_err(|e| PackagerError::io("create directory", &work_parent, e))?;
                let work = tempfile::Builder::new()
                    .prefix("scar-zip-root-")
                    .tempdir_in(&work_parent)
                    .map_err(|e| {
                        PackagerError::io("create temporary directory in", &work_parent, e)
                    })?;
                let root = work.path().join("ROOT");
                // What extraction dropped or changed it reports itself, through `progress`.
                Extractor::new(options.extract).extract_image(image, cache, &root, progress)?;
                _work = Some(work);
                root
            }
        };
        let cdir = format!("udocker/containers/{id}");
        let (mut extra, size) =
            root_entries(&root, format!("{cdir}/ROOT").as_bytes(), &mut warnings)?;
        let small = [
            Entry::dir(cdir.clone(), 0o755),
            Entry::bytes(
                format!("{cdir}/container.json"),
                0o644,
                config_bytes.clone(),
            ),
            Entry::bytes(
                format!("{cdir}/imagerepo.name"),
                0o644,
                format!("{}:{}", options.repo, options.tag),
            ),
        ];
        let mut extra_size = size + total_size(&small)?;
        extra.extend(small);
        if let Some(name) = &options.container_name {
            extra.push(Entry::symlink(
                format!("udocker/containers/{name}"),
                id.clone(),
            ));
            extra_size += id.len() as u64;
        }
        root_size = Some(size);
        if base_size + extra_size > options.unzipped_limit && gzipped == 0 {
            // Gzipped layers may leave room for the root.
            let (gz_image, n) = gzipped_image(image, cache, progress)?;
            if n > 0 {
                let (e, l, b) = sized(&gz_image)?;
                if b + extra_size <= options.unzipped_limit {
                    (gzipped, entries, layers, base_size) = (n, e, l, b);
                }
            }
        }
        if base_size + extra_size <= options.unzipped_limit {
            entries.extend(extra);
            container = Some(id.clone());
        } else {
            warnings.push(format!(
                "the image's root ({size} bytes) does not fit in the zip with its layers ({} bytes unzipped, limit {}): layers only; the root is built under /tmp at cold start",
                base_size + extra_size,
                options.unzipped_limit
            ));
        }
    }

    let root = container.as_ref().map(|_| root_entry);
    entries.push(Entry::bytes(
        "function.json",
        0o644,
        packaged_function_json(image, function, options, root.as_deref(), &layers)?,
    ));
    if gzipped > 0 {
        warnings.push(format!(
            "{gzipped} uncompressed layer(s) (as `docker save` writes them) were gzipped to fit Lambda's {} MB limit",
            options.unzipped_limit / (1024 * 1024)
        ));
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(w) = entries.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(PackagerError::Unsupported {
            what: format!(
                "two zip entries named `{}`",
                String::from_utf8_lossy(&w[0].name)
            ),
        });
    }
    let total = total_size(&entries)?;
    progress.start(Phase::Package, Some(total));
    let stats = write_zip(&entries, dest, progress)?;
    progress.finish();
    let includes_root = container.is_some();
    Ok(ZipReport {
        path: dest.to_path_buf(),
        zip_size: stats.zip_size,
        unzipped_size: stats.unzipped,
        entries: stats.entries,
        includes_root,
        needs_deployment_bucket: stats.zip_size > options.direct_upload_limit,
        root_size,
        repo: options.repo.clone(),
        tag: options.tag.clone(),
        container_name: options.container_name.clone().filter(|_| includes_root),
        container_id: container,
        warnings,
    })
}

/// Builds the `zip` package of `image` at `dest` (atomically): `bootstrap` (the file at
/// `supervisor`, mode 0755), `function.json` (the image's command recorded in `image`),
/// and the image as a udocker tree under `udocker/`, with the extracted root as a
/// ready container when layers and root fit under `options.unzipped_limit`, else layers
/// only. Fails with [`PackagerError::PackageTooLarge`] when even the layers do not fit.
///
/// The zip is written streaming, entries compressed in parallel, and is deterministic:
/// the same inputs give the same bytes.
///
/// ```no_run
/// # async fn demo(image: scar_packager::PulledImage) -> Result<(), scar_packager::PackagerError> {
/// use scar_packager::{build_zip_package, BlobCache, NoProgress, ZipOptions};
/// let cache = BlobCache::new("/tmp/scar-cache");
/// let function = scar_core::event::FunctionFile { name: "f".into(), timeout_s: 300,
///     timeout_threshold_s: 10, ..Default::default() };
/// let report = build_zip_package(&image, &cache, &function, "/usr/lib/scar/bootstrap".as_ref(),
///     "/tmp/f.zip".as_ref(), &ZipOptions::new("f"), &NoProgress).await?;
/// if report.needs_deployment_bucket { println!("upload through S3 (-db)"); }
/// # Ok(()) }
/// ```
pub async fn build_zip_package(
    image: &PulledImage,
    cache: &BlobCache,
    function: &FunctionFile,
    supervisor: &Path,
    dest: &Path,
    options: &ZipOptions,
    progress: &dyn Progress,
) -> Result<ZipReport, PackagerError> {
    let inputs = PackageInputs::new(image, cache, function, supervisor);
    let (dest, options) = (dest.to_path_buf(), options.clone());
    blocking(progress, move |p| build_sync(&inputs, &dest, &options, p)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_extra_payload_cannot_take_the_packages_own_names() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("sub")).unwrap();
        std::fs::write(t.path().join("sub/bootstrap"), "deep is fine").unwrap();
        let ok = crate::Payload::walk(t.path()).unwrap();
        let names: Vec<_> = payload_entries(&ok)
            .unwrap()
            .into_iter()
            .map(|e| String::from_utf8(e.name).unwrap())
            .collect();
        assert_eq!(names, ["sub/", "sub/bootstrap"]);
        std::fs::write(t.path().join("bootstrap"), "x").unwrap();
        let clash = crate::Payload::walk(t.path()).unwrap();
        let e = payload_entries(&clash).unwrap_err().to_string();
        assert!(e.contains("`bootstrap`"), "{e}");
    }

    #[test]
    fn names_follow_udocker_rules() {
        let o = ZipOptions::new("My_Fn-1");
        assert_eq!(o.repo, "my_fn-1");
        assert_eq!(o.container_name.as_deref(), Some("My_Fn-1"));
        assert!(!valid_container_name("a.b"));
        assert!(valid_repo("scar/fn"));
        assert!(!valid_repo("scar/../x"));
        assert!(!valid_tag(".."));
        let id = container_id("sha256:x", "r", "t");
        assert_eq!(id.len(), 36);
        assert_eq!(ancestry_json(&["a", "b"]), r#"["a", "b"]"#);
    }
}
