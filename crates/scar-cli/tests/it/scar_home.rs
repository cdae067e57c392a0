//! What most tests of this binary start with.

use scar_test_support::images::require_tools;
use scar_test_support::scar::Scar;

/// The `scar` binary under test in a fresh home, once `tools` are found; `None` (skipped
/// loudly, a failure under `CI`) when a tool or the static supervisor is missing.
pub fn scar_with(tools: &[&str]) -> Option<Scar> {
    if !require_tools(tools) {
        return None;
    }
    Scar::new(env!("CARGO_BIN_EXE_scar"))
}
