//! `flashconv generate`: tokens after a prompt, streamed as they come; several prompts
//! (or `--batch`) run side by side in one session.

use super::common::{device, load_model, progress_bar, ModelArg};
use clap::{Args, ValueEnum};
use flashconv::bundled;
use flashconv::sampling::SamplingParams;
use flashconv::session::{batch_session_len, check_ids, GenerateOptions, StopReason};
use flashconv::tokenizer::{parse_ids, Tokenizer};
use flashconv::{GenerationStats, GpuContext, Method, Model, Result, Session, SessionOptions};
use std::io::Write;

/// Where `generate` samples its tokens (`--sampler`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Sampler {
    /// The GPU, except temperature sampling on a software adapter.
    Auto,
    /// On the GPU; ids read back once per batch.
    Gpu,
    /// On the CPU; logits read back every token.
    Cpu,
}

#[derive(Args)]
pub(crate) struct GenerateArgs {
    #[command(flatten)]
    pub(crate) model: ModelArg,
    /// Prompt text (tokenized by the model's tokenizer; no trailing [SEP]). Default:
    /// "The " (or "ACGT" for a model with HyenaDNA's DNA vocabulary). Repeat it to
    /// generate after several prompts side by side in one session (a batch).
    #[arg(long, conflicts_with = "ids")]
    pub(crate) prompt: Vec<String>,
    /// Prompt as token ids, e.g. 0,7,8 (repeatable, like --prompt).
    #[arg(long)]
    pub(crate) ids: Vec<String>,
    /// Generate this many sequences side by side after the prompt (one session, flash
    /// or none; with several prompts, give as many). Sequence b samples with seed
    /// `--seed` + b. The text of each is printed when all are done.
    #[arg(long)]
    pub(crate) batch: Option<usize>,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 100)]
    pub(crate) max_tokens: usize,
    /// Sampling temperature; 0 = greedy.
    #[arg(long, default_value_t = 0.8)]
    pub(crate) temperature: f32,
    /// Keep only the k most likely tokens (0 = all).
    #[arg(long, default_value_t = 0)]
    pub(crate) top_k: usize,
    /// Nucleus sampling: keep the most likely tokens up to probability p.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) top_p: f32,
    /// Random seed.
    #[arg(long, default_value_t = 299_792_458)]
    pub(crate) seed: u64,
    /// Stop after any of these token ids (e.g. 1 for [SEP]).
    #[arg(long)]
    pub(crate) stop: Option<String>,
    /// Tokens sampled on the GPU per submit; their ids are read back (and printed)
    /// once per batch.
    #[arg(long, default_value_t = 32)]
    pub(crate) tokens_per_submit: usize,
    /// Where tokens are sampled: gpu (ids read back once per batch), cpu (logits read
    /// back every token), or auto: the GPU, except temperature sampling on a software
    /// adapter (lavapipe), where the sampling kernels measured slower than the CPU path.
    #[arg(long, value_enum, default_value_t = Sampler::Auto)]
    pub(crate) sampler: Sampler,
    /// Print one JSON object (prompt_ids, tokens, text, stop, tokens_per_second,
    /// adapter) instead of streaming the text (the browser test compares its ids).
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn generate(a: GenerateArgs) -> Result<()> {
    let method = a.model.method;
    let (model, tok) = load_model(&a.model.model)?;
    let prompts = prompts(&a, &tok)?;
    if prompts.len() != 1 {
        return generate_batch(a, method, (model, tok), prompts);
    }
    let prompt = prompts.into_iter().next().unwrap_or_default();
    let stop_ids = a.stop_ids()?;
    let sampling = a.sampling(0)?;
    let sopts = SessionOptions::for_ids(&model.config, method, &prompt, a.max_tokens)?;
    let ctx = device()?;
    let gm = a.model.upload(&ctx, model)?;
    let mut sopts = a.model.tuned(&ctx, sopts)?;
    sopts.tokens_per_submit = a.tokens_per_submit.max(1);
    let mut session = Session::new(&gm, sopts)?;
    let mut opts = GenerateOptions {
        stop_ids,
        ..GenerateOptions::new(a.max_tokens, sampling).with_auto_sampler(&ctx)
    };
    match a.sampler {
        Sampler::Cpu => opts.cpu_sampling = true,
        Sampler::Gpu => opts.cpu_sampling = false,
        Sampler::Auto => {}
    }
    let mut out = std::io::stdout().lock();
    let stream = !a.json;
    if stream {
        let _ = write!(out, "{}", tok.decode(&prompt));
        let _ = out.flush();
    }
    let bar = token_bar(a.max_tokens);
    let stats = session.generate(&prompt, &opts, |id| {
        if stream {
            let _ = write!(out, "{}", tok.token_str(id));
            let _ = out.flush();
        }
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    if a.json {
        let v = serde_json::json!({
            "prompt_ids": prompt,
            "tokens": stats.tokens,
            "text": tok.decode(&stats.tokens),
            "stop": format!("{:?}", stats.stop),
            "tokens_per_second": stats.tokens_per_second(),
            "method": method.name(),
            "adapter": ctx.describe(),
        });
        let _ = writeln!(out, "{v}");
        return Ok(());
    }
    let _ = writeln!(out);
    report(&stats, gm.config().max_seq_len, method, &ctx);
    Ok(())
}

/// The prompts: `--ids`, else `--prompt`, else the model's default; repeated for
/// `--batch` when there is one.
fn prompts(a: &GenerateArgs, tok: &Tokenizer) -> Result<Vec<Vec<u32>>> {
    let prompts: Vec<Vec<u32>> = if !a.ids.is_empty() {
        a.ids
            .iter()
            .map(|ids| parse_ids(ids))
            .collect::<Result<_>>()?
    } else if !a.prompt.is_empty() {
        a.prompt.iter().map(|text| tok.encode(text)).collect()
    } else if *tok == Tokenizer::dna() {
        // DNA models start from a short DNA string, text models from a word.
        vec![tok.encode("ACGT")]
    } else {
        vec![tok.encode(bundled::DEFAULT_PROMPT)]
    };
    match (a.batch, prompts.len()) {
        (None, _) => Ok(prompts),
        (Some(b), 1) => Ok(vec![prompts[0].clone(); b]),
        (Some(b), n) if b == n => Ok(prompts),
        (Some(b), n) => Err(flashconv::Error::input(format!(
            "--batch {b} with {n} prompts: give one prompt (repeated {b} times) or {b}"
        ))),
    }
}

impl GenerateArgs {
    /// The sampling flags, with the seed moved on by `offset` (sequence b of a batch
    /// samples with `--seed` + b).
    fn sampling(&self, offset: u64) -> Result<SamplingParams> {
        let sampling = SamplingParams {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            seed: self.seed.wrapping_add(offset),
        };
        sampling.validate()?;
        Ok(sampling)
    }

    /// The `--stop` ids.
    fn stop_ids(&self) -> Result<Vec<u32>> {
        Ok(self
            .stop
            .as_deref()
            .map(parse_ids)
            .transpose()?
            .unwrap_or_default())
    }
}

/// A bar over `max_tokens` tokens on stderr, unless the text streams to a terminal
/// (it is its own progress there): only when stdout goes elsewhere (a file, a pipe).
fn token_bar(max_tokens: usize) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if std::io::stdout().is_terminal() {
        indicatif::ProgressBar::hidden()
    } else {
        progress_bar(
            max_tokens as u64,
            "{elapsed_precise} [{bar:40}] {pos}/{len} tokens ({per_sec})",
        )
    }
}

/// The closing lines of a one-sequence generation on stderr and stdout.
fn report(stats: &GenerationStats, max_seq_len: usize, method: Method, ctx: &GpuContext) {
    if stats.stop == StopReason::SequenceFull {
        eprintln!("stopped: the sequence reached max_seq_len ({max_seq_len})");
    }
    let (per_d, per_s) = stats.per_token();
    eprintln!("({per_d:.1} dispatches and {per_s:.3} submits per generated token)");
    println!(
        "{} tokens generated ({:.2} token/s, {} method on {})",
        stats.tokens.len(),
        stats.tokens_per_second(),
        method,
        ctx.describe()
    );
}

/// `generate` for several sequences side by side (`--batch`, or several prompts).
fn generate_batch(
    a: GenerateArgs,
    method: Method,
    (model, tok): (Model, Tokenizer),
    prompts: Vec<Vec<u32>>,
) -> Result<()> {
    let b = prompts.len();
    let stop_ids = a.stop_ids()?;
    let mut opts = Vec::with_capacity(b);
    for (i, p) in prompts.iter().enumerate() {
        check_ids(&model.config, p)?;
        opts.push(GenerateOptions {
            stop_ids: stop_ids.clone(),
            ..GenerateOptions::new(a.max_tokens, a.sampling(i as u64)?)
        });
    }
    let rows: Vec<&[u32]> = prompts.iter().map(|p| p.as_slice()).collect();
    let len = batch_session_len(&model.config, &rows, &opts)?;
    let ctx = device()?;
    let gm = a.model.upload(&ctx, model)?;
    let mut sopts = a.model.tuned(&ctx, SessionOptions::new(method, len))?;
    sopts.tokens_per_submit = a.tokens_per_submit.max(1);
    sopts.batch = b;
    let mut session = Session::new(&gm, sopts)?;
    let bar = progress_bar(
        (b * a.max_tokens) as u64,
        "{elapsed_precise} [{bar:40}] {pos}/{len} tokens ({per_sec})",
    );
    let stats = session.generate_batch(&rows, &opts, |_, _| bar.inc(1))?;
    bar.finish_and_clear();
    let total: usize = stats.iter().map(|s| s.tokens.len()).sum();
    let seconds = stats.first().map_or(0.0, |s| s.generate_seconds);
    let rate = total as f64 / seconds.max(1e-9);
    if a.json {
        let seqs: Vec<_> = prompts
            .iter()
            .zip(&stats)
            .map(|(p, s)| {
                serde_json::json!({
                    "prompt_ids": p,
                    "tokens": s.tokens,
                    "text": tok.decode(&s.tokens),
                    "stop": format!("{:?}", s.stop),
                })
            })
            .collect();
        let v = serde_json::json!({
            "sequences": seqs,
            "tokens_per_second": rate,
            "method": method.name(),
            "adapter": ctx.describe(),
        });
        println!("{v}");
        return Ok(());
    }
    for (i, (p, s)) in prompts.iter().zip(&stats).enumerate() {
        println!("[{i}] {}{}", tok.decode(p), tok.decode(&s.tokens));
    }
    let (per_d, per_s) = stats.first().map_or((0.0, 0.0), |s| {
        (
            s.dispatches as f64 / total.max(1) as f64,
            s.submits as f64 / total.max(1) as f64,
        )
    });
    eprintln!("({per_d:.1} dispatches and {per_s:.3} submits per generated token)");
    println!(
        "{total} tokens generated ({rate:.2} token/s, {b} sequences, {method} method on {})",
        ctx.describe()
    );
    Ok(())
}
