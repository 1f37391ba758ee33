// Batched standalone FFTs (concatenated after fft_lib.wgsl).
//
// Every entry point runs the same column pass: workgroup wg takes 2^log2pack
// consecutive transforms g = wg * 2^log2pack + t (g < transforms), transform g being
// column c = g mod 2^log2cols of batch element b = g / 2^log2cols. Element i of
// transform g is read at  b*big_n + c*in_col  + i*in_elem,  transformed with fft_wg_batch,
// optionally multiplied by W_{big_n}^{c*k} (four-step twiddle), and written at
//                          b*big_n + c*out_col + k*out_elem.
//
//  fft_inplace : a -> a   (N <= 2048: one pass, contiguous)
//  fft_a_to_b  : a -> b   (four-step pass 1, with twiddles)
//  fft_b_to_a  : b -> a   (four-step pass 2)

struct FftParams {
    n: u32,          // transform size of this pass
    log2n: u32,
    inverse: u32,    // 0 forward, 1 inverse
    transforms: u32, // transforms in all (batch * columns)
    log2cols: u32,   // columns per batch element (log2)
    big_n: u32,      // full transform size: batch stride and four-step twiddle size
    log2pack: u32,   // transforms per workgroup (log2)
    groups: u32,     // workgroups dispatched (flat)
    in_elem: u32,
    in_col: u32,
    out_elem: u32,
    out_col: u32,
    twiddle: u32,    // 1: multiply output k of column c by W_{big_n}^{c*k}
    in_minor: u32,   // 1: consecutive threads walk columns when loading (strided data)
    out_minor: u32,  // 1: the same when storing
    _pad: u32,
}

@group(0) @binding(0) var<uniform> fft_p: FftParams;
@group(1) @binding(0) var<storage, read> fft_twiddles: array<vec2<f32>>;
@group(1) @binding(1) var<storage, read_write> fft_a: array<vec2<f32>>;
@group(1) @binding(2) var<storage, read_write> fft_b: array<vec2<f32>>;

struct FftSlot {
    sh: u32,   // index in fft_sh
    mem: u32,  // index in the buffer
    tw: u32,   // c * i (four-step twiddle exponent)
    ok: bool,  // transform exists
}

fn fft_slot(wg: u32, e: u32, minor: bool, elem: u32, col: u32) -> FftSlot {
    var t: u32;
    var i: u32;
    if (minor) {
        t = e & ((1u << fft_p.log2pack) - 1u);
        i = e >> fft_p.log2pack;
    } else {
        t = e >> fft_p.log2n;
        i = e & (fft_p.n - 1u);
    }
    let g = (wg << fft_p.log2pack) + t;
    let b = g >> fft_p.log2cols;
    let c = g & ((1u << fft_p.log2cols) - 1u);
    var s: FftSlot;
    s.sh = (t << fft_p.log2n) + i;
    s.mem = b * fft_p.big_n + c * col + i * elem;
    s.tw = c * i;
    s.ok = g < fft_p.transforms;
    return s;
}

fn fft_out_value(s: FftSlot, inverse: bool) -> vec2<f32> {
    let v = fft_sh[s.sh];
    if (fft_p.twiddle != 0u) {
        return fft_cmul(v, fft_twiddle(fft_p.big_n - 2u + s.tw, inverse));
    }
    return v;
}

@compute @workgroup_size(256)
fn fft_inplace(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let wg = wid.x + wid.y * nwg.x;
    if (wg >= fft_p.groups) {
        return;
    }
    let total = fft_p.n << fft_p.log2pack;
    let inverse = fft_p.inverse != 0u;
    for (var e = lid; e < total; e += FFT_WG) {
        let s = fft_slot(wg, e, fft_p.in_minor != 0u, fft_p.in_elem, fft_p.in_col);
        var v = vec2<f32>(0.0);
        if (s.ok) {
            v = fft_a[s.mem];
        }
        fft_sh[s.sh] = v;
    }
    fft_wg_batch(lid, fft_p.log2n, fft_p.log2pack, inverse);
    for (var e = lid; e < total; e += FFT_WG) {
        let s = fft_slot(wg, e, fft_p.out_minor != 0u, fft_p.out_elem, fft_p.out_col);
        if (s.ok) {
            fft_a[s.mem] = fft_out_value(s, inverse);
        }
    }
}

@compute @workgroup_size(256)
fn fft_a_to_b(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let wg = wid.x + wid.y * nwg.x;
    if (wg >= fft_p.groups) {
        return;
    }
    let total = fft_p.n << fft_p.log2pack;
    let inverse = fft_p.inverse != 0u;
    for (var e = lid; e < total; e += FFT_WG) {
        let s = fft_slot(wg, e, fft_p.in_minor != 0u, fft_p.in_elem, fft_p.in_col);
        var v = vec2<f32>(0.0);
        if (s.ok) {
            v = fft_a[s.mem];
        }
        fft_sh[s.sh] = v;
    }
    fft_wg_batch(lid, fft_p.log2n, fft_p.log2pack, inverse);
    for (var e = lid; e < total; e += FFT_WG) {
        let s = fft_slot(wg, e, fft_p.out_minor != 0u, fft_p.out_elem, fft_p.out_col);
        if (s.ok) {
            fft_b[s.mem] = fft_out_value(s, inverse);
        }
    }
}

@compute @workgroup_size(256)
fn fft_b_to_a(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let wg = wid.x + wid.y * nwg.x;
    if (wg >= fft_p.groups) {
        return;
    }
    let total = fft_p.n << fft_p.log2pack;
    let inverse = fft_p.inverse != 0u;
    for (var e = lid; e < total; e += FFT_WG) {
        let s = fft_slot(wg, e, fft_p.in_minor != 0u, fft_p.in_elem, fft_p.in_col);
        var v = vec2<f32>(0.0);
        if (s.ok) {
            v = fft_b[s.mem];
        }
        fft_sh[s.sh] = v;
    }
    fft_wg_batch(lid, fft_p.log2n, fft_p.log2pack, inverse);
    for (var e = lid; e < total; e += FFT_WG) {
        let s = fft_slot(wg, e, fft_p.out_minor != 0u, fft_p.out_elem, fft_p.out_col);
        if (s.ok) {
            fft_a[s.mem] = fft_out_value(s, inverse);
        }
    }
}
