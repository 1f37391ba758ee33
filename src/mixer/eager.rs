//! Eager: each new v_t is pushed into every future accumulator at once. Its state is
//! one bind group per channel group (`GroupWork::Eager`).

use super::{MixerKernels, MixerParams};
use crate::error::Result;
use crate::gpu::Step;

/// Pushes v_t of a slice of `count` channels into all its future accumulators of a
/// session of `len` positions, over its group's bindings `bind`.
pub(super) fn record(
    step: &mut Step<'_>,
    k: &MixerKernels,
    bind: &wgpu::BindGroup,
    (len, count): (usize, usize),
    w: &MixerParams,
) -> Result<()> {
    let t = w.t as usize;
    let future = (len - 1 - t) as u32;
    if future == 0 {
        return Ok(());
    }
    let mut w = *w;
    w.outputs = future;
    let groups = (future as u64 * count as u64).div_ceil(256);
    step.dispatch(k.eager.get()?, bind, &w, groups as u32)
}
