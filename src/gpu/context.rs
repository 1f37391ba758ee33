//! Getting a device: adapters picked from the environment ([`pick_adapter`]), or a
//! host's own device ([`GpuContext::from_device`]); the limits and features flashconv
//! checks; buffer creation; wgpu errors recorded by the context's handlers.

use super::block_on;
use crate::error::{Error, Result};
use std::sync::{Arc, Mutex};

/// A wgpu device and queue plus what flashconv needs to know about them.
#[derive(Clone, Debug)]
pub struct GpuContext {
    /// The device all buffers and pipelines live on.
    pub device: wgpu::Device,
    /// The queue work is submitted to.
    pub queue: wgpu::Queue,
    /// Adapter name, backend, device type and driver.
    pub info: wgpu::AdapterInfo,
    /// The limits the device was created with (the adapter's real limits).
    pub limits: wgpu::Limits,
    /// The optional features enabled on the device.
    pub features: wgpu::Features,
    /// wgpu errors nobody caught and device-lost reports, turned into [`Error::Gpu`] by
    /// the next [`GpuContext::wait`] (only on devices flashconv created itself).
    pub(super) errors: Arc<Mutex<Vec<String>>>,
}

/// Optional features flashconv uses when the adapter has them (the f32 path never needs them).
pub fn wanted_features() -> wgpu::Features {
    wgpu::Features::SHADER_F16 | wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SUBGROUP
}

/// A wgpu instance honouring `WGPU_BACKEND` (and the other `WGPU_*` instance variables).
pub fn instance_from_env() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

/// What flashconv's kernels need from a device: (limit name, needed, what the device has).
/// The f32 path needs no optional feature; these are WebGPU's defaults, so every
/// conforming device meets them.
pub fn requirements(limits: &wgpu::Limits) -> [(&'static str, u64, u64); 5] {
    [
        // The mixer kernels bind six storage buffers (mixer.wgsl).
        (
            "max_storage_buffers_per_shader_stage",
            6,
            limits.max_storage_buffers_per_shader_stage as u64,
        ),
        // The FFT kernels keep 2048 complex f32 values in workgroup memory.
        (
            "max_compute_workgroup_storage_size",
            16384,
            limits.max_compute_workgroup_storage_size as u64,
        ),
        // Workgroups of 256 threads in one dimension.
        (
            "max_compute_invocations_per_workgroup",
            256,
            limits.max_compute_invocations_per_workgroup as u64,
        ),
        (
            "max_compute_workgroup_size_x",
            256,
            limits.max_compute_workgroup_size_x as u64,
        ),
        // One dynamic-offset uniform per dispatch.
        (
            "max_dynamic_uniform_buffers_per_pipeline_layout",
            1,
            limits.max_dynamic_uniform_buffers_per_pipeline_layout as u64,
        ),
    ]
}

/// A wgpu instance limited to `backends` (its other settings from the environment).
pub fn instance_for(backends: wgpu::Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = backends;
    wgpu::Instance::new(desc)
}

/// All adapters the instance can see (for `flashconv info`).
#[cfg(not(target_arch = "wasm32"))]
pub fn list_adapters(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
}

/// Picks an adapter: the first whose name contains `WGPU_ADAPTER_NAME` (case-insensitive)
/// when that is set, else wgpu's default choice (high performance unless
/// `WGPU_POWER_PREF` says otherwise).
pub fn pick_adapter(instance: &wgpu::Instance) -> Result<wgpu::Adapter> {
    block_on(pick_adapter_async(instance))
}

/// [`pick_adapter`] without blocking (in a browser: the page's WebGPU adapter; there is
/// no environment, so `WGPU_ADAPTER_NAME` does not apply).
pub async fn pick_adapter_async(instance: &wgpu::Instance) -> Result<wgpu::Adapter> {
    #[cfg(not(target_arch = "wasm32"))]
    if let Ok(want) = std::env::var("WGPU_ADAPTER_NAME") {
        let want_lc = want.to_lowercase();
        let adapters = instance.enumerate_adapters(wgpu::Backends::all()).await;
        let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
        return adapters
            .into_iter()
            .find(|a| a.get_info().name.to_lowercase().contains(&want_lc))
            .ok_or_else(|| {
                Error::gpu(format!(
                    "WGPU_ADAPTER_NAME={want:?} matches no adapter; found: {names:?}. \
                     Unset it or pick one of those names"
                ))
            });
    }
    let opts = wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::from_env()
            .unwrap_or(wgpu::PowerPreference::HighPerformance),
        ..Default::default()
    };
    instance.request_adapter(&opts).await.map_err(|e| {
        if cfg!(target_arch = "wasm32") {
            Error::gpu(format!(
                "no WebGPU adapter ({e}): this browser has WebGPU turned off or no GPU it \
                 supports (Chromium: try --enable-unsafe-webgpu)"
            ))
        } else {
            Error::gpu(format!(
                "no GPU adapter found ({e}). On Linux without a GPU install Mesa's software \
                 Vulkan driver: apt-get install mesa-vulkan-drivers libvulkan1 \
                 (and check WGPU_BACKEND)"
            ))
        }
    })
}

