//! GPU FFT against rustfft (f64 reference from the same f32 inputs).

use flashconv::fft::{fft_blocking, Direction, FftPlanner};
use flashconv::gpu::{Bind, Step};
use flashconv::GpuContext;
use rustfft::num_complex::Complex;
use std::time::Instant;

/// splitmix64: deterministic inputs without the rand crate.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    fn uniform(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

fn ctx() -> GpuContext {
    GpuContext::new().expect("GPU adapter (install mesa-vulkan-drivers)")
}

/// Worst per-transform relative L2 error of `got` against an f64 rustfft of `input`.
fn worst_error(input: &[[f32; 2]], got: &[[f32; 2]], n: usize, dir: Direction) -> f64 {
    let mut planner = rustfft::FftPlanner::<f64>::new();
    let fft = match dir {
        Direction::Forward => planner.plan_fft_forward(n),
        Direction::Inverse => planner.plan_fft_inverse(n),
    };
    let mut worst = 0.0f64;
    for (x, y) in input.chunks_exact(n).zip(got.chunks_exact(n)) {
        let mut r: Vec<Complex<f64>> = x
            .iter()
            .map(|v| Complex::new(v[0] as f64, v[1] as f64))
            .collect();
        fft.process(&mut r);
        let (mut num, mut den) = (0.0f64, 0.0f64);
        for (a, b) in r.iter().zip(y) {
            let d = Complex::new(b[0] as f64, b[1] as f64) - a;
            num += d.norm_sqr();
            den += a.norm_sqr();
        }
        worst = worst.max((num / den).sqrt());
    }
    worst
}

#[test]
fn matches_rustfft_all_sizes() {
    let ctx = ctx();
    let mut planner = FftPlanner::new(&ctx).expect("compile FFT kernels");
    let mut rng = Rng(0x5EED);
    let start = Instant::now();
    let mut failures = Vec::new();
    for log2n in 1..=18u32 {
        let n = 1usize << log2n;
        // small sizes exercise batching (and partial workgroups: the batch is odd)
        let batch = ((1usize << 16) / n).max(1) + usize::from(n <= 1 << 15);
        let input: Vec<[f32; 2]> = (0..n * batch)
            .map(|_| [rng.uniform(), rng.uniform()])
            .collect();
        for dir in [Direction::Forward, Direction::Inverse] {
            let got = fft_blocking(&ctx, &mut planner, &input, n, dir).expect("GPU FFT");
            assert_eq!(got.len(), input.len());
            let err = worst_error(&input, &got, n, dir);
            eprintln!("n=2^{log2n:<2} batch={batch:<5} {dir:?}: worst rel L2 error {err:.3e}");
            if err.is_nan() || err > 2e-6 {
                failures.push(format!("n={n} {dir:?}: {err:e}"));
            }
        }
    }
    eprintln!("all sizes in {:.2?}", start.elapsed());
    assert!(failures.is_empty(), "errors above 2e-6: {failures:?}");
}

