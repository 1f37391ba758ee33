// Batched standalone FFTs (concatenated after fft_lib.wgsl, whose FFT_R2 it uses).
//
// A size-N transform (N = 2^log2n >= 16) is a chain of barrier-free Stockham passes of
// radix R = 2^lr (2 to 64), one dispatch each, ping-ponging between the data buffer a
// and the scratch buffer b. Pass k has sub-transform size Ns = product of the earlier
// radices (lns = log2 Ns). Every thread takes two adjacent butterflies jj and jj + 1
// (jj even) of one transform, in the two halves of a vec4, so that every buffer access
// moves two complex values:
//   read  v[r] = x[jj + r*N/R] (both lanes in one vec4),
//   v[r] *= W_{R*Ns}^{(jj mod Ns)*r}, v = DFT_R(v),
//   write x'[(jj / Ns)*Ns*R + (jj mod Ns) + r*Ns] = v[r].
// The first pass (Ns = 1) has no twiddles and writes each butterfly's outputs as pairs
// (r, r + 1). The last pass (Ns = N / R) reads and writes the same elements, so it can
// run in place (a -> a) when the pass count leaves the data in a. The inverse is
// conj(forward(conj(x))): the first pass conjugates its input, the last its output.
//
// Why no workgroup memory: on Mesa's lavapipe (llvmpipe), which CI and CPU-only users
// run, a shader with a workgroupBarrier runs its invocations as coroutines, which cost
// more than the extra passes through the buffer; and every buffer access is a loop over
// the SIMD lanes, so moving two values per access (vec4) pays.
//
// Staged plans (src/fft.rs, CPU adapters) swap the buffer-access block below: every
// pass then reads a texture that the data buffer was copied into just before
// (textureLoad, a vector gather on llvmpipe, where a buffer load is a loop over the
// SIMD lanes) and writes the data buffer a.
//
// Sizes 2, 4 and 8 use fg_small_n<N>: one thread per transform, in place.
//
// Everything below the helpers is generated, straight-line code (fully unrolled DFTs,
// radix-2 decimation in time with literal twiddles): the generator, a Python script, is
// kept as a comment at the end of this file; edit it and regenerate (python3, writes
// this file to stdout) rather than editing the generated functions.

struct FgParams {
    log2n: u32,    // transform size N (log2)
    lns: u32,      // log2 Ns: product of the earlier passes' radices
    count: u32,    // butterfly pairs in all (batch * N / (2 R)); fg_small: transforms
    conj_in: u32,  // 1: conjugate the input (first pass of an inverse)
    conj_out: u32, // 1: conjugate the output (last pass of an inverse)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    _pad3: vec4<u32>,
    _pad4: vec4<u32>,
}

const FG_WG: u32 = 64u;

@group(0) @binding(0) var<uniform> fg_p: FgParams;
@group(1) @binding(0) var<storage, read> fft_twiddles: array<vec2<f32>>;
@group(1) @binding(1) var<storage, read_write> fg_a: array<vec4<f32>>;
@group(1) @binding(2) var<storage, read_write> fg_b: array<vec4<f32>>;

// (a.xy * w.xy, a.zw * w.zw), complex.
fn fg_mul(a: vec4<f32>, w: vec4<f32>) -> vec4<f32> {
    return a * w.xxzz + a.yxwz * vec4<f32>(-w.y, w.y, -w.w, w.w);
}

// Both lanes times the constant w.
fn fg_mulc(a: vec4<f32>, w: vec2<f32>) -> vec4<f32> {
    return fg_mul(a, vec4<f32>(w, w));
}

// Both lanes times -i.
fn fg_rot(v: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(v.y, -v.x, v.w, -v.z);
}

// ---- buffer access (staged plans swap this block: src/fft.rs, staged_source) ----
// src/dst: 0 = a, 1 = b (compile-time constants after inlining).
fn fg_load(src: u32, idx: u32) -> vec4<f32> {
    if (src == 1u) {
        return fg_b[idx];
    }
    return fg_a[idx];
}

fn fg_store(dst: u32, idx: u32, x: vec4<f32>) {
    if (dst == 1u) {
        fg_b[idx] = x;
    } else {
        fg_a[idx] = x;
    }
}
// ---- end of buffer access ----

fn fg_conj(on: u32) -> vec4<f32> {
    return select(vec4<f32>(1.0), vec4<f32>(1.0, -1.0, 1.0, -1.0), on != 0u);
}

fn fg_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * FG_WG + lid;
}

// Radix-2 pass: butterfly pair i (see the header).
fn fg_pass_r2(i: u32, src: u32, dst: u32, first: bool) {
    let log2n = fg_p.log2n;
    let lh = log2n - 2u; // log2 butterfly pairs per transform
    let base = (i >> lh) << log2n;
    let jj = (i & ((1u << lh) - 1u)) << 1u;
    let s = (base + jj) >> 1u;
    let qh = 1u << lh; // N / R / 2
    let cin = fg_conj(fg_p.conj_in);
    let cout = fg_conj(fg_p.conj_out);
    var x0 = fg_load(src, s) * cin;
    var x1 = fg_load(src, s + qh) * cin;
    let lns = fg_p.lns;
    let ns = 1u << lns;
    let p = jj & (ns - 1u);
    if (!first) {
        // lanes jj and jj + 1 take W_{R Ns}^{p r} and W_{R Ns}^{(p + 1) r}
        let off = (ns << 1u) - 2u;
        let w1 = vec4<f32>(fft_twiddles[off + p], fft_twiddles[off + p + 1u]);
        x1 = fg_mul(x1, w1);
    }
    let t1 = x0 + x1;
    let t2 = x0 - x1;
    if (first) {
        // Ns = 1: butterfly jj's outputs go to base + jj R + r, as pairs (r, r + 1)
        let d0 = (base + (jj << 1u)) >> 1u;
        let d1 = d0 + 1u;
        fg_store(dst, d0, vec4<f32>(t1.xy, t2.xy) * cout);
        fg_store(dst, d1, vec4<f32>(t1.zw, t2.zw) * cout);
        return;
    }
    let d = (base + ((jj >> lns) << (lns + 1u)) + p) >> 1u;
    let nsh = ns >> 1u;
    fg_store(dst, d, t1 * cout);
    fg_store(dst, d + nsh, t2 * cout);
}

// Radix-4 pass: butterfly pair i (see the header).
fn fg_pass_r4(i: u32, src: u32, dst: u32, first: bool) {
    let log2n = fg_p.log2n;
    let lh = log2n - 3u; // log2 butterfly pairs per transform
    let base = (i >> lh) << log2n;
    let jj = (i & ((1u << lh) - 1u)) << 1u;
    let s = (base + jj) >> 1u;
    let qh = 1u << lh; // N / R / 2
    let cin = fg_conj(fg_p.conj_in);
    let cout = fg_conj(fg_p.conj_out);
    var x0 = fg_load(src, s) * cin;
    var x1 = fg_load(src, s + qh) * cin;
    var x2 = fg_load(src, s + 2u * qh) * cin;
    var x3 = fg_load(src, s + 3u * qh) * cin;
    let lns = fg_p.lns;
    let ns = 1u << lns;
    let p = jj & (ns - 1u);
    if (!first) {
        // lanes jj and jj + 1 take W_{R Ns}^{p r} and W_{R Ns}^{(p + 1) r}
        let off = (ns << 2u) - 2u;
        let w1 = vec4<f32>(fft_twiddles[off + p], fft_twiddles[off + p + 1u]);
        let w2 = fg_mul(w1, w1);
        let w3 = fg_mul(w2, w1);
        x1 = fg_mul(x1, w1);
        x2 = fg_mul(x2, w2);
        x3 = fg_mul(x3, w3);
    }
    let t1 = x0 + x2;
    let t2 = x0 - x2;
    let t3 = x1 + x3;
    let t4 = fg_rot(x1 - x3);
    let t5 = t1 + t3;
    let t6 = t2 + t4;
    let t7 = t1 - t3;
    let t8 = t2 - t4;
    if (first) {
        // Ns = 1: butterfly jj's outputs go to base + jj R + r, as pairs (r, r + 1)
        let d0 = (base + (jj << 2u)) >> 1u;
        let d1 = d0 + 2u;
        fg_store(dst, d0, vec4<f32>(t5.xy, t6.xy) * cout);
        fg_store(dst, d1, vec4<f32>(t5.zw, t6.zw) * cout);
        fg_store(dst, d0 + 1u, vec4<f32>(t7.xy, t8.xy) * cout);
        fg_store(dst, d1 + 1u, vec4<f32>(t7.zw, t8.zw) * cout);
        return;
    }
    let d = (base + ((jj >> lns) << (lns + 2u)) + p) >> 1u;
    let nsh = ns >> 1u;
    fg_store(dst, d, t5 * cout);
    fg_store(dst, d + nsh, t6 * cout);
    fg_store(dst, d + 2u * nsh, t7 * cout);
    fg_store(dst, d + 3u * nsh, t8 * cout);
}

// Radix-8 pass: butterfly pair i (see the header).
fn fg_pass_r8(i: u32, src: u32, dst: u32, first: bool) {
    let log2n = fg_p.log2n;
    let lh = log2n - 4u; // log2 butterfly pairs per transform
    let base = (i >> lh) << log2n;
    let jj = (i & ((1u << lh) - 1u)) << 1u;
    let s = (base + jj) >> 1u;
    let qh = 1u << lh; // N / R / 2
    let cin = fg_conj(fg_p.conj_in);
    let cout = fg_conj(fg_p.conj_out);
    var x0 = fg_load(src, s) * cin;
    var x1 = fg_load(src, s + qh) * cin;
    var x2 = fg_load(src, s + 2u * qh) * cin;
    var x3 = fg_load(src, s + 3u * qh) * cin;
    var x4 = fg_load(src, s + 4u * qh) * cin;
    var x5 = fg_load(src, s + 5u * qh) * cin;
    var x6 = fg_load(src, s + 6u * qh) * cin;
    var x7 = fg_load(src, s + 7u * qh) * cin;
    let lns = fg_p.lns;
    let ns = 1u << lns;
    let p = jj & (ns - 1u);
    if (!first) {
        // lanes jj and jj + 1 take W_{R Ns}^{p r} and W_{R Ns}^{(p + 1) r}
        let off = (ns << 3u) - 2u;
        let w1 = vec4<f32>(fft_twiddles[off + p], fft_twiddles[off + p + 1u]);
        let w2 = fg_mul(w1, w1);
        let w3 = fg_mul(w2, w1);
        let w4 = fg_mul(w2, w2);
        let w5 = fg_mul(w4, w1);
        let w6 = fg_mul(w3, w3);
        let w7 = fg_mul(w4, w3);
        x1 = fg_mul(x1, w1);
        x2 = fg_mul(x2, w2);
        x3 = fg_mul(x3, w3);
        x4 = fg_mul(x4, w4);
        x5 = fg_mul(x5, w5);
        x6 = fg_mul(x6, w6);
        x7 = fg_mul(x7, w7);
    }
    let t1 = x0 + x4;
    let t2 = x0 - x4;
    let t3 = x2 + x6;
    let t4 = fg_rot(x2 - x6);
    let t5 = t1 + t3;
    let t6 = t2 + t4;
    let t7 = t1 - t3;
    let t8 = t2 - t4;
    let t9 = x1 + x5;
    let t10 = x1 - x5;
    let t11 = x3 + x7;
    let t12 = fg_rot(x3 - x7);
    let t13 = t9 + t11;
    let t14 = t10 + t12;
    let t15 = t9 - t11;
    let t16 = t10 - t12;
    let t17 = t5 + t13;
    let t18 = t5 - t13;
    let t19 = (t14 + fg_rot(t14)) * FFT_R2;
    let t20 = t6 + t19;
    let t21 = t6 - t19;
    let t22 = fg_rot(t15);
    let t23 = t7 + t22;
    let t24 = t7 - t22;
    let t25 = (fg_rot(t16) - t16) * FFT_R2;
    let t26 = t8 + t25;
    let t27 = t8 - t25;
    if (first) {
        // Ns = 1: butterfly jj's outputs go to base + jj R + r, as pairs (r, r + 1)
        let d0 = (base + (jj << 3u)) >> 1u;
        let d1 = d0 + 4u;
        fg_store(dst, d0, vec4<f32>(t17.xy, t20.xy) * cout);
        fg_store(dst, d1, vec4<f32>(t17.zw, t20.zw) * cout);
        fg_store(dst, d0 + 1u, vec4<f32>(t23.xy, t26.xy) * cout);
        fg_store(dst, d1 + 1u, vec4<f32>(t23.zw, t26.zw) * cout);
        fg_store(dst, d0 + 2u, vec4<f32>(t18.xy, t21.xy) * cout);
        fg_store(dst, d1 + 2u, vec4<f32>(t18.zw, t21.zw) * cout);
        fg_store(dst, d0 + 3u, vec4<f32>(t24.xy, t27.xy) * cout);
        fg_store(dst, d1 + 3u, vec4<f32>(t24.zw, t27.zw) * cout);
        return;
    }
    let d = (base + ((jj >> lns) << (lns + 3u)) + p) >> 1u;
    let nsh = ns >> 1u;
    fg_store(dst, d, t17 * cout);
    fg_store(dst, d + nsh, t20 * cout);
    fg_store(dst, d + 2u * nsh, t23 * cout);
    fg_store(dst, d + 3u * nsh, t26 * cout);
    fg_store(dst, d + 4u * nsh, t18 * cout);
    fg_store(dst, d + 5u * nsh, t21 * cout);
    fg_store(dst, d + 6u * nsh, t24 * cout);
    fg_store(dst, d + 7u * nsh, t27 * cout);
}

