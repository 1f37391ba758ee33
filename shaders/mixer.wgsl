// The Hyena mixer's per-token work and the long convolution, dispatched by src/mixer/
// (the mixer-only benchmark's steps are in mixer_bench.wgsl). Histories are time-major
// arenas over all layers: column g of position t lives at t * C + g (C = p.chans
// columns), for v_hist, z_acc and the filter k alike. Column g of a group is channel start + g over all layers (channel = layer * D + c).
// One dispatch can cover every layer, and neighbouring threads (neighbouring channels)
// read neighbouring addresses.
//
// Shared bindings (meaning per entry point):
//   r0, r1, r2: read-only; w0, w1, w2: read-write.

@group(1) @binding(0) var<storage, read> r0: array<f32>;
@group(1) @binding(1) var<storage, read> r1: array<f32>;
@group(1) @binding(2) var<storage, read> r2: array<f32>;
@group(1) @binding(3) var<storage, read_write> w0: array<f32>;
@group(1) @binding(4) var<storage, read_write> w1: array<f32>;
@group(1) @binding(5) var<storage, read_write> w2: array<f32>;
// Quad views of the same bindings: the mixer parameters (every kernel that reads them
// does so through r1q, so that none binds both views), and, for the four-channel gates
// (gate4, which never touches r2 and w0), z_acc and the v history. A CPU
// driver (lavapipe) turns every buffer access into a loop over its SIMD lanes, so one
// quad access costs far less than four scalar ones.
@group(1) @binding(1) var<storage, read> r1q: array<vec4<f32>>;
@group(1) @binding(2) var<storage, read> r2q: array<vec4<f32>>;
@group(1) @binding(3) var<storage, read_write> w0q: array<vec4<f32>>;

// Where gate4 (and the benchmark's bench_step4) stores the quad i of v_t (quad i of the arena): nowhere,
// unless src/mixer/kernels.rs swaps this line for an rgba32float texture (lazy on CPU adapters,
// which then reads its v history from that texture).
fn vstore4(i: u32, x: vec4<f32>) {}

const WG: u32 = 256u;
var<workgroup> red: array<f32, 256>;

// gate_lib.wgsl's accessors (used by the gate): r0 = this layer's u ring, r1 = its
// mixer parameters.
fn ring(i: u32) -> f32 { return r0[i]; }
fn mparam(i: u32) -> f32 { return r1q[i >> 2u][i & 3u]; }
fn urow(t: u32, b: u32) -> u32 { return t % 3u; }

// v_{t-j} of arena column g (w0 = the v history in gate and bench_step), j <= t.
fn past_v(g: u32, j: u32) -> f32 {
    return w0[(p.t - j) * p.chans + g];
}

// gate: r0 = u ring of this layer, r1 = mixer params of this layer, r2 = z_acc arena,
// w0 = v_hist arena, w1 = x0 [D], w2 = y [D]. Computes x0, x1, v; v *= x1; stores v_t;
// then (modes 0, 1) y = (z_t + diag * v_t) * x0, with z_t from z_acc (mode 0) or 0.
@compute @workgroup_size(256)
fn gate(@builtin(global_invocation_id) gid: vec3<u32>) {
    if gid.x >= p.count { return; }
    let c = p.c0 + gid.x;
    let xv = gate_x0_v(c, p.t, 0u);
    let g = p.col0 + gid.x;
    w0[p.t * p.chans + g] = xv.y;
    w1[c] = xv.x;
    if p.mode == 2u { return; }
    var z = 0.0;
    if p.mode == 0u { z = z_with_lags(c, r2[p.t * p.chans + g], p.t, g); }
    w2[c] = gate_y(c, xv.x, xv.y, z);
}

// gate4: `gate` for four channels per thread (D, count, c0, col0 and chans multiples of
// 4), with quad accesses to the arenas and the lags' taps; where lazy reads its v
// history from a texture, it also stores v_t there.
@compute @workgroup_size(64)
fn gate4(@builtin(global_invocation_id) gid: vec3<u32>) {
    if 4u * gid.x >= p.count { return; }
    let c = p.c0 + 4u * gid.x;
    var x0 = vec4<f32>(0.0);
    var v = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j++) {
        let xv = gate_x0_v(c + j, p.t, 0u);
        w1[c + j] = xv.x;
        x0[j] = xv.x;
        v[j] = xv.y;
    }
    let i = quad_index(gid.x);
    if !finish_quad(i, v) { return; }
    let y = mix_quad(c, i, v) * x0;
    for (var j = 0u; j < 4u; j++) { w2[c + j] = y[j]; }
}

// Index in the quad views of the slice's quad `quad` at position t.
fn quad_index(quad: u32) -> u32 {
    return (p.t * p.chans + p.col0) / 4u + quad;
}

// Stores a quad of the slice's v_t at quad index i (into the arena and, if swapped in,
// the texture); false for lazy (mode 2), whose own kernel completes the outputs.
fn finish_quad(i: u32, v: vec4<f32>) -> bool {
    w0q[i] = v;
    vstore4(i, v);
    return p.mode != 2u;
}

