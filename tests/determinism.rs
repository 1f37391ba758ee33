//! Determinism: the same model, prompt, seed and method give identical tokens across
//! runs and devices of one driver; flash, lazy and eager agree; and the Vulkan and GL
//! drivers agree on the logits within the tolerance everywhere and on greedy tokens
//! wherever the reference's top-2 margin exceeds it.
//!
//! `FLASHCONV_TEST_BACKENDS=vulkan,gl` (as CI sets) makes each listed backend required;
//! unset, the cross-backend test compares whichever of the two are present.

mod common;

use flashconv::sampling::SamplingParams;
use flashconv::session::{session_len, GenerateOptions};
use flashconv::{Config, GpuContext, GpuModel, Method, Model, Session, SessionOptions};

const TOL: f64 = 1e-4;

fn generate(gm: &GpuModel, method: Method, prompt: &[u32], n: usize, temp: f32) -> Vec<u32> {
    let len = session_len(gm.config(), prompt.len(), n).expect("len");
    let mut s = Session::new(gm, SessionOptions::new(method, len)).expect("session");
    let opts = GenerateOptions {
        max_tokens: n,
        sampling: SamplingParams {
            temperature: temp,
            top_k: 5,
            top_p: 0.9,
            seed: 4242,
        },
        ..Default::default()
    };
    s.generate(prompt, &opts, |_| {}).expect("generate").tokens
}

fn model() -> Model {
    Model::random(Config::new(2, 32, 12, 400), 99).expect("random model")
}

/// Sampled (not greedy) generation repeats exactly: two sessions on one device, and a
/// second device of the same adapter, for each method.
#[test]
fn same_seed_same_tokens_across_runs_and_devices() {
    let prompt = common::ids(7, 12, 1);
    let a = GpuModel::new(&common::ctx(), model()).expect("upload");
    let b = GpuModel::new(&common::ctx(), model()).expect("upload on a second device");
    for method in [Method::Flash, Method::Lazy, Method::Eager] {
        let first = generate(&a, method, &prompt, 150, 1.0);
        assert_eq!(
            first,
            generate(&a, method, &prompt, 150, 1.0),
            "{method}: rerun"
        );
        assert_eq!(
            first,
            generate(&b, method, &prompt, 150, 1.0),
            "{method}: device 2"
        );
    }
}

fn wanted_backends() -> Vec<(&'static str, wgpu::Backends, bool)> {
    let want = std::env::var("FLASHCONV_TEST_BACKENDS").unwrap_or_default();
    [
        ("vulkan", wgpu::Backends::VULKAN),
        ("gl", wgpu::Backends::GL),
    ]
    .into_iter()
    .map(|(name, b)| (name, b, want.split(',').any(|w| w.trim() == name)))
    .collect()
}

#[test]
fn backends_agree() {
    let mut ctxs: Vec<(&str, GpuContext)> = Vec::new();
    for (name, backends, required) in wanted_backends() {
        match GpuContext::on_backends(backends) {
            Ok(c) => ctxs.push((name, c)),
            Err(e) if required => panic!("backend {name} required but unavailable: {e}"),
            Err(e) => eprintln!("backend {name} not available, not compared: {e}"),
        }
    }
    assert!(!ctxs.is_empty(), "neither Vulkan nor GL is available");
    let model = model();
    let vocab = model.config.vocab_size;
    let vp = model.config.padded_vocab();
    let ids = common::ids(300, vocab, 3);
    let want = flashconv::reference::forward(&model, &ids).expect("reference");
    let prompt = &ids[..5];
    let n = 120;
    let mut greedy: Vec<(String, Vec<u32>)> = Vec::new();
    let mut logits: Vec<(String, Vec<f32>)> = Vec::new();
    for (name, ctx) in &ctxs {
        eprintln!("{name}: {}", ctx.describe());
        let gm = GpuModel::new(ctx, model.clone()).expect("upload");
        for method in [Method::Flash, Method::Lazy, Method::Eager] {
            let mut opts = SessionOptions::new(method, ids.len());
            opts.logit_rows = ids.len();
            let mut s = Session::new(&gm, opts).expect("session");
            s.feed(&ids).expect("feed");
            let got = s.logits_range(0, ids.len()).expect("logits");
            let (err, row) = common::max_row_rel_err(&got, &want.logits, vp);
            eprintln!("{name} {method}: logits vs reference {err:.1e} (pos {row})");
            assert!(err <= TOL, "{name} {method}: {err} at {row}");
            logits.push((format!("{name} {method}"), got));
            greedy.push((
                format!("{name} {method}"),
                generate(&gm, method, prompt, n, 0.0),
            ));
        }
    }
    // Logits of every run against every other, within the tolerance.
    let (base_name, base) = &logits[0];
    for (name, got) in &logits[1..] {
        let as_f64: Vec<f64> = base.iter().map(|&x| x as f64).collect();
        let (err, row) = common::max_row_rel_err(got, &as_f64, vp);
        eprintln!("{name} vs {base_name}: {err:.1e} (pos {row})");
        assert!(err <= 2.0 * TOL, "{name} vs {base_name}: {err} at {row}");
    }
    // Greedy tokens: identical up to the first position where the reference's top-2
    // margin is within the tolerance (past a near-tie drivers may legitimately differ).
    let checked = common::check_greedy_against_reference(&model, prompt, &greedy, TOL);
    eprintln!(
        "greedy: {checked} tokens compared across {} runs",
        greedy.len()
    );
    assert!(checked >= 40, "only {checked} tokens had a clear margin");
}
