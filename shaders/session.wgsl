// The embedding lookup of the per-token forward pass, dispatched by src/session.rs (the
// matrix-vector products, with the layer norms and the gate fused in, are in
// session_matvec.wgsl). Parameters come from a uniform block addressed with a dynamic
// offset (the first words of the shared 16-word block).

struct Params {
    n: u32,        // width D
    pos: u32,      // position of the first token id read
    rows: u32,     // consecutive positions (1 per token; the prompt's length in prefill)
    pad0: u32,
    pad1: vec4<u32>,
    pad2: vec4<u32>,
    pad3: vec4<u32>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(1) @binding(0) var<storage, read> table: array<f32>;
// Token ids (u32 bits stored in an f32 array).
@group(1) @binding(1) var<storage, read> tokens: array<f32>;
@group(1) @binding(2) var<storage, read_write> dst: array<f32>;

// dst[r * n + i] = embedding[token[pos + r]][i] for r < rows.
@compute @workgroup_size(256)
fn embed(@builtin(global_invocation_id) gid: vec3<u32>,
         @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 256u;
    let r = idx / p.n;
    let i = idx % p.n;
    if r >= p.rows { return; }
    let tok = bitcast<u32>(tokens[p.pos + r]);
    dst[idx] = table[tok * p.n + i];
}
