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
//! [`GpuContext::read_f32`], ...) are the same futures driven by [`block_on`]: natively
//! pollster, with the device polled inside the future; on the web a blocking call that
//! would have to wait returns an error naming the async call to use instead.

#[cfg(target_arch = "wasm32")]
use crate::error::Error;
use crate::error::Result;
use std::future::Future;
#[cfg(target_arch = "wasm32")]
use std::task::{Context, Poll, Waker};

mod block;
mod context;
mod kernel;
mod params;
mod readback;
mod step;
mod texture;

pub(crate) use block::param_block;
#[cfg(test)]
pub(crate) use block::wgsl_struct_layout;
#[cfg(test)]
pub(crate) use block::ParamBlock;
#[cfg(not(target_arch = "wasm32"))]
pub use context::list_adapters;
pub use context::{
    describe_wgpu_error, instance_for, instance_from_env, pick_adapter, pick_adapter_async,
    requirements, wanted_features, GpuContext,
};
pub(crate) use kernel::param_layout;
pub use kernel::{Access, Bind, DeferredKernel, Kernel};
pub use params::{unfoldable_params, ParamArena, PARAM_WORDS};
pub use step::{Counts, Step, MAX_ROWS};
pub use texture::{
    linear_store_wgsl, linear_texture_wgsl, texture_rows, LinearTexture, TEXTURE_WIDTH,
};
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
