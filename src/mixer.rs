//! The long-convolution part of the Hyena mixer on the GPU, in three exact methods:
//!
//! - `flash`: the relaxed tiling of [`crate::tiling`]; after each token has gone through
//!   every layer, one tile covering all layers' channels runs as one dispatch.
//! - `lazy`: the direct causal sum over the whole history at every step.
//! - `eager`: each new input is pushed into every future accumulator at once.
//!
//! plus `none` (the diagonal term only: the cost of everything but the mixer).
//! The histories are arenas over all layers (channel `g = layer * D + c` owns positions
//! `g * L .. g * L + L`), so a kernel touching every layer binds one buffer.

use crate::error::{Error, Result};
use crate::fft::{Direction, FftPlan, FftPlanner, FFT_LIB_WGSL, MAX_WG_FFT};
use crate::gpu::{dispatch, Access, GpuContext, Kernel, ParamArena};
use crate::tiling;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

/// WGSL source of the mixer kernels (compiled after [`MIXER_PARAMS_WGSL`]).
pub const MIXER_WGSL: &str = include_str!("../shaders/mixer.wgsl");
/// The parameter block shared by the mixer kernels.
pub const MIXER_PARAMS_WGSL: &str = include_str!("../shaders/mixer_params.wgsl");
/// WGSL source of the four-channel lazy kernel (used when D is a multiple of 4;
/// compiled after [`MIXER_PARAMS_WGSL`]).
pub const MIXER_VEC4_WGSL: &str = include_str!("../shaders/mixer_vec4.wgsl");
/// WGSL source of the FFT tile kernels (compiled after [`FFT_LIB_WGSL`]).
pub const TILE_WGSL: &str = include_str!("../shaders/tile.wgsl");

/// The full source of the mixer kernels: parameter block, then kernels.
pub fn mixer_source() -> String {
    format!("{MIXER_PARAMS_WGSL}\n{MIXER_WGSL}")
}

/// The full source of the four-channel lazy kernel: parameter block, then kernel.
pub fn mixer_vec4_source() -> String {
    format!("{MIXER_PARAMS_WGSL}\n{MIXER_VEC4_WGSL}")
}

/// The full source of the tile kernels: the FFT library, then the tiles.
pub fn tile_source() -> String {
    format!("{FFT_LIB_WGSL}\n{TILE_WGSL}")
}

/// Default smallest tile side done with FFTs (smaller tiles use the direct product).
pub const DEFAULT_FFT_MIN_TILE: usize = 64;

/// How the long convolution is evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// Relaxed tiling (Flash Inference), O(L log^2 L).
    Flash,
    /// Direct sum over the history at each step, O(L^2).
    Lazy,
    /// Push each input into all future accumulators, O(L^2).
    Eager,
    /// Diagonal term only (not the model: measures the non-mixer cost).
    None,
}

impl Method {
    /// All methods, in the order benchmarks report them.
    pub const ALL: [Method; 4] = [Method::Flash, Method::Lazy, Method::Eager, Method::None];

    /// Lower-case name as used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Method::Flash => "flash",
            Method::Lazy => "lazy",
            Method::Eager => "eager",
            Method::None => "none",
        }
    }

    /// Whether this method computes the model exactly (`none` does not).
    pub fn is_exact(self) -> bool {
        self != Method::None
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Method::ALL
            .into_iter()
            .find(|m| m.name() == s.trim())
            .ok_or_else(|| {
                Error::input(format!(
                    "unknown method '{s}': use flash, lazy, eager or none"
                ))
            })
    }
}

/// The compiled mixer kernels (compiled once per model, shared by its sessions).
#[derive(Debug)]
pub struct MixerKernels {
    gate: Kernel,
    lazy: Kernel,
    lazy4: Kernel,
    eager: Kernel,
    tile_direct: Kernel,
    bench_step: Kernel,
    tile_fft: Kernel,
    tile_gather: Kernel,
    tile_pointwise: Kernel,
    tile_scatter: Kernel,
    planner: Mutex<FftPlanner>,
}

const TILE_ACCESS: [Access; 5] = [
    Access::Read,
    Access::Read,
    Access::Read,
    Access::ReadWrite,
    Access::ReadWrite,
];