// Radix-16 pass: butterfly pair i (see the header).
fn fg_pass_r16(i: u32, src: u32, dst: u32, first: bool) {
    let log2n = fg_p.log2n;
    let lh = log2n - 5u; // log2 butterfly pairs per transform
    let base = (i >> lh) << log2n;
    let jj = (i & ((1u << lh) - 1u)) << 1u;
    let s = (base + jj) >> 1u;
    let qh = 1u << lh; // N / R / 2
    let cin = fg_conj(fg_p.conj_in);
    let cout = fg_conj(fg_p.conj_out);
    var x0 = fg_load(src, s) * cin;
    var x1 = fg_load(src, s + qh) * cin;
    var x2 = fg_load(src, s + 2u * qh) * cin;
    var x3 = fg_load(src, s + 3u * qh) * cin;
    var x4 = fg_load(src, s + 4u * qh) * cin;
    var x5 = fg_load(src, s + 5u * qh) * cin;
    var x6 = fg_load(src, s + 6u * qh) * cin;
    var x7 = fg_load(src, s + 7u * qh) * cin;
    var x8 = fg_load(src, s + 8u * qh) * cin;
    var x9 = fg_load(src, s + 9u * qh) * cin;
    var x10 = fg_load(src, s + 10u * qh) * cin;
    var x11 = fg_load(src, s + 11u * qh) * cin;
    var x12 = fg_load(src, s + 12u * qh) * cin;
    var x13 = fg_load(src, s + 13u * qh) * cin;
    var x14 = fg_load(src, s + 14u * qh) * cin;
    var x15 = fg_load(src, s + 15u * qh) * cin;
    let lns = fg_p.lns;
    let ns = 1u << lns;
    let p = jj & (ns - 1u);
    if (!first) {
        // lanes jj and jj + 1 take W_{R Ns}^{p r} and W_{R Ns}^{(p + 1) r}
        let off = (ns << 4u) - 2u;
        let w1 = vec4<f32>(fft_twiddles[off + p], fft_twiddles[off + p + 1u]);
        let w8 = vec4<f32>(fft_twiddles[off + 8u * p], fft_twiddles[off + 8u * p + 8u]);
        let w2 = fg_mul(w1, w1);
        let w3 = fg_mul(w2, w1);
        let w4 = fg_mul(w2, w2);
        let w5 = fg_mul(w4, w1);
        let w6 = fg_mul(w3, w3);
        let w7 = fg_mul(w4, w3);
        let w9 = fg_mul(w8, w1);
        let w10 = fg_mul(w8, w2);
        let w11 = fg_mul(w8, w3);
        let w12 = fg_mul(w8, w4);
        let w13 = fg_mul(w8, w5);
        let w14 = fg_mul(w8, w6);
        let w15 = fg_mul(w8, w7);
        x1 = fg_mul(x1, w1);
        x2 = fg_mul(x2, w2);
        x3 = fg_mul(x3, w3);
        x4 = fg_mul(x4, w4);
        x5 = fg_mul(x5, w5);
        x6 = fg_mul(x6, w6);
        x7 = fg_mul(x7, w7);
        x8 = fg_mul(x8, w8);
        x9 = fg_mul(x9, w9);
        x10 = fg_mul(x10, w10);
        x11 = fg_mul(x11, w11);
        x12 = fg_mul(x12, w12);
        x13 = fg_mul(x13, w13);
        x14 = fg_mul(x14, w14);
        x15 = fg_mul(x15, w15);
    }
    let t1 = x0 + x8;
    let t2 = x0 - x8;
    let t3 = x4 + x12;
    let t4 = fg_rot(x4 - x12);
    let t5 = t1 + t3;
    let t6 = t2 + t4;
    let t7 = t1 - t3;
    let t8 = t2 - t4;
    let t9 = x2 + x10;
    let t10 = x2 - x10;
    let t11 = x6 + x14;
    let t12 = fg_rot(x6 - x14);
    let t13 = t9 + t11;
    let t14 = t10 + t12;
    let t15 = t9 - t11;
    let t16 = t10 - t12;
    let t17 = t5 + t13;
    let t18 = t5 - t13;
    let t19 = (t14 + fg_rot(t14)) * FFT_R2;
    let t20 = t6 + t19;
    let t21 = t6 - t19;
    let t22 = fg_rot(t15);
    let t23 = t7 + t22;
    let t24 = t7 - t22;
    let t25 = (fg_rot(t16) - t16) * FFT_R2;
    let t26 = t8 + t25;
    let t27 = t8 - t25;
    let t28 = x1 + x9;
    let t29 = x1 - x9;
    let t30 = x5 + x13;
    let t31 = fg_rot(x5 - x13);
    let t32 = t28 + t30;
    let t33 = t29 + t31;
    let t34 = t28 - t30;
    let t35 = t29 - t31;
    let t36 = x3 + x11;
    let t37 = x3 - x11;
    let t38 = x7 + x15;
    let t39 = fg_rot(x7 - x15);
    let t40 = t36 + t38;
    let t41 = t37 + t39;
    let t42 = t36 - t38;
    let t43 = t37 - t39;
    let t44 = t32 + t40;
    let t45 = t32 - t40;
    let t46 = (t41 + fg_rot(t41)) * FFT_R2;
    let t47 = t33 + t46;
    let t48 = t33 - t46;
    let t49 = fg_rot(t42);
    let t50 = t34 + t49;
    let t51 = t34 - t49;
    let t52 = (fg_rot(t43) - t43) * FFT_R2;
    let t53 = t35 + t52;
    let t54 = t35 - t52;
    let t55 = t17 + t44;
    let t56 = t17 - t44;
    let t57 = fg_mulc(t47, vec2<f32>(0.9238795325112867, -0.3826834323650898));
    let t58 = t20 + t57;
    let t59 = t20 - t57;
    let t60 = (t50 + fg_rot(t50)) * FFT_R2;
    let t61 = t23 + t60;
    let t62 = t23 - t60;
    let t63 = fg_mulc(t53, vec2<f32>(0.38268343236508984, -0.9238795325112867));
    let t64 = t26 + t63;
    let t65 = t26 - t63;
    let t66 = fg_rot(t45);
    let t67 = t18 + t66;
    let t68 = t18 - t66;
    let t69 = fg_mulc(t48, vec2<f32>(-0.3826834323650897, -0.9238795325112867));
    let t70 = t21 + t69;
    let t71 = t21 - t69;
    let t72 = (fg_rot(t51) - t51) * FFT_R2;
    let t73 = t24 + t72;
    let t74 = t24 - t72;
    let t75 = fg_mulc(t54, vec2<f32>(-0.9238795325112867, -0.3826834323650899));
    let t76 = t27 + t75;
    let t77 = t27 - t75;
    if (first) {
        // Ns = 1: butterfly jj's outputs go to base + jj R + r, as pairs (r, r + 1)
        let d0 = (base + (jj << 4u)) >> 1u;
        let d1 = d0 + 8u;
        fg_store(dst, d0, vec4<f32>(t55.xy, t58.xy) * cout);
        fg_store(dst, d1, vec4<f32>(t55.zw, t58.zw) * cout);
        fg_store(dst, d0 + 1u, vec4<f32>(t61.xy, t64.xy) * cout);
        fg_store(dst, d1 + 1u, vec4<f32>(t61.zw, t64.zw) * cout);
        fg_store(dst, d0 + 2u, vec4<f32>(t67.xy, t70.xy) * cout);
        fg_store(dst, d1 + 2u, vec4<f32>(t67.zw, t70.zw) * cout);
        fg_store(dst, d0 + 3u, vec4<f32>(t73.xy, t76.xy) * cout);
        fg_store(dst, d1 + 3u, vec4<f32>(t73.zw, t76.zw) * cout);
        fg_store(dst, d0 + 4u, vec4<f32>(t56.xy, t59.xy) * cout);
        fg_store(dst, d1 + 4u, vec4<f32>(t56.zw, t59.zw) * cout);
        fg_store(dst, d0 + 5u, vec4<f32>(t62.xy, t65.xy) * cout);
        fg_store(dst, d1 + 5u, vec4<f32>(t62.zw, t65.zw) * cout);
        fg_store(dst, d0 + 6u, vec4<f32>(t68.xy, t71.xy) * cout);
        fg_store(dst, d1 + 6u, vec4<f32>(t68.zw, t71.zw) * cout);
        fg_store(dst, d0 + 7u, vec4<f32>(t74.xy, t77.xy) * cout);
        fg_store(dst, d1 + 7u, vec4<f32>(t74.zw, t77.zw) * cout);
        return;
    }
    let d = (base + ((jj >> lns) << (lns + 4u)) + p) >> 1u;
    let nsh = ns >> 1u;
    fg_store(dst, d, t55 * cout);
    fg_store(dst, d + nsh, t58 * cout);
    fg_store(dst, d + 2u * nsh, t61 * cout);
    fg_store(dst, d + 3u * nsh, t64 * cout);
    fg_store(dst, d + 4u * nsh, t67 * cout);
    fg_store(dst, d + 5u * nsh, t70 * cout);
    fg_store(dst, d + 6u * nsh, t73 * cout);
    fg_store(dst, d + 7u * nsh, t76 * cout);
    fg_store(dst, d + 8u * nsh, t56 * cout);
    fg_store(dst, d + 9u * nsh, t59 * cout);
    fg_store(dst, d + 10u * nsh, t62 * cout);
    fg_store(dst, d + 11u * nsh, t65 * cout);
    fg_store(dst, d + 12u * nsh, t68 * cout);
    fg_store(dst, d + 13u * nsh, t71 * cout);
    fg_store(dst, d + 14u * nsh, t74 * cout);
    fg_store(dst, d + 15u * nsh, t77 * cout);
}

