//! The CPU f64 reference and the loader against an independent fixture: a HyenaDNA
//! checkpoint and its logits produced by tools/make_fixture.py (numpy, written from the
//! HF code's equations, not from this crate).

use flashconv::model::{read_all_f32, Model};
use std::path::Path;

fn fixture() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/hf_tiny"
    ))
}

fn max_abs_diff(a: &[f64], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - *y as f64).abs())
        .fold(0.0, f64::max)
}

#[test]
fn reference_matches_hf_fixture() {
    let model = Model::load(fixture()).expect("load fixture");
    let exp = read_all_f32(&fixture().join("expected.safetensors")).expect("expected");
    let ids: Vec<u32> = exp["input_ids"].1.iter().map(|&x| x as u32).collect();
    let out = flashconv::reference::forward(&model, &ids).expect("forward");
    // The fixture is f64 throughout; our reference is f64 from f32 weights: the only
    // difference is rounding, so a tight tolerance holds.
    let dl = max_abs_diff(&out.logits, &exp["logits"].1);
    let dh = max_abs_diff(&out.hidden, &exp["hidden"].1);
    eprintln!("fixture: max |logit diff| {dl:.3e}, max |hidden diff| {dh:.3e}");
    assert!(dl < 1e-4, "logits differ by {dl}");
    assert!(dh < 1e-4, "hidden differ by {dh}");
    for i in 0..model.config.n_layer {
        let n = ids.len();
        let k = model.filter(i, n).expect("filter");
        let dk = max_abs_diff(&k, &exp[&format!("filter.{i}")].1);
        assert!(dk < 1e-5, "layer {i} filter differs by {dk}");
    }
}

#[test]
fn random_model_round_trips_bit_identical() {
    let cfg = flashconv::Config::new(2, 20, 11, 64);
    let model = Model::random(cfg, 5).expect("random");
    let dir = std::env::temp_dir().join(format!("flashconv-rt-{}", std::process::id()));
    model.save(&dir).expect("save");
    let back = Model::load(&dir).expect("load");
    assert_eq!(model, back);
    let _ = std::fs::remove_dir_all(&dir);
}
