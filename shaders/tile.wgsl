// FFT tiles of the relaxed tiling, dispatched by src/mixer/flash.rs. Concatenated after
// fft_lib.wgsl (which provides fft_wg, fft_sh and reads fft_twiddles declared here).
//
// A tile of side U adds, for every channel g and output m < outputs,
//   z[out_start + m] += sum_{i<U} k[m + U - i] v[in_start + i]
// which is entry U + m of the linear convolution of v[in_start .. +U) with k[0 .. 2U):
// a circular convolution of size N = 2U gives it exactly (the wrap-around only reaches
// entries below U). Two real channels a, b ride in one complex FFT as a + ib; after the
// forward transform Y, their spectra are A = (Y[f] + conj Y[N-f]) / 2 and
// B = (Y[f] - conj Y[N-f]) / 2i, and W = A Ka + i B Kb transforms back to
// (a * ka) + i (b * kb). Filter spectra Kg[f] are precomputed per level (f64 on the CPU,
// scaled by 1/N), f = 0 .. U-1, with slot 0 holding (K[0], K[N/2]) (both real).
// Arenas are time-major: column g of position t is at t * stride + g. A tile covers
// `chans` columns from col0 on (all of a group's for the tiles of the schedule; one
// layer's for a prefill).
//
// The prefill's convolution is the same computation with other parameters: inputs
// v[0 .. P) (valid = P, zeros up to U), filter k[1 .. U) (k[0] = 0 in its spectra) and
// the outputs from entry out_base = 0 on: z[j] += sum_{s<j} k[j - s] v[s], j < P.

struct TileParams {
    chans: u32,     // C: columns transformed
    size: u32,      // U
    in_start: u32,
    out_start: u32,
    outputs: u32,
    log2n: u32,     // log2(2U)
    pairs: u32,     // ceil(C / 2)
    log2count: u32, // tile_fft: log2 of the channel pairs per workgroup
    stride: u32,    // row stride of the arenas (columns of the group)
    col0: u32,      // first column (also the first spectrum)
    valid: u32,     // inputs read (U for tiles; the prompt length in prefill)
    out_base: u32,  // convolution entry of the first output (U for tiles, 0 in prefill)
    pad2: vec4<u32>,
}

@group(0) @binding(0) var<uniform> tp: TileParams;
@group(1) @binding(0) var<storage, read> fft_twiddles: array<vec2<f32>>;
@group(1) @binding(1) var<storage, read> t_v: array<f32>;
@group(1) @binding(2) var<storage, read> t_spec: array<vec2<f32>>;
@group(1) @binding(3) var<storage, read_write> t_z: array<f32>;
@group(1) @binding(4) var<storage, read_write> t_work: array<vec2<f32>>;