// Radix-32 pass: butterfly pair i (see the header).
fn fg_pass_r32(i: u32, src: u32, dst: u32, first: bool) {
    let log2n = fg_p.log2n;
    let lh = log2n - 6u; // log2 butterfly pairs per transform
    let base = (i >> lh) << log2n;
    let jj = (i & ((1u << lh) - 1u)) << 1u;
    let s = (base + jj) >> 1u;
    let qh = 1u << lh; // N / R / 2
    let cin = fg_conj(fg_p.conj_in);
    let cout = fg_conj(fg_p.conj_out);
    var x0 = fg_load(src, s) * cin;
    var x1 = fg_load(src, s + qh) * cin;
    var x2 = fg_load(src, s + 2u * qh) * cin;
    var x3 = fg_load(src, s + 3u * qh) * cin;
    var x4 = fg_load(src, s + 4u * qh) * cin;
    var x5 = fg_load(src, s + 5u * qh) * cin;
    var x6 = fg_load(src, s + 6u * qh) * cin;
    var x7 = fg_load(src, s + 7u * qh) * cin;
    var x8 = fg_load(src, s + 8u * qh) * cin;
    var x9 = fg_load(src, s + 9u * qh) * cin;
    var x10 = fg_load(src, s + 10u * qh) * cin;
    var x11 = fg_load(src, s + 11u * qh) * cin;
    var x12 = fg_load(src, s + 12u * qh) * cin;
    var x13 = fg_load(src, s + 13u * qh) * cin;
    var x14 = fg_load(src, s + 14u * qh) * cin;
    var x15 = fg_load(src, s + 15u * qh) * cin;
    var x16 = fg_load(src, s + 16u * qh) * cin;
    var x17 = fg_load(src, s + 17u * qh) * cin;
    var x18 = fg_load(src, s + 18u * qh) * cin;
    var x19 = fg_load(src, s + 19u * qh) * cin;
    var x20 = fg_load(src, s + 20u * qh) * cin;
    var x21 = fg_load(src, s + 21u * qh) * cin;
    var x22 = fg_load(src, s + 22u * qh) * cin;
    var x23 = fg_load(src, s + 23u * qh) * cin;
    var x24 = fg_load(src, s + 24u * qh) * cin;
    var x25 = fg_load(src, s + 25u * qh) * cin;
    var x26 = fg_load(src, s + 26u * qh) * cin;
    var x27 = fg_load(src, s + 27u * qh) * cin;
    var x28 = fg_load(src, s + 28u * qh) * cin;
    var x29 = fg_load(src, s + 29u * qh) * cin;
    var x30 = fg_load(src, s + 30u * qh) * cin;
    var x31 = fg_load(src, s + 31u * qh) * cin;
    let lns = fg_p.lns;
    let ns = 1u << lns;
    let p = jj & (ns - 1u);
    if (!first) {
        // lanes jj and jj + 1 take W_{R Ns}^{p r} and W_{R Ns}^{(p + 1) r}
        let off = (ns << 5u) - 2u;
        let w1 = vec4<f32>(fft_twiddles[off + p], fft_twiddles[off + p + 1u]);
        let w8 = vec4<f32>(fft_twiddles[off + 8u * p], fft_twiddles[off + 8u * p + 8u]);
        let w2 = fg_mul(w1, w1);
        let w3 = fg_mul(w2, w1);
        let w4 = fg_mul(w2, w2);
        let w5 = fg_mul(w4, w1);
        let w6 = fg_mul(w3, w3);
        let w7 = fg_mul(w4, w3);
        let w9 = fg_mul(w8, w1);
        let w10 = fg_mul(w8, w2);
        let w11 = fg_mul(w8, w3);
        let w12 = fg_mul(w8, w4);
        let w13 = fg_mul(w8, w5);
        let w14 = fg_mul(w8, w6);
        let w15 = fg_mul(w8, w7);
        let w16 = fg_mul(w8, w8);
        let w17 = fg_mul(w16, w1);
        let w18 = fg_mul(w16, w2);
        let w19 = fg_mul(w16, w3);
        let w20 = fg_mul(w16, w4);
        let w21 = fg_mul(w16, w5);
        let w22 = fg_mul(w16, w6);
        let w23 = fg_mul(w16, w7);
        let w24 = fg_mul(w16, w8);
        let w25 = fg_mul(w24, w1);
        let w26 = fg_mul(w24, w2);
        let w27 = fg_mul(w24, w3);
        let w28 = fg_mul(w24, w4);
        let w29 = fg_mul(w24, w5);
        let w30 = fg_mul(w24, w6);
        let w31 = fg_mul(w24, w7);
        x1 = fg_mul(x1, w1);
        x2 = fg_mul(x2, w2);
        x3 = fg_mul(x3, w3);
        x4 = fg_mul(x4, w4);
        x5 = fg_mul(x5, w5);
        x6 = fg_mul(x6, w6);
        x7 = fg_mul(x7, w7);
        x8 = fg_mul(x8, w8);
        x9 = fg_mul(x9, w9);
        x10 = fg_mul(x10, w10);
        x11 = fg_mul(x11, w11);
        x12 = fg_mul(x12, w12);
        x13 = fg_mul(x13, w13);
        x14 = fg_mul(x14, w14);
        x15 = fg_mul(x15, w15);
        x16 = fg_mul(x16, w16);
        x17 = fg_mul(x17, w17);
        x18 = fg_mul(x18, w18);
        x19 = fg_mul(x19, w19);
        x20 = fg_mul(x20, w20);
        x21 = fg_mul(x21, w21);
        x22 = fg_mul(x22, w22);
        x23 = fg_mul(x23, w23);
        x24 = fg_mul(x24, w24);
        x25 = fg_mul(x25, w25);
        x26 = fg_mul(x26, w26);
        x27 = fg_mul(x27, w27);
        x28 = fg_mul(x28, w28);
        x29 = fg_mul(x29, w29);
        x30 = fg_mul(x30, w30);
        x31 = fg_mul(x31, w31);
    }
    let t1 = x0 + x16;
    let t2 = x0 - x16;
    let t3 = x8 + x24;
    let t4 = fg_rot(x8 - x24);
    let t5 = t1 + t3;
    let t6 = t2 + t4;
    let t7 = t1 - t3;
    let t8 = t2 - t4;
    let t9 = x4 + x20;
    let t10 = x4 - x20;
    let t11 = x12 + x28;
    let t12 = fg_rot(x12 - x28);
    let t13 = t9 + t11;
    let t14 = t10 + t12;
    let t15 = t9 - t11;
    let t16 = t10 - t12;
    let t17 = t5 + t13;
    let t18 = t5 - t13;
    let t19 = (t14 + fg_rot(t14)) * FFT_R2;
    let t20 = t6 + t19;
    let t21 = t6 - t19;
    let t22 = fg_rot(t15);
    let t23 = t7 + t22;
    let t24 = t7 - t22;
    let t25 = (fg_rot(t16) - t16) * FFT_R2;
    let t26 = t8 + t25;
    let t27 = t8 - t25;
    let t28 = x2 + x18;
    let t29 = x2 - x18;
    let t30 = x10 + x26;
    let t31 = fg_rot(x10 - x26);
    let t32 = t28 + t30;
    let t33 = t29 + t31;
    let t34 = t28 - t30;
    let t35 = t29 - t31;
    let t36 = x6 + x22;
    let t37 = x6 - x22;
    let t38 = x14 + x30;
    let t39 = fg_rot(x14 - x30);
    let t40 = t36 + t38;
    let t41 = t37 + t39;
    let t42 = t36 - t38;
    let t43 = t37 - t39;
    let t44 = t32 + t40;
    let t45 = t32 - t40;
    let t46 = (t41 + fg_rot(t41)) * FFT_R2;
    let t47 = t33 + t46;
    let t48 = t33 - t46;
    let t49 = fg_rot(t42);
    let t50 = t34 + t49;
    let t51 = t34 - t49;
    let t52 = (fg_rot(t43) - t43) * FFT_R2;
    let t53 = t35 + t52;
    let t54 = t35 - t52;
    let t55 = t17 + t44;
    let t56 = t17 - t44;
    let t57 = fg_mulc(t47, vec2<f32>(0.9238795325112867, -0.3826834323650898));
    let t58 = t20 + t57;
    let t59 = t20 - t57;
    let t60 = (t50 + fg_rot(t50)) * FFT_R2;
    let t61 = t23 + t60;
    let t62 = t23 - t60;
    let t63 = fg_mulc(t53, vec2<f32>(0.38268343236508984, -0.9238795325112867));
    let t64 = t26 + t63;
    let t65 = t26 - t63;
    let t66 = fg_rot(t45);
    let t67 = t18 + t66;
    let t68 = t18 - t66;
    let t69 = fg_mulc(t48, vec2<f32>(-0.3826834323650897, -0.9238795325112867));
    let t70 = t21 + t69;
    let t71 = t21 - t69;
    let t72 = (fg_rot(t51) - t51) * FFT_R2;
    let t73 = t24 + t72;
    let t74 = t24 - t72;
    let t75 = fg_mulc(t54, vec2<f32>(-0.9238795325112867, -0.3826834323650899));
    let t76 = t27 + t75;
    let t77 = t27 - t75;
    let t78 = x1 + x17;
    let t79 = x1 - x17;
    let t80 = x9 + x25;
    let t81 = fg_rot(x9 - x25);
    let t82 = t78 + t80;
    let t83 = t79 + t81;
    let t84 = t78 - t80;
    let t85 = t79 - t81;
    let t86 = x5 + x21;
    let t87 = x5 - x21;
    let t88 = x13 + x29;
    let t89 = fg_rot(x13 - x29);
    let t90 = t86 + t88;
    let t91 = t87 + t89;
    let t92 = t86 - t88;
    let t93 = t87 - t89;
    let t94 = t82 + t90;
    let t95 = t82 - t90;
    let t96 = (t91 + fg_rot(t91)) * FFT_R2;
    let t97 = t83 + t96;
    let t98 = t83 - t96;
    let t99 = fg_rot(t92);
    let t100 = t84 + t99;
    let t101 = t84 - t99;
    let t102 = (fg_rot(t93) - t93) * FFT_R2;
    let t103 = t85 + t102;
    let t104 = t85 - t102;
    let t105 = x3 + x19;
    let t106 = x3 - x19;
    let t107 = x11 + x27;
    let t108 = fg_rot(x11 - x27);
    let t109 = t105 + t107;
    let t110 = t106 + t108;
    let t111 = t105 - t107;
    let t112 = t106 - t108;
    let t113 = x7 + x23;
    let t114 = x7 - x23;
    let t115 = x15 + x31;
    let t116 = fg_rot(x15 - x31);
    let t117 = t113 + t115;
    let t118 = t114 + t116;
    let t119 = t113 - t115;
    let t120 = t114 - t116;
    let t121 = t109 + t117;
    let t122 = t109 - t117;
    let t123 = (t118 + fg_rot(t118)) * FFT_R2;
    let t124 = t110 + t123;
    let t125 = t110 - t123;
    let t126 = fg_rot(t119);
    let t127 = t111 + t126;
    let t128 = t111 - t126;
    let t129 = (fg_rot(t120) - t120) * FFT_R2;
    let t130 = t112 + t129;
    let t131 = t112 - t129;
    let t132 = t94 + t121;
    let t133 = t94 - t121;
    let t134 = fg_mulc(t124, vec2<f32>(0.9238795325112867, -0.3826834323650898));
    let t135 = t97 + t134;
    let t136 = t97 - t134;
    let t137 = (t127 + fg_rot(t127)) * FFT_R2;
    let t138 = t100 + t137;
    let t139 = t100 - t137;
    let t140 = fg_mulc(t130, vec2<f32>(0.38268343236508984, -0.9238795325112867));
    let t141 = t103 + t140;
    let t142 = t103 - t140;
    let t143 = fg_rot(t122);
    let t144 = t95 + t143;
    let t145 = t95 - t143;
    let t146 = fg_mulc(t125, vec2<f32>(-0.3826834323650897, -0.9238795325112867));
    let t147 = t98 + t146;
    let t148 = t98 - t146;
    let t149 = (fg_rot(t128) - t128) * FFT_R2;
    let t150 = t101 + t149;
    let t151 = t101 - t149;
    let t152 = fg_mulc(t131, vec2<f32>(-0.9238795325112867, -0.3826834323650899));
    let t153 = t104 + t152;
    let t154 = t104 - t152;
    let t155 = t55 + t132;
    let t156 = t55 - t132;
    let t157 = fg_mulc(t135, vec2<f32>(0.9807852804032304, -0.19509032201612825));
    let t158 = t58 + t157;
    let t159 = t58 - t157;
    let t160 = fg_mulc(t138, vec2<f32>(0.9238795325112867, -0.3826834323650898));
    let t161 = t61 + t160;
    let t162 = t61 - t160;
    let t163 = fg_mulc(t141, vec2<f32>(0.8314696123025452, -0.5555702330196022));
    let t164 = t64 + t163;
    let t165 = t64 - t163;
    let t166 = (t144 + fg_rot(t144)) * FFT_R2;
    let t167 = t67 + t166;
    let t168 = t67 - t166;
    let t169 = fg_mulc(t147, vec2<f32>(0.5555702330196023, -0.8314696123025452));
    let t170 = t70 + t169;
    let t171 = t70 - t169;
    let t172 = fg_mulc(t150, vec2<f32>(0.38268343236508984, -0.9238795325112867));
    let t173 = t73 + t172;
    let t174 = t73 - t172;
    let t175 = fg_mulc(t153, vec2<f32>(0.19509032201612833, -0.9807852804032304));
    let t176 = t76 + t175;
    let t177 = t76 - t175;
    let t178 = fg_rot(t133);
    let t179 = t56 + t178;
    let t180 = t56 - t178;
    let t181 = fg_mulc(t136, vec2<f32>(-0.1950903220161282, -0.9807852804032304));
    let t182 = t59 + t181;
    let t183 = t59 - t181;
    let t184 = fg_mulc(t139, vec2<f32>(-0.3826834323650897, -0.9238795325112867));
    let t185 = t62 + t184;
    let t186 = t62 - t184;
    let t187 = fg_mulc(t142, vec2<f32>(-0.555570233019602, -0.8314696123025455));
    let t188 = t65 + t187;
    let t189 = t65 - t187;
    let t190 = (fg_rot(t145) - t145) * FFT_R2;
    let t191 = t68 + t190;
    let t192 = t68 - t190;
    let t193 = fg_mulc(t148, vec2<f32>(-0.8314696123025453, -0.5555702330196022));
    let t194 = t71 + t193;
    let t195 = t71 - t193;
    let t196 = fg_mulc(t151, vec2<f32>(-0.9238795325112867, -0.3826834323650899));
    let t197 = t74 + t196;
    let t198 = t74 - t196;
    let t199 = fg_mulc(t154, vec2<f32>(-0.9807852804032304, -0.1950903220161286));
    let t200 = t77 + t199;
    let t201 = t77 - t199;
    if (first) {
        // Ns = 1: butterfly jj's outputs go to base + jj R + r, as pairs (r, r + 1)
        let d0 = (base + (jj << 5u)) >> 1u;
        let d1 = d0 + 16u;
        fg_store(dst, d0, vec4<f32>(t155.xy, t158.xy) * cout);
        fg_store(dst, d1, vec4<f32>(t155.zw, t158.zw) * cout);
        fg_store(dst, d0 + 1u, vec4<f32>(t161.xy, t164.xy) * cout);
        fg_store(dst, d1 + 1u, vec4<f32>(t161.zw, t164.zw) * cout);
        fg_store(dst, d0 + 2u, vec4<f32>(t167.xy, t170.xy) * cout);
        fg_store(dst, d1 + 2u, vec4<f32>(t167.zw, t170.zw) * cout);
        fg_store(dst, d0 + 3u, vec4<f32>(t173.xy, t176.xy) * cout);
        fg_store(dst, d1 + 3u, vec4<f32>(t173.zw, t176.zw) * cout);
        fg_store(dst, d0 + 4u, vec4<f32>(t179.xy, t182.xy) * cout);
        fg_store(dst, d1 + 4u, vec4<f32>(t179.zw, t182.zw) * cout);
        fg_store(dst, d0 + 5u, vec4<f32>(t185.xy, t188.xy) * cout);
        fg_store(dst, d1 + 5u, vec4<f32>(t185.zw, t188.zw) * cout);
        fg_store(dst, d0 + 6u, vec4<f32>(t191.xy, t194.xy) * cout);
        fg_store(dst, d1 + 6u, vec4<f32>(t191.zw, t194.zw) * cout);
        fg_store(dst, d0 + 7u, vec4<f32>(t197.xy, t200.xy) * cout);
        fg_store(dst, d1 + 7u, vec4<f32>(t197.zw, t200.zw) * cout);
        fg_store(dst, d0 + 8u, vec4<f32>(t156.xy, t159.xy) * cout);
        fg_store(dst, d1 + 8u, vec4<f32>(t156.zw, t159.zw) * cout);
        fg_store(dst, d0 + 9u, vec4<f32>(t162.xy, t165.xy) * cout);
        fg_store(dst, d1 + 9u, vec4<f32>(t162.zw, t165.zw) * cout);
        fg_store(dst, d0 + 10u, vec4<f32>(t168.xy, t171.xy) * cout);
        fg_store(dst, d1 + 10u, vec4<f32>(t168.zw, t171.zw) * cout);
        fg_store(dst, d0 + 11u, vec4<f32>(t174.xy, t177.xy) * cout);
        fg_store(dst, d1 + 11u, vec4<f32>(t174.zw, t177.zw) * cout);
        fg_store(dst, d0 + 12u, vec4<f32>(t180.xy, t183.xy) * cout);
        fg_store(dst, d1 + 12u, vec4<f32>(t180.zw, t183.zw) * cout);
        fg_store(dst, d0 + 13u, vec4<f32>(t186.xy, t189.xy) * cout);
        fg_store(dst, d1 + 13u, vec4<f32>(t186.zw, t189.zw) * cout);
        fg_store(dst, d0 + 14u, vec4<f32>(t192.xy, t195.xy) * cout);
        fg_store(dst, d1 + 14u, vec4<f32>(t192.zw, t195.zw) * cout);
        fg_store(dst, d0 + 15u, vec4<f32>(t198.xy, t201.xy) * cout);
        fg_store(dst, d1 + 15u, vec4<f32>(t198.zw, t201.zw) * cout);
        return;
    }
    let d = (base + ((jj >> lns) << (lns + 5u)) + p) >> 1u;
    let nsh = ns >> 1u;
    fg_store(dst, d, t155 * cout);
    fg_store(dst, d + nsh, t158 * cout);
    fg_store(dst, d + 2u * nsh, t161 * cout);
    fg_store(dst, d + 3u * nsh, t164 * cout);
    fg_store(dst, d + 4u * nsh, t167 * cout);
    fg_store(dst, d + 5u * nsh, t170 * cout);
    fg_store(dst, d + 6u * nsh, t173 * cout);
    fg_store(dst, d + 7u * nsh, t176 * cout);
    fg_store(dst, d + 8u * nsh, t179 * cout);
    fg_store(dst, d + 9u * nsh, t182 * cout);
    fg_store(dst, d + 10u * nsh, t185 * cout);
    fg_store(dst, d + 11u * nsh, t188 * cout);
    fg_store(dst, d + 12u * nsh, t191 * cout);
    fg_store(dst, d + 13u * nsh, t194 * cout);
    fg_store(dst, d + 14u * nsh, t197 * cout);
    fg_store(dst, d + 15u * nsh, t200 * cout);
    fg_store(dst, d + 16u * nsh, t156 * cout);
    fg_store(dst, d + 17u * nsh, t159 * cout);
    fg_store(dst, d + 18u * nsh, t162 * cout);
    fg_store(dst, d + 19u * nsh, t165 * cout);
    fg_store(dst, d + 20u * nsh, t168 * cout);
    fg_store(dst, d + 21u * nsh, t171 * cout);
    fg_store(dst, d + 22u * nsh, t174 * cout);
    fg_store(dst, d + 23u * nsh, t177 * cout);
    fg_store(dst, d + 24u * nsh, t180 * cout);
    fg_store(dst, d + 25u * nsh, t183 * cout);
    fg_store(dst, d + 26u * nsh, t186 * cout);
    fg_store(dst, d + 27u * nsh, t189 * cout);
    fg_store(dst, d + 28u * nsh, t192 * cout);
    fg_store(dst, d + 29u * nsh, t195 * cout);
    fg_store(dst, d + 30u * nsh, t198 * cout);
    fg_store(dst, d + 31u * nsh, t201 * cout);
}

