//! Library example: several prompts of different lengths generated side by side in one
//! session of the bundled model (`SessionOptions::batch`), each with its own sampling.
//!
//! cargo run --release --example batch

use flashconv::sampling::SamplingParams;
use flashconv::session::{batch_session_len, GenerateOptions};
use flashconv::{bundled, GpuContext, GpuModel, Method, Session, SessionOptions};

fn main() -> flashconv::Result<()> {
    let (model, tok) = (bundled::model()?, bundled::tokenizer()?);
    let ctx = GpuContext::new()?; // or GpuContext::from_device(device, queue, info)
    let gm = GpuModel::new(&ctx, model)?;
    let texts = ["fn main", "The borrow checker", "Traits"];
    let prompts: Vec<Vec<u32>> = texts.iter().map(|t| tok.encode(t)).collect();
    // Sequence 0 greedy, the others sampled with their own seeds.
    let opts: Vec<GenerateOptions> = (0..texts.len())
        .map(|i| GenerateOptions {
            max_tokens: 60,
            sampling: match i {
                0 => SamplingParams::greedy(),
                _ => SamplingParams {
                    temperature: 0.7,
                    seed: i as u64,
                    ..Default::default()
                },
            },
            ..Default::default()
        })
        .collect();
    // The session holds the longest prompt plus its tokens.
    let rows: Vec<&[u32]> = prompts.iter().map(|p| p.as_slice()).collect();
    let len = batch_session_len(gm.config(), &rows, &opts)?;
    let mut sopts = SessionOptions::new(Method::Flash, len);
    sopts.batch = prompts.len();
    let mut session = Session::new(&gm, sopts)?;
    let stats = session.generate_batch(&rows, &opts, |_, _| {})?;
    for (text, s) in texts.iter().zip(&stats) {
        println!("{text}{}", tok.decode(&s.tokens));
    }
    let total: usize = stats.iter().map(|s| s.tokens.len()).sum();
    let seconds = stats[0].generate_seconds;
    println!(
        "{total} tokens generated ({:.1} token/s) on {}",
        total as f64 / seconds,
        ctx.describe()
    );
    Ok(())
}
