//! flashconv: exact generation from long-convolution sequence models (Hyena, HyenaDNA)
//! on any GPU through wgpu, in near-linear time with the relaxed tiling of Flash
//! Inference (arXiv 2410.12982).
#![warn(missing_docs)]

pub mod error;
pub mod fft;
pub mod gpu;
pub mod tiling;

pub use error::{Error, Result};
pub use gpu::GpuContext;
