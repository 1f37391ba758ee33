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
    /// The score of `logprobs` (NLL, mean, perplexity).
    fn of(logprobs: Vec<f64>) -> Self {
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
        if self.pos != 0 || self.opts.batch != 1 {
            return Err(Error::input(
                "score needs a fresh session of one sequence (this one has consumed tokens \
                 or runs several)",
            ));
        }
        if ids.is_empty() {
            return Err(Error::input("the sequence to score is empty"));
        }
        let c = self.model.config();
        let (vp, d) = (c.padded_vocab(), c.d_model);
        let rows = self.opts.logit_rows;
        let mut logprobs = Vec::with_capacity(ids.len() - 1);
        let mut logits = opts.logits.then(|| Vec::with_capacity(ids.len() * vp));
        let mut hidden = opts.hidden.then(|| Vec::with_capacity(ids.len() * d));
        for (i, part) in ids.chunks(rows).enumerate() {
            self.feed(part)?;
            let (start, end) = (i * rows, i * rows + part.len());
            let piece = self.logits_range_async(start, end).await?;
            for (t, row) in (start..end).zip(piece.chunks_exact(vp)) {
                if let Some(&next) = ids.get(t + 1) {
                    logprobs.push(log_prob(row, next));
                }
            }
            if let Some(l) = logits.as_mut() {
                l.extend_from_slice(&piece);
            }
            if let Some(h) = hidden.as_mut() {
                h.extend(self.hidden_range_async(start, end).await?);
            }
        }
        Ok(Score {
            logits,
            hidden,
            ..Score::of(logprobs)
        })
    }
}
