//! `flashconv score`: per-token log-probabilities, NLL and perplexity of a sequence
//! ([`Session::score`]), with its logits and hidden states on request.

use super::common::{device, load_model, ModelArg};
use super::records::{check_method, score_records, RecordsOut, Shard, WindowArgs};
use clap::Args;
use flashconv::model::write_f32;
use flashconv::records::{Case, Format, Records};
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
    /// A file to score. A FASTA or FASTQ file (plain or gzip; multi-line records, `N`,
    /// IUPAC codes) is scored record by record, one output row each (see --out); so is
    /// plain text, one sequence per line, with --out or --jsonl. Otherwise the file's
    /// whole text is one sequence (like --text; trailing newlines are dropped).
    #[arg(long, group = "source")]
    pub(crate) input: Option<PathBuf>,
    /// With --input: one row per record into this file, in input order, written a chunk
    /// of records at a time (TSV with a header: id, tokens, nll, mean_nll, perplexity,
    /// error; stdout without --out). A record that fails (too long for the model, ...)
    /// gets its error in the row, the run goes on, and the exit status is 1.
    /// OUT.manifest.json counts the records done: the same command again (after a crash
    /// or kill -9) goes on from there; one with other options is refused.
    #[arg(long, requires = "input")]
    pub(crate) out: Option<PathBuf>,
    /// With --input: the rows as JSON Lines instead of TSV.
    #[arg(long, requires = "input")]
    pub(crate) jsonl: bool,
    /// Fold the bases to upper case before tokenizing. Without it the text is tokenized
    /// as the HF HyenaDNA tokenizer does, which maps lower case (soft-masked bases) to
    /// [UNK]: use the default to match the original model's numbers, --uppercase to
    /// score soft-masked regions as bases.
    #[arg(long)]
    pub(crate) uppercase: bool,
    /// With records: how many run side by side in one session (flash only; the other
    /// methods score one at a time). Records are read a few batches at a time and
    /// grouped by length, so little is padded.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(crate) batch: u16,
    /// With records: only part I of N of them (those whose index from 0 is I modulo
    /// N), for job arrays; the N runs' rows together are every record's once.
    #[arg(long, value_name = "I/N", value_parser = Shard::parse)]
    pub(crate) shard: Option<Shard>,
    #[command(flatten)]
    pub(crate) window: WindowArgs,
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
    check_method(method)?;
    if let Some(input) = a.input.as_deref().filter(|&p| a.records_mode(p)) {
        return score_file(&a, input);
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
pub(crate) const SCORE_ROWS: usize = 2048;

/// `score --input` record by record.
fn score_file(a: &ScoreArgs, input: &std::path::Path) -> Result<()> {
    if a.logits.is_some() || a.hidden.is_some() || a.json {
        return Err(Error::input(
            "--logits, --hidden and --json score one sequence; with records (FASTA, \
             FASTQ, --out, --jsonl) the rows hold the scores",
        ));
    }
    let (model, tok) = load_model(&a.model.model)?;
    let ctx = device()?;
    let gm = a.model.upload(&ctx, model)?;
    let out = RecordsOut {
        path: a.out.clone(),
        jsonl: a.jsonl,
        case: Case::upper_if(a.uppercase),
        batch: a.batch as usize,
        shard: a.shard.unwrap_or(Shard::ALL),
        window: a
            .window
            .window
            .map(|w| (w, a.window.stride.unwrap_or(w / 2))),
    };
    score_records((&ctx, &gm, &tok), &a.model, input, &out)
}

impl ScoreArgs {
    /// Whether `--input` is read as records: FASTA or FASTQ content, or rows asked for.
    fn records_mode(&self, input: &std::path::Path) -> bool {
        self.out.is_some()
            || self.jsonl
            || Records::open(input).is_ok_and(|r| r.format() != Format::Lines)
    }

    /// The sequence: `--ids` as given, or `--text` / `--input` tokenized as the HF
    /// tokenizer does (with its trailing [SEP]).
    fn ids(&self, tok: &Tokenizer) -> Result<Vec<u32>> {
        match (&self.ids, &self.text, &self.input) {
            (Some(ids), _, _) => parse_ids(ids),
            (_, Some(text), _) => Ok(tok.encode_with_sep(&self.case(text))),
            (_, _, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
                    path: path.clone(),
                    source,
                })?;
                Ok(tok.encode_with_sep(&self.case(text.trim_end_matches(['\n', '\r']))))
            }
            _ => Err(Error::input(
                "give the sequence with --ids, --text or --input",
            )),
        }
    }
}

impl ScoreArgs {
    /// `text` as `--uppercase` says.
    fn case(&self, text: &str) -> String {
        Case::upper_if(self.uppercase).apply(text)
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
