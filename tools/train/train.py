#!/usr/bin/env python3
"""Train flashconv's demo model: a small character-level Hyena (HyenaDNA layout) on the prose
of "The Rust Programming Language" (see corpus.py), on the CPU with JAX.

The forward pass is the one flashconv computes (src/reference.rs, shared/DESIGN.md), which is
the Hugging Face HyenaDNA port's:

    x = word_embeddings[ids]
    per block:  u = in_proj(LayerNorm1(x))                       [3D], norm eps 1e-5
                u = causal depthwise conv, kernel 3, with bias   (t-2, t-1, t)
                x0, x1, v = split(u);  v = v * x1
                z_t = sum_{s<=t} k[t-s] v_s + bias * v_t         (FFT of size 2L)
                x = x + out_proj(z * x0)
                x = x + fc2(gelu_tanh(fc1(LayerNorm2(x))))
    logits = lm_head(LayerNorm_f(x))                             (no bias, untied)

with the implicit filter k = [Linear -> Sin] x 3 -> Linear(no bias) applied to pos_emb.z,
times exp(-t |deltas|) + 0.05, one Sin frequency shared by the three Sin layers. pos_emb.z,
pos_emb.t and modulation.deltas keep their HF initial values (the HyenaDNA code trains z with
a tiny learning rate and deltas with none); everything else is trained.

Writes, into --out (default assets/hyena-rustbook-char):
    config.json            HF HyenaConfig fields (model_type "hyenadna")
    model.safetensors      float32 weights under the HF tensor names
    tokenizer_config.json  {"characters": [...]}: ids 7.. in list order (0..6 are specials)
    heldout-sample.txt     the first characters of the held-out text (for `flashconv score`)
    training.json          hyper-parameters, losses and wall time of the run

Deterministic for a seed on a given machine (fixed thread count). Usage:

    python tools/train/train.py                      # the shipped model
    python tools/train/train.py --bench-steps 5      # time a few steps and exit
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import corpus  # noqa: E402

SPECIALS = ["[CLS]", "[SEP]", "[BOS]", "[MASK]", "[PAD]", "[RESERVED]", "[UNK]"]
SEP = 1
NORM_EPS = 1e-5  # norm1 / norm2 (nn.LayerNorm default in the HF port)
MODULATION_SHIFT = 0.05  # HyenaExponentialModulation(shift=0.05) in the HF port


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(HERE, "..", "..", "assets", "hyena-rustbook-char"))
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--filter-order", type=int, default=64)
    ap.add_argument("--emb-dim", type=int, default=5)
    ap.add_argument("--seq-len", type=int, default=1024,
                    help="training context; also the model's max_seq_len")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--dropout", type=float, default=0.0, help="residual dropout (training only)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--sample-chars", type=int, default=1023,
                    help="length of heldout-sample.txt (plus [SEP] it must fit max_seq_len)")
    ap.add_argument("--bench-steps", type=int, default=0,
                    help="time this many training steps (after one for compilation) and exit")
    return ap.parse_args()


args = parse_args()
# XLA reads its thread count when it starts: set it before importing jax.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "")
    + f" --xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={args.threads}"
)
os.environ.setdefault("JAX_PLATFORMS", "cpu")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402


# ----------------------------------------------------------------------------------------
# Config, tokenizer, data
# ----------------------------------------------------------------------------------------

def make_config(a, vocab_size):
    return {
        "model_type": "hyenadna",
        "d_model": a.d_model,
        "n_layer": a.n_layer,
        "d_inner": 4 * a.d_model,
        "vocab_size": vocab_size,
        "pad_vocab_size_multiple": 8,
        "max_seq_len": a.seq_len,
        "emb_dim": a.emb_dim,
        "filter_order": a.filter_order,
        "short_filter_order": 3,
        "hyena_order": 2,
        "num_inner_mlps": 2,
        "activation_freq": 10.0,
        "train_freq": True,
        "use_bias": True,
        "layer_norm_epsilon": 1e-5,
        "modulation_shift": MODULATION_SHIFT,
        "modulate": True,
        "tie_word_embeddings": False,
        "embed_dropout": 0.0,
        "hyena_dropout": 0.0,
        "hyena_filter_dropout": 0.0,
        "initializer_range": 0.02,
    }


def padded_vocab(cfg):
    m = cfg["pad_vocab_size_multiple"]
    return (cfg["vocab_size"] + m - 1) // m * m


CHAR_ID = {c: i + len(SPECIALS) for i, c in enumerate(corpus.CHARACTERS)}


def encode(text):
    """Character ids as flashconv's Tokenizer::encode (no specials added)."""
    return [CHAR_ID.get(c, 6) for c in text]


