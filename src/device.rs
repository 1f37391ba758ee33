//! Getting a device: the public face of the GPU layer. A host either lets flashconv pick
//! an adapter ([`GpuContext::new`], honouring `WGPU_BACKEND` and `WGPU_ADAPTER_NAME`) or
//! passes in its own device ([`GpuContext::from_device`], asking for
//! [`wanted_features`] where the adapter has them); everything that runs on the device
//! takes the [`GpuContext`].

#[cfg(not(target_arch = "wasm32"))]
pub use crate::gpu::list_adapters;
pub use crate::gpu::{
    block_on, describe_wgpu_error, instance_for, instance_from_env, pick_adapter,
    pick_adapter_async, requirements, wanted_features, GpuContext,
};
