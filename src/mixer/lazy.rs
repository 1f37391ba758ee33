//! Lazy: the direct causal sum over the whole history at every step, per slice (four
//! channels a thread where the quads line up; on CPU adapters over textures).

use super::{MixerKernels, MixerParams};
use crate::error::Result;
use crate::gpu::{DeferredKernel, Step};

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

/// A slice's lazy sum: its kernel and bindings (lazy's state, one per slice).
#[derive(Debug)]
pub(super) struct LazySum {
    pub(super) kernel: LazyKernel,
    pub(super) bind: wgpu::BindGroup,
}

impl LazySum {
    /// Its kernel.
    pub(super) fn kernel<'k>(&self, k: &'k MixerKernels) -> &'k DeferredKernel {
        match self.kernel {
            LazyKernel::Scalar => &k.lazy,
            LazyKernel::Vec4 => &k.lazy4,
            LazyKernel::Vec4Texture => &k.lazy4_tex,
        }
    }

    /// The direct sum at step t over the slice's `count` channels.
    pub(super) fn record(
        &self,
        step: &mut Step<'_>,
        k: &MixerKernels,
        count: usize,
        w: &MixerParams,
    ) -> Result<()> {
        let count = count as u32;
        let groups = match self.kernel {
            LazyKernel::Scalar => count.div_ceil(64),
            // lazy4: 32 quads per workgroup (4 LAZY_LANES in mixer_vec4.wgsl).
            LazyKernel::Vec4 | LazyKernel::Vec4Texture => (count / 4).div_ceil(32),
        };
        step.dispatch(self.kernel(k).get()?, &self.bind, w, groups)
    }
}
