//! The `flashconv` command line: info, generate, score, bench, bench-fft, random.

use clap::{Args, Parser, Subcommand};
use flashconv::bench::{self, BenchSpec};
use flashconv::bundled;
use flashconv::model::write_f32;
use flashconv::sampling::{top2_margin, SamplingParams};
use flashconv::session::{
    batch_session_len, check_ids, session_len, CancelHandle, GenerateOptions, StopReason,
    WeightFormat, WeightStorage,
};
use flashconv::tokenizer::{parse_ids, Tokenizer};
use flashconv::{
    gpu, Config, Error, GpuContext, GpuModel, Method, Model, Result, Session, SessionOptions,
};
use std::io::Write;

mod plot;
use std::path::PathBuf;

/// Exact generation from Hyena / HyenaDNA models on any GPU, in near-linear time.
#[derive(Parser)]
#[command(name = "flashconv", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// Lower the device's storage-binding limit to this many MiB (128 runs as under
    /// WebGPU's default limits); mixer buffers above it are split into channel groups.
    #[arg(long, global = true, value_name = "MIB")]
    max_binding_mib: Option<u64>,
    /// No progress bars (they are drawn on stderr only when it is a terminal).
    #[arg(long, short, global = true)]
    quiet: bool,
}

/// The `--quiet` flag, set once in main.
static QUIET: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// A progress bar on stderr over `total` steps (hidden with `--quiet`; indicatif draws
/// nothing when stderr is not a terminal), ticking so elapsed time moves on long steps.
fn progress_bar(total: u64, template: &str) -> indicatif::ProgressBar {
    if QUIET.get().copied().unwrap_or(false) {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(250));
    bar
}

/// The flash FFT threshold: `arg` when given, else the device's tuned value (measured
/// on first use, a few seconds, and cached). Other methods have no tiles.
fn fft_min_tile(ctx: &GpuContext, arg: Option<usize>, method: Method) -> Result<usize> {
    if let Some(u) = arg {
        if u == 0 {
            return Err(Error::input("--fft-min-tile must be at least 1"));
        }
        return Ok(u);
    }
    if method != Method::Flash {
        return Ok(flashconv::mixer::DEFAULT_FFT_MIN_TILE);
    }
    let tuned = flashconv::tuning::fft_min_tile(ctx, |path| {
        let place = path.map_or("not cached: no cache directory".into(), |p| {
            format!("cached in {}", p.display())
        });
        eprintln!("tuning the FFT tile threshold for this device (once; {place})");
    })?;
    Ok(tuned.fft_min_tile)
}

/// The `--f16` flag as a weight format.
fn weight_format(f16: bool) -> WeightFormat {
    if f16 {
        WeightFormat::F16
    } else {
        WeightFormat::F32
    }
}

/// The `--max-binding-mib` value, set once in main.
static MAX_BINDING: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();