const MIXER_ACCESS: [Access; 6] = [
    Access::Read,
    Access::Read,
    Access::Read,
    Access::ReadWrite,
    Access::ReadWrite,
    Access::ReadWrite,
];

impl MixerKernels {
    /// The parameter layout (identical for every kernel), for a [`ParamArena`].
    pub fn param_layout(&self) -> &wgpu::BindGroupLayout {
        &self.gate.param_layout
    }

    /// Compiles the kernels of `shaders/mixer.wgsl`.
    pub fn new(ctx: &GpuContext) -> Result<Self> {
        let mixer = mixer_source();
        let k = |entry| Kernel::new(ctx, &mixer, entry, &MIXER_ACCESS);
        let tiles = tile_source();
        Ok(MixerKernels {
            gate: k("gate")?,
            lazy: k("lazy")?,
            lazy4: Kernel::new(ctx, &mixer_vec4_source(), "lazy4", &MIXER_ACCESS)?,
            eager: k("eager")?,
            tile_direct: k("tile_direct")?,
            bench_step: k("bench_step")?,
            tile_fft: Kernel::new(ctx, &tiles, "tile_fft", &TILE_ACCESS)?,
            tile_gather: Kernel::new(ctx, &tiles, "tile_gather", &TILE_ACCESS)?,
            tile_pointwise: Kernel::new(ctx, &tiles, "tile_pointwise", &TILE_ACCESS)?,
            tile_scatter: Kernel::new(ctx, &tiles, "tile_scatter", &TILE_ACCESS)?,
            planner: Mutex::new(FftPlanner::new(ctx)?),
        })
    }
}

/// Per-session mixer state: v history, z accumulators, filters, and bind groups.
#[derive(Debug)]
pub struct Mixer {
    ctx: GpuContext,
    method: Method,
    layers: usize,
    d: usize,
    len: usize,
    gate: Vec<wgpu::BindGroup>,
    lazy: Vec<wgpu::BindGroup>,
    eager: wgpu::BindGroup,
    tile_direct: wgpu::BindGroup,
    bench_step: wgpu::BindGroup,
    fft_min_tile: usize,
    fft_levels: BTreeMap<usize, FftLevel>,
    /// v history arena, time-major [L][M * D].
    pub v_hist: wgpu::Buffer,
    /// z accumulator arena, time-major [L][M * D] (flash and eager).
    pub z_acc: wgpu::Buffer,
    /// Filter arena, time-major [L][M * D].
    pub filters: wgpu::Buffer,
}

/// What a [`Mixer`] is built from: filters, per-layer parameters, and the buffers it
/// reads from and writes to that the session owns.
pub struct MixerIo<'a> {
    /// Each layer's filter `[D][len]` (f32).
    pub filters: &'a [Vec<f32>],
    /// Each layer's `[short_w 9D | short_b 3D | diag D]`, diag = k[0] + filter bias.
    pub params: &'a [wgpu::Buffer],
    /// Ring of the last three in_proj outputs of each layer, [M][3][3D].
    pub u_ring: &'a [wgpu::Buffer],
    /// x0 gate of the current layer [D].
    pub x0: &'a wgpu::Buffer,
    /// Mixer output y = z * x0 [D].
    pub y: &'a wgpu::Buffer,
    /// Flash tiles of this side and larger use FFTs; smaller ones the direct product.
    pub fft_min_tile: usize,
}

/// One FFT tile level (side U): filter spectra of every channel and bind groups.
#[derive(Debug)]
struct FftLevel {
    bind: wgpu::BindGroup,
    /// For N = 2U above the one-workgroup size: the plan, and its work/scratch buffers.
    large: Option<(FftPlan, wgpu::Buffer, wgpu::Buffer)>,
}

