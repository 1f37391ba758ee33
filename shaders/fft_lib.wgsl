// Workgroup Stockham autosort FFT (no bit reversal), in place in workgroup memory.
//
// Include by concatenation: `format!("{FFT_LIB_WGSL}\n{YOUR_WGSL}")`. The including
// shader must declare the twiddle table
//
//     @group(G) @binding(B) var<storage, read> fft_twiddles: array<vec2<f32>>;
//
// laid out as `flashconv::fft::twiddle_table` builds it: for every power of two m up to
// the largest size used, W_m^j = (cos(-2*pi*j/m), sin(-2*pi*j/m)) for j in 0..m at
// offset m - 2.
//
// This file declares `fft_sh` (16 KiB, the only workgroup memory it uses), `FFT_WG`
// (the workgroup size every caller must use) and helpers prefixed `fft_`.
//
// Decimation in time, radix 4 with one twiddle-free radix-2 stage first when log2(n)
// is odd. Stage with sub-transform size Ns (1, then x2 or x4 each stage), radix R,
// butterfly j of a size-n transform:
//   read  v[r] = x[j + r*n/R], v[r] *= W_{Ns*R}^{(j mod Ns)*r}, v = DFT_R(v)
//   write x[(j / Ns)*Ns*R + (j mod Ns) + r*Ns] = v[r]
// Every thread reads its butterflies into registers, barrier, writes, barrier.

const FFT_WG: u32 = 256u;
const FFT_SH_LEN: u32 = 2048u;

var<workgroup> fft_sh: array<vec2<f32>, 2048>;

struct FftPair {
    v0: vec2<f32>,
    v1: vec2<f32>,
}

struct FftQuad {
    v0: vec2<f32>,
    v1: vec2<f32>,
    v2: vec2<f32>,
    v3: vec2<f32>,
}

fn fft_cmul(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    return vec2<f32>(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}

// Twiddle table entry `idx` (absolute index: offset m - 2 plus j), conjugated for the
// inverse transform.
fn fft_twiddle(idx: u32, inverse: bool) -> vec2<f32> {
    let w = fft_twiddles[idx];
    return select(w, vec2<f32>(w.x, -w.y), inverse);
}

// Radix-2 butterfly j at Ns = 1 (no twiddles) of the size-2^log2n transforms packed
// contiguously in fft_sh.
fn fft_r2_load(j: u32, log2n: u32) -> FftPair {
    let lh = log2n - 1u;
    let h = 1u << lh;
    let src = ((j >> lh) << log2n) + (j & (h - 1u));
    let a = fft_sh[src];
    let b = fft_sh[src + h];
    return FftPair(a + b, a - b);
}

fn fft_r2_store(j: u32, log2n: u32, v: FftPair) {
    let lh = log2n - 1u;
    let h = 1u << lh;
    let dst = ((j >> lh) << log2n) + 2u * (j & (h - 1u));
    fft_sh[dst] = v.v0;
    fft_sh[dst + 1u] = v.v1;
}

// Radix-4 butterfly j at Ns = 2^lns.
fn fft_r4_load(j: u32, log2n: u32, lns: u32, inverse: bool) -> FftQuad {
    let lq = log2n - 2u;
    let q = 1u << lq;
    let jj = j & (q - 1u);
    let src = ((j >> lq) << log2n) + jj;
    let a0 = fft_sh[src];
    var a1 = fft_sh[src + q];
    var a2 = fft_sh[src + 2u * q];
    var a3 = fft_sh[src + 3u * q];
    if (lns > 0u) {
        let ns = 1u << lns;
        let p = jj & (ns - 1u);
        let off = (ns << 2u) - 2u;
        a1 = fft_cmul(a1, fft_twiddle(off + p, inverse));
        a2 = fft_cmul(a2, fft_twiddle(off + 2u * p, inverse));
        a3 = fft_cmul(a3, fft_twiddle(off + 3u * p, inverse));
    }
    let t0 = a0 + a2;
    let t1 = a0 - a2;
    let t2 = a1 + a3;
    let t3 = a1 - a3;
    // forward: X1 = t1 - i*t3, X3 = t1 + i*t3; inverse swaps the sign of i.
    var r = vec2<f32>(t3.y, -t3.x);
    if (inverse) {
        r = -r;
    }
    return FftQuad(t0 + t2, t1 + r, t0 - t2, t1 - r);
}

fn fft_r4_store(j: u32, log2n: u32, lns: u32, v: FftQuad) {
    let lq = log2n - 2u;
    let q = 1u << lq;
    let jj = j & (q - 1u);
    let ns = 1u << lns;
    let dst = ((j >> lq) << log2n) + ((jj >> lns) << (lns + 2u)) + (jj & (ns - 1u));
    fft_sh[dst] = v.v0;
    fft_sh[dst + ns] = v.v1;
    fft_sh[dst + 2u * ns] = v.v2;
    fft_sh[dst + 3u * ns] = v.v3;
}

// Transforms 2^log2count contiguous transforms of size n = 2^log2n held in
// fft_sh[0 .. n * 2^log2count) (at most 2048 elements in all), in place, unnormalised.
// Starts and ends with a workgroupBarrier; call in uniform control flow from all
// FFT_WG threads of the workgroup.
fn fft_wg_batch(lid: u32, log2n: u32, log2count: u32, inverse: bool) {
    workgroupBarrier();
    let total_log = log2n + log2count;
    var lns = 0u;
    if ((log2n & 1u) == 1u) {
        let nb = 1u << (total_log - 1u);
        let j0 = lid;
        let j1 = lid + FFT_WG;
        let j2 = lid + 2u * FFT_WG;
        let j3 = lid + 3u * FFT_WG;
        var p0: FftPair;
        var p1: FftPair;
        var p2: FftPair;
        var p3: FftPair;
        if (j0 < nb) { p0 = fft_r2_load(j0, log2n); }
        if (j1 < nb) { p1 = fft_r2_load(j1, log2n); }
        if (j2 < nb) { p2 = fft_r2_load(j2, log2n); }
        if (j3 < nb) { p3 = fft_r2_load(j3, log2n); }
        workgroupBarrier();
        if (j0 < nb) { fft_r2_store(j0, log2n, p0); }
        if (j1 < nb) { fft_r2_store(j1, log2n, p1); }
        if (j2 < nb) { fft_r2_store(j2, log2n, p2); }
        if (j3 < nb) { fft_r2_store(j3, log2n, p3); }
        workgroupBarrier();
        lns = 1u;
    }
    loop {
        if (lns >= log2n) {
            break;
        }
        let nb = 1u << (total_log - 2u);
        let j0 = lid;
        let j1 = lid + FFT_WG;
        var q0: FftQuad;
        var q1: FftQuad;
        if (j0 < nb) { q0 = fft_r4_load(j0, log2n, lns, inverse); }
        if (j1 < nb) { q1 = fft_r4_load(j1, log2n, lns, inverse); }
        workgroupBarrier();
        if (j0 < nb) { fft_r4_store(j0, log2n, lns, q0); }
        if (j1 < nb) { fft_r4_store(j1, log2n, lns, q1); }
        workgroupBarrier();
        lns += 2u;
    }
}

// Transforms fft_sh[0..n) in place, unnormalised both ways (like rustfft); n = 2^log2n,
// 2 <= n <= 2048. Starts and ends with a workgroupBarrier; call in uniform control flow
// from all FFT_WG threads of the workgroup.
fn fft_wg(lid: u32, n: u32, log2n: u32, inverse: bool) {
    fft_wg_batch(lid, log2n, 0u, inverse);
}
