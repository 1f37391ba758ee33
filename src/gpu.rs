//! GPU context: getting a device ([`GpuContext::new`]) is split from running on one
//! ([`GpuContext::from_device`]), so tests, the CLI and a host application can pass in
//! their own `wgpu::Device` and `Queue`.
//!
//! Also the small pieces every GPU module shares: compute kernels with explicit bind
//! group layouts ([`Kernel`]), a uniform arena of per-dispatch parameters addressed with
//! dynamic offsets ([`ParamArena`]), buffer creation and read-back.
//!
//! The API is async-first: [`GpuContext::new_async`] and [`GpuContext::read_via_async`]
//! never block, so they run in a browser (wasm32, WebGPU), where the page's event loop
//! completes buffer mappings. The blocking calls ([`GpuContext::new`],
//! [`GpuContext::read_via`], ...) are the same futures driven by [`block_on`]: natively
//! pollster, with the device polled inside the future; on the web a blocking call that
//! would have to wait returns an error naming the async call to use instead.

use crate::error::{Error, Result};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// Runs `fut` to completion on this thread (pollster). Futures of this module poll the
/// device themselves before they wait on a callback, so this never hangs.
#[cfg(not(target_arch = "wasm32"))]
pub fn block_on<T>(fut: impl Future<Output = Result<T>>) -> Result<T> {
    pollster::block_on(fut)
}

/// On the web nothing may block: the future is polled once and must be ready (work that
/// waits on the GPU is not). A future that is not ready is an error naming the cause.
#[cfg(target_arch = "wasm32")]
pub fn block_on<T>(fut: impl Future<Output = Result<T>>) -> Result<T> {
    let mut fut = std::pin::pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(r) => r,
        Poll::Pending => Err(Error::gpu(
            "a blocking call had to wait for the GPU, which cannot be done in a browser: \
             use the async API (GpuContext::read_via_async, Session::start_generation)",
        )),
    }
}

/// A one-value channel for wgpu callbacks: the callback sends, an async reader awaits.
/// (std's mpsc cannot be awaited; this is all flashconv needs of a futures crate.)
struct Oneshot<T>(Arc<Mutex<(Option<T>, Option<Waker>)>>);

impl<T> Oneshot<T> {
    fn new() -> (Self, Self) {
        let shared = Arc::new(Mutex::new((None, None)));
        (Oneshot(shared.clone()), Oneshot(shared))
    }

    fn send(&self, value: T) {
        if let Ok(mut g) = self.0.lock() {
            g.0 = Some(value);
            if let Some(w) = g.1.take() {
                w.wake();
            }
        }
    }
}

