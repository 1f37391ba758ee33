//! Developer example: what each kind of memory access costs on this adapter, the
//! measurement behind where flashconv keeps its data on CPU adapters (textures for
//! what kernels read, buffers for what they write, `FftPlanner::plan_staged`).
//!
//! cargo run --release --example access_costs [-- MIB]
//!
//! Eight one-line kernels over MIB MiB (default 32) of `vec4<f32>`, one element per
//! thread: copy from a buffer or a texture into a buffer or a storage texture, load
//! alone, store alone, and neither (the cost of the threads themselves); and the
//! encoder's buffer-to-texture copy. Each is timed 12 times in turn, four dispatches
//! a submit; the best time per dispatch is printed, and the load and store columns
//! with the empty kernel's time taken off.

use flashconv::gpu::{Access, Bind, GpuContext, Kernel, ParamArena, Step, TEXTURE_WIDTH};
use std::time::Instant;

const SHADER: &str = r#"
struct P { n: u32, a: u32, b: u32, c: u32, d: vec4<u32>, e: vec4<u32>, f: vec4<u32> }
@group(0) @binding(0) var<uniform> p: P;
@group(1) @binding(0) var<storage, read> src_buf: array<vec4<f32>>;
@group(1) @binding(1) var<storage, read_write> dst_buf: array<vec4<f32>>;
@group(1) @binding(2) var src_tex: texture_2d<f32>;
@group(1) @binding(3) var dst_tex: texture_storage_2d<rgba32float, write>;

fn load_buf(i: u32) -> vec4<f32> { return src_buf[i]; }
fn load_tex(i: u32) -> vec4<f32> { return textureLoad(src_tex, vec2<u32>(i & 2047u, i >> 11u), 0); }
fn store_buf(i: u32, x: vec4<f32>) { dst_buf[i] = x; }
fn store_tex(i: u32, x: vec4<f32>) { textureStore(dst_tex, vec2<u32>(i & 2047u, i >> 11u), x); }
// A use of a loaded value the compiler cannot drop, that (almost) never stores.
fn keep(x: vec4<f32>) { if (x.x == 12345.0) { dst_buf[0] = x; } }
fn index(w: vec3<u32>, n: vec3<u32>, l: u32) -> u32 { return (w.x + w.y * n.x) * 64u + l; }

@compute @workgroup_size(64)
fn buf_to_buf(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
    let i = index(w, n, l); if (i < p.n) { store_buf(i, load_buf(i)); }
}
@compute @workgroup_size(64)
fn tex_to_buf(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
    let i = index(w, n, l); if (i < p.n) { store_buf(i, load_tex(i)); }
}
@compute @workgroup_size(64)
fn buf_to_tex(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
    let i = index(w, n, l); if (i < p.n) { store_tex(i, load_buf(i)); }
}
@compute @workgroup_size(64)
fn tex_to_tex(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
    let i = index(w, n, l); if (i < p.n) { store_tex(i, load_tex(i)); }
}
@compute @workgroup_size(64)
fn buf_load(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
    let i = index(w, n, l); if (i < p.n) { keep(load_buf(i)); }
}
@compute @workgroup_size(64)
fn tex_load(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
    let i = index(w, n, l); if (i < p.n) { keep(load_tex(i)); }
}
@compute @workgroup_size(64)
fn buf_store(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
    let i = index(w, n, l); if (i < p.n) { store_buf(i, vec4<f32>(f32(i))); }
}
@compute @workgroup_size(64)
fn tex_store(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
    let i = index(w, n, l); if (i < p.n) { store_tex(i, vec4<f32>(f32(i))); }
}
@compute @workgroup_size(64)
fn nothing(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
    let i = index(w, n, l); if (i == 0xffffffffu) { dst_buf[0] = vec4<f32>(1.0); }
}
"#;

const ENTRIES: [&str; 9] = [
    "buf_to_buf",
    "tex_to_buf",
    "buf_to_tex",
    "tex_to_tex",
    "buf_load",
    "tex_load",
    "buf_store",
    "tex_store",
    "nothing",
];

