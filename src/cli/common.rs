//! What the commands share: the device (with `--max-binding-mib`), progress bars (off
//! with `--quiet`), the model flags and loading, the FFT threshold, JSON output.

use clap::Args;
use flashconv::session::{WeightFormat, WeightStorage};
use flashconv::tokenizer::Tokenizer;
use flashconv::{bundled, Error, GpuContext, GpuModel, Method, Model, Result, SessionOptions};
use std::path::PathBuf;

/// The `--quiet` flag, set once in main.
static QUIET: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// A progress bar on stderr over `total` steps (hidden with `--quiet`; indicatif draws
/// nothing when stderr is not a terminal), ticking so elapsed time moves on long steps.
pub(crate) fn progress_bar(total: u64, template: &str) -> indicatif::ProgressBar {
    if QUIET.get().copied().unwrap_or(false) {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(250));
    bar
}

/// The flash FFT threshold: `arg` when given, else the device's tuned value (measured
/// on first use, a few seconds, and cached). Other methods have no tiles.
pub(crate) fn fft_min_tile(ctx: &GpuContext, arg: Option<usize>, method: Method) -> Result<usize> {
    if let Some(u) = arg {
        if u == 0 {
            return Err(Error::input("--fft-min-tile must be at least 1"));
        }
        return Ok(u);
    }
    if method != Method::Flash {
        return Ok(flashconv::session::DEFAULT_FFT_MIN_TILE);
    }
    let tuned = flashconv::tuning::fft_min_tile(ctx, |path| {
        let place = path.map_or("not cached: no cache directory".into(), |p| {
            format!("cached in {}", p.display())
        });
        eprintln!("tuning the FFT tile threshold for this device (once; {place})");
    })?;
    Ok(tuned.fft_min_tile)
}

/// The `--f16` flag as a weight format.
pub(crate) fn weight_format(f16: bool) -> WeightFormat {
    if f16 {
        WeightFormat::F16
    } else {
        WeightFormat::F32
    }
}

/// The `--max-binding-mib` value, set once in main.
static MAX_BINDING: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();

/// The device every command runs on: the default adapter, with the binding limit
/// lowered when `--max-binding-mib` says so.
pub(crate) fn device() -> Result<GpuContext> {
    match MAX_BINDING.get().copied().flatten() {
        None => GpuContext::new(),
        Some(mib) => GpuContext::new_with_limits(|l| {
            let bytes = (mib << 20).min(l.max_storage_buffer_binding_size);
            l.max_storage_buffer_binding_size = bytes;
        }),
    }
}

#[derive(Args)]
pub(crate) struct ModelArg {
    /// Model directory (config.json + model.safetensors) or .safetensors file with
    /// config.json beside it. Default: the bundled model (hyena-rustbook-char, a small
    /// character-level model trained on the Rust book's prose).
    #[arg(long)]
    pub(crate) model: Option<PathBuf>,
    /// Long-convolution method.
    #[arg(long, value_enum, default_value_t = Method::Flash)]
    pub(crate) method: Method,
    /// Smallest flash tile side done with FFTs (smaller tiles: direct product).
    /// Default: tuned for this device on first use and cached (see `info`).
    #[arg(long)]
    pub(crate) fft_min_tile: Option<usize>,
    /// Store the matrices as f16 (accumulated in f32; needs SHADER_F16). Off by
    /// default so tokens agree across devices.
    #[arg(long)]
    pub(crate) f16: bool,
    /// Where the matrices (and lazy's history and filter taps) live: auto (textures on
    /// CPU adapters such as lavapipe, which fetch texels much faster than buffer
    /// elements; buffers elsewhere), buffer or texture. The logits are the same.
    #[arg(long, value_enum, default_value_t = WeightStorage::Auto)]
    pub(crate) weight_storage: WeightStorage,
    /// Consume the prompt (score: the input) token by token instead of as one batched
    /// forward pass with an FFT long convolution (the prefill; flash and none).
    #[arg(long)]
    pub(crate) no_prefill: bool,
    #[command(flatten)]
    pub(crate) spread: TileArgs,
}

#[derive(Args)]
pub(crate) struct TileArgs {
    /// Spread each flash tile of side >= 256 over this many steps: the step that
    /// completes it computes the next outputs directly, the rest follows in channel
    /// chunks, which flattens the latency spikes at t + 1 = 2^k. 0 or 1: whole tiles.
    #[arg(long, value_name = "K", default_value_t = flashconv::tiling::Spread::DEFAULT.steps)]
    pub(crate) spread_tiles: usize,
    /// Precompute at most this many MiB of flash filter spectra (smallest tile sides
    /// first) and compute the others on the GPU when a tile needs them. Default: all.
    #[arg(long, value_name = "MIB")]
    pub(crate) spectra_budget_mib: Option<u64>,
}

impl TileArgs {
    pub(crate) fn spectra_budget(&self) -> Option<u64> {
        self.spectra_budget_mib.map(|m| m.saturating_mul(1 << 20))
    }

    pub(crate) fn spread(&self) -> flashconv::tiling::Spread {
        flashconv::tiling::Spread::over(
            self.spread_tiles,
            flashconv::tiling::Spread::DEFAULT.min_size,
        )
    }
}

impl ModelArg {
    /// `model` on `ctx` with the weight format and storage these flags ask for.
    pub(crate) fn upload(&self, ctx: &GpuContext, model: Model) -> Result<GpuModel> {
        GpuModel::with_storage(ctx, model, weight_format(self.f16), self.weight_storage)
    }

    /// `opts` with these flags applied (the FFT threshold tuned for `ctx` unless
    /// given).
    pub(crate) fn tuned(
        &self,
        ctx: &GpuContext,
        mut opts: SessionOptions,
    ) -> Result<SessionOptions> {
        opts.fft_min_tile = fft_min_tile(ctx, self.fft_min_tile, opts.method)?;
        opts.prefill = !self.no_prefill;
        opts.spread = self.spread.spread();
        opts.spectra_budget = self.spread.spectra_budget();
        Ok(opts)
    }
}

pub(crate) fn load_model(arg: &Option<PathBuf>) -> Result<(Model, Tokenizer)> {
    match arg {
        Some(path) => {
            let model = Model::load(path)?;
            let paths = flashconv::model::ModelPaths::resolve(path)?;
            let tok = Tokenizer::for_model_dir(&paths.dir)?;
            tok.check_vocab(model.config.vocab_size)?;
            Ok((model, tok))
        }
        None => Ok((bundled::model()?, bundled::tokenizer()?)),
    }
}

pub(crate) fn write_json(
    path: Option<&std::path::Path>,
    value: &impl serde::Serialize,
) -> Result<()> {
    let Some(path) = path else {
        return Ok(());
    };
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::input(format!("serializing the report: {e}")))?;
    std::fs::write(path, text).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Sets what the global flags `--max-binding-mib` and `--quiet` say (once, in main).
pub(crate) fn set_globals(max_binding_mib: Option<u64>, quiet: bool) {
    let _ = MAX_BINDING.set(max_binding_mib);
    let _ = QUIET.set(quiet);
}
