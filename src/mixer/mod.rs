//! The long-convolution part of the Hyena mixer on the GPU, in three exact methods:
//!
//! - `flash` (`flash.rs`): the relaxed tiling of [`crate::tiling`]; after each token
//!   has gone through every layer, one tile covering all layers' channels runs as one
//!   dispatch (direct, or by FFT: the levels, spectra and FFT jobs live there too).
//! - `lazy` (`lazy.rs`): the direct causal sum over the whole history at every step.
//! - `eager` (`eager.rs`): each new input is pushed into every future accumulator at
//!   once.
//!
//! plus `none` (the diagonal term only: the cost of everything but the mixer).
//! Each method owns its state: flash's and eager's over a channel group
//! (`GroupWork`), lazy's per slice (`LazySum`); the gate (`GateKind`) is every
//! method's. The histories are time-major arenas over all layers (position t, channel
//! `g = layer * D + c` at `t * C + g`, C the channels of the arena's group), so a kernel
//! touching every layer binds one buffer. `plan.rs` sizes and splits them (pure, no GPU
//! work), `kernels.rs` holds the shader sources and the shared kernels, and
//! `bench_step.rs` the mixer-only benchmark's steps (`BenchKernels`, from their own
//! shader, `mixer_bench.wgsl`), apart from the session's mixer.

use crate::error::{Error, Result};
use crate::gpu::{param_block, DeferredKernel, GpuContext, Step};
use crate::tiling;
use build::{Arenas, Build, Unused};
use flash::FlashGroup;
use lazy::LazySum;
use plan::layer_slices;
use std::fmt;
use std::str::FromStr;

mod bench_step;
mod build;
mod eager;
mod flash;
mod kernels;
mod lazy;
mod plan;

pub(crate) use bench_step::{bench_mixer, bench_source, smooth_filter, BenchKernels, Chain};
pub use flash::PrefillConv;
#[cfg(test)]
pub(crate) use flash::TileParams;
pub use kernels::{mixer_source, mixer_vec4_source, tile_source, MixerKernels, GATE_LIB_WGSL};
pub use plan::{
    binding_limit, group_buffer_bytes, lazy_texture_bytes, plan_mixer_groups, MixerMemory,
};
#[cfg(any(test, feature = "internals"))]
pub use plan::ChannelGroups;

param_block! {
    /// The parameter block of the mixer kernels (`Params` in `mixer_params.wgsl`).
    pub(crate) struct MixerParams as "Params" {
        /// Channels per layer (D).
        d: u32,
        /// Session length L.
        len: u32,
        /// Current position.
        t: u32,
        /// Layer index (gate, lazy, eager).
        layer: u32,
        /// Gate: 0 = z from z_acc (flash, eager), 1 = diagonal only, 2 = lazy.
        mode: u32,
        /// Unused.
        spare: u32,
        /// Direct tile: its side U.
        size: u32,
        /// Direct tile: first input position.
        in_start: u32,
        /// Direct tile: first output position.
        out_start: u32,
        /// Direct tile: number of outputs; eager: number of future positions.
        outputs: u32,
        /// Channels of the channel group (the arenas' row stride).
        chans: u32,
        /// Gate, lazy, eager: arena column of the slice's first channel.
        col0: u32,
        /// Gate, lazy, eager: the slice's first channel within the layer.
        c0: u32,
        /// Gate, lazy, eager: channels in the slice.
        count: u32,
        pad: [u32; 2],
    }
}

/// Default smallest tile side done with FFTs (smaller tiles use the direct product).
pub const DEFAULT_FFT_MIN_TILE: usize = 64;

/// How a flash mixer runs its tiles: by FFT from which side on, how large tiles are
/// spread over the steps after them, and how many filter spectra are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tiles {
    /// Tiles of this side and larger use FFTs, smaller ones the direct product.
    pub fft_min_tile: usize,
    /// See [`tiling::Spread`].
    pub spread: tiling::Spread,
    /// Bytes of filter spectra to precompute (smallest tile sides first); the other
    /// sides' spectra are computed on the GPU whenever a tile needs them. None: all.
    pub spectra_budget: Option<u64>,
}

impl Tiles {
    /// FFTs from `fft_min_tile` on, the default spread, every spectrum precomputed.
    pub fn new(fft_min_tile: usize) -> Self {
        Tiles {
            fft_min_tile,
            spread: tiling::Spread::DEFAULT,
            spectra_budget: None,
        }
    }
}

/// How the long convolution is evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
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

