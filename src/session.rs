//! Running a model on the GPU: [`GpuModel`] uploads the weights and compiles every
//! kernel once; a [`Session`] holds the per-sequence state (histories sized for the
//! session's length, not for max_seq_len) and runs tokens through the model, recording
//! many tokens into one command encoder and one compute pass per submit.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::gpu::{self, dispatch, dispatch_rows, Access, GpuContext, Kernel, LinearTexture};
use crate::gpu::{ParamArena, MAX_ROWS};
use crate::mixer::{Method, Mixer, MixerIo, MixerKernels, MixerMemory, GATE_LIB_WGSL};
use crate::model::{Layer, Model};
use crate::sampling::{self, SamplingParams};
use crate::sampling::{Draw, GpuSampler};
use crate::Instant;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

mod batch;

/// WGSL source of the embedding kernel.
pub const SESSION_WGSL: &str = include_str!("../shaders/session.wgsl");
/// WGSL source of the matrix-vector kernels (compiled after [`GATE_LIB_WGSL`]).
pub const MATVEC_WGSL: &str = include_str!("../shaders/session_matvec.wgsl");

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
pub enum WeightStorage {
    /// Textures on CPU adapters (lavapipe) when every matrix fits the adapter's texture
    /// size limit, storage buffers everywhere else.
    #[default]
    Auto,
    /// Storage buffers (`array<vec4<f32>>` or `array<vec4<f16>>`).
    Buffer,
    /// 2D textures (`rgba32float`, or `rgba16float` for f16 weights) read with
    /// `textureLoad` ([`LinearTexture`]), much faster than buffers on llvmpipe.
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

const WEIGHTS_F32: &str = "@group(1) @binding(0) var<storage, read> w4: array<vec4<f32>>;
fn weight(i: u32) -> vec4<f32> { return w4[i]; }";
const WEIGHTS_F16: &str = "@group(1) @binding(0) var<storage, read> w4: array<vec4<f16>>;
fn weight(i: u32) -> vec4<f32> { return vec4<f32>(w4[i]); }";

/// The weights as a texture (either format: the texture's texel format converts).
fn weights_texture_wgsl() -> String {
    gpu::linear_texture_wgsl(0, "w4", "weight")
}

/// Rows per workgroup of the matrix products over several rows, a prefill's positions
/// or a batch's sequences (`ROWS` in session_matvec.wgsl; the token step of one
/// sequence takes the one-row kernels). 4 on lavapipe beats 8 (whose 32 accumulators
/// per thread spill on a CPU: a batch of 8 ran 9.6 s against 12.6 s) and 2 (less weight
/// reuse: 16.5 s).
pub const PREFILL_ROWS: u32 = 4;

const ONE_ROW: &str = "const ROWS: u32 = 1u;";
/// Threads per workgroup of the one-row kernels (four outputs each): 32 gives a
/// D = 256 out_proj or fc2 two workgroups, so two CPU cores under lavapipe (none at
/// M = 4, D = 256, L = 512: 1.60 s against 2.07 s with 64; 16 and 8 measured like 32).
const ONE_ROW_WG: u32 = 32;

/// The full source of the matrix-vector kernels for weights stored as `format` in
/// `storage` ([`WeightStorage::Auto`] counts as buffers here: resolve it first), each
/// workgroup taking `rows` rows (1, or [`PREFILL_ROWS`]): gate functions, then kernels
/// (with `enable f16;` and f16 weight loads for F16 in buffers).
pub fn matvec_source(format: WeightFormat, storage: WeightStorage, rows: u32) -> String {
    let source = format!("{GATE_LIB_WGSL}\n{MATVEC_WGSL}");
    let source = set_const(&source, ONE_ROW, &format!("const ROWS: u32 = {rows}u;"));
    let wg = if rows == 1 { ONE_ROW_WG } else { 64 };
    let source = set_const(
        &source,
        "const WG: u32 = 64u;",
        &format!("const WG: u32 = {wg}u;"),
    );
    // The shader's block width is the packer's (one constant for both).
    let qb = format!("const QB: u32 = {QUAD_BLOCK}u;");
    let source = set_const(&source, "const QB: u32 = 8u;", &qb);
    match (storage, format) {
        (WeightStorage::Texture, _) => set_const(&source, WEIGHTS_F32, &weights_texture_wgsl()),
        (_, WeightFormat::F32) => source,
        (_, WeightFormat::F16) => {
            format!("enable f16;\n{}", source.replace(WEIGHTS_F32, WEIGHTS_F16))
        }
    }
}

/// `source` with the constant declaration `line` replaced by `by` (the line must be
/// there: a renamed constant in the shader would otherwise be missed silently).
fn set_const(source: &str, line: &str, by: &str) -> String {
    debug_assert!(source.contains(line), "session_matvec.wgsl lacks `{line}`");
    source.replace(line, by)
}

const FLAG_BIAS: u32 = 1;
const FLAG_GELU: u32 = 2;
const FLAG_ACC: u32 = 4;
const FLAG_SIDE: u32 = 8;
/// The gate reads u_t from row t of a full buffer (prefill), not from a ring of three.
const FLAG_ROWS: u32 = 16;
/// Layer 0's in_proj looks up its input row in the embedding table by token id and
/// writes it to the residual stream (`side`) itself: one dispatch fewer per token.
const FLAG_EMBED: u32 = 32;
/// LayerNorm epsilon of the blocks' norm1 and norm2 (HyenaDNA's default; ln_f's comes
/// from the config).
const BLOCK_NORM_EPS: f32 = 1e-5;

/// Kernels of `shaders/session.wgsl` and `shaders/session_matvec.wgsl`.
#[derive(Debug)]
struct DenseKernels {
    embed: Kernel,
    matvec: Kernel,
    matvec_norm: Kernel,
    matvec_gate: Kernel,
    gate_rows: Kernel,
    /// The three products with [`PREFILL_ROWS`] rows per workgroup.
    rows: [Kernel; 3],
}

/// The three products of `session_matvec.wgsl`, as indices into [`DenseKernels::rows`].
#[derive(Clone, Copy, Debug)]
enum Product {
    Plain = 0,
    Norm = 1,
    Gate = 2,
}

impl DenseKernels {
    fn new(ctx: &GpuContext, format: WeightFormat, storage: WeightStorage) -> Result<Self> {
        use Access::{Read as R, ReadWrite as W};
        let source = matvec_source(format, storage, 1);
        let rows = matvec_source(format, storage, PREFILL_ROWS);
        // One layout for them all: w4, vecs, x, dst, side, zacc, x4 (x again, as vec4s;
        // session_matvec.wgsl).
        let w = match storage {
            WeightStorage::Texture => Access::Texture,
            _ => R,
        };
        let k = |entry| Kernel::new(ctx, &source, entry, &[w, R, R, W, W, R, R]);
        let kr = |entry| Kernel::new(ctx, &rows, entry, &[w, R, R, W, W, R, R]);
        Ok(DenseKernels {
            embed: Kernel::new(ctx, SESSION_WGSL, "embed", &[R, R, W])?,
            matvec: k("matvec")?,
            matvec_norm: k("matvec_norm")?,
            matvec_gate: k("matvec_gate")?,
            gate_rows: k("gate_rows")?,
            rows: [kr("matvec")?, kr("matvec_norm")?, kr("matvec_gate")?],
        })
    }

    /// The one-row kernel of `product`.
    fn one(&self, product: Product) -> &Kernel {
        match product {
            Product::Plain => &self.matvec,
            Product::Norm => &self.matvec_norm,
            Product::Gate => &self.matvec_gate,
        }
    }

