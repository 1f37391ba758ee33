//! The dense kernels (`shaders/session.wgsl`, `shaders/session_matvec.wgsl` after
//! `shaders/gate_lib.wgsl`): the embedding, the matrix products with the norms and the
//! fused gate in front, their shader variants, and the per-dispatch parameters
//! ([`Matvec`]) of every product of a layer ([`Products`]).

use super::weights::{Matrix, VecOffsets, WeightFormat, WeightStorage, QUAD_BLOCK};
use crate::config::Config;
use crate::error::Result;
use crate::gpu::{self, param_block, Access, Bind, GpuContext, Kernel, Step, MAX_ROWS};
use crate::mixer::GATE_LIB_WGSL;
use crate::shaders::Shader;

/// WGSL source of the embedding kernel.
pub const SESSION_WGSL: &str = include_str!("../../shaders/session.wgsl");
/// WGSL source of the matrix-vector kernels (compiled after [`GATE_LIB_WGSL`]).
pub const MATVEC_WGSL: &str = include_str!("../../shaders/session_matvec.wgsl");
pub(crate) const WEIGHTS_F32: &str =
    "@group(1) @binding(0) var<storage, read> w4: array<vec4<f32>>;
fn weight(i: u32) -> vec4<f32> { return w4[i]; }";
pub(crate) const WEIGHTS_F16: &str =
    "@group(1) @binding(0) var<storage, read> w4: array<vec4<f16>>;
fn weight(i: u32) -> vec4<f32> { return vec4<f32>(w4[i]); }";

/// The weights as a texture (either format: the texture's texel format converts).
pub(crate) fn weights_texture_wgsl() -> String {
    gpu::linear_texture_wgsl(0, "w4", "weight")
}

/// Rows per workgroup of the matrix products over several rows, a prefill's positions
/// or a batch's sequences (`ROWS` in session_matvec.wgsl; the token step of one
/// sequence takes the one-row kernels). 4 on lavapipe beats 8 (whose 32 accumulators
/// per thread spill on a CPU: a batch of 8 ran 9.6 s against 12.6 s) and 2 (less weight
/// reuse: 16.5 s).
pub const PREFILL_ROWS: u32 = 4;

pub(crate) const ONE_ROW: &str = "const ROWS: u32 = 1u;";
/// Threads per workgroup of the one-row kernels (four outputs each): 32 gives a
/// D = 256 out_proj or fc2 two workgroups, so two CPU cores under lavapipe (none at
/// M = 4, D = 256, L = 512: 1.60 s against 2.07 s with 64; 16 and 8 measured like 32).
pub(crate) const ONE_ROW_WG: u32 = 32;

/// The full source of the matrix-vector kernels for weights stored as `format` in
/// `storage` ([`WeightStorage::Auto`] counts as buffers here: resolve it first), each
/// workgroup taking `rows` rows (1, or [`PREFILL_ROWS`]): gate functions, then kernels
/// (with `enable f16;` and f16 weight loads for F16 in buffers).
pub fn matvec_source(format: WeightFormat, storage: WeightStorage, rows: u32) -> String {
    let layout = crate::mixer::layout_wgsl();
    let source = format!("{layout}\n{GATE_LIB_WGSL}\n{MATVEC_WGSL}");
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
pub(crate) fn set_const(source: &str, line: &str, by: &str) -> String {
    debug_assert!(source.contains(line), "session_matvec.wgsl lacks `{line}`");
    source.replace(line, by)
}

pub(crate) const FLAG_BIAS: u32 = 1;
pub(crate) const FLAG_GELU: u32 = 2;
pub(crate) const FLAG_ACC: u32 = 4;
pub(crate) const FLAG_SIDE: u32 = 8;
/// The gate reads u_t from row t of a full buffer (prefill), not from a ring of three.
pub(crate) const FLAG_ROWS: u32 = 16;
/// Layer 0's in_proj looks up its input row in the embedding table by token id and
/// writes it to the residual stream (`side`) itself: one dispatch fewer per token.
pub(crate) const FLAG_EMBED: u32 = 32;
/// LayerNorm epsilon of the blocks' norm1 and norm2 (HyenaDNA's default; ln_f's comes
/// from the config).
pub(crate) const BLOCK_NORM_EPS: f32 = 1e-5;

/// Kernels of `shaders/session.wgsl` and `shaders/session_matvec.wgsl`.
#[derive(Debug)]
pub(crate) struct DenseKernels {
    pub(crate) embed: Kernel,
    pub(crate) matvec: Kernel,
    pub(crate) matvec_norm: Kernel,
    pub(crate) matvec_gate: Kernel,
    pub(crate) gate_rows: Kernel,
    /// The three products with [`PREFILL_ROWS`] rows per workgroup.
    pub(crate) rows: [Kernel; 3],
}

/// The three products of `session_matvec.wgsl`, as indices into [`DenseKernels::rows`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum Product {
    Plain = 0,
    Norm = 1,
    Gate = 2,
}

