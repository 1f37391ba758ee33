//! `flashconv embed`: every record's embedding (hidden states after ln_f, pooled) into
//! safetensors shards in a directory, with an index and a manifest. Each shard is
//! written whole under a temporary name and renamed; the manifest, renamed last,
//! counts the records done, so a run killed at any point and started again with the
//! same command skips them and ends with the same files as a run never interrupted.

use super::common::{device, load_model, ModelArg};
use super::records::{
    check_method, check_window, io_error, session_for, write_atomic, Batches, Done, Manifest,
    Progress, RecordsOut, Shard, WindowArgs,
};
use clap::Args;
use flashconv::records::{Case, Window};
use flashconv::session::Pool;
use flashconv::{Error, GpuContext, GpuModel, Result};
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use std::io::Write;
use std::path::PathBuf;

#[derive(Args)]
pub(crate) struct EmbedArgs {
    #[command(flatten)]
    pub(crate) model: ModelArg,
    /// FASTA, FASTQ or one sequence per line; plain or gzip.
    #[arg(long)]
    pub(crate) input: PathBuf,
    /// Output directory: `shard-NNNNN.safetensors` (tensor `embeddings`, f32
    /// [records, d_model]; with --pool none [positions, d_model] and `offsets`, i64
    /// [records + 1], where record i's rows start), `index.tsv` (shard, row, id,
    /// tokens, error: one line per record in input order) and `manifest.json`.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// mean: the mean of the hidden states (after ln_f) over the record's positions as
    /// `score --text` tokenizes it, its bases then the trailing [SEP]; last: the [SEP]
    /// position's; none: every position's.
    #[arg(long, value_enum, default_value_t = Pool::Mean)]
    pub(crate) pool: Pool,
    /// Fold the bases to upper case before tokenizing (see `score --uppercase`).
    #[arg(long)]
    pub(crate) uppercase: bool,
    /// Records run side by side in one session (flash only).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(crate) batch: u16,
    /// Records per shard (the last may hold fewer).
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) shard_records: u32,
    /// Only part I of N of the records (those whose index from 0 is I modulo N), for
    /// job arrays: give each part its own --out.
    #[arg(long, value_name = "I/N", value_parser = Shard::parse)]
    pub(crate) shard: Option<Shard>,
    #[command(flatten)]
    pub(crate) window: WindowArgs,
}

/// A record's hidden rows `[n][d]` from those of its windows (`parts[k]` holds window
/// k's rows): position t from the first window that holds it.
fn window_rows(windows: &[Window], mut parts: Vec<Vec<f32>>, d: usize) -> Vec<f32> {
    if windows.len() == 1 {
        return parts.pop().unwrap_or_default();
    }
    let mut rows = Vec::new();
    for (k, (w, part)) in windows.iter().zip(&parts).enumerate() {
        // Window k is the first to hold positions from its keep (the previous one's
        // end) on; window 0 from 0.
        let from = if k == 0 { 0 } else { w.keep - w.start };
        rows.extend_from_slice(&part[from * d..(w.end - w.start) * d]);
    }
    rows
}

pub(crate) fn embed(a: EmbedArgs) -> Result<()> {
    check_method(a.model.method)?;
    let (model, tok) = load_model(&a.model.model)?;
    let ctx = device()?;
    let gm = a.model.upload(&ctx, model)?;
    let records = RecordsOut {
        path: Some(a.out.clone()),
        jsonl: false,
        case: Case::upper_if(a.uppercase),
        batch: a.batch as usize,
        shard: a.shard.unwrap_or(Shard::ALL),
        window: check_window(&a.window, gm.config().max_seq_len)?,
    };
    let mut run = Shards::open(&a, &records, gm.config().d_model)?;
    let mut batches = Batches::open(
        (&a.input, records.shard),
        (&gm, &tok),
        a.model.method,
        (records.case, records.batch),
    )?
    .with_windows(records.window)?;
    batches.skip(run.manifest.done);
    let mut progress = Progress::new();
    // Every position's rows, pooled once a record's windows are together.
    let group = |seqs: &[&[u32]]| embed_group(&ctx, &gm, &a.model, seqs, Pool::None);
    let d = gm.config().d_model;
    let pool =
        |windows: &[Window], parts: Vec<Vec<f32>>| a.pool.apply(&window_rows(windows, parts, d), d);
    // Chunks never cross a shard, so a resumed run (which starts at one) groups the
    // records as a run never interrupted does, and gives the same bytes.
    while let Some(chunk) = batches.next_chunk(run.room(), group, pool) {
        for done in chunk {
            run.push(done)?;
        }
        progress.show(&batches);
    }
    run.flush()?;
    progress.failed = run.manifest.failed;
    let at = format!("{} names them", a.out.join("index.tsv").display());
    progress.finish(&batches, &at)
}

/// The embeddings of `seqs` side by side.
fn embed_group(
    ctx: &GpuContext,
    gm: &GpuModel,
    model: &ModelArg,
    seqs: &[&[u32]],
    pool: Pool,
) -> Result<Vec<Vec<f32>>> {
    session_for(ctx, gm, model, seqs)?.embed_batch(seqs, pool)
}

