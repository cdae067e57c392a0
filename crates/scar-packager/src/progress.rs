//! Progress events: the vocabulary is scar-core's ([`scar_core::progress`]).

pub use scar_core::progress::{NoProgress, Phase, Progress};
