//! Whole model on the GPU (flash, lazy, eager) against the CPU f64 reference.

mod common;

use flashconv::session::{session_len, GenerateOptions};
use flashconv::{Config, GpuModel, Method, Model, Session, SessionOptions};

/// Relative logit tolerance (per position, scaled by the row's largest |logit|).
const TOL: f64 = 1e-4;

/// Logits and hidden states (after ln_f) of every position, the ids fed in one call
/// (as one prefill for flash when `prefill`, else token by token).
fn gpu_outputs(gm: &GpuModel, method: Method, prefill: bool, ids: &[u32]) -> (Vec<f32>, Vec<f32>) {
    let mut opts = SessionOptions::new(method, ids.len());
    opts.logit_rows = ids.len();
    opts.prefill = prefill;
    let mut s = Session::new(gm, opts).expect("session");
    s.feed(ids).expect("feed");
    let logits = s.logits_range(0, ids.len()).expect("read logits");
    (logits, s.hidden_range(0, ids.len()).expect("read hidden"))
}

fn check_shape(layers: usize, dim: usize, vocab: usize, len: usize, seed: u64) {
    let ctx = common::ctx();
    let cfg = Config::new(layers, dim, vocab, len + 8);
    let model = Model::random(cfg, seed).expect("random model");
    let ids = common::ids(len, vocab, seed + 1);
    let want = flashconv::reference::forward(&model, &ids).expect("reference");
    let vp = model.config.padded_vocab();
    let gm = GpuModel::new(&ctx, model).expect("upload");
    let runs = [
        (Method::Flash, false),
        (Method::Flash, true),
        (Method::Lazy, false),
        (Method::Eager, false),
    ];
    for (method, prefill) in runs {
        let (got, hidden) = gpu_outputs(&gm, method, prefill, &ids);
        let (err, row) = common::max_row_rel_err(&got, &want.logits, vp);
        let (herr, hrow) = common::max_row_rel_err(&hidden, &want.hidden, dim);
        eprintln!(
            "M={layers} D={dim} V={vocab} L={len} {method} (prefill {prefill}): max rel err {err:.2e} (pos {row}), \
             hidden {herr:.2e} (pos {hrow})"
        );
        assert!(
            err <= TOL && herr <= TOL,
            "{method}: rel err {err} at position {row}, hidden {herr} at {hrow}, > {TOL}"
        );
    }
}

#[test]
fn small_shapes_match_reference() {
    check_shape(1, 24, 12, 37, 1);
    check_shape(2, 42, 13, 64, 2); // D % 4 != 0: the scalar lazy kernel
}

#[test]
fn long_sequence_matches_reference() {
    check_shape(3, 72, 12, 1030, 3);
}

#[test]
fn wide_layer_power_of_two_length() {
    check_shape(2, 64, 8, 256, 4);
}

/// Widths past the matvec kernels' 1024-element input chunk (gate over D = 1040
/// channels, fc2 over 4160 inputs) and a vocabulary over one workgroup of outputs.
#[test]
fn wide_model_spans_several_input_chunks() {
    check_shape(1, 1040, 300, 12, 5);
}

#[test]
fn greedy_tokens_agree_across_methods() {
    let ctx = common::ctx();
    let cfg = Config::new(2, 32, 12, 300);
    let model = Model::random(cfg, 9).expect("random model");
    let vocab = model.config.vocab_size;
    let gm = GpuModel::new(&ctx, model.clone()).expect("upload");
    let prompt = common::ids(5, vocab, 10);
    let max_tokens = 120;
    let len = session_len(gm.config(), prompt.len(), max_tokens).expect("len");
    let mut runs = Vec::new();
    for method in [Method::Flash, Method::Lazy, Method::Eager] {
        let mut s = Session::new(&gm, SessionOptions::new(method, len)).expect("session");
        let opts = GenerateOptions {
            max_tokens,
            ..Default::default()
        };
        let stats = s.generate(&prompt, &opts, |_| {}).expect("generate");
        assert_eq!(stats.tokens.len(), max_tokens);
        runs.push(stats.tokens);
    }
    // Where the reference's top-2 margin exceeds the tolerance, all methods must pick
    // its argmax along flash's sequence.
    let named: Vec<(String, Vec<u32>)> = ["flash", "lazy", "eager"]
        .iter()
        .map(|m| m.to_string())
        .zip(runs)
        .collect();
    let checked = common::check_greedy_against_reference(&model, &prompt, &named, TOL);
    eprintln!("greedy: {checked} tokens compared");
    assert!(checked >= 50, "only {checked} tokens had a clear margin");
}