/// The output directory of one run: the shard being filled, the index, the manifest.
struct Shards {
    dir: PathBuf,
    manifest: Manifest,
    pool: Pool,
    shard_records: usize,
    d_model: usize,
    /// The records of the shard being filled.
    pending: Vec<Done<Vec<f32>>>,
}

impl Shards {
    /// The directory of `a`, resuming what a run of the same command left there: the
    /// records of its manifest are done, and the index is cut back to them.
    fn open(a: &EmbedArgs, records: &RecordsOut, d_model: usize) -> Result<Self> {
        let dir = a.out.clone();
        std::fs::create_dir_all(&dir).map_err(|source| io_error(&dir, source))?;
        let mut identity = Manifest::identity(&a.model, &a.input, records);
        identity["pool"] = a.pool.name().into();
        identity["shard_records"] = a.shard_records.into();
        identity["d_model"] = d_model.into();
        let shards = Shards {
            manifest: Manifest::open(dir.join("manifest.json"), identity)?,
            dir,
            pool: a.pool,
            shard_records: a.shard_records as usize,
            d_model,
            pending: Vec::new(),
        };
        shards.cut_index()?;
        Ok(shards)
    }

    /// index.tsv with its header and the lines of the records done, no more (a run
    /// killed after writing a shard's lines and before its manifest left more).
    fn cut_index(&self) -> Result<()> {
        let path = self.dir.join("index.tsv");
        let kept: Vec<String> = match std::fs::read_to_string(&path) {
            Ok(text) => text
                .lines()
                .take(1 + self.manifest.done)
                .map(String::from)
                .collect(),
            Err(_) => Vec::new(),
        };
        let mut text = if kept.is_empty() {
            vec![INDEX_HEADER.to_string()]
        } else {
            kept
        };
        text.push(String::new());
        write_atomic(&path, text.join("\n").as_bytes())
    }

    /// Records the shard being filled can still take.
    fn room(&self) -> usize {
        self.shard_records - self.pending.len()
    }

    /// Adds a record; a full shard is written.
    fn push(&mut self, done: Done<Vec<f32>>) -> Result<()> {
        self.pending.push(done);
        if self.pending.len() == self.shard_records {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the shard being filled (if it holds any record), appends its index
    /// lines, then the manifest that counts them.
    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return self.manifest.save();
        }
        // Every shard but the last is full, so the manifest's records say how many.
        let shard = self.manifest.done.div_ceil(self.shard_records);
        let name = format!("shard-{shard:05}.safetensors");
        let d = self.d_model;
        let records = std::mem::take(&mut self.pending);
        write_atomic(&self.dir.join(&name), &shard_bytes(&records, d, self.pool)?)?;
        let mut lines = String::new();
        let mut row = 0;
        for r in &records {
            let (at, error) = match &r.result {
                Ok(_) => (row.to_string(), String::new()),
                Err(e) => (String::new(), e.replace(['\t', '\n', '\r'], " ")),
            };
            row += usize::from(r.result.is_ok());
            lines.push_str(&format!("{name}\t{at}\t{}\t{}\t{error}\n", r.id, r.tokens));
        }
        let index = self.dir.join("index.tsv");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&index)
            .map_err(|e| io_error(&index, e))?;
        f.write_all(lines.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| io_error(&index, e))?;
        let failed = records.iter().filter(|r| r.result.is_err()).count();
        self.manifest.add(records.len(), failed)
    }
}

const INDEX_HEADER: &str = "shard\trow\tid\ttokens\terror";

/// A shard's safetensors bytes: the embeddings of its records that have one, in order,
/// and for [`Pool::None`] where each record's rows start.
fn shard_bytes(records: &[Done<Vec<f32>>], d: usize, pool: Pool) -> Result<Vec<u8>> {
    let ok: Vec<&Vec<f32>> = records
        .iter()
        .filter_map(|r| r.result.as_ref().ok())
        .collect();
    let data: Vec<f32> = ok.iter().flat_map(|e| e.iter().copied()).collect();
    let mut offsets = vec![0i64];
    for e in &ok {
        offsets.push(offsets[offsets.len() - 1] + (e.len() / d.max(1)) as i64);
    }
    let rows = data.len() / d.max(1);
    let bad = |e: safetensors::SafeTensorError| Error::input(format!("shard: {e}"));
    let mut views = vec![(
        "embeddings".to_string(),
        TensorView::new(Dtype::F32, vec![rows, d], bytemuck::cast_slice(&data)).map_err(bad)?,
    )];
    if pool == Pool::None {
        let view = TensorView::new(
            Dtype::I64,
            vec![offsets.len()],
            bytemuck::cast_slice(&offsets),
        );
        views.push(("offsets".to_string(), view.map_err(bad)?));
    }
    safetensors::serialize(views, None).map_err(bad)
}
