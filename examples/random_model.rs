//! Library example: build a random HyenaDNA-layout model, save it, load it back and
//! generate from it on the default GPU.
//!
//! cargo run --release --example random_model -- OUT_DIR

use flashconv::session::{session_len, GenerateOptions};
use flashconv::{Config, GpuContext, GpuModel, Method, Model, Session, SessionOptions};

fn main() -> flashconv::Result<()> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "random-model".into());
    let mut cfg = Config::new(2, 64, 12, 4096);
    cfg.filter_order = 32;
    let model = Model::random(cfg, 2024)?;
    model.save(out.as_ref())?;
    println!("wrote {out} ({} parameters)", model.param_count());

    let model = Model::load(out.as_ref())?;
    let ctx = GpuContext::new()?; // or GpuContext::from_device(device, queue, info)
    let gm = GpuModel::new(&ctx, model)?;
    let prompt = [7, 8, 9, 10]; // ACGT
    let len = session_len(gm.config(), prompt.len(), 32)?;
    let mut session = Session::new(&gm, SessionOptions::new(Method::Flash, len))?;
    let opts = GenerateOptions {
        max_tokens: 32,
        ..Default::default()
    };
    let stats = session.generate(&prompt, &opts, |_| {})?;
    println!("generated {:?} on {}", stats.tokens, ctx.describe());
    Ok(())
}
