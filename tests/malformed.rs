//! A corpus of malformed model files, generated here from a valid random model: each test
//! saves a small model to a fresh directory, breaks one thing (bytes of the safetensors
//! file, its header, config.json or tokenizer_config.json) and checks that loading
//! returns an error (never panics) naming the file, the tensor or field, and the
//! problem. Loading is CPU only: nothing here creates a GPU context, so these tests need
//! no adapter.

mod common;

use flashconv::tokenizer::{parse_ids, Tokenizer};
use flashconv::{Config, Model};
use safetensors::Dtype;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

const IN_PROJ: &str = "hyena.backbone.layers.1.mixer.in_proj.weight";
const NORM1_W: &str = "hyena.backbone.layers.0.norm1.weight";
const NORM1_B: &str = "hyena.backbone.layers.0.norm1.bias";
const EMBED: &str = "hyena.backbone.embeddings.word_embeddings.weight";
const F0: &str = "hyena.backbone.layers.0.mixer.filter_fn.";

/// A valid model saved in its own directory (removed on drop): 2 layers, width 16,
/// 12 ids, 64 positions.
struct Fx {
    dir: PathBuf,
    model: Model,
}

impl Drop for Fx {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// (name, header entry) pairs and the data section of a safetensors file.
type Parts = (Vec<(String, Value)>, Vec<u8>);

impl Fx {
    fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "flashconv-malformed-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let model = Model::random(Config::new(2, 16, 12, 64), 3).expect("random");
        model.save(&dir).expect("save");
        Fx { dir, model }
    }

    fn weights(&self) -> PathBuf {
        self.dir.join("model.safetensors")
    }

    fn bytes(&self) -> Vec<u8> {
        std::fs::read(self.weights()).expect("read weights")
    }

    fn set_bytes(&self, b: &[u8]) {
        std::fs::write(self.weights(), b).expect("write weights");
    }

    /// The header entries (sorted by name) and the data section.
    fn parts(&self) -> Parts {
        let b = self.bytes();
        let n = u64::from_le_bytes(b[..8].try_into().expect("8 bytes")) as usize;
        let header: Map<String, Value> =
            serde_json::from_slice(&b[8..8 + n]).expect("valid header");
        (header.into_iter().collect(), b[8 + n..].to_vec())
    }

    /// Writes a file from header entries (kept in order, duplicates too) and data.
    fn set_parts(&self, entries: &[(String, Value)], data: &[u8]) {
        let body: Vec<String> = entries
            .iter()
            .map(|(k, v)| format!("{}:{v}", Value::String(k.clone())))
            .collect();
        let header = format!("{{{}}}", body.join(","));
        let mut b = (header.len() as u64).to_le_bytes().to_vec();
        b.extend_from_slice(header.as_bytes());
        b.extend_from_slice(data);
        self.set_bytes(&b);
    }

    fn edit_entries(&self, f: impl FnOnce(&mut Vec<(String, Value)>, &mut Vec<u8>)) {
        let (mut e, mut d) = self.parts();
        f(&mut e, &mut d);
        self.set_parts(&e, &d);
    }

    /// Rewrites the file as a valid safetensors file after `edit` changes the
    /// (name, dtype, shape, bytes) list.
    fn rewrite(&self, edit: impl FnOnce(&mut Vec<common::RawTensor>)) {
        let mut tensors: Vec<common::RawTensor> = self
            .model
            .tensors()
            .into_iter()
            .map(|(n, s, v)| (n, Dtype::F32, s, bytemuck::cast_slice(v).to_vec()))
            .collect();
        edit(&mut tensors);
        self.set_bytes(&common::serialize_raw(&tensors));
    }

    fn config(&self) -> Map<String, Value> {
        let text = std::fs::read_to_string(self.dir.join("config.json")).expect("config");
        serde_json::from_str(&text).expect("config json")
    }

    fn edit_config(&self, f: impl FnOnce(&mut Map<String, Value>)) {
        let mut c = self.config();
        f(&mut c);
        self.write("config.json", Value::Object(c).to_string().as_bytes());
    }

    fn set_field(&self, name: &str, v: Value) {
        self.edit_config(|c| {
            c.insert(name.to_string(), v);
        });
    }

    fn write(&self, file: &str, bytes: &[u8]) {
        std::fs::write(self.dir.join(file), bytes).expect("write");
    }

