#!/usr/bin/env python3
"""Convert a HyenaDNA checkpoint into the safetensors layout flashconv loads.

Accepted inputs
  * HF port checkpoints: pytorch_model.bin (or model.safetensors) of
    HyenaDNAForCausalLM / HyenaDNAForSequenceClassification (keys
    "hyena.backbone.*", "lm_head.weight", "score.weight") or of a bare
    HyenaDNAModel (keys "backbone.*").
  * Original HazyResearch (hyena-dna / safari) PyTorch Lightning checkpoints
    (*.ckpt, e.g. weights.ckpt of the LongSafari/hyenadna-*-seqlen repos):
    the state dict sits under "state_dict" with keys "model.backbone.*" and,
    for the language model, "model.lm_head.weight" (tied to the word
    embeddings). Keys of models trained with checkpoint_mixer/checkpoint_mlp
    carry an extra ".layer" (".mixer.layer.", ".mlp.layer.") that is removed.

Output (OUT_DIR)
  model.safetensors  float32, contiguous, HF tensor names:
      hyena.backbone.embeddings.word_embeddings.weight
      hyena.backbone.layers.{i}.{norm1,norm2}.{weight,bias}
      hyena.backbone.layers.{i}.mixer.{in_proj,out_proj,short_filter}.{weight,bias}
      hyena.backbone.layers.{i}.mixer.filter_fn.bias
      hyena.backbone.layers.{i}.mixer.filter_fn.pos_emb.{z,t}
      hyena.backbone.layers.{i}.mixer.filter_fn.implicit_filter.{0,2,4}.{weight,bias}
      hyena.backbone.layers.{i}.mixer.filter_fn.implicit_filter.6.weight
      hyena.backbone.layers.{i}.mixer.filter_fn.implicit_filter.1.freq   (shared Sin freq, once)
      hyena.backbone.layers.{i}.mixer.filter_fn.modulation.deltas
      hyena.backbone.layers.{i}.mlp.{fc1,fc2}.{weight,bias}
      hyena.backbone.ln_f.{weight,bias}
      lm_head.weight                      (unless --no-lm-head)
      score.weight                        (only if present in the input)
  config.json        HF HyenaConfig fields (model_type "hyenadna")

Usage
  python tools/convert_checkpoint.py CHECKPOINT --out DIR [--config CONFIG]

CONFIG may be an HF config.json or an original training config (JSON, or
YAML if PyYAML is installed) with a "layer" section (l_max, emb_dim,
filter_order, w, ...), optionally nested under "model". Without --config a
config.json next to the checkpoint is used if there is one; every structural
field is in any case inferred from the tensor shapes and checked against it.

Needs:  pip install torch safetensors
"""

import argparse
import json
import math
import os
import pickle
import re
import sys
from collections import OrderedDict

try:
    import torch
except ImportError:  # pragma: no cover
    sys.exit("convert_checkpoint.py needs PyTorch:  pip install torch safetensors")
try:
    from safetensors.torch import load_file as st_load_file
    from safetensors.torch import save_file as st_save_file
except ImportError:  # pragma: no cover
    sys.exit("convert_checkpoint.py needs safetensors:  pip install safetensors")


class ConversionError(Exception):
    pass


HF_FIELDS = [
    "model_type", "d_model", "n_layer", "d_inner", "vocab_size", "pad_vocab_size_multiple",
    "max_seq_len", "emb_dim", "filter_order", "short_filter_order", "hyena_order",
    "num_inner_mlps", "activation_freq", "train_freq", "use_bias", "layer_norm_epsilon",
    "tie_word_embeddings", "embed_dropout", "hyena_dropout", "hyena_filter_dropout",
    "initializer_range",
]

HF_DEFAULTS = {
    "model_type": "hyenadna", "vocab_size": 12, "pad_vocab_size_multiple": 8,
    "short_filter_order": 3, "hyena_order": 2, "num_inner_mlps": 2, "activation_freq": 10,
    "train_freq": True, "use_bias": True, "layer_norm_epsilon": 1e-5,
    "tie_word_embeddings": False, "embed_dropout": 0.1, "hyena_dropout": 0.0,
    "hyena_filter_dropout": 0.0, "initializer_range": 0.02,
}

P = "hyena.backbone."


def log(msg):
    print(msg, file=sys.stderr)


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------

