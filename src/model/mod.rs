//! HyenaDNA weights: loading from `model.safetensors` with the Hugging Face tensor names,
//! the implicit long filter materialised exactly as the HF port computes it, and a
//! builder for random models of any shape that writes the same layout.
//!
//! # Loading untrusted files
//!
//! [`Model::load`], [`Model::from_bytes`] and [`Model::from_safetensors`] check
//! everything on the CPU before anything is allocated on a GPU, and return an error
//! (never panic) naming the file, the tensor or config field, and the problem:
//!
//! - the safetensors framing: a file shorter than its 8-byte header length, a header
//!   length over [`MAX_HEADER_LEN`] or past the end of the file, a header that is not
//!   UTF-8 or not a JSON object, a malformed or duplicated entry, an unknown dtype,
//!   `data_offsets` that end before they begin, reach past the end of the file, overlap,
//!   leave a gap or leave trailing bytes, and a shape whose byte size disagrees with its
//!   offsets or overflows;
//! - the tensors against `config.json`: missing tensors, wrong dtype (only F32 is read),
//!   wrong shape (the message names the config fields that size it, e.g. `vocab_size`),
//!   non-finite values, aliases of the shared Sin frequency that disagree, and tensors
//!   for layers or filter-MLP layers beyond `n_layer` / `num_inner_mlps`;
//! - the config itself (see [`crate::config`]), including a parameter cap
//!   ([`crate::config::MAX_PARAMS`]) so a small config cannot make the loader allocate
//!   more than that.
//!
//! **Unexpected tensors are a warning, not an error.** HF checkpoints can carry buffers
//! flashconv does not use (and the converter may keep some), so any other tensor whose
//! name flashconv does not read is ignored and reported once through `log::warn!`,
//! naming every ignored tensor. The exceptions are tensors that show the config does not
//! match the checkpoint (a layer index `>= n_layer`, a filter-MLP layer beyond
//! `num_inner_mlps`): those are errors that name the config field.

//!
//! The module's files: `checked.rs` reads a safetensors file with every check above
//! (its framing, then each tensor against the config); `random.rs` builds random models
//! and saves models in the same layout; `files.rs` reads and writes plain f32 tensor
//! files (logits, hidden states, test fixtures).

use crate::config::Config;
use crate::error::{Error, Result};
use checked::{check_safetensors, safetensors_error, Reader};
use safetensors::SafeTensors;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

mod checked;
mod files;
mod random;

pub use checked::MAX_HEADER_LEN;
pub use files::{read_all_f32, write_f32, TensorMap};

/// One Linear layer of the implicit filter: weight `[out, in]`, and its bias (none for
/// the last).
pub type Linear = (Vec<f32>, Option<Vec<f32>>);

/// The weights of one Hyena block (all f32, row-major as in PyTorch).
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    /// `norm1.weight` `[D]`
    pub norm1_w: Vec<f32>,
    /// `norm1.bias` `[D]`
    pub norm1_b: Vec<f32>,
    /// `mixer.in_proj.weight` [3D, D]
    pub in_proj_w: Vec<f32>,
    /// `mixer.in_proj.bias` `[3D]`
    pub in_proj_b: Vec<f32>,
    /// `mixer.short_filter.weight` [3D, 1, 3]
    pub short_w: Vec<f32>,
    /// `mixer.short_filter.bias` `[3D]`
    pub short_b: Vec<f32>,
    /// `mixer.out_proj.weight` [D, D]
    pub out_proj_w: Vec<f32>,
    /// `mixer.out_proj.bias` `[D]`
    pub out_proj_b: Vec<f32>,
    /// `mixer.filter_fn.bias` `[D]`: the long convolution's per-channel skip term.
    pub filter_bias: Vec<f32>,
    /// `mixer.filter_fn.pos_emb.z` [max_seq_len, emb_dim]
    pub pos_z: Vec<f32>,
    /// `mixer.filter_fn.pos_emb.t` `[max_seq_len]`
    pub pos_t: Vec<f32>,
    /// `mixer.filter_fn.implicit_filter.{0,2,4,..}`: (weight [out, in], bias) pairs; the
    /// last has no bias.
    pub implicit: Vec<Linear>,
    /// The shared Sin frequency `[filter_order]`.
    pub freq: Vec<f32>,
    /// `mixer.filter_fn.modulation.deltas` `[D]`
    pub deltas: Vec<f32>,
    /// `norm2.weight` `[D]`
    pub norm2_w: Vec<f32>,
    /// `norm2.bias` `[D]`
    pub norm2_b: Vec<f32>,
    /// `mlp.fc1.weight` [d_inner, D]
    pub fc1_w: Vec<f32>,
    /// `mlp.fc1.bias` `[d_inner]`
    pub fc1_b: Vec<f32>,
    /// `mlp.fc2.weight` [D, d_inner]
    pub fc2_w: Vec<f32>,
    /// `mlp.fc2.bias` `[D]`
    pub fc2_b: Vec<f32>,
}

