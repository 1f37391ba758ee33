//! Benchmarks behind `flashconv bench`: end-to-end generation and the mixer alone, per
//! method and length, on random models, plus the device's copy bandwidth measured in the
//! same run. Timings exclude pipeline compilation and uploads, and follow a warm-up.

use crate::error::Result;
use crate::gpu::{param_block, Access, GpuContext, Kernel, ParamArena, Step};
use crate::mixer::{Method, Mixer, MixerIo, MixerKernels, Tiles};
use crate::session::{
    session_len, GenerateOptions, GpuModel, Session, SessionOptions, WeightFormat, WeightStorage,
};
use crate::shaders::Shader;
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
    /// Time the long-convolution schedule alone (M * D chained channels), and nothing
    /// end to end.
    pub mixer_only: bool,
    /// Time the mixer alone as well as end to end.
    pub with_mixer: bool,
    /// Seed of the random model.
    pub seed: u64,
    /// Flash tiles of this side and larger use FFTs.
    pub fft_min_tile: usize,
    /// How large flash tiles are spread over the steps after them.
    pub spread: crate::tiling::Spread,
    /// Bytes of flash filter spectra to precompute (None: all).
    pub spectra_budget: Option<u64>,
    /// End to end: also generate the sequence one token per submit and report the
    /// per-token latency percentiles (a second run per method).
    pub latency: bool,
    /// End to end: run every method with f16 weights too.
    pub f16: bool,
    /// End to end: sequences generated side by side in one session
    /// ([`SessionOptions::batch`]; flash and none only). Default 1.
    pub batch: usize,
    /// Where the models keep their matrices and lazy its v history and filter taps
    /// (also for the mixer-only runs).
    pub storage: WeightStorage,
}

/// Per-token latency of a run that waits for every token (one submit per token), in
/// seconds: what an interactive caller sees, and where the large tiles spike.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Worst token.
    pub max: f64,
    /// Position (0-based, in the generated tokens) of the worst token.
    pub max_at: usize,
}

impl Latency {
    /// Percentiles of `gaps` (seconds per token, in order); None when empty.
    pub fn of(gaps: &[f64]) -> Option<Self> {
        let (max_at, &max) = gaps.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))?;
        let mut sorted = gaps.to_vec();
        sorted.sort_by(f64::total_cmp);
        let pick = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
        Some(Latency {
            p50: pick(0.5),
            p99: pick(0.99),
            max,
            max_at,
        })
    }
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
    /// Tokens per second (steps times `batch`).
    pub tokens_per_s: f64,
    /// End to end: sequences generated side by side (1 for the mixer alone).
    pub batch: usize,
    /// For lazy: bandwidth achieved by its history reads, GB/s (history bytes over the
    /// whole time, the non-mixer work included end to end).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gbps: Option<f64>,
    /// For lazy end to end, when the run also timed `none` at the same length and
    /// weights: history bytes over (lazy seconds − none seconds), the time the direct
    /// sums added to the rest of the model, GB/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mixer_gbps: Option<f64>,
    /// Copy-kernel bandwidth measured right before this measurement, GB/s (the machine's
    /// bandwidth drifts; this is the fair reference for `gbps`).
    pub copy_gbps_before: f64,
    /// GPU memory of the mixer (histories, accumulators, filters, spectra, scratch).
    pub mixer_bytes: u64,
    /// Channel groups the mixer's buffers were split into to fit the binding limit.
    pub channel_groups: usize,
    /// Mean GPU dispatches per generated token (per step of the mixer alone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispatches_per_token: Option<f64>,
    /// Mean queue submits (read-backs included) per generated token (per step of the
    /// mixer alone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submits_per_token: Option<f64>,
    /// End to end with `latency`: per-token latency waiting for every token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
    /// How the matrices were stored: "f32" or "f16" (end to end).
    pub weights: String,
    /// End to end: seconds per token as a multiple of the weight-read floor, the bytes
    /// of weights on the device (all read once per token) over the run's best copy
    /// bandwidth. For `none` this is the non-mixer time against the hardware floor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor_multiple: Option<f64>,
}

