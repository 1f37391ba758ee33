//! Reading results back and waiting for the GPU: async first ([`GpuContext::read_via_async`]),
//! the blocking calls are the same futures under [`block_on`](super::block_on).

use super::{block_on, GpuContext};
use crate::error::{Error, Result};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

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

impl GpuContext {
    /// A buffer the CPU can map for reading, of `size` bytes (for [`GpuContext::read_via_async`]).
    pub(crate) fn staging_buffer(&self, size: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: size.max(4).div_ceil(4) * 4,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Copies `size` bytes at `offset` of `buf` back to the CPU, waiting for the GPU.
    pub(crate) fn read_bytes(&self, buf: &wgpu::Buffer, offset: u64, size: u64) -> Result<Vec<u8>> {
        block_on(self.read_bytes_async(buf, offset, size))
    }

    /// [`GpuContext::read_bytes`] without blocking.
    pub(crate) async fn read_bytes_async(
        &self,
        buf: &wgpu::Buffer,
        offset: u64,
        size: u64,
    ) -> Result<Vec<u8>> {
        self.read_via_async(buf, offset, size, &self.staging_buffer(size))
            .await
    }

    /// Copies `size` bytes at `offset` of `buf` back through a caller-owned staging
    /// buffer (from [`GpuContext::staging_buffer`], at least `size` bytes), so a
    /// per-token read allocates nothing on the GPU. The copy is submitted and the staging
    /// buffer mapped; natively the device is polled here, on the web the browser
    /// completes the mapping while the page's event loop runs.
    pub(crate) async fn read_via_async(
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
