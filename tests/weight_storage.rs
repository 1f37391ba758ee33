//! Weights in textures against weights in buffers (`WeightStorage`): the same values
//! and the same order of every sum, so the logits must be bit-identical, for the
//! prompt's products (rows kernels), the token steps (one-row kernels), batches, f16,
//! and lazy (whose v history and filter taps follow the weights into textures); both
//! against the f64
//! reference. Plus the choice `Auto` makes and the error of a
//! texture the adapter cannot hold.

mod common;

use flashconv::session::{session_len, GenerateOptions, WeightFormat, WeightStorage};
use flashconv::{Config, GpuModel, Method, Model, Session, SessionOptions};

/// Relative logit error against the f64 reference (as tests/prefill.rs).
const TOL: f64 = 1e-4;

fn upload(model: &Model, format: WeightFormat, storage: WeightStorage) -> GpuModel {
    let ctx = common::ctx();
    let gm = GpuModel::with_storage(&ctx, model.clone(), format, storage).expect("upload");
    assert_eq!(gm.storage(), storage);
    gm
}

/// Logits of every position of each of `seqs`: the first `prompt` positions in one
/// call, then one per call.
fn logits(gm: &GpuModel, method: Method, seqs: &[Vec<u32>], prompt: usize) -> Vec<f32> {
    logits_and_history(gm, method, seqs, prompt).0
}

/// [`logits`], and the bytes the session's mixer holds for the v history.
fn logits_and_history(
    gm: &GpuModel,
    method: Method,
    seqs: &[Vec<u32>],
    prompt: usize,
) -> (Vec<f32>, u64) {
    let len = seqs[0].len();
    let mut opts = SessionOptions::new(method, len);
    opts.logit_rows = len;
    opts.batch = seqs.len();
    opts.fft_min_tile = 8;
    let mut s = Session::new(gm, opts).expect("session");
    let rows: Vec<&[u32]> = seqs.iter().map(|q| &q[..prompt]).collect();
    s.feed_rows(&rows).expect("feed prompt");
    for t in prompt..len {
        let rows: Vec<&[u32]> = seqs.iter().map(|q| &q[t..t + 1]).collect();
        s.feed_rows(&rows).expect("feed token");
    }
    let history = s.mixer().memory().history;
    // The session's plan counts what the mixer allocated, textures included.
    assert_eq!(s.memory().mixer, s.mixer().memory(), "{method:?}");
    (s.logits_range(0, len).expect("logits"), history)
}

/// How many of `a` and `b` differ in any bit.
fn differing(a: &[f32], b: &[f32]) -> usize {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .filter(|(x, y)| x.to_bits() != y.to_bits())
        .count()
}

#[test]
fn texture_weights_match_buffer_weights_bit_for_bit() {
    // D = 96 with 3 layers: in_proj's 72 output quads end in a partial block of 8.
    let (layers, dim, vocab, len) = (3, 96, 40, 70);
    let model = Model::random(Config::new(layers, dim, vocab, len), 41).expect("model");
    let buf = upload(&model, WeightFormat::F32, WeightStorage::Buffer);
    let tex = upload(&model, WeightFormat::F32, WeightStorage::Texture);
    let vp = buf.config().padded_vocab();
    let seqs: Vec<Vec<u32>> = (0..2).map(|i| common::ids(len, vocab, 50 + i)).collect();
    let runs = [
        (Method::Flash, 1, 1),
        (Method::Flash, 1, 37),
        (Method::Flash, 2, 20),
        (Method::Lazy, 1, 1),
    ];
    for (method, batch, prompt) in runs {
        let seqs = &seqs[..batch];
        let (a, history_buf) = logits_and_history(&buf, method, seqs, prompt);
        let (b, history_tex) = logits_and_history(&tex, method, seqs, prompt);
        // Lazy's v history is in a texture as well as the arena, the others' only there.
        if method == Method::Lazy {
            assert!(history_tex > history_buf, "lazy: no v texture");
        } else {
            assert_eq!(history_tex, history_buf, "{method:?}");
        }
        let differ = differing(&a, &b);
        assert_eq!(
            differ, 0,
            "{method:?}, {batch} rows, prompt {prompt}: {differ} differ"
        );
        if batch == 1 {
            let want = flashconv::reference::forward(&model, &seqs[0]).expect("reference");
            let (err, row) = common::max_row_rel_err(&b, &want.logits, vp);
            assert!(
                err <= TOL,
                "texture weights: rel err {err} at position {row}"
            );
        }
    }
}

