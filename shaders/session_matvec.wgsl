// Matrix-vector products of the per-token forward pass, dispatched by src/session.rs,
// with what comes before and after them fused in, so a layer is four dispatches:
//   matvec       y = W x (+ bias, GELU, residual add)
//   matvec_norm  y = W LayerNorm(x) (+ ...); can also write LayerNorm(x) to `side`
//   matvec_gate  y = W gate(u ring, z_acc) (+ ...), the Hyena gate of every channel
//                computed in front (gate_lib.wgsl); writes v_t to the history `side`
// The weight is stored transposed and packed by four output rows, quad q of column i
// being (W[4q][i], W[4q+1][i], W[4q+2][i], W[4q+3][i]) (zero past row n) at w4[widx(i, q)]
// (blocks of QB quads, each block's columns contiguous), so one thread computes four
// outputs with 16-byte loads and neighbouring threads read neighbouring addresses.
// Every workgroup computes the input vector (the norm or the gate) for itself, which
// costs O(cols) per workgroup and saves a dispatch. One row (a token step, kernel
// `single`) reads the input columns at addresses shared by all threads, except for the
// gate, whose input is staged in workgroup memory chunk by chunk like the rows kernels'.
//
// Rows: a batch of `rows` vectors: the B sequences of a batched session at one
// position, or the prefill of a prompt (every position at once, each of B rows). Row r
// reads its input at in_off + r * cols, writes its output at out_off + r * n, its
// normalized copy at side_off + r * cols, and is gate position t + r / B of sequence
// b = r % B (B = `batch`), whose channels start at arena column col0 + b * d (a
// layer's channels of all sequences are adjacent) and whose u rows are interleaved
// (urow). Each workgroup takes ROWS consecutive rows (workgroup_id.z * ROWS ..), so
// every weight it loads serves ROWS rows: a matrix product. src/session.rs compiles
// this file with ROWS = 1 (one sequence's token step) and ROWS = 4 (prefill, batches). With flag 16 the
// gate's in_proj outputs are a full [P][B][3D] buffer (row t * B + b holds u_t of
// sequence b) instead of the ring [3][B][3D]. gate_rows writes only v_t (all rows), for the long convolution.

struct Params {
    n: u32,        // output rows
    cols: u32,     // input width
    in_off: u32,   // element offset of the input vector in x
    out_off: u32,  // element offset of the output vector in dst
    flags: u32,    // 1 = add bias, 2 = GELU, 4 = accumulate into dst, 8 = write the
                   // normalized input to side[side_off..] (matvec_norm), 16 = the u
                   // buffer holds every position (prefill) rather than a ring of three,
                   // 32 = embed: row r's input is row tokens[t * batch + r] of x (the
                   // embedding table; zacc holds the token ids), which workgroup 0
                   // also copies to side (the residual stream): layer 0's in_proj
    bias_off: u32, // element offset of the bias in vecs
    eps: f32,      // matvec_norm: layer norm epsilon
    ln_off: u32,   // matvec_norm: offset of [weight cols | bias cols] in vecs
    side_off: u32, // matvec_norm: offset of the normalized copy in side
    d: u32,        // matvec_gate: channels per layer (D = cols)
    t: u32,        // matvec_gate: position
    rows: u32,     // rows in the batch (1 for a token)
    mode: u32,     // matvec_gate: 0 = z from z_acc, 1 = diagonal only
    chans: u32,    // matvec_gate: row stride of the v_hist / z_acc arenas
    col0: u32,     // matvec_gate: arena column of the layer's first channel
    batch: u32,    // sequences B side by side (rows r and r + B are one sequence)
}

@group(0) @binding(0) var<uniform> p: Params;
// The weights (f32; src/session.rs swaps these two lines for the f16 variant).
@group(1) @binding(0) var<storage, read> w4: array<vec4<f32>>;
fn weight(i: u32) -> vec4<f32> { return w4[i]; }
// Small per-layer vectors: biases, norm weights (matvec, matvec_norm), or the mixer
// parameters followed by out_proj's bias (matvec_gate).
@group(1) @binding(1) var<storage, read> vecs: array<f32>;
// The input vector (matvec, matvec_norm) or this layer's u ring (matvec_gate).
@group(1) @binding(2) var<storage, read> x: array<f32>;
@group(1) @binding(3) var<storage, read_write> dst: array<f32>;
// Second output: the normalized input (matvec_norm) or the v_hist arena (matvec_gate).
@group(1) @binding(4) var<storage, read_write> side: array<f32>;
// matvec_gate: the z_acc arena.
@group(1) @binding(5) var<storage, read> zacc: array<f32>;
// Binding 2's buffer again, four columns per load (the one-row kernels' input).
@group(1) @binding(6) var<storage, read> x4: array<vec4<f32>>;

