//! The per-input functions of the cargo-fuzz targets in `fuzz/`, kept in the library so
//! that `tests/fuzz_corpus.rs` replays the committed corpus through exactly the same code
//! on stable Rust. Not a stable API: hidden from the docs.
//!
//! Each function must return (never panic) for every input; where it panics, either the
//! code under test has a bug or an invariant checked here does not hold.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::tokenizer::{parse_ids, Tokenizer, SEP, UNK};
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use std::path::Path;

/// The `load_model` target skips configs describing more parameters than this
/// (2^22): a config alone may legitimately describe up to
/// [`crate::config::MAX_PARAMS`], and recomputing a missing `pos_emb` for it would
/// exceed libFuzzer's 2 GB memory limit without testing anything new.
pub const FUZZ_PARAM_CAP: usize = 1 << 22;

/// Splits a fuzz input into its two parts: the first two bytes (little-endian) give the
/// length of the first part (clamped to what is there), the rest is the second part.
pub fn split_input(data: &[u8]) -> (&[u8], &[u8]) {
    let (len, rest) = match data {
        [a, b, rest @ ..] => (u16::from_le_bytes([*a, *b]) as usize, rest),
        _ => (0, data),
    };
    rest.split_at(len.min(rest.len()))
}

/// The inverse of [`split_input`]: `first` is cut at 65535 bytes.
pub fn pack_input(first: &[u8], second: &[u8]) -> Vec<u8> {
    let n = first.len().min(u16::MAX as usize);
    let mut v = Vec::with_capacity(2 + n + second.len());
    v.extend_from_slice(&(n as u16).to_le_bytes());
    v.extend_from_slice(&first[..n]);
    v.extend_from_slice(second);
    v
}

/// One input of the `load_model` target: `config.json` text (lossy UTF-8) and
/// safetensors bytes, see [`split_input`]. Parses the config, loads the weights, and if
/// that succeeds exercises the model on the CPU: the filter, a two-token reference
/// forward pass, and a serialize / load round trip that must give the same model.
/// Returns the load error, if any.
pub fn load_model_input(data: &[u8]) -> Result<()> {
    let (config, weights) = split_input(data);
    let text = String::from_utf8_lossy(config);
    let config = Config::parse(&text, Path::new("<fuzz>/config.json"))?;
    match config.param_count() {
        Some(n) if n <= FUZZ_PARAM_CAP => {}
        _ => return Err(Error::input("skipped: config above FUZZ_PARAM_CAP")),
    }
    let path = Path::new("<fuzz>/model.safetensors");
    let model = Model::from_safetensors(config.clone(), weights, path)?;
    let _ = model.param_count();
    let n = model.config.max_seq_len.min(2);
    let _ = model.filter(0, n)?;
    let ids: Vec<u32> = (0..n as u32).collect();
    let _ = crate::reference::forward(&model, &ids)?;
    let bytes = serialize(&model, |_| true)?;
    let back = Model::from_safetensors(config, &bytes, path)?;
    assert!(
        back == model,
        "a loaded model must survive a save / load round trip"
    );
    Ok(())
}

/// One input of the `tokenizer` target: a `tokenizer_config.json` part and a text part
/// (lossy UTF-8), see [`split_input`]. Parses the tokenizer config, then encodes and
/// decodes the text with it and with the DNA tokenizer, parses the text as token ids,
/// and decodes the raw bytes as ids, checking the invariants of each.
pub fn tokenizer_input(data: &[u8]) {
    let (config, text) = split_input(data);
    let config = String::from_utf8_lossy(config);
    let text = String::from_utf8_lossy(text);
    let path = Path::new("<fuzz>/tokenizer_config.json");
    let tok = Tokenizer::from_config_json(&config, path).unwrap_or_default();
    let _ = tok.check_vocab(12);
    for t in [&tok, &Tokenizer::dna()] {
        check_round_trip(t, &text);
    }
    if let Ok(ids) = parse_ids(&text) {
        let joined: Vec<String> = ids.iter().map(u32::to_string).collect();
        assert_eq!(parse_ids(&joined.join(",")).ok(), Some(ids.clone()));
        let _ = tok.decode(&ids);
        let cfg = Config::new(1, 4, 12, 8);
        let _ = crate::session::check_ids(&cfg, &ids);
        let _ =
            crate::session::session_len(&cfg, ids.len(), ids.first().map_or(0, |&i| i as usize));
    }
    let raw: Vec<u32> = data
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let _ = tok.decode(&raw);
}

/// Encoding gives one id per character; every id that is not `[UNK]` decodes back to
/// its character; `[SEP]` ends `encode_with_sep`.
fn check_round_trip(tok: &Tokenizer, text: &str) {
    let ids = tok.encode(text);
    assert_eq!(ids.len(), text.chars().count());
    for (c, &id) in text.chars().zip(&ids) {
        assert!(
            (id as usize) < tok.vocab_size(),
            "id {id} out of the tokenizer"
        );
        if id != UNK {
            assert_eq!(tok.token_str(id), c.to_string());
        }
    }
    assert_eq!(tok.encode_with_sep(text).last(), Some(&SEP));
    let _ = tok.decode(&ids);
}