/// One channel group: its arenas (time-major, `width` columns) and what its method
/// keeps over all the layers.
#[derive(Debug)]
struct Group {
    /// First channel (layer * D + c) of the group.
    start: usize,
    /// Channels in the group: the arenas' row stride.
    width: usize,
    v_hist: wgpu::Buffer,
    z_acc: wgpu::Buffer,
    /// The method's own state over the group.
    work: GroupWork,
}

/// A method's state over a whole channel group.
#[derive(Debug)]
enum GroupWork {
    /// Lazy (whose state is per slice) and none.
    Nothing,
    /// Eager: the push's bindings (`eager.rs`).
    Eager(wgpu::BindGroup),
    /// Flash: the tiles' bindings and FFT levels (`flash.rs`).
    Flash(FlashGroup),
}

/// Which variant of the per-slice kernels (the gate, and the benchmark's step, which
/// binds the same) a slice runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GateKind {
    /// One channel per thread.
    Scalar,
    /// Four channels per thread: the slice's quads line up (width D, its first channel,
    /// its channel count and its column, and its group's width are multiples of 4).
    Quads,
    /// `Quads`, also storing v_t in lazy's v texture (lazy on CPU adapters).
    QuadsTexture,
}

impl GateKind {
    /// This variant among `[scalar, quads, quads with the texture]`.
    fn pick<T>(self, [scalar, quads, texture]: [T; 3]) -> T {
        match self {
            GateKind::Scalar => scalar,
            GateKind::Quads => quads,
            GateKind::QuadsTexture => texture,
        }
    }

    /// Workgroups over `count` channels.
    fn workgroups(self, count: usize) -> u32 {
        let count = count as u32;
        match self {
            GateKind::Scalar => count.div_ceil(256),
            GateKind::Quads | GateKind::QuadsTexture => (count / 4).div_ceil(64),
        }
    }
}

/// The channels of one layer that lie in one group, with the per-layer bind groups.
#[derive(Debug)]
struct Slice {
    group: usize,
    /// First channel of the slice within its layer.
    c0: usize,
    /// Channels in the slice.
    count: usize,
    /// Column of the slice's first channel within its group.
    col0: usize,
    /// The variant of its gate.
    kind: GateKind,
    /// The bindings of its gate kernel.
    gate: wgpu::BindGroup,
    /// Its lazy sum (lazy only; the other methods keep nothing per slice).
    lazy: Option<LazySum>,
}

impl Slice {
    /// The slice's gate kernel.
    fn gate_kernel<'k>(&self, k: &'k MixerKernels) -> &'k DeferredKernel {
        self.kind.pick([&k.gate, &k.gate4, &k.gate_tex])
    }
}

/// Per-session mixer state: v history, z accumulators, filters, and bind groups, split
/// by channel into groups that fit the device's binding limit.
#[derive(Debug)]
pub struct Mixer {
    ctx: GpuContext,
    method: Method,
    d: usize,
    len: usize,
    spread: tiling::Spread,
    groups: Vec<Group>,
    /// Per layer, its slices (one per group it overlaps).
    slices: Vec<Vec<Slice>>,
    memory: MixerMemory,
}

/// What a [`Mixer`] is built from: filters, per-layer parameters, and the buffers it
/// reads from and writes to that the session owns.
pub struct MixerIo<'a> {
    /// Each layer's filter `[D][len]` (f32).
    pub filters: &'a [Vec<f32>],
    /// Each layer's `[short_w 9D | short_b 3D | diag D | ...]`, diag = `k[0]` + filter
    /// bias (the session appends out_proj's bias for its fused kernel).
    pub params: &'a [wgpu::Buffer],
    /// Ring of the last three in_proj outputs of each layer, `[M][3][3D]`.
    pub u_ring: &'a [wgpu::Buffer],
    /// x0 gate of the current layer `[D]`.
    pub x0: &'a wgpu::Buffer,
    /// Mixer output y = z * x0 `[D]`.
    pub y: &'a wgpu::Buffer,
    /// Flash tiles of this side and larger use FFTs; smaller ones the direct product.
    pub fft_min_tile: usize,
    /// How large flash tiles are spread over the steps after them (applied from
    /// `fft_min_tile` on at the least).
    pub spread: tiling::Spread,
    /// Bytes of filter spectra to precompute (smallest tile sides first); the other
    /// sides' spectra are computed on the GPU whenever a tile needs them. None: all.
    pub spectra_budget: Option<u64>,
    /// Keep lazy's v history and filter taps in textures ([`LinearTexture`](crate::gpu::LinearTexture)) where
    /// they fit, as the session does when its model's weights are in textures (CPU
    /// adapters).
    pub textures: bool,
}

