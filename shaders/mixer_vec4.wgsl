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

// y[c..c+4] = (sum_{s<t} k[t-s] v_s + diag * v_t) * x0 for the quad c = c0 + 4 * gid.x
// (col0, count and the group's column count are multiples of 4).
@compute @workgroup_size(64)
fn lazy4(@builtin(global_invocation_id) gid: vec3<u32>) {
    if 4u * gid.x >= p.count { return; }
    let c = p.c0 + 4u * gid.x;
    let c4 = p.chans / 4u;
    let g4 = p.col0 / 4u + gid.x;
    var s0 = vec4<f32>(0.0);
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    var s3 = vec4<f32>(0.0);
    // Walk v forward and k backward with running offsets; four independent sums.
    var vi = g4;
    var ki = p.t * c4 + g4;
    var left = p.t;
    for (; left >= 4u; left -= 4u) {
        s0 += k4[ki] * v4[vi];
        s1 += k4[ki - c4] * v4[vi + c4];
        s2 += k4[ki - 2u * c4] * v4[vi + 2u * c4];
        s3 += k4[ki - 3u * c4] * v4[vi + 3u * c4];
        ki -= 4u * c4;
        vi += 4u * c4;
    }
    for (; left > 0u; left -= 1u) {
        s0 += k4[ki] * v4[vi];
        ki -= c4;
        vi += c4;
    }
    s0 += s2;
    s1 += s3;
    let dg = vec4<f32>(prm[12u * p.d + c], prm[12u * p.d + c + 1u],
                       prm[12u * p.d + c + 2u], prm[12u * p.d + c + 3u]);
    let z = s0 + s1 + dg * v4[p.t * c4 + g4];
    for (var j = 0u; j < 4u; j++) { y[c + j] = z[j] * x0[c + j]; }
}
