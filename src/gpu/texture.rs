//! Arrays stored as 2D textures ([`LinearTexture`]), for the read-only streams that CPU
//! adapters fetch faster from textures than from storage buffers, and the WGSL that
//! reads and writes them.

use super::GpuContext;
use crate::error::{Error, Result};

/// Texels per row of a [`LinearTexture`] (a power of two, so that the shader splits an
/// index with a mask and a shift: [`linear_texture_wgsl`]). 2048 keeps the padding of a
/// small array under 32 KiB and lets 2048 x 8192 texels (256 MiB of f32) fit WebGPU's
/// default limit.
pub const TEXTURE_WIDTH: u32 = 2048;

/// Rows of a [`LinearTexture`] of `texels` texels (at least 1).
pub fn texture_rows(texels: usize) -> usize {
    texels.div_ceil(TEXTURE_WIDTH as usize).max(1)
}

/// An array stored as a 2D texture, [`TEXTURE_WIDTH`] texels a row, element i at texel
/// (i mod width, i / width): `vec4`s uploaded once ([`GpuContext::linear_texture`]), or
/// written by kernels ([`GpuContext::linear_texture_rw`]). Kernels read it with
/// `textureLoad` ([`linear_texture_wgsl`]): on llvmpipe a texture fetch is a vector
/// gather, where a storage-buffer load is a loop over the SIMD lanes (a read-only stream
/// measured 14 GB/s from a texture against 2.9 GB/s from a buffer on a 2-core EPYC).
#[derive(Debug)]
pub struct LinearTexture {
    /// The view kernels bind ([`Access::Texture`](super::Access::Texture)).
    pub view: wgpu::TextureView,
    /// Bytes of the texture, the padding of the last row included.
    pub bytes: u64,
}

/// WGSL that binds a [`LinearTexture`] as `var` (group 1, `binding`) and defines
/// `fn accessor(i: u32) -> vec4<f32>` reading its element i: what a kernel's buffer
/// binding and accessor are swapped for when the data lives in a texture.
pub fn linear_texture_wgsl(binding: u32, var: &str, accessor: &str) -> String {
    let shift = TEXTURE_WIDTH.trailing_zeros();
    let mask = TEXTURE_WIDTH - 1;
    format!(
        "@group(1) @binding({binding}) var {var}: texture_2d<f32>;\n\
         fn {accessor}(i: u32) -> vec4<f32> {{ \
         return textureLoad({var}, vec2<u32>(i & {mask}u, i >> {shift}u), 0); }}"
    )
}

/// WGSL that binds a [`LinearTexture`] for writing as `var` (group 1, `binding`,
/// [`Access::TextureWrite`](super::Access::TextureWrite)) and defines `fn store(i: u32, x: vec4<f32>)` writing its
/// element i.
pub fn linear_store_wgsl(binding: u32, var: &str, store: &str) -> String {
    let shift = TEXTURE_WIDTH.trailing_zeros();
    let mask = TEXTURE_WIDTH - 1;
    format!(
        "@group(1) @binding({binding}) var {var}: texture_storage_2d<rgba32float, write>;\n\
         fn {store}(i: u32, x: vec4<f32>) {{ \
         textureStore({var}, vec2<u32>(i & {mask}u, i >> {shift}u), x); }}"
    )
}

impl GpuContext {
    /// Whether a [`LinearTexture`] of `texels` texels fits this device's texture size
    /// limit.
    pub(crate) fn linear_texture_fits(&self, texels: usize) -> bool {
        let max = self.limits.max_texture_dimension_2d as usize;
        TEXTURE_WIDTH as usize <= max && texture_rows(texels) <= max
    }

    /// Uploads `data` (whole texels of `format`, `rgba32float` or `rgba16float`) as a
    /// [`LinearTexture`], zero past the end of `data` to fill the last row.
    pub(crate) fn linear_texture(
        &self,
        label: &str,
        data: &[u8],
        format: wgpu::TextureFormat,
    ) -> Result<LinearTexture> {
        let texel_bytes = match format {
            wgpu::TextureFormat::Rgba32Float => 16,
            wgpu::TextureFormat::Rgba16Float => 8,
            other => return Err(Error::gpu(format!("no linear textures of {other:?}"))),
        };
        let texels = data.len() / texel_bytes;
        let usage = wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST;
        let texture = self.linear_texture_empty(label, texels, format, usage)?;
        let size = texture.size();
        let row_bytes = TEXTURE_WIDTH as usize * texel_bytes;
        let mut padded = data.to_vec();
        padded.resize(size.height as usize * row_bytes, 0);
        self.queue.write_texture(
            texture.as_image_copy(),
            &padded,
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(row_bytes as u32),
                rows_per_image: Some(size.height),
            },
            size,
        );
        Ok(LinearTexture {
            view: texture.create_view(&Default::default()),
            bytes: padded.len() as u64,
        })
    }

    /// A zeroed `rgba32float` [`LinearTexture`] of `texels` texels that kernels write
    /// with `textureStore` ([`Access::TextureWrite`](super::Access::TextureWrite), [`linear_store_wgsl`]) and later
    /// dispatches read ([`Access::Texture`](super::Access::Texture), [`linear_texture_wgsl`]): lazy's v history
    /// on CPU adapters.
    pub(crate) fn linear_texture_rw(&self, label: &str, texels: usize) -> Result<LinearTexture> {
        let usage = wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::STORAGE_BINDING;
        let format = wgpu::TextureFormat::Rgba32Float;
        let texture = self.linear_texture_empty(label, texels, format, usage)?;
        Ok(LinearTexture {
            view: texture.create_view(&Default::default()),
            bytes: texture_rows(texels) as u64 * TEXTURE_WIDTH as u64 * 16,
        })
    }

    /// A [`TEXTURE_WIDTH`]-wide texture of `format` with rows for `texels` texels (wgpu
    /// zeroes it before first use), or [`Error::Limit`] where the rows exceed the
    /// device's `maxTextureDimension2D`.
    pub(crate) fn linear_texture_empty(
        &self,
        label: &str,
        texels: usize,
        format: wgpu::TextureFormat,
        usage: wgpu::TextureUsages,
    ) -> Result<wgpu::Texture> {
        if !self.linear_texture_fits(texels) {
            return Err(Error::Limit(format!(
                "'{label}' needs a texture of {TEXTURE_WIDTH} x {} texels and {} allows {} \
                 per side; store it in a buffer (WeightStorage::Buffer)",
                texture_rows(texels),
                self.describe(),
                self.limits.max_texture_dimension_2d
            )));
        }
        Ok(self.device.create_texture(&wgpu::TextureDescriptor {
            label: Some(label),
            size: wgpu::Extent3d {
                width: TEXTURE_WIDTH,
                height: texture_rows(texels) as u32,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format,
            usage,
            view_formats: &[],
        }))
    }
}
