//! The interface the session drives for every block of a model ([`Block`]), and the
//! construction of a session's blocks from the model's description
//! ([`crate::model::Model::blocks`]).
//!
//! A block reads the residual stream and adds its output to it, for one position
//! ([`Block::record_token`]) or for every row of a prompt ([`Block::record_prefill`]).
//! What is shared across blocks stays outside them and is lent to them through
//! [`BlockCx`]: the dense kernels, the session's buffers and the long-convolution
//! engine (the [`Mixer`]), which runs the convolutions of all blocks that have one
//! together (flash's tiles cover every such block's channels in one dispatch). A new
//! kind of block (attention with its KV cache, Hyena with a modal or FIR filter) is a
//! new type implementing [`Block`] and a case in [`blocks`]; the flash scheduler, the
//! tiling and the FFT stay as they are.

use super::buffers::SessionBuffers;
use super::dense::Products;
use super::hyena::HyenaBlock;
use super::weights::ModelInner;
use crate::error::Result;
use crate::gpu::Step;
use crate::mixer::{FusableGate, Mixer, PrefillConv};
use crate::model::BlockKind;
use std::fmt;

/// What a block's recording borrows from the session.
pub(super) struct BlockCx<'a> {
    pub(super) model: &'a ModelInner,
    pub(super) buf: &'a SessionBuffers,
    /// The long-convolution engine over the blocks that have a long convolution.
    pub(super) mixer: &'a Mixer,
    /// The per-dispatch parameters of the dense products of B sequences.
    pub(super) products: &'a Products,
    /// Sequences side by side (B).
    pub(super) batch: usize,
}

/// A prompt's activations, a row per position and sequence (`[P][B][..]`).
pub(super) struct PromptRows<'a> {
    /// Positions P.
    pub(super) len: usize,
    /// The residual stream `[P][B][D]`.
    pub(super) x: &'a wgpu::Buffer,
    /// Room for a block's projections, `[P][B][3D]`.
    pub(super) u: &'a wgpu::Buffer,
    /// Room for an MLP's hidden activations, `[P][B][D_inner]`.
    pub(super) mlp: &'a wgpu::Buffer,
    /// The prompt's long convolutions by FFT (flash), if the mixer runs them.
    pub(super) conv: Option<&'a PrefillConv>,
}

/// One block of the model as the session runs it.
pub(super) trait Block: fmt::Debug + wgpu::WasmNotSendSync {
    /// An upper bound on the dispatches [`Block::record_token`] records (for sizing
    /// the parameter arena).
    fn dispatches_per_token(&self) -> usize;

    /// Records the block's work at position `t`: the residual stream `[B][D]` in, with
    /// the block's output added.
    fn record_token(&self, cx: &BlockCx<'_>, step: &mut Step<'_>, t: usize) -> Result<()>;

    /// An upper bound on the dispatches of [`Block::record_prefill`] when a product
    /// over all of a prompt's rows takes `chunks` dispatches.
    fn prefill_dispatches(&self, chunks: usize) -> usize;

    /// Records the block over every row of a prompt at positions `0 .. prompt.len`, and
    /// leaves the state the token steps after it read.
    fn record_prefill(
        &self,
        cx: &BlockCx<'_>,
        step: &mut Step<'_>,
        prompt: &PromptRows<'_>,
    ) -> Result<()>;
}

/// The session's blocks for `m`'s description, over the session's buffers, with the
/// gate fused into out_proj where the mixer says it may be. The blocks with a long
/// convolution take the mixer's layers in order.
pub(super) fn blocks(
    m: &ModelInner,
    buf: &SessionBuffers,
    fused: Option<&FusableGate<'_>>,
) -> Vec<Box<dyn Block>> {
    let mut conv = 0;
    let mut out: Vec<Box<dyn Block>> = Vec::new();
    for (layer, kind) in m.model.blocks().into_iter().enumerate() {
        match kind {
            BlockKind::Hyena(_) => {
                out.push(Box::new(HyenaBlock::new(m, buf, fused, (layer, conv))));
            }
        }
        conv += usize::from(kind.has_long_conv());
    }
    out
}