impl DenseKernels {
    pub(crate) fn new(
        ctx: &GpuContext,
        format: WeightFormat,
        storage: WeightStorage,
    ) -> Result<Self> {
        use Access::{Read as R, ReadWrite as W};
        let source = Shader::matvec(format, storage, 1).source();
        let rows = Shader::matvec(format, storage, PREFILL_ROWS).source();
        // One layout for them all: w4, vecs, x, dst, side, zacc, x4 (x again, as vec4s;
        // session_matvec.wgsl).
        let w = match storage {
            WeightStorage::Texture => Access::Texture,
            _ => R,
        };
        let k = |entry| Kernel::new(ctx, &source, entry, &[w, R, R, W, W, R, R]);
        let kr = |entry| Kernel::new(ctx, &rows, entry, &[w, R, R, W, W, R, R]);
        Ok(DenseKernels {
            embed: Kernel::new(ctx, &Shader::Embed.source(), "embed", &[R, R, W])?,
            matvec: k("matvec")?,
            matvec_norm: k("matvec_norm")?,
            matvec_gate: k("matvec_gate")?,
            gate_rows: k("gate_rows")?,
            rows: [kr("matvec")?, kr("matvec_norm")?, kr("matvec_gate")?],
        })
    }

    /// The one-row kernel of `product`.
    pub(crate) fn one(&self, product: Product) -> &Kernel {
        match product {
            Product::Plain => &self.matvec,
            Product::Norm => &self.matvec_norm,
            Product::Gate => &self.matvec_gate,
        }
    }

    /// The kernel of `product` that serves [`PREFILL_ROWS`] rows per weight load.
    pub(crate) fn rows(&self, product: Product) -> &Kernel {
        &self.rows[product as usize]
    }
}

/// A bind group of a `session_matvec.wgsl` kernel: the matrix `w`, then `rest` (vecs,
/// input, dst, side, zacc), then the input again (`x4`, read as vec4s).
pub(crate) fn bind_matvec(
    ctx: &GpuContext,
    k: &Kernel,
    w: &Matrix,
    rest: [&wgpu::Buffer; 5],
) -> wgpu::BindGroup {
    let buffers = rest.iter().chain([&rest[1]]).map(|b| b.as_entire_binding());
    k.bind_resources(ctx, std::iter::once(w.resource()).chain(buffers).collect())
}

param_block! {
    /// The embedding kernel's parameter block (`Params` in `session.wgsl`).
    pub(crate) struct EmbedParams as "Params" {
        /// Width D.
        n: u32,
        /// Position of the first token id read.
        pos: u32,
        /// Consecutive positions (the prompt's rows in a prefill).
        rows: u32,
        pad0: u32,
        pad1: [u32; 4],
        pad2: [u32; 4],
        pad3: [u32; 4],
    }
}

param_block! {
    /// Parameters of one `session_matvec.wgsl` dispatch (its `Params` block).
    pub(crate) struct Matvec as "Params" {
        n: u32,
        cols: u32,
        in_off: u32,
        out_off: u32,
        flags: u32,
        bias_off: u32,
        eps: f32,
        ln_off: u32,
        side_off: u32,
        /// matvec_gate: channels per layer (D); layer 0's in_proj: unused.
        d: u32,
        /// matvec_gate: the position; layer 0's in_proj (FLAG_EMBED): the position
        /// whose token id it looks up.
        t: u32,
        /// Rows of the batch (set by [`Matvec::record_rows`]; 0 means 1).
        rows: u32,
        /// matvec_gate: 0 = z from z_acc, 1 = diagonal only.
        mode: u32,
        /// matvec_gate: row stride of the v_hist / z_acc arenas.
        chans: u32,
        /// matvec_gate: arena column of the layer's first channel.
        col0: u32,
        /// Sequences side by side (rows r and r + batch are one sequence; 0 means 1).
        batch: u32,
    }
}

impl Matvec {
    /// The block as the shader reads it (rows and batch at least 1).
    fn block(&self) -> Matvec {
        Matvec {
            rows: self.rows.max(1),
            batch: self.batch.max(1),
            ..*self
        }
    }

