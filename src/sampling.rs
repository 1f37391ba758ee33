//! Reproducible sampling: greedy, temperature, top-k, top-p.
//!
//! The random number for a draw is counter-based, keyed by (seed, sequence row,
//! position) and computed with 32-bit integer operations only, so a GPU or wasm
//! implementation can reproduce it bit for bit. Order of operations: temperature, then
//! top-k, then top-p; ties are broken towards the lowest token id.

use crate::error::{Error, Result};
use crate::gpu::{param_block, Access, Bind, GpuContext, Kernel, Step};
use crate::shaders::Shader;

/// WGSL source of the GPU sampler.
pub(crate) const SAMPLING_WGSL: &str = include_str!("../shaders/sampling.wgsl");

/// The GPU sampler: one workgroup per token picks the next id by [`sample`]'s rule (in
/// f32) from a logits row on the device and writes it where the next position's
/// embedding reads it, so generation needs no CPU round trip per token.
#[derive(Debug)]
pub(crate) struct GpuSampler {
    greedy: Kernel,
    rank: Kernel,
    top_p: Kernel,
    draw: Kernel,
}

/// Where one draw reads and writes (element offsets in the bound buffers).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Draw {
    /// Offset of the logits row.
    pub(crate) row_off: u32,
    /// Position of the new token: the draw's counter.
    pub(crate) pos: u32,
    /// Slot of the new token in the tokens buffer (`pos` for one sequence,
    /// `pos * B + b` for sequence b of a batched session).
    pub(crate) tok_idx: u32,
    /// Slot of the id in the read-back buffer.
    pub(crate) out_idx: u32,
    /// Sequence row of the draw: part of the draw's key (0 for a session's sequences,
    /// which take their own seeds instead).
    pub(crate) row: u32,
}

param_block! {
    /// The sampling kernels' parameter block (`SampleParams` in `sampling.wgsl`).
    pub(crate) struct SampleParams as "SampleParams" {
        /// Candidates: ids 0 .. vocab (padded columns never sampled).
        vocab: u32,
        /// Offset of the logits row in `logits`.
        row_off: u32,
        /// Position of the new token: the draw's counter.
        pos: u32,
        /// Temperature; 0 = greedy.
        temp: f32,
        /// 0 = all.
        top_k: u32,
        /// 1 = all.
        top_p: f32,
        seed_lo: u32,
        seed_hi: u32,
        /// Sequence row of the draw.
        row: u32,
        /// Slot in `out`.
        out_idx: u32,
        /// Slot of the new token in `tokens` (pos * B + row of a batch).
        tok_idx: u32,
        pad1: u32,
        pad2: [u32; 4],
    }
}

impl GpuSampler {
    /// Compiles the sampler.
    pub fn new(ctx: &GpuContext) -> Result<Self> {
        let access = [
            Access::Read,
            Access::ReadWrite,
            Access::ReadWrite,
            Access::ReadWrite,
        ];
        let source = Shader::Sampling.source();
        let k = |entry| Kernel::new(ctx, &source, entry, &access);
        Ok(GpuSampler {
            greedy: k("sample_greedy")?,
            rank: k("sample_rank")?,
            top_p: k("sample_top_p")?,
            draw: k("sample_draw")?,
        })
    }

    /// Bind group over (logits, tokens, read-back ids, scratch of 3 x vocab floats);
    /// the four kernels share one layout.
    pub fn bind(&self, ctx: &GpuContext, bufs: [&wgpu::Buffer; 4]) -> wgpu::BindGroup {
        self.greedy.bind(ctx, &bufs)
    }

    /// Dispatches per draw (for sizing a parameter arena).
    pub const MAX_DISPATCHES: usize = 3;

    /// Records one draw over the first `vocab` logits of the row: one dispatch when
    /// greedy, three when sampling.
    pub fn record(
        &self,
        step: &mut Step<'_>,
        bind: &wgpu::BindGroup,
        (p, vocab): (&SamplingParams, usize),
        d: Draw,
    ) -> Result<()> {
        let w = SampleParams {
            vocab: vocab as u32,
            row_off: d.row_off,
            pos: d.pos,
            temp: p.temperature,
            top_k: p.top_k.min(u32::MAX as usize) as u32,
            top_p: p.top_p,
            seed_lo: p.seed as u32,
            seed_hi: (p.seed >> 32) as u32,
            row: d.row,
            out_idx: d.out_idx,
            tok_idx: d.tok_idx,
            ..Default::default()
        };
        let groups = (vocab as u32).div_ceil(64);
        if p.temperature == 0.0 || vocab <= 1 {
            return step.dispatch(&self.greedy, bind, &w, groups);
        }
        for k in [&self.rank, &self.top_p, &self.draw] {
            step.dispatch(k, bind, &w, groups)?;
        }
        Ok(())
    }
}

/// Sampling parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SamplingParams {
    /// 0 means greedy (argmax).
    pub temperature: f32,
    /// Keep the k most likely tokens (0 = all).
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches p (1 = all).
    pub top_p: f32,
    /// Seed of the counter-based random numbers.
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            seed: 0,
        }
    }
}

impl SamplingParams {
    /// Greedy decoding.
    pub fn greedy() -> Self {
        Self::default()
    }

    /// Checks ranges; the message names the parameter.
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(Error::input(format!(
                "temperature must be >= 0 (0 = greedy), got {}",
                self.temperature
            )));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(Error::input(format!(
                "top-p must be in (0, 1], got {}",
                self.top_p
            )));
        }
        Ok(())
    }
}

