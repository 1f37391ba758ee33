//! Running a model on the GPU: [`GpuModel`] uploads the weights and compiles every
//! kernel once; a [`Session`] holds the per-sequence state (histories sized for the
//! session's length, not for max_seq_len) and runs tokens through the model, recording
//! many tokens into one command encoder and one compute pass per submit.
//!
//! - `weights`: packing and uploading the weights ([`GpuModel`]);
//! - `dense`: the embedding and matrix-product kernels and their parameters;
//! - `plan`: the memory plan and the sizing checks ([`SessionMemory`], [`session_len`]);
//! - `options`: [`SessionOptions`];
//! - `block`: the interface the session drives for each block of the model, and
//!   `hyena`: the Hyena block;
//! - this file: [`Session`]: feeding tokens, the prefill, one token's forward pass
//!   (the blocks in order, then the mixer's tiles), reading logits and hidden states
//!   back;
//! - `generation`: the generation stream ([`Generation`]); `batch`: B > 1 sequences.

use crate::error::{Error, Result};
use crate::gpu::{Bind, Counts, ParamArena, Step, MAX_ROWS};
use crate::mixer::{Method, Mixer, MixerIo};
use crate::sampling::GpuSampler;
use block::{Block, BlockCx, PromptRows};
use buffers::{filters_and_params, SessionBindGroups, SessionBuffers};
pub(crate) use dense::EmbedParams;
use dense::{bind_matvec, Matvec, Product, Products};
use weights::ModelInner;

mod batch;
mod block;
mod buffers;
mod dense;
mod embed;
mod generation;
mod hyena;
mod options;
mod plan;
mod score;
mod weights;

pub use crate::mixer::{MixerMemory, Tiles, DEFAULT_FFT_MIN_TILE};
#[cfg(test)]
pub(crate) use dense::Matvec as MatvecParams;
pub(crate) use dense::{matvec_source, PREFILL_ROWS, SESSION_WGSL};
pub use embed::Pool;
pub use generation::{CancelHandle, GenerateOptions, Generation, GenerationStats, StopReason};
pub use options::SessionOptions;
pub(crate) use plan::per_sequence;
pub use plan::{batch_session_len, check_batch, check_ids, session_len, SessionMemory, MAX_BATCH};
pub use score::{log_prob, Score, ScoreOptions};
pub use weights::{GpuModel, WeightFormat, WeightStorage};

/// Per-sequence GPU state and the token loop.
#[derive(Debug)]
pub struct Session {
    model: GpuModel,
    opts: SessionOptions,
    pos: usize,
    /// The per-dispatch parameters, lent to one [`Step`] at a time (a `RefCell` so that
    /// the step can hold it while the session records into it).
    arena: std::cell::RefCell<ParamArena>,
    /// The long-convolution engine of the blocks that have one.
    mixer: Mixer,
    /// The model's blocks, in order.
    blocks: Vec<Box<dyn Block>>,
    /// The dense products' parameters for this session's B sequences.
    products: Products,
    /// Activations, token ids, rings and the mixer's per-layer parameters.
    buf: SessionBuffers,
    /// Reused for reading one position's logits back every token.
    staging: wgpu::Buffer,
    bg: SessionBindGroups,
    memory: SessionMemory,
    /// The read-back buffer of the ids drawn in a batch ([`SessionBuffers::drawn`]).
    drawn_staging: wgpu::Buffer,
    sample_bind: wgpu::BindGroup,
    /// Dispatches and queue submits so far (work, prefills and read-backs).
    counts: Counts,
    /// Test-only extra memory (`SessionOptions::test_extra_bytes`, feature `internals`).
    #[cfg(feature = "internals")]
    _extra: Vec<wgpu::Buffer>,
    /// Set when a batch ran past a stop token: the state then holds positions the
    /// returned sequence does not, so the session refuses to continue.
    overrun: bool,
}

