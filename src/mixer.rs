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
use crate::fft::{Direction, FftBinding, FftPlan, FftPlanner, FFT_LIB_WGSL, MAX_WG_FFT};
use crate::gpu::{self, dispatch, Access, DeferredKernel, GpuContext, LinearTexture, ParamArena};
use crate::tiling;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

/// WGSL source of the mixer kernels (compiled after [`MIXER_PARAMS_WGSL`]).
pub const MIXER_WGSL: &str = include_str!("../shaders/mixer.wgsl");
/// The parameter block shared by the mixer kernels.
pub const MIXER_PARAMS_WGSL: &str = include_str!("../shaders/mixer_params.wgsl");
/// WGSL source of the four-channel lazy kernel (used when D is a multiple of 4;
/// compiled after [`MIXER_PARAMS_WGSL`]).
pub const MIXER_VEC4_WGSL: &str = include_str!("../shaders/mixer_vec4.wgsl");
/// WGSL source of the FFT tile kernels (compiled after [`FFT_LIB_WGSL`]).
pub const TILE_WGSL: &str = include_str!("../shaders/tile.wgsl");

/// WGSL functions of the gate (short conv, gating), shared by the mixer's gate kernel
/// and the session's fused out_proj kernel.
pub const GATE_LIB_WGSL: &str = include_str!("../shaders/gate_lib.wgsl");

/// The per-step gate kernels, which read their parameter block through
/// [`gpu::unfoldable_params`]: their tests of `mode` and `t` are what lavapipe would
/// otherwise inline and recompile them for at every dispatch.
const GATE_ENTRIES: [&str; 4] = ["gate", "gate4", "bench_step", "bench_step4"];

/// The full source of the mixer kernels: parameter block, gate functions, then kernels
/// (the gates' parameters behind [`gpu::unfoldable_params`]).
pub fn mixer_source(textures: bool) -> String {
    let source = format!("{MIXER_PARAMS_WGSL}\n{GATE_LIB_WGSL}\n{MIXER_WGSL}");
    let source = gpu::unfoldable_params(&source, &GATE_ENTRIES);
    if !textures {
        return source;
    }
    let store = gpu::linear_store_wgsl(6, "v_tex", "vstore4");
    swap(source, "fn vstore4(i: u32, x: vec4<f32>) {}", &store)
}

/// The full source of the four-channel lazy kernel: parameter block, then kernel; with
/// `textures`, the v history (which `gate4` writes) and the filter taps are
/// [`gpu::LinearTexture`]s rather than buffers.
pub fn mixer_vec4_source(textures: bool) -> String {
    let source = format!("{MIXER_PARAMS_WGSL}\n{MIXER_VEC4_WGSL}");
    if !textures {
        return source;
    }
    let v = "@group(1) @binding(0) var<storage, read> v4: array<vec4<f32>>;
fn vtap(i: u32) -> vec4<f32> { return v4[i]; }";
    let k = "@group(1) @binding(1) var<storage, read> k4: array<vec4<f32>>;
fn ktap(i: u32) -> vec4<f32> { return k4[i]; }";
    let source = swap(source, v, &gpu::linear_texture_wgsl(0, "v4", "vtap"));
    swap(source, k, &gpu::linear_texture_wgsl(1, "k4", "ktap"))
}

/// `source` with `from` (which it must contain) replaced by `to`.
fn swap(source: String, from: &str, to: &str) -> String {
    debug_assert!(source.contains(from), "the shader source lacks `{from}`");
    source.replace(from, to)
}