    /// Loading must fail; returns the message.
    fn err(&self) -> String {
        let e = Model::load(&self.dir)
            .expect_err("loading must fail")
            .to_string();
        eprintln!("error: {e}");
        e
    }

    fn tokenizer_err(&self) -> String {
        let e = Tokenizer::for_model_dir(&self.dir)
            .expect_err("the tokenizer must be refused")
            .to_string();
        eprintln!("error: {e}");
        e
    }
}

fn has(e: &str, needles: &[&str]) {
    for n in needles {
        assert!(e.contains(n), "message should mention {n:?}: {e}");
    }
}

fn entry<'a>(entries: &'a mut [(String, Value)], name: &str) -> &'a mut Value {
    &mut entries
        .iter_mut()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{name} present"))
        .1
}

fn offsets(v: &Value) -> (u64, u64) {
    let o = &v["data_offsets"];
    (o[0].as_u64().expect("begin"), o[1].as_u64().expect("end"))
}

/// The tensor stored last in the data section.
fn last_tensor(entries: &[(String, Value)]) -> String {
    entries
        .iter()
        .filter(|(n, _)| n != "__metadata__")
        .max_by_key(|(_, v)| offsets(v).1)
        .map(|(n, _)| n.clone())
        .expect("tensors")
}

// ---- the safetensors framing ----

#[test]
fn empty_weights_file() {
    let fx = Fx::new("empty");
    fx.set_bytes(&[]);
    has(&fx.err(), &["model.safetensors", "0 bytes", "truncated"]);
}

#[test]
fn weights_shorter_than_header_length_field() {
    let fx = Fx::new("short");
    fx.set_bytes(&fx.bytes()[..5]);
    has(
        &fx.err(),
        &["model.safetensors", "5 bytes", "8-byte header length"],
    );
}

#[test]
fn truncated_inside_header() {
    let fx = Fx::new("trunc-header");
    let b = fx.bytes();
    fx.set_bytes(&b[..200]);
    has(
        &fx.err(),
        &[
            "model.safetensors",
            "header length",
            "192 bytes follow",
            "truncated",
        ],
    );
}

#[test]
fn truncated_inside_data() {
    let fx = Fx::new("trunc-data");
    let last = last_tensor(&fx.parts().0);
    let b = fx.bytes();
    fx.set_bytes(&b[..b.len() - 100]);
    has(
        &fx.err(),
        &["model.safetensors", &last, "data_offsets", "truncated"],
    );
}

#[test]
fn header_length_larger_than_file() {
    let fx = Fx::new("hlen-past-end");
    let mut b = fx.bytes();
    let len = b.len() as u64;
    b[..8].copy_from_slice(&len.to_le_bytes());
    fx.set_bytes(&b);
    has(
        &fx.err(),
        &[
            "model.safetensors",
            &format!("says {len} bytes"),
            "truncated",
        ],
    );
}