impl Session {
    /// Allocates a session. Fails with a clear message if `len` exceeds max_seq_len or
    /// the buffers exceed the device's limits.
    pub fn new(model: &GpuModel, opts: SessionOptions) -> Result<Self> {
        let m = &model.inner;
        let (ctx, c) = (&m.ctx, &m.model.config);
        if opts.len == 0 || opts.len > c.max_seq_len {
            return Err(Error::input(format!(
                "session length {} must be between 1 and max_seq_len = {}",
                opts.len, c.max_seq_len
            )));
        }
        // Everything is checked against the device's limits before anything is allocated.
        let memory = SessionMemory::plan(model, &opts)?;
        #[cfg(feature = "internals")]
        let extra = buffers::extra_memory(ctx, opts.test_extra_bytes, memory.binding_limit)?;
        let opts = SessionOptions {
            logit_rows: opts.logit_rows.clamp(1, opts.len),
            ..opts
        };
        let (filters, params) = filters_and_params(m, opts.len)?;
        let buf = SessionBuffers::new(m, &opts, &params)?;
        drop(params);
        let mixer = Self::new_mixer(m, &opts, &buf, filters, &memory)?;
        let bg = SessionBindGroups::new(m, &buf, mixer.fusable_gate());
        let blocks = block::blocks(m, &buf, mixer.fusable_gate().as_ref());
        let (b, vp) = (opts.batch, c.padded_vocab());
        let per_block: usize = blocks.iter().map(|k| k.dispatches_per_token()).sum();
        let per_token =
            per_block + 4 + b * GpuSampler::MAX_DISPATCHES + mixer.dispatches_per_token();
        let slots = per_token * opts.tokens_per_submit.max(1);
        let sample = [&buf.logits, &buf.tokens, &buf.drawn, &buf.scratch];
        let session = Session {
            model: model.clone(),
            pos: 0,
            arena: ParamArena::new(ctx, &m.dense.matvec.param_layout, slots).into(),
            mixer,
            blocks,
            products: Products::new(c, bg.gate, b),
            staging: ctx.staging_buffer((b * vp) as u64 * 4),
            bg,
            memory,
            drawn_staging: ctx.staging_buffer((b * opts.tokens_per_submit.max(1)) as u64 * 4),
            sample_bind: m.sampler.bind(ctx, sample),
            overrun: false,
            counts: Counts::default(),
            #[cfg(feature = "internals")]
            _extra: extra,
            buf,
            opts,
        };
        // wgpu reports allocation failures (out of memory) through the error handler:
        // return them from here rather than from the first use.
        ctx.take_errors()?;
        Ok(session)
    }

    /// The session's mixer over `filters` (each layer's `[D][len]`), seeing B·M layers:
    /// layer l of sequence b is its layer l·B + b, so a layer's channels of all
    /// sequences are adjacent (session_matvec.wgsl's rows).
    fn new_mixer(
        m: &ModelInner,
        opts: &SessionOptions,
        buf: &SessionBuffers,
        filters: Vec<Vec<f32>>,
        memory: &SessionMemory,
    ) -> Result<Mixer> {
        let (d, b) = (m.model.config.d_model, opts.batch);
        let filters = per_sequence(filters, b);
        let io = MixerIo {
            filters: &filters,
            params: &per_sequence(buf.params.clone(), b),
            u_ring: &per_sequence(buf.u_ring.clone(), b),
            x0: &buf.x0,
            y: &buf.y,
            fft_min_tile: opts.fft_min_tile,
            spread: opts.spread,
            spectra_budget: opts.spectra_budget,
            textures: m.storage == WeightStorage::Texture,
        };
        let mixer = Mixer::new(&m.ctx, &m.mixer, opts.method, (d, opts.len), io)?;
        if b > 1 && mixer.fusable_gate().is_none() {
            return Err(Error::Limit(format!(
                "{b} sequences of {} positions need mixer buffers larger than the device \
                 binds at once ({} bytes); run fewer sequences or shorter ones",
                opts.len, memory.binding_limit
            )));
        }
        Ok(mixer)
    }

    /// The session's mixer state (histories, accumulators, filters): a test hook
    /// (feature `internals`).
    #[cfg(feature = "internals")]
    pub fn mixer(&self) -> &Mixer {
        &self.mixer
    }

    /// Number of positions consumed so far.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Capacity of the session in positions.
    pub fn len(&self) -> usize {
        self.opts.len
    }

