// Workgroup Stockham autosort FFT (no bit reversal), in place in workgroup memory.
//
// Include by concatenation: `format!("{FFT_LIB_WGSL}\n{YOUR_WGSL}")`. The including
// shader must declare the twiddle table
//
//     @group(G) @binding(B) var<storage, read> fft_twiddles: array<vec2<f32>>;
//
// laid out as `flashconv::fft::twiddle_table` builds it: for every power of two m up to
// the largest size used, W_m^j = (cos(-2*pi*j/m), sin(-2*pi*j/m)) for j in 0..m at
// offset m - 2 (`twiddle_table(2048)` covers every workgroup size).
//
// This file declares `fft_sh` (16 KiB, the only workgroup memory it uses: an including
// shader must not declare more if it is to stay within the WebGPU default limit),
// `FFT_WG` (the workgroup size every caller must use: `@workgroup_size(FFT_WG)`) and
// helpers prefixed `fft_`. Usage:
//
//     fft_sh[i] = ...;                       // any thread, i < n
//     fft_wg(lid, n, log2n, inverse);        // all FFT_WG threads, uniform control flow
//     ... = fft_sh[k];                       // X_k, natural order
//
// with lid = local_invocation_index and n = 1 << log2n (log2n is what is used).
//
// Decimation in time. The first stage (sub-transform size Ns = 1, no twiddles) has
// radix 2, 4 or 8 so that the rest is radix-8 stages: 2048 = 4*8*8*8, 256 = 4*8*8.
// Stage with sub-transform size Ns and radix R = 2^lr, butterfly jj of a size-n
// transform:
//   read  v[r] = x[jj + r*n/R], v[r] *= W_{Ns*R}^{(jj mod Ns)*r}, v = DFT_R(v)
//   write x[(jj / Ns)*Ns*R + (jj mod Ns) + r*Ns] = v[r]
// Every thread reads its butterflies into registers, barrier, writes, barrier. With
// 2048 elements every thread holds exactly 8 values per stage (one radix-8 butterfly,
// two radix-4 or four radix-2 ones).
//
// Performance notes (Mesa lavapipe, which matters for CI and CPU-only users): every
// pass through workgroup memory costs about as much as the arithmetic of a whole
// stage, and idle threads cost nearly as much as busy ones, hence radix 8 with all
// 256 threads busy. Code that is never taken still slows a shader down, so call
// `fft_wg` with compile-time constant sizes where possible: after inlining the
// branches for other sizes fold away.

const FFT_WG: u32 = 256u;
const FFT_SH_LEN: u32 = 2048u;

var<workgroup> fft_sh: array<vec2<f32>, 2048>;