/// The adapter a report was measured on.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceInfo {
    /// Adapter name.
    pub adapter: String,
    /// wgpu backend.
    pub backend: String,
    /// Device type (Cpu, DiscreteGpu, ...).
    pub device_type: String,
}

impl DeviceInfo {
    /// The adapter of `ctx`.
    pub fn of(ctx: &GpuContext) -> Self {
        DeviceInfo {
            adapter: ctx.info.name.clone(),
            backend: format!("{:?}", ctx.info.backend),
            device_type: format!("{:?}", ctx.info.device_type),
        }
    }
}

impl std::fmt::Display for DeviceInfo {
    /// "name (backend, device type)".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}, {})",
            self.adapter, self.backend, self.device_type
        )
    }
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
    /// The adapter measured (flattened into the report's JSON).
    #[serde(flatten)]
    pub device: DeviceInfo,
    /// Model shape.
    pub config: BenchShape,
    /// Copy-kernel bandwidth of the device, GB/s (read + write bytes): the best of every
    /// copy measurement in the run.
    pub copy_gbps: f64,
    /// Where the matrices (and lazy's v history and filter taps) were kept: "buffer" or
    /// "texture" ([`WeightStorage`], as chosen for this adapter).
    pub weight_storage: String,
    /// With weights in textures and an end-to-end run: read-only bandwidth from a
    /// texture, GB/s ([`texture_read_bandwidth`]), the other reference for the floor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub texture_read_gbps: Option<f64>,
    /// The measurements.
    pub results: Vec<BenchResult>,
}

/// Runs the benchmark; `progress` receives a line per finished measurement.
pub fn run(
    ctx: &GpuContext,
    spec: &BenchSpec,
    mut progress: impl FnMut(&BenchResult),
) -> Result<BenchReport> {
    // Refuse a batch some method cannot run before any measurement.
    for &method in &spec.methods {
        crate::session::check_batch(method, spec.batch)?;
    }
    let max_len = spec.lens.iter().copied().max().unwrap_or(1);
    let cfg = Config::new(spec.layers, spec.dim, 12, max_len + 1);
    let model = Model::random(cfg, spec.seed)?;
    let mut copy_gbps = 0f64;
    let mut results: Vec<BenchResult> = Vec::new();
    // The mixer-only runs keep lazy's v history and filter taps as a session would.
    let textures = spec.storage.prefers_textures(ctx);
    let mut storage = if textures {
        WeightStorage::Texture
    } else {
        WeightStorage::Buffer
    };
    if spec.mixer_only || spec.with_mixer {
        let kernels = MixerKernels::new(ctx)?;
        for &len in &spec.lens {
            let filter = stacked_filters(&model, len)?;
            for &method in &spec.methods {
                let shape = (spec.layers * spec.dim, len, spec.tiles());
                let copy = copy_bandwidth(ctx)?;
                copy_gbps = copy_gbps.max(copy);
                let mut r = time_mixer(ctx, &kernels, method, &filter, shape, textures)?;
                r.copy_gbps_before = copy;
                progress(&r);
                results.push(r);
            }
        }
    }
    if !spec.mixer_only {
        let upload = |m: Model, f| GpuModel::with_storage(ctx, m, f, spec.storage);
        let mut models = vec![upload(model.clone(), WeightFormat::F32)?];
        if spec.f16 {
            models.push(upload(model, WeightFormat::F16)?);
        }
        storage = models[0].storage();
        for &len in &spec.lens {
            for &method in &spec.methods {
                for gm in &models {
                    let copy = copy_bandwidth(ctx)?;
                    copy_gbps = copy_gbps.max(copy);
                    let mut r = time_generation(gm, method, len, spec.tiles(), spec.batch)?;
                    r.copy_gbps_before = copy;
                    r.weights = gm.format().name().into();
                    r.floor_multiple = Some(gm.weight_bytes_per_token() as f64);
                    if spec.latency {
                        r.latency = token_latency(gm, method, len, spec.tiles())?;
                    }
                    progress(&r);
                    results.push(r);
                }
            }
        }
    }
    lazy_mixer_rates(&mut results);
    let none_ran = results.iter().any(|r| r.floor_multiple.is_some());
    let texture_read_gbps = if none_ran && storage == WeightStorage::Texture {
        Some(texture_read_bandwidth(ctx)?)
    } else {
        None
    };
    // Weight bytes over the best bandwidth of the whole run: the floor per token.
    for r in &mut results {
        if let Some(bytes) = r.floor_multiple {
            let floor = bytes / (copy_gbps * 1e9);
            r.floor_multiple = Some(r.seconds / (r.len * r.batch) as f64 / floor);
        }
    }
    Ok(BenchReport {
        schema_version: 1,
        device: DeviceInfo::of(ctx),
        config: BenchShape {
            layers: spec.layers,
            dim: spec.dim,
        },
        copy_gbps,
        texture_read_gbps,
        weight_storage: storage.name().to_string(),
        results,
    })
}

