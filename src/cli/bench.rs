//! `flashconv bench` (end to end and mixer only, with a table, JSON and a plot) and
//! `flashconv bench-fft` (the GPU FFT next to rustfft).

use super::super::plot;
use super::common::{device, fft_min_tile, progress_bar, write_json, TileArgs};
use clap::Args;
use flashconv::bench::{self, BenchSpec};
use flashconv::session::WeightStorage;
use flashconv::{Error, Method, Result};
use std::path::PathBuf;

#[derive(Args)]
pub(crate) struct BenchArgs {
    /// Layers M.
    #[arg(long, default_value_t = 4)]
    pub(crate) layers: usize,
    /// Width D.
    #[arg(long, default_value_t = 256)]
    pub(crate) dim: usize,
    /// Sequence lengths, comma-separated (each at least 2).
    #[arg(long, value_delimiter = ',', default_value = "1024", value_parser = parse_len)]
    pub(crate) len: Vec<usize>,
    /// Methods, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "flash,lazy,eager,none"
    )]
    pub(crate) method: Vec<Method>,
    /// Time the long-convolution schedule alone.
    #[arg(long)]
    pub(crate) mixer_only: bool,
    /// Write the report as JSON here.
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
    /// Seed of the random model.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Smallest flash tile side done with FFTs (smaller tiles: direct product).
    /// Default: tuned for this device on first use and cached (see `info`).
    #[arg(long)]
    pub(crate) fft_min_tile: Option<usize>,
    #[command(flatten)]
    pub(crate) spread: TileArgs,
    /// End to end: also generate one token per submit and report per-token latency
    /// percentiles (p50 / p99 / max; a second run per method).
    #[arg(long)]
    pub(crate) latency: bool,
    /// End to end: run every method with f16 weights too (needs SHADER_F16).
    #[arg(long)]
    pub(crate) f16: bool,
    /// Where the matrices and lazy's history and taps live: auto, buffer or texture (see
    /// `generate --help`).
    #[arg(long, value_enum, default_value_t = WeightStorage::Auto)]
    pub(crate) weight_storage: WeightStorage,
    /// Time the mixer alone as well as end to end (both in one report).
    #[arg(long, conflicts_with = "mixer_only")]
    pub(crate) with_mixer: bool,
    /// End to end: generate this many sequences side by side in one session (flash and
    /// none; the projections become matrix products over them); tokens/s counts every
    /// sequence's tokens.
    #[arg(long, default_value_t = 1, conflicts_with = "mixer_only")]
    pub(crate) batch: usize,
    /// Draw tokens/s (end to end) and mixer seconds against L, per method, into this PNG.
    #[arg(long, value_name = "OUT.png")]
    pub(crate) plot: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct BenchFftArgs {
    /// Smallest size, as log2 N.
    #[arg(long, default_value_t = 10)]
    pub(crate) min_log2: u32,
    /// Largest size, as log2 N.
    #[arg(long, default_value_t = 18)]
    pub(crate) max_log2: u32,
    /// Complex elements per batch (batch = elements / N, at least 1): 2^22 gives
    /// batch 64 at N = 2^16.
    #[arg(long, default_value_t = 1 << 22)]
    pub(crate) elements: usize,
    /// Largest radix of a pass (4, 8, 16, 32 or 64; sizes that would need more than
    /// four passes get larger ones), to compare fewer, larger passes with more, smaller
    /// ones [default: the planner's, 16; 64 up to 2^11 on CPU adapters].
    #[arg(long)]
    pub(crate) max_radix: Option<u32>,
    /// Write the report as JSON here.
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
}

/// One `--len` value: a length of at least 2.
fn parse_len(s: &str) -> std::result::Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(l) if l >= 2 => Ok(l),
        Ok(_) => Err("lengths must be at least 2".to_string()),
        Err(_) => Err(format!("'{s}' is not a length")),
    }
}

