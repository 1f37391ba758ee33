//! Random models of any shape (benchmarks, tests, `flashconv random`) and saving a
//! model in the HF layout (`config.json` + `model.safetensors`).

use super::{default_deltas, positional_embedding, prefix, Layer, Model};
use crate::config::Config;
use crate::error::{Error, Result};
use safetensors::Dtype;
use std::path::{Path, PathBuf};

impl Model {
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
