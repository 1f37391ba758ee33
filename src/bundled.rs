//! The demo model embedded in the crate: `assets/hyena-rustbook-char`, a small
//! character-level Hyena (HyenaDNA layout, 4 layers, width 128, context 1024) trained by
//! `tools/train/train.py` on the prose of "The Rust Programming Language". It is the
//! CLI's default model. Its files are the same as any model directory's: `config.json`,
//! `model.safetensors`, and `tokenizer_config.json` with a `characters` list (printable
//! ASCII and newline, ids 7 on).

use crate::config::Config;
use crate::error::Result;
use crate::model::Model;
use crate::tokenizer::Tokenizer;
use std::path::Path;

/// Directory name of the bundled model under `assets/`.
pub const NAME: &str = "hyena-rustbook-char";
/// Its `config.json`.
pub const CONFIG_JSON: &str = include_str!("../assets/hyena-rustbook-char/config.json");
/// Its `tokenizer_config.json`.
pub const TOKENIZER_JSON: &str =
    include_str!("../assets/hyena-rustbook-char/tokenizer_config.json");
/// Its `model.safetensors`.
pub const WEIGHTS: &[u8] = include_bytes!("../assets/hyena-rustbook-char/model.safetensors");
/// The start of the held-out text (a chapter the model was not trained on), for scoring.
pub const HELDOUT_SAMPLE: &str = include_str!("../assets/hyena-rustbook-char/heldout-sample.txt");
/// The prompt `flashconv generate` uses for this model when none is given.
pub const DEFAULT_PROMPT: &str = "The ";

/// The bundled model's weights and config (nothing is allocated on a GPU).
pub fn model() -> Result<Model> {
    let config = Config::parse(CONFIG_JSON, Path::new("<bundled>/config.json"))?;
    Model::from_safetensors(config, WEIGHTS, Path::new("<bundled>/model.safetensors"))
}

/// The bundled model's character tokenizer.
pub fn tokenizer() -> Result<Tokenizer> {
    Tokenizer::from_config_json(TOKENIZER_JSON, Path::new("<bundled>/tokenizer_config.json"))
}