    /// Records the product for the `rows` sequences of a token step with the fitting
    /// kernel of `dk`: the [`PREFILL_ROWS`] kernel for the normed products, one
    /// workgroup row per sequence for the others. (Measured on lavapipe, M = 1, D = 128,
    /// 4 sequences, 256 tokens: 0.48 s this way, 0.62 s with one-row kernels only,
    /// 2.4 s with the rows kernels only; why the plain and gate rows kernels lose that
    /// much there is not understood.)
    pub(crate) fn record_with(
        &self,
        step: &mut Step<'_>,
        (dk, product): (&DenseKernels, Product),
        bind: &wgpu::BindGroup,
        rows: usize,
    ) -> Result<()> {
        match (rows, product) {
            (1, _) => self.record(step, dk.one(product), bind),
            (_, Product::Norm) => self.record_rows(step, dk.rows(product), bind, rows),
            _ => self.record_grid(step, dk.one(product), bind, self.one_row_grid(), rows),
        }
    }

    /// Records the dispatch: 64 threads of four output rows per workgroup.
    pub(crate) fn record(
        &self,
        step: &mut Step<'_>,
        kernel: &Kernel,
        bind: &wgpu::BindGroup,
    ) -> Result<()> {
        self.record_grid(step, kernel, bind, self.one_row_grid(), 1)
    }

    /// Workgroups of a one-row kernel (four outputs per thread), one per workgroup row.
    pub(crate) fn one_row_grid(&self) -> (u32, u32) {
        (self.n.div_ceil(4 * ONE_ROW_WG), 1)
    }

    /// The same product for `rows` consecutive vectors (session_matvec.wgsl's rows:
    /// input rows `cols` apart, output rows `n` apart, gate positions t, t + 1, ... per
    /// `batch` rows), in dispatches of at most [`MAX_ROWS`] rows.
    pub(crate) fn record_rows(
        &self,
        step: &mut Step<'_>,
        kernel: &Kernel,
        bind: &wgpu::BindGroup,
        rows: usize,
    ) -> Result<()> {
        let grid = (self.n.div_ceil(256), PREFILL_ROWS);
        self.record_grid(step, kernel, bind, grid, rows)
    }

    /// The batch of `rows` rows over `groups` workgroups per `per_group` rows (the
    /// kernel's ROWS; also for `gate_rows`, one row per workgroup row), in dispatches
    /// within the per-dimension workgroup limit.
    pub(crate) fn record_grid(
        &self,
        step: &mut Step<'_>,
        kernel: &Kernel,
        bind: &wgpu::BindGroup,
        (groups, per_group): (u32, u32),
        rows: usize,
    ) -> Result<()> {
        // Whole positions per dispatch, so each starts at sequence 0.
        let batch = self.batch.max(1) as usize;
        let stride = MAX_ROWS * per_group as usize / batch * batch;
        for r0 in (0..rows).step_by(stride) {
            let r = r0 as u32;
            let mut chunk = *self;
            chunk.in_off += r * self.cols;
            chunk.out_off += r * self.n;
            chunk.side_off += r * self.cols;
            chunk.t += r / batch as u32;
            let n = (rows - r0).min(stride) as u32;
            chunk.rows = n;
            let z = n.div_ceil(per_group);
            step.dispatch_rows(kernel, bind, &chunk.block(), (groups, z))?;
        }
        Ok(())
    }
}

/// The products of a layer and lm_head with the parameters that do not depend on the
/// position; the token step and the prefill fill in where they read and write.
#[derive(Debug)]
pub(crate) struct Products {
    /// in_proj with norm1 in front (output offset to fill in).
    pub(crate) in_proj: Matvec,
    /// out_proj over the mixer's y, with the residual add (when the gate is not fused).
    pub(crate) out_proj: Matvec,
    /// `[mode, arena row stride]` of the fused gate, if fused.
    pub(crate) gate: Option<[u32; 2]>,
    /// fc1 with norm2 in front and GELU.
    pub(crate) fc1: Matvec,
    /// fc2 with the residual add.
    pub(crate) fc2: Matvec,
    /// lm_head with ln_f in front, writing the normalized vector to `side` (offsets to
    /// fill in).
    pub(crate) lm_head: Matvec,
}

impl Products {
    /// The products of `batch` sequences side by side.
    pub(crate) fn new(c: &Config, gate: Option<[u32; 2]>, batch: usize) -> Self {
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
    pub(crate) fn out_gate(&self, l: usize, t: usize) -> Option<Matvec> {
        let [mode, chans] = self.gate?;
        let d = self.out_proj.n;
        let col0 = l as u32 * self.out_proj.batch * d;
        Some(Matvec {
            // Mixer parameters (crate::mixer::mixer_params_len).
            bias_off: crate::mixer::mixer_params_bias_off(d as usize) as u32,
            d,
            t: t as u32,
            mode,
            chans,
            col0,
            ..self.out_proj
        })
    }
}
