//! Generation for a session of B > 1 sequences ([`SessionOptions::batch`]): prompts of
//! any lengths, each sequence with its own sampling options, all sampled on the GPU.
//!
//! Every position runs for all B sequences at once. A sequence whose prompt is longer
//! than the shortest one is still *forced* at the first positions after it: its prompt
//! ids are written into the tokens buffer up front and its draws start only after its
//! prompt, so each sequence sees exactly what a session of its own would have seen.

use super::generation::Row;
use super::{check_ids, GenerateOptions, Generation, GenerationStats, Session};
use crate::error::{Error, Result};
use crate::Instant;

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
        crate::gpu::block_on(async {
            let mut generation = self.start_batch_generation(prompts, opts)?;
            while generation.next_step(&mut on_token).await?.is_some() {}
            Ok(generation.all_stats())
        })
    }

    /// Consumes the B prompts (the shortest one's length for all as one prefill, the
    /// rest of the longer ones written into the tokens buffer, where their forced
    /// positions read them) and returns the [`Generation`] stream of the B sequences
    /// ([`Generation::next_step`]; [`Session::generate_batch`] drives it to the end).
    /// Needs a fresh session and consumes it, as [`Session::generate_batch`] does.
    pub fn start_batch_generation(
        &mut self,
        prompts: &[&[u32]],
        opts: &[GenerateOptions],
    ) -> Result<Generation<'_>> {
        self.check_batch_input(prompts, opts)?;
        let start = Instant::now();
        let shortest = prompts.iter().map(|p| p.len()).min().unwrap_or(0);
        let common: Vec<&[u32]> = prompts.iter().map(|p| &p[..shortest]).collect();
        self.feed_rows(&common)?;
        self.write_forced(prompts, shortest);
        // The sequences end at different positions (or an error leaves a batch half
        // read): the state will match none of them.
        self.overrun = true;
        let rows = prompts
            .iter()
            .zip(opts)
            .map(|(p, o)| Row::new(p.len(), o.clone()))
            .collect();
        Ok(Generation::new(self, rows, start))
    }

    /// Checks a batched generation's input, all of it before anything runs.
    fn check_batch_input(&self, prompts: &[&[u32]], opts: &[GenerateOptions]) -> Result<()> {
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
        Ok(())
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
                queue.write_buffer(&self.buf.tokens, at, bytemuck::bytes_of(id));
            }
        }
    }
}
