//! The hybrid threshold of flash tiles, tuned per device: the smallest tile side U from
//! which the FFT tile beats the direct U x U product. Measured once per adapter (a few
//! seconds), cached in a small JSON file keyed by adapter, driver and backend, and read
//! back on every later run.
//!
//! Cache location: `$FLASHCONV_CACHE_DIR`, else `$XDG_CACHE_HOME/flashconv`, else
//! `$HOME/.cache/flashconv`; the file is `fft_threshold.json`.

use crate::error::{Error, Result};
use crate::gpu::{GpuContext, ParamArena, Step};
use crate::mixer::{BenchKernels, Chain, Method, Mixer};
use crate::Instant;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Tile sides measured, smallest first (measuring stops once the FFT has won twice in a
/// row: the direct tile grows as U^2, the FFT tile as U log U). Sides up to
/// half the gate's lags (8) are never dispatched (the gate adds their pairs).
pub const CANDIDATES: [usize; 6] = [16, 32, 64, 128, 256, 512];
const _: () = assert!(CANDIDATES[0] > crate::mixer::GATE_TILE_MAX);
/// Channels of the measurement (four layers of 128, or one of 512).
const CHANNELS: usize = 512;
/// Version of the measurement: a cached entry of another version is measured again.
const VERSION: u32 = 1;

/// Direct against FFT cost of one tile side.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TileTiming {
    /// Tile side U.
    pub size: usize,
    /// Seconds per tile over all channels, direct product.
    pub direct: f64,
    /// Seconds per tile over all channels, FFT.
    pub fft: f64,
}

/// A tuned threshold and where it came from.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Tuned {
    /// Flash tiles of this side and larger use FFTs.
    pub fft_min_tile: usize,
    /// The measurements behind it.
    pub timings: Vec<TileTiming>,
    /// Measurement version.
    pub version: u32,
}

/// The threshold `timings` call for: the smallest measured side from which the FFT is
/// faster at every larger measured side too; twice the largest side when it never is.
pub fn choose(timings: &[TileTiming]) -> usize {
    let mut best = timings.last().map_or(CANDIDATES[5] * 2, |t| t.size * 2);
    for t in timings.iter().rev() {
        if t.fft < t.direct {
            best = t.size;
        } else {
            break;
        }
    }
    best
}

/// The cache key of a device: adapter name, driver, driver info and backend.
pub fn cache_key(ctx: &GpuContext) -> String {
    let i = &ctx.info;
    format!(
        "{} | {} | {} | {:?}",
        i.name, i.driver, i.driver_info, i.backend
    )
}

/// The cache file's path (see the module docs); None when no directory is known.
pub fn cache_path() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let dir = var("FLASHCONV_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("flashconv")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("flashconv")))?;
    Some(dir.join("fft_threshold.json"))
}

type Cache = BTreeMap<String, Tuned>;

