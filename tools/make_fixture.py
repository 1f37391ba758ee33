#!/usr/bin/env python3
"""Build the tiny HyenaDNA test fixture used by flashconv's tests.

Writes, into tests/fixtures/hf_tiny/ (or --out):

  config.json            HF-style HyenaConfig fields (model_type "hyenadna")
  model.safetensors      random float32 weights under the HF port's tensor names
  expected.safetensors   a float64 reference forward pass (stored as float32)

The reference forward pass is an independent numpy re-implementation of the
equations of the Hugging Face port of HyenaDNA (HyenaDNAForCausalLM in
modeling_hyena.py). It is evaluated in float64 on the float32-rounded weights
that are written to model.safetensors, so the expected values are an exact
function of the stored checkpoint (up to float64 rounding).

Needs only:  pip install numpy safetensors
Deterministic: a fixed seed is used, re-running gives identical files.
"""

import argparse
import json
import math
import os
import sys

import numpy as np
from safetensors.numpy import save_file

SEED = 20240601

CONFIG = {
    "model_type": "hyenadna",
    "d_model": 24,
    "n_layer": 2,
    "d_inner": 96,
    "vocab_size": 12,
    "pad_vocab_size_multiple": 8,
    "max_seq_len": 160,
    "emb_dim": 5,
    "filter_order": 16,
    "short_filter_order": 3,
    "hyena_order": 2,
    "num_inner_mlps": 2,
    "activation_freq": 10,
    "train_freq": True,
    "use_bias": True,
    "layer_norm_epsilon": 1e-5,
    "tie_word_embeddings": False,
    "embed_dropout": 0.1,
    "hyena_dropout": 0.0,
    "hyena_filter_dropout": 0.0,
    "initializer_range": 0.02,
}

# HF CharacterTokenizer ids: [CLS]=0 [SEP]=1 [BOS]=2 [MASK]=3 [PAD]=4
# [RESERVED]=5 [UNK]=6, then the characters A C G T N from 7 on.
TOKEN_IDS = {"A": 7, "C": 8, "G": 9, "T": 10, "N": 11}
SEP_ID = 1
UNK_ID = 6

N_TOKENS = 150  # must be <= max_seq_len
BLOCK_NORM_EPS = 1e-5  # HF HyenaBlock builds norm1/norm2 with nn.LayerNorm's default eps
MODULATION_SHIFT = 0.05  # HyenaExponentialModulation(shift=0.05) in the HF port
SHORT_CONV_PADDING = 2  # hard-coded padding=2 of the HF short_filter Conv1d


def padded_vocab_size(cfg):
    v, m = cfg["vocab_size"], cfg["pad_vocab_size_multiple"]
    if v % m:
        v += m - v % m
    return v


# --------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------

def positional_z_and_t(seq_len, emb_dim):
    """z and t as HyenaPositionalEmbedding builds them (before any training).

    t: [1, L, 1] = linspace(0, 1, L)
    z: [1, L, emb_dim] = concat(t, cos(-f*w), sin(-f*w)) with
       w = 2*pi*arange(L)/L and f = linspace(1e-4, bands-1, bands),
       bands = (emb_dim-1)//2.
    """
    bands = (emb_dim - 1) // 2
    t = np.linspace(0.0, 1.0, seq_len)[None, :, None]
    ramp = np.linspace(0.0, seq_len - 1, seq_len)[None, :, None]
    w = 2.0 * math.pi * ramp / seq_len
    f = np.linspace(1e-4, bands - 1, bands)[None, None, :]
    z = np.concatenate([t, np.cos(-f * w), np.sin(-f * w)], axis=-1)
    assert z.shape == (1, seq_len, emb_dim)
    return z, t


def initial_deltas(d_model, fast_decay_pct=0.3, slow_decay_pct=1.5, target=1e-2):
    max_decay = math.log(target) / fast_decay_pct
    min_decay = math.log(target) / slow_decay_pct
    return np.linspace(min_decay, max_decay, d_model)[None, None, :]


