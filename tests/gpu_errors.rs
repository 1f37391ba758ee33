//! wgpu errors become Rust errors, never panics.

mod common;

use flashconv::gpu::{Access, Bind, Kernel};

#[test]
fn validation_error_is_returned_not_panicked() {
    let ctx = common::ctx();
    let src = ctx.buffer_zeroed("src", 64).expect("src");
    let dst = ctx.buffer_zeroed("dst", 64).expect("dst");
    let kernel = Kernel::new(
        &ctx,
        flashconv::bench::BENCH_WGSL,
        "copy",
        &[Access::Read, Access::ReadWrite],
    )
    .expect("kernel");
    let bg = kernel.bind(&ctx, &[&src, &dst]);
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        pass.set_pipeline(&kernel.pipeline);
        // No parameter bind group (group 0) is set: a validation error at dispatch.
        pass.set_bind_group(1, &bg, &[]);
        pass.dispatch_workgroups(1, 1, 1);
    }
    ctx.queue.submit([enc.finish()]);
    let err = ctx
        .wait()
        .expect_err("the invalid dispatch must surface as an error");
    eprintln!("{err}");
    assert!(err.to_string().starts_with("GPU:"), "{err}");
    ctx.wait().expect("errors are reported once");
}

#[test]
fn shader_error_is_returned() {
    let ctx = common::ctx();
    let e = Kernel::new(
        &ctx,
        "@compute @workgroup_size(1) fn main() { let x: f32 = 1u; }",
        "main",
        &[],
    )
    .expect_err("invalid WGSL");
    assert!(e.to_string().contains("main"), "{e}");
}
