//! Eager: each new v_t is pushed into every future accumulator at once.

use super::{Mixer, MixerKernels, MixerParams, Slice};
use crate::error::Result;
use crate::gpu::Step;

impl Mixer {
    /// Pushes v_t of a slice into all its future accumulators.
    pub(super) fn record_eager(
        &self,
        step: &mut Step<'_>,
        k: &MixerKernels,
        s: &Slice,
        w: &MixerParams,
    ) -> Result<()> {
        let t = w.t as usize;
        let future = (self.len - 1 - t) as u32;
        if future == 0 {
            return Ok(());
        }
        let mut w = *w;
        w.outputs = future;
        let groups = (future as u64 * s.count as u64).div_ceil(256);
        let bind = &self.groups[s.group].eager;
        step.dispatch(k.eager.get()?, bind, &w, groups as u32)
    }
}