#[test]
fn header_length_absurd() {
    let fx = Fx::new("hlen-absurd");
    let mut b = fx.bytes();
    b[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    fx.set_bytes(&b);
    has(
        &fx.err(),
        &[
            "model.safetensors",
            &u64::MAX.to_string(),
            "100000000-byte limit",
        ],
    );
}

#[test]
fn header_length_too_small() {
    let fx = Fx::new("hlen-small");
    let mut b = fx.bytes();
    let n = u64::from_le_bytes(b[..8].try_into().expect("8")) - 10;
    b[..8].copy_from_slice(&n.to_le_bytes());
    fx.set_bytes(&b);
    has(
        &fx.err(),
        &["model.safetensors", "header is not a JSON object"],
    );
}

#[test]
fn header_not_utf8() {
    let fx = Fx::new("hdr-utf8");
    let mut b = fx.bytes();
    b[9] = 0xff;
    fx.set_bytes(&b);
    has(&fx.err(), &["model.safetensors", "header is not UTF-8"]);
}

#[test]
fn header_not_json() {
    let fx = Fx::new("hdr-json");
    let mut b = fx.bytes();
    b[8] = b'x';
    fx.set_bytes(&b);
    has(
        &fx.err(),
        &["model.safetensors", "not a JSON object", "export it again"],
    );
}

#[test]
fn header_is_a_json_array() {
    let fx = Fx::new("hdr-array");
    let mut b = 6u64.to_le_bytes().to_vec();
    b.extend_from_slice(b"[1, 2]");
    fx.set_bytes(&b);
    has(&fx.err(), &["model.safetensors", "not a JSON object"]);
}

#[test]
fn entry_without_data_offsets() {
    let fx = Fx::new("no-offsets");
    fx.edit_entries(|e, _| {
        entry(e, IN_PROJ)
            .as_object_mut()
            .expect("object")
            .remove("data_offsets");
    });
    has(
        &fx.err(),
        &[
            "model.safetensors",
            IN_PROJ,
            "malformed header entry",
            "data_offsets",
        ],
    );
}

#[test]
fn unknown_dtype() {
    let fx = Fx::new("dtype-unknown");
    fx.edit_entries(|e, _| entry(e, IN_PROJ)["dtype"] = json!("F99"));
    has(&fx.err(), &["model.safetensors", IN_PROJ, "F99"]);
}

#[test]
fn negative_shape() {
    let fx = Fx::new("shape-negative");
    fx.edit_entries(|e, _| entry(e, IN_PROJ)["shape"] = json!([-48, 16]));
    has(
        &fx.err(),
        &["model.safetensors", IN_PROJ, "malformed header entry"],
    );
}

#[test]
fn offsets_end_before_they_begin() {
    let fx = Fx::new("offsets-reversed");
    fx.edit_entries(|e, _| {
        let v = entry(e, IN_PROJ);
        let (b, end) = offsets(v);
        v["data_offsets"] = json!([end, b]);
    });
    has(
        &fx.err(),
        &["model.safetensors", IN_PROJ, "end before they begin"],
    );
}

#[test]
fn offsets_past_end_of_data() {
    let fx = Fx::new("offsets-range");
    fx.edit_entries(|e, d| {
        let v = entry(e, IN_PROJ);
        let len = d.len() as u64;
        v["data_offsets"] = json!([len, len + 3072]);
    });
    has(
        &fx.err(),
        &[
            "model.safetensors",
            IN_PROJ,
            "data section is only",
            "truncated",
        ],
    );
}

#[test]
fn offsets_near_usize_max_do_not_overflow() {
    // Eight consistent U8 tensors whose offsets end just below usize::MAX: the
    // safetensors crate adds that end to the header length, which overflows (a panic in
    // builds with overflow checks, such as fuzzing builds). Refused before it.
    let fx = Fx::new("offsets-max");
    let s = (usize::MAX as u64 - 100) / 8;
    let entries: Vec<(String, Value)> = (0..8u64)
        .map(|i| {
            let v = json!({"dtype": "U8", "shape": [s], "data_offsets": [i * s, (i + 1) * s]});
            (format!("t{i}"), v)
        })
        .collect();
    fx.set_parts(&entries, &[0; 8]);
    has(
        &fx.err(),
        &["model.safetensors", "'t0'", "data section is only 8 bytes"],
    );
}

#[test]
fn overlapping_offsets() {
    let fx = Fx::new("overlap");
    // The later of the two is moved onto the earlier (moving the earlier would leave a
    // gap before the overlap).
    fx.edit_entries(|e, _| {
        let (w, b) = (entry(e, NORM1_W).clone(), entry(e, NORM1_B).clone());
        let (later, earlier) = if offsets(&w).0 > offsets(&b).0 {
            (NORM1_W, b)
        } else {
            (NORM1_B, w)
        };
        entry(e, later)["data_offsets"] = earlier["data_offsets"].clone();
    });
    has(
        &fx.err(),
        &["model.safetensors", NORM1_W, NORM1_B, "overlap"],
    );
}

#[test]
fn gap_between_tensors() {
    let fx = Fx::new("gap");
    let mut next = String::new();
    fx.edit_entries(|e, _| {
        let (_, end) = offsets(entry(e, IN_PROJ));
        next = e
            .iter()
            .find(|(_, v)| offsets(v).0 == end)
            .map(|(n, _)| n.clone())
            .expect("a tensor follows");
        e.retain(|(n, _)| n != IN_PROJ);
    });
    has(
        &fx.err(),
        &["model.safetensors", &next, "belong to no tensor"],
    );
}

#[test]
fn trailing_bytes_after_last_tensor() {
    let fx = Fx::new("trailing");
    let mut b = fx.bytes();
    b.extend_from_slice(&[0; 16]);
    fx.set_bytes(&b);
    has(
        &fx.err(),
        &["model.safetensors", "last 16 bytes", "belong to no tensor"],
    );
}

#[test]
fn duplicate_tensor_name() {
    let fx = Fx::new("duplicate");
    fx.edit_entries(|e, _| {
        let v = entry(e, IN_PROJ).clone();
        e.push((IN_PROJ.to_string(), v));
    });
    has(&fx.err(), &["model.safetensors", IN_PROJ, "listed twice"]);
}

#[test]
fn shape_disagrees_with_offsets() {
    let fx = Fx::new("shape-bytes");
    fx.edit_entries(|e, _| entry(e, IN_PROJ)["shape"] = json!([48, 15]));
    has(
        &fx.err(),
        &["model.safetensors", IN_PROJ, "[48, 15]", "hold 3072 bytes"],
    );
}

#[test]
fn shape_size_overflows() {
    let fx = Fx::new("shape-overflow");
    fx.edit_entries(|e, _| entry(e, IN_PROJ)["shape"] = json!([1u64 << 40, 1u64 << 40]));
    has(&fx.err(), &["model.safetensors", IN_PROJ, "overflows"]);
}

#[test]
fn metadata_not_a_string_map() {
    let fx = Fx::new("metadata");
    fx.edit_entries(|e, _| e.push(("__metadata__".into(), json!({"format": 1}))));
    has(
        &fx.err(),
        &["model.safetensors", "__metadata__", "strings to strings"],
    );
}

#[test]
fn metadata_string_map_is_accepted() {
    let fx = Fx::new("metadata-ok");
    fx.edit_entries(|e, _| e.push(("__metadata__".into(), json!({"format": "pt"}))));
    let m = Model::load(&fx.dir).expect("valid __metadata__ loads");
    assert_eq!(m, fx.model);
}

#[test]
fn metadata_null_is_accepted() {
    // As the safetensors crate reads it: no metadata.
    let fx = Fx::new("metadata-null");
    fx.edit_entries(|e, _| e.push(("__metadata__".into(), Value::Null)));
    let m = Model::load(&fx.dir).expect("a null __metadata__ loads");
    assert_eq!(m, fx.model);
}

// ---- tensors against the config ----

#[test]
fn wrong_dtype_same_size() {
    let fx = Fx::new("dtype-i32");
    fx.edit_entries(|e, _| entry(e, IN_PROJ)["dtype"] = json!("I32"));
    has(
        &fx.err(),
        &[
            "model.safetensors",
            IN_PROJ,
            "dtype I32",
            "reads F32",
            "convert",
        ],
    );
}

#[test]
fn wrong_dtype_f16_checkpoint() {
    let fx = Fx::new("dtype-f16");
    fx.rewrite(|t| {
        let x = t.iter_mut().find(|(n, ..)| n == IN_PROJ).expect("present");
        x.1 = Dtype::F16;
        x.3.truncate(x.3.len() / 2);
    });
    has(
        &fx.err(),
        &[
            "model.safetensors",
            IN_PROJ,
            "dtype F16",
            "convert_checkpoint.py",
        ],
    );
}

#[test]
fn wrong_shape_transposed() {
    let fx = Fx::new("shape-transposed");
    fx.edit_entries(|e, _| entry(e, IN_PROJ)["shape"] = json!([16, 48]));
    has(
        &fx.err(),
        &[
            "model.safetensors",
            IN_PROJ,
            "shape [16, 48], expected [48, 16]",
            "[3 d_model, d_model]",
        ],
    );
}

#[test]
fn missing_tensor_outside_layers() {
    let fx = Fx::new("missing-lm-head");
    fx.rewrite(|t| t.retain(|(n, ..)| n != "lm_head.weight"));
    has(
        &fx.err(),
        &[
            "model.safetensors",
            "missing tensor 'lm_head.weight'",
            "[16, 16]",
        ],
    );
}

#[test]
fn missing_tensor_in_layer() {
    let fx = Fx::new("missing-fc2");
    let name = "hyena.backbone.layers.1.mlp.fc2.bias";
    fx.rewrite(|t| t.retain(|(n, ..)| n != name));
    has(&fx.err(), &["model.safetensors", name, "missing"]);
}

#[test]
fn missing_pos_emb_t_with_z_present() {
    let fx = Fx::new("missing-pos-t");
    let name = format!("{F0}pos_emb.t");
    fx.rewrite(|t| t.retain(|(n, ..)| *n != name));
    has(
        &fx.err(),
        &["model.safetensors", &name, "missing", "max_seq_len"],
    );
}

#[test]
fn missing_pos_emb_is_recomputed() {
    // Outcome: Ok. A checkpoint without pos_emb gets it computed as HF initialises it
    // (the random model stores exactly that).
    let fx = Fx::new("missing-pos");
    fx.rewrite(|t| t.retain(|(n, ..)| !n.contains("pos_emb")));
    let m = Model::load(&fx.dir).expect("loads with pos_emb recomputed");
    assert_eq!(m, fx.model);
}

#[test]
fn nan_weight() {
    let fx = Fx::new("nan");
    fx.rewrite(|t| {
        let x = t.iter_mut().find(|(n, ..)| n == IN_PROJ).expect("present");
        x.3[4..8].copy_from_slice(&f32::NAN.to_le_bytes());
    });
    has(
        &fx.err(),
        &[
            "model.safetensors",
            IN_PROJ,
            "non-finite value (NaN) at element 1",
        ],
    );
}

#[test]
fn infinite_weight() {
    let fx = Fx::new("inf");
    fx.rewrite(|t| {
        let x = t.iter_mut().find(|(n, ..)| n == EMBED).expect("present");
        x.3[..4].copy_from_slice(&f32::NEG_INFINITY.to_le_bytes());
    });
    has(
        &fx.err(),
        &[
            "model.safetensors",
            EMBED,
            "non-finite value (-inf) at element 0",
        ],
    );
}

/// Warnings logged by the loader, captured for the test below.
static LOGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            LOGS.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(r.args().to_string());
        }
    }
    fn flush(&self) {}
}

