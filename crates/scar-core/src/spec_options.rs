//! A function's architecture, its supervisor's log level (SCAR's `architectures` and
//! `log_level`, `-ll`) and its network access (`--network`).

use serde::{Deserialize, Serialize};

/// The instruction set a function runs on (SCAR's `architectures`, Lambda's
/// `Architectures`): its supervisor and its image's variant are of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Architecture {
    #[default]
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "arm64")]
    Arm64,
}

impl Architecture {
    /// As Lambda names it: `x86_64` or `arm64`.
    pub fn as_str(self) -> &'static str {
        match self {
            Architecture::X86_64 => "x86_64",
            Architecture::Arm64 => "arm64",
        }
    }

    /// As an OCI image index names it (`platform.architecture`).
    pub fn oci(self) -> &'static str {
        match self {
            Architecture::X86_64 => "amd64",
            Architecture::Arm64 => "arm64",
        }
    }

    /// As the kernel names it (`uname -m`, ELF machine names).
    pub fn machine(self) -> &'static str {
        match self {
            Architecture::X86_64 => "x86_64",
            Architecture::Arm64 => "aarch64",
        }
    }

    /// The architecture of the machine this runs on, if it is one of Lambda's.
    pub fn host() -> Option<Architecture> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Architecture::X86_64),
            "aarch64" => Some(Architecture::Arm64),
            _ => None,
        }
    }

    pub fn is_x86_64(&self) -> bool {
        *self == Architecture::X86_64
    }
}

impl std::fmt::Display for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Architecture {
    type Err = String;

    /// Lambda's names, and the other usual ones (`amd64`, `aarch64`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "x86_64" | "amd64" | "x86-64" => Ok(Architecture::X86_64),
            "arm64" | "aarch64" => Ok(Architecture::Arm64),
            _ => Err(format!("unknown architecture `{s}`: `x86_64` or `arm64`")),
        }
    }
}

/// The supervisor's verbosity (SCAR's `log_level`), handed to it as `LOG_LEVEL`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    Critical,
    Error,
    Warning,
    #[default]
    Info,
    Debug,
}

/// The variable the supervisor reads its [`LogLevel`] from (SCAR's supervisor's).
pub const LOG_LEVEL_VAR: &str = "LOG_LEVEL";

impl LogLevel {
    pub const ALL: [LogLevel; 5] = [
        LogLevel::Critical,
        LogLevel::Error,
        LogLevel::Warning,
        LogLevel::Info,
        LogLevel::Debug,
    ];

    /// As SCAR names it: `CRITICAL`, `ERROR`, `WARNING`, `INFO` or `DEBUG`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Critical => "CRITICAL",
            LogLevel::Error => "ERROR",
            LogLevel::Warning => "WARNING",
            LogLevel::Info => "INFO",
            LogLevel::Debug => "DEBUG",
        }
    }
}

impl std::fmt::Display for LogLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for LogLevel {
    type Err = String;

    /// Any case, as SCAR upper-cases it (`WARN` for `WARNING` too).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.trim().to_ascii_uppercase();
        let upper = if upper == "WARN" {
            "WARNING".into()
        } else {
            upper
        };
        LogLevel::ALL
            .into_iter()
            .find(|l| l.as_str() == upper)
            .ok_or_else(|| {
                format!("unknown log level `{s}`: CRITICAL, ERROR, WARNING, INFO or DEBUG")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for l in LogLevel::ALL {
            assert_eq!(l.as_str().parse::<LogLevel>(), Ok(l));
            assert_eq!(l.as_str().to_lowercase().parse::<LogLevel>(), Ok(l));
        }
        assert!("verbose".parse::<LogLevel>().unwrap_err().contains("DEBUG"));
        for a in [Architecture::X86_64, Architecture::Arm64] {
            assert_eq!(a.as_str().parse::<Architecture>(), Ok(a));
            assert_eq!(a.oci().parse::<Architecture>(), Ok(a));
            assert_eq!(a.machine().parse::<Architecture>(), Ok(a));
        }
        assert!("riscv64".parse::<Architecture>().is_err());
        assert_eq!(
            serde_json::to_string(&(Architecture::Arm64, LogLevel::Debug)).unwrap(),
            r#"["arm64","DEBUG"]"#
        );
    }
}

/// What network a function's sandbox has besides its own loopback (`--network`, FDL
/// `lambda.network`): outbound access as Lambda gives it, or none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkAccess {
    #[default]
    Outbound,
    None,
}

impl NetworkAccess {
    /// As the flag and FDL spell it: `outbound` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkAccess::Outbound => "outbound",
            NetworkAccess::None => "none",
        }
    }

    pub fn is_outbound(&self) -> bool {
        *self == NetworkAccess::Outbound
    }
}

impl std::fmt::Display for NetworkAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for NetworkAccess {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "outbound" => Ok(NetworkAccess::Outbound),
            "none" => Ok(NetworkAccess::None),
            _ => Err(format!("unknown network `{s}`: `outbound` or `none`")),
        }
    }
}
