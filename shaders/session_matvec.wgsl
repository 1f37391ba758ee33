// Matrix-vector products of the per-token forward pass, dispatched by src/session.rs,
// with fused bias, GELU and residual add. The weight is stored transposed and packed by
// four output rows: w4[i * ceil(n / 4) + q] = (W[4q][i], W[4q+1][i], W[4q+2][i],
// W[4q+3][i]) (zero past row n), so one thread computes four outputs with 16-byte
// loads, neighbouring threads read neighbouring addresses, and no barrier is needed.

struct Params {
    n: u32,        // output rows
    cols: u32,     // input width
    in_off: u32,   // element offset of the input vector in its buffer
    out_off: u32,  // element offset of the output vector in its buffer
    flags: u32,    // 1 = add bias, 2 = GELU, 4 = accumulate into dst
    pad0: u32,
    pad1: u32,
    pad2: u32,
    pad3: vec4<u32>,
    pad4: vec4<u32>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(1) @binding(0) var<storage, read> w4: array<vec4<f32>>;
@group(1) @binding(1) var<storage, read> bias: array<f32>;
@group(1) @binding(2) var<storage, read> x: array<f32>;
@group(1) @binding(3) var<storage, read_write> dst: array<f32>;

fn gelu_tanh(v: f32) -> f32 {
    let c = 0.7978845608028654;
    let inner = c * (v + 0.044715 * v * v * v);
    // tanh via exp, clamped so large |inner| cannot overflow.
    let e = exp(-2.0 * clamp(abs(inner), 0.0, 30.0));
    let th = sign(inner) * (1.0 - e) / (1.0 + e);
    return 0.5 * v * (1.0 + th);
}

@compute @workgroup_size(64)
fn matvec(@builtin(global_invocation_id) gid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>) {
    let q = gid.x + gid.y * nwg.x * 64u;
    let n4 = (p.n + 3u) / 4u;
    if q >= n4 { return; }
    var s0 = vec4<f32>(0.0);
    var s1 = vec4<f32>(0.0);
    var i = 0u;
    for (; i + 1u < p.cols; i += 2u) {
        s0 += w4[i * n4 + q] * x[p.in_off + i];
        s1 += w4[(i + 1u) * n4 + q] * x[p.in_off + i + 1u];
    }
    if i < p.cols { s0 += w4[i * n4 + q] * x[p.in_off + i]; }
    let s = s0 + s1;
    for (var j = 0u; j < 4u; j++) {
        let row = 4u * q + j;
        if row >= p.n { break; }
        var v = s[j];
        if (p.flags & 1u) != 0u { v += bias[row]; }
        if (p.flags & 2u) != 0u { v = gelu_tanh(v); }
        let o = p.out_off + row;
        if (p.flags & 4u) != 0u { v += dst[o]; }
        dst[o] = v;
    }
}