#[test]
fn unexpected_tensor_is_a_warning() {
    // Decision: an unknown tensor is ignored with one logged warning naming it (HF
    // checkpoints carry extra buffers); the model loads.
    static CAPTURE: Capture = Capture;
    let _ = log::set_logger(&CAPTURE);
    log::set_max_level(log::LevelFilter::Warn);
    let fx = Fx::new("unexpected");
    fx.rewrite(|t| {
        t.push((
            "hyena.backbone.layers.0.mixer.some_buffer".into(),
            Dtype::I64,
            vec![2],
            vec![0; 16],
        ))
    });
    let m = Model::load(&fx.dir).expect("an unexpected tensor is not an error");
    assert_eq!(m, fx.model);
    let logs = LOGS.lock().unwrap_or_else(|p| p.into_inner());
    let dir = fx.dir.display().to_string();
    assert!(
        logs.iter().any(|l| l.contains(&dir)
            && l.contains("ignoring 1 tensor")
            && l.contains("hyena.backbone.layers.0.mixer.some_buffer")),
        "a warning names the ignored tensor: {logs:?}"
    );
}

#[test]
fn tensors_for_a_layer_beyond_n_layer() {
    let fx = Fx::new("layer-beyond");
    fx.set_field("n_layer", json!(1));
    has(
        &fx.err(),
        &[
            "model.safetensors",
            "layer 1",
            "n_layer = 1",
            "does not match",
        ],
    );
}