def make_weights(cfg, rng):
    """Random float32 weights, keyed by HF state-dict names."""
    D = cfg["d_model"]
    Di = cfg["d_inner"]
    V = padded_vocab_size(cfg)
    L = cfg["max_seq_len"]
    E = cfg["emb_dim"]
    F = cfg["filter_order"]
    K = cfg["short_filter_order"]
    inner = D * (cfg["hyena_order"] + 1)

    def lin_w(out_f, in_f):
        return rng.standard_normal((out_f, in_f)) / math.sqrt(in_f)

    def bias(n):
        return 0.1 * rng.standard_normal(n)

    def ln_w(n):
        return 1.0 + 0.1 * rng.standard_normal(n)

    w = {}
    w["hyena.backbone.embeddings.word_embeddings.weight"] = rng.standard_normal((V, D))
    for i in range(cfg["n_layer"]):
        p = f"hyena.backbone.layers.{i}."
        m = p + "mixer."
        fl = m + "filter_fn."
        w[p + "norm1.weight"] = ln_w(D)
        w[p + "norm1.bias"] = bias(D)
        w[m + "in_proj.weight"] = lin_w(inner, D)
        w[m + "in_proj.bias"] = bias(inner)
        w[m + "out_proj.weight"] = lin_w(D, D)
        w[m + "out_proj.bias"] = bias(D)
        w[m + "short_filter.weight"] = rng.standard_normal((inner, 1, K)) / math.sqrt(K)
        w[m + "short_filter.bias"] = bias(inner)
        w[fl + "bias"] = rng.standard_normal(D)
        z, t = positional_z_and_t(L, E)
        # Emulate a trained z (it is a parameter with a small lr in the original
        # code) so that a loader recomputing z instead of loading it is caught.
        w[fl + "pos_emb.z"] = z + 0.01 * rng.standard_normal(z.shape)
        w[fl + "pos_emb.t"] = t
        w[fl + "implicit_filter.0.weight"] = lin_w(F, E)
        w[fl + "implicit_filter.0.bias"] = bias(F)
        # One Sin module (one freq tensor) is shared by positions 1, 3, 5 of
        # the Sequential. Store a single alias per layer, a different one in
        # each layer, to exercise alias handling in loaders.
        freq = cfg["activation_freq"] * (1.0 + 0.1 * rng.standard_normal((1, F)))
        w[fl + ("implicit_filter.1.freq" if i % 2 == 0 else "implicit_filter.3.freq")] = freq
        for j in range(cfg["num_inner_mlps"]):
            idx = 2 + 2 * j
            w[fl + f"implicit_filter.{idx}.weight"] = lin_w(F, F)
            w[fl + f"implicit_filter.{idx}.bias"] = bias(F)
        last = 2 + 2 * cfg["num_inner_mlps"]
        w[fl + f"implicit_filter.{last}.weight"] = lin_w(D * (cfg["hyena_order"] - 1), F)
        deltas = initial_deltas(D)
        w[fl + "modulation.deltas"] = deltas * (1.0 + 0.05 * rng.standard_normal(deltas.shape))
        w[p + "norm2.weight"] = ln_w(D)
        w[p + "norm2.bias"] = bias(D)
        w[p + "mlp.fc1.weight"] = lin_w(Di, D)
        w[p + "mlp.fc1.bias"] = bias(Di)
        w[p + "mlp.fc2.weight"] = lin_w(D, Di)
        w[p + "mlp.fc2.bias"] = bias(D)
    w["hyena.backbone.ln_f.weight"] = ln_w(D)
    w["hyena.backbone.ln_f.bias"] = bias(D)
    w["lm_head.weight"] = lin_w(V, D)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in w.items()}


# --------------------------------------------------------------------------
# Reference forward pass (float64)
# --------------------------------------------------------------------------

def layer_norm(x, weight, bias, eps):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)  # biased variance
    return (x - mu) / np.sqrt(var + eps) * weight + bias


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def linear(x, weight, bias=None):
    y = x @ weight.T
    return y if bias is None else y + bias


def get_freq(W, prefix):
    """The shared Sin frequency of one filter MLP, whichever alias is stored."""
    for idx in (1, 3, 5):
        key = f"{prefix}implicit_filter.{idx}.freq"
        if key in W:
            return W[key]
    raise KeyError(prefix + "implicit_filter.*.freq")


