//! flashconv: exact generation from long-convolution sequence models (Hyena, HyenaDNA)
//! on any GPU through wgpu, in near-linear time with the relaxed tiling of Flash
//! Inference (arXiv 2410.12982).
#![warn(missing_docs)]

pub mod bench;
pub mod config;
pub mod error;
pub mod fft;
pub mod gpu;
pub mod mixer;
pub mod model;
pub mod reference;
pub mod sampling;
pub mod session;
pub mod tiling;
pub mod tokenizer;

pub use config::Config;
pub use error::{Error, Result};
pub use gpu::GpuContext;
pub use mixer::Method;
pub use model::Model;
pub use session::{GpuModel, Session, SessionOptions};
