//! Model configuration read from a Hugging Face HyenaDNA `config.json`.
//!
//! [`Config::parse`] refuses, with a message naming the field, a config that is not a
//! JSON object, lacks a required field (`d_model`, `n_layer`, `vocab_size`,
//! `max_seq_len`), has a field of the wrong type (a string, a negative or fractional
//! number where a count is expected), a zero count, a value above flashconv's per-field
//! caps, or a shape whose parameter count exceeds [`MAX_PARAMS`]. Fields flashconv does
//! not read (HF configs carry many) are ignored. All arithmetic on field values is
//! checked, so no config can overflow or make the loader allocate more than the cap.

use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::path::Path;

/// Longest sequence flashconv accepts in a config (2^24 positions).
pub const MAX_SEQ_LEN_LIMIT: usize = 1 << 24;

/// Most f32 parameters a config may describe: 2^31 (8 GiB). It bounds what loading can
/// allocate whatever `config.json` says (the loader recomputes `pos_emb` from the config
/// when a checkpoint lacks it); the largest HyenaDNA checkpoint (`large-1m`) describes
/// about 5.5 · 10^7, most of it `pos_emb` (8 layers x 10^6 positions x 6).
pub const MAX_PARAMS: usize = 1 << 31;

/// HyenaDNA hyper-parameters (the fields of the HF `HyenaConfig`, same names and defaults).
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Width D.
    pub d_model: usize,
    /// Number of blocks M.
    pub n_layer: usize,
    /// MLP hidden width (default 4 D).
    pub d_inner: usize,
    /// Real vocabulary size (before padding).
    pub vocab_size: usize,
    /// The vocabulary is padded up to a multiple of this.
    pub pad_vocab_size_multiple: usize,
    /// Longest sequence the implicit filter was built for.
    pub max_seq_len: usize,
    /// Width of the positional embedding fed to the filter MLP (odd, >= 3).
    pub emb_dim: usize,
    /// Width of the filter MLP.
    pub filter_order: usize,
    /// Kernel size of the short depthwise convolution (3 in every HyenaDNA model).
    pub short_filter_order: usize,
    /// Hyena recurrence depth (only 2 is supported).
    pub hyena_order: usize,
    /// Number of inner Linear+Sin pairs in the filter MLP.
    pub num_inner_mlps: usize,
    /// Initial / untrained Sin frequency.
    pub activation_freq: f64,
    /// Whether the Sin frequency is a trained tensor in the checkpoint.
    pub train_freq: bool,
    /// Epsilon of the final layer norm (`ln_f`); norm1/norm2 always use 1e-5.
    pub layer_norm_epsilon: f64,
    /// Additive shift of the exponential modulation (0.05 in the HF port).
    pub modulation_shift: f64,
    /// Whether the exponential modulation is applied.
    pub modulate: bool,
}

impl Config {
    /// Vocabulary rounded up to a multiple of `pad_vocab_size_multiple` (for a config
    /// that [`validate`](Self::validate)s; never panics on one that does not).
    pub fn padded_vocab(&self) -> usize {
        let m = self.pad_vocab_size_multiple.max(1);
        self.vocab_size.div_ceil(m).saturating_mul(m)
    }

