//! `flashconv score` over many records (FASTA, FASTQ or one sequence per line; plain or
//! gzip): one output row per record, in input order, written as each completes. A
//! record that cannot be scored (too long for the model, ...) gets a row naming the
//! error and the run goes on; the exit status says whether any failed.

use super::common::{progress_bar, ModelArg};
use flashconv::records::{Case, Record, Records};
use flashconv::session::{Score, ScoreOptions};
use flashconv::tokenizer::Tokenizer;
use flashconv::{Error, GpuContext, GpuModel, Method, Result, Session, SessionOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where and how the rows go.
pub(crate) struct RecordsOut {
    /// The output file (stdout when None).
    pub(crate) path: Option<PathBuf>,
    /// JSON Lines rather than TSV.
    pub(crate) jsonl: bool,
    /// How bases are case-folded before tokenizing.
    pub(crate) case: Case,
    /// Records scored side by side in one session (flash; the other methods score one
    /// at a time).
    pub(crate) batch: usize,
}

/// What one record came to: its id and token count, then its score or why it has none.
struct Row {
    id: String,
    tokens: usize,
    result: std::result::Result<Score, String>,
}

const TSV_HEADER: &str = "id\ttokens\tnll\tmean_nll\tperplexity\terror";

impl Row {
    /// The row as TSV (floats in Rust's shortest round-trip form; the error's tabs and
    /// line breaks become spaces).
    fn tsv(&self) -> String {
        match &self.result {
            Ok(s) => format!(
                "{}\t{}\t{}\t{}\t{}\t",
                self.id, self.tokens, s.nll, s.mean_nll, s.perplexity
            ),
            Err(e) => {
                let e = e.replace(['\t', '\n', '\r'], " ");
                format!("{}\t{}\t\t\t\t{e}", self.id, self.tokens)
            }
        }
    }

    /// The row as one JSON object.
    fn json(&self) -> String {
        let v = match &self.result {
            Ok(s) => serde_json::json!({
                "id": self.id, "tokens": self.tokens,
                "nll": s.nll, "mean_nll": s.mean_nll, "perplexity": s.perplexity,
            }),
            Err(e) => serde_json::json!({ "id": self.id, "tokens": self.tokens, "error": e }),
        };
        v.to_string()
    }
}

/// A record read and tokenized, waiting for its batch: its ids, or why it cannot be
/// scored (a malformed record, too long for the model, ...).
struct Pending {
    id: String,
    bases: usize,
    ids: std::result::Result<Vec<u32>, String>,
}

/// The rows' destination, written row by row in input order.
struct Sink {
    out: Box<dyn Write>,
    path: PathBuf,
    jsonl: bool,
}

impl Sink {
    fn new(out: &RecordsOut) -> Result<Self> {
        let path = out.path.clone().unwrap_or_else(|| "<stdout>".into());
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let file: Box<dyn Write> = match &out.path {
            Some(p) => Box::new(std::io::BufWriter::new(
                std::fs::File::create(p).map_err(io)?,
            )),
            None => Box::new(std::io::stdout().lock()),
        };
        let mut sink = Sink {
            out: file,
            path,
            jsonl: out.jsonl,
        };
        if !out.jsonl {
            sink.line(TSV_HEADER)?;
        }
        Ok(sink)
    }

    fn line(&mut self, line: &str) -> Result<()> {
        writeln!(self.out, "{line}")
            .and_then(|()| self.out.flush())
            .map_err(|source| Error::Io {
                path: self.path.clone(),
                source,
            })
    }

    fn row(&mut self, row: &Row) -> Result<()> {
        self.line(&if self.jsonl { row.json() } else { row.tsv() })
    }
}

/// Scores every record of `input` on `gm`, writing a row per record in input order.
/// Records are read in chunks of a few batches; within a chunk those of similar
/// length run side by side, `out.batch` to a session. Fails at the end, after every
/// record, when any record failed.
pub(crate) fn score_records(
    (ctx, gm, tok): (&GpuContext, &GpuModel, &Tokenizer),
    model: &ModelArg,
    input: &Path,
    out: &RecordsOut,
) -> Result<()> {
    // Sessions of several sequences run flash (or none, which cannot score).
    let batch = if model.method == Method::Flash {
        out.batch
    } else {
        1
    };
    let mut records = Records::open(input)?.peekable();
    let mut sink = Sink::new(out)?;
    let bar = progress_bar(0, "{spinner} {pos} records, {msg} [{elapsed}]");
    let start = std::time::Instant::now();
    let (mut done, mut failed, mut bases) = (0usize, 0usize, 0usize);
    while records.peek().is_some() {
        let chunk: Vec<Pending> = records
            .by_ref()
            .take(CHUNK_BATCHES * batch)
            .enumerate()
            .map(|(i, r)| pending(r, done + i, (gm, tok, model.method), out.case))
            .collect();
        bases += chunk.iter().map(|p| p.bases).sum::<usize>();
        done += chunk.len();
        for row in score_chunk((ctx, gm, model), chunk, batch) {
            failed += usize::from(row.result.is_err());
            sink.row(&row)?;
        }
        let secs = start.elapsed().as_secs_f64().max(1e-9);
        bar.set_position(done as u64);
        bar.set_message(format!(
            "{:.1} records/s, {:.0} bases/s",
            done as f64 / secs,
            bases as f64 / secs
        ));
    }
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "{done} records ({bases} bases) in {secs:.3} s ({:.1} records/s), {failed} failed",
        done as f64 / secs.max(1e-9)
    );
    if failed > 0 {
        let at = out
            .path
            .as_ref()
            .map_or("the output".into(), |p| p.display().to_string());
        return Err(Error::input(format!(
            "{failed} of {done} records failed (their rows in {at} name the error)"
        )));
    }
    Ok(())
}

