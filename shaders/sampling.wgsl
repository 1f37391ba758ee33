// Token sampling on the GPU, dispatched by src/sampling.rs: the same rule as the CPU's
// `sampling::sample` (greedy with ties to the lowest id; else temperature, top-k, top-p
// over candidates ranked by descending logit, ties to the lowest id, and one draw of the
// counter-based uniform keyed by (seed, row, position)), in f32.
//
// A thread per candidate and no barriers or workgroup memory (both are very costly on
// CPU drivers such as lavapipe): greedy is one dispatch; sampling is three, whose
// boundaries order the phases: ranks and weights, top-p, the draw. Phases pass data
// through `scratch` ([3][vocab]); each thread recomputes the sums it needs over the
// vocabulary, which suits character- and byte-level vocabularies (O(V^2) per token).
// The chosen id goes to tokens[tok_idx] (which the next position's embedding reads) and to
// out[out_idx] (read back by the CPU every few tokens).
//
// Sums run over candidates in id order, never in rank order, so that the interval
// [lo, hi) of each kept candidate (mass ranked before it, and including it) is computed
// from exactly the same terms in the same order as its neighbours' bounds: the
// intervals tile [0, kept total) exactly and one candidate wins every draw.

struct SampleParams {
    vocab: u32,     // candidates: ids 0 .. vocab (padded columns never sampled)
    row_off: u32,   // offset of the logits row in `logits`
    pos: u32,       // position of the new token: the draw's counter
    temp: f32,      // temperature; 0 = greedy
    top_k: u32,     // 0 = all
    top_p: f32,     // 1 = all
    seed_lo: u32,
    seed_hi: u32,
    row: u32,       // sequence row of the draw
    out_idx: u32,   // slot in `out`
    tok_idx: u32,   // slot of the new token in `tokens` (pos * B + row of a batch)
    pad1: u32,
    pad2: vec4<u32>,
}

@group(0) @binding(0) var<uniform> sp: SampleParams;
@group(1) @binding(0) var<storage, read> logits: array<f32>;
@group(1) @binding(1) var<storage, read_write> tokens: array<u32>;
@group(1) @binding(2) var<storage, read_write> out: array<u32>;
@group(1) @binding(3) var<storage, read_write> scratch: array<f32>;

const SWG: u32 = 64u;

fn hash32(x: u32) -> u32 {
    let state = x * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

// sampling::uniform: 24 random bits, exact in f32.
fn uniform01() -> f32 {
    let h = hash32(sp.seed_lo ^ hash32(sp.seed_hi ^ hash32(sp.row ^ hash32(sp.pos))));
    return f32(h >> 8u) * (1.0 / 16777216.0);
}

fn logit(i: u32) -> f32 {
    let x = logits[sp.row_off + i];
    // NaN ranks last (x != x only for NaN).
    if x != x { return -3.4e38; }
    return x;
}

// Rank of candidate i: how many rank before it (descending logit, ties to the lower id).
fn rank(i: u32) -> u32 {
    let b = logit(i);
    var r = 0u;
    for (var j = 0u; j < sp.vocab; j++) {
        let a = logit(j);
        if a > b || (a == b && j < i) { r++; }
    }
    return r;
}

// scratch[0 .. V) = rank (as f32: exact below 2^24, and no denormal bit patterns), [V .. 2V) = weight after temperature and top-k,
// [2V .. 3V) = weight after top-p.
fn rank_of(i: u32) -> u32 { return u32(scratch[i]); }

// Mass of the weights at `base` ranked before rank r (and up to r when `incl`).
fn mass(base: u32, r: u32, incl: bool) -> f32 {
    var m = 0.0;
    for (var j = 0u; j < sp.vocab; j++) {
        let rj = rank_of(j);
        if rj < r || (incl && rj == r) { m += scratch[base + j]; }
    }
    return m;
}

fn emit(id: u32) {
    tokens[sp.tok_idx] = id;
    out[sp.out_idx] = id;
}

// Greedy: the candidate of rank 0 writes itself.
@compute @workgroup_size(64)
fn sample_greedy(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if i < sp.vocab && rank(i) == 0u { emit(i); }
}

// Phase 1: ranks, and weights exp((l - top) / T) of the top-k.
@compute @workgroup_size(64)
fn sample_rank(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let v = sp.vocab;
    if i >= v { return; }
    var top = -3.4e38;
    for (var j = 0u; j < v; j++) { top = max(top, logit(j)); }
    let r = rank(i);
    var w = 0.0;
    if sp.top_k == 0u || r < sp.top_k { w = exp((logit(i) - top) / sp.temp); }
    scratch[i] = f32(r);
    scratch[v + i] = w;
}

// Phase 2: top-p keeps a candidate while the mass ranked before it is below p.
@compute @workgroup_size(64)
fn sample_top_p(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let v = sp.vocab;
    if i >= v { return; }
    let w = scratch[v + i];
    var keep = w;
    if w > 0.0 && sp.top_p < 1.0 {
        var total = 0.0;
        for (var j = 0u; j < v; j++) { total += scratch[v + j]; }
        if mass(v, rank_of(i), false) / total >= sp.top_p { keep = 0.0; }
    }
    scratch[2u * v + i] = keep;
}

// Phase 3: the draw. The kept candidate whose interval [lo, hi) holds u * kept total
// wins; the last kept one also wins a goal at or past the total (rounding of u * total).
@compute @workgroup_size(64)
fn sample_draw(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let v = sp.vocab;
    if i >= v { return; }
    let w = scratch[2u * v + i];
    let r = rank_of(i);
    var kept_total = 0.0;
    var lo = 0.0;
    var hi = 0.0;
    var later = false;
    for (var j = 0u; j < v; j++) {
        let wj = scratch[2u * v + j];
        let rj = rank_of(j);
        kept_total += wj;
        if rj < r { lo += wj; }
        if rj <= r { hi += wj; }
        if wj > 0.0 && rj > r { later = true; }
    }
    let goal = uniform01() * kept_total;
    if w > 0.0 && lo <= goal && (goal < hi || !later) { emit(i); }
}

