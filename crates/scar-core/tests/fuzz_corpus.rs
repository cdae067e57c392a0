//! The fuzz targets' seed corpora and every input that once crashed a target
//! (`fuzz/corpus/<target>`, `fuzz/regressions/<target>`), replayed through the same entry
//! points as a normal test: CI keeps them fixed without a fuzzer.

scar_test_support::replay_tests! {
    event_inputs: "event", 3, scar_core::fuzz::event;
    fdl_inputs: "fdl", 3, scar_core::fuzz::fdl;
    config_file_inputs: "config_file", 2, scar_core::fuzz::config_file;
}