    /// The kernel of `product` that serves [`PREFILL_ROWS`] rows per weight load.
    fn rows(&self, product: Product) -> &Kernel {
        &self.rows[product as usize]
    }
}

/// Where each of a layer's small vectors sits in its packed buffer
/// ([`LayerBuffers::vecs`]): `[norm1 w | norm1 b | in_proj b | norm2 w | norm2 b |
/// fc1 b | fc2 b | out_proj b]`. A norm's weight and bias are adjacent, as the kernels
/// read them.
#[derive(Clone, Copy, Debug)]
struct VecOffsets {
    norm1: u32,
    in_b: u32,
    norm2: u32,
    fc1_b: u32,
    fc2_b: u32,
    out_b: u32,
}

impl VecOffsets {
    fn new(d: usize, di: usize) -> Self {
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
    fn pack(l: &Layer, in_b: &[f32], fc1_b: &[f32]) -> Vec<f32> {
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
fn fold_norm(w: &[f32], g: &[f32], b: &[f32], bias: Option<&[f32]>) -> (Vec<f32>, Vec<f32>) {
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
enum Matrix {
    Buffer(wgpu::Buffer),
    /// The texture, and the bytes of the packed matrix in it (the kernels read those,
    /// not the padding of the last texture row).
    Texture(LinearTexture, u64),
}

impl Matrix {
    /// Uploads `packed` (f32, or the f16 bits of each value) as `storage` (resolved).
    fn upload(
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

    fn resource(&self) -> wgpu::BindingResource<'_> {
        match self {
            Matrix::Buffer(b) => b.as_entire_binding(),
            Matrix::Texture(t, _) => wgpu::BindingResource::TextureView(&t.view),
        }
    }

    /// Device memory taken.
    fn bytes(&self) -> u64 {
        match self {
            Matrix::Buffer(b) => b.size(),
            Matrix::Texture(t, _) => t.bytes,
        }
    }

    /// Bytes a product reads (the texture's padding excluded).
    fn bytes_read(&self) -> u64 {
        match self {
            Matrix::Buffer(b) => b.size(),
            Matrix::Texture(_, packed) => *packed,
        }
    }
}

/// A bind group of a `session_matvec.wgsl` kernel: the matrix `w`, then `rest` (vecs,
/// input, dst, side, zacc), then the input again (`x4`, read as vec4s).
fn bind_matvec(
    ctx: &GpuContext,
    k: &Kernel,
    w: &Matrix,
    rest: [&wgpu::Buffer; 5],
) -> wgpu::BindGroup {
    let buffers = rest.iter().chain([&rest[1]]).map(|b| b.as_entire_binding());
    k.bind_resources(ctx, std::iter::once(w.resource()).chain(buffers).collect())
}

/// Texels (quads) of `model`'s largest matrix (in_proj, out_proj, fc1, fc2 or lm_head;
/// [`pack_rows4`] pads the output rows to a multiple of 4).
fn largest_matrix_quads(model: &Model) -> usize {
    let c = &model.config;
    let (d, di) = (c.d_model, c.d_inner);
    let shapes = [(3 * d, d), (d, d), (di, d), (d, di), (c.padded_vocab(), d)];
    let quads = shapes.iter().map(|&(rows, cols)| rows.div_ceil(4) * cols);
    quads.max().unwrap_or(0)
}

/// `storage` with [`WeightStorage::Auto`] decided for `ctx`'s adapter and `model`:
/// textures on CPU adapters when every matrix fits, buffers otherwise. An explicit
/// [`WeightStorage::Texture`] that does not fit is an [`Error::Limit`].
fn resolve_storage(
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
struct LayerBuffers {
    in_proj_w: Matrix,
    out_proj_w: Matrix,
    fc1_w: Matrix,
    fc2_w: Matrix,
    /// Norm weights and biases ([`VecOffsets`]).
    vecs: wgpu::Buffer,
}

/// Parameters of one `session_matvec.wgsl` dispatch (its `Params` block).
#[derive(Clone, Copy, Debug, Default)]
struct Matvec {
    n: u32,
    cols: u32,
    in_off: u32,
    out_off: u32,
    flags: u32,
    bias_off: u32,
    eps: f32,
    ln_off: u32,
    side_off: u32,
    /// matvec_gate: d, t, (unused), mode, chans, col0.
    gate: [u32; 6],
    /// Rows of the batch (set by [`Matvec::record_rows`]; 0 means 1).
    rows: u32,
    /// Sequences side by side (rows r and r + batch are one sequence; 0 means 1).
    batch: u32,
}

impl Matvec {
    fn words(&self) -> [u32; 16] {
        let [d, t, _, mode, chans, col0] = self.gate;
        [
            self.n,
            self.cols,
            self.in_off,
            self.out_off,
            self.flags,
            self.bias_off,
            self.eps.to_bits(),
            self.ln_off,
            self.side_off,
            d,
            t,
            self.rows.max(1),
            mode,
            chans,
            col0,
            self.batch.max(1),
        ]
    }

    /// Records the product for the `rows` sequences of a token step with the fitting
    /// kernel of `dk`: the [`PREFILL_ROWS`] kernel for the normed products, one
    /// workgroup row per sequence for the others. (Measured on lavapipe, M = 1, D = 128,
    /// 4 sequences, 256 tokens: 0.48 s this way, 0.62 s with one-row kernels only,
    /// 2.4 s with the rows kernels only; why the plain and gate rows kernels lose that
    /// much there is not understood.)
    fn record_with(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        arena: &mut ParamArena,
        (dk, product): (&DenseKernels, Product),
        bind: &wgpu::BindGroup,
        rows: usize,
    ) -> Result<()> {
        match (rows, product) {
            (1, _) => self.record(pass, arena, dk.one(product), bind),
            (_, Product::Norm) => self.record_rows(pass, arena, dk.rows(product), bind, rows),
            _ => self.record_grid(
                pass,
                arena,
                dk.one(product),
                bind,
                self.one_row_grid(),
                rows,
            ),
        }
    }

    /// Records the dispatch: 64 threads of four output rows per workgroup.
    fn record(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        arena: &mut ParamArena,
        kernel: &Kernel,
        bind: &wgpu::BindGroup,
    ) -> Result<()> {
        self.record_grid(pass, arena, kernel, bind, self.one_row_grid(), 1)
    }

    /// Workgroups of a one-row kernel (four outputs per thread), one per workgroup row.
    fn one_row_grid(&self) -> (u32, u32) {
        (self.n.div_ceil(4 * ONE_ROW_WG), 1)
    }

    /// The same product for `rows` consecutive vectors (session_matvec.wgsl's rows:
    /// input rows `cols` apart, output rows `n` apart, gate positions t, t + 1, ... per
    /// `batch` rows), in dispatches of at most [`MAX_ROWS`] rows.
    fn record_rows(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        arena: &mut ParamArena,
        kernel: &Kernel,
        bind: &wgpu::BindGroup,
        rows: usize,
    ) -> Result<()> {
        let grid = (self.n.div_ceil(256), PREFILL_ROWS);
        self.record_grid(pass, arena, kernel, bind, grid, rows)
    }

    /// The batch of `rows` rows over `groups` workgroups per `per_group` rows (the
    /// kernel's ROWS; also for `gate_rows`, one row per workgroup row), in dispatches
    /// within the per-dimension workgroup limit.
    fn record_grid(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        arena: &mut ParamArena,
        kernel: &Kernel,
        bind: &wgpu::BindGroup,
        (groups, per_group): (u32, u32),
        rows: usize,
    ) -> Result<()> {
        // Whole positions per dispatch, so each starts at sequence 0.
        let batch = self.batch.max(1) as usize;
        let step = MAX_ROWS * per_group as usize / batch * batch;
        for r0 in (0..rows).step_by(step) {
            let r = r0 as u32;
            let mut chunk = *self;
            chunk.in_off += r * self.cols;
            chunk.out_off += r * self.n;
            chunk.side_off += r * self.cols;
            chunk.gate[1] += r / batch as u32;
            let n = (rows - r0).min(step) as u32;
            chunk.rows = n;
            let z = n.div_ceil(per_group);
            dispatch_rows(pass, arena, kernel, bind, &chunk.words(), (groups, z))?;
        }
        Ok(())
    }
}

/// The products of a layer and lm_head with the parameters that do not depend on the
/// position; the token step and the prefill fill in where they read and write.
struct Products {
    /// in_proj with norm1 in front (output offset to fill in).
    in_proj: Matvec,
    /// out_proj over the mixer's y, with the residual add (when the gate is not fused).
    out_proj: Matvec,
    /// `[mode, arena row stride]` of the fused gate, if fused.
    gate: Option<[u32; 2]>,
    /// fc1 with norm2 in front and GELU.
    fc1: Matvec,
    /// fc2 with the residual add.
    fc2: Matvec,
    /// lm_head with ln_f in front, writing the normalized vector to `side` (offsets to
    /// fill in).
    lm_head: Matvec,
}

impl Products {
    /// The products of `batch` sequences side by side.
    fn new(c: &Config, gate: Option<[u32; 2]>, batch: usize) -> Self {
        let (d, di, vp) = (c.d_model as u32, c.d_inner as u32, c.padded_vocab() as u32);
        let off = VecOffsets::new(c.d_model, c.d_inner);
        let batch = batch as u32;
        Products {
            in_proj: Matvec {
                n: 3 * d,
                cols: d,
                flags: FLAG_BIAS,
                bias_off: off.in_b,
                eps: BLOCK_NORM_EPS,
                ln_off: off.norm1,
                batch,
                ..Default::default()
            },
            out_proj: Matvec {
                n: d,
                cols: d,
                flags: FLAG_BIAS | FLAG_ACC,
                bias_off: off.out_b,
                batch,
                ..Default::default()
            },
            gate,
            fc1: Matvec {
                n: di,
                cols: d,
                flags: FLAG_BIAS | FLAG_GELU,
                bias_off: off.fc1_b,
                eps: BLOCK_NORM_EPS,
                ln_off: off.norm2,
                batch,
                ..Default::default()
            },
            fc2: Matvec {
                n: d,
                cols: di,
                flags: FLAG_BIAS | FLAG_ACC,
                bias_off: off.fc2_b,
                batch,
                ..Default::default()
            },
            lm_head: Matvec {
                n: vp,
                cols: d,
                // The ln_f buffer is [w | b | lm_head's bias from fold_norm].
                flags: FLAG_SIDE | FLAG_BIAS,
                bias_off: 2 * d,
                eps: c.layer_norm_epsilon as f32,
                batch,
                ..Default::default()
            },
        }
    }

    /// out_proj of layer `l` at position `t` with the gate computed in front, if fused.
    /// Layer l's channels of the `batch` sequences sit side by side in the arenas.
    fn out_gate(&self, l: usize, t: usize) -> Option<Matvec> {
        let [mode, chans] = self.gate?;
        let d = self.out_proj.n;
        let col0 = l as u32 * self.out_proj.batch * d;
        Some(Matvec {
            // Mixer parameters (crate::mixer::mixer_params_len).
            bias_off: crate::mixer::mixer_params_bias_off(d as usize) as u32,
            gate: [d, t as u32, 0, mode, chans, col0],
            ..self.out_proj
        })
    }
}

#[derive(Debug)]
struct ModelInner {
    ctx: GpuContext,
    model: Model,
    layers: Vec<LayerBuffers>,
    embed: wgpu::Buffer,
    /// `[ln_f w | ln_f b | lm_head bias]` (the bias from [`fold_norm`]).
    ln_f: wgpu::Buffer,
    lm_head: Matrix,
    zero: wgpu::Buffer,
    dense: DenseKernels,
    storage: WeightStorage,
    format: WeightFormat,
    mixer: MixerKernels,
    sampler: GpuSampler,
}

/// A model uploaded to a device, with its kernels compiled. Cheap to clone.
#[derive(Clone, Debug)]
pub struct GpuModel {
    inner: Arc<ModelInner>,
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
    fn matrix_bytes(&self, bytes: fn(&Matrix) -> u64) -> u64 {
        let m = &self.inner;
        let layers = m.layers.iter();
        let matrices = layers.flat_map(|l| [&l.in_proj_w, &l.out_proj_w, &l.fc1_w, &l.fc2_w]);
        matrices.chain([&m.lm_head]).map(bytes).sum()
    }

    /// Bytes of the layers' vectors and ln_f's.
    fn vector_bytes(&self) -> u64 {
        let m = &self.inner;
        m.layers.iter().map(|l| l.vecs.size()).sum::<u64>() + m.ln_f.size()
    }
}

/// GPU memory of one session, by part, computed before anything is allocated
/// ([`SessionMemory::plan`]); the weights are the model's and shared by its sessions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionMemory {
    /// Model weights (already on the device).
    pub weights: u64,
    /// Per-token activations, token ids, and the logits and hidden-state rings.
    pub activations: u64,
    /// The mixer's histories, accumulators, filters, spectra and FFT scratch.
    pub mixer: MixerMemory,
    /// How the mixer's buffers are split by channel to fit the device's binding limit
    /// (one width when they fit as they are).
    pub groups: Vec<usize>,
    /// The device's per-binding limit that the split respects.
    pub binding_limit: u64,
}

impl SessionMemory {
    /// The memory a session with `opts` needs on `model`'s device. Fails, naming the
    /// buffer and the bytes needed against the bytes allowed, when a buffer cannot be
    /// split to fit the device's storage-binding limit.
    pub fn plan(model: &GpuModel, opts: &SessionOptions) -> Result<Self> {
        let ctx = model.ctx();
        let c = model.config();
        let limit = crate::mixer::binding_limit(ctx);
        let (d, di, vp) = (c.d_model as u64, c.d_inner as u64, c.padded_vocab() as u64);
        check_batch(opts.method, opts.batch)?;
        let b = opts.batch as u64;
        let rows = opts.logit_rows.clamp(1, opts.len.max(1)) as u64 * b;
        let rows_hint = "keep fewer logit rows (score in pieces) or run fewer sequences";
        let fixed = [
            (
                "tokens",
                (opts.len as u64 + 1) * b * 4,
                "use a shorter session",
            ),
            ("logits", rows * vp * 4, rows_hint),
            ("hidden", rows * d * 4, rows_hint),
        ];
        for (name, bytes, hint) in fixed {
            if bytes > limit {
                return Err(Error::Limit(format!(
                    "buffer '{name}' of this session needs {bytes} bytes but the device \
                     binds at most {limit} bytes per storage buffer; {hint}"
                )));
            }
        }
        let activations = fixed.iter().map(|f| f.1).sum::<u64>()
            + 4 * b * (4 * d + di + 9 * d * c.n_layer as u64);
        let channels = c.n_layer * c.d_model * opts.batch;
        let shape = (c.n_layer * opts.batch, c.d_model);
        let groups = crate::mixer::plan_mixer_groups(
            opts.method,
            shape,
            opts.len,
            opts.fft_min_tile,
            limit,
        )?;
        let mut mixer = MixerMemory::estimate(opts.method, channels, opts.len, &opts.tiles());
        let textures = model.storage() == WeightStorage::Texture;
        let shape = (c.d_model, opts.len);
        mixer.history +=
            crate::mixer::lazy_texture_bytes(ctx, opts.method, textures, shape, &groups.widths);
        Ok(SessionMemory {
            weights: model.weight_bytes(),
            activations,
            mixer,
            groups: groups.widths,
            binding_limit: limit,
        })
    }

    /// Bytes this session allocates (everything but the shared weights).
    pub fn session_total(&self) -> u64 {
        self.activations + self.mixer.total()
    }
}

/// `items` with each one repeated `b` times in place (the mixer's layer l·B + b).
fn per_sequence<T: Clone>(items: Vec<T>, b: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(items.len() * b);
    for item in items {
        out.extend(std::iter::repeat_n(item, b));
    }
    out
}

/// Most sequences one session runs side by side ([`SessionOptions::batch`]).
pub const MAX_BATCH: usize = 64;

/// Checks a [`SessionOptions::batch`] of `batch` sequences for `method`: 1 to
/// [`MAX_BATCH`], and above 1 only for the methods whose gate the products fuse
/// (flash, none).
pub fn check_batch(method: Method, batch: usize) -> Result<()> {
    if batch == 0 || batch > MAX_BATCH {
        return Err(Error::input(format!(
            "a session runs 1 to {MAX_BATCH} sequences side by side, not {batch}"
        )));
    }
    if batch > 1 && !matches!(method, Method::Flash | Method::None) {
        return Err(Error::input(format!(
            "batches of sequences run with the flash or none method, not {method}; \
             run one session per sequence for {method}"
        )));
    }
    Ok(())
}

/// Output quads per block of the packed weights (`QB` in session_matvec.wgsl).
const QUAD_BLOCK: usize = 8;

/// `w` [rows][cols] row-major -> the layout of `session_matvec.wgsl`: transposed and
/// packed by four rows (quads, rows padded with zeros to a multiple of four), the quads
/// in blocks of [`QUAD_BLOCK`] (the last block holds the rest) whose columns are
/// contiguous: block, then column, then quad within the block.
fn pack_rows4(w: &[f32], rows: usize) -> Vec<f32> {
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
fn packed_quad(quads: usize, cols: usize, q: usize, c: usize) -> usize {
    let first = q - q % QUAD_BLOCK;
    let width = QUAD_BLOCK.min(quads - first);
    first * cols + c * width + q - first
}

/// Options of a [`Session`].
#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// Long-convolution method.
    pub method: Method,
    /// Positions the session can hold (prompt + generated tokens); at most max_seq_len.
    pub len: usize,
    /// How many positions' logits (and hidden states) are kept on the GPU, as a ring:
    /// 1 for generation, the sequence length for scoring.
    pub logit_rows: usize,
    /// Tokens recorded per submit, when consuming known tokens and when generating
    /// with GPU sampling (whose ids are read back once per batch).
    pub tokens_per_submit: usize,
    /// Flash tiles of this side and larger use FFTs, smaller ones a direct product.
    pub fft_min_tile: usize,
    /// Consume a prompt fed at position 0 as one batched forward pass (every position
    /// of a layer at once, the long convolution as one FFT), then seed the accumulators
    /// for the tokens after it ([`Session::feed`]). Used for flash and none in sessions
    /// whose mixer buffers are not split; the other cases go token by token. On by
    /// default; off gives token-by-token prompt processing (same results within f32
    /// rounding, `tests/prefill.rs`).
    pub prefill: bool,
    /// How large flash tiles are spread over the steps after them, so the step that
    /// completes a large tile does not carry all of it (the latency spikes at
    /// t + 1 = 2^k): only the next outputs are computed at once, directly, the rest in
    /// channel chunks over the next steps ([`crate::tiling::work_at`]). Default:
    /// [`Spread::DEFAULT`](crate::tiling::Spread::DEFAULT).
    pub spread: crate::tiling::Spread,
    /// Bytes of flash filter spectra to precompute, smallest tile sides first (about
    /// 16·M·D·L bytes hold them all); the larger sides' spectra are then computed on the
    /// GPU each time a tile needs them (an extra FFT of the filter per tile, in one
    /// shared buffer of the largest side's size). None: all precomputed.
    /// [`SessionMemory`] reports what is allocated.
    pub spectra_budget: Option<u64>,
    /// Sequences run side by side (B, 1 to [`MAX_BATCH`]): every piece of per-sequence
    /// state holds B rows, the projections are matrix products over the B rows, and
    /// the flash tiles of all sequences share each dispatch. B > 1 needs flash or none
    /// and mixer buffers in one channel group; feed it with [`Session::feed_rows`] and
    /// generate with [`Session::generate_batch`]. Default 1.
    pub batch: usize,
    /// Test-only: extra device memory (zeroed buffers of the binding size) allocated
    /// past the memory plan, so a test can provoke the driver's out-of-memory error with
    /// a session. 0 in normal use.
    #[doc(hidden)]
    pub test_extra_bytes: u64,
}

impl SessionOptions {
    /// Defaults for a session of `len` positions with `method`.
    pub fn new(method: Method, len: usize) -> Self {
        SessionOptions {
            method,
            len,
            logit_rows: 1,
            tokens_per_submit: 32,
            fft_min_tile: crate::mixer::DEFAULT_FFT_MIN_TILE,
            prefill: true,
            spread: crate::tiling::Spread::DEFAULT,
            spectra_budget: None,
            batch: 1,
            test_extra_bytes: 0,
        }
    }

    /// The flash tile options among these.
    pub fn tiles(&self) -> crate::mixer::Tiles {
        crate::mixer::Tiles {
            fft_min_tile: self.fft_min_tile,
            spread: self.spread,
            spectra_budget: self.spectra_budget,
        }
    }

    /// Sets the flash tile options.
    pub fn set_tiles(&mut self, tiles: crate::mixer::Tiles) {
        self.fft_min_tile = tiles.fft_min_tile;
        self.spread = tiles.spread;
        self.spectra_budget = tiles.spectra_budget;
    }
}

/// Per-sequence GPU state and the token loop.
#[derive(Debug)]
pub struct Session {
    model: GpuModel,
    opts: SessionOptions,
    pos: usize,
    arena: ParamArena,
    mixer: Mixer,
    tokens: wgpu::Buffer,
    logits: wgpu::Buffer,
    hidden: wgpu::Buffer,
    /// Reused for reading one position's logits back every token.
    staging: wgpu::Buffer,
    bg: SessionBindGroups,
    memory: SessionMemory,
    /// Ids drawn on the GPU in the current batch, and their read-back buffer.
    drawn: wgpu::Buffer,
    drawn_staging: wgpu::Buffer,
    sample_bind: wgpu::BindGroup,
    /// Queue submits so far (work and read-backs).
    submits: std::cell::Cell<u64>,
    /// Test-only extra memory (see [`SessionOptions::test_extra_bytes`]).
    _extra: Vec<wgpu::Buffer>,
    /// Set when a batch ran past a stop token: the state then holds positions the
    /// returned sequence does not, so the session refuses to continue.
    overrun: bool,
    /// Per layer: the ring of the last three in_proj outputs, and the mixer parameters.
    u_ring: Vec<wgpu::Buffer>,
    params: Vec<wgpu::Buffer>,
    /// The matvec kernels' unused second output.
    xn: wgpu::Buffer,
    /// Dispatches recorded by prefills (their own parameter arenas).
    prefill_dispatches: u64,
}

#[derive(Debug)]
struct LayerBindGroups {
    in_proj: wgpu::BindGroup,
    /// `matvec_gate`'s when the gate is fused ([`SessionBindGroups::gate`]), else
    /// `matvec`'s over the mixer's output y.
    out_proj: wgpu::BindGroup,
    fc1: wgpu::BindGroup,
    fc2: wgpu::BindGroup,
}

#[derive(Debug)]
struct SessionBindGroups {
    /// Layer 0's in_proj binds the embedding table as its input, the residual stream
    /// as `side` and the token ids as `zacc` (FLAG_EMBED).
    layers: Vec<LayerBindGroups>,
    lm_head: wgpu::BindGroup,
    /// `[mode, arena row stride]` when out_proj computes the gate itself (one channel
    /// group, and a method whose y needs no kernel of its own); None: the mixer's gate
    /// kernel runs per slice and out_proj reads y.
    gate: Option<[u32; 2]>,
}

impl Session {
    /// Allocates a session. Fails with a clear message if `len` exceeds max_seq_len or
    /// the buffers exceed the device's limits.
    pub fn new(model: &GpuModel, opts: SessionOptions) -> Result<Self> {
        let m = &model.inner;
        let ctx = &m.ctx;
        let c = &m.model.config;
        if opts.len == 0 || opts.len > c.max_seq_len {
            return Err(Error::input(format!(
                "session length {} must be between 1 and max_seq_len = {}",
                opts.len, c.max_seq_len
            )));
        }
        // Everything is checked against the device's limits before anything is allocated.
        let memory = SessionMemory::plan(model, &opts)?;
        let mut extra = Vec::new();
        let mut left = opts.test_extra_bytes;
        while left > 0 {
            let n = left.min(memory.binding_limit);
            extra.push(ctx.buffer_zeroed("test extra", n)?);
            ctx.take_errors()?;
            left -= n;
        }
        let (d, di, vp) = (c.d_model, c.d_inner, c.padded_vocab());
        let rows = opts.logit_rows.clamp(1, opts.len);
        let b = opts.batch;
        // Per-sequence vectors hold B rows: [B][D], [B][D_inner].
        let act = |name: &str, n: usize| ctx.buffer_zeroed(name, (n * b) as u64 * 4);
        let x = act("x", d)?;
        let xn = act("xn", d)?;
        let y = act("y", d)?;
        let x0 = act("x0", d)?;
        let a = act("mlp", di)?;
        // [position][B]; one slot past the end: generation draws the token after the
        // last position.
        let tokens = act("tokens", opts.len + 1)?;
        let batch = opts.tokens_per_submit.max(1);
        let drawn = act("drawn ids", batch)?;
        let scratch = ctx.buffer_zeroed("sampling scratch", 3 * vp as u64 * 4)?;
        let logits = act("logits", rows * vp)?;
        let hidden = act("hidden", rows * d)?;
        // [3][B][3D]: in_proj's outputs of the last three positions.
        let u_ring: Vec<wgpu::Buffer> = (0..c.n_layer)
            .map(|_| act("u_ring", 9 * d))
            .collect::<Result<_>>()?;
        // Filters materialised in f64 on the CPU for this session's length, then f32.
        let mut filters = Vec::with_capacity(c.n_layer);
        let mut params = Vec::with_capacity(c.n_layer);
        for (l, lw) in m.model.layers.iter().enumerate() {
            let k = m.model.filter(l, opts.len)?;
            let mut p: Vec<f32> = Vec::with_capacity(crate::mixer::mixer_params_len(d));
            p.extend_from_slice(&lw.short_w);
            p.extend_from_slice(&lw.short_b);
            p.extend((0..d).map(|ch| (k[ch * opts.len] + lw.filter_bias[ch] as f64) as f32));
            // k[1 ..= GATE_LAGS], which the gate applies to v_{t-j} (gate_lib.wgsl).
            p.extend(
                crate::mixer::gate_taps(&k, d, opts.len)
                    .iter()
                    .map(|&v| v as f32),
            );
            // For the fused gate + out_proj kernel, whose vecs binding this is.
            p.extend_from_slice(&lw.out_proj_b);
            params.push(ctx.buffer_init("mixer_params", &p)?);
            filters.push(k.into_iter().map(|v| v as f32).collect::<Vec<f32>>());
        }
        // The mixer sees B·M layers: layer l of sequence b is its layer l·B + b, so a
        // layer's channels of all sequences are adjacent (session_matvec.wgsl's rows).
        let filters = per_sequence(filters, b);
        let io = MixerIo {
            filters: &filters,
            params: &per_sequence(params.clone(), b),
            u_ring: &per_sequence(u_ring.clone(), b),
            x0: &x0,
            y: &y,
            fft_min_tile: opts.fft_min_tile,
            spread: opts.spread,
            spectra_budget: opts.spectra_budget,
            textures: m.storage == WeightStorage::Texture,
        };
        let mixer = Mixer::new(ctx, &m.mixer, opts.method, (d, opts.len), io)?;
        drop(filters);
        if b > 1 && mixer.fusable_gate().is_none() {
            return Err(Error::Limit(format!(
                "{b} sequences of {} positions need mixer buffers larger than the device \
                 binds at once ({} bytes); run fewer sequences or shorter ones",
                opts.len, memory.binding_limit
            )));
        }
        let dk = &m.dense;
        // Matvec bindings: w4, vecs, input, dst, side, zacc; `xn` and `zero` fill the
        // second outputs and z_acc where a kernel does not use them.
        let bind = |k: &Kernel, w: &Matrix, b: [&wgpu::Buffer; 3]| {
            bind_matvec(ctx, k, w, [b[0], b[1], b[2], &xn, &m.zero])
        };
        let fused = mixer.fusable_gate();
        let layers = m
            .layers
            .iter()
            .enumerate()
            .map(|(l, w)| LayerBindGroups {
                in_proj: if l == 0 {
                    let embed = [&w.vecs, &m.embed, &u_ring[0], &x, &tokens];
                    bind_matvec(ctx, &dk.matvec_norm, &w.in_proj_w, embed)
                } else {
                    bind(&dk.matvec_norm, &w.in_proj_w, [&w.vecs, &x, &u_ring[l]])
                },
                out_proj: match &fused {
                    Some(g) => bind_matvec(
                        ctx,
                        &dk.matvec_gate,
                        &w.out_proj_w,
                        [&params[l], &u_ring[l], &x, g.v_hist, g.z_acc],
                    ),
                    None => bind(&dk.matvec, &w.out_proj_w, [&w.vecs, &y, &x]),
                },
                fc1: bind(&dk.matvec_norm, &w.fc1_w, [&w.vecs, &x, &a]),
                fc2: bind(&dk.matvec, &w.fc2_w, [&w.vecs, &a, &x]),
            })
            .collect();
        let lm_head = [&m.ln_f, &x, &logits, &hidden, &m.zero];
        let bg = SessionBindGroups {
            layers,
            lm_head: bind_matvec(ctx, &dk.matvec_norm, &m.lm_head, lm_head),
            gate: fused.map(|g| [g.mode, g.chans]),
        };
        let per_token =
            7 * c.n_layer + 4 + b * GpuSampler::MAX_DISPATCHES + mixer.dispatches_per_token();
        let sample_bind = m.sampler.bind(ctx, [&logits, &tokens, &drawn, &scratch]);
        let arena = ParamArena::new(
            ctx,
            &dk.matvec.param_layout,
            per_token * opts.tokens_per_submit.max(1),
        );
        let session = Session {
            model: model.clone(),
            opts: SessionOptions {
                logit_rows: rows,
                ..opts
            },
            pos: 0,
            arena,
            mixer,
            tokens,
            logits,
            hidden,
            staging: ctx.staging_buffer((b * vp) as u64 * 4),
            bg,
            memory,
            drawn_staging: ctx.staging_buffer((b * batch) as u64 * 4),
            drawn,
            sample_bind,
            overrun: false,
            submits: std::cell::Cell::new(0),
            _extra: extra,
            u_ring,
            params,
            xn,
            prefill_dispatches: 0,
        };
        // wgpu reports allocation failures (out of memory) through the error handler:
        // return them from here rather than from the first use.
        ctx.take_errors()?;
        Ok(session)
    }

    /// The session's mixer state (histories, accumulators, filters).
    pub fn mixer(&self) -> &Mixer {
        &self.mixer
    }

    /// Number of positions consumed so far.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Capacity of the session in positions.
    pub fn len(&self) -> usize {
        self.opts.len
    }

    /// Whether nothing has been consumed yet.
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }

    /// The session's options.
    pub fn options(&self) -> &SessionOptions {
        &self.opts
    }

    fn count_submits(&self, n: u64) {
        self.submits.set(self.submits.get() + n);
    }

    /// Dispatches and queue submits (work and read-backs) this session has made.
    pub fn counts(&self) -> (u64, u64) {
        let dispatches = self.arena.dispatch_count() + self.prefill_dispatches;
        (dispatches, self.submits.get())
    }

    /// The GPU memory this session planned and allocated, by part.
    pub fn memory(&self) -> &SessionMemory {
        &self.memory
    }

    /// Runs `ids` through the model at the next positions. Checks every id and the
    /// remaining length first, so a bad id changes nothing. A session of B > 1
    /// sequences takes [`Session::feed_rows`].
    pub fn feed(&mut self, ids: &[u32]) -> Result<()> {
        self.feed_rows(&[ids])
    }

    /// Runs the next tokens of each of the session's B sequences
    /// ([`SessionOptions::batch`]): `rows[b]` for sequence b, all of one length. Checks
    /// everything first, so bad input changes nothing.
    pub fn feed_rows(&mut self, rows: &[&[u32]]) -> Result<()> {
        let c = self.model.config();
        self.check_not_overrun()?;
        let n = self.check_rows(rows)?;
        for r in rows {
            check_ids(c, r)?;
        }
        if self.pos + n > self.opts.len {
            return Err(Error::input(format!(
                "{n} tokens at position {} exceed the session length {} (max_seq_len {})",
                self.pos, self.opts.len, c.max_seq_len
            )));
        }
        if n == 0 {
            return Ok(());
        }
        // Time-major, as the tokens buffer: [position][sequence].
        let ids: Vec<u32> = (0..n)
            .flat_map(|t| rows.iter().map(move |r| r[t]))
            .collect();
        if self.pos == 0 && self.prefill_fits(n) {
            return self.prefill(&ids, n);
        }
        let ctx = self.model.ctx().clone();
        let at = (self.pos * rows.len()) as u64 * 4;
        ctx.queue
            .write_buffer(&self.tokens, at, bytemuck::cast_slice(&ids));
        let per_submit = self.opts.tokens_per_submit.max(1);
        for start in (0..n).step_by(per_submit) {
            let mut enc = ctx.device.create_command_encoder(&Default::default());
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                for _ in start..n.min(start + per_submit) {
                    self.record_token(&mut pass, self.pos)?;
                    self.pos += 1;
                }
            }
            self.arena.upload(&ctx);
            ctx.queue.submit([enc.finish()]);
            self.count_submits(1);
        }
        Ok(())
    }

    /// The common length of `rows`, one per sequence of the session.
    fn check_rows(&self, rows: &[&[u32]]) -> Result<usize> {
        let b = self.opts.batch;
        if rows.len() != b {
            return Err(Error::input(format!(
                "this session runs {b} sequence(s) side by side: give {b} rows of ids, not {}",
                rows.len()
            )));
        }
        let n = rows.first().map_or(0, |r| r.len());
        match rows.iter().position(|r| r.len() != n) {
            Some(i) => Err(Error::input(format!(
                "sequence {i} has {} ids but sequence 0 has {n}: rows fed together have one \
                 length (Session::generate_batch takes prompts of different lengths)",
                rows[i].len()
            ))),
            None => Ok(n),
        }
    }

    /// Whether a prompt of `p` positions can be prefilled ([`SessionOptions::prefill`]):
    /// flash or none, the gate fused (one channel group), and the prompt's activations
    /// and convolution buffers within the binding limit.
    fn prefill_fits(&self, p: usize) -> bool {
        let c = self.model.config();
        let b = self.opts.batch;
        let widest = (p * b) as u64 * 4 * (3 * c.d_model).max(c.d_inner) as u64;
        // The prompt's convolution: spectra and work buffers of side nextpow2(P).
        let channels = c.n_layer * c.d_model * b;
        let conv = crate::mixer::group_buffer_bytes(channels, 0, p.next_power_of_two());
        self.opts.prefill
            && matches!(self.opts.method, Method::Flash | Method::None)
            && self.bg.gate.is_some()
            && widest.max(conv) <= self.memory.binding_limit
    }

    /// Consumes `ids` at positions 0 .. P as one batched forward pass: per layer, every
    /// position's in_proj, their v (`gate_rows`), the long convolution of the whole
    /// prompt as one FFT (flash), then out_proj with the gate, fc1 and fc2 over all
    /// rows; lm_head for the positions whose logits are kept; then the tiles of the
    /// steps before P that reach past it ([`Mixer::record_prefill_tiles`]). One submit.
    /// `ids` holds the B sequences' prompts time-major, `[P][B]`; every buffer below
    /// has a row per position and sequence in that order.
    fn prefill(&mut self, ids: &[u32], p: usize) -> Result<()> {
        let m = &self.model.inner;
        let ctx = m.ctx.clone();
        let c = &m.model.config;
        let b = self.opts.batch;
        let (d, di) = (c.d_model, c.d_inner);
        // Filter taps k[1 .. P) are all the prompt's convolution reads.
        let filters = (0..c.n_layer)
            .map(|l| {
                Ok(m.model
                    .filter(l, p)?
                    .into_iter()
                    .map(|v| v as f32)
                    .collect())
            })
            .collect::<Result<Vec<Vec<f32>>>>()?;
        let filters = per_sequence(filters, b);
        let conv = self.mixer.prefill_conv(&m.mixer, &filters, p)?;
        drop(filters);
        let act = |name: &str, n: usize| ctx.buffer_zeroed(name, (n * b) as u64 * 4);
        let (x_all, u_all, a_all) = (
            act("prefill x", p * d)?,
            act("prefill u", p * 3 * d)?,
            act("prefill mlp", p * di)?,
        );
        let dk = &m.dense;
        let rows_per = (p * b).div_ceil(MAX_ROWS);
        let capacity =
            1 + c.n_layer * 6 * rows_per + 2 * rows_per + self.mixer.prefill_dispatches(p);
        let mut arena = ParamArena::new(&ctx, &dk.matvec.param_layout, capacity);
        ctx.queue
            .write_buffer(&self.tokens, 0, bytemuck::cast_slice(ids));
        let pr = Products::new(c, self.bg.gate, b);
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            let embed = dk.embed.bind(&ctx, &[&m.embed, &self.tokens, &x_all]);
            let threads = (p * b * d) as u64;
            let words = [d as u32, 0, (p * b) as u32];
            dispatch(
                &mut pass,
                &mut arena,
                &dk.embed,
                &embed,
                &words,
                threads.div_ceil(256) as u32,
            )?;
        }
        let rows = [&x_all, &u_all, &a_all];
        for l in 0..m.layers.len() {
            {
                let pass = &mut enc.begin_compute_pass(&Default::default());
                self.record_prefill_layer(pass, &mut arena, l, rows, (conv.as_ref(), p))?;
            }
            // The token steps after the prompt read u at P-1 and P-2 from the ring.
            let row = (3 * d * b) as u64 * 4;
            for t in p.saturating_sub(3)..p {
                let (src, dst) = (t as u64 * row, (t % 3) as u64 * row);
                enc.copy_buffer_to_buffer(&u_all, src, &self.u_ring[l], dst, row);
            }
        }
        {
            let pass = &mut enc.begin_compute_pass(&Default::default());
            let lm_bind = [&m.ln_f, &x_all, &self.logits, &self.hidden, &m.zero];
            let lm_bind = bind_matvec(&ctx, &dk.matvec_norm, &m.lm_head, lm_bind);
            // The kept logit rows are a ring: at most two contiguous pieces.
            let rows = self.opts.logit_rows;
            let mut t = p.saturating_sub(rows);
            while t < p {
                let n = (rows - t % rows).min(p - t);
                let r = (t % rows * b) as u32;
                let lm = Matvec {
                    in_off: (t * b * d) as u32,
                    out_off: r * pr.lm_head.n,
                    side_off: r * d as u32,
                    ..pr.lm_head
                };
                lm.record_rows(pass, &mut arena, dk.rows(Product::Norm), &lm_bind, n * b)?;
                t += n;
            }
            self.mixer
                .record_prefill_tiles(pass, &mut arena, &m.mixer, p)?;
        }
        arena.upload(&ctx);
        ctx.queue.submit([enc.finish()]);
        self.count_submits(1);
        self.prefill_dispatches += arena.dispatch_count();
        self.pos = p;
        ctx.take_errors()
    }

    /// Layer `l` of a prefill of `p` positions over the prompt's activations
    /// `[x, u, mlp]` (`[P][D]`, `[P][3D]`, `[P][D_inner]`): in_proj, every v_t, the
    /// prompt's convolution (flash), out_proj with the gate, fc1, fc2.
    fn record_prefill_layer(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        a: &mut ParamArena,
        l: usize,
        [x_all, u_all, a_all]: [&wgpu::Buffer; 3],
        (conv, p): (Option<&crate::mixer::PrefillConv>, usize),
    ) -> Result<()> {
        let m = &self.model.inner;
        let (ctx, dk, w) = (&m.ctx, &m.dense, &m.layers[l]);
        let missing = || Error::gpu("prefill needs the fused gate");
        let fused = self.mixer.fusable_gate().ok_or_else(missing)?;
        let b = self.opts.batch;
        let pr = Products::new(&m.model.config, self.bg.gate, b);
        let bind = |k: &Kernel, w: &Matrix, b: [&wgpu::Buffer; 3]| {
            bind_matvec(ctx, k, w, [b[0], b[1], b[2], &self.xn, &m.zero])
        };
        // A row per position and sequence.
        let rows = p * b;
        let in_proj = bind(&dk.matvec_norm, &w.in_proj_w, [&w.vecs, x_all, u_all]);
        pr.in_proj
            .record_rows(pass, a, dk.rows(Product::Norm), &in_proj, rows)?;
        let mut gate = pr.out_gate(l, 0).ok_or_else(missing)?;
        gate.flags |= FLAG_ROWS;
        // gate_rows writes every v_t for the convolution; out_proj's gate reads z.
        let gate_bufs = [&self.params[l], u_all, x_all, fused.v_hist, fused.z_acc];
        let v_bind = bind_matvec(ctx, &dk.gate_rows, &w.out_proj_w, gate_bufs);
        let v_groups = (m.model.config.d_model as u32).div_ceil(64);
        gate.record_grid(pass, a, &dk.gate_rows, &v_bind, (v_groups, 1), rows)?;
        if let Some(conv) = conv {
            // Mixer layers l·B .. (l + 1)·B: layer l of every sequence.
            let layers = l * b..(l + 1) * b;
            self.mixer
                .record_prefill_conv(pass, a, &m.mixer, conv, layers)?;
        }
        let out_bind = bind_matvec(ctx, &dk.matvec_gate, &w.out_proj_w, gate_bufs);
        gate.record_rows(pass, a, dk.rows(Product::Gate), &out_bind, rows)?;
        let fc1 = bind(&dk.matvec_norm, &w.fc1_w, [&w.vecs, x_all, a_all]);
        pr.fc1
            .record_rows(pass, a, dk.rows(Product::Norm), &fc1, rows)?;
        let fc2 = bind(&dk.matvec, &w.fc2_w, [&w.vecs, a_all, x_all]);
        pr.fc2
            .record_rows(pass, a, dk.rows(Product::Plain), &fc2, rows)
    }

    /// Records the whole forward pass of position `t` (its token id is already in the
    /// tokens buffer), then the flash tile of step `t`: with the gate fused, four
    /// matvec dispatches per layer (in_proj with norm1, out_proj with the gate, fc1 with
    /// norm2, fc2) and the embedding and lm_head (with ln_f) around them.
    fn record_token(&mut self, pass: &mut wgpu::ComputePass<'_>, t: usize) -> Result<()> {
        let m = &self.model.inner;
        let c = &m.model.config;
        let (d, vp) = (c.d_model as u32, c.padded_vocab() as u32);
        let b = self.opts.batch;
        // Row of the logits ring; each holds the B sequences' rows.
        let row = (t % self.opts.logit_rows * b) as u32;
        let dk = &m.dense;
        let pr = Products::new(c, self.bg.gate, b);
        let arena = &mut self.arena;
        let slot = (t % 3 * b) as u32;
        for (l, bg) in self.bg.layers.iter().enumerate() {
            let mut in_proj = Matvec {
                out_off: slot * 3 * d,
                ..pr.in_proj
            };
            if l == 0 {
                // The embedding lookup of position t, fused in (FLAG_EMBED).
                in_proj.flags |= FLAG_EMBED;
                in_proj.gate[1] = t as u32;
            }
            in_proj.record_with(pass, arena, (dk, Product::Norm), &bg.in_proj, b)?;
            if let Some(gate) = pr.out_gate(l, t) {
                gate.record_with(pass, arena, (dk, Product::Gate), &bg.out_proj, b)?;
                self.mixer.record_layer(pass, arena, &m.mixer, l, t, true)?;
            } else {
                self.mixer
                    .record_layer(pass, arena, &m.mixer, l, t, false)?;
                pr.out_proj.record(pass, arena, &dk.matvec, &bg.out_proj)?;
            }
            pr.fc1
                .record_with(pass, arena, (dk, Product::Norm), &bg.fc1, b)?;
            pr.fc2
                .record_with(pass, arena, (dk, Product::Plain), &bg.fc2, b)?;
        }
        let lm_head = Matvec {
            out_off: row * vp,
            side_off: row * d,
            ..pr.lm_head
        };
        let bind = &self.bg.lm_head;
        lm_head.record_with(pass, arena, (dk, Product::Norm), bind, b)?;
        self.mixer.record_tiles(pass, arena, &m.mixer, t)
    }

    fn check_row(&self, t: usize) -> Result<u64> {
        if t >= self.pos || t + self.opts.logit_rows < self.pos {
            return Err(Error::input(format!(
                "logits of position {t} are not held (consumed {}, keeping the last {})",
                self.pos, self.opts.logit_rows
            )));
        }
        Ok((t % self.opts.logit_rows) as u64)
    }

    /// Logits (padded vocabulary) of position `t`, which must be among the last
    /// `logit_rows` consumed positions; `[B][padded vocabulary]` for a session of B
    /// sequences. Waits for the GPU.
    pub fn logits(&self, t: usize) -> Result<Vec<f32>> {
        crate::gpu::block_on(self.logits_async(t))
    }

    /// [`Session::logits`] without blocking.
    pub async fn logits_async(&self, t: usize) -> Result<Vec<f32>> {
        let row = self.check_row(t)?;
        let width = (self.model.config().padded_vocab() * self.opts.batch) as u64;
        let bytes = self
            .model
            .ctx()
            .read_via_async(&self.logits, row * width * 4, width * 4, &self.staging)
            .await?;
        self.count_submits(1);
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Logits of positions `start..end` (all must be held), row-major (`[n][B][..]`
    /// for B sequences).
    pub fn logits_range(&self, start: usize, end: usize) -> Result<Vec<f32>> {
        self.read_rows(&self.logits, self.model.config().padded_vocab(), start, end)
    }

    /// Hidden states after ln_f of positions `start..end`, row-major `[n][B][D]`.
    pub fn hidden_range(&self, start: usize, end: usize) -> Result<Vec<f32>> {
        self.read_rows(&self.hidden, self.model.config().d_model, start, end)
    }

    fn read_rows(
        &self,
        buf: &wgpu::Buffer,
        width: usize,
        start: usize,
        end: usize,
    ) -> Result<Vec<f32>> {
        if start >= end {
            return Ok(Vec::new());
        }
        self.check_row(start)?;
        self.check_row(end - 1)?;
        let rows = self.opts.logit_rows;
        let width = width * self.opts.batch;
        let mut out = Vec::with_capacity((end - start) * width);
        // Rows are a ring: read in at most two contiguous pieces.
        let mut t = start;
        while t < end {
            let r = t % rows;
            let n = (rows - r).min(end - t);
            out.extend(
                self.model
                    .ctx()
                    .read_f32(buf, (r * width) as u64, (n * width) as u64)?,
            );
            t += n;
        }
        Ok(out)
    }

    fn check_not_overrun(&self) -> Result<()> {
        if self.overrun {
            return Err(Error::input(
                "this session computed positions past the returned sequence (a stop token or \
                 a cancellation inside a batch of generated tokens, or a batched generation), \
                 so its state no longer matches it; start a new session (or use \
                 tokens_per_submit = 1 to continue after stops)",
            ));
        }
        Ok(())
    }

    /// Generates up to `opts.max_tokens` tokens after `prompt` (consumed first), calling
    /// `on_token` with each new token as it arrives. Tokens are sampled on the GPU and
    /// read back every `tokens_per_submit` tokens (one submit and one wait per batch),
    /// unless `opts.cpu_sampling` asks for the CPU path (one wait per token).
    ///
    /// This is [`Session::start_generation`] driven to the end on this thread; on the
    /// web (no blocking) use that instead.
    pub fn generate(
        &mut self,
        prompt: &[u32],
        opts: &GenerateOptions,
        mut on_token: impl FnMut(u32),
    ) -> Result<GenerationStats> {
        crate::gpu::block_on(async {
            let mut generation = self.start_generation(prompt, opts.clone())?;
            while generation.next_batch_with(&mut on_token).await?.is_some() {}
            Ok(generation.stats())
        })
    }

    /// Consumes `prompt` and returns a [`Generation`]: a stream of generated tokens, one
    /// batch per [`Generation::next_batch`] (a batch is `tokens_per_submit` tokens drawn
    /// on the GPU and read back once; one token with `cpu_sampling`). Nothing here or
    /// there blocks, so a browser page or a GUI event loop can drive it, and
    /// `opts.cancel` stops it between tokens.
    pub fn start_generation(
        &mut self,
        prompt: &[u32],
        opts: GenerateOptions,
    ) -> Result<Generation<'_>> {
        opts.sampling.validate()?;
        self.check_not_overrun()?;
        if self.opts.batch > 1 {
            return Err(Error::input(format!(
                "this session runs {} sequences: generate with Session::generate_batch",
                self.opts.batch
            )));
        }
        if prompt.is_empty() && self.pos == 0 {
            return Err(Error::input(
                "the prompt is empty: give at least one token (HyenaDNA adds no leading token; \
                 e.g. --ids 2 starts from [BOS])",
            ));
        }
        let start = Instant::now();
        self.feed(prompt)?;
        let prompt_seconds = start.elapsed().as_secs_f64();
        Ok(Generation {
            counts_before: self.counts(),
            session: self,
            opts,
            tokens: Vec::new(),
            stop: None,
            prompt_seconds,
            gen_start: Instant::now(),
        })
    }
}

/// A generation in progress ([`Session::start_generation`]): call
/// [`Generation::next_batch`] until it returns `None`, then [`Generation::stats`].
#[derive(Debug)]
pub struct Generation<'s> {
    session: &'s mut Session,
    opts: GenerateOptions,
    tokens: Vec<u32>,
    stop: Option<StopReason>,
    prompt_seconds: f64,
    gen_start: Instant,
    counts_before: (u64, u64),
}

impl Generation<'_> {
    /// The next batch of generated tokens, or `None` once generation has stopped
    /// ([`Generation::stop_reason`] says why). After an error the generation is over.
    pub async fn next_batch(&mut self) -> Result<Option<Vec<u32>>> {
        self.next_batch_with(&mut |_| {}).await
    }

