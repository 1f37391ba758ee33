//! `flashconv score` over many records (FASTA, FASTQ or one sequence per line; plain or
//! gzip): one output row per record, in input order, written as each completes. A
//! record that cannot be scored (too long for the model, ...) gets a row naming the
//! error and the run goes on; the exit status says whether any failed.

use super::common::{progress_bar, ModelArg};
use flashconv::records::{windows, Case, Record, Records, Window};
use flashconv::session::check_ids;
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
    /// The part of the input this run takes.
    pub(crate) shard: Shard,
    /// `(width, stride)` of the windows of long records.
    pub(crate) window: Option<(usize, usize)>,
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
    /// Its ids and the windows they run in (one, the whole record, unless it is
    /// longer than `--window`), or why it cannot run.
    ids: std::result::Result<(Vec<u32>, Vec<Window>), String>,
}

/// The rows' destination, in input order: stdout, or a file written chunk by chunk
/// with a manifest beside it (`OUT.manifest.json`) that counts the records whose rows
/// are in it, so that the same command after a crash or `kill -9` goes on from there.
struct Sink {
    out: Box<dyn Write>,
    path: PathBuf,
    jsonl: bool,
    /// What the file holds (files only).
    manifest: Option<Manifest>,
}

impl Sink {
    /// The sink of `out`; `identity` is what a rerun must match to resume.
    fn new(out: &RecordsOut, identity: serde_json::Value) -> Result<Self> {
        let Some(path) = out.path.clone() else {
            let mut sink = Sink {
                out: Box::new(std::io::stdout().lock()),
                path: "<stdout>".into(),
                jsonl: out.jsonl,
                manifest: None,
            };
            if !out.jsonl {
                sink.write(&format!("{TSV_HEADER}\n"))?;
            }
            return Ok(sink);
        };
        let mpath = PathBuf::from(format!("{}.manifest.json", path.display()));
        let manifest = Manifest::open(mpath, identity)?;
        let done = manifest.done;
        // Keep the header and the rows of the records done, no more.
        let kept: String = match std::fs::read_to_string(&path) {
            Ok(text) if done > 0 => {
                let lines = done + usize::from(!out.jsonl);
                text.split_inclusive('\n').take(lines).collect()
            }
            _ if out.jsonl => String::new(),
            _ => format!("{TSV_HEADER}\n"),
        };
        write_atomic(&path, kept.as_bytes())?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| io_error(&path, e))?;
        Ok(Sink {
            out: Box::new(std::io::BufWriter::new(file)),
            path,
            jsonl: out.jsonl,
            manifest: Some(manifest),
        })
    }

    fn write(&mut self, text: &str) -> Result<()> {
        self.out
            .write_all(text.as_bytes())
            .and_then(|()| self.out.flush())
            .map_err(|e| io_error(&self.path, e))
    }

    /// Writes a chunk's rows, then (for a file) the manifest that counts them.
    fn rows(&mut self, rows: &[Row]) -> Result<()> {
        let mut text = String::new();
        for row in rows {
            text.push_str(&if self.jsonl { row.json() } else { row.tsv() });
            text.push('\n');
        }
        self.write(&text)?;
        let failed = rows.iter().filter(|r| r.result.is_err()).count();
        match &mut self.manifest {
            Some(m) => m.add(rows.len(), failed),
            None => Ok(()),
        }
    }
}

/// A run's manifest, renamed into place after each piece of output: what the run is
/// (`identity`, which a rerun must match to resume) and how far it got.
pub(crate) struct Manifest {
    path: PathBuf,
    identity: serde_json::Value,
    /// Records whose output is written, and those of them that failed.
    pub(crate) done: usize,
    pub(crate) failed: usize,
}

impl Manifest {
    /// What every run over records is: the version, model, input, method, case, batch
    /// (which records share a session changes the last bits), part and windows.
    pub(crate) fn identity(model: &ModelArg, input: &Path, out: &RecordsOut) -> serde_json::Value {
        serde_json::json!({
            "flashconv_version": env!("CARGO_PKG_VERSION"),
            "model": model.model.as_ref().map_or("bundled".into(), |p| p.display().to_string()),
            "input": input.display().to_string(),
            "method": model.method.name(),
            "uppercase": out.case == Case::Upper,
            "batch": out.batch,
            "part": out.shard.to_string(),
            "window": out.window.map_or("none".into(), |(w, s)| format!("{w}/{s}")),
        })
    }

