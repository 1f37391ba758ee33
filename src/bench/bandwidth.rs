//! The device's bandwidth, measured in the same run as the timings: a copy kernel
//! (storage buffers) and a texture read (what weights in textures stream at).

use crate::error::Result;
use crate::gpu::{param_block, Access, Bind, GpuContext, Kernel, ParamArena, Step};
use crate::shaders::Shader;
use crate::Instant;

/// Bytes the copy kernel reads (and writes) per run: large enough that no cache of the
/// device or of the CPU under lavapipe holds it.
pub const COPY_BYTES: u64 = 256 << 20;

/// Copy bandwidth of the device in GB/s (bytes read + bytes written per second) with a
/// plain copy kernel over [`COPY_BYTES`] (less where the device's buffers are smaller),
/// bound in pieces within the storage-binding limit, best of several runs.
pub fn copy_bandwidth(ctx: &GpuContext) -> Result<f64> {
    let align = ctx.limits.min_storage_buffer_offset_alignment.max(16) as u64;
    let piece = (ctx.limits.max_storage_buffer_binding_size.min(128 << 20) / align) * align;
    let bytes = (COPY_BYTES.min(ctx.limits.max_buffer_size) / piece).max(1) * piece;
    // Larger than one binding on purpose (bound piece by piece below), so not through
    // buffer_zeroed, which holds every buffer to the binding limit.
    let buffer = |label| {
        ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        })
    };
    let (src, dst) = (buffer("copy_src"), buffer("copy_dst"));
    ctx.take_errors()?;
    let source = Shader::Bench.source();
    let kernel = Kernel::new(ctx, &source, "copy", &[Access::Read, Access::ReadWrite])?;
    fn range(buf: &wgpu::Buffer, offset: u64, size: u64) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: buf,
            offset,
            size: std::num::NonZeroU64::new(size),
        })
    }
    let groups: Vec<wgpu::BindGroup> = (0..bytes / piece)
        .map(|i| {
            ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("copy"),
                layout: &kernel.storage_layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: range(&src, i * piece, piece),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: range(&dst, i * piece, piece),
                    },
                ],
            })
        })
        .collect();
    let n = (piece / 16) as u32;
    let mut arena = ParamArena::new(ctx, &kernel.param_layout, groups.len());
    // Bytes read and written.
    best_rate(ctx, &mut arena, 2 * bytes, |step| {
        for bg in &groups {
            step.dispatch(
                &kernel,
                bg,
                &BenchParams {
                    n,
                    ..Default::default()
                },
                n.div_ceil(256 * 16),
            )?;
        }
        Ok(())
    })
}

param_block! {
    /// The bandwidth kernels' parameter block (`Params` in `bench.wgsl`).
    pub(crate) struct BenchParams as "Params" {
        /// Elements (vec4s or texels) to read.
        n: u32,
        pad0: u32,
        pad1: u32,
        pad2: u32,
        pad3: [u32; 4],
        pad4: [u32; 4],
        pad5: [u32; 4],
    }
}

/// Best GB/s (`bytes` over the seconds of one submit-and-wait) of the work `record`
/// records, over 5 timed runs after one untimed run (which touches every page, or lets
/// wgpu clear a new texture).
fn best_rate(
    ctx: &GpuContext,
    arena: &mut ParamArena,
    bytes: u64,
    mut record: impl FnMut(&mut Step<'_>) -> Result<()>,
) -> Result<f64> {
    let mut best = 0f64;
    for run in 0..6 {
        let mut step = Step::new(ctx, arena);
        record(&mut step)?;
        let commands = step.finish();
        ctx.wait()?;
        let start = Instant::now();
        ctx.queue.submit([commands]);
        ctx.wait()?;
        if run > 0 {
            best = best.max(bytes as f64 / start.elapsed().as_secs_f64() / 1e9);
        }
    }
    Ok(best)
}

// bench.wgsl's texture_read splits texel indices for this width.
const _: () = assert!(crate::gpu::TEXTURE_WIDTH == 2048);

/// Read-only bandwidth (GB/s) from a texture of up to [`COPY_BYTES`] (2048 x 8192
/// rgba32float texels where the device allows, fewer rows otherwise): how fast the
/// products can stream weights kept in textures ([`WeightStorage`](crate::WeightStorage)). On llvmpipe this
/// outruns the copy kernel, whose storage-buffer loads and stores loop over the lanes.
pub fn texture_read_bandwidth(ctx: &GpuContext) -> Result<f64> {
    let width = crate::gpu::TEXTURE_WIDTH as u64;
    let rows = (COPY_BYTES / (16 * width)).min(ctx.limits.max_texture_dimension_2d as u64);
    let format = wgpu::TextureFormat::Rgba32Float;
    let usage = wgpu::TextureUsages::TEXTURE_BINDING;
    let texels = (width * rows) as u32;
    let texture = ctx.linear_texture_empty("texture_read", texels as usize, format, usage)?;
    let view = texture.create_view(&Default::default());
    const GROUPS: u32 = 256;
    let sums = ctx.buffer_zeroed("texture_read sums", GROUPS as u64 * 256 * 16)?;
    ctx.take_errors()?;
    let access = [Access::Texture, Access::ReadWrite];
    let kernel = Kernel::new(ctx, &Shader::Bench.source(), "texture_read", &access)?;
    let bg = kernel.bind_resources(
        ctx,
        vec![
            wgpu::BindingResource::TextureView(&view),
            sums.as_entire_binding(),
        ],
    );
    let mut arena = ParamArena::new(ctx, &kernel.param_layout, 1);
    best_rate(ctx, &mut arena, 16 * texels as u64, |step| {
        step.dispatch(
            &kernel,
            &bg,
            &BenchParams {
                n: texels,
                ..Default::default()
            },
            GROUPS,
        )
    })
}