def implicit_filter(W, cfg, prefix, L):
    """HyenaFilter.filter(L): returns k with shape [D, L]."""
    z = W[prefix + "pos_emb.z"][0, :L]  # [L, E]
    t = W[prefix + "pos_emb.t"][0, :L]  # [L, 1]
    freq = get_freq(W, prefix)  # [1, F]
    h = linear(z, W[prefix + "implicit_filter.0.weight"], W[prefix + "implicit_filter.0.bias"])
    h = np.sin(freq * h)
    for j in range(cfg["num_inner_mlps"]):
        idx = 2 + 2 * j
        h = linear(h, W[prefix + f"implicit_filter.{idx}.weight"],
                   W[prefix + f"implicit_filter.{idx}.bias"])
        h = np.sin(freq * h)
    last = 2 + 2 * cfg["num_inner_mlps"]
    h = linear(h, W[prefix + f"implicit_filter.{last}.weight"])  # [L, D], no bias
    deltas = W[prefix + "modulation.deltas"][0]  # [1, D]
    decay = np.exp(-t * np.abs(deltas))  # [L, D]
    h = h * (decay + MODULATION_SHIFT)
    return h.T.copy()  # [D, L]


def fft_long_conv(u, k, d_bias):
    """fftconv(u, k, D) of the HF port, u and k of shape [D, L]."""
    L = u.shape[-1]
    n = 2 * L
    k_f = np.fft.rfft(k, n=n) / n
    u_f = np.fft.rfft(u, n=n)
    y = np.fft.irfft(u_f * k_f, n=n, norm="forward")[..., :L]
    return y + u * d_bias[:, None]


def direct_long_conv(u, k, d_bias):
    """Same causal convolution as a plain O(L^2) sum: y[c,t] = sum_s k[c,s] u[c,t-s]."""
    C, L = u.shape
    y = np.zeros_like(u)
    for t in range(L):
        # k[:, 0..t] against u[:, t..0]
        y[:, t] = np.sum(k[:, : t + 1] * u[:, t::-1], axis=1)
    return y + u * d_bias[:, None]


def short_conv(u, weight, bias, padding=SHORT_CONV_PADDING):
    """Depthwise nn.Conv1d(groups=C, padding=2) followed by [..., :L].

    u: [C, L], weight: [C, 1, K]. Output position t sees input positions
    t - padding + j, j = 0..K-1 (zeros outside [0, L)). With K = 3 this is
    causal: tap 2 multiplies u[t], tap 0 multiplies u[t-2].
    """
    C, L = u.shape
    K = weight.shape[-1]
    up = np.concatenate([np.zeros((C, padding)), u, np.zeros((C, padding))], axis=1)
    out = np.zeros((C, L + 2 * padding - K + 1))
    for j in range(K):
        out += weight[:, 0, j][:, None] * up[:, j: j + out.shape[1]]
    out += bias[:, None]
    return out[:, :L]


def forward(W, cfg, ids, check_direct=True):
    """HyenaDNAForCausalLM forward (eval mode: dropouts are identities)."""
    D = cfg["d_model"]
    L = len(ids)
    l_filter = min(L, cfg["max_seq_len"])
    assert l_filter == L, "reference only covers L <= max_seq_len"
    x = W["hyena.backbone.embeddings.word_embeddings.weight"][ids]  # [L, D]
    filters, block_outs = [], []
    max_conv_err = 0.0
    for i in range(cfg["n_layer"]):
        p = f"hyena.backbone.layers.{i}."
        m = p + "mixer."
        fl = m + "filter_fn."
        residual = x
        h = layer_norm(residual, W[p + "norm1.weight"], W[p + "norm1.bias"], BLOCK_NORM_EPS)
        # --- HyenaOperator ---
        u = linear(h, W[m + "in_proj.weight"], W[m + "in_proj.bias"]).T  # [3D, L]
        uc = short_conv(u, W[m + "short_filter.weight"], W[m + "short_filter.bias"])
        x0, x1, v = uc[:D], uc[D:2 * D], uc[2 * D:]
        k = implicit_filter(W, cfg, fl, l_filter)  # [D, L]
        filters.append(k)
        v = v * x1
        v_fft = fft_long_conv(v, k, W[fl + "bias"])
        if check_direct:
            v_dir = direct_long_conv(v, k, W[fl + "bias"])
            err = float(np.max(np.abs(v_fft - v_dir)))
            max_conv_err = max(max_conv_err, err)
            assert err < 1e-10, f"layer {i}: FFT vs direct long conv differ by {err}"
        v = v_fft
        y = linear((v * x0).T, W[m + "out_proj.weight"], W[m + "out_proj.bias"])  # [L, D]
        # --- rest of HyenaBlock ---
        residual = y + residual
        h = layer_norm(residual, W[p + "norm2.weight"], W[p + "norm2.bias"], BLOCK_NORM_EPS)
        h = linear(h, W[p + "mlp.fc1.weight"], W[p + "mlp.fc1.bias"])
        h = gelu_tanh(h)
        h = linear(h, W[p + "mlp.fc2.weight"], W[p + "mlp.fc2.bias"])
        x = h + residual
        block_outs.append(x)
    hidden = layer_norm(x, W["hyena.backbone.ln_f.weight"], W["hyena.backbone.ln_f.bias"],
                        cfg["layer_norm_epsilon"])
    logits = linear(hidden, W["lm_head.weight"])
    return {"logits": logits, "hidden": hidden, "filters": filters,
            "block_outs": block_outs, "max_conv_err": max_conv_err}


