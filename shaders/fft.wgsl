// Batched standalone FFTs (concatenated after fft_lib.wgsl).
//
// Every entry point runs one column pass: workgroup wg takes 2^log2pack consecutive
// transforms g = wg * 2^log2pack + t (g < transforms), transform g being column
// c = g mod 2^log2cols of batch element b = g / 2^log2cols. Element i of transform g is
// read at  b*big_n + c*in_col  + i*in_elem,  transformed, optionally multiplied by
// W_{big_n}^{c*k} (four-step twiddle), and output k is written at
//          b*big_n + c*out_col + k*out_elem.
//
// The first stage loads straight from the buffer into registers and the last one
// stores straight from registers, so workgroup memory is only used between stages
// (sizes 2, 4 and 8 never touch it).
//
// Entry points fft_<mode>_r<R>: mode inplace (a -> a, sizes 16 to 2048), a_to_b
// (four-step pass 1, with twiddles), b_to_a (four-step pass 2); R = 2, 4 or 8 is the
// first stage's radix, which must be 2^fft_first_radix(log2n). One specialised entry
// point per radix keeps code for other sizes out of the compiled shader. Sizes 2, 4, 8
// use fft_single_r<R> (in place, no workgroup memory, no barrier).

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
    in_minor: u32,   // 1: consecutive threads walk columns when loading (strided data)
    out_minor: u32,  // 1: the same when storing
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> fft_p: FftParams;
@group(1) @binding(0) var<storage, read> fft_twiddles: array<vec2<f32>>;
@group(1) @binding(1) var<storage, read_write> fft_a: array<vec2<f32>>;
@group(1) @binding(2) var<storage, read_write> fft_b: array<vec2<f32>>;

// mode: 0 a -> a, 1 a -> b, 2 b -> a (a compile-time constant after inlining)
fn fft_gload(mode: u32, idx: u32) -> vec2<f32> {
    if (mode == 2u) {
        return fft_b[idx];
    }
    return fft_a[idx];
}

fn fft_gstore(mode: u32, idx: u32, v: vec2<f32>) {
    if (mode == 1u) {
        fft_b[idx] = v;
    } else {
        fft_a[idx] = v;
    }
}

struct FftLoc {
    addr: u32, // buffer index of the element
    col: u32,  // column c of the transform
    ok: bool,  // the transform exists
}

// Element i of packed transform t of workgroup wg.
fn fft_loc(wg: u32, t: u32, i: u32, elem: u32, col: u32) -> FftLoc {
    let g = (wg << fft_p.log2pack) + t;
    let c = g & ((1u << fft_p.log2cols) - 1u);
    var l: FftLoc;
    l.addr = (g >> fft_p.log2cols) * fft_p.big_n + c * col + i * elem;
    l.col = c;
    l.ok = g < fft_p.transforms;
    return l;
}

// Butterfly b -> (t, jj), 2^lq butterflies per transform; minor: consecutive b walk t.
fn fft_map(b: u32, lq: u32, minor: bool) -> vec2<u32> {
    if (minor) {
        return vec2<u32>(b & ((1u << fft_p.log2pack) - 1u), b >> fft_p.log2pack);
    }
    return fft_major(b, lq);
}

// First stage: loads the inputs of butterfly m = (t, jj) into v[o .. o + 2^lr0).
fn fft_gload_first(mode: u32, wg: u32, m: vec2<u32>, lr0: u32, v: ptr<function, array<vec2<f32>, 8>>, o: u32) {
    let l = fft_loc(wg, m.x, m.y, fft_p.in_elem, fft_p.in_col);
    if (!l.ok) {
        return;
    }
    let step = fft_p.in_elem << (fft_p.log2n - lr0);
    (*v)[o] = fft_gload(mode, l.addr);
    (*v)[o + 1u] = fft_gload(mode, l.addr + step);
    if (lr0 >= 2u) {
        (*v)[o + 2u] = fft_gload(mode, l.addr + 2u * step);
        (*v)[o + 3u] = fft_gload(mode, l.addr + 3u * step);
    }
    if (lr0 == 3u) {
        (*v)[o + 4u] = fft_gload(mode, l.addr + 4u * step);
        (*v)[o + 5u] = fft_gload(mode, l.addr + 5u * step);
        (*v)[o + 6u] = fft_gload(mode, l.addr + 6u * step);
        (*v)[o + 7u] = fft_gload(mode, l.addr + 7u * step);
    }
}

