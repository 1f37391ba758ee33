//! WebAssembly bindings for the browser demo (`web/`; wasm32 only, built by
//! `web/build.sh` with wasm-bindgen).
//!
//! The page fetches the model files itself (to show a progress bar), hands their bytes to
//! [`WebModel::load`], then streams text with [`WebModel::generate`], which calls back
//! once per batch of tokens (`tokens_per_submit` tokens drawn on the GPU, one read-back)
//! and can be stopped with [`WebModel::stop`]. Nothing blocks: every GPU wait is an
//! `await` on a WebGPU promise, so the page stays responsive while it generates.
//!
//! Errors come back as JavaScript `Error`s carrying flashconv's message; panics are
//! printed to the console (`console_error_panic_hook`), and `log` goes to the console.

use crate::mixer::Method;
use crate::sampling::{top2_margin, SamplingParams};
use crate::session::{CancelHandle, GenerateOptions, ScoreOptions, StopReason};
use crate::tokenizer::Tokenizer;
use crate::{Config, GpuContext, GpuModel, Model, Session, SessionOptions};
use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

/// Runs when the module is instantiated: panics go to the browser console with their
/// message and location, and `log` records at info level and above to the console.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    // A second instantiation in the same page finds the logger already set: not an error.
    let _ = console_log::init_with_level(log::Level::Info);
}

fn js_err(e: crate::Error) -> JsError {
    JsError::new(&e.to_string())
}

/// A model on the page's WebGPU device, its tokenizer, and the running generation's
/// cancel handle.
#[wasm_bindgen]
pub struct WebModel {
    inner: Rc<Inner>,
}

struct Inner {
    ctx: GpuContext,
    model: GpuModel,
    tokenizer: Tokenizer,
    /// Cancels the running generation (replaced when the next one starts).
    cancel: RefCell<CancelHandle>,
    /// Set while a generation or scoring run uses the device.
    busy: Cell<bool>,
}

/// Clears `busy` when a run ends, however it ends.
struct BusyGuard(Rc<Inner>);

impl BusyGuard {
    fn take(inner: &Rc<Inner>) -> Result<Self, JsError> {
        if inner.busy.replace(true) {
            return Err(JsError::new(
                "a generation is already running: stop it or wait for it to finish",
            ));
        }
        Ok(BusyGuard(inner.clone()))
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.busy.set(false);
    }
}

/// Options of [`WebModel::generate`]: in JavaScript `new GenerateParams()` (the defaults
/// below), then set the fields.
#[wasm_bindgen]
#[derive(Clone, Debug)]
pub struct GenerateParams {
    /// Most tokens to generate.
    pub max_tokens: u32,
    /// Sampling temperature; 0 = greedy.
    pub temperature: f32,
    /// Keep the k most likely tokens (0 = all).
    pub top_k: u32,
    /// Nucleus sampling threshold (1 = off).
    pub top_p: f32,
    /// Seed of the counter-based sampler (the same seed gives the CLI's tokens).
    pub seed: f64,
    /// Tokens drawn on the GPU per submit; their ids come back in one read-back and one
    /// callback.
    pub tokens_per_submit: u32,
}

#[wasm_bindgen]
impl GenerateParams {
    /// Defaults: 200 tokens, temperature 0.8, no top-k/top-p, the CLI's default seed,
    /// 16 tokens per submit.
    #[wasm_bindgen(constructor)]
    pub fn new() -> GenerateParams {
        GenerateParams {
            max_tokens: 200,
            temperature: 0.8,
            top_k: 0,
            top_p: 1.0,
            seed: 299_792_458.0,
            tokens_per_submit: 16,
        }
    }
}

impl Default for GenerateParams {
    fn default() -> Self {
        Self::new()
    }
}

