//! flashconv: exact generation from long-convolution sequence models (Hyena, HyenaDNA)
//! on any GPU through wgpu, in near-linear time with the relaxed tiling of Flash
//! Inference (arXiv 2410.12982).
//!
//! The host API is re-exported here (below); [`device`] gets a device, [`session`] runs
//! on it, [`bench`](mod@bench) and [`tuning`] measure it. The GPU layer (`gpu`), the mixer, the FFT
//! and the shader registry are internal. The cargo feature `internals` makes them public
//! (hidden from these docs) and adds test hooks (`SessionOptions::test_extra_bytes`,
//! `Session::mixer`) for the crate's own tests, examples and fuzz targets; it is not
//! part of the API.
#![warn(missing_docs)]
#![warn(unnameable_types)]
// On wasm32 wgpu's handles are neither Send nor Sync (the browser's WebGPU objects live on
// one thread), so the Arcs that share them natively trip this lint there; natively they
// are Send + Sync and it does not fire.
#![cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]

/// Declares a module that is internal to the crate: `pub(crate)`, or `pub` (and hidden
/// from the docs) with the cargo feature `internals`, for the crate's integration tests,
/// the fuzz targets and the examples that measure the GPU layer itself.
macro_rules! internal_mod {
    ($(#[$attr:meta])* $name:ident) => {
        $(#[$attr])*
        #[cfg(feature = "internals")]
        #[doc(hidden)]
        pub mod $name;
        $(#[$attr])*
        #[cfg(not(feature = "internals"))]
        pub(crate) mod $name;
    };
}

pub mod bench;
pub mod bundled;
pub mod config;
pub mod device;
pub mod error;
pub mod model;
#[cfg(not(target_arch = "wasm32"))]
pub mod records;
pub mod reference;
pub mod sampling;
pub mod session;
pub mod tiling;
pub mod tokenizer;
pub mod tuning;
#[cfg(target_arch = "wasm32")]
pub mod web;

internal_mod!(fft);
internal_mod!(gpu);
internal_mod!(mixer);
internal_mod!(shaders);

/// Entry points for the fuzz targets (`fuzz/`) and the fuzz-corpus test.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod fuzzing;

// The host API: what an application needs to load a model, pick a device, and
// generate, score or stream on it.
pub use config::Config;
pub use error::{Error, Result};
pub use gpu::GpuContext;
pub use mixer::Method;
pub use model::Model;
pub use sampling::SamplingParams;
pub use session::{
    CancelHandle, GenerateOptions, Generation, GenerationStats, GpuModel, Score, ScoreOptions,
    Session, SessionMemory, SessionOptions, StopReason, WeightFormat, WeightStorage,
};
pub use tokenizer::Tokenizer;

/// A monotonic clock that also works in a browser (`std::time::Instant` panics on
/// wasm32-unknown-unknown; `web-time` reads `performance.now()` there).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) use std::time::Instant;
#[cfg(target_arch = "wasm32")]
pub(crate) use web_time::Instant;

/// Every WGSL module flashconv compiles, as (name, complete source): the entries of its
/// registry of shader variants, from which the runtime compiles. A CPU test validates
/// each with naga and translates it for Metal, DX12 and Vulkan, so shader errors show
/// without an adapter.
pub fn wgsl_modules() -> Vec<(String, String)> {
    shaders::Shader::all()
        .into_iter()
        .map(|s| (s.name(), s.source()))
        .collect()
}
