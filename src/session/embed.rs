//! Embeddings ([`Session::embed_batch`]): a sequence's hidden states after ln_f, pooled
//! ([`Pool`]) into one vector, or every position's.

use super::{ScoreOptions, Session};
use crate::error::{Error, Result};

/// How a sequence's hidden states (one row of D per token, after ln_f) become its
/// embedding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
pub enum Pool {
    /// The mean over every position of the sequence as tokenized (with the trailing
    /// `[SEP]` that `score --text` appends), summed in f64.
    #[default]
    Mean,
    /// The last position's row (the `[SEP]` after the bases).
    Last,
    /// Every position's row, `[n][D]`.
    None,
}

impl Pool {
    /// The embedding of `hidden` (`[n][d]`, n >= 1).
    pub fn apply(self, hidden: &[f32], d: usize) -> Vec<f32> {
        let n = hidden.len() / d.max(1);
        match self {
            Pool::None => hidden.to_vec(),
            Pool::Last => hidden[(n.max(1) - 1) * d..][..d].to_vec(),
            Pool::Mean => {
                let mut sum = vec![0f64; d];
                for row in hidden.chunks_exact(d) {
                    for (s, &v) in sum.iter_mut().zip(row) {
                        *s += v as f64;
                    }
                }
                sum.into_iter().map(|s| (s / n as f64) as f32).collect()
            }
        }
    }

    /// Lower-case name as used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Pool::Mean => "mean",
            Pool::Last => "last",
            Pool::None => "none",
        }
    }
}

impl Session {
    /// The embeddings of the B sequences of this fresh session, side by side as
    /// [`Session::score_batch`] runs them: each sequence's hidden states pooled by
    /// `pool` (`[D]`, or `[n][D]` for [`Pool::None`]).
    pub fn embed_batch(&mut self, seqs: &[&[u32]], pool: Pool) -> Result<Vec<Vec<f32>>> {
        let d = self.model.config().d_model;
        let keep = ScoreOptions {
            logits: false,
            hidden: true,
        };
        let scores = self.score_batch(seqs, &keep)?;
        scores
            .into_iter()
            .map(|s| {
                let hidden = s
                    .hidden
                    .ok_or_else(|| Error::gpu("no hidden states kept"))?;
                Ok(pool.apply(&hidden, d))
            })
            .collect()
    }
}