// Radix-64 pass: butterfly pair i (see the header).
fn fg_pass_r64(i: u32, src: u32, dst: u32, first: bool) {
    let log2n = fg_p.log2n;
    let lh = log2n - 7u; // log2 butterfly pairs per transform
    let base = (i >> lh) << log2n;
    let jj = (i & ((1u << lh) - 1u)) << 1u;
    let s = (base + jj) >> 1u;
    let qh = 1u << lh; // N / R / 2
    let cin = fg_conj(fg_p.conj_in);
    let cout = fg_conj(fg_p.conj_out);
    var x0 = fg_load(src, s) * cin;
    var x1 = fg_load(src, s + qh) * cin;
    var x2 = fg_load(src, s + 2u * qh) * cin;
    var x3 = fg_load(src, s + 3u * qh) * cin;
    var x4 = fg_load(src, s + 4u * qh) * cin;
    var x5 = fg_load(src, s + 5u * qh) * cin;
    var x6 = fg_load(src, s + 6u * qh) * cin;
    var x7 = fg_load(src, s + 7u * qh) * cin;
    var x8 = fg_load(src, s + 8u * qh) * cin;
    var x9 = fg_load(src, s + 9u * qh) * cin;
    var x10 = fg_load(src, s + 10u * qh) * cin;
    var x11 = fg_load(src, s + 11u * qh) * cin;
    var x12 = fg_load(src, s + 12u * qh) * cin;
    var x13 = fg_load(src, s + 13u * qh) * cin;
    var x14 = fg_load(src, s + 14u * qh) * cin;
    var x15 = fg_load(src, s + 15u * qh) * cin;
    var x16 = fg_load(src, s + 16u * qh) * cin;
    var x17 = fg_load(src, s + 17u * qh) * cin;
    var x18 = fg_load(src, s + 18u * qh) * cin;
    var x19 = fg_load(src, s + 19u * qh) * cin;
    var x20 = fg_load(src, s + 20u * qh) * cin;
    var x21 = fg_load(src, s + 21u * qh) * cin;
    var x22 = fg_load(src, s + 22u * qh) * cin;
    var x23 = fg_load(src, s + 23u * qh) * cin;
    var x24 = fg_load(src, s + 24u * qh) * cin;
    var x25 = fg_load(src, s + 25u * qh) * cin;
    var x26 = fg_load(src, s + 26u * qh) * cin;
    var x27 = fg_load(src, s + 27u * qh) * cin;
    var x28 = fg_load(src, s + 28u * qh) * cin;
    var x29 = fg_load(src, s + 29u * qh) * cin;
    var x30 = fg_load(src, s + 30u * qh) * cin;
    var x31 = fg_load(src, s + 31u * qh) * cin;
    var x32 = fg_load(src, s + 32u * qh) * cin;
    var x33 = fg_load(src, s + 33u * qh) * cin;
    var x34 = fg_load(src, s + 34u * qh) * cin;
    var x35 = fg_load(src, s + 35u * qh) * cin;
    var x36 = fg_load(src, s + 36u * qh) * cin;
    var x37 = fg_load(src, s + 37u * qh) * cin;
    var x38 = fg_load(src, s + 38u * qh) * cin;
    var x39 = fg_load(src, s + 39u * qh) * cin;
    var x40 = fg_load(src, s + 40u * qh) * cin;
    var x41 = fg_load(src, s + 41u * qh) * cin;
    var x42 = fg_load(src, s + 42u * qh) * cin;
    var x43 = fg_load(src, s + 43u * qh) * cin;
    var x44 = fg_load(src, s + 44u * qh) * cin;
    var x45 = fg_load(src, s + 45u * qh) * cin;
    var x46 = fg_load(src, s + 46u * qh) * cin;
    var x47 = fg_load(src, s + 47u * qh) * cin;
    var x48 = fg_load(src, s + 48u * qh) * cin;
    var x49 = fg_load(src, s + 49u * qh) * cin;
    var x50 = fg_load(src, s + 50u * qh) * cin;
    var x51 = fg_load(src, s + 51u * qh) * cin;
    var x52 = fg_load(src, s + 52u * qh) * cin;
    var x53 = fg_load(src, s + 53u * qh) * cin;
    var x54 = fg_load(src, s + 54u * qh) * cin;
    var x55 = fg_load(src, s + 55u * qh) * cin;
    var x56 = fg_load(src, s + 56u * qh) * cin;
    var x57 = fg_load(src, s + 57u * qh) * cin;
    var x58 = fg_load(src, s + 58u * qh) * cin;
    var x59 = fg_load(src, s + 59u * qh) * cin;
    var x60 = fg_load(src, s + 60u * qh) * cin;
    var x61 = fg_load(src, s + 61u * qh) * cin;
    var x62 = fg_load(src, s + 62u * qh) * cin;
    var x63 = fg_load(src, s + 63u * qh) * cin;
    let lns = fg_p.lns;
    let ns = 1u << lns;
    let p = jj & (ns - 1u);
    if (!first) {
        // lanes jj and jj + 1 take W_{R Ns}^{p r} and W_{R Ns}^{(p + 1) r}
        let off = (ns << 6u) - 2u;
        let w1 = vec4<f32>(fft_twiddles[off + p], fft_twiddles[off + p + 1u]);
        let w8 = vec4<f32>(fft_twiddles[off + 8u * p], fft_twiddles[off + 8u * p + 8u]);
        let w2 = fg_mul(w1, w1);
        let w3 = fg_mul(w2, w1);
        let w4 = fg_mul(w2, w2);
        let w5 = fg_mul(w4, w1);
        let w6 = fg_mul(w3, w3);
        let w7 = fg_mul(w4, w3);
        let w9 = fg_mul(w8, w1);
        let w10 = fg_mul(w8, w2);
        let w11 = fg_mul(w8, w3);
        let w12 = fg_mul(w8, w4);
        let w13 = fg_mul(w8, w5);
        let w14 = fg_mul(w8, w6);
        let w15 = fg_mul(w8, w7);
        let w16 = fg_mul(w8, w8);
        let w17 = fg_mul(w16, w1);
        let w18 = fg_mul(w16, w2);
        let w19 = fg_mul(w16, w3);
        let w20 = fg_mul(w16, w4);
        let w21 = fg_mul(w16, w5);
        let w22 = fg_mul(w16, w6);
        let w23 = fg_mul(w16, w7);
        let w24 = fg_mul(w16, w8);
        let w25 = fg_mul(w24, w1);
        let w26 = fg_mul(w24, w2);
        let w27 = fg_mul(w24, w3);
        let w28 = fg_mul(w24, w4);
        let w29 = fg_mul(w24, w5);
        let w30 = fg_mul(w24, w6);
        let w31 = fg_mul(w24, w7);
        let w32 = fg_mul(w16, w16);
        let w33 = fg_mul(w32, w1);
        let w34 = fg_mul(w32, w2);
        let w35 = fg_mul(w32, w3);
        let w36 = fg_mul(w32, w4);
        let w37 = fg_mul(w32, w5);
        let w38 = fg_mul(w32, w6);
        let w39 = fg_mul(w32, w7);
        let w40 = fg_mul(w32, w8);
        let w41 = fg_mul(w40, w1);
        let w42 = fg_mul(w40, w2);
        let w43 = fg_mul(w40, w3);
        let w44 = fg_mul(w40, w4);
        let w45 = fg_mul(w40, w5);
        let w46 = fg_mul(w40, w6);
        let w47 = fg_mul(w40, w7);
        let w48 = fg_mul(w24, w24);
        let w49 = fg_mul(w48, w1);
        let w50 = fg_mul(w48, w2);
        let w51 = fg_mul(w48, w3);
        let w52 = fg_mul(w48, w4);
        let w53 = fg_mul(w48, w5);
        let w54 = fg_mul(w48, w6);
        let w55 = fg_mul(w48, w7);
        let w56 = fg_mul(w48, w8);
        let w57 = fg_mul(w56, w1);
        let w58 = fg_mul(w56, w2);
        let w59 = fg_mul(w56, w3);
        let w60 = fg_mul(w56, w4);
        let w61 = fg_mul(w56, w5);
        let w62 = fg_mul(w56, w6);
        let w63 = fg_mul(w56, w7);
        x1 = fg_mul(x1, w1);
        x2 = fg_mul(x2, w2);
        x3 = fg_mul(x3, w3);
        x4 = fg_mul(x4, w4);
        x5 = fg_mul(x5, w5);
        x6 = fg_mul(x6, w6);
        x7 = fg_mul(x7, w7);
        x8 = fg_mul(x8, w8);
        x9 = fg_mul(x9, w9);
        x10 = fg_mul(x10, w10);
        x11 = fg_mul(x11, w11);
        x12 = fg_mul(x12, w12);
        x13 = fg_mul(x13, w13);
        x14 = fg_mul(x14, w14);
        x15 = fg_mul(x15, w15);
        x16 = fg_mul(x16, w16);
        x17 = fg_mul(x17, w17);
        x18 = fg_mul(x18, w18);
        x19 = fg_mul(x19, w19);
        x20 = fg_mul(x20, w20);
        x21 = fg_mul(x21, w21);
        x22 = fg_mul(x22, w22);
        x23 = fg_mul(x23, w23);
        x24 = fg_mul(x24, w24);
        x25 = fg_mul(x25, w25);
        x26 = fg_mul(x26, w26);
        x27 = fg_mul(x27, w27);
        x28 = fg_mul(x28, w28);
        x29 = fg_mul(x29, w29);
        x30 = fg_mul(x30, w30);
        x31 = fg_mul(x31, w31);
        x32 = fg_mul(x32, w32);
        x33 = fg_mul(x33, w33);
        x34 = fg_mul(x34, w34);
        x35 = fg_mul(x35, w35);
        x36 = fg_mul(x36, w36);
        x37 = fg_mul(x37, w37);
        x38 = fg_mul(x38, w38);
        x39 = fg_mul(x39, w39);
        x40 = fg_mul(x40, w40);
        x41 = fg_mul(x41, w41);
        x42 = fg_mul(x42, w42);
        x43 = fg_mul(x43, w43);
        x44 = fg_mul(x44, w44);
        x45 = fg_mul(x45, w45);
        x46 = fg_mul(x46, w46);
        x47 = fg_mul(x47, w47);
        x48 = fg_mul(x48, w48);
        x49 = fg_mul(x49, w49);
        x50 = fg_mul(x50, w50);
        x51 = fg_mul(x51, w51);
        x52 = fg_mul(x52, w52);
        x53 = fg_mul(x53, w53);
        x54 = fg_mul(x54, w54);
        x55 = fg_mul(x55, w55);
        x56 = fg_mul(x56, w56);
        x57 = fg_mul(x57, w57);
        x58 = fg_mul(x58, w58);
        x59 = fg_mul(x59, w59);
        x60 = fg_mul(x60, w60);
        x61 = fg_mul(x61, w61);
        x62 = fg_mul(x62, w62);
        x63 = fg_mul(x63, w63);
    }
    let t1 = x0 + x32;
    let t2 = x0 - x32;
    let t3 = x16 + x48;
    let t4 = fg_rot(x16 - x48);
    let t5 = t1 + t3;
    let t6 = t2 + t4;
    let t7 = t1 - t3;
    let t8 = t2 - t4;
    let t9 = x8 + x40;
    let t10 = x8 - x40;
    let t11 = x24 + x56;
    let t12 = fg_rot(x24 - x56);
    let t13 = t9 + t11;
    let t14 = t10 + t12;
    let t15 = t9 - t11;
    let t16 = t10 - t12;
    let t17 = t5 + t13;
    let t18 = t5 - t13;
    let t19 = (t14 + fg_rot(t14)) * FFT_R2;
    let t20 = t6 + t19;
    let t21 = t6 - t19;
    let t22 = fg_rot(t15);
    let t23 = t7 + t22;
    let t24 = t7 - t22;
    let t25 = (fg_rot(t16) - t16) * FFT_R2;
    let t26 = t8 + t25;
    let t27 = t8 - t25;
    let t28 = x4 + x36;
    let t29 = x4 - x36;
    let t30 = x20 + x52;
    let t31 = fg_rot(x20 - x52);
    let t32 = t28 + t30;
    let t33 = t29 + t31;
    let t34 = t28 - t30;
    let t35 = t29 - t31;
    let t36 = x12 + x44;
    let t37 = x12 - x44;
    let t38 = x28 + x60;
    let t39 = fg_rot(x28 - x60);
    let t40 = t36 + t38;
    let t41 = t37 + t39;
    let t42 = t36 - t38;
    let t43 = t37 - t39;
    let t44 = t32 + t40;
    let t45 = t32 - t40;
    let t46 = (t41 + fg_rot(t41)) * FFT_R2;
    let t47 = t33 + t46;
    let t48 = t33 - t46;
    let t49 = fg_rot(t42);
    let t50 = t34 + t49;
    let t51 = t34 - t49;
    let t52 = (fg_rot(t43) - t43) * FFT_R2;
    let t53 = t35 + t52;
    let t54 = t35 - t52;
    let t55 = t17 + t44;
    let t56 = t17 - t44;
    let t57 = fg_mulc(t47, vec2<f32>(0.9238795325112867, -0.3826834323650898));
    let t58 = t20 + t57;
    let t59 = t20 - t57;
    let t60 = (t50 + fg_rot(t50)) * FFT_R2;
    let t61 = t23 + t60;
    let t62 = t23 - t60;
    let t63 = fg_mulc(t53, vec2<f32>(0.38268343236508984, -0.9238795325112867));
    let t64 = t26 + t63;
    let t65 = t26 - t63;
    let t66 = fg_rot(t45);
    let t67 = t18 + t66;
    let t68 = t18 - t66;
    let t69 = fg_mulc(t48, vec2<f32>(-0.3826834323650897, -0.9238795325112867));
    let t70 = t21 + t69;
    let t71 = t21 - t69;
    let t72 = (fg_rot(t51) - t51) * FFT_R2;
    let t73 = t24 + t72;
    let t74 = t24 - t72;
    let t75 = fg_mulc(t54, vec2<f32>(-0.9238795325112867, -0.3826834323650899));
    let t76 = t27 + t75;
    let t77 = t27 - t75;
    let t78 = x2 + x34;
    let t79 = x2 - x34;
    let t80 = x18 + x50;
    let t81 = fg_rot(x18 - x50);
    let t82 = t78 + t80;
    let t83 = t79 + t81;
    let t84 = t78 - t80;
    let t85 = t79 - t81;
    let t86 = x10 + x42;
    let t87 = x10 - x42;
    let t88 = x26 + x58;
    let t89 = fg_rot(x26 - x58);
    let t90 = t86 + t88;
    let t91 = t87 + t89;
    let t92 = t86 - t88;
    let t93 = t87 - t89;
    let t94 = t82 + t90;
    let t95 = t82 - t90;
    let t96 = (t91 + fg_rot(t91)) * FFT_R2;
    let t97 = t83 + t96;
    let t98 = t83 - t96;
    let t99 = fg_rot(t92);
    let t100 = t84 + t99;
    let t101 = t84 - t99;
    let t102 = (fg_rot(t93) - t93) * FFT_R2;
    let t103 = t85 + t102;
    let t104 = t85 - t102;
    let t105 = x6 + x38;
    let t106 = x6 - x38;
    let t107 = x22 + x54;
    let t108 = fg_rot(x22 - x54);
    let t109 = t105 + t107;
    let t110 = t106 + t108;
    let t111 = t105 - t107;
    let t112 = t106 - t108;
    let t113 = x14 + x46;
    let t114 = x14 - x46;
    let t115 = x30 + x62;
    let t116 = fg_rot(x30 - x62);
    let t117 = t113 + t115;
    let t118 = t114 + t116;
    let t119 = t113 - t115;
    let t120 = t114 - t116;
    let t121 = t109 + t117;
    let t122 = t109 - t117;
    let t123 = (t118 + fg_rot(t118)) * FFT_R2;
    let t124 = t110 + t123;
    let t125 = t110 - t123;
    let t126 = fg_rot(t119);
    let t127 = t111 + t126;
    let t128 = t111 - t126;
    let t129 = (fg_rot(t120) - t120) * FFT_R2;
    let t130 = t112 + t129;
    let t131 = t112 - t129;
    let t132 = t94 + t121;
    let t133 = t94 - t121;
    let t134 = fg_mulc(t124, vec2<f32>(0.9238795325112867, -0.3826834323650898));
    let t135 = t97 + t134;
    let t136 = t97 - t134;
    let t137 = (t127 + fg_rot(t127)) * FFT_R2;
    let t138 = t100 + t137;
    let t139 = t100 - t137;
    let t140 = fg_mulc(t130, vec2<f32>(0.38268343236508984, -0.9238795325112867));
    let t141 = t103 + t140;
    let t142 = t103 - t140;
    let t143 = fg_rot(t122);
    let t144 = t95 + t143;
    let t145 = t95 - t143;
    let t146 = fg_mulc(t125, vec2<f32>(-0.3826834323650897, -0.9238795325112867));
    let t147 = t98 + t146;
    let t148 = t98 - t146;
    let t149 = (fg_rot(t128) - t128) * FFT_R2;
    let t150 = t101 + t149;
    let t151 = t101 - t149;
    let t152 = fg_mulc(t131, vec2<f32>(-0.9238795325112867, -0.3826834323650899));
    let t153 = t104 + t152;
    let t154 = t104 - t152;
    let t155 = t55 + t132;
    let t156 = t55 - t132;
    let t157 = fg_mulc(t135, vec2<f32>(0.9807852804032304, -0.19509032201612825));
    let t158 = t58 + t157;
    let t159 = t58 - t157;
    let t160 = fg_mulc(t138, vec2<f32>(0.9238795325112867, -0.3826834323650898));
    let t161 = t61 + t160;
    let t162 = t61 - t160;
    let t163 = fg_mulc(t141, vec2<f32>(0.8314696123025452, -0.5555702330196022));
    let t164 = t64 + t163;
    let t165 = t64 - t163;
    let t166 = (t144 + fg_rot(t144)) * FFT_R2;
    let t167 = t67 + t166;
    let t168 = t67 - t166;
    let t169 = fg_mulc(t147, vec2<f32>(0.5555702330196023, -0.8314696123025452));
    let t170 = t70 + t169;
    let t171 = t70 - t169;
    let t172 = fg_mulc(t150, vec2<f32>(0.38268343236508984, -0.9238795325112867));
    let t173 = t73 + t172;
    let t174 = t73 - t172;
    let t175 = fg_mulc(t153, vec2<f32>(0.19509032201612833, -0.9807852804032304));
    let t176 = t76 + t175;
    let t177 = t76 - t175;
    let t178 = fg_rot(t133);
    let t179 = t56 + t178;
    let t180 = t56 - t178;
    let t181 = fg_mulc(t136, vec2<f32>(-0.1950903220161282, -0.9807852804032304));
    let t182 = t59 + t181;
    let t183 = t59 - t181;
    let t184 = fg_mulc(t139, vec2<f32>(-0.3826834323650897, -0.9238795325112867));
    let t185 = t62 + t184;
    let t186 = t62 - t184;
    let t187 = fg_mulc(t142, vec2<f32>(-0.555570233019602, -0.8314696123025455));
    let t188 = t65 + t187;
    let t189 = t65 - t187;
    let t190 = (fg_rot(t145) - t145) * FFT_R2;
    let t191 = t68 + t190;
    let t192 = t68 - t190;
    let t193 = fg_mulc(t148, vec2<f32>(-0.8314696123025453, -0.5555702330196022));
    let t194 = t71 + t193;
    let t195 = t71 - t193;
    let t196 = fg_mulc(t151, vec2<f32>(-0.9238795325112867, -0.3826834323650899));
    let t197 = t74 + t196;
    let t198 = t74 - t196;
    let t199 = fg_mulc(t154, vec2<f32>(-0.9807852804032304, -0.1950903220161286));
    let t200 = t77 + t199;
    let t201 = t77 - t199;
    let t202 = x1 + x33;
    let t203 = x1 - x33;
    let t204 = x17 + x49;
    let t205 = fg_rot(x17 - x49);
    let t206 = t202 + t204;
    let t207 = t203 + t205;
    let t208 = t202 - t204;
    let t209 = t203 - t205;
    let t210 = x9 + x41;
    let t211 = x9 - x41;
    let t212 = x25 + x57;
    let t213 = fg_rot(x25 - x57);
    let t214 = t210 + t212;
    let t215 = t211 + t213;
    let t216 = t210 - t212;
    let t217 = t211 - t213;
    let t218 = t206 + t214;
    let t219 = t206 - t214;
    let t220 = (t215 + fg_rot(t215)) * FFT_R2;
    let t221 = t207 + t220;
    let t222 = t207 - t220;
    let t223 = fg_rot(t216);
    let t224 = t208 + t223;
    let t225 = t208 - t223;
    let t226 = (fg_rot(t217) - t217) * FFT_R2;
    let t227 = t209 + t226;
    let t228 = t209 - t226;
    let t229 = x5 + x37;
    let t230 = x5 - x37;
    let t231 = x21 + x53;
    let t232 = fg_rot(x21 - x53);
    let t233 = t229 + t231;
    let t234 = t230 + t232;
    let t235 = t229 - t231;
    let t236 = t230 - t232;
    let t237 = x13 + x45;
    let t238 = x13 - x45;
    let t239 = x29 + x61;
    let t240 = fg_rot(x29 - x61);
    let t241 = t237 + t239;
    let t242 = t238 + t240;
    let t243 = t237 - t239;
    let t244 = t238 - t240;
    let t245 = t233 + t241;
    let t246 = t233 - t241;
    let t247 = (t242 + fg_rot(t242)) * FFT_R2;
    let t248 = t234 + t247;
    let t249 = t234 - t247;
    let t250 = fg_rot(t243);
    let t251 = t235 + t250;
    let t252 = t235 - t250;
    let t253 = (fg_rot(t244) - t244) * FFT_R2;
    let t254 = t236 + t253;
    let t255 = t236 - t253;
    let t256 = t218 + t245;
    let t257 = t218 - t245;
    let t258 = fg_mulc(t248, vec2<f32>(0.9238795325112867, -0.3826834323650898));
    let t259 = t221 + t258;
    let t260 = t221 - t258;
    let t261 = (t251 + fg_rot(t251)) * FFT_R2;
    let t262 = t224 + t261;
    let t263 = t224 - t261;
    let t264 = fg_mulc(t254, vec2<f32>(0.38268343236508984, -0.9238795325112867));
    let t265 = t227 + t264;
    let t266 = t227 - t264;
    let t267 = fg_rot(t246);
    let t268 = t219 + t267;
    let t269 = t219 - t267;
    let t270 = fg_mulc(t249, vec2<f32>(-0.3826834323650897, -0.9238795325112867));
    let t271 = t222 + t270;
    let t272 = t222 - t270;
    let t273 = (fg_rot(t252) - t252) * FFT_R2;
    let t274 = t225 + t273;
    let t275 = t225 - t273;
    let t276 = fg_mulc(t255, vec2<f32>(-0.9238795325112867, -0.3826834323650899));
    let t277 = t228 + t276;
    let t278 = t228 - t276;
    let t279 = x3 + x35;
    let t280 = x3 - x35;
    let t281 = x19 + x51;
    let t282 = fg_rot(x19 - x51);
    let t283 = t279 + t281;
    let t284 = t280 + t282;
    let t285 = t279 - t281;
    let t286 = t280 - t282;
    let t287 = x11 + x43;
    let t288 = x11 - x43;
    let t289 = x27 + x59;
    let t290 = fg_rot(x27 - x59);
    let t291 = t287 + t289;
    let t292 = t288 + t290;
    let t293 = t287 - t289;
    let t294 = t288 - t290;
    let t295 = t283 + t291;
    let t296 = t283 - t291;
    let t297 = (t292 + fg_rot(t292)) * FFT_R2;
    let t298 = t284 + t297;
    let t299 = t284 - t297;
    let t300 = fg_rot(t293);
    let t301 = t285 + t300;
    let t302 = t285 - t300;
    let t303 = (fg_rot(t294) - t294) * FFT_R2;
    let t304 = t286 + t303;
    let t305 = t286 - t303;
    let t306 = x7 + x39;
    let t307 = x7 - x39;
    let t308 = x23 + x55;
    let t309 = fg_rot(x23 - x55);
    let t310 = t306 + t308;
    let t311 = t307 + t309;
    let t312 = t306 - t308;
    let t313 = t307 - t309;
    let t314 = x15 + x47;
    let t315 = x15 - x47;
    let t316 = x31 + x63;
    let t317 = fg_rot(x31 - x63);
    let t318 = t314 + t316;
    let t319 = t315 + t317;
    let t320 = t314 - t316;
    let t321 = t315 - t317;
    let t322 = t310 + t318;
    let t323 = t310 - t318;
    let t324 = (t319 + fg_rot(t319)) * FFT_R2;
    let t325 = t311 + t324;
    let t326 = t311 - t324;
    let t327 = fg_rot(t320);
    let t328 = t312 + t327;
    let t329 = t312 - t327;
    let t330 = (fg_rot(t321) - t321) * FFT_R2;
    let t331 = t313 + t330;
    let t332 = t313 - t330;
    let t333 = t295 + t322;
    let t334 = t295 - t322;
    let t335 = fg_mulc(t325, vec2<f32>(0.9238795325112867, -0.3826834323650898));
    let t336 = t298 + t335;
    let t337 = t298 - t335;
    let t338 = (t328 + fg_rot(t328)) * FFT_R2;
    let t339 = t301 + t338;
    let t340 = t301 - t338;
    let t341 = fg_mulc(t331, vec2<f32>(0.38268343236508984, -0.9238795325112867));
    let t342 = t304 + t341;
    let t343 = t304 - t341;
    let t344 = fg_rot(t323);
    let t345 = t296 + t344;
    let t346 = t296 - t344;
    let t347 = fg_mulc(t326, vec2<f32>(-0.3826834323650897, -0.9238795325112867));
    let t348 = t299 + t347;
    let t349 = t299 - t347;
    let t350 = (fg_rot(t329) - t329) * FFT_R2;
    let t351 = t302 + t350;
    let t352 = t302 - t350;
    let t353 = fg_mulc(t332, vec2<f32>(-0.9238795325112867, -0.3826834323650899));
    let t354 = t305 + t353;
    let t355 = t305 - t353;
    let t356 = t256 + t333;
    let t357 = t256 - t333;
    let t358 = fg_mulc(t336, vec2<f32>(0.9807852804032304, -0.19509032201612825));
    let t359 = t259 + t358;
    let t360 = t259 - t358;
    let t361 = fg_mulc(t339, vec2<f32>(0.9238795325112867, -0.3826834323650898));
    let t362 = t262 + t361;
    let t363 = t262 - t361;
    let t364 = fg_mulc(t342, vec2<f32>(0.8314696123025452, -0.5555702330196022));
    let t365 = t265 + t364;
    let t366 = t265 - t364;
    let t367 = (t345 + fg_rot(t345)) * FFT_R2;
    let t368 = t268 + t367;
    let t369 = t268 - t367;
    let t370 = fg_mulc(t348, vec2<f32>(0.5555702330196023, -0.8314696123025452));
    let t371 = t271 + t370;
    let t372 = t271 - t370;
    let t373 = fg_mulc(t351, vec2<f32>(0.38268343236508984, -0.9238795325112867));
    let t374 = t274 + t373;
    let t375 = t274 - t373;
    let t376 = fg_mulc(t354, vec2<f32>(0.19509032201612833, -0.9807852804032304));
    let t377 = t277 + t376;
    let t378 = t277 - t376;
    let t379 = fg_rot(t334);
    let t380 = t257 + t379;
    let t381 = t257 - t379;
    let t382 = fg_mulc(t337, vec2<f32>(-0.1950903220161282, -0.9807852804032304));
    let t383 = t260 + t382;
    let t384 = t260 - t382;
    let t385 = fg_mulc(t340, vec2<f32>(-0.3826834323650897, -0.9238795325112867));
    let t386 = t263 + t385;
    let t387 = t263 - t385;
    let t388 = fg_mulc(t343, vec2<f32>(-0.555570233019602, -0.8314696123025455));
    let t389 = t266 + t388;
    let t390 = t266 - t388;
    let t391 = (fg_rot(t346) - t346) * FFT_R2;
    let t392 = t269 + t391;
    let t393 = t269 - t391;
    let t394 = fg_mulc(t349, vec2<f32>(-0.8314696123025453, -0.5555702330196022));
    let t395 = t272 + t394;
    let t396 = t272 - t394;
    let t397 = fg_mulc(t352, vec2<f32>(-0.9238795325112867, -0.3826834323650899));
    let t398 = t275 + t397;
    let t399 = t275 - t397;
    let t400 = fg_mulc(t355, vec2<f32>(-0.9807852804032304, -0.1950903220161286));
    let t401 = t278 + t400;
    let t402 = t278 - t400;
    let t403 = t155 + t356;
    let t404 = t155 - t356;
    let t405 = fg_mulc(t359, vec2<f32>(0.9951847266721969, -0.0980171403295606));
    let t406 = t158 + t405;
    let t407 = t158 - t405;
    let t408 = fg_mulc(t362, vec2<f32>(0.9807852804032304, -0.19509032201612825));
    let t409 = t161 + t408;
    let t410 = t161 - t408;
    let t411 = fg_mulc(t365, vec2<f32>(0.9569403357322088, -0.29028467725446233));
    let t412 = t164 + t411;
    let t413 = t164 - t411;
    let t414 = fg_mulc(t368, vec2<f32>(0.9238795325112867, -0.3826834323650898));
    let t415 = t167 + t414;
    let t416 = t167 - t414;
    let t417 = fg_mulc(t371, vec2<f32>(0.881921264348355, -0.47139673682599764));
    let t418 = t170 + t417;
    let t419 = t170 - t417;
    let t420 = fg_mulc(t374, vec2<f32>(0.8314696123025452, -0.5555702330196022));
    let t421 = t173 + t420;
    let t422 = t173 - t420;
    let t423 = fg_mulc(t377, vec2<f32>(0.773010453362737, -0.6343932841636455));
    let t424 = t176 + t423;
    let t425 = t176 - t423;
    let t426 = (t380 + fg_rot(t380)) * FFT_R2;
    let t427 = t179 + t426;
    let t428 = t179 - t426;
    let t429 = fg_mulc(t383, vec2<f32>(0.6343932841636455, -0.773010453362737));
    let t430 = t182 + t429;
    let t431 = t182 - t429;
    let t432 = fg_mulc(t386, vec2<f32>(0.5555702330196023, -0.8314696123025452));
    let t433 = t185 + t432;
    let t434 = t185 - t432;
    let t435 = fg_mulc(t389, vec2<f32>(0.4713967368259978, -0.8819212643483549));
    let t436 = t188 + t435;
    let t437 = t188 - t435;
    let t438 = fg_mulc(t392, vec2<f32>(0.38268343236508984, -0.9238795325112867));
    let t439 = t191 + t438;
    let t440 = t191 - t438;
    let t441 = fg_mulc(t395, vec2<f32>(0.29028467725446233, -0.9569403357322089));
    let t442 = t194 + t441;
    let t443 = t194 - t441;
    let t444 = fg_mulc(t398, vec2<f32>(0.19509032201612833, -0.9807852804032304));
    let t445 = t197 + t444;
    let t446 = t197 - t444;
    let t447 = fg_mulc(t401, vec2<f32>(0.09801714032956077, -0.9951847266721968));
    let t448 = t200 + t447;
    let t449 = t200 - t447;
    let t450 = fg_rot(t357);
    let t451 = t156 + t450;
    let t452 = t156 - t450;
    let t453 = fg_mulc(t360, vec2<f32>(-0.09801714032956065, -0.9951847266721969));
    let t454 = t159 + t453;
    let t455 = t159 - t453;
    let t456 = fg_mulc(t363, vec2<f32>(-0.1950903220161282, -0.9807852804032304));
    let t457 = t162 + t456;
    let t458 = t162 - t456;
    let t459 = fg_mulc(t366, vec2<f32>(-0.29028467725446216, -0.9569403357322089));
    let t460 = t165 + t459;
    let t461 = t165 - t459;
    let t462 = fg_mulc(t369, vec2<f32>(-0.3826834323650897, -0.9238795325112867));
    let t463 = t168 + t462;
    let t464 = t168 - t462;
    let t465 = fg_mulc(t372, vec2<f32>(-0.4713967368259977, -0.881921264348355));
    let t466 = t171 + t465;
    let t467 = t171 - t465;
    let t468 = fg_mulc(t375, vec2<f32>(-0.555570233019602, -0.8314696123025455));
    let t469 = t174 + t468;
    let t470 = t174 - t468;
    let t471 = fg_mulc(t378, vec2<f32>(-0.6343932841636454, -0.7730104533627371));
    let t472 = t177 + t471;
    let t473 = t177 - t471;
    let t474 = (fg_rot(t381) - t381) * FFT_R2;
    let t475 = t180 + t474;
    let t476 = t180 - t474;
    let t477 = fg_mulc(t384, vec2<f32>(-0.773010453362737, -0.6343932841636455));
    let t478 = t183 + t477;
    let t479 = t183 - t477;
    let t480 = fg_mulc(t387, vec2<f32>(-0.8314696123025453, -0.5555702330196022));
    let t481 = t186 + t480;
    let t482 = t186 - t480;
    let t483 = fg_mulc(t390, vec2<f32>(-0.8819212643483549, -0.47139673682599786));
    let t484 = t189 + t483;
    let t485 = t189 - t483;
    let t486 = fg_mulc(t393, vec2<f32>(-0.9238795325112867, -0.3826834323650899));
    let t487 = t192 + t486;
    let t488 = t192 - t486;
    let t489 = fg_mulc(t396, vec2<f32>(-0.9569403357322088, -0.2902846772544624));
    let t490 = t195 + t489;
    let t491 = t195 - t489;
    let t492 = fg_mulc(t399, vec2<f32>(-0.9807852804032304, -0.1950903220161286));
    let t493 = t198 + t492;
    let t494 = t198 - t492;
    let t495 = fg_mulc(t402, vec2<f32>(-0.9951847266721968, -0.09801714032956083));
    let t496 = t201 + t495;
    let t497 = t201 - t495;
    if (first) {
        // Ns = 1: butterfly jj's outputs go to base + jj R + r, as pairs (r, r + 1)
        let d0 = (base + (jj << 6u)) >> 1u;
        let d1 = d0 + 32u;
        fg_store(dst, d0, vec4<f32>(t403.xy, t406.xy) * cout);
        fg_store(dst, d1, vec4<f32>(t403.zw, t406.zw) * cout);
        fg_store(dst, d0 + 1u, vec4<f32>(t409.xy, t412.xy) * cout);
        fg_store(dst, d1 + 1u, vec4<f32>(t409.zw, t412.zw) * cout);
        fg_store(dst, d0 + 2u, vec4<f32>(t415.xy, t418.xy) * cout);
        fg_store(dst, d1 + 2u, vec4<f32>(t415.zw, t418.zw) * cout);
        fg_store(dst, d0 + 3u, vec4<f32>(t421.xy, t424.xy) * cout);
        fg_store(dst, d1 + 3u, vec4<f32>(t421.zw, t424.zw) * cout);
        fg_store(dst, d0 + 4u, vec4<f32>(t427.xy, t430.xy) * cout);
        fg_store(dst, d1 + 4u, vec4<f32>(t427.zw, t430.zw) * cout);
        fg_store(dst, d0 + 5u, vec4<f32>(t433.xy, t436.xy) * cout);
        fg_store(dst, d1 + 5u, vec4<f32>(t433.zw, t436.zw) * cout);
        fg_store(dst, d0 + 6u, vec4<f32>(t439.xy, t442.xy) * cout);
        fg_store(dst, d1 + 6u, vec4<f32>(t439.zw, t442.zw) * cout);
        fg_store(dst, d0 + 7u, vec4<f32>(t445.xy, t448.xy) * cout);
        fg_store(dst, d1 + 7u, vec4<f32>(t445.zw, t448.zw) * cout);
        fg_store(dst, d0 + 8u, vec4<f32>(t451.xy, t454.xy) * cout);
        fg_store(dst, d1 + 8u, vec4<f32>(t451.zw, t454.zw) * cout);
        fg_store(dst, d0 + 9u, vec4<f32>(t457.xy, t460.xy) * cout);
        fg_store(dst, d1 + 9u, vec4<f32>(t457.zw, t460.zw) * cout);
        fg_store(dst, d0 + 10u, vec4<f32>(t463.xy, t466.xy) * cout);
        fg_store(dst, d1 + 10u, vec4<f32>(t463.zw, t466.zw) * cout);
        fg_store(dst, d0 + 11u, vec4<f32>(t469.xy, t472.xy) * cout);
        fg_store(dst, d1 + 11u, vec4<f32>(t469.zw, t472.zw) * cout);
        fg_store(dst, d0 + 12u, vec4<f32>(t475.xy, t478.xy) * cout);
        fg_store(dst, d1 + 12u, vec4<f32>(t475.zw, t478.zw) * cout);
        fg_store(dst, d0 + 13u, vec4<f32>(t481.xy, t484.xy) * cout);
        fg_store(dst, d1 + 13u, vec4<f32>(t481.zw, t484.zw) * cout);
        fg_store(dst, d0 + 14u, vec4<f32>(t487.xy, t490.xy) * cout);
        fg_store(dst, d1 + 14u, vec4<f32>(t487.zw, t490.zw) * cout);
        fg_store(dst, d0 + 15u, vec4<f32>(t493.xy, t496.xy) * cout);
        fg_store(dst, d1 + 15u, vec4<f32>(t493.zw, t496.zw) * cout);
        fg_store(dst, d0 + 16u, vec4<f32>(t404.xy, t407.xy) * cout);
        fg_store(dst, d1 + 16u, vec4<f32>(t404.zw, t407.zw) * cout);
        fg_store(dst, d0 + 17u, vec4<f32>(t410.xy, t413.xy) * cout);
        fg_store(dst, d1 + 17u, vec4<f32>(t410.zw, t413.zw) * cout);
        fg_store(dst, d0 + 18u, vec4<f32>(t416.xy, t419.xy) * cout);
        fg_store(dst, d1 + 18u, vec4<f32>(t416.zw, t419.zw) * cout);
        fg_store(dst, d0 + 19u, vec4<f32>(t422.xy, t425.xy) * cout);
        fg_store(dst, d1 + 19u, vec4<f32>(t422.zw, t425.zw) * cout);
        fg_store(dst, d0 + 20u, vec4<f32>(t428.xy, t431.xy) * cout);
        fg_store(dst, d1 + 20u, vec4<f32>(t428.zw, t431.zw) * cout);
        fg_store(dst, d0 + 21u, vec4<f32>(t434.xy, t437.xy) * cout);
        fg_store(dst, d1 + 21u, vec4<f32>(t434.zw, t437.zw) * cout);
        fg_store(dst, d0 + 22u, vec4<f32>(t440.xy, t443.xy) * cout);
        fg_store(dst, d1 + 22u, vec4<f32>(t440.zw, t443.zw) * cout);
        fg_store(dst, d0 + 23u, vec4<f32>(t446.xy, t449.xy) * cout);
        fg_store(dst, d1 + 23u, vec4<f32>(t446.zw, t449.zw) * cout);
        fg_store(dst, d0 + 24u, vec4<f32>(t452.xy, t455.xy) * cout);
        fg_store(dst, d1 + 24u, vec4<f32>(t452.zw, t455.zw) * cout);
        fg_store(dst, d0 + 25u, vec4<f32>(t458.xy, t461.xy) * cout);
        fg_store(dst, d1 + 25u, vec4<f32>(t458.zw, t461.zw) * cout);
        fg_store(dst, d0 + 26u, vec4<f32>(t464.xy, t467.xy) * cout);
        fg_store(dst, d1 + 26u, vec4<f32>(t464.zw, t467.zw) * cout);
        fg_store(dst, d0 + 27u, vec4<f32>(t470.xy, t473.xy) * cout);
        fg_store(dst, d1 + 27u, vec4<f32>(t470.zw, t473.zw) * cout);
        fg_store(dst, d0 + 28u, vec4<f32>(t476.xy, t479.xy) * cout);
        fg_store(dst, d1 + 28u, vec4<f32>(t476.zw, t479.zw) * cout);
        fg_store(dst, d0 + 29u, vec4<f32>(t482.xy, t485.xy) * cout);
        fg_store(dst, d1 + 29u, vec4<f32>(t482.zw, t485.zw) * cout);
        fg_store(dst, d0 + 30u, vec4<f32>(t488.xy, t491.xy) * cout);
        fg_store(dst, d1 + 30u, vec4<f32>(t488.zw, t491.zw) * cout);
        fg_store(dst, d0 + 31u, vec4<f32>(t494.xy, t497.xy) * cout);
        fg_store(dst, d1 + 31u, vec4<f32>(t494.zw, t497.zw) * cout);
        return;
    }
    let d = (base + ((jj >> lns) << (lns + 6u)) + p) >> 1u;
    let nsh = ns >> 1u;
    fg_store(dst, d, t403 * cout);
    fg_store(dst, d + nsh, t406 * cout);
    fg_store(dst, d + 2u * nsh, t409 * cout);
    fg_store(dst, d + 3u * nsh, t412 * cout);
    fg_store(dst, d + 4u * nsh, t415 * cout);
    fg_store(dst, d + 5u * nsh, t418 * cout);
    fg_store(dst, d + 6u * nsh, t421 * cout);
    fg_store(dst, d + 7u * nsh, t424 * cout);
    fg_store(dst, d + 8u * nsh, t427 * cout);
    fg_store(dst, d + 9u * nsh, t430 * cout);
    fg_store(dst, d + 10u * nsh, t433 * cout);
    fg_store(dst, d + 11u * nsh, t436 * cout);
    fg_store(dst, d + 12u * nsh, t439 * cout);
    fg_store(dst, d + 13u * nsh, t442 * cout);
    fg_store(dst, d + 14u * nsh, t445 * cout);
    fg_store(dst, d + 15u * nsh, t448 * cout);
    fg_store(dst, d + 16u * nsh, t451 * cout);
    fg_store(dst, d + 17u * nsh, t454 * cout);
    fg_store(dst, d + 18u * nsh, t457 * cout);
    fg_store(dst, d + 19u * nsh, t460 * cout);
    fg_store(dst, d + 20u * nsh, t463 * cout);
    fg_store(dst, d + 21u * nsh, t466 * cout);
    fg_store(dst, d + 22u * nsh, t469 * cout);
    fg_store(dst, d + 23u * nsh, t472 * cout);
    fg_store(dst, d + 24u * nsh, t475 * cout);
    fg_store(dst, d + 25u * nsh, t478 * cout);
    fg_store(dst, d + 26u * nsh, t481 * cout);
    fg_store(dst, d + 27u * nsh, t484 * cout);
    fg_store(dst, d + 28u * nsh, t487 * cout);
    fg_store(dst, d + 29u * nsh, t490 * cout);
    fg_store(dst, d + 30u * nsh, t493 * cout);
    fg_store(dst, d + 31u * nsh, t496 * cout);
    fg_store(dst, d + 32u * nsh, t404 * cout);
    fg_store(dst, d + 33u * nsh, t407 * cout);
    fg_store(dst, d + 34u * nsh, t410 * cout);
    fg_store(dst, d + 35u * nsh, t413 * cout);
    fg_store(dst, d + 36u * nsh, t416 * cout);
    fg_store(dst, d + 37u * nsh, t419 * cout);
    fg_store(dst, d + 38u * nsh, t422 * cout);
    fg_store(dst, d + 39u * nsh, t425 * cout);
    fg_store(dst, d + 40u * nsh, t428 * cout);
    fg_store(dst, d + 41u * nsh, t431 * cout);
    fg_store(dst, d + 42u * nsh, t434 * cout);
    fg_store(dst, d + 43u * nsh, t437 * cout);
    fg_store(dst, d + 44u * nsh, t440 * cout);
    fg_store(dst, d + 45u * nsh, t443 * cout);
    fg_store(dst, d + 46u * nsh, t446 * cout);
    fg_store(dst, d + 47u * nsh, t449 * cout);
    fg_store(dst, d + 48u * nsh, t452 * cout);
    fg_store(dst, d + 49u * nsh, t455 * cout);
    fg_store(dst, d + 50u * nsh, t458 * cout);
    fg_store(dst, d + 51u * nsh, t461 * cout);
    fg_store(dst, d + 52u * nsh, t464 * cout);
    fg_store(dst, d + 53u * nsh, t467 * cout);
    fg_store(dst, d + 54u * nsh, t470 * cout);
    fg_store(dst, d + 55u * nsh, t473 * cout);
    fg_store(dst, d + 56u * nsh, t476 * cout);
    fg_store(dst, d + 57u * nsh, t479 * cout);
    fg_store(dst, d + 58u * nsh, t482 * cout);
    fg_store(dst, d + 59u * nsh, t485 * cout);
    fg_store(dst, d + 60u * nsh, t488 * cout);
    fg_store(dst, d + 61u * nsh, t491 * cout);
    fg_store(dst, d + 62u * nsh, t494 * cout);
    fg_store(dst, d + 63u * nsh, t497 * cout);
}