/// Batches read at a time: the records sorted by length within them share sessions.
const CHUNK_BATCHES: usize = 4;

/// Record `index` (from 0) read and tokenized, with its ids checked against the model
/// (vocabulary, max_seq_len) so that a bad record never fails its batch.
fn pending(
    record: Result<Record>,
    index: usize,
    (gm, tok, method): (&GpuModel, &Tokenizer, Method),
    case: Case,
) -> Pending {
    match record {
        Err(e) => Pending {
            id: format!("record {}", index + 1),
            bases: 0,
            ids: Err(e.to_string()),
        },
        Ok(r) => {
            let ids = tok.encode_with_sep(&r.text(case));
            let checked = SessionOptions::for_ids(gm.config(), method, &ids, 0);
            Pending {
                id: r.id,
                bases: r.seq.len(),
                ids: checked.map(|_| ids).map_err(|e| e.to_string()),
            }
        }
    }
}

/// The rows of `chunk`, in its order: its good records sorted by length and scored
/// `batch` to a session (a session that fails gives each of its records the error).
fn score_chunk(
    (ctx, gm, model): (&GpuContext, &GpuModel, &ModelArg),
    chunk: Vec<Pending>,
    batch: usize,
) -> Vec<Row> {
    let mut results: Vec<Option<std::result::Result<Score, String>>> = vec![None; chunk.len()];
    let mut good: Vec<usize> = Vec::new();
    for (i, p) in chunk.iter().enumerate() {
        match &p.ids {
            Ok(_) => good.push(i),
            Err(e) => results[i] = Some(Err(e.clone())),
        }
    }
    let ids = |i: usize| chunk[i].ids.as_deref().unwrap_or_default();
    good.sort_by_key(|&i| ids(i).len());
    for group in good.chunks(batch) {
        let seqs: Vec<&[u32]> = group.iter().map(|&i| ids(i)).collect();
        match score_group(ctx, gm, model, &seqs) {
            Ok(scores) => {
                for (&i, s) in group.iter().zip(scores) {
                    results[i] = Some(Ok(s));
                }
            }
            Err(e) => {
                for &i in group {
                    results[i] = Some(Err(e.to_string()));
                }
            }
        }
    }
    chunk
        .into_iter()
        .zip(results)
        .map(|(p, r)| Row {
            tokens: p.ids.as_ref().map_or(0, |ids| ids.len()),
            id: p.id,
            result: r.unwrap_or_else(|| Err("not scored".into())),
        })
        .collect()
}

/// The scores of `seqs` side by side on a fresh session sized for the longest.
fn score_group(
    ctx: &GpuContext,
    gm: &GpuModel,
    model: &ModelArg,
    seqs: &[&[u32]],
) -> Result<Vec<Score>> {
    let opts = SessionOptions::for_batch(gm.config(), model.method, seqs)?;
    let mut opts = model.tuned(ctx, opts)?;
    let longest = seqs.iter().map(|s| s.len()).max().unwrap_or(1);
    opts.logit_rows = longest.min(super::score::SCORE_ROWS);
    Session::new(gm, opts)?.score_batch(seqs, &ScoreOptions::default())
}

/// Whether `method` can score (the exact ones).
pub(crate) fn check_method(method: Method) -> Result<()> {
    if method.is_exact() {
        Ok(())
    } else {
        Err(Error::input(
            "score needs an exact method (flash, lazy or eager)",
        ))
    }
}