#[test]
fn n_layer_larger_than_the_file() {
    let fx = Fx::new("layer-missing");
    fx.set_field("n_layer", json!(3));
    has(
        &fx.err(),
        &["model.safetensors", "n_layer = 3", "no tensors for layer 2"],
    );
}

#[test]
fn filter_mlp_module_beyond_num_inner_mlps() {
    let fx = Fx::new("extra-mlp");
    let name = format!("{F0}implicit_filter.8.weight");
    fx.rewrite(|t| t.push((name.clone(), Dtype::F32, vec![64, 64], vec![0; 64 * 64 * 4])));
    has(
        &fx.err(),
        &["model.safetensors", &name, "num_inner_mlps = 2"],
    );
}

#[test]
fn sin_frequency_aliases_disagree() {
    let fx = Fx::new("freq-alias");
    let name = format!("{F0}implicit_filter.3.freq");
    fx.rewrite(|t| t.push((name.clone(), Dtype::F32, vec![1, 64], vec![0; 64 * 4])));
    has(&fx.err(), &["model.safetensors", &name, "differs"]);
}

#[test]
fn sin_frequency_missing_with_train_freq() {
    let fx = Fx::new("freq-missing");
    fx.rewrite(|t| t.retain(|(n, ..)| !n.ends_with(".freq")));
    has(
        &fx.err(),
        &[
            "model.safetensors",
            &format!("{F0}implicit_filter.1.freq"),
            "train_freq",
        ],
    );
}