/// The full source of the tile kernels: the FFT library, then the tiles.
pub fn tile_source() -> String {
    format!("{FFT_LIB_WGSL}\n{TILE_WGSL}")
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
    /// See [`MixerIo::spectra_budget`].
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

/// The mixer kernels of a model, shared by its sessions. Each is compiled when a session
/// first needs it ([`DeferredKernel`]): a session uses the kernels of one method, and
/// building all of them took lavapipe about 0.1 s.
#[derive(Debug)]
pub struct MixerKernels {
    /// Group 0's layout, shared by every kernel.
    param_layout: wgpu::BindGroupLayout,
    gate: DeferredKernel,
    /// `gate`, four channels per thread.
    gate4: DeferredKernel,
    /// `gate4` for lazy with its v history in a texture, which it also stores v_t in.
    gate_tex: DeferredKernel,
    lazy: DeferredKernel,
    lazy4: DeferredKernel,
    /// `lazy4` with the v history and the filter taps in textures.
    lazy4_tex: DeferredKernel,
    eager: DeferredKernel,
    tile_direct: DeferredKernel,
    tile_urgent: DeferredKernel,
    bench_step: DeferredKernel,
    /// `bench_step`, four channels per thread.
    bench_step4: DeferredKernel,
    /// `bench_step4` for lazy with its v texture.
    bench_step_tex: DeferredKernel,
    tile_fft: DeferredKernel,
    spectra_fft: DeferredKernel,
    spectra_store: DeferredKernel,
    tile_gather: DeferredKernel,
    tile_pointwise: DeferredKernel,
    tile_scatter: DeferredKernel,
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

/// [`MIXER_ACCESS`] with the v history (binding 0) and the filter taps (binding 1) in
/// textures.
const LAZY_TEX_ACCESS: [Access; 6] = [
    Access::Texture,
    Access::Texture,
    Access::Read,
    Access::ReadWrite,
    Access::ReadWrite,
    Access::ReadWrite,
];

impl MixerKernels {
    /// The parameter layout (identical for every kernel), for a [`ParamArena`].
    pub fn param_layout(&self) -> &wgpu::BindGroupLayout {
        &self.param_layout
    }

    /// The kernels of `shaders/mixer.wgsl` and `shaders/tile.wgsl`, none compiled yet.
    pub fn new(ctx: &GpuContext) -> Result<Self> {
        let param_layout = gpu::param_layout(ctx);
        let deferred = |source: &Arc<str>, entry, access: &[Access]| {
            DeferredKernel::new(ctx, source, entry, access, &param_layout)
        };
        let mixer: Arc<str> = mixer_source(false).into();
        let k = |entry| deferred(&mixer, entry, &MIXER_ACCESS);
        // Lazy's gates on CPU adapters: the same bindings, and the v texture to write.
        let mixer_tex: Arc<str> = mixer_source(true).into();
        let tex_access = [&MIXER_ACCESS[..], &[Access::TextureWrite]].concat();
        let k_tex = |entry| deferred(&mixer_tex, entry, &tex_access);
        let tiles: Arc<str> = tile_source().into();
        let t = |entry| deferred(&tiles, entry, &TILE_ACCESS);
        let lazy4: Arc<str> = mixer_vec4_source(false).into();
        let lazy4_tex: Arc<str> = mixer_vec4_source(true).into();
        Ok(MixerKernels {
            gate: k("gate"),
            gate4: k("gate4"),
            gate_tex: k_tex("gate4"),
            lazy: k("lazy"),
            lazy4: deferred(&lazy4, "lazy4", &MIXER_ACCESS),
            lazy4_tex: deferred(&lazy4_tex, "lazy4", &LAZY_TEX_ACCESS),
            eager: k("eager"),
            tile_direct: k("tile_direct"),
            tile_urgent: k("tile_urgent"),
            bench_step: k("bench_step"),
            bench_step4: k("bench_step4"),
            bench_step_tex: k_tex("bench_step4"),
            tile_fft: t("tile_fft"),
            spectra_fft: t("spectra_fft"),
            spectra_store: t("spectra_store"),
            tile_gather: t("tile_gather"),
            tile_pointwise: t("tile_pointwise"),
            tile_scatter: t("tile_scatter"),
            planner: Mutex::new(FftPlanner::new(ctx)?),
            param_layout,
        })
    }
}

/// How a mixer's arenas are split by channel: `widths[i]` channels in group i, in order,
/// each group's buffers within the device's per-binding limit. One group when they fit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelGroups {
    /// Channels per group (they add up to the channel count).
    pub widths: Vec<usize>,
    /// Bytes of the largest buffer of a group of the first width.
    pub largest_buffer: u64,
}

/// Bytes of the largest per-group buffer for a group of `width` channels: the arenas
/// (4 bytes per channel and position), and with FFT tiles the largest level's spectra and
/// multi-pass work buffers (channel pairs x 2U complex numbers).
pub fn group_buffer_bytes(width: usize, len: usize, largest_fft_tile: usize) -> u64 {
    let arena = 4 * width as u64 * len as u64;
    let spectra = 8 * width as u64 * largest_fft_tile as u64;
    let work = if 2 * largest_fft_tile > MAX_WG_FFT {
        16 * width.div_ceil(2) as u64 * largest_fft_tile as u64
    } else {
        0
    };
    arena.max(spectra).max(work)
}

/// Splits `channels` into groups whose buffers each fit `limit` bytes (widths a multiple
/// of 4 when there is more than one group and 4 channels fit, so that the four-channel
/// kernels and the channel pairs of the FFT tiles stay aligned). Fails only when a single
/// channel does not fit.
pub fn plan_groups(
    channels: usize,
    len: usize,
    largest_fft_tile: usize,
    limit: u64,
) -> Result<ChannelGroups> {
    let bytes = |w| group_buffer_bytes(w, len, largest_fft_tile);
    if bytes(channels) <= limit {
        return Ok(ChannelGroups {
            widths: vec![channels],
            largest_buffer: bytes(channels),
        });
    }
    // bytes() grows linearly (up to pair rounding) with the width: start from the
    // proportional guess and step down until it fits.
    let per = bytes(2).div_ceil(2).max(1);
    let mut w = ((limit / per) as usize).min(channels);
    w = match w {
        0..=1 => w,
        2 | 3 => 2,
        _ => w / 4 * 4,
    };
    while w > 0 && bytes(w) > limit {
        w -= if w > 4 { 4 } else { 1 };
    }
    if w == 0 {
        return Err(Error::Limit(format!(
            "one channel's buffers for {len} positions need {} bytes, but this device \
             binds at most {limit} bytes per storage buffer; use a shorter session \
             (--max-tokens) or a device with a larger max_storage_buffer_binding_size",
            bytes(1)
        )));
    }
    let mut widths = vec![w; channels / w];
    if !channels.is_multiple_of(w) {
        widths.push(channels % w);
    }
    Ok(ChannelGroups {
        widths,
        largest_buffer: bytes(w),
    })
}

/// The channel groups of a mixer of `method` over `layers` layers of `d` channels: the
/// widest groups that fit `limit` ([`plan_groups`]), except for lazy, whose groups never
/// span two layers. Lazy reads one layer's whole history per dispatch; with rows of D
/// (not M·D) columns that history is one contiguous block the CPU (lavapipe) or the GPU
/// streams through, instead of a quarter of every row.
pub fn plan_mixer_groups(
    method: Method,
    (layers, d): (usize, usize),
    len: usize,
    fft_min_tile: usize,
    limit: u64,
) -> Result<ChannelGroups> {
    let largest = largest_fft_tile(method, len, fft_min_tile);
    if method != Method::Lazy || layers < 2 {
        return plan_groups(layers * d, len, largest, limit);
    }
    let layer = plan_groups(d, len, largest, limit)?;
    Ok(ChannelGroups {
        widths: layer.widths.repeat(layers),
        largest_buffer: layer.largest_buffer,
    })
}

/// Whether lazy keeps the v history and filter taps of a group of `width` channels (of
/// layers of `d`) in textures: asked for (`textures`, as on CPU adapters), all quads
/// aligned for `lazy4`, and the textures within the device's size limit.
fn lazy_textures(
    ctx: &GpuContext,
    method: Method,
    textures: bool,
    (width, d): (usize, usize),
    len: usize,
) -> bool {
    method == Method::Lazy
        && textures
        && width % 4 == 0
        && d % 4 == 0
        && ctx.linear_texture_fits(width * len / 4)
}

/// Bytes of lazy's v textures over channel groups of `widths` (on top of the arenas;
/// [`MixerMemory::history`] counts them).
pub fn lazy_texture_bytes(
    ctx: &GpuContext,
    method: Method,
    textures: bool,
    (d, len): (usize, usize),
    widths: &[usize],
) -> u64 {
    let texel_rows = |w: usize| gpu::texture_rows(w * len / 4) as u64;
    widths
        .iter()
        .filter(|&&w| lazy_textures(ctx, method, textures, (w, d), len))
        .map(|&w| texel_rows(w) * gpu::TEXTURE_WIDTH as u64 * 16)
        .sum()
}

/// The largest buffer size flashconv binds on this device (also keeps every index of a
/// binding within 32 bits).
pub fn binding_limit(ctx: &GpuContext) -> u64 {
    ctx.limits
        .max_buffer_size
        .min(ctx.limits.max_storage_buffer_binding_size)
        .min(1 << 31)
}

/// The flash tile sides done with FFTs in a session of `len`, ascending: those of the
/// schedule from `fft_min_tile` on, past the sides the gate covers ([`GATE_TILE_MAX`]).
fn fft_tile_sizes(len: usize, fft_min_tile: usize) -> Vec<usize> {
    tiling::schedule_sizes(len)
        .into_iter()
        .filter(|&u| u >= fft_min_tile && u > GATE_TILE_MAX)
        .collect()
}

/// Largest flash tile side done with FFTs for a session of `len` (0 if none).
pub fn largest_fft_tile(method: Method, len: usize, fft_min_tile: usize) -> usize {
    match method {
        Method::Flash => fft_tile_sizes(len, fft_min_tile)
            .last()
            .copied()
            .unwrap_or(0),
        _ => 0,
    }
}

/// GPU memory of a mixer, by kind of buffer (bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MixerMemory {
    /// v history arenas (and lazy's v textures on CPU adapters).
    pub history: u64,
    /// z accumulator arenas (flash, eager).
    pub accumulators: u64,
    /// Time-major filter arenas.
    pub filters: u64,
    /// FFT tile filter spectra (flash).
    pub spectra: u64,
    /// Work buffers of the multi-pass FFT tiles (flash).
    pub scratch: u64,
}

