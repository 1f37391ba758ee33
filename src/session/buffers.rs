//! A session's own buffers ([`SessionBuffers`]: activations, token ids, the logits and
//! hidden-state rings, the in_proj rings, the mixer's per-layer parameters) and the
//! bind groups of its dense kernels over them ([`SessionBindGroups`]).

use super::dense::bind_matvec;
use super::weights::{Matrix, ModelInner};
use super::SessionOptions;
use crate::error::Result;
use crate::gpu::Kernel;
use crate::mixer::FusableGate;

/// The buffers a session allocates besides the mixer's.
#[derive(Debug)]
pub(super) struct SessionBuffers {
    /// The residual stream `[B][D]`.
    pub(super) x: wgpu::Buffer,
    /// The matvec kernels' unused second output.
    pub(super) xn: wgpu::Buffer,
    /// The mixer's output y and its gate x0, `[B][D]`.
    pub(super) y: wgpu::Buffer,
    pub(super) x0: wgpu::Buffer,
    /// The MLP's hidden activations `[B][D_inner]`.
    pub(super) mlp: wgpu::Buffer,
    /// Token ids `[position][B]`, one slot past the end: generation draws the token
    /// after the last position.
    pub(super) tokens: wgpu::Buffer,
    /// Ids drawn on the GPU in the current batch, and the sampler's scratch.
    pub(super) drawn: wgpu::Buffer,
    pub(super) scratch: wgpu::Buffer,
    /// The rings of the kept logits `[row][B][V_pad]` and hidden states `[row][B][D]`.
    pub(super) logits: wgpu::Buffer,
    pub(super) hidden: wgpu::Buffer,
    /// Per layer: the ring of the last three in_proj outputs `[3][B][3D]`.
    pub(super) u_ring: Vec<wgpu::Buffer>,
    /// Per layer: the mixer parameters ([`crate::mixer::layer_params`]).
    pub(super) params: Vec<wgpu::Buffer>,
}

impl SessionBuffers {
    /// The buffers of a session with `opts` (its logit rows already clamped) on `m`,
    /// with each layer's packed mixer parameters `params`.
    pub(super) fn new(m: &ModelInner, opts: &SessionOptions, params: &[Vec<f32>]) -> Result<Self> {
        let (ctx, c) = (&m.ctx, &m.model.config);
        let (d, di, vp) = (c.d_model, c.d_inner, c.padded_vocab());
        let (b, rows) = (opts.batch, opts.logit_rows);
        // Per-sequence vectors hold B rows: [B][D], [B][D_inner].
        let act = |name: &str, n: usize| ctx.buffer_zeroed(name, (n * b) as u64 * 4);
        let params = params.iter().map(|p| ctx.buffer_init("mixer_params", p));
        Ok(SessionBuffers {
            x: act("x", d)?,
            xn: act("xn", d)?,
            y: act("y", d)?,
            x0: act("x0", d)?,
            mlp: act("mlp", di)?,
            tokens: act("tokens", opts.len + 1)?,
            drawn: act("drawn ids", opts.tokens_per_submit.max(1))?,
            scratch: ctx.buffer_zeroed("sampling scratch", 3 * vp as u64 * 4)?,
            logits: act("logits", rows * vp)?,
            hidden: act("hidden", rows * d)?,
            u_ring: (0..c.n_layer)
                .map(|_| act("u_ring", 9 * d))
                .collect::<Result<_>>()?,
            params: params.collect::<Result<_>>()?,
        })
    }
}

/// The bind groups of one layer's products.
#[derive(Debug)]
pub(super) struct LayerBindGroups {
    pub(super) in_proj: wgpu::BindGroup,
    /// `matvec_gate`'s when the gate is fused ([`SessionBindGroups::gate`]), else
    /// `matvec`'s over the mixer's output y.
    pub(super) out_proj: wgpu::BindGroup,
    pub(super) fc1: wgpu::BindGroup,
    pub(super) fc2: wgpu::BindGroup,
}

/// The bind groups of a session's token step.
#[derive(Debug)]
pub(super) struct SessionBindGroups {
    /// Layer 0's in_proj binds the embedding table as its input, the residual stream
    /// as `side` and the token ids as `zacc` (FLAG_EMBED).
    pub(super) layers: Vec<LayerBindGroups>,
    pub(super) lm_head: wgpu::BindGroup,
    /// `[mode, arena row stride]` when out_proj computes the gate itself (one channel
    /// group, and a method whose y needs no kernel of its own); None: the mixer's gate
    /// kernel runs per slice and out_proj reads y.
    pub(super) gate: Option<[u32; 2]>,
}

