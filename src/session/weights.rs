//! The model's weights on the device: [`GpuModel`] packs and uploads them once (f32 or
//! opt-in f16, in buffers or textures: [`WeightFormat`], [`WeightStorage`]), folds the
//! norms into the matrices that follow them ([`fold_norm`]) and compiles every kernel a
//! session dispatches. Sessions share it.

use super::dense::DenseKernels;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::gpu::{self, GpuContext, LinearTexture};
use crate::mixer::MixerKernels;
use crate::model::{Layer, Model};
use crate::sampling::GpuSampler;
use std::sync::Arc;

/// How the matrices (projections, MLP, lm_head) are stored on the device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum WeightFormat {
    /// f32: the default, the same tokens on every device.
    #[default]
    F32,
    /// f16 (half the bytes read per token), accumulated in f32. Needs the adapter's
    /// SHADER_F16 feature; logits differ from f32 by the rounding of the weights
    /// (`tests/f16.rs` states the bound).
    F16,
}

impl WeightFormat {
    /// "f32" or "f16".
    pub fn name(self) -> &'static str {
        match self {
            WeightFormat::F32 => "f32",
            WeightFormat::F16 => "f16",
        }
    }
}

/// Where the matrices live on the device: storage buffers or textures. The values and
/// the order of every sum are the same either way, so the logits are identical.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
pub enum WeightStorage {
    /// Textures on CPU adapters (lavapipe) when every matrix fits the adapter's texture
    /// size limit, storage buffers everywhere else.
    #[default]
    Auto,
    /// Storage buffers (`array<vec4<f32>>` or `array<vec4<f16>>`).
    Buffer,
    /// 2D textures (`rgba32float`, or `rgba16float` for f16 weights) read with
    /// `textureLoad`, much faster than buffers on llvmpipe.
    Texture,
}

impl WeightStorage {
    /// Every choice, in the order of [`WeightStorage::name`]'s list.
    pub const ALL: [WeightStorage; 3] = [
        WeightStorage::Auto,
        WeightStorage::Buffer,
        WeightStorage::Texture,
    ];

    /// "auto", "buffer" or "texture".
    pub fn name(self) -> &'static str {
        match self {
            WeightStorage::Auto => "auto",
            WeightStorage::Buffer => "buffer",
            WeightStorage::Texture => "texture",
        }
    }

    /// Whether this choice puts read-only data in textures on `ctx`'s adapter (Auto:
    /// on CPU adapters), before any size check.
    pub fn prefers_textures(self, ctx: &GpuContext) -> bool {
        match self {
            WeightStorage::Auto => ctx.info.device_type == wgpu::DeviceType::Cpu,
            WeightStorage::Buffer => false,
            WeightStorage::Texture => true,
        }
    }
}

impl std::str::FromStr for WeightStorage {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        WeightStorage::ALL
            .into_iter()
            .find(|w| w.name() == s.trim())
            .ok_or_else(|| {
                Error::input(format!(
                    "unknown weight storage '{s}': use auto, buffer or texture"
                ))
            })
    }
}

/// Where each of a layer's small vectors sits in its packed buffer
/// ([`LayerBuffers::vecs`]): `[norm1 w | norm1 b | in_proj b | norm2 w | norm2 b |
/// fc1 b | fc2 b | out_proj b]`. A norm's weight and bias are adjacent, as the kernels
/// read them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct VecOffsets {
    pub(crate) norm1: u32,
    pub(crate) in_b: u32,
    pub(crate) norm2: u32,
    pub(crate) fc1_b: u32,
    pub(crate) fc2_b: u32,
    pub(crate) out_b: u32,
}

impl VecOffsets {
    pub(crate) fn new(d: usize, di: usize) -> Self {
        let (d, di) = (d as u32, di as u32);
        VecOffsets {
            norm1: 0,
            in_b: 2 * d,
            norm2: 5 * d,
            fc1_b: 7 * d,
            fc2_b: 7 * d + di,
            out_b: 8 * d + di,
        }
    }

    /// A layer's vectors in this order, with in_proj's and fc1's biases as
    /// [`fold_norm`] made them.
    pub(crate) fn pack(l: &Layer, in_b: &[f32], fc1_b: &[f32]) -> Vec<f32> {
        [
            &l.norm1_w[..],
            &l.norm1_b,
            in_b,
            &l.norm2_w,
            &l.norm2_b,
            fc1_b,
            &l.fc2_b,
            &l.out_proj_b,
        ]
        .concat()
    }
}