    /// The parameters this config describes, by group, each named by the config fields
    /// that size it: `None` if a count overflows `usize`. `pos_emb` (`z` and `t`) is
    /// counted, as the checkpoint stores it per layer.
    pub fn param_groups(&self) -> Option<Vec<(&'static str, usize)>> {
        let (d, di, l, e, o) = (
            self.d_model,
            self.d_inner,
            self.max_seq_len,
            self.emb_dim,
            self.filter_order,
        );
        let m = self.n_layer;
        let mul = |a: usize, b: usize| a.checked_mul(b);
        // Per layer: in_proj (3D x D + 3D), short filter (9D + 3D), out_proj (D x D + D),
        // filter bias, deltas, two norms, fc2 bias (23D in all besides the matrices).
        let proj = mul(d, d)?.checked_mul(4)?.checked_add(mul(d, 23)?)?;
        let mlp = mul(di, d)?.checked_mul(2)?.checked_add(di)?;
        let pos = mul(l, e.checked_add(1)?)?;
        let inner = mul(o, o)?
            .checked_add(o)?
            .checked_mul(self.num_inner_mlps)?;
        let filter = mul(e, o)?
            .checked_add(o.checked_mul(2)?)?
            .checked_add(inner)?
            .checked_add(mul(o, d)?)?;
        Some(vec![
            (
                "vocab_size x d_model (word_embeddings, lm_head)",
                mul(self.padded_vocab(), d)?
                    .checked_mul(2)?
                    .checked_add(mul(d, 2)?)?,
            ),
            ("n_layer x d_model^2 (in_proj, out_proj)", mul(m, proj)?),
            (
                "n_layer x d_inner x d_model (mlp.fc1, mlp.fc2)",
                mul(m, mlp)?,
            ),
            (
                "n_layer x max_seq_len x emb_dim (filter_fn.pos_emb)",
                mul(m, pos)?,
            ),
            (
                "n_layer x filter_order (filter_fn.implicit_filter)",
                mul(m, filter)?,
            ),
        ])
    }

    /// Total number of parameters this config describes (see [`param_groups`]), `None`
    /// if it overflows `usize`.
    ///
    /// [`param_groups`]: Self::param_groups
    pub fn param_count(&self) -> Option<usize> {
        self.param_groups()?
            .iter()
            .try_fold(0usize, |acc, (_, n)| acc.checked_add(*n))
    }

    /// A config with HF defaults for the given shape.
    pub fn new(n_layer: usize, d_model: usize, vocab_size: usize, max_seq_len: usize) -> Self {
        Config {
            d_model,
            n_layer,
            d_inner: d_model.saturating_mul(4),
            vocab_size,
            pad_vocab_size_multiple: 8,
            max_seq_len,
            emb_dim: 5,
            filter_order: 64,
            short_filter_order: 3,
            hyena_order: 2,
            num_inner_mlps: 2,
            activation_freq: 10.0,
            train_freq: true,
            layer_norm_epsilon: 1e-5,
            modulation_shift: 0.05,
            modulate: true,
        }
    }