/// Sets `mixer_gbps` of every end-to-end lazy result that has a `none` result of the same
/// length, batch and weights to compare with.
fn lazy_mixer_rates(results: &mut [BenchResult]) {
    let same = |a: &BenchResult, b: &BenchResult| {
        a.mode == "end_to_end" && (a.len, a.batch, &a.weights) == (b.len, b.batch, &b.weights)
    };
    for i in 0..results.len() {
        let r = &results[i];
        let (Some(gbps), true) = (r.gbps, r.mode == "end_to_end") else {
            continue;
        };
        let none = results.iter().find(|n| n.method == "none" && same(n, r));
        if let Some(none) = none.filter(|n| n.seconds < r.seconds) {
            let rate = gbps * r.seconds / (r.seconds - none.seconds);
            results[i].mixer_gbps = Some(rate);
        }
    }
}

/// All layers' filters as one `[M * D][len]` array.
impl BenchSpec {
    /// The flash tile options of the spec.
    pub fn tiles(&self) -> Tiles {
        Tiles {
            fft_min_tile: self.fft_min_tile,
            spread: self.spread,
            spectra_budget: self.spectra_budget,
        }
    }
}

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

/// A smooth decaying filter `[channels][len]` for timings where its values do not
/// matter (the threshold tuning).
pub(crate) fn test_filter(channels: usize, len: usize) -> Vec<f32> {
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
    let p = crate::mixer::layer_params(channels, len, &k64, short, &half, &zeros[..channels]);
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

fn run_mixer_steps(
    ctx: &GpuContext,
    kernels: &MixerKernels,
    mixer: &Mixer,
    arena: &mut ParamArena,
    len: usize,
) -> Result<()> {
    let mut t = 0;
    while t < len {
        let mut step = Step::new(ctx, arena);
        for _ in 0..STEPS_PER_SUBMIT.min(len - t) {
            mixer.record_bench_step(&mut step, kernels, t)?;
            t += 1;
        }
        step.submit();
    }
    ctx.wait()
}

fn time_mixer(
    ctx: &GpuContext,
    kernels: &MixerKernels,
    method: Method,
    filter: &[f32],
    (channels, len, tiles): (usize, usize, Tiles),
    textures: bool,
) -> Result<BenchResult> {
    let arena = |m: &Mixer| {
        let slots = STEPS_PER_SUBMIT * m.dispatches_per_token();
        ParamArena::new(ctx, kernels.param_layout(), slots)
    };
    let mixer_of = |len| {
        bench_mixer(
            ctx,
            kernels,
            method,
            filter,
            (channels, len, tiles),
            textures,
        )
    };
    let warm = len.min(256);
    let (wm, _keep) = mixer_of(warm)?;
    run_mixer_steps(ctx, kernels, &wm, &mut arena(&wm), warm)?;
    drop(wm);
    let (mixer, _keep) = mixer_of(len)?;
    let mut arena = arena(&mixer);
    ctx.wait()?;
    let start = Instant::now();
    run_mixer_steps(ctx, kernels, &mixer, &mut arena, len)?;
    let seconds = start.elapsed().as_secs_f64();
    let mut r = result(method, "mixer", len, seconds, channels);
    r.dispatches_per_token = Some(arena.dispatch_count() as f64 / len as f64);
    r.submits_per_token = Some(len.div_ceil(STEPS_PER_SUBMIT) as f64 / len as f64);
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

/// Generates `len` tokens after a one-token prompt (in each of `batch` sequences).
fn time_generation(
    gm: &GpuModel,
    method: Method,
    len: usize,
    tiles: Tiles,
    batch: usize,
) -> Result<BenchResult> {
    let prompt = [7u32];
    let gen = |n: usize| -> Result<GenRun> {
        let slen = session_len(gm.config(), prompt.len(), n)?;
        let mut opts = SessionOptions::new(method, slen);
        opts.set_tiles(tiles);
        opts.batch = batch;
        let mut s = Session::new(gm, opts)?;
        gm.ctx().wait()?;
        let opts = GenerateOptions {
            max_tokens: n,
            ..Default::default()
        };
        let stats = if batch == 1 {
            s.generate(&prompt, &opts, |_| {})?
        } else {
            let prompts = vec![&prompt[..]; batch];
            let all = s.generate_batch(&prompts, &vec![opts; batch], |_, _| {})?;
            let mut stats = all[0].clone();
            stats.tokens = all.into_iter().flat_map(|s| s.tokens).collect();
            stats
        };
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
    r.batch = batch;
    r.tokens_per_s *= batch as f64;
    r.mixer_bytes = bytes;
    r.channel_groups = groups;
    r.dispatches_per_token = Some(dispatches);
    r.submits_per_token = Some(submits);
    Ok(r)
}

/// Generates `len` tokens one submit (and one wait) per token and times each.
fn token_latency(
    gm: &GpuModel,
    method: Method,
    len: usize,
    tiles: Tiles,
) -> Result<Option<Latency>> {
    let prompt = [7u32];
    let slen = session_len(gm.config(), prompt.len(), len)?;
    let mut opts = SessionOptions::new(method, slen);
    opts.set_tiles(tiles);
    opts.tokens_per_submit = 1;
    let mut s = Session::new(gm, opts)?;
    s.feed(&prompt)?;
    gm.ctx().wait()?;
    let mut gaps = Vec::with_capacity(len);
    let mut last = Instant::now();
    let opts = GenerateOptions {
        max_tokens: len,
        ..Default::default()
    };
    s.generate(&[], &opts, |_| {
        let now = Instant::now();
        gaps.push((now - last).as_secs_f64());
        last = now;
    })?;
    Ok(Latency::of(&gaps))
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
        batch: 1,
        gbps,
        mixer_gbps: None,
        copy_gbps_before: 0.0,
        mixer_bytes: 0,
        channel_groups: 1,
        dispatches_per_token: None,
        submits_per_token: None,
        latency: None,
        weights: "f32".into(),
        floor_multiple: None,
    }
}

/// Bytes the copy kernel reads (and writes) per run: large enough that no cache of the
/// device or of the CPU under lavapipe holds it.
pub const COPY_BYTES: u64 = 256 << 20;

/// Copy bandwidth of the device in GB/s (bytes read + bytes written per second) with a
/// plain copy kernel over [`COPY_BYTES`] (less where the device's buffers are smaller),
/// bound in pieces within the storage-binding limit, best of several runs.
pub fn copy_bandwidth(ctx: &GpuContext) -> Result<f64> {
    let align = ctx.limits.min_storage_buffer_offset_alignment.max(16) as u64;
    let piece = (ctx.limits.max_storage_buffer_binding_size.min(128 << 20) / align) * align;
    let bytes = (COPY_BYTES.min(ctx.limits.max_buffer_size) / piece).max(1) * piece;
    // Larger than one binding on purpose (bound piece by piece below), so not through
    // buffer_zeroed, which holds every buffer to the binding limit.
    let buffer = |label| {
        ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        })
    };
    let (src, dst) = (buffer("copy_src"), buffer("copy_dst"));
    ctx.take_errors()?;
    let source = Shader::Bench.source();
    let kernel = Kernel::new(ctx, &source, "copy", &[Access::Read, Access::ReadWrite])?;
    fn range(buf: &wgpu::Buffer, offset: u64, size: u64) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: buf,
            offset,
            size: std::num::NonZeroU64::new(size),
        })
    }
    let groups: Vec<wgpu::BindGroup> = (0..bytes / piece)
        .map(|i| {
            ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("copy"),
                layout: &kernel.storage_layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: range(&src, i * piece, piece),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: range(&dst, i * piece, piece),
                    },
                ],
            })
        })
        .collect();
    let n = (piece / 16) as u32;
    let mut arena = ParamArena::new(ctx, &kernel.param_layout, groups.len());
    // Bytes read and written.
    best_rate(ctx, &mut arena, 2 * bytes, |step| {
        for bg in &groups {
            step.dispatch(
                &kernel,
                bg,
                &BenchParams {
                    n,
                    ..Default::default()
                },
                n.div_ceil(256 * 16),
            )?;
        }
        Ok(())
    })
}