const ROUNDS: usize = 12;
const REPS: u32 = 4;

fn texture(ctx: &GpuContext, rows: u32) -> wgpu::Texture {
    ctx.device.create_texture(&wgpu::TextureDescriptor {
        label: Some("access costs"),
        size: wgpu::Extent3d {
            width: TEXTURE_WIDTH,
            height: rows,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba32Float,
        usage: wgpu::TextureUsages::TEXTURE_BINDING
            | wgpu::TextureUsages::STORAGE_BINDING
            | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    })
}

/// Best seconds per repetition of what `record` puts into one encoder.
fn best_of(ctx: &GpuContext, mut record: impl FnMut() -> wgpu::CommandBuffer) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..ROUNDS {
        let commands = record();
        let start = Instant::now();
        ctx.queue.submit([commands]);
        if ctx.wait().is_err() {
            return f64::NAN;
        }
        best = best.min(start.elapsed().as_secs_f64() / REPS as f64);
    }
    best
}

fn main() -> flashconv::Result<()> {
    let mib: u32 = match std::env::args().nth(1) {
        Some(a) => a
            .parse()
            .map_err(|_| flashconv::Error::input(format!("MIB: {a:?} is not a number")))?,
        None => 32,
    };
    let rows = (mib.max(1) << 20) / (16 * TEXTURE_WIDTH);
    let texels = rows.max(1) * TEXTURE_WIDTH;
    let ctx = GpuContext::new()?;
    println!("{} MiB on {}", texels >> 16, ctx.describe());
    let src = ctx.buffer_zeroed("source", texels as u64 * 16)?;
    let dst = ctx.buffer_zeroed("destination", texels as u64 * 16)?;
    let (tex_in, tex_out) = (texture(&ctx, rows), texture(&ctx, rows));
    let views = [&tex_in, &tex_out].map(|t| t.create_view(&Default::default()));
    let access = [
        Access::Read,
        Access::ReadWrite,
        Access::Texture,
        Access::TextureWrite,
    ];
    let mut arena = None;
    let mut times = Vec::new();
    for entry in ENTRIES {
        let kernel = Kernel::new(&ctx, SHADER, entry, &access)?;
        let group = kernel.bind_resources(
            &ctx,
            vec![
                src.as_entire_binding(),
                dst.as_entire_binding(),
                wgpu::BindingResource::TextureView(&views[0]),
                wgpu::BindingResource::TextureView(&views[1]),
            ],
        );
        let arena =
            arena.get_or_insert_with(|| ParamArena::new(&ctx, &kernel.param_layout, REPS as usize));
        let mut failed = None;
        let t = best_of(&ctx, || {
            let mut step = Step::new(&ctx, arena);
            for _ in 0..REPS {
                let r = step.dispatch(&kernel, &group, &[texels], texels / 64);
                failed = failed.take().or(r.err());
            }
            step.finish()
        });
        if let Some(e) = failed {
            return Err(e);
        }
        times.push(t);
    }
    let copy = best_of(&ctx, || {
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        for _ in 0..REPS {
            let layout = wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(TEXTURE_WIDTH * 16),
                rows_per_image: Some(rows),
            };
            let source = wgpu::TexelCopyBufferInfo {
                buffer: &dst,
                layout,
            };
            enc.copy_buffer_to_texture(source, tex_in.as_image_copy(), tex_in.size());
        }
        enc.finish()
    });
    let empty = times[ENTRIES.len() - 1];
    for (entry, t) in ENTRIES.iter().zip(&times) {
        let extra = if entry.ends_with("_load") || entry.ends_with("_store") {
            format!(" ({:.2} ms over `nothing`)", (t - empty) * 1e3)
        } else {
            String::new()
        };
        println!("{entry:<11} {:7.2} ms{extra}", t * 1e3);
    }
    println!("copy_buffer_to_texture {:.2} ms", copy * 1e3);
    Ok(())
}