impl MixerIo<'_> {
    /// The tile options among these.
    pub fn tiles(&self) -> Tiles {
        Tiles {
            fft_min_tile: self.fft_min_tile,
            spread: self.spread,
            spectra_budget: self.spectra_budget,
        }
    }
}

/// Who computes a layer's Hyena gate at each position: the short conv, the split into
/// x0, x1 and v, v = x1·v (stored in the v history) and y = z·x0 ([`Mixer::gate`]).
#[derive(Debug)]
pub enum Gate<'a> {
    /// The session's out_proj kernel, in front of its product (`matvec_gate`,
    /// `gate_lib.wgsl`), over these arenas; the mixer records only its history term.
    Fused(FusableGate<'a>),
    /// The mixer's own gate kernel, per slice before its history term, writing y for a
    /// plain out_proj.
    Own,
}

/// The arenas and gate mode a fused gate kernel binds ([`Mixer::fusable_gate`]). The
/// channels of layer l start at column l * D.
#[derive(Debug)]
pub struct FusableGate<'a> {
    /// The v history arena (the kernel writes v_t).
    pub v_hist: &'a wgpu::Buffer,
    /// The z accumulators (read at t; a placeholder for the diagonal-only method).
    pub z_acc: &'a wgpu::Buffer,
    /// The gate's mode word: 0 = z from z_acc, 1 = diagonal only.
    pub mode: u32,
    /// Columns of the arenas (row stride): M * D.
    pub chans: u32,
}

/// The filter of channel `g` (over all layers) at position `t`.
fn tap(filters: &[Vec<f32>], d: usize, len: usize, g: usize, t: usize) -> f32 {
    filters[g / d][(g % d) * len + t]
}

/// Lags `1 ..= GATE_LAGS` of the long convolution are added by the gate itself, for the
/// methods with accumulators (flash, eager): `z_with_lags` in gate_lib.wgsl, whose
/// `GATE_LAGS` must equal this. Their convolution kernels then leave those lags out
/// (`conv_tap`), so flash's tiles of side up to [`GATE_TILE_MAX`] have nothing left to do
/// and are never dispatched: 15 removes the tiles of side 1, 2, 4 and 8, which are 15 of
/// every 16 steps' tiles, for K loads of the history per channel and step in the gate.
pub const GATE_LAGS: usize = 15;

/// The largest tile side whose pairs all have lags the gate adds (`2U - 1 <= GATE_LAGS`).
pub const GATE_TILE_MAX: usize = GATE_LAGS.div_ceil(2);

// A tile of side U holds lags 1 .. 2U - 1: the gate must cover all of those for the
// sides up to GATE_TILE_MAX, which are never dispatched (and at least lag 1).
const _: () = assert!(GATE_LAGS >= 1 && 2 * GATE_TILE_MAX - 1 <= GATE_LAGS);

/// The layout of a layer's mixer parameters, the one definition of it: where each part
/// starts, in units of D,
/// `[short_w 9D | short_b 3D | diag D | k_1 .. k_K (K·D, lag-major) | out_proj b D]`
/// with K = [`GATE_LAGS`]. [`layer_params`] packs it; the shaders read it through the
/// `MP_*` constants [`layout_wgsl`] declares from these.
pub(crate) mod offsets {
    use super::GATE_LAGS;
    /// The short conv's weights `[3D][3]`.
    pub(crate) const SHORT_W: usize = 0;
    /// The short conv's bias `[3D]`.
    pub(crate) const SHORT_B: usize = 9;
    /// The diagonal term k[0] + filter bias `[D]`.
    pub(crate) const DIAG: usize = 12;
    /// The gate's taps k_1 .. k_K, `[K][D]`.
    pub(crate) const TAPS: usize = 13;
    /// out_proj's bias `[D]` (read by the fused gate + out_proj kernel).
    pub(crate) const OUT_BIAS: usize = TAPS + GATE_LAGS;
    /// The whole block.
    pub(crate) const LEN: usize = OUT_BIAS + 1;
}

/// The WGSL declarations of the mixer parameters' layout (`offsets`) that the gate
/// functions (`gate_lib.wgsl`) and the mixer kernels read it through, in units of D.
pub(crate) fn layout_wgsl() -> String {
    format!(
        "const MP_SHORT_B: u32 = {}u;\nconst MP_DIAG: u32 = {}u;\nconst MP_TAPS: u32 = {}u;",
        offsets::SHORT_B,
        offsets::DIAG,
        offsets::TAPS
    )
}