    /// The manifest at `path` for a run of `identity`: where a run of the same command
    /// left it, else at the start. One of another command is an error: its output is
    /// not this run's to extend.
    pub(crate) fn open(path: PathBuf, identity: serde_json::Value) -> Result<Self> {
        let mut m = Manifest {
            path,
            identity,
            done: 0,
            failed: 0,
        };
        let Ok(bytes) = std::fs::read(&m.path) else {
            return Ok(m);
        };
        let shown = m.path.display().to_string();
        let mut old: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::input(format!("{shown}: not a flashconv manifest: {e}")))?;
        let count = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap_or(0) as usize;
        (m.done, m.failed) = (count(&old, "records_done"), count(&old, "failed"));
        if let Some(o) = old.as_object_mut() {
            o.remove("records_done");
            o.remove("failed");
        }
        if old != m.identity {
            return Err(Error::input(format!(
                "{shown} is from a run with other options; remove it (and its output) or use another --out"
            )));
        }
        Ok(m)
    }

    /// Counts `records` more (`failed` of them failed) and writes the manifest.
    pub(crate) fn add(&mut self, records: usize, failed: usize) -> Result<()> {
        self.done += records;
        self.failed += failed;
        self.save()
    }

    /// Writes the manifest whole (temporary name, then rename).
    pub(crate) fn save(&self) -> Result<()> {
        let mut m = self.identity.clone();
        m["records_done"] = self.done.into();
        m["failed"] = self.failed.into();
        let mut json = serde_json::to_string_pretty(&m).unwrap_or_default();
        json.push('\n');
        write_atomic(&self.path, json.as_bytes())
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
    let source = (input, out.shard);
    let mut batches = Batches::open(source, (gm, tok), model.method, (out.case, out.batch))?
        .with_windows(out.window)?;
    let mut identity = Manifest::identity(model, input, out);
    identity["jsonl"] = out.jsonl.into();
    let mut sink = Sink::new(out, identity)?;
    let (done, failed) = sink
        .manifest
        .as_ref()
        .map_or((0, 0), |m| (m.done, m.failed));
    batches.skip(done);
    let mut progress = Progress::new();
    progress.failed = failed;
    let group = |seqs: &[&[u32]]| score_group(ctx, gm, model, seqs);
    while let Some(chunk) = batches.next_chunk(usize::MAX, group, combine_scores) {
        progress.failed += chunk.iter().filter(|r| r.result.is_err()).count();
        sink.rows(&chunk)?;
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
    /// The records of this shard, with their index in the whole input.
    records: std::iter::Peekable<Box<dyn Iterator<Item = (usize, Result<Record>)>>>,
    model: (&'a GpuModel, &'a Tokenizer, Method),
    case: Case,
    batch: usize,
    /// `(width, stride)`: records longer than `width` tokens run in windows.
    window: Option<(usize, usize)>,
    /// Records read so far, and their bases.
    pub(crate) read: usize,
    pub(crate) bases: usize,
}

/// A deterministic part of the input, for job arrays: the records whose index (from
/// 0, in input order) is `index` modulo `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shard {
    pub(crate) index: usize,
    pub(crate) count: usize,
}

impl Shard {
    /// The whole input.
    pub(crate) const ALL: Shard = Shard { index: 0, count: 1 };