/// A matrix `w` (`[rows][cols]`, `cols` = `g.len()`) applied to the output of a
/// LayerNorm of weight `g` and bias `b`, rewritten so that the kernels multiply by the
/// centred input alone: W·(g∘n + b) + bias = (W∘g)·n + (bias + W·b), where
/// n = (x − mean)/sqrt(var + eps). Returns W∘g (each column times its g) and
/// bias + W·b (summed in f64; `bias` None counts as zeros). session_matvec.wgsl's NORM
/// products then load one input value per column instead of three.
pub(crate) fn fold_norm(
    w: &[f32],
    g: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
) -> (Vec<f32>, Vec<f32>) {
    let cols = g.len().max(1);
    let folded = w
        .chunks_exact(cols)
        .flat_map(|row| row.iter().zip(g).map(|(w, g)| w * g))
        .collect();
    let out = w
        .chunks_exact(cols)
        .enumerate()
        .map(|(o, row)| {
            let dot: f64 = row.iter().zip(b).map(|(&w, &b)| w as f64 * b as f64).sum();
            (bias.map_or(0.0, |v| v[o] as f64) + dot) as f32
        })
        .collect();
    (folded, out)
}

/// A matrix on the GPU, packed by [`pack_rows4`], as [`WeightStorage`] says.
#[derive(Debug)]
pub(crate) enum Matrix {
    Buffer(wgpu::Buffer),
    /// The texture, and the bytes of the packed matrix in it (the kernels read those,
    /// not the padding of the last texture row).
    Texture(LinearTexture, u64),
}

impl Matrix {
    /// Uploads `packed` (f32, or the f16 bits of each value) as `storage` (resolved).
    pub(crate) fn upload(
        ctx: &GpuContext,
        name: &str,
        packed: &[f32],
        format: WeightFormat,
        storage: WeightStorage,
    ) -> Result<Self> {
        let half = || -> Vec<u16> {
            packed
                .iter()
                .map(|&v| half::f16::from_f32(v).to_bits())
                .collect()
        };
        if storage != WeightStorage::Texture {
            return Ok(Matrix::Buffer(match format {
                WeightFormat::F32 => ctx.buffer_init(name, packed)?,
                WeightFormat::F16 => ctx.buffer_init(name, &half())?,
            }));
        }
        use wgpu::TextureFormat::{Rgba16Float, Rgba32Float};
        let (tex, bytes) = match format {
            WeightFormat::F32 => {
                let bytes = bytemuck::cast_slice(packed);
                (ctx.linear_texture(name, bytes, Rgba32Float)?, bytes.len())
            }
            WeightFormat::F16 => {
                let half = half();
                let bytes = bytemuck::cast_slice(&half);
                (ctx.linear_texture(name, bytes, Rgba16Float)?, bytes.len())
            }
        };
        Ok(Matrix::Texture(tex, bytes as u64))
    }

    pub(crate) fn resource(&self) -> wgpu::BindingResource<'_> {
        match self {
            Matrix::Buffer(b) => b.as_entire_binding(),
            Matrix::Texture(t, _) => wgpu::BindingResource::TextureView(&t.view),
        }
    }

    /// Device memory taken.
    pub(crate) fn bytes(&self) -> u64 {
        match self {
            Matrix::Buffer(b) => b.size(),
            Matrix::Texture(t, _) => t.bytes,
        }
    }

    /// Bytes a product reads (the texture's padding excluded).
    pub(crate) fn bytes_read(&self) -> u64 {
        match self {
            Matrix::Buffer(b) => b.size(),
            Matrix::Texture(_, packed) => *packed,
        }
    }
}

/// Texels (quads) of `model`'s largest matrix (in_proj, out_proj, fc1, fc2 or lm_head;
/// [`pack_rows4`] pads the output rows to a multiple of 4).
pub(crate) fn largest_matrix_quads(model: &Model) -> usize {
    let c = &model.config;
    let (d, di) = (c.d_model, c.d_inner);
    let shapes = [(3 * d, d), (d, d), (di, d), (d, di), (c.padded_vocab(), d)];
    let quads = shapes.iter().map(|&(rows, cols)| rows.div_ceil(4) * cols);
    quads.max().unwrap_or(0)
}