pub(crate) fn run_bench(a: BenchArgs) -> Result<()> {
    let spec = BenchSpec {
        layers: a.layers,
        dim: a.dim,
        lens: a.len.clone(),
        methods: a.method.clone(),
        mixer_only: a.mixer_only,
        seed: a.seed,
        fft_min_tile: 0,
        spread: a.spread.spread(),
        spectra_budget: a.spread.spectra_budget(),
        latency: a.latency,
        f16: a.f16,
        with_mixer: a.with_mixer,
        batch: a.batch,
        storage: a.weight_storage,
    };
    let ctx = device()?;
    let spec = BenchSpec {
        // Tuned (or given) once for every flash run.
        fft_min_tile: fft_min_tile(&ctx, a.fft_min_tile, Method::Flash)?,
        ..spec
    };
    eprintln!("flash tiles from U = {} by FFT", spec.fft_min_tile);
    eprintln!(
        "bench on {}: M={} D={} {}",
        ctx.describe(),
        a.layers,
        a.dim,
        if a.mixer_only {
            "mixer only"
        } else {
            "end to end"
        }
    );
    let per_len = spec.methods.len() * if spec.f16 { 2 } else { 1 };
    let runs = spec.lens.len() as u64
        * match (spec.mixer_only, spec.with_mixer) {
            (true, _) => spec.methods.len(),
            (false, true) => spec.methods.len() + per_len,
            (false, false) => per_len,
        } as u64;
    let bar = progress_bar(
        runs,
        "{elapsed_precise} [{bar:30}] {pos}/{len} measurements (current one running)",
    );
    let report = bench::run(&ctx, &spec, |r| {
        bar.inc(1);
        bar.suspend(|| print_result(r));
    })?;
    bar.finish_and_clear();
    print_report(&spec, &report, a.json.as_deref())?;
    if let Some(path) = &a.plot {
        plot::draw(&report, path)?;
        eprintln!("plot written to {}", path.display());
    }
    Ok(())
}

/// A result's method, with "(f16)" for f16 weights and "xB" for B sequences.
fn label(r: &bench::BenchResult) -> String {
    let mut label = r.method.clone();
    if r.weights != "f32" {
        label += &format!(" ({})", r.weights);
    }
    if r.batch > 1 {
        label += &format!(" x{}", r.batch);
    }
    label
}

/// One finished measurement, on stderr.
fn print_result(r: &bench::BenchResult) {
    {
        eprintln!(
            "  {:<6} {:<10} L={:<7} {:>9.3} s {:>10.1} tok/s{}",
            label(r),
            r.mode,
            r.len,
            r.seconds,
            r.tokens_per_s,
            r.gbps
                .map(|g| format!("  history reads {g:.2} GB/s"))
                .unwrap_or_default()
        );
        eprintln!(
            "         (copy kernel just before: {:.2} GB/s; mixer memory {:.1} MiB in {} channel group{})",
            r.copy_gbps_before,
            r.mixer_bytes as f64 / (1 << 20) as f64,
            r.channel_groups,
            if r.channel_groups == 1 { "" } else { "s" }
        );
        if let (Some(d), Some(s)) = (r.dispatches_per_token, r.submits_per_token) {
            eprintln!("         ({d:.1} dispatches and {s:.3} submits per generated token)");
        }
        if let Some(l) = &r.latency {
            eprintln!(
                "         (one token per submit: latency p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms at token {})",
                l.p50 * 1e3,
                l.p99 * 1e3,
                l.max * 1e3,
                l.max_at
            );
        }
    }
}

/// The whole report: summary lines and the table on stdout, JSON to `json` if given.
fn print_report(
    spec: &BenchSpec,
    report: &bench::BenchReport,
    json: Option<&std::path::Path>,
) -> Result<()> {
    println!("adapter: {}", report.device);
    println!(
        "weights (and lazy's v history and filter taps) in: {}s",
        report.weight_storage
    );
    println!(
        "copy bandwidth: {:.2} GB/s (best of the run)",
        report.copy_gbps
    );
    print_lazy_bandwidth(report);
    println!("| method | mode | L | seconds | tokens/s | x flash | dispatches/token | submits/token | latency p50 / p99 / max ms |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in &report.results {
        println!("{}", table_row(report, r));
    }
    for len in spec.lens.iter() {
        let get = |m: &str| {
            report.results.iter().find(|r| {
                r.method == m && r.len == *len && r.mode == "end_to_end" && r.weights == "f32"
            })
        };
        if let (Some(f), Some(n)) = (get("flash"), get("none")) {
            println!(
                "L={len}: mixer share of flash end to end = {:.1}%",
                100.0 * (f.seconds - n.seconds) / f.seconds
            );
        }
    }
    if let Some(t) = report.texture_read_gbps {
        println!("texture read bandwidth: {t:.2} GB/s (read only, best of the run)");
    }
    print_floors(report);
    write_json(json, report)
}

/// Lazy's history reads against the copy bandwidth.
fn print_lazy_bandwidth(report: &bench::BenchReport) {
    for r in report.results.iter().filter(|r| r.gbps.is_some()) {
        let g = r.gbps.unwrap_or_default();
        println!(
            "lazy L={}: history reads {g:.2} GB/s = {:.0}% of the best copy, {:.0}% of the copy just before",
            r.len,
            100.0 * g / report.copy_gbps,
            100.0 * g / r.copy_gbps_before
        );
        if let Some(m) = r.mixer_gbps {
            println!(
                "lazy L={}: over the time its sums added to none's: {m:.2} GB/s = {:.0}% of the best copy",
                r.len,
                100.0 * m / report.copy_gbps
            );
        }
    }
}

