//! Scoring a sequence ([`Session::score`]): per-token log-probabilities, NLL and
//! perplexity, optionally with the logits and the hidden states of every position.

use super::Session;
use crate::error::{Error, Result};

/// What [`Session::score`] keeps besides the log-probabilities.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScoreOptions {
    /// Keep every position's logits (padded vocabulary), `[n][V_pad]`.
    pub logits: bool,
    /// Keep every position's hidden state after ln_f, `[n][D]`.
    pub hidden: bool,
}

/// A scored sequence of n tokens ([`Session::score`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Score {
    /// `log p(ids[t + 1] | ids[..= t])` for t in 0 .. n - 1, in f64 from the f32 logits.
    pub logprobs: Vec<f64>,
    /// Total negative log-likelihood (the sum of `-logprobs`).
    pub nll: f64,
    /// `nll` per predicted token (0 for a sequence of one token).
    pub mean_nll: f64,
    /// `exp(mean_nll)`.
    pub perplexity: f64,
    /// The logits of every position, `[n][V_pad]`, if asked for.
    pub logits: Option<Vec<f32>>,
    /// The hidden states after ln_f, `[n][D]`, if asked for.
    pub hidden: Option<Vec<f32>>,
}

impl Score {
    /// The score of `logprobs` (NLL, mean, perplexity), e.g. the pieces of a long
    /// sequence scored window by window.
    pub fn of(logprobs: Vec<f64>) -> Self {
        let nll = -logprobs.iter().sum::<f64>();
        let mean_nll = if logprobs.is_empty() {
            0.0
        } else {
            nll / logprobs.len() as f64
        };
        Score {
            logprobs,
            nll,
            mean_nll,
            perplexity: mean_nll.exp(),
            logits: None,
            hidden: None,
        }
    }
}

/// `log softmax(row)[id]`, in f64.
pub fn log_prob(row: &[f32], id: u32) -> f64 {
    let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
    let sum: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
    row[id as usize] as f64 - (max + sum.ln())
}

/// What one sequence of a batch gathers while it is scored.
#[derive(Default)]
struct Gathered {
    logprobs: Vec<f64>,
    logits: Option<Vec<f32>>,
    hidden: Option<Vec<f32>>,
}

/// The id fed after a shorter sequence's end, to the batch's longest: any id in the
/// vocabulary does, since no position sees a later one (the model is causal) and the
/// padded positions' outputs are dropped.
const PAD_ID: u32 = 0;

impl Session {
    /// Scores `ids` on this fresh session (one sequence, sized for them, e.g. with
    /// [`SessionOptions::for_ids`](super::SessionOptions::for_ids)): feeds them in
    /// pieces of `logit_rows` positions (the first piece as one prefill), reading each
    /// piece's logits back before the next. Blocks; [`Session::score_async`] does not.
    pub fn score(&mut self, ids: &[u32], opts: &ScoreOptions) -> Result<Score> {
        crate::gpu::block_on(self.score_async(ids, opts))
    }

    /// [`Session::score`] without blocking.
    pub async fn score_async(&mut self, ids: &[u32], opts: &ScoreOptions) -> Result<Score> {
        let mut scores = self.score_batch_async(&[ids], opts).await?;
        scores
            .pop()
            .ok_or_else(|| Error::gpu("a batch of one sequence scored none"))
    }

    /// Scores the B sequences of this fresh session side by side (its
    /// [`batch`](super::SessionOptions::batch) is `seqs.len()` and its length the
    /// longest's, e.g. from
    /// [`SessionOptions::for_batch`](super::SessionOptions::for_batch)): every position
    /// runs for all of them at once, the shorter ones padded to the longest. The model
    /// is causal, so each score equals that sequence's score alone up to f32 rounding.
    pub fn score_batch(&mut self, seqs: &[&[u32]], opts: &ScoreOptions) -> Result<Vec<Score>> {
        crate::gpu::block_on(self.score_batch_async(seqs, opts))
    }

    /// [`Session::score_batch`] without blocking.
    pub async fn score_batch_async(
        &mut self,
        seqs: &[&[u32]],
        opts: &ScoreOptions,
    ) -> Result<Vec<Score>> {
        self.check_fresh_batch(seqs)?;
        let longest = seqs.iter().map(|s| s.len()).max().unwrap_or(0);
        let padded: Vec<Vec<u32>> = seqs
            .iter()
            .map(|s| {
                let pad = std::iter::repeat_n(PAD_ID, longest - s.len());
                s.iter().copied().chain(pad).collect()
            })
            .collect();
        let mut got: Vec<Gathered> = seqs
            .iter()
            .map(|s| Gathered {
                logprobs: Vec::with_capacity(s.len()),
                logits: opts.logits.then(Vec::new),
                hidden: opts.hidden.then(Vec::new),
            })
            .collect();
        let rows = self.opts.logit_rows;
        for start in (0..longest).step_by(rows) {
            let end = (start + rows).min(longest);
            let part: Vec<&[u32]> = padded.iter().map(|p| &p[start..end]).collect();
            self.feed_rows(&part)?;
            let logits = self.logits_range_async(start, end).await?;
            let hidden = match opts.hidden {
                true => Some(self.hidden_range_async(start, end).await?),
                false => None,
            };
            self.gather(seqs, (start, end), (&logits, hidden.as_deref()), &mut got);
        }
        Ok(got
            .into_iter()
            .map(|g| Score {
                logits: g.logits,
                hidden: g.hidden,
                ..Score::of(g.logprobs)
            })
            .collect())
    }

    /// Fails unless this session is fresh and runs exactly `seqs`, none of them empty.
    fn check_fresh_batch(&self, seqs: &[&[u32]]) -> Result<()> {
        if self.pos != 0 {
            return Err(Error::input(
                "score needs a fresh session (this one has consumed tokens)",
            ));
        }
        if seqs.len() != self.opts.batch {
            return Err(Error::input(format!(
                "this session runs {} sequence(s) side by side: give {} to score, not {}",
                self.opts.batch,
                self.opts.batch,
                seqs.len()
            )));
        }
        match seqs.iter().position(|s| s.is_empty()) {
            Some(0) if seqs.len() == 1 => Err(Error::input("the sequence to score is empty")),
            Some(i) => Err(Error::input(format!("sequence {i} to score is empty"))),
            None => Ok(()),
        }
    }

    /// Adds positions `start..end` of every sequence that has them to `got`: from
    /// `logits` (`[n][B][V_pad]`) the log-probability of its next token and, if kept,
    /// the row itself, and the rows of `hidden` (`[n][B][D]`) if kept.
    fn gather(
        &self,
        seqs: &[&[u32]],
        (start, end): (usize, usize),
        (logits, hidden): (&[f32], Option<&[f32]>),
        got: &mut [Gathered],
    ) {
        let c = self.model.config();
        let (vp, d, b) = (c.padded_vocab(), c.d_model, seqs.len());
        for (i, t) in (start..end).enumerate() {
            for (s, (seq, g)) in seqs.iter().zip(got.iter_mut()).enumerate() {
                if t >= seq.len() {
                    continue;
                }
                let row = &logits[(i * b + s) * vp..][..vp];
                if let Some(&next) = seq.get(t + 1) {
                    g.logprobs.push(log_prob(row, next));
                }
                if let Some(l) = g.logits.as_mut() {
                    l.extend_from_slice(row);
                }
                if let (Some(h), Some(all)) = (g.hidden.as_mut(), hidden) {
                    h.extend_from_slice(&all[(i * b + s) * d..][..d]);
                }
            }
        }
    }
}
