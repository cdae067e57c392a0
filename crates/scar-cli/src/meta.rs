//! What `scar` says about itself, outside the subcommands: `scar --version` (scar's
//! version and commit, the supervisors it would deploy and theirs), and the hidden
//! `scar --generate <complete-bash | complete-zsh | complete-fish | man DIR>` that `cargo
//! xtask release` packs (as ripgrep's `rg --generate`: from the one clap definition, so
//! that they cannot drift from it). Both are answered before clap parses.

use std::path::{Path, PathBuf};

use clap_complete::Shell;

use crate::printer::Printer;

/// scar's version: the workspace's.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The commit scar was built from: `SCAR_BUILD_COMMIT` at build time (`cargo xtask
/// release` sets it), else unknown.
pub const COMMIT: Option<&str> = option_env!("SCAR_BUILD_COMMIT");

/// Whether `args` (the whole command line) asks for the version: `scar --version` or
/// `scar -V`.
pub fn wants_version(args: &[String]) -> bool {
    args.len() == 2 && matches!(args[1].as_str(), "--version" | "-V")
}

/// One supervisor as `--version` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupervisorReport {
    /// `x86_64` or `arm64`.
    pub architecture: &'static str,
    pub path: PathBuf,
    /// `None`: it carries no version (older than scar 0.1.0).
    pub version: Option<String>,
}

/// The lines `scar --version` prints, and the warnings it gives on stderr: a supervisor
/// that is missing, unreadable, or of another version than scar's.
pub fn version_report(
    main: Result<PathBuf, String>,
    arm64: Option<PathBuf>,
) -> (Vec<String>, Vec<String>) {
    let mut lines = vec![format!(
        "scar {VERSION} (commit {})",
        COMMIT.unwrap_or("unknown")
    )];
    let mut warnings = Vec::new();
    let report = |architecture: &'static str,
                  path: &Path,
                  lines: &mut Vec<String>,
                  warnings: &mut Vec<String>| {
        match scar_local::supervisor_version(path) {
            Ok(version) => {
                lines.push(format!(
                    "supervisor ({architecture}): {} {}",
                    version.as_deref().unwrap_or("(no version)"),
                    path.display()
                ));
                if version.as_deref() != Some(VERSION) {
                    warnings.push(format!(
                        "the {architecture} supervisor {} is version {}, scar is {VERSION}: functions created now would run it (install the supervisors of scar's release beside it, or set SCAR_SUPERVISOR)",
                        path.display(),
                        version.as_deref().unwrap_or("unknown (no version marker)"),
                    ));
                }
            }
            Err(e) => warnings.push(format!("cannot read {}: {e}", path.display())),
        }
    };
    match main {
        Ok(path) => report(
            scar_local::elf_architecture(&path)
                .map(|a| match a {
                    scar_core::Architecture::Arm64 => "arm64",
                    scar_core::Architecture::X86_64 => "x86_64",
                })
                .unwrap_or("unknown"),
            &path,
            &mut lines,
            &mut warnings,
        ),
        Err(why) => {
            lines.push("supervisor: none found".into());
            warnings.push(format!("no supervisor: {why}"));
        }
    }
    if let Some(path) = arm64 {
        report("arm64", &path, &mut lines, &mut warnings);
    }
    (lines, warnings)
}

/// Prints `scar --version` for the supervisors this environment would use (`SCAR_SUPERVISOR`,
/// `SCAR_SUPERVISOR_AARCH64`, else where [`scar_local::find_supervisor`] looks).
pub fn print_version(printer: &Printer) {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let home = scar_core::config::scar_home(&env).unwrap_or_else(|_| PathBuf::from(".scar"));
    let explicit = env("SCAR_SUPERVISOR").map(PathBuf::from);
    let main = scar_local::find_supervisor(explicit.as_deref(), &home).map_err(|e| e.to_string());
    let arm64 = match &main {
        // On arm64 the supervisor found first is the arm64 one already.
        Ok(p) if scar_local::elf_architecture(p) == Some(scar_core::Architecture::Arm64) => None,
        _ => scar_local::find_supervisor_aarch64(
            env("SCAR_SUPERVISOR_AARCH64").as_deref().map(Path::new),
            main.as_ref().ok().map(PathBuf::as_path),
            &home,
        ),
    };
    let (lines, warnings) = version_report(main, arm64);
    for line in lines {
        printer.line(line);
    }
    for warning in warnings {
        printer.warn(warning);
    }
}

/// What `scar --generate` makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Generate {
    Completion(Shell),
    /// Man pages, `scar.1` and one per subcommand (`scar-init.1`...), into this folder.
    Man(PathBuf),
}

impl Generate {
    /// `scar --generate KIND [DIR]`, when `args` (the whole command line) is that.
    pub fn from_args(args: &[String]) -> Option<Result<Generate, String>> {
        if args.get(1).map(String::as_str) != Some("--generate") {
            return None;
        }
        let usage =
            "usage: scar --generate <complete-bash | complete-zsh | complete-fish | man DIR>";
        Some(
            match (args.get(2).map(String::as_str), args.get(3), args.len()) {
                (Some("complete-bash"), None, 3) => Ok(Generate::Completion(Shell::Bash)),
                (Some("complete-zsh"), None, 3) => Ok(Generate::Completion(Shell::Zsh)),
                (Some("complete-fish"), None, 3) => Ok(Generate::Completion(Shell::Fish)),
                (Some("man"), Some(dir), 4) => Ok(Generate::Man(PathBuf::from(dir))),
                _ => Err(usage.to_string()),
            },
        )
    }

    /// Writes the completion script to stdout, or the man pages into their folder.
    pub fn run(&self, printer: &Printer) -> std::io::Result<()> {
        let cmd = crate::args::command();
        match self {
            Generate::Completion(shell) => {
                let mut script = Vec::new();
                clap_complete::generate(*shell, &mut cmd.clone(), "scar", &mut script);
                printer
                    .raw(&script)
                    .map_err(|e| std::io::Error::other(e.to_string()))
            }
            Generate::Man(dir) => {
                std::fs::create_dir_all(dir)?;
                clap_mangen::generate_to(cmd, dir)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn generate_is_recognised_only_as_the_whole_command_line() {
        assert_eq!(
            Generate::from_args(&args("scar --generate complete-bash")),
            Some(Ok(Generate::Completion(Shell::Bash)))
        );
        assert_eq!(
            Generate::from_args(&args("scar --generate man out")),
            Some(Ok(Generate::Man("out".into())))
        );
        assert!(matches!(
            Generate::from_args(&args("scar --generate complete-tcsh")),
            Some(Err(_))
        ));
        assert_eq!(Generate::from_args(&args("scar ls --generate")), None);
        assert!(wants_version(&args("scar --version")));
        assert!(!wants_version(&args("scar ls --version")));
    }

    #[test]
    fn a_supervisor_of_another_version_is_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old");
        std::fs::write(&old, b"\x7fELF...scar-supervisor-version=0.0.1\0").unwrap();
        let same = dir.path().join("same");
        std::fs::write(&same, format!("scar-supervisor-version={VERSION}\0")).unwrap();
        let (lines, warnings) = version_report(Ok(same.clone()), None);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[1].contains(VERSION), "{lines:?}");
        assert!(warnings.is_empty(), "{warnings:?}");
        let (lines, warnings) = version_report(Ok(old), Some(same));
        assert!(lines[1].contains("0.0.1"), "{lines:?}");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("is version 0.0.1"), "{warnings:?}");
    }
}
