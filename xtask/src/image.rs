//! Small images assembled from what this machine has (busybox-static), written as
//! `docker save` archives: no registry, no internet.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use anyhow::Context as _;
use sha2::{Digest, Sha256};

fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

fn find_busybox() -> anyhow::Result<std::path::PathBuf> {
    for candidate in ["/bin/busybox", "/usr/bin/busybox"] {
        if Path::new(candidate).exists() {
            return Ok(candidate.into());
        }
    }
    anyhow::bail!("busybox is not installed: run `apt-get install busybox-static` (or `cargo xtask install-test-tools`)")
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(1_700_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// The busybox base layer: `/bin/busybox`, its applets as symlinks, `/etc/passwd`,
/// `/etc/group`, `/etc/demo-release`, `/tmp`.
fn base_layer(path: &Path) -> anyhow::Result<()> {
    let busybox = find_busybox()?;
    let mut b = tar::Builder::new(File::create(path)?);
    for dir in ["bin", "etc", "tmp", "root", "usr", "usr/bin"] {
        let mode = if dir == "tmp" { 0o1777 } else { 0o755 };
        b.append_data(
            &mut header(tar::EntryType::Directory, mode, 0),
            format!("{dir}/"),
            std::io::empty(),
        )?;
    }
    let bytes = std::fs::read(&busybox)?;
    b.append_data(
        &mut header(tar::EntryType::Regular, 0o755, bytes.len() as u64),
        "bin/busybox",
        &bytes[..],
    )?;
    let list = std::process::Command::new(&busybox)
        .arg("--list")
        .output()?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")?;
    }
    for (name, text) in [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        ),
        ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
        ("etc/demo-release", "scar demo image (busybox)\n"),
    ] {
        b.append_data(
            &mut header(tar::EntryType::Regular, 0o644, text.len() as u64),
            name,
            text.as_bytes(),
        )?;
    }
    b.into_inner()?.flush()?;
    Ok(())
}

/// A layer of `count` files of pseudo-random (incompressible) bytes, `size` bytes each,
/// under `/data`.
fn data_layer(path: &Path, count: usize, size: usize) -> anyhow::Result<()> {
    let mut b = tar::Builder::new(File::create(path)?);
    b.append_data(
        &mut header(tar::EntryType::Directory, 0o755, 0),
        "data/",
        std::io::empty(),
    )?;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut buf = vec![0u8; size];
    for i in 0..count {
        for chunk in buf.chunks_mut(8) {
            // xorshift64: fast, deterministic, incompressible enough for gzip/deflate.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let bytes = state.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        b.append_data(
            &mut header(tar::EntryType::Regular, 0o644, size as u64),
            format!("data/blob-{i:04}.bin"),
            &buf[..],
        )?;
    }
    b.into_inner()?.flush()?;
    Ok(())
}

/// Writes a `docker save` archive from uncompressed layer tars.
fn write_archive(dest: &Path, tag: &str, layers: &[&Path]) -> anyhow::Result<()> {
    write_archive_for(dest, tag, layers, "amd64")
}

/// [`write_archive`] with the config's `architecture` (OCI's name).
fn write_archive_for(
    dest: &Path,
    tag: &str,
    layers: &[&Path],
    architecture: &str,
) -> anyhow::Result<()> {
    let mut diff_ids = Vec::new();
    for layer in layers {
        diff_ids.push(sha256_file(layer)?);
    }
    let config = serde_json::json!({
        "architecture": architecture,
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["/bin/sh", "-c", "echo hello from the image command"],
            "WorkingDir": "/root"
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| format!("sha256:{d}")).collect::<Vec<_>>()},
        "history": [],
    });
    let config_bytes = serde_json::to_vec(&config)?;
    let config_hex = format!("{:x}", Sha256::digest(&config_bytes));
    let manifest = serde_json::json!([{
        "Config": format!("{config_hex}.json"),
        "RepoTags": [tag],
        "Layers": diff_ids.iter().map(|d| format!("{d}/layer.tar")).collect::<Vec<_>>(),
    }]);
    let manifest_bytes = serde_json::to_vec(&manifest)?;
    let mut b = tar::Builder::new(
        File::create(dest).with_context(|| format!("cannot create {}", dest.display()))?,
    );
    for (layer, id) in layers.iter().zip(&diff_ids) {
        b.append_data(
            &mut header(tar::EntryType::Directory, 0o755, 0),
            format!("{id}/"),
            std::io::empty(),
        )?;
        let size = std::fs::metadata(layer)?.len();
        b.append_data(
            &mut header(tar::EntryType::Regular, 0o644, size),
            format!("{id}/layer.tar"),
            File::open(layer)?,
        )?;
    }
    b.append_data(
        &mut header(tar::EntryType::Regular, 0o644, config_bytes.len() as u64),
        format!("{config_hex}.json"),
        &config_bytes[..],
    )?;
    b.append_data(
        &mut header(tar::EntryType::Regular, 0o644, manifest_bytes.len() as u64),
        "manifest.json",
        &manifest_bytes[..],
    )?;
    b.into_inner()?.flush()?;
    Ok(())
}