impl MixerMemory {
    /// Everything together.
    pub fn total(&self) -> u64 {
        self.history + self.accumulators + self.filters + self.spectra + self.scratch
    }

    /// What a mixer of `channels` channels over `len` positions allocates.
    pub fn estimate(method: Method, channels: usize, len: usize, tiles: &Tiles) -> Self {
        let fft_min_tile = tiles.fft_min_tile;
        let arena = 4 * channels as u64 * len as u64;
        let mut m = MixerMemory {
            history: arena,
            accumulators: if matches!(method, Method::Flash | Method::Eager) {
                arena
            } else {
                0
            },
            filters: arena,
            ..Default::default()
        };
        if method == Method::Flash {
            let sizes = fft_tile_sizes(len, fft_min_tile);
            let stored = precomputed_levels(&sizes, channels, tiles.spectra_budget);
            let level = |u: usize| 8 * channels as u64 * u as u64;
            m.spectra = sizes[..stored].iter().map(|&u| level(u)).sum();
            // The buffer the others share.
            if let Some(&largest) = sizes.get(stored).and(sizes.last()) {
                m.spectra += level(largest);
            }
            for &u in &sizes {
                {
                    if 2 * u > MAX_WG_FFT {
                        // Two buffers (data and scratch) of channel pairs x 2U complex.
                        m.scratch += 2 * 16 * channels.div_ceil(2) as u64 * u as u64;
                    }
                }
            }
        }
        m
    }
}

/// One channel group: its arenas (time-major, `width` columns) and the bind groups of
/// the kernels that span all layers.
#[derive(Debug)]
struct Group {
    /// First channel (layer * D + c) of the group.
    start: usize,
    /// Channels in the group: the arenas' row stride.
    width: usize,
    eager: wgpu::BindGroup,
    tile_direct: wgpu::BindGroup,
    tile_urgent: wgpu::BindGroup,
    fft_levels: BTreeMap<usize, FftLevel>,
    v_hist: wgpu::Buffer,
    z_acc: wgpu::Buffer,
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
    /// Whether the slice's quads of channels line up (width D, its first channel, its
    /// channel count and its column, and its group's width are multiples of 4): its
    /// gates then take four channels per thread.
    quads: bool,
    /// The bindings of its gate kernel ([`Slice::gate_kernels`]).
    gate: wgpu::BindGroup,
    /// The lazy sum's bindings, for `lazy_kernel`.
    lazy: wgpu::BindGroup,
    lazy_kernel: LazyKernel,
    /// The bindings of its bench_step kernel ([`Slice::gate_kernels`]).
    bench_step: wgpu::BindGroup,
}

impl Slice {
    /// The gate and bench_step kernels of this slice and their workgroup count: four
    /// channels per thread where the quads line up, and then, where lazy reads its
    /// history from a texture, the ones that also store v_t in it.
    fn gate_kernels<'k>(
        &self,
        k: &'k MixerKernels,
    ) -> (&'k DeferredKernel, &'k DeferredKernel, u32) {
        Self::kernels_for(k, self.quads, self.lazy_kernel, self.count)
    }

    /// [`Slice::gate_kernels`] before the slice exists (to bind them).
    fn kernels_for(
        k: &MixerKernels,
        quads: bool,
        lazy: LazyKernel,
        count: usize,
    ) -> (&DeferredKernel, &DeferredKernel, u32) {
        let count = count as u32;
        match (quads, lazy) {
            (_, LazyKernel::Vec4Texture) => {
                (&k.gate_tex, &k.bench_step_tex, (count / 4).div_ceil(64))
            }
            (true, _) => (&k.gate4, &k.bench_step4, (count / 4).div_ceil(64)),
            (false, _) => (&k.gate, &k.bench_step, count.div_ceil(256)),
        }
    }
}

/// Which kernel computes a slice's lazy sum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LazyKernel {
    /// `lazy`, one channel per thread (any widths).
    Scalar,
    /// `lazy4` (group width, slice column and count all multiples of 4).
    Vec4,
    /// `lazy4` with the v history and the filter taps in textures (the slice's gate
    /// stores v_t in both the arena and the v texture).
    Vec4Texture,
}

/// Per-session mixer state: v history, z accumulators, filters, and bind groups, split
/// by channel into groups that fit the device's binding limit.
#[derive(Debug)]
pub struct Mixer {
    ctx: GpuContext,
    method: Method,
    layers: usize,
    d: usize,
    len: usize,
    fft_min_tile: usize,
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
    /// Keep lazy's v history and filter taps in textures ([`gpu::LinearTexture`]) where
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

/// One FFT tile level (side U) of one group: bind group over its spectra and, above the
/// one-workgroup size, the plan bound to its work buffer (with a scratch buffer).
#[derive(Debug)]
struct FftLevel {
    bind: wgpu::BindGroup,
    large: Option<(FftPlan, FftBinding)>,
    /// For spectra computed on the fly: the bind group of their kernels (filter arena
    /// in, spectra buffer out) and the number of taps present (min(2U, len)).
    spectra: Option<(wgpu::BindGroup, usize)>,
}

/// Where a level's filter spectra come from.
enum Spectra<'a> {
    /// Computed on the CPU in f64 ([`level_spectra`]) and uploaded once.
    Host(Vec<[f32; 2]>),
    /// Computed on the GPU before every use, from the time-major filter arena `k` with
    /// `taps` taps present, into `scratch` (shared by a group's on-the-fly levels).
    OnTheFly {
        k: &'a wgpu::Buffer,
        taps: usize,
        scratch: &'a wgpu::Buffer,
    },
}

/// One convolution through FFTs of side `size` (transform 2U) over the columns
/// `columns = (col0, count)` of a group's arenas: inputs `v[in_start ..][.. valid]`
/// (zeros up to U), outputs `z[out_start ..][.. outputs]` += entries `out_base ..` of the
/// linear convolution with the level's spectra (tile.wgsl).
#[derive(Clone, Copy, Debug)]
struct FftJob {
    size: usize,
    in_start: usize,
    valid: usize,
    out_start: usize,
    outputs: usize,
    out_base: usize,
    columns: (usize, usize),
    stride: usize,
}

impl FftJob {
    /// The parameter block of tile.wgsl.
    fn words(&self) -> [u32; 12] {
        let (col0, count) = self.columns;
        let u = self.size as u32;
        [
            count as u32,
            u,
            self.in_start as u32,
            self.out_start as u32,
            self.outputs as u32,
            (2 * u).trailing_zeros(),
            count.div_ceil(2) as u32,
            // Channel pairs per workgroup for the in-workgroup tiles: fill fft_sh.
            (MAX_WG_FFT as u32 / (2 * u).min(MAX_WG_FFT as u32)).trailing_zeros(),
            self.stride as u32,
            col0 as u32,
            self.valid as u32,
            self.out_base as u32,
        ]
    }