    /// [`Generation::next_batch`], calling `on_token` with each token as it is
    /// delivered (cancellation from inside `on_token` stops before the next token).
    pub async fn next_batch_with(
        &mut self,
        on_token: &mut impl FnMut(u32),
    ) -> Result<Option<Vec<u32>>> {
        if self.stop.is_some() {
            return Ok(None);
        }
        let first = self.tokens.len();
        let step = if self.opts.cpu_sampling {
            self.step_cpu(on_token).await
        } else {
            self.step_gpu(on_token).await
        };
        match step {
            Ok(stop) => self.stop = stop,
            Err(e) => {
                // Nothing more can be trusted: the next call ends the stream.
                self.stop = Some(StopReason::Cancelled);
                return Err(e);
            }
        }
        if self.tokens.len() == first && self.stop.is_some() {
            return Ok(None);
        }
        Ok(Some(self.tokens[first..].to_vec()))
    }

    /// Why generation stopped (`None` while it can go on).
    pub fn stop_reason(&self) -> Option<StopReason> {
        self.stop
    }

    /// The tokens generated so far (the prompt not included).
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Counts and timings so far; `stop` is `Cancelled` if generation was left unfinished.
    pub fn stats(&self) -> GenerationStats {
        let counts = self.session.counts();
        GenerationStats {
            tokens: self.tokens.clone(),
            stop: self.stop.unwrap_or(StopReason::Cancelled),
            prompt_seconds: self.prompt_seconds,
            generate_seconds: self.gen_start.elapsed().as_secs_f64(),
            dispatches: counts.0 - self.counts_before.0,
            submits: counts.1 - self.counts_before.1,
        }
    }

