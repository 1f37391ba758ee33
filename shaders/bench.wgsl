// Kernels of the benchmarks (src/bench.rs): a plain copy to measure the device's memory
// bandwidth, 16 bytes per access, in a grid-stride loop.

struct Params {
    n: u32,      // vec4 elements to copy
    pad0: u32,
    pad1: u32,
    pad2: u32,
    pad3: vec4<u32>,
    pad4: vec4<u32>,
    pad5: vec4<u32>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(1) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(1) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(256)
fn copy(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let threads = nwg.x * nwg.y * 256u;
    for (var i = gid.x + gid.y * nwg.x * 256u; i < p.n; i += threads) {
        dst[i] = src[i];
    }
}

// Read bandwidth from a texture (src/bench.rs, texture_read_bandwidth): every thread
// sums texels i, i + threads, ... of a TEXTURE_WIDTH-wide rgba32float texture, as the
// products read their weights on CPU adapters (gpu::LinearTexture). The texel index
// split uses TEXTURE_WIDTH = 2048 (checked by src/bench.rs).
@group(1) @binding(0) var tex: texture_2d<f32>;
@group(1) @binding(1) var<storage, read_write> sums: array<vec4<f32>>;

@compute @workgroup_size(256)
fn texture_read(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
    let threads = nwg.x * 256u;
    var acc = vec4<f32>(0.0);
    for (var i = gid.x; i < p.n; i += threads) {
        acc += textureLoad(tex, vec2<u32>(i & 2047u, i >> 11u), 0);
    }
    sums[gid.x] = acc;
}
