//! Benchmarks behind `flashconv bench`: end-to-end generation and the mixer alone, per
//! method and length, on random models, plus the device's copy bandwidth measured in the
//! same run. Timings exclude pipeline compilation and uploads, and follow a warm-up.

use crate::error::Result;
use crate::gpu::GpuContext;
use crate::mixer::{BenchKernels, Chain, Method, Tiles};
use crate::session::{GpuModel, WeightFormat, WeightStorage};
use crate::{Config, Model};
use serde::Serialize;

mod bandwidth;
mod end_to_end;
mod fft;
mod mixer_only;

#[cfg(test)]
pub(crate) use bandwidth::BenchParams;
pub use bandwidth::{copy_bandwidth, texture_read_bandwidth, COPY_BYTES};
use end_to_end::{time_generation, token_latency};
pub use fft::{fft_throughput, FftBenchReport, FftBenchResult};
#[cfg(test)]
use mixer_only::run_mixer_steps;

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
    /// ([`SessionOptions::batch`](crate::SessionOptions::batch); flash and none only). Default 1.
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
    // The mixer-only runs keep lazy's v history and filter taps as a session would.
    let textures = spec.storage.prefers_textures(ctx);
    let mut storage = if textures {
        WeightStorage::Texture
    } else {
        WeightStorage::Buffer
    };
    let mut run = Run {
        ctx,
        spec,
        copy_gbps: 0.0,
        results: Vec::new(),
        progress: &mut progress,
    };
    if spec.mixer_only || spec.with_mixer {
        run.mixer_only(&model, textures)?;
    }
    if !spec.mixer_only {
        storage = run.end_to_end(model)?;
    }
    let (copy_gbps, mut results) = (run.copy_gbps, run.results);
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

/// A benchmark in progress: its results so far and the best copy bandwidth seen.
struct Run<'a, F: FnMut(&BenchResult)> {
    ctx: &'a GpuContext,
    spec: &'a BenchSpec,
    copy_gbps: f64,
    results: Vec<BenchResult>,
    progress: &'a mut F,
}

impl<F: FnMut(&BenchResult)> Run<'_, F> {
    /// Records `r`, measured after a copy of `copy` GB/s.
    fn push(&mut self, mut r: BenchResult, copy: f64) {
        r.copy_gbps_before = copy;
        (self.progress)(&r);
        self.results.push(r);
    }

    /// The copy bandwidth just before a measurement (and the best of the run).
    fn copy(&mut self) -> Result<f64> {
        let copy = copy_bandwidth(self.ctx)?;
        self.copy_gbps = self.copy_gbps.max(copy);
        Ok(copy)
    }

    /// The mixer alone, per length and method, with `model`'s filters stacked over
    /// M·D channels (lazy's history and taps in textures where `textures`).
    fn mixer_only(&mut self, model: &Model, textures: bool) -> Result<()> {
        let (ctx, spec) = (self.ctx, self.spec);
        let kernels = BenchKernels::new(ctx)?;
        for &len in &spec.lens {
            let filter = stacked_filters(model, len)?;
            for &method in &spec.methods {
                let chain = Chain {
                    method,
                    filter: &filter,
                    channels: spec.layers * spec.dim,
                    len,
                    tiles: spec.tiles(),
                    textures,
                };
                let copy = self.copy()?;
                let r = time_mixer(ctx, &kernels, chain)?;
                self.push(r, copy);
            }
        }
        Ok(())
    }

    /// End to end, per length, method and weight format; returns where the weights
    /// were stored.
    fn end_to_end(&mut self, model: Model) -> Result<WeightStorage> {
        let (ctx, spec) = (self.ctx, self.spec);
        let upload = |m: Model, f| GpuModel::with_storage(ctx, m, f, spec.storage);
        let mut models = vec![upload(model.clone(), WeightFormat::F32)?];
        if spec.f16 {
            models.push(upload(model, WeightFormat::F16)?);
        }
        for &len in &spec.lens {
            for &method in &spec.methods {
                for gm in &models {
                    let copy = self.copy()?;
                    let mut r = time_generation(gm, method, len, spec.tiles(), spec.batch)?;
                    r.weights = gm.format().name().into();
                    r.floor_multiple = Some(gm.weight_bytes_per_token() as f64);
                    if spec.latency {
                        r.latency = token_latency(gm, method, len, spec.tiles())?;
                    }
                    self.push(r, copy);
                }
            }
        }
        Ok(models[0].storage())
    }
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
use mixer_only::time_mixer;

/// WGSL source of the bandwidth kernels (copy, texture read).
pub const BENCH_WGSL: &str = include_str!("../../shaders/bench.wgsl");

/// Positions recorded per submit by the mixer-only benchmark.
const STEPS_PER_SUBMIT: usize = 64;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::ParamArena;
    use crate::mixer::bench_mixer;

    /// The v history of the mixer-only chain after `len` steps of `method`.
    fn chain_history(
        ctx: &GpuContext,
        kernels: &BenchKernels,
        method: Method,
        filter: &[f32],
        (channels, len, textures): (usize, usize, bool),
    ) -> Vec<f32> {
        let chain = Chain {
            method,
            filter,
            channels,
            len,
            tiles: Tiles::new(16),
            textures,
        };
        let (mixer, _keep) = bench_mixer(ctx, kernels, chain).expect("mixer");
        let slots = STEPS_PER_SUBMIT * mixer.dispatches_per_token();
        let mut arena = ParamArena::new(ctx, kernels.param_layout(), slots);
        run_mixer_steps(ctx, kernels, &mixer, &mut arena, len, &Default::default()).expect("steps");
        mixer.read_history().expect("history")
    }

    /// What the mixer-only benchmark times is the same computation for every method:
    /// flash (gates with the lags 1..15, FFT and direct tiles) and eager give lazy's v
    /// chain (v_t = tanh(z_{t-1}) + noise) within 1e-4 of its largest value, with
    /// channels in quads (four-channel gates) and not (six: one channel per thread).
    #[test]
    fn mixer_only_methods_agree() {
        let ctx = GpuContext::new().expect("GPU adapter");
        let kernels = BenchKernels::new(&ctx).expect("kernels");
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