// z_t + diag * v_t of channels c .. c + 3 (quad index i): z_t from z_acc plus the lags
// the gate adds (mode 0, as z_with_lags), or 0 (mode 1).
fn mix_quad(c: u32, i: u32, v: vec4<f32>) -> vec4<f32> {
    var z = vec4<f32>(0.0);
    if p.mode == 0u {
        z = r2q[i];
        let lags = min(GATE_LAGS, p.t);
        let row = p.chans / 4u;
        for (var j = 1u; j <= lags; j++) {
            z += r1q[((MP_TAPS - 1u + j) * p.d + c) / 4u] * w0q[i - j * row];
        }
    }
    return z + r1q[(MP_DIAG * p.d + c) / 4u] * v;
}

// lazy: the direct causal sum at step t, one thread per channel (no barriers; threads
// read neighbouring addresses): y = (sum_{s<t} k[t-s] v_s + diag * v_t) * x0.
// r0 = v_hist, r1 = k arena, r2 = mixer params, w0 = x0 (read), w1 = y.
@compute @workgroup_size(64)
fn lazy(@builtin(global_invocation_id) gid: vec3<u32>) {
    if gid.x >= p.count { return; }
    let c = p.c0 + gid.x;
    let g = p.col0 + gid.x;
    let C = p.chans;
    var s0 = 0.0;
    var s1 = 0.0;
    // Two accumulators shorten the dependency chain.
    var i = 0u;
    for (; i + 1u < p.t; i += 2u) {
        s0 += r1[(p.t - i) * C + g] * r0[i * C + g];
        s1 += r1[(p.t - i - 1u) * C + g] * r0[(i + 1u) * C + g];
    }
    if i < p.t { s0 += r1[(p.t - i) * C + g] * r0[i * C + g]; }
    let z = s0 + s1 + r2[MP_DIAG * p.d + c] * r0[p.t * C + g];
    w1[c] = z * w0[c];
}

// eager: push v_t into every future accumulator of this layer:
// z_acc[j] += k[j - t] v_t for j in t+1 .. t+1+outputs, for the slice's columns.
// r0 = v_hist, r1 = k, w0 = z_acc.
// Thread per (channel, future position), channel fastest.
@compute @workgroup_size(256)
fn eager(@builtin(global_invocation_id) gid: vec3<u32>,
         @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * WG;
    let m = idx / p.count;
    if m >= p.outputs { return; }
    let g = p.col0 + idx % p.count;
    let C = p.chans;
    w0[(p.t + 1u + m) * C + g] += r1[(1u + m) * C + g] * r0[p.t * C + g];
}

// tile_direct: one relaxed-tiling tile as a direct U x U product, all channels of all
// layers at once. z_acc[g][out_start + m] += sum_i k[g][m + U - i] v[g][in_start + i].
// r0 = v_hist, r1 = k, w0 = z_acc. Thread per (channel, output), channel fastest.
@compute @workgroup_size(256)
fn tile_direct(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * WG;
    let C = p.chans;
    let g = idx % C;
    let m = idx / C;
    if m >= p.outputs { return; }
    var s = 0.0;
    for (var i = 0u; i < p.size; i++) {
        s += r1[(m + p.size - i) * C + g] * r0[(p.in_start + i) * C + g];
    }
    w0[(p.out_start + m) * C + g] += s;
}

// tile_urgent: the first `outputs` (at most 16) outputs of a spread tile, thread per
// channel: walking the inputs from the newest back, a window of 16 consecutive taps
// serves every output, so each step loads one input and one tap for all outputs.
// r0 = v_hist, r1 = k, w0 = z_acc (same bindings as tile_direct).
@compute @workgroup_size(64)
fn tile_urgent(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = gid.x + gid.y * nwg.x * 64u;
    let C = p.chans;
    if g >= C { return; }
    var acc: array<f32, 16>;
    var win: array<f32, 16>;
    // Input i (position in_start + i) meets output m through tap m + U - i: for the
    // newest input (i = U - 1) the taps are 1 .. 16.
    for (var m = 0u; m < 16u; m++) {
        acc[m] = 0.0;
        win[m] = 0.0;
        if 1u + m < p.len { win[m] = r1[(1u + m) * C + g]; }
    }
    for (var i = p.size; i > 0u; i--) {
        let v = r0[(p.in_start + i - 1u) * C + g];
        for (var m = 0u; m < 16u; m++) { acc[m] += win[m] * v; }
        // The next (older) input is one tap further from every output.
        for (var m = 0u; m < 15u; m++) { win[m] = win[m + 1u]; }
        let tap = p.size - i + 17u;
        win[15] = 0.0;
        if tap < p.len { win[15] = r1[tap * C + g]; }
    }
    for (var m = 0u; m < p.outputs; m++) { w0[(p.out_start + m) * C + g] += acc[m]; }
}