def make_input_ids(rng, n):
    chars = rng.choice(list("ACGTN"), size=n - 1, p=[0.27, 0.23, 0.23, 0.25, 0.02])
    ids = [TOKEN_IDS[c] for c in chars]
    ids[37] = UNK_ID  # a character outside the alphabet
    ids.append(SEP_ID)  # the HF tokenizer appends [SEP] as eos
    return np.array(ids, dtype=np.int64)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_out = os.path.join(os.path.dirname(here), "tests", "fixtures", "hf_tiny")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=default_out, help="output directory (default: %(default)s)")
    args = ap.parse_args()

    cfg = dict(CONFIG)
    assert cfg["hyena_order"] == 2 and cfg["short_filter_order"] == 3
    assert N_TOKENS <= cfg["max_seq_len"]
    rng = np.random.default_rng(SEED)

    weights32 = make_weights(cfg, rng)
    ids = make_input_ids(rng, N_TOKENS)
    assert ids.max() < padded_vocab_size(cfg)

    W = {k: v.astype(np.float64) for k, v in weights32.items()}
    out = forward(W, cfg, ids)

    # Second, independent check of the short convolution (np.convolve is a
    # full linear convolution; its first L outputs are the causal ones).
    m = "hyena.backbone.layers.0.mixer."
    u = np.random.default_rng(1).standard_normal((3 * cfg["d_model"], 20))
    sc = short_conv(u, W[m + "short_filter.weight"], W[m + "short_filter.bias"])
    for c in range(u.shape[0]):
        ref = np.convolve(u[c], W[m + "short_filter.weight"][c, 0, ::-1])[:20]
        ref = ref + W[m + "short_filter.bias"][c]
        assert np.max(np.abs(ref - sc[c])) < 1e-12

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    # A single metadata entry keeps the header byte-identical between runs
    # (safetensors does not order metadata keys).
    save_file(weights32, os.path.join(args.out, "model.safetensors"),
              metadata={"format": "pt"})

    expected = {
        "input_ids": ids,
        "logits": out["logits"].astype(np.float32),
        "hidden": out["hidden"].astype(np.float32),
    }
    for i, k in enumerate(out["filters"]):
        expected[f"filter.{i}"] = np.ascontiguousarray(k[:, :N_TOKENS], dtype=np.float32)
    for i, b in enumerate(out["block_outs"]):
        expected[f"block_out.{i}"] = np.ascontiguousarray(b, dtype=np.float32)
    save_file(expected, os.path.join(args.out, "expected.safetensors"),
              metadata={"format": "pt"})

    for name in ("model.safetensors", "expected.safetensors"):
        os.chmod(os.path.join(args.out, name), 0o644)

    print(f"wrote {args.out}: {len(weights32)} weight tensors, {len(ids)} tokens")
    print(f"max |FFT - direct| long conv: {out['max_conv_err']:.3e}")
    print(f"max |logit| = {np.max(np.abs(out['logits'])):.6f}")
    print(f"max |hidden| = {np.max(np.abs(out['hidden'])):.6f}")
    for i, k in enumerate(out["filters"]):
        print(f"layer {i}: max |k| = {np.max(np.abs(k)):.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