/// What kind of block a layer of a model is: what the session builds for it
/// (`session/block.rs`). A model is a sequence of blocks ([`Model::blocks`]); HyenaDNA's
/// are all Hyena blocks with an implicit filter. Other kinds (attention, Hyena with
/// modal or FIR filters) become variants here and block types in the session, and
/// reuse the long-convolution engine (the mixer) as they need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockKind {
    /// norm1, in_proj, the short causal conv, the long convolution by the filter, the
    /// gate, out_proj, norm2 and the MLP ([`Layer`]).
    Hyena(FilterKind),
}

/// How a Hyena block's long filter is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FilterKind {
    /// HyenaDNA's: an MLP over a positional embedding, modulated by a decay
    /// ([`Model::filter`] materialises it for a length).
    Implicit,
}

impl BlockKind {
    /// Whether the block has a long convolution (a layer of the session's mixer).
    pub fn has_long_conv(self) -> bool {
        match self {
            BlockKind::Hyena(_) => true,
        }
    }
}

/// A whole HyenaDNA causal LM.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    /// Hyper-parameters.
    pub config: Config,
    /// `hyena.backbone.embeddings.word_embeddings.weight` [V_pad, D]
    pub embed: Vec<f32>,
    /// The blocks.
    pub layers: Vec<Layer>,
    /// `hyena.backbone.ln_f.weight` `[D]`
    pub ln_f_w: Vec<f32>,
    /// `hyena.backbone.ln_f.bias` `[D]`
    pub ln_f_b: Vec<f32>,
    /// `lm_head.weight` [V_pad, D]
    pub lm_head: Vec<f32>,
}

/// Where a model lives: `dir/config.json` and the weights file.
#[derive(Clone, Debug)]
pub struct ModelPaths {
    /// The directory (holds config.json and, if present, tokenizer_config.json).
    pub dir: PathBuf,
    /// The safetensors file.
    pub weights: PathBuf,
}

impl ModelPaths {
    /// Accepts a directory holding `config.json` + `model.safetensors`, or a
    /// `.safetensors` file with `config.json` beside it.
    pub fn resolve(path: &Path) -> Result<Self> {
        let (dir, weights) = if path.is_dir() {
            (path.to_path_buf(), path.join("model.safetensors"))
        } else {
            let dir = path
                .parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
            (dir, path.to_path_buf())
        };
        if !weights.is_file() {
            return Err(Error::Io {
                path: weights,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "weights not found: pass a directory with config.json + model.safetensors, \
                     or a .safetensors file with config.json beside it \
                     (tools/convert_checkpoint.py converts .bin / .ckpt checkpoints)",
                ),
            });
        }
        Ok(ModelPaths { dir, weights })
    }
}

pub(super) fn prefix(i: usize) -> String {
    format!("hyena.backbone.layers.{i}.")
}

impl Model {
    /// Loads `config.json` and the safetensors weights (see [`ModelPaths::resolve`]).
    pub fn load(path: &Path) -> Result<Self> {
        let paths = ModelPaths::resolve(path)?;
        let config = Config::load(&paths.dir.join("config.json"))?;
        let bytes = std::fs::read(&paths.weights).map_err(|source| Error::Io {
            path: paths.weights.clone(),
            source,
        })?;
        Self::from_safetensors(config, &bytes, &paths.weights)
    }