// Size-2 transforms in place, one per thread.
fn fg_small_2(t: u32) {
    if (t >= fg_p.count) {
        return;
    }
    let s = t * 1u;
    let cin = fg_conj(fg_p.conj_in);
    let cout = fg_conj(fg_p.conj_out);
    let y0 = fg_a[s + 0u] * cin;
    let t1 = y0.xyxy + y0.zwzw;
    let t2 = y0.xyxy - y0.zwzw;
    fg_a[s + 0u] = vec4<f32>(t1.xy, t2.xy) * cout;
}

// Size-4 transforms in place, one per thread.
fn fg_small_4(t: u32) {
    if (t >= fg_p.count) {
        return;
    }
    let s = t * 2u;
    let cin = fg_conj(fg_p.conj_in);
    let cout = fg_conj(fg_p.conj_out);
    let y0 = fg_a[s + 0u] * cin;
    let y1 = fg_a[s + 1u] * cin;
    let t1 = y0.xyxy + y1.xyxy;
    let t2 = y0.xyxy - y1.xyxy;
    let t3 = y0.zwzw + y1.zwzw;
    let t4 = fg_rot(y0.zwzw - y1.zwzw);
    let t5 = t1 + t3;
    let t6 = t2 + t4;
    let t7 = t1 - t3;
    let t8 = t2 - t4;
    fg_a[s + 0u] = vec4<f32>(t5.xy, t6.xy) * cout;
    fg_a[s + 1u] = vec4<f32>(t7.xy, t8.xy) * cout;
}

