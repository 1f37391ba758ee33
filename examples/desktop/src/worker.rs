//! Generation off the UI thread: the bundled model is uploaded to the app's own wgpu
//! device once, then each generation runs [`drive`] on a worker thread, which streams
//! [`Event`]s to the UI through a channel and wakes the event loop with
//! `request_repaint`.
//!
//! [`drive`] is the only place that talks to flashconv's generation API; when flashconv
//! gains a polled token stream it can be replaced by a function the event loop calls
//! every frame, and [`Generation`] keeps its shape (events in, cancel out).

use flashconv::sampling::SamplingParams;
use flashconv::session::{CancelHandle, GenerateOptions, GenerationStats};
use flashconv::tokenizer::Tokenizer;
use flashconv::{bundled, GpuContext, GpuModel, Method, Session, SessionOptions};
use std::sync::mpsc::{channel, Receiver, Sender};

/// The model on the app's device with its tokenizer.
#[derive(Clone)]
pub struct Loaded {
    /// Weights uploaded and kernels compiled on the app's device.
    pub model: GpuModel,
    /// The bundled model's character tokenizer.
    pub tokenizer: Tokenizer,
}

/// Uploads the bundled model to `ctx`'s device (weights, kernels); run on a worker thread.
pub fn load(ctx: &GpuContext) -> flashconv::Result<Loaded> {
    let model = GpuModel::new(ctx, bundled::model()?)?;
    Ok(Loaded {
        model,
        tokenizer: bundled::tokenizer()?,
    })
}

/// What the user asked for.
#[derive(Clone, Debug)]
pub struct Request {
    /// Prompt text (encoded with the model's tokenizer).
    pub prompt: String,
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// 0 is greedy.
    pub temperature: f32,
    /// Seed of the sampler.
    pub seed: u64,
}

/// What a generation reports to the UI, in order: text pieces, then one `Finished` or
/// one `Failed`.
#[derive(Debug)]
pub enum Event {
    /// The text of one generated token.
    Text(String),
    /// Generation ended normally (token limit, sequence full, or Stop).
    Finished(GenerationStats),
    /// Generation failed; the message is for the user.
    Failed(String),
}

/// A generation running on a worker thread.
pub struct Generation {
    events: Receiver<Event>,
    cancel: CancelHandle,
}

impl Generation {
    /// Starts `request` on a new thread; `wake` is called after every event, with `true`
    /// after the last one (the UI asks egui for a repaint: a prompt one at the end, a
    /// throttled one for text, so that painting does not slow generation down).
    pub fn start(
        loaded: Loaded,
        request: Request,
        wake: impl Fn(bool) + Send + 'static,
    ) -> std::io::Result<Self> {
        let (tx, events) = channel();
        let cancel = CancelHandle::new();
        let worker_cancel = cancel.clone();
        std::thread::Builder::new()
            .name("flashconv-generate".into())
            .spawn(move || {
                let send = |tx: &Sender<Event>, e: Event| {
                    let last = !matches!(e, Event::Text(_));
                    // The UI may be gone (window closed): nothing to report to then.
                    let _ = tx.send(e);
                    wake(last);
                };
                let result = drive(&loaded, &request, worker_cancel, |text| {
                    send(&tx, Event::Text(text))
                });
                match result {
                    Ok(stats) => send(&tx, Event::Finished(stats)),
                    Err(e) => send(&tx, Event::Failed(e.to_string())),
                }
            })?;
        Ok(Generation { events, cancel })
    }

    /// Asks the worker to stop; a `Finished` event (stop reason `Cancelled`) follows.
    pub fn stop(&self) {
        self.cancel.cancel();
    }

    /// The events that arrived since the last call (never blocks).
    pub fn poll(&self) -> Vec<Event> {
        self.events.try_iter().collect()
    }
}

