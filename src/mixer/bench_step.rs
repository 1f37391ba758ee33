//! The mixer-only benchmark's step (`bench --mixer-only`): v_t from z_{t-1} instead of
//! a model, then this mixer's method; kept apart from the session's token path. Also
//! the mixer over M·D chained channels that the benchmark and the tile tuning time.

use super::{Method, Mixer, MixerIo, MixerKernels, Tiles};
use crate::error::Result;
use crate::gpu::{GpuContext, Step};

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

/// A smooth decaying filter `[channels][len]` for timings where its values do not
/// matter (the threshold tuning).
pub(crate) fn smooth_filter(channels: usize, len: usize) -> Vec<f32> {
    (0..channels * len)
        .map(|i| {
            let (c, t) = (i / len, i % len);
            (-(t as f32) / (1.0 + c as f32)).exp() * 0.5
        })
        .collect()
}

/// A mixer over `channels` chained channels of length `len` (one "layer").
pub(crate) fn bench_mixer(
    ctx: &GpuContext,
    kernels: &MixerKernels,
    method: Method,
    filter: &[f32],
    (channels, len, tiles): (usize, usize, Tiles),
    textures: bool,
) -> Result<(Mixer, Vec<wgpu::Buffer>)> {
    let stride = filter.len() / channels;
    let k: Vec<f32> = (0..channels)
        .flat_map(|c| filter[c * stride..c * stride + len].iter().copied())
        .collect();
    // No short conv (zeros), the diagonal term k[0] + 0.5, no out_proj bias.
    let k64: Vec<f64> = k.iter().map(|&v| v as f64).collect();
    let zeros = vec![0f32; 9 * channels];
    let short = (&zeros[..], &zeros[..3 * channels]);
    let half = vec![0.5f32; channels];
    let p = super::layer_params(channels, len, &k64, short, &half, &zeros[..channels]);
    let params = vec![ctx.buffer_init("bench_params", &p)?];
    let ring = vec![ctx.buffer_zeroed("bench_ring", 16)?];
    let ones = ctx.buffer_init("bench_ones", &vec![1f32; channels])?;
    let z_last = ctx.buffer_zeroed("bench_z", channels as u64 * 4)?;
    let filters = [k];
    let io = MixerIo {
        filters: &filters,
        params: &params,
        u_ring: &ring,
        x0: &ones,
        y: &z_last,
        fft_min_tile: tiles.fft_min_tile,
        spread: tiles.spread,
        spectra_budget: tiles.spectra_budget,
        textures,
    };
    let mixer = Mixer::new(ctx, kernels, method, (channels, len), io)?;
    mixer.build_bench_kernels(kernels)?;
    Ok((mixer, vec![ones, z_last]))
}