impl GpuContext {
    /// Creates a device on the adapter chosen by [`pick_adapter`], with the adapter's real
    /// limits and the optional features of [`wanted_features`] that it has.
    pub fn new() -> Result<Self> {
        block_on(Self::new_async())
    }

    /// [`GpuContext::new`] without blocking: the way to get a device in a browser.
    pub async fn new_async() -> Result<Self> {
        let instance = instance_from_env();
        let adapter = pick_adapter_async(&instance).await?;
        Self::on_adapter_with_limits_async(&adapter, |_| {}).await
    }

    /// Like [`GpuContext::new`] on one of `backends` only (e.g. `wgpu::Backends::GL` to
    /// compare a GL driver with a Vulkan one in the same process).
    pub fn on_backends(backends: wgpu::Backends) -> Result<Self> {
        let adapter = pick_adapter(&instance_for(backends))?;
        Self::on_adapter(&adapter)
    }

    /// Like [`GpuContext::new`] with the device's limits lowered below the adapter's by
    /// `adjust`, e.g. to run as a browser would under WebGPU's default 128 MiB storage
    /// binding, or to test the mixer's channel groups with small models.
    /// wgpu enforces the lowered limits.
    pub fn new_with_limits(adjust: impl FnOnce(&mut wgpu::Limits)) -> Result<Self> {
        let instance = instance_from_env();
        let adapter = pick_adapter(&instance)?;
        Self::on_adapter_with_limits(&adapter, adjust)
    }

    /// Creates a device on a given adapter (adapter limits, wanted features when present).
    pub fn on_adapter(adapter: &wgpu::Adapter) -> Result<Self> {
        Self::on_adapter_with_limits(adapter, |_| {})
    }

    /// Creates a device on a given adapter with its limits adjusted by `adjust` (which
    /// may only lower them: raising a limit past the adapter's makes request_device fail).
    pub fn on_adapter_with_limits(
        adapter: &wgpu::Adapter,
        adjust: impl FnOnce(&mut wgpu::Limits),
    ) -> Result<Self> {
        block_on(Self::on_adapter_with_limits_async(adapter, adjust))
    }