#[test]
fn vocab_size_mismatch() {
    let fx = Fx::new("vocab");
    fx.set_field("vocab_size", json!(20));
    has(
        &fx.err(),
        &[
            "model.safetensors",
            EMBED,
            "expected [24, 16]",
            "vocab_size 20",
        ],
    );
}

#[test]
fn d_model_mismatch() {
    let fx = Fx::new("d-model");
    fx.edit_config(|c| {
        c.insert("d_model".into(), json!(24));
        c.insert("d_inner".into(), json!(64));
    });
    has(&fx.err(), &["model.safetensors", EMBED, "d_model"]);
}

#[test]
fn d_inner_mismatch() {
    let fx = Fx::new("d-inner");
    fx.set_field("d_inner", json!(32));
    has(
        &fx.err(),
        &["model.safetensors", "mlp.fc1.weight", "[d_inner, d_model]"],
    );
}

#[test]
fn filter_order_mismatch() {
    let fx = Fx::new("filter-order");
    fx.set_field("filter_order", json!(32));
    has(
        &fx.err(),
        &[
            "model.safetensors",
            "implicit_filter.0.weight",
            "filter_order",
        ],
    );
}

#[test]
fn max_seq_len_mismatch() {
    let fx = Fx::new("max-seq-len");
    fx.set_field("max_seq_len", json!(128));
    has(
        &fx.err(),
        &[
            "model.safetensors",
            "pos_emb.z",
            "[1, max_seq_len, emb_dim]",
        ],
    );
}

// ---- config.json ----

#[test]
fn config_invalid_json() {
    let fx = Fx::new("cfg-json");
    fx.write("config.json", b"{\"d_model\": 16,");
    has(&fx.err(), &["config.json", "not valid JSON"]);
}

#[test]
fn config_not_an_object() {
    let fx = Fx::new("cfg-array");
    fx.write("config.json", b"[16, 2]");
    has(&fx.err(), &["config.json", "not a JSON object"]);
}

#[test]
fn config_missing_file() {
    let fx = Fx::new("cfg-missing");
    std::fs::remove_file(fx.dir.join("config.json")).expect("rm");
    has(&fx.err(), &["config.json", "No such file"]);
}

#[test]
fn config_not_utf8() {
    let fx = Fx::new("cfg-utf8");
    fx.write("config.json", b"{\"d_model\": \xff}");
    has(&fx.err(), &["config.json", "UTF-8"]);
}

fn missing_field(name: &str) {
    let fx = Fx::new(&format!("cfg-missing-{name}"));
    fx.edit_config(|c| {
        c.remove(name);
    });
    has(&fx.err(), &["config.json", &format!("'{name}' is missing")]);
}

#[test]
fn config_missing_d_model() {
    missing_field("d_model");
}

#[test]
fn config_missing_n_layer() {
    missing_field("n_layer");
}

#[test]
fn config_missing_vocab_size() {
    missing_field("vocab_size");
}

#[test]
fn config_missing_max_seq_len() {
    missing_field("max_seq_len");
}

/// Sets `field` to `v`; loading must fail naming the field and `problem`.
fn bad_field(field: &str, v: Value, problem: &str) {
    let fx = Fx::new(&format!("cfg-{field}"));
    fx.set_field(field, v);
    has(&fx.err(), &["config.json", field, problem]);
}

#[test]
fn config_d_model_zero() {
    bad_field("d_model", json!(0), "must be positive");
}

#[test]
fn config_n_layer_zero() {
    bad_field("n_layer", json!(0), "must be positive");
}

#[test]
fn config_max_seq_len_zero() {
    bad_field("max_seq_len", json!(0), "must be positive");
}

#[test]
fn config_vocab_size_zero() {
    bad_field("vocab_size", json!(0), "must be positive");
}

#[test]
fn config_filter_order_zero() {
    bad_field("filter_order", json!(0), "must be positive");
}

