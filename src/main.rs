//! The `flashconv` command line: info, generate, score, embed, bench, bench-fft, random. One
//! module a command (`cli/`), with what they share in `cli/common.rs`.

use clap::{Parser, Subcommand};
use cli::{bench, common, embed, generate, info, score};

mod cli;
mod plot;

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

#[derive(Subcommand)]
enum Cmd {
    /// List adapters and show the chosen one with its limits and features.
    Info,
    /// Generate tokens after a prompt, streaming them as they come.
    Generate(generate::GenerateArgs),
    /// Score a sequence, or every record of a FASTA/FASTQ file: per-token
    /// log-probabilities, NLL and perplexity.
    Score(score::ScoreArgs),
    /// Embed every record of a FASTA/FASTQ file (hidden states after ln_f, pooled)
    /// into safetensors shards, resuming what a killed run left.
    Embed(embed::EmbedArgs),
    /// Benchmark flash / lazy / eager / none on a random model.
    Bench(bench::BenchArgs),
    /// Batched complex FFT throughput (GFLOP/s) next to single-threaded rustfft.
    BenchFft(bench::BenchFftArgs),
    /// Write a random model of any shape (config.json + model.safetensors, HF layout).
    Random(info::RandomArgs),
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    common::set_globals(cli.max_binding_mib, cli.quiet);
    let res = match cli.cmd {
        Cmd::Info => info::info(),
        Cmd::Generate(a) => generate::generate(a),
        Cmd::Score(a) => score::score(a),
        Cmd::Embed(a) => embed::embed(a),
        Cmd::Bench(a) => bench::run_bench(a),
        Cmd::BenchFft(a) => bench::bench_fft(a),
        Cmd::Random(a) => info::random(a),
    };
    if let Err(e) = res {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