/// The model's tensors for which `keep(name)` holds, as safetensors bytes.
pub fn serialize(model: &Model, keep: impl Fn(&str) -> bool) -> Result<Vec<u8>> {
    let err = |msg: String| Error::Weights {
        path: "<memory>".into(),
        msg,
    };
    let tensors = model.tensors();
    let mut views = Vec::with_capacity(tensors.len());
    for (name, shape, data) in &tensors {
        if keep(name) {
            let view = TensorView::new(Dtype::F32, shape.clone(), bytemuck::cast_slice(data))
                .map_err(|e| err(format!("tensor {name}: {e}")))?;
            views.push((name.clone(), view));
        }
    }
    safetensors::serialize(views, None).map_err(|e| err(format!("serialize: {e}")))
}

/// A tiny valid config (one layer, width 4, 12 ids, 8 positions, filter order 4, one
/// inner filter MLP): the shape the seeds use.
pub fn tiny_config() -> Config {
    let mut c = Config::new(1, 4, 12, 8);
    c.d_inner = 8;
    c.emb_dim = 3;
    c.filter_order = 4;
    c.num_inner_mlps = 1;
    c
}

/// Meaningful seed inputs of the `load_model` target, by file name: a valid tiny model,
/// the same without `pos_emb` or without the Sin frequency, with an extra tensor, and
/// a few broken ones. `tests/fuzz_corpus.rs` writes them to `fuzz/corpus/load_model/`.
pub fn load_model_seeds() -> Result<Vec<(String, Vec<u8>)>> {
    let model = Model::random(tiny_config(), 1)?;
    let json = model.config.to_json();
    let full = serialize(&model, |_| true)?;
    let no_pos = serialize(&model, |n| !n.contains("pos_emb"))?;
    let mut no_freq_model = model.clone();
    no_freq_model.config.train_freq = false;
    let no_freq = serialize(&model, |n| !n.ends_with(".freq"))?;
    let mut extra = model.clone();
    extra.config.n_layer = 2;
    extra.layers.push(model.layers[0].clone());
    let two_layers = serialize(&extra, |_| true)?;
    let mut seeds = vec![
        ("valid_tiny".to_string(), pack_input(json.as_bytes(), &full)),
        (
            "valid_no_pos_emb".into(),
            pack_input(json.as_bytes(), &no_pos),
        ),
        (
            "valid_no_freq".into(),
            pack_input(no_freq_model.config.to_json().as_bytes(), &no_freq),
        ),
        // The file has a layer 1 that config.json (n_layer 1) does not know about.
        (
            "layer_beyond_n_layer".into(),
            pack_input(json.as_bytes(), &two_layers),
        ),
        (
            "truncated".into(),
            pack_input(json.as_bytes(), &full[..full.len() / 2]),
        ),
        (
            "zero_d_model".into(),
            pack_input(
                json.replace("\"d_model\": 4", "\"d_model\": 0").as_bytes(),
                &full,
            ),
        ),
        (
            "vocab_mismatch".into(),
            pack_input(
                json.replace("\"vocab_size\": 12", "\"vocab_size\": 20")
                    .as_bytes(),
                &full,
            ),
        ),
    ];
    // A valid file with one tensor's dtype changed (same byte count: F32 -> I32).
    let header_len = u64::from_le_bytes(full[..8].try_into().unwrap_or([0; 8])) as usize;
    let header =
        String::from_utf8_lossy(&full[8..8 + header_len]).replacen("\"F32\"", "\"I32\"", 1);
    let mut wrong_dtype = full[..8].to_vec();
    wrong_dtype.extend_from_slice(header.as_bytes());
    wrong_dtype.extend_from_slice(&full[8 + header_len..]);
    seeds.push((
        "wrong_dtype".into(),
        pack_input(json.as_bytes(), &wrong_dtype),
    ));
    Ok(seeds)
}

/// Meaningful seed inputs of the `tokenizer` target, by file name.
pub fn tokenizer_seeds() -> Vec<(String, Vec<u8>)> {
    let cases: [(&str, &str, &str); 6] = [
        ("dna_text", "", "ACGTNacgtx"),
        ("ids", "", "0,7, 8 11\t4294967295"),
        (
            "chars",
            r#"{"characters": ["A", "C", "G", "T", "N"]}"#,
            "ACGTN[SEP]",
        ),
        (
            "unicode_chars",
            r#"{"characters": ["é", "漢", "🧬"]}"#,
            "é漢🧬x",
        ),
        ("bad_entry", r#"{"characters": ["AC", 3]}"#, "AC"),
        (
            "duplicate",
            r#"{"characters": ["A", "A"], "model_max_length": 10}"#,
            "AA",
        ),
    ];
    cases
        .iter()
        .map(|(name, cfg, text)| {
            (
                name.to_string(),
                pack_input(cfg.as_bytes(), text.as_bytes()),
            )
        })
        .collect()
}