/// One line of the table: `r` with its time against flash's at the same length, mode
/// and weights.
fn table_row(report: &bench::BenchReport, r: &bench::BenchResult) -> String {
    let flash = report.results.iter().find(|f| {
        f.method == "flash" && f.len == r.len && f.mode == r.mode && f.weights == r.weights
    });
    let ratio = flash
        .map(|f| format!("{:.2}", r.seconds / f.seconds))
        .unwrap_or_else(|| "-".into());
    let opt = |v: Option<f64>, digits: usize| {
        v.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
    };
    let latency = r.latency.as_ref().map_or_else(
        || "-".to_string(),
        |l| {
            format!(
                "{:.2} / {:.2} / {:.2}",
                l.p50 * 1e3,
                l.p99 * 1e3,
                l.max * 1e3
            )
        },
    );
    format!(
        "| {} | {} | {} | {:.3} | {:.1} | {} | {} | {} | {} |",
        label(r),
        r.mode,
        r.len,
        r.seconds,
        r.tokens_per_s,
        ratio,
        opt(r.dispatches_per_token, 1),
        opt(r.submits_per_token, 3),
        latency
    )
}

/// None's time per token against the floor of reading the weights once.
fn print_floors(report: &bench::BenchReport) {
    for r in report.results.iter().filter(|r| r.method == "none") {
        if let Some(m) = r.floor_multiple {
            println!(
                "L={} ({} weights): non-mixer time per token = {m:.2}x the floor \
                 (weight bytes read per token / best copy bandwidth)",
                r.len, r.weights
            );
            if let Some(t) = report.texture_read_gbps {
                println!(
                    "L={}: the same time is {:.2}x weight bytes / texture read bandwidth",
                    r.len,
                    m * t / report.copy_gbps
                );
            }
        }
    }
}

pub(crate) fn bench_fft(a: BenchFftArgs) -> Result<()> {
    if a.min_log2 < 1 || a.max_log2 > 22 || a.min_log2 > a.max_log2 {
        return Err(Error::input(format!(
            "--min-log2 {} / --max-log2 {}: sizes run from 2^1 to 2^22, smallest first",
            a.min_log2, a.max_log2
        )));
    }
    if a.elements == 0 || a.elements > 1 << 26 {
        return Err(Error::input(format!(
            "--elements {}: give 1 to 2^26 complex elements per batch",
            a.elements
        )));
    }
    if let Some(r) = a
        .max_radix
        .filter(|r| !r.is_power_of_two() || !(4..=64).contains(r))
    {
        return Err(Error::input(format!(
            "--max-radix {r}: give 4, 8, 16, 32 or 64"
        )));
    }
    let sizes: Vec<usize> = (a.min_log2..=a.max_log2).map(|l| 1 << l).collect();
    let ctx = device()?;
    eprintln!("bench-fft on {}", ctx.describe());
    let bar = progress_bar(
        sizes.len() as u64,
        "{elapsed_precise} [{bar:30}] {pos}/{len} sizes",
    );
    let log2r = a.max_radix.map(u32::trailing_zeros);
    let report = bench::fft_throughput(&ctx, &sizes, a.elements, log2r, |_| bar.inc(1))?;
    bar.finish_and_clear();
    println!("adapter: {}", report.device);
    println!("| N | batch | pass radices | GPU ms | GPU GFLOP/s | one pass ms | rustfft 1 thread ms | rustfft GFLOP/s | GPU / rustfft | one pass / rustfft |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in &report.results {
        let radices: Vec<String> = r.radices.iter().map(usize::to_string).collect();
        println!(
            "| 2^{} | {} | {} | {:.3}{} | {:.2} | {:.3} | {:.3} | {:.2} | {:.3} | {:.3} |",
            r.n.trailing_zeros(),
            r.batch,
            radices.join("·"),
            r.gpu_seconds * 1e3,
            if r.staged { " (staged)" } else { "" },
            r.gpu_gflops,
            r.in_pass_seconds * 1e3,
            r.cpu_seconds * 1e3,
            r.cpu_gflops,
            r.ratio,
            r.in_pass_ratio
        );
    }
    let radix = a
        .max_radix
        .map_or("the planner's".into(), |r| format!("up to {r}"));
    println!(
        "(5 N log2 N flops per transform; pass radices: {radix}; best of 5 timed rounds after a warm-up, \
         the three timed in turn. GPU: FftPlan::encode_into, staged through a texture on CPU adapters; \
         one pass: the same passes in one compute pass, as the mixer's tiles record them)"
    );
    write_json(a.json.as_deref(), &report)
}