    /// Builds a model from `config.json` text and safetensors bytes held in memory, as
    /// [`Model::load`] does from files: `name` stands for the model directory in
    /// messages, which name `name/config.json` and `name/model.safetensors`. Nothing is
    /// allocated on a GPU here.
    ///
    /// ```
    /// use flashconv::{Config, Model};
    /// let mut cfg = Config::new(1, 4, 12, 8);
    /// cfg.filter_order = 4;
    /// let dir = std::env::temp_dir().join(format!("flashconv-doc-{}", std::process::id()));
    /// Model::random(cfg, 1)?.save(&dir)?;
    /// let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
    /// let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    /// assert!(Model::from_bytes(&text, &bytes, "tiny").is_ok());
    /// let e = Model::from_bytes(&text, &bytes[..100], "tiny").unwrap_err().to_string();
    /// assert!(e.contains("tiny/model.safetensors") && e.contains("truncated"), "{e}");
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), flashconv::Error>(())
    /// ```
    pub fn from_bytes(config_json: &str, safetensors: &[u8], name: &str) -> Result<Self> {
        let dir = Path::new(name);
        let config = Config::parse(config_json, &dir.join("config.json"))?;
        Self::from_safetensors(config, safetensors, &dir.join("model.safetensors"))
    }

    /// Builds a model from a config and safetensors bytes (`path` is used in messages
    /// only). The config is validated again (its fields are public), the safetensors
    /// framing is checked in full, then every tensor against the config; see the
    /// [module docs](self) for what is refused and for unexpected tensors (a logged
    /// warning). Every error names the file and the tensor or config field. Nothing is
    /// allocated on a GPU here.
    pub fn from_safetensors(config: Config, bytes: &[u8], path: &Path) -> Result<Self> {
        config.validate().map_err(|msg| Error::Config {
            path: path.with_file_name("config.json"),
            msg,
        })?;
        check_safetensors(bytes, path)?;
        let st = SafeTensors::deserialize(bytes).map_err(|e| safetensors_error(e, path))?;
        let mut r = Reader {
            st,
            path,
            used: BTreeSet::new(),
        };
        let c = &config;
        r.check_layer_count(c)?;
        let (d, vp) = (c.d_model, c.padded_vocab());
        let vocab = format!(
            "[vocab_size {} padded to a multiple of pad_vocab_size_multiple {}, d_model]",
            c.vocab_size, c.pad_vocab_size_multiple
        );
        let embed = r.get(
            "hyena.backbone.embeddings.word_embeddings.weight",
            &[vp, d],
            &vocab,
        )?;
        let mut layers = Vec::with_capacity(c.n_layer);
        // Computed once, only if a layer lacks pos_emb (the config is size-checked).
        let mut pos_emb: Option<(Vec<f32>, Vec<f32>)> = None;
        for i in 0..c.n_layer {
            layers.push(r.layer(c, i, &mut pos_emb)?);
        }
        let ln_f_w = r.get("hyena.backbone.ln_f.weight", &[d], "[d_model]")?;
        let ln_f_b = r.get("hyena.backbone.ln_f.bias", &[d], "[d_model]")?;
        let lm_head = r.get("lm_head.weight", &[vp, d], &vocab)?;
        r.check_unused(c)?;
        Ok(Model {
            config,
            embed,
            layers,
            ln_f_w,
            ln_f_b,
            lm_head,
        })
    }

    /// The long filter of `layer` for positions `0..len`, channel-major `[D][len]`,
    /// computed in f64 from the stored parameters exactly as the HF port's
    /// `HyenaFilter.filter` does: `z[:len]` -> (Linear -> Sin) x (1 + num_inner_mlps)
    /// -> Linear(no bias) -> times `exp(-t * |deltas|) + shift`.
    pub fn filter(&self, layer: usize, len: usize) -> Result<Vec<f64>> {
        let c = &self.config;
        if len > c.max_seq_len {
            return Err(Error::input(format!(
                "filter length {len} exceeds max_seq_len {}",
                c.max_seq_len
            )));
        }
        let l = self.layers.get(layer).ok_or_else(|| {
            Error::input(format!(
                "layer {layer} does not exist (the model has {})",
                self.layers.len()
            ))
        })?;
        let d = c.d_model;
        let mut k = vec![0f64; d * len];
        let mut h: Vec<f64> = Vec::new();
        let mut next: Vec<f64> = Vec::new();
        for t in 0..len {
            h.clear();
            h.extend(
                l.pos_z[t * c.emb_dim..(t + 1) * c.emb_dim]
                    .iter()
                    .map(|&x| x as f64),
            );
            let n_lin = l.implicit.len();
            for (li, (w, b)) in l.implicit.iter().enumerate() {
                let inp = h.len();
                let out = w.len() / inp;
                next.clear();
                for o in 0..out {
                    let row = &w[o * inp..(o + 1) * inp];
                    let mut acc = b.as_ref().map_or(0.0, |b| b[o] as f64);
                    for (wi, hi) in row.iter().zip(&h) {
                        acc += *wi as f64 * hi;
                    }
                    if li + 1 < n_lin {
                        acc = (l.freq[o] as f64 * acc).sin();
                    }
                    next.push(acc);
                }
                std::mem::swap(&mut h, &mut next);
            }
            let tt = l.pos_t[t] as f64;
            for ch in 0..d {
                let m = if c.modulate {
                    (-tt * (l.deltas[ch] as f64).abs()).exp() + c.modulation_shift
                } else {
                    1.0
                };
                k[ch * len + t] = h[ch] * m;
            }
        }
        Ok(k)
    }

    /// The kind of each block, in order: all [`BlockKind::Hyena`] with an implicit
    /// filter for a HyenaDNA model.
    pub fn blocks(&self) -> Vec<BlockKind> {
        vec![BlockKind::Hyena(FilterKind::Implicit); self.layers.len()]
    }

    /// The blocks that have a long convolution, in order: the layers of a session's
    /// long-convolution engine (the mixer).
    pub fn long_conv_layers(&self) -> Vec<usize> {
        let blocks = self.blocks().into_iter().enumerate();
        blocks
            .filter(|(_, k)| k.has_long_conv())
            .map(|(l, _)| l)
            .collect()
    }

    /// Number of f32 parameters (for messages and benchmarks).
    pub fn param_count(&self) -> usize {
        let layer: usize = self
            .layers
            .iter()
            .map(|l| {
                l.in_proj_w.len()
                    + l.out_proj_w.len()
                    + l.fc1_w.len()
                    + l.fc2_w.len()
                    + l.short_w.len()
                    + l.implicit.iter().map(|(w, _)| w.len()).sum::<usize>()
            })
            .sum();
        layer + self.embed.len() + self.lm_head.len()
    }
}

