//! End to end (`bench`): generation on a random model, per method and length, with
//! per-token latency percentiles on request.

use super::{result, BenchResult, Latency};
use crate::error::Result;
use crate::mixer::Tiles;
use crate::session::{session_len, GenerateOptions, GpuModel, Session, SessionOptions};
use crate::{Instant, Method};

/// One timed generation: seconds, (mixer bytes, channel groups), (dispatches, submits)
/// per token.
pub(super) struct GenRun {
    seconds: f64,
    shape: (u64, usize),
    per_token: (f64, f64),
}

/// Generates `len` tokens after a one-token prompt (in each of `batch` sequences).
pub(super) fn time_generation(
    gm: &GpuModel,
    method: Method,
    len: usize,
    tiles: Tiles,
    batch: usize,
) -> Result<BenchResult> {
    let prompt = [7u32];
    let gen = |n: usize| -> Result<GenRun> {
        let slen = session_len(gm.config(), prompt.len(), n)?;
        let mut opts = SessionOptions::new(method, slen);
        opts.set_tiles(tiles);
        opts.batch = batch;
        let mut s = Session::new(gm, opts)?;
        gm.ctx().wait()?;
        let opts = GenerateOptions {
            max_tokens: n,
            ..Default::default()
        };
        let stats = if batch == 1 {
            s.generate(&prompt, &opts, |_| {})?
        } else {
            let prompts = vec![&prompt[..]; batch];
            let all = s.generate_batch(&prompts, &vec![opts; batch], |_, _| {})?;
            let mut stats = all[0].clone();
            stats.tokens = all.into_iter().flat_map(|s| s.tokens).collect();
            stats
        };
        let memory = s.memory();
        let shape = (memory.mixer.total(), memory.groups.len());
        Ok(GenRun {
            seconds: stats.prompt_seconds + stats.generate_seconds,
            shape,
            per_token: stats.per_token(),
        })
    };
    gen(len.min(32))?; // warm-up
    let GenRun {
        seconds,
        shape: (bytes, groups),
        per_token: (dispatches, submits),
    } = gen(len)?;
    let channels = gm.config().n_layer * gm.config().d_model;
    let mut r = result(method, "end_to_end", len, seconds, channels);
    r.batch = batch;
    r.tokens_per_s *= batch as f64;
    r.mixer_bytes = bytes;
    r.channel_groups = groups;
    r.dispatches_per_token = Some(dispatches);
    r.submits_per_token = Some(submits);
    Ok(r)
}

/// Generates `len` tokens one submit (and one wait) per token and times each.
pub(super) fn token_latency(
    gm: &GpuModel,
    method: Method,
    len: usize,
    tiles: Tiles,
) -> Result<Option<Latency>> {
    let prompt = [7u32];
    let slen = session_len(gm.config(), prompt.len(), len)?;
    let mut opts = SessionOptions::new(method, slen);
    opts.set_tiles(tiles);
    opts.tokens_per_submit = 1;
    let mut s = Session::new(gm, opts)?;
    s.feed(&prompt)?;
    gm.ctx().wait()?;
    let mut gaps = Vec::with_capacity(len);
    let mut last = Instant::now();
    let opts = GenerateOptions {
        max_tokens: len,
        ..Default::default()
    };
    s.generate(&[], &opts, |_| {
        let now = Instant::now();
        gaps.push((now - last).as_secs_f64());
        last = now;
    })?;
    Ok(Latency::of(&gaps))
}