/// `storage` with [`WeightStorage::Auto`] decided for `ctx`'s adapter and `model`:
/// textures on CPU adapters when every matrix fits, buffers otherwise. An explicit
/// [`WeightStorage::Texture`] that does not fit is an [`Error::Limit`].
pub(crate) fn resolve_storage(
    ctx: &GpuContext,
    model: &Model,
    storage: WeightStorage,
) -> Result<WeightStorage> {
    let quads = largest_matrix_quads(model);
    let fits = ctx.linear_texture_fits(quads);
    Ok(match storage {
        WeightStorage::Auto if fits && storage.prefers_textures(ctx) => WeightStorage::Texture,
        WeightStorage::Auto => WeightStorage::Buffer,
        WeightStorage::Texture if !fits => {
            return Err(Error::Limit(format!(
                "the largest matrix of this model needs a texture of {} x {} texels and {} \
                 allows {} per side; store the weights in buffers (WeightStorage::Buffer \
                 or Auto)",
                gpu::TEXTURE_WIDTH,
                gpu::texture_rows(quads),
                ctx.describe(),
                ctx.limits.max_texture_dimension_2d
            )));
        }
        other => other,
    })
}

/// One layer's weights on the GPU.
#[derive(Debug)]
pub(crate) struct LayerBuffers {
    pub(crate) in_proj_w: Matrix,
    pub(crate) out_proj_w: Matrix,
    pub(crate) fc1_w: Matrix,
    pub(crate) fc2_w: Matrix,
    /// Norm weights and biases ([`VecOffsets`]).
    pub(crate) vecs: wgpu::Buffer,
}

#[derive(Debug)]
pub(crate) struct ModelInner {
    pub(crate) ctx: GpuContext,
    pub(crate) model: Model,
    pub(crate) layers: Vec<LayerBuffers>,
    pub(crate) embed: wgpu::Buffer,
    /// `[ln_f w | ln_f b | lm_head bias]` (the bias from [`fold_norm`]).
    pub(crate) ln_f: wgpu::Buffer,
    pub(crate) lm_head: Matrix,
    pub(crate) zero: wgpu::Buffer,
    pub(crate) dense: DenseKernels,
    pub(crate) storage: WeightStorage,
    pub(crate) format: WeightFormat,
    pub(crate) mixer: MixerKernels,
    pub(crate) sampler: GpuSampler,
}

/// A model uploaded to a device, with its kernels compiled. Cheap to clone.
#[derive(Clone, Debug)]
pub struct GpuModel {
    pub(crate) inner: Arc<ModelInner>,
}

impl GpuModel {
    /// Uploads `model`'s weights to `ctx`'s device (f32) and compiles the kernels.
    pub fn new(ctx: &GpuContext, model: Model) -> Result<Self> {
        Self::with_format(ctx, model, WeightFormat::F32)
    }

    /// Like [`GpuModel::new`], with the matrices stored as `format`; F16 fails with a
    /// clear error on adapters without SHADER_F16.
    pub fn with_format(ctx: &GpuContext, model: Model, format: WeightFormat) -> Result<Self> {
        Self::with_storage(ctx, model, format, WeightStorage::Auto)
    }

