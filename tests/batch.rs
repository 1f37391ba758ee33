//! A session of B > 1 sequences (`SessionOptions::batch`) against single runs: every
//! sequence's logits against the f64 reference and against a session of its own, and
//! batched generation (prompts of different lengths, each sequence with its own
//! sampling options) against one generation per sequence. Plus the errors of bad
//! batch input.

mod common;

use flashconv::sampling::SamplingParams;
use flashconv::session::{batch_session_len, session_len, GenerateOptions, StopReason};
use flashconv::{Config, GpuModel, Method, Model, Session, SessionOptions};

/// Relative tolerance per position (scaled by the row's largest |value|), as in
/// tests/prefill.rs: f32 products and FFTs against f64 direct sums.
const TOL: f64 = 1e-4;

const LAYERS: usize = 2;
const DIM: usize = 32;
const VOCAB: usize = 12;

fn model(max_len: usize, seed: u64) -> Model {
    Model::random(Config::new(LAYERS, DIM, VOCAB, max_len), seed).expect("model")
}

fn options(method: Method, len: usize, batch: usize, prefill: bool) -> SessionOptions {
    let mut opts = SessionOptions::new(method, len);
    opts.logit_rows = len;
    opts.batch = batch;
    opts.prefill = prefill;
    opts.fft_min_tile = 8;
    opts
}

/// Logits `[len][vp]` of each of `seqs` (one length), run as one batched session: the
/// first `prompt` positions in one call, then one position per call.
fn batched_logits(
    gm: &GpuModel,
    opts: SessionOptions,
    seqs: &[Vec<u32>],
    prompt: usize,
) -> Vec<Vec<f32>> {
    let (len, b) = (opts.len, seqs.len());
    let vp = gm.config().padded_vocab();
    let mut s = Session::new(gm, opts).expect("batched session");
    let rows: Vec<&[u32]> = seqs.iter().map(|q| &q[..prompt]).collect();
    s.feed_rows(&rows).expect("feed prompts");
    for t in prompt..len {
        let rows: Vec<&[u32]> = seqs.iter().map(|q| &q[t..t + 1]).collect();
        s.feed_rows(&rows).expect("feed token");
    }
    let all = s.logits_range(0, len).expect("logits");
    assert_eq!(all.len(), len * b * vp);
    // [len][B][vp] -> per sequence [len][vp].
    (0..b)
        .map(|i| {
            (0..len)
                .flat_map(|t| all[(t * b + i) * vp..(t * b + i + 1) * vp].iter().copied())
                .collect()
        })
        .collect()
}

fn as_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn check_batch_logits(method: Method, prefill: bool, b: usize, len: usize, prompt: usize) {
    let m = model(len + 4, 3);
    let seqs: Vec<Vec<u32>> = (0..b)
        .map(|i| common::ids(len, VOCAB, 10 + i as u64))
        .collect();
    let want: Vec<_> = seqs
        .iter()
        .map(|q| {
            flashconv::reference::forward(&m, q)
                .expect("reference")
                .logits
        })
        .collect();
    let vp = m.config.padded_vocab();
    let gm = GpuModel::new(&common::ctx(), m).expect("upload");
    let batched = batched_logits(&gm, options(method, len, b, prefill), &seqs, prompt);
    for (i, q) in seqs.iter().enumerate() {
        let single = batched_logits(
            &gm,
            options(method, len, 1, prefill),
            std::slice::from_ref(q),
            prompt,
        );
        let (e, pos) = common::max_row_rel_err(&batched[i], &want[i], vp);
        let (es, ps) = common::max_row_rel_err(&batched[i], &as_f64(&single[0]), vp);
        eprintln!(
            "{method} prefill={prefill} B={b} seq {i}: vs reference {e:.2e} (pos {pos}), \
             vs its own session {es:.2e} (pos {ps})"
        );
        assert!(
            e <= TOL,
            "seq {i}: {e} at position {pos} against the reference"
        );
        assert!(
            es <= TOL,
            "seq {i}: {es} at position {ps} against its own session"
        );
    }
}

#[test]
fn batched_flash_matches_reference_and_single_sessions() {
    // The prompt's FFT convolution spans several tile sides; the tokens after it run
    // through the relaxed tiles (spread from side 256) over all sequences at once.
    check_batch_logits(Method::Flash, true, 3, 700, 300);
    check_batch_logits(Method::Flash, false, 2, 130, 40);
}

#[test]
fn batched_none_matches_reference_and_single_sessions() {
    // `none` drops the history term, so compare with single `none` sessions only.
    let (len, b) = (50, 4);
    let m = model(len + 4, 5);
    let vp = m.config.padded_vocab();
    let seqs: Vec<Vec<u32>> = (0..b)
        .map(|i| common::ids(len, VOCAB, 20 + i as u64))
        .collect();
    let gm = GpuModel::new(&common::ctx(), m).expect("upload");
    let batched = batched_logits(&gm, options(Method::None, len, b, true), &seqs, 20);
    for (i, q) in seqs.iter().enumerate() {
        let single = batched_logits(
            &gm,
            options(Method::None, len, 1, true),
            std::slice::from_ref(q),
            20,
        );
        let (e, pos) = common::max_row_rel_err(&batched[i], &as_f64(&single[0]), vp);
        assert!(e <= TOL, "none, seq {i}: {e} at position {pos}");
    }
}

