// The Hyena mixer's per-token work and the long convolution, dispatched by
// src/mixer.rs. Histories are arenas over all layers: channel g = layer * D + c owns
// v_hist[g * L .. g * L + L) (and the same range of z_acc and of the filter k), so one
// dispatch can cover every layer.
//
// Shared bindings (meaning per entry point):
//   r0, r1, r2: read-only; w0, w1, w2: read-write.

struct Params {
    d: u32,          // channels per layer (D)
    len: u32,        // session length L (stride of the arenas)
    t: u32,          // current position
    layer: u32,      // layer index (gate, lazy, eager) or channel count (tiles)
    mode: u32,       // gate: 0 = z from z_acc (flash, eager), 1 = diagonal only, 2 = lazy
    slot: u32,       // gate: ring slot of u_t (t % 3); older slots follow
    size: u32,       // tile side U
    in_start: u32,   // tile: first input position
    out_start: u32,  // tile: first output position
    outputs: u32,    // tile: number of outputs; eager: number of future positions
    pad0: u32,
    pad1: u32,
    pad2: vec4<u32>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(1) @binding(0) var<storage, read> r0: array<f32>;
@group(1) @binding(1) var<storage, read> r1: array<f32>;
@group(1) @binding(2) var<storage, read> r2: array<f32>;
@group(1) @binding(3) var<storage, read_write> w0: array<f32>;
@group(1) @binding(4) var<storage, read_write> w1: array<f32>;
@group(1) @binding(5) var<storage, read_write> w2: array<f32>;

const WG: u32 = 256u;
var<workgroup> red: array<f32, 256>;

// Per-layer mixer parameters (r1 in gate, r2 in lazy): [short_w 9D | short_b 3D | diag D],
// diag = k[0] + filter bias.
fn short_w(ch: u32, tap: u32) -> f32 { return r1[ch * 3u + tap]; }

// Short causal conv (kernel 3) of in_proj's output channel ch, from the ring
// r0 = u ring [3][3D] of this layer: w0 u[t-2] + w1 u[t-1] + w2 u[t] + b.
fn short_conv(ch: u32) -> f32 {
    let d3 = 3u * p.d;
    let s0 = p.slot;
    var acc = r1[9u * p.d + ch] + short_w(ch, 2u) * r0[s0 * d3 + ch];
    if p.t >= 1u { acc += short_w(ch, 1u) * r0[((s0 + 2u) % 3u) * d3 + ch]; }
    if p.t >= 2u { acc += short_w(ch, 0u) * r0[((s0 + 1u) % 3u) * d3 + ch]; }
    return acc;
}

// gate: r0 = u ring of this layer, r1 = mixer params of this layer, r2 = z_acc arena,
// w0 = v_hist arena, w1 = x0 [D], w2 = y [D]. Computes x0, x1, v; v *= x1; stores v_t;
// then (modes 0, 1) y = (z_t + diag * v_t) * x0, with z_t from z_acc (mode 0) or 0.
@compute @workgroup_size(256)
fn gate(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if c >= p.d { return; }
    let x0 = short_conv(c);
    let x1 = short_conv(p.d + c);
    let v = short_conv(2u * p.d + c) * x1;
    let g = p.layer * p.d + c;
    w0[g * p.len + p.t] = v;
    w1[c] = x0;
    if p.mode == 2u { return; }
    var z = r1[12u * p.d + c] * v;
    if p.mode == 0u { z += r2[g * p.len + p.t]; }
    w2[c] = z * x0;
}

// lazy: the direct causal sum at step t, one workgroup per channel:
// y = (sum_{s<t} k[t-s] v_s + diag * v_t) * x0.
// r0 = v_hist, r1 = k arena, r2 = mixer params, w0 = x0 (read), w1 = y.
@compute @workgroup_size(256)
fn lazy(@builtin(local_invocation_id) lid3: vec3<u32>,
        @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = wid.x + wid.y * nwg.x;
    let lid = lid3.x;
    if c >= p.d { return; }
    let g = p.layer * p.d + c;
    let base = g * p.len;
    var s = 0.0;
    for (var i = lid; i < p.t; i += WG) {
        s += r1[base + p.t - i] * r0[base + i];
    }
    red[lid] = s;
    var n = WG / 2u;
    loop {
        if n == 0u { break; }
        workgroupBarrier();
        if lid < n { red[lid] = red[lid] + red[lid + n]; }
        n = n / 2u;
    }
    workgroupBarrier();
    if lid == 0u {
        let z = red[0] + r2[12u * p.d + c] * r0[base + p.t];
        w1[c] = z * w0[c];
    }
}

// eager: push v_t into every future accumulator of this layer:
// z_acc[j] += k[j - t] v_t for j in t+1 .. t+1+outputs. r0 = v_hist, r1 = k, w0 = z_acc.
// Grid: x over future positions (256 per workgroup), y over channels.
@compute @workgroup_size(256)
fn eager(@builtin(global_invocation_id) gid: vec3<u32>) {
    let m = gid.x;
    let c = gid.y;
    if m >= p.outputs || c >= p.d { return; }
    let base = (p.layer * p.d + c) * p.len;
    let j = p.t + 1u + m;
    w0[base + j] += r1[base + 1u + m] * r0[base + p.t];
}

// tile_direct: one relaxed-tiling tile as a direct U x U product, all channels of all
// layers at once. z_acc[g][out_start + m] += sum_i k[g][m + U - i] v[g][in_start + i].
// r0 = v_hist, r1 = k, w0 = z_acc; p.layer = channel count. Thread per (m, channel).
@compute @workgroup_size(256)
fn tile_direct(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * WG;
    let m = idx % p.outputs;
    let g = idx / p.outputs;
    if g >= p.layer { return; }
    let base = g * p.len;
    var s = 0.0;
    for (var i = 0u; i < p.size; i++) {
        s += r1[base + m + p.size - i] * r0[base + p.in_start + i];
    }
    w0[base + p.out_start + m] += s;
}