    /// The core path, one token: read the last logits back, sample on the CPU, feed the
    /// token. Returns why generation stops, if it does.
    async fn step_cpu(&mut self, on_token: &mut impl FnMut(u32)) -> Result<Option<StopReason>> {
        let opts = &self.opts;
        let session = &mut *self.session;
        if self.tokens.len() >= opts.max_tokens {
            return Ok(Some(StopReason::MaxTokens));
        }
        if opts.cancel.is_cancelled() {
            return Ok(Some(StopReason::Cancelled));
        }
        let vocab = session.model.config().vocab_size;
        let logits = session.logits_async(session.pos - 1).await?;
        let next = sampling::sample(&logits, vocab, &opts.sampling, 0, session.pos as u32);
        if let Some(stop) = deliver(next, opts, &mut self.tokens, on_token) {
            return Ok(Some(stop));
        }
        if self.tokens.len() == opts.max_tokens {
            return Ok(Some(StopReason::MaxTokens));
        }
        if session.pos >= session.opts.len {
            return Ok(Some(StopReason::SequenceFull));
        }
        session.feed(&[next])?;
        Ok(None)
    }

    /// The GPU path, one batch: draw a token on the GPU (into the tokens buffer the next
    /// embedding reads) and run its position, `tokens_per_submit` times in one pass and
    /// one submit; then read the batch's ids back once.
    async fn step_gpu(&mut self, on_token: &mut impl FnMut(u32)) -> Result<Option<StopReason>> {
        let opts = &self.opts;
        let tokens = &mut self.tokens;
        let session = &mut *self.session;
        if tokens.len() >= opts.max_tokens {
            return Ok(Some(StopReason::MaxTokens));
        }
        if opts.cancel.is_cancelled() {
            return Ok(Some(StopReason::Cancelled));
        }
        let ctx = session.model.ctx().clone();
        let c = session.model.config();
        let (vocab, vp) = (c.vocab_size, c.padded_vocab());
        let rows = session.opts.logit_rows;
        let batch = session.opts.tokens_per_submit.max(1);
        let model = session.model.clone();
        let sampler = &model.inner.sampler;
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        let mut drawn = 0;
        let mut full = false;
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for k in 0..batch.min(opts.max_tokens - tokens.len()) {
                let t = session.pos - 1;
                let draw = Draw {
                    row_off: ((t % rows) * vp) as u32,
                    pos: session.pos as u32,
                    tok_idx: session.pos as u32,
                    out_idx: k as u32,
                    row: 0,
                };
                let params = (&opts.sampling, vocab);
                let (arena, bind) = (&mut session.arena, &session.sample_bind);
                sampler.record(&mut pass, arena, bind, params, draw)?;
                drawn += 1;
                if tokens.len() + drawn == opts.max_tokens {
                    break;
                }
                if session.pos >= session.opts.len {
                    full = true;
                    break;
                }
                session.record_token(&mut pass, session.pos)?;
                session.pos += 1;
            }
        }
        session.arena.upload(&ctx);
        ctx.queue.submit([enc.finish()]);
        let bytes = ctx
            .read_via_async(&session.drawn, 0, drawn as u64 * 4, &session.drawn_staging)
            .await?;
        session.count_submits(2);
        let ids: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes);
        for (i, &id) in ids.iter().enumerate() {
            if let Some(stop) = deliver(id, opts, tokens, on_token) {
                // Positions after this token were already run.
                session.overrun = i + 1 < drawn;
                return Ok(Some(stop));
            }
        }
        if full {
            return Ok(Some(StopReason::SequenceFull));
        }
        if tokens.len() >= opts.max_tokens {
            return Ok(Some(StopReason::MaxTokens));
        }
        Ok(None)
    }
}