/// PCG-style 32-bit hash (one round of the PCG RXS-M-XS output permutation).
pub fn hash32(x: u32) -> u32 {
    let state = x.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
    let word = ((state >> ((state >> 28) + 4)) ^ state).wrapping_mul(277_803_737);
    (word >> 22) ^ word
}

/// The uniform number in [0, 1) for draw (`seed`, `row`, `pos`): 24 random bits, so the
/// value is exact in f32 on every device.
pub fn uniform(seed: u64, row: u32, pos: u32) -> f32 {
    let lo = seed as u32;
    let hi = (seed >> 32) as u32;
    let h = hash32(lo ^ hash32(hi ^ hash32(row ^ hash32(pos))));
    (h >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// Picks the next token from `logits` (only the first `vocab` entries are candidates:
/// padded vocabulary columns are never sampled).
pub fn sample(logits: &[f32], vocab: usize, p: &SamplingParams, row: u32, pos: u32) -> u32 {
    let logits = &logits[..vocab.min(logits.len())];
    if p.temperature == 0.0 || logits.len() <= 1 {
        return argmax(logits);
    }
    // Candidates sorted by descending logit, ties to the lowest id.
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    idx.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    if p.top_k > 0 {
        idx.truncate(p.top_k);
    }
    let inv_t = 1.0 / p.temperature as f64;
    let top = logits[idx[0]] as f64;
    let weights: Vec<f64> = idx
        .iter()
        .map(|&i| ((logits[i] as f64 - top) * inv_t).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let mut keep = weights.len();
    if p.top_p < 1.0 {
        let mut cum = 0.0;
        for (n, w) in weights.iter().enumerate() {
            cum += w / total;
            if cum >= p.top_p as f64 {
                keep = n + 1;
                break;
            }
        }
    }
    let kept: f64 = weights[..keep].iter().sum();
    let target = uniform(p.seed, row, pos) as f64 * kept;
    let mut cum = 0.0;
    for n in 0..keep {
        cum += weights[n];
        if target < cum {
            return idx[n] as u32;
        }
    }
    idx[keep - 1] as u32
}

/// Index of the largest value, the lowest index on ties (NaN never wins).
pub fn argmax(v: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] || v[best].is_nan() {
            best = i;
        }
    }
    best as u32
}

/// Difference between the largest and second-largest of `v` (the greedy margin).
pub fn top2_margin(v: &[f32]) -> f32 {
    let (mut a, mut b) = (f32::NEG_INFINITY, f32::NEG_INFINITY);
    for &x in v {
        if x > a {
            b = a;
            a = x;
        } else if x > b {
            b = x;
        }
    }
    a - b
}

/// A small deterministic generator (SplitMix64) for random models and tests.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.next_f64().max(1e-300);
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_lowest_id_on_ties() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        let p = SamplingParams::greedy();
        assert_eq!(
            sample(&[0.0, 5.0, 9.0], 2, &p, 0, 0),
            1,
            "padded column ignored"
        );
    }

    #[test]
    fn uniform_is_reproducible_and_spread() {
        let a: Vec<f32> = (0..1000).map(|i| uniform(42, 0, i)).collect();
        let b: Vec<f32> = (0..1000).map(|i| uniform(42, 0, i)).collect();
        assert_eq!(a, b);
        assert!(a.iter().all(|&x| (0.0..1.0).contains(&x)));
        let mean = a.iter().sum::<f32>() / 1000.0;
        assert!((mean - 0.5).abs() < 0.05, "mean {mean}");
        assert_ne!(uniform(42, 1, 0), uniform(42, 0, 0));
        assert_ne!(uniform(43, 0, 0), uniform(42, 0, 0));
    }

    #[test]
    fn top_k_one_is_greedy_and_top_p_small_is_greedy() {
        let logits = [0.5, 2.0, 1.9, -1.0];
        for pos in 0..50 {
            let k1 = SamplingParams {
                temperature: 1.0,
                top_k: 1,
                ..Default::default()
            };
            assert_eq!(sample(&logits, 4, &k1, 0, pos), 1);
            let p = SamplingParams {
                temperature: 1.0,
                top_p: 1e-3,
                ..Default::default()
            };
            assert_eq!(sample(&logits, 4, &p, 0, pos), 1);
        }
    }

    #[test]
    fn temperature_sampling_follows_softmax() {
        let logits = [0.0f32, 1.0_f32.ln(), 2.0_f32.ln()]; // probabilities 1/4, 1/4, 1/2
        let p = SamplingParams {
            temperature: 1.0,
            seed: 7,
            ..Default::default()
        };
        let mut counts = [0usize; 3];
        for pos in 0..4000 {
            counts[sample(&logits, 3, &p, 0, pos) as usize] += 1;
        }
        let frac = counts[2] as f64 / 4000.0;
        assert!((frac - 0.5).abs() < 0.04, "counts {counts:?}");
    }

    #[test]
    fn bad_params_are_named() {
        let bad_t = SamplingParams {
            temperature: -1.0,
            ..Default::default()
        };
        assert!(bad_t
            .validate()
            .expect_err("t")
            .to_string()
            .contains("temperature"));
        let bad_p = SamplingParams {
            top_p: 0.0,
            ..Default::default()
        };
        assert!(bad_p
            .validate()
            .expect_err("p")
            .to_string()
            .contains("top-p"));
    }
}