param_block! {
    /// The bandwidth kernels' parameter block (`Params` in `bench.wgsl`).
    pub(crate) struct BenchParams as "Params" {
        /// Elements (vec4s or texels) to read.
        n: u32,
        pad0: u32,
        pad1: u32,
        pad2: u32,
        pad3: [u32; 4],
        pad4: [u32; 4],
        pad5: [u32; 4],
    }
}

/// Best GB/s (`bytes` over the seconds of one submit-and-wait) of the work `record`
/// records, over 5 timed runs after one untimed run (which touches every page, or lets
/// wgpu clear a new texture).
fn best_rate(
    ctx: &GpuContext,
    arena: &mut ParamArena,
    bytes: u64,
    mut record: impl FnMut(&mut Step<'_>) -> Result<()>,
) -> Result<f64> {
    let mut best = 0f64;
    for run in 0..6 {
        let mut step = Step::new(ctx, arena);
        record(&mut step)?;
        let commands = step.finish();
        ctx.wait()?;
        let start = Instant::now();
        ctx.queue.submit([commands]);
        ctx.wait()?;
        if run > 0 {
            best = best.max(bytes as f64 / start.elapsed().as_secs_f64() / 1e9);
        }
    }
    Ok(best)
}

// bench.wgsl's texture_read splits texel indices for this width.
const _: () = assert!(crate::gpu::TEXTURE_WIDTH == 2048);

/// Read-only bandwidth (GB/s) from a texture of up to [`COPY_BYTES`] (2048 x 8192
/// rgba32float texels where the device allows, fewer rows otherwise): how fast the
/// products can stream weights kept in textures ([`WeightStorage`]). On llvmpipe this
/// outruns the copy kernel, whose storage-buffer loads and stores loop over the lanes.
pub fn texture_read_bandwidth(ctx: &GpuContext) -> Result<f64> {
    let width = crate::gpu::TEXTURE_WIDTH as u64;
    let rows = (COPY_BYTES / (16 * width)).min(ctx.limits.max_texture_dimension_2d as u64);
    let format = wgpu::TextureFormat::Rgba32Float;
    let usage = wgpu::TextureUsages::TEXTURE_BINDING;
    let texels = (width * rows) as u32;
    let texture = ctx.linear_texture_empty("texture_read", texels as usize, format, usage)?;
    let view = texture.create_view(&Default::default());
    const GROUPS: u32 = 256;
    let sums = ctx.buffer_zeroed("texture_read sums", GROUPS as u64 * 256 * 16)?;
    ctx.take_errors()?;
    let access = [Access::Texture, Access::ReadWrite];
    let kernel = Kernel::new(ctx, &Shader::Bench.source(), "texture_read", &access)?;
    let bg = kernel.bind_resources(
        ctx,
        vec![
            wgpu::BindingResource::TextureView(&view),
            sums.as_entire_binding(),
        ],
    );
    let mut arena = ParamArena::new(ctx, &kernel.param_layout, 1);
    best_rate(ctx, &mut arena, 16 * texels as u64, |step| {
        step.dispatch(
            &kernel,
            &bg,
            &BenchParams {
                n: texels,
                ..Default::default()
            },
            GROUPS,
        )
    })
}

/// One size of `flashconv bench-fft`.
#[derive(Clone, Debug, Serialize)]
pub struct FftBenchResult {
    /// Transform size N.
    pub n: usize,
    /// Transforms per batch.
    pub batch: usize,
    /// Dispatches per batched transform on the GPU.
    pub passes: usize,
    /// The radix of each pass, in order.
    pub radices: Vec<usize>,
    /// Seconds per batch on the GPU (best of the rounds, submit and wait included),
    /// recorded with [`crate::fft::FftPlan::encode_into`] from a staged plan: through a
    /// texture on CPU adapters (see `staged`).
    pub gpu_seconds: f64,
    /// GPU throughput, counting 5 N log2 N flops per transform.
    pub gpu_gflops: f64,
    /// Whether `gpu_seconds` staged every pass through a texture (CPU adapters).
    pub staged: bool,
    /// Seconds per batch with the plain passes in one compute pass
    /// ([`crate::fft::FftPlan::encode_bound`], what the mixer's tiles record), timed in
    /// the same rounds.
    pub in_pass_seconds: f64,
    /// Seconds per batch for single-threaded rustfft (f32) on this machine's CPU.
    pub cpu_seconds: f64,
    /// rustfft's throughput by the same count.
    pub cpu_gflops: f64,
    /// gpu_gflops / cpu_gflops.
    pub ratio: f64,
    /// cpu_seconds / in_pass_seconds.
    pub in_pass_ratio: f64,
}

/// A whole `flashconv bench-fft` run (`--json` writes this, `schema_version` 1).
#[derive(Clone, Debug, Serialize)]
pub struct FftBenchReport {
    /// Schema version of this JSON (fields are only ever added).
    pub schema_version: u32,
    /// The adapter measured (flattened into the report's JSON).
    #[serde(flatten)]
    pub device: DeviceInfo,
    /// The `--max-radix` cap on the passes' radix, if one was set.
    pub max_radix: Option<usize>,
    /// One entry per size.
    pub results: Vec<FftBenchResult>,
}

/// Batched complex FFT throughput on the GPU next to single-threaded rustfft on the
/// CPU, for each size in `sizes` with `elements / N` transforms per batch (at least 1),
/// the same random data for both; passes of radix at most 2^`max_radix_log2` where
/// given ([`crate::fft::FftPlanner::set_max_radix_log2`]), else the planner's choice.
/// `progress` receives each finished size.
pub fn fft_throughput(
    ctx: &GpuContext,
    sizes: &[usize],
    elements: usize,
    max_radix_log2: Option<u32>,
    mut progress: impl FnMut(&FftBenchResult),
) -> Result<FftBenchReport> {
    let mut planner = crate::fft::FftPlanner::new(ctx)?;
    if let Some(log2) = max_radix_log2 {
        planner.set_max_radix_log2(log2);
    }
    let mut results = Vec::with_capacity(sizes.len());
    for &n in sizes {
        let plan = planner.plan_staged(n)?;
        let batch = (elements / n).max(1);
        let input = random_complex(n * batch, n as u64);
        let t = time_fft(ctx, &planner, &plan, &input, batch)?;
        let flops = 5.0 * n as f64 * (n as f64).log2() * batch as f64;
        let r = FftBenchResult {
            n,
            batch,
            passes: plan.passes(),
            radices: plan.radices(),
            gpu_seconds: t.staged,
            gpu_gflops: flops / t.staged / 1e9,
            staged: t.was_staged,
            in_pass_seconds: t.in_pass,
            cpu_seconds: t.cpu,
            cpu_gflops: flops / t.cpu / 1e9,
            ratio: t.cpu / t.staged,
            in_pass_ratio: t.cpu / t.in_pass,
        };
        progress(&r);
        results.push(r);
    }
    Ok(FftBenchReport {
        schema_version: 1,
        device: DeviceInfo::of(ctx),
        max_radix: max_radix_log2.map(|l| 1 << l),
        results,
    })
}

/// Uniform values in [-1, 1) from a fixed generator (SplitMix64).
fn random_complex(count: usize, seed: u64) -> Vec<[f32; 2]> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    };
    (0..count).map(|_| [next(), next()]).collect()
}