// Size-8 transforms in place, one per thread.
fn fg_small_8(t: u32) {
    if (t >= fg_p.count) {
        return;
    }
    let s = t * 4u;
    let cin = fg_conj(fg_p.conj_in);
    let cout = fg_conj(fg_p.conj_out);
    let y0 = fg_a[s + 0u] * cin;
    let y1 = fg_a[s + 1u] * cin;
    let y2 = fg_a[s + 2u] * cin;
    let y3 = fg_a[s + 3u] * cin;
    let t1 = y0.xyxy + y2.xyxy;
    let t2 = y0.xyxy - y2.xyxy;
    let t3 = y1.xyxy + y3.xyxy;
    let t4 = fg_rot(y1.xyxy - y3.xyxy);
    let t5 = t1 + t3;
    let t6 = t2 + t4;
    let t7 = t1 - t3;
    let t8 = t2 - t4;
    let t9 = y0.zwzw + y2.zwzw;
    let t10 = y0.zwzw - y2.zwzw;
    let t11 = y1.zwzw + y3.zwzw;
    let t12 = fg_rot(y1.zwzw - y3.zwzw);
    let t13 = t9 + t11;
    let t14 = t10 + t12;
    let t15 = t9 - t11;
    let t16 = t10 - t12;
    let t17 = t5 + t13;
    let t18 = t5 - t13;
    let t19 = (t14 + fg_rot(t14)) * FFT_R2;
    let t20 = t6 + t19;
    let t21 = t6 - t19;
    let t22 = fg_rot(t15);
    let t23 = t7 + t22;
    let t24 = t7 - t22;
    let t25 = (fg_rot(t16) - t16) * FFT_R2;
    let t26 = t8 + t25;
    let t27 = t8 - t25;
    fg_a[s + 0u] = vec4<f32>(t17.xy, t20.xy) * cout;
    fg_a[s + 1u] = vec4<f32>(t23.xy, t26.xy) * cout;
    fg_a[s + 2u] = vec4<f32>(t18.xy, t21.xy) * cout;
    fg_a[s + 3u] = vec4<f32>(t24.xy, t27.xy) * cout;
}

