//! Prefill (a prompt as one batched forward with an FFT long convolution, then the
//! seeding tiles) against token-by-token prompt processing and the f64 reference, for
//! prompt lengths around powers of two; the tokens after the prompt run through the
//! relaxed tiles, so any pair the seeding missed or counted twice shows up there.

mod common;

use flashconv::{Config, GpuModel, Method, Model, Session, SessionOptions};

/// Relative tolerance per position (scaled by the row's largest |value|), as in
/// tests/gpu_model.rs: f32 FFTs against f64 direct sums.
const TOL: f64 = 1e-4;

/// Tokens fed one at a time after the prompt.
const AFTER: usize = 80;

/// Logits and hidden states of every position: the prompt fed in one call (prefilled
/// when `prefill`), then `rest` one token per call.
fn run(gm: &GpuModel, method: Method, prefill: bool, prompt: &[u32], rest: &[u32]) -> Outputs {
    let len = prompt.len() + rest.len();
    let mut opts = SessionOptions::new(method, len);
    opts.logit_rows = len;
    opts.prefill = prefill;
    opts.fft_min_tile = 8;
    let mut s = Session::new(gm, opts).expect("session");
    s.feed(prompt).expect("feed prompt");
    let prompt_counts = s.counts();
    for &id in rest {
        s.feed(&[id]).expect("feed token");
    }
    Outputs {
        logits: s.logits_range(0, len).expect("logits"),
        hidden: s.hidden_range(0, len).expect("hidden"),
        prompt_counts,
    }
}

struct Outputs {
    logits: Vec<f32>,
    hidden: Vec<f32>,
    /// (dispatches, submits) after the prompt.
    prompt_counts: (u64, u64),
}

fn check_prompt(p: usize, seed: u64) {
    let (layers, dim, vocab) = (2, 32, 12);
    let len = p + AFTER;
    let model = Model::random(Config::new(layers, dim, vocab, len + 4), seed).expect("model");
    let ids = common::ids(len, vocab, seed + 1);
    let want = flashconv::reference::forward(&model, &ids).expect("reference");
    let vp = model.config.padded_vocab();
    let gm = GpuModel::new(&common::ctx(), model).expect("upload");
    let (prompt, rest) = ids.split_at(p);
    let tokenwise = run(&gm, Method::Flash, false, prompt, rest);
    let prefilled = run(&gm, Method::Flash, true, prompt, rest);
    // One submit for the whole prompt, and a dispatch count that does not grow with P
    // beyond the log2(P) seeding tiles.
    assert_eq!(prefilled.prompt_counts.1, 1, "P={p}: prefill submits");
    let bound = 8 * layers as u64 + 16 * (p.ilog2() as u64 + 2) + 8;
    assert!(
        prefilled.prompt_counts.0 <= bound,
        "P={p}: {} prefill dispatches > {bound}",
        prefilled.prompt_counts.0
    );
    for (name, got) in [("token by token", &tokenwise), ("prefill", &prefilled)] {
        let (el, pl) = common::max_row_rel_err(&got.logits, &want.logits, vp);
        let (eh, ph) = common::max_row_rel_err(&got.hidden, &want.hidden, dim);
        eprintln!("P={p} {name}: logits rel err {el:.2e} (pos {pl}), hidden {eh:.2e} (pos {ph})");
        assert!(
            el <= TOL && eh <= TOL,
            "P={p} {name}: logits {el} at {pl}, hidden {eh} at {ph}, > {TOL}"
        );
    }
    let as_f64 = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    let (e, pos) = common::max_row_rel_err(&prefilled.logits, &as_f64(&tokenwise.logits), vp);
    eprintln!("P={p}: prefill vs token by token {e:.2e} (pos {pos})");
    assert!(e <= TOL, "P={p}: prefill vs token by token {e} at {pos}");
}

#[test]
fn prefill_small_prompts() {
    for (i, p) in [1usize, 2, 63, 64, 65].into_iter().enumerate() {
        check_prompt(p, 10 + i as u64);
    }
}

#[test]
fn prefill_100() {
    check_prompt(100, 20);
}

/// 1000 positions: the prompt's convolution (U = 1024, transform 2048) and the seeding
/// tiles up to U = 512.
#[test]
fn prefill_1000() {
    check_prompt(1000, 30);
}

/// A transform past one workgroup's 2048 (P = 1500: U = 2048, the multi-pass FFT).
#[test]
fn prefill_multi_pass_fft() {
    check_prompt(1500, 40);
}

/// The diagonal-only method prefills too, and agrees with itself token by token.
#[test]
fn prefill_none_method() {
    let model = Model::random(Config::new(2, 24, 10, 200), 5).expect("model");
    let ids = common::ids(150, 10, 6);
    let vp = model.config.padded_vocab();
    let gm = GpuModel::new(&common::ctx(), model).expect("upload");
    let (prompt, rest) = ids.split_at(120);
    let a = run(&gm, Method::None, false, prompt, rest);
    let b = run(&gm, Method::None, true, prompt, rest);
    assert_eq!(b.prompt_counts.1, 1);
    let want: Vec<f64> = a.logits.iter().map(|&x| x as f64).collect();
    let (e, pos) = common::max_row_rel_err(&b.logits, &want, vp);
    assert!(e <= TOL, "none: prefill vs token by token {e} at {pos}");
}