fn fft_cmul(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    return vec2<f32>(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}

// Twiddle table entry `idx` (absolute index: offset m - 2 plus j), conjugated for the
// inverse transform.
fn fft_twiddle(idx: u32, inverse: bool) -> vec2<f32> {
    let w = fft_twiddles[idx];
    return select(w, vec2<f32>(w.x, -w.y), inverse);
}

// v * (-i) forward, v * (+i) inverse.
fn fft_rot(v: vec2<f32>, inverse: bool) -> vec2<f32> {
    return select(vec2<f32>(v.y, -v.x), vec2<f32>(-v.y, v.x), inverse);
}

const FFT_R2: f32 = 0.70710678118654752; // sqrt(1/2)

// 2-point DFTs of (v[o], v[o+1]).
fn fft_dft2(v: ptr<function, array<vec2<f32>, 8>>, o: u32) {
    let a = (*v)[o];
    let b = (*v)[o + 1u];
    (*v)[o] = a + b;
    (*v)[o + 1u] = a - b;
}

// 4-point DFT of v[o..o+4) in place.
fn fft_dft4(v: ptr<function, array<vec2<f32>, 8>>, o: u32, inverse: bool) {
    let t0 = (*v)[o] + (*v)[o + 2u];
    let t1 = (*v)[o] - (*v)[o + 2u];
    let t2 = (*v)[o + 1u] + (*v)[o + 3u];
    let r = fft_rot((*v)[o + 1u] - (*v)[o + 3u], inverse);
    (*v)[o] = t0 + t2;
    (*v)[o + 1u] = t1 + r;
    (*v)[o + 2u] = t0 - t2;
    (*v)[o + 3u] = t1 - r;
}

// 8-point DFT of v in place (radix 2 x 4: r = 2 r1 + r2, k = k1 + 4 k2).
fn fft_dft8(v: ptr<function, array<vec2<f32>, 8>>, inverse: bool) {
    // 4-point DFTs of the even and odd elements
    let e0 = (*v)[0] + (*v)[4];
    let e1 = (*v)[0] - (*v)[4];
    let e2 = (*v)[2] + (*v)[6];
    let e3 = fft_rot((*v)[2] - (*v)[6], inverse);
    let o0 = (*v)[1] + (*v)[5];
    let o1 = (*v)[1] - (*v)[5];
    let o2 = (*v)[3] + (*v)[7];
    let o3 = fft_rot((*v)[3] - (*v)[7], inverse);
    let E0 = e0 + e2;
    let E1 = e1 + e3;
    let E2 = e0 - e2;
    let E3 = e1 - e3;
    let O0 = o0 + o2;
    var O1 = o1 + o3;
    var O2 = o0 - o2;
    var O3 = o1 - o3;
    // times W_8^k1: W_8 = (1 - i)/sqrt2 forward, (1 + i)/sqrt2 inverse
    O1 = (O1 + fft_rot(O1, inverse)) * FFT_R2;
    O2 = fft_rot(O2, inverse);
    O3 = (fft_rot(O3, inverse) - O3) * FFT_R2;
    (*v)[0] = E0 + O0;
    (*v)[4] = E0 - O0;
    (*v)[1] = E1 + O1;
    (*v)[5] = E1 - O1;
    (*v)[2] = E2 + O2;
    (*v)[6] = E2 - O2;
    (*v)[3] = E3 + O3;
    (*v)[7] = E3 - O3;
}

// v[r] *= w^r for r in 1..8, given w1 = w and w4 = w^4 (at most two roundings deep).
fn fft_powers8(v: ptr<function, array<vec2<f32>, 8>>, w1: vec2<f32>, w4: vec2<f32>) {
    let w2 = fft_cmul(w1, w1);
    let w3 = fft_cmul(w2, w1);
    (*v)[1] = fft_cmul((*v)[1], w1);
    (*v)[2] = fft_cmul((*v)[2], w2);
    (*v)[3] = fft_cmul((*v)[3], w3);
    (*v)[4] = fft_cmul((*v)[4], w4);
    (*v)[5] = fft_cmul((*v)[5], fft_cmul(w4, w1));
    (*v)[6] = fft_cmul((*v)[6], fft_cmul(w4, w2));
    (*v)[7] = fft_cmul((*v)[7], fft_cmul(w4, w3));
}

// The first stage's radix (log2) for a size-2^log2n transform: 3 when log2n is a
// multiple of 3, else 1 or 2, so that the other stages are radix 8.
fn fft_first_radix(log2n: u32) -> u32 {
    return (log2n + 2u) % 3u + 1u;
}

// First stage (Ns = 1, no twiddles) on registers: v holds 8 >> lr0 butterflies of
// radix 2^lr0, butterfly k in v[k R .. (k+1) R).
fn fft_first_dft(v: ptr<function, array<vec2<f32>, 8>>, lr0: u32, inverse: bool) {
    if (lr0 == 1u) {
        fft_dft2(v, 0u);
        fft_dft2(v, 2u);
        fft_dft2(v, 4u);
        fft_dft2(v, 6u);
    } else if (lr0 == 2u) {
        fft_dft4(v, 0u, inverse);
        fft_dft4(v, 4u, inverse);
    } else {
        fft_dft8(v, inverse);
    }
}

// First stage (Ns = 1): stores butterfly jj of packed transform t from v[o .. o + R)
// to fft_sh.
fn fft_first_store_tj(t: u32, jj: u32, log2n: u32, lr0: u32, v: ptr<function, array<vec2<f32>, 8>>, o: u32) {
    let dst = (t << log2n) + (jj << lr0);
    fft_sh[dst] = (*v)[o];
    fft_sh[dst + 1u] = (*v)[o + 1u];
    if (lr0 >= 2u) {
        fft_sh[dst + 2u] = (*v)[o + 2u];
        fft_sh[dst + 3u] = (*v)[o + 3u];
    }
    if (lr0 == 3u) {
        fft_sh[dst + 4u] = (*v)[o + 4u];
        fft_sh[dst + 5u] = (*v)[o + 5u];
        fft_sh[dst + 6u] = (*v)[o + 6u];
        fft_sh[dst + 7u] = (*v)[o + 7u];
    }
}

// First stage: loads the inputs of butterfly jj of packed transform t from fft_sh into
// v[o .. o + R).
fn fft_first_load_tj(t: u32, jj: u32, log2n: u32, lr0: u32, v: ptr<function, array<vec2<f32>, 8>>, o: u32) {
    let q = 1u << (log2n - lr0);
    let src = (t << log2n) + jj;
    (*v)[o] = fft_sh[src];
    (*v)[o + 1u] = fft_sh[src + q];
    if (lr0 >= 2u) {
        (*v)[o + 2u] = fft_sh[src + 2u * q];
        (*v)[o + 3u] = fft_sh[src + 3u * q];
    }
    if (lr0 == 3u) {
        (*v)[o + 4u] = fft_sh[src + 4u * q];
        (*v)[o + 5u] = fft_sh[src + 5u * q];
        (*v)[o + 6u] = fft_sh[src + 6u * q];
        (*v)[o + 7u] = fft_sh[src + 7u * q];
    }
}

// Butterfly b -> (t, jj) for 2^lq butterflies per transform, consecutive b walking jj.
fn fft_major(b: u32, lq: u32) -> vec2<u32> {
    return vec2<u32>(b >> lq, b & ((1u << lq) - 1u));
}

// First stage over fft_sh: thread lid owns butterflies lid + k * FFT_WG,
// k < 8 >> lr0, held in v[k R .. (k + 1) R). (Written out per radix so that register
// indices stay compile-time constants.)
fn fft_first_load(lid: u32, log2n: u32, log2t: u32, lr0: u32, v: ptr<function, array<vec2<f32>, 8>>) {
    let nb = 1u << (log2t - lr0);
    let lq = log2n - lr0;
    let m0 = fft_major(lid, lq);
    let m1 = fft_major(lid + FFT_WG, lq);
    let m2 = fft_major(lid + 2u * FFT_WG, lq);
    let m3 = fft_major(lid + 3u * FFT_WG, lq);
    if (lr0 == 3u) {
        if (lid < nb) { fft_first_load_tj(m0.x, m0.y, log2n, 3u, v, 0u); }
    } else if (lr0 == 2u) {
        if (lid < nb) { fft_first_load_tj(m0.x, m0.y, log2n, 2u, v, 0u); }
        if (lid + FFT_WG < nb) { fft_first_load_tj(m1.x, m1.y, log2n, 2u, v, 4u); }
    } else {
        if (lid < nb) { fft_first_load_tj(m0.x, m0.y, log2n, 1u, v, 0u); }
        if (lid + FFT_WG < nb) { fft_first_load_tj(m1.x, m1.y, log2n, 1u, v, 2u); }
        if (lid + 2u * FFT_WG < nb) { fft_first_load_tj(m2.x, m2.y, log2n, 1u, v, 4u); }
        if (lid + 3u * FFT_WG < nb) { fft_first_load_tj(m3.x, m3.y, log2n, 1u, v, 6u); }
    }
}

fn fft_first_store(lid: u32, log2n: u32, log2t: u32, lr0: u32, v: ptr<function, array<vec2<f32>, 8>>) {
    let nb = 1u << (log2t - lr0);
    let lq = log2n - lr0;
    let m0 = fft_major(lid, lq);
    let m1 = fft_major(lid + FFT_WG, lq);
    let m2 = fft_major(lid + 2u * FFT_WG, lq);
    let m3 = fft_major(lid + 3u * FFT_WG, lq);
    if (lr0 == 3u) {
        if (lid < nb) { fft_first_store_tj(m0.x, m0.y, log2n, 3u, v, 0u); }
    } else if (lr0 == 2u) {
        if (lid < nb) { fft_first_store_tj(m0.x, m0.y, log2n, 2u, v, 0u); }
        if (lid + FFT_WG < nb) { fft_first_store_tj(m1.x, m1.y, log2n, 2u, v, 4u); }
    } else {
        if (lid < nb) { fft_first_store_tj(m0.x, m0.y, log2n, 1u, v, 0u); }
        if (lid + FFT_WG < nb) { fft_first_store_tj(m1.x, m1.y, log2n, 1u, v, 2u); }
        if (lid + 2u * FFT_WG < nb) { fft_first_store_tj(m2.x, m2.y, log2n, 1u, v, 4u); }
        if (lid + 3u * FFT_WG < nb) { fft_first_store_tj(m3.x, m3.y, log2n, 1u, v, 6u); }
    }
}

// Radix-8 stage at Ns = 2^lns > 1: loads butterfly jj of packed transform t from
// fft_sh, applies the stage twiddles W_{8 Ns}^{(jj mod Ns) r} and transforms.
fn fft_r8_load(t: u32, jj: u32, log2n: u32, lns: u32, inverse: bool, v: ptr<function, array<vec2<f32>, 8>>) {
    let lq = log2n - 3u;
    let q = 1u << lq;
    let src = (t << log2n) + jj;
    (*v)[0] = fft_sh[src];
    (*v)[1] = fft_sh[src + q];
    (*v)[2] = fft_sh[src + 2u * q];
    (*v)[3] = fft_sh[src + 3u * q];
    (*v)[4] = fft_sh[src + 4u * q];
    (*v)[5] = fft_sh[src + 5u * q];
    (*v)[6] = fft_sh[src + 6u * q];
    (*v)[7] = fft_sh[src + 7u * q];
    let ns = 1u << lns;
    let p = jj & (ns - 1u);
    let off = (ns << 3u) - 2u;
    fft_powers8(v, fft_twiddle(off + p, inverse), fft_twiddle(off + 4u * p, inverse));
    fft_dft8(v, inverse);
}

// Radix-8 stage at Ns = 2^lns: stores butterfly jj of packed transform t to fft_sh.
fn fft_r8_store(t: u32, jj: u32, log2n: u32, lns: u32, v: ptr<function, array<vec2<f32>, 8>>) {
    let ns = 1u << lns;
    let dst = (t << log2n) + ((jj >> lns) << (lns + 3u)) + (jj & (ns - 1u));
    fft_sh[dst] = (*v)[0];
    fft_sh[dst + ns] = (*v)[1];
    fft_sh[dst + 2u * ns] = (*v)[2];
    fft_sh[dst + 3u * ns] = (*v)[3];
    fft_sh[dst + 4u * ns] = (*v)[4];
    fft_sh[dst + 5u * ns] = (*v)[5];
    fft_sh[dst + 6u * ns] = (*v)[6];
    fft_sh[dst + 7u * ns] = (*v)[7];
}

// One in-place radix-8 stage at Ns = 2^lns over 2^log2t elements of packed size-2^log2n
// transforms: load, barrier, store, barrier.
fn fft_r8_stage(lid: u32, log2n: u32, log2t: u32, lns: u32, inverse: bool) {
    let nb = 1u << (log2t - 3u);
    let m = fft_major(lid, log2n - 3u);
    var v: array<vec2<f32>, 8>;
    if (lid < nb) { fft_r8_load(m.x, m.y, log2n, lns, inverse, &v); }
    workgroupBarrier();
    if (lid < nb) { fft_r8_store(m.x, m.y, log2n, lns, &v); }
    workgroupBarrier();
}

// Transforms 2^log2count contiguous transforms of size n = 2^log2n held in
// fft_sh[0 .. n * 2^log2count) (at most 2048 elements in all), in place, unnormalised.
// Starts and ends with a workgroupBarrier; call in uniform control flow from all
// FFT_WG threads of the workgroup.
fn fft_wg_batch(lid: u32, log2n: u32, log2count: u32, inverse: bool) {
    workgroupBarrier();
    let log2t = log2n + log2count;
    let lr0 = fft_first_radix(log2n);
    var v: array<vec2<f32>, 8>;
    fft_first_load(lid, log2n, log2t, lr0, &v);
    fft_first_dft(&v, lr0, inverse);
    workgroupBarrier();
    fft_first_store(lid, log2n, log2t, lr0, &v);
    workgroupBarrier();
    for (var lns = lr0; lns < log2n; lns += 3u) {
        fft_r8_stage(lid, log2n, log2t, lns, inverse);
    }
}

// Transforms fft_sh[0..n) in place, unnormalised both ways (like rustfft); n = 2^log2n,
// 2 <= n <= 2048. Starts and ends with a workgroupBarrier; call in uniform control flow
// from all FFT_WG threads of the workgroup.
fn fft_wg(lid: u32, n: u32, log2n: u32, inverse: bool) {
    fft_wg_batch(lid, log2n, 0u, inverse);
}