#[test]
fn lazy_history_texture_spans_several_rows() {
    // 16 quads a position over 300 positions: 4800 texels, three rows of 2048, so the
    // gate's stores and the lazy sums cross rows of the v and filter textures.
    let (dim, vocab, len) = (64, 30, 300);
    let model = Model::random(Config::new(1, dim, vocab, len), 53).expect("model");
    let buf = upload(&model, WeightFormat::F32, WeightStorage::Buffer);
    let tex = upload(&model, WeightFormat::F32, WeightStorage::Texture);
    let seqs = vec![common::ids(len, vocab, 54)];
    let a = logits(&buf, Method::Lazy, &seqs, 1);
    let b = logits(&tex, Method::Lazy, &seqs, 1);
    assert_eq!(differing(&a, &b), 0, "lazy logits differ");
    let want = flashconv::reference::forward(&model, &seqs[0]).expect("reference");
    let vp = tex.config().padded_vocab();
    let (err, row) = common::max_row_rel_err(&b, &want.logits, vp);
    assert!(
        err <= TOL,
        "lazy, textures: rel err {err} at position {row}"
    );
}

#[test]
fn texture_weights_generate_the_same_tokens() {
    let model = Model::random(Config::new(2, 64, 30, 90), 43).expect("model");
    let opts = GenerateOptions {
        max_tokens: 40,
        ..Default::default()
    };
    let prompt = [3, 1, 4, 1, 5];
    let tokens = |gm: &GpuModel| {
        let len = session_len(gm.config(), prompt.len(), opts.max_tokens).expect("len");
        let mut s = Session::new(gm, SessionOptions::new(Method::Flash, len)).expect("session");
        s.generate(&prompt, &opts, |_| {}).expect("generate").tokens
    };
    let a = tokens(&upload(&model, WeightFormat::F32, WeightStorage::Buffer));
    let b = tokens(&upload(&model, WeightFormat::F32, WeightStorage::Texture));
    assert_eq!(a.len(), 40);
    assert_eq!(a, b);
}

#[test]
fn f16_texture_weights_match_f16_buffer_weights() {
    let ctx = common::ctx();
    if !ctx.features.contains(wgpu::Features::SHADER_F16) {
        eprintln!("adapter without SHADER_F16: f16 weights are refused (tests/f16.rs)");
        return;
    }
    let (dim, vocab, len) = (64, 30, 50);
    let model = Model::random(Config::new(2, dim, vocab, len), 47).expect("model");
    let buf = upload(&model, WeightFormat::F16, WeightStorage::Buffer);
    let tex = upload(&model, WeightFormat::F16, WeightStorage::Texture);
    let seqs = vec![common::ids(len, vocab, 48)];
    let a = logits(&buf, Method::Flash, &seqs, 9);
    let b = logits(&tex, Method::Flash, &seqs, 9);
    let differ = differing(&a, &b);
    assert_eq!(
        differ, 0,
        "{differ} f16 logits differ between texture and buffer"
    );
    // Half the bytes of f32 textures (both padded to whole rows alike).
    let f32_tex = upload(&model, WeightFormat::F32, WeightStorage::Texture);
    assert!(tex.weight_bytes() < f32_tex.weight_bytes() * 6 / 10);
}

#[test]
fn auto_picks_textures_on_cpu_adapters_and_refuses_what_does_not_fit() {
    let ctx = common::ctx();
    let model = Model::random(Config::new(1, 32, 12, 16), 5).expect("model");
    let gm = GpuModel::new(&ctx, model).expect("upload");
    let want = if ctx.info.device_type == wgpu::DeviceType::Cpu {
        WeightStorage::Texture
    } else {
        WeightStorage::Buffer
    };
    assert_eq!(gm.storage(), want);
    // A texture limit of 64 texels per side cannot hold a 2048-texel-wide matrix.
    let small = flashconv::GpuContext::new_with_limits(|l| l.max_texture_dimension_2d = 64)
        .expect("context with a small texture limit");
    let model = Model::random(Config::new(1, 32, 12, 16), 5).expect("model");
    let err = GpuModel::with_storage(
        &small,
        model.clone(),
        WeightFormat::F32,
        WeightStorage::Texture,
    )
    .expect_err("texture over the limit");
    let msg = err.to_string();
    assert!(msg.contains("texture") && msg.contains("64"), "{msg}");
    let auto = GpuModel::new(&small, model).expect("auto falls back to buffers");
    assert_eq!(auto.storage(), WeightStorage::Buffer);
}
