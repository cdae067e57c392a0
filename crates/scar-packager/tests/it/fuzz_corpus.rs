//! The fuzz targets' corpora and past crashes, replayed through the same entry points.

scar_test_support::replay_tests! {
    extract_layer_inputs: "extract_layer", 10, scar_packager::fuzz::extract_layer;
    image_archive_inputs: "image_archive", 2, scar_packager::fuzz::image_archive;
    image_manifest_inputs: "image_manifest", 3, scar_packager::fuzz::image_manifest;
}
