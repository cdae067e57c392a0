#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| scar_packager::fuzz::image_manifest(data));