    /// Parses `I/N` (0 <= I < N).
    pub(crate) fn parse(s: &str) -> std::result::Result<Shard, String> {
        let bad = || format!("--shard takes I/N with 0 <= I < N, e.g. 0/4, not '{s}'");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Batches read at a time: the records sorted by length within them share sessions.
const CHUNK_BATCHES: usize = 4;

impl<'a> Batches<'a> {
    /// The records of `shard` of `input` for `method` on `gm`, tokenized by `tok` after
    /// `case`, `batch` to a session (one for the methods other than flash, whose
    /// sessions run one sequence).
    pub(crate) fn open(
        (input, shard): (&Path, Shard),
        (gm, tok): (&'a GpuModel, &'a Tokenizer),
        method: Method,
        (case, batch): (Case, usize),
    ) -> Result<Self> {
        let records: Box<dyn Iterator<Item = (usize, Result<Record>)>> = Box::new(
            Records::open(input)?
                .enumerate()
                // A read error ends the input for every shard: each reports it.
                .filter(move |(i, r)| r.is_err() || i % shard.count == shard.index),
        );
        Ok(Batches {
            records: records.peekable(),
            model: (gm, tok, method),
            case,
            batch: if method == Method::Flash { batch } else { 1 },
            window: None,
            read: 0,
            bases: 0,
        })
    }

    /// Runs records longer than `width` tokens in windows `stride` apart
    /// ([`windows`]).
    pub(crate) fn with_windows(mut self, window: Option<(usize, usize)>) -> Result<Self> {
        if let Some((width, stride)) = window {
            let max = self.model.0.config().max_seq_len;
            let args = WindowArgs {
                window: Some(width),
                stride: Some(stride),
            };
            check_window(&args, max)?;
        }
        self.window = window;
        Ok(self)
    }

    /// Reads and drops the next `n` records (those a resumed run has done).
    pub(crate) fn skip(&mut self, n: usize) {
        for (_, r) in self.records.by_ref().take(n) {
            self.bases += r.map_or(0, |r| r.seq.len());
            self.read += 1;
        }
    }

    /// The next chunk's records (at most `limit`) in input order with what `run` gave
    /// for theirs (run on groups of similar length; a group that fails gives each of
    /// its records the error), or None at the end of the input. Which records share a
    /// session changes the last bits of their results (the session's length, its FFT
    /// sizes), so a run that must be reproduced from a point on starts its chunks there.
    pub(crate) fn next_chunk<T>(
        &mut self,
        limit: usize,
        mut run: impl FnMut(&[&[u32]]) -> Result<Vec<T>>,
        combine: impl Fn(&[Window], Vec<T>) -> T,
    ) -> Option<Vec<Done<T>>> {
        self.records.peek()?;
        let (gm, tok, method) = self.model;
        let chunk: Vec<Pending> = self
            .records
            .by_ref()
            .take((CHUNK_BATCHES * self.batch).min(limit.max(1)))
            .map(|(i, r)| pending(r, i, (gm, tok, method), (self.case, self.window)))
            .collect();
        self.read += chunk.len();
        self.bases += chunk.iter().map(|p| p.bases).sum::<usize>();
        // Every window of every good record, (record, window), shortest first.
        let mut parts: Vec<(usize, usize)> = Vec::new();
        for (i, p) in chunk.iter().enumerate() {
            if let Ok((_, windows)) = &p.ids {
                parts.extend((0..windows.len()).map(|k| (i, k)));
            }
        }
        let seq = |(i, k): (usize, usize)| -> &[u32] {
            match &chunk[i].ids {
                Ok((ids, w)) => &ids[w[k].start..w[k].end],
                Err(_) => &[],
            }
        };
        parts.sort_by_key(|&part| seq(part).len());
        let mut got: Vec<Vec<Option<std::result::Result<T, String>>>> = chunk
            .iter()
            .map(|p| p.ids.as_ref().map_or(0, |(_, w)| w.len()))
            .map(|n| (0..n).map(|_| None).collect())
            .collect();
        for group in parts.chunks(self.batch) {
            let seqs: Vec<&[u32]> = group.iter().map(|&part| seq(part)).collect();
            match run(&seqs) {
                Ok(out) => group
                    .iter()
                    .zip(out)
                    .for_each(|(&(i, k), o)| got[i][k] = Some(Ok(o))),
                Err(e) => group
                    .iter()
                    .for_each(|&(i, k)| got[i][k] = Some(Err(e.to_string()))),
            }
        }
        let done = chunk.into_iter().zip(got).map(|(p, parts)| Done {
            tokens: p.tokens,
            result: p.ids.and_then(|(_, windows)| {
                let parts: std::result::Result<Vec<T>, String> = parts
                    .into_iter()
                    .map(|r| r.unwrap_or_else(|| Err("not run".into())))
                    .collect();
                parts.map(|parts| combine(&windows, parts))
            }),
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
    (case, window): (Case, Option<(usize, usize)>),
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
            let n = ids.len();
            let windows = match window {
                Some((width, stride)) if n > width => {
                    check_ids(gm.config(), &ids).and_then(|()| windows(n, width, stride))
                }
                _ => SessionOptions::for_ids(gm.config(), method, &ids, 0).map(|_| {
                    vec![Window {
                        start: 0,
                        end: n,
                        keep: 1,
                    }]
                }),
            };
            Pending {
                id: r.id,
                bases: r.seq.len(),
                tokens: n,
                ids: windows.map(|w| (ids, w)).map_err(|e| e.to_string()),
            }
        }
    }
}

/// The score of a record from those of its windows: each window's log-probabilities
/// of the tokens it scores.
fn combine_scores(windows: &[Window], mut scores: Vec<Score>) -> Score {
    if windows.len() == 1 {
        if let Some(s) = scores.pop() {
            return s;
        }
    }
    let mut logprobs = Vec::new();
    for (w, s) in windows.iter().zip(&scores) {
        logprobs.extend_from_slice(&s.logprobs[w.keep - w.start - 1..w.end - w.start - 1]);
    }
    Score::of(logprobs)
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

/// Windows for records longer than the model's context.
#[derive(clap::Args, Clone, Copy, Debug)]
pub(crate) struct WindowArgs {
    /// A record longer than W tokens runs in windows of W tokens (at most max_seq_len),
    /// --stride apart. score: every token is scored once, by the window that gives it
    /// the most left context, and the row sums them; embed: each position's hidden
    /// state comes from the first window that holds it, then the rows are pooled.
    /// Without it such a record fails and its row names the limit.
    #[arg(long, value_name = "W")]
    pub(crate) window: Option<usize>,
    /// With --window: tokens between window starts (default W / 2; 1 to W - 1).
    #[arg(long, value_name = "S", requires = "window")]
    pub(crate) stride: Option<usize>,
}

/// `--window W --stride S` as `(W, S)` (S defaulting to W / 2), checked: W from 2 to
/// `max_seq_len`, S from 1 to W - 1.
pub(crate) fn check_window(
    args: &WindowArgs,
    max_seq_len: usize,
) -> Result<Option<(usize, usize)>> {
    let Some(width) = args.window else {
        return Ok(None);
    };
    if width > max_seq_len || width < 2 {
        return Err(Error::input(format!(
            "--window {width}: windows hold 2 to max_seq_len = {max_seq_len} tokens"
        )));
    }
    let stride = args.stride.unwrap_or(width / 2);
    windows(width + 1, width, stride)?;
    Ok(Some((width, stride)))
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

/// Writes `bytes` to `path` whole or not at all: to a temporary name beside it, synced,
/// then renamed over it.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| io_error(path, e))
}

pub(crate) fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}