/// Builds the FFT tile levels of a flash session: the sides U >= `fft_min_tile` that
/// occur in a sequence of length `len`, with their spectra and bind groups.
#[allow(clippy::too_many_arguments)]
fn fft_levels(
    ctx: &GpuContext,
    kernels: &MixerKernels,
    method: Method,
    (layers, d, len): (usize, usize, usize),
    io: &MixerIo<'_>,
    v_hist: &wgpu::Buffer,
    z_acc: &wgpu::Buffer,
    unused: &wgpu::Buffer,
) -> Result<BTreeMap<usize, FftLevel>> {
    let mut levels = BTreeMap::new();
    if method != Method::Flash {
        return Ok(levels);
    }
    let sizes: Vec<usize> = tiling::schedule_sizes(len)
        .into_iter()
        .filter(|&u| u >= io.fft_min_tile.max(2))
        .collect();
    let Some(&largest) = sizes.last() else {
        return Ok(levels);
    };
    let mut planner = kernels
        .planner
        .lock()
        .map_err(|_| Error::gpu("FFT planner lock poisoned"))?;
    // The largest plan's twiddle table covers every smaller size.
    let twiddles = planner.plan(2 * largest)?.twiddles().clone();
    let pairs = (layers * d).div_ceil(2);
    for u in sizes {
        let spectra = ctx.buffer_init("spectra", &level_spectra(io.filters, d, len, u))?;
        let large = if 2 * u > MAX_WG_FFT {
            let bytes = pairs as u64 * 2 * u as u64 * 8;
            let work = ctx.buffer_zeroed("tile work", bytes)?;
            let scratch = ctx.buffer_zeroed("tile scratch", bytes)?;
            Some((planner.plan(2 * u)?, work, scratch))
        } else {
            None
        };
        let work = large.as_ref().map_or(unused, |l| &l.1);
        let bind = kernels
            .tile_fft
            .bind(ctx, &[&twiddles, v_hist, &spectra, z_acc, work]);
        levels.insert(u, FftLevel { bind, large });
    }
    Ok(levels)
}

/// Filter spectra of level `u` for every channel (channel-major filters `[C][len]`):
/// FFT of k[0 .. 2U) in f64, scaled by 1 / 2U, frequencies 0 .. U with slot 0 packing
/// (K[0], K[U]) (both real), as f32 pairs.
fn level_spectra(filters: &[Vec<f32>], d: usize, len: usize, u: usize) -> Vec<[f32; 2]> {
    use rustfft::num_complex::Complex;
    let n = 2 * u;
    let fft = rustfft::FftPlanner::<f64>::new().plan_fft_forward(n);
    let mut out = Vec::with_capacity(filters.len() * d * u);
    let mut buf = vec![Complex::new(0.0, 0.0); n];
    for f in filters {
        for c in 0..d {
            let k = &f[c * len..(c + 1) * len];
            for (i, slot) in buf.iter_mut().enumerate() {
                *slot = Complex::new(k.get(i).map_or(0.0, |&x| x as f64), 0.0);
            }
            fft.process(&mut buf);
            let scale = 1.0 / n as f64;
            out.push([(buf[0].re * scale) as f32, (buf[u].re * scale) as f32]);
            for b in &buf[1..u] {
                out.push([(b.re * scale) as f32, (b.im * scale) as f32]);
            }
        }
    }
    out
}

