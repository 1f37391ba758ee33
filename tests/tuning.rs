//! The per-device FFT threshold: measured once, cached in a file keyed by the adapter,
//! read back after; a damaged cache is measured again.

mod common;

use flashconv::tuning;

#[test]
fn threshold_is_measured_once_then_cached() {
    let dir = std::env::temp_dir().join(format!("flashconv-tuning-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // This test binary has no other test, so setting the variable races with nothing.
    std::env::set_var("FLASHCONV_CACHE_DIR", &dir);
    let ctx = common::ctx();
    let path = tuning::cache_path().expect("cache path");
    assert_eq!(path, dir.join("fft_threshold.json"));
    assert!(tuning::cached(&ctx).is_none());

    let mut measured = false;
    let first = tuning::fft_min_tile(&ctx, |p| {
        measured = true;
        assert_eq!(p, Some(path.as_path()));
    })
    .expect("measure");
    assert!(measured, "an empty cache must be measured");
    assert_eq!(first.fft_min_tile, tuning::choose(&first.timings));
    assert!(!first.timings.is_empty());
    let text = std::fs::read_to_string(&path).expect("cache file written");
    assert!(text.contains(&ctx.info.name), "keyed by adapter: {text}");

    let second = tuning::fft_min_tile(&ctx, |_| panic!("cached: no measurement")).expect("cached");
    // JSON keeps the numbers to within the last bit or so (serde_json's float parsing).
    assert_eq!(second.fft_min_tile, first.fft_min_tile);
    assert_eq!(second.timings.len(), first.timings.len());
    for (a, b) in second.timings.iter().zip(&first.timings) {
        assert_eq!(a.size, b.size);
        assert!(
            (a.direct - b.direct).abs() <= 1e-12 * b.direct,
            "{a:?} vs {b:?}"
        );
        assert!((a.fft - b.fft).abs() <= 1e-12 * b.fft, "{a:?} vs {b:?}");
    }

    std::fs::write(&path, "{ not json").expect("damage the cache");
    let mut again = false;
    let third = tuning::fft_min_tile(&ctx, |_| again = true).expect("re-measure");
    assert!(again, "a damaged cache is measured again");
    assert!(tuning::cached(&ctx).is_some(), "and rewritten");
    assert!(tuning::CANDIDATES.contains(&third.fft_min_tile) || third.fft_min_tile == 1024);
    let _ = std::fs::remove_dir_all(&dir);
}