def token_stream(chapters):
    """The chapters' ids, each chapter closed by [SEP] (as the HF tokenizer encodes a text)."""
    ids = []
    for ch in chapters:
        ids.extend(encode(ch))
        ids.append(SEP)
    return np.asarray(ids, dtype=np.int32)


# ----------------------------------------------------------------------------------------
# Parameters under their HF names
# ----------------------------------------------------------------------------------------

def positional_embedding(L, E):
    """HF HyenaPositionalEmbedding: z = [t, cos(-f w), sin(-f w)], t = linspace(0, 1, L)."""
    bands = (E - 1) // 2
    t = np.linspace(0.0, 1.0, L)[None, :, None]
    w = 2.0 * math.pi * np.arange(L)[None, :, None] / L
    f = np.linspace(1e-4, bands - 1, bands)[None, None, :]
    z = np.concatenate([t, np.cos(-f * w), np.sin(-f * w)], axis=-1)
    return z.astype(np.float32), t.astype(np.float32)


def default_deltas(D):
    max_decay, min_decay = math.log(1e-2) / 0.3, math.log(1e-2) / 1.5
    return np.linspace(min_decay, max_decay, D)[None, None, :].astype(np.float32)


def init_params(cfg, seed):
    """(trainable, frozen) dicts keyed by HF tensor names; HF-style initialisation:
    Linear/Conv1d as PyTorch's default (uniform +-1/sqrt(fan_in)), embeddings N(0, 0.02),
    Linear biases 0, out_proj / fc2 scaled by 1/sqrt(2 n_layer), filter bias N(0, 1)."""
    rng = np.random.default_rng(seed)
    D, Di, V = cfg["d_model"], cfg["d_inner"], padded_vocab(cfg)
    L, E, O = cfg["max_seq_len"], cfg["emb_dim"], cfg["filter_order"]
    M = cfg["n_layer"]

    def uniform(shape, fan_in):
        b = 1.0 / math.sqrt(fan_in)
        return rng.uniform(-b, b, size=shape)

    p, c = {}, {}
    p["hyena.backbone.embeddings.word_embeddings.weight"] = 0.02 * rng.standard_normal((V, D))
    z, t = positional_embedding(L, E)
    for i in range(M):
        pre = f"hyena.backbone.layers.{i}."
        f = pre + "mixer.filter_fn."
        p[pre + "norm1.weight"] = np.ones(D)
        p[pre + "norm1.bias"] = np.zeros(D)
        p[pre + "mixer.in_proj.weight"] = uniform((3 * D, D), D)
        p[pre + "mixer.in_proj.bias"] = np.zeros(3 * D)
        p[pre + "mixer.short_filter.weight"] = uniform((3 * D, 1, 3), 3)
        p[pre + "mixer.short_filter.bias"] = uniform((3 * D,), 3)
        p[pre + "mixer.out_proj.weight"] = uniform((D, D), D) / math.sqrt(2 * M)
        p[pre + "mixer.out_proj.bias"] = np.zeros(D)
        p[f + "bias"] = rng.standard_normal(D)
        p[f + "implicit_filter.0.weight"] = uniform((O, E), E)
        p[f + "implicit_filter.0.bias"] = uniform((O,), E)
        p[f + "implicit_filter.1.freq"] = np.full((1, O), cfg["activation_freq"])
        p[f + "implicit_filter.2.weight"] = uniform((O, O), O)
        p[f + "implicit_filter.2.bias"] = uniform((O,), O)
        p[f + "implicit_filter.4.weight"] = uniform((O, O), O)
        p[f + "implicit_filter.4.bias"] = uniform((O,), O)
        p[f + "implicit_filter.6.weight"] = uniform((D, O), O)
        c[f + "pos_emb.z"] = z
        c[f + "pos_emb.t"] = t
        c[f + "modulation.deltas"] = default_deltas(D)
        p[pre + "norm2.weight"] = np.ones(D)
        p[pre + "norm2.bias"] = np.zeros(D)
        p[pre + "mlp.fc1.weight"] = uniform((Di, D), D)
        p[pre + "mlp.fc1.bias"] = np.zeros(Di)
        p[pre + "mlp.fc2.weight"] = uniform((D, Di), Di) / math.sqrt(2 * M)
        p[pre + "mlp.fc2.bias"] = np.zeros(D)
    p["hyena.backbone.ln_f.weight"] = np.ones(D)
    p["hyena.backbone.ln_f.bias"] = np.zeros(D)
    p["lm_head.weight"] = uniform((V, D), D)
    def to_f32(d):
        return {k: jnp.asarray(v, dtype=jnp.float32) for k, v in d.items()}

    return to_f32(p), to_f32(c)