/// HF `HyenaPositionalEmbedding` as initialised: `z = [t, cos(-f w), sin(-f w)]` with
/// `t = linspace(0, 1, L)`, `w = 2 pi k / L`, `f = linspace(1e-4, bands - 1, bands)`.
/// Returns (`z` `[L, emb_dim]`, `t` `[L]`). Checkpoints store `z` and `t`; this is only for
/// random models (and checkpoints that lack them).
pub fn positional_embedding(len: usize, emb_dim: usize) -> (Vec<f32>, Vec<f32>) {
    let bands = emb_dim.saturating_sub(1) / 2;
    let linspace = |a: f64, b: f64, n: usize, i: usize| {
        if n <= 1 {
            a
        } else {
            a + (b - a) * i as f64 / (n - 1) as f64
        }
    };
    let mut z = Vec::with_capacity(len * emb_dim);
    let mut t = Vec::with_capacity(len);
    for i in 0..len {
        let ti = linspace(0.0, 1.0, len, i);
        t.push(ti as f32);
        let w = 2.0 * std::f64::consts::PI * i as f64 / len as f64;
        z.push(ti as f32);
        for b in 0..bands {
            z.push((-linspace(1e-4, bands as f64 - 1.0, bands, b) * w).cos() as f32);
        }
        for b in 0..bands {
            z.push((-linspace(1e-4, bands as f64 - 1.0, bands, b) * w).sin() as f32);
        }
    }
    (z, t)
}

/// HF `HyenaExponentialModulation` deltas: linspace(ln(1e-2)/1.5, ln(1e-2)/0.3, D).
pub fn default_deltas(d: usize) -> Vec<f32> {
    let (min_decay, max_decay) = (0.01f64.ln() / 1.5, 0.01f64.ln() / 0.3);
    (0..d)
        .map(|i| {
            let f = if d <= 1 {
                0.0
            } else {
                i as f64 / (d - 1) as f64
            };
            (min_decay + (max_decay - min_decay) * f) as f32
        })
        .collect()
}