impl SessionBindGroups {
    /// The bind groups over `buf`, with out_proj computing the gate itself where
    /// `fused` says it can.
    pub(super) fn new(
        m: &ModelInner,
        buf: &SessionBuffers,
        fused: Option<FusableGate<'_>>,
    ) -> Self {
        let (ctx, dk) = (&m.ctx, &m.dense);
        let layers = (0..m.layers.len())
            .map(|l| Self::layer(m, buf, fused.as_ref(), l))
            .collect();
        let lm_head = [&m.ln_f, &buf.x, &buf.logits, &buf.hidden, &m.zero];
        SessionBindGroups {
            layers,
            lm_head: bind_matvec(ctx, &dk.matvec_norm, &m.lm_head, lm_head),
            gate: fused.map(|g| [g.mode, g.chans]),
        }
    }

    /// Layer `l`'s bind groups. Matvec bindings: w4, vecs, input, dst, side, zacc;
    /// `xn` and `zero` fill the second outputs and z_acc where a kernel does not use
    /// them.
    fn layer(
        m: &ModelInner,
        buf: &SessionBuffers,
        fused: Option<&FusableGate<'_>>,
        l: usize,
    ) -> LayerBindGroups {
        let (ctx, dk, w) = (&m.ctx, &m.dense, &m.layers[l]);
        let bind = |k: &Kernel, mat: &Matrix, b: [&wgpu::Buffer; 3]| {
            bind_matvec(ctx, k, mat, [b[0], b[1], b[2], &buf.xn, &m.zero])
        };
        let (x, u) = (&buf.x, &buf.u_ring[l]);
        LayerBindGroups {
            in_proj: if l == 0 {
                let embed = [&w.vecs, &m.embed, u, x, &buf.tokens];
                bind_matvec(ctx, &dk.matvec_norm, &w.in_proj_w, embed)
            } else {
                bind(&dk.matvec_norm, &w.in_proj_w, [&w.vecs, x, u])
            },
            out_proj: match fused {
                Some(g) => {
                    let gate = [&buf.params[l], u, x, g.v_hist, g.z_acc];
                    bind_matvec(ctx, &dk.matvec_gate, &w.out_proj_w, gate)
                }
                None => bind(&dk.matvec, &w.out_proj_w, [&w.vecs, &buf.y, x]),
            },
            fc1: bind(&dk.matvec_norm, &w.fc1_w, [&w.vecs, x, &buf.mlp]),
            fc2: bind(&dk.matvec, &w.fc2_w, [&w.vecs, &buf.mlp, x]),
        }
    }
}

/// One vector per layer.
type PerLayer = Vec<Vec<f32>>;

/// Each layer's filter for a session of `len` positions (materialised in f64 on the
/// CPU, `[D][len]`, returned as f32) and its mixer parameters, packed from the f64
/// filter ([`crate::mixer::layer_params`]).
pub(super) fn filters_and_params(m: &ModelInner, len: usize) -> Result<(PerLayer, PerLayer)> {
    let d = m.model.config.d_model;
    let mut filters = Vec::with_capacity(m.model.layers.len());
    let mut params = Vec::with_capacity(m.model.layers.len());
    for (l, lw) in m.model.layers.iter().enumerate() {
        let k = m.model.filter(l, len)?;
        let short = (&lw.short_w[..], &lw.short_b[..]);
        params.push(crate::mixer::layer_params(
            d,
            len,
            &k,
            short,
            &lw.filter_bias,
            &lw.out_proj_b,
        ));
        filters.push(k.into_iter().map(|v| v as f32).collect());
    }
    Ok((filters, params))
}

/// Zeroed buffers of `bytes` in all, in pieces of at most `limit` (the test hook
/// `SessionOptions::test_extra_bytes`, feature `internals`).
#[cfg(feature = "internals")]
pub(super) fn extra_memory(
    ctx: &crate::GpuContext,
    bytes: u64,
    limit: u64,
) -> Result<Vec<wgpu::Buffer>> {
    let mut extra = Vec::new();
    let mut left = bytes;
    while left > 0 {
        let n = left.min(limit);
        extra.push(ctx.buffer_zeroed("test extra", n)?);
        ctx.take_errors()?;
        left -= n;
    }
    Ok(extra)
}
