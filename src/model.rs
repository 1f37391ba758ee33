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

use crate::config::Config;
use crate::error::{Error, Result};
use safetensors::tensor::TensorInfo;
use safetensors::{Dtype, SafeTensorError, SafeTensors};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Largest safetensors header flashconv reads, in bytes (the `safetensors` crate's own
/// limit, 100 MB; real headers are a few hundred KB at most).
pub const MAX_HEADER_LEN: u64 = 100_000_000;

/// What to do about a corrupt weights file (appended to framing errors).
const REEXPORT: &str = "the file is corrupt or not safetensors: download or export it \
                        again (tools/convert_checkpoint.py writes a valid one)";

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
    pub implicit: Vec<(Vec<f32>, Option<Vec<f32>>)>,
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

fn prefix(i: usize) -> String {
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

    /// A random model of the given shape with weights scaled so activations stay O(1);
    /// deterministic for a seed. Used for benchmarks and tests.
    pub fn random(config: Config, seed: u64) -> Result<Self> {
        config.validate().map_err(|msg| Error::Config {
            path: "<random>".into(),
            msg,
        })?;
        let mut rng = crate::sampling::SplitMix64::new(seed);
        let c = &config;
        let (d, di, vp, o) = (c.d_model, c.d_inner, c.padded_vocab(), c.filter_order);
        let mut normal = |n: usize, scale: f64, mean: f64| -> Vec<f32> {
            (0..n)
                .map(|_| (mean + scale * rng.normal()) as f32)
                .collect()
        };
        let (z, t) = positional_embedding(c.max_seq_len, c.emb_dim);
        let mut layers = Vec::new();
        for _ in 0..c.n_layer {
            let mut implicit = vec![(
                normal(o * c.emb_dim, 1.0 / (c.emb_dim as f64).sqrt(), 0.0),
                Some(normal(o, 0.1, 0.0)),
            )];
            for _ in 0..c.num_inner_mlps {
                implicit.push((
                    normal(o * o, 1.0 / (o as f64).sqrt(), 0.0),
                    Some(normal(o, 0.1, 0.0)),
                ));
            }
            implicit.push((normal(d * o, 1.0 / (o as f64).sqrt(), 0.0), None));
            let deltas = default_deltas(d);
            layers.push(Layer {
                norm1_w: normal(d, 0.1, 1.0),
                norm1_b: normal(d, 0.1, 0.0),
                in_proj_w: normal(3 * d * d, 1.0 / (d as f64).sqrt(), 0.0),
                in_proj_b: normal(3 * d, 0.1, 0.0),
                short_w: normal(3 * d * 3, 0.5, 0.0),
                short_b: normal(3 * d, 0.1, 0.0),
                out_proj_w: normal(d * d, 1.0 / (d as f64).sqrt(), 0.0),
                out_proj_b: normal(d, 0.1, 0.0),
                filter_bias: normal(d, 1.0, 0.0),
                pos_z: z.clone(),
                pos_t: t.clone(),
                implicit,
                freq: vec![c.activation_freq as f32; o],
                deltas,
                norm2_w: normal(d, 0.1, 1.0),
                norm2_b: normal(d, 0.1, 0.0),
                fc1_w: normal(di * d, 1.0 / (d as f64).sqrt(), 0.0),
                fc1_b: normal(di, 0.1, 0.0),
                fc2_w: normal(d * di, 1.0 / (di as f64).sqrt(), 0.0),
                fc2_b: normal(d, 0.1, 0.0),
            });
        }
        Ok(Model {
            embed: normal(vp * d, 1.0, 0.0),
            ln_f_w: normal(d, 0.1, 1.0),
            ln_f_b: normal(d, 0.1, 0.0),
            lm_head: normal(vp * d, 1.0 / (d as f64).sqrt(), 0.0),
            layers,
            config,
        })
    }

    /// The tensors of this model under their HF names, with shapes.
    pub fn tensors(&self) -> Vec<(String, Vec<usize>, &[f32])> {
        let c = &self.config;
        let (d, di, vp, o) = (c.d_model, c.d_inner, c.padded_vocab(), c.filter_order);
        let mut v: Vec<(String, Vec<usize>, &[f32])> = vec![(
            "hyena.backbone.embeddings.word_embeddings.weight".into(),
            vec![vp, d],
            &self.embed,
        )];
        for (i, l) in self.layers.iter().enumerate() {
            let p = prefix(i);
            let f = format!("{p}mixer.filter_fn.");
            macro_rules! push {
                ($n:expr, $s:expr, $d:expr) => {
                    v.push(($n, $s, &$d[..]))
                };
            }
            push!(format!("{p}norm1.weight"), vec![d], l.norm1_w);
            push!(format!("{p}norm1.bias"), vec![d], l.norm1_b);
            push!(
                format!("{p}mixer.in_proj.weight"),
                vec![3 * d, d],
                l.in_proj_w
            );
            push!(format!("{p}mixer.in_proj.bias"), vec![3 * d], l.in_proj_b);
            push!(
                format!("{p}mixer.short_filter.weight"),
                vec![3 * d, 1, 3],
                l.short_w
            );
            push!(
                format!("{p}mixer.short_filter.bias"),
                vec![3 * d],
                l.short_b
            );
            push!(
                format!("{p}mixer.out_proj.weight"),
                vec![d, d],
                l.out_proj_w
            );
            push!(format!("{p}mixer.out_proj.bias"), vec![d], l.out_proj_b);
            push!(format!("{f}bias"), vec![d], l.filter_bias);
            push!(
                format!("{f}pos_emb.z"),
                vec![1, c.max_seq_len, c.emb_dim],
                l.pos_z
            );
            push!(format!("{f}pos_emb.t"), vec![1, c.max_seq_len, 1], l.pos_t);
            for (j, (w, b)) in l.implicit.iter().enumerate() {
                let inp = if j == 0 { c.emb_dim } else { o };
                let out = w.len() / inp;
                push!(
                    format!("{f}implicit_filter.{}.weight", 2 * j),
                    vec![out, inp],
                    w
                );
                if let Some(b) = b {
                    push!(format!("{f}implicit_filter.{}.bias", 2 * j), vec![out], b);
                }
            }
            push!(format!("{f}implicit_filter.1.freq"), vec![1, o], l.freq);
            push!(format!("{f}modulation.deltas"), vec![1, 1, d], l.deltas);
            push!(format!("{p}norm2.weight"), vec![d], l.norm2_w);
            push!(format!("{p}norm2.bias"), vec![d], l.norm2_b);
            push!(format!("{p}mlp.fc1.weight"), vec![di, d], l.fc1_w);
            push!(format!("{p}mlp.fc1.bias"), vec![di], l.fc1_b);
            push!(format!("{p}mlp.fc2.weight"), vec![d, di], l.fc2_w);
            push!(format!("{p}mlp.fc2.bias"), vec![d], l.fc2_b);
        }
        v.push(("hyena.backbone.ln_f.weight".into(), vec![d], &self.ln_f_w));
        v.push(("hyena.backbone.ln_f.bias".into(), vec![d], &self.ln_f_b));
        v.push(("lm_head.weight".into(), vec![vp, d], &self.lm_head));
        v
    }

    /// Writes `dir/config.json` and `dir/model.safetensors` (HF layout).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let io = |path: PathBuf| move |source| Error::Io { path, source };
        std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
        let cfg_path = dir.join("config.json");
        std::fs::write(&cfg_path, self.config.to_json()).map_err(io(cfg_path.clone()))?;
        let tensors = self.tensors();
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
            .iter()
            .map(|(name, shape, data)| {
                let view = safetensors::tensor::TensorView::new(
                    Dtype::F32,
                    shape.clone(),
                    bytemuck::cast_slice(data),
                )
                .map_err(|e| Error::Weights {
                    path: dir.join("model.safetensors"),
                    msg: format!("tensor {name}: {e}"),
                })?;
                Ok((name.clone(), view))
            })
            .collect::<Result<_>>()?;
        let w_path = dir.join("model.safetensors");
        let bytes = safetensors::serialize(views, None).map_err(|e| Error::Weights {
            path: w_path.clone(),
            msg: format!("serialize: {e}"),
        })?;
        std::fs::write(&w_path, bytes).map_err(io(w_path.clone()))
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

/// The entries of a safetensors header in file order, duplicates kept (a JSON object
/// read into a map would silently keep only the last of two equal names).
struct HeaderEntries(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for HeaderEntries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = HeaderEntries;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object mapping tensor names to their entries")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<HeaderEntries, A::Error> {
                let mut v = Vec::new();
                while let Some(entry) = map.next_entry::<String, serde_json::Value>()? {
                    v.push(entry);
                }
                Ok(HeaderEntries(v))
            }
        }
        d.deserialize_map(Entries)
    }
}