#[wasm_bindgen]
impl WebModel {
    /// Gets a device from the page's WebGPU adapter and uploads the model: `config_json`
    /// and `weights` (the bytes of `model.safetensors`) as in a model directory, and
    /// `tokenizer_json` (`tokenizer_config.json`; `undefined` for HyenaDNA's DNA
    /// vocabulary). Fails with a message naming the file and field for a malformed
    /// model, or saying that the browser has no WebGPU adapter.
    pub async fn load(
        config_json: String,
        weights: Vec<u8>,
        tokenizer_json: Option<String>,
    ) -> Result<WebModel, JsError> {
        let config = Config::parse(&config_json, Path::new("config.json")).map_err(js_err)?;
        let model = Model::from_safetensors(config, &weights, Path::new("model.safetensors"))
            .map_err(js_err)?;
        drop(weights);
        let tokenizer = match tokenizer_json {
            Some(text) => Tokenizer::from_config_json(&text, Path::new("tokenizer_config.json"))
                .map_err(js_err)?,
            None => Tokenizer::dna(),
        };
        tokenizer
            .check_vocab(model.config.vocab_size)
            .map_err(js_err)?;
        let ctx = GpuContext::new_async().await.map_err(js_err)?;
        log::info!("flashconv: WebGPU adapter {}", ctx.describe());
        let model = GpuModel::new(&ctx, model).map_err(js_err)?;
        // Kernel compilation errors arrive asynchronously on the web: collect them now.
        ctx.wait_async().await.map_err(js_err)?;
        Ok(WebModel {
            inner: Rc::new(Inner {
                ctx,
                model,
                tokenizer,
                cancel: RefCell::new(CancelHandle::new()),
                busy: Cell::new(false),
            }),
        })
    }

    /// The adapter as the browser reports it: name, backend, device type (and the driver,
    /// when the browser tells it).
    #[wasm_bindgen(getter)]
    pub fn adapter(&self) -> String {
        let info = &self.inner.ctx.info;
        let mut s = self.inner.ctx.describe();
        if !info.driver.is_empty() || !info.driver_info.is_empty() {
            s.push_str(&format!(" {} {}", info.driver, info.driver_info));
        }
        s.trim_end().to_string()
    }

    /// A one-line summary of the model: layers, width, parameters, context length.
    #[wasm_bindgen(getter)]
    pub fn summary(&self) -> String {
        let c = self.inner.model.config();
        format!(
            "{} layers, d_model {}, {} parameters, context {}, vocabulary {}",
            c.n_layer,
            c.d_model,
            c.param_count().unwrap_or(0),
            c.max_seq_len,
            c.vocab_size
        )
    }

    /// The prompt's token ids (no trailing `[SEP]`, as the CLI's `generate --prompt`).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.inner.tokenizer.encode(text)
    }

    /// Text of token ids (special tokens as their names).
    pub fn decode(&self, ids: &[u32]) -> String {
        self.inner.tokenizer.decode(ids)
    }

    /// Generates after `prompt`, calling `on_batch(ids: Uint32Array, text: string)` for
    /// every batch of new tokens as it arrives. Resolves to the run's statistics
    /// (`{tokens, stop, prompt_seconds, generate_seconds, tokens_per_second, dispatches,
    /// submits}`), after the last token, a stop or [`WebModel::stop`]. Only one
    /// generation runs at a time.
    pub fn generate(
        &self,
        prompt: String,
        params: &GenerateParams,
        on_batch: js_sys::Function,
    ) -> js_sys::Promise {
        let inner = self.inner.clone();
        let params = params.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let _busy = BusyGuard::take(&inner)?;
            let cancel = CancelHandle::new();
            *inner.cancel.borrow_mut() = cancel.clone();
            run_generation(&inner, &prompt, &params, cancel, &on_batch)
                .await
                .map_err(JsValue::from)
        })
    }

    /// Stops the running generation before its next token (the promise of
    /// [`WebModel::generate`] then resolves with `stop: "cancelled"`).
    pub fn stop(&self) {
        self.inner.cancel.borrow().cancel();
    }

    /// Scores `ids` and resolves to `{logits: Float32Array [n × padded vocab],
    /// margins: number[] (top-2 logit margin of each position over the real vocabulary),
    /// padded_vocab}`: used by the browser test to compare the browser's logits with the
    /// native CLI's.
    pub fn score(&self, ids: Vec<u32>) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let _busy = BusyGuard::take(&inner)?;
            run_score(&inner, &ids).await.map_err(JsValue::from)
        })
    }
}

