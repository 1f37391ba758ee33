//! Generation as a stream ([`Generation`]), for one sequence or a batch of B: one loop
//! of draw (on the GPU, into the tokens buffer the next embedding reads) -> run the
//! position -> read the ids back once per submit -> deliver them, which serves
//! [`Session::generate`], [`Session::generate_batch`], the async stream, the web page and
//! the desktop worker alike; with the options, stop reasons, cancellation and statistics.
//! One sequence is a batch of one.

use super::Session;
use crate::error::{Error, Result};
use crate::gpu::Step;
use crate::sampling::{self, Draw, SamplingParams};
use crate::Instant;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

impl Session {
    /// Generates up to `opts.max_tokens` tokens after `prompt` (consumed first), calling
    /// `on_token` with each new token as it arrives. Tokens are sampled on the GPU and
    /// read back every `tokens_per_submit` tokens (one submit and one wait per batch),
    /// unless `opts.cpu_sampling` asks for the CPU path (one wait per token).
    ///
    /// This is [`Session::start_generation`] driven to the end on this thread; on the
    /// web (no blocking) use that instead.
    pub fn generate(
        &mut self,
        prompt: &[u32],
        opts: &GenerateOptions,
        mut on_token: impl FnMut(u32),
    ) -> Result<GenerationStats> {
        crate::gpu::block_on(async {
            let mut generation = self.start_generation(prompt, opts.clone())?;
            while generation.next_batch_with(&mut on_token).await?.is_some() {}
            Ok(generation.stats())
        })
    }

    /// Consumes `prompt` and returns a [`Generation`]: a stream of generated tokens, one
    /// batch per [`Generation::next_batch`] (a batch is `tokens_per_submit` tokens drawn
    /// on the GPU and read back once; one token with `cpu_sampling`). Nothing here or
    /// there blocks, so a browser page or a GUI event loop can drive it, and
    /// `opts.cancel` stops it between tokens.
    pub fn start_generation(
        &mut self,
        prompt: &[u32],
        opts: GenerateOptions,
    ) -> Result<Generation<'_>> {
        opts.sampling.validate()?;
        self.check_not_overrun()?;
        if self.opts.batch > 1 {
            return Err(Error::input(format!(
                "this session runs {} sequences: generate with Session::generate_batch",
                self.opts.batch
            )));
        }
        if prompt.is_empty() && self.pos == 0 {
            return Err(Error::input(
                "the prompt is empty: give at least one token (HyenaDNA adds no leading token; \
                 e.g. --ids 2 starts from [BOS])",
            ));
        }
        let start = Instant::now();
        self.feed(prompt)?;
        let row = Row::new(self.pos, opts);
        Ok(Generation::new(self, vec![row], start))
    }
}

/// Where one sequence of a generation stands.
#[derive(Debug)]
pub(super) struct Row {
    /// The first position whose token this sequence draws (the end of its prompt):
    /// positions before it are forced, their ids written up front.
    first_draw: usize,
    opts: GenerateOptions,
    tokens: Vec<u32>,
    stop: Option<StopReason>,
}

impl Row {
    /// A sequence whose prompt ends at `first_draw`, generating with `opts`.
    pub(super) fn new(first_draw: usize, opts: GenerateOptions) -> Self {
        Row {
            first_draw,
            stop: (opts.max_tokens == 0).then_some(StopReason::MaxTokens),
            opts,
            tokens: Vec::new(),
        }
    }

    /// Whether the row draws again, with `pending` draws recorded but not read back.
    fn wants(&self, pending: usize) -> bool {
        self.stop.is_none() && self.tokens.len() + pending < self.opts.max_tokens
    }

    /// Whether the row needs position `pos` run: a prompt position, or one whose
    /// logits its next draw reads.
    fn needs(&self, pos: usize, pending: usize) -> bool {
        self.stop.is_none() && (pos < self.first_draw || self.wants(pending))
    }

    /// The stats of this row after `gen` ([`Generation::stats`]).
    fn stats(&self, gen: &Generation<'_>) -> GenerationStats {
        let counts = gen.session.counts();
        GenerationStats {
            tokens: self.tokens.clone(),
            stop: self.stop.unwrap_or(StopReason::Cancelled),
            prompt_seconds: gen.prompt_seconds,
            generate_seconds: gen.gen_start.elapsed().as_secs_f64(),
            dispatches: counts.0 - gen.counts_before.0,
            submits: counts.1 - gen.counts_before.1,
        }
    }
}

