//! Soak run: generates a long sequence from a small random model and prints the
//! process's resident memory and wgpu's live object counts as it goes, so a leak per
//! token shows up as a growing column.
//!
//! cargo run --release --example soak -- [TOKENS (default 262144)] [EVERY (default 16384)]

use flashconv::sampling::SamplingParams;
use flashconv::session::{session_len, GenerateOptions};
use flashconv::{Config, GpuContext, GpuModel, Method, Model, Session, SessionOptions};
use std::time::Instant;

/// Resident set size in MiB, from /proc/self/statm (Linux; None elsewhere).
fn rss_mib() -> Option<f64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: f64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096.0 / (1 << 20) as f64)
}

fn arg(i: usize, default: usize) -> flashconv::Result<usize> {
    match std::env::args().nth(i) {
        None => Ok(default),
        Some(s) => s
            .parse()
            .map_err(|_| flashconv::Error::input(format!("argument {i}: '{s}' is not a count"))),
    }
}

fn main() -> flashconv::Result<()> {
    let tokens = arg(1, 1 << 18)?;
    let every = arg(2, 1 << 14)?.max(1);
    let ctx = GpuContext::new()?;
    let model = Model::random(Config::new(2, 16, 12, tokens + 2), 5)?;
    let gm = GpuModel::new(&ctx, model)?;
    let len = session_len(gm.config(), 1, tokens)?;
    let mut session = Session::new(&gm, SessionOptions::new(Method::Flash, len))?;
    let opts = GenerateOptions {
        max_tokens: tokens,
        sampling: SamplingParams {
            temperature: 1.0,
            ..Default::default()
        },
        ..Default::default()
    };
    println!("soak: {tokens} tokens on {}", ctx.describe());
    println!(
        "{:>9} {:>9} {:>8} {:>12} {:>10}",
        "tokens", "RSS MiB", "buffers", "bind groups", "tok/s"
    );
    let start = Instant::now();
    let mut n = 0usize;
    let report = |n: usize| {
        let c = ctx.device.get_internal_counters().hal;
        let rss = rss_mib().map_or("-".into(), |r| format!("{r:.1}"));
        let rate = n as f64 / start.elapsed().as_secs_f64().max(1e-9);
        println!(
            "{n:>9} {rss:>9} {:>8} {:>12} {rate:>10.0}",
            c.buffers.read(),
            c.bind_groups.read()
        );
    };
    let stats = session.generate(&[7], &opts, |_| {
        n += 1;
        if n == 1 || n.is_multiple_of(every) {
            report(n);
        }
    })?;
    println!(
        "{} tokens generated ({:.1} token/s), stop: {:?}",
        stats.tokens.len(),
        stats.tokens_per_second(),
        stats.stop
    );
    Ok(())
}
