//! `flashconv score`: per-token log-probabilities, NLL and perplexity of a sequence
//! ([`Session::score`]), with its logits and hidden states on request.

use super::common::{device, load_model, ModelArg};
use clap::Args;
use flashconv::model::write_f32;
use flashconv::sampling::top2_margin;
use flashconv::session::{Score, ScoreOptions};
use flashconv::tokenizer::{parse_ids, Tokenizer};
use flashconv::{Error, GpuContext, Method, Result, Session, SessionOptions};
use std::path::PathBuf;

#[derive(Args)]
pub(crate) struct ScoreArgs {
    #[command(flatten)]
    pub(crate) model: ModelArg,
    /// Token ids, used as given.
    #[arg(long, group = "source")]
    pub(crate) ids: Option<String>,
    /// Text, tokenized as the HF tokenizer does (with its trailing [SEP]).
    #[arg(long, group = "source")]
    pub(crate) text: Option<String>,
    /// A file whose text is scored (like --text; trailing newlines are dropped).
    #[arg(long, group = "source")]
    pub(crate) input: Option<PathBuf>,
    /// Write the logits of every position (f32 [n, padded vocab], tensor `logits`).
    #[arg(long)]
    pub(crate) logits: Option<PathBuf>,
    /// Write the final hidden states (after ln_f; f32 [n, d_model], tensor `hidden`).
    #[arg(long)]
    pub(crate) hidden: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn score(a: ScoreArgs) -> Result<()> {
    let method = a.model.method;
    if !method.is_exact() {
        return Err(Error::input(
            "score needs an exact method (flash, lazy or eager)",
        ));
    }
    let (model, tok) = load_model(&a.model.model)?;
    let ids = a.ids(&tok)?;
    if ids.is_empty() {
        return Err(Error::input("the sequence to score is empty"));
    }
    let n = ids.len();
    let (vp, d) = (model.config.padded_vocab(), model.config.d_model);
    let opts = SessionOptions::for_ids(&model.config, method, &ids, 0)?;
    let ctx = device()?;
    let gm = a.model.upload(&ctx, model)?;
    let mut opts = a.model.tuned(&ctx, opts)?;
    opts.logit_rows = n.min(SCORE_ROWS);
    let mut s = Session::new(&gm, opts)?;
    let start_time = std::time::Instant::now();
    let keep = ScoreOptions {
        // The JSON report's margins read the logits.
        logits: a.logits.is_some() || a.json,
        hidden: a.hidden.is_some(),
    };
    let score = s.score(&ids, &keep)?;
    // Feeding and reading back: the read-backs wait for the GPU.
    let seconds = start_time.elapsed().as_secs_f64();
    let (dispatches, submits) = s.counts();
    eprintln!(
        "({n} positions in {seconds:.3} s, {:.0} token/s: {dispatches} dispatches, {submits} submits)",
        n as f64 / seconds
    );
    if let (Some(path), Some(logits)) = (&a.logits, &score.logits) {
        write_f32(path, &[("logits", vec![n, vp], logits)])?;
    }
    if let (Some(path), Some(hidden)) = (&a.hidden, &score.hidden) {
        write_f32(path, &[("hidden", vec![n, d], hidden)])?;
    }
    if a.json {
        let vocab = gm.config().vocab_size;
        println!("{}", json_report(&ids, &score, (vp, vocab), method, &ctx));
    } else {
        print_table(&ids, &score, &tok);
    }
    Ok(())
}

/// Logits come back in pieces of at most this many positions, so the ring on the
/// device stays small (and within the binding limit) however long the sequence.
const SCORE_ROWS: usize = 2048;

impl ScoreArgs {
    /// The sequence: `--ids` as given, or `--text` / `--input` tokenized as the HF
    /// tokenizer does (with its trailing [SEP]).
    fn ids(&self, tok: &Tokenizer) -> Result<Vec<u32>> {
        match (&self.ids, &self.text, &self.input) {
            (Some(ids), _, _) => parse_ids(ids),
            (_, Some(text), _) => Ok(tok.encode_with_sep(text)),
            (_, _, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
                    path: path.clone(),
                    source,
                })?;
                Ok(tok.encode_with_sep(text.trim_end_matches(['\n', '\r'])))
            }
            _ => Err(Error::input(
                "give the sequence with --ids, --text or --input",
            )),
        }
    }
}

/// The score as pretty JSON, with the top-2 logit margin of every position (over the
/// real vocabulary, of the `(padded, real)` widths): where it is small, drivers may
/// disagree on the greedy token.
fn json_report(
    ids: &[u32],
    score: &Score,
    (vp, vocab): (usize, usize),
    method: Method,
    ctx: &GpuContext,
) -> String {
    let logits = score.logits.as_deref().unwrap_or_default();
    let margins: Vec<f32> = logits
        .chunks_exact(vp)
        .map(|row| top2_margin(&row[..vocab]))
        .collect();
    let v = serde_json::json!({
        "tokens": ids,
        "logprobs": score.logprobs,
        "top2_margins": margins,
        "nll": score.nll,
        "mean_nll": score.mean_nll,
        "perplexity": score.perplexity,
        "method": method.name(),
        "adapter": ctx.info.name,
    });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

/// One line per predicted token, then the totals.
fn print_table(ids: &[u32], score: &Score, tok: &Tokenizer) {
    println!("{:>6}  {:>10}  {:>12}", "pos", "token", "logprob");
    for (t, lp) in score.logprobs.iter().enumerate() {
        println!(
            "{:>6}  {:>10}  {:>12.6}",
            t + 1,
            tok.token_str(ids[t + 1]),
            lp
        );
    }
    let (n, nll, mean, ppl) = (ids.len(), score.nll, score.mean_nll, score.perplexity);
    println!("tokens: {n}  total NLL: {nll:.6}  mean NLL: {mean:.6}  perplexity: {ppl:.6}");
}