/// A generation in progress ([`Session::start_generation`], or
/// [`Session::start_batch_generation`] for B sequences): call [`Generation::next_batch`]
/// (or [`Generation::next_step`]) until it returns `None`, then [`Generation::stats`].
#[derive(Debug)]
pub struct Generation<'s> {
    session: &'s mut Session,
    /// One per sequence of the session.
    rows: Vec<Row>,
    prompt_seconds: f64,
    gen_start: Instant,
    counts_before: (u64, u64),
}

/// Per step of one submit, the rows that drew in it (their ids sit at slot k·B + row).
type Draws = Vec<Vec<usize>>;

impl<'s> Generation<'s> {
    /// The stream over `rows` of `session`, whose prompts were fed from `start` on.
    pub(super) fn new(session: &'s mut Session, rows: Vec<Row>, start: Instant) -> Self {
        Generation {
            counts_before: session.counts(),
            session,
            rows,
            prompt_seconds: start.elapsed().as_secs_f64(),
            gen_start: Instant::now(),
        }
    }
}

impl Generation<'_> {
    /// The next batch of generated tokens of the (first) sequence, or `None` once
    /// generation has stopped ([`Generation::stop_reason`] says why). After an error the
    /// generation is over.
    pub async fn next_batch(&mut self) -> Result<Option<Vec<u32>>> {
        self.next_batch_with(&mut |_| {}).await
    }

    /// [`Generation::next_batch`], calling `on_token` with each token as it is
    /// delivered (cancellation from inside `on_token` stops before the next token).
    pub async fn next_batch_with(
        &mut self,
        on_token: &mut impl FnMut(u32),
    ) -> Result<Option<Vec<u32>>> {
        let step = self.next_step(&mut |_, id| on_token(id)).await?;
        Ok(step.map(|mut rows| rows.swap_remove(0)))
    }

    /// One submit of the stream for every sequence: the new tokens of each (empty for
    /// those that have stopped), calling `on_token(sequence, id)` as they are delivered;
    /// `None` once every sequence has stopped. After an error the generation is over.
    pub async fn next_step(
        &mut self,
        on_token: &mut impl FnMut(usize, u32),
    ) -> Result<Option<Vec<Vec<u32>>>> {
        if self.rows.iter().all(|r| r.stop.is_some()) {
            return Ok(None);
        }
        let before: Vec<usize> = self.rows.iter().map(|r| r.tokens.len()).collect();
        if let Err(e) = self.step(on_token).await {
            // Nothing more can be trusted: the next call ends the stream.
            for r in self.rows.iter_mut().filter(|r| r.stop.is_none()) {
                r.stop = Some(StopReason::Cancelled);
            }
            return Err(e);
        }
        let new: Vec<Vec<u32>> = self
            .rows
            .iter()
            .zip(before)
            .map(|(r, n)| r.tokens[n..].to_vec())
            .collect();
        let stopped = self.rows.iter().all(|r| r.stop.is_some());
        if stopped && new.iter().all(Vec::is_empty) {
            return Ok(None);
        }
        Ok(Some(new))
    }

    /// Why the (first) sequence stopped (`None` while it can go on).
    pub fn stop_reason(&self) -> Option<StopReason> {
        self.rows[0].stop
    }

    /// The tokens the (first) sequence generated so far (the prompt not included).
    pub fn tokens(&self) -> &[u32] {
        &self.rows[0].tokens
    }

    /// Counts and timings of the (first) sequence so far; `stop` is `Cancelled` if
    /// generation was left unfinished.
    pub fn stats(&self) -> GenerationStats {
        self.rows[0].stats(self)
    }

    /// [`Generation::stats`] of every sequence (timings and counts are the whole
    /// batch's).
    pub fn all_stats(&self) -> Vec<GenerationStats> {
        self.rows.iter().map(|r| r.stats(self)).collect()
    }

    /// One turn of the loop: draw, run, read back, deliver (or the CPU path).
    async fn step(&mut self, on_token: &mut impl FnMut(usize, u32)) -> Result<()> {
        for r in self.rows.iter_mut().filter(|r| r.stop.is_none()) {
            if r.opts.cancel.is_cancelled() {
                r.stop = Some(StopReason::Cancelled);
            }
        }
        if self.rows.iter().all(|r| r.stop.is_some()) {
            return Ok(());
        }
        if self.rows[0].opts.cpu_sampling {
            return self.step_cpu(&mut |id| on_token(0, id)).await;
        }
        let (draws, full) = self.record_draws_and_run()?;
        let b = self.rows.len();
        let slots = (draws.len() * b) as u64;
        let s = &*self.session;
        let bytes = s
            .model
            .ctx()
            .read_via_async(&s.buf.drawn, 0, slots * 4, &s.drawn_staging)
            .await?;
        s.count_submits(1);
        let ids: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes);
        self.deliver_draws(&draws, &ids, on_token);
        if full {
            for r in self.rows.iter_mut().filter(|r| r.stop.is_none()) {
                r.stop = Some(StopReason::SequenceFull);
            }
        }
        Ok(())
    }

    /// Records up to `tokens_per_submit` positions into one step and submits it: at
    /// each, the draws of the sequences past their prompts that want a token, then the
    /// position's forward pass for all (unless no sequence needs it). Returns who drew
    /// at each position, and whether the session ran full.
    fn record_draws_and_run(&mut self) -> Result<(Draws, bool)> {
        let session = &mut *self.session;
        let model = session.model.clone();
        let ctx = model.ctx();
        let c = model.config();
        let (vocab, vp, b) = (c.vocab_size, c.padded_vocab(), self.rows.len());
        let logit_rows = session.opts.logit_rows;
        let steps = session.opts.tokens_per_submit.max(1);
        let mut draws: Draws = Vec::with_capacity(steps);
        let mut pending = vec![0usize; b];
        let mut full = false;
        let mut arena = session.arena.borrow_mut();
        let mut step = Step::new(ctx, &mut arena).counted(&session.counts);
        for k in 0..steps {
            let pos = session.pos;
            let mut drew = Vec::new();
            for (i, r) in self.rows.iter().enumerate() {
                if pos < r.first_draw || !r.wants(pending[i]) {
                    continue;
                }
                let draw = Draw {
                    row_off: (((pos - 1) % logit_rows * b + i) * vp) as u32,
                    pos: pos as u32,
                    tok_idx: (pos * b + i) as u32,
                    out_idx: (k * b + i) as u32,
                    row: 0,
                };
                let params = (&r.opts.sampling, vocab);
                let sampler = &model.inner.sampler;
                sampler.record(&mut step, &session.sample_bind, params, draw)?;
                pending[i] += 1;
                drew.push(i);
            }
            draws.push(drew);
            if !(0..b).any(|i| self.rows[i].needs(pos, pending[i])) {
                break;
            }
            if pos >= session.opts.len {
                full = true;
                break;
            }
            session.record_token(&mut step, pos)?;
            session.pos += 1;
        }
        step.submit();
        Ok((draws, full))
    }

    /// Hands the drawn `ids` to their sequences in order, stopping each where its
    /// options say. A sequence that stops before its last draw of the submit leaves
    /// positions run that its returned tokens do not include: the session is then
    /// overrun and refuses to continue.
    fn deliver_draws(&mut self, draws: &Draws, ids: &[u32], on_token: &mut impl FnMut(usize, u32)) {
        let b = self.rows.len();
        for (k, drew) in draws.iter().enumerate() {
            for &i in drew {
                let r = &mut self.rows[i];
                if r.stop.is_some() {
                    continue;
                }
                r.stop = deliver(ids[k * b + i], &r.opts, &mut r.tokens, &mut |id| {
                    on_token(i, id)
                });
                if r.stop.is_some() {
                    let later = draws[k + 1..].iter().any(|d| d.contains(&i));
                    self.session.overrun |= later;
                } else if r.tokens.len() >= r.opts.max_tokens {
                    r.stop = Some(StopReason::MaxTokens);
                }
            }
        }
    }

    /// The core path, one token of the one sequence: read the last logits back, sample
    /// on the CPU, feed the token.
    async fn step_cpu(&mut self, on_token: &mut impl FnMut(u32)) -> Result<()> {
        let session = &mut *self.session;
        let r = &mut self.rows[0];
        let vocab = session.model.config().vocab_size;
        let logits = session.logits_async(session.pos - 1).await?;
        let next = sampling::sample(&logits, vocab, &r.opts.sampling, 0, session.pos as u32);
        r.stop = deliver(next, &r.opts, &mut r.tokens, on_token);
        if r.stop.is_some() {
            return Ok(());
        }
        if r.tokens.len() == r.opts.max_tokens {
            r.stop = Some(StopReason::MaxTokens);
        } else if session.pos >= session.opts.len {
            r.stop = Some(StopReason::SequenceFull);
        } else {
            session.feed(&[next])?;
        }
        Ok(())
    }
}

