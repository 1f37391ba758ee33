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

/// What one record came to: its id and token count, then its result (a score, an
/// embedding) or why it has none.
pub(crate) struct Done<T> {
    pub(crate) id: String,
    pub(crate) tokens: usize,
    pub(crate) result: std::result::Result<T, String>,
}

type Row = Done<Score>;

const TSV_HEADER: &str = "id\ttokens\tnll\tmean_nll\tperplexity\terror";

impl Done<Score> {
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
    /// Tokens after tokenizing (0 for a record that could not be read).
    tokens: usize,
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
/// Fails at the end, after every record, when any record failed.
pub(crate) fn score_records(
    (ctx, gm, tok): (&GpuContext, &GpuModel, &Tokenizer),
    model: &ModelArg,
    input: &Path,
    out: &RecordsOut,
) -> Result<()> {
    let mut batches = Batches::open(input, (gm, tok), model.method, (out.case, out.batch))?;
    let mut sink = Sink::new(out)?;
    let mut progress = Progress::new();
    while let Some(chunk) = batches.next_chunk(|seqs| score_group(ctx, gm, model, seqs)) {
        for row in chunk {
            progress.failed += usize::from(row.result.is_err());
            sink.row(&row)?;
        }
        progress.show(&batches);
    }
    let at = out
        .path
        .as_ref()
        .map_or("the output".into(), |p| p.display().to_string());
    progress.finish(&batches, &format!("their rows in {at} name the error"))
}

/// The records of one input, read a few batches at a time; within such a chunk the
/// records that can run are sorted by length and run side by side, `batch` to a
/// session.
pub(crate) struct Batches<'a> {
    records: std::iter::Peekable<Records>,
    model: (&'a GpuModel, &'a Tokenizer, Method),
    case: Case,
    batch: usize,
    /// Records read so far, and their bases.
    pub(crate) read: usize,
    pub(crate) bases: usize,
}

/// Batches read at a time: the records sorted by length within them share sessions.
const CHUNK_BATCHES: usize = 4;

impl<'a> Batches<'a> {
    /// The records of `input` for `method` on `gm`, tokenized by `tok` after `case`,
    /// `batch` to a session (one for the methods other than flash, whose sessions run
    /// one sequence).
    pub(crate) fn open(
        input: &Path,
        (gm, tok): (&'a GpuModel, &'a Tokenizer),
        method: Method,
        (case, batch): (Case, usize),
    ) -> Result<Self> {
        Ok(Batches {
            records: Records::open(input)?.peekable(),
            model: (gm, tok, method),
            case,
            batch: if method == Method::Flash { batch } else { 1 },
            read: 0,
            bases: 0,
        })
    }

    /// Reads and drops the next `n` records (those a resumed run has done).
    pub(crate) fn skip(&mut self, n: usize) {
        for r in self.records.by_ref().take(n) {
            self.bases += r.map_or(0, |r| r.seq.len());
            self.read += 1;
        }
    }

