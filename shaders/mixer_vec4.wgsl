// Four-channel variant of the lazy kernel in mixer.wgsl, dispatched by src/mixer.rs when
// D is a multiple of 4: the histories are read as vec4 (16 bytes per access), which
// software rasterisers such as lavapipe turn into far fewer memory operations. Same
// bindings and parameters as `lazy` (time-major arenas, channel g of t at t * C + g).

@group(1) @binding(0) var<storage, read> v4: array<vec4<f32>>;
@group(1) @binding(1) var<storage, read> k4: array<vec4<f32>>;
@group(1) @binding(2) var<storage, read> prm: array<f32>;
@group(1) @binding(3) var<storage, read_write> x0: array<f32>;
@group(1) @binding(4) var<storage, read_write> y: array<f32>;
@group(1) @binding(5) var<storage, read_write> unused: array<f32>;

// A workgroup takes LAZY_QUADS quads of channels and splits the positions s < t between
// LAZY_SLICES threads per quad: a layer of D = 256 channels is then four workgroups, so
// every core (or SM) has work, not one workgroup per layer.
const LAZY_QUADS: u32 = 16u;
const LAZY_SLICES: u32 = 4u;
var<workgroup> part: array<vec4<f32>, 64>;

// y[c..c+4] = (sum_{s<t} k[t-s] v_s + diag * v_t) * x0 for the quad c = c0 + 4 * quad
// (col0, count and the group's column count are multiples of 4).
@compute @workgroup_size(64)
fn lazy4(@builtin(local_invocation_id) lid: vec3<u32>,
         @builtin(workgroup_id) wid: vec3<u32>) {
    let quad = wid.x * LAZY_QUADS + lid.x % LAZY_QUADS;
    let slice = lid.x / LAZY_QUADS;
    let live = 4u * quad < p.count;
    let c4 = p.chans / 4u;
    let g4 = p.col0 / 4u + quad;
    var s0 = vec4<f32>(0.0);
    var s1 = vec4<f32>(0.0);
    if live {
        // This thread's positions: a contiguous block [lo, hi) of 0 .. t, walked with v
        // forward and k backward by running offsets, two independent sums.
        let lo = p.t * slice / LAZY_SLICES;
        let hi = p.t * (slice + 1u) / LAZY_SLICES;
        var vi = lo * c4 + g4;
        var ki = (p.t - lo) * c4 + g4;
        var left = hi - lo;
        for (; left >= 2u; left -= 2u) {
            s0 += k4[ki] * v4[vi];
            s1 += k4[ki - c4] * v4[vi + c4];
            ki -= 2u * c4;
            vi += 2u * c4;
        }
        if left > 0u { s0 += k4[ki] * v4[vi]; }
    }
    part[lid.x] = s0 + s1;
    workgroupBarrier();
    if slice != 0u || !live { return; }
    var sum = part[lid.x];
    for (var j = 1u; j < LAZY_SLICES; j++) { sum += part[lid.x + j * LAZY_QUADS]; }
    let c = p.c0 + 4u * quad;
    let dg = vec4<f32>(prm[12u * p.d + c], prm[12u * p.d + c + 1u],
                       prm[12u * p.d + c + 2u], prm[12u * p.d + c + 3u]);
    let z = sum + dg * v4[p.t * c4 + g4];
    for (var j = 0u; j < 4u; j++) { y[c + j] = z[j] * x0[c + j]; }
}