/// Hands one generated token to the caller; says why generation must stop after it (a
/// stop id, or cancellation), if it must.
pub(super) fn deliver(
    id: u32,
    opts: &GenerateOptions,
    tokens: &mut Vec<u32>,
    on_token: &mut impl FnMut(u32),
) -> Option<StopReason> {
    tokens.push(id);
    on_token(id);
    if opts.stop_ids.contains(&id) {
        Some(StopReason::StopToken(id))
    } else if opts.cancel.is_cancelled() {
        Some(StopReason::Cancelled)
    } else {
        None
    }
}

/// A cloneable handle that stops a running generation at the next token.
#[derive(Clone, Debug, Default)]
pub struct CancelHandle(Arc<AtomicBool>);

impl CancelHandle {
    /// A fresh, not-cancelled handle.
    pub fn new() -> Self {
        Self::default()
    }
    /// Requests cancellation.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    /// Whether cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Options of [`Session::generate`] and [`Session::start_generation`].
#[derive(Clone, Debug, Default)]
pub struct GenerateOptions {
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// Sampling parameters.
    pub sampling: SamplingParams,
    /// Generation stops after emitting any of these ids.
    pub stop_ids: Vec<u32>,
    /// Cancellation handle: no token is delivered after it is used (with GPU sampling
    /// the rest of the current batch is discarded and the session cannot continue).
    pub cancel: CancelHandle,
    /// Sample on the CPU from logits read back every token (the core path, one CPU wait
    /// per token) instead of on the GPU.
    pub cpu_sampling: bool,
}

impl GenerateOptions {
    /// Up to `max_tokens` tokens sampled with `sampling`, on the GPU, with no stop ids.
    pub fn new(max_tokens: usize, sampling: SamplingParams) -> Self {
        GenerateOptions {
            max_tokens,
            sampling,
            ..Default::default()
        }
    }