def decayed(name):
    """Weight decay on the block matrices and the embeddings only (not on norms, biases,
    the Sin frequency or the implicit filter, as in HyenaDNA's optimizer groups)."""
    return name.endswith("weight") and "norm" not in name and "ln_f" not in name \
        and "filter_fn" not in name and "short_filter" not in name


# ----------------------------------------------------------------------------------------
# Forward pass (flashconv's / the HF port's equations)
# ----------------------------------------------------------------------------------------

def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / jnp.sqrt(var + eps) * w + b


def linear(x, w, b=None):
    y = x @ w.T
    return y if b is None else y + b


def long_filter(p, c, f, L):
    """HyenaFilter.filter(L): k [L, D]."""
    freq = p[f + "implicit_filter.1.freq"][0]
    h = c[f + "pos_emb.z"][0, :L]
    for j in (0, 2, 4):
        h = jnp.sin(freq * linear(h, p[f + f"implicit_filter.{j}.weight"],
                                  p[f + f"implicit_filter.{j}.bias"]))
    h = linear(h, p[f + "implicit_filter.6.weight"])
    t = c[f + "pos_emb.t"][0, :L]  # [L, 1]
    return h * (jnp.exp(-t * jnp.abs(c[f + "modulation.deltas"][0])) + MODULATION_SHIFT)


def forward(p, c, ids, cfg, dropout=0.0, key=None):
    """Logits [B, L, V_pad] of ids [B, L]."""
    D = cfg["d_model"]
    B, L = ids.shape
    x = p["hyena.backbone.embeddings.word_embeddings.weight"][ids]

    def drop(y, i):
        if dropout == 0.0 or key is None:
            return y
        keep = jax.random.bernoulli(jax.random.fold_in(key, i), 1.0 - dropout, y.shape)
        return jnp.where(keep, y / (1.0 - dropout), 0.0)

    for i in range(cfg["n_layer"]):
        pre = f"hyena.backbone.layers.{i}."
        m = pre + "mixer."
        f = m + "filter_fn."
        u = linear(layer_norm(x, p[pre + "norm1.weight"], p[pre + "norm1.bias"], NORM_EPS),
                   p[m + "in_proj.weight"], p[m + "in_proj.bias"])
        # Conv1d(groups=3D, padding=2) truncated to L: out[t] = w0 u[t-2] + w1 u[t-1] + w2 u[t].
        w = p[m + "short_filter.weight"][:, 0, :]  # [3D, 3]
        up = jnp.pad(u, ((0, 0), (2, 0), (0, 0)))
        u = w[:, 0] * up[:, :L] + w[:, 1] * up[:, 1:L + 1] + w[:, 2] * up[:, 2:] \
            + p[m + "short_filter.bias"]
        x0, x1, v = u[..., :D], u[..., D:2 * D], u[..., 2 * D:]
        v = v * x1
        k = long_filter(p, c, f, L)  # [L, D]
        n = 2 * L
        y = jnp.fft.irfft(jnp.fft.rfft(v, n=n, axis=1) * jnp.fft.rfft(k, n=n, axis=0)[None],
                          n=n, axis=1)[:, :L]
        y = y + v * p[f + "bias"]
        x = x + drop(linear(y * x0, p[m + "out_proj.weight"], p[m + "out_proj.bias"]), 2 * i)
        h = layer_norm(x, p[pre + "norm2.weight"], p[pre + "norm2.bias"], NORM_EPS)
        h = jax.nn.gelu(linear(h, p[pre + "mlp.fc1.weight"], p[pre + "mlp.fc1.bias"]),
                        approximate=True)
        x = x + drop(linear(h, p[pre + "mlp.fc2.weight"], p[pre + "mlp.fc2.bias"]), 2 * i + 1)
    x = layer_norm(x, p["hyena.backbone.ln_f.weight"], p["hyena.backbone.ln_f.bias"],
                   cfg["layer_norm_epsilon"])
    return linear(x, p["lm_head.weight"])


def token_nll(p, c, ids, cfg, dropout=0.0, key=None):
    """NLL [B, L-1] of ids[:, 1:] given the prefix (log-softmax over the padded vocab)."""
    logits = forward(p, c, ids[:, :-1], cfg, dropout, key)
    lp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(lp, ids[:, 1:, None], axis=-1)[..., 0]


