//! HyenaDNA weights: loading from `model.safetensors` with the Hugging Face tensor names,
//! the implicit long filter materialised exactly as the HF port computes it, and a
//! builder for random models of any shape that writes the same layout.

use crate::config::Config;
use crate::error::{Error, Result};
use safetensors::{Dtype, SafeTensors};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The weights of one Hyena block (all f32, row-major as in PyTorch).
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    /// `norm1.weight` [D]
    pub norm1_w: Vec<f32>,
    /// `norm1.bias` [D]
    pub norm1_b: Vec<f32>,
    /// `mixer.in_proj.weight` [3D, D]
    pub in_proj_w: Vec<f32>,
    /// `mixer.in_proj.bias` [3D]
    pub in_proj_b: Vec<f32>,
    /// `mixer.short_filter.weight` [3D, 1, 3]
    pub short_w: Vec<f32>,
    /// `mixer.short_filter.bias` [3D]
    pub short_b: Vec<f32>,
    /// `mixer.out_proj.weight` [D, D]
    pub out_proj_w: Vec<f32>,
    /// `mixer.out_proj.bias` [D]
    pub out_proj_b: Vec<f32>,
    /// `mixer.filter_fn.bias` [D]: the long convolution's per-channel skip term.
    pub filter_bias: Vec<f32>,
    /// `mixer.filter_fn.pos_emb.z` [max_seq_len, emb_dim]
    pub pos_z: Vec<f32>,
    /// `mixer.filter_fn.pos_emb.t` [max_seq_len]
    pub pos_t: Vec<f32>,
    /// `mixer.filter_fn.implicit_filter.{0,2,4,..}`: (weight [out, in], bias) pairs; the
    /// last has no bias.
    pub implicit: Vec<(Vec<f32>, Option<Vec<f32>>)>,
    /// The shared Sin frequency [filter_order].
    pub freq: Vec<f32>,
    /// `mixer.filter_fn.modulation.deltas` [D]
    pub deltas: Vec<f32>,
    /// `norm2.weight` [D]
    pub norm2_w: Vec<f32>,
    /// `norm2.bias` [D]
    pub norm2_b: Vec<f32>,
    /// `mlp.fc1.weight` [d_inner, D]
    pub fc1_w: Vec<f32>,
    /// `mlp.fc1.bias` [d_inner]
    pub fc1_b: Vec<f32>,
    /// `mlp.fc2.weight` [D, d_inner]
    pub fc2_w: Vec<f32>,
    /// `mlp.fc2.bias` [D]
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
    /// `hyena.backbone.ln_f.weight` [D]
    pub ln_f_w: Vec<f32>,
    /// `hyena.backbone.ln_f.bias` [D]
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

    /// Builds a model from a config and safetensors bytes; every error names the file
    /// and tensor. Nothing is allocated on a GPU here.
    pub fn from_safetensors(config: Config, bytes: &[u8], path: &Path) -> Result<Self> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| Error::Weights {
            path: path.to_path_buf(),
            msg: format!("not a valid safetensors file: {e}"),
        })?;
        let mut r = Reader {
            st,
            path,
            used: BTreeSet::new(),
        };
        let c = &config;
        let (d, vp) = (c.d_model, c.padded_vocab());
        let embed = r.get("hyena.backbone.embeddings.word_embeddings.weight", &[vp, d])?;
        let mut layers = Vec::with_capacity(c.n_layer);
        for i in 0..c.n_layer {
            layers.push(r.layer(c, i)?);
        }
        let ln_f_w = r.get("hyena.backbone.ln_f.weight", &[d])?;
        let ln_f_b = r.get("hyena.backbone.ln_f.bias", &[d])?;
        let lm_head = r.get("lm_head.weight", &[vp, d])?;
        let unused: Vec<String> =
            r.st.names()
                .into_iter()
                .filter(|n| !r.used.contains(*n) && !n.ends_with(".freq"))
                .map(str::to_string)
                .collect();
        if !unused.is_empty() {
            log::warn!("{}: ignoring unexpected tensors {unused:?}", path.display());
        }
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
        let l = &self.layers[layer];
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
/// Returns (`z` [L, emb_dim], `t` [L]). Checkpoints store `z` and `t`; this is only for
/// random models (and checkpoints that lack them).
pub fn positional_embedding(len: usize, emb_dim: usize) -> (Vec<f32>, Vec<f32>) {
    let bands = (emb_dim - 1) / 2;
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
    /// size-1 axes added or dropped).
    fn get(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let view = self.st.tensor(name).map_err(|_| {
            self.err(format!(
                "missing tensor '{name}' (expected shape {shape:?})"
            ))
        })?;
        let squeeze = |s: &[usize]| s.iter().copied().filter(|&x| x != 1).collect::<Vec<_>>();
        if squeeze(view.shape()) != squeeze(shape) {
            return Err(self.err(format!(
                "tensor '{name}' has shape {:?}, expected {shape:?} (check config.json)",
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
                "tensor '{name}' holds a non-finite value ({}) at element {bad}",
                vals[bad]
            )));
        }
        self.used.insert(name.to_string());
        Ok(vals)
    }

    fn layer(&mut self, c: &Config, i: usize) -> Result<Layer> {
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
                self.get(&format!("{f}pos_emb.z"), &[1, l, e])?,
                self.get(&format!("{f}pos_emb.t"), &[1, l, 1])?,
            )
        } else {
            log::warn!(
                "{}: layer {i} has no pos_emb.z; recomputing it",
                self.path.display()
            );
            positional_embedding(l, e)
        };
        let n_lin = c.num_inner_mlps + 2;
        let mut implicit = Vec::with_capacity(n_lin);
        for j in 0..n_lin {
            let (inp, out) = match j {
                0 => (e, o),
                _ if j + 1 == n_lin => (o, d),
                _ => (o, o),
            };
            let w = self.get(&format!("{f}implicit_filter.{}.weight", 2 * j), &[out, inp])?;
            let b = if j + 1 < n_lin {
                Some(self.get(&format!("{f}implicit_filter.{}.bias", 2 * j), &[out])?)
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
                let v = self.get(&name, &[1, o])?;
                if let Some(prev) = &freq {
                    if *prev != v {
                        return Err(self.err(format!(
                            "tensor '{name}' differs from another alias of the shared Sin \
                             frequency of layer {i}"
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
                    "missing tensor '{f}implicit_filter.1.freq' (train_freq is true)"
                )))
            }
        };
        Ok(Layer {
            norm1_w: self.get(&format!("{p}norm1.weight"), &[d])?,
            norm1_b: self.get(&format!("{p}norm1.bias"), &[d])?,
            in_proj_w: self.get(&format!("{p}mixer.in_proj.weight"), &[3 * d, d])?,
            in_proj_b: self.get(&format!("{p}mixer.in_proj.bias"), &[3 * d])?,
            short_w: self.get(&format!("{p}mixer.short_filter.weight"), &[3 * d, 1, 3])?,
            short_b: self.get(&format!("{p}mixer.short_filter.bias"), &[3 * d])?,
            out_proj_w: self.get(&format!("{p}mixer.out_proj.weight"), &[d, d])?,
            out_proj_b: self.get(&format!("{p}mixer.out_proj.bias"), &[d])?,
            filter_bias: self.get(&format!("{f}bias"), &[d])?,
            pos_z,
            pos_t,
            implicit,
            freq,
            deltas: self.get(&format!("{f}modulation.deltas"), &[1, 1, d])?,
            norm2_w: self.get(&format!("{p}norm2.weight"), &[d])?,
            norm2_b: self.get(&format!("{p}norm2.bias"), &[d])?,
            fc1_w: self.get(&format!("{p}mlp.fc1.weight"), &[di, d])?,
            fc1_b: self.get(&format!("{p}mlp.fc1.bias"), &[di])?,
            fc2_w: self.get(&format!("{p}mlp.fc2.weight"), &[d, di])?,
            fc2_b: self.get(&format!("{p}mlp.fc2.bias"), &[d])?,
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
    let st = SafeTensors::deserialize(&bytes).map_err(|e| Error::Weights {
        path: path.to_path_buf(),
        msg: format!("not a valid safetensors file: {e}"),
    })?;
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