/// Checks the framing of a safetensors file completely, with messages that name the
/// tensor, before the `safetensors` crate reads it: its own checks name no tensor for
/// most problems, and its final size check (`end + 8 + header length`) can overflow on
/// offsets near `usize::MAX`, which panics in builds with overflow checks.
fn check_safetensors(bytes: &[u8], path: &Path) -> Result<()> {
    let err = |msg: String| Error::Weights {
        path: path.to_path_buf(),
        msg,
    };
    let Some(len_bytes) = bytes.first_chunk::<8>() else {
        return Err(err(format!(
            "the file is {} bytes long, shorter than the 8-byte header length that starts \
             every safetensors file: it is truncated or empty; {REEXPORT}",
            bytes.len()
        )));
    };
    let n = u64::from_le_bytes(*len_bytes);
    let rest = bytes.len() - 8;
    if n > MAX_HEADER_LEN {
        return Err(err(format!(
            "the header length field says {n} bytes, more than the {MAX_HEADER_LEN}-byte \
             limit for a safetensors header; {REEXPORT}"
        )));
    }
    let n = n as usize; // <= MAX_HEADER_LEN
    if n > rest {
        return Err(err(format!(
            "the header length field says {n} bytes but only {rest} bytes follow it: the \
             file is truncated; {REEXPORT}"
        )));
    }
    let header = std::str::from_utf8(&bytes[8..8 + n])
        .map_err(|e| err(format!("the header is not UTF-8 ({e}); {REEXPORT}")))?;
    let entries: HeaderEntries = serde_json::from_str(header).map_err(|e| {
        err(format!(
            "the header is not a JSON object of tensor entries ({e}); {REEXPORT}"
        ))
    })?;
    let data_len = rest - n;
    let mut names = BTreeSet::new();
    let mut spans: Vec<(usize, usize, String)> = Vec::with_capacity(entries.0.len());
    for (name, value) in entries.0 {
        if !names.insert(name.clone()) {
            return Err(err(format!(
                "tensor '{name}' is listed twice in the header; {REEXPORT}"
            )));
        }
        if name == "__metadata__" {
            match &value {
                serde_json::Value::Null => continue,
                serde_json::Value::Object(m) if m.values().all(|v| v.is_string()) => continue,
                _ => {
                    return Err(err(format!(
                        "'__metadata__' must map strings to strings, got {value}; {REEXPORT}"
                    )))
                }
            }
        }
        let info: TensorInfo = serde_json::from_value(value).map_err(|e| {
            err(format!(
                "tensor '{name}' has a malformed header entry ({e}); an entry is \
                 {{\"dtype\": \"F32\", \"shape\": [..], \"data_offsets\": [begin, end]}}; \
                 {REEXPORT}"
            ))
        })?;
        let (b, e) = info.data_offsets;
        if b > e {
            return Err(err(format!(
                "tensor '{name}' has data_offsets [{b}, {e}] that end before they begin; \
                 {REEXPORT}"
            )));
        }
        if e > data_len {
            return Err(err(format!(
                "tensor '{name}' has data_offsets [{b}, {e}] but the data section is only \
                 {data_len} bytes: the file is truncated; {REEXPORT}"
            )));
        }
        let bits = info
            .shape
            .iter()
            .try_fold(1usize, |acc, &x| acc.checked_mul(x))
            .and_then(|elems| elems.checked_mul(info.dtype.bitsize()));
        match bits {
            None => {
                return Err(err(format!(
                    "tensor '{name}' has shape {:?}, whose size overflows; {REEXPORT}",
                    info.shape
                )))
            }
            Some(bits) if bits % 8 != 0 || bits / 8 != e - b => {
                let needs = if bits % 8 == 0 {
                    format!("{} bytes", bits / 8)
                } else {
                    format!("{bits} bits (not a whole number of bytes)")
                };
                return Err(err(format!(
                    "tensor '{name}' ({:?}, shape {:?}) needs {needs} but its data_offsets \
                     [{b}, {e}] hold {} bytes; {REEXPORT}",
                    info.dtype,
                    info.shape,
                    e - b
                )));
            }
            Some(_) => {}
        }
        spans.push((b, e, name));
    }
    spans.sort();
    let mut end = 0;
    let mut prev: Option<(usize, usize, &str)> = None;
    for (b, e, name) in &spans {
        if *b < end {
            let (pb, pe, pn) = prev.unwrap_or((0, 0, ""));
            return Err(err(format!(
                "tensors '{pn}' (data_offsets [{pb}, {pe}]) and '{name}' ([{b}, {e}]) \
                 overlap; {REEXPORT}"
            )));
        }
        if *b > end {
            return Err(err(format!(
                "bytes {end}..{b} of the data section, before tensor '{name}', belong to no \
                 tensor; {REEXPORT}"
            )));
        }
        end = *e;
        prev = Some((*b, *e, name));
    }
    if end != data_len {
        return Err(err(format!(
            "the last {} bytes of the file belong to no tensor (the tensors end at data \
             offset {end}, the data section is {data_len} bytes); {REEXPORT}",
            data_len - end
        )));
    }
    Ok(())
}

