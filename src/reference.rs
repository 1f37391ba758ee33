//! CPU f64 reference implementation of the whole model with a direct (lazy) causal
//! convolution: the test oracle for every GPU path. Slow on purpose: simple and exact.

use crate::error::{Error, Result};
use crate::model::Model;

/// Logits and final hidden states of a sequence, row-major `[n][V_pad]` and `[n][D]`.
#[derive(Clone, Debug)]
pub struct Output {
    /// Logits of every position over the padded vocabulary.
    pub logits: Vec<f64>,
    /// Hidden states after `ln_f`.
    pub hidden: Vec<f64>,
    /// Residual stream after each block, `[M][n][D]` (for debugging and tests).
    pub block_out: Vec<Vec<f64>>,
}

/// PyTorch LayerNorm of one row (biased variance).
pub fn layer_norm(x: &[f64], w: &[f32], b: &[f32], eps: f64, out: &mut [f64]) {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    let inv = 1.0 / (var + eps).sqrt();
    for i in 0..x.len() {
        out[i] = (x[i] - mean) * inv * w[i] as f64 + b[i] as f64;
    }
}

/// GELU, tanh approximation (as `F.gelu(approximate="tanh")`).
pub fn gelu_tanh(x: f64) -> f64 {
    const C: f64 = 0.797_884_560_802_865_4; // sqrt(2 / pi)
    0.5 * x * (1.0 + (C * (x + 0.044_715 * x * x * x)).tanh())
}

/// `out = W x + b` for `W` [out, in] row-major.
pub fn linear(w: &[f32], b: Option<&[f32]>, x: &[f64], out: &mut [f64]) {
    let inp = x.len();
    for (o, slot) in out.iter_mut().enumerate() {
        let row = &w[o * inp..(o + 1) * inp];
        let mut acc = b.map_or(0.0, |b| b[o] as f64);
        for (wi, xi) in row.iter().zip(x) {
            acc += *wi as f64 * xi;
        }
        *slot = acc;
    }
}

/// Runs `ids` through the model (the whole sequence at once, direct convolution).
pub fn forward(model: &Model, ids: &[u32]) -> Result<Output> {
    let c = &model.config;
    let n = ids.len();
    if n > c.max_seq_len {
        return Err(Error::input(format!(
            "sequence of {n} tokens exceeds max_seq_len {}",
            c.max_seq_len
        )));
    }
    let mut x = embed(model, ids)?;
    let mut block_out = Vec::with_capacity(c.n_layer);
    for (li, l) in model.layers.iter().enumerate() {
        let k = model.filter(li, n)?;
        block(c, l, &k, &mut x, n);
        block_out.push(x.clone());
    }
    let (hidden, logits) = head(model, &x, n);
    Ok(Output {
        logits,
        hidden,
        block_out,
    })
}

/// The embedding rows of `ids`, `[n][D]`.
fn embed(model: &Model, ids: &[u32]) -> Result<Vec<f64>> {
    let (d, vp) = (model.config.d_model, model.config.padded_vocab());
    let mut x = vec![0f64; ids.len() * d];
    for (t, &id) in ids.iter().enumerate() {
        if id as usize >= vp {
            return Err(Error::input(format!(
                "token id {id} at position {t} is out of range (vocabulary {vp})"
            )));
        }
        let row = &model.embed[id as usize * d..(id as usize + 1) * d];
        for i in 0..d {
            x[t * d + i] = row[i] as f64;
        }
    }
    Ok(x)
}

/// One block over the whole sequence `x` (`[n][D]`, updated in place), with its filter
/// `k` (`[D][n]`): the mixer (in_proj, short conv, gate, long convolution, out_proj)
/// and the MLP, each behind its norm and residual add.
fn block(c: &crate::Config, l: &crate::model::Layer, k: &[f64], x: &mut [f64], n: usize) {
    let (d, di) = (c.d_model, c.d_inner);
    let mut xn = vec![0f64; d];
    let mut u = vec![0f64; n * 3 * d];
    for t in 0..n {
        layer_norm(
            &x[t * d..(t + 1) * d],
            &l.norm1_w,
            &l.norm1_b,
            1e-5,
            &mut xn,
        );
        linear(
            &l.in_proj_w,
            Some(&l.in_proj_b),
            &xn,
            &mut u[t * 3 * d..(t + 1) * 3 * d],
        );
    }
    let (x0, v) = short_conv(l, &u, n, d);
    let (mut y, mut zx, mut a, mut m) =
        (vec![0f64; d], vec![0f64; d], vec![0f64; di], vec![0f64; d]);
    for t in 0..n {
        for ch in 0..d {
            let kc = &k[ch * n..(ch + 1) * n];
            let mut z = l.filter_bias[ch] as f64 * v[t * d + ch];
            for s in 0..=t {
                z += kc[t - s] * v[s * d + ch];
            }
            zx[ch] = z * x0[t * d + ch];
        }
        linear(&l.out_proj_w, Some(&l.out_proj_b), &zx, &mut y);
        for i in 0..d {
            x[t * d + i] += y[i];
        }
        layer_norm(
            &x[t * d..(t + 1) * d],
            &l.norm2_w,
            &l.norm2_b,
            1e-5,
            &mut xn,
        );
        linear(&l.fc1_w, Some(&l.fc1_b), &xn, &mut a);
        a.iter_mut().for_each(|e| *e = gelu_tanh(*e));
        linear(&l.fc2_w, Some(&l.fc2_b), &a, &mut m);
        for i in 0..d {
            x[t * d + i] += m[i];
        }
    }
}

/// Short causal depthwise conv of in_proj's outputs `u` (`[n][3D]`; kernel 3, PyTorch
/// Conv1d with padding 2, truncated): out[t] = w0 u[t-2] + w1 u[t-1] + w2 u[t] + b.
/// Then split [x0 | x1 | v] and gate v *= x1. Returns (x0, v), each `[n][D]`.
fn short_conv(l: &crate::model::Layer, u: &[f64], n: usize, d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut x0 = vec![0f64; n * d];
    let mut v = vec![0f64; n * d];
    for t in 0..n {
        for ch in 0..3 * d {
            let w = &l.short_w[ch * 3..ch * 3 + 3];
            let mut acc = l.short_b[ch] as f64 + w[2] as f64 * u[t * 3 * d + ch];
            if t >= 1 {
                acc += w[1] as f64 * u[(t - 1) * 3 * d + ch];
            }
            if t >= 2 {
                acc += w[0] as f64 * u[(t - 2) * 3 * d + ch];
            }
            match ch / d {
                0 => x0[t * d + ch] = acc,
                1 => v[t * d + ch - d] = acc, // x1 for now
                _ => v[t * d + ch - 2 * d] *= acc,
            }
        }
    }
    (x0, v)
}

/// ln_f and lm_head over the final `x`: (hidden `[n][D]`, logits `[n][V_pad]`).
fn head(model: &Model, x: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let c = &model.config;
    let (d, vp) = (c.d_model, c.padded_vocab());
    let mut hidden = vec![0f64; n * d];
    let mut logits = vec![0f64; n * vp];
    for t in 0..n {
        let h = &mut hidden[t * d..(t + 1) * d];
        layer_norm(
            &x[t * d..(t + 1) * d],
            &model.ln_f_w,
            &model.ln_f_b,
            c.layer_norm_epsilon,
            h,
        );
        linear(&model.lm_head, None, h, &mut logits[t * vp..(t + 1) * vp]);
    }
    (hidden, logits)
}
