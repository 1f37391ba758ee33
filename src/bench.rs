//! Benchmarks behind `flashconv bench`: end-to-end generation and the mixer alone, per
//! method and length, on random models, plus the device's copy bandwidth measured in the
//! same run. Timings exclude pipeline compilation and uploads, and follow a warm-up.

use crate::error::Result;
use crate::gpu::{dispatch, Access, GpuContext, Kernel, ParamArena};
use crate::mixer::{Method, Mixer, MixerIo, MixerKernels};
use crate::session::{session_len, GenerateOptions, GpuModel, Session, SessionOptions};
use crate::Instant;
use crate::{Config, Model};
use serde::Serialize;

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchSpec {
    /// Layers M of the random model.
    pub layers: usize,
    /// Width D of the random model.
    pub dim: usize,
    /// Sequence lengths to run.
    pub lens: Vec<usize>,
    /// Methods to run at each length.
    pub methods: Vec<Method>,
    /// Time the long-convolution schedule alone (M * D chained channels).
    pub mixer_only: bool,
    /// Seed of the random model.
    pub seed: u64,
    /// Flash tiles of this side and larger use FFTs.
    pub fft_min_tile: usize,
}

/// One measurement.
#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    /// Method name.
    pub method: String,
    /// "mixer" or "end_to_end".
    pub mode: String,
    /// Sequence length.
    pub len: usize,
    /// Wall-clock seconds for the whole sequence.
    pub seconds: f64,
    /// Tokens (steps) per second.
    pub tokens_per_s: f64,
    /// For lazy: bandwidth achieved by its history reads, GB/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gbps: Option<f64>,
    /// Copy-kernel bandwidth measured right before this measurement, GB/s (the machine's
    /// bandwidth drifts; this is the fair reference for `gbps`).
    pub copy_gbps_before: f64,
    /// GPU memory of the mixer (histories, accumulators, filters, spectra, scratch).
    pub mixer_bytes: u64,
    /// Channel groups the mixer's buffers were split into to fit the binding limit.
    pub channel_groups: usize,
    /// End to end: mean GPU dispatches per generated token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispatches_per_token: Option<f64>,
    /// End to end: mean queue submits (read-backs included) per generated token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submits_per_token: Option<f64>,
}

/// Model shape in the report.
#[derive(Clone, Debug, Serialize)]
pub struct BenchShape {
    /// Layers.
    pub layers: usize,
    /// Width.
    pub dim: usize,
}

/// A whole benchmark run (`--json` writes this, `schema_version` 1).
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// Schema version of this JSON (fields are only ever added).
    pub schema_version: u32,
    /// Adapter name.
    pub adapter: String,
    /// wgpu backend.
    pub backend: String,
    /// Device type (Cpu, DiscreteGpu, ...).
    pub device_type: String,
    /// Model shape.
    pub config: BenchShape,
    /// Copy-kernel bandwidth of the device, GB/s (read + write bytes): the best of every
    /// copy measurement in the run.
    pub copy_gbps: f64,
    /// The measurements.
    pub results: Vec<BenchResult>,
}

