//! Function state under `$SCAR_HOME`:
//!
//! ```text
//! functions/<name>/function.json      the FunctionInfo plus the cached root it runs on
//! functions/<name>/opt/bootstrap      the supervisor       (mounted at /opt/scar)
//! functions/<name>/opt/function.json  the supervisor's FunctionFile
//! cache/blobs/sha256/<hex>            verified blobs (scar-packager's BlobCache)
//! cache/roots/<hex>                   extracted image roots, shared between functions
//! logs/<name>/<stream>                log streams
//! file-systems/<access-point-id>      an EFS access point's stand-in (FDL `file_system`)
//! ```

use std::path::{Path, PathBuf};

use scar_core::event::FunctionFile;
use scar_core::provider::FunctionInfo;
use scar_core::provider::SurfaceError;
use scar_core::ImageConfig;
use serde::{Deserialize, Serialize};

use crate::LocalError;

/// How a function's sandbox is laid out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub(crate) enum Launch {
    /// No package: the image root, with the supervisor bind-mounted at `/opt/scar`.
    Root,
    /// An image package: its own root holds `/opt/scar/bootstrap` and `function.json`.
    Image,
    /// A zip package, unzipped at `task` and mounted read-only at `/var/task`; the root is
    /// the udocker container's `ROOT` from the zip, or (`built_root`) one built from the
    /// zip's udocker layers at the first cold start.
    Zip {
        task: PathBuf,
        repo: String,
        tag: String,
        built_root: bool,
    },
}

/// A function as the local provider stores it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredFunction {
    #[serde(flatten)]
    pub info: FunctionInfo,
    /// The sandbox root: under `cache/roots`, or inside the function's zip tree.
    pub root: PathBuf,
    pub image_config: ImageConfig,
    /// The pulled image (its blobs are in the cache), for building packages later.
    #[serde(default)]
    pub pulled: Option<scar_packager::PulledImage>,
    #[serde(default = "root_launch")]
    pub launch: Launch,
    /// Which definition this is, read from its record (the record's bytes, modification
    /// time and inode), not stored: a function removed and created again under its name,
    /// by another `scar` process while `scar serve` keeps sandboxes warm, is another one,
    /// and its invocations get none of the old definition's sandboxes.
    #[serde(skip)]
    pub revision: String,
}

/// A function record's revision: its bytes and the file's identity (modification time and
/// inode), hashed; compared only within one process.
fn revision(path: &Path, bytes: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    use std::os::unix::fs::MetadataExt;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    if let Ok(meta) = std::fs::metadata(path) {
        (meta.ino(), meta.mtime(), meta.mtime_nsec()).hash(&mut hasher);
    }
    format!("{:016x}", hasher.finish())
}

fn root_launch() -> Launch {
    Launch::Root
}

impl StoredFunction {
    /// What the supervisor reads at start-up.
    pub fn function_file(&self) -> FunctionFile {
        FunctionFile::new(&self.info.spec, self.image_config.clone())
    }
}

/// The paths of a scar home.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub home: PathBuf,
}

impl Layout {
    pub fn functions(&self) -> PathBuf {
        self.home.join("functions")
    }
    pub fn function_dir(&self, name: &str) -> PathBuf {
        self.functions().join(name)
    }
    pub fn opt_dir(&self, name: &str) -> PathBuf {
        self.function_dir(name).join("opt")
    }
    /// The function's own copy of its extra payload (`-ep`), mounted at `/var/task`:
    /// made at `init`, so that later edits of the user's folder do not reach it.
    pub fn payload_dir(&self, name: &str) -> PathBuf {
        self.function_dir(name).join("payload")
    }
    pub fn cache(&self) -> PathBuf {
        self.home.join("cache")
    }
    pub fn root_for(&self, manifest_digest: &str) -> PathBuf {
        let hex = manifest_digest
            .rsplit(':')
            .next()
            .unwrap_or(manifest_digest);
        self.cache().join("roots").join(hex)
    }
    /// The host folder standing in for the EFS access point `access_point` (`fsap-...`):
    /// shared by every function and invocation that mounts it, as EFS is.
    pub fn file_system(&self, access_point: &str) -> PathBuf {
        self.home.join("file-systems").join(access_point)
    }
    /// Where a running `scar serve` says where its HTTP listener is.
    pub fn serve_file(&self) -> PathBuf {
        self.home.join("serve.json")
    }
    pub fn logs(&self, name: &str) -> PathBuf {
        self.home.join("logs").join(name)
    }