# ----------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------

def lr_at(step, a):
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    prog = (step - a.warmup) / max(1, a.steps - a.warmup)
    return a.lr * (a.min_lr_frac + (1 - a.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * prog)))


def make_step(cfg, a, names):
    """One AdamW step (betas 0.9, 0.95) with global gradient-norm clipping, jitted."""
    b1, b2, eps = 0.9, 0.95, 1e-8
    wd = {k: (a.weight_decay if decayed(k) else 0.0) for k in names}

    def loss_fn(p, c, batch, key):
        return token_nll(p, c, batch, cfg, a.dropout, key).mean()

    @jax.jit
    def step(p, c, m, v, batch, lr, t, key):
        loss, g = jax.value_and_grad(loss_fn)(p, c, batch, key)
        gnorm = jnp.sqrt(sum(jnp.sum(x * x) for x in jax.tree_util.tree_leaves(g)))
        scale = jnp.minimum(1.0, a.clip / (gnorm + 1e-6))
        new_p, new_m, new_v = {}, {}, {}
        for k in p:
            gk = g[k] * scale
            new_m[k] = b1 * m[k] + (1 - b1) * gk
            new_v[k] = b2 * v[k] + (1 - b2) * gk * gk
            mh = new_m[k] / (1 - b1 ** t)
            vh = new_v[k] / (1 - b2 ** t)
            new_p[k] = p[k] - lr * (mh / (jnp.sqrt(vh) + eps) + wd[k] * p[k])
        return new_p, new_m, new_v, loss, gnorm

    return step


def evaluate(nll_fn, p, c, windows, batch):
    """Mean NLL per predicted token over windows [N, L]."""
    tot, cnt = 0.0, 0
    for s in range(0, len(windows), batch):
        nll = np.asarray(nll_fn(p, c, jnp.asarray(windows[s:s + batch])), dtype=np.float64)
        tot += nll.sum()
        cnt += nll.size
    return tot / cnt