    /// These options with the sampler that suits `ctx`'s adapter: on a CPU adapter
    /// (lavapipe) temperature sampling draws on the CPU, whose one wait per token costs
    /// less there than the GPU sampler's sort kernels; greedy decoding and real GPUs
    /// sample on the GPU. (The CLI's `--sampler auto`.)
    pub fn with_auto_sampler(mut self, ctx: &crate::GpuContext) -> Self {
        let software = ctx.info.device_type == wgpu::DeviceType::Cpu;
        self.cpu_sampling = self.sampling.temperature > 0.0 && software;
        self
    }
}

/// Why generation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// `max_tokens` were generated.
    MaxTokens,
    /// A stop id was generated.
    StopToken(u32),
    /// The sequence reached the session length (max_seq_len).
    SequenceFull,
    /// The cancellation handle was used.
    Cancelled,
}

/// What [`Session::generate`] returns.
#[derive(Clone, Debug)]
pub struct GenerationStats {
    /// The generated ids (the prompt not included).
    pub tokens: Vec<u32>,
    /// Why it stopped.
    pub stop: StopReason,
    /// Seconds spent consuming the prompt.
    pub prompt_seconds: f64,
    /// Seconds spent generating.
    pub generate_seconds: f64,
    /// GPU dispatches recorded while generating (prompt excluded).
    pub dispatches: u64,
    /// Queue submits while generating, read-backs included (prompt excluded).
    pub submits: u64,
}

impl GenerationStats {
    /// Mean dispatches and submits per generated token.
    pub fn per_token(&self) -> (f64, f64) {
        let n = self.tokens.len().max(1) as f64;
        (self.dispatches as f64 / n, self.submits as f64 / n)
    }

    /// Generated tokens per second.
    pub fn tokens_per_second(&self) -> f64 {
        self.tokens.len() as f64 / self.generate_seconds.max(1e-9)
    }
}