/// Runs one generation to the end on the calling thread, giving the text of each
/// generated token to `on_text` as each batch of tokens arrives.
///
/// Sampling follows the CLI's `--sampler auto`: on a software adapter temperature
/// sampling draws on the CPU (lavapipe's sampling kernels are slow), otherwise on the GPU.
pub fn drive(
    loaded: &Loaded,
    request: &Request,
    cancel: CancelHandle,
    mut on_text: impl FnMut(String),
) -> flashconv::Result<GenerationStats> {
    let prompt = loaded.tokenizer.encode(&request.prompt);
    if prompt.is_empty() {
        return Err(flashconv::Error::input(
            "the prompt is empty: type some text",
        ));
    }
    let config = loaded.model.config();
    let mut options = SessionOptions::for_ids(config, Method::Flash, &prompt, request.max_tokens)?;
    // Tokens drawn on the GPU come back once per submit: smaller batches stream more
    // smoothly at a small cost in throughput.
    options.tokens_per_submit = 8;
    let mut session = Session::new(&loaded.model, options)?;
    let sampling = SamplingParams {
        temperature: request.temperature,
        seed: request.seed,
        ..SamplingParams::default()
    };
    let opts = GenerateOptions {
        cancel,
        ..GenerateOptions::new(request.max_tokens, sampling).with_auto_sampler(loaded.model.ctx())
    };
    // The same token stream the web page awaits batch by batch (Session::start_generation);
    // here a worker thread blocks on each batch. Tokens reach `on_text` one by one, so
    // a cancel from there stops at the next token.
    let mut generation = session.start_generation(&prompt, opts)?;
    let mut deliver = |id| on_text(loaded.tokenizer.token_str(id));
    while flashconv::device::block_on(generation.next_batch_with(&mut deliver))?.is_some() {}
    Ok(generation.stats())
}

impl Drop for Generation {
    /// A generation nobody listens to any more (the window closed) stops.
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

#[cfg(test)]
mod tests {
    //! The driver without a window, on a device flashconv creates (lavapipe in CI).
    use super::*;
    use flashconv::session::StopReason;

    fn loaded() -> Loaded {
        let ctx = GpuContext::new().expect("a wgpu adapter (WGPU_BACKEND=vulkan on lavapipe)");
        load(&ctx).expect("the bundled model loads")
    }

    fn request(prompt: &str, max_tokens: usize) -> Request {
        Request {
            prompt: prompt.into(),
            max_tokens,
            temperature: 0.0,
            seed: 0,
        }
    }

    #[test]
    fn streams_every_token_as_text() {
        let l = loaded();
        let mut text = String::new();
        let stats = drive(&l, &request("The ", 40), CancelHandle::new(), |t| {
            text.push_str(&t)
        })
        .unwrap();
        assert_eq!(stats.tokens.len(), 40);
        assert_eq!(stats.stop, StopReason::MaxTokens);
        assert_eq!(text, l.tokenizer.decode(&stats.tokens));
        // The bundled model writes English-shaped text: mostly letters and spaces.
        let letters = text
            .chars()
            .filter(|c| c.is_ascii_alphabetic() || *c == ' ');
        assert!(letters.count() > 30, "{text:?}");
    }

    #[test]
    fn stop_ends_generation_early() {
        let l = loaded();
        let cancel = CancelHandle::new();
        let mut n = 0;
        let stats = drive(&l, &request("The ", 200), cancel.clone(), |_| {
            n += 1;
            if n == 3 {
                cancel.cancel();
            }
        })
        .unwrap();
        assert_eq!(stats.stop, StopReason::Cancelled);
        assert_eq!(n, 3);
    }

    #[test]
    fn empty_prompt_is_an_error_not_a_panic() {
        let l = loaded();
        let e = drive(&l, &request("", 10), CancelHandle::new(), |_| {}).unwrap_err();
        assert!(e.to_string().contains("prompt is empty"), "{e}");
    }

    #[test]
    fn generation_thread_reports_text_then_finished() {
        let g = Generation::start(loaded(), request("The ", 10), |_| {}).unwrap();
        let mut events = Vec::new();
        while !matches!(events.last(), Some(Event::Finished(_) | Event::Failed(_))) {
            std::thread::sleep(std::time::Duration::from_millis(10));
            events.extend(g.poll());
        }
        assert_eq!(events.len(), 11, "{events:?}");
        assert!(events[..10].iter().all(|e| matches!(e, Event::Text(_))));
    }
}