/// A `safetensors` crate error as an [`Error::Weights`] that names the file and says
/// what to do. [`check_safetensors`] catches all of these first; this is the fallback.
fn safetensors_error(e: SafeTensorError, path: &Path) -> Error {
    use SafeTensorError as S;
    let what = match &e {
        S::InvalidOffset(name) => format!(
            "tensor '{name}' has invalid data_offsets (out of order, overlapping or leaving \
             a gap)"
        ),
        S::TensorNotFound(name) => format!("tensor '{name}' is not in the file"),
        S::HeaderTooLarge | S::HeaderTooSmall | S::InvalidHeaderLength => {
            "the header length is invalid (truncated file?)".to_string()
        }
        S::MetadataIncompleteBuffer => {
            "the tensors do not cover the data section exactly (truncated file or trailing \
             bytes)"
                .to_string()
        }
        S::TensorInvalidInfo | S::ValidationOverflow | S::MisalignedSlice => {
            "a tensor's dtype, shape and data_offsets disagree".to_string()
        }
        _ => "the header is malformed".to_string(),
    };
    Error::Weights {
        path: path.to_path_buf(),
        msg: format!("not a valid safetensors file: {what} ({e}); {REEXPORT}"),
    }
}

/// The layer index of a tensor named `hyena.backbone.layers.{i}.…`.
fn layer_index(name: &str) -> Option<usize> {
    let rest = name.strip_prefix("hyena.backbone.layers.")?;
    rest.split('.').next()?.parse().ok()
}

