//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) and the fixed crash
//! inputs (`fuzz/artifacts/<target>/`) through the same functions the cargo-fuzz targets
//! call, so stable CI without cargo-fuzz checks that none of them panics. CPU only.

use flashconv::fuzzing::{
    load_model_input, load_model_seeds, split_input, tokenizer_input, tokenizer_seeds,
};
use flashconv::tokenizer::{parse_ids, Tokenizer};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Runs one input through the target's function; panics (fails the test) if it does.
fn run(target: &str, data: &[u8]) {
    match target {
        "load_model" => {
            let _ = load_model_input(data);
        }
        "tokenizer" => tokenizer_input(data),
        other => panic!("unknown fuzz target directory '{other}': add it to tests/fuzz_corpus.rs"),
    }
}

/// Every file under `fuzz/<kind>/<target>/`, as (target, path).
fn inputs(kind: &str) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let Ok(targets) = std::fs::read_dir(fuzz_dir().join(kind)) else {
        return out;
    };
    for t in targets.flatten() {
        let target = t.file_name().to_string_lossy().into_owned();
        let Ok(files) = std::fs::read_dir(t.path()) else {
            continue;
        };
        for f in files.flatten() {
            if f.path().is_file() {
                out.push((target.clone(), f.path()));
            }
        }
    }
    out.sort();
    out
}

fn replay(kind: &str) -> usize {
    let all = inputs(kind);
    for (target, path) in &all {
        let data = std::fs::read(path).expect("read corpus file");
        let r = std::panic::catch_unwind(|| run(target, &data));
        assert!(r.is_ok(), "{} panicked", path.display());
    }
    all.len()
}

#[test]
fn corpus_replays_without_panics() {
    let n = replay("corpus");
    assert!(
        n >= 10,
        "expected the committed seed corpus, found {n} files"
    );
}

#[test]
fn fixed_crashes_replay_without_panics() {
    replay("artifacts");
}

#[test]
fn seeds_behave_as_named() {
    for (name, data) in load_model_seeds().expect("seeds") {
        let r = load_model_input(&data);
        assert_eq!(
            r.is_ok(),
            name.starts_with("valid"),
            "seed {name}: {:?}",
            r.err().map(|e| e.to_string())
        );
    }
    for (_, data) in tokenizer_seeds() {
        tokenizer_input(&data);
    }
}

/// Writes the seeds to `fuzz/corpus/<target>/seed_<name>`:
/// `cargo test --release --test fuzz_corpus -- --ignored write_seed_corpus`.
#[test]
#[ignore]
fn write_seed_corpus() {
    let sets = [
        ("load_model", load_model_seeds().expect("seeds")),
        ("tokenizer", tokenizer_seeds()),
    ];
    for (target, seeds) in sets {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).expect("mkdir");
        for (name, data) in seeds {
            std::fs::write(dir.join(format!("seed_{name}")), data).expect("write seed");
        }
    }
}

/// An error message with its numbers and serde positions blanked: inputs that fail the
/// same way get the same outcome.
fn outcome(msg: &str) -> String {
    let mut out = String::new();
    for c in msg.chars() {
        let c = if c.is_ascii_digit() { '#' } else { c };
        if !(c == '#' && out.ends_with('#')) {
            out.push(c);
        }
    }
    out.split(" at line").next().unwrap_or_default().to_string()
}

fn load_model_outcome(data: &[u8]) -> String {
    match load_model_input(data) {
        Ok(()) => "loaded".into(),
        Err(e) => outcome(&e.to_string()),
    }
}

fn tokenizer_outcome(data: &[u8]) -> String {
    let (cfg, text) = split_input(data);
    let cfg = String::from_utf8_lossy(cfg);
    let tok = match Tokenizer::from_config_json(&cfg, Path::new("t")) {
        Ok(t) => format!("vocab {}", t.vocab_size().min(20)),
        Err(e) => outcome(&e.to_string()),
    };
    let ids = parse_ids(&String::from_utf8_lossy(text)).map_or(0, |v| v.len().min(5) + 1);
    format!(
        "{tok} | ids {ids} | utf8 {}",
        std::str::from_utf8(data).is_ok()
    )
}

/// Refreshes the committed corpus from a `cargo fuzz cmin`-minimised one: keeps the
/// smallest inputs of each distinct outcome (8 that load, 2 per error, 2 per tokenizer
/// outcome). `FLASHCONV_CMIN_DIR=/tmp/cmin cargo test --release --test fuzz_corpus --
/// --ignored select_corpus`, with `/tmp/cmin/<target>/` holding the minimised corpora.
#[test]
#[ignore]
fn select_corpus() {
    let Some(cmin) = std::env::var_os("FLASHCONV_CMIN_DIR") else {
        panic!("set FLASHCONV_CMIN_DIR");
    };
    type Outcome = fn(&[u8]) -> String;
    let targets: [(&str, Outcome); 2] = [
        ("load_model", load_model_outcome),
        ("tokenizer", tokenizer_outcome),
    ];
    for (target, outcome) in targets {
        let mut by_outcome: BTreeMap<String, Vec<(usize, PathBuf)>> = BTreeMap::new();
        for f in std::fs::read_dir(Path::new(&cmin).join(target))
            .expect("minimised corpus")
            .flatten()
        {
            let data = std::fs::read(f.path()).expect("read");
            by_outcome
                .entry(outcome(&data))
                .or_default()
                .push((data.len(), f.path()));
        }
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let (mut files, mut bytes) = (0, 0);
        for (what, mut v) in by_outcome {
            v.sort();
            let keep = if what == "loaded" { 8 } else { 2 };
            for (len, path) in v.into_iter().take(keep) {
                let name = path.file_name().expect("file name");
                std::fs::copy(&path, dir.join(name)).expect("copy");
                files += 1;
                bytes += len;
            }
        }
        println!("{target}: kept {files} files, {bytes} bytes");
    }
}