/// Hands one generated token to the caller; says why generation must stop after it (a
/// stop id, or cancellation), if it must.
fn deliver(
    id: u32,
    opts: &GenerateOptions,
    tokens: &mut Vec<u32>,
    on_token: &mut impl FnMut(u32),
) -> Option<StopReason> {
    tokens.push(id);
    on_token(id);
    if opts.stop_ids.contains(&id) {
        Some(StopReason::StopToken(id))
    } else if opts.cancel.is_cancelled() {
        Some(StopReason::Cancelled)
    } else {
        None
    }
}

/// A cloneable handle that stops a running generation at the next token.
#[derive(Clone, Debug, Default)]
pub struct CancelHandle(Arc<AtomicBool>);

impl CancelHandle {
    /// A fresh, not-cancelled handle.
    pub fn new() -> Self {
        Self::default()
    }
    /// Requests cancellation.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    /// Whether cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Options of [`Session::generate`] and [`Session::start_generation`].
#[derive(Clone, Debug, Default)]
pub struct GenerateOptions {
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// Sampling parameters.
    pub sampling: SamplingParams,
    /// Generation stops after emitting any of these ids.
    pub stop_ids: Vec<u32>,
    /// Cancellation handle: no token is delivered after it is used (with GPU sampling
    /// the rest of the current batch is discarded and the session cannot continue).
    pub cancel: CancelHandle,
    /// Sample on the CPU from logits read back every token (the core path, one CPU wait
    /// per token) instead of on the GPU.
    pub cpu_sampling: bool,
}

/// Why generation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// `max_tokens` were generated.
    MaxTokens,
    /// A stop id was generated.
    StopToken(u32),
    /// The sequence reached the session length (max_seq_len).
    SequenceFull,
    /// The cancellation handle was used.
    Cancelled,
}

