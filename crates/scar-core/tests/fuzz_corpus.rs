//! The fuzz targets' seed corpora and every input that once crashed a target
//! (`fuzz/corpus/<target>`, `fuzz/regressions/<target>`), replayed through the same entry
//! points as a normal test: CI keeps them fixed without a fuzzer.

use scar_test_support::fuzz::replay;

#[test]
fn event_inputs() {
    replay("event", 3, scar_core::fuzz::event);
}

#[test]
fn fdl_inputs() {
    replay("fdl", 3, scar_core::fuzz::fdl);
}

#[test]
fn config_file_inputs() {
    replay("config_file", 2, scar_core::fuzz::config_file);
}
