//! The mixer-only benchmark's step (`bench --mixer-only`): v_t from z_{t-1} instead of
//! a model, then this mixer's method; kept apart from the session's token path.

use super::{Mixer, MixerKernels};
use crate::error::Result;
use crate::gpu::Step;

impl Mixer {
    /// Compiles the `bench_step` kernels of [`Mixer::record_bench_step`].
    pub(crate) fn build_bench_kernels(&self, k: &MixerKernels) -> Result<()> {
        let mut slices = self.slices.iter().flatten();
        slices.try_for_each(|s| s.gate_kernels(k).1.get().map(drop))
    }

    /// Mixer-only benchmark step `t` over all channels (a mixer built with one "layer"
    /// of M * D channels): v_t = tanh(z_{t-1}) + noise, z_t by this mixer's method (into
    /// the `y` buffer given at creation), then the flash tile.
    pub fn record_bench_step(&self, step: &mut Step<'_>, k: &MixerKernels, t: usize) -> Result<()> {
        for s in &self.slices[0] {
            let w = self.params(0, t, s.group, Some(s));
            let (_, bench_step, groups) = s.gate_kernels(k);
            step.dispatch(bench_step.get()?, &s.bench_step, &w, groups)?;
            self.record_history_term(step, k, s, &w)?;
        }
        self.record_tiles(step, k, t)
    }
}