    pub fn load(&self, name: &str) -> Result<StoredFunction, LocalError> {
        scar_core::spec::validate_name(name)?;
        let path = self.function_dir(name).join("function.json");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SurfaceError::NotFound(name.into()).into())
            }
            Err(e) => return Err(LocalError::io("cannot read", &path)(e)),
        };
        let mut stored: StoredFunction =
            serde_json::from_slice(&bytes).map_err(|e| LocalError::State {
                path: path.clone(),
                why: e.to_string(),
            })?;
        stored.revision = revision(&path, &bytes);
        Ok(stored)
    }

    pub fn list(&self) -> Result<Vec<StoredFunction>, LocalError> {
        let dir = self.functions();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(LocalError::io("cannot list", &dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // Half-made functions (`.name.partial-*`) are not functions.
            if name.starts_with('.') {
                continue;
            }
            out.push(self.load(&name)?);
        }
        out.sort_by(|a, b| a.info.spec.name.cmp(&b.info.spec.name));
        Ok(out)
    }

    /// A hidden directory that [`Layout::create`] renames into the function's place.
    pub fn partial_dir(&self, name: &str) -> PathBuf {
        self.functions()
            .join(format!(".{name}.partial-{}", std::process::id()))
    }

    /// Writes a function atomically: everything goes into a hidden partial directory (which
    /// the caller may already have filled, e.g. with an unzipped package) that is renamed
    /// into place at the end, so a failure leaves nothing that `list` shows.
    pub fn create(
        &self,
        stored: &StoredFunction,
        supervisor: &Path,
        payload: Option<&scar_packager::Payload>,
    ) -> Result<(), LocalError> {
        let name = &stored.info.spec.name;
        let functions = self.functions();
        std::fs::create_dir_all(&functions).map_err(LocalError::io("cannot create", &functions))?;
        let partial = self.partial_dir(name);
        let result = self
            .write_into(&partial, stored, supervisor, payload)
            .and_then(|()| {
                let dest = self.function_dir(name);
                if dest.exists() {
                    return Err(SurfaceError::Exists(name.clone()).into());
                }
                std::fs::rename(&partial, &dest).map_err(LocalError::io("cannot create", &dest))
            });
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&partial);
        }
        result
    }

    fn write_into(
        &self,
        dir: &Path,
        stored: &StoredFunction,
        supervisor: &Path,
        payload: Option<&scar_packager::Payload>,
    ) -> Result<(), LocalError> {
        if let Some(payload) = payload {
            payload.copy_to(&dir.join("payload"))?;
        }
        let opt = dir.join("opt");
        std::fs::create_dir_all(&opt).map_err(LocalError::io("cannot create", &opt))?;
        for bucket in &stored.info.spec.buckets() {
            // The mount point of the bucket inside the sandbox (`/opt/scar/buckets/<bucket>`).
            let point = opt.join("buckets").join(bucket);
            std::fs::create_dir_all(&point).map_err(LocalError::io("cannot create", &point))?;
        }
        let bootstrap = opt.join("bootstrap");
        if std::fs::hard_link(supervisor, &bootstrap).is_err() {
            std::fs::copy(supervisor, &bootstrap)
                .map_err(LocalError::io("cannot copy the supervisor to", &bootstrap))?;
        }
        let function_file = opt.join("function.json");
        std::fs::write(&function_file, to_json(&stored.function_file()))
            .map_err(LocalError::io("cannot write", &function_file))?;
        let record = dir.join("function.json");
        std::fs::write(&record, to_json(stored))
            .map_err(LocalError::io("cannot write", &record))?;
        Ok(())
    }

    pub fn remove(&self, name: &str) -> Result<(), LocalError> {
        let dir = self.function_dir(name);
        if !dir.join("function.json").exists() {
            return Err(SurfaceError::NotFound(name.into()).into());
        }
        // Rename first, so that a crash mid-removal never leaves a half function listed.
        let doomed = self
            .functions()
            .join(format!(".{name}.removing-{}", std::process::id()));
        std::fs::rename(&dir, &doomed).map_err(LocalError::io("cannot remove", &dir))?;
        std::fs::remove_dir_all(&doomed).map_err(LocalError::io("cannot remove", &doomed))?;
        let logs = self.logs(name);
        match std::fs::remove_dir_all(&logs) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(LocalError::io("cannot remove", &logs)(e)),
        }
    }
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default() + "\n"
}

/// Makes `root/<rel>` a real directory, replacing any symlink on the way: mount points
/// must never lead out of the root (an image with `/tmp -> /var/tmp` would otherwise get
/// the host's directory mounted over).
pub(crate) fn ensure_mount_point(root: &Path, rel: &str) -> Result<(), LocalError> {
    let mut path = root.to_path_buf();
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        path.push(part);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => continue,
            Ok(_) => {
                std::fs::remove_file(&path).map_err(LocalError::io("cannot replace", &path))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LocalError::io("cannot inspect", &path)(e)),
        }
        match std::fs::create_dir(&path) {
            // Another sandbox of the same root made it meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => {}
            r => r.map_err(LocalError::io("cannot create", &path))?,
        }
    }
    Ok(())
}
