//! The mixer's shader sources and its kernels, shared by a model's sessions and each
//! compiled when a session first needs it.

use crate::error::Result;
use crate::fft::{FftPlanner, FFT_LIB_WGSL};
use crate::gpu::{self, Access, DeferredKernel, GpuContext};
use crate::shaders::Shader;
use std::sync::{Arc, Mutex};

/// WGSL source of the mixer kernels (compiled after [`MIXER_PARAMS_WGSL`]).
pub const MIXER_WGSL: &str = include_str!("../../shaders/mixer.wgsl");
/// The parameter block shared by the mixer kernels.
pub const MIXER_PARAMS_WGSL: &str = include_str!("../../shaders/mixer_params.wgsl");
/// WGSL source of the four-channel lazy kernel (used when D is a multiple of 4;
/// compiled after [`MIXER_PARAMS_WGSL`]).
pub const MIXER_VEC4_WGSL: &str = include_str!("../../shaders/mixer_vec4.wgsl");
/// WGSL source of the FFT tile kernels (compiled after [`FFT_LIB_WGSL`]).
pub const TILE_WGSL: &str = include_str!("../../shaders/tile.wgsl");

/// WGSL functions of the gate (short conv, gating), shared by the mixer's gate kernel
/// and the session's fused out_proj kernel.
pub const GATE_LIB_WGSL: &str = include_str!("../../shaders/gate_lib.wgsl");

/// The per-step gate kernels, which read their parameter block through
/// [`gpu::unfoldable_params`]: their tests of `mode` and `t` are what lavapipe would
/// otherwise inline and recompile them for at every dispatch.
pub(super) const GATE_ENTRIES: [&str; 2] = ["gate", "gate4"];

/// The full source of the mixer kernels: parameter block, gate functions, then kernels
/// (the gates' parameters behind [`gpu::unfoldable_params`]).
pub fn mixer_source(textures: bool) -> String {
    mixer_source_with(textures, "", &GATE_ENTRIES)
}

/// [`mixer_source`] with `more` (kernels that use its bindings and helpers) after it and
/// the parameters of the entry points `gates` behind [`gpu::unfoldable_params`].
pub(super) fn mixer_source_with(textures: bool, more: &str, gates: &[&str]) -> String {
    let layout = super::layout_wgsl();
    let source =
        format!("{MIXER_PARAMS_WGSL}\n{layout}\n{GATE_LIB_WGSL}\n{MIXER_WGSL}\n{more}");
    let source = gpu::unfoldable_params(&source, gates);
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
    let layout = super::layout_wgsl();
    let source = format!("{MIXER_PARAMS_WGSL}\n{layout}\n{MIXER_VEC4_WGSL}");
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
pub(super) fn swap(source: String, from: &str, to: &str) -> String {
    debug_assert!(source.contains(from), "the shader source lacks `{from}`");
    source.replace(from, to)
}

/// The full source of the tile kernels: the FFT library, then the tiles.
pub fn tile_source() -> String {
    format!("{FFT_LIB_WGSL}\n{TILE_WGSL}")
}

/// The mixer kernels of a model, shared by its sessions. Each is compiled when a session
/// first needs it ([`DeferredKernel`]): a session uses the kernels of one method, and
/// building all of them took lavapipe about 0.1 s.
#[derive(Debug)]
pub struct MixerKernels {
    /// Group 0's layout, shared by every kernel.
    pub(super) param_layout: wgpu::BindGroupLayout,
    pub(super) gate: DeferredKernel,
    /// `gate`, four channels per thread.
    pub(super) gate4: DeferredKernel,
    /// `gate4` for lazy with its v history in a texture, which it also stores v_t in.
    pub(super) gate_tex: DeferredKernel,
    pub(super) lazy: DeferredKernel,
    pub(super) lazy4: DeferredKernel,
    /// `lazy4` with the v history and the filter taps in textures.
    pub(super) lazy4_tex: DeferredKernel,
    pub(super) eager: DeferredKernel,
    pub(super) tile_direct: DeferredKernel,
    pub(super) tile_urgent: DeferredKernel,
    pub(super) tile_fft: DeferredKernel,
    pub(super) spectra_fft: DeferredKernel,
    pub(super) spectra_store: DeferredKernel,
    pub(super) tile_gather: DeferredKernel,
    pub(super) tile_pointwise: DeferredKernel,
    pub(super) tile_scatter: DeferredKernel,
    pub(super) planner: Mutex<FftPlanner>,
}

pub(super) const TILE_ACCESS: [Access; 5] = [
    Access::Read,
    Access::Read,
    Access::Read,
    Access::ReadWrite,
    Access::ReadWrite,
];

pub(super) const MIXER_ACCESS: [Access; 6] = [
    Access::Read,
    Access::Read,
    Access::Read,
    Access::ReadWrite,
    Access::ReadWrite,
    Access::ReadWrite,
];

/// [`MIXER_ACCESS`] with the v history (binding 0) and the filter taps (binding 1) in
/// textures.
pub(super) const LAZY_TEX_ACCESS: [Access; 6] = [
    Access::Texture,
    Access::Texture,
    Access::Read,
    Access::ReadWrite,
    Access::ReadWrite,
    Access::ReadWrite,
];

impl MixerKernels {
    /// The parameter layout (identical for every kernel), for a [`ParamArena`](crate::gpu::ParamArena).
    pub fn param_layout(&self) -> &wgpu::BindGroupLayout {
        &self.param_layout
    }

    /// The kernels of `shaders/mixer.wgsl` and `shaders/tile.wgsl`, none compiled yet.
    pub fn new(ctx: &GpuContext) -> Result<Self> {
        let param_layout = gpu::param_layout(ctx);
        let deferred = |source: &Arc<str>, entry, access: &[Access]| {
            DeferredKernel::new(ctx, source, entry, access, &param_layout)
        };
        let mixer: Arc<str> = Shader::Mixer { textures: false }.source().into();
        let k = |entry| deferred(&mixer, entry, &MIXER_ACCESS);
        // Lazy's gates on CPU adapters: the same bindings, and the v texture to write.
        let mixer_tex: Arc<str> = Shader::Mixer { textures: true }.source().into();
        let tex_access = [&MIXER_ACCESS[..], &[Access::TextureWrite]].concat();
        let k_tex = |entry| deferred(&mixer_tex, entry, &tex_access);
        let tiles: Arc<str> = Shader::Tile.source().into();
        let t = |entry| deferred(&tiles, entry, &TILE_ACCESS);
        let lazy4: Arc<str> = Shader::MixerVec4 { textures: false }.source().into();
        let lazy4_tex: Arc<str> = Shader::MixerVec4 { textures: true }.source().into();
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
