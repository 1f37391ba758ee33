//! Building a mixer's GPU state: each channel group's arenas (v history, z
//! accumulators, filter taps, lazy's textures) and kernel bindings, and each layer's
//! slices with theirs.

use super::flash::fft_levels;
use super::flash::FlashGroup;
use super::lazy::{LazyKernel, LazySum};
use super::plan::lazy_textures;
use super::{conv_tap, GateKind, Group, GroupWork, Method, MixerIo, MixerKernels, Slice};
use crate::error::Result;
use crate::gpu::{DeferredKernel, GpuContext, LinearTexture, Bind};

/// What building a mixer's groups and slices reads.
pub(super) struct Build<'a> {
    pub(super) ctx: &'a GpuContext,
    pub(super) kernels: &'a MixerKernels,
    pub(super) method: Method,
    pub(super) io: &'a MixerIo<'a>,
    /// (D, len).
    pub(super) shape: (usize, usize),
    pub(super) unused: &'a Unused,
}

/// Placeholder buffers for the bindings a kernel does not use.
pub(super) struct Unused(pub(super) [wgpu::Buffer; 4]);

impl Unused {
    pub(super) fn new(ctx: &GpuContext) -> Result<Self> {
        let b = |i: usize| ctx.buffer_zeroed(&format!("unused{i}"), 16);
        Ok(Unused([b(0)?, b(1)?, b(2)?, b(3)?]))
    }
}

/// One group's arenas: the v history, the z accumulators, the filter taps (a
/// placeholder where lazy reads them from a texture), and lazy's textures.
pub(super) struct Arenas {
    pub(super) v_hist: wgpu::Buffer,
    pub(super) z_acc: wgpu::Buffer,
    pub(super) k: wgpu::Buffer,
    /// Lazy's v history and filter taps as textures, where they are kept there.
    pub(super) textures: Option<(LinearTexture, LinearTexture)>,
}

impl Arenas {
    /// The arenas of the group of `width` channels from `start` on, with its filter taps
    /// time-major: `k[t * width + g - start]`.
    pub(super) fn new(b: &Build<'_>, (start, width): (usize, usize)) -> Result<Self> {
        let (ctx, method, (d, len)) = (b.ctx, b.method, b.shape);
        let rows = width as u64 * len as u64;
        let mut flat = Vec::with_capacity(rows as usize);
        for t in 0..len {
            let taps =
                (start..start + width).map(|g| conv_tap(method, b.io.filters, (d, len), g, t));
            flat.extend(taps);
        }
        let (k, textures) = if lazy_textures(ctx, method, b.io.textures, (width, d), len) {
            let bytes = bytemuck::cast_slice(&flat);
            let k = ctx.linear_texture("filters", bytes, wgpu::TextureFormat::Rgba32Float)?;
            let v = ctx.linear_texture_rw("v history", flat.len() / 4)?;
            (b.unused.0[0].clone(), Some((v, k)))
        } else {
            (ctx.buffer_init("filters", &flat)?, None)
        };
        let needs_acc = matches!(method, Method::Flash | Method::Eager);
        Ok(Arenas {
            v_hist: ctx.buffer_zeroed("v_hist", rows * 4)?,
            z_acc: ctx.buffer_zeroed("z_acc", if needs_acc { rows * 4 } else { 16 })?,
            k,
            textures,
        })
    }
}

impl Group {
    /// The group of `width` channels from `start` on over `a`, with its method's state:
    /// eager's and flash's bindings over all layers, and flash's FFT levels.
    pub(super) fn new(b: &Build<'_>, a: &Arenas, (start, width): (usize, usize)) -> Result<Self> {
        let (ctx, k) = (b.ctx, b.kernels);
        let [d0, d1, d2, d3] = &b.unused.0;
        let bind6 =
            |kern: &DeferredKernel| kern.bind(ctx, &[&a.v_hist, &a.k, d0, &a.z_acc, d1, d2]);
        let work = match b.method {
            Method::Flash => {
                let bufs = [&a.v_hist, &a.z_acc, &a.k, d3];
                GroupWork::Flash(FlashGroup {
                    direct: bind6(&k.tile_direct),
                    urgent: bind6(&k.tile_urgent),
                    levels: fft_levels(ctx, k, b.io, b.shape, (start, width), bufs)?,
                })
            }
            Method::Eager => GroupWork::Eager(bind6(&k.eager)),
            Method::Lazy | Method::None => GroupWork::Nothing,
        };
        Ok(Group {
            start,
            width,
            v_hist: a.v_hist.clone(),
            z_acc: a.z_acc.clone(),
            work,
        })
    }
}

impl Slice {
    /// The slice `(group, c0, count, col0)` of layer `l` in the group of `width`
    /// channels over `a`, with its gate's bindings and, for lazy, its sum's.
    pub(super) fn new(
        b: &Build<'_>,
        a: &Arenas,
        width: usize,
        l: usize,
        (group, c0, count, col0): (usize, usize, usize, usize),
    ) -> Self {
        let (ctx, k, io, d) = (b.ctx, b.kernels, b.io, b.shape.0);
        let d3 = &b.unused.0[3];
        let (v, p) = (&a.v_hist, &io.params[l]);
        let gate_bufs = [&io.u_ring[l], p, &a.z_acc, v, io.x0, io.y];
        let vec4 = [width, col0, count].iter().all(|x| x % 4 == 0);
        let quads = vec4 && d % 4 == 0 && c0 % 4 == 0;
        let slice = |kind, gate, lazy| Slice {
            group,
            c0,
            count,
            col0,
            kind,
            gate,
            lazy,
        };
        let kind = if quads { GateKind::Quads } else { GateKind::Scalar };
        let Some((v_tex, k_tex)) = &a.textures else {
            let lazy = (b.method == Method::Lazy).then(|| LazySum {
                kernel: if vec4 { LazyKernel::Vec4 } else { LazyKernel::Scalar },
                bind: k.lazy.bind(ctx, &[v, &a.k, p, io.x0, io.y, d3]),
            });
            let gate = kind.pick([&k.gate, &k.gate4, &k.gate_tex]);
            return slice(kind, gate.bind(ctx, &gate_bufs), lazy);
        };
        // Lazy with its v history and filter taps in textures: the gate also stores v_t
        // in the v texture, so it binds the buffers and then the texture's view.
        let mut gate: Vec<_> = gate_bufs.iter().map(|b| b.as_entire_binding()).collect();
        gate.push(wgpu::BindingResource::TextureView(&v_tex.view));
        let views = [v_tex, k_tex].map(|t| wgpu::BindingResource::TextureView(&t.view));
        let rest = [p, io.x0, io.y, d3].map(|b| b.as_entire_binding());
        let lazy = LazySum {
            kernel: LazyKernel::Vec4Texture,
            bind: k
                .lazy4_tex
                .bind_resources(ctx, [views.to_vec(), rest.to_vec()].concat()),
        };
        let gate = k.gate_tex.bind_resources(ctx, gate);
        slice(GateKind::QuadsTexture, gate, Some(lazy))
    }
}
