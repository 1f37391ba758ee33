//! Scores every record of a FASTA/FASTQ file through the library API, 16 side by side,
//! and prints the process's resident memory as it goes: it stays flat however long
//! the file, since one chunk of records is in memory at a time.
//!
//! `cargo run --release --example stream_scores -- MODEL_DIR FILE [EVERY]` prints the
//! running mean NLL and the RSS every EVERY records (default 1000).

use flashconv::records::{Case, Records};
use flashconv::{GpuContext, GpuModel, Method, Model, Session, SessionOptions, Tokenizer};

/// Resident set size in MiB (Linux: /proc/self/statm; 0 elsewhere).
fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1 << 20) as f64
}

fn main() -> flashconv::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(file)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: stream_scores MODEL_DIR FILE [EVERY]");
        std::process::exit(2);
    };
    let every: usize = args.get(3).and_then(|e| e.parse().ok()).unwrap_or(1000);
    let model = Model::load(dir.as_ref())?;
    let tok = Tokenizer::for_model_dir(dir.as_ref())?;
    let ctx = GpuContext::new()?;
    let gm = GpuModel::new(&ctx, model)?;
    let (mut done, mut nll, mut tokens) = (0usize, 0f64, 0usize);
    let mut batch: Vec<Vec<u32>> = Vec::new();
    let mut records = Records::open(file.as_ref())?.peekable();
    while let Some(record) = records.next() {
        batch.push(tok.encode_with_sep(&record?.text(Case::Keep)));
        if batch.len() < 16 && records.peek().is_some() {
            continue;
        }
        let seqs: Vec<&[u32]> = batch.iter().map(|s| s.as_slice()).collect();
        let opts = SessionOptions::for_batch(gm.config(), Method::Flash, &seqs)?;
        for (score, seq) in Session::new(&gm, opts)?
            .score_batch(&seqs, &Default::default())?
            .iter()
            .zip(&seqs)
        {
            nll += score.nll;
            tokens += seq.len() - 1;
            done += 1;
            if done % every == 0 {
                println!(
                    "record {done}: mean NLL {:.6}, RSS {:.1} MiB",
                    nll / tokens.max(1) as f64,
                    rss_mib()
                );
            }
        }
        batch.clear();
    }
    println!(
        "{done} records, mean NLL {:.6}, RSS {:.1} MiB",
        nll / tokens.max(1) as f64,
        rss_mib()
    );
    Ok(())
}