/// What [`Session::generate`] returns.
#[derive(Clone, Debug)]
pub struct GenerationStats {
    /// The generated ids (the prompt not included).
    pub tokens: Vec<u32>,
    /// Why it stopped.
    pub stop: StopReason,
    /// Seconds spent consuming the prompt.
    pub prompt_seconds: f64,
    /// Seconds spent generating.
    pub generate_seconds: f64,
    /// GPU dispatches recorded while generating (prompt excluded).
    pub dispatches: u64,
    /// Queue submits while generating, read-backs included (prompt excluded).
    pub submits: u64,
}

impl GenerationStats {
    /// Mean dispatches and submits per generated token.
    pub fn per_token(&self) -> (f64, f64) {
        let n = self.tokens.len().max(1) as f64;
        (self.dispatches as f64 / n, self.submits as f64 / n)
    }

    /// Generated tokens per second.
    pub fn tokens_per_second(&self) -> f64 {
        self.tokens.len() as f64 / self.generate_seconds.max(1e-9)
    }
}

/// Checks that every id indexes the model's (padded) vocabulary; the error names the
/// first bad id and its position.
pub fn check_ids(config: &Config, ids: &[u32]) -> Result<()> {
    let vp = config.padded_vocab();
    match ids.iter().enumerate().find(|(_, &id)| id as usize >= vp) {
        Some((i, &id)) => Err(Error::input(format!(
            "token id {id} (input position {i}) is out of range: the model's vocabulary \
             has {vp} ids (0..{vp})"
        ))),
        None => Ok(()),
    }
}

