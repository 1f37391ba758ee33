//! [`SessionOptions`]: what a session is built for (method, length, batch, tiles), and
//! [`SessionOptions::for_ids`], which checks a host's ids and sizes a session for them.

use super::{check_ids, session_len};
use crate::config::Config;
use crate::error::Result;
use crate::mixer::Method;

/// Options of a [`Session`](super::Session).
#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// Long-convolution method.
    pub method: Method,
    /// Positions the session can hold (prompt + generated tokens); at most max_seq_len.
    pub len: usize,
    /// How many positions' logits (and hidden states) are kept on the GPU, as a ring:
    /// 1 for generation, the sequence length for scoring.
    pub logit_rows: usize,
    /// Tokens recorded per submit, when consuming known tokens and when generating
    /// with GPU sampling (whose ids are read back once per batch).
    pub tokens_per_submit: usize,
    /// Flash tiles of this side and larger use FFTs, smaller ones a direct product.
    pub fft_min_tile: usize,
    /// Consume a prompt fed at position 0 as one batched forward pass (every position
    /// of a layer at once, the long convolution as one FFT), then seed the accumulators
    /// for the tokens after it ([`Session::feed`](super::Session::feed)). Used for flash and none in sessions
    /// whose mixer buffers are not split; the other cases go token by token. On by
    /// default; off gives token-by-token prompt processing (same results within f32
    /// rounding, `tests/prefill.rs`).
    pub prefill: bool,
    /// How large flash tiles are spread over the steps after them, so the step that
    /// completes a large tile does not carry all of it (the latency spikes at
    /// t + 1 = 2^k): only the next outputs are computed at once, directly, the rest in
    /// channel chunks over the next steps ([`crate::tiling::work_at`]). Default:
    /// [`Spread::DEFAULT`](crate::tiling::Spread::DEFAULT).
    pub spread: crate::tiling::Spread,
    /// Bytes of flash filter spectra to precompute, smallest tile sides first (about
    /// 16·M·D·L bytes hold them all); the larger sides' spectra are then computed on the
    /// GPU each time a tile needs them (an extra FFT of the filter per tile, in one
    /// shared buffer of the largest side's size). None: all precomputed.
    /// [`SessionMemory`](super::SessionMemory) reports what is allocated.
    pub spectra_budget: Option<u64>,
    /// Sequences run side by side (B, 1 to [`MAX_BATCH`](super::MAX_BATCH)): every piece of per-sequence
    /// state holds B rows, the projections are matrix products over the B rows, and
    /// the flash tiles of all sequences share each dispatch. B > 1 needs flash or none
    /// and mixer buffers in one channel group; feed it with [`Session::feed_rows`](super::Session::feed_rows) and
    /// generate with [`Session::generate_batch`](super::Session::generate_batch). Default 1.
    pub batch: usize,
    /// Test hook (feature `internals`): extra device memory (zeroed buffers of the
    /// binding size) allocated past the memory plan, so a test can provoke the driver's
    /// out-of-memory error with a session. 0 by default.
    #[cfg(feature = "internals")]
    pub test_extra_bytes: u64,
}

impl SessionOptions {
    /// Defaults for a session of `len` positions with `method`.
    pub fn new(method: Method, len: usize) -> Self {
        SessionOptions {
            method,
            len,
            logit_rows: 1,
            tokens_per_submit: 32,
            fft_min_tile: crate::mixer::DEFAULT_FFT_MIN_TILE,
            prefill: true,
            spread: crate::tiling::Spread::DEFAULT,
            spectra_budget: None,
            batch: 1,
            #[cfg(feature = "internals")]
            test_extra_bytes: 0,
        }
    }

    /// Options for running `ids` with `method` on a model of `config`: a prompt and up
    /// to `max_tokens` tokens generated after it, or with `max_tokens` 0 a sequence to
    /// score. Checks every id against the vocabulary and the length against
    /// max_seq_len first (the error names the bad id or the limit), then sizes the
    /// session for exactly the positions it will hold ([`session_len`]). What the CLI,
    /// the web page and the desktop app call before [`Session::new`](super::Session::new).
    pub fn for_ids(
        config: &Config,
        method: Method,
        ids: &[u32],
        max_tokens: usize,
    ) -> Result<Self> {
        check_ids(config, ids)?;
        Ok(Self::new(
            method,
            session_len(config, ids.len(), max_tokens)?,
        ))
    }

    /// Options for scoring `seqs` side by side with `method` ([`SessionOptions::batch`]
    /// = their count, the length the longest needs): checks every id, every length
    /// and the batch ([`check_batch`](super::check_batch)) first. What
    /// [`Session::score_batch`](super::Session::score_batch) runs on.
    pub fn for_batch(config: &Config, method: Method, seqs: &[&[u32]]) -> Result<Self> {
        super::check_batch(method, seqs.len())?;
        let mut len = 1;
        for ids in seqs {
            check_ids(config, ids)?;
            len = len.max(session_len(config, ids.len(), 0)?);
        }
        let mut opts = Self::new(method, len);
        opts.batch = seqs.len();
        Ok(opts)
    }

    /// The flash tile options among these.
    pub fn tiles(&self) -> crate::mixer::Tiles {
        crate::mixer::Tiles {
            fft_min_tile: self.fft_min_tile,
            spread: self.spread,
            spectra_budget: self.spectra_budget,
        }
    }

    /// Sets the flash tile options.
    pub fn set_tiles(&mut self, tiles: crate::mixer::Tiles) {
        self.fft_min_tile = tiles.fft_min_tile;
        self.spread = tiles.spread;
        self.spectra_budget = tiles.spectra_budget;
    }
}
