//! Helpers shared by the integration tests.
#![allow(dead_code)]

use flashconv::GpuContext;

/// The test device: whatever adapter the environment picks (CI sets WGPU_BACKEND=vulkan
/// and has lavapipe). A missing adapter fails the test: GPU tests never pass vacuously.
pub fn ctx() -> GpuContext {
    match GpuContext::new() {
        Ok(c) => c,
        Err(e) => panic!("no GPU adapter for the tests: {e}"),
    }
}

/// Deterministic token ids in 0..vocab.
pub fn ids(n: usize, vocab: usize, seed: u64) -> Vec<u32> {
    let mut rng = flashconv::sampling::SplitMix64::new(seed);
    (0..n)
        .map(|_| (rng.next_u64() % vocab as u64) as u32)
        .collect()
}

/// Largest relative error of a row-major [n][w] f32 matrix against an f64 reference,
/// each row's error scaled by max(1, max |reference row|).
pub fn max_row_rel_err(got: &[f32], want: &[f64], w: usize) -> (f64, usize) {
    assert_eq!(got.len(), want.len(), "shape mismatch");
    let mut worst = (0.0, 0);
    for (r, (g, e)) in got.chunks(w).zip(want.chunks(w)).enumerate() {
        let scale = e.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        let err = g
            .iter()
            .zip(e)
            .map(|(a, b)| (*a as f64 - b).abs())
            .fold(0.0, f64::max)
            / scale;
        if err > worst.0 {
            worst = (err, r);
        }
    }
    worst
}

/// Checks greedy runs (`(name, tokens)`, all after `prompt`) against the f64 reference's
/// argmax along the first run's sequence, up to the first position where the reference's
/// top-2 margin is within `10 * tol * scale` (past a near-tie, devices and methods may
/// legitimately diverge). Returns how many tokens were compared.
#[allow(dead_code)] // not every test binary uses every helper
pub fn check_greedy_against_reference(
    model: &flashconv::Model,
    prompt: &[u32],
    runs: &[(String, Vec<u32>)],
    tol: f64,
) -> usize {
    let vocab = model.config.vocab_size;
    let vp = model.config.padded_vocab();
    let mut seq = prompt.to_vec();
    seq.extend_from_slice(&runs[0].1);
    let want = flashconv::reference::forward(model, &seq[..seq.len() - 1]).expect("reference");
    let mut checked = 0;
    for i in 0..runs[0].1.len() {
        let pos = prompt.len() - 1 + i;
        let row: Vec<f32> = want.logits[pos * vp..pos * vp + vocab]
            .iter()
            .map(|&x| x as f32)
            .collect();
        let scale = row.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        if flashconv::sampling::top2_margin(&row) as f64 <= 10.0 * tol * scale as f64 {
            break;
        }
        let best = flashconv::sampling::argmax(&row);
        for (name, run) in runs {
            assert_eq!(run[i], best, "{name}: token {i}");
        }
        checked += 1;
    }
    checked
}

/// A (name, dtype, shape, raw bytes) tensor, as the malformed-file tests edit them.
#[allow(dead_code)]
pub type RawTensor = (String, safetensors::Dtype, Vec<usize>, Vec<u8>);

/// Serializes `tensors` as a valid safetensors file (whatever their contents mean).
#[allow(dead_code)]
pub fn serialize_raw(tensors: &[RawTensor]) -> Vec<u8> {
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, dt, s, b)| {
            let view = safetensors::tensor::TensorView::new(*dt, s.clone(), b).expect("view");
            (n.clone(), view)
        })
        .collect();
    safetensors::serialize(views, None).expect("serialize")
}