/// The generation options of sequence `i` in the generation test.
fn gen_opts(i: usize) -> GenerateOptions {
    let sampling = match i % 3 {
        0 => SamplingParams::greedy(),
        1 => SamplingParams {
            temperature: 0.8,
            top_k: 5,
            seed: 7,
            ..Default::default()
        },
        _ => SamplingParams {
            temperature: 1.0,
            top_p: 0.9,
            seed: 11 + i as u64,
            ..Default::default()
        },
    };
    GenerateOptions {
        max_tokens: [40, 25, 60, 9][i % 4],
        sampling,
        ..Default::default()
    }
}

#[test]
fn batched_generation_matches_one_generation_per_sequence() {
    let m = model(200, 9);
    let gm = GpuModel::new(&common::ctx(), m).expect("upload");
    // Prompts of different lengths: the shorter ones start drawing while the longer
    // ones are still being fed.
    let prompts: Vec<Vec<u32>> = [5usize, 17, 1, 30]
        .iter()
        .enumerate()
        .map(|(i, &n)| common::ids(n, VOCAB, 40 + i as u64))
        .collect();
    let mut opts: Vec<GenerateOptions> = (0..prompts.len()).map(gen_opts).collect();
    // One sequence stops at a token it generates (found by a first run on its own).
    let single = |p: &[u32], o: &GenerateOptions| {
        let len = session_len(gm.config(), p.len(), o.max_tokens).expect("len");
        let mut so = SessionOptions::new(Method::Flash, len);
        so.tokens_per_submit = 8;
        let mut s = Session::new(&gm, so).expect("session");
        s.generate(p, o, |_| {}).expect("generate")
    };
    let first = single(&prompts[2], &opts[2]);
    opts[2].stop_ids = vec![first.tokens[first.tokens.len() / 2]];
    let rows: Vec<&[u32]> = prompts.iter().map(|p| p.as_slice()).collect();
    let len = batch_session_len(gm.config(), &rows, &opts).expect("len");
    let mut so = SessionOptions::new(Method::Flash, len);
    so.batch = prompts.len();
    so.tokens_per_submit = 8;
    let mut s = Session::new(&gm, so).expect("batched session");
    let mut streamed = vec![Vec::new(); prompts.len()];
    let stats = s
        .generate_batch(&rows, &opts, |i, id| streamed[i].push(id))
        .expect("generate_batch");
    let mut generated = 0;
    for (i, (p, o)) in prompts.iter().zip(&opts).enumerate() {
        let want = single(p, o);
        eprintln!(
            "seq {i}: {} tokens, {:?}",
            stats[i].tokens.len(),
            stats[i].stop
        );
        assert_eq!(stats[i].tokens, want.tokens, "seq {i}: tokens");
        assert_eq!(stats[i].stop, want.stop, "seq {i}: stop reason");
        assert_eq!(streamed[i], want.tokens, "seq {i}: streamed tokens");
        generated += want.tokens.len();
    }
    assert!(matches!(stats[2].stop, StopReason::StopToken(_)));
    // Per generated token, no more dispatches than a single sequence is allowed.
    let per_token = stats[0].dispatches as f64 / generated as f64;
    assert!(
        per_token <= (4 * LAYERS + 8) as f64,
        "{per_token} dispatches per token"
    );
    // The session cannot continue: its sequences ended at different positions.
    assert!(s.feed_rows(&[&[1], &[1], &[1], &[1]]).is_err());
}

#[test]
fn bad_batch_input_is_refused_with_a_message() {
    let gm = GpuModel::new(&common::ctx(), model(64, 1)).expect("upload");
    let err = |opts: SessionOptions| Session::new(&gm, opts).expect_err("must fail").to_string();
    let mut o = SessionOptions::new(Method::Flash, 32);
    o.batch = 0;
    assert!(err(o.clone()).contains("1 to 64 sequences"));
    o.batch = 65;
    assert!(err(o.clone()).contains("not 65"));
    o.batch = 2;
    o.method = Method::Lazy;
    assert!(err(o.clone()).contains("flash or none"));
    o.method = Method::Flash;
    let mut s = Session::new(&gm, o.clone()).expect("session");
    let e = s
        .feed(&[1, 2])
        .expect_err("one row for two sequences")
        .to_string();
    assert!(e.contains("give 2 rows"), "{e}");
    let e = s
        .feed_rows(&[&[1, 2], &[3]])
        .expect_err("ragged")
        .to_string();
    assert!(e.contains("sequence 1 has 1 ids"), "{e}");
    let e = s.feed_rows(&[&[1], &[99]]).expect_err("bad id").to_string();
    assert!(e.contains("token id 99"), "{e}");
    let g = GenerateOptions {
        max_tokens: 4,
        ..Default::default()
    };
    let e = s
        .generate(&[1], &g, |_| {})
        .expect_err("single")
        .to_string();
    assert!(e.contains("generate_batch"), "{e}");
    let two = [g.clone(), g.clone()];
    let e = s
        .generate_batch(&[&[1], &[]], &two, |_, _| {})
        .expect_err("empty");
    assert!(e.to_string().contains("prompt 1 is empty"), "{e}");
    let e = s
        .generate_batch(&[&[1]], &two, |_, _| {})
        .expect_err("count");
    assert!(e.to_string().contains("give 2 prompts"), "{e}");
    // Nothing above changed the session: it still generates.
    let stats = s
        .generate_batch(&[&[1], &[2, 3]], &two, |_, _| {})
        .expect("generate");
    assert!(stats.iter().all(|st| st.tokens.len() == 4));
    let mut s = Session::new(&gm, o).expect("session");
    s.feed_rows(&[&[1, 2], &[3, 4]]).expect("fed");
    let e = s
        .generate_batch(&[&[1], &[2]], &two, |_, _| {})
        .expect_err("not fresh");
    assert!(e.to_string().contains("fresh session"), "{e}");
}