class _Stub:
    """Stand-in for classes a checkpoint pickles but this machine lacks
    (pytorch_lightning callbacks, omegaconf configs, ...)."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.__dict__["_state"] = state

    def __call__(self, *args, **kwargs):
        return _Stub()


class _LenientUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            return type(name, (_Stub,), {"__module__": "stub." + module})


class _LenientPickleModule:
    Unpickler = _LenientUnpickler
    load = staticmethod(pickle.load)


def load_checkpoint(path, trust_pickle):
    """Returns (state_dict, container) where container is the raw loaded object."""
    if os.path.isdir(path):
        for name in ("model.safetensors", "pytorch_model.bin", "weights.ckpt"):
            if os.path.exists(os.path.join(path, name)):
                path = os.path.join(path, name)
                break
        else:
            raise ConversionError(f"{path}: no model.safetensors, pytorch_model.bin or weights.ckpt")
    if path.endswith(".safetensors"):
        return dict(st_load_file(path)), None, path

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # Lightning checkpoints pickle more than tensors
        if not trust_pickle:
            raise ConversionError(
                f"{path}: cannot be loaded with torch.load(weights_only=True) ({type(e).__name__}).\n"
                "Lightning .ckpt files also pickle hyper-parameters and callback state. If you "
                "trust the file, re-run with --trust-pickle (unpickling can execute code).")
        log("note: loading with weights_only=False (--trust-pickle); unknown classes are stubbed")
        obj = torch.load(path, map_location="cpu", weights_only=False,
                         pickle_module=_LenientPickleModule)

    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "module", "model"):
            inner = obj.get(key)
            if isinstance(inner, dict) and inner and all(
                    isinstance(v, torch.Tensor) for v in inner.values()):
                return inner, obj, path
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj, obj, path
    raise ConversionError(f"{path}: no state dict of tensors found (top-level keys: "
                          f"{list(obj)[:10] if isinstance(obj, dict) else type(obj).__name__})")


def load_config_file(path):
    with open(path) as f:
        text = f.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        try:
            import yaml
        except ImportError:
            raise ConversionError(f"{path}: not JSON, and PyYAML is not installed for YAML")
        return yaml.safe_load(text)


# --------------------------------------------------------------------------
# Key mapping
# --------------------------------------------------------------------------

def normalize_keys(sd):
    """Maps every source key to an HF name. Returns (mapped, dropped)."""
    mapped, dropped = OrderedDict(), []
    source_of = {}
    for key, value in sd.items():
        k = key
        if k.startswith("module."):  # DataParallel / DDP
            k = k[len("module."):]
        if k.startswith("model."):  # Lightning SequenceLightningModule.model
            k = k[len("model."):]
        if k.startswith("backbone."):  # original ConvLMHeadModel / HF HyenaDNAModel
            k = "hyena." + k
        # gradient-checkpointing wrappers (CheckpointedModule.layer)
        k = re.sub(r"\.mixer\.layer\.", ".mixer.", k)
        k = re.sub(r"\.mlp\.layer\.", ".mlp.", k)

        if k.startswith(P) or k in ("lm_head.weight", "score.weight"):
            if k in mapped:
                raise ConversionError(f"two source keys map to {k}: {source_of[k]} and {key}")
            mapped[k] = value
            source_of[k] = key
        else:
            dropped.append(key)
    return mapped, dropped


LAYER_RE = re.compile(r"^hyena\.backbone\.layers\.(\d+)\.(.+)$")
FREQ_RE = re.compile(r"^mixer\.filter_fn\.implicit_filter\.(\d+)\.freq$")


def infer_structure(sd):
    """Everything the shapes tell about the model."""
    emb = sd.get(P + "embeddings.word_embeddings.weight")
    if emb is None:
        raise ConversionError("missing hyena.backbone.embeddings.word_embeddings.weight "
                              "(is this a HyenaDNA checkpoint?)")
    v_pad, d = emb.shape
    layers = sorted({int(m.group(1)) for m in map(LAYER_RE.match, sd) if m})
    if not layers:
        raise ConversionError("no hyena.backbone.layers.* tensors found")
    if layers != list(range(len(layers))):
        raise ConversionError(f"layer indices are not contiguous: {layers}")
    p0 = P + "layers.0."
    s = {"d_model": d, "padded_vocab": v_pad, "n_layer": len(layers)}

    def shape(name):
        t = sd.get(p0 + name)
        if t is None:
            raise ConversionError(f"missing {p0 + name}")
        return tuple(t.shape)

    rows = shape("mixer.in_proj.weight")[0]
    if rows % d:
        raise ConversionError(f"in_proj.weight has {rows} rows, not a multiple of d_model={d}")
    s["hyena_order"] = rows // d - 1
    s["d_inner"] = shape("mlp.fc1.weight")[0]
    s["short_filter_order"] = shape("mixer.short_filter.weight")[-1]
    z = shape("mixer.filter_fn.pos_emb.z")
    s["max_seq_len"], s["emb_dim"] = z[1], z[2]
    s["filter_order"] = shape("mixer.filter_fn.implicit_filter.0.weight")[0]
    lin = sorted(int(m.group(1)) for m in
                 (re.match(r"^mixer\.filter_fn\.implicit_filter\.(\d+)\.weight$", LAYER_RE.match(k).group(2))
                  for k in sd if k.startswith(p0)) if m)
    s["num_inner_mlps"] = len(lin) - 2
    return s


def collect_freq(sd, n_layer, num_inner_mlps):
    """Per layer, the shared Sin frequency (any of its aliases .1/.3/.5...)."""
    sin_idx = [1 + 2 * j for j in range(num_inner_mlps + 1)]
    freqs, present = {}, []
    for i in range(n_layer):
        pre = f"{P}layers.{i}.mixer.filter_fn.implicit_filter."
        found = [(j, sd[pre + f"{j}.freq"]) for j in sin_idx if pre + f"{j}.freq" in sd]
        stray = [k for k in sd if k.startswith(pre) and k.endswith(".freq")
                 and int(k[len(pre):].split(".")[0]) not in sin_idx]
        if stray:
            raise ConversionError(f"unexpected freq tensors: {stray}")
        if not found:
            freqs[i] = None
            continue
        present.append(i)
        ref = found[0][1]
        for j, t in found[1:]:
            if t.shape != ref.shape or not torch.equal(t.float(), ref.float()):
                raise ConversionError(
                    f"layer {i}: implicit_filter.{found[0][0]}.freq and .{j}.freq differ; the HF "
                    "architecture shares one Sin frequency per filter, this checkpoint does not")
        freqs[i] = ref
    return freqs, present


# --------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------

def config_from_original(orig):
    """Maps an original hyena-dna training config like HyenaConfig.from_original_config."""
    if "layer" not in orig and isinstance(orig.get("model"), dict):
        orig = orig["model"]
    layer = orig.get("layer") or {}
    cfg, extra = {}, {}

    def put(dst, value):
        if value is not None:
            cfg[dst] = value

    put("vocab_size", orig.get("vocab_size"))
    put("d_model", orig.get("d_model"))
    d_inner = orig.get("d_inner")
    put("d_inner", d_inner if isinstance(d_inner, int) else None)  # may be "${eval:...}"
    put("n_layer", orig.get("n_layer"))
    put("max_seq_len", layer.get("l_max") if isinstance(layer.get("l_max"), int) else None)
    put("emb_dim", layer.get("emb_dim"))
    put("filter_order", layer.get("filter_order"))
    put("short_filter_order", layer.get("local_order", layer.get("short_filter_order")))
    put("hyena_order", layer.get("order"))
    put("num_inner_mlps", layer.get("num_inner_mlps"))
    put("activation_freq", layer.get("w"))
    put("embed_dropout", orig.get("embed_dropout"))
    put("pad_vocab_size_multiple", orig.get("pad_vocab_size_multiple"))
    put("layer_norm_epsilon", orig.get("layer_norm_epsilon"))
    cfg["tie_word_embeddings"] = False
    # Things the HF port cannot express; recorded as extra keys and warned about.
    if layer.get("modulate") is False:
        extra["modulate"] = False
    if "shift" in layer:
        extra["modulation_shift"] = float(layer["shift"])
    if layer.get("bias") is False:
        extra["filter_bias_disabled"] = True
    for key in ("num_heads", "inner_factor", "num_blocks"):
        if layer.get(key, 1) != 1:
            raise ConversionError(f"layer.{key}={layer[key]} is not supported (HF port assumes 1)")
    for key in ("outer_mixing", "post_order_ffn", "normalized", "bidirectional"):
        if layer.get(key):
            raise ConversionError(f"layer.{key}=true is not supported by the HF architecture")
    if layer.get("_name_", "hyena") != "hyena" or orig.get("attn_layer_idx"):
        raise ConversionError("only pure Hyena models (layer._name_ == 'hyena', no attention "
                              "layers) can be converted")
    return cfg, extra


def build_config(user_cfg, structure, freqs_present, n_layer, is_original_cfg):
    cfg = dict(HF_DEFAULTS)
    extra = {}
    passthrough = {}
    provided = {}
    if user_cfg is not None:
        if is_original_cfg:
            provided, extra = config_from_original(user_cfg)
        else:
            provided = {k: v for k, v in user_cfg.items() if k in HF_FIELDS}
            passthrough = {k: v for k, v in user_cfg.items()
                           if k not in HF_FIELDS and not k.startswith("_")}
        cfg.update(provided)
    # Structural fields: the tensors are the truth, a disagreeing config is an error.
    for key in ("d_model", "n_layer", "d_inner", "max_seq_len", "emb_dim", "filter_order",
                "short_filter_order", "hyena_order", "num_inner_mlps"):
        got = structure[key]
        if key in provided and provided[key] != got:
            raise ConversionError(f"config says {key}={provided[key]} but the tensors imply {got}")
        cfg[key] = got
    # Vocabulary: the padded size must match the embedding rows.
    v, m = cfg["vocab_size"], cfg["pad_vocab_size_multiple"] or 1
    padded = v + (m - v % m) % m
    if padded != structure["padded_vocab"]:
        if "vocab_size" in provided:
            raise ConversionError(
                f"vocab_size={v} padded to a multiple of {m} is {padded}, but the embedding has "
                f"{structure['padded_vocab']} rows")
        log(f"note: vocab_size unknown; using the embedding row count {structure['padded_vocab']}")
        cfg["vocab_size"] = structure["padded_vocab"]
    # train_freq: the state dict holds freq only when it is a parameter.
    if len(freqs_present) == n_layer:
        if provided.get("train_freq") is False:
            log("note: config has train_freq=false but the checkpoint has freq tensors; "
                "setting train_freq=true so that they are used")
        cfg["train_freq"] = True
    elif not freqs_present:
        if provided.get("train_freq") is True:
            raise ConversionError("config has train_freq=true but no implicit_filter.*.freq tensors")
        log(f"note: no freq tensors; train_freq=false, Sin frequency = activation_freq "
            f"({cfg['activation_freq']})")
        cfg["train_freq"] = False
    else:
        missing = sorted(set(range(n_layer)) - set(freqs_present))
        raise ConversionError(f"implicit_filter freq tensors missing in layers {missing}")
    if user_cfg is None:
        log("note: no config given; structural fields inferred from the tensor shapes, "
            "the rest are HyenaConfig defaults (layer_norm_epsilon=1e-5, activation_freq=10)")

    out = OrderedDict((k, cfg[k]) for k in HF_FIELDS)
    for k, v in passthrough.items():
        out.setdefault(k, v)
    for k, v in extra.items():
        out[k] = v
    return out, extra


# --------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------

def convert(sd_in, user_cfg, is_original_cfg, lm_head_mode, ignore_unknown):
    sd, dropped = normalize_keys(sd_in)
    s = infer_structure(sd)
    if s["hyena_order"] != 2:
        raise ConversionError(f"hyena_order={s['hyena_order']} (in_proj has "
                              f"{(s['hyena_order'] + 1)} * d_model rows); only order 2 is supported")
    D, n_layer, nim = s["d_model"], s["n_layer"], s["num_inner_mlps"]
    if nim < 0:
        raise ConversionError("could not find the implicit filter MLP layers")
    freqs, present = collect_freq(sd, n_layer, nim)
    cfg, extra = build_config(user_cfg, s, present, n_layer, is_original_cfg)
    if cfg["hyena_order"] != 2:
        raise ConversionError("hyena_order must be 2")

    out = OrderedDict()
    used = set()
    problems = []

    def take(name, shape=None, required=True):
        t = sd.get(name)
        if t is None:
            if required:
                problems.append(f"missing {name}")
            return None
        used.add(name)
        if shape is not None and tuple(t.shape) != tuple(shape):
            problems.append(f"{name}: shape {tuple(t.shape)}, expected {tuple(shape)}")
        out[name] = t
        return t

    V, E, F, K, Di, Lmax = (s["padded_vocab"], s["emb_dim"], s["filter_order"],
                            s["short_filter_order"], s["d_inner"], s["max_seq_len"])
    take(P + "embeddings.word_embeddings.weight", (V, D))
    for i in range(n_layer):
        p = f"{P}layers.{i}."
        m = p + "mixer."
        fl = m + "filter_fn."
        take(p + "norm1.weight", (D,))
        take(p + "norm1.bias", (D,))
        take(m + "in_proj.weight", (3 * D, D))
        if take(m + "in_proj.bias", (3 * D,), required=False) is None:
            log(f"note: {m}in_proj.bias missing; writing zeros (in_proj built with bias=False)")
            out[m + "in_proj.bias"] = torch.zeros(3 * D)
        take(m + "out_proj.weight", (D, D))
        take(m + "out_proj.bias", (D,))
        take(m + "short_filter.weight", (3 * D, 1, K))
        take(m + "short_filter.bias", (3 * D,))
        fb = take(fl + "bias", (D,))
        if fb is not None and extra.get("filter_bias_disabled"):
            log(f"note: layer {i}: the original config disables the filter bias; writing zeros")
            out[fl + "bias"] = torch.zeros_like(fb)
        take(fl + "pos_emb.z", (1, Lmax, E))
        if take(fl + "pos_emb.t", (1, Lmax, 1), required=False) is None:
            log(f"note: {fl}pos_emb.t missing; recomputing linspace(0, 1, {Lmax}) (it is never trained)")
            out[fl + "pos_emb.t"] = torch.linspace(0, 1, Lmax, dtype=torch.float64)[None, :, None]
        take(fl + "implicit_filter.0.weight", (F, E))
        take(fl + "implicit_filter.0.bias", (F,))
        if freqs[i] is not None:
            if tuple(freqs[i].shape) != (1, F):
                problems.append(f"layer {i} freq: shape {tuple(freqs[i].shape)}, expected (1, {F})")
            out[fl + "implicit_filter.1.freq"] = freqs[i]
        for j in range(nim):
            idx = 2 + 2 * j
            take(fl + f"implicit_filter.{idx}.weight", (F, F))
            take(fl + f"implicit_filter.{idx}.bias", (F,))
        last = 2 + 2 * nim
        take(fl + f"implicit_filter.{last}.weight", (D, F))
        if fl + f"implicit_filter.{last}.bias" in sd:
            problems.append(f"{fl}implicit_filter.{last}.bias: the last filter layer has no bias in HyenaDNA")
        take(fl + "modulation.deltas", (1, 1, D))
        take(p + "norm2.weight", (D,))
        take(p + "norm2.bias", (D,))
        take(p + "mlp.fc1.weight", (Di, D))
        take(p + "mlp.fc1.bias", (Di,))
        take(p + "mlp.fc2.weight", (D, Di))
        take(p + "mlp.fc2.bias", (D,))
    take(P + "ln_f.weight", (D,))
    take(P + "ln_f.bias", (D,))

    if lm_head_mode != "drop":
        head = take("lm_head.weight", (V, D), required=False)
        if head is None:
            if lm_head_mode == "tie":
                log("note: lm_head.weight missing; using the word embeddings (tied head)")
                out["lm_head.weight"] = out[P + "embeddings.word_embeddings.weight"]
            else:
                problems.append("missing lm_head.weight (a classification/embedding checkpoint? "
                                "use --tie-lm-head to reuse the word embeddings as the original "
                                "LM does, or --no-lm-head)")
    else:
        used.add("lm_head.weight")
    if "score.weight" in sd:
        take("score.weight")

    freq_keys = {k for k in sd if LAYER_RE.match(k) and FREQ_RE.match(LAYER_RE.match(k).group(2))}
    unknown = [k for k in sd if k not in used and k not in freq_keys]
    if unknown:
        msg = "tensors not part of the HyenaDNA architecture: " + ", ".join(unknown[:12]) + \
              (f" (+{len(unknown) - 12} more)" if len(unknown) > 12 else "")
        if ignore_unknown:
            log("warning: dropping " + msg)
        else:
            problems.append(msg + " (attention layers? use --ignore-unknown to drop them)")
    if problems:
        raise ConversionError("cannot convert:\n  " + "\n  ".join(problems))

    tensors = OrderedDict()
    for k, t in out.items():
        if not torch.is_floating_point(t):
            raise ConversionError(f"{k}: dtype {t.dtype} is not floating point")
        if torch.is_complex(t):
            raise ConversionError(f"{k}: complex dtype")
        # clone(): safetensors refuses tensors that share storage (tied head, freq aliases)
        tensors[k] = t.detach().to(device="cpu", dtype=torch.float32).contiguous().clone()
    return tensors, cfg, extra, dropped


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Convert a HyenaDNA checkpoint (HF pytorch_model.bin / model.safetensors, "
                    "or an original Lightning .ckpt) to flashconv's safetensors layout.")
    ap.add_argument("checkpoint", help="pytorch_model.bin, model.safetensors, *.ckpt, or a directory")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--config", help="HF config.json, or an original training config "
                                     "(with a 'layer' section: l_max, emb_dim, filter_order, w, ...)")
    head = ap.add_mutually_exclusive_group()
    head.add_argument("--tie-lm-head", action="store_true",
                      help="if lm_head.weight is missing, write the word embeddings as lm_head.weight")
    head.add_argument("--no-lm-head", action="store_true", help="do not write lm_head.weight")
    ap.add_argument("--ignore-unknown", action="store_true",
                    help="drop unrecognised backbone tensors instead of refusing")
    ap.add_argument("--trust-pickle", action="store_true",
                    help="allow torch.load(weights_only=False) for .ckpt files that pickle "
                         "non-tensor objects (only for files you trust)")
    ap.add_argument("--force", action="store_true", help="overwrite existing output files")
    args = ap.parse_args(argv)

    try:
        sd, container, src = load_checkpoint(args.checkpoint, args.trust_pickle)
        log(f"loaded {len(sd)} tensors from {src}")

        cfg_path = args.config
        if cfg_path is None:
            cand = os.path.join(os.path.dirname(os.path.abspath(src)), "config.json")
            if os.path.exists(cand):
                cfg_path = cand
                log(f"using config {cand}")
        user_cfg = load_config_file(cfg_path) if cfg_path else None
        is_original = isinstance(user_cfg, dict) and (
            isinstance(user_cfg.get("layer"), dict)
            or (isinstance(user_cfg.get("model"), dict) and "layer" in user_cfg["model"]))

        is_lightning = any(k.startswith("model.backbone.") for k in sd)
        lm_head_mode = "drop" if args.no_lm_head else (
            "tie" if (args.tie_lm_head or is_lightning) else "require")
        tensors, cfg, extra, dropped = convert(sd, user_cfg, is_original, lm_head_mode,
                                               args.ignore_unknown)

        if dropped:
            log(f"dropped {len(dropped)} non-backbone tensors: " + ", ".join(dropped[:8]) +
                (" ..." if len(dropped) > 8 else ""))
        if is_lightning or is_original:
            log("note: the HF port (and flashconv) multiply the filter by (exp(-t*|deltas|) + 0.05); "
                "the original hyena-dna/safari ExponentialModulation defaults to shift=0.0. "
                "HF's conversion of these checkpoints uses 0.05 as well.")
        for k, v in extra.items():
            log(f"warning: original config sets {k}={v}; the HF architecture ignores it "
                "(recorded in config.json as an extra key)")

        os.makedirs(args.out, exist_ok=True)
        st_path = os.path.join(args.out, "model.safetensors")
        cfg_out = os.path.join(args.out, "config.json")
        for pth in (st_path, cfg_out):
            if os.path.exists(pth) and not args.force:
                raise ConversionError(f"{pth} exists (use --force to overwrite)")
        st_save_file(tensors, st_path, metadata={"format": "pt"})
        with open(cfg_out, "w") as f:
            json.dump(cfg, f, indent=2)
            f.write("\n")
    except ConversionError as e:
        log(f"error: {e}")
        return 2

    n_params = sum(t.numel() for t in tensors.values())
    log(f"wrote {st_path} ({len(tensors)} tensors, {n_params} floats) and {cfg_out}")
    log(f"d_model={cfg['d_model']} n_layer={cfg['n_layer']} max_seq_len={cfg['max_seq_len']} "
        f"vocab={cfg['vocab_size']} (padded {tensors[P + 'embeddings.word_embeddings.weight'].shape[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