    /// Whether nothing has been consumed yet.
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }

    /// The session's options.
    pub fn options(&self) -> &SessionOptions {
        &self.opts
    }

    fn count_submits(&self, n: u64) {
        self.counts.add_submits(n);
    }

    /// Dispatches and queue submits (work and read-backs) this session has made.
    pub fn counts(&self) -> (u64, u64) {
        self.counts.get()
    }

    /// The GPU memory this session planned and allocated, by part.
    pub fn memory(&self) -> &SessionMemory {
        &self.memory
    }

    /// Runs `ids` through the model at the next positions. Checks every id and the
    /// remaining length first, so a bad id changes nothing. A session of B > 1
    /// sequences takes [`Session::feed_rows`].
    pub fn feed(&mut self, ids: &[u32]) -> Result<()> {
        self.feed_rows(&[ids])
    }

    /// Runs the next tokens of each of the session's B sequences
    /// ([`SessionOptions::batch`]): `rows[b]` for sequence b, all of one length. Checks
    /// everything first, so bad input changes nothing.
    pub fn feed_rows(&mut self, rows: &[&[u32]]) -> Result<()> {
        let c = self.model.config();
        self.check_not_overrun()?;
        let n = self.check_rows(rows)?;
        for r in rows {
            check_ids(c, r)?;
        }
        if self.pos + n > self.opts.len {
            return Err(Error::input(format!(
                "{n} tokens at position {} exceed the session length {} (max_seq_len {})",
                self.pos, self.opts.len, c.max_seq_len
            )));
        }
        if n == 0 {
            return Ok(());
        }
        // Time-major, as the tokens buffer: [position][sequence].
        let ids: Vec<u32> = (0..n)
            .flat_map(|t| rows.iter().map(move |r| r[t]))
            .collect();
        if self.pos == 0 && self.prefill_fits(n) {
            return self.prefill(&ids, n);
        }
        let ctx = self.model.ctx().clone();
        let at = (self.pos * rows.len()) as u64 * 4;
        ctx.queue
            .write_buffer(&self.buf.tokens, at, bytemuck::cast_slice(&ids));
        let per_submit = self.opts.tokens_per_submit.max(1);
        for start in (0..n).step_by(per_submit) {
            let mut arena = self.arena.borrow_mut();
            let mut step = Step::new(&ctx, &mut arena).counted(&self.counts);
            for _ in start..n.min(start + per_submit) {
                self.record_token(&mut step, self.pos)?;
                self.pos += 1;
            }
            step.submit();
        }
        Ok(())
    }

    /// The common length of `rows`, one per sequence of the session.
    fn check_rows(&self, rows: &[&[u32]]) -> Result<usize> {
        let b = self.opts.batch;
        if rows.len() != b {
            return Err(Error::input(format!(
                "this session runs {b} sequence(s) side by side: give {b} rows of ids, not {}",
                rows.len()
            )));
        }
        let n = rows.first().map_or(0, |r| r.len());
        match rows.iter().position(|r| r.len() != n) {
            Some(i) => Err(Error::input(format!(
                "sequence {i} has {} ids but sequence 0 has {n}: rows fed together have one \
                 length (Session::generate_batch takes prompts of different lengths)",
                rows[i].len()
            ))),
            None => Ok(n),
        }
    }

    /// Whether a prompt of `p` positions can be prefilled ([`SessionOptions::prefill`]):
    /// flash or none, the gate fused (one channel group), and the prompt's activations
    /// and convolution buffers within the binding limit.
    fn prefill_fits(&self, p: usize) -> bool {
        let c = self.model.config();
        let b = self.opts.batch;
        let widest = (p * b) as u64 * 4 * (3 * c.d_model).max(c.d_inner) as u64;
        // The prompt's convolution: spectra and work buffers of side nextpow2(P).
        let channels = c.n_layer * c.d_model * b;
        let conv = crate::mixer::group_buffer_bytes(channels, 0, p.next_power_of_two());
        self.opts.prefill
            && matches!(self.opts.method, Method::Flash | Method::None)
            && self.bg.gate.is_some()
            && widest.max(conv) <= self.memory.binding_limit
    }

    /// Consumes `ids` at positions 0 .. P as one batched forward pass: per layer, every
    /// position's in_proj, their v (`gate_rows`), the long convolution of the whole
    /// prompt as one FFT (flash), then out_proj with the gate, fc1 and fc2 over all
    /// rows; lm_head for the positions whose logits are kept; then the tiles of the
    /// steps before P that reach past it ([`Mixer::record_prefill_tiles`]). One submit.
    /// `ids` holds the B sequences' prompts time-major, `[P][B]`; every buffer below
    /// has a row per position and sequence in that order.
    fn prefill(&mut self, ids: &[u32], p: usize) -> Result<()> {
        let m = &self.model.inner;
        let ctx = m.ctx.clone();
        let c = &m.model.config;
        let b = self.opts.batch;
        let (d, di) = (c.d_model, c.d_inner);
        let conv = self.prompt_conv(p)?;
        let act = |name: &str, n: usize| ctx.buffer_zeroed(name, (n * b) as u64 * 4);
        let (x_all, u_all, a_all) = (
            act("prefill x", p * d)?,
            act("prefill u", p * 3 * d)?,
            act("prefill mlp", p * di)?,
        );
        let dk = &m.dense;
        let rows_per = (p * b).div_ceil(MAX_ROWS);
        let per_block: usize = self
            .blocks
            .iter()
            .map(|k| k.prefill_dispatches(rows_per))
            .sum();
        let capacity = 1 + per_block + 2 * rows_per + self.mixer.prefill_dispatches(p);
        let mut arena = ParamArena::new(&ctx, &dk.matvec.param_layout, capacity);
        ctx.queue
            .write_buffer(&self.buf.tokens, 0, bytemuck::cast_slice(ids));
        let mut step = Step::new(&ctx, &mut arena).counted(&self.counts);
        let embed = dk.embed.bind(&ctx, &[&m.embed, &self.buf.tokens, &x_all]);
        let threads = (p * b * d) as u64;
        let words = EmbedParams {
            n: d as u32,
            pos: 0,
            rows: (p * b) as u32,
            ..Default::default()
        };
        step.dispatch(&dk.embed, &embed, &words, threads.div_ceil(256) as u32)?;
        let prompt = PromptRows {
            len: p,
            x: &x_all,
            u: &u_all,
            mlp: &a_all,
            conv: conv.as_ref(),
        };
        let cx = self.block_cx();
        for block in &self.blocks {
            // Each block in a compute pass of its own (with its copies after it).
            step.end_pass();
            block.record_prefill(&cx, &mut step, &prompt)?;
        }
        self.record_prompt_logits(&mut step, &x_all, p)?;
        self.mixer.record_prefill_tiles(&mut step, &m.mixer, p)?;
        step.submit();
        self.pos = p;
        ctx.take_errors()
    }

    /// The long convolutions of a prompt of `p` positions by FFT (flash), from the
    /// filter taps k[1 .. P), all they read.
    fn prompt_conv(&self, p: usize) -> Result<Option<crate::mixer::PrefillConv>> {
        let m = &self.model.inner;
        let filters = m.model.long_conv_layers().into_iter().map(|l| {
            let k = m.model.filter(l, p)?;
            Ok(k.into_iter().map(|v| v as f32).collect())
        });
        let filters = filters.collect::<Result<Vec<Vec<f32>>>>()?;
        let filters = per_sequence(filters, self.opts.batch);
        self.mixer.prefill_conv(&m.mixer, &filters, p)
    }

    /// lm_head (with ln_f) over the prompt's positions whose logits are kept, from
    /// the residual rows `x_all` `[P][B][D]`.
    fn record_prompt_logits(
        &self,
        step: &mut Step<'_>,
        x_all: &wgpu::Buffer,
        p: usize,
    ) -> Result<()> {
        let m = &self.model.inner;
        let (ctx, dk, pr) = (&m.ctx, &m.dense, &self.products);
        let (b, d) = (self.opts.batch, m.model.config.d_model);
        let lm_bind = [&m.ln_f, x_all, &self.buf.logits, &self.buf.hidden, &m.zero];
        let lm_bind = bind_matvec(ctx, &dk.matvec_norm, &m.lm_head, lm_bind);
        // The kept logit rows are a ring: at most two contiguous pieces.
        let rows = self.opts.logit_rows;
        let mut t = p.saturating_sub(rows);
        while t < p {
            let n = (rows - t % rows).min(p - t);
            let r = (t % rows * b) as u32;
            let lm = Matvec {
                in_off: (t * b * d) as u32,
                out_off: r * pr.lm_head.n,
                side_off: r * d as u32,
                ..pr.lm_head
            };
            lm.record_rows(step, dk.rows(Product::Norm), &lm_bind, n * b)?;
            t += n;
        }
        Ok(())
    }

    /// What the blocks' recording borrows from the session.
    fn block_cx(&self) -> BlockCx<'_> {
        BlockCx {
            model: &self.model.inner,
            buf: &self.buf,
            mixer: &self.mixer,
            products: &self.products,
            batch: self.opts.batch,
        }
    }

    /// Records the whole forward pass of position `t` (its token id is already in the
    /// tokens buffer): the blocks in order, lm_head (with ln_f), then the flash tile
    /// of step `t`.
    fn record_token(&self, step: &mut Step<'_>, t: usize) -> Result<()> {
        let m = &self.model.inner;
        let c = &m.model.config;
        let (d, vp) = (c.d_model as u32, c.padded_vocab() as u32);
        let b = self.opts.batch;
        let cx = self.block_cx();
        for block in &self.blocks {
            block.record_token(&cx, step, t)?;
        }
        // Row of the logits ring; each holds the B sequences' rows.
        let row = (t % self.opts.logit_rows * b) as u32;
        let lm_head = Matvec {
            out_off: row * vp,
            side_off: row * d,
            ..self.products.lm_head
        };
        let bind = &self.bg.lm_head;
        lm_head.record_with(step, (&m.dense, Product::Norm), bind, b)?;
        self.mixer.record_tiles(step, &m.mixer, t)
    }

    fn check_row(&self, t: usize) -> Result<u64> {
        if t >= self.pos || t + self.opts.logit_rows < self.pos {
            return Err(Error::input(format!(
                "logits of position {t} are not held (consumed {}, keeping the last {})",
                self.pos, self.opts.logit_rows
            )));
        }
        Ok((t % self.opts.logit_rows) as u64)
    }

    /// Logits (padded vocabulary) of position `t`, which must be among the last
    /// `logit_rows` consumed positions; `[B][padded vocabulary]` for a session of B
    /// sequences. Waits for the GPU.
    pub fn logits(&self, t: usize) -> Result<Vec<f32>> {
        crate::gpu::block_on(self.logits_async(t))
    }

    /// [`Session::logits`] without blocking.
    pub async fn logits_async(&self, t: usize) -> Result<Vec<f32>> {
        let row = self.check_row(t)?;
        let width = (self.model.config().padded_vocab() * self.opts.batch) as u64;
        let bytes = self
            .model
            .ctx()
            .read_via_async(&self.buf.logits, row * width * 4, width * 4, &self.staging)
            .await?;
        self.count_submits(1);
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Logits of positions `start..end` (all must be held), row-major (`[n][B][..]`
    /// for B sequences).
    pub fn logits_range(&self, start: usize, end: usize) -> Result<Vec<f32>> {
        crate::gpu::block_on(self.logits_range_async(start, end))
    }

    /// [`Session::logits_range`] without blocking.
    pub async fn logits_range_async(&self, start: usize, end: usize) -> Result<Vec<f32>> {
        let vp = self.model.config().padded_vocab();
        self.read_rows(&self.buf.logits, vp, start, end).await
    }

    /// Hidden states after ln_f of positions `start..end`, row-major `[n][B][D]`.
    pub fn hidden_range(&self, start: usize, end: usize) -> Result<Vec<f32>> {
        crate::gpu::block_on(self.hidden_range_async(start, end))
    }

    /// [`Session::hidden_range`] without blocking.
    pub async fn hidden_range_async(&self, start: usize, end: usize) -> Result<Vec<f32>> {
        let d = self.model.config().d_model;
        self.read_rows(&self.buf.hidden, d, start, end).await
    }

    /// Rows `start..end` of the ring `buf` of rows of `width` values per sequence.
    async fn read_rows(
        &self,
        buf: &wgpu::Buffer,
        width: usize,
        start: usize,
        end: usize,
    ) -> Result<Vec<f32>> {
        if start >= end {
            return Ok(Vec::new());
        }
        self.check_row(start)?;
        self.check_row(end - 1)?;
        let rows = self.opts.logit_rows;
        let width = width * self.opts.batch;
        let mut out = Vec::with_capacity((end - start) * width);
        // Rows are a ring: read in at most two contiguous pieces.
        let mut t = start;
        while t < end {
            let r = t % rows;
            let n = (rows - r).min(end - t);
            let (at, size) = ((r * width) as u64 * 4, (n * width) as u64 * 4);
            let bytes = self.model.ctx().read_bytes_async(buf, at, size).await?;
            out.extend(bytemuck::pod_collect_to_vec::<u8, f32>(&bytes));
            t += n;
        }
        Ok(out)
    }

    fn check_not_overrun(&self) -> Result<()> {
        if self.overrun {
            return Err(Error::input(
                "this session computed positions past the returned sequence (a stop token or \
                 a cancellation inside a batch of generated tokens, or a batched generation), \
                 so its state no longer matches it; start a new session (or use \
                 tokens_per_submit = 1 to continue after stops)",
            ));
        }
        Ok(())
    }
}