/// Plans with the pass radix capped below the default (the cap GPUs other than CPU
/// adapters get is 16): every radix from 2 to 64 and both pass directions, in place and
/// not, against rustfft; and no plan has more than four passes (the mixer sizes its
/// parameter arena for that).
#[test]
fn matches_rustfft_every_radix_cap() {
    let ctx = ctx();
    let mut rng = Rng(0xCA9);
    let mut failures = Vec::new();
    for cap in [2u32, 3, 4, 5] {
        let mut planner = FftPlanner::new(&ctx).expect("compile FFT kernels");
        planner.set_max_radix_log2(cap);
        for log2n in (1..=16u32).chain([18]) {
            let n = 1usize << log2n;
            let plan = planner.plan(n).expect("plan");
            assert!(
                plan.passes() <= 4,
                "cap {cap} n={n}: {} passes",
                plan.passes()
            );
            let batch = ((1usize << 12) / n).max(1) + usize::from(n <= 1 << 11);
            let input: Vec<[f32; 2]> = (0..n * batch)
                .map(|_| [rng.uniform(), rng.uniform()])
                .collect();
            for dir in [Direction::Forward, Direction::Inverse] {
                let got = fft_blocking(&ctx, &mut planner, &input, n, dir).expect("GPU FFT");
                let err = worst_error(&input, &got, n, dir);
                if err.is_nan() || err > 2e-6 {
                    failures.push(format!("cap 2^{cap} n={n} {dir:?}: {err:e}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "errors above 2e-6: {failures:?}");
    let mut planner = FftPlanner::new(&ctx).expect("compile FFT kernels");
    for log2n in 1..=22u32 {
        let passes = planner.plan(1 << log2n).expect("plan").passes();
        assert!((1..=4).contains(&passes), "n=2^{log2n}: {passes} passes");
    }
}

/// The largest sizes, above the required range, up to the planner's limit of 2^22.
#[test]
fn matches_rustfft_large_sizes() {
    let ctx = ctx();
    let mut planner = FftPlanner::new(&ctx).expect("compile FFT kernels");
    let mut rng = Rng(0xB16);
    for log2n in 19..=22u32 {
        let n = 1usize << log2n;
        let input: Vec<[f32; 2]> = (0..n).map(|_| [rng.uniform(), rng.uniform()]).collect();
        for dir in [Direction::Forward, Direction::Inverse] {
            let got = fft_blocking(&ctx, &mut planner, &input, n, dir).expect("GPU FFT");
            let err = worst_error(&input, &got, n, dir);
            eprintln!("n=2^{log2n} batch=1 {dir:?}: rel L2 error {err:.3e}");
            assert!(err <= 2e-6, "n={n} {dir:?}: {err:e}");
        }
    }
}

/// A shader that includes the workgroup FFT the way other kernels do: declares
/// `fft_twiddles`, writes `fft_sh`, calls `fft_wg` / `fft_wg_batch`, reads `fft_sh`.
const INCLUDER_WGSL: &str = r#"
struct P { n: u32, log2n: u32, inverse: u32, log2count: u32, groups: u32, pad0: u32, pad1: u32, pad2: u32, pad3: vec4<u32>, pad4: vec4<u32> }
@group(0) @binding(0) var<uniform> p: P;
@group(1) @binding(0) var<storage, read> fft_twiddles: array<vec2<f32>>;
@group(1) @binding(1) var<storage, read_write> data: array<vec2<f32>>;

@compute @workgroup_size(FFT_WG)
fn run_batch(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let wg = wid.x + wid.y * nwg.x;
    if (wg >= p.groups) { return; }
    let total = p.n << p.log2count;
    for (var e = lid; e < total; e += FFT_WG) { fft_sh[e] = data[wg * total + e]; }
    fft_wg_batch(lid, p.log2n, p.log2count, p.inverse != 0u);
    for (var e = lid; e < total; e += FFT_WG) { data[wg * total + e] = fft_sh[e]; }
}

@compute @workgroup_size(FFT_WG)
fn run_one(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let wg = wid.x + wid.y * nwg.x;
    if (wg >= p.groups) { return; }
    for (var e = lid; e < p.n; e += FFT_WG) { fft_sh[e] = data[wg * p.n + e]; }
    fft_wg(lid, p.n, p.log2n, p.inverse != 0u);
    for (var e = lid; e < p.n; e += FFT_WG) { data[wg * p.n + e] = fft_sh[e]; }
}

@compute @workgroup_size(FFT_WG)
fn run_2048(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let wg = wid.x + wid.y * nwg.x;
    if (wg >= p.groups) { return; }
    for (var e = lid; e < 2048u; e += FFT_WG) { fft_sh[e] = data[wg * 2048u + e]; }
    fft_wg(lid, 2048u, 11u, p.inverse != 0u);
    for (var e = lid; e < 2048u; e += FFT_WG) { data[wg * 2048u + e] = fft_sh[e]; }
}
"#;

/// The library entry points `fft_wg` and `fft_wg_batch`, as an including shader uses
/// them (the standalone kernels of `FftPlan` do not use them).
#[test]
fn workgroup_library_matches_rustfft() {
    use flashconv::fft::{twiddle_table, FFT_LIB_WGSL, MAX_WG_FFT};
    use flashconv::gpu::{Access, Kernel, ParamArena, Step};
    let ctx = ctx();
    let src = format!("{FFT_LIB_WGSL}\n{INCLUDER_WGSL}");
    let access = [Access::Read, Access::ReadWrite];
    let tw = ctx
        .buffer_init("twiddles", &twiddle_table(MAX_WG_FFT))
        .unwrap();
    let kernels: Vec<(&str, Kernel)> = ["run_one", "run_batch", "run_2048"]
        .into_iter()
        .map(|e| {
            (
                e,
                Kernel::new(&ctx, &src, e, &access).expect("compile includer"),
            )
        })
        .collect();
    let mut rng = Rng(99);
    let mut run = |entry: &str, n: usize, log2count: u32, batch: usize, dir: Direction| {
        let kernel = &kernels.iter().find(|k| k.0 == entry).unwrap().1;
        let input: Vec<[f32; 2]> = (0..n * batch)
            .map(|_| [rng.uniform(), rng.uniform()])
            .collect();
        let buf = ctx.buffer_init("data", &input).unwrap();
        let bg = kernel.bind(&ctx, &[&tw, &buf]);
        let mut arena = ParamArena::new(&ctx, &kernel.param_layout, 1);
        let groups = (batch >> log2count) as u32;
        let words = [
            n as u32,
            n.trailing_zeros(),
            (dir == Direction::Inverse) as u32,
            log2count,
            groups,
        ];
        let mut step = Step::new(&ctx, &mut arena);
        step.dispatch(kernel, &bg, &words, groups).unwrap();
        step.submit();
        let flat = ctx.read_f32(&buf, 0, (input.len() * 2) as u64).unwrap();
        let got: Vec<[f32; 2]> = flat.chunks_exact(2).map(|c| [c[0], c[1]]).collect();
        let err = worst_error(&input, &got, n, dir);
        eprintln!("{entry} n={n} count=2^{log2count} {dir:?}: worst rel L2 error {err:.3e}");
        assert!(err <= 2e-6, "{entry} n={n} {dir:?}: {err:e}");
    };
    for dir in [Direction::Forward, Direction::Inverse] {
        for log2n in 1..=11u32 {
            let n = 1usize << log2n;
            run("run_one", n, 0, 3, dir);
            // packed: as many transforms per workgroup as fit, two workgroups
            let log2count = 11 - log2n;
            run("run_batch", n, log2count, 2usize << log2count, dir);
        }
        run("run_2048", 2048, 0, 2, dir);
    }
}

/// Runs `batch` transforms of `input` through `plan` with `encode_into` (staged where
/// the plan and binding allow) or with `encode_bound` in one compute pass; returns the
/// output and whether the binding was staged.
fn run_plan(
    ctx: &GpuContext,
    planner: &FftPlanner,
    plan: &flashconv::fft::FftPlan,
    input: &[[f32; 2]],
    dir: Direction,
    into: bool,
) -> (Vec<f32>, bool) {
    let batch = (input.len() / plan.n()) as u32;
    let data = ctx.buffer_init("data", input).unwrap();
    let scratch = ctx.buffer_zeroed("scratch", data.size()).unwrap();
    let binding = plan.bind(ctx, &data, &scratch).unwrap();
    let mut arena = flashconv::gpu::ParamArena::new(ctx, planner.param_layout(), 4);
    let mut step = Step::new(ctx, &mut arena);
    if into {
        plan.encode_into(&mut step, &binding, batch, dir).unwrap();
    } else {
        plan.encode_bound(&mut step, &binding, batch, dir).unwrap();
    }
    step.submit();
    let out = ctx.read_f32(&data, 0, input.len() as u64 * 2).unwrap();
    (out, binding.is_staged())
}

/// Staged plans (on CPU adapters: every pass reads a texture the data was copied into)
/// give bit-identical results to the plain passes, for every pass radix, both
/// directions, batches that fill whole texture rows (staged) and batches that do not
/// (they fall back to the plain passes). On other adapters staged plans are plain ones
/// and the comparison still holds.
#[test]
fn staged_plans_match_plain_passes_bit_for_bit() {
    let ctx = ctx();
    let mut rng = Rng(0x57A6);
    for cap in [2u32, 4, 5, 6] {
        let mut planner = FftPlanner::new(&ctx).expect("compile FFT kernels");
        planner.set_max_radix_log2(cap);
        let texture = planner.stages_through_texture();
        for log2n in [1u32, 3, 4, 7, 10, 12, 13, 16, 18] {
            let n = 1usize << log2n;
            let plain = planner.plan(n).expect("plan");
            let staged = planner.plan_staged(n).expect("staged plan");
            let whole = (1usize << 14) / n + 4096 / n.min(4096);
            for batch in [whole.max(1), (whole + 1).max(2)] {
                let input: Vec<[f32; 2]> = (0..n * batch)
                    .map(|_| [rng.uniform(), rng.uniform()])
                    .collect();
                for dir in [Direction::Forward, Direction::Inverse] {
                    let (want, was) = run_plan(&ctx, &planner, &plain, &input, dir, false);
                    assert!(!was, "plain plans bind no staging texture");
                    let (got, is) = run_plan(&ctx, &planner, &staged, &input, dir, true);
                    let rows_full = (n * batch).is_multiple_of(4096);
                    assert_eq!(is, texture && n >= 16, "n={n}: staging texture bound");
                    let what = format!(
                        "cap 2^{cap} n={n} batch={batch} {dir:?} staged={}",
                        is && rows_full
                    );
                    assert!(want.iter().all(|v| v.is_finite()), "{what}");
                    let same = want
                        .iter()
                        .zip(&got)
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "{what}: outputs differ");
                }
            }
        }
    }
}

#[test]
fn round_trip_is_n_times_identity() {
    let ctx = ctx();
    let mut planner = FftPlanner::new(&ctx).expect("compile FFT kernels");
    let mut rng = Rng(7);
    for n in [8usize, 2048, 1 << 13] {
        let input: Vec<[f32; 2]> = (0..n * 3).map(|_| [rng.uniform(), rng.uniform()]).collect();
        let f = fft_blocking(&ctx, &mut planner, &input, n, Direction::Forward).unwrap();
        let b = fft_blocking(&ctx, &mut planner, &f, n, Direction::Inverse).unwrap();
        let scale = 1.0 / n as f32;
        let err = input
            .iter()
            .zip(&b)
            .map(|(x, y)| (x[0] - y[0] * scale).abs().max((x[1] - y[1] * scale).abs()))
            .fold(0.0f32, f32::max);
        assert!(err < 1e-5, "n={n}: round-trip error {err}");
    }
}

#[test]
fn invalid_sizes_are_errors() {
    let ctx = ctx();
    let mut planner = FftPlanner::new(&ctx).expect("compile FFT kernels");
    for n in [0usize, 1, 3, 12, 1 << 23] {
        let err = planner.plan(n).expect_err("invalid size must be rejected");
        assert!(
            matches!(err, flashconv::Error::Input(ref m) if m.contains(&n.to_string())),
            "n={n}: {err}"
        );
        let data = vec![[0.0f32; 2]; 24];
        assert!(fft_blocking(&ctx, &mut planner, &data, n, Direction::Forward).is_err());
    }
    // multi-pass plans need a separate scratch buffer
    let plan = planner.plan(1 << 12).unwrap();
    let buf = ctx.buffer_zeroed("data", 8 << 12).unwrap();
    let mut arena = flashconv::gpu::ParamArena::new(&ctx, planner.param_layout(), 4);
    {
        let mut step = Step::new(&ctx, &mut arena);
        let small = ctx.buffer_zeroed("small", 16).unwrap();
        for scratch in [&buf, &small] {
            let r = plan
                .bind(&ctx, &buf, scratch)
                .and_then(|b| plan.encode_bound(&mut step, &b, 1, Direction::Forward));
            assert!(matches!(r, Err(flashconv::Error::Input(_))), "{r:?}");
        }
        // data too small for the batch
        let r = plan
            .bind(&ctx, &buf, &buf)
            .and_then(|b| plan.encode_bound(&mut step, &b, 2, Direction::Forward));
        assert!(r.is_err());
    }
    // a length that is not a multiple of n
    let data = vec![[0.0f32; 2]; 12];
    assert!(fft_blocking(&ctx, &mut planner, &data, 8, Direction::Forward).is_err());
    assert!(fft_blocking(&ctx, &mut planner, &[], 8, Direction::Forward).is_err());
}