    /// Reads and validates `config.json`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates config JSON text (`path` is used in messages only).
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let err = |msg: String| Error::Config {
            path: path.to_path_buf(),
            msg,
        };
        let value: Value =
            serde_json::from_str(text).map_err(|e| err(format!("not valid JSON: {e}")))?;
        let obj = value
            .as_object()
            .ok_or_else(|| err("top level is not a JSON object".into()))?;
        let f = Fields { obj, err: &err };
        let d_model = f.uint("d_model", None)?;
        let cfg = Config {
            d_model,
            n_layer: f.uint("n_layer", None)?,
            // Saturating: an absurd d_model is refused by name in `validate`.
            d_inner: f.uint("d_inner", Some(d_model.saturating_mul(4)))?,
            vocab_size: f.uint("vocab_size", None)?,
            pad_vocab_size_multiple: f.uint("pad_vocab_size_multiple", Some(8))?,
            max_seq_len: f.uint("max_seq_len", None)?,
            emb_dim: f.uint("emb_dim", Some(3))?,
            filter_order: f.uint("filter_order", Some(64))?,
            short_filter_order: f.uint("short_filter_order", Some(3))?,
            hyena_order: f.uint("hyena_order", Some(2))?,
            num_inner_mlps: f.uint("num_inner_mlps", Some(2))?,
            activation_freq: f.float("activation_freq", Some(1.0))?,
            train_freq: f.boolean("train_freq", true)?,
            layer_norm_epsilon: f.float("layer_norm_epsilon", Some(1e-5))?,
            modulation_shift: f.float("modulation_shift", Some(0.05))?,
            modulate: f.boolean("modulate", true)?,
        };
        cfg.validate().map_err(err)?;
        Ok(cfg)
    }

    /// Checks every field against what flashconv supports; the message names the field.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let positive = [
            ("d_model", self.d_model),
            ("n_layer", self.n_layer),
            ("d_inner", self.d_inner),
            ("vocab_size", self.vocab_size),
            ("pad_vocab_size_multiple", self.pad_vocab_size_multiple),
            ("max_seq_len", self.max_seq_len),
            ("filter_order", self.filter_order),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(format!("{name} must be positive, got 0"));
            }
        }
        let caps = [
            ("d_model", self.d_model, 1 << 16),
            ("d_inner", self.d_inner, 1 << 18),
            ("n_layer", self.n_layer, 1024),
            ("vocab_size", self.vocab_size, 1 << 20),
            (
                "pad_vocab_size_multiple",
                self.pad_vocab_size_multiple,
                1 << 12,
            ),
            ("filter_order", self.filter_order, 1 << 12),
            ("emb_dim", self.emb_dim, 1 << 10),
            ("num_inner_mlps", self.num_inner_mlps, 64),
            ("max_seq_len", self.max_seq_len, MAX_SEQ_LEN_LIMIT),
        ];
        for (name, v, cap) in caps {
            if v > cap {
                return Err(format!(
                    "{name} = {v} is larger than flashconv supports ({cap})"
                ));
            }
        }
        if self.hyena_order != 2 {
            return Err(format!(
                "hyena_order = {} is not supported (only 2, as in every HyenaDNA checkpoint)",
                self.hyena_order
            ));
        }
        if self.short_filter_order != 3 {
            return Err(format!(
                "short_filter_order = {} is not supported: the HF port pads the short \
                 convolution by 2, which is causal only for kernel size 3",
                self.short_filter_order
            ));
        }
        if self.emb_dim < 3 || self.emb_dim.is_multiple_of(2) {
            return Err(format!("emb_dim = {} must be odd and >= 3", self.emb_dim));
        }
        let floats = [
            ("activation_freq", self.activation_freq),
            ("layer_norm_epsilon", self.layer_norm_epsilon),
            ("modulation_shift", self.modulation_shift),
        ];
        for (name, v) in floats {
            if !v.is_finite() {
                return Err(format!("{name} must be a finite number, got {v}"));
            }
        }
        if self.layer_norm_epsilon <= 0.0 {
            return Err(format!(
                "layer_norm_epsilon must be positive, got {}",
                self.layer_norm_epsilon
            ));
        }
        self.check_size()
    }

    /// Refuses a config whose parameter count overflows or exceeds [`MAX_PARAMS`],
    /// naming the fields of the largest group.
    fn check_size(&self) -> std::result::Result<(), String> {
        let fields = "d_model, d_inner, n_layer, vocab_size, max_seq_len, emb_dim, \
                      filter_order and num_inner_mlps";
        let Some(groups) = self.param_groups() else {
            return Err(format!(
                "the parameter count overflows: check {fields} in config.json"
            ));
        };
        let total = groups
            .iter()
            .try_fold(0usize, |acc, (_, n)| acc.checked_add(*n));
        match total {
            Some(t) if t <= MAX_PARAMS => Ok(()),
            _ => {
                let (name, n) = groups
                    .iter()
                    .max_by_key(|(_, n)| *n)
                    .copied()
                    .unwrap_or(("", 0));
                Err(format!(
                    "the config describes {} parameters, more than flashconv's cap of \
                     {MAX_PARAMS} (8 GiB of f32); the largest part is {name} = {n}: \
                     check those fields in config.json",
                    total.map_or_else(|| "over 2^64".to_string(), |t| t.to_string())
                ))
            }
        }
    }

    /// The config as HF-style JSON (the fields above plus `model_type`).
    pub fn to_json(&self) -> String {
        let v = serde_json::json!({
            "model_type": "hyenadna",
            "d_model": self.d_model,
            "n_layer": self.n_layer,
            "d_inner": self.d_inner,
            "vocab_size": self.vocab_size,
            "pad_vocab_size_multiple": self.pad_vocab_size_multiple,
            "max_seq_len": self.max_seq_len,
            "emb_dim": self.emb_dim,
            "filter_order": self.filter_order,
            "short_filter_order": self.short_filter_order,
            "hyena_order": self.hyena_order,
            "num_inner_mlps": self.num_inner_mlps,
            "activation_freq": self.activation_freq,
            "train_freq": self.train_freq,
            "use_bias": true,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "modulation_shift": self.modulation_shift,
            "modulate": self.modulate,
            "tie_word_embeddings": false,
        });
        serde_json::to_string_pretty(&v).unwrap_or_default()
    }
}

