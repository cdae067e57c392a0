//! The supervisor's own log lines, as verbose as `LOG_LEVEL` asks (SCAR's `log_level`,
//! `-ll`): CRITICAL, ERROR, WARNING, INFO (the default: no lines of its own beyond its
//! notes) or DEBUG (what it does for each invocation: the event, the command, its
//! staging and uploads, how it ended). They go to stderr: the function's log.

use std::sync::OnceLock;

use scar_core::spec_options::{LogLevel, LOG_LEVEL_VAR};

/// The level `LOG_LEVEL` names, read once; INFO when unset or unknown.
pub fn level() -> LogLevel {
    static LEVEL: OnceLock<LogLevel> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        std::env::var(LOG_LEVEL_VAR)
            .ok()
            .and_then(|l| l.parse().ok())
            .unwrap_or_default()
    })
}

/// Whether DEBUG lines are written.
pub fn debugging() -> bool {
    level() >= LogLevel::Debug
}

/// Writes a DEBUG line, when `LOG_LEVEL` is DEBUG.
macro_rules! debug {
    ($($arg:tt)*) => {
        if $crate::log::debugging() {
            eprintln!("[DEBUG] scar: {}", format_args!($($arg)*));
        }
    };
}
pub(crate) use debug;