/// The device every command runs on: the default adapter, with the binding limit
/// lowered when `--max-binding-mib` says so.
fn device() -> Result<GpuContext> {
    match MAX_BINDING.get().copied().flatten() {
        None => GpuContext::new(),
        Some(mib) => GpuContext::new_with_limits(|l| {
            let bytes = (mib << 20).min(l.max_storage_buffer_binding_size);
            l.max_storage_buffer_binding_size = bytes;
        }),
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// List adapters and show the chosen one with its limits and features.
    Info,
    /// Generate tokens after a prompt, streaming them as they come.
    Generate(GenerateArgs),
    /// Score a sequence: per-token log-probabilities, NLL and perplexity.
    Score(ScoreArgs),
    /// Benchmark flash / lazy / eager / none on a random model.
    Bench(BenchArgs),
    /// Batched complex FFT throughput (GFLOP/s) next to single-threaded rustfft.
    BenchFft(BenchFftArgs),
    /// Write a random model of any shape (config.json + model.safetensors, HF layout).
    Random(RandomArgs),
}

#[derive(Args)]
struct ModelArg {
    /// Model directory (config.json + model.safetensors) or .safetensors file with
    /// config.json beside it. Default: the bundled model (hyena-rustbook-char, a small
    /// character-level model trained on the Rust book's prose).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Long-convolution method.
    #[arg(long, default_value = "flash")]
    method: String,
    /// Smallest flash tile side done with FFTs (smaller tiles: direct product).
    /// Default: tuned for this device on first use and cached (see `info`).
    #[arg(long)]
    fft_min_tile: Option<usize>,
    /// Store the matrices as f16 (accumulated in f32; needs SHADER_F16). Off by
    /// default so tokens agree across devices.
    #[arg(long)]
    f16: bool,
    /// Where the matrices (and lazy's history and filter taps) live: auto (textures on
    /// CPU adapters such as lavapipe, which fetch texels much faster than buffer
    /// elements; buffers elsewhere), buffer or texture. The logits are the same.
    #[arg(long, default_value = "auto")]
    weight_storage: WeightStorage,
    /// Consume the prompt (score: the input) token by token instead of as one batched
    /// forward pass with an FFT long convolution (the prefill; flash and none).
    #[arg(long)]
    no_prefill: bool,
    #[command(flatten)]
    spread: TileArgs,
}

#[derive(Args)]
struct TileArgs {
    /// Spread each flash tile of side >= 256 over this many steps: the step that
    /// completes it computes the next outputs directly, the rest follows in channel
    /// chunks, which flattens the latency spikes at t + 1 = 2^k. 0 or 1: whole tiles.
    #[arg(long, value_name = "K", default_value_t = flashconv::tiling::Spread::DEFAULT.steps)]
    spread_tiles: usize,
    /// Precompute at most this many MiB of flash filter spectra (smallest tile sides
    /// first) and compute the others on the GPU when a tile needs them. Default: all.
    #[arg(long, value_name = "MIB")]
    spectra_budget_mib: Option<u64>,
}

impl TileArgs {
    fn spectra_budget(&self) -> Option<u64> {
        self.spectra_budget_mib.map(|m| m.saturating_mul(1 << 20))
    }

    fn spread(&self) -> flashconv::tiling::Spread {
        flashconv::tiling::Spread::over(
            self.spread_tiles,
            flashconv::tiling::Spread::DEFAULT.min_size,
        )
    }
}

impl ModelArg {
    /// `model` on `ctx` with the weight format and storage these flags ask for.
    fn upload(&self, ctx: &GpuContext, model: Model) -> Result<GpuModel> {
        GpuModel::with_storage(ctx, model, weight_format(self.f16), self.weight_storage)
    }

    /// Session options of `len` positions with `method` and these flags (the FFT
    /// threshold tuned for `ctx` unless given).
    fn session_options(
        &self,
        ctx: &GpuContext,
        method: Method,
        len: usize,
    ) -> Result<SessionOptions> {
        let mut opts = SessionOptions::new(method, len);
        opts.fft_min_tile = fft_min_tile(ctx, self.fft_min_tile, method)?;
        opts.prefill = !self.no_prefill;
        opts.spread = self.spread.spread();
        opts.spectra_budget = self.spread.spectra_budget();
        Ok(opts)
    }
}

#[derive(Args)]
struct GenerateArgs {
    #[command(flatten)]
    model: ModelArg,
    /// Prompt text (tokenized by the model's tokenizer; no trailing [SEP]). Default:
    /// "The " (or "ACGT" for a model with HyenaDNA's DNA vocabulary). Repeat it to
    /// generate after several prompts side by side in one session (a batch).
    #[arg(long, conflicts_with = "ids")]
    prompt: Vec<String>,
    /// Prompt as token ids, e.g. 0,7,8 (repeatable, like --prompt).
    #[arg(long)]
    ids: Vec<String>,
    /// Generate this many sequences side by side after the prompt (one session, flash
    /// or none; with several prompts, give as many). Sequence b samples with seed
    /// `--seed` + b. The text of each is printed when all are done.
    #[arg(long)]
    batch: Option<usize>,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 100)]
    max_tokens: usize,
    /// Sampling temperature; 0 = greedy.
    #[arg(long, default_value_t = 0.8)]
    temperature: f32,
    /// Keep only the k most likely tokens (0 = all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Nucleus sampling: keep the most likely tokens up to probability p.
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// Random seed.
    #[arg(long, default_value_t = 299_792_458)]
    seed: u64,
    /// Stop after any of these token ids (e.g. 1 for [SEP]).
    #[arg(long)]
    stop: Option<String>,
    /// Tokens sampled on the GPU per submit; their ids are read back (and printed)
    /// once per batch.
    #[arg(long, default_value_t = 32)]
    tokens_per_submit: usize,
    /// Where tokens are sampled: gpu (ids read back once per batch), cpu (logits read
    /// back every token), or auto: the GPU, except temperature sampling on a software
    /// adapter (lavapipe), where the sampling kernels measured slower than the CPU path.
    #[arg(long, default_value = "auto", value_parser = ["auto", "gpu", "cpu"])]
    sampler: String,
    /// Print one JSON object (prompt_ids, tokens, text, stop, tokens_per_second,
    /// adapter) instead of streaming the text (the browser test compares its ids).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ScoreArgs {
    #[command(flatten)]
    model: ModelArg,
    /// Token ids, used as given.
    #[arg(long, group = "source")]
    ids: Option<String>,
    /// Text, tokenized as the HF tokenizer does (with its trailing [SEP]).
    #[arg(long, group = "source")]
    text: Option<String>,
    /// A file whose text is scored (like --text; trailing newlines are dropped).
    #[arg(long, group = "source")]
    input: Option<PathBuf>,
    /// Write the logits of every position (f32 [n, padded vocab], tensor `logits`).
    #[arg(long)]
    logits: Option<PathBuf>,
    /// Write the final hidden states (after ln_f; f32 [n, d_model], tensor `hidden`).
    #[arg(long)]
    hidden: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct BenchArgs {
    /// Layers M.
    #[arg(long, default_value_t = 4)]
    layers: usize,
    /// Width D.
    #[arg(long, default_value_t = 256)]
    dim: usize,
    /// Sequence lengths, comma-separated.
    #[arg(long, default_value = "1024")]
    len: String,
    /// Methods, comma-separated (flash, lazy, eager, none).
    #[arg(long, default_value = "flash,lazy,eager,none")]
    method: String,
    /// Time the long-convolution schedule alone.
    #[arg(long)]
    mixer_only: bool,
    /// Write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Seed of the random model.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Smallest flash tile side done with FFTs (smaller tiles: direct product).
    /// Default: tuned for this device on first use and cached (see `info`).
    #[arg(long)]
    fft_min_tile: Option<usize>,
    #[command(flatten)]
    spread: TileArgs,
    /// End to end: also generate one token per submit and report per-token latency
    /// percentiles (p50 / p99 / max; a second run per method).
    #[arg(long)]
    latency: bool,
    /// End to end: run every method with f16 weights too (needs SHADER_F16).
    #[arg(long)]
    f16: bool,
    /// Where the matrices and lazy's history and taps live: auto, buffer or texture (see
    /// `generate --help`).
    #[arg(long, default_value = "auto")]
    weight_storage: WeightStorage,
    /// Time the mixer alone as well as end to end (both in one report).
    #[arg(long, conflicts_with = "mixer_only")]
    with_mixer: bool,
    /// End to end: generate this many sequences side by side in one session (flash and
    /// none; the projections become matrix products over them); tokens/s counts every
    /// sequence's tokens.
    #[arg(long, default_value_t = 1, conflicts_with = "mixer_only")]
    batch: usize,
    /// Draw tokens/s (end to end) and mixer seconds against L, per method, into this PNG.
    #[arg(long, value_name = "OUT.png")]
    plot: Option<PathBuf>,
}