const WG: u32 = 64u;
const ROWS: u32 = 1u;
const CHUNK: u32 = 1024u;
// Input columns staged per row and pass: xs holds [ROWS][RCHUNK].
const RCHUNK: u32 = CHUNK / ROWS;
const PLAIN: u32 = 0u;
const NORM: u32 = 1u;
const GATE: u32 = 2u;
var<workgroup> xs: array<f32, CHUNK>;
var<workgroup> red: array<f32, WG * ROWS>;

// gate_lib.wgsl's accessors.
fn ring(i: u32) -> f32 { return x[i]; }
fn mparam(i: u32) -> f32 { return vecs[i]; }
fn urow(t: u32, b: u32) -> u32 {
    if (p.flags & 16u) != 0u { return t * p.batch + b; }
    return (t % 3u) * p.batch + b;
}
// The v history is `side` (time-major rows of p.chans columns) in the gate.
fn past_v(g: u32, j: u32) -> f32 { return side[g - j * p.chans]; }

// Where one row of a batched product reads and writes (see the header).
struct Row {
    in_off: u32,
    out_off: u32,
    side_off: u32,
    t: u32,
    // Sequence of the batch.
    b: u32,
}

fn row_of(r: u32) -> Row {
    let t = p.t + r / p.batch;
    var in_off = p.in_off + r * p.cols;
    if (p.flags & 32u) != 0u { in_off = bitcast<u32>(zacc[p.t * p.batch + r]) * p.cols; }
    return Row(in_off, p.out_off + r * p.n, p.side_off + r * p.cols, t, r % p.batch);
}

fn gelu_tanh(v: f32) -> f32 {
    let c = 0.7978845608028654;
    let inner = c * (v + 0.044715 * v * v * v);
    // tanh via exp, clamped so large |inner| cannot overflow.
    let e = exp(-2.0 * clamp(abs(inner), 0.0, 30.0));
    let th = sign(inner) * (1.0 - e) / (1.0 + e);
    return 0.5 * v * (1.0 + th);
}

// Sums of v[r] over the workgroup, every row r at once (barriers are what CPU drivers
// pay for, so one tree serves all rows); all threads must call it.
fn reduce_rows(lid: u32, v: array<f32, ROWS>) -> array<f32, ROWS> {
    for (var r = 0u; r < ROWS; r++) { red[r * WG + lid] = v[r]; }
    var s = WG / 2u;
    loop {
        if s == 0u { break; }
        workgroupBarrier();
        if lid < s {
            for (var r = 0u; r < ROWS; r++) { red[r * WG + lid] += red[r * WG + lid + s]; }
        }
        s = s / 2u;
    }
    workgroupBarrier();
    var total: array<f32, ROWS>;
    for (var r = 0u; r < ROWS; r++) { total[r] = red[r * WG]; }
    workgroupBarrier();
    return total;
}

// Input element i as the kernel `kind` defines it. `first`: this is workgroup 0, which
// alone writes the second output.
fn input(kind: u32, i: u32, first: bool, stats: vec2<f32>, r: Row) -> f32 {
    switch kind {
        case NORM: {
            // The product takes x - mean alone: src/session.rs folds the norm's weight
            // into W and its bias into the output bias, and `scaled` applies
            // 1/sqrt(var + eps) to the sums, so a column costs one load.
            let c = x[r.in_off + i] - stats.x;
            if first && (p.flags & 32u) != 0u { side[r.side_off + i] = x[r.in_off + i]; }
            if first && (p.flags & 8u) != 0u {
                let w = vecs[p.ln_off + i];
                let b = vecs[p.ln_off + p.cols + i];
                side[r.side_off + i] = c * stats.y * w + b;
            }
            return c;
        }
        case GATE: {
            let xv = gate_x0_v(i, r.t, r.b);
            let g = r.t * p.chans + p.col0 + r.b * p.d + i;
            if first { side[g] = xv.y; }
            var z = 0.0;
            if p.mode == 0u { z = z_with_lags(i, zacc[g], r.t, g); }
            return gate_y(i, xv.x, xv.y, z);
        }
        default: { return x[r.in_off + i]; }
    }
}

// A product's sums as `store` takes them: NORM's times 1/sqrt(var + eps) (see input).
fn scaled(kind: u32, acc: vec4<f32>, stats: vec2<f32>) -> vec4<f32> {
    if kind == NORM { return acc * stats.y; }
    return acc;
}

