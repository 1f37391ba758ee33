//! The GPU forward pass (all three methods) on the independent HyenaDNA fixture
//! (tools/make_fixture.py): logits and hidden states match the fixture's.

mod common;

use flashconv::model::read_all_f32;
use flashconv::{GpuModel, Method, Model, Session, SessionOptions};
use std::path::Path;

#[test]
fn gpu_matches_hf_fixture() {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/hf_tiny"
    ));
    let model = Model::load(dir).expect("load fixture");
    let exp = read_all_f32(&dir.join("expected.safetensors")).expect("expected");
    let ids: Vec<u32> = exp["input_ids"].1.iter().map(|&x| x as u32).collect();
    let want_logits: Vec<f64> = exp["logits"].1.iter().map(|&x| x as f64).collect();
    let want_hidden: Vec<f64> = exp["hidden"].1.iter().map(|&x| x as f64).collect();
    let (vp, d) = (model.config.padded_vocab(), model.config.d_model);
    let ctx = common::ctx();
    let gm = GpuModel::new(&ctx, model).expect("upload");
    for method in [Method::Flash, Method::Lazy, Method::Eager] {
        let mut opts = SessionOptions::new(method, ids.len());
        opts.logit_rows = ids.len();
        let mut s = Session::new(&gm, opts).expect("session");
        s.feed(&ids).expect("feed");
        let logits = s.logits_range(0, ids.len()).expect("logits");
        let hidden = s.hidden_range(0, ids.len()).expect("hidden");
        let (el, pl) = common::max_row_rel_err(&logits, &want_logits, vp);
        let (eh, ph) = common::max_row_rel_err(&hidden, &want_hidden, d);
        eprintln!("{method}: logits rel err {el:.2e} (pos {pl}), hidden {eh:.2e} (pos {ph})");
        assert!(
            el <= 1e-4 && eh <= 1e-4,
            "{method}: logits {el}, hidden {eh}"
        );
    }
}
