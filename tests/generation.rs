//! Generation stops where it should: max tokens, stop ids, max_seq_len, cancellation;
//! and the same seed gives the same tokens.

mod common;

use flashconv::sampling::SamplingParams;
use flashconv::session::{session_len, CancelHandle, GenerateOptions, StopReason};
use flashconv::{Config, GpuModel, Method, Model, Session, SessionOptions};

fn model(max_len: usize) -> GpuModel {
    let ctx = common::ctx();
    let m = Model::random(Config::new(1, 16, 12, max_len), 4).expect("random");
    GpuModel::new(&ctx, m).expect("upload")
}

fn run(gm: &GpuModel, prompt: &[u32], opts: &GenerateOptions) -> (Vec<u32>, StopReason) {
    let len = session_len(gm.config(), prompt.len(), opts.max_tokens).expect("len");
    let mut s = Session::new(gm, SessionOptions::new(Method::Flash, len)).expect("session");
    let stats = s.generate(prompt, opts, |_| {}).expect("generate");
    (stats.tokens, stats.stop)
}

#[test]
fn stops_at_max_seq_len_without_reading_past_the_filter() {
    let gm = model(40);
    let opts = GenerateOptions {
        max_tokens: 100,
        ..Default::default()
    };
    let (tokens, stop) = run(&gm, &[7, 8, 9], &opts);
    assert_eq!(stop, StopReason::SequenceFull);
    assert_eq!(
        3 + tokens.len(),
        40,
        "prompt + generated fills max_seq_len exactly"
    );
}

#[test]
fn stop_ids_and_max_tokens() {
    let gm = model(64);
    let opts = GenerateOptions {
        max_tokens: 10,
        ..Default::default()
    };
    let (tokens, stop) = run(&gm, &[7], &opts);
    assert_eq!((tokens.len(), stop), (10, StopReason::MaxTokens));
    let first = tokens[0];
    let opts = GenerateOptions {
        max_tokens: 10,
        stop_ids: vec![first],
        ..Default::default()
    };
    let (tokens, stop) = run(&gm, &[7], &opts);
    assert_eq!((tokens, stop), (vec![first], StopReason::StopToken(first)));
}

#[test]
fn cancellation_stops_at_the_next_token() {
    let gm = model(64);
    let cancel = CancelHandle::new();
    let opts = GenerateOptions {
        max_tokens: 30,
        cancel: cancel.clone(),
        ..Default::default()
    };
    let len = session_len(gm.config(), 1, 30).expect("len");
    let mut s = Session::new(&gm, SessionOptions::new(Method::Flash, len)).expect("session");
    let mut seen = 0;
    let stats = s
        .generate(&[7], &opts, |_| {
            seen += 1;
            if seen == 5 {
                cancel.cancel();
            }
        })
        .expect("generate");
    assert_eq!(stats.stop, StopReason::Cancelled);
    assert_eq!(stats.tokens.len(), 5);
}

#[test]
fn same_seed_same_tokens_other_seed_other_tokens() {
    let gm = model(128);
    let sampling = |seed| SamplingParams {
        temperature: 1.5,
        top_k: 0,
        top_p: 0.95,
        seed,
    };
    let opts = |seed| GenerateOptions {
        max_tokens: 60,
        sampling: sampling(seed),
        ..Default::default()
    };
    let (a, _) = run(&gm, &[7, 8], &opts(11));
    let (b, _) = run(&gm, &[7, 8], &opts(11));
    let (c, _) = run(&gm, &[7, 8], &opts(12));
    assert_eq!(a, b);
    assert_ne!(a, c, "a different seed should change 60 sampled tokens");
}

/// The GPU sampler (ids read back once per batch) picks exactly the tokens of the CPU
/// path (logits read back every token) for the same seed: greedy, and temperature with
/// top-k and top-p, with batches that do not divide the run, on flash and lazy.
#[test]
fn gpu_sampling_matches_cpu_sampling() {
    let gm = model(400);
    let prompt = [7, 8, 9, 10, 7];
    let samplings = [
        SamplingParams::greedy(),
        SamplingParams {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            seed: 11,
        },
        SamplingParams {
            temperature: 0.7,
            top_k: 6,
            top_p: 0.8,
            seed: 12,
        },
    ];
    for method in [Method::Flash, Method::Lazy] {
        for sampling in samplings {
            let mut got = Vec::new();
            for cpu_sampling in [false, true] {
                let opts = GenerateOptions {
                    max_tokens: 300,
                    sampling,
                    cpu_sampling,
                    ..Default::default()
                };
                let len = session_len(gm.config(), prompt.len(), opts.max_tokens).expect("len");
                let mut so = SessionOptions::new(method, len);
                so.tokens_per_submit = 7;
                let mut s = Session::new(&gm, so).expect("session");
                let mut streamed = Vec::new();
                let stats = s
                    .generate(&prompt, &opts, |t| streamed.push(t))
                    .expect("generate");
                assert_eq!(streamed, stats.tokens, "on_token sees every token in order");
                got.push(stats.tokens);
            }
            let distinct = got[0]
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len();
            eprintln!("{method} {sampling:?}: {distinct} distinct ids in 300 tokens");
            assert_eq!(got[0], got[1], "{method} {sampling:?}: GPU vs CPU sampling");
        }
    }
}

/// A stop id in the middle of a GPU batch: generation reports it and returns the tokens
/// up to it; the session, which ran positions past it, refuses to continue.
#[test]
fn stop_inside_a_gpu_batch_ends_the_session() {
    let gm = model(400);
    let sampling = SamplingParams {
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        seed: 3,
    };
    let free = GenerateOptions {
        max_tokens: 64,
        sampling,
        ..Default::default()
    };
    let (tokens, _) = run(&gm, &[7], &free);
    // Stop at a token that first occurs strictly inside a batch of 32.
    let (idx, &stop) = tokens
        .iter()
        .enumerate()
        .find(|(i, t)| i % 32 != 31 && tokens[..*i].iter().all(|x| x != *t))
        .expect("some token");
    let opts = GenerateOptions {
        stop_ids: vec![stop],
        ..free
    };
    let len = session_len(gm.config(), 1, opts.max_tokens).expect("len");
    let mut s = Session::new(&gm, SessionOptions::new(Method::Flash, len)).expect("session");
    let stats = s.generate(&[7], &opts, |_| {}).expect("generate");
    assert_eq!(stats.stop, StopReason::StopToken(stop));
    assert_eq!(stats.tokens, tokens[..=idx].to_vec());
    let err = s.feed(&[7]).expect_err("state ran past the stop token");
    assert!(err.to_string().contains("start a new session"), "{err}");
}