/// Typed access to JSON fields with messages that name the field.
struct Fields<'a, E: Fn(String) -> Error> {
    obj: &'a Map<String, Value>,
    err: &'a E,
}

impl<E: Fn(String) -> Error> Fields<'_, E> {
    fn uint(&self, name: &str, default: Option<usize>) -> Result<usize> {
        match (self.obj.get(name), default) {
            (None | Some(Value::Null), Some(d)) => Ok(d),
            (None | Some(Value::Null), None) => {
                Err((self.err)(format!("required field '{name}' is missing")))
            }
            (Some(v), _) => {
                if let Some(u) = v.as_u64() {
                    return usize::try_from(u)
                        .map_err(|_| (self.err)(format!("'{name}' = {u} is too large")));
                }
                // Integral floats (e.g. 4.0) are accepted, as Python writes them sometimes.
                match v.as_f64() {
                    Some(x) if x >= 0.0 && x.fract() == 0.0 && x < 1e15 => Ok(x as usize),
                    _ => Err((self.err)(format!(
                        "'{name}' must be a non-negative integer, got {v}"
                    ))),
                }
            }
        }
    }

    fn float(&self, name: &str, default: Option<f64>) -> Result<f64> {
        match (self.obj.get(name), default) {
            (None | Some(Value::Null), Some(d)) => Ok(d),
            (None | Some(Value::Null), None) => {
                Err((self.err)(format!("required field '{name}' is missing")))
            }
            (Some(v), _) => v
                .as_f64()
                .ok_or_else(|| (self.err)(format!("'{name}' must be a number, got {v}"))),
        }
    }

    fn boolean(&self, name: &str, default: bool) -> Result<bool> {
        match self.obj.get(name) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err((self.err)(format!(
                "'{name}' must be true or false, got {v}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config> {
        Config::parse(s, Path::new("config.json"))
    }

    #[test]
    fn defaults_follow_hf() {
        let c = parse(r#"{"d_model": 24, "n_layer": 2, "vocab_size": 12, "max_seq_len": 64}"#)
            .expect("valid");
        assert_eq!(c.d_inner, 96);
        assert_eq!(c.padded_vocab(), 16);
        assert_eq!(c.emb_dim, 3);
        assert_eq!(c.modulation_shift, 0.05);
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            (
                r#"{"n_layer": 2, "vocab_size": 12, "max_seq_len": 64}"#,
                "d_model",
            ),
            (
                r#"{"d_model": 0, "n_layer": 2, "vocab_size": 12, "max_seq_len": 64}"#,
                "d_model",
            ),
            (
                r#"{"d_model": -3, "n_layer": 2, "vocab_size": 12, "max_seq_len": 64}"#,
                "d_model",
            ),
            (
                r#"{"d_model": 8, "n_layer": 2, "vocab_size": 12, "max_seq_len": 1099511627776}"#,
                "max_seq_len",
            ),
            (
                r#"{"d_model": 8, "n_layer": 2, "vocab_size": 12, "max_seq_len": 64, "hyena_order": 3}"#,
                "hyena_order",
            ),
            (r#"[1, 2]"#, "object"),
            (r#"{"d_model": 8,"#, "JSON"),
        ];
        for (text, needle) in cases {
            let e = parse(text).expect_err(text).to_string();
            assert!(e.contains(needle), "{e} should mention {needle}");
        }
    }

    #[test]
    fn json_round_trip() {
        let c = Config::new(3, 40, 13, 512);
        let back = parse(&c.to_json()).expect("round trip");
        assert_eq!(c, back);
    }
}
