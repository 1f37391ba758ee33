// Dense per-token operations of the Hyena forward pass, dispatched by src/session.rs:
// embedding lookup and layer norm (the matrix-vector products are in
// session_matvec.wgsl). All f32. Every entry point shares the same bindings:
//   src0, src1, src2: read-only inputs (meaning per entry point), dst: output.
// Parameters come from a uniform block addressed with a dynamic offset.

struct Params {
    n: u32,        // width (layer norm, embed)
    cols: u32,     // unused
    in_off: u32,   // element offset of the input vector in its buffer
    out_off: u32,  // element offset of the output vector in its buffer
    flags: u32,    // unused
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