/// The demo image: busybox only.
pub fn busybox_docker_archive(dest: &Path) -> anyhow::Result<()> {
    let dir = dest.with_extension("layers");
    std::fs::create_dir_all(&dir)?;
    let base = dir.join("base.tar");
    base_layer(&base)?;
    write_archive(dest, "scar-demo:latest", &[&base])?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// The demo image labelled `architecture` (its busybox is still this machine's): for the
/// arm64 release check, where an x86_64 kernel runs that busybox natively under an arm64
/// scar and supervisor run by qemu-user.
pub fn busybox_docker_archive_labelled(dest: &Path, architecture: &str) -> anyhow::Result<()> {
    let dir = dest.with_extension("layers");
    std::fs::create_dir_all(&dir)?;
    let base = dir.join("base.tar");
    base_layer(&base)?;
    write_archive_for(dest, "scar-demo:latest", &[&base], architecture)?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// A busybox image with an extra layer of `mb` MB of data in 1 MB files, for benchmarks.
pub fn large_docker_archive(dest: &Path, mb: usize) -> anyhow::Result<()> {
    let dir = dest.with_extension("layers");
    std::fs::create_dir_all(&dir)?;
    let base = dir.join("base.tar");
    base_layer(&base)?;
    let data = dir.join("data.tar");
    data_layer(&data, mb, 1 << 20)?;
    write_archive(dest, "scar-bench:latest", &[&base, &data])?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// Regular files of this machine's own binaries and libraries (`/usr/lib`, `/usr/bin`,
/// ...), in a stable order, until `bytes`: data that compresses as real images do.
fn machine_binaries(bytes: u64) -> anyhow::Result<Vec<(std::path::PathBuf, u64)>> {
    let mut out = Vec::new();
    let mut total = 0;
    let mut stack: Vec<std::path::PathBuf> = ["/usr/lib", "/usr/bin", "/usr/libexec", "/usr/sbin"]
        .iter()
        .rev()
        .map(Into::into)
        .collect();
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = rd.flatten().collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.file_name()));
        for e in entries {
            let Ok(meta) = std::fs::symlink_metadata(e.path()) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.is_file() && meta.len() > 0 && std::fs::File::open(e.path()).is_ok() {
                out.push((e.path(), meta.len()));
                total += meta.len();
                if total >= bytes {
                    return Ok(out);
                }
            }
        }
    }
    anyhow::bail!("this machine has fewer than {bytes} bytes of binaries under /usr")
}

/// A busybox image plus `layers` layers holding `mb` MB of this machine's binaries in
/// all, as `docker save` writes it (uncompressed layers). Returns the layer tars, which
/// stay beside `dest` for baselines that compress them.
pub fn binaries_docker_archive(
    dest: &Path,
    mb: u64,
    layers: usize,
) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let dir = dest.with_extension("layers");
    std::fs::create_dir_all(&dir)?;
    let base = dir.join("base.tar");
    base_layer(&base)?;
    let files = machine_binaries(mb * 1_000_000)?;
    let per_layer = files.len().div_ceil(layers.max(1));
    let mut paths = vec![base];
    for (n, group) in files.chunks(per_layer.max(1)).enumerate() {
        let path = dir.join(format!("bin-{n}.tar"));
        let mut b = tar::Builder::new(File::create(&path)?);
        for (i, (file, size)) in group.iter().enumerate() {
            let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
            b.append_data(
                &mut header(tar::EntryType::Regular, 0o755, *size),
                format!("opt/bin-{n}/{i:05}-{}", name.unwrap_or_default()),
                File::open(file)?,
            )?;
        }
        b.into_inner()?.flush()?;
        paths.push(path);
    }
    let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
    write_archive(dest, "scar-bench-bins:latest", &refs)?;
    Ok(paths)
}