/// The module index of a tensor named `….mixer.filter_fn.implicit_filter.{k}.…`.
fn implicit_index(name: &str) -> Option<usize> {
    let (_, rest) = name.split_once(".mixer.filter_fn.implicit_filter.")?;
    rest.split('.').next()?.parse().ok()
}

/// Reads tensors by name, checking dtype and shape, remembering which were used.
struct Reader<'a> {
    st: SafeTensors<'a>,
    path: &'a Path,
    used: BTreeSet<String>,
}

impl Reader<'_> {
    fn err(&self, msg: String) -> Error {
        Error::Weights {
            path: self.path.to_path_buf(),
            msg,
        }
    }

    fn has(&self, name: &str) -> bool {
        self.st.tensor(name).is_ok()
    }

    /// The tensor `name` as f32, which must have `shape` (or the same elements with
    /// size-1 axes added or dropped); `dims` says which config fields size it.
    fn get(&mut self, name: &str, shape: &[usize], dims: &str) -> Result<Vec<f32>> {
        let view = self.st.tensor(name).map_err(|_| {
            self.err(format!(
                "missing tensor '{name}' (expected shape {shape:?} = {dims} from config.json); \
                 check that the checkpoint is a HyenaDNA model in the Hugging Face layout \
                 (tools/convert_checkpoint.py renames other layouts)"
            ))
        })?;
        let squeeze = |s: &[usize]| s.iter().copied().filter(|&x| x != 1).collect::<Vec<_>>();
        if squeeze(view.shape()) != squeeze(shape) {
            return Err(self.err(format!(
                "tensor '{name}' has shape {:?}, expected {shape:?} = {dims} from config.json: \
                 the config does not match the checkpoint",
                view.shape()
            )));
        }
        if view.dtype() != Dtype::F32 {
            return Err(self.err(format!(
                "tensor '{name}' has dtype {:?}; flashconv reads F32 (convert with \
                 tools/convert_checkpoint.py, which casts to float32)",
                view.dtype()
            )));
        }
        let data = view.data();
        let vals: Vec<f32> = data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if let Some(bad) = vals.iter().position(|v| !v.is_finite()) {
            return Err(self.err(format!(
                "tensor '{name}' holds a non-finite value ({}) at element {bad}: the \
                 checkpoint is corrupt or diverged in training",
                vals[bad]
            )));
        }
        self.used.insert(name.to_string());
        Ok(vals)
    }

    /// The file must hold tensors for exactly the layers `0..n_layer`.
    fn check_layer_count(&self, c: &Config) -> Result<()> {
        let names = self.st.names();
        let present: BTreeSet<usize> = names.iter().filter_map(|n| layer_index(n)).collect();
        if let Some(&top) = present.last() {
            if top >= c.n_layer {
                return Err(self.err(format!(
                    "the file has tensors for layer {top} but config.json has n_layer = {}: \
                     the config does not match the checkpoint (set n_layer to the number of \
                     layers in the file)",
                    c.n_layer
                )));
            }
        }
        if let Some(i) = (0..c.n_layer).find(|i| !present.contains(i)) {
            return Err(self.err(format!(
                "config.json has n_layer = {} but the file has no tensors for layer {i} \
                 ('hyena.backbone.layers.{i}.*'): the config does not match the checkpoint",
                c.n_layer
            )));
        }
        Ok(())
    }

    /// Tensors nobody read: an error if they show a config mismatch, else a warning.
    fn check_unused(&self, c: &Config) -> Result<()> {
        let n_modules = 2 * (c.num_inner_mlps + 2) - 1; // implicit_filter.0 ..= .{2(n+1)}
        let mut ignored = Vec::new();
        for name in self.st.names() {
            if self.used.contains(name) {
                continue;
            }
            if let Some(k) = implicit_index(name) {
                if k >= n_modules {
                    return Err(self.err(format!(
                        "tensor '{name}' is filter-MLP module {k}, but config.json has \
                         num_inner_mlps = {} (modules 0..={}): the config does not match \
                         the checkpoint",
                        c.num_inner_mlps,
                        n_modules - 1
                    )));
                }
            }
            ignored.push(name.to_string());
        }
        if !ignored.is_empty() {
            ignored.sort();
            log::warn!(
                "{}: ignoring {} tensor(s) flashconv does not use: {ignored:?}",
                self.path.display(),
                ignored.len()
            );
        }
        Ok(())
    }

    fn layer(
        &mut self,
        c: &Config,
        i: usize,
        pos_emb: &mut Option<(Vec<f32>, Vec<f32>)>,
    ) -> Result<Layer> {
        let p = prefix(i);
        let f = format!("{p}mixer.filter_fn.");
        let (d, di, o, e, l) = (
            c.d_model,
            c.d_inner,
            c.filter_order,
            c.emb_dim,
            c.max_seq_len,
        );
        let (pos_z, pos_t) = if self.has(&format!("{f}pos_emb.z")) {
            (
                self.get(
                    &format!("{f}pos_emb.z"),
                    &[1, l, e],
                    "[1, max_seq_len, emb_dim]",
                )?,
                self.get(&format!("{f}pos_emb.t"), &[1, l, 1], "[1, max_seq_len, 1]")?,
            )
        } else {
            log::warn!(
                "{}: layer {i} has no pos_emb.z; recomputing it",
                self.path.display()
            );
            pos_emb
                .get_or_insert_with(|| positional_embedding(l, e))
                .clone()
        };
        let n_lin = c.num_inner_mlps + 2;
        let mut implicit = Vec::with_capacity(n_lin);
        for j in 0..n_lin {
            let (inp, out, dims) = match j {
                0 => (e, o, "[filter_order, emb_dim]"),
                _ if j + 1 == n_lin => (o, d, "[d_model, filter_order]"),
                _ => (o, o, "[filter_order, filter_order]"),
            };
            let w = self.get(
                &format!("{f}implicit_filter.{}.weight", 2 * j),
                &[out, inp],
                dims,
            )?;
            let b = if j + 1 < n_lin {
                Some(self.get(
                    &format!("{f}implicit_filter.{}.bias", 2 * j),
                    &[out],
                    "[filter_order]",
                )?)
            } else {
                None
            };
            implicit.push((w, b));
        }
        // One Sin module is shared by all Sin layers; the state dict may list it under any
        // of its aliases (.1, .3, .5, ...). All present aliases must agree.
        let mut freq: Option<Vec<f32>> = None;
        for j in 0..n_lin - 1 {
            let name = format!("{f}implicit_filter.{}.freq", 2 * j + 1);
            if self.has(&name) {
                let v = self.get(&name, &[1, o], "[1, filter_order]")?;
                if let Some(prev) = &freq {
                    if *prev != v {
                        return Err(self.err(format!(
                            "tensor '{name}' differs from another alias of the shared Sin \
                             frequency of layer {i} ({f}implicit_filter.1.freq): the \
                             checkpoint is inconsistent"
                        )));
                    }
                }
                freq = Some(v);
            }
        }
        let freq = match freq {
            Some(v) => v,
            None if !c.train_freq => vec![c.activation_freq as f32; o],
            None => {
                return Err(self.err(format!(
                    "missing tensor '{f}implicit_filter.1.freq' (config.json has train_freq \
                     true; set it to false to use activation_freq instead)"
                )))
            }
        };
        let (vd, v3d) = ("[d_model]", "[3 d_model]");
        Ok(Layer {
            norm1_w: self.get(&format!("{p}norm1.weight"), &[d], vd)?,
            norm1_b: self.get(&format!("{p}norm1.bias"), &[d], vd)?,
            in_proj_w: self.get(
                &format!("{p}mixer.in_proj.weight"),
                &[3 * d, d],
                "[3 d_model, d_model]",
            )?,
            in_proj_b: self.get(&format!("{p}mixer.in_proj.bias"), &[3 * d], v3d)?,
            short_w: self.get(
                &format!("{p}mixer.short_filter.weight"),
                &[3 * d, 1, 3],
                "[3 d_model, 1, short_filter_order]",
            )?,
            short_b: self.get(&format!("{p}mixer.short_filter.bias"), &[3 * d], v3d)?,
            out_proj_w: self.get(
                &format!("{p}mixer.out_proj.weight"),
                &[d, d],
                "[d_model, d_model]",
            )?,
            out_proj_b: self.get(&format!("{p}mixer.out_proj.bias"), &[d], vd)?,
            filter_bias: self.get(&format!("{f}bias"), &[d], vd)?,
            pos_z,
            pos_t,
            implicit,
            freq,
            deltas: self.get(
                &format!("{f}modulation.deltas"),
                &[1, 1, d],
                "[1, 1, d_model]",
            )?,
            norm2_w: self.get(&format!("{p}norm2.weight"), &[d], vd)?,
            norm2_b: self.get(&format!("{p}norm2.bias"), &[d], vd)?,
            fc1_w: self.get(
                &format!("{p}mlp.fc1.weight"),
                &[di, d],
                "[d_inner, d_model]",
            )?,
            fc1_b: self.get(&format!("{p}mlp.fc1.bias"), &[di], "[d_inner]")?,
            fc2_w: self.get(
                &format!("{p}mlp.fc2.weight"),
                &[d, di],
                "[d_model, d_inner]",
            )?,
            fc2_b: self.get(&format!("{p}mlp.fc2.bias"), &[d], vd)?,
        })
    }
}

