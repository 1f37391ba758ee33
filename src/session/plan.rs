//! Sizing a session before anything is allocated: the memory plan ([`SessionMemory`]),
//! the checks on batches and token ids, and the session length a prompt and a number of
//! tokens to generate need.

use super::GenerateOptions;
use super::{GpuModel, SessionOptions, WeightStorage};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::mixer::{Method, MixerMemory};

/// GPU memory of one session, by part, computed before anything is allocated
/// ([`SessionMemory::plan`]); the weights are the model's and shared by its sessions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionMemory {
    /// Model weights (already on the device).
    pub weights: u64,
    /// Per-token activations, token ids, and the logits and hidden-state rings.
    pub activations: u64,
    /// The mixer's histories, accumulators, filters, spectra and FFT scratch.
    pub mixer: MixerMemory,
    /// How the mixer's buffers are split by channel to fit the device's binding limit
    /// (one width when they fit as they are).
    pub groups: Vec<usize>,
    /// The device's per-binding limit that the split respects.
    pub binding_limit: u64,
}

impl SessionMemory {
    /// The memory a session with `opts` needs on `model`'s device. Fails, naming the
    /// buffer and the bytes needed against the bytes allowed, when a buffer cannot be
    /// split to fit the device's storage-binding limit.
    pub fn plan(model: &GpuModel, opts: &SessionOptions) -> Result<Self> {
        let ctx = model.ctx();
        let c = model.config();
        let limit = crate::mixer::binding_limit(ctx);
        let (d, di, vp) = (c.d_model as u64, c.d_inner as u64, c.padded_vocab() as u64);
        check_batch(opts.method, opts.batch)?;
        let b = opts.batch as u64;
        let rows = opts.logit_rows.clamp(1, opts.len.max(1)) as u64 * b;
        let rows_hint = "keep fewer logit rows (score in pieces) or run fewer sequences";
        let fixed = [
            (
                "tokens",
                (opts.len as u64 + 1) * b * 4,
                "use a shorter session",
            ),
            ("logits", rows * vp * 4, rows_hint),
            ("hidden", rows * d * 4, rows_hint),
        ];
        for (name, bytes, hint) in fixed {
            if bytes > limit {
                return Err(Error::Limit(format!(
                    "buffer '{name}' of this session needs {bytes} bytes but the device \
                     binds at most {limit} bytes per storage buffer; {hint}"
                )));
            }
        }
        let activations = fixed.iter().map(|f| f.1).sum::<u64>()
            + 4 * b * (4 * d + di + 9 * d * c.n_layer as u64);
        let channels = c.n_layer * c.d_model * opts.batch;
        let shape = (c.n_layer * opts.batch, c.d_model);
        let groups = crate::mixer::plan_mixer_groups(
            opts.method,
            shape,
            opts.len,
            opts.fft_min_tile,
            limit,
        )?;
        let mut mixer = MixerMemory::estimate(opts.method, channels, opts.len, &opts.tiles());
        let textures = model.storage() == WeightStorage::Texture;
        let shape = (c.d_model, opts.len);
        mixer.history +=
            crate::mixer::lazy_texture_bytes(ctx, opts.method, textures, shape, &groups.widths);
        Ok(SessionMemory {
            weights: model.weight_bytes(),
            activations,
            mixer,
            groups: groups.widths,
            binding_limit: limit,
        })
    }

    /// Bytes this session allocates (everything but the shared weights).
    pub fn session_total(&self) -> u64 {
        self.activations + self.mixer.total()
    }
}

/// `items` with each one repeated `b` times in place (the mixer's layer l·B + b).
pub(crate) fn per_sequence<T: Clone>(items: Vec<T>, b: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(items.len() * b);
    for item in items {
        out.extend(std::iter::repeat_n(item, b));
    }
    out
}

/// Most sequences one session runs side by side ([`SessionOptions::batch`]).
pub const MAX_BATCH: usize = 64;

/// Checks a [`SessionOptions::batch`] of `batch` sequences for `method`: 1 to
/// [`MAX_BATCH`], and above 1 only for the methods whose gate the products fuse
/// (flash, none).
pub fn check_batch(method: Method, batch: usize) -> Result<()> {
    if batch == 0 || batch > MAX_BATCH {
        return Err(Error::input(format!(
            "a session runs 1 to {MAX_BATCH} sequences side by side, not {batch}"
        )));
    }
    if batch > 1 && !matches!(method, Method::Flash | Method::None) {
        return Err(Error::input(format!(
            "batches of sequences run with the flash or none method, not {method}; \
             run one session per sequence for {method}"
        )));
    }
    Ok(())
}

/// Checks that every id indexes the model's (padded) vocabulary; the error names the
/// first bad id and its position.
pub fn check_ids(config: &Config, ids: &[u32]) -> Result<()> {
    let vp = config.padded_vocab();
    match ids.iter().enumerate().find(|(_, &id)| id as usize >= vp) {
        Some((i, &id)) => Err(Error::input(format!(
            "token id {id} (input position {i}) is out of range: the model's vocabulary \
             has {vp} ids (0..{vp})"
        ))),
        None => Ok(()),
    }
}

/// Session length for a batch ([`Session::generate_batch`](super::Session::generate_batch)): the longest of
/// [`session_len`] over its sequences, given as the prompts and their options.
pub fn batch_session_len(
    config: &Config,
    prompts: &[&[u32]],
    opts: &[GenerateOptions],
) -> Result<usize> {
    let mut len = 1;
    for (p, o) in prompts.iter().zip(opts) {
        len = len.max(session_len(config, p.len(), o.max_tokens)?);
    }
    Ok(len)
}

/// Session length for a prompt of `prompt_len` plus `max_tokens` new tokens: the last
/// generated token is never fed back, and the total is capped by max_seq_len.
pub fn session_len(config: &Config, prompt_len: usize, max_tokens: usize) -> Result<usize> {
    if prompt_len >= config.max_seq_len && max_tokens > 0 {
        return Err(Error::input(format!(
            "the prompt has {prompt_len} tokens but max_seq_len is {}: nothing can be generated",
            config.max_seq_len
        )));
    }
    if prompt_len > config.max_seq_len {
        return Err(Error::input(format!(
            "the input has {prompt_len} tokens, more than max_seq_len = {}",
            config.max_seq_len
        )));
    }
    let full = prompt_len + max_tokens.saturating_sub(1);
    Ok(full.min(config.max_seq_len - 1).max(prompt_len).max(1))
}
