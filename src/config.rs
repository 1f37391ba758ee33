//! Model configuration read from a Hugging Face HyenaDNA `config.json`.

use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::path::Path;

/// Longest sequence flashconv accepts in a config (2^24 positions).
pub const MAX_SEQ_LEN_LIMIT: usize = 1 << 24;

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
    /// Vocabulary rounded up to a multiple of `pad_vocab_size_multiple`.
    pub fn padded_vocab(&self) -> usize {
        self.vocab_size.div_ceil(self.pad_vocab_size_multiple) * self.pad_vocab_size_multiple
    }

    /// A config with HF defaults for the given shape.
    pub fn new(n_layer: usize, d_model: usize, vocab_size: usize, max_seq_len: usize) -> Self {
        Config {
            d_model,
            n_layer,
            d_inner: 4 * d_model,
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
            d_inner: f.uint("d_inner", Some(4 * d_model))?,
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
            return Err("layer_norm_epsilon must be positive".into());
        }
        Ok(())
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
