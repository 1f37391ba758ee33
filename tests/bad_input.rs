//! Bad input returns an error that names the problem; nothing panics.

mod common;

use flashconv::model::read_all_f32;
use flashconv::session::session_len;
use flashconv::{Config, GpuModel, Method, Model, Session, SessionOptions};
use safetensors::Dtype;
use std::path::{Path, PathBuf};

/// A fresh directory holding a small random model.
fn model_dir(tag: &str) -> (PathBuf, Model) {
    let dir = std::env::temp_dir().join(format!("flashconv-bad-{tag}-{}", std::process::id()));
    let model = Model::random(Config::new(2, 16, 12, 64), 3).expect("random");
    model.save(&dir).expect("save");
    (dir, model)
}

/// Rewrites `dir/model.safetensors` after `edit` changes the (name, dtype, shape, bytes) list.
fn rewrite(dir: &Path, edit: impl FnOnce(&mut Vec<common::RawTensor>)) {
    let path = dir.join("model.safetensors");
    let mut tensors: Vec<common::RawTensor> = read_all_f32(&path)
        .expect("read")
        .into_iter()
        .map(|(n, (s, v))| (n, Dtype::F32, s, bytemuck::cast_slice(&v).to_vec()))
        .collect();
    edit(&mut tensors);
    std::fs::write(&path, common::serialize_raw(&tensors)).expect("write");
}

fn load_err(dir: &Path) -> String {
    let e = Model::load(dir).expect_err("loading must fail").to_string();
    let _ = std::fs::remove_dir_all(dir);
    e
}

const IN_PROJ: &str = "hyena.backbone.layers.1.mixer.in_proj.weight";

#[test]
fn missing_tensor_is_named() {
    let (dir, _) = model_dir("missing");
    rewrite(&dir, |t| t.retain(|(n, ..)| n != IN_PROJ));
    let e = load_err(&dir);
    assert!(e.contains(IN_PROJ) && e.contains("missing"), "{e}");
}

#[test]
fn wrong_shape_is_named() {
    let (dir, _) = model_dir("shape");
    rewrite(&dir, |t| {
        let x = t.iter_mut().find(|(n, ..)| n == IN_PROJ).expect("present");
        x.2 = vec![16, 48];
    });
    let e = load_err(&dir);
    assert!(e.contains(IN_PROJ) && e.contains("shape"), "{e}");
}

#[test]
fn wrong_dtype_is_named() {
    let (dir, _) = model_dir("dtype");
    rewrite(&dir, |t| {
        let x = t.iter_mut().find(|(n, ..)| n == IN_PROJ).expect("present");
        x.1 = Dtype::I32;
    });
    let e = load_err(&dir);
    assert!(e.contains(IN_PROJ) && e.contains("dtype"), "{e}");
}

#[test]
fn truncated_file_is_reported() {
    let (dir, _) = model_dir("trunc");
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("write");
    let e = load_err(&dir);
    assert!(
        e.contains("model.safetensors") && e.contains("safetensors"),
        "{e}"
    );
}

#[test]
fn nan_weight_is_named() {
    let (dir, _) = model_dir("nan");
    rewrite(&dir, |t| {
        let x = t.iter_mut().find(|(n, ..)| n == IN_PROJ).expect("present");
        x.3[4..8].copy_from_slice(&f32::NAN.to_le_bytes());
    });
    let e = load_err(&dir);
    assert!(e.contains(IN_PROJ) && e.contains("non-finite"), "{e}");
}

#[test]
fn config_mismatch_and_missing_files_are_reported() {
    let (dir, _) = model_dir("cfg");
    let cfg = std::fs::read_to_string(dir.join("config.json")).expect("cfg");
    std::fs::write(
        dir.join("config.json"),
        cfg.replace("\"d_model\": 16", "\"d_model\": 24"),
    )
    .expect("write");
    let e = Model::load(&dir).expect_err("d_model mismatch").to_string();
    assert!(e.contains("shape"), "{e}");
    std::fs::write(dir.join("config.json"), "{\"d_model\": 16}").expect("write");
    let e = Model::load(&dir).expect_err("missing fields").to_string();
    assert!(e.contains("config.json") && e.contains("n_layer"), "{e}");
    let e = load_err(&dir.join("nonexistent.safetensors"));
    assert!(e.contains("nonexistent.safetensors"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn prompt_too_long_and_bad_ids_are_refused() {
    let cfg = Config::new(1, 8, 12, 32);
    let e = session_len(&cfg, 40, 5).expect_err("too long").to_string();
    assert!(e.contains("max_seq_len"), "{e}");
    let e = session_len(&cfg, 32, 1).expect_err("full").to_string();
    assert!(e.contains("max_seq_len"), "{e}");

    let ctx = common::ctx();
    let model = Model::random(cfg, 1).expect("random");
    let gm = GpuModel::new(&ctx, model).expect("upload");
    let mut s = Session::new(&gm, SessionOptions::new(Method::Flash, 8)).expect("session");
    let e = s.feed(&[7, 8, 99]).expect_err("bad id").to_string();
    assert!(e.contains("99") && e.contains("out of range"), "{e}");
    assert_eq!(s.pos(), 0, "a refused feed consumes nothing");
    let e = s.feed(&[7; 9]).expect_err("too many").to_string();
    assert!(e.contains("session length"), "{e}");
    let e = Session::new(&gm, SessionOptions::new(Method::Flash, 33))
        .expect_err("len")
        .to_string();
    assert!(e.contains("max_seq_len"), "{e}");
    s.feed(&[7, 8]).expect("valid ids still work");
    assert_eq!(s.pos(), 2);
}