/// Length of a layer's mixer parameters for width `d` (their layout: `mixer::offsets`).
pub const fn mixer_params_len(d: usize) -> usize {
    offsets::LEN * d
}

/// Offset of the out_proj bias in a layer's mixer parameters ([`mixer_params_len`]).
pub const fn mixer_params_bias_off(d: usize) -> usize {
    offsets::OUT_BIAS * d
}

/// One layer's mixer parameters in the layout of [`mixer_params_len`], the one place
/// they are packed: the short conv's weights `short.0` (`[3D][3]`) and bias `short.1`
/// (`[3D]`), the diagonal term `k[0]` + `diag_bias` per channel, the gate's taps
/// ([`gate_taps`]) of the channel-major filter `k` (`[D][len]`, f64), and `out_bias`
/// (`[D]`, read by the fused gate + out_proj kernel). Values are computed in f64 and
/// stored as f32.
pub fn layer_params(
    d: usize,
    len: usize,
    k: &[f64],
    short: (&[f32], &[f32]),
    diag_bias: &[f32],
    out_bias: &[f32],
) -> Vec<f32> {
    let diag: Vec<f32> = (0..d)
        .map(|c| (k[c * len] + diag_bias[c] as f64) as f32)
        .collect();
    // k[1 ..= GATE_LAGS], which the gate applies to v_{t-j} (gate_lib.wgsl).
    let taps: Vec<f32> = gate_taps(k, d, len).into_iter().map(|v| v as f32).collect();
    let parts: [(usize, &[f32]); 5] = [
        (offsets::SHORT_W, short.0),
        (offsets::SHORT_B, short.1),
        (offsets::DIAG, &diag),
        (offsets::TAPS, &taps),
        (offsets::OUT_BIAS, out_bias),
    ];
    let mut p: Vec<f32> = Vec::with_capacity(mixer_params_len(d));
    for (at, values) in parts {
        debug_assert_eq!(p.len(), at * d, "mixer parameters out of layout");
        p.extend_from_slice(values);
    }
    debug_assert_eq!(p.len(), mixer_params_len(d));
    p
}

/// The gate's taps `k[1] .. k[GATE_LAGS]` of a channel-major filter `[D][len]` (taps past
/// `len` are 0), lag-major as the mixer parameters hold them: entry `(j - 1) * D + c` is
/// `k[j]` of channel c.
pub fn gate_taps<T: Copy + Default>(filter: &[T], d: usize, len: usize) -> Vec<T> {
    let mut out = vec![T::default(); GATE_LAGS * d];
    for j in 1..=GATE_LAGS.min(len.saturating_sub(1)) {
        for c in 0..d {
            out[(j - 1) * d + c] = filter[c * len + j];
        }
    }
    out
}

/// Tap `lag` of arena column `g` as `method`'s convolution kernels use it (the filter
/// arena, the tiles' spectra, eager's push): flash and eager leave lags up to
/// [`GATE_LAGS`] to the gate (`z_with_lags` in gate_lib.wgsl), which adds them as it adds
/// the diagonal term; lazy sums every lag itself.
fn conv_tap(
    method: Method,
    filters: &[Vec<f32>],
    (d, len): (usize, usize),
    g: usize,
    lag: usize,
) -> f32 {
    if (1..=GATE_LAGS).contains(&lag) && matches!(method, Method::Flash | Method::Eager) {
        return 0.0;
    }
    tap(filters, d, len, g, lag)
}