/// Flash with every tile done by FFT (fused below 2U = 2048, multi-pass four-step above)
/// and with every tile done directly, on an odd channel count (the last FFT channel pair
/// is half empty) and a length past 4096, against the reference; with FFTs also with
/// every filter spectrum computed on the GPU when needed (budget 0) and with only the
/// sides up to 64 precomputed.
#[test]
fn fft_and_direct_tiles_match_reference() {
    let ctx = common::ctx();
    let (layers, dim, vocab, len) = (1, 9, 12, 4500);
    let model = Model::random(Config::new(layers, dim, vocab, len + 1), 21).expect("random");
    let ids = common::ids(len, vocab, 22);
    let want = flashconv::reference::forward(&model, &ids).expect("reference");
    let vp = model.config.padded_vocab();
    let gm = GpuModel::new(&ctx, model).expect("upload");
    let small_sides = 8 * dim as u64 * (2..=64u64).filter(|u| u.is_power_of_two()).sum::<u64>();
    let runs = [
        (2, None),
        (2, Some(0)),
        (2, Some(small_sides)),
        (usize::MAX, None),
    ];
    for (fft_min_tile, spectra_budget) in runs {
        let mut opts = SessionOptions::new(Method::Flash, len);
        opts.logit_rows = len;
        opts.fft_min_tile = fft_min_tile;
        opts.spectra_budget = spectra_budget;
        // Token by token: a prefill would leave the tiles of the prompt to one FFT.
        opts.prefill = false;
        let mut s = Session::new(&gm, opts).expect("session");
        s.feed(&ids).expect("feed");
        let got = s.logits_range(0, len).expect("logits");
        let (err, row) = common::max_row_rel_err(&got, &want.logits, vp);
        let spectra = s.memory().mixer.spectra;
        eprintln!(
            "fft_min_tile {fft_min_tile}, spectra budget {spectra_budget:?} ({spectra} bytes): \
             max rel err {err:.2e} (pos {row})"
        );
        assert!(
            err <= TOL,
            "fft_min_tile {fft_min_tile} {spectra_budget:?}: {err} at {row}"
        );
    }
}

/// Large tiles spread over the steps after them (urgent outputs directly, the rest in
/// channel chunks) give the reference's logits, token by token and after a prefill
/// (whose seeding leaves chunks to the token steps), for several spreads on an odd
/// channel count (a chunk boundary can split nothing but whole pairs).
#[test]
fn spread_tiles_match_reference() {
    use flashconv::tiling::Spread;
    let ctx = common::ctx();
    let (layers, dim, vocab, len) = (2, 9, 12, 700);
    let model = Model::random(Config::new(layers, dim, vocab, len + 1), 31).expect("random");
    let ids = common::ids(len, vocab, 32);
    let want = flashconv::reference::forward(&model, &ids).expect("reference");
    let vp = model.config.padded_vocab();
    let gm = GpuModel::new(&ctx, model).expect("upload");
    let spreads = [
        Spread::OFF,
        Spread::over(4, 8),
        Spread::over(8, 16),
        Spread::over(3, 64),
        Spread::DEFAULT,
    ];
    for spread in spreads {
        for prompt in [0usize, 1, 300] {
            let mut opts = SessionOptions::new(Method::Flash, len);
            opts.logit_rows = len;
            opts.fft_min_tile = 8;
            opts.spread = spread;
            let mut s = Session::new(&gm, opts).expect("session");
            if prompt > 0 {
                s.feed(&ids[..prompt]).expect("prompt");
            }
            for &id in &ids[prompt..] {
                s.feed(&[id]).expect("token");
            }
            let got = s.logits_range(0, len).expect("logits");
            let (err, row) = common::max_row_rel_err(&got, &want.logits, vp);
            eprintln!("{spread:?} prompt {prompt}: max rel err {err:.2e} (pos {row})");
            assert!(err <= TOL, "{spread:?} prompt {prompt}: {err} at {row}");
        }
    }
}
