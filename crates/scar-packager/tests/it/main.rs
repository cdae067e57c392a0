//! scar-packager's integration tests, as one binary (one link, one run): each module is
//! a concern, and its tests are named `<module>::<test>`.
//!
//! - `hostile`: hostile and malformed layers, limits, strict mode and staging;
//! - `sparse`: sparse files, against GNU tar;
//! - `bad_input`: bad images give clear usage errors and leave nothing behind;
//! - `mirrors`: registry mirrors tried first, the registry the fallback;
//! - `sources`: every image source gives the same root as `umoci unpack`;
//! - `packages`: the `image` and `zip` packages, read by the tools that consume them;
//! - `fuzz_corpus`: the fuzz targets' corpora and past crashes, replayed.

mod bad_input;
mod fuzz_corpus;
mod hostile;
mod mirrors;
mod packages;
mod sources;
mod sparse;

/// Makes a tree owner-writable again, so that removing the temporary directory it is in
/// is not stopped by the read-only directories an image made. Best effort.
fn make_writable(dir: &std::path::Path) {
    let _ = std::process::Command::new("chmod")
        .arg("-R")
        .arg("u+w")
        .arg(dir)
        .status();
}
