//! f16 weights (opt-in): logits against the f32 path and the f64 reference, within a
//! stated bound; a clear error on adapters without SHADER_F16.

mod common;

use flashconv::session::WeightFormat;
use flashconv::{Config, GpuModel, Method, Model, Session, SessionOptions};

/// Relative logit error of f16 weights (per position, scaled by the row's largest
/// |logit|). f16 keeps 11 significant bits (relative rounding 2^-12 = 2.4e-4 per
/// weight); summed over a few hundred products with random signs that stays near 1e-3.
const F16_TOL: f64 = 5e-3;

fn logits(gm: &GpuModel, ids: &[u32]) -> Vec<f32> {
    let mut opts = SessionOptions::new(Method::Flash, ids.len());
    opts.logit_rows = ids.len();
    let mut s = Session::new(gm, opts).expect("session");
    s.feed(ids).expect("feed");
    s.logits_range(0, ids.len()).expect("logits")
}

#[test]
fn f16_weights_stay_within_the_stated_bound() {
    let ctx = common::ctx();
    let (layers, dim, vocab, len) = (2, 96, 40, 120);
    let model = Model::random(Config::new(layers, dim, vocab, len), 31).expect("model");
    let ids = common::ids(len, vocab, 32);
    if !ctx.features.contains(wgpu::Features::SHADER_F16) {
        let err = GpuModel::with_format(&ctx, model, WeightFormat::F16).expect_err("no f16");
        assert!(err.to_string().contains("SHADER_F16"), "{err}");
        eprintln!("adapter without SHADER_F16: refused with: {err}");
        return;
    }
    let want = flashconv::reference::forward(&model, &ids).expect("reference");
    let f32_model = GpuModel::new(&ctx, model.clone()).expect("f32 upload");
    let f16_model = GpuModel::with_format(&ctx, model, WeightFormat::F16).expect("f16 upload");
    assert_eq!(f16_model.format(), WeightFormat::F16);
    assert!(
        f16_model.weight_bytes() < f32_model.weight_bytes() * 6 / 10,
        "f16 weights should take about half the bytes: {} vs {}",
        f16_model.weight_bytes(),
        f32_model.weight_bytes()
    );
    let vp = f32_model.config().padded_vocab();
    let (a, b) = (logits(&f32_model, &ids), logits(&f16_model, &ids));
    let (e32, _) = common::max_row_rel_err(&a, &want.logits, vp);
    let (e16, row) = common::max_row_rel_err(&b, &want.logits, vp);
    let a64: Vec<f64> = a.iter().map(|&v| v as f64).collect();
    let (between, _) = common::max_row_rel_err(&b, &a64, vp);
    eprintln!("rel err vs f64 reference: f32 {e32:.2e}, f16 {e16:.2e}; f16 vs f32 {between:.2e}");
    assert!(e32 <= 1e-4, "f32 path off: {e32}");
    assert!(
        e16 <= F16_TOL,
        "f16 rel err {e16} at position {row} > {F16_TOL}"
    );
    assert!(between > 0.0, "the f16 path must actually differ from f32");
}