impl Mixer {
    /// Allocates the mixer state of a session of length `len` over layers of `d`
    /// channels, split into channel groups when a buffer would exceed the device's
    /// binding limit.
    pub fn new(
        ctx: &GpuContext,
        kernels: &MixerKernels,
        method: Method,
        (d, len): (usize, usize),
        io: MixerIo<'_>,
    ) -> Result<Self> {
        let layers = io.filters.len();
        let limit = binding_limit(ctx);
        let plan = plan_mixer_groups(method, (layers, d), len, io.fft_min_tile, limit)?;
        let unused = Unused::new(ctx)?;
        let b = Build {
            ctx,
            kernels,
            method,
            io: &io,
            shape: (d, len),
            unused: &unused,
        };
        let mut groups = Vec::with_capacity(plan.widths.len());
        let mut arenas = Vec::with_capacity(plan.widths.len());
        let mut start = 0;
        for &width in &plan.widths {
            let arena = Arenas::new(&b, (start, width))?;
            groups.push(Group::new(&b, &arena, (start, width))?);
            arenas.push(arena);
            start += width;
        }
        let mut memory = MixerMemory::estimate(method, layers * d, len, &io.tiles());
        memory.history += lazy_texture_bytes(ctx, method, io.textures, (d, len), &plan.widths);
        let slices = (0..layers)
            .map(|l| {
                let parts = layer_slices(l, d, &plan.widths).into_iter();
                parts
                    .map(|part| Slice::new(&b, &arenas[part.0], plan.widths[part.0], l, part))
                    .collect()
            })
            .collect();
        let mixer = Mixer {
            ctx: ctx.clone(),
            method,
            d,
            len,
            spread: tiling::Spread {
                min_size: io
                    .spread
                    .min_size
                    .max(io.fft_min_tile.max(GATE_TILE_MAX + 1)),
                ..io.spread
            },
            groups,
            slices,
            memory,
        };
        mixer.build_kernels(kernels)?;
        Ok(mixer)
    }

    /// Compiles the kernels this mixer dispatches, now rather than while a session runs
    /// or a benchmark times it; the rest of [`MixerKernels`] stays uncompiled (the
    /// mixer-only benchmark builds its steps itself, `bench_step.rs`).
    fn build_kernels(&self, k: &MixerKernels) -> Result<()> {
        let mut need: Vec<&DeferredKernel> = Vec::new();
        let slices = self.slices.iter().flatten();
        if let Gate::Own = self.gate() {
            need.extend(slices.clone().map(|s| s.gate_kernel(k)));
        }
        need.extend(slices.filter_map(|s| s.lazy.as_ref()).map(|l| l.kernel(k)));
        for g in &self.groups {
            match &g.work {
                GroupWork::Eager(_) => need.push(&k.eager),
                GroupWork::Flash(f) => need.extend(f.kernels(k, self.len)),
                GroupWork::Nothing => {}
            }
        }
        need.into_iter()
            .try_for_each(|kernel| kernel.get().map(drop))
    }

    /// Channels per group (one entry unless the arenas exceed the binding limit).
    pub fn group_widths(&self) -> Vec<usize> {
        self.groups.iter().map(|g| g.width).collect()
    }

    /// GPU memory this mixer allocated, by kind.
    pub fn memory(&self) -> MixerMemory {
        self.memory
    }

    /// Reads the whole v history back, time-major `[len][M * D]` over all layers
    /// (whatever the grouping; a test hook, feature `internals`).
    #[cfg(any(test, feature = "internals"))]
    pub fn read_history(&self) -> Result<Vec<f32>> {
        self.read_arena(|g| &g.v_hist)
    }

    /// Reads the z accumulators back like [`Mixer::read_history`] (flash and eager).
    #[cfg(any(test, feature = "internals"))]
    pub fn read_accumulators(&self) -> Result<Vec<f32>> {
        if !matches!(self.method, Method::Flash | Method::Eager) {
            return Err(Error::input(format!(
                "{} keeps no accumulators",
                self.method
            )));
        }
        self.read_arena(|g| &g.z_acc)
    }

    #[cfg(any(test, feature = "internals"))]
    fn read_arena(&self, arena: impl Fn(&Group) -> &wgpu::Buffer) -> Result<Vec<f32>> {
        let channels: usize = self.groups.iter().map(|g| g.width).sum();
        let mut out = vec![0.0f32; channels * self.len];
        for g in &self.groups {
            let part = self
                .ctx
                .read_f32(arena(g), 0, (g.width * self.len) as u64)?;
            for t in 0..self.len {
                let row = &part[t * g.width..(t + 1) * g.width];
                out[t * channels + g.start..t * channels + g.start + g.width].copy_from_slice(row);
            }
        }
        Ok(out)
    }

    /// The parameter block shared by the mixer kernels for a slice of `layer` (or a
    /// whole group when `slice` is None) at step `t`; `mode` tells the gate (and
    /// the benchmark's step) where z_t comes from. The tile fields are the direct tiles' to fill.
    fn params(&self, layer: usize, t: usize, group: usize, slice: Option<&Slice>) -> MixerParams {
        let width = self.groups[group].width as u32;
        let (col0, c0, count) = slice.map_or((0, 0, width), |s| {
            (s.col0 as u32, s.c0 as u32, s.count as u32)
        });
        MixerParams {
            d: self.d as u32,
            len: self.len as u32,
            t: t as u32,
            layer: layer as u32,
            mode: self.gate_mode(),
            chans: width,
            col0,
            c0,
            count,
            ..Default::default()
        }
    }