    /// [`GpuContext::on_adapter_with_limits`] without blocking.
    pub async fn on_adapter_with_limits_async(
        adapter: &wgpu::Adapter,
        adjust: impl FnOnce(&mut wgpu::Limits),
    ) -> Result<Self> {
        let features = adapter.features() & wanted_features();
        let mut limits = adapter.limits();
        adjust(&mut limits);
        let desc = wgpu::DeviceDescriptor {
            label: Some("flashconv"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        };
        let (device, queue) = adapter
            .request_device(&desc)
            .await
            .map_err(|e| Error::gpu(format!("request_device failed: {e}")))?;
        let ctx = Self::from_device(device, queue, adapter.get_info());
        // wgpu's default handler panics on an uncaught error; record it instead, so the
        // caller gets an Err from the next wait.
        let slot = ctx.errors.clone();
        ctx.device
            .on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                let msg = describe_wgpu_error(&e);
                log::error!("wgpu: {msg}");
                if let Ok(mut v) = slot.lock() {
                    v.push(msg);
                }
            }));
        let slot = ctx.errors.clone();
        ctx.device.set_device_lost_callback(move |reason, msg| {
            if let Ok(mut v) = slot.lock() {
                v.push(format!("device lost ({reason:?}): {msg}"));
            }
        });
        Ok(ctx)
    }

    /// Wraps a host application's device and queue. flashconv uses the limits and
    /// features the device was created with and allocates nothing until a model is loaded.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue, info: wgpu::AdapterInfo) -> Self {
        let limits = device.limits();
        let features = device.features();
        GpuContext {
            device,
            queue,
            info,
            limits,
            features,
            errors: Arc::default(),
        }
    }

    /// Checks the device against [`requirements`] before anything is compiled or
    /// allocated; the error names every limit that falls short.
    pub fn check_requirements(&self) -> Result<()> {
        let short: Vec<String> = requirements(&self.limits)
            .iter()
            .filter(|(_, need, have)| have < need)
            .map(|(name, need, have)| format!("{name} is {have}, flashconv needs {need}"))
            .collect();
        if short.is_empty() {
            return Ok(());
        }
        Err(Error::Limit(format!(
            "device {} is below WebGPU's default limits: {}; pick another adapter \
             (WGPU_ADAPTER_NAME, WGPU_BACKEND) or create the device with the adapter's limits",
            self.describe(),
            short.join("; ")
        )))
    }

    /// A one-line description: adapter name, backend, device type.
    pub fn describe(&self) -> String {
        format!(
            "{} ({:?}, {:?})",
            self.info.name, self.info.backend, self.info.device_type
        )
    }

    /// Creates a storage buffer holding `data` (usable as copy source and destination).
    pub fn buffer_init<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> Result<wgpu::Buffer> {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let buf = self.buffer_zeroed(label, bytes.len() as u64)?;
        if !bytes.is_empty() {
            self.queue.write_buffer(&buf, 0, bytes);
        }
        Ok(buf)
    }

    /// Creates a zeroed storage buffer of `size` bytes (rounded up to 16), checking it
    /// against the device's buffer-size limits first.
    pub fn buffer_zeroed(&self, label: &str, size: u64) -> Result<wgpu::Buffer> {
        let size = size.max(16).div_ceil(16) * 16;
        let limit = self
            .limits
            .max_buffer_size
            .min(self.limits.max_storage_buffer_binding_size);
        if size > limit {
            return Err(Error::Limit(format!(
                "buffer '{label}' needs {size} bytes but this device binds at most {limit} \
                 bytes per storage buffer; use a shorter session (--max-tokens) or a smaller model"
            )));
        }
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        }))
    }
}

/// A wgpu error as one line: its kind and description (the Display form is only the kind).
pub fn describe_wgpu_error(e: &wgpu::Error) -> String {
    // The Display form is multi-line; the error's source chain says the same in parts.
    let (kind, first): (&str, &(dyn std::error::Error + 'static)) = match e {
        wgpu::Error::OutOfMemory { source } => ("out of GPU memory", source.as_ref()),
        wgpu::Error::Validation { source, .. } => ("validation error", source.as_ref()),
        wgpu::Error::Internal { source, .. } => ("internal error", source.as_ref()),
    };
    let mut parts = vec![kind.to_string()];
    let mut cur = Some(first);
    while let Some(err) = cur {
        parts.push(err.to_string());
        cur = err.source();
    }
    parts.dedup();
    parts.join(": ")
}
