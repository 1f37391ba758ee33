//! Compute kernels with explicit bind group layouts ([`Kernel`]), built up front or on
//! first use ([`DeferredKernel`]), and how each binds its resources ([`Access`]).

use super::{describe_wgpu_error, GpuContext};
#[cfg(not(target_arch = "wasm32"))]
use crate::error::Error;
use crate::error::Result;
use std::sync::Arc;

/// How a kernel binds one resource of its group 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `var<storage, read>`
    Read,
    /// `var<storage, read_write>`
    ReadWrite,
    /// `texture_2d<f32>` (unfilterable float, read with `textureLoad`): read-only data
    /// that llvmpipe fetches with vector gathers, where storage-buffer loads are a loop
    /// over the SIMD lanes (see [`WeightStorage`](crate::session::WeightStorage)).
    Texture,
    /// `texture_storage_2d<rgba32float, write>`: a [`LinearTexture`](super::LinearTexture) the kernel writes
    /// ([`GpuContext::linear_texture_rw`]).
    TextureWrite,
}

impl Access {
    fn binding_type(self) -> wgpu::BindingType {
        match self {
            Access::Texture => wgpu::BindingType::Texture {
                sample_type: wgpu::TextureSampleType::Float { filterable: false },
                view_dimension: wgpu::TextureViewDimension::D2,
                multisampled: false,
            },
            Access::TextureWrite => wgpu::BindingType::StorageTexture {
                access: wgpu::StorageTextureAccess::WriteOnly,
                format: wgpu::TextureFormat::Rgba32Float,
                view_dimension: wgpu::TextureViewDimension::D2,
            },
            Access::Read | Access::ReadWrite => wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage {
                    read_only: self == Access::Read,
                },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
        }
    }
}

/// A compute pipeline with explicit layouts: group 0 binding 0 is a uniform parameter
/// block addressed with a dynamic offset into a [`ParamArena`](super::ParamArena); group 1 holds the storage
/// buffers in the order given by `access`.
#[derive(Debug)]
pub struct Kernel {
    /// The compiled pipeline.
    pub pipeline: wgpu::ComputePipeline,
    /// Layout of group 1 (storage buffers).
    pub storage_layout: wgpu::BindGroupLayout,
    /// Layout of group 0 (dynamic-offset uniform).
    pub param_layout: wgpu::BindGroupLayout,
    /// The kernel's entry point (for messages).
    pub name: String,
}

/// The layout of group 0, the same for every kernel: one uniform parameter block at a
/// dynamic offset ([`ParamArena`](super::ParamArena)).
pub(crate) fn param_layout(ctx: &GpuContext) -> wgpu::BindGroupLayout {
    ctx.device
        .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("params"),
            entries: &[wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: true,
                    min_binding_size: None,
                },
                count: None,
            }],
        })
}

/// The layout of group 1: one binding per entry of `access`, in order.
fn storage_layout(ctx: &GpuContext, label: &str, access: &[Access]) -> wgpu::BindGroupLayout {
    let entries: Vec<_> = access
        .iter()
        .enumerate()
        .map(|(i, a)| wgpu::BindGroupLayoutEntry {
            binding: i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: a.binding_type(),
            count: None,
        })
        .collect();
    ctx.device
        .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(label),
            entries: &entries,
        })
}

/// Making bind groups for a kernel's storage (group 1), whose layout it holds: one
/// piece of code for [`Kernel`] and [`DeferredKernel`], which can bind before it is
/// compiled.
pub trait Bind {
    /// The label of its bind groups and the layout of group 1.
    fn group1(&self) -> (&str, &wgpu::BindGroupLayout);

    /// A bind group for group 1 over `buffers` (whole buffers, in binding order).
    fn bind(&self, ctx: &GpuContext, buffers: &[&wgpu::Buffer]) -> wgpu::BindGroup {
        self.bind_resources(ctx, buffers.iter().map(|b| b.as_entire_binding()).collect())
    }

    /// A bind group for group 1 over `resources` in binding order: whole buffers, or
    /// texture views where the kernel's access is [`Access::Texture`] or
    /// [`Access::TextureWrite`].
    fn bind_resources(
        &self,
        ctx: &GpuContext,
        resources: Vec<wgpu::BindingResource<'_>>,
    ) -> wgpu::BindGroup {
        let (label, layout) = self.group1();
        let entries: Vec<_> = resources
            .into_iter()
            .enumerate()
            .map(|(i, resource)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource,
            })
            .collect();
        ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout,
            entries: &entries,
        })
    }
}

