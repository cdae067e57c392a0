//! Entering a `zip` package's image root where nobody entered it for us.
//!
//! On Lambda a `zip` package is unpacked at `/var/task` on Amazon Linux: `/` is not the
//! image's. The package says where the image's root is ([`PackagedRoot`]): extracted in
//! the package, or only as layers, which are then applied under `/tmp` at cold start. No
//! namespaces are allowed there, so commands run under `proot -r ROOT` (ptrace path
//! translation, udocker's P2 mode), with `/tmp`, `/proc` and `/dev` bound in, so the
//! request directories have the same paths inside and out.

use std::path::{Path, PathBuf};

use scar_core::event::PackagedRoot;

use crate::SupervisorError;

/// The image root that commands run in, and how they get there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRoot {
    /// The image's root directory, as seen by the supervisor.
    pub root: PathBuf,
    /// The `proot` that runs commands inside it.
    pub proot: PathBuf,
    /// The function's extra payload (SCAR's `-ep`), bound in at the same path: the zip's
    /// own `/var/task`, as SCAR's supervisor gives it to udocker (`-v /var/task`).
    pub extra_payload: Option<PathBuf>,
}

impl ContainerRoot {
    /// Finds (or builds) the root of a packaged image. `base` is where the package is
    /// unpacked (the directory of its `function.json`); `cold_dir` is where a root made
    /// from the layers goes (`/tmp/scar-root` on Lambda). Building is atomic: a
    /// half-built root from a killed cold start is never used.
    pub fn prepare(
        base: &Path,
        packaged: &PackagedRoot,
        cold_dir: &Path,
    ) -> Result<ContainerRoot, SupervisorError> {
        let proot = packaged
            .proot
            .as_deref()
            .map(|p| base.join(p))
            .filter(|p| p.is_file())
            .ok_or_else(|| SupervisorError::NoProot {
                package: base.to_path_buf(),
            })?;
        if let Some(root) = packaged.root.as_deref().map(|r| base.join(r)) {
            if root.is_dir() {
                return Ok(ContainerRoot {
                    root,
                    proot,
                    extra_payload: extra_payload(),
                });
            }
        }
        if !cold_dir.is_dir() {
            build_root(base, &packaged.layers, cold_dir)?;
        }
        Ok(ContainerRoot {
            root: cold_dir.to_path_buf(),
            proot,
            extra_payload: extra_payload(),
        })
    }

    /// The command line that runs `argv` inside the root, in `workdir` (inside), with
    /// `tmp_root` (where request directories are) at the same path inside as outside.
    pub fn command_line(&self, argv: &[String], workdir: &str, tmp_root: &Path) -> Vec<String> {
        let mut line = vec![
            path_string(&self.proot),
            "-r".into(),
            path_string(&self.root),
            "-w".into(),
            workdir.into(),
        ];
        let mut binds = vec!["/proc", "/dev", "/tmp"]
            .into_iter()
            .map(PathBuf::from)
            .collect::<Vec<_>>();
        if !tmp_root.starts_with("/tmp") {
            binds.push(tmp_root.to_path_buf());
        }
        binds.extend(self.extra_payload.clone());
        // Name resolution as the host has it: many images have no resolv.conf of their own.
        for file in ["/etc/resolv.conf", "/etc/hosts"] {
            if Path::new(file).is_file() {
                binds.push(file.into());
            }
        }
        for b in binds {
            line.push("-b".into());
            line.push(path_string(&b));
        }
        line.extend(argv.iter().cloned());
        line
    }

    /// Whether `dir` (a path inside the image) is a directory there.
    pub fn is_dir_inside(&self, dir: &str) -> bool {
        self.root.join(dir.trim_start_matches('/')).is_dir()
    }
}

/// Applies `layers` (paths relative to `base`, bottom first) onto a new root at `dest`.
fn build_root(base: &Path, layers: &[String], dest: &Path) -> Result<(), SupervisorError> {
    let fail = |why: String| SupervisorError::ColdRoot {
        path: dest.to_path_buf(),
        why,
    };
    if layers.is_empty() {
        return Err(fail("the package has neither a root nor layers".into()));
    }
    let paths: Vec<PathBuf> = layers.iter().map(|l| base.join(l)).collect();
    // Lambda's /tmp is 512 MB unless configured: keeping 512 MB free there (the default
    // margin) would refuse every cold start. A full disk is still a clear error.
    let options = scar_packager::ExtractOptions {
        limits: scar_packager::ExtractLimits {
            min_free_bytes: 0,
            ..scar_packager::ExtractLimits::default()
        },
        strict: false,
    };
    scar_packager::Extractor::new(options)
        .extract_layer_files(&paths, dest)
        .map(drop)
        .map_err(|e| fail(e.to_string()))
}

fn path_string(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Where the extra payload is, when the function has one (`EXTRA_PAYLOAD` set) and it is
/// there.
fn extra_payload() -> Option<PathBuf> {
    std::env::var_os(scar_core::contract::EXTRA_PAYLOAD_VAR)?;
    let dir = Path::new(scar_core::contract::EXTRA_PAYLOAD_DIR);
    dir.is_dir().then(|| dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extra_payload_is_bound_in_at_var_task() {
        let mut c = ContainerRoot {
            root: "/tmp/scar-root".into(),
            proot: "/var/task/udocker/bin/proot".into(),
            extra_payload: None,
        };
        let line = |c: &ContainerRoot| c.command_line(&["ls".into()], "/", Path::new("/tmp"));
        assert!(!line(&c).windows(2).any(|w| w == ["-b", "/var/task"]));
        c.extra_payload = Some("/var/task".into());
        assert!(line(&c).windows(2).any(|w| w == ["-b", "/var/task"]));
    }
}