    /// Records the job: fused in one workgroup per channel pair (or several) when 2U
    /// fits, else gather, multi-pass FFT, pointwise, inverse FFT, scatter. A level
    /// without stored spectra first computes those of the job's columns.
    fn record(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        arena: &mut ParamArena,
        k: &MixerKernels,
        level: &FftLevel,
    ) -> Result<()> {
        if let Some((bind, taps)) = &level.spectra {
            self.record_spectra(pass, arena, k, level, (bind, *taps))?;
        }
        let w = self.words();
        let pairs = w[6];
        let Some((plan, binding)) = &level.large else {
            let groups = pairs.div_ceil(1 << w[7]);
            return dispatch(pass, arena, k.tile_fft.get()?, &level.bind, &w, groups);
        };
        let groups = |threads: u64| threads.div_ceil(256) as u32;
        let (u, pairs64) = (self.size as u64, pairs as u64);
        let gather = groups(pairs64 * 2 * u);
        dispatch(pass, arena, k.tile_gather.get()?, &level.bind, &w, gather)?;
        plan.encode_bound(pass, arena, binding, pairs, Direction::Forward)?;
        let pointwise = groups(pairs64 * (u + 1));
        dispatch(
            pass,
            arena,
            k.tile_pointwise.get()?,
            &level.bind,
            &w,
            pointwise,
        )?;
        plan.encode_bound(pass, arena, binding, pairs, Direction::Inverse)?;
        let scatter = groups(pairs64 * self.outputs as u64);
        dispatch(pass, arena, k.tile_scatter.get()?, &level.bind, &w, scatter)
    }

    /// The filter spectra of the job's columns (tile.wgsl's spectra_fft, or gather,
    /// multi-pass FFT and spectra_store): the taps k[0 .. taps) loaded like inputs.
    fn record_spectra(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        arena: &mut ParamArena,
        k: &MixerKernels,
        level: &FftLevel,
        (bind, taps): (&wgpu::BindGroup, usize),
    ) -> Result<()> {
        let w = FftJob {
            in_start: 0,
            valid: taps,
            ..*self
        }
        .words();
        let pairs = w[6];
        let Some((plan, binding)) = &level.large else {
            let groups = pairs.div_ceil(1 << w[7]);
            return dispatch(pass, arena, k.spectra_fft.get()?, bind, &w, groups);
        };
        let groups = |threads: u64| threads.div_ceil(256) as u32;
        let (u, pairs64) = (self.size as u64, pairs as u64);
        dispatch(
            pass,
            arena,
            k.tile_gather.get()?,
            bind,
            &w,
            groups(pairs64 * 2 * u),
        )?;
        plan.encode_bound(pass, arena, binding, pairs, Direction::Forward)?;
        dispatch(
            pass,
            arena,
            k.spectra_store.get()?,
            bind,
            &w,
            groups(pairs64 * u),
        )
    }
}

/// How many of the FFT tile sides `sizes` (ascending) keep precomputed spectra under
/// `budget` bytes for `channels` channels (8 bytes per channel and unit of side): the
/// smallest ones that fit together; the others are computed on the fly. All when
/// there is no budget.
pub fn precomputed_levels(sizes: &[usize], channels: usize, budget: Option<u64>) -> usize {
    let Some(budget) = budget else {
        return sizes.len();
    };
    let mut used = 0u64;
    sizes
        .iter()
        .take_while(|&&u| {
            used += 8 * channels as u64 * u as u64;
            used <= budget
        })
        .count()
}

/// The prefill's long convolution, built for one prompt length
/// ([`Mixer::prefill_conv`]): per channel group, a level of side U = the prompt length
/// rounded up to a power of two, with the spectra of k[1 .. U).
#[derive(Debug)]
pub struct PrefillConv {
    prompt: usize,
    size: usize,
    levels: Vec<FftLevel>,
}