// Single-stage transforms (n = 2^lr0): stores butterfly m = (t, 0) from v[o ..].
fn fft_gstore_single(mode: u32, wg: u32, m: vec2<u32>, lr0: u32, v: ptr<function, array<vec2<f32>, 8>>, o: u32) {
    let l = fft_loc(wg, m.x, 0u, fft_p.out_elem, fft_p.out_col);
    if (!l.ok) {
        return;
    }
    let step = fft_p.out_elem;
    fft_gstore(mode, l.addr, (*v)[o]);
    fft_gstore(mode, l.addr + step, (*v)[o + 1u]);
    if (lr0 >= 2u) {
        fft_gstore(mode, l.addr + 2u * step, (*v)[o + 2u]);
        fft_gstore(mode, l.addr + 3u * step, (*v)[o + 3u]);
    }
    if (lr0 == 3u) {
        fft_gstore(mode, l.addr + 4u * step, (*v)[o + 4u]);
        fft_gstore(mode, l.addr + 5u * step, (*v)[o + 5u]);
        fft_gstore(mode, l.addr + 6u * step, (*v)[o + 6u]);
        fft_gstore(mode, l.addr + 7u * step, (*v)[o + 7u]);
    }
}

// First stage straight from the buffer: thread lid owns butterflies lid + k * FFT_WG
// (k < 8 >> lr0) in v[k R ..]; the results go to fft_sh, or straight back to the
// buffer when the transform has a single stage. Returns whether it was single-stage.
fn fft_first_global(mode: u32, wg: u32, lid: u32, lr0: u32, inverse: bool, v: ptr<function, array<vec2<f32>, 8>>) -> bool {
    let log2n = fft_p.log2n;
    let lq = log2n - lr0;
    let nb = 1u << (log2n + fft_p.log2pack - lr0);
    let minor = fft_p.in_minor != 0u;
    let m0 = fft_map(lid, lq, minor);
    let m1 = fft_map(lid + FFT_WG, lq, minor);
    let m2 = fft_map(lid + 2u * FFT_WG, lq, minor);
    let m3 = fft_map(lid + 3u * FFT_WG, lq, minor);
    let a0 = lid < nb;
    let a1 = lid + FFT_WG < nb;
    let a2 = lid + 2u * FFT_WG < nb;
    let a3 = lid + 3u * FFT_WG < nb;
    if (lr0 == 3u) {
        if (a0) { fft_gload_first(mode, wg, m0, 3u, v, 0u); }
    } else if (lr0 == 2u) {
        if (a0) { fft_gload_first(mode, wg, m0, 2u, v, 0u); }
        if (a1) { fft_gload_first(mode, wg, m1, 2u, v, 4u); }
    } else {
        if (a0) { fft_gload_first(mode, wg, m0, 1u, v, 0u); }
        if (a1) { fft_gload_first(mode, wg, m1, 1u, v, 2u); }
        if (a2) { fft_gload_first(mode, wg, m2, 1u, v, 4u); }
        if (a3) { fft_gload_first(mode, wg, m3, 1u, v, 6u); }
    }
    fft_first_dft(v, lr0, inverse);
    let single = log2n == lr0;
    if (single) {
        if (lr0 == 3u) {
            if (a0) { fft_gstore_single(mode, wg, m0, 3u, v, 0u); }
        } else if (lr0 == 2u) {
            if (a0) { fft_gstore_single(mode, wg, m0, 2u, v, 0u); }
            if (a1) { fft_gstore_single(mode, wg, m1, 2u, v, 4u); }
        } else {
            if (a0) { fft_gstore_single(mode, wg, m0, 1u, v, 0u); }
            if (a1) { fft_gstore_single(mode, wg, m1, 1u, v, 2u); }
            if (a2) { fft_gstore_single(mode, wg, m2, 1u, v, 4u); }
            if (a3) { fft_gstore_single(mode, wg, m3, 1u, v, 6u); }
        }
    } else {
        if (lr0 == 3u) {
            if (a0) { fft_first_store_tj(m0.x, m0.y, log2n, 3u, v, 0u); }
        } else if (lr0 == 2u) {
            if (a0) { fft_first_store_tj(m0.x, m0.y, log2n, 2u, v, 0u); }
            if (a1) { fft_first_store_tj(m1.x, m1.y, log2n, 2u, v, 4u); }
        } else {
            if (a0) { fft_first_store_tj(m0.x, m0.y, log2n, 1u, v, 0u); }
            if (a1) { fft_first_store_tj(m1.x, m1.y, log2n, 1u, v, 2u); }
            if (a2) { fft_first_store_tj(m2.x, m2.y, log2n, 1u, v, 4u); }
            if (a3) { fft_first_store_tj(m3.x, m3.y, log2n, 1u, v, 6u); }
        }
    }
    return single;
}

