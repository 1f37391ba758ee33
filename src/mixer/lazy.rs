//! Lazy: the direct causal sum over the whole history at every step, per slice (four
//! channels a thread where the quads line up; on CPU adapters over textures).

use super::{Mixer, MixerKernels, MixerParams, Slice};
use crate::error::Result;
use crate::gpu::Step;

/// Which kernel computes a slice's lazy sum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LazyKernel {
    /// `lazy`, one channel per thread (any widths).
    Scalar,
    /// `lazy4` (group width, slice column and count all multiples of 4).
    Vec4,
    /// `lazy4` with the v history and the filter taps in textures (the slice's gate
    /// stores v_t in both the arena and the v texture).
    Vec4Texture,
}

impl Mixer {
    /// The direct sum of a slice at step t (four channels per thread when aligned).
    pub(super) fn record_lazy(
        &self,
        step: &mut Step<'_>,
        k: &MixerKernels,
        s: &Slice,
        w: &MixerParams,
    ) -> Result<()> {
        let count = s.count as u32;
        // lazy4: 32 quads per workgroup (4 LAZY_LANES in mixer_vec4.wgsl).
        let quads = (count / 4).div_ceil(32);
        match s.lazy_kernel {
            LazyKernel::Vec4 => step.dispatch(k.lazy4.get()?, &s.lazy, w, quads),
            LazyKernel::Vec4Texture => step.dispatch(k.lazy4_tex.get()?, &s.lazy, w, quads),
            LazyKernel::Scalar => step.dispatch(k.lazy.get()?, &s.lazy, w, count.div_ceil(64)),
        }
    }
}
