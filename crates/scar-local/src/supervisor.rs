//! Finding the supervisor binary to mount into sandboxes, and the proot that `zip`
//! packages carry.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::LocalError;

/// Where the supervisor is looked for, in order: `explicit` (`--supervisor`,
/// `SCAR_SUPERVISOR`), `bootstrap` beside the running executable, `../lib/scar/bootstrap`
/// from it (an unpacked release archive, `cargo xtask release`: `bin/scar` and
/// `lib/scar/bootstrap`), `supervisor/bootstrap` one level up (the `cargo xtask
/// build-supervisor` layout under `target/`), and `$SCAR_HOME/bin/bootstrap`. Only statically linked binaries qualify: the supervisor
/// runs inside images that may have no libc at all.
pub fn find_supervisor(explicit: Option<&Path>, home: &Path) -> Result<PathBuf, LocalError> {
    if let Some(path) = explicit {
        return match is_static_elf(path) {
            Ok(true) => Ok(path.to_path_buf()),
            Ok(false) => Err(LocalError::NoSupervisor(format!(
                "{} is dynamically linked; build a static one with `cargo xtask build-supervisor`",
                path.display()
            ))),
            Err(e) => Err(LocalError::NoSupervisor(format!("{}: {e}", path.display()))),
        };
    }
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        candidates.push(dir.join("bootstrap"));
        if let Some(up) = dir.parent() {
            candidates.push(up.join("lib").join("scar").join("bootstrap"));
            candidates.push(up.join("supervisor").join("bootstrap"));
        }
    }
    candidates.push(home.join("bin").join("bootstrap"));
    let mut rejected = Vec::new();
    for candidate in &candidates {
        match is_static_elf(candidate) {
            Ok(true) => return Ok(candidate.clone()),
            Ok(false) => rejected.push(format!("{} is dynamically linked", candidate.display())),
            Err(_) => {}
        }
    }
    let looked: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
    Err(LocalError::NoSupervisor(format!(
        "looked in {}{}{}; build it with `cargo xtask build-supervisor`, or pass --supervisor PATH",
        looked.join(", "),
        if rejected.is_empty() { "" } else { "; " },
        rejected.join("; ")
    )))
}

/// The arm64 supervisor, for functions of `architectures: [arm64]`: `explicit`
/// (`SCAR_SUPERVISOR_AARCH64`), else `aarch64/bootstrap` beside the supervisor `main` (the
/// `cargo xtask build-supervisor` layout), else `../lib/scar/aarch64/bootstrap` from the
/// running executable (a release archive's layout), else
/// `$SCAR_HOME/bin/aarch64/bootstrap`; only a static aarch64 ELF qualifies.
pub fn find_supervisor_aarch64(
    explicit: Option<&Path>,
    main: Option<&Path>,
    home: &Path,
) -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = match explicit {
        Some(path) => vec![path.to_path_buf()],
        None => main
            .and_then(Path::parent)
            .map(|dir| dir.join("aarch64").join("bootstrap"))
            .into_iter()
            .chain(
                std::env::current_exe()
                    .ok()
                    .and_then(|exe| Some(exe.parent()?.parent()?.to_path_buf()))
                    .map(|up| {
                        up.join("lib")
                            .join("scar")
                            .join("aarch64")
                            .join("bootstrap")
                    }),
            )
            .chain([home.join("bin").join("aarch64").join("bootstrap")])
            .collect(),
    };
    candidates.into_iter().find(|c| {
        elf_machine(c).is_ok_and(|m| m == ELF_AARCH64) && is_static_elf(c).unwrap_or(false)
    })
}

/// ELF's machine number of aarch64.
const ELF_AARCH64: u16 = 183;
/// ELF's machine number of x86-64.
const ELF_X86_64: u16 = 62;

/// The architecture of the ELF executable at `path`, if it is one of Lambda's.
pub fn elf_architecture(path: &Path) -> Option<scar_core::Architecture> {
    match elf_machine(path).ok()? {
        ELF_AARCH64 => Some(scar_core::Architecture::Arm64),
        ELF_X86_64 => Some(scar_core::Architecture::X86_64),
        _ => None,
    }
}

/// The ELF machine (`e_machine`) of the executable at `path`.
fn elf_machine(path: &Path) -> std::io::Result<u16> {
    let mut head = [0u8; 20];
    std::fs::File::open(path)?.read_exact(&mut head)?;
    if &head[..4] != b"\x7fELF" || head[5] != 1 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a little-endian ELF executable",
        ));
    }
    Ok(u16::from_le_bytes([head[18], head[19]]))
}

/// Whether this machine runs `arch`'s executables: natively, or through qemu-user
/// registered with binfmt_misc's `F` flag (the interpreter opened at registration, so that
/// it works inside the sandbox's root, where no qemu is); `Err` says why not.
pub fn can_run(arch: scar_core::Architecture) -> Result<(), String> {
    can_run_with(arch, Path::new(BINFMT_MISC))
}