impl<T> Future for Oneshot<T> {
    type Output = Result<T>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let Ok(mut g) = self.0.lock() else {
            return Poll::Ready(Err(Error::gpu("callback channel lock poisoned")));
        };
        match g.0.take() {
            Some(v) => Poll::Ready(Ok(v)),
            None => {
                g.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

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
    errors: Arc<Mutex<Vec<String>>>,
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
    /// binding, or to test the channel groups of [`crate::mixer`] with small models.
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

    /// Whether a [`LinearTexture`] of `texels` texels fits this device's texture size
    /// limit.
    pub fn linear_texture_fits(&self, texels: usize) -> bool {
        let max = self.limits.max_texture_dimension_2d as usize;
        TEXTURE_WIDTH as usize <= max && texture_rows(texels) <= max
    }

    /// Uploads `data` (whole texels of `format`, `rgba32float` or `rgba16float`) as a
    /// [`LinearTexture`], zero past the end of `data` to fill the last row.
    pub fn linear_texture(
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
    /// with `textureStore` ([`Access::TextureWrite`], [`linear_store_wgsl`]) and later
    /// dispatches read ([`Access::Texture`], [`linear_texture_wgsl`]): lazy's v history
    /// on CPU adapters.
    pub fn linear_texture_rw(&self, label: &str, texels: usize) -> Result<LinearTexture> {
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

    /// A buffer the CPU can map for reading, of `size` bytes (for [`GpuContext::read_via`]).
    pub fn staging_buffer(&self, size: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: size.max(4).div_ceil(4) * 4,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Copies `size` bytes at `offset` of `buf` back to the CPU, waiting for the GPU.
    pub fn read_bytes(&self, buf: &wgpu::Buffer, offset: u64, size: u64) -> Result<Vec<u8>> {
        block_on(self.read_bytes_async(buf, offset, size))
    }

    /// [`GpuContext::read_bytes`] without blocking.
    pub async fn read_bytes_async(
        &self,
        buf: &wgpu::Buffer,
        offset: u64,
        size: u64,
    ) -> Result<Vec<u8>> {
        self.read_via_async(buf, offset, size, &self.staging_buffer(size))
            .await
    }

    /// Like [`GpuContext::read_bytes`] through a caller-owned staging buffer (from
    /// [`GpuContext::staging_buffer`], at least `size` bytes), so a per-token read
    /// allocates nothing on the GPU.
    pub fn read_via(
        &self,
        buf: &wgpu::Buffer,
        offset: u64,
        size: u64,
        staging: &wgpu::Buffer,
    ) -> Result<Vec<u8>> {
        block_on(self.read_via_async(buf, offset, size, staging))
    }

    /// [`GpuContext::read_via`] without blocking: the copy is submitted and the staging
    /// buffer mapped; natively the device is polled here, on the web the browser
    /// completes the mapping while the page's event loop runs.
    pub async fn read_via_async(
        &self,
        buf: &wgpu::Buffer,
        offset: u64,
        size: u64,
        staging: &wgpu::Buffer,
    ) -> Result<Vec<u8>> {
        if staging.size() < size {
            return Err(Error::gpu(format!(
                "staging buffer of {} bytes cannot hold {size}",
                staging.size()
            )));
        }
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(buf, offset, staging, 0, size);
        self.queue.submit([enc.finish()]);
        let slice = staging.slice(0..size);
        let (tx, rx) = Oneshot::new();
        slice.map_async(wgpu::MapMode::Read, move |r| tx.send(r));
        self.wait()?;
        let mapped = rx.await?;
        // Errors recorded while the map was pending (on the web they arrive meanwhile).
        if let Err(e) = self.take_errors() {
            staging.unmap();
            return Err(e);
        }
        mapped.map_err(|e| Error::gpu(format!("buffer map failed: {e}")))?;
        let out = slice
            .get_mapped_range()
            .map_err(|e| Error::gpu(format!("get_mapped_range failed: {e}")))?
            .to_vec();
        staging.unmap();
        Ok(out)
    }

    /// Reads `count` f32 values starting at element `start` of `buf`.
    pub fn read_f32(&self, buf: &wgpu::Buffer, start: u64, count: u64) -> Result<Vec<f32>> {
        let bytes = self.read_bytes(buf, start * 4, count * 4)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Reads `count` u32 values starting at element `start` of `buf`.
    pub fn read_u32(&self, buf: &wgpu::Buffer, start: u64, count: u64) -> Result<Vec<u32>> {
        let bytes = self.read_bytes(buf, start * 4, count * 4)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Waits for all submitted work without blocking, then returns the recorded errors
    /// as [`GpuContext::wait`] does (on the web: after a small read-back, by which time
    /// the browser has reported the errors of the work before it).
    pub async fn wait_async(&self) -> Result<()> {
        if cfg!(target_arch = "wasm32") {
            let probe = self.buffer_zeroed("wait probe", 16)?;
            self.read_bytes_async(&probe, 0, 4).await.map(|_| ())
        } else {
            self.wait()
        }
    }

    /// Blocks until all submitted work has finished; returns any wgpu error recorded
    /// since the last call (validation, out of memory, device lost) as [`Error::Gpu`].
    /// On the web it does not block: the device cannot be polled there, so it returns
    /// the errors recorded so far.
    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::gpu(format!("device poll failed: {e}")))?;
        self.take_errors()
    }

    /// Returns (and clears) the wgpu errors recorded since the last check.
    pub fn take_errors(&self) -> Result<()> {
        let mut v = self
            .errors
            .lock()
            .map_err(|_| Error::gpu("error log lock poisoned"))?;
        if v.is_empty() {
            return Ok(());
        }
        // The same failure repeated (e.g. one per buffer) is reported once, with a count.
        let mut parts: Vec<(String, usize)> = Vec::new();
        for m in v.drain(..) {
            match parts.last_mut() {
                Some((last, n)) if *last == m => *n += 1,
                _ => parts.push((m, 1)),
            }
        }
        let msg = parts
            .iter()
            .map(|(m, n)| {
                if *n > 1 {
                    format!("{m} (x{n})")
                } else {
                    m.clone()
                }
            })
            .collect::<Vec<_>>()
            .join("; ");
        Err(Error::gpu(msg))
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
    /// The view kernels bind ([`Access::Texture`]).
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
/// [`Access::TextureWrite`]) and defines `fn store(i: u32, x: vec4<f32>)` writing its
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
    /// `texture_storage_2d<rgba32float, write>`: a [`LinearTexture`] the kernel writes
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
/// block addressed with a dynamic offset into a [`ParamArena`]; group 1 holds the storage
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
/// dynamic offset ([`ParamArena`]).
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

/// A bind group of `layout` over `resources` in binding order.
fn bind_group(
    ctx: &GpuContext,
    label: &str,
    layout: &wgpu::BindGroupLayout,
    resources: Vec<wgpu::BindingResource<'_>>,
) -> wgpu::BindGroup {
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

impl Kernel {
    /// Compiles `entry` of `source`; WGSL errors come back as [`Error::Gpu`].
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

    /// A bind group for group 1 over `buffers` (whole buffers, in binding order).
    pub fn bind(&self, ctx: &GpuContext, buffers: &[&wgpu::Buffer]) -> wgpu::BindGroup {
        let resources: Vec<_> = buffers.iter().map(|b| b.as_entire_binding()).collect();
        self.bind_resources(ctx, resources)
    }

    /// A bind group for group 1 over `resources` in binding order: whole buffers, or
    /// texture views where the kernel's access is [`Access::Texture`] or
    /// [`Access::TextureWrite`].
    pub fn bind_resources(
        &self,
        ctx: &GpuContext,
        resources: Vec<wgpu::BindingResource<'_>>,
    ) -> wgpu::BindGroup {
        bind_group(ctx, &self.name, &self.storage_layout, resources)
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

    /// The kernel, compiled by the first call (WGSL errors come back as [`Error::Gpu`]).
    pub fn get(&self) -> Result<&Kernel> {
        if let Some(k) = self.kernel.get() {
            return Ok(k);
        }
        let layouts = (self.param_layout.clone(), self.storage_layout.clone());
        let k = Kernel::with_layouts(&self.ctx, &self.source, self.entry, layouts)?;
        Ok(self.kernel.get_or_init(|| k))
    }

    /// A bind group for group 1 over `buffers` (whole buffers, in binding order).
    pub fn bind(&self, ctx: &GpuContext, buffers: &[&wgpu::Buffer]) -> wgpu::BindGroup {
        let resources: Vec<_> = buffers.iter().map(|b| b.as_entire_binding()).collect();
        self.bind_resources(ctx, resources)
    }

    /// A bind group for group 1 over `resources` in binding order (see
    /// [`Kernel::bind_resources`]).
    pub fn bind_resources(
        &self,
        ctx: &GpuContext,
        resources: Vec<wgpu::BindingResource<'_>>,
    ) -> wgpu::BindGroup {
        bind_group(ctx, self.entry, &self.storage_layout, resources)
    }
}

/// Number of u32 words in one parameter block (all kernels share the size).
pub const PARAM_WORDS: usize = 16;

/// Bytes each dispatch binds from its parameter slot: two blocks, of which the second is
/// always zeros ([`ParamArena::push`] pads every slot with them): see
/// [`unfoldable_params`].
const PARAM_BINDING: u64 = 2 * PARAM_WORDS as u64 * 4;

/// `source` with its parameter block `@group(0) @binding(0) var<uniform> NAME: TYPE;`
/// turned into two slots, `NAME_slots: array<TYPE, 2>`, and a private `NAME` that every
/// entry point fills first: the entry points named in `protected` with
/// `NAME_slots[min(NAME_slots[1].FIRST, 1u)]` (FIRST: the struct's first field, a u32;
/// slot 1 holds zeros, so this is slot 0), the others with `NAME_slots[0]`, which
/// compiles to what the plain block does.
///
/// Why: lavapipe (Mesa 22.3) "inlines" uniform values that branch and loop conditions
/// read, when the loads sit at constant offsets in a uniform buffer, and when that
/// shrinks the kernel enough it compiles the kernel again at every dispatch. It did so
/// for lazy's gate (whose `mode` test removes most of it): 1 to 2 ms a token, 4x lazy's
/// whole time at L = 1024. Behind an index no compiler can fold, no load has a constant
/// offset. Only where needed: llvmpipe then fetches the block with gathers in every
/// SIMD batch and treats its values as varying; applied to every kernel, it changed
/// neither flash's mixer time nor the FFT's beyond this machine's run-to-run noise, so
/// the others keep plain blocks. Sources without such a block, or whose struct does not
/// start with a u32 field, are returned unchanged.
pub fn unfoldable_params(source: &str, protected: &[&str]) -> String {
    const DECL: &str = "@group(0) @binding(0) var<uniform> ";
    let Some(line) = source.lines().find(|l| l.starts_with(DECL)) else {
        return source.to_string();
    };
    let Some((name, ty)) = line[DECL.len()..]
        .trim_end()
        .trim_end_matches(';')
        .split_once(": ")
    else {
        return source.to_string();
    };
    let Some(first) = first_u32_field(source, ty) else {
        return source.to_string();
    };
    let slots = format!("{DECL}{name}_slots: array<{ty}, 2>;\nvar<private> {name}: {ty};");
    let source = source.replacen(line, &slots, 1);
    let mut out = String::with_capacity(source.len() + 64 * 32);
    let mut rest = source.as_str();
    // Entry points: a line that starts with @compute, then `fn NAME(`, then the body.
    while let Some(at) = rest.find("\n@compute") {
        let Some(f) = rest[at..].find("\nfn ").map(|f| at + f + 4) else {
            break;
        };
        let Some(body) = rest[f..].find('{').map(|b| f + b + 1) else {
            break;
        };
        let entry = rest[f..].split('(').next().unwrap_or("").trim();
        let index = if protected.contains(&entry) {
            format!("min({name}_slots[1].{first}, 1u)")
        } else {
            "0".to_string()
        };
        out.push_str(&rest[..body]);
        out.push_str(&format!("\n    {name} = {name}_slots[{index}];"));
        rest = &rest[body..];
    }
    out.push_str(rest);
    out
}

/// The first field of `struct ty { ... }` in `source` if it is a u32.
fn first_u32_field<'a>(source: &'a str, ty: &str) -> Option<&'a str> {
    let open = source.find(&format!("struct {ty} {{"))?;
    let body = &source[open..];
    let field = body[body.find('{')? + 1..].trim_start();
    let (name, rest) = field.split_once(':')?;
    rest.trim_start().starts_with("u32").then_some(name.trim())
}

/// A uniform buffer of parameter slots, one per dispatch, filled on the CPU while a step
/// is recorded and uploaded once before submit. Kernels read their slot through a dynamic
/// offset, so one bind group serves every dispatch.
#[derive(Debug)]
pub struct ParamArena {
    buffer: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    stride: u64,
    capacity: usize,
    staged: Vec<u8>,
    /// Parameter blocks pushed since creation: every dispatch pushes one.
    pushed: u64,
}

impl ParamArena {
    /// Dispatches recorded through this arena since it was created.
    pub fn dispatch_count(&self) -> u64 {
        self.pushed
    }

    /// An arena of `capacity` slots, laid out for `layout` (any kernel's `param_layout`:
    /// they are all identical).
    pub fn new(ctx: &GpuContext, layout: &wgpu::BindGroupLayout, capacity: usize) -> Self {
        let align = ctx.limits.min_uniform_buffer_offset_alignment.max(64) as u64;
        let stride = PARAM_BINDING.div_ceil(align) * align;
        let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("params"),
            size: stride * capacity.max(1) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let bind_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("params"),
            layout,
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &buffer,
                    offset: 0,
                    size: std::num::NonZeroU64::new(PARAM_BINDING),
                }),
            }],
        });
        ParamArena {
            buffer,
            bind_group,
            stride,
            capacity: capacity.max(1),
            staged: Vec::new(),
            pushed: 0,
        }
    }

    /// Slots left before [`ParamArena::upload`] must be called.
    pub fn remaining(&self) -> usize {
        self.capacity - self.staged.len() / self.stride as usize
    }

    /// Stages one parameter block and returns its dynamic offset. The rest of the slot,
    /// the second block that every dispatch binds included, is zeros
    /// ([`unfoldable_params`] relies on it).
    pub fn push(&mut self, words: &[u32]) -> Result<u32> {
        if self.remaining() == 0 {
            return Err(Error::gpu(format!(
                "parameter arena full ({} dispatches in one submit)",
                self.capacity
            )));
        }
        let offset = self.staged.len() as u32;
        let mut block = [0u32; PARAM_WORDS];
        block[..words.len()].copy_from_slice(words);
        self.staged.extend_from_slice(bytemuck::cast_slice(&block));
        self.staged
            .resize(offset as usize + self.stride as usize, 0);
        self.pushed += 1;
        Ok(offset)
    }

    /// Writes the staged blocks to the GPU (call once before submitting) and resets.
    pub fn upload(&mut self, ctx: &GpuContext) {
        if !self.staged.is_empty() {
            ctx.queue.write_buffer(&self.buffer, 0, &self.staged);
        }
        self.staged.clear();
    }

    /// The bind group for group 0.
    pub fn bind_group(&self) -> &wgpu::BindGroup {
        &self.bind_group
    }
}

/// Splits `groups` workgroups into an (x, y) grid within the 65535-per-dimension limit;
/// kernels rebuild the flat index as `wid.x + wid.y * nwg.x` and skip indices past the end.
pub fn grid(groups: u32) -> (u32, u32) {
    const MAX: u32 = 65535;
    if groups <= MAX {
        (groups.max(1), 1)
    } else {
        (MAX, groups.div_ceil(MAX))
    }
}

/// Most rows one [`dispatch_rows`] covers (the per-dimension workgroup limit).
pub const MAX_ROWS: usize = 65535;

/// Records one dispatch of `kernel` over `groups` workgroups for each of `rows` rows
/// (at most [`MAX_ROWS`]): kernels read the row as `workgroup_id.z`.
pub fn dispatch_rows(
    pass: &mut wgpu::ComputePass<'_>,
    arena: &mut ParamArena,
    kernel: &Kernel,
    storage: &wgpu::BindGroup,
    words: &[u32],
    (groups, rows): (u32, u32),
) -> Result<()> {
    if groups == 0 || rows == 0 {
        return Ok(());
    }
    if rows as usize > MAX_ROWS {
        return Err(Error::gpu(format!(
            "{rows} rows in one dispatch (at most {MAX_ROWS})"
        )));
    }
    let off = arena.push(words)?;
    let (x, y) = grid(groups);
    pass.set_pipeline(&kernel.pipeline);
    pass.set_bind_group(0, arena.bind_group(), &[off]);
    pass.set_bind_group(1, storage, &[]);
    pass.dispatch_workgroups(x, y, rows);
    Ok(())
}

/// Records one dispatch of `kernel` with parameters `words` over `groups` workgroups.
pub fn dispatch(
    pass: &mut wgpu::ComputePass<'_>,
    arena: &mut ParamArena,
    kernel: &Kernel,
    storage: &wgpu::BindGroup,
    words: &[u32],
    groups: u32,
) -> Result<()> {
    dispatch_rows(pass, arena, kernel, storage, words, (groups, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parameter block moves behind the unfoldable index in the protected entry
    /// points, to slot 0 in the others (and nowhere else); sources without a block are
    /// left alone; every shader module still validates after the rewrite.
    #[test]
    fn params_behind_an_unfoldable_index() {
        let src = "struct P {\n    n: u32,\n    t: u32,\n}\n\
                   @group(0) @binding(0) var<uniform> p: P;\n\
                   fn helper() -> u32 { return p.t; }\n\
                   // @compute in a comment\n\
                   @compute @workgroup_size(64)\nfn a(@builtin(global_invocation_id) g: vec3<u32>,\n     @builtin(num_workgroups) w: vec3<u32>) {\n    let x = p.n;\n}\n\
                   @compute @workgroup_size(8)\nfn b() {\n}\n";
        let out = unfoldable_params(src, &["a"]);
        assert!(out.contains("var<uniform> p_slots: array<P, 2>;\nvar<private> p: P;"));
        assert!(!out.contains("var<uniform> p: P;"));
        let hidden = "w: vec3<u32>) {\n    p = p_slots[min(p_slots[1].n, 1u)];\n";
        assert!(out.contains(hidden), "{out}");
        assert!(out.contains("fn b() {\n    p = p_slots[0];\n}"), "{out}");
        assert_eq!(out.matches("p = p_slots[").count(), 2, "{out}");
        assert!(out.contains("fn helper() -> u32 { return p.t; }"));
        let plain = "@compute @workgroup_size(1)\nfn c() {}\n";
        assert_eq!(unfoldable_params(plain, &["c"]), plain);
        for (name, source) in crate::wgsl_modules() {
            let rewritten = unfoldable_params(&source, &["gate", "gate4", "lazy4"]);
            let module = naga::front::wgsl::parse_str(&rewritten)
                .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(&rewritten)));
            naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::all(),
            )
            .validate(&module)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }
    }
}