/// Rounds of timing: the first warms up; the best of the rest counts (lavapipe shares
/// the CPU with everything else on the machine).
const FFT_ROUNDS: usize = 6;

/// Best seconds per batch of one size: the staged plan through `encode_into`, its plain
/// passes in one compute pass, and single-threaded rustfft, timed in turn in every round
/// so that the machine's slow and fast phases fall on all three alike.
struct FftTimes {
    staged: f64,
    was_staged: bool,
    in_pass: f64,
    cpu: f64,
}

fn time_fft(
    ctx: &GpuContext,
    planner: &crate::fft::FftPlanner,
    plan: &crate::fft::FftPlan,
    input: &[[f32; 2]],
    batch: usize,
) -> Result<FftTimes> {
    use crate::fft::Direction;
    const REPS: usize = 2;
    let data = ctx.buffer_init("fft bench data", input)?;
    let scratch = ctx.buffer_zeroed("fft bench scratch", data.size())?;
    let binding = plan.bind(ctx, &data, &scratch)?;
    let mut arena = ParamArena::new(ctx, planner.param_layout(), REPS * plan.passes());
    let batch = u32::try_from(batch)
        .map_err(|_| crate::Error::input(format!("FFT batch {batch} is too large")))?;
    let mut cpu = RustFft::new(input, plan.n());
    let mut t = FftTimes {
        staged: f64::MAX,
        was_staged: binding.is_staged(),
        in_pass: f64::MAX,
        cpu: f64::MAX,
    };
    for round in 0..FFT_ROUNDS {
        for staged in [true, false] {
            let mut step = Step::new(ctx, &mut arena);
            for _ in 0..REPS {
                if staged {
                    plan.encode_into(&mut step, &binding, batch, Direction::Forward)?;
                } else {
                    plan.encode_bound(&mut step, &binding, batch, Direction::Forward)?;
                }
            }
            let commands = step.finish();
            ctx.wait()?;
            let start = Instant::now();
            ctx.queue.submit([commands]);
            ctx.wait()?;
            let s = start.elapsed().as_secs_f64() / REPS as f64;
            let best = if staged {
                &mut t.staged
            } else {
                &mut t.in_pass
            };
            if round > 0 {
                *best = best.min(s);
            }
        }
        let s = cpu.time();
        if round > 0 {
            t.cpu = t.cpu.min(s);
        }
    }
    Ok(t)
}