def export(p, c, cfg, out, extra):
    """Writes the model directory: weights, config, tokenizer and the extra text files."""
    os.makedirs(out, exist_ok=True)
    tensors = {k: np.ascontiguousarray(np.asarray(v, dtype=np.float32)) for k, v in
               {**p, **c}.items()}
    save_file(tensors, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    tok = {
        "characters": corpus.CHARACTERS,
        "model_max_length": cfg["max_seq_len"],
        "padding_side": "left",
    }
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(tok, f, indent=2)
        f.write("\n")
    for name, text in extra.items():
        with open(os.path.join(out, name), "w", encoding="ascii", newline="\n") as f:
            f.write(text)


def main():
    a = args
    t_start, cpu_start = time.time(), time.process_time()
    train_chapters, held_chapters, held_names = corpus.build()
    cfg = make_config(a, len(SPECIALS) + len(corpus.CHARACTERS))
    L = a.seq_len
    train_ids = token_stream(train_chapters)
    held_ids = token_stream(held_chapters)
    n_held = len(held_ids) // L
    held_windows = held_ids[: n_held * L].reshape(n_held, L)
    rng = np.random.default_rng(a.seed)
    tr_eval = np.stack([train_ids[s:s + L] for s in rng.integers(0, len(train_ids) - L, n_held)])
    sample = held_chapters[0][: a.sample_chars]
    sample_ids = np.asarray([encode(sample.rstrip("\n\r")) + [SEP]], dtype=np.int32)

    p, c = init_params(cfg, a.seed)
    n_params = sum(int(np.prod(v.shape)) for v in p.values())
    n_all = n_params + sum(int(np.prod(v.shape)) for v in c.values())
    print(f"corpus: train {len(train_ids)} chars, held out {len(held_ids)} chars "
          f"({', '.join(held_names)})", flush=True)
    print(f"model: d_model {a.d_model}, n_layer {a.n_layer}, max_seq_len {L}, vocab "
          f"{cfg['vocab_size']} (padded {padded_vocab(cfg)}), {n_params} trained parameters "
          f"({n_all} stored, {4 * n_all / 1e6:.2f} MB f32)", flush=True)
    print(f"training: {a.steps} steps x {a.batch} x {L} tokens = "
          f"{a.steps * a.batch * L / 1e6:.1f} M tokens ({a.steps * a.batch * L / len(train_ids):.1f}"
          f" epochs), {a.threads} threads", flush=True)

    step = make_step(cfg, a, list(p))
    nll_fn = jax.jit(lambda p, c, ids: token_nll(p, c, ids, cfg))
    m = {k: jnp.zeros_like(v) for k, v in p.items()}
    v = {k: jnp.zeros_like(x) for k, x in p.items()}
    base_key = jax.random.PRNGKey(a.seed)

    def batch_at(i):
        r = np.random.default_rng([a.seed, i])
        starts = r.integers(0, len(train_ids) - L - 1, a.batch)
        return jnp.asarray(np.stack([train_ids[s:s + L + 1] for s in starts]))

    if a.bench_steps:
        t0 = time.time()
        p, m, v, loss, _ = step(p, c, m, v, batch_at(0), lr_at(0, a), 1.0, base_key)
        loss.block_until_ready()
        print(f"compile + first step: {time.time() - t0:.1f} s", flush=True)
        t0 = time.time()
        for i in range(1, a.bench_steps + 1):
            p, m, v, loss, _ = step(p, c, m, v, batch_at(i), lr_at(i, a), float(i + 1),
                                    jax.random.fold_in(base_key, i))
        loss.block_until_ready()
        dt = (time.time() - t0) / a.bench_steps
        print(f"{dt:.3f} s/step, {a.batch * L / dt:.0f} tokens/s; {a.steps} steps would take "
              f"{a.steps * dt / 60:.1f} min", flush=True)
        return

    history = []
    t_train = time.time()
    run_loss = None
    for i in range(a.steps):
        p, m, v, loss, gnorm = step(p, c, m, v, batch_at(i), lr_at(i, a), float(i + 1),
                                    jax.random.fold_in(base_key, i))
        lv = float(loss)
        run_loss = lv if run_loss is None else 0.98 * run_loss + 0.02 * lv
        if (i + 1) % a.eval_every == 0 or i + 1 == a.steps or i == 0:
            he = evaluate(nll_fn, p, c, held_windows, a.batch)
            el = time.time() - t_train
            cpu = (time.process_time() - cpu_start) / 60
            history.append({"step": i + 1, "train_loss_smoothed": run_loss, "heldout_loss": he,
                            "minutes": el / 60, "cpu_minutes": cpu})
            print(f"step {i + 1:5d}  train {run_loss:.4f}  held-out {he:.4f} "
                  f"(ppl {math.exp(he):.3f})  |g| {float(gnorm):.2f}  lr {lr_at(i, a):.2e}  "
                  f"{el / 60:.1f} min (cpu {cpu:.1f} min)", flush=True)
    train_minutes = (time.time() - t_train) / 60
    tr = evaluate(nll_fn, p, c, tr_eval, a.batch)
    he = evaluate(nll_fn, p, c, held_windows, a.batch)
    sn = float(np.asarray(nll_fn(p, c, jnp.asarray(sample_ids)), dtype=np.float64).mean())
    print(f"final: train {tr:.4f} (ppl {math.exp(tr):.3f}) on {len(tr_eval)} random windows; "
          f"held-out {he:.4f} (ppl {math.exp(he):.3f}) on {n_held} windows of {L}; "
          f"heldout-sample.txt {sn:.4f} (ppl {math.exp(sn):.3f}, as `flashconv score --input`)",
          flush=True)
    report = {
        "corpus": "The Rust Programming Language (rust-docs), prose only; see tools/train",
        "heldout_chapters": held_names,
        "train_chars": int(len(train_ids)),
        "heldout_chars": int(len(held_ids)),
        "args": {k: val for k, val in vars(a).items() if k not in ("out", "bench_steps")},
        "jax_version": jax.__version__,
        "trained_parameters": n_params,
        "train_minutes": train_minutes,
        "total_minutes": (time.time() - t_start) / 60,
        "total_cpu_minutes": (time.process_time() - cpu_start) / 60,
        "cpu_count": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "final_train_loss": tr,
        "final_heldout_loss": he,
        "final_heldout_perplexity": math.exp(he),
        "heldout_windows": f"{n_held} non-overlapping windows of {L} tokens, "
                           f"mean NLL of the last {L - 1} tokens of each",
        "heldout_sample_loss": sn,
        "heldout_sample_perplexity": math.exp(sn),
        "history": history,
    }
    export(p, c, cfg, a.out, {"heldout-sample.txt": sample.rstrip("\n\r") + "\n",
                              "training.json": json.dumps(report, indent=2) + "\n"})
    print(f"wrote {os.path.abspath(a.out)} in {(time.time() - t_start) / 60:.1f} min wall, "
          f"{(time.process_time() - cpu_start) / 60:.1f} min cpu", flush=True)


if __name__ == "__main__":
    main()
