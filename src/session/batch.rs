//! Generation for a session of B > 1 sequences ([`SessionOptions::batch`]): prompts of
//! any lengths, each sequence with its own sampling options, all sampled on the GPU.
//!
//! Every position runs for all B sequences at once. A sequence whose prompt is longer
//! than the shortest one is still *forced* at the first positions after it: its prompt
//! ids are written into the tokens buffer up front and its draws start only after its
//! prompt, so each sequence sees exactly what a session of its own would have seen.

use super::{check_ids, deliver, GenerateOptions, GenerationStats, Session, StopReason};
use crate::error::{Error, Result};
use crate::sampling::Draw;
use crate::Instant;

/// Where one sequence of a batched generation stands.
struct Row<'a> {
    prompt: &'a [u32],
    opts: &'a GenerateOptions,
    tokens: Vec<u32>,
    stop: Option<StopReason>,
}

impl Row<'_> {
    /// Whether the row draws again, with `pending` draws recorded but not read back.
    fn wants(&self, pending: usize) -> bool {
        self.stop.is_none() && self.tokens.len() + pending < self.opts.max_tokens
    }

    /// Whether the row needs position `pos` run: a prompt position, or one whose
    /// logits its next draw reads.
    fn needs(&self, pos: usize, pending: usize) -> bool {
        self.stop.is_none() && (pos < self.prompt.len() || self.wants(pending))
    }
}

impl Session {
    /// Generates after each of the session's B prompts ([`SessionOptions::batch`](crate::SessionOptions::batch)
    /// sequences, prompts of any lengths, `opts[b]` for sequence b: its own
    /// `max_tokens`, sampling, seed, stop ids and cancellation), calling `on_token(b, id)`
    /// as tokens arrive. Every position runs for all sequences at once (the projections
    /// as matrix products over the B rows), tokens are drawn on the GPU and read back
    /// every `tokens_per_submit` positions. Sequence b gets the tokens a session of its
    /// own would generate with `opts[b]` (`tests/batch.rs`).
    ///
    /// Needs a fresh session, and consumes it: its sequences end at different
    /// positions, so it cannot continue afterwards. The stats' timings and counts are
    /// the whole batch's. Blocks (native only).
    pub fn generate_batch(
        &mut self,
        prompts: &[&[u32]],
        opts: &[GenerateOptions],
        mut on_token: impl FnMut(usize, u32),
    ) -> Result<Vec<GenerationStats>> {
        let mut rows = self.check_batch_input(prompts, opts)?;
        let start = Instant::now();
        let shortest = prompts.iter().map(|p| p.len()).min().unwrap_or(0);
        let common: Vec<&[u32]> = prompts.iter().map(|p| &p[..shortest]).collect();
        self.feed_rows(&common)?;
        self.write_forced(prompts, shortest);
        let prompt_seconds = start.elapsed().as_secs_f64();
        let counts_before = self.counts();
        let gen_start = Instant::now();
        // Until every sequence has stopped, or an error, which ends them all.
        let result = loop {
            if rows.iter().all(|r| r.stop.is_some()) {
                break Ok(());
            }
            if let Err(e) = crate::gpu::block_on(self.batch_step(&mut rows, &mut on_token)) {
                break Err(e);
            }
        };
        // The sequences ended at different positions (or an error left a batch half
        // read): the state matches none of them.
        self.overrun = true;
        result?;
        let counts = self.counts();
        let generate_seconds = gen_start.elapsed().as_secs_f64();
        Ok(rows
            .into_iter()
            .map(|r| GenerationStats {
                stop: r.stop.unwrap_or(StopReason::Cancelled),
                tokens: r.tokens,
                prompt_seconds,
                generate_seconds,
                dispatches: counts.0 - counts_before.0,
                submits: counts.1 - counts_before.1,
            })
            .collect())
    }