    /// Like [`GpuModel::with_format`], with the matrices in `storage` (textures or
    /// buffers; [`WeightStorage::Auto`] picks per adapter). A texture that exceeds the
    /// adapter's texture size limit fails with [`Error::Limit`].
    pub fn with_storage(
        ctx: &GpuContext,
        model: Model,
        format: WeightFormat,
        storage: WeightStorage,
    ) -> Result<Self> {
        ctx.check_requirements()?;
        let storage = resolve_storage(ctx, &model, storage)?;
        if format == WeightFormat::F16 && !ctx.features.contains(wgpu::Features::SHADER_F16) {
            return Err(Error::Limit(format!(
                "f16 weights need the SHADER_F16 feature, which {} does not offer; \
                 run with f32 weights (the default, without --f16)",
                ctx.describe()
            )));
        }
        let up = |name: &str, data: &[f32]| ctx.buffer_init(name, data);
        // Matrices are stored transposed and packed by four rows (session_matvec.wgsl).
        let up_t = |name: &str, data: &[f32], rows: usize| {
            Matrix::upload(ctx, name, &pack_rows4(data, rows), format, storage)
        };
        let c = &model.config;
        let (d, di, vp) = (c.d_model, c.d_inner, c.padded_vocab());
        let layers = model
            .layers
            .iter()
            .map(|l| {
                let (in_w, in_b) =
                    fold_norm(&l.in_proj_w, &l.norm1_w, &l.norm1_b, Some(&l.in_proj_b));
                let (fc1_w, fc1_b) = fold_norm(&l.fc1_w, &l.norm2_w, &l.norm2_b, Some(&l.fc1_b));
                Ok(LayerBuffers {
                    in_proj_w: up_t("in_proj.w", &in_w, 3 * d)?,
                    out_proj_w: up_t("out_proj.w", &l.out_proj_w, d)?,
                    fc1_w: up_t("fc1.w", &fc1_w, di)?,
                    fc2_w: up_t("fc2.w", &l.fc2_w, d)?,
                    vecs: up("layer vectors", &VecOffsets::pack(l, &in_b, &fc1_b))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let (lm_w, lm_b) = fold_norm(&model.lm_head, &model.ln_f_w, &model.ln_f_b, None);
        let inner = ModelInner {
            embed: up("embed", &model.embed)?,
            ln_f: up(
                "ln_f",
                &[&model.ln_f_w[..], &model.ln_f_b[..], &lm_b].concat(),
            )?,
            lm_head: up_t("lm_head", &lm_w, vp)?,
            zero: ctx.buffer_zeroed("zero", 16)?,
            dense: DenseKernels::new(ctx, format, storage)?,
            format,
            storage,
            mixer: MixerKernels::new(ctx)?,
            sampler: GpuSampler::new(ctx)?,
            layers,
            model,
            ctx: ctx.clone(),
        };
        Ok(GpuModel {
            inner: Arc::new(inner),
        })
    }

    /// How the matrices are stored.
    pub fn format(&self) -> WeightFormat {
        self.inner.format
    }

    /// Where the matrices are stored (never [`WeightStorage::Auto`]: the choice made).
    pub fn storage(&self) -> WeightStorage {
        self.inner.storage
    }

    /// The model's configuration.
    pub fn config(&self) -> &Config {
        &self.inner.model.config
    }

    /// The CPU copy of the weights.
    pub fn model(&self) -> &Model {
        &self.inner.model
    }

    /// The device context.
    pub fn ctx(&self) -> &GpuContext {
        &self.inner.ctx
    }

    /// Bytes of weights on the device (shared by every session of this model).
    pub fn weight_bytes(&self) -> u64 {
        let m = &self.inner;
        self.matrix_bytes(Matrix::bytes) + self.vector_bytes() + m.embed.size()
    }

    /// Bytes of weights one token step reads: every matrix (as packed, without texture
    /// padding), the layers' vectors, ln_f and one embedding row; what `bench` divides
    /// by the device's bandwidth for the floor per token.
    pub fn weight_bytes_per_token(&self) -> u64 {
        let row = 4 * self.inner.model.config.d_model as u64;
        self.matrix_bytes(Matrix::bytes_read) + self.vector_bytes() + row
    }

    /// `bytes` summed over every matrix (the layers' and lm_head).
    pub(crate) fn matrix_bytes(&self, bytes: fn(&Matrix) -> u64) -> u64 {
        let m = &self.inner;
        let layers = m.layers.iter();
        let matrices = layers.flat_map(|l| [&l.in_proj_w, &l.out_proj_w, &l.fc1_w, &l.fc2_w]);
        matrices.chain([&m.lm_head]).map(bytes).sum()
    }

    /// Bytes of the layers' vectors and ln_f's.
    pub(crate) fn vector_bytes(&self) -> u64 {
        let m = &self.inner;
        m.layers.iter().map(|l| l.vecs.size()).sum::<u64>() + m.ln_f.size()
    }
}

/// Output quads per block of the packed weights (`QB` in session_matvec.wgsl).
pub(crate) const QUAD_BLOCK: usize = 8;

/// `w` [rows][cols] row-major -> the layout of `session_matvec.wgsl`: transposed and
/// packed by four rows (quads, rows padded with zeros to a multiple of four), the quads
/// in blocks of [`QUAD_BLOCK`] (the last block holds the rest) whose columns are
/// contiguous: block, then column, then quad within the block.
pub(crate) fn pack_rows4(w: &[f32], rows: usize) -> Vec<f32> {
    let cols = w.len() / rows.max(1);
    let quads = rows.div_ceil(4);
    let mut out = vec![0f32; quads * 4 * cols];
    for r in 0..rows {
        for c in 0..cols {
            out[packed_quad(quads, cols, r / 4, c) * 4 + r % 4] = w[r * cols + c];
        }
    }
    out
}

/// Index (in quads) of output quad `q`, input column `c` of a matrix of `quads` output
/// quads and `cols` columns packed by [`pack_rows4`] (`widx` in session_matvec.wgsl).
pub(crate) fn packed_quad(quads: usize, cols: usize, q: usize, c: usize) -> usize {
    let first = q - q % QUAD_BLOCK;
    let width = QUAD_BLOCK.min(quads - first);
    first * cols + c * width + q - first
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every weight lands at its packed_quad slot, each slot is used once, the padding
    /// rows are zero and nothing lies past the packed size; and the layout streams: within
    /// a block, neighbouring quads are neighbours in memory and column c + 1 follows
    /// column c, so the block is one contiguous run.
    /// The folded product (W∘g)·n + bias' equals W·(g∘n + b) + bias (f64 on both sides,
    /// so only the f32 rounding of W∘g and bias' remains: relative 1e-6).
    #[test]
    fn folded_norm_gives_the_same_product() {
        let (rows, cols) = (7, 5);
        let val = |i: usize, s: f32| ((i * 37 + 11) % 17) as f32 / 8.5 - 1.0 + s;
        let w: Vec<f32> = (0..rows * cols).map(|i| val(i, 0.0)).collect();
        let g: Vec<f32> = (0..cols).map(|i| val(i, 1.5)).collect();
        let b: Vec<f32> = (0..cols).map(|i| val(i + 3, 0.2)).collect();
        let bias: Vec<f32> = (0..rows).map(|i| val(i + 5, 0.0)).collect();
        let n: Vec<f32> = (0..cols).map(|i| val(i + 7, -0.3)).collect();
        for with_bias in [false, true] {
            let bias_in = with_bias.then_some(&bias[..]);
            let (wf, bf) = fold_norm(&w, &g, &b, bias_in);
            assert_eq!((wf.len(), bf.len()), (rows * cols, rows));
            for o in 0..rows {
                let row = |c: usize| w[o * cols + c] as f64;
                let want: f64 = (0..cols)
                    .map(|c| row(c) * (g[c] as f64 * n[c] as f64 + b[c] as f64))
                    .sum::<f64>()
                    + if with_bias { bias[o] as f64 } else { 0.0 };
                let got: f64 = (0..cols)
                    .map(|c| wf[o * cols + c] as f64 * n[c] as f64)
                    .sum::<f64>()
                    + bf[o] as f64;
                assert!(
                    (got - want).abs() <= 1e-6 * want.abs().max(1.0),
                    "{o}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn packed_weights_are_blocked_and_complete() {
        for (rows, cols) in [
            (1usize, 1usize),
            (12, 5),
            (32, 3),
            (33, 7),
            (100, 9),
            (256, 4),
        ] {
            let w: Vec<f32> = (0..rows * cols).map(|i| i as f32 + 1.0).collect();
            let packed = pack_rows4(&w, rows);
            let quads = rows.div_ceil(4);
            assert_eq!(packed.len(), quads * 4 * cols);
            let mut seen = vec![false; packed.len()];
            for r in 0..rows {
                for c in 0..cols {
                    let i = packed_quad(quads, cols, r / 4, c) * 4 + r % 4;
                    assert_eq!(
                        packed[i],
                        w[r * cols + c],
                        "rows {rows} cols {cols} r {r} c {c}"
                    );
                    assert!(!seen[i]);
                    seen[i] = true;
                }
            }
            let zeros = seen.iter().zip(&packed).filter(|(s, _)| !**s);
            assert!(zeros.clone().all(|(_, v)| *v == 0.0));
            assert_eq!(zeros.count(), (quads * 4 - rows) * cols);
            for first in (0..quads).step_by(QUAD_BLOCK) {
                let last = (first + QUAD_BLOCK).min(quads) - 1;
                let mut next = packed_quad(quads, cols, first, 0);
                assert_eq!(
                    next,
                    first * cols,
                    "block {first} starts after the earlier blocks"
                );
                for c in 0..cols {
                    for q in first..=last {
                        assert_eq!(packed_quad(quads, cols, q, c), next, "q {q} c {c}");
                        next += 1;
                    }
                }
            }
        }
    }
}
