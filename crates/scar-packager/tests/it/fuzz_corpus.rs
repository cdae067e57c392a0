//! The fuzz targets' corpora and past crashes, replayed through the same entry points.

use scar_test_support::fuzz::replay;

#[test]
fn extract_layer_inputs() {
    replay("extract_layer", 10, scar_packager::fuzz::extract_layer);
}

#[test]
fn image_archive_inputs() {
    replay("image_archive", 2, scar_packager::fuzz::image_archive);
}

#[test]
fn image_manifest_inputs() {
    replay("image_manifest", 3, scar_packager::fuzz::image_manifest);
}