async fn run_generation(
    inner: &Inner,
    prompt: &str,
    params: &GenerateParams,
    cancel: CancelHandle,
    on_batch: &js_sys::Function,
) -> Result<JsValue, JsError> {
    let prompt_ids = inner.tokenizer.encode(prompt);
    let config = inner.model.config();
    let max_tokens = params.max_tokens as usize;
    let mut sopts =
        SessionOptions::for_ids(config, Method::Flash, &prompt_ids, max_tokens).map_err(js_err)?;
    sopts.tokens_per_submit = params.tokens_per_submit.clamp(1, 1024) as usize;
    if !(params.seed.is_finite() && params.seed >= 0.0 && params.seed <= u64::MAX as f64) {
        return Err(JsError::new(&format!(
            "the seed must be a whole number >= 0, got {}",
            params.seed
        )));
    }
    let mut session = Session::new(&inner.model, sopts).map_err(js_err)?;
    let sampling = SamplingParams {
        temperature: params.temperature,
        top_k: params.top_k as usize,
        top_p: params.top_p,
        seed: params.seed as u64,
    };
    // The browser samples on the GPU (its waits are async, so per-token CPU sampling
    // would gain nothing).
    let opts = GenerateOptions {
        cancel,
        ..GenerateOptions::new(max_tokens, sampling)
    };
    let mut generation = session
        .start_generation(&prompt_ids, opts)
        .map_err(js_err)?;
    while let Some(ids) = generation.next_batch().await.map_err(js_err)? {
        let text = inner.tokenizer.decode(&ids);
        let array = js_sys::Uint32Array::from(ids.as_slice());
        // An exception in the page's callback ends the run with that exception.
        on_batch
            .call2(&JsValue::NULL, &array, &JsValue::from_str(&text))
            .map_err(|e| JsError::new(&format!("on_batch threw: {e:?}")))?;
    }
    let stats = generation.stats();
    let stop = match stats.stop {
        StopReason::MaxTokens => "max_tokens".to_string(),
        StopReason::StopToken(id) => format!("stop_token {id}"),
        StopReason::SequenceFull => "sequence_full".to_string(),
        StopReason::Cancelled => "cancelled".to_string(),
    };
    let value = serde_json::json!({
        "prompt_ids": prompt_ids,
        "tokens": stats.tokens,
        "stop": stop,
        "prompt_seconds": stats.prompt_seconds,
        "generate_seconds": stats.generate_seconds,
        "tokens_per_second": stats.tokens_per_second(),
        "dispatches": stats.dispatches,
        "submits": stats.submits,
    });
    js_sys::JSON::parse(&value.to_string())
        .map_err(|e| JsError::new(&format!("statistics as JSON: {e:?}")))
}

async fn run_score(inner: &Inner, ids: &[u32]) -> Result<JsValue, JsError> {
    let config = inner.model.config();
    if ids.is_empty() {
        return Err(JsError::new("the sequence to score is empty"));
    }
    let (vocab, vp) = (config.vocab_size, config.padded_vocab());
    // One row of logits on the device (the default logit_rows), read back after every
    // position: n small read-backs, no large ring on the device.
    let sopts = SessionOptions::for_ids(config, Method::Flash, ids, 0).map_err(js_err)?;
    let mut session = Session::new(&inner.model, sopts).map_err(js_err)?;
    let keep = ScoreOptions {
        logits: true,
        hidden: false,
    };
    let score = session.score_async(ids, &keep).await.map_err(js_err)?;
    let logits = score.logits.unwrap_or_default();
    let margins: Vec<f64> = logits
        .chunks_exact(vp)
        .map(|row| top2_margin(&row[..vocab]) as f64)
        .collect();
    let out = js_sys::Object::new();
    let set = |k: &str, v: &JsValue| js_sys::Reflect::set(&out, &JsValue::from_str(k), v);
    let margins: js_sys::Array = margins.into_iter().map(JsValue::from_f64).collect();
    set(
        "logits",
        &js_sys::Float32Array::from(logits.as_slice()).into(),
    )
    .and_then(|_| set("margins", &margins.into()))
    .and_then(|_| set("padded_vocab", &JsValue::from_f64(vp as f64)))
    .map_err(|e| JsError::new(&format!("building the score object: {e:?}")))?;
    Ok(out.into())
}
