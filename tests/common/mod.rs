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
