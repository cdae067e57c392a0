//! Memory limits for sandboxes through cgroups: v2 where this process's cgroup delegates the
//! memory controller, else v1's memory hierarchy where it is writable (as root), else none,
//! and the user is told once.

use std::path::{Path, PathBuf};

/// A cgroup made for one sandbox; removed when dropped (once its processes are gone).
#[derive(Debug)]
pub(crate) struct MemoryCgroup {
    pub dir: PathBuf,
    v2: bool,
}

impl MemoryCgroup {
    /// Creates a cgroup limited to `mb` for a sandbox named `id`, or says why it cannot.
    /// Its name starts with this process's pid, so that another scar process's sweep
    /// leaves it alone while this one lives.
    pub fn create(id: &str, mb: u32) -> Result<MemoryCgroup, String> {
        let bytes = u64::from(mb) * 1024 * 1024;
        let id = format!("{}-{id}", std::process::id());
        let v2_reason = match v2_parent() {
            Some(parent) => {
                sweep(&parent, "scar-");
                let dir = parent.join(format!("scar-{id}"));
                match std::fs::create_dir(&dir)
                    .and_then(|()| std::fs::write(dir.join("memory.max"), bytes.to_string()))
                    .and_then(|()| std::fs::write(dir.join("memory.swap.max"), "0").or(Ok(())))
                {
                    Ok(()) => return Ok(MemoryCgroup { dir, v2: true }),
                    Err(e) => {
                        let _ = std::fs::remove_dir(&dir);
                        format!("cgroup v2 at {}: {e}", parent.display())
                    }
                }
            }
            None => "no cgroup v2 with a delegated memory controller".to_string(),
        };
        let v1 = Path::new("/sys/fs/cgroup/memory");
        if v1.join("memory.limit_in_bytes").exists() {
            sweep(&v1.join("scar"), "");
            let dir = v1.join("scar").join(id);
            let made = std::fs::create_dir_all(&dir).and_then(|()| {
                std::fs::write(dir.join("memory.limit_in_bytes"), bytes.to_string())
            });
            match made {
                Ok(()) => {
                    // Without swap accounting this file is absent: the limit still holds for RAM.
                    let _ =
                        std::fs::write(dir.join("memory.memsw.limit_in_bytes"), bytes.to_string());
                    return Ok(MemoryCgroup { dir, v2: false });
                }
                Err(e) => {
                    let _ = std::fs::remove_dir(&dir);
                    return Err(format!("{v2_reason}; cgroup v1 memory: {e}"));
                }
            }
        }
        Err(v2_reason)
    }

    /// The file a single-threaded process writes `0` into to join this cgroup. On v1 that
    /// is `tasks`, which moves only the writing thread: the kernel (6.0 and later) then skips
    /// the machine-wide `cgroup_threadgroup_rwsem` that `cgroup.procs` takes, and with it an
    /// RCU grace period of several milliseconds that every fork on the machine would wait
    /// behind. The writer has one thread (it is a child of `fork`), and what it starts later
    /// inherits its cgroup, so the sandbox ends up whole in the cgroup either way.
    pub fn join_file(&self) -> PathBuf {
        self.dir
            .join(if self.v2 { "cgroup.procs" } else { "tasks" })
    }

    /// Peak memory use so far, MB.
    pub fn peak_mb(&self) -> Option<u64> {
        let file = if self.v2 {
            "memory.peak"
        } else {
            "memory.max_usage_in_bytes"
        };
        let text = std::fs::read_to_string(self.dir.join(file)).ok()?;
        Some(text.trim().parse::<u64>().ok()?.div_ceil(1024 * 1024))
    }

    /// How many processes the kernel killed in this cgroup for lack of memory.
    pub fn oom_kills(&self) -> u64 {
        let (file, key) = if self.v2 {
            ("memory.events", "oom_kill ")
        } else {
            ("memory.oom_control", "oom_kill ")
        };
        std::fs::read_to_string(self.dir.join(file))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix(key))
                    .and_then(|n| n.trim().parse::<u64>().ok())
            })
            .unwrap_or(0)
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        // The sandbox's processes may not be reaped yet after SIGKILL; rather than wait for
        // them, a cgroup left behind is removed by the next scar process's sweep.
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Removes the cgroups that scar processes which have exited left behind (once per
/// process). A cgroup of a live scar process is kept even while empty: it may be about to
/// be joined (removing it then made that sandbox fail to start).
fn sweep(parent: &Path, prefix: &str) {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(|| sweep_now(parent, prefix));
}

fn sweep_now(parent: &Path, prefix: &str) {
    for entry in std::fs::read_dir(parent).into_iter().flatten().flatten() {
        // The directory entry's own type: no stat of each of v1's ~30 control files.
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        let owner = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        // Names without a pid come from older scar versions: only emptiness counts.
        let owner_alive = owner.is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if owner_alive {
            continue;
        }
        // Fails (EBUSY) for cgroups still in use: those are kept too.
        let _ = std::fs::remove_dir(entry.path());
    }
}

/// This process's cgroup v2 directory, when it delegates the memory controller.
fn v2_parent() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    let mount = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .into_iter()
        .map(Path::new)
        .find(|m| m.join("cgroup.controllers").exists())?;
    let dir = mount.join(rel.trim_start_matches('/'));
    let controllers = std::fs::read_to_string(dir.join("cgroup.subtree_control")).ok()?;
    controllers
        .split_whitespace()
        .any(|c| c == "memory")
        .then_some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_keeps_what_live_processes_made() {
        let parent = tempfile::tempdir().unwrap();
        let mine = format!("scar-{}-a", std::process::id());
        // No process has pid 4194304 or more (the kernel's limit).
        for name in [mine.as_str(), "scar-4194399-b", "scar-0123abcdef", "other"] {
            std::fs::create_dir(parent.path().join(name)).unwrap();
        }
        sweep_now(parent.path(), "scar-");
        let mut left: Vec<String> = std::fs::read_dir(parent.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["other".to_string(), mine]);
    }
}