#[test]
fn config_d_model_negative() {
    bad_field("d_model", json!(-16), "non-negative integer");
}

#[test]
fn config_d_model_a_string() {
    bad_field("d_model", json!("16"), "non-negative integer");
}

#[test]
fn config_d_model_fractional() {
    bad_field("d_model", json!(16.5), "non-negative integer");
}

#[test]
fn config_d_model_u64_max() {
    // The default d_inner (4 d_model) must not overflow.
    let fx = Fx::new("cfg-d-model-max");
    fx.edit_config(|c| {
        c.insert("d_model".into(), json!(u64::MAX));
        c.remove("d_inner");
    });
    has(
        &fx.err(),
        &["config.json", "d_model", "larger than flashconv supports"],
    );
}

#[test]
fn config_max_seq_len_2_pow_40() {
    bad_field(
        "max_seq_len",
        json!(1u64 << 40),
        "larger than flashconv supports",
    );
}

#[test]
fn config_vocab_size_huge() {
    bad_field(
        "vocab_size",
        json!(1u64 << 32),
        "larger than flashconv supports",
    );
}

#[test]
fn config_d_inner_absurd() {
    bad_field(
        "d_inner",
        json!(1u64 << 40),
        "larger than flashconv supports",
    );
}

#[test]
fn config_n_layer_absurd() {
    bad_field(
        "n_layer",
        json!(1_000_000),
        "larger than flashconv supports",
    );
}

#[test]
fn config_emb_dim_even() {
    bad_field("emb_dim", json!(4), "must be odd and >= 3");
}

#[test]
fn config_emb_dim_zero() {
    bad_field("emb_dim", json!(0), "must be odd and >= 3");
}

#[test]
fn config_number_out_of_range() {
    let fx = Fx::new("cfg-1e400");
    fx.write(
        "config.json",
        br#"{"d_model": 16, "n_layer": 2, "vocab_size": 12, "max_seq_len": 1e400}"#,
    );
    has(
        &fx.err(),
        &["config.json", "not valid JSON", "out of range"],
    );
}

#[test]
fn config_pos_emb_over_parameter_cap() {
    // 2^24 positions x emb_dim 1023: each field within its cap, the product 64 GiB.
    let fx = Fx::new("cfg-cap-pos");
    fx.edit_config(|c| {
        c.insert("max_seq_len".into(), json!(1u64 << 24));
        c.insert("emb_dim".into(), json!(1023));
    });
    has(
        &fx.err(),
        &["config.json", "cap of 2147483648", "max_seq_len x emb_dim"],
    );
}

#[test]
fn config_mlp_over_parameter_cap() {
    let fx = Fx::new("cfg-cap-mlp");
    fx.edit_config(|c| {
        c.insert("d_model".into(), json!(1 << 16));
        c.insert("d_inner".into(), json!(1 << 18));
    });
    has(
        &fx.err(),
        &["config.json", "cap of 2147483648", "d_inner x d_model"],
    );
}

#[test]
fn config_layer_norm_epsilon_zero() {
    bad_field("layer_norm_epsilon", json!(0.0), "must be positive");
}

#[test]
fn config_float_field_a_string() {
    bad_field("activation_freq", json!("ten"), "must be a number");
}

#[test]
fn config_bool_field_a_string() {
    bad_field("train_freq", json!("yes"), "must be true or false");
}

#[test]
fn config_hyena_order_unsupported() {
    bad_field("hyena_order", json!(3), "not supported");
}

#[test]
fn config_short_filter_order_unsupported() {
    bad_field("short_filter_order", json!(4), "not supported");
}

#[test]
fn config_passed_directly_is_validated() {
    // Config's fields are public: from_safetensors validates again, so a hand-built
    // config cannot reach the loader's arithmetic (pad_vocab_size_multiple 0 would
    // divide by zero).
    let fx = Fx::new("cfg-direct");
    let mut c = fx.model.config.clone();
    c.pad_vocab_size_multiple = 0;
    let e = Model::from_safetensors(c, &fx.bytes(), &fx.weights())
        .expect_err("refused")
        .to_string();
    has(
        &e,
        &["config.json", "pad_vocab_size_multiple must be positive"],
    );
}

// ---- tokenizer_config.json and token ids ----