/// Runs the benchmark; `progress` receives a line per finished measurement.
pub fn run(
    ctx: &GpuContext,
    spec: &BenchSpec,
    mut progress: impl FnMut(&BenchResult),
) -> Result<BenchReport> {
    let max_len = spec.lens.iter().copied().max().unwrap_or(1);
    let cfg = Config::new(spec.layers, spec.dim, 12, max_len + 1);
    let model = Model::random(cfg, spec.seed)?;
    let mut copy_gbps = 0f64;
    let mut results: Vec<BenchResult> = Vec::new();
    if spec.mixer_only {
        let kernels = MixerKernels::new(ctx)?;
        for &len in &spec.lens {
            let filter = stacked_filters(&model, len)?;
            for &method in &spec.methods {
                let shape = (spec.layers * spec.dim, len, spec.fft_min_tile);
                let copy = copy_bandwidth(ctx)?;
                copy_gbps = copy_gbps.max(copy);
                let mut r = time_mixer(ctx, &kernels, method, &filter, shape)?;
                r.copy_gbps_before = copy;
                progress(&r);
                results.push(r);
            }
        }
    } else {
        let gm = GpuModel::new(ctx, model)?;
        for &len in &spec.lens {
            for &method in &spec.methods {
                let copy = copy_bandwidth(ctx)?;
                copy_gbps = copy_gbps.max(copy);
                let mut r = time_generation(&gm, method, len, spec.fft_min_tile)?;
                r.copy_gbps_before = copy;
                progress(&r);
                results.push(r);
            }
        }
    }
    Ok(BenchReport {
        schema_version: 1,
        adapter: ctx.info.name.clone(),
        backend: format!("{:?}", ctx.info.backend),
        device_type: format!("{:?}", ctx.info.device_type),
        config: BenchShape {
            layers: spec.layers,
            dim: spec.dim,
        },
        copy_gbps,
        results,
    })
}

/// All layers' filters as one [M * D][len] array.
fn stacked_filters(model: &Model, len: usize) -> Result<Vec<f32>> {
    let mut out = Vec::new();
    for l in 0..model.config.n_layer {
        out.extend(model.filter(l, len)?.into_iter().map(|v| v as f32));
    }
    Ok(out)
}

/// WGSL source of the benchmark kernels.
pub const BENCH_WGSL: &str = include_str!("../shaders/bench.wgsl");

const STEPS_PER_SUBMIT: usize = 64;

/// A mixer over `channels` chained channels of length `len` (one "layer").
fn bench_mixer(
    ctx: &GpuContext,
    kernels: &MixerKernels,
    method: Method,
    filter: &[f32],
    (channels, len, fft_min_tile): (usize, usize, usize),
) -> Result<(Mixer, Vec<wgpu::Buffer>)> {
    let stride = filter.len() / channels;
    let k: Vec<f32> = (0..channels)
        .flat_map(|c| filter[c * stride..c * stride + len].iter().copied())
        .collect();
    let mut params = vec![0f32; 13 * channels];
    for c in 0..channels {
        params[12 * channels + c] = k[c * len] + 0.5;
    }
    let params = vec![ctx.buffer_init("bench_params", &params)?];
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
        fft_min_tile,
    };
    let mixer = Mixer::new(ctx, kernels, method, (channels, len), io)?;
    Ok((mixer, vec![ones, z_last]))
}

fn run_mixer_steps(
    ctx: &GpuContext,
    kernels: &MixerKernels,
    mixer: &Mixer,
    arena: &mut ParamArena,
    len: usize,
) -> Result<()> {
    let mut t = 0;
    while t < len {
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for _ in 0..STEPS_PER_SUBMIT.min(len - t) {
                mixer.record_bench_step(&mut pass, arena, kernels, t)?;
                t += 1;
            }
        }
        arena.upload(ctx);
        ctx.queue.submit([enc.finish()]);
    }
    ctx.wait()
}

fn time_mixer(
    ctx: &GpuContext,
    kernels: &MixerKernels,
    method: Method,
    filter: &[f32],
    (channels, len, fft_min_tile): (usize, usize, usize),
) -> Result<BenchResult> {
    let arena = |m: &Mixer| {
        let slots = STEPS_PER_SUBMIT * m.dispatches_per_token();
        ParamArena::new(ctx, kernels.param_layout(), slots)
    };
    let warm = len.min(256);
    let (wm, _keep) = bench_mixer(ctx, kernels, method, filter, (channels, warm, fft_min_tile))?;
    run_mixer_steps(ctx, kernels, &wm, &mut arena(&wm), warm)?;
    drop(wm);
    let (mixer, _keep) = bench_mixer(ctx, kernels, method, filter, (channels, len, fft_min_tile))?;
    let mut arena = arena(&mixer);
    ctx.wait()?;
    let start = Instant::now();
    run_mixer_steps(ctx, kernels, &mixer, &mut arena, len)?;
    let seconds = start.elapsed().as_secs_f64();
    let mut r = result(method, "mixer", len, seconds, channels);
    r.mixer_bytes = mixer.memory().total();
    r.channel_groups = mixer.group_widths().len();
    Ok(r)
}

