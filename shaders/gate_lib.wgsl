// The Hyena gate's per-channel arithmetic, shared by the mixer's gate kernel
// (mixer.wgsl) and the out_proj kernel that fuses the gate (session_matvec.wgsl).
// Functions only: the including shader defines `ring(i)` (this layer's ring of the last
// three in_proj outputs, or all of a prompt's), `urow(t, b)` (the row of that buffer,
// in units of 3D, holding u_t of batch row b), `mparam(i)` (the layer's mixer parameters
// [short_w 9D | short_b 3D | diag D | k_1 .. k_K (K·D) | ...], diag = k[0] + filter
// bias, K = GATE_LAGS), `past_v(g, j)` (v_{t-j} of history column g, j <= t; for the
// methods with accumulators) and a parameter block `p` with field d (D).

// Lags the gate adds itself for flash and eager: src/mixer/mod.rs's GATE_LAGS (a test
// checks that they agree).
const GATE_LAGS: u32 = 15u;

// Where the parts of a layer's mixer parameters start, in units of D (MP_SHORT_B,
// MP_DIAG, MP_TAPS: tap k_j, j >= 1, of channel c is at (MP_TAPS + j - 1) D + c) are
// constants the including source declares from src/mixer/mod.rs's `offsets`
// (`mixer::layout_wgsl`), the layout the packer `layer_params` writes.

// Short causal conv (kernel 3) of in_proj output channel ch at position t:
// w0 u[t-2] + w1 u[t-1] + w2 u[t] + b.
fn short_conv(ch: u32, t: u32, b: u32) -> f32 {
    let d3 = 3u * p.d;
    var acc = mparam(MP_SHORT_B * p.d + ch) + mparam(ch * 3u + 2u) * ring(urow(t, b) * d3 + ch);
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

// The history term of channel c (history column g) at step t for the methods with
// accumulators (flash, eager): the pairs of lag > GATE_LAGS that their tiles or pushes
// left in z_acc[t] (`acc`), plus k[j] v_{t-j} for j = 1 .. min(GATE_LAGS, t): the gate
// adds those lags itself, so flash dispatches no tile of side <= (GATE_LAGS + 1) / 2
// (src/mixer/mod.rs, `conv_tap`).
fn z_with_lags(c: u32, acc: f32, t: u32, g: u32) -> f32 {
    var z = acc;
    let lags = min(GATE_LAGS, t);
    for (var j = 1u; j <= lags; j++) {
        z += mparam((MP_TAPS - 1u + j) * p.d + c) * past_v(g, j);
    }
    return z;
}

// The mixer output of channel c: y = (z + diag * v) * x0, where z is the history term
// (z_with_lags for flash and eager, 0 for the diagonal-only method).
fn gate_y(c: u32, x0: f32, v: f32, z: f32) -> f32 {
    return (z + mparam(MP_DIAG * p.d + c) * v) * x0;
}