// Index in w4 of input column i of output quad q. Quads are blocked by QB (the last
// block holds what is left) and a block's columns are contiguous, [block][column][quad
// of the block], so the neighbouring threads of one SIMD batch (CPU drivers run 8 at a
// time, one batch after the other) stream through consecutive memory instead of
// touching a new page per column.
const QB: u32 = 8u;
fn widx(i: u32, q: u32) -> u32 {
    let first = q - q % QB;
    let width = min(QB, (p.n + 3u) / 4u - first);
    return first * p.cols + i * width + q - first;
}

// Rows 4q..4q+3 of W times xs[0..count), which holds input columns base..base+count.
fn accumulate(q: u32, n4: u32, base: u32, count: u32, s: vec4<f32>) -> vec4<f32> {
    var s0 = s;
    var s1 = vec4<f32>(0.0);
    var i = 0u;
    for (; i + 1u < count; i += 2u) {
        s0 += weight(widx(base + i, q)) * xs[i];
        s1 += weight(widx(base + i + 1u, q)) * xs[i + 1u];
    }
    if i < count { s0 += weight(widx(base + i, q)) * xs[i]; }
    return s0 + s1;
}

// The whole product for thread lid of workgroup wid and the rows r0 .. r0 + ROWS:
// stage the inputs chunk by chunk, accumulate four outputs per row, then bias, GELU,
// residual.
fn run(kind: u32, lid: u32, wid: u32, stats: array<vec2<f32>, ROWS>, r0: u32) {
    if ROWS == 1u && kind != GATE {
        single(kind, lid, wid, stats[0], r0);
        return;
    }
    let q = wid * WG + lid;
    let n4 = (p.n + 3u) / 4u;
    var s: array<vec4<f32>, ROWS>;
    for (var base = 0u; base < p.cols; base += RCHUNK) {
        let count = min(RCHUNK, p.cols - base);
        for (var r = 0u; r < ROWS; r++) {
            let live = r0 + r < p.rows;
            let row = row_of(r0 + r);
            for (var i = lid; i < count; i += WG) {
                var v = 0.0;
                if live { v = input(kind, base + i, wid == 0u, stats[r], row); }
                xs[r * RCHUNK + i] = v;
            }
        }
        workgroupBarrier();
        if q < n4 {
            if ROWS == 1u {
                s[0] = accumulate(q, n4, base, count, s[0]);
            } else {
                // Written out for up to four rows: a loop over r indexes s dynamically,
                // which a CPU driver (lavapipe) keeps in memory, about 10x slower.
                const R1 = min(1u, ROWS - 1u);
                const R2 = min(2u, ROWS - 1u);
                const R3 = min(3u, ROWS - 1u);
                for (var i = 0u; i < count; i++) {
                    let w = weight(widx(base + i, q));
                    s[0] += w * xs[i];
                    if ROWS > 1u { s[R1] += w * xs[R1 * RCHUNK + i]; }
                    if ROWS > 2u { s[R2] += w * xs[R2 * RCHUNK + i]; }
                    if ROWS > 3u { s[R3] += w * xs[R3 * RCHUNK + i]; }
                }
            }
        }
        workgroupBarrier();
    }
    if q >= n4 { return; }
    // s and stats only ever indexed by constants (see above).
    const R1 = min(1u, ROWS - 1u);
    const R2 = min(2u, ROWS - 1u);
    const R3 = min(3u, ROWS - 1u);
    store(q, r0, scaled(kind, s[0], stats[0]));
    if ROWS > 1u { store(q, r0 + 1u, scaled(kind, s[R1], stats[R1])); }
    if ROWS > 2u { store(q, r0 + 2u, scaled(kind, s[R2], stats[R2])); }
    if ROWS > 3u { store(q, r0 + 3u, scaled(kind, s[R3], stats[R3])); }
}

