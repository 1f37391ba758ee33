//! The crate's error type. Every message names the thing that is wrong (file, tensor,
//! shape, limit) and, where there is one, what the user can do about it.
//!
//! Model files are untrusted input: loading ([`crate::Model::load`],
//! [`crate::Model::from_bytes`], [`crate::Config::parse`],
//! [`crate::tokenizer::Tokenizer::for_model_dir`]) returns [`Error::Config`],
//! [`Error::Weights`], [`Error::Tokenizer`] or [`Error::Io`] for any malformed input
//! (truncated or corrupt safetensors, wrong dtype or shape, missing tensors, non-finite
//! weights, bad or absurd config fields) and never panics; all of it happens on the CPU,
//! before any GPU allocation. [`crate::model`] lists what is checked.
//!
//! A tensor flashconv does not use is **not** an error: HF checkpoints may carry extra
//! buffers, so each such tensor is ignored and named in one `log::warn!` (the CLI shows
//! warnings by default). Tensors that prove the config wrong (a layer index `>=
//! n_layer`, a filter-MLP module beyond `num_inner_mlps`) are errors.

use std::path::PathBuf;

/// Everything that can go wrong in flashconv.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file in question.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// `config.json` is missing a field, has a bad value, or is not JSON.
    #[error("config {path}: {msg}")]
    Config {
        /// The config file (or `<memory>`).
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
    /// The weights file is malformed or does not match the config.
    #[error("weights {path}: {msg}")]
    Weights {
        /// The safetensors file.
        path: PathBuf,
        /// What is wrong, naming the tensor.
        msg: String,
    },
    /// No usable GPU adapter, or the device could not be created.
    #[error("GPU: {0}")]
    Gpu(String),
    /// The request does not fit the device limits.
    #[error("device limit: {0}")]
    Limit(String),
    /// Bad user input: prompt, token ids, sampling parameters.
    #[error("invalid input: {0}")]
    Input(String),
    /// The model's tokenizer cannot encode or decode something.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
}

impl Error {
    /// Shorthand for [`Error::Input`].
    pub fn input(msg: impl Into<String>) -> Self {
        Error::Input(msg.into())
    }
    /// Shorthand for [`Error::Gpu`].
    pub fn gpu(msg: impl Into<String>) -> Self {
        Error::Gpu(msg.into())
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
