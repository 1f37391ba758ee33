//! The bundled demo model (assets/hyena-rustbook-char, the CLI's default) loads with its
//! character tokenizer and has learned English: on held-out text its perplexity, computed
//! by the CPU f64 reference, is far below that of a random model of the same shape.

use flashconv::{bundled, reference, Model};

/// Held-out characters scored (plus the trailing [SEP], as `flashconv score --text`).
const N_CHARS: usize = 511;
/// Perplexity the trained model must stay under. The shipped model scores 3.48 on these
/// characters and 3.00 on the whole held-out set (tools/train/README.md); the uniform
/// distribution over the 104 padded ids scores 104, a random model of the same shape 172.
const MAX_PERPLEXITY: f64 = 6.0;

fn perplexity(model: &Model, ids: &[u32]) -> f64 {
    let out = reference::forward(model, ids).expect("reference forward");
    let vp = model.config.padded_vocab();
    let mut nll = 0.0;
    for t in 0..ids.len() - 1 {
        let row = &out.logits[t * vp..(t + 1) * vp];
        let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        let lse = max + row.iter().map(|&v| (v - max).exp()).sum::<f64>().ln();
        nll += lse - row[ids[t + 1] as usize];
    }
    (nll / (ids.len() - 1) as f64).exp()
}

#[test]
fn bundled_model_loads_with_its_tokenizer() {
    let model = bundled::model().expect("bundled model");
    let tok = bundled::tokenizer().expect("bundled tokenizer");
    assert_eq!(tok.vocab_size(), model.config.vocab_size);
    let text =
        "The Rust Programming Language.\n\nOwnership: fn main() { println!(\"{}\", 1 + 2); }";
    assert_eq!(
        tok.decode(&tok.encode(text)),
        text,
        "printable ASCII round-trips"
    );
    let sample: String = bundled::HELDOUT_SAMPLE.chars().take(N_CHARS).collect();
    assert!(!tok.encode(&sample).contains(&flashconv::tokenizer::UNK));
}

#[test]
fn bundled_model_predicts_held_out_text() {
    let model = bundled::model().expect("bundled model");
    let tok = bundled::tokenizer().expect("bundled tokenizer");
    let sample: String = bundled::HELDOUT_SAMPLE.chars().take(N_CHARS).collect();
    let ids = tok.encode_with_sep(&sample);
    let trained = perplexity(&model, &ids);
    let random = perplexity(
        &Model::random(model.config.clone(), 1).expect("random model"),
        &ids,
    );
    eprintln!(
        "held-out perplexity over {N_CHARS} characters: trained {trained:.3}, random {random:.3}"
    );
    assert!(
        trained < MAX_PERPLEXITY,
        "bundled model's held-out perplexity {trained:.3} is not below {MAX_PERPLEXITY}"
    );
    assert!(
        random > MAX_PERPLEXITY,
        "a random model scores {random:.3}: the bound does not tell trained from random"
    );
}