// Last stage (radix 8, Ns = n/8) from fft_sh straight to the buffer: output
// k = jj + r*Ns of butterfly jj; mode 1 multiplies it by W_{big_n}^{c*k}.
fn fft_last_global(mode: u32, wg: u32, lid: u32, inverse: bool) {
    let log2n = fft_p.log2n;
    let lns = log2n - 3u;
    let nb = 1u << (log2n + fft_p.log2pack - 3u);
    if (lid >= nb) {
        return;
    }
    let m = fft_map(lid, lns, fft_p.out_minor != 0u);
    var v: array<vec2<f32>, 8>;
    fft_r8_load(m.x, m.y, log2n, lns, inverse, &v);
    let l = fft_loc(wg, m.x, m.y, fft_p.out_elem, fft_p.out_col);
    if (!l.ok) {
        return;
    }
    if (mode == 1u) {
        // W^{c (jj + r Ns)} = W^{c jj} (W^{c Ns})^r
        let off = fft_p.big_n - 2u;
        let cs = l.col << lns;
        fft_powers8(&v, fft_twiddle(off + cs, inverse), fft_twiddle(off + 4u * cs, inverse));
        let w0 = fft_twiddle(off + l.col * m.y, inverse);
        v[0] = fft_cmul(v[0], w0);
        v[1] = fft_cmul(v[1], w0);
        v[2] = fft_cmul(v[2], w0);
        v[3] = fft_cmul(v[3], w0);
        v[4] = fft_cmul(v[4], w0);
        v[5] = fft_cmul(v[5], w0);
        v[6] = fft_cmul(v[6], w0);
        v[7] = fft_cmul(v[7], w0);
    }
    let step = fft_p.out_elem << lns;
    fft_gstore(mode, l.addr, v[0]);
    fft_gstore(mode, l.addr + step, v[1]);
    fft_gstore(mode, l.addr + 2u * step, v[2]);
    fft_gstore(mode, l.addr + 3u * step, v[3]);
    fft_gstore(mode, l.addr + 4u * step, v[4]);
    fft_gstore(mode, l.addr + 5u * step, v[5]);
    fft_gstore(mode, l.addr + 6u * step, v[6]);
    fft_gstore(mode, l.addr + 7u * step, v[7]);
}

fn fft_pass(lid: u32, wid: vec3<u32>, nwg: vec3<u32>, mode: u32, lr0: u32) {
    let wg = wid.x + wid.y * nwg.x;
    if (wg >= fft_p.groups) {
        return;
    }
    let inverse = fft_p.inverse != 0u;
    let log2n = fft_p.log2n;
    let log2t = log2n + fft_p.log2pack;
    var v: array<vec2<f32>, 8>;
    if (fft_first_global(mode, wg, lid, lr0, inverse, &v)) {
        return;
    }
    workgroupBarrier();
    for (var lns = lr0; lns + 3u < log2n; lns += 3u) {
        fft_r8_stage(lid, log2n, log2t, lns, inverse);
    }
    fft_last_global(mode, wg, lid, inverse);
}

// Sizes 2, 4 and 8 (mode inplace): a single stage and no barrier at all, which on
// lavapipe halves the cost (a shader with barriers runs every invocation as a coroutine).
fn fft_pass_single(lid: u32, wid: vec3<u32>, nwg: vec3<u32>, lr0: u32) {
    let wg = wid.x + wid.y * nwg.x;
    if (wg >= fft_p.groups) {
        return;
    }
    var v: array<vec2<f32>, 8>;
    _ = fft_first_global(0u, wg, lid, lr0, fft_p.inverse != 0u, &v);
}

@compute @workgroup_size(256)
fn fft_single_r2(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    fft_pass_single(lid, wid, nwg, 1u);
}

@compute @workgroup_size(256)
fn fft_single_r4(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    fft_pass_single(lid, wid, nwg, 2u);
}

@compute @workgroup_size(256)
fn fft_single_r8(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    fft_pass_single(lid, wid, nwg, 3u);
}

@compute @workgroup_size(256)
fn fft_inplace_r2(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    fft_pass(lid, wid, nwg, 0u, 1u);
}

@compute @workgroup_size(256)
fn fft_inplace_r4(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    fft_pass(lid, wid, nwg, 0u, 2u);
}

@compute @workgroup_size(256)
fn fft_inplace_r8(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    fft_pass(lid, wid, nwg, 0u, 3u);
}

@compute @workgroup_size(256)
fn fft_a_to_b_r2(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    fft_pass(lid, wid, nwg, 1u, 1u);
}

@compute @workgroup_size(256)
fn fft_a_to_b_r4(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    fft_pass(lid, wid, nwg, 1u, 2u);
}

@compute @workgroup_size(256)
fn fft_a_to_b_r8(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    fft_pass(lid, wid, nwg, 1u, 3u);
}

@compute @workgroup_size(256)
fn fft_b_to_a_r2(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    fft_pass(lid, wid, nwg, 2u, 1u);
}

@compute @workgroup_size(256)
fn fft_b_to_a_r4(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    fft_pass(lid, wid, nwg, 2u, 2u);
}

@compute @workgroup_size(256)
fn fft_b_to_a_r8(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    fft_pass(lid, wid, nwg, 2u, 3u);
}
