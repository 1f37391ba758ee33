//! A session's own buffers ([`SessionBuffers`]: activations, token ids, the logits and
//! hidden-state rings, the in_proj rings, the mixer's per-layer parameters) and the
//! bind groups of its dense kernels over them ([`SessionBindGroups`]).

use super::dense::bind_matvec;
use super::weights::ModelInner;
use super::SessionOptions;
use crate::error::Result;
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
    /// Per layer of the mixer (the blocks with a long convolution): the ring of the
    /// last three in_proj outputs `[3][B][3D]`.
    pub(super) u_ring: Vec<wgpu::Buffer>,
    /// Per layer of the mixer: its parameters ([`crate::mixer::layer_params`]).
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
            u_ring: (0..m.model.long_conv_layers().len())
                .map(|_| act("u_ring", 9 * d))
                .collect::<Result<_>>()?,
            params: params.collect::<Result<_>>()?,
        })
    }
}

/// The bind groups of a session's token step.
#[derive(Debug)]
pub(super) struct SessionBindGroups {
    pub(super) lm_head: wgpu::BindGroup,
    /// `[mode, arena row stride]` when out_proj computes the gate itself (one channel
    /// group, and a method whose y needs no kernel of its own); None: the mixer's gate
    /// kernel runs per slice and out_proj reads y.
    pub(super) gate: Option<[u32; 2]>,
}

impl SessionBindGroups {
    /// The bind groups over `buf`, with out_proj computing the gate itself where
    /// `fused` says it can (the blocks' own are theirs: `block.rs`).
    pub(super) fn new(
        m: &ModelInner,
        buf: &SessionBuffers,
        fused: Option<FusableGate<'_>>,
    ) -> Self {
        let (ctx, dk) = (&m.ctx, &m.dense);
        let lm_head = [&m.ln_f, &buf.x, &buf.logits, &buf.hidden, &m.zero];
        SessionBindGroups {
            lm_head: bind_matvec(ctx, &dk.matvec_norm, &m.lm_head, lm_head),
            gate: fused.map(|g| [g.mode, g.chans]),
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
    let layers = m.model.long_conv_layers();
    let mut filters = Vec::with_capacity(layers.len());
    let mut params = Vec::with_capacity(layers.len());
    for l in layers {
        let (k, lw) = (m.model.filter(l, len)?, &m.model.layers[l]);
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
