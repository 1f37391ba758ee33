//! flashconv: exact generation from long-convolution sequence models (Hyena, HyenaDNA)
//! on any GPU through wgpu, in near-linear time with the relaxed tiling of Flash
//! Inference (arXiv 2410.12982).
//!
//! The host API is re-exported here (below). The cargo feature `internals` adds test
//! hooks that are not part of it (`SessionOptions::test_extra_bytes`, `Session::mixer`);
//! the crate's own tests turn it on.
#![warn(missing_docs)]
// On wasm32 wgpu's handles are neither Send nor Sync (the browser's WebGPU objects live on
// one thread), so the Arcs that share them natively trip this lint there; natively they
// are Send + Sync and it does not fire.
#![cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]

pub mod bench;
pub mod bundled;
pub mod config;
pub mod error;
pub mod fft;
#[doc(hidden)]
pub mod fuzzing;
pub mod gpu;
pub mod mixer;
pub mod model;
pub mod reference;
pub mod sampling;
pub mod session;
pub mod shaders;
pub mod tiling;
pub mod tokenizer;
pub mod tuning;
#[cfg(target_arch = "wasm32")]
pub mod web;

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

/// Every WGSL module flashconv compiles, as (name, complete source): the entries of the
/// registry [`shaders::Shader::all`]. A CPU test validates each with naga, so shader
/// errors show without an adapter.
pub fn wgsl_modules() -> Vec<(String, String)> {
    shaders::Shader::all()
        .into_iter()
        .map(|s| (s.name(), s.source()))
        .collect()
}
