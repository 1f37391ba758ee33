// The Hyena gate's per-channel arithmetic, shared by the mixer's gate kernel
// (mixer.wgsl) and the out_proj kernel that fuses the gate (session_matvec.wgsl).
// Functions only: the including shader defines `ring(i)` (this layer's ring of the last
// three in_proj outputs, or all of a prompt's), `urow(t, b)` (the row of that buffer,
// in units of 3D, holding u_t of batch row b), `mparam(i)` (the layer's mixer parameters
// [short_w 9D | short_b 3D | diag D | k1 D | ...], diag = k[0] + filter bias, k1 = k[1])
// and a parameter block `p` with field d (D).

// Short causal conv (kernel 3) of in_proj output channel ch at position t:
// w0 u[t-2] + w1 u[t-1] + w2 u[t] + b.
fn short_conv(ch: u32, t: u32, b: u32) -> f32 {
    let d3 = 3u * p.d;
    var acc = mparam(9u * p.d + ch) + mparam(ch * 3u + 2u) * ring(urow(t, b) * d3 + ch);
    if t >= 1u { acc += mparam(ch * 3u + 1u) * ring(urow(t - 1u, b) * d3 + ch); }
    if t >= 2u { acc += mparam(ch * 3u) * ring(urow(t - 2u, b) * d3 + ch); }
    return acc;
}

// Channel c's gate inputs at position t of batch row b: (x0, v) with
// v = conv(v) * conv(x1).
fn gate_x0_v(c: u32, t: u32, b: u32) -> vec2<f32> {
    let x1 = short_conv(p.d + c, t, b);
    return vec2<f32>(short_conv(c, t, b), short_conv(2u * p.d + c, t, b) * x1);
}

// The history term of channel c at step t for the methods with accumulators (flash,
// eager): the pairs of lag 2 and more that their tiles or pushes left in z_acc[t]
// (`acc`), plus k[1] v_{t-1} (`v_prev`, read from the history when t >= 1): the gate
// adds lag 1 itself, so flash needs no tile of side 1 (src/mixer.rs, `conv_tap`).
fn z_with_lag1(c: u32, acc: f32, v_prev: f32) -> f32 {
    return acc + mparam(13u * p.d + c) * v_prev;
}

// The mixer output of channel c: y = (z + diag * v) * x0, where z is the history term
// (z_with_lag1 for flash and eager, 0 for the diagonal-only method).
fn gate_y(c: u32, x0: f32, v: f32, z: f32) -> f32 {
    return (z + mparam(12u * p.d + c) * v) * x0;
}