impl PrefillConv {
    /// Bytes of its spectra and FFT work buffers (freed with it).
    pub fn bytes(&self, channels: usize) -> u64 {
        let spectra = 8 * channels as u64 * self.size as u64;
        let work = if 2 * self.size > MAX_WG_FFT {
            2 * 16 * channels.div_ceil(2) as u64 * self.size as u64
        } else {
            0
        };
        spectra + work
    }
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

/// Length of a layer's mixer parameters for width `d`:
/// `[short_w 9D | short_b 3D | diag D | k_1 .. k_K (K·D, lag-major) | out_proj b D]`
/// (`gate_lib.wgsl`), with K = [`GATE_LAGS`].
pub const fn mixer_params_len(d: usize) -> usize {
    (14 + GATE_LAGS) * d
}

/// Offset of the out_proj bias in a layer's mixer parameters ([`mixer_params_len`]).
pub const fn mixer_params_bias_off(d: usize) -> usize {
    (13 + GATE_LAGS) * d
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

/// Builds the FFT tile levels of one group of a flash session: the sides
/// U >= `fft_min_tile` that occur in a sequence of length `len`, with their spectra.
fn fft_levels(
    ctx: &GpuContext,
    kernels: &MixerKernels,
    io: &MixerIo<'_>,
    (d, len): (usize, usize),
    (start, width): (usize, usize),
    [v_hist, z_acc, k, unused]: [&wgpu::Buffer; 4],
) -> Result<BTreeMap<usize, FftLevel>> {
    let mut levels = BTreeMap::new();
    let sizes = fft_tile_sizes(len, io.fft_min_tile);
    let Some(&largest) = sizes.last() else {
        return Ok(levels);
    };
    let mut planner = kernels
        .planner
        .lock()
        .map_err(|_| Error::gpu("FFT planner lock poisoned"))?;
    // The largest plan's twiddle table covers every smaller size.
    let twiddles = planner.plan(2 * largest)?.twiddles().clone();
    let stored = precomputed_levels(&sizes, io.filters.len() * d, io.spectra_budget);
    // One buffer for the spectra of every level computed on the fly, sized for the
    // largest (each tile part computes the spectra of its columns right before use).
    let scratch = if stored < sizes.len() {
        Some(ctx.buffer_zeroed("spectra (on the fly)", 8 * width as u64 * largest as u64)?)
    } else {
        None
    };
    for (i, u) in sizes.into_iter().enumerate() {
        let spectra = match &scratch {
            Some(scratch) if i >= stored => Spectra::OnTheFly {
                k,
                taps: (2 * u).min(len),
                scratch,
            },
            _ => Spectra::Host(level_spectra(
                io.filters,
                (d, len),
                (start, width),
                u,
                Taps::Tile,
            )),
        };
        let bufs = [&twiddles, v_hist, z_acc, unused];
        let level = FftLevel::new(ctx, kernels, &mut planner, bufs, spectra, (u, width))?;
        levels.insert(u, level);
    }
    Ok(levels)
}

impl FftLevel {
    /// The level of side `u` over `width` columns: its spectra uploaded, bound with the
    /// arenas, and above the one-workgroup size a plan bound to its own work buffers.
    fn new(
        ctx: &GpuContext,
        kernels: &MixerKernels,
        planner: &mut FftPlanner,
        [twiddles, v_hist, z_acc, unused]: [&wgpu::Buffer; 4],
        spectra: Spectra<'_>,
        (u, width): (usize, usize),
    ) -> Result<Self> {
        let (buffer, on_the_fly) = match spectra {
            Spectra::Host(host) => (ctx.buffer_init("spectra", &host)?, None),
            Spectra::OnTheFly { k, taps, scratch } => (scratch.clone(), Some((k, taps))),
        };
        let (work, large) = if 2 * u <= MAX_WG_FFT {
            (unused.clone(), None)
        } else {
            let bytes = width.div_ceil(2) as u64 * 2 * u as u64 * 8;
            let work = ctx.buffer_zeroed("tile work", bytes)?;
            let scratch = ctx.buffer_zeroed("tile scratch", bytes)?;
            let plan = planner.plan(2 * u)?;
            let binding = plan.bind(ctx, &work, &scratch)?;
            (work, Some((plan, binding)))
        };
        // Every tile kernel has the same layout (TILE_ACCESS), so one bind group serves
        // the whole pipeline.
        let bufs = [twiddles, v_hist, &buffer, z_acc, &work];
        let spectra = on_the_fly.map(|(k, taps)| {
            // t_spec is not read here: the twiddles fill it (read-only, like binding 0).
            let bufs = [twiddles, k, twiddles, &buffer, &work];
            (kernels.tile_fft.bind(ctx, &bufs), taps)
        });
        Ok(FftLevel {
            bind: kernels.tile_fft.bind(ctx, &bufs),
            large,
            spectra,
        })
    }
}

/// Which filter taps a level's spectra transform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Taps {
    /// k[0 .. 2U): a tile of the schedule.
    Tile,
    /// k[1 .. U), k[0] and the rest zero: the prefill's causal convolution of up to U
    /// inputs, whose first U outputs then have no wrap-around.
    Prefill,
}

/// Filter spectra of level `u` for the channels `start .. start + width` (over all
/// layers; filters channel-major `[D][len]` per layer): FFT of the taps `taps` selects
/// (zero past the session's length, and at the lags flash's gate adds: [`conv_tap`])
/// in f64, scaled by 1 / 2U, frequencies 0 .. U with slot 0 packing (K[0], K[U]) (both
/// real), as f32 pairs.
fn level_spectra(
    filters: &[Vec<f32>],
    (d, len): (usize, usize),
    (start, width): (usize, usize),
    u: usize,
    taps: Taps,
) -> Vec<[f32; 2]> {
    use rustfft::num_complex::Complex;
    let n = 2 * u;
    let fft = rustfft::FftPlanner::<f64>::new().plan_fft_forward(n);
    let mut out = Vec::with_capacity(width * u);
    let mut buf = vec![Complex::new(0.0, 0.0); n];
    for g in start..start + width {
        for (i, slot) in buf.iter_mut().enumerate() {
            let used = match taps {
                Taps::Tile => i < len,
                Taps::Prefill => (1..u.min(len)).contains(&i),
            };
            let k = if used {
                conv_tap(Method::Flash, filters, (d, len), g, i)
            } else {
                0.0
            };
            *slot = Complex::new(k as f64, 0.0);
        }
        fft.process(&mut buf);
        let scale = 1.0 / n as f64;
        out.push([(buf[0].re * scale) as f32, (buf[u].re * scale) as f32]);
        for b in &buf[1..u] {
            out.push([(b.re * scale) as f32, (b.im * scale) as f32]);
        }
    }
    out
}

/// The slices of layer `layer` (channels `layer * d ..` over all layers) in `groups`.
fn layer_slices(layer: usize, d: usize, widths: &[usize]) -> Vec<(usize, usize, usize, usize)> {
    let (lo, hi) = (layer * d, (layer + 1) * d);
    let mut out = Vec::new();
    let mut start = 0;
    for (gi, &w) in widths.iter().enumerate() {
        let (a, b) = (lo.max(start), hi.min(start + w));
        if a < b {
            out.push((gi, a - lo, b - a, a - start));
        }
        start += w;
    }
    out
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
        let channels = layers * d;
        let limit = binding_limit(ctx);
        let plan = plan_mixer_groups(method, (layers, d), len, io.fft_min_tile, limit)?;
        let dummies: Vec<wgpu::Buffer> = (0..4)
            .map(|i| ctx.buffer_zeroed(&format!("unused{i}"), 16))
            .collect::<Result<_>>()?;
        let [d0, d1, d2, d3] = [&dummies[0], &dummies[1], &dummies[2], &dummies[3]];
        let needs_acc = matches!(method, Method::Flash | Method::Eager);
        let mut groups = Vec::with_capacity(plan.widths.len());
        let mut arenas = Vec::with_capacity(plan.widths.len());
        let mut start = 0;
        for &width in &plan.widths {
            let rows = width as u64 * len as u64;
            // Time-major: k[t * width + g - start].
            let mut flat = Vec::with_capacity(rows as usize);
            for t in 0..len {
                let taps =
                    (start..start + width).map(|g| conv_tap(method, io.filters, (d, len), g, t));
                flat.extend(taps);
            }
            let (k, textures) = if lazy_textures(ctx, method, io.textures, (width, d), len) {
                let bytes = bytemuck::cast_slice(&flat);
                let k = ctx.linear_texture("filters", bytes, wgpu::TextureFormat::Rgba32Float)?;
                let v = ctx.linear_texture_rw("v history", flat.len() / 4)?;
                (d0.clone(), Some((v, k)))
            } else {
                (ctx.buffer_init("filters", &flat)?, None)
            };
            drop(flat);
            let v_hist = ctx.buffer_zeroed("v_hist", rows * 4)?;
            let z_acc = ctx.buffer_zeroed("z_acc", if needs_acc { rows * 4 } else { 16 })?;
            let bind6 = |kern: &DeferredKernel, bufs: [&wgpu::Buffer; 6]| kern.bind(ctx, &bufs);
            let fft_levels = if method == Method::Flash {
                let bufs = [&v_hist, &z_acc, &k, d3];
                fft_levels(ctx, kernels, &io, (d, len), (start, width), bufs)?
            } else {
                BTreeMap::new()
            };
            groups.push(Group {
                start,
                width,
                eager: bind6(&kernels.eager, [&v_hist, &k, d0, &z_acc, d1, d2]),
                tile_direct: bind6(&kernels.tile_direct, [&v_hist, &k, d0, &z_acc, d1, d2]),
                tile_urgent: bind6(&kernels.tile_urgent, [&v_hist, &k, d0, &z_acc, d1, d2]),
                fft_levels,
                v_hist: v_hist.clone(),
                z_acc: z_acc.clone(),
            });
            arenas.push((v_hist, z_acc, k, textures));
            start += width;
        }
        let mut memory = MixerMemory::estimate(method, channels, len, &io.tiles());
        memory.history += lazy_texture_bytes(ctx, method, io.textures, (d, len), &plan.widths);
        let slices = (0..layers)
            .map(|l| {
                layer_slices(l, d, &plan.widths)
                    .into_iter()
                    .map(|(group, c0, count, col0)| {
                        let (v, z, k, textures) = &arenas[group];
                        let (p, u) = (&io.params[l], &io.u_ring[l]);
                        let bind =
                            |kern: &DeferredKernel, bufs: [&wgpu::Buffer; 6]| kern.bind(ctx, &bufs);
                        let width = plan.widths[group];
                        let vec4 = [width, col0, count].iter().all(|x| x % 4 == 0);
                        let quads = vec4 && d % 4 == 0 && c0 % 4 == 0;
                        let gate_bufs = [u, p, z, v, io.x0, io.y];
                        let bench_bufs = [d0, p, z, v, io.y, d2];
                        let Some((v_tex, k_tex)) = textures else {
                            let kind = if vec4 {
                                LazyKernel::Vec4
                            } else {
                                LazyKernel::Scalar
                            };
                            let (gate, bench_step, _) =
                                Slice::kernels_for(kernels, quads, kind, count);
                            return Slice {
                                group,
                                c0,
                                count,
                                col0,
                                quads,
                                gate: bind(gate, gate_bufs),
                                lazy: bind(&kernels.lazy, [v, k, p, io.x0, io.y, d3]),
                                lazy_kernel: kind,
                                bench_step: bind(bench_step, bench_bufs),
                            };
                        };
                        // The buffers, then a texture view.
                        let with_view =
                            |kern: &DeferredKernel, bufs: &[&wgpu::Buffer], t: &LinearTexture| {
                                let mut all: Vec<_> =
                                    bufs.iter().map(|b| b.as_entire_binding()).collect();
                                all.push(wgpu::BindingResource::TextureView(&t.view));
                                kern.bind_resources(ctx, all)
                            };
                        let views =
                            [v_tex, k_tex].map(|t| wgpu::BindingResource::TextureView(&t.view));
                        let rest = [p, io.x0, io.y, d3].map(|b| b.as_entire_binding());
                        let lazy = [views.to_vec(), rest.to_vec()].concat();
                        Slice {
                            group,
                            c0,
                            count,
                            col0,
                            quads,
                            gate: with_view(&kernels.gate_tex, &gate_bufs, v_tex),
                            lazy: kernels.lazy4_tex.bind_resources(ctx, lazy),
                            lazy_kernel: LazyKernel::Vec4Texture,
                            bench_step: with_view(&kernels.bench_step_tex, &bench_bufs, v_tex),
                        }
                    })
                    .collect()
            })
            .collect();
        let mixer = Mixer {
            ctx: ctx.clone(),
            method,
            layers,
            d,
            len,
            fft_min_tile: io.fft_min_tile,
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
    /// mixer-only benchmark builds its own with [`Mixer::build_bench_kernels`]).
    fn build_kernels(&self, k: &MixerKernels) -> Result<()> {
        let mut need: Vec<&DeferredKernel> = Vec::new();
        let slices = self.slices.iter().flatten();
        if self.fusable_gate().is_none() {
            need.extend(slices.clone().map(|s| s.gate_kernels(k).0));
        }
        match self.method {
            Method::Lazy => need.extend(slices.map(|s| match s.lazy_kernel {
                LazyKernel::Vec4 => &k.lazy4,
                LazyKernel::Vec4Texture => &k.lazy4_tex,
                LazyKernel::Scalar => &k.lazy,
            })),
            Method::Eager => need.push(&k.eager),
            Method::Flash => {
                need.extend([&k.tile_direct, &k.tile_urgent, &k.tile_fft]);
                // The large path, for tiles or a prefill's convolution (of side
                // nextpow2(P) <= nextpow2(len)) whose 2U exceeds workgroup memory.
                if 2 * self.len.next_power_of_two() > MAX_WG_FFT {
                    need.extend([&k.tile_gather, &k.tile_pointwise, &k.tile_scatter]);
                }
                let mut levels = self.groups.iter().flat_map(|g| g.fft_levels.values());
                if levels.any(|l| l.spectra.is_some()) {
                    need.extend([&k.spectra_fft, &k.spectra_store]);
                }
            }
            Method::None => {}
        }
        need.into_iter()
            .try_for_each(|kernel| kernel.get().map(drop))
    }

    /// Compiles the `bench_step` kernels of [`Mixer::record_bench_step`].
    pub(crate) fn build_bench_kernels(&self, k: &MixerKernels) -> Result<()> {
        let mut slices = self.slices.iter().flatten();
        slices.try_for_each(|s| s.gate_kernels(k).1.get().map(drop))
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
    /// (whatever the grouping; for tests and debugging).
    pub fn read_history(&self) -> Result<Vec<f32>> {
        self.read_arena(|g| &g.v_hist)
    }

    /// Reads the z accumulators back like [`Mixer::read_history`] (flash and eager).
    pub fn read_accumulators(&self) -> Result<Vec<f32>> {
        if !matches!(self.method, Method::Flash | Method::Eager) {
            return Err(Error::input(format!(
                "{} keeps no accumulators",
                self.method
            )));
        }
        self.read_arena(|g| &g.z_acc)
    }

    fn read_arena(&self, arena: impl Fn(&Group) -> &wgpu::Buffer) -> Result<Vec<f32>> {
        let channels = self.layers * self.d;
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

    /// The parameter block shared by the mixer kernels (see mixer_params.wgsl) for a
    /// slice of `layer` (or a whole group when `slice` is None); `mode` tells the gate
    /// (and bench_step) where z_t comes from.
    fn words(&self, layer: usize, t: usize, group: usize, slice: Option<&Slice>) -> [u32; 14] {
        let width = self.groups[group].width as u32;
        let (d, len, t32) = (self.d as u32, self.len as u32, t as u32);
        let mode = self.gate_mode();
        let (col0, c0, count) = slice.map_or((0, 0, width), |s| {
            (s.col0 as u32, s.c0 as u32, s.count as u32)
        });
        let layer = layer as u32;
        [
            d, len, t32, layer, mode, 0, 0, 0, 0, 0, width, col0, c0, count,
        ]
    }

    /// Records layer `layer`'s mixer work at position `t` (after in_proj wrote u_t): per
    /// slice the gate (unless `gate_done`: a fused kernel computed it) and the lazy sum
    /// or eager push.
    pub fn record_layer(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        arena: &mut ParamArena,
        k: &MixerKernels,
        layer: usize,
        t: usize,
        gate_done: bool,
    ) -> Result<()> {
        for s in &self.slices[layer] {
            let w = self.words(layer, t, s.group, Some(s));
            if !gate_done {
                let (gate, _, groups) = s.gate_kernels(k);
                dispatch(pass, arena, gate.get()?, &s.gate, &w, groups)?;
            }
            self.record_history_term(pass, arena, k, s, &w)?;
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

    /// What a kernel outside the mixer needs to compute the gate itself (gate_lib.wgsl),
    /// when it can: all channels in one group, and a method whose y follows from z_acc
    /// (flash, eager) or the diagonal alone (none). Lazy needs its own kernel for y.
    pub fn fusable_gate(&self) -> Option<FusableGate<'_>> {
        let [group] = &self.groups[..] else {
            return None;
        };
        let mode = self.gate_mode();
        (self.method != Method::Lazy).then_some(FusableGate {
            v_hist: &group.v_hist,
            z_acc: &group.z_acc,
            mode,
            chans: group.width as u32,
        })
    }

    /// The lazy sum or the eager push of one slice (nothing for flash and none).
    fn record_history_term(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        arena: &mut ParamArena,
        k: &MixerKernels,
        s: &Slice,
        w: &[u32; 14],
    ) -> Result<()> {
        match self.method {
            Method::Lazy => self.record_lazy(pass, arena, k, s, w),
            Method::Eager => self.record_eager(pass, arena, k, s, w),
            Method::Flash | Method::None => Ok(()),
        }
    }

    /// The direct sum of a slice at step t (four channels per thread when aligned).
    fn record_lazy(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        arena: &mut ParamArena,
        k: &MixerKernels,
        s: &Slice,
        w: &[u32; 14],
    ) -> Result<()> {
        let count = s.count as u32;
        // lazy4: 32 quads per workgroup (4 LAZY_LANES in mixer_vec4.wgsl).
        let quads = (count / 4).div_ceil(32);
        match s.lazy_kernel {
            LazyKernel::Vec4 => dispatch(pass, arena, k.lazy4.get()?, &s.lazy, w, quads),
            LazyKernel::Vec4Texture => dispatch(pass, arena, k.lazy4_tex.get()?, &s.lazy, w, quads),
            LazyKernel::Scalar => {
                dispatch(pass, arena, k.lazy.get()?, &s.lazy, w, count.div_ceil(64))
            }
        }
    }

    /// Pushes v_t of a slice into all its future accumulators.
    fn record_eager(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        arena: &mut ParamArena,
        k: &MixerKernels,
        s: &Slice,
        w: &[u32; 14],
    ) -> Result<()> {
        let t = w[2] as usize;
        let future = (self.len - 1 - t) as u32;
        if future == 0 {
            return Ok(());
        }
        let mut w = *w;
        w[9] = future;
        let groups = (future as u64 * s.count as u64).div_ceil(256);
        let bind = &self.groups[s.group].eager;
        dispatch(pass, arena, k.eager.get()?, bind, &w, groups as u32)
    }

    /// Records the flash work due after step `t` ([`tiling::work_at`]): the tile of
    /// step `t` over every layer's channels (one dispatch, or one FFT pipeline, per
    /// channel group), or with spread tiles its urgent outputs, plus the chunks of
    /// earlier spread tiles due now; a no-op for the other methods.
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
        for (tile, part) in tiling::work_at(t, self.len, self.spread) {
            self.record_part(pass, arena, k, &tile, part)?;
        }
        Ok(())
    }

    /// One part of a tile in every channel group: through the level's FFTs when the
    /// tile has one (whole, or a channel chunk of the outputs after the urgent ones),
    /// else (and for the urgent outputs) the direct product.
    fn record_part(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        arena: &mut ParamArena,
        k: &MixerKernels,
        tile: &tiling::Tile,
        part: tiling::Part,
    ) -> Result<()> {
        use tiling::Part;
        if tile.size <= GATE_TILE_MAX {
            // All its pairs have lags the gate adds (conv_tap).
            return Ok(());
        }
        for (gi, group) in self.groups.iter().enumerate() {
            let level = group.fft_levels.get(&tile.size);
            let fft = |skip: usize, (c0, c1): (usize, usize)| FftJob {
                size: tile.size,
                in_start: tile.in_start,
                valid: tile.size,
                out_start: tile.out_start + skip,
                outputs: tile.outputs() - skip,
                out_base: tile.size + skip,
                columns: (c0, c1 - c0),
                stride: group.width,
            };
            let direct_outputs = match (part, level) {
                (Part::Whole, Some(level)) => {
                    fft(0, (0, group.width)).record(pass, arena, k, level)?;
                    continue;
                }
                (Part::Chunk { index, of, skip }, Some(level)) => {
                    let cols = tiling::chunk_channels(group.width, index, of);
                    if cols.1 > cols.0 {
                        fft(skip, cols).record(pass, arena, k, level)?;
                    }
                    continue;
                }
                (Part::Chunk { .. }, None) => {
                    // Spread applies only from fft_min_tile on (Mixer::new).
                    return Err(Error::gpu(format!("spread tile {tile:?} has no FFT level")));
                }
                (Part::Whole, None) => tile.outputs(),
                (Part::Urgent { outputs }, _) => outputs,
            };
            let mut w = self.words(0, tile.step, gi, None);
            w[6] = tile.size as u32;
            w[7] = tile.in_start as u32;
            w[8] = tile.out_start as u32;
            w[9] = direct_outputs as u32;
            if let Part::Urgent { .. } = part {
                // One thread per channel for all the urgent outputs.
                let groups = (group.width as u32).div_ceil(64);
                dispatch(
                    pass,
                    arena,
                    k.tile_urgent.get()?,
                    &group.tile_urgent,
                    &w,
                    groups,
                )?;
                continue;
            }
            let threads = group.width as u64 * direct_outputs as u64;
            let groups = threads.div_ceil(256) as u32;
            dispatch(
                pass,
                arena,
                k.tile_direct.get()?,
                &group.tile_direct,
                &w,
                groups,
            )?;
        }
        Ok(())
    }

    /// Smallest tile side done with FFTs in this session.
    pub fn fft_min_tile(&self) -> usize {
        self.fft_min_tile
    }

    /// Builds the prefill convolution for a prompt of `prompt` positions (flash only;
    /// None for the other methods, whose prompt goes token by token or, for `none`,
    /// needs no history term). `filters`: each layer's filter `[D][prompt]`.
    pub fn prefill_conv(
        &self,
        kernels: &MixerKernels,
        filters: &[Vec<f32>],
        prompt: usize,
    ) -> Result<Option<PrefillConv>> {
        if self.method != Method::Flash || prompt == 0 {
            return Ok(None);
        }
        let size = prompt.next_power_of_two();
        let mut planner = kernels
            .planner
            .lock()
            .map_err(|_| Error::gpu("FFT planner lock poisoned"))?;
        let twiddles = planner.plan(2 * size)?.twiddles().clone();
        let unused = self.ctx.buffer_zeroed("unused", 16)?;
        let mut levels = Vec::with_capacity(self.groups.len());
        for g in &self.groups {
            let cols = (g.start, g.width);
            let spectra = level_spectra(filters, (self.d, prompt), cols, size, Taps::Prefill);
            let bufs = [&twiddles, &g.v_hist, &g.z_acc, &unused];
            let sizes = (size, g.width);
            levels.push(FftLevel::new(
                &self.ctx,
                kernels,
                &mut planner,
                bufs,
                Spectra::Host(spectra),
                sizes,
            )?);
        }
        Ok(Some(PrefillConv {
            prompt,
            size,
            levels,
        }))
    }

    /// Records the prefill convolution of the adjacent `layers` (their v history over
    /// the whole prompt must be written): `z_acc[j] += sum_{s<j} k[j - s] v_s` for every
    /// prompt position j. One job per channel group the layers' channels touch.
    pub fn record_prefill_conv(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        arena: &mut ParamArena,
        k: &MixerKernels,
        conv: &PrefillConv,
        layers: std::ops::Range<usize>,
    ) -> Result<()> {
        for (group, g) in self.groups.iter().enumerate() {
            // Adjacent layers' slices in one group are adjacent columns.
            let mut cols = self.slices[layers.clone()]
                .iter()
                .flatten()
                .filter(|s| s.group == group)
                .map(|s| (s.col0, s.col0 + s.count));
            let Some(first) = cols.next() else { continue };
            let (start, end) = cols.fold(first, |(a, b), (c, d)| (a.min(c), b.max(d)));
            let job = FftJob {
                size: conv.size,
                in_start: 0,
                valid: conv.prompt,
                out_start: 0,
                outputs: conv.prompt,
                out_base: 0,
                columns: (start, end - start),
                stride: g.width,
            };
            job.record(pass, arena, k, &conv.levels[group])?;
        }
        Ok(())
    }

    /// After a prefill of `prompt` positions: the tiles of the steps t < prompt that
    /// reach past the prompt, which add to z_acc exactly the pairs (s, j), s < prompt
    /// <= j, that token-by-token processing of the prompt would have added. (They also
    /// add to positions inside the prompt, which nothing reads any more.) Later tiles
    /// add the other pairs, so nothing is counted twice.
    pub fn record_prefill_tiles(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        arena: &mut ParamArena,
        k: &MixerKernels,
        prompt: usize,
    ) -> Result<()> {
        if self.method != Method::Flash {
            return Ok(());
        }
        for (tile, part) in tiling::seeding_work(prompt, self.len, self.spread) {
            self.record_part(pass, arena, k, &tile, part)?;
        }
        Ok(())
    }

    /// Upper bound on the dispatches of a prefill of `prompt` positions that the mixer
    /// records (the convolutions of every layer and the seeding tiles).
    pub fn prefill_dispatches(&self, prompt: usize) -> usize {
        let slices: usize = self.slices.iter().map(Vec::len).sum();
        let parts = tiling::seeding_work(prompt, self.len, self.spread).len();
        (slices + parts * self.groups.len()) * 16
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
        for s in &self.slices[0] {
            let w = self.words(0, t, s.group, Some(s));
            let (_, bench_step, groups) = s.gate_kernels(k);
            dispatch(pass, arena, bench_step.get()?, &s.bench_step, &w, groups)?;
            self.record_history_term(pass, arena, k, s, &w)?;
        }
        self.record_tiles(pass, arena, k, t)
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

    /// The shader's lag count is the one the kernels' taps and the tile schedule assume,
    /// and the gate's taps sit where the shader reads them.
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

    /// Every split covers the channels, fits the limit, keeps quads aligned, and uses
    /// the widest groups that fit.
    #[test]
    fn groups_fit_and_cover() {
        for channels in [1usize, 2, 3, 7, 8, 9, 42, 84, 256, 1024, 1027] {
            for len in [1usize, 5, 100, 2100, 5000] {
                for largest in [0usize, 64, 1024, 2048, 4096] {
                    for limit in [16u64, 4000, 40_000, 1 << 20, 1 << 27] {
                        let Ok(g) = plan_groups(channels, len, largest, limit) else {
                            assert!(group_buffer_bytes(1, len, largest) > limit);
                            continue;
                        };
                        assert_eq!(g.widths.iter().sum::<usize>(), channels);
                        let w = g.widths[0];
                        assert!(group_buffer_bytes(w, len, largest) <= limit);
                        assert_eq!(g.largest_buffer, group_buffer_bytes(w, len, largest));
                        if g.widths.len() > 1 {
                            assert!(w < 4 || w % 4 == 0, "{w}");
                            assert!(g.widths[..g.widths.len() - 1].iter().all(|&x| x == w));
                            let wider = if w >= 4 { w + 4 } else { w + 1 };
                            assert!(group_buffer_bytes(wider, len, largest) > limit);
                        }
                    }
                }
            }
        }
    }

    /// Lazy's groups cover the channels, fit the limit and never span two layers; the
    /// other methods take the widest groups.
    #[test]
    fn lazy_groups_stay_within_layers() {
        for (layers, d) in [(1usize, 8usize), (3, 8), (4, 256), (5, 11)] {
            for limit in [4000u64, 40_000, 1 << 27] {
                let len = 100;
                let lazy = plan_mixer_groups(Method::Lazy, (layers, d), len, 16, limit).unwrap();
                assert_eq!(lazy.widths.iter().sum::<usize>(), layers * d);
                assert!(lazy.largest_buffer <= limit);
                let mut start = 0;
                for w in &lazy.widths {
                    assert_eq!(start / d, (start + w - 1) / d, "{:?}", lazy.widths);
                    start += w;
                }
                let flash = plan_mixer_groups(Method::Flash, (layers, d), len, 16, limit).unwrap();
                let widest = plan_groups(
                    layers * d,
                    len,
                    largest_fft_tile(Method::Flash, len, 16),
                    limit,
                );
                assert_eq!(flash, widest.unwrap());
            }
        }
    }

    #[test]
    fn slices_partition_each_layer() {
        let widths = [8, 8, 8, 8, 8, 4];
        let d = 11;
        let mut seen = [0u32; 44];
        for layer in 0..4 {
            for (g, c0, count, col0) in layer_slices(layer, d, &widths) {
                let start: usize = widths[..g].iter().sum();
                assert!(col0 + count <= widths[g]);
                for i in 0..count {
                    assert_eq!(start + col0 + i, layer * d + c0 + i);
                    seen[layer * d + c0 + i] += 1;
                }
            }
        }
        assert!(seen.iter().all(|&n| n == 1));
    }
}
