//! The Hyena block ([`HyenaBlock`]): norm1 + in_proj, the short conv and the gate, the
//! long convolution (a layer of the session's mixer), out_proj, norm2 + fc1, fc2.
//! Its dense products are the session's matvec kernels; who computes its gate is the
//! mixer's decision ([`crate::mixer::Mixer::gate`]), which its bind groups follow.

use super::block::{Block, BlockCx, PromptRows};
use super::buffers::SessionBuffers;
use super::dense::{bind_matvec, Matvec, Product, FLAG_EMBED, FLAG_ROWS};
use super::weights::{Matrix, ModelInner};
use crate::error::{Error, Result};
use crate::gpu::{Kernel, Step};
use crate::mixer::FusableGate;

/// One Hyena block of a session: its place in the model and in the mixer, and the bind
/// groups of its products.
#[derive(Debug)]
pub(super) struct HyenaBlock {
    /// The block's index in the model (its weights).
    layer: usize,
    /// Its layer among the mixer's (the blocks with a long convolution), which also
    /// indexes its in_proj ring and mixer parameters; with B sequences, the mixer's
    /// layers `conv * B .. (conv + 1) * B`.
    conv: usize,
    in_proj: wgpu::BindGroup,
    /// `matvec_gate`'s when the gate is fused, else `matvec`'s over the mixer's y.
    out_proj: wgpu::BindGroup,
    fc1: wgpu::BindGroup,
    fc2: wgpu::BindGroup,
}

impl HyenaBlock {
    /// Block `layer` of `m`, the mixer's layer `conv`, over the session's buffers.
    /// Matvec bindings: w4, vecs, input, dst, side, zacc; `xn` and `zero` fill the
    /// second outputs and z_acc where a kernel does not use them. Block 0's in_proj
    /// binds the embedding table as its input, the residual stream as `side` and the
    /// token ids as `zacc` (FLAG_EMBED).
    pub(super) fn new(
        m: &ModelInner,
        buf: &SessionBuffers,
        fused: Option<&FusableGate<'_>>,
        (layer, conv): (usize, usize),
    ) -> Self {
        let (ctx, dk, w) = (&m.ctx, &m.dense, &m.layers[layer]);
        let bind = |k: &Kernel, mat: &Matrix, b: [&wgpu::Buffer; 3]| {
            bind_matvec(ctx, k, mat, [b[0], b[1], b[2], &buf.xn, &m.zero])
        };
        let (x, u) = (&buf.x, &buf.u_ring[conv]);
        HyenaBlock {
            layer,
            conv,
            in_proj: if layer == 0 {
                let embed = [&w.vecs, &m.embed, u, x, &buf.tokens];
                bind_matvec(ctx, &dk.matvec_norm, &w.in_proj_w, embed)
            } else {
                bind(&dk.matvec_norm, &w.in_proj_w, [&w.vecs, x, u])
            },
            out_proj: match fused {
                Some(g) => {
                    let gate = [&buf.params[conv], u, x, g.v_hist, g.z_acc];
                    bind_matvec(ctx, &dk.matvec_gate, &w.out_proj_w, gate)
                }
                None => bind(&dk.matvec, &w.out_proj_w, [&w.vecs, &buf.y, x]),
            },
            fc1: bind(&dk.matvec_norm, &w.fc1_w, [&w.vecs, x, &buf.mlp]),
            fc2: bind(&dk.matvec, &w.fc2_w, [&w.vecs, &buf.mlp, x]),
        }
    }
}

impl Block for HyenaBlock {
    /// Four products and at most two mixer dispatches per slice (counted by the mixer),
    /// with room for the unfused gate's out_proj.
    fn dispatches_per_token(&self) -> usize {
        7
    }

    /// With the gate fused, four matvec dispatches (in_proj with norm1, out_proj with
    /// the gate, fc1 with norm2, fc2); block 0's in_proj looks its input up in the
    /// embedding itself.
    fn record_token(&self, cx: &BlockCx<'_>, step: &mut Step<'_>, t: usize) -> Result<()> {
        let (pr, dk, b) = (cx.products, &cx.model.dense, cx.batch);
        let (d, slot) = (pr.out_proj.n, (t % 3 * b) as u32);
        let mut in_proj = Matvec {
            out_off: slot * 3 * d,
            ..pr.in_proj
        };
        if self.layer == 0 {
            // The embedding lookup of position t, fused in (FLAG_EMBED).
            in_proj.flags |= FLAG_EMBED;
            in_proj.t = t as u32;
        }
        in_proj.record_with(step, (dk, Product::Norm), &self.in_proj, b)?;
        let k = &cx.model.mixer;
        if let Some(gate) = pr.out_gate(self.conv, t) {
            gate.record_with(step, (dk, Product::Gate), &self.out_proj, b)?;
            cx.mixer.record_layer(step, k, self.conv, t)?;
        } else {
            cx.mixer.record_layer(step, k, self.conv, t)?;
            pr.out_proj.record(step, &dk.matvec, &self.out_proj)?;
        }
        pr.fc1
            .record_with(step, (dk, Product::Norm), &self.fc1, b)?;
        pr.fc2.record_with(step, (dk, Product::Plain), &self.fc2, b)
    }