/// Session length for a batch ([`Session::generate_batch`]): the longest of
/// [`session_len`] over its sequences, given as the prompts and their options.
pub fn batch_session_len(
    config: &Config,
    prompts: &[&[u32]],
    opts: &[GenerateOptions],
) -> Result<usize> {
    let mut len = 1;
    for (p, o) in prompts.iter().zip(opts) {
        len = len.max(session_len(config, p.len(), o.max_tokens)?);
    }
    Ok(len)
}

/// Session length for a prompt of `prompt_len` plus `max_tokens` new tokens: the last
/// generated token is never fed back, and the total is capped by max_seq_len.
pub fn session_len(config: &Config, prompt_len: usize, max_tokens: usize) -> Result<usize> {
    if prompt_len >= config.max_seq_len && max_tokens > 0 {
        return Err(Error::input(format!(
            "the prompt has {prompt_len} tokens but max_seq_len is {}: nothing can be generated",
            config.max_seq_len
        )));
    }
    if prompt_len > config.max_seq_len {
        return Err(Error::input(format!(
            "the input has {prompt_len} tokens, more than max_seq_len = {}",
            config.max_seq_len
        )));
    }
    let full = prompt_len + max_tokens.saturating_sub(1);
    Ok(full.min(config.max_seq_len - 1).max(prompt_len).max(1))
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