impl Mixer {
    /// Allocates the mixer state of a session of length `len` over layers of `d` channels.
    pub fn new(
        ctx: &GpuContext,
        kernels: &MixerKernels,
        method: Method,
        (d, len): (usize, usize),
        io: MixerIo<'_>,
    ) -> Result<Self> {
        let (filters, params) = (io.filters, io.params);
        let layers = filters.len();
        let total = layers as u64 * d as u64 * len as u64;
        if total >= u32::MAX as u64 / 2 {
            return Err(Error::Limit(format!(
                "history of {layers} layers x {d} channels x {len} positions exceeds 32-bit indexing"
            )));
        }
        // Time-major: k[t * C + layer * D + c].
        let mut flat = Vec::with_capacity(total as usize);
        for t in 0..len {
            for f in filters {
                flat.extend((0..d).map(|c| f[c * len + t]));
            }
        }
        let k = ctx.buffer_init("filters", &flat)?;
        let v_hist = ctx.buffer_zeroed("v_hist", total * 4)?;
        let needs_acc = matches!(method, Method::Flash | Method::Eager);
        let z_acc = ctx.buffer_zeroed("z_acc", if needs_acc { total * 4 } else { 16 })?;
        let dummies: Vec<wgpu::Buffer> = (0..4)
            .map(|i| ctx.buffer_zeroed(&format!("unused{i}"), 16))
            .collect::<Result<_>>()?;
        let bind = |kern: &Kernel, bufs: [&wgpu::Buffer; 6]| kern.bind(ctx, &bufs);
        let [d0, d1, d2, d3] = [&dummies[0], &dummies[1], &dummies[2], &dummies[3]];
        let gate = (0..layers)
            .map(|l| {
                bind(
                    &kernels.gate,
                    [&io.u_ring[l], &params[l], &z_acc, &v_hist, io.x0, io.y],
                )
            })
            .collect();
        let lazy = (0..layers)
            .map(|l| bind(&kernels.lazy, [&v_hist, &k, &params[l], io.x0, io.y, d3]))
            .collect();
        // The eager push reads and writes arenas over all layers: one bind group serves all.
        let eager = bind(&kernels.eager, [&v_hist, &k, d0, &z_acc, d1, d2]);
        let tile_direct = bind(&kernels.tile_direct, [&v_hist, &k, d0, &z_acc, d1, d2]);
        let bench_step = bind(
            &kernels.bench_step,
            [d0, &params[0], &z_acc, &v_hist, io.y, d2],
        );
        let fft_levels = fft_levels(
            ctx,
            kernels,
            method,
            (layers, d, len),
            &io,
            &v_hist,
            &z_acc,
            d3,
        )?;
        Ok(Mixer {
            ctx: ctx.clone(),
            method,
            layers,
            d,
            len,
            gate,
            lazy,
            eager,
            tile_direct,
            bench_step,
            fft_min_tile: io.fft_min_tile,
            fft_levels,
            v_hist,
            z_acc,
            filters: k,
        })
    }

    /// The parameter block shared by the mixer kernels (see mixer_params.wgsl); `mode`
    /// tells the gate (and bench_step) where z_t comes from.
    fn words(&self, layer: usize, t: usize) -> [u32; 11] {
        let chans = (self.layers * self.d) as u32;
        let (d, len, t32, slot) = (self.d as u32, self.len as u32, t as u32, (t % 3) as u32);
        let mode = match self.method {
            Method::Flash | Method::Eager => 0,
            Method::None => 1,
            Method::Lazy => 2,
        };
        [d, len, t32, layer as u32, mode, slot, 0, 0, 0, 0, chans]
    }

    /// Records layer `layer`'s mixer work at position `t` (after in_proj wrote u_t).
    pub fn record_layer(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        arena: &mut ParamArena,
        k: &MixerKernels,
        layer: usize,
        t: usize,
    ) -> Result<()> {
        let w = self.words(layer, t);
        let d = self.d as u32;
        dispatch(pass, arena, &k.gate, &self.gate[layer], &w, d.div_ceil(256))?;
        match self.method {
            Method::Lazy => self.record_lazy(pass, arena, k, layer, t)?,
            Method::Eager => self.record_eager(pass, arena, k, layer, t)?,
            Method::Flash | Method::None => {}
        }
        Ok(())
    }

    /// The direct sum of `layer` at step t (four channels per thread when D allows).
    fn record_lazy(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        arena: &mut ParamArena,
        k: &MixerKernels,
        layer: usize,
        t: usize,
    ) -> Result<()> {
        let w = self.words(layer, t);
        let d = self.d as u32;
        if d.is_multiple_of(4) {
            dispatch(
                pass,
                arena,
                &k.lazy4,
                &self.lazy[layer],
                &w,
                (d / 4).div_ceil(64),
            )
        } else {
            dispatch(pass, arena, &k.lazy, &self.lazy[layer], &w, d.div_ceil(64))
        }
    }

    /// Pushes v_t of `layer` into all its future accumulators.
    fn record_eager(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        arena: &mut ParamArena,
        k: &MixerKernels,
        layer: usize,
        t: usize,
    ) -> Result<()> {
        let future = (self.len - 1 - t) as u32;
        if future == 0 {
            return Ok(());
        }
        let mut w = self.words(layer, t);
        w[9] = future;
        let groups = (future as u64 * self.d as u64).div_ceil(256);
        dispatch(pass, arena, &k.eager, &self.eager, &w, groups as u32)
    }