#[test]
fn tokenizer_invalid_json() {
    let fx = Fx::new("tok-json");
    fx.write("tokenizer_config.json", b"{\"characters\": [");
    has(
        &fx.tokenizer_err(),
        &["tokenizer_config.json", "not valid JSON"],
    );
}

#[test]
fn tokenizer_not_an_object() {
    let fx = Fx::new("tok-array");
    fx.write("tokenizer_config.json", b"[\"A\"]");
    has(
        &fx.tokenizer_err(),
        &["tokenizer_config.json", "not a JSON object"],
    );
}

#[test]
fn tokenizer_characters_not_a_list() {
    let fx = Fx::new("tok-list");
    fx.write("tokenizer_config.json", br#"{"characters": "ACGT"}"#);
    has(
        &fx.tokenizer_err(),
        &["tokenizer_config.json", "'characters' must be a list"],
    );
}

#[test]
fn tokenizer_multi_character_entry() {
    let fx = Fx::new("tok-multi");
    fx.write("tokenizer_config.json", br#"{"characters": ["A", "CG"]}"#);
    has(
        &fx.tokenizer_err(),
        &[
            "tokenizer_config.json",
            "single characters",
            "\"CG\" (entry 1)",
        ],
    );
}

#[test]
fn tokenizer_non_string_entry() {
    let fx = Fx::new("tok-number");
    fx.write("tokenizer_config.json", br#"{"characters": ["A", 7]}"#);
    has(
        &fx.tokenizer_err(),
        &["tokenizer_config.json", "single characters", "7 (entry 1)"],
    );
}

#[test]
fn tokenizer_duplicate_character() {
    let fx = Fx::new("tok-dup");
    fx.write(
        "tokenizer_config.json",
        br#"{"characters": ["A", "C", "A"]}"#,
    );
    has(
        &fx.tokenizer_err(),
        &["tokenizer_config.json", "\"A\" twice (entry 2)"],
    );
}

#[test]
fn tokenizer_not_utf8() {
    // Used to fall back silently to the DNA vocabulary.
    let fx = Fx::new("tok-utf8");
    fx.write("tokenizer_config.json", b"{\"characters\": [\"\xff\"]}");
    has(&fx.tokenizer_err(), &["tokenizer_config.json", "not UTF-8"]);
}

#[test]
fn tokenizer_larger_than_config_vocab() {
    let fx = Fx::new("tok-vocab");
    fx.write(
        "tokenizer_config.json",
        br#"{"characters": ["A", "C", "G", "T", "N", "X"]}"#,
    );
    let tok = Tokenizer::for_model_dir(&fx.dir).expect("a valid tokenizer file");
    let e = tok
        .check_vocab(fx.model.config.vocab_size)
        .expect_err("13 ids do not fit vocab_size 12")
        .to_string();
    has(&e, &["13 ids", "vocab_size = 12"]);
}

#[test]
fn tokenizer_absent_means_dna() {
    let fx = Fx::new("tok-absent");
    assert_eq!(
        Tokenizer::for_model_dir(&fx.dir).expect("no file"),
        Tokenizer::dna()
    );
}

#[test]
fn token_ids_out_of_u32_range() {
    let e = parse_ids("7, 4294967296")
        .expect_err("overflow")
        .to_string();
    has(&e, &["'4294967296'", "not a non-negative integer"]);
    assert!(parse_ids("7,-1").is_err());
    assert_eq!(
        parse_ids(" 4294967295 ,,\t0").expect("ok"),
        vec![u32::MAX, 0]
    );
}

#[test]
fn in_memory_entry_point_names_its_files() {
    let fx = Fx::new("from-bytes");
    let text = std::fs::read_to_string(fx.dir.join("config.json")).expect("config");
    let b = fx.bytes();
    assert_eq!(
        Model::from_bytes(&text, &b, "mem").expect("valid"),
        fx.model
    );
    let e = Model::from_bytes(&text, &b[..b.len() - 1], "mem")
        .expect_err("truncated")
        .to_string();
    has(
        &e,
        &[&Path::new("mem")
            .join("model.safetensors")
            .display()
            .to_string()],
    );
    let e = Model::from_bytes("{}", &b, "mem")
        .expect_err("bad config")
        .to_string();
    has(
        &e,
        &[
            &Path::new("mem").join("config.json").display().to_string(),
            "d_model",
        ],
    );
}