    /// The next chunk's records in input order with what `run` gave for theirs (run on
    /// groups of similar length; a group that fails gives each of its records the
    /// error), or None at the end of the input.
    pub(crate) fn next_chunk<T>(
        &mut self,
        mut run: impl FnMut(&[&[u32]]) -> Result<Vec<T>>,
    ) -> Option<Vec<Done<T>>> {
        self.records.peek()?;
        let (gm, tok, method) = self.model;
        let first = self.read;
        let chunk: Vec<Pending> = self
            .records
            .by_ref()
            .take(CHUNK_BATCHES * self.batch)
            .enumerate()
            .map(|(i, r)| pending(r, first + i, (gm, tok, method), self.case))
            .collect();
        self.read += chunk.len();
        self.bases += chunk.iter().map(|p| p.bases).sum::<usize>();
        let mut results: Vec<Option<std::result::Result<T, String>>> =
            chunk.iter().map(|_| None).collect();
        let ids = |i: usize| chunk[i].ids.as_deref().unwrap_or_default();
        let mut good: Vec<usize> = (0..chunk.len()).filter(|&i| chunk[i].ids.is_ok()).collect();
        good.sort_by_key(|&i| ids(i).len());
        for group in good.chunks(self.batch) {
            let seqs: Vec<&[u32]> = group.iter().map(|&i| ids(i)).collect();
            match run(&seqs) {
                Ok(out) => group
                    .iter()
                    .zip(out)
                    .for_each(|(&i, o)| results[i] = Some(Ok(o))),
                Err(e) => group
                    .iter()
                    .for_each(|&i| results[i] = Some(Err(e.to_string()))),
            }
        }
        let done = chunk.into_iter().zip(results).map(|(p, r)| Done {
            tokens: p.tokens,
            result: match (p.ids, r) {
                (Err(e), _) => Err(e),
                (Ok(_), r) => r.unwrap_or_else(|| Err("not run".into())),
            },
            id: p.id,
        });
        Some(done.collect())
    }
}

/// The progress line (records/s, bases/s) and the failure count.
pub(crate) struct Progress {
    bar: indicatif::ProgressBar,
    start: std::time::Instant,
    pub(crate) failed: usize,
}

impl Progress {
    pub(crate) fn new() -> Self {
        Progress {
            bar: progress_bar(0, "{spinner} {pos} records, {msg} [{elapsed}]"),
            start: std::time::Instant::now(),
            failed: 0,
        }
    }

    pub(crate) fn show(&self, b: &Batches<'_>) {
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        self.bar.set_position(b.read as u64);
        self.bar.set_message(format!(
            "{:.1} records/s, {:.0} bases/s",
            b.read as f64 / secs,
            b.bases as f64 / secs
        ));
    }

    /// The summary on stderr; an error when records failed (`where_` says where they
    /// are named).
    pub(crate) fn finish(self, b: &Batches<'_>, where_: &str) -> Result<()> {
        self.bar.finish_and_clear();
        let secs = self.start.elapsed().as_secs_f64();
        eprintln!(
            "{} records ({} bases) in {secs:.3} s ({:.1} records/s), {} failed",
            b.read,
            b.bases,
            b.read as f64 / secs.max(1e-9),
            self.failed
        );
        if self.failed > 0 {
            return Err(Error::input(format!(
                "{} of {} records failed ({where_})",
                self.failed, b.read
            )));
        }
        Ok(())
    }
}

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
            tokens: 0,
            ids: Err(e.to_string()),
        },
        Ok(r) => {
            let ids = tok.encode_with_sep(&r.text(case));
            let checked = SessionOptions::for_ids(gm.config(), method, &ids, 0);
            Pending {
                id: r.id,
                bases: r.seq.len(),
                tokens: ids.len(),
                ids: checked.map(|_| ids).map_err(|e| e.to_string()),
            }
        }
    }
}

/// The scores of `seqs` side by side.
fn score_group(
    ctx: &GpuContext,
    gm: &GpuModel,
    model: &ModelArg,
    seqs: &[&[u32]],
) -> Result<Vec<Score>> {
    session_for(ctx, gm, model, seqs)?.score_batch(seqs, &ScoreOptions::default())
}

/// A fresh session for `seqs` side by side, sized for the longest, with the model
/// flags applied and its logits read back in pieces of at most `SCORE_ROWS` rows.
pub(crate) fn session_for(
    ctx: &GpuContext,
    gm: &GpuModel,
    model: &ModelArg,
    seqs: &[&[u32]],
) -> Result<Session> {
    let opts = SessionOptions::for_batch(gm.config(), model.method, seqs)?;
    let mut opts = model.tuned(ctx, opts)?;
    let longest = seqs.iter().map(|s| s.len()).max().unwrap_or(1);
    opts.logit_rows = longest.min(super::score::SCORE_ROWS);
    Session::new(gm, opts)
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
