// Four-channel variant of the lazy kernel in mixer.wgsl, dispatched by src/mixer/lazy.rs when
// D is a multiple of 4: the histories are read as vec4 (16 bytes per access), which
// software rasterisers such as lavapipe turn into far fewer memory operations. Same
// bindings and parameters as `lazy` (time-major arenas, channel g of t at t * C + g).

// The v history and the filter taps (src/mixer/kernels.rs swaps each pair of lines for a
// texture on CPU adapters: the gate then also stores v_t in the v texture).
@group(1) @binding(0) var<storage, read> v4: array<vec4<f32>>;
fn vtap(i: u32) -> vec4<f32> { return v4[i]; }
@group(1) @binding(1) var<storage, read> k4: array<vec4<f32>>;
fn ktap(i: u32) -> vec4<f32> { return k4[i]; }
@group(1) @binding(2) var<storage, read> prm: array<f32>;
@group(1) @binding(3) var<storage, read_write> x0: array<f32>;
@group(1) @binding(4) var<storage, read_write> y: array<f32>;
@group(1) @binding(5) var<storage, read_write> unused: array<f32>;

// A workgroup covers LAZY_LANES * 4 quads of channels: thread `lane` takes quads lane,
// lane + 8, lane + 16 and lane + 24, so the 8 neighbouring threads that a CPU driver
// runs as one SIMD batch read 512 contiguous bytes of each history row, and the
// positions s < t are split into LAZY_SLICES blocks, one per group of 8 threads. A
// layer of D = 256 channels is then two workgroups, so both cores (or many SMs) work.
const LAZY_LANES: u32 = 8u;
const LAZY_SLICES: u32 = 8u;
var<workgroup> part: array<vec4<f32>, 256>;

// The partial sums of quads q, q + 8, q + 16, q + 24 (clamped to the last quad `last`)
// over positions [lo, hi): k walked backward from t - lo, v forward from lo.
fn lazy_block(q: u32, last: u32, lo: u32, hi: u32) -> array<vec4<f32>, 4> {
    let c4 = p.chans / 4u;
    let g = p.col0 / 4u;
    let o1 = min(q + 8u, last) - q;
    let o2 = min(q + 16u, last) - q;
    let o3 = min(q + 24u, last) - q;
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var vi = lo * c4 + g + q;
    var ki = (p.t - lo) * c4 + g + q;
    for (var s = lo; s < hi; s++) {
        a0 += ktap(ki) * vtap(vi);
        a1 += ktap(ki + o1) * vtap(vi + o1);
        a2 += ktap(ki + o2) * vtap(vi + o2);
        a3 += ktap(ki + o3) * vtap(vi + o3);
        ki -= c4;
        vi += c4;
    }
    return array<vec4<f32>, 4>(a0, a1, a2, a3);
}

// y[c..c+4] = (sum_{s<t} k[t-s] v_s + diag * v_t) * x0 for each quad c = c0 + 4 * quad
// (col0, count and the group's column count are multiples of 4).
@compute @workgroup_size(64)
fn lazy4(@builtin(local_invocation_id) lid: vec3<u32>,
         @builtin(workgroup_id) wid: vec3<u32>) {
    let lane = lid.x % LAZY_LANES;
    let slice = lid.x / LAZY_LANES;
    let quads = p.count / 4u;
    let q = min(wid.x * 4u * LAZY_LANES + lane, quads - 1u);
    let lo = p.t * slice / LAZY_SLICES;
    let hi = p.t * (slice + 1u) / LAZY_SLICES;
    let a = lazy_block(q, quads - 1u, lo, hi);
    // part[(m * LAZY_SLICES + slice) * LAZY_LANES + lane] holds quad m's partial sum.
    for (var m = 0u; m < 4u; m++) { part[(m * LAZY_SLICES + slice) * LAZY_LANES + lane] = a[m]; }
    workgroupBarrier();
    // Thread (lane, m = slice) of the first four groups finishes quad m of its lane.
    if slice >= 4u { return; }
    let quad = wid.x * 4u * LAZY_LANES + lane + LAZY_LANES * slice;
    if quad >= quads { return; }
    var sum = vec4<f32>(0.0);
    for (var j = 0u; j < LAZY_SLICES; j++) { sum += part[(slice * LAZY_SLICES + j) * LAZY_LANES + lane]; }
    let c = p.c0 + 4u * quad;
    let dg = vec4<f32>(prm[MP_DIAG * p.d + c], prm[MP_DIAG * p.d + c + 1u],
                       prm[MP_DIAG * p.d + c + 2u], prm[MP_DIAG * p.d + c + 3u]);
    let z = sum + dg * vtap(p.t * (p.chans / 4u) + p.col0 / 4u + quad);
    for (var j = 0u; j < 4u; j++) { y[c + j] = z[j] * x0[c + j]; }
}