/// Tensors by name: (shape, values as f32).
pub type TensorMap = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// Reads every tensor of a safetensors file as f32 (for tests and tools); errors name
/// the file and tensor.
pub fn read_all_f32(path: &Path) -> Result<TensorMap> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    check_safetensors(&bytes, path)?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| safetensors_error(e, path))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let vals: Vec<f32> = match view.dtype() {
            Dtype::F32 => view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::I64 => view
                .data()
                .chunks_exact(8)
                .map(|b| {
                    i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
                })
                .collect(),
            other => {
                return Err(Error::Weights {
                    path: path.to_path_buf(),
                    msg: format!("tensor '{name}' has unsupported dtype {other:?}"),
                })
            }
        };
        out.insert(name, (view.shape().to_vec(), vals));
    }
    Ok(out)
}

/// Writes f32 tensors to a safetensors file (for `score --logits/--hidden`).
pub fn write_f32(path: &Path, tensors: &[(&str, Vec<usize>, &[f32])]) -> Result<()> {
    let views = tensors
        .iter()
        .map(|(name, shape, data)| {
            safetensors::tensor::TensorView::new(
                Dtype::F32,
                shape.clone(),
                bytemuck::cast_slice(data),
            )
            .map(|v| (name.to_string(), v))
            .map_err(|e| Error::Weights {
                path: path.to_path_buf(),
                msg: format!("tensor {name}: {e}"),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let bytes = safetensors::serialize(views, None).map_err(|e| Error::Weights {
        path: path.to_path_buf(),
        msg: format!("serialize: {e}"),
    })?;
    std::fs::write(path, bytes).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}
