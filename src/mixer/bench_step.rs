//! The mixer-only benchmark's step (`bench --mixer-only`): v_t from z_{t-1} instead of
//! a model, then this mixer's method; kept apart from the session's token path. Also
//! the mixer over M·D chained channels that the benchmark and the tile tuning time.

use super::kernels::{mixer_source_with, MIXER_ACCESS};
use super::{GateKind, Method, Mixer, MixerIo, MixerKernels, Tiles};
use crate::error::Result;
use crate::gpu::{Access, DeferredKernel, GpuContext, Step};
use crate::shaders::Shader;
use std::sync::Arc;

/// WGSL source of the benchmark's steps (compiled after the mixer's kernels).
pub(crate) const MIXER_BENCH_WGSL: &str = include_str!("../../shaders/mixer_bench.wgsl");

/// The benchmark's per-step entry points, whose parameters sit behind
/// [`gpu::unfoldable_params`](crate::gpu::unfoldable_params) like the gates'.
const BENCH_ENTRIES: [&str; 2] = ["bench_step", "bench_step4"];

/// The full source of the benchmark's steps: the mixer's kernels, then `mixer_bench.wgsl`
/// (with `textures`, the variant that also stores v_t in lazy's v texture).
pub(crate) fn bench_source(textures: bool) -> String {
    mixer_source_with(textures, MIXER_BENCH_WGSL, &BENCH_ENTRIES)
}

/// The kernels the mixer-only benchmark and the tile tuning run: a model's mixer
/// kernels and the benchmark's steps, which bind what the slices' gates bind.
#[derive(Debug)]
pub(crate) struct BenchKernels {
    pub(crate) mixer: MixerKernels,
    /// `bench_step`, `bench_step4`, and `bench_step4` storing v_t in lazy's v texture
    /// (in [`GateKind::pick`] order).
    steps: [DeferredKernel; 3],
}

impl BenchKernels {
    /// The kernels, none compiled yet.
    pub(crate) fn new(ctx: &GpuContext) -> Result<Self> {
        let mixer = MixerKernels::new(ctx)?;
        let plain: Arc<str> = Shader::MixerBench { textures: false }.source().into();
        let tex: Arc<str> = Shader::MixerBench { textures: true }.source().into();
        let tex_access = [&MIXER_ACCESS[..], &[Access::TextureWrite]].concat();
        let layout = mixer.param_layout();
        let steps = [
            DeferredKernel::new(ctx, &plain, "bench_step", &MIXER_ACCESS, layout),
            DeferredKernel::new(ctx, &plain, "bench_step4", &MIXER_ACCESS, layout),
            DeferredKernel::new(ctx, &tex, "bench_step4", &tex_access, layout),
        ];
        Ok(BenchKernels { mixer, steps })
    }

    /// The group-0 layout of every kernel, for a [`ParamArena`](crate::gpu::ParamArena).
    pub(crate) fn param_layout(&self) -> &wgpu::BindGroupLayout {
        self.mixer.param_layout()
    }

    fn step(&self, kind: GateKind) -> &DeferredKernel {
        let [scalar, quads, texture] = &self.steps;
        kind.pick([scalar, quads, texture])
    }
}

impl Mixer {
    /// Compiles the benchmark's step kernels that [`Mixer::record_bench_step`] runs.
    fn build_bench_kernels(&self, k: &BenchKernels) -> Result<()> {
        let mut slices = self.slices.iter().flatten();
        slices.try_for_each(|s| k.step(s.kind).get().map(drop))
    }

    /// Mixer-only benchmark step `t` over all channels (a mixer built with one "layer"
    /// of M * D channels): v_t = tanh(z_{t-1}) + noise, z_t by this mixer's method (into
    /// the `y` buffer given at creation), then the flash tile.
    pub(crate) fn record_bench_step(
        &self,
        step: &mut Step<'_>,
        k: &BenchKernels,
        t: usize,
    ) -> Result<()> {
        for s in &self.slices[0] {
            let w = self.params(0, t, s.group, Some(s));
            let groups = s.kind.workgroups(s.count);
            step.dispatch(k.step(s.kind).get()?, &s.gate, &w, groups)?;
            self.record_history_term(step, &k.mixer, s, &w)?;
        }
        self.record_tiles(step, &k.mixer, t)
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

/// What a benchmark's mixer runs: `channels` chained channels of length `len` (one
/// "layer") by `method`, with `filter` (`[channels][at least len]`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Chain<'a> {
    pub(crate) method: Method,
    pub(crate) filter: &'a [f32],
    pub(crate) channels: usize,
    pub(crate) len: usize,
    pub(crate) tiles: Tiles,
    /// Lazy's v history and filter taps in textures.
    pub(crate) textures: bool,
}

/// The mixer of `chain`, and the buffers it binds that the caller keeps alive.
pub(crate) fn bench_mixer(
    ctx: &GpuContext,
    kernels: &BenchKernels,
    chain: Chain<'_>,
) -> Result<(Mixer, Vec<wgpu::Buffer>)> {
    let Chain {
        method,
        filter,
        channels,
        len,
        tiles,
        textures,
    } = chain;
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
    let mixer = Mixer::new(ctx, &kernels.mixer, method, (channels, len), io)?;
    mixer.build_bench_kernels(kernels)?;
    Ok((mixer, vec![ones, z_last]))
}