impl Bind for Kernel {
    fn group1(&self) -> (&str, &wgpu::BindGroupLayout) {
        (&self.name, &self.storage_layout)
    }
}

impl Bind for DeferredKernel {
    fn group1(&self) -> (&str, &wgpu::BindGroupLayout) {
        (self.entry, &self.storage_layout)
    }
}

impl Kernel {
    /// Compiles `entry` of `source`; WGSL errors come back as [`Error::Gpu`](crate::Error::Gpu).
    pub fn new(ctx: &GpuContext, source: &str, entry: &str, access: &[Access]) -> Result<Self> {
        let layouts = (param_layout(ctx), storage_layout(ctx, entry, access));
        Self::with_layouts(ctx, source, entry, layouts)
    }

    /// [`Kernel::new`] with its group 0 and group 1 layouts made already.
    fn with_layouts(
        ctx: &GpuContext,
        source: &str,
        entry: &str,
        (param_layout, storage_layout): (wgpu::BindGroupLayout, wgpu::BindGroupLayout),
    ) -> Result<Self> {
        let dev = &ctx.device;
        let scope = dev.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = dev.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(entry),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let layout = dev.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(entry),
            bind_group_layouts: &[Some(&param_layout), Some(&storage_layout)],
            immediate_size: 0,
        });
        let pipeline = dev.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: Some(&layout),
            module: &module,
            entry_point: Some(entry),
            compilation_options: Default::default(),
            cache: None,
        });
        // Natively the scope's error is waited for here. On the web nothing may block:
        // the scope is popped and a task records its error in the context's error log,
        // which the next wait or read-back returns (GpuContext::wait_async).
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(err) = pollster::block_on(scope.pop()) {
            let msg = describe_wgpu_error(&err);
            return Err(Error::gpu(format!("compiling kernel '{entry}': {msg}")));
        }
        #[cfg(target_arch = "wasm32")]
        {
            let pop = scope.pop();
            let slot = ctx.errors.clone();
            let entry = entry.to_string();
            wasm_bindgen_futures::spawn_local(async move {
                if let Some(err) = pop.await {
                    let msg = format!("compiling kernel '{entry}': {}", describe_wgpu_error(&err));
                    log::error!("wgpu: {msg}");
                    if let Ok(mut v) = slot.lock() {
                        v.push(msg);
                    }
                }
            });
        }
        Ok(Kernel {
            pipeline,
            storage_layout,
            param_layout,
            name: entry.to_string(),
        })
    }

}

/// A [`Kernel`] whose pipeline is built on first use ([`DeferredKernel::get`]), with its
/// layouts made up front so that bind groups can be made before that. Lavapipe took
/// 107 ms to build the mixer's 18 pipelines, and a session dispatches few of them.
#[derive(Debug)]
pub struct DeferredKernel {
    ctx: GpuContext,
    source: Arc<str>,
    entry: &'static str,
    param_layout: wgpu::BindGroupLayout,
    storage_layout: wgpu::BindGroupLayout,
    kernel: std::sync::OnceLock<Kernel>,
}

impl DeferredKernel {
    /// `entry` of `source` with group 1 laid out by `access` and group 0 by
    /// `param_layout` (made by any kernel: they are all alike); nothing is compiled yet.
    pub fn new(
        ctx: &GpuContext,
        source: &Arc<str>,
        entry: &'static str,
        access: &[Access],
        param_layout: &wgpu::BindGroupLayout,
    ) -> Self {
        DeferredKernel {
            ctx: ctx.clone(),
            source: source.clone(),
            entry,
            param_layout: param_layout.clone(),
            storage_layout: storage_layout(ctx, entry, access),
            kernel: std::sync::OnceLock::new(),
        }
    }

    /// The kernel, compiled by the first call (WGSL errors come back as [`Error::Gpu`](crate::Error::Gpu)).
    pub fn get(&self) -> Result<&Kernel> {
        if let Some(k) = self.kernel.get() {
            return Ok(k);
        }
        let layouts = (self.param_layout.clone(), self.storage_layout.clone());
        let k = Kernel::with_layouts(&self.ctx, &self.source, self.entry, layouts)?;
        Ok(self.kernel.get_or_init(|| k))
    }
}