    /// Checks a batched generation's input, all of it before anything runs.
    fn check_batch_input<'a>(
        &self,
        prompts: &[&'a [u32]],
        opts: &'a [GenerateOptions],
    ) -> Result<Vec<Row<'a>>> {
        let b = self.opts.batch;
        if prompts.len() != b || opts.len() != b {
            return Err(Error::input(format!(
                "this session runs {b} sequence(s): give {b} prompts and {b} option sets, \
                 not {} and {}",
                prompts.len(),
                opts.len()
            )));
        }
        if self.pos != 0 {
            return Err(Error::input(
                "generate_batch needs a fresh session (this one has consumed tokens)",
            ));
        }
        self.check_not_overrun()?;
        let c = self.model.config();
        for (i, (p, o)) in prompts.iter().zip(opts).enumerate() {
            if p.is_empty() {
                return Err(Error::input(format!(
                    "prompt {i} is empty: give every sequence at least one token"
                )));
            }
            if p.len() > self.opts.len {
                return Err(Error::input(format!(
                    "prompt {i} has {} tokens but the session holds {} positions",
                    p.len(),
                    self.opts.len
                )));
            }
            check_ids(c, p).map_err(|e| Error::input(format!("prompt {i}: {e}")))?;
            o.sampling.validate()?;
            if o.cpu_sampling {
                return Err(Error::input(
                    "a batch of sequences samples on the GPU: cpu_sampling is for one sequence",
                ));
            }
        }
        Ok(prompts
            .iter()
            .zip(opts)
            .map(|(&prompt, opts)| Row {
                prompt,
                opts,
                tokens: Vec::new(),
                stop: (opts.max_tokens == 0).then_some(StopReason::MaxTokens),
            })
            .collect())
    }

    /// Writes the prompt ids past the `shortest` prompt's end into the tokens buffer,
    /// where the forced positions' embeddings read them (the GPU draws only into the
    /// slots after each prompt).
    fn write_forced(&self, prompts: &[&[u32]], shortest: usize) {
        let b = prompts.len();
        let queue = &self.model.ctx().queue;
        for (i, p) in prompts.iter().enumerate() {
            for (t, id) in p.iter().enumerate().skip(shortest) {
                let at = ((t * b + i) * 4) as u64;
                queue.write_buffer(&self.tokens, at, bytemuck::bytes_of(id));
            }
        }
    }

    /// One submit of a batched generation: up to `tokens_per_submit` positions, each
    /// the draws of the sequences past their prompts and then the position's forward
    /// pass for all; then one read-back of the drawn ids, delivered per sequence.
    async fn batch_step(
        &mut self,
        rows: &mut [Row<'_>],
        on_token: &mut impl FnMut(usize, u32),
    ) -> Result<()> {
        for r in rows.iter_mut().filter(|r| r.stop.is_none()) {
            if r.opts.cancel.is_cancelled() {
                r.stop = Some(StopReason::Cancelled);
            }
        }
        let ctx = self.model.ctx().clone();
        let model = self.model.clone();
        let c = model.config();
        let (vocab, vp, b) = (c.vocab_size, c.padded_vocab(), self.opts.batch);
        let logit_rows = self.opts.logit_rows;
        let steps = self.opts.tokens_per_submit.max(1);
        // Per step of this submit, which sequences drew (slot k * B + row).
        let mut drew: Vec<Vec<usize>> = Vec::with_capacity(steps);
        let mut pending = vec![0usize; b];
        let mut full = false;
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for k in 0..steps {
                let pos = self.pos;
                let mut step = Vec::new();
                for (i, r) in rows.iter().enumerate() {
                    if pos < r.prompt.len() || !r.wants(pending[i]) {
                        continue;
                    }
                    let draw = Draw {
                        row_off: (((pos - 1) % logit_rows * b + i) * vp) as u32,
                        pos: pos as u32,
                        tok_idx: (pos * b + i) as u32,
                        out_idx: (k * b + i) as u32,
                        row: 0,
                    };
                    let (arena, bind) = (&mut self.arena, &self.sample_bind);
                    let params = (&r.opts.sampling, vocab);
                    model
                        .inner
                        .sampler
                        .record(&mut pass, arena, bind, params, draw)?;
                    pending[i] += 1;
                    step.push(i);
                }
                drew.push(step);
                let needed = rows
                    .iter()
                    .enumerate()
                    .any(|(i, r)| r.needs(pos, pending[i]));
                if !needed {
                    break;
                }
                if pos >= self.opts.len {
                    full = true;
                    break;
                }
                self.record_token(&mut pass, pos)?;
                self.pos += 1;
            }
        }
        self.arena.upload(&ctx);
        ctx.queue.submit([enc.finish()]);
        let slots = (drew.len() * b) as u64;
        let bytes = ctx
            .read_via_async(&self.drawn, 0, slots * 4, &self.drawn_staging)
            .await?;
        self.count_submits(2);
        let ids: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes);
        for (k, step) in drew.iter().enumerate() {
            for &i in step {
                let r = &mut rows[i];
                if r.stop.is_some() {
                    continue;
                }
                let id = ids[k * b + i];
                r.stop = deliver(id, r.opts, &mut r.tokens, &mut |id| on_token(i, id));
                if r.stop.is_none() && r.tokens.len() >= r.opts.max_tokens {
                    r.stop = Some(StopReason::MaxTokens);
                }
            }
        }
        if full {
            for r in rows.iter_mut().filter(|r| r.stop.is_none()) {
                r.stop = Some(StopReason::SequenceFull);
            }
        }
        Ok(())
    }
}