/// One timed generation: seconds, (mixer bytes, channel groups), (dispatches, submits)
/// per token.
struct GenRun {
    seconds: f64,
    shape: (u64, usize),
    per_token: (f64, f64),
}

fn time_generation(
    gm: &GpuModel,
    method: Method,
    len: usize,
    fft_min_tile: usize,
) -> Result<BenchResult> {
    let prompt = [7u32];
    let gen = |n: usize| -> Result<GenRun> {
        let slen = session_len(gm.config(), prompt.len(), n)?;
        let mut opts = SessionOptions::new(method, slen);
        opts.fft_min_tile = fft_min_tile;
        let mut s = Session::new(gm, opts)?;
        gm.ctx().wait()?;
        let opts = GenerateOptions {
            max_tokens: n,
            ..Default::default()
        };
        let stats = s.generate(&prompt, &opts, |_| {})?;
        let memory = s.memory();
        let shape = (memory.mixer.total(), memory.groups.len());
        Ok(GenRun {
            seconds: stats.prompt_seconds + stats.generate_seconds,
            shape,
            per_token: stats.per_token(),
        })
    };
    gen(len.min(32))?; // warm-up
    let GenRun {
        seconds,
        shape: (bytes, groups),
        per_token: (dispatches, submits),
    } = gen(len)?;
    let channels = gm.config().n_layer * gm.config().d_model;
    let mut r = result(method, "end_to_end", len, seconds, channels);
    r.mixer_bytes = bytes;
    r.channel_groups = groups;
    r.dispatches_per_token = Some(dispatches);
    r.submits_per_token = Some(submits);
    Ok(r)
}

fn result(method: Method, mode: &str, len: usize, seconds: f64, channels: usize) -> BenchResult {
    // Lazy reads, per channel and step t, t + 1 history values and t filter taps.
    let gbps = (method == Method::Lazy).then(|| {
        let bytes = channels as f64 * 4.0 * (len as f64 * len as f64);
        bytes / seconds / 1e9
    });
    BenchResult {
        method: method.name().to_string(),
        mode: mode.to_string(),
        len,
        seconds,
        tokens_per_s: len as f64 / seconds,
        gbps,
        copy_gbps_before: 0.0,
        mixer_bytes: 0,
        channel_groups: 1,
        dispatches_per_token: None,
        submits_per_token: None,
    }
}

/// Copy bandwidth of the device in GB/s (bytes read + bytes written per second) with a
/// plain copy kernel over 64 MiB buffers, best of several runs.
pub fn copy_bandwidth(ctx: &GpuContext) -> Result<f64> {
    let max = ctx.limits.max_storage_buffer_binding_size;
    let bytes = (64u64 << 20).min(max / 2 * 2);
    let n = (bytes / 16) as u32;
    let src = ctx.buffer_zeroed("copy_src", bytes)?;
    let dst = ctx.buffer_zeroed("copy_dst", bytes)?;
    let kernel = Kernel::new(ctx, BENCH_WGSL, "copy", &[Access::Read, Access::ReadWrite])?;
    let bg = kernel.bind(ctx, &[&src, &dst]);
    let mut arena = ParamArena::new(ctx, &kernel.param_layout, 1);
    let mut best = 0f64;
    // The first run touches every page; the best of the rest is the device's bandwidth.
    for run in 0..12 {
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            dispatch(
                &mut pass,
                &mut arena,
                &kernel,
                &bg,
                &[n],
                n.div_ceil(256 * 16),
            )?;
        }
        arena.upload(ctx);
        ctx.wait()?;
        let start = Instant::now();
        ctx.queue.submit([enc.finish()]);
        ctx.wait()?;
        let s = start.elapsed().as_secs_f64();
        if run > 0 {
            best = best.max(2.0 * bytes as f64 / s / 1e9);
        }
    }
    Ok(best)
}
