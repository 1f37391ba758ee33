//! flashconv: exact generation from long-convolution sequence models (Hyena, HyenaDNA)
//! on any GPU through wgpu, in near-linear time with the relaxed tiling of Flash
//! Inference (arXiv 2410.12982).
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
pub mod tiling;
pub mod tokenizer;
pub mod tuning;
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use config::Config;
pub use error::{Error, Result};
pub use gpu::GpuContext;
pub use mixer::Method;
pub use model::Model;
pub use session::{GpuModel, Session, SessionMemory, SessionOptions};

/// A monotonic clock that also works in a browser (`std::time::Instant` panics on
/// wasm32-unknown-unknown; `web-time` reads `performance.now()` there).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) use std::time::Instant;
#[cfg(target_arch = "wasm32")]
pub(crate) use web_time::Instant;

/// Every WGSL module flashconv compiles, as (name, complete source): concatenations
/// (the FFT library before the shaders that call it) included. A CPU test validates each
/// with naga, so shader errors show without an adapter.
pub fn wgsl_modules() -> Vec<(&'static str, String)> {
    vec![
        ("session.wgsl", session::SESSION_WGSL.to_string()),
        (
            "gate_lib.wgsl + session_matvec.wgsl",
            session::matvec_source(
                session::WeightFormat::F32,
                session::WeightStorage::Buffer,
                1,
            ),
        ),
        (
            "gate_lib.wgsl + session_matvec.wgsl (prefill rows)",
            session::matvec_source(
                session::WeightFormat::F32,
                session::WeightStorage::Buffer,
                session::PREFILL_ROWS,
            ),
        ),
        (
            "gate_lib.wgsl + session_matvec.wgsl (f16 weights)",
            session::matvec_source(
                session::WeightFormat::F16,
                session::WeightStorage::Buffer,
                1,
            ),
        ),
        (
            "gate_lib.wgsl + session_matvec.wgsl (weights in textures)",
            session::matvec_source(
                session::WeightFormat::F32,
                session::WeightStorage::Texture,
                1,
            ),
        ),
        ("bench.wgsl", bench::BENCH_WGSL.to_string()),
        ("sampling.wgsl", sampling::SAMPLING_WGSL.to_string()),
        (
            "mixer_params.wgsl + gate_lib.wgsl + mixer.wgsl",
            mixer::mixer_source(false),
        ),
        (
            "mixer_params.wgsl + gate_lib.wgsl + mixer.wgsl (v stored in a texture)",
            mixer::mixer_source(true),
        ),
        (
            "mixer_params.wgsl + mixer_vec4.wgsl",
            mixer::mixer_vec4_source(false),
        ),
        (
            "mixer_params.wgsl + mixer_vec4.wgsl (v and filters in textures)",
            mixer::mixer_vec4_source(true),
        ),
        (
            "fft_lib.wgsl + fft.wgsl",
            format!("{}\n{}", fft::FFT_LIB_WGSL, fft::FFT_WGSL),
        ),
        ("fft_lib.wgsl + tile.wgsl", mixer::tile_source()),
    ]
}
