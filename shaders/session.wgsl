// Dense per-token operations of the Hyena forward pass, dispatched by src/session.rs:
// embedding lookup, layer norm, and matrix-vector products with fused bias, GELU and
// residual add. All f32. Every entry point shares the same bindings:
//   src0, src1, src2: read-only inputs (meaning per entry point), dst: output.
// Parameters come from a uniform block addressed with a dynamic offset.

struct Params {
    n: u32,        // rows (matvec) or width (layer norm, embed)
    cols: u32,     // matvec: input width
    in_off: u32,   // element offset of the input vector in its buffer
    out_off: u32,  // element offset of the output vector in its buffer
    flags: u32,    // matvec: 1 = add bias, 2 = GELU, 4 = accumulate into dst
    pos: u32,      // embed: position whose token id is read
    eps: f32,      // layer norm epsilon
    pad0: u32,
    pad1: vec4<u32>,
    pad2: vec4<u32>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(1) @binding(0) var<storage, read> src0: array<f32>;
@group(1) @binding(1) var<storage, read> src1: array<f32>;
@group(1) @binding(2) var<storage, read> src2: array<f32>;
@group(1) @binding(3) var<storage, read_write> dst: array<f32>;

const WG: u32 = 256u;
const LN_WG: u32 = 64u;
var<workgroup> red: array<f32, 64>;

// Tree reduction of red[0..LN_WG) into red[0]; all threads must call it.
fn reduce_sum(lid: u32) -> f32 {
    var s = LN_WG / 2u;
    loop {
        if s == 0u { break; }
        workgroupBarrier();
        if lid < s { red[lid] = red[lid] + red[lid + s]; }
        s = s / 2u;
    }
    workgroupBarrier();
    let total = red[0];
    workgroupBarrier();
    return total;
}

// dst[out_off + i] = embedding[token[pos]][i]; src0 = embedding table, src1 = token ids
// (u32 bits stored in an f32 array).
@compute @workgroup_size(256)
fn embed(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if i >= p.n { return; }
    let tok = bitcast<u32>(src1[p.pos]);
    dst[p.out_off + i] = src0[tok * p.n + i];
}

// LayerNorm over p.n values (biased variance, two passes for accuracy):
// src0 = input, src1 = weight, src2 = bias. One workgroup.
@compute @workgroup_size(64)
fn layer_norm(@builtin(local_invocation_id) lid3: vec3<u32>) {
    let lid = lid3.x;
    var s = 0.0;
    for (var i = lid; i < p.n; i += LN_WG) { s += src0[p.in_off + i]; }
    red[lid] = s;
    let mean = reduce_sum(lid) / f32(p.n);
    var q = 0.0;
    for (var i = lid; i < p.n; i += LN_WG) {
        let d = src0[p.in_off + i] - mean;
        q += d * d;
    }
    red[lid] = q;
    let inv = inverseSqrt(reduce_sum(lid) / f32(p.n) + p.eps);
    for (var i = lid; i < p.n; i += LN_WG) {
        dst[p.out_off + i] = (src0[p.in_off + i] - mean) * inv * src1[i] + src2[i];
    }
}

fn gelu_tanh(x: f32) -> f32 {
    let c = 0.7978845608028654;
    let inner = c * (x + 0.044715 * x * x * x);
    // tanh via exp, clamped so large |inner| cannot overflow.
    let e = exp(-2.0 * clamp(abs(inner), 0.0, 30.0));
    let th = sign(inner) * (1.0 - e) / (1.0 + e);
    return 0.5 * x * (1.0 + th);
}

// Matrix-vector product, one thread per output row, with the weight stored transposed
// (src0 = W^T [cols][n], so neighbouring threads read neighbouring addresses and no
// workgroup barrier is needed): src1 = bias, src2 = input.
// Flags: 1 add bias, 2 apply GELU, 4 accumulate into dst.
@compute @workgroup_size(64)
fn matvec(@builtin(global_invocation_id) gid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = gid.x + gid.y * nwg.x * 64u;
    if row >= p.n { return; }
    var v = 0.0;
    for (var i = 0u; i < p.cols; i++) {
        v += src0[i * p.n + row] * src2[p.in_off + i];
    }
    if (p.flags & 1u) != 0u { v += src1[row]; }
    if (p.flags & 2u) != 0u { v = gelu_tanh(v); }
    let o = p.out_off + row;
    if (p.flags & 4u) != 0u { v += dst[o]; }
    dst[o] = v;
}
