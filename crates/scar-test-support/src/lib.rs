//! Fixtures shared by the integration tests of every scar crate (a dev-dependency only,
//! never published). They drive real tools, which `cargo xtask test` installs:
//!
//! - [`fuzz`]: the fuzz targets' corpora and past crashes, replayed as plain tests;
//! - [`images`]: images built with `umoci` and moved with `skopeo`, a `docker-registry` on
//!   a free loopback port, hand-made (hostile) tars, directory-tree snapshots, udocker run
//!   offline;
//! - [`lambda`]: what Lambda's own values (trace ids) look like;
//! - [`moto`]: a `moto_server` on a free loopback port with its control API, a throttling
//!   proxy in front of it, small zip packages, function specs and scar responses;
//! - [`scar`]: the `scar` binary run in a temporary scar home, and the static supervisors it
//!   needs.
//!
//! **May depend on** `scar-core` (a leaf) and third-party crates, never on another scar
//! crate: `scar-packager`, `scar-aws`, `scar-runtime` and `scar-cli` use it from their tests,
//! and a fixture depending on one of them would compile that crate a second time.
//!
//! **Invariants:** every server a fixture starts listens on loopback only and is stopped
//! when the fixture is dropped; a missing tool fails the test under `CI` and skips it loudly
//! (`*** SKIPPED ... ***` on stderr) elsewhere.

pub mod fuzz;
pub mod images;
pub mod lambda;
pub mod moto;
pub mod scar;