    fn prefill_dispatches(&self, chunks: usize) -> usize {
        6 * chunks
    }

    /// in_proj, every v_t (`gate_rows`), the prompt's convolution (flash), out_proj with
    /// the gate, fc1, fc2, each over all rows; then the last three in_proj rows into the
    /// ring the token steps read.
    fn record_prefill(
        &self,
        cx: &BlockCx<'_>,
        step: &mut Step<'_>,
        prompt: &PromptRows<'_>,
    ) -> Result<()> {
        let (m, buf) = (cx.model, cx.buf);
        let (ctx, dk, w) = (&m.ctx, &m.dense, &m.layers[self.layer]);
        let missing = || Error::gpu("prefill needs the fused gate");
        let fused = cx.mixer.fusable_gate().ok_or_else(missing)?;
        let (pr, b) = (cx.products, cx.batch);
        let (x_all, u_all, a_all) = (prompt.x, prompt.u, prompt.mlp);
        let bind = |k: &Kernel, w: &Matrix, b: [&wgpu::Buffer; 3]| {
            bind_matvec(ctx, k, w, [b[0], b[1], b[2], &buf.xn, &m.zero])
        };
        // A row per position and sequence.
        let rows = prompt.len * b;
        let in_proj = bind(&dk.matvec_norm, &w.in_proj_w, [&w.vecs, x_all, u_all]);
        pr.in_proj
            .record_rows(step, dk.rows(Product::Norm), &in_proj, rows)?;
        let mut gate = pr.out_gate(self.conv, 0).ok_or_else(missing)?;
        gate.flags |= FLAG_ROWS;
        // gate_rows writes every v_t for the convolution; out_proj's gate reads z.
        let params = &buf.params[self.conv];
        let gate_bufs = [params, u_all, x_all, fused.v_hist, fused.z_acc];
        let v_bind = bind_matvec(ctx, &dk.gate_rows, &w.out_proj_w, gate_bufs);
        let v_groups = pr.out_proj.n.div_ceil(64);
        gate.record_grid(step, &dk.gate_rows, &v_bind, (v_groups, 1), rows)?;
        if let Some(conv) = prompt.conv {
            // The mixer's layers of this block: conv·B .. (conv + 1)·B.
            let layers = self.conv * b..(self.conv + 1) * b;
            cx.mixer.record_prefill_conv(step, &m.mixer, conv, layers)?;
        }
        let out_bind = bind_matvec(ctx, &dk.matvec_gate, &w.out_proj_w, gate_bufs);
        gate.record_rows(step, dk.rows(Product::Gate), &out_bind, rows)?;
        let fc1 = bind(&dk.matvec_norm, &w.fc1_w, [&w.vecs, x_all, a_all]);
        pr.fc1
            .record_rows(step, dk.rows(Product::Norm), &fc1, rows)?;
        let fc2 = bind(&dk.matvec, &w.fc2_w, [&w.vecs, a_all, x_all]);
        pr.fc2
            .record_rows(step, dk.rows(Product::Plain), &fc2, rows)?;
        let row = (3 * pr.out_proj.n as usize * b) as u64 * 4;
        Self::copy_ring(step, &buf.u_ring[self.conv], prompt, row);
        Ok(())
    }
}

impl HyenaBlock {
    /// The token steps after the prompt read u at P-1 and P-2 from the in_proj `ring`
    /// (rows of `row` bytes).
    fn copy_ring(step: &mut Step<'_>, ring: &wgpu::Buffer, prompt: &PromptRows<'_>, row: u64) {
        let p = prompt.len;
        for t in p.saturating_sub(3)..p {
            let (src, dst) = (t as u64 * row, (t % 3) as u64 * row);
            step.encoder()
                .copy_buffer_to_buffer(prompt.u, src, ring, dst, row);
        }
    }
}