const BINFMT_MISC: &str = "/proc/sys/fs/binfmt_misc";

pub(crate) fn can_run_with(arch: scar_core::Architecture, binfmt: &Path) -> Result<(), String> {
    if scar_core::Architecture::host() == Some(arch) {
        return Ok(());
    }
    let machine = arch.machine();
    let entry = binfmt.join(format!("qemu-{machine}"));
    let text = std::fs::read_to_string(&entry).map_err(|_| {
        format!(
            "this machine is {} and runs no {machine} executables: {} is not registered (install qemu-user-static, or qemu-user with binfmt-support, so that binfmt_misc runs them with qemu)",
            std::env::consts::ARCH,
            entry.display()
        )
    })?;
    if !text.lines().any(|l| l.trim() == "enabled") {
        return Err(format!(
            "{} is disabled (`echo 1 > {}` enables it)",
            entry.display(),
            entry.display()
        ));
    }
    let flags = text
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .unwrap_or("")
        .trim();
    if !flags.contains('F') {
        return Err(format!(
            "{} is registered without the F flag (flags: `{flags}`): its interpreter is looked up inside each function's root, where there is none (qemu-user-static registers it with F)",
            entry.display()
        ));
    }
    Ok(())
}

/// The proot a `zip` package carries so that its supervisor can enter the image's root on
/// Lambda: `explicit` (`--proot`, `SCAR_PROOT`), else `$SCAR_HOME/bin/proot`, else
/// udocker's own static one (`~/.udocker/bin/proot-<arch>`, from `udocker install`).
/// `None` when there is none: the package then runs only where its root is entered for it.
pub fn find_proot(explicit: Option<&Path>, home: &Path) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return Some(path.to_path_buf());
    }
    let mut candidates = vec![home.join("bin").join("proot")];
    if let Some(user_home) = std::env::var_os("HOME") {
        let arch = std::env::consts::ARCH;
        candidates.push(
            Path::new(&user_home)
                .join(".udocker/bin")
                .join(format!("proot-{arch}")),
        );
    }
    candidates.into_iter().find(|c| c.is_file())
}

/// Whether `path` is an ELF executable with no program interpreter (statically linked).
pub fn is_static_elf(path: &Path) -> std::io::Result<bool> {
    let mut file = std::fs::File::open(path)?;
    // The ELF header and the program headers: at the start of the file.
    let mut bytes = Vec::with_capacity(4096);
    file.by_ref().take(4096).read_to_end(&mut bytes)?;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an ELF executable");
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
        return Err(bad());
    }
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u64_at = |o: usize| {
        bytes
            .get(o..o + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    let phoff = u64_at(0x20).ok_or_else(bad)? as usize;
    let phentsize = u16_at(0x36).ok_or_else(bad)? as usize;
    let phnum = u16_at(0x38).ok_or_else(bad)? as usize;
    const PT_INTERP: u32 = 3;
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let kind = bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(bad)?;
        if kind == PT_INTERP {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_architectures_need_binfmt_with_the_f_flag() {
        use scar_core::Architecture;
        let dir = tempfile::tempdir().unwrap();
        let foreign = match Architecture::host() {
            Some(Architecture::Arm64) => Architecture::X86_64,
            _ => Architecture::Arm64,
        };
        let host = Architecture::host().unwrap_or(Architecture::X86_64);
        assert_eq!(can_run_with(host, dir.path()), Ok(()));
        let missing = can_run_with(foreign, dir.path()).unwrap_err();
        assert!(missing.contains("is not registered"), "{missing}");
        let entry = dir.path().join(format!("qemu-{}", foreign.machine()));
        std::fs::write(&entry, "enabled\ninterpreter /usr/bin/qemu\nflags: PO\n").unwrap();
        let no_f = can_run_with(foreign, dir.path()).unwrap_err();
        assert!(no_f.contains("without the F flag (flags: `PO`)"), "{no_f}");
        std::fs::write(&entry, "disabled\nflags: POF\n").unwrap();
        assert!(can_run_with(foreign, dir.path())
            .unwrap_err()
            .contains("is disabled"));
        std::fs::write(&entry, "enabled\ninterpreter /usr/bin/qemu\nflags: POF\n").unwrap();
        assert_eq!(can_run_with(foreign, dir.path()), Ok(()));
    }

    #[test]
    fn dynamic_binaries_are_not_static() {
        // /bin/sh on any glibc system has an interpreter.
        assert_eq!(is_static_elf(Path::new("/bin/sh")).ok(), Some(false));
        assert!(is_static_elf(Path::new("/etc/passwd")).is_err());
    }
}
