//! `flashconv bench-fft`: the GPU FFT's batched throughput next to single-threaded
//! rustfft on the same data.

use super::DeviceInfo;
use crate::error::Result;
use crate::gpu::{GpuContext, ParamArena, Step};
use crate::Instant;
use serde::Serialize;

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
    /// recorded from a staged plan: on CPU adapters each pass reads its input through a
    /// texture (see `staged`).
    pub gpu_seconds: f64,
    /// GPU throughput, counting 5 N log2 N flops per transform.
    pub gpu_gflops: f64,
    /// Whether `gpu_seconds` staged every pass through a texture (CPU adapters).
    pub staged: bool,
    /// Seconds per batch with the plain passes in one compute pass
    /// (what the mixer's tiles record), timed in
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
/// given, else the planner's choice.
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