    /// Records the flash tile of step `t` over every layer's channels (no-op for the
    /// other methods and at the last position).
    pub fn record_tiles(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        arena: &mut ParamArena,
        k: &MixerKernels,
        t: usize,
    ) -> Result<()> {
        if self.method != Method::Flash {
            return Ok(());
        }
        let Some(tile) = tiling::tile_at(t, self.len) else {
            return Ok(());
        };
        let channels = (self.layers * self.d) as u32;
        let mut w = self.words(0, t);
        w[6] = tile.size as u32;
        w[7] = tile.in_start as u32;
        w[8] = tile.out_start as u32;
        w[9] = tile.outputs() as u32;
        if let Some(level) = self.fft_levels.get(&tile.size) {
            return self.record_fft_tile(pass, arena, k, &tile, level);
        }
        let threads = channels as u64 * tile.outputs() as u64;
        dispatch(
            pass,
            arena,
            &k.tile_direct,
            &self.tile_direct,
            &w,
            threads.div_ceil(256) as u32,
        )
    }

    /// One tile through FFTs: fused in one workgroup per channel pair when 2U fits,
    /// else gather, multi-pass FFT, pointwise, inverse FFT, scatter.
    fn record_fft_tile(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        arena: &mut ParamArena,
        k: &MixerKernels,
        tile: &tiling::Tile,
        level: &FftLevel,
    ) -> Result<()> {
        let chans = (self.layers * self.d) as u32;
        let pairs = chans.div_ceil(2);
        let u = tile.size as u32;
        let w = [
            chans,
            u,
            tile.in_start as u32,
            tile.out_start as u32,
            tile.outputs() as u32,
            (2 * u).trailing_zeros(),
            pairs,
            // Channel pairs per workgroup for the in-workgroup tiles: fill fft_sh.
            (MAX_WG_FFT as u32 / (2 * u).min(MAX_WG_FFT as u32)).trailing_zeros(),
        ];
        let Some((plan, work, scratch)) = &level.large else {
            let groups = pairs.div_ceil(1 << w[7]);
            return dispatch(pass, arena, &k.tile_fft, &level.bind, &w, groups);
        };
        let ctx_groups = |threads: u64| threads.div_ceil(256) as u32;
        let n = 2 * u as u64;
        let ctx = self.ctx.clone();
        dispatch(
            pass,
            arena,
            &k.tile_gather,
            &level.bind,
            &w,
            ctx_groups(pairs as u64 * n),
        )?;
        plan.encode(&ctx, pass, arena, work, scratch, pairs, Direction::Forward)?;
        let groups = ctx_groups(pairs as u64 * (u as u64 + 1));
        dispatch(pass, arena, &k.tile_pointwise, &level.bind, &w, groups)?;
        plan.encode(&ctx, pass, arena, work, scratch, pairs, Direction::Inverse)?;
        let groups = ctx_groups(pairs as u64 * tile.outputs() as u64);
        dispatch(pass, arena, &k.tile_scatter, &level.bind, &w, groups)
    }

    /// Smallest tile side done with FFTs in this session.
    pub fn fft_min_tile(&self) -> usize {
        self.fft_min_tile
    }

    /// Mixer-only benchmark step `t` over all channels (a mixer built with one "layer"
    /// of M * D channels): v_t = tanh(z_{t-1}) + noise, z_t by this mixer's method (into
    /// the `y` buffer given at creation), then the flash tile.
    pub fn record_bench_step(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        arena: &mut ParamArena,
        k: &MixerKernels,
        t: usize,
    ) -> Result<()> {
        let w = self.words(0, t);
        let d = self.d as u32;
        dispatch(
            pass,
            arena,
            &k.bench_step,
            &self.bench_step,
            &w,
            d.div_ceil(256),
        )?;
        match self.method {
            Method::Lazy => self.record_lazy(pass, arena, k, 0, t)?,
            Method::Eager => self.record_eager(pass, arena, k, 0, t)?,
            Method::Flash => self.record_tiles(pass, arena, k, t)?,
            Method::None => {}
        }
        Ok(())
    }

    /// Upper bound on dispatches per token (for sizing the parameter arena).
    pub fn dispatches_per_token(&self) -> usize {
        2 * self.layers + 8
    }
}