@compute @workgroup_size(64)
fn fg_first_r2(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = fg_index(wid, nwg, lid);
    if (i < fg_p.count) { fg_pass_r2(i, 0u, 1u, true); }
}

@compute @workgroup_size(64)
fn fg_a_b_r2(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = fg_index(wid, nwg, lid);
    if (i < fg_p.count) { fg_pass_r2(i, 0u, 1u, false); }
}

@compute @workgroup_size(64)
fn fg_b_a_r2(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = fg_index(wid, nwg, lid);
    if (i < fg_p.count) { fg_pass_r2(i, 1u, 0u, false); }
}

@compute @workgroup_size(64)
fn fg_a_a_r2(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = fg_index(wid, nwg, lid);
    if (i < fg_p.count) { fg_pass_r2(i, 0u, 0u, false); }
}

@compute @workgroup_size(64)
fn fg_first_r4(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = fg_index(wid, nwg, lid);
    if (i < fg_p.count) { fg_pass_r4(i, 0u, 1u, true); }
}

@compute @workgroup_size(64)
fn fg_a_b_r4(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = fg_index(wid, nwg, lid);
    if (i < fg_p.count) { fg_pass_r4(i, 0u, 1u, false); }
}

@compute @workgroup_size(64)
fn fg_b_a_r4(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = fg_index(wid, nwg, lid);
    if (i < fg_p.count) { fg_pass_r4(i, 1u, 0u, false); }
}

@compute @workgroup_size(64)
fn fg_a_a_r4(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = fg_index(wid, nwg, lid);
    if (i < fg_p.count) { fg_pass_r4(i, 0u, 0u, false); }
}

@compute @workgroup_size(64)
fn fg_first_r8(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = fg_index(wid, nwg, lid);
    if (i < fg_p.count) { fg_pass_r8(i, 0u, 1u, true); }
}

@compute @workgroup_size(64)
fn fg_a_b_r8(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = fg_index(wid, nwg, lid);
    if (i < fg_p.count) { fg_pass_r8(i, 0u, 1u, false); }
}

@compute @workgroup_size(64)
fn fg_b_a_r8(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = fg_index(wid, nwg, lid);
    if (i < fg_p.count) { fg_pass_r8(i, 1u, 0u, false); }
}

@compute @workgroup_size(64)
fn fg_a_a_r8(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = fg_index(wid, nwg, lid);
    if (i < fg_p.count) { fg_pass_r8(i, 0u, 0u, false); }
}

@compute @workgroup_size(64)
fn fg_first_r16(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = fg_index(wid, nwg, lid);
    if (i < fg_p.count) { fg_pass_r16(i, 0u, 1u, true); }
}

@compute @workgroup_size(64)
fn fg_a_b_r16(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = fg_index(wid, nwg, lid);
    if (i < fg_p.count) { fg_pass_r16(i, 0u, 1u, false); }
}

@compute @workgroup_size(64)
fn fg_b_a_r16(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = fg_index(wid, nwg, lid);
    if (i < fg_p.count) { fg_pass_r16(i, 1u, 0u, false); }
}

@compute @workgroup_size(64)
fn fg_a_a_r16(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = fg_index(wid, nwg, lid);
    if (i < fg_p.count) { fg_pass_r16(i, 0u, 0u, false); }
}

@compute @workgroup_size(64)
fn fg_first_r32(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = fg_index(wid, nwg, lid);
    if (i < fg_p.count) { fg_pass_r32(i, 0u, 1u, true); }
}

@compute @workgroup_size(64)
fn fg_a_b_r32(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = fg_index(wid, nwg, lid);
    if (i < fg_p.count) { fg_pass_r32(i, 0u, 1u, false); }
}

@compute @workgroup_size(64)
fn fg_b_a_r32(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = fg_index(wid, nwg, lid);
    if (i < fg_p.count) { fg_pass_r32(i, 1u, 0u, false); }
}

@compute @workgroup_size(64)
fn fg_a_a_r32(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = fg_index(wid, nwg, lid);
    if (i < fg_p.count) { fg_pass_r32(i, 0u, 0u, false); }
}

@compute @workgroup_size(64)
fn fg_first_r64(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = fg_index(wid, nwg, lid);
    if (i < fg_p.count) { fg_pass_r64(i, 0u, 1u, true); }
}

@compute @workgroup_size(64)
fn fg_a_b_r64(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = fg_index(wid, nwg, lid);
    if (i < fg_p.count) { fg_pass_r64(i, 0u, 1u, false); }
}

@compute @workgroup_size(64)
fn fg_b_a_r64(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = fg_index(wid, nwg, lid);
    if (i < fg_p.count) { fg_pass_r64(i, 1u, 0u, false); }
}

@compute @workgroup_size(64)
fn fg_a_a_r64(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = fg_index(wid, nwg, lid);
    if (i < fg_p.count) { fg_pass_r64(i, 0u, 0u, false); }
}

@compute @workgroup_size(64)
fn fg_small_n2(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    fg_small_2(fg_index(wid, nwg, lid));
}

@compute @workgroup_size(64)
fn fg_small_n4(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    fg_small_4(fg_index(wid, nwg, lid));
}

@compute @workgroup_size(64)
fn fg_small_n8(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    fg_small_8(fg_index(wid, nwg, lid));
}