#[derive(Args)]
struct BenchFftArgs {
    /// Smallest size, as log2 N.
    #[arg(long, default_value_t = 10)]
    min_log2: u32,
    /// Largest size, as log2 N.
    #[arg(long, default_value_t = 18)]
    max_log2: u32,
    /// Complex elements per batch (batch = elements / N, at least 1): 2^22 gives
    /// batch 64 at N = 2^16.
    #[arg(long, default_value_t = 1 << 22)]
    elements: usize,
    /// Largest radix of a pass (4, 8, 16, 32 or 64; sizes that would need more than
    /// four passes get larger ones), to compare fewer, larger passes with more, smaller
    /// ones [default: the planner's, 16; 64 up to 2^11 on CPU adapters].
    #[arg(long)]
    max_radix: Option<u32>,
    /// Write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
struct RandomArgs {
    /// Layers.
    #[arg(long)]
    layers: usize,
    /// Width.
    #[arg(long)]
    dim: usize,
    /// Vocabulary size (12 = HyenaDNA's DNA vocabulary).
    #[arg(long, default_value_t = 12)]
    vocab: usize,
    /// max_seq_len of the model.
    #[arg(long)]
    max_len: usize,
    /// Filter MLP width.
    #[arg(long, default_value_t = 64)]
    filter_order: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
}

fn load_model(arg: &Option<PathBuf>) -> Result<(Model, Tokenizer)> {
    match arg {
        Some(path) => {
            let model = Model::load(path)?;
            let paths = flashconv::model::ModelPaths::resolve(path)?;
            let tok = Tokenizer::for_model_dir(&paths.dir)?;
            tok.check_vocab(model.config.vocab_size)?;
            Ok((model, tok))
        }
        None => Ok((bundled::model()?, bundled::tokenizer()?)),
    }
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    let _ = MAX_BINDING.set(cli.max_binding_mib);
    let _ = QUIET.set(cli.quiet);
    let res = match cli.cmd {
        Cmd::Info => info(),
        Cmd::Generate(a) => generate(a),
        Cmd::Score(a) => score(a),
        Cmd::Bench(a) => run_bench(a),
        Cmd::BenchFft(a) => bench_fft(a),
        Cmd::Random(a) => random(a),
    };
    if let Err(e) = res {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn info() -> Result<()> {
    let instance = gpu::instance_from_env();
    let adapters = gpu::list_adapters(&instance);
    println!("adapters found: {}", adapters.len());
    for a in &adapters {
        let i = a.get_info();
        println!(
            "  - {} ({:?}, {:?}, driver: {} {})",
            i.name, i.backend, i.device_type, i.driver, i.driver_info
        );
    }
    let ctx = device()?;
    let l = &ctx.limits;
    println!("chosen: {}", ctx.describe());
    println!("  max_buffer_size: {}", l.max_buffer_size);
    println!(
        "  max_storage_buffer_binding_size: {}",
        l.max_storage_buffer_binding_size
    );
    println!(
        "  max_storage_buffers_per_shader_stage: {}",
        l.max_storage_buffers_per_shader_stage
    );
    println!(
        "  max_compute_workgroup_storage_size: {}",
        l.max_compute_workgroup_storage_size
    );
    println!(
        "  max_compute_invocations_per_workgroup: {}",
        l.max_compute_invocations_per_workgroup
    );
    println!(
        "  max_compute_workgroups_per_dimension: {}",
        l.max_compute_workgroups_per_dimension
    );
    println!("  features: {:?}", ctx.features);
    match ctx.check_requirements() {
        Ok(()) => println!("  meets flashconv's requirements (WebGPU default limits)"),
        Err(e) => println!("  {e}"),
    }
    let storage = if WeightStorage::Auto.prefers_textures(&ctx) {
        "in textures (a CPU adapter; where they fit max_texture_dimension_2d)"
    } else {
        "in storage buffers"
    };
    println!("  weights (--weight-storage auto): {storage}");
    let cache = flashconv::tuning::cache_path();
    let cache = cache
        .as_ref()
        .map_or("no cache directory".into(), |p| p.display().to_string());
    match flashconv::tuning::cached(&ctx) {
        Some(t) => {
            println!(
                "  flash FFT tiles from U = {} (tuned; {cache})",
                t.fft_min_tile
            );
            for m in &t.timings {
                println!(
                    "    U = {:>3}: direct {:.3} ms, FFT {:.3} ms",
                    m.size,
                    m.direct * 1e3,
                    m.fft * 1e3
                );
            }
        }
        None => println!(
            "  flash FFT threshold not tuned yet (the first flash run measures it; {cache})"
        ),
    }
    Ok(())
}

fn generate(a: GenerateArgs) -> Result<()> {
    let method: Method = a.model.method.parse()?;
    let (model, tok) = load_model(&a.model.model)?;
    let prompts: Vec<Vec<u32>> = if !a.ids.is_empty() {
        a.ids
            .iter()
            .map(|ids| parse_ids(ids))
            .collect::<Result<_>>()?
    } else if !a.prompt.is_empty() {
        a.prompt.iter().map(|text| tok.encode(text)).collect()
    } else if tok == Tokenizer::dna() {
        // DNA models start from a short DNA string, text models from a word.
        vec![tok.encode("ACGT")]
    } else {
        vec![tok.encode(bundled::DEFAULT_PROMPT)]
    };
    let prompts = match (a.batch, prompts.len()) {
        (None, _) => prompts,
        (Some(b), 1) => vec![prompts[0].clone(); b],
        (Some(b), n) if b == n => prompts,
        (Some(b), n) => {
            return Err(flashconv::Error::input(format!(
                "--batch {b} with {n} prompts: give one prompt (repeated {b} times) or {b}"
            )))
        }
    };
    if prompts.len() != 1 {
        return generate_batch(a, method, (model, tok), prompts);
    }
    let prompt = prompts.into_iter().next().unwrap_or_default();
    let stop_ids = a
        .stop
        .as_deref()
        .map(parse_ids)
        .transpose()?
        .unwrap_or_default();
    let sampling = SamplingParams {
        temperature: a.temperature,
        top_k: a.top_k,
        top_p: a.top_p,
        seed: a.seed,
    };
    sampling.validate()?;
    check_ids(&model.config, &prompt)?;
    let len = session_len(&model.config, prompt.len(), a.max_tokens)?;
    let ctx = device()?;
    let gm = a.model.upload(&ctx, model)?;
    let mut sopts = a.model.session_options(&ctx, method, len)?;
    sopts.tokens_per_submit = a.tokens_per_submit.max(1);
    let mut session = Session::new(&gm, sopts)?;
    let opts = GenerateOptions {
        max_tokens: a.max_tokens,
        sampling,
        stop_ids,
        cancel: CancelHandle::new(),
        cpu_sampling: match a.sampler.as_str() {
            "cpu" => true,
            "gpu" => false,
            _ => a.temperature > 0.0 && ctx.info.device_type == wgpu::DeviceType::Cpu,
        },
    };
    let mut out = std::io::stdout().lock();
    let stream = !a.json;
    if stream {
        let _ = write!(out, "{}", tok.decode(&prompt));
        let _ = out.flush();
    }
    // When the text streams to a terminal it is its own progress; a bar only when
    // stdout goes elsewhere (a file, a pipe).
    use std::io::IsTerminal;
    let bar = if std::io::stdout().is_terminal() {
        indicatif::ProgressBar::hidden()
    } else {
        progress_bar(
            a.max_tokens as u64,
            "{elapsed_precise} [{bar:40}] {pos}/{len} tokens ({per_sec})",
        )
    };
    let stats = session.generate(&prompt, &opts, |id| {
        if stream {
            let _ = write!(out, "{}", tok.token_str(id));
            let _ = out.flush();
        }
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    if a.json {
        let v = serde_json::json!({
            "prompt_ids": prompt,
            "tokens": stats.tokens,
            "text": tok.decode(&stats.tokens),
            "stop": format!("{:?}", stats.stop),
            "tokens_per_second": stats.tokens_per_second(),
            "method": method.name(),
            "adapter": ctx.describe(),
        });
        let _ = writeln!(out, "{v}");
        return Ok(());
    }
    let _ = writeln!(out);
    if stats.stop == StopReason::SequenceFull {
        eprintln!(
            "stopped: the sequence reached max_seq_len ({})",
            gm.config().max_seq_len
        );
    }
    let (per_d, per_s) = stats.per_token();
    eprintln!("({per_d:.1} dispatches and {per_s:.3} submits per generated token)");
    println!(
        "{} tokens generated ({:.2} token/s, {} method on {})",
        stats.tokens.len(),
        stats.tokens_per_second(),
        method,
        ctx.describe()
    );
    Ok(())
}

/// `generate` for several sequences side by side (`--batch`, or several prompts).
fn generate_batch(
    a: GenerateArgs,
    method: Method,
    (model, tok): (Model, Tokenizer),
    prompts: Vec<Vec<u32>>,
) -> Result<()> {
    let b = prompts.len();
    let stop_ids = a.stop.as_deref().map(parse_ids).transpose()?;
    let mut opts = Vec::with_capacity(b);
    for (i, p) in prompts.iter().enumerate() {
        check_ids(&model.config, p)?;
        let sampling = SamplingParams {
            temperature: a.temperature,
            top_k: a.top_k,
            top_p: a.top_p,
            seed: a.seed.wrapping_add(i as u64),
        };
        sampling.validate()?;
        opts.push(GenerateOptions {
            max_tokens: a.max_tokens,
            sampling,
            stop_ids: stop_ids.clone().unwrap_or_default(),
            ..Default::default()
        });
    }
    let rows: Vec<&[u32]> = prompts.iter().map(|p| p.as_slice()).collect();
    let len = batch_session_len(&model.config, &rows, &opts)?;
    let ctx = device()?;
    let gm = a.model.upload(&ctx, model)?;
    let mut sopts = a.model.session_options(&ctx, method, len)?;
    sopts.tokens_per_submit = a.tokens_per_submit.max(1);
    sopts.batch = b;
    let mut session = Session::new(&gm, sopts)?;
    let bar = progress_bar(
        (b * a.max_tokens) as u64,
        "{elapsed_precise} [{bar:40}] {pos}/{len} tokens ({per_sec})",
    );
    let stats = session.generate_batch(&rows, &opts, |_, _| bar.inc(1))?;
    bar.finish_and_clear();
    let total: usize = stats.iter().map(|s| s.tokens.len()).sum();
    let seconds = stats.first().map_or(0.0, |s| s.generate_seconds);
    let rate = total as f64 / seconds.max(1e-9);
    if a.json {
        let seqs: Vec<_> = prompts
            .iter()
            .zip(&stats)
            .map(|(p, s)| {
                serde_json::json!({
                    "prompt_ids": p,
                    "tokens": s.tokens,
                    "text": tok.decode(&s.tokens),
                    "stop": format!("{:?}", s.stop),
                })
            })
            .collect();
        let v = serde_json::json!({
            "sequences": seqs,
            "tokens_per_second": rate,
            "method": method.name(),
            "adapter": ctx.describe(),
        });
        println!("{v}");
        return Ok(());
    }
    for (i, (p, s)) in prompts.iter().zip(&stats).enumerate() {
        println!("[{i}] {}{}", tok.decode(p), tok.decode(&s.tokens));
    }
    let (per_d, per_s) = stats.first().map_or((0.0, 0.0), |s| {
        (
            s.dispatches as f64 / total.max(1) as f64,
            s.submits as f64 / total.max(1) as f64,
        )
    });
    eprintln!("({per_d:.1} dispatches and {per_s:.3} submits per generated token)");
    println!(
        "{total} tokens generated ({rate:.2} token/s, {b} sequences, {method} method on {})",
        ctx.describe()
    );
    Ok(())
}

fn score(a: ScoreArgs) -> Result<()> {
    let method: Method = a.model.method.parse()?;
    if !method.is_exact() {
        return Err(Error::input(
            "score needs an exact method (flash, lazy or eager)",
        ));
    }
    let (model, tok) = load_model(&a.model.model)?;
    let ids = match (&a.ids, &a.text, &a.input) {
        (Some(ids), _, _) => parse_ids(ids)?,
        (_, Some(text), _) => tok.encode_with_sep(text),
        (_, _, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            tok.encode_with_sep(text.trim_end_matches(['\n', '\r']))
        }
        _ => {
            return Err(Error::input(
                "give the sequence with --ids, --text or --input",
            ))
        }
    };
    if ids.is_empty() {
        return Err(Error::input("the sequence to score is empty"));
    }
    let n = ids.len();
    let c = &model.config;
    check_ids(c, &ids)?;
    if n > c.max_seq_len {
        return Err(Error::input(format!(
            "the sequence has {n} tokens, more than max_seq_len = {}",
            c.max_seq_len
        )));
    }
    let (vp, d) = (c.padded_vocab(), c.d_model);
    let ctx = device()?;
    let gm = a.model.upload(&ctx, model)?;
    // Logits come back in pieces of at most SCORE_ROWS positions, so the ring on the
    // device stays small (and within the binding limit) however long the sequence.
    const SCORE_ROWS: usize = 2048;
    let rows = n.min(SCORE_ROWS);
    let mut opts = a.model.session_options(&ctx, method, n)?;
    opts.logit_rows = rows;
    let mut s = Session::new(&gm, opts)?;
    let mut logits = Vec::with_capacity(n * vp);
    let mut hidden = Vec::new();
    let start_time = std::time::Instant::now();
    for (i, part) in ids.chunks(rows).enumerate() {
        s.feed(part)?;
        let (start, end) = (i * rows, i * rows + part.len());
        logits.extend(s.logits_range(start, end)?);
        if a.hidden.is_some() {
            hidden.extend(s.hidden_range(start, end)?);
        }
    }
    // Feeding and reading back: the read-backs wait for the GPU.
    let seconds = start_time.elapsed().as_secs_f64();
    let (dispatches, submits) = s.counts();
    eprintln!(
        "({n} positions in {seconds:.3} s, {:.0} token/s: {dispatches} dispatches, {submits} submits)",
        n as f64 / seconds
    );
    let mut logprobs = Vec::with_capacity(n.saturating_sub(1));
    for t in 0..n - 1 {
        let row = &logits[t * vp..(t + 1) * vp];
        let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
        let lse = max
            + row
                .iter()
                .map(|&v| (v as f64 - max).exp())
                .sum::<f64>()
                .ln();
        logprobs.push(row[ids[t + 1] as usize] as f64 - lse);
    }
    let nll = -logprobs.iter().sum::<f64>();
    let mean = if logprobs.is_empty() {
        0.0
    } else {
        nll / logprobs.len() as f64
    };
    let ppl = mean.exp();
    if let Some(path) = &a.logits {
        write_f32(path, &[("logits", vec![n, vp], &logits)])?;
    }
    if let Some(path) = &a.hidden {
        write_f32(path, &[("hidden", vec![n, d], &hidden)])?;
    }
    if a.json {
        let v = serde_json::json!({
            "tokens": ids,
            "logprobs": logprobs,
            // The top-2 logit margin of every position (over the real vocabulary): where
            // it is small, drivers may disagree on the greedy token.
            "top2_margins": (0..n)
                .map(|t| top2_margin(&logits[t * vp..t * vp + gm.config().vocab_size]))
                .collect::<Vec<f32>>(),
            "nll": nll,
            "mean_nll": mean,
            "perplexity": ppl,
            "method": method.name(),
            "adapter": ctx.info.name,
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        println!("{:>6}  {:>10}  {:>12}", "pos", "token", "logprob");
        for (t, lp) in logprobs.iter().enumerate() {
            println!(
                "{:>6}  {:>10}  {:>12.6}",
                t + 1,
                tok.token_str(ids[t + 1]),
                lp
            );
        }
        println!("tokens: {n}  total NLL: {nll:.6}  mean NLL: {mean:.6}  perplexity: {ppl:.6}");
    }
    Ok(())
}

fn run_bench(a: BenchArgs) -> Result<()> {
    let lens = a
        .len
        .split(',')
        .map(|s| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| Error::input(format!("--len: '{s}' is not a length")))
        })
        .collect::<Result<Vec<_>>>()?;
    if lens.iter().any(|&l| l < 2) {
        return Err(Error::input("--len: lengths must be at least 2"));
    }
    let methods = a
        .method
        .split(',')
        .map(str::parse)
        .collect::<Result<Vec<Method>>>()?;
    let spec = BenchSpec {
        layers: a.layers,
        dim: a.dim,
        lens,
        methods,
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
    println!("| method | mode | L | seconds | tokens/s | x flash | dispatches/token | submits/token | latency p50 / p99 / max ms |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in &report.results {
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
        println!(
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
        );
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
    write_json(json, report)
}

fn bench_fft(a: BenchFftArgs) -> Result<()> {
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

/// Writes `value` as pretty JSON to `path`, if given.
fn write_json(path: Option<&std::path::Path>, value: &impl serde::Serialize) -> Result<()> {
    let Some(path) = path else {
        return Ok(());
    };
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::input(format!("serializing the report: {e}")))?;
    std::fs::write(path, text).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn random(a: RandomArgs) -> Result<()> {
    let mut cfg = Config::new(a.layers, a.dim, a.vocab, a.max_len);
    cfg.filter_order = a.filter_order;
    let model = Model::random(cfg, a.seed)?;
    model.save(&a.out)?;
    println!(
        "wrote {} ({} parameters)",
        a.out.display(),
        model.param_count()
    );
    Ok(())
}