    /// Records layer `layer`'s mixer work at position `t` (after in_proj wrote u_t): per
    /// slice the gate where the mixer computes it ([`Gate::Own`]; with [`Gate::Fused`]
    /// the session's out_proj kernel has computed it before), then the lazy sum or the
    /// eager push.
    pub fn record_layer(
        &self,
        step: &mut Step<'_>,
        k: &MixerKernels,
        layer: usize,
        t: usize,
    ) -> Result<()> {
        let own = matches!(self.gate(), Gate::Own);
        for s in &self.slices[layer] {
            let w = self.params(layer, t, s.group, Some(s));
            if own {
                let groups = s.kind.workgroups(s.count);
                step.dispatch(s.gate_kernel(k).get()?, &s.gate, &w, groups)?;
            }
            self.record_history_term(step, k, s, &w)?;
        }
        Ok(())
    }

    /// The gate's mode word (`mixer_params.wgsl`): 0 = z from z_acc (flash, eager),
    /// 1 = diagonal only (none), 2 = y left to the lazy kernel.
    fn gate_mode(&self) -> u32 {
        match self.method {
            Method::Flash | Method::Eager => 0,
            Method::None => 1,
            Method::Lazy => 2,
        }
    }

    /// Who computes the gate of this mixer's layers, decided here once for every token
    /// and the prefill: the session's out_proj kernel ([`Gate::Fused`], with what it
    /// binds) where all channels are in one group and the method's y follows from z_acc
    /// (flash, eager) or the diagonal alone (none); else the mixer's own kernel
    /// ([`Gate::Own`]: lazy needs its own kernel for y, and split arenas a slice each).
    pub fn gate(&self) -> Gate<'_> {
        match &self.groups[..] {
            [group] if self.method != Method::Lazy => Gate::Fused(FusableGate {
                v_hist: &group.v_hist,
                z_acc: &group.z_acc,
                mode: self.gate_mode(),
                chans: group.width as u32,
            }),
            _ => Gate::Own,
        }
    }

    /// The arenas of [`Gate::Fused`], if the gate is fused.
    pub fn fusable_gate(&self) -> Option<FusableGate<'_>> {
        match self.gate() {
            Gate::Fused(g) => Some(g),
            Gate::Own => None,
        }
    }

    /// The lazy sum or the eager push of one slice (nothing for flash and none).
    fn record_history_term(
        &self,
        step: &mut Step<'_>,
        k: &MixerKernels,
        s: &Slice,
        w: &MixerParams,
    ) -> Result<()> {
        if let Some(lazy) = &s.lazy {
            return lazy.record(step, k, s.count, w);
        }
        match &self.groups[s.group].work {
            GroupWork::Eager(bind) => eager::record(step, k, bind, (self.len, s.count), w),
            GroupWork::Flash(_) | GroupWork::Nothing => Ok(()),
        }
    }

    /// Upper bound on dispatches per token (for sizing the parameter arena): gate and
    /// history term per slice, and per group the work of a step: a tile (or its urgent
    /// part and first chunk) and at most one chunk of an earlier spread tile, each an FFT
    /// pipeline of at most gather, scatter, pointwise and two multi-pass FFTs.
    pub fn dispatches_per_token(&self) -> usize {
        let slices: usize = self.slices.iter().map(Vec::len).sum();
        2 * slices + 33 * self.groups.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_lags_agree() {
        let decl = format!("const GATE_LAGS: u32 = {GATE_LAGS}u;");
        assert!(
            GATE_LIB_WGSL.contains(&decl),
            "gate_lib.wgsl lacks `{decl}`"
        );
        let (d, len) = (3, 40);
        let filter: Vec<f32> = (0..d * len).map(|i| i as f32).collect();
        let taps = gate_taps(&filter, d, len);
        for j in 1..=GATE_LAGS {
            for c in 0..d {
                assert_eq!(taps[(j - 1) * d + c], filter[c * len + j]);
            }
        }
        // Past the filter's length the taps are zero.
        let short = gate_taps(&filter[..d * 4], d, 4);
        assert_eq!(short[3 * d..], vec![0.0; (GATE_LAGS - 3) * d][..]);
        assert_eq!(mixer_params_bias_off(d) + d, mixer_params_len(d));
    }
}