fn cmul(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    return vec2<f32>(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}
fn conj(a: vec2<f32>) -> vec2<f32> { return vec2<f32>(a.x, -a.y); }
fn times_i(a: vec2<f32>) -> vec2<f32> { return vec2<f32>(-a.y, a.x); }

// Spectrum of channel g at frequency f (0 ..= U), from the packed table.
fn spec(g: u32, f: u32) -> vec2<f32> {
    let u = tp.size;
    if g >= tp.chans { return vec2<f32>(0.0, 0.0); }
    let s = (tp.col0 + g) * u;
    if f == 0u { return vec2<f32>(t_spec[s].x, 0.0); }
    if f == u { return vec2<f32>(t_spec[s].y, 0.0); }
    return t_spec[s + f];
}

// The packed input of pair `pair` at tile index i (zero past U and past the channels).
fn packed_input(pair: u32, i: u32) -> vec2<f32> {
    if i >= tp.valid { return vec2<f32>(0.0, 0.0); }
    let ga = 2u * pair;
    let row = (tp.in_start + i) * tp.stride + tp.col0;
    var b = 0.0;
    if ga + 1u < tp.chans { b = t_v[row + ga + 1u]; }
    return vec2<f32>(t_v[row + ga], b);
}

// W[f] and W[N-f] from Y[f] = y1 and Y[N-f] = y2 for the pair starting at channel ga.
fn combine(ga: u32, f: u32, y1: vec2<f32>, y2: vec2<f32>) -> array<vec2<f32>, 2> {
    let a = 0.5 * (y1 + conj(y2));
    let b = -0.5 * times_i(y1 - conj(y2));
    let ka = spec(ga, f);
    let kb = spec(ga + 1u, f);
    let aka = cmul(a, ka);
    let bkb = cmul(b, kb);
    return array<vec2<f32>, 2>(aka + times_i(bkb), conj(aka) + times_i(conj(bkb)));
}

// Adds the tile's outputs from the inverse transform x (index out_base + m) to z.
fn scatter(pair: u32, m: u32, x: vec2<f32>) {
    let ga = 2u * pair;
    let row = (tp.out_start + m) * tp.stride + tp.col0;
    t_z[row + ga] += x.x;
    if ga + 1u < tp.chans { t_z[row + ga + 1u] += x.y; }
}

// Loads the `per` channel pairs from `first` on side by side into fft_sh (zeros past
// the last pair) and transforms them forward; all threads of the workgroup call it.
fn load_forward(lid: u32, first: u32, per: u32) {
    let n = 2u * tp.size;
    for (var i = lid; i < n * per; i += FFT_WG) {
        let pair = first + i / n;
        var x = vec2<f32>(0.0, 0.0);
        if pair < tp.pairs { x = packed_input(pair, i % n); }
        fft_sh[i] = x;
    }
    fft_wg_batch(lid, tp.log2n, tp.log2count, false);
}

// Whole tiles in workgroup memory (N = 2U <= 2048): each workgroup takes
// 2^log2count = 2048 / N channel pairs (fft_sh holds them side by side), loads them,
// transforms them forward, combines them with the spectra, transforms back and adds the
// outputs to z. Pairs past the end are zeros and write nothing.
@compute @workgroup_size(256)
fn tile_fft(@builtin(local_invocation_id) lid3: vec3<u32>,
            @builtin(workgroup_id) wid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
    let lid = lid3.x;
    let per = 1u << tp.log2count;
    let first = (wid.x + wid.y * nwg.x) * per;
    if first >= tp.pairs { return; }
    let u = tp.size;
    let n = 2u * u;
    load_forward(lid, first, per);
    // Item (q, f), f = 0 ..= U, owns frequencies f and N-f of local pair q. Read all of a
    // thread's items (at most 8 for N <= 2048), then write after a barrier.
    let items = per * (u + 1u);
    var w1: array<vec2<f32>, 8>;
    var w2: array<vec2<f32>, 8>;
    var k = 0u;
    for (var it = lid; it < items; it += FFT_WG) {
        let q = it / (u + 1u);
        let f = it % (u + 1u);
        let base = q * n;
        let r = combine(2u * (first + q), f, fft_sh[base + f], fft_sh[base + (n - f) % n]);
        w1[k] = r[0];
        w2[k] = r[1];
        k++;
    }
    workgroupBarrier();
    k = 0u;
    for (var it = lid; it < items; it += FFT_WG) {
        let q = it / (u + 1u);
        let f = it % (u + 1u);
        let base = q * n;
        fft_sh[base + f] = w1[k];
        if f != 0u && f != u { fft_sh[base + n - f] = w2[k]; }
        k++;
    }
    fft_wg_batch(lid, tp.log2n, tp.log2count, true);
    let outs = per * tp.outputs;
    for (var i = lid; i < outs; i += FFT_WG) {
        let q = i / tp.outputs;
        let m = i % tp.outputs;
        if first + q < tp.pairs { scatter(first + q, m, fft_sh[q * n + tp.out_base + m]); }
    }
}

// Large tiles (N > 2048) go through the multi-pass FFT in t_work ([pairs][N]):
// gather, forward FFT (fft.wgsl), pointwise, inverse FFT, scatter. Threads per element.
@compute @workgroup_size(256)
fn tile_gather(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 256u;
    let n = 2u * tp.size;
    let pair = idx / n;
    if pair >= tp.pairs { return; }
    t_work[idx] = packed_input(pair, idx % n);
}

@compute @workgroup_size(256)
fn tile_pointwise(@builtin(global_invocation_id) gid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 256u;
    let u = tp.size;
    let n = 2u * u;
    let pair = idx / (u + 1u);
    let f = idx % (u + 1u);
    if pair >= tp.pairs { return; }
    let base = pair * n;
    let g = (n - f) % n;
    let r = combine(2u * pair, f, t_work[base + f], t_work[base + g]);
    t_work[base + f] = r[0];
    if f != 0u && f != u { t_work[base + g] = r[1]; }
}

@compute @workgroup_size(256)
fn tile_scatter(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 256u;
    let pair = idx / tp.outputs;
    let m = idx % tp.outputs;
    if pair >= tp.pairs { return; }
    scatter(pair, m, t_work[pair * 2u * tp.size + tp.out_base + m]);
}

// Filter spectra computed on the fly (levels past the session's spectra budget), right
// before the tile part that reads them, for the same columns: t_v is bound to the
// filter arena and the load is a tile's input load of the taps k[0 .. 2U) (valid =
// taps present), t_z to the spectra buffer. After the forward transform of ka + i kb,
// item (pair, f) separates Ka[f] and Kb[f] as combine() does and stores them, scaled by
// 1 / N, where spec() reads them: slot f, or (K[0], K[U]) in slot 0.
fn spectra_item(pair: u32, f: u32, yf: vec2<f32>, ynf: vec2<f32>, yu: vec2<f32>) {
    let u = tp.size;
    let scale = 1.0 / f32(2u * u);
    var a = 0.5 * (yf + conj(ynf));
    var b = -0.5 * times_i(yf - conj(ynf));
    if f == 0u {
        a = vec2<f32>(yf.x, yu.x);
        b = vec2<f32>(yf.y, yu.y);
    }
    let ga = 2u * pair;
    let sa = 2u * ((tp.col0 + ga) * u + f);
    t_z[sa] = a.x * scale;
    t_z[sa + 1u] = a.y * scale;
    if ga + 1u < tp.chans {
        let sb = sa + 2u * u;
        t_z[sb] = b.x * scale;
        t_z[sb + 1u] = b.y * scale;
    }
}

// In workgroup memory (N = 2U <= 2048), channel pairs packed as in tile_fft.
@compute @workgroup_size(256)
fn spectra_fft(@builtin(local_invocation_id) lid3: vec3<u32>,
               @builtin(workgroup_id) wid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let lid = lid3.x;
    let per = 1u << tp.log2count;
    let first = (wid.x + wid.y * nwg.x) * per;
    if first >= tp.pairs { return; }
    let u = tp.size;
    let n = 2u * u;
    load_forward(lid, first, per);
    for (var it = lid; it < per * u; it += FFT_WG) {
        let q = it / u;
        let f = it % u;
        let base = q * n;
        if first + q < tp.pairs {
            spectra_item(first + q, f, fft_sh[base + f], fft_sh[base + (n - f) % n], fft_sh[base + u]);
        }
    }
}

// After tile_gather (of the taps) and the multi-pass forward FFT in t_work.
@compute @workgroup_size(256)
fn spectra_store(@builtin(global_invocation_id) gid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 256u;
    let u = tp.size;
    let n = 2u * u;
    let pair = idx / u;
    let f = idx % u;
    if pair >= tp.pairs { return; }
    let base = pair * n;
    spectra_item(pair, f, t_work[base + f], t_work[base + (n - f) % n], t_work[base + u]);
}