// ---- Generator (python3) ----
// import math, sys
//
// HEADER = '''// Batched standalone FFTs (concatenated after fft_lib.wgsl, whose FFT_R2 it uses).
// //
// // A size-N transform (N = 2^log2n >= 16) is a chain of barrier-free Stockham passes of
// // radix R = 2^lr (2 to 64), one dispatch each, ping-ponging between the data buffer a
// // and the scratch buffer b. Pass k has sub-transform size Ns = product of the earlier
// // radices (lns = log2 Ns). Every thread takes two adjacent butterflies jj and jj + 1
// // (jj even) of one transform, in the two halves of a vec4, so that every buffer access
// // moves two complex values:
// //   read  v[r] = x[jj + r*N/R] (both lanes in one vec4),
// //   v[r] *= W_{R*Ns}^{(jj mod Ns)*r}, v = DFT_R(v),
// //   write x'[(jj / Ns)*Ns*R + (jj mod Ns) + r*Ns] = v[r].
// // The first pass (Ns = 1) has no twiddles and writes each butterfly's outputs as pairs
// // (r, r + 1). The last pass (Ns = N / R) reads and writes the same elements, so it can
// // run in place (a -> a) when the pass count leaves the data in a. The inverse is
// // conj(forward(conj(x))): the first pass conjugates its input, the last its output.
// //
// // Why no workgroup memory: on Mesa's lavapipe (llvmpipe), which CI and CPU-only users
// // run, a shader with a workgroupBarrier runs its invocations as coroutines, which cost
// // more than the extra passes through the buffer; and every buffer access is a loop over
// // the SIMD lanes, so moving two values per access (vec4) pays.
// //
// // Staged plans (src/fft.rs, CPU adapters) swap the buffer-access block below: every
// // pass then reads a texture that the data buffer was copied into just before
// // (textureLoad, a vector gather on llvmpipe, where a buffer load is a loop over the
// // SIMD lanes) and writes the data buffer a.
// //
// // Sizes 2, 4 and 8 use fg_small_n<N>: one thread per transform, in place.
// //
// // Everything below the helpers is generated, straight-line code (fully unrolled DFTs,
// // radix-2 decimation in time with literal twiddles): the generator, a Python script, is
// // kept as a comment at the end of this file; edit it and regenerate (python3, writes
// // this file to stdout) rather than editing the generated functions.
//
// struct FgParams {
//     log2n: u32,    // transform size N (log2)
//     lns: u32,      // log2 Ns: product of the earlier passes' radices
//     count: u32,    // butterfly pairs in all (batch * N / (2 R)); fg_small: transforms
//     conj_in: u32,  // 1: conjugate the input (first pass of an inverse)
//     conj_out: u32, // 1: conjugate the output (last pass of an inverse)
//     _pad0: u32,
//     _pad1: u32,
//     _pad2: u32,
//     _pad3: vec4<u32>,
//     _pad4: vec4<u32>,
// }
//
// const FG_WG: u32 = 64u;
//
// @group(0) @binding(0) var<uniform> fg_p: FgParams;
// @group(1) @binding(0) var<storage, read> fft_twiddles: array<vec2<f32>>;
// @group(1) @binding(1) var<storage, read_write> fg_a: array<vec4<f32>>;
// @group(1) @binding(2) var<storage, read_write> fg_b: array<vec4<f32>>;
//
// // (a.xy * w.xy, a.zw * w.zw), complex.
// fn fg_mul(a: vec4<f32>, w: vec4<f32>) -> vec4<f32> {
//     return a * w.xxzz + a.yxwz * vec4<f32>(-w.y, w.y, -w.w, w.w);
// }
//
// // Both lanes times the constant w.
// fn fg_mulc(a: vec4<f32>, w: vec2<f32>) -> vec4<f32> {
//     return fg_mul(a, vec4<f32>(w, w));
// }
//
// // Both lanes times -i.
// fn fg_rot(v: vec4<f32>) -> vec4<f32> {
//     return vec4<f32>(v.y, -v.x, v.w, -v.z);
// }
//
// // ---- buffer access (staged plans swap this block: src/fft.rs, staged_source) ----
// // src/dst: 0 = a, 1 = b (compile-time constants after inlining).
// fn fg_load(src: u32, idx: u32) -> vec4<f32> {
//     if (src == 1u) {
//         return fg_b[idx];
//     }
//     return fg_a[idx];
// }
//
// fn fg_store(dst: u32, idx: u32, x: vec4<f32>) {
//     if (dst == 1u) {
//         fg_b[idx] = x;
//     } else {
//         fg_a[idx] = x;
//     }
// }
// // ---- end of buffer access ----
//
// fn fg_conj(on: u32) -> vec4<f32> {
//     return select(vec4<f32>(1.0), vec4<f32>(1.0, -1.0, 1.0, -1.0), on != 0u);
// }
//
// fn fg_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
//     return (wid.x + wid.y * nwg.x) * FG_WG + lid;
// }
// '''
//
// class Gen:
//     def __init__(self):
//         self.lines = []
//         self.n = 0
//     def tmp(self, expr):
//         self.n += 1
//         name = f"t{self.n}"
//         self.lines.append(f"    let {name} = {expr};")
//         return name
//
// def lit(x):
//     if abs(x) < 1e-300:
//         return "0.0"
//     s = repr(float(x))
//     if 'e' in s or '.' not in s:
//         s = f"{x:.17f}"
//     return s
//
// def twiddle(g, v, k, n):
//     k %= n
//     if k == 0:
//         return v
//     if 4 * k == n:
//         return g.tmp(f"fg_rot({v})")
//     if 2 * k == n:
//         return g.tmp(f"-{v}")
//     if 8 * k == n:
//         return g.tmp(f"({v} + fg_rot({v})) * FFT_R2")
//     if 8 * k == 3 * n:
//         return g.tmp(f"(fg_rot({v}) - {v}) * FFT_R2")
//     a = -2.0 * math.pi * k / n
//     return g.tmp(f"fg_mulc({v}, vec2<f32>({lit(math.cos(a))}, {lit(math.sin(a))}))")
//
// def dft(g, xs):
//     n = len(xs)
//     if n == 1:
//         return xs
//     if n == 2:
//         return [g.tmp(f"{xs[0]} + {xs[1]}"), g.tmp(f"{xs[0]} - {xs[1]}")]
//     if n == 4:
//         t0 = g.tmp(f"{xs[0]} + {xs[2]}")
//         t1 = g.tmp(f"{xs[0]} - {xs[2]}")
//         t2 = g.tmp(f"{xs[1]} + {xs[3]}")
//         r = g.tmp(f"fg_rot({xs[1]} - {xs[3]})")
//         return [g.tmp(f"{t0} + {t2}"), g.tmp(f"{t1} + {r}"), g.tmp(f"{t0} - {t2}"), g.tmp(f"{t1} - {r}")]
//     e = dft(g, xs[0::2])
//     o = dft(g, xs[1::2])
//     out = [None] * n
//     for k in range(n // 2):
//         t = twiddle(g, o[k], k, n)
//         out[k] = g.tmp(f"{e[k]} + {t}")
//         out[k + n // 2] = g.tmp(f"{e[k]} - {t}")
//     return out
//
// def powers(g, R):
//     """Lines defining w{k} (k = 1..R-1) from w1 (and w8 when R >= 16)."""
//     L = []
//     have = {1}
//     if R >= 16:
//         have.add(8)
//     def need(k):
//         if k in have:
//             return
//         # small k: from w1 by squaring / products, depth <= 3
//         if k < 8:
//             if k == 2: L.append("    let w2 = fg_mul(w1, w1);")
//             elif k == 3: need(2); L.append("    let w3 = fg_mul(w2, w1);")
//             elif k == 4: need(2); L.append("    let w4 = fg_mul(w2, w2);")
//             elif k == 5: need(4); L.append("    let w5 = fg_mul(w4, w1);")
//             elif k == 6: need(3); L.append("    let w6 = fg_mul(w3, w3);")
//             elif k == 7: need(4); need(3); L.append("    let w7 = fg_mul(w4, w3);")
//         elif k == 8:
//             need(4); L.append("    let w8 = fg_mul(w4, w4);")
//         elif k % 8 == 0:
//             a = k // 8
//             if a % 2 == 0:
//                 need(k // 2); L.append(f"    let w{k} = fg_mul(w{k//2}, w{k//2});")
//             else:
//                 need(k - 8); L.append(f"    let w{k} = fg_mul(w{k-8}, w8);")
//         else:
//             hi = k - k % 8
//             need(hi); need(k % 8); L.append(f"    let w{k} = fg_mul(w{hi}, w{k % 8});")
//         have.add(k)
//     for k in range(2, R):
//         need(k)
//     return L
//
// def gen_pass(lr):
//     R = 1 << lr
//     out = []
//     out.append(f"// Radix-{R} pass: butterfly pair i (see the header).")
//     out.append(f"fn fg_pass_r{R}(i: u32, src: u32, dst: u32, first: bool) {{")
//     out.append(f"    let log2n = fg_p.log2n;")
//     out.append(f"    let lh = log2n - {lr + 1}u; // log2 butterfly pairs per transform")
//     out.append(f"    let base = (i >> lh) << log2n;")
//     out.append(f"    let jj = (i & ((1u << lh) - 1u)) << 1u;")
//     out.append(f"    let s = (base + jj) >> 1u;")
//     out.append(f"    let qh = 1u << lh; // N / R / 2")
//     out.append(f"    let cin = fg_conj(fg_p.conj_in);")
//     out.append(f"    let cout = fg_conj(fg_p.conj_out);")
//     for r in range(R):
//         off = "s" if r == 0 else ("s + qh" if r == 1 else f"s + {r}u * qh")
//         out.append(f"    var x{r} = fg_load(src, {off}) * cin;")
//     out.append(f"    let lns = fg_p.lns;")
//     out.append(f"    let ns = 1u << lns;")
//     out.append(f"    let p = jj & (ns - 1u);")
//     out.append(f"    if (!first) {{")
//     out.append(f"        // lanes jj and jj + 1 take W_{{R Ns}}^{{p r}} and W_{{R Ns}}^{{(p + 1) r}}")
//     out.append(f"        let off = (ns << {lr}u) - 2u;")
//     out.append(f"        let w1 = vec4<f32>(fft_twiddles[off + p], fft_twiddles[off + p + 1u]);")
//     if R >= 16:
//         out.append(f"        let w8 = vec4<f32>(fft_twiddles[off + 8u * p], fft_twiddles[off + 8u * p + 8u]);")
//     for l in powers(None, R):
//         out.append("    " + l)
//     for r in range(1, R):
//         out.append(f"        x{r} = fg_mul(x{r}, w{r});")
//     out.append(f"    }}")
//     g = Gen()
//     ys = dft(g, [f"x{r}" for r in range(R)])
//     out += g.lines
//     out.append(f"    if (first) {{")
//     out.append(f"        // Ns = 1: butterfly jj's outputs go to base + jj R + r, as pairs (r, r + 1)")
//     out.append(f"        let d0 = (base + (jj << {lr}u)) >> 1u;")
//     out.append(f"        let d1 = d0 + {R // 2}u;")
//     for r in range(0, R, 2):
//         o = "" if r == 0 else f" + {r // 2}u"
//         out.append(f"        fg_store(dst, d0{o}, vec4<f32>({ys[r]}.xy, {ys[r+1]}.xy) * cout);")
//         out.append(f"        fg_store(dst, d1{o}, vec4<f32>({ys[r]}.zw, {ys[r+1]}.zw) * cout);")
//     out.append(f"        return;")
//     out.append(f"    }}")
//     out.append(f"    let d = (base + ((jj >> lns) << (lns + {lr}u)) + p) >> 1u;")
//     out.append(f"    let nsh = ns >> 1u;")
//     for r in range(R):
//         off = "d" if r == 0 else ("d + nsh" if r == 1 else f"d + {r}u * nsh")
//         out.append(f"    fg_store(dst, {off}, {ys[r]} * cout);")
//     out.append("}")
//     return "\n".join(out) + "\n"
//
// def gen_small(lr):
//     N = 1 << lr
//     out = [f"// Size-{N} transforms in place, one per thread.",
//            f"fn fg_small_{N}(t: u32) {{",
//            f"    if (t >= fg_p.count) {{", "        return;", "    }",
//            f"    let s = t * {N // 2}u;",
//            f"    let cin = fg_conj(fg_p.conj_in);",
//            f"    let cout = fg_conj(fg_p.conj_out);"]
//     for h in range(N // 2):
//         out.append(f"    let y{h} = fg_a[s + {h}u] * cin;")
//     xs = []
//     for h in range(N // 2):
//         xs.append(f"y{h}.xyxy")
//         xs.append(f"y{h}.zwzw")
//     g = Gen()
//     ys = dft(g, xs)
//     out += g.lines
//     for h in range(N // 2):
//         out.append(f"    fg_a[s + {h}u] = vec4<f32>({ys[2*h]}.xy, {ys[2*h+1]}.xy) * cout;")
//     out.append("}")
//     return "\n".join(out) + "\n"
//
// ENTRY = '''
// @compute @workgroup_size(64)
// fn {name}(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {{
//     {body}
// }}
// '''
//
// def main():
//     parts = [HEADER]
//     for lr in range(1, 7):
//         parts.append("\n" + gen_pass(lr))
//     for lr in range(1, 4):
//         parts.append("\n" + gen_small(lr))
//     for lr in range(1, 7):
//         R = 1 << lr
//         parts.append(ENTRY.format(name=f"fg_first_r{R}", body=f"let i = fg_index(wid, nwg, lid);\n    if (i < fg_p.count) {{ fg_pass_r{R}(i, 0u, 1u, true); }}"))
//         for sn, si, dn, di in [("a", 0, "b", 1), ("b", 1, "a", 0), ("a", 0, "a", 0)]:
//             parts.append(ENTRY.format(name=f"fg_{sn}_{dn}_r{R}", body=f"let i = fg_index(wid, nwg, lid);\n    if (i < fg_p.count) {{ fg_pass_r{R}(i, {si}u, {di}u, false); }}"))
//     for lr in range(1, 4):
//         N = 1 << lr
//         parts.append(ENTRY.format(name=f"fg_small_n{N}", body=f"fg_small_{N}(fg_index(wid, nwg, lid));"))
//     me = open(__file__).read()
//     parts.append("\n// ---- Generator (python3) ----\n")
//     parts.append("".join("//" + (" " + l if l else "") + "\n" for l in me.rstrip("\n").split("\n")))
//     sys.stdout.write("".join(parts))
//
// main()