// One row without staging: every thread reads input column i at the same address as
// its neighbours, a load that CPU drivers (lavapipe) do once for all lanes, where a
// workgroup-memory copy costs a load per lane. Workgroup 0 first writes the second
// output (normalized input, v_t), one column per thread.
fn single(kind: u32, lid: u32, wid: u32, stats: vec2<f32>, r: u32) {
    let row = row_of(r);
    if wid == 0u && kind != PLAIN {
        for (var i = lid; i < p.cols; i += WG) { _ = input(kind, i, true, stats, row); }
    }
    let q = wid * WG + lid;
    let n4 = (p.n + 3u) / 4u;
    if q >= n4 { return; }
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var i = 0u;
    if (p.cols & 3u) == 0u && (row.in_off & 3u) == 0u {
        // Four input columns per (shared-address) load: input() of PLAIN and NORM is
        // x, minus the mean for NORM.
        let mean = vec4<f32>(select(0.0, stats.x, kind == NORM));
        for (var j = row.in_off / 4u; i < p.cols; i += 4u) {
            let v = x4[j] - mean;
            a0 += weight(widx(i, q)) * v.x;
            a1 += weight(widx(i + 1u, q)) * v.y;
            a0 += weight(widx(i + 2u, q)) * v.z;
            a1 += weight(widx(i + 3u, q)) * v.w;
            j += 1u;
        }
    }
    for (; i + 1u < p.cols; i += 2u) {
        a0 += weight(widx(i, q)) * input(kind, i, false, stats, row);
        a1 += weight(widx(i + 1u, q)) * input(kind, i + 1u, false, stats, row);
    }
    if i < p.cols { a0 += weight(widx(i, q)) * input(kind, i, false, stats, row); }
    store(q, r, scaled(kind, a0 + a1, stats));
}

// Outputs 4q..4q+3 of row r (their sums in `acc`): bias, GELU, residual.
fn store(q: u32, r: u32, acc: vec4<f32>) {
    if r >= p.rows { return; }
    let out_off = row_of(r).out_off;
    for (var j = 0u; j < 4u; j++) {
        let row = 4u * q + j;
        if row >= p.n { break; }
        var v = acc[j];
        if (p.flags & 1u) != 0u { v += vecs[p.bias_off + row]; }
        if (p.flags & 2u) != 0u { v = gelu_tanh(v); }
        let o = out_off + row;
        if (p.flags & 4u) != 0u { v += dst[o]; }
        dst[o] = v;
    }
}

@compute @workgroup_size(WG)
fn matvec(@builtin(local_invocation_id) lid: vec3<u32>,
          @builtin(workgroup_id) wid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>) {
    var no_stats: array<vec2<f32>, ROWS>;
    run(PLAIN, lid.x, wid.x + wid.y * nwg.x, no_stats, wid.z * ROWS);
}

// LayerNorm statistics (mean, 1/sqrt(var + eps), biased variance, two passes for
// accuracy) of each row's x[in_off..in_off + cols], computed by every workgroup.
@compute @workgroup_size(WG)
fn matvec_norm(@builtin(local_invocation_id) lid: vec3<u32>,
               @builtin(workgroup_id) wid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let r0 = wid.z * ROWS;
    var in_off: array<u32, ROWS>;
    var part: array<f32, ROWS>;
    for (var r = 0u; r < ROWS; r++) {
        // Rows past the end repeat the last one (their outputs are not written).
        in_off[r] = row_of(min(r0 + r, p.rows - 1u)).in_off;
        var s = 0.0;
        for (var i = lid.x; i < p.cols; i += WG) { s += x[in_off[r] + i]; }
        part[r] = s;
    }
    let sums = reduce_rows(lid.x, part);
    for (var r = 0u; r < ROWS; r++) {
        let mean = sums[r] / f32(p.cols);
        var q = 0.0;
        for (var i = lid.x; i < p.cols; i += WG) {
            let d = x[in_off[r] + i] - mean;
            q += d * d;
        }
        part[r] = q;
    }
    let squares = reduce_rows(lid.x, part);
    var stats: array<vec2<f32>, ROWS>;
    for (var r = 0u; r < ROWS; r++) {
        let mean = sums[r] / f32(p.cols);
        stats[r] = vec2<f32>(mean, inverseSqrt(squares[r] / f32(p.cols) + p.eps));
    }
    run(NORM, lid.x, wid.x + wid.y * nwg.x, stats, r0);
}

@compute @workgroup_size(WG)
fn matvec_gate(@builtin(local_invocation_id) lid: vec3<u32>,
               @builtin(workgroup_id) wid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    var no_stats: array<vec2<f32>, ROWS>;
    run(GATE, lid.x, wid.x + wid.y * nwg.x, no_stats, wid.z * ROWS);
}

// v_t of every channel of the layer for row workgroup_id.z (as row_of), into the v_hist
// arena (`side`): what the prefill's long convolution reads before the gate can finish.
@compute @workgroup_size(64)
fn gate_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
    if gid.x >= p.d { return; }
    let r = row_of(gid.z);
    side[r.t * p.chans + p.col0 + r.b * p.d + gid.x] = gate_x0_v(gid.x, r.t, r.b).y;
}