fn read_cache(path: &Path) -> Cache {
    // A missing or unreadable cache is measured again (and rewritten), not an error.
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

fn write_cache(path: &Path, cache: &Cache) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let text = serde_json::to_string_pretty(cache)
        .map_err(|e| Error::input(format!("serializing the threshold cache: {e}")))?;
    // Write then rename, so a concurrent reader never sees half a file.
    let tmp = path.with_extension(format!("json.{}", std::process::id()));
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// The device's cached threshold, if its cache entry exists and is current.
pub fn cached(ctx: &GpuContext) -> Option<Tuned> {
    let path = cache_path()?;
    read_cache(&path)
        .remove(&cache_key(ctx))
        .filter(|t| t.version == VERSION)
}

/// The device's threshold: from the cache, else measured (`on_measure` is told first,
/// with the cache path) and stored. A cache that cannot be written is logged, not
/// fatal: the measured value is still returned.
pub fn fft_min_tile(ctx: &GpuContext, on_measure: impl FnOnce(Option<&Path>)) -> Result<Tuned> {
    if let Some(t) = cached(ctx) {
        return Ok(t);
    }
    let path = cache_path();
    on_measure(path.as_deref());
    let timings = measure(ctx)?;
    let tuned = Tuned {
        fft_min_tile: choose(&timings),
        timings,
        version: VERSION,
    };
    if let Some(path) = path {
        let mut cache = read_cache(&path);
        cache.insert(cache_key(ctx), tuned.clone());
        if let Err(e) = write_cache(&path, &cache) {
            log::warn!("FFT threshold not cached: {e}");
        }
    }
    Ok(tuned)
}

/// Times the direct and the FFT tile of the candidate sides on this device, up to the
/// second consecutive side where the FFT wins.
pub fn measure(ctx: &GpuContext) -> Result<Vec<TileTiming>> {
    let kernels = BenchKernels::new(ctx)?;
    let mut timings: Vec<TileTiming> = Vec::new();
    for size in CANDIDATES {
        timings.push(TileTiming {
            size,
            direct: time_tile(ctx, &kernels, size, usize::MAX)?,
            fft: time_tile(ctx, &kernels, size, size)?,
        });
        let won = |t: &&TileTiming| t.fft < t.direct;
        if timings.len() >= 2 && timings.iter().rev().take(2).all(|t| won(&t)) {
            break;
        }
    }
    Ok(timings)
}

/// Best seconds per tile of side `size` (the tile of step size - 1) over [`CHANNELS`]
/// channels, with FFTs from `fft_min_tile` on.
fn time_tile(
    ctx: &GpuContext,
    kernels: &BenchKernels,
    size: usize,
    fft_min_tile: usize,
) -> Result<f64> {
    let len = 2 * size + 1;
    let filter = crate::mixer::smooth_filter(CHANNELS, len);
    // Whole tiles: the threshold compares the cost of a tile, not how it is spread.
    let tiles = crate::mixer::Tiles {
        fft_min_tile: fft_min_tile.min(len),
        spread: crate::tiling::Spread::OFF,
        spectra_budget: None,
    };
    // Flash only: where lazy's history and filter taps live does not matter.
    let chain = Chain {
        method: Method::Flash,
        filter: &filter,
        channels: CHANNELS,
        len,
        tiles,
        textures: false,
    };
    let (mixer, _keep) = crate::mixer::bench_mixer(ctx, kernels, chain)?;
    let arena = |reps: usize| {
        ParamArena::new(
            ctx,
            kernels.param_layout(),
            reps * mixer.dispatches_per_token(),
        )
    };
    // One tile (which also warms up) sizes the rounds: about 20 ms each, so that the
    // submit and wait do not dominate small sides and large ones stay quick.
    let one = time_reps(ctx, kernels, &mixer, &mut arena(1), size - 1, 1)?;
    let reps = ((0.02 / one) as usize).clamp(1, 256);
    let mut arena = arena(reps);
    let mut best = f64::MAX;
    for _ in 0..3 {
        let secs = time_reps(ctx, kernels, &mixer, &mut arena, size - 1, reps)?;
        best = best.min(secs / reps as f64);
    }
    Ok(best)
}

fn time_reps(
    ctx: &GpuContext,
    kernels: &BenchKernels,
    mixer: &Mixer,
    arena: &mut ParamArena,
    t: usize,
    reps: usize,
) -> Result<f64> {
    let mut step = Step::new(ctx, arena);
    for _ in 0..reps {
        mixer.record_tiles(&mut step, &kernels.mixer, t)?;
    }
    let commands = step.finish();
    ctx.wait()?;
    let start = Instant::now();
    ctx.queue.submit([commands]);
    ctx.wait()?;
    Ok(start.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(size: usize, direct: f64, fft: f64) -> TileTiming {
        TileTiming { size, direct, fft }
    }

    #[test]
    fn chooses_the_start_of_the_fft_winning_run() {
        let t = [
            timing(16, 1.0, 2.0),
            timing(32, 2.0, 1.0), // a lone win below a loss does not count
            timing(64, 3.0, 4.0),
            timing(128, 5.0, 4.0),
            timing(256, 9.0, 5.0),
        ];
        assert_eq!(choose(&t), 128);
        assert_eq!(choose(&[timing(16, 1.0, 0.5)]), 16);
        // The FFT never wins: direct up to the largest measured side.
        assert_eq!(choose(&[timing(16, 1.0, 2.0), timing(32, 1.0, 2.0)]), 64);
        assert_eq!(choose(&[]), 1024);
    }
}
