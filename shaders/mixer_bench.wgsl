// The mixer-only benchmark's steps (`bench --mixer-only`, src/mixer/bench_step.rs),
// compiled after mixer.wgsl, whose bindings and quad helpers they use. They bind what
// the slice's gate binds (r1 = the mixer parameters, r2 = z_acc, w0 = v_hist,
// w2 = y [D]); the benchmark's mixer has one "layer" of all channels (p.d = channels),
// an x0 of ones (w1, not read here) and a y that holds z_{t-1} on entry and z_t after.
// Every channel is a chain through the convolution, v_t = tanh(z_{t-1}) + noise, so
// nothing can be precomputed.

fn hash32(x: u32) -> u32 {
    let state = x * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

// The benchmark's v_t of channel c (w2 holds z_{t-1}).
fn bench_v(c: u32) -> f32 {
    let noise = f32(hash32(c ^ hash32(p.t)) >> 8u) * (1.0 / 16777216.0) - 0.5;
    var prev = 0.0;
    if p.t > 0u { prev = w2[c]; }
    return tanh(prev) + 0.1 * noise;
}

// bench_step: v_t stored in the history, then z_t completed from z_acc and the lags the
// gate adds (mode 0), the diagonal only (mode 1), or left to the lazy kernel (mode 2),
// run slice by slice like the gate.
@compute @workgroup_size(256)
fn bench_step(@builtin(global_invocation_id) gid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if i >= p.count { return; }
    let c = p.c0 + i;
    let g = p.col0 + i;
    let v = bench_v(c);
    w0[p.t * p.chans + g] = v;
    if p.mode == 2u { return; }
    var z = 0.0;
    if p.mode == 0u { z = z_with_lags(c, r2[p.t * p.chans + g], p.t, g); }
    w2[c] = gate_y(c, 1.0, v, z);
}

// bench_step4: bench_step for four channels per thread, like gate4.
@compute @workgroup_size(64)
fn bench_step4(@builtin(global_invocation_id) gid: vec3<u32>) {
    if 4u * gid.x >= p.count { return; }
    let c = p.c0 + 4u * gid.x;
    var v = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j++) { v[j] = bench_v(c + j); }
    let i = quad_index(gid.x);
    if !finish_quad(i, v) { return; }
    let y = mix_quad(c, i, v);
    for (var j = 0u; j < 4u; j++) { w2[c + j] = y[j]; }
}
