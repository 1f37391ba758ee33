//! Channel groups: on a device whose storage-binding limit is deliberately lowered far
//! below the session's history, the mixer splits its buffers into groups and still
//! computes the same logits as the unsplit session on the adapter's full limits (and as
//! the f64 reference).

mod common;

use flashconv::{Config, GpuContext, GpuModel, Method, Model, Session, SessionOptions};

/// Relative logit tolerance against the reference (as in gpu_model.rs).
const TOL: f64 = 1e-4;
/// Grouped against ungrouped: the same arithmetic per channel (flash is bit-identical),
/// except that lazy slices whose columns are not quad-aligned sum in another order.
const SAME: f64 = 1e-5;

fn limited_ctx(binding: u64) -> GpuContext {
    GpuContext::new_with_limits(|l| l.max_storage_buffer_binding_size = binding)
        .unwrap_or_else(|e| panic!("no GPU adapter for the tests: {e}"))
}

/// Logits of every position, fed `chunk` tokens at a time through a ring of `chunk`
/// rows (so the logits buffer itself stays under the lowered limit). Also returns the
/// channel-group widths the session chose and its v history.
fn run(
    gm: &GpuModel,
    method: Method,
    ids: &[u32],
    fft_min_tile: usize,
) -> (Vec<f32>, Vec<usize>, Vec<f32>) {
    let chunk = 128;
    let mut opts = SessionOptions::new(method, ids.len());
    opts.logit_rows = chunk;
    opts.fft_min_tile = fft_min_tile;
    let mut s = Session::new(gm, opts).expect("session");
    let mut logits = Vec::new();
    for (i, part) in ids.chunks(chunk).enumerate() {
        s.feed(part).expect("feed");
        let start = i * chunk;
        logits.extend(s.logits_range(start, start + part.len()).expect("logits"));
    }
    let widths = s.mixer().group_widths();
    let hist = s.mixer().read_history().expect("history");
    (logits, widths, hist)
}

fn max_abs_rel(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1.0f32, |m, v| m.max(v.abs())) as f64;
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).abs())
        .fold(0.0, f64::max)
        / scale
}

/// One model shape under a binding limit of `binding` bytes: every method, grouped
/// (lowered limit) against ungrouped (adapter limit) and against the reference.
fn check(layers: usize, dim: usize, len: usize, binding: u64, fft_min_tile: usize) {
    let vocab = 12;
    let model = Model::random(Config::new(layers, dim, vocab, len + 1), 31).expect("random");
    let ids = common::ids(len, vocab, 32);
    let want = flashconv::reference::forward(&model, &ids).expect("reference");
    let vp = model.config.padded_vocab();
    let full = GpuModel::new(&common::ctx(), model.clone()).expect("upload");
    let small = GpuModel::new(&limited_ctx(binding), model).expect("upload (lowered limit)");
    let history = (layers * dim * len * 4) as u64;
    for method in [Method::Flash, Method::Lazy, Method::Eager] {
        let (a, wa, ha) = run(&full, method, &ids, fft_min_tile);
        let (b, wb, hb) = run(&small, method, &ids, fft_min_tile);
        // Lazy keeps one group per layer (contiguous per-layer histories); the others
        // need no split on the full device.
        let whole = match method {
            Method::Lazy => vec![dim; layers],
            _ => vec![layers * dim],
        };
        assert_eq!(wa, whole, "{method}: groups on the full device");
        assert!(
            wb.len() > 2,
            "{method}: history {history} B under a {binding} B limit gave groups {wb:?}"
        );
        assert_eq!(wb.iter().sum::<usize>(), layers * dim);
        let same = max_abs_rel(&b, &a);
        let hist = max_abs_rel(&hb, &ha);
        let (err, row) = common::max_row_rel_err(&b, &want.logits, vp);
        eprintln!(
            "M={layers} D={dim} L={len} {method}: history {history} B, limit {binding} B, \
             groups {wb:?}; grouped vs ungrouped logits {same:.1e}, history {hist:.1e}; \
             vs reference {err:.1e} (pos {row})"
        );
        assert!(
            same <= SAME,
            "{method}: grouped differs from ungrouped by {same}"
        );
        assert!(hist <= SAME, "{method}: grouped history differs by {hist}");
        assert!(err <= TOL, "{method}: {err} at position {row} > {TOL}");
    }
}

/// D a multiple of 4: groups of whole quads straddle the layer boundary (vec4 lazy on
/// every slice); fused FFT tiles (2U <= 2048) and direct tiles.
#[test]
fn grouped_history_matches_ungrouped() {
    check(2, 36, 700, 32 << 10, 64);
}

/// D = 42: slices start at columns that are not multiples of 4 (the scalar lazy kernel),
/// and every flash tile through FFTs including the multi-pass ones (2U = 4096).
#[test]
fn grouped_odd_layers_and_large_fft_tiles() {
    check(2, 42, 2100, 96 << 10, 2);
}

/// When not even one channel fits (here the flash spectra of the largest FFT tile,
/// 8 B x 512 per channel), the session is refused with a message saying what was
/// needed and what the device allows; a session buffer that cannot be split (the token
/// ids) is refused naming the buffer.
#[test]
fn refuses_what_cannot_fit() {
    let model = Model::random(Config::new(1, 8, 12, 5000), 5).expect("random");
    let gm = GpuModel::new(&limited_ctx(4000), model).expect("upload");
    let err = Session::new(&gm, SessionOptions::new(Method::Flash, 999))
        .expect_err("a channel's 4096 B of spectra cannot fit 4000 B");
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(msg.contains("4096") && msg.contains("4000"), "{msg}");
    let err = Session::new(&gm, SessionOptions::new(Method::Lazy, 1000))
        .expect_err("1001 token ids (4004 B: a slot past the end) cannot fit 4000 B");
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(msg.contains("'tokens'") && msg.contains("4004"), "{msg}");
}

/// A device below what the kernels need is refused up front, naming each short limit.
#[test]
fn refuses_devices_below_the_kernels_needs() {
    let ctx = GpuContext::new_with_limits(|l| {
        l.max_storage_buffers_per_shader_stage = 4;
        l.max_compute_workgroup_storage_size = 8192;
    })
    .expect("device with lowered limits");
    let model = Model::random(Config::new(1, 8, 12, 64), 5).expect("random");
    let err = GpuModel::new(&ctx, model).expect_err("4 storage buffers are too few");
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(
        msg.contains("max_storage_buffers_per_shader_stage is 4"),
        "{msg}"
    );
    assert!(
        msg.contains("max_compute_workgroup_storage_size is 8192"),
        "{msg}"
    );
}