/// Single-threaded rustfft (f32, forward, in place) over a copy of the bench's input.
struct RustFft {
    fft: std::sync::Arc<dyn rustfft::Fft<f32>>,
    buf: Vec<rustfft::num_complex::Complex<f32>>,
    scratch: Vec<rustfft::num_complex::Complex<f32>>,
}

impl RustFft {
    fn new(input: &[[f32; 2]], n: usize) -> Self {
        use rustfft::num_complex::Complex;
        let fft = rustfft::FftPlanner::<f32>::new().plan_fft_forward(n);
        let buf = input.iter().map(|v| Complex::new(v[0], v[1])).collect();
        let scratch = vec![Complex::default(); fft.get_inplace_scratch_len()];
        RustFft { fft, buf, scratch }
    }

    /// Seconds for one batch.
    fn time(&mut self) -> f64 {
        let start = Instant::now();
        self.fft
            .process_with_scratch(&mut self.buf, &mut self.scratch);
        start.elapsed().as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The v history of the mixer-only chain after `len` steps of `method`.
    fn chain_history(
        ctx: &GpuContext,
        kernels: &MixerKernels,
        method: Method,
        filter: &[f32],
        (channels, len, textures): (usize, usize, bool),
    ) -> Vec<f32> {
        let shape = (channels, len, Tiles::new(16));
        let (mixer, _keep) =
            bench_mixer(ctx, kernels, method, filter, shape, textures).expect("mixer");
        let slots = STEPS_PER_SUBMIT * mixer.dispatches_per_token();
        let mut arena = ParamArena::new(ctx, kernels.param_layout(), slots);
        run_mixer_steps(ctx, kernels, &mixer, &mut arena, len).expect("steps");
        mixer.read_history().expect("history")
    }

    /// What the mixer-only benchmark times is the same computation for every method:
    /// flash (gates with the lags 1..15, FFT and direct tiles) and eager give lazy's v
    /// chain (v_t = tanh(z_{t-1}) + noise) within 1e-4 of its largest value, with
    /// channels in quads (four-channel gates) and not (six: one channel per thread).
    #[test]
    fn mixer_only_methods_agree() {
        let ctx = GpuContext::new().expect("GPU adapter");
        let kernels = MixerKernels::new(&ctx).expect("kernels");
        for (channels, len) in [(8, 300), (6, 130)] {
            // A decay plus a long oscillating tail, so that every tile adds something.
            let filter: Vec<f32> = (0..channels * len)
                .map(|i| {
                    let (c, t) = ((i / len) as f32, (i % len) as f32);
                    0.3 * (-t / (2.0 + c)).exp() + 0.01 * (0.05 * (c + 1.0) * t + c).sin()
                })
                .collect();
            let shape = (channels, len, false);
            let lazy = chain_history(&ctx, &kernels, Method::Lazy, &filter, shape);
            let scale = lazy.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!(scale > 0.1, "the chain is not trivial (max |v| {scale})");
            let textured =
                chain_history(&ctx, &kernels, Method::Lazy, &filter, (channels, len, true));
            for (method, got) in [
                (
                    Method::Flash,
                    chain_history(&ctx, &kernels, Method::Flash, &filter, shape),
                ),
                (
                    Method::Eager,
                    chain_history(&ctx, &kernels, Method::Eager, &filter, shape),
                ),
                (Method::Lazy, textured),
            ] {
                let err = got
                    .iter()
                    .zip(&lazy)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                assert!(
                    err <= 1e-4 * scale,
                    "{method} vs lazy, {channels} channels, L = {len}: {err} (max |v| {scale})"
                );
            }
        }
    }

    #[test]
    fn latency_percentiles() {
        assert!(Latency::of(&[]).is_none());
        // 1..=100 ms, the worst at index 37.
        let mut gaps: Vec<f64> = (1..=100).map(|i| i as f64 * 1e-3).collect();
        gaps.swap(37, 99);
        let l = Latency::of(&gaps).expect("latency");
        assert_eq!((l.max, l.max_at), (0.1, 37));
        assert!((l.p50 - 0.051).abs() < 1e-12, "p50 {}", l.p50);
        assert!((l.p99 - 0.099).abs() < 1e-12, "p99 {}", l.p99);
        let one = Latency::of(&[0.5]).expect("one");
        assert_eq!((one.p50, one.p99, one.max, one.max_at), (0.5, 0.5, 0.5, 0));
    }
}
